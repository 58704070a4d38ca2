//! A MultiPool module: one dilated 3×3 per pixel, chosen by a selector (models/CONTRACT.md).
use super::active::ActiveSet;
use super::gated_block::relu_at;
use super::perforated_conv::{ConvScratch, PerforatedConv};
use crate::error::{PagError, Result};

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

/// What one [`MultiPool::run`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MultiPoolStats {
    /// Pixels of the grid, `h · w`.
    pub pixels: usize,
    /// Pixels that ran a conv branch (the others ran a copy branch).
    pub conv_pixels: usize,
    /// MACs executed: the selector at every pixel + each pixel's one conv branch.
    pub executed_macs: u64,
    /// MACs of the dense graph: the selector and every conv branch at every pixel.
    pub dense_macs: u64,
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
    channels: usize,
    height: usize,
    width: usize,
    selector: PerforatedConv,
    branches: Vec<Branch>,
}

/// Working memory of [`MultiPool::run`]; grows on the first call with a given shape and never
/// shrinks, so later calls do not allocate.
#[derive(Debug, Default)]
pub struct MultiPoolScratch {
    scores: Vec<f32>,
    choice: Vec<u32>,
    mask: Vec<bool>,
    sets: Vec<ActiveSet>,
    conv: ConvScratch,
}

impl MultiPoolScratch {
    /// Bytes currently reserved; stops changing once the scratch has warmed up.
    pub fn allocated_bytes(&self) -> usize {
        use std::mem::size_of;
        (self.scores.capacity() + self.choice.capacity()) * 4
            + self.mask.capacity()
            + self.sets.capacity() * size_of::<ActiveSet>()
            + self.sets.iter().map(|s| s.capacity() * 4).sum::<usize>()
            + self.conv.allocated_bytes()
    }
    /// The pixels that ran branch `i` in the last call (empty before the first).
    pub fn branch_pixels(&self, i: usize) -> Option<&ActiveSet> {
        self.sets.get(i)
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
        for (i, b) in branches.iter().enumerate() {
            built.push(if b.dilation == 0 {
                if !b.weights.is_empty() || !b.bias.is_empty() || b.relu {
                    let got = format!("{} weights, {} bias, relu {}", b.weights.len(), b.bias.len(), b.relu);
                    return Err(shape_error(&format!("branch {i} (copy)"), "no weights, no relu".into(), got));
                }
                Branch::Copy
            } else {
                check(&format!("branch {i} weights"), b.weights.len(), &[c, c, 3, 3])?;
                check(&format!("branch {i} bias"), b.bias.len(), &[c])?;
                let d = b.dilation;
                let conv = PerforatedConv::new(b.weights, [c, c, 3, 3], Some(b.bias), 1, d, [d; 4], input)?;
                Branch::Conv { conv, relu: b.relu }
            });
        }
        Ok(MultiPool { channels: c, height: input.0, width: input.1, selector, branches: built })
    }

    /// Number of branches `P`.
    pub fn branches(&self) -> usize {
        self.branches.len()
    }
    /// Length of the `input` and `output` slices of [`MultiPool::run`], `C · h · w`.
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Computes `output` (`C × h × w`, every value written) from `input`: at each pixel, the
    /// branch its selector scores pick (copy, or conv + optional ReLU), computed there only.
    /// Errors, touching nothing, when a slice length is not `C · h · w`.
    pub fn run(&self, input: &[f32], output: &mut [f32], scratch: &mut MultiPoolScratch) -> Result<MultiPoolStats> {
        let dims = [self.channels, self.height, self.width];
        check("input", input.len(), &dims)?;
        check("output", output.len(), &dims)?;
        let (h, w, p) = (self.height, self.width, self.branches.len());
        let n = h * w;
        self.warm(scratch)?;
        let s = scratch;
        let scores = &mut s.scores[..p * n];
        self.selector.run_dense(input, scores, &mut s.conv)?;
        let choice = &mut s.choice[..n];
        choice.fill(0);
        for (i, plane) in scores.chunks_exact(n).enumerate().skip(1) {
            for (pixel, c) in choice.iter_mut().enumerate() {
                if plane[pixel] > scores[*c as usize * n + pixel] {
                    *c = i as u32;
                }
            }
        }
        let (c2, taps) = ((self.channels * self.channels) as u64, 9u64);
        let mut stats = MultiPoolStats { pixels: n, ..MultiPoolStats::default() };
        stats.executed_macs = (self.channels * p * n) as u64;
        stats.dense_macs = stats.executed_macs;
        for (i, (branch, set)) in self.branches.iter().zip(&mut s.sets).enumerate() {
            let mask = &mut s.mask[..n];
            mask.iter_mut().zip(choice.iter()).for_each(|(m, &c)| *m = c as usize == i);
            set.refill_from_mask(mask, h, w)?;
            match branch {
                Branch::Copy => {
                    for (out, inp) in output.chunks_exact_mut(n).zip(input.chunks_exact(n)) {
                        set.indices().iter().for_each(|&q| out[q as usize] = inp[q as usize]);
                    }
                }
                Branch::Conv { conv, relu } => {
                    conv.run(input, set, output, &mut s.conv)?;
                    if *relu {
                        relu_at(output, set);
                    }
                    stats.conv_pixels += set.len();
                    stats.executed_macs += c2 * taps * set.len() as u64;
                    stats.dense_macs += c2 * taps * n as u64;
                }
            }
        }
        Ok(stats)
    }

    /// Grows `scratch` to everything this module can need.
    fn warm(&self, scratch: &mut MultiPoolScratch) -> Result<()> {
        let (n, p) = (self.height * self.width, self.branches.len());
        if scratch.scores.len() < p * n {
            scratch.scores.resize(p * n, 0.0);
        }
        if scratch.choice.len() < n {
            scratch.choice.resize(n, 0);
            scratch.mask.resize(n, false);
        }
        if scratch.sets.len() < p {
            scratch.sets.resize_with(p, ActiveSet::default);
        }
        for set in &mut scratch.sets {
            if set.capacity() < n {
                set.refill_full(self.height, self.width)?;
            }
        }
        self.selector.reserve(&mut scratch.conv);
        for branch in &self.branches {
            if let Branch::Conv { conv, .. } = branch {
                conv.reserve(&mut scratch.conv);
            }
        }
        Ok(())
    }
}
