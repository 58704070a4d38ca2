//! A PAG gated residual block, `O = I + G ⊙ F(I)`, computed only where its gate is open.
use super::active::ActiveSet;
use super::perforated_conv::{ConvScratch, PerforatedConv};
use crate::error::{PagError, Result};
use crate::mode::ComputeMode;

/// When the reduce conv's footprint covers at least this fraction of the grid, it runs dense
/// (and the footprint becomes the whole grid): at 60×80, 64→24, a scattered 91% footprint took
/// 0.32 ms against 0.23 ms dense, so the perforated 1×1 only pays below roughly 2/3.
const DENSE_REDUCE_NUMERATOR: usize = 2;
const DENSE_REDUCE_DENOMINATOR: usize = 3;

/// Plain weights of a [`GatedBlock`], each in ONNX layout `[out, in, kh, kw]` with its bias:
/// gate `[1, C, 1, 1]` + `[1]`, reduce `[mid, C, 1, 1]` + `[mid]`, spatial `[mid, mid, k, k]` +
/// `[mid]`, expand `[C, mid, 1, 1]` + `[C]`.
#[derive(Debug, Clone, Copy)]
pub struct GatedBlockWeights<'a> {
    /// Block channels `C` (input and output).
    pub channels: usize,
    /// Bottleneck channels of the branch.
    pub mid: usize,
    /// Spatial kernel size `k`, odd (square kernel).
    pub kernel: usize,
    /// Dilation `d ≥ 1` of the spatial conv; its zero padding is `d · (k / 2)` on every side.
    pub dilation: usize,
    /// Gate score conv weights, `[1, C, 1, 1]`.
    pub gate_weights: &'a [f32],
    /// Gate score bias, `[1]`.
    pub gate_bias: &'a [f32],
    /// Reduce conv weights, `[mid, C, 1, 1]` (followed by ReLU).
    pub reduce_weights: &'a [f32],
    /// Reduce bias, `[mid]`.
    pub reduce_bias: &'a [f32],
    /// Spatial conv weights, `[mid, mid, k, k]` (followed by ReLU).
    pub spatial_weights: &'a [f32],
    /// Spatial bias, `[mid]`.
    pub spatial_bias: &'a [f32],
    /// Expand conv weights, `[C, mid, 1, 1]` (no ReLU).
    pub expand_weights: &'a [f32],
    /// Expand bias, `[C]`.
    pub expand_bias: &'a [f32],
}

/// What one [`GatedBlock::run_in_place`] call did, in pixels and multiply-accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockStats {
    /// Pixels whose branch was computed (the gate's active set).
    pub active: usize,
    /// Pixels of the grid, `h · w`.
    pub pixels: usize,
    /// Pixels where the reduce conv ran: the spatial conv's input footprint of the active set,
    /// or every pixel when that footprint covers ≥ 2/3 of the grid (the dense 1×1 is cheaper).
    pub footprint: usize,
    /// MACs executed: gate at every pixel + reduce at the footprint + spatial and expand at the
    /// active pixels (padding taps of the spatial conv included, as the GEMM executes them).
    pub executed_macs: u64,
    /// MACs of the same block with every pixel active.
    pub dense_macs: u64,
}

/// A gated residual block `O = I + G ⊙ F(I)`, stride 1, on a fixed `h × w` grid: a 1×1 gate conv
/// gives a score per pixel, the [`ComputeMode`] turns scores into the active set `G`, and
/// `F = Conv1×1(C→mid) → ReLU → Conv k×k (mid→mid, dilation d) → ReLU → Conv1×1(mid→C)` is
/// computed at the active pixels only (its first conv at their footprint only).
#[derive(Debug, Clone)]
pub struct GatedBlock {
    channels: usize,
    mid: usize,
    height: usize,
    width: usize,
    gate_weights: Vec<f32>,
    gate_bias: f32,
    reduce: PerforatedConv,
    spatial: PerforatedConv,
    expand: PerforatedConv,
}

/// Working memory of [`GatedBlock::run_in_place`]. Grows on the first call with a given block
/// shape (to everything any mode can need) and never shrinks, so later calls do not allocate
/// (apart from matrixmultiply's internal packing buffer). Can serve several blocks in turn.
#[derive(Debug, Default)]
pub struct GatedBlockScratch {
    scores: Vec<f32>,
    active: ActiveSet,
    footprint: ActiveSet,
    reduced: Vec<f32>,
    spatial: Vec<f32>,
    conv: ConvScratch,
}

impl GatedBlockScratch {
    /// The active set of the last [`GatedBlock::run_in_place`] call (empty before the first).
    pub fn active(&self) -> &ActiveSet {
        &self.active
    }

    /// Bytes currently reserved; stops changing once the scratch has warmed up.
    pub fn allocated_bytes(&self) -> usize {
        use std::mem::size_of;
        let floats = self.scores.capacity() + self.reduced.capacity() + self.spatial.capacity();
        let indices = self.active.capacity() + self.footprint.capacity();
        floats * size_of::<f32>() + indices * size_of::<u32>() + self.conv.allocated_bytes()
    }
}

fn check(what: &str, got: usize, shape: &[usize]) -> Result<()> {
    let expected: usize = shape.iter().product();
    if got != expected {
        return Err(PagError::Shape {
            what: format!("gated block {what}"),
            expected: format!("{expected} floats ({shape:?})"),
            got: format!("{got} floats"),
        });
    }
    Ok(())
}

/// Applies ReLU to the pixels of `set` in every channel plane of `buffer` (channel-planar).
pub(super) fn relu_at(buffer: &mut [f32], set: &ActiveSet) {
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

/// Fills `set` with the active pixels of `mode` for gate `scores` on an `h × w` grid.
fn select_active(set: &mut ActiveSet, scores: &[f32], h: usize, w: usize, mode: ComputeMode) -> Result<()> {
    match mode {
        ComputeMode::Dense => set.refill_full(h, w),
        ComputeMode::Native => set.refill_native(scores, h, w),
        ComputeMode::Budget(rho) => set.refill_budget(scores, h, w, rho),
    }
}

impl GatedBlock {
    /// Builds the block for an `input` grid `(h, w)`. Errors ([`PagError::Shape`]) when a size is
    /// 0, the kernel is even, or a weight or bias length does not match its shape above.
    pub fn new(weights: &GatedBlockWeights<'_>, input: (usize, usize)) -> Result<Self> {
        let GatedBlockWeights { channels: c, mid, kernel: k, dilation: d, .. } = *weights;
        if c == 0 || mid == 0 || k % 2 == 0 || d == 0 || input.0 == 0 || input.1 == 0 {
            return Err(PagError::Shape {
                what: "gated block".into(),
                expected: "channels, mid, dilation, h, w ≥ 1 and an odd kernel".into(),
                got: format!("channels {c}, mid {mid}, kernel {k}, dilation {d}, input {}×{}", input.0, input.1),
            });
        }
        check("gate weights", weights.gate_weights.len(), &[1, c, 1, 1])?;
        check("gate bias", weights.gate_bias.len(), &[1])?;
        check("reduce weights", weights.reduce_weights.len(), &[mid, c, 1, 1])?;
        check("reduce bias", weights.reduce_bias.len(), &[mid])?;
        check("spatial weights", weights.spatial_weights.len(), &[mid, mid, k, k])?;
        check("spatial bias", weights.spatial_bias.len(), &[mid])?;
        check("expand weights", weights.expand_weights.len(), &[c, mid, 1, 1])?;
        check("expand bias", weights.expand_bias.len(), &[c])?;
        let pointwise = |w: &[f32], b: &[f32], out: usize, inp: usize| {
            PerforatedConv::new(w, [out, inp, 1, 1], Some(b), 1, 1, [0; 4], input)
        };
        let pad = d * (k / 2);
        Ok(GatedBlock {
            channels: c,
            mid,
            height: input.0,
            width: input.1,
            gate_weights: weights.gate_weights.to_vec(),
            gate_bias: weights.gate_bias[0],
            reduce: pointwise(weights.reduce_weights, weights.reduce_bias, mid, c)?,
            spatial: PerforatedConv::new(
                weights.spatial_weights,
                [mid, mid, k, k],
                Some(weights.spatial_bias),
                1,
                d,
                [pad; 4],
                input,
            )?,
            expand: pointwise(weights.expand_weights, weights.expand_bias, c, mid)?,
        })
    }

    /// Block channels `C`.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Bottleneck channels.
    pub fn mid(&self) -> usize {
        self.mid
    }
    /// Grid `(h, w)`.
    pub fn size(&self) -> (usize, usize) {
        (self.height, self.width)
    }
    /// Length of the `x` slice [`GatedBlock::run_in_place`] takes, `C · h · w`.
    pub fn input_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Multiply-accumulates of the block for `active` active pixels and `footprint` reduce pixels.
    fn macs(&self, active: usize, footprint: usize) -> u64 {
        let (c, mid, n) = (self.channels as u64, self.mid as u64, (self.height * self.width) as u64);
        let taps = self.spatial.geometry().taps() as u64;
        c * n + c * mid * footprint as u64 + (mid * mid * taps + mid * c) * active as u64
    }

    /// Runs the block in place: `x` (`C × h × w`, the block input) becomes the block output.
    /// The gate score runs at every pixel; `mode` selects the active pixels (Dense: all; Native:
    /// score > 0; Budget(ρ): the contract's exact-k rule); the branch runs only there and is added
    /// to `x` there. Inactive pixels of `x` are not written at all. Errors, touching nothing, when
    /// `x.len() != C · h · w` or a budget ρ is not > 0.
    pub fn run_in_place(
        &self,
        x: &mut [f32],
        mode: ComputeMode,
        scratch: &mut GatedBlockScratch,
    ) -> Result<BlockStats> {
        check("input", x.len(), &[self.channels, self.height, self.width])?;
        let (h, w) = (self.height, self.width);
        let n = h * w;
        if let ComputeMode::Budget(rho) = mode {
            super::active::budget_count(rho, n)?;
        }
        self.warm(scratch)?;
        let s = scratch;
        // The gate: one output channel, so a plain multiply-add over the input planes (a GEMM
        // with one row would waste most of its tile).
        let scores = &mut s.scores[..n];
        scores.fill(self.gate_bias);
        for (plane, &wc) in x.chunks_exact(n).zip(&self.gate_weights) {
            scores.iter_mut().zip(plane).for_each(|(s, &v)| *s += wc * v);
        }
        select_active(&mut s.active, scores, h, w, mode)?;
        if s.active.is_full() {
            s.footprint.refill_full(h, w)?;
        } else {
            s.footprint.refill_input_footprint(&s.active, self.spatial.geometry())?;
        }
        let reduced = &mut s.reduced[..self.mid * n];
        if s.footprint.len() * DENSE_REDUCE_DENOMINATOR >= n * DENSE_REDUCE_NUMERATOR {
            // A near-full footprint: the dense 1×1 (no gather, no scatter) is cheaper.
            s.footprint.refill_full(h, w)?;
            self.reduce.run_dense(x, reduced, &mut s.conv)?;
        } else {
            self.reduce.run(x, &s.footprint, reduced, &mut s.conv)?;
        }
        relu_at(reduced, &s.footprint);
        let spatial = &mut s.spatial[..self.mid * n];
        self.spatial.run(reduced, &s.active, spatial, &mut s.conv)?;
        relu_at(spatial, &s.active);
        // The residual add, fused into the expand conv's scatter: x[p] += expand(spatial)[p].
        self.expand.run_accumulate(spatial, &s.active, x, &mut s.conv)?;
        let (active, footprint) = (s.active.len(), s.footprint.len());
        Ok(BlockStats {
            active,
            pixels: n,
            footprint,
            executed_macs: self.macs(active, footprint),
            dense_macs: self.macs(n, n),
        })
    }

    /// Grows `scratch` to everything any mode of this block can need, once per larger shape.
    fn warm(&self, scratch: &mut GatedBlockScratch) -> Result<()> {
        let n = self.height * self.width;
        let floats = [n, self.mid * n, self.mid * n];
        let buffers = [&mut scratch.scores, &mut scratch.reduced, &mut scratch.spatial];
        for (buffer, len) in buffers.into_iter().zip(floats) {
            if buffer.len() < len {
                buffer.resize(len, 0.0);
            }
        }
        if scratch.active.capacity() < n || scratch.footprint.capacity() < n + n.div_ceil(32) {
            // The largest sets: a full set, and a footprint (which borrows n/32 extra slots).
            scratch.active.refill_full(self.height, self.width)?;
            scratch.footprint.refill_input_footprint(&scratch.active, self.spatial.geometry())?;
        }
        for conv in [&self.reduce, &self.spatial, &self.expand] {
            conv.reserve(&mut scratch.conv);
        }
        Ok(())
    }
}
