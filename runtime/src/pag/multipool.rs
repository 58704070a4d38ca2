//! MultiPool policy (paper §3.3): each pixel runs the one branch its selector scores highest.
use super::active::ActiveSet;
use super::gated_block::{BlockShape, BranchShape};
use crate::error::Result;
use crate::kernels::MultiPoolKernel;

/// The branch of every pixel of `pixels`: the argmax of its `P` selector logits (`scores` is
/// `P × n` planar), ties to the lowest branch index as ONNX ArgMax; a NaN logit is never chosen
/// over branch 0's. Writes `choice` at those pixels only.
pub fn choose_branches(scores: &[f32], p: usize, pixels: &ActiveSet, choice: &mut [u32]) {
    let n = choice.len();
    debug_assert_eq!(scores.len(), p * n);
    if pixels.is_full() {
        choice.fill(0);
        for (i, plane) in scores.chunks_exact(n).enumerate().skip(1) {
            for (q, c) in choice.iter_mut().enumerate() {
                if plane[q] > scores[*c as usize * n + q] {
                    *c = i as u32;
                }
            }
        }
        return;
    }
    for &q in pixels.indices() {
        let q = q as usize;
        let mut best = 0u32;
        for i in 1..p {
            if scores[i * n + q] > scores[best as usize * n + q] {
                best = i as u32;
            }
        }
        choice[q] = best;
    }
}

/// What one [`run`] did.
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

/// Host-side working memory of [`run`]; grows once per shape, then never allocates.
#[derive(Debug, Default)]
pub struct MultiPoolPolicy {
    scores: Vec<f32>,
    choice: Vec<u32>,
    mask: Vec<bool>,
    sets: Vec<ActiveSet>,
    every: ActiveSet,
}

impl MultiPoolPolicy {
    /// The pixels that ran branch `i` in the last call (empty before the first).
    pub fn branch_pixels(&self, i: usize) -> Option<&ActiveSet> {
        self.sets.get(i)
    }

    /// Bytes currently reserved.
    pub fn allocated_bytes(&self) -> usize {
        4 * (self.scores.capacity() + self.choice.capacity() + self.every.capacity())
            + self.mask.capacity()
            + self.sets.iter().map(|s| 4 * s.capacity()).sum::<usize>()
    }

    fn warm(&mut self, shape: &BlockShape) -> Result<()> {
        let (n, p) = (shape.pixels(), shape.branches.len());
        if self.scores.len() < p * n {
            self.scores.resize(p * n, 0.0);
        }
        if self.choice.len() < n {
            self.choice.resize(n, 0);
            self.mask.resize(n, false);
        }
        if self.sets.len() < p {
            self.sets.resize_with(p, ActiveSet::default);
        }
        for set in self.sets.iter_mut().chain([&mut self.every]) {
            if set.capacity() < n {
                set.refill_full(shape.height, shape.width)?;
            }
        }
        self.every.refill_full(shape.height, shape.width)
    }
}

/// Computes every pixel of `output` from `input`: the branch the selector picks there (copy, or
/// conv + optional ReLU), computed there only.
pub fn run<K: MultiPoolKernel>(
    kernel: &K,
    input: &K::Act,
    output: &mut K::Act,
    policy: &mut MultiPoolPolicy,
    scratch: &mut K::Scratch,
) -> Result<MultiPoolStats> {
    let shape = kernel.shape();
    let (h, w, n, p) = (shape.height, shape.width, shape.pixels(), shape.branches.len());
    policy.warm(shape)?;
    let s = policy;
    kernel.selector_scores(input, &mut s.scores[..p * n], scratch);
    choose_branches(&s.scores[..p * n], p, &s.every, &mut s.choice[..n]);
    let c2 = (shape.channels * shape.channels) as u64;
    let mut stats = MultiPoolStats { pixels: n, ..MultiPoolStats::default() };
    stats.executed_macs = (shape.channels * p * n) as u64;
    stats.dense_macs = stats.executed_macs;
    for (i, (branch, set)) in shape.branches.iter().zip(&mut s.sets).enumerate() {
        let mask = &mut s.mask[..n];
        mask.iter_mut().zip(s.choice.iter()).for_each(|(m, &c)| *m = c as usize == i);
        set.refill_from_mask(mask, h, w)?;
        kernel.branch(input, i, set, output, scratch);
        if let BranchShape::Conv { geometry, .. } = branch {
            stats.conv_pixels += set.len();
            stats.executed_macs += c2 * geometry.taps() as u64 * set.len() as u64;
            stats.dense_macs += c2 * geometry.taps() as u64 * n as u64;
        }
    }
    Ok(stats)
}
