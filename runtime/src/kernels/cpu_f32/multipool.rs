//! f32 CPU arithmetic of an ungated MultiPool module ([`MultiPoolKernel`]): one dilated 3×3
//! per pixel, chosen by a selector (models/CONTRACT.md); the policy is
//! [`crate::pag::multipool::run`].
use super::conv::{ConvScratch, PerforatedConv};
use super::isa::CpuIsa;
use crate::error::{PagError, Result};
use crate::kernels::MultiPoolKernel;
use crate::pag::multipool::{self, MultiPoolPolicy, MultiPoolStats};
use crate::pag::{ActiveSet, BlockShape, BranchShape};

/// One branch of a [`MultiPool`], plain weights in ONNX layout.
#[derive(Debug, Clone, Copy)]
pub struct MultiPoolBranch<'a> {
    /// 0: the branch copies the input; `d ≥ 1`: a 3×3 conv with dilation `d`, padding `d`.
    pub dilation: usize,
    /// Conv weights `[C, C, 3, 3]`; empty for a copy branch.
    pub weights: &'a [f32],
    /// Conv bias `[C]`; empty for a copy branch.
    pub bias: &'a [f32],
    /// Whether a ReLU follows the conv (must be false for a copy branch).
    pub relu: bool,
}

#[derive(Debug, Clone)]
enum Branch {
    Copy,
    Conv { conv: PerforatedConv, relu: bool },
}

/// A MultiPool module on a fixed `h × w` grid with `C` channels: a 1×1 selector conv gives `P`
/// scores per pixel, the pixel's branch is their argmax (ties → the lowest branch index, like
/// ONNX ArgMax; a NaN score is never chosen over branch 0's), and only that branch runs there.
#[derive(Debug, Clone)]
pub struct MultiPool {
    shape: BlockShape,
    selector: PerforatedConv,
    branches: Vec<Branch>,
}

/// Working memory of [`MultiPool::run`]; grows on the first call with a given shape and never
/// shrinks, so later calls do not allocate.
#[derive(Debug, Default)]
pub struct MultiPoolScratch {
    /// The policy's buffers (selector scores, branch choice, branch pixel sets).
    pub policy: MultiPoolPolicy,
    conv: ConvScratch,
}

impl MultiPoolScratch {
    /// Bytes currently reserved; stops changing once the scratch has warmed up.
    pub fn allocated_bytes(&self) -> usize {
        self.policy.allocated_bytes() + self.conv.allocated_bytes()
    }
    /// The pixels that ran branch `i` in the last call (empty before the first).
    pub fn branch_pixels(&self, i: usize) -> Option<&ActiveSet> {
        self.policy.branch_pixels(i)
    }
}

fn shape_error(what: &str, expected: String, got: String) -> PagError {
    PagError::Shape { what: format!("multipool {what}"), expected, got }
}

fn check(what: &str, got: usize, shape: &[usize]) -> Result<()> {
    let expected: usize = shape.iter().product();
    if got != expected {
        return Err(shape_error(what, format!("{expected} floats ({shape:?})"), format!("{got} floats")));
    }
    Ok(())
}

/// Applies ReLU to the pixels of `set` in every channel plane of `buffer` (channel-planar).
fn relu_at(buffer: &mut [f32], set: &ActiveSet) {
    if set.is_full() {
        buffer.iter_mut().for_each(|v| *v = v.max(0.0));
        return;
    }
    for plane in buffer.chunks_exact_mut(set.height() * set.width()) {
        for &p in set.indices() {
            plane[p as usize] = plane[p as usize].max(0.0);
        }
    }
}

impl MultiPool {
    /// Builds the module for `channels` channels on an `input` grid `(h, w)` from the selector
    /// (weights `[P, C, 1, 1]`, bias `[P]`) and its `P = branches.len() ≥ 1` branches. Errors
    /// ([`PagError::Shape`]) on a zero size or a length that does not match its shape.
    pub fn new(
        channels: usize,
        input: (usize, usize),
        selector_weights: &[f32],
        selector_bias: &[f32],
        branches: &[MultiPoolBranch<'_>],
    ) -> Result<Self> {
        let (c, p) = (channels, branches.len());
        if c == 0 || p == 0 || input.0 == 0 || input.1 == 0 {
            let got = format!("{c} channels, {p} branches, input {}×{}", input.0, input.1);
            return Err(shape_error("module", "≥ 1 channel and branch, h, w ≥ 1".into(), got));
        }
        check("selector weights", selector_weights.len(), &[p, c, 1, 1])?;
        check("selector bias", selector_bias.len(), &[p])?;
        let selector = PerforatedConv::new(selector_weights, [p, c, 1, 1], Some(selector_bias), 1, 1, [0; 4], input)?;
        let mut built = Vec::with_capacity(p);
        let mut shapes = Vec::with_capacity(p);
        for (i, b) in branches.iter().enumerate() {
            if b.dilation == 0 {
                if !b.weights.is_empty() || !b.bias.is_empty() || b.relu {
                    let got = format!("{} weights, {} bias, relu {}", b.weights.len(), b.bias.len(), b.relu);
                    return Err(shape_error(&format!("branch {i} (copy)"), "no weights, no relu".into(), got));
                }
                built.push(Branch::Copy);
                shapes.push(BranchShape::Copy);
            } else {
                check(&format!("branch {i} weights"), b.weights.len(), &[c, c, 3, 3])?;
                check(&format!("branch {i} bias"), b.bias.len(), &[c])?;
                let d = b.dilation;
                let conv = PerforatedConv::new(b.weights, [c, c, 3, 3], Some(b.bias), 1, d, [d; 4], input)?;
                shapes.push(BranchShape::Conv { geometry: *conv.geometry(), relu: b.relu });
                built.push(Branch::Conv { conv, relu: b.relu });
            }
        }
        let shape = BlockShape { channels: c, mid: c, height: input.0, width: input.1, branches: shapes };
        Ok(MultiPool { shape, selector, branches: built })
    }

    /// The same module on the micro-kernels of `isa` (tests run every supported one).
    pub fn with_isa(mut self, isa: &'static CpuIsa) -> Self {
        self.selector = self.selector.with_isa(isa);
        for b in &mut self.branches {
            if let Branch::Conv { conv, .. } = b {
                *conv = conv.clone().with_isa(isa);
            }
        }
        self
    }

    /// Number of branches `P`.
    pub fn branches(&self) -> usize {
        self.branches.len()
    }
    /// Length of the `input` and `output` slices of [`MultiPool::run`], `C · h · w`.
    pub fn input_len(&self) -> usize {
        self.shape.channels * self.shape.pixels()
    }
    /// Channels, grid and branches.
    pub fn block_shape(&self) -> &BlockShape {
        &self.shape
    }

    /// Computes `output` (`C × h × w`, every value written) from `input`: at each pixel, the
    /// branch its selector scores pick (copy, or conv + optional ReLU), computed there only.
    /// Errors, touching nothing, when a slice length is not `C · h · w`.
    pub fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut MultiPoolScratch) -> Result<MultiPoolStats> {
        let dims = [self.shape.channels, self.shape.height, self.shape.width];
        check("input", input.len(), &dims)?;
        check("output", output.len(), &dims)?;
        self.selector.reserve(&mut scratch.conv);
        for branch in &self.branches {
            if let Branch::Conv { conv, .. } = branch {
                conv.reserve(&mut scratch.conv);
            }
        }
        multipool::run(self, input, output, &mut scratch.policy, &mut scratch.conv)
    }
}

impl MultiPoolKernel for MultiPool {
    type Act = [f32];
    type Scratch = ConvScratch;

    fn shape(&self) -> &BlockShape {
        &self.shape
    }

    fn selector_scores(&self, input: &[f32], scores: &mut [f32], s: &mut ConvScratch) {
        self.selector.run_dense(input, scores, s).expect("sizes checked by MultiPool::run");
    }

    fn branch(&self, input: &[f32], branch: usize, pixels: &ActiveSet, output: &mut [f32], s: &mut ConvScratch) {
        let n = self.shape.pixels();
        match &self.branches[branch] {
            Branch::Copy => {
                for (out, inp) in output.chunks_exact_mut(n).zip(input.chunks_exact(n)) {
                    pixels.indices().iter().for_each(|&q| out[q as usize] = inp[q as usize]);
                }
            }
            Branch::Conv { conv, relu } => {
                conv.run(input, pixels, output, s).expect("sizes checked by MultiPool::run");
                if *relu {
                    relu_at(output, pixels);
                }
            }
        }
    }
}
