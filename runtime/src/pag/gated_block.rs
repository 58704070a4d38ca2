//! The policy of a gated residual block `O = I + G ⊙ F(I)`, the same on every backend: gate
//! scores → the mode's active set → the block plan (full, dense-branch or sparse path; where the
//! reduce conv runs) → for a MultiPool block, each active pixel's branch → the kernel computes
//! there → what it executed, in MACs.
use super::active::ActiveSet;
use super::geometry::ConvGeometry;
use super::multipool::choose_branches;
use crate::error::{PagError, Result};
use crate::kernels::GatedBlockKernel;
use crate::mode::ComputeMode;

/// When the reduce conv's footprint covers at least this fraction of the grid, it runs dense
/// (and the footprint becomes the whole grid): at 60×80, 64→24, a scattered 91% footprint took
/// 0.32 ms against 0.23 ms dense, so the perforated 1×1 only pays below roughly 2/3.
pub const DENSE_REDUCE_NUMERATOR: usize = 2;
pub const DENSE_REDUCE_DENOMINATOR: usize = 3;
/// When at least this fraction of the grid is active (but not all of it), the branch runs over
/// every pixel in contiguous tiles and the inactive pixels are put back afterwards: scattered
/// tiles cost more per pixel, and on the v1 model ρ = 0.9 ran slower than ρ = 1.
pub const DENSE_BRANCH_NUMERATOR: usize = 4;
pub const DENSE_BRANCH_DENOMINATOR: usize = 5;

/// One branch of a block's spatial stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BranchShape {
    /// A `k × k` conv `mid → mid` with dilation `d` and padding `d · (k / 2)`, then ReLU when
    /// `relu`.
    Conv { geometry: ConvGeometry, relu: bool },
    /// The reduce output passes through unchanged (a MultiPool's dilation-0 branch).
    Copy,
}

impl BranchShape {
    /// Taps of the spatial conv (0 for a copy).
    pub fn taps(&self) -> usize {
        match self {
            BranchShape::Conv { geometry, .. } => geometry.taps(),
            BranchShape::Copy => 0,
        }
    }
}

/// Sizes of a gated block, the same on every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockShape {
    /// Block channels `C` (input and output).
    pub channels: usize,
    /// Bottleneck channels.
    pub mid: usize,
    /// Grid height.
    pub height: usize,
    /// Grid width.
    pub width: usize,
    /// One branch for a plain bottleneck; `P ≥ 2` for a MultiPool bottleneck, chosen per pixel
    /// by a `mid → P` 1×1 selector (argmax, ties to the lowest branch).
    pub branches: Vec<BranchShape>,
}

impl BlockShape {
    /// A plain gated bottleneck with a `k × k` spatial conv of dilation `d`, ReLU after it.
    pub fn plain(channels: usize, mid: usize, (h, w): (usize, usize), kernel: usize, dilation: usize) -> Result<Self> {
        let pad = dilation * (kernel / 2);
        let geometry = ConvGeometry::new((h, w), (kernel, kernel), 1, dilation, [pad; 4])?;
        Self::new(channels, mid, (h, w), vec![BranchShape::Conv { geometry, relu: true }])
    }

    /// A block with the given branches; errors on a zero size, no branch, or a branch geometry
    /// that is not stride 1 over the block's grid with an odd kernel.
    pub fn new(channels: usize, mid: usize, (h, w): (usize, usize), branches: Vec<BranchShape>) -> Result<Self> {
        let bad = |expected: &str| PagError::Shape {
            what: "gated block".into(),
            expected: expected.into(),
            got: format!("channels {channels}, mid {mid}, grid {h}×{w}, {} branches", branches.len()),
        };
        if channels == 0 || mid == 0 || h == 0 || w == 0 || branches.is_empty() {
            return Err(bad("channels, mid, h, w ≥ 1 and at least one branch"));
        }
        for b in &branches {
            if let BranchShape::Conv { geometry: g, .. } = b {
                let same = g.stride() == 1 && g.out_height() == h && g.out_width() == w && g.in_height() == h;
                if !same || g.kernel_height() != g.kernel_width() || g.kernel_width() % 2 == 0 {
                    return Err(bad("spatial convs: odd square kernels, stride 1, output = input grid"));
                }
            }
        }
        if branches.len() == 1 && branches[0] == BranchShape::Copy {
            return Err(bad("a single branch must be a conv"));
        }
        Ok(BlockShape { channels, mid, height: h, width: w, branches })
    }

    /// Pixels of the grid.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Whether a MultiPool selects the branch per pixel.
    pub fn is_multipool(&self) -> bool {
        self.branches.len() > 1
    }

    /// MACs of the block computed densely, as the ONNX graph does: gate, reduce, selector and
    /// every branch conv and expand at every pixel.
    pub fn dense_macs(&self) -> u64 {
        let (c, mid, n) = (self.channels as u64, self.mid as u64, self.pixels() as u64);
        let selector = if self.is_multipool() { mid * self.branches.len() as u64 } else { 0 };
        let spatial: u64 = self.branches.iter().map(|b| b.taps() as u64).sum::<u64>() * mid * mid;
        n * (c + c * mid + selector + spatial + mid * c)
    }
}

/// What one [`run`] did, in pixels and multiply-accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStats {
    /// Pixels whose branch was computed (the gate's active set).
    pub active: usize,
    /// Pixels of the grid, `h · w`.
    pub pixels: usize,
    /// Pixels where the reduce conv ran: the spatial convs' input footprint of the active set,
    /// or every pixel when that footprint covers ≥ 2/3 of the grid (the dense 1×1 is cheaper).
    pub footprint: usize,
    /// MACs executed: gate at every pixel + reduce at the footprint + (MultiPool: selector at the
    /// branch pixels +) each branch pixel's one spatial conv + expand at the branch pixels
    /// (padding taps included, as the GEMM executes them). The branch pixels are the active ones,
    /// or every pixel on the dense-branch path (≥ 4/5 active).
    pub executed_macs: u64,
    /// MACs of the same block computed densely as in the ONNX graph ([`BlockShape::dense_macs`]).
    pub dense_macs: u64,
    /// Of `executed_macs`, the gate conv's (at every pixel, whatever the mode): the rest is the
    /// branch, the work the gate controls.
    pub gate_macs: u64,
}

/// Host-side working memory of [`run`] (the backend keeps its own). Grows on the first call with
/// a given shape and never shrinks, so later calls do not allocate.
#[derive(Debug, Default)]
pub struct PolicyScratch {
    scores: Vec<f32>,
    active: ActiveSet,
    footprint: ActiveSet,
    /// The pixels the branches run at (active, or the whole grid on the dense-branch path).
    every: ActiveSet,
    /// MultiPool: selector logits, each pixel's branch, and each branch's pixels.
    selector: Vec<f32>,
    choice: Vec<u32>,
    sets: Vec<ActiveSet>,
    mask: Vec<bool>,
    /// Footprint pixels not yet reduced (MultiPool, sparse path).
    rest: Vec<bool>,
    extra: ActiveSet,
    /// Inactive pixels (dense-branch path).
    inactive: Vec<u32>,
    /// The budget rule's selection keys (one per pixel, then a bitmap's 64-bit words).
    keys: Vec<u64>,
}

impl PolicyScratch {
    /// The active set of the last [`run`] (empty before the first).
    pub fn active(&self) -> &ActiveSet {
        &self.active
    }

    /// Bytes currently reserved; stops changing once warm.
    pub fn allocated_bytes(&self) -> usize {
        let sets = [&self.active, &self.footprint, &self.every, &self.extra];
        4 * (self.scores.capacity() + self.selector.capacity() + self.choice.capacity() + self.inactive.capacity())
            + sets.iter().map(|s| 4 * s.capacity()).sum::<usize>()
            + self.sets.iter().map(|s| 4 * s.capacity()).sum::<usize>()
            + self.mask.capacity()
            + self.rest.capacity()
            + 8 * self.keys.capacity()
    }

    fn warm(&mut self, shape: &BlockShape) -> Result<()> {
        let (h, w, n, p) = (shape.height, shape.width, shape.pixels(), shape.branches.len());
        if self.scores.len() < n {
            self.scores.resize(n, 0.0);
            self.choice.resize(n, 0);
            self.mask.resize(n, false);
            self.rest.resize(n, false);
            self.inactive.reserve(n);
        }
        if self.keys.capacity() < n + n.div_ceil(64) {
            self.keys.reserve(n + n.div_ceil(64));
        }
        if self.sets.len() < p {
            self.sets.resize_with(p, ActiveSet::default);
        }
        if p > 1 && self.selector.len() < p * n {
            self.selector.resize(p * n, 0.0);
        }
        for set in [&mut self.active, &mut self.every, &mut self.extra].into_iter().chain(self.sets.iter_mut()) {
            if set.capacity() < n {
                set.refill_full(h, w)?;
            }
        }
        // A footprint borrows extra slots for its bitmap or its dilation scratch (the block's
        // convs are stride 1 on the block's grid).
        let footprint = ActiveSet::footprint_capacity(h, w, h, w);
        if self.footprint.capacity() < footprint {
            self.footprint.reserve(footprint);
        }
        Ok(())
    }
}

/// Fills `set` with the active pixels of `mode` for gate `scores` on an `h × w` grid.
pub fn select_active(set: &mut ActiveSet, scores: &[f32], h: usize, w: usize, mode: ComputeMode) -> Result<()> {
    select_active_with(set, scores, h, w, mode, &mut Vec::new())
}

/// [`select_active`] with the caller's key buffer for the budget rule (no allocation once warm).
pub fn select_active_with(
    set: &mut ActiveSet,
    scores: &[f32],
    h: usize,
    w: usize,
    mode: ComputeMode,
    keys: &mut Vec<u64>,
) -> Result<()> {
    match mode {
        ComputeMode::Dense => set.refill_full(h, w),
        ComputeMode::Native => set.refill_native(scores, h, w),
        ComputeMode::Budget(rho) => set.refill_budget_with(scores, h, w, rho.get(), keys),
    }
}

/// Runs a gated block in place on any backend: `x` (the block input) becomes the block output.
/// The gate scores every pixel; `mode` selects the active pixels (Dense: all; Native: score > 0;
/// Budget(ρ): the contract's exact-k rule); the branch runs only there (a MultiPool block: at
/// each active pixel the one branch its selector picks) and is added to `x` there. Inactive
/// pixels of `x` end bit-identical to the input.
pub fn run<K: GatedBlockKernel>(
    kernel: &K,
    x: &mut K::Act,
    mode: ComputeMode,
    policy: &mut PolicyScratch,
    scratch: &mut K::Scratch,
) -> Result<BlockStats> {
    let shape = kernel.shape();
    let (h, w, n) = (shape.height, shape.width, shape.pixels());
    policy.warm(shape)?;
    let s = policy;
    kernel.gate_scores(x, &mut s.scores[..n], scratch);
    select_active_with(&mut s.active, &s.scores[..n], h, w, mode, &mut s.keys)?;
    let dense_branch = !s.active.is_full() && s.active.len() * DENSE_BRANCH_DENOMINATOR >= n * DENSE_BRANCH_NUMERATOR;
    let sparse = !s.active.is_full() && !dense_branch;
    if sparse {
        s.every.copy_from(&s.active);
    } else {
        s.every.refill_full(h, w)?;
    }
    let dense_reduce = |len: usize| len * DENSE_REDUCE_DENOMINATOR >= n * DENSE_REDUCE_NUMERATOR;

    let p = shape.branches.len();
    let mut selector_pixels = 0;
    if p == 1 {
        let BranchShape::Conv { geometry, .. } = &shape.branches[0] else { unreachable!("checked by BlockShape") };
        if sparse {
            s.footprint.refill_input_footprint(&s.active, geometry)?;
            if dense_reduce(s.footprint.len()) {
                s.footprint.refill_full(h, w)?;
            }
        } else {
            s.footprint.refill_full(h, w)?;
        }
        kernel.reduce(x, &s.footprint, scratch);
        s.sets[0].copy_from(&s.every);
    } else {
        // The selector reads the reduce output at the branch pixels, so the reduce runs there
        // first; the branches' footprints beyond them follow once the choices are known.
        if !sparse {
            // Every pixel: the reduce runs dense (the stats count the footprint).
            s.footprint.refill_full(h, w)?;
        }
        kernel.reduce(x, &s.every, scratch);
        kernel.selector_scores(&s.every, &mut s.selector[..p * n], scratch);
        selector_pixels = s.every.len();
        choose_branches(&s.selector[..p * n], p, &s.every, &mut s.choice[..n]);
        for (b, set) in s.sets.iter_mut().enumerate().take(p) {
            let mask = &mut s.mask[..n];
            mask.fill(false);
            s.every
                .indices()
                .iter()
                .filter(|&&q| s.choice[q as usize] as usize == b)
                .for_each(|&q| mask[q as usize] = true);
            set.refill_from_mask(mask, h, w)?;
        }
        if sparse {
            // Footprint pixels beyond the active ones, reduced in a second pass.
            let rest = &mut s.rest[..n];
            rest.fill(false);
            for (set, branch) in s.sets.iter().zip(&shape.branches) {
                if let BranchShape::Conv { geometry, .. } = branch {
                    s.footprint.refill_input_footprint(set, geometry)?;
                    s.footprint.indices().iter().for_each(|&q| rest[q as usize] = true);
                }
            }
            s.active.indices().iter().for_each(|&q| rest[q as usize] = false);
            s.extra.refill_from_mask(rest, h, w)?;
            kernel.reduce(x, &s.extra, scratch);
        }
    }

    if dense_branch {
        s.inactive.clear();
        let mut next = 0u32;
        for &q in s.active.indices().iter().chain([n as u32].iter()) {
            s.inactive.extend(next..q);
            next = q + 1;
        }
        kernel.save(x, &s.inactive, scratch);
    }
    for (b, set) in s.sets.iter().enumerate().take(p) {
        if !set.is_empty() {
            kernel.branch(x, b, set.indices(), scratch);
        }
    }
    kernel.finish(x, s.every.indices(), scratch);
    if dense_branch {
        kernel.restore(x, &s.inactive, scratch);
    }

    let (c, mid) = (shape.channels as u64, shape.mid as u64);
    let reduced = if p > 1 && sparse { (s.active.len() + s.extra.len()) as u64 } else { s.footprint.len() as u64 };
    let spatial: u64 = shape.branches.iter().zip(&s.sets).map(|(b, set)| b.taps() as u64 * set.len() as u64).sum();
    let executed = c * n as u64
        + c * mid * reduced
        + mid * p as u64 * selector_pixels as u64 * (p > 1) as u64
        + mid * mid * spatial
        + mid * c * s.every.len() as u64;
    Ok(BlockStats {
        active: s.active.len(),
        pixels: n,
        footprint: reduced as usize,
        executed_macs: executed,
        dense_macs: shape.dense_macs(),
        gate_macs: c * n as u64,
    })
}
