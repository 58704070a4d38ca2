//! A PAG gated residual block, `O = I + G ⊙ F(I)`, computed only where its gate is open.
use super::active::ActiveSet;
use super::gemm::{self, GemmScratch};
use super::geometry::ConvGeometry;
use crate::error::{PagError, Result};
use crate::mode::ComputeMode;

/// When the reduce conv's footprint covers at least this fraction of the grid, it runs dense
/// (and the footprint becomes the whole grid): at 60×80, 64→24, a scattered 91% footprint took
/// 0.32 ms against 0.23 ms dense, so the perforated 1×1 only pays below roughly 2/3.
const DENSE_REDUCE_NUMERATOR: usize = 2;
const DENSE_REDUCE_DENOMINATOR: usize = 3;
/// When at least this fraction of the grid is active (but not all of it), the spatial and expand
/// convs run over every pixel in contiguous tiles and only the active pixels receive the result:
/// scattered tiles cost more per pixel, and on the shipped model ρ = 0.9 ran slower than ρ = 1.
pub const DENSE_BRANCH_NUMERATOR: usize = 4;
pub const DENSE_BRANCH_DENOMINATOR: usize = 5;

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
    /// active pixels (padding taps of the spatial conv included, as the GEMM executes them); at
    /// every pixel when the active set covers ≥ 4/5 of the grid (the dense branch path).
    pub executed_macs: u64,
    /// MACs of the same block with every pixel active.
    pub dense_macs: u64,
}

/// Pixels per GEMM tile of the spatial and expand convs (and of a sparse reduce).
const TILE: usize = 256;

/// A gated residual block `O = I + G ⊙ F(I)`, stride 1, on a fixed `h × w` grid: a 1×1 gate conv
/// gives a score per pixel, the [`ComputeMode`] turns scores into the active set `G`, and
/// `F = Conv1×1(C→mid) → ReLU → Conv k×k (mid→mid, dilation d) → ReLU → Conv1×1(mid→C)` is
/// computed at the active pixels only (its first conv at their footprint only).
///
/// The block input and output are channel-planar (NCHW); inside the branch the bottleneck
/// activations are channels-last, so the spatial conv's im2col copies one contiguous run of
/// `mid` floats per tap and pixel instead of `mid` scattered floats, and the expand conv reads
/// the spatial conv's compact tile result as is (no gather at all).
#[derive(Debug, Clone)]
pub struct GatedBlock {
    channels: usize,
    mid: usize,
    height: usize,
    width: usize,
    gate_weights: Vec<f32>,
    gate_bias: f32,
    /// `[mid][C]`.
    reduce_weights: Vec<f32>,
    reduce_bias: Vec<f32>,
    /// `[mid_out][tap][mid_in]`: the GEMM's right operand (transposed) for channels-last im2col.
    spatial_weights: Vec<f32>,
    spatial_bias: Vec<f32>,
    /// `[C][mid]`.
    expand_weights: Vec<f32>,
    expand_bias: Vec<f32>,
    /// The spatial conv's geometry (its footprint sizes the reduce conv).
    geometry: ConvGeometry,
}

/// Working memory of [`GatedBlock::run_in_place`]. Grows on the first call with a given block
/// shape (to everything any mode can need) and never shrinks, so later calls do not allocate
/// at all. Can serve several blocks in turn.
#[derive(Debug, Default)]
pub struct GatedBlockScratch {
    scores: Vec<f32>,
    active: ActiveSet,
    footprint: ActiveSet,
    /// The reduce conv's output, channels-last `h·w × mid` (valid on the footprint).
    reduced: Vec<f32>,
    /// A gathered GEMM operand: `C × TILE` (reduce) or `TILE × taps·mid` (spatial).
    columns: Vec<f32>,
    /// A tile of the spatial conv's output (or of a sparse reduce), `TILE × mid`.
    spatial: Vec<f32>,
    /// A tile of the expand conv's output, `C × TILE`.
    result: Vec<f32>,
    /// The inactive pixels (dense branch path only).
    inactive: Vec<u32>,
    /// Their passthrough values, `C × inactive` (dense branch path only).
    saved: Vec<f32>,
    /// The GEMM's packing buffers.
    gemm: GemmScratch,
}

impl GatedBlockScratch {
    /// The active set of the last [`GatedBlock::run_in_place`] call (empty before the first).
    pub fn active(&self) -> &ActiveSet {
        &self.active
    }

    /// Bytes currently reserved; stops changing once the scratch has warmed up.
    pub fn allocated_bytes(&self) -> usize {
        use std::mem::size_of;
        let floats = self.scores.capacity()
            + self.reduced.capacity()
            + self.columns.capacity()
            + self.spatial.capacity()
            + self.result.capacity()
            + self.saved.capacity()
            + self.inactive.capacity()
            + self.gemm.allocated_bytes() / std::mem::size_of::<f32>();
        let indices = self.active.capacity() + self.footprint.capacity();
        floats * size_of::<f32>() + indices * size_of::<u32>()
    }
}

/// `C = beta·C + A·B` (f32): [`gemm::sgemm`] with the block's packing buffers.
///
/// # Safety
/// Every element those shapes and strides address must be valid (reads of A and B, writes of C).
#[inline]
unsafe fn sgemm(
    shape: (usize, usize, usize),
    a: (*const f32, usize, usize),
    b: (*const f32, usize, usize),
    beta: f32,
    c: (*mut f32, usize, usize),
    scratch: &mut GemmScratch,
) {
    // SAFETY: forwarded to the caller.
    unsafe { gemm::sgemm(shape, a, b, beta, c, scratch) }
}

/// Adds `bias` to every `bias.len()`-long row of `rows`, then applies ReLU.
fn bias_relu_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v = (*v + b).max(0.0));
    }
}

/// Grows `buffer` to at least `len` elements.
fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
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
        let pad = d * (k / 2);
        let geometry = ConvGeometry::new(input, (k, k), 1, d, [pad; 4])?;
        let taps = k * k;
        // [out][in][ky][kx] → [out][tap][in].
        let mut spatial_weights = vec![0f32; mid * taps * mid];
        for (o, block) in spatial_weights.chunks_exact_mut(taps * mid).enumerate() {
            for tap in 0..taps {
                for i in 0..mid {
                    block[tap * mid + i] = weights.spatial_weights[(o * mid + i) * taps + tap];
                }
            }
        }
        Ok(GatedBlock {
            channels: c,
            mid,
            height: input.0,
            width: input.1,
            gate_weights: weights.gate_weights.to_vec(),
            gate_bias: weights.gate_bias[0],
            reduce_weights: weights.reduce_weights.to_vec(),
            reduce_bias: weights.reduce_bias.to_vec(),
            spatial_weights,
            spatial_bias: weights.spatial_bias.to_vec(),
            expand_weights: weights.expand_weights.to_vec(),
            expand_bias: weights.expand_bias.to_vec(),
            geometry,
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
        let taps = self.geometry.taps() as u64;
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
        let dense_branch =
            !s.active.is_full() && s.active.len() * DENSE_BRANCH_DENOMINATOR >= n * DENSE_BRANCH_NUMERATOR;
        if s.active.is_full() || dense_branch {
            s.footprint.refill_full(h, w)?;
        } else {
            s.footprint.refill_input_footprint(&s.active, &self.geometry)?;
            if s.footprint.len() * DENSE_REDUCE_DENOMINATOR >= n * DENSE_REDUCE_NUMERATOR {
                // A near-full footprint: the dense 1×1 (no gather, no scatter) is cheaper.
                s.footprint.refill_full(h, w)?;
            }
        }
        self.reduce(x, s);
        if dense_branch {
            // Run the branch over every pixel in contiguous tiles, then put back the inactive
            // pixels' passthrough values (saved bit for bit): cheaper than scattered tiles here.
            s.inactive.clear();
            let mut next = 0u32;
            for &p in s.active.indices().iter().chain([n as u32].iter()) {
                s.inactive.extend(next..p);
                next = p + 1;
            }
            let ni = s.inactive.len();
            for (saved, plane) in s.saved.chunks_exact_mut(ni.max(1)).zip(x.chunks_exact(n)) {
                saved.iter_mut().zip(&s.inactive).for_each(|(v, &p)| *v = plane[p as usize]);
            }
        }
        // The dense-branch path tiles every pixel (the footprint is then full), otherwise only the
        // active ones.
        let tiles = if dense_branch { &s.footprint } else { &s.active };
        for tile in tiles.indices().chunks(TILE) {
            self.spatial_expand_tile(x, tile, &s.reduced, &mut s.columns, &mut s.spatial, &mut s.result, &mut s.gemm);
        }
        if dense_branch {
            let ni = s.inactive.len();
            for (saved, plane) in s.saved.chunks_exact(ni.max(1)).zip(x.chunks_exact_mut(n)) {
                saved.iter().zip(&s.inactive).for_each(|(&v, &p)| plane[p as usize] = v);
            }
        }
        let (active, footprint) = (s.active.len(), s.footprint.len());
        Ok(BlockStats {
            active,
            pixels: n,
            footprint,
            executed_macs: if dense_branch { self.macs(n, n) } else { self.macs(active, footprint) },
            dense_macs: self.macs(n, n),
        })
    }

    /// The reduce conv (+ bias, ReLU) at the footprint pixels, into `s.reduced` (channels-last).
    fn reduce(&self, x: &[f32], s: &mut GatedBlockScratch) {
        let (c, mid, n) = (self.channels, self.mid, self.height * self.width);
        let reduced = &mut s.reduced[..n * mid];
        let wr = (self.reduce_weights.as_ptr(), 1, c);
        if s.footprint.is_full() {
            // reduced (n × mid) = xᵀ (n × C, x is C × n) · Wᵀ (C × mid, W is mid × C).
            // SAFETY: x is C × n (checked by the caller), the weights mid × C, reduced n × mid.
            unsafe { sgemm((n, c, mid), (x.as_ptr(), 1, n), wr, 0.0, (reduced.as_mut_ptr(), mid, 1), &mut s.gemm) };
            bias_relu_rows(reduced, &self.reduce_bias);
            return;
        }
        for tile in s.footprint.indices().chunks(TILE) {
            let t = tile.len();
            let columns = &mut s.columns[..c * t];
            // Gather the tile's pixels (C × t), copying runs of consecutive pixels.
            let mut j = 0;
            while j < t {
                let start = tile[j] as usize;
                let mut len = 1;
                while j + len < t && tile[j + len] as usize == start + len {
                    len += 1;
                }
                for (row, plane) in columns.chunks_exact_mut(t).zip(x.chunks_exact(n)) {
                    row[j..j + len].copy_from_slice(&plane[start..start + len]);
                }
                j += len;
            }
            let rows = &mut s.spatial[..t * mid];
            // SAFETY: columns is C × t, the weights mid × C, rows t × mid.
            unsafe { sgemm((t, c, mid), (columns.as_ptr(), 1, t), wr, 0.0, (rows.as_mut_ptr(), mid, 1), &mut s.gemm) };
            for (&p, row) in tile.iter().zip(rows.chunks_exact(mid)) {
                let dst = &mut reduced[p as usize * mid..][..mid];
                for ((d, v), b) in dst.iter_mut().zip(row).zip(&self.reduce_bias) {
                    *d = (v + b).max(0.0);
                }
            }
        }
    }

    /// The spatial conv (+ bias, ReLU) and the expand conv (+ bias, added to `x`) at the pixels
    /// of one `tile`.
    #[allow(clippy::too_many_arguments)]
    fn spatial_expand_tile(
        &self,
        x: &mut [f32],
        tile: &[u32],
        reduced: &[f32],
        columns: &mut [f32],
        spatial: &mut [f32],
        result: &mut [f32],
        gemm: &mut GemmScratch,
    ) {
        let (c, mid, h, w) = (self.channels, self.mid, self.height, self.width);
        let n = h * w;
        let t = tile.len();
        let (k, d) = (self.geometry.kernel_width(), self.geometry.dilation());
        let depth = self.geometry.taps() * mid;
        let columns = &mut columns[..t * depth];
        // im2col, channels-last: row j holds, tap after tap, the mid channels of input pixel
        // (y0 + ky·d, x0 + kx·d), zeros where that falls in the padding.
        for (&p, row) in tile.iter().zip(columns.chunks_exact_mut(depth)) {
            let (y0, x0) = self.geometry.tap_origin(p as usize / w, p as usize % w);
            if d == 1 && x0 >= 0 && x0 as usize + k <= w {
                // Undilated and clear of the side borders: each kernel row is one run of k·mid
                // floats in the channels-last input.
                for (ky, dst) in row.chunks_exact_mut(k * mid).enumerate() {
                    let iy = y0 + ky as isize;
                    if iy >= 0 && (iy as usize) < h {
                        dst.copy_from_slice(&reduced[(iy as usize * w + x0 as usize) * mid..][..k * mid]);
                    } else {
                        dst.fill(0.0);
                    }
                }
                continue;
            }
            for (tap, dst) in row.chunks_exact_mut(mid).enumerate() {
                let (iy, ix) = (y0 + ((tap / k) * d) as isize, x0 + ((tap % k) * d) as isize);
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                    dst.copy_from_slice(&reduced[(iy as usize * w + ix as usize) * mid..][..mid]);
                } else {
                    dst.fill(0.0);
                }
            }
        }
        let spatial = &mut spatial[..t * mid];
        let ws = (self.spatial_weights.as_ptr(), 1, depth);
        // SAFETY: columns is t × depth, the weights mid × depth (read transposed), spatial t × mid.
        unsafe { sgemm((t, depth, mid), (columns.as_ptr(), depth, 1), ws, 0.0, (spatial.as_mut_ptr(), mid, 1), gemm) };
        bias_relu_rows(spatial, &self.spatial_bias);
        // expand: (C × t) = W (C × mid) · spatialᵀ (mid × t).
        let we = (self.expand_weights.as_ptr(), mid, 1);
        let sp = (spatial.as_ptr(), 1, mid);
        let first = tile[0] as usize;
        if tile[t - 1] as usize - first == t - 1 {
            // Consecutive pixels: accumulate straight into x (the residual add), bias first.
            for (plane, b) in x.chunks_exact_mut(n).zip(&self.expand_bias) {
                plane[first..first + t].iter_mut().for_each(|v| *v += b);
            }
            // SAFETY: element (co, j) is x[co·n + first + j], inside x as first + t ≤ n.
            unsafe { sgemm((c, mid, t), we, sp, 1.0, (x[first..].as_mut_ptr(), n, 1), gemm) };
        } else {
            let result = &mut result[..c * t];
            // SAFETY: result is C × t.
            unsafe { sgemm((c, mid, t), we, sp, 0.0, (result.as_mut_ptr(), t, 1), gemm) };
            for ((plane, values), b) in x.chunks_exact_mut(n).zip(result.chunks_exact(t)).zip(&self.expand_bias) {
                tile.iter().zip(values).for_each(|(&p, &v)| plane[p as usize] += v + b);
            }
        }
    }

    /// Grows `scratch` to everything any mode of this block can need, once per larger shape.
    fn warm(&self, scratch: &mut GatedBlockScratch) -> Result<()> {
        let (c, mid) = (self.channels, self.mid);
        let n = self.height * self.width;
        let tile = TILE.min(n);
        grow(&mut scratch.scores, n);
        grow(&mut scratch.reduced, n * mid);
        grow(&mut scratch.columns, (c * tile).max(tile * self.geometry.taps() * mid));
        grow(&mut scratch.spatial, tile * mid);
        grow(&mut scratch.result, c * tile);
        scratch.gemm.reserve(n, c.max(self.geometry.taps() * mid), c.max(mid));
        // The dense branch path saves at most 1/5 of the pixels.
        grow(&mut scratch.saved, c * (n / DENSE_BRANCH_DENOMINATOR + 1));
        scratch.inactive.reserve(n.saturating_sub(scratch.inactive.len()));
        if scratch.active.capacity() < n || scratch.footprint.capacity() < n + n.div_ceil(32) {
            // The largest sets: a full set, and a footprint (which borrows n/32 extra slots).
            scratch.active.refill_full(self.height, self.width)?;
            scratch.footprint.refill_input_footprint(&scratch.active, &self.geometry)?;
        }
        Ok(())
    }
}
