//! f32 CPU arithmetic of a gated residual block ([`GatedBlockKernel`]); the PAG policy that
//! drives it is [`crate::pag::gated_block::run`].
//!
//! The block input and output are channel-planar (NCHW); inside the branch the bottleneck
//! activations are channels-last, so a spatial conv's im2col copies one contiguous run of `mid`
//! floats per tap and pixel instead of `mid` scattered floats, and the expand conv reads the
//! spatial conv's compact tile result as is (no gather at all). Pixel tiles run in parallel on
//! the session's pool, each worker with its own buffers.
use super::gemm::{sgemm_with, GemmScratch};
use super::im2col::{gather_columns, Run, TapTables};
use super::isa::{self, CpuIsa};
use super::parallel::{for_each_tile, PerWorker, SharedMut};
use super::scatter::scatter_channels;
use crate::error::{PagError, Result};
use crate::kernels::GatedBlockKernel;
use crate::mode::ComputeMode;
use crate::pag::gated_block::{self, BlockShape, BlockStats, BranchShape, PolicyScratch};
use crate::pag::{ActiveSet, ConvGeometry};

/// Pixels per GEMM tile (at most; fewer so that every thread gets the same number of tiles).
const TILE: usize = 256;

/// Plain weights of a plain [`GatedBlock`], each in ONNX layout `[out, in, kh, kw]` with its
/// bias: gate `[1, C, 1, 1]` + `[1]`, reduce `[mid, C, 1, 1]` + `[mid]`, spatial
/// `[mid, mid, k, k]` + `[mid]`, expand `[C, mid, 1, 1]` + `[C]`.
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

/// One branch of a gated MultiPool block: a 3×3 conv `mid → mid` of dilation `d ≥ 1` (padding
/// `d`, optional ReLU), or a copy (`dilation == 0`, no weights).
#[derive(Debug, Clone, Copy)]
pub struct BranchWeights<'a> {
    /// 0 = copy; otherwise the dilation of a 3×3 conv.
    pub dilation: usize,
    /// `[mid, mid, 3, 3]`, empty for a copy.
    pub weights: &'a [f32],
    /// `[mid]`, empty for a copy.
    pub bias: &'a [f32],
    /// ReLU after the conv (false for a copy).
    pub relu: bool,
}

/// The spatial stage of a gated MultiPool block: the selector (`[P, mid, 1, 1]` + `[P]`) and
/// its branches.
#[derive(Debug, Clone, Copy)]
pub struct MultiPoolWeights<'a> {
    pub selector_weights: &'a [f32],
    pub selector_bias: &'a [f32],
    pub branches: &'a [BranchWeights<'a>],
}

#[derive(Debug, Clone)]
enum Branch {
    /// Weights `[tap][mid_in][mid_out]` (the GEMM's right operand, row-major, for channels-last
    /// im2col), bias, ReLU.
    Conv {
        weights: Vec<f32>,
        bias: Vec<f32>,
        relu: bool,
    },
    Copy,
}

/// A gated residual block on a fixed `h × w` grid, f32 on the CPU (see the module docs).
#[derive(Debug, Clone)]
pub struct GatedBlock {
    shape: BlockShape,
    isa: &'static CpuIsa,
    gate_weights: Vec<f32>,
    gate_bias: f32,
    /// `[C][mid]` (the reduce conv's `[mid][C]` transposed: the GEMM's row-major right operand).
    reduce_weights: Vec<f32>,
    reduce_bias: Vec<f32>,
    /// `[P][mid]` (MultiPool blocks only).
    selector_weights: Vec<f32>,
    selector_bias: Vec<f32>,
    branches: Vec<Branch>,
    /// `[C][mid]`.
    expand_weights: Vec<f32>,
    expand_bias: Vec<f32>,
    /// A 1×1 conv on the block's grid: the reduce conv's gather of scattered pixels.
    pointwise: ConvGeometry,
}

/// One worker's buffers for one pixel tile.
#[derive(Debug, Default)]
struct TileScratch {
    /// A gathered GEMM operand: `C × TILE` (reduce) or `TILE × taps·mid` (spatial).
    columns: Vec<f32>,
    /// A tile of the spatial conv's output (or of a sparse reduce), `TILE × mid`.
    spatial: Vec<f32>,
    /// A tile of the expand conv's output, `C × TILE`.
    result: Vec<f32>,
    gemm: GemmScratch,
    /// The reduce conv's gather tables.
    tables: TapTables,
    /// The expand conv's scatter runs.
    runs: Vec<Run>,
}

impl TileScratch {
    fn allocated_bytes(&self) -> usize {
        4 * (self.columns.capacity() + self.spatial.capacity() + self.result.capacity())
            + self.gemm.allocated_bytes()
            + self.tables.allocated_bytes()
            + self.runs.capacity() * std::mem::size_of::<Run>()
    }
}

/// Working memory of a [`GatedBlock`] (policy and arithmetic). Grows on the first call with a
/// given block shape and thread count (to everything any mode can need) and never shrinks, so
/// later calls do not allocate. Can serve several blocks in turn.
#[derive(Debug, Default)]
pub struct GatedBlockScratch {
    /// The policy's buffers (active set, footprint, branch choice).
    pub policy: PolicyScratch,
    kernel: KernelScratch,
}

/// The arithmetic's buffers.
#[derive(Debug, Default)]
pub struct KernelScratch {
    /// The reduce conv's output, channels-last `h·w × mid` (valid on the footprint).
    reduced: Vec<f32>,
    /// Saved passthrough values, `C × saved pixels` (dense-branch path).
    saved: Vec<f32>,
    workers: PerWorker<TileScratch>,
}

impl GatedBlockScratch {
    /// The active set of the last run (empty before the first).
    pub fn active(&self) -> &ActiveSet {
        self.policy.active()
    }

    /// Bytes currently reserved; stops changing once the scratch has warmed up.
    pub fn allocated_bytes(&self) -> usize {
        let k = &self.kernel;
        self.policy.allocated_bytes()
            + 4 * (k.reduced.capacity() + k.saved.capacity())
            + k.workers.allocated_bytes(TileScratch::allocated_bytes)
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

/// `[out][in][taps]` (ONNX) → `[tap][in][out]`: the spatial conv's weights as the GEMM's
/// row-major right operand for channels-last im2col (packing its panels then copies rows).
fn taps_in_out(w: &[f32], out: usize, inp: usize, taps: usize) -> Vec<f32> {
    let mut t = vec![0f32; out * taps * inp];
    for (o, per_out) in w.chunks_exact(inp * taps).enumerate() {
        for (i, per_in) in per_out.chunks_exact(taps).enumerate() {
            for (tap, &v) in per_in.iter().enumerate() {
                t[(tap * inp + i) * out + o] = v;
            }
        }
    }
    t
}

/// The `cols × rows` transpose of a row-major `rows × cols` matrix: weights stored as the GEMM's
/// row-major right operand, so that packing its panels copies rows instead of gathering columns
/// (same values, same products: the results keep their bits).
fn transposed(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; rows * cols];
    for (r, row) in w.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            t[c * rows + r] = v;
        }
    }
    t
}

/// Grows `buffer` to at least `len` elements.
fn grow(buffer: &mut Vec<f32>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
}

impl GatedBlock {
    /// A plain gated bottleneck for an `input` grid `(h, w)`. Errors ([`PagError::Shape`]) when a
    /// size is 0, the kernel is even, or a weight or bias length does not match its shape.
    pub fn new(weights: &GatedBlockWeights<'_>, input: (usize, usize)) -> Result<Self> {
        let GatedBlockWeights { channels: c, mid, kernel: k, dilation: d, .. } = *weights;
        if k % 2 == 0 || d == 0 {
            return Err(PagError::Shape {
                what: "gated block".into(),
                expected: "an odd kernel and dilation ≥ 1".into(),
                got: format!("kernel {k}, dilation {d}"),
            });
        }
        let shape = BlockShape::plain(c, mid, input, k, d)?;
        check("spatial weights", weights.spatial_weights.len(), &[mid, mid, k, k])?;
        check("spatial bias", weights.spatial_bias.len(), &[mid])?;
        let branch = Branch::Conv {
            weights: taps_in_out(weights.spatial_weights, mid, mid, k * k),
            bias: weights.spatial_bias.to_vec(),
            relu: true,
        };
        Self::build(shape, weights, vec![branch], &[], &[])
    }

    /// A gated block whose spatial stage is a MultiPool (contract version 2): `weights`' spatial
    /// fields are ignored; `pool` gives the selector and the branches.
    pub fn with_multipool(
        weights: &GatedBlockWeights<'_>,
        pool: &MultiPoolWeights<'_>,
        input: (usize, usize),
    ) -> Result<Self> {
        let (c, mid, p) = (weights.channels, weights.mid, pool.branches.len());
        let mut shapes = Vec::with_capacity(p);
        let mut branches = Vec::with_capacity(p);
        for (i, b) in pool.branches.iter().enumerate() {
            if b.dilation == 0 {
                if !b.weights.is_empty() || !b.bias.is_empty() || b.relu {
                    return Err(PagError::Shape {
                        what: format!("gated MultiPool branch {i} (copy)"),
                        expected: "no weights, no ReLU".into(),
                        got: format!("{} weights, {} bias, relu {}", b.weights.len(), b.bias.len(), b.relu),
                    });
                }
                shapes.push(BranchShape::Copy);
                branches.push(Branch::Copy);
                continue;
            }
            check(&format!("MultiPool branch {i} weights"), b.weights.len(), &[mid, mid, 3, 3])?;
            check(&format!("MultiPool branch {i} bias"), b.bias.len(), &[mid])?;
            let d = b.dilation;
            let geometry = crate::pag::ConvGeometry::new(input, (3, 3), 1, d, [d; 4])?;
            shapes.push(BranchShape::Conv { geometry, relu: b.relu });
            branches.push(Branch::Conv {
                weights: taps_in_out(b.weights, mid, mid, 9),
                bias: b.bias.to_vec(),
                relu: b.relu,
            });
        }
        let shape = BlockShape::new(c, mid, input, shapes)?;
        if p < 2 {
            return Err(PagError::Shape {
                what: "gated MultiPool block".into(),
                expected: "at least 2 branches".into(),
                got: format!("{p}"),
            });
        }
        check("MultiPool selector weights", pool.selector_weights.len(), &[p, mid, 1, 1])?;
        check("MultiPool selector bias", pool.selector_bias.len(), &[p])?;
        Self::build(shape, weights, branches, pool.selector_weights, pool.selector_bias)
    }

    fn build(
        shape: BlockShape,
        weights: &GatedBlockWeights<'_>,
        branches: Vec<Branch>,
        selector_weights: &[f32],
        selector_bias: &[f32],
    ) -> Result<Self> {
        let (c, mid) = (shape.channels, shape.mid);
        let pointwise = ConvGeometry::new((shape.height, shape.width), (1, 1), 1, 1, [0; 4])?;
        check("gate weights", weights.gate_weights.len(), &[1, c, 1, 1])?;
        check("gate bias", weights.gate_bias.len(), &[1])?;
        check("reduce weights", weights.reduce_weights.len(), &[mid, c, 1, 1])?;
        check("reduce bias", weights.reduce_bias.len(), &[mid])?;
        check("expand weights", weights.expand_weights.len(), &[c, mid, 1, 1])?;
        check("expand bias", weights.expand_bias.len(), &[c])?;
        Ok(GatedBlock {
            shape,
            isa: isa::best(),
            gate_weights: weights.gate_weights.to_vec(),
            gate_bias: weights.gate_bias[0],
            reduce_weights: transposed(weights.reduce_weights, mid, c),
            reduce_bias: weights.reduce_bias.to_vec(),
            selector_weights: selector_weights.to_vec(),
            selector_bias: selector_bias.to_vec(),
            branches,
            expand_weights: weights.expand_weights.to_vec(),
            expand_bias: weights.expand_bias.to_vec(),
            pointwise,
        })
    }

    /// The same block on the micro-kernels of `isa` (tests run every supported one).
    pub fn with_isa(mut self, isa: &'static CpuIsa) -> Self {
        isa.assert_supported();
        self.isa = isa;
        self
    }

    /// Block channels `C`.
    pub fn channels(&self) -> usize {
        self.shape.channels
    }
    /// Bottleneck channels.
    pub fn mid(&self) -> usize {
        self.shape.mid
    }
    /// Grid `(h, w)`.
    pub fn size(&self) -> (usize, usize) {
        (self.shape.height, self.shape.width)
    }
    /// Length of the `x` slice [`GatedBlock::run_in_place`] takes, `C · h · w`.
    pub fn input_len(&self) -> usize {
        self.shape.channels * self.shape.pixels()
    }
    /// Sizes and branches.
    pub fn block_shape(&self) -> &BlockShape {
        &self.shape
    }

    /// Runs the block in place ([`gated_block::run`]): `x` (`C × h × w`, the block input) becomes
    /// the block output; inactive pixels are not written at all. Errors, touching nothing, when
    /// `x.len() != C · h · w`.
    pub fn run_in_place(
        &self,
        x: &mut [f32],
        mode: ComputeMode,
        scratch: &mut GatedBlockScratch,
    ) -> Result<BlockStats> {
        check("input", x.len(), &[self.shape.channels, self.shape.height, self.shape.width])?;
        self.warm(&mut scratch.kernel);
        gated_block::run(self, x, mode, &mut scratch.policy, &mut scratch.kernel)
    }

    /// Grows `scratch` to everything any mode of this block can need on the current pool.
    fn warm(&self, s: &mut KernelScratch) {
        let (c, mid, n) = (self.shape.channels, self.shape.mid, self.shape.pixels());
        grow(&mut s.reduced, n * mid);
        // The dense branch path saves at most 1/5 of the pixels.
        grow(&mut s.saved, c * (n / gated_block::DENSE_BRANCH_DENOMINATOR + 1));
        s.workers.ensure();
        let tile = TILE.min(n);
        let taps = self.shape.branches.iter().map(|b| b.taps()).max().unwrap_or(0).max(1);
        for w in s.workers.each_mut() {
            grow(&mut w.columns, (c * tile).max(tile * taps * mid));
            grow(&mut w.spatial, tile * mid);
            grow(&mut w.result, c * tile);
            w.gemm.reserve(tile.max(mid), c.max(taps * mid), c.max(mid).max(tile));
            w.tables.reserve(1, tile);
            w.runs.clear(); // reserve counts from the length
            w.runs.reserve(tile);
        }
    }

    /// The reduce conv (+ bias, ReLU) at the pixels of one `tile`, into `reduced` rows.
    fn reduce_tile(&self, x: &[f32], tile: &[u32], reduced: SharedMut<f32>, w: &mut TileScratch) {
        let (c, mid, n) = (self.shape.channels, self.shape.mid, self.shape.pixels());
        let t = tile.len();
        let wr = (self.reduce_weights.as_ptr(), mid, 1);
        let first = tile[0] as usize;
        if tile[t - 1] as usize - first == t - 1 {
            // Consecutive pixels: rows first..first+t of reduced (t × mid) = xᵀ · Wᵀ, read in place.
            // SAFETY: x is C × n; reduced has n × mid floats; tiles are disjoint pixel ranges, so
            // threads write disjoint rows.
            unsafe {
                let out = reduced.0.add(first * mid);
                sgemm_with(self.isa, (t, c, mid), (x[first..].as_ptr(), 1, n), wr, 0.0, (out, mid, 1), &mut w.gemm);
                let rows = std::slice::from_raw_parts_mut(out, t * mid);
                bias_relu_rows(rows, &self.reduce_bias);
            }
            return;
        }
        // Gather the tile's pixels (C × t): the perforated conv's gather, as a 1×1 conv (runs of
        // consecutive pixels as slices, scattered ones element-wise, four channels at a time).
        let columns = &mut w.columns[..c * t];
        gather_columns(self.isa, &self.pointwise, c, x, tile, columns, &mut w.tables);
        let rows = &mut w.spatial[..t * mid];
        // SAFETY: columns is C × t, the weights mid × C, rows t × mid.
        unsafe {
            sgemm_with(
                self.isa,
                (t, c, mid),
                (columns.as_ptr(), 1, t),
                wr,
                0.0,
                (rows.as_mut_ptr(), mid, 1),
                &mut w.gemm,
            )
        };
        for (&p, row) in tile.iter().zip(rows.chunks_exact(mid)) {
            // SAFETY: row p of reduced; tiles hold distinct pixels.
            let dst = unsafe { std::slice::from_raw_parts_mut(reduced.0.add(p as usize * mid), mid) };
            for ((d, v), b) in dst.iter_mut().zip(row).zip(&self.reduce_bias) {
                *d = (v + b).max(0.0);
            }
        }
    }

    /// Branch `b`'s spatial conv (+ bias, ReLU) or copy, then the expand conv (+ bias, added to
    /// `x`) at the pixels of one `tile`.
    fn branch_tile(&self, x: SharedMut<f32>, b: usize, tile: &[u32], reduced: &[f32], w: &mut TileScratch) {
        let (c, mid, h, wd) = (self.shape.channels, self.shape.mid, self.shape.height, self.shape.width);
        let n = h * wd;
        let t = tile.len();
        let spatial = &mut w.spatial[..t * mid];
        match (&self.branches[b], &self.shape.branches[b]) {
            (Branch::Conv { weights, bias, relu }, BranchShape::Conv { geometry, .. }) => {
                let depth = geometry.taps() * mid;
                let columns = &mut w.columns[..t * depth];
                // SAFETY: a `CpuIsa` in use is supported by this CPU (checked where it is chosen).
                unsafe { (self.isa.im2col_channels_last)(geometry, mid, tile, reduced, columns) };
                let ws = (weights.as_ptr(), mid, 1);
                // SAFETY: columns is t × depth, the weights depth × mid, spatial t × mid.
                unsafe {
                    sgemm_with(
                        self.isa,
                        (t, depth, mid),
                        (columns.as_ptr(), depth, 1),
                        ws,
                        0.0,
                        (spatial.as_mut_ptr(), mid, 1),
                        &mut w.gemm,
                    )
                };
                if *relu {
                    bias_relu_rows(spatial, bias);
                } else {
                    for row in spatial.chunks_exact_mut(mid) {
                        row.iter_mut().zip(bias).for_each(|(v, b)| *v += b);
                    }
                }
            }
            _ => {
                for (&p, row) in tile.iter().zip(spatial.chunks_exact_mut(mid)) {
                    row.copy_from_slice(&reduced[p as usize * mid..][..mid]);
                }
            }
        }
        // expand: (C × t) = W (C × mid) · spatialᵀ (mid × t).
        let we = (self.expand_weights.as_ptr(), mid, 1);
        let sp = (spatial.as_ptr(), 1, mid);
        let first = tile[0] as usize;
        if tile[t - 1] as usize - first == t - 1 {
            // Consecutive pixels: accumulate straight into x (the residual add), bias first.
            // SAFETY: x is C × n; this tile's pixels first..first+t are written by no other tile.
            unsafe {
                for (co, b) in self.expand_bias.iter().enumerate() {
                    let row = std::slice::from_raw_parts_mut(x.0.add(co * n + first), t);
                    row.iter_mut().for_each(|v| *v += b);
                }
                sgemm_with(self.isa, (c, mid, t), we, sp, 1.0, (x.0.add(first), n, 1), &mut w.gemm);
            }
        } else {
            let result = &mut w.result[..c * t];
            // SAFETY: result is C × t.
            unsafe { sgemm_with(self.isa, (c, mid, t), we, sp, 0.0, (result.as_mut_ptr(), t, 1), &mut w.gemm) };
            // SAFETY: x is C × n and holds every pixel of the tile; no other tile writes them.
            unsafe { scatter_channels(result, tile, &self.expand_bias, x, n, true, &mut w.runs) };
        }
    }
}

/// `Σ w·v` for a MultiPool selector: eight partial sums (lane `l` takes elements `l, l + 8, …`,
/// multiply then add, no FMA), then a fixed pairwise tree. Plain Rust with a fixed order, so it
/// vectorises and yet every build and thread count gives the same bits (branch choices do not
/// depend on the machine).
#[inline(always)]
fn selector_dot(w: &[f32], v: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (wc, vc) = (w.chunks_exact(8), v.chunks_exact(8));
    let (wr, vr) = (wc.remainder(), vc.remainder());
    for (a, b) in wc.zip(vc) {
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    for (l, (a, b)) in wr.iter().zip(vr).enumerate() {
        acc[l] += a * b;
    }
    let quad = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (quad[0] + quad[2]) + (quad[1] + quad[3])
}

/// Adds `bias` to every `bias.len()`-long row of `rows`, then applies ReLU.
fn bias_relu_rows(rows: &mut [f32], bias: &[f32]) {
    for row in rows.chunks_exact_mut(bias.len()) {
        row.iter_mut().zip(bias).for_each(|(v, b)| *v = (*v + b).max(0.0));
    }
}

impl GatedBlockKernel for GatedBlock {
    type Act = [f32];
    type Scratch = KernelScratch;

    fn shape(&self) -> &BlockShape {
        &self.shape
    }

    fn gate_scores(&self, x: &[f32], scores: &mut [f32], _s: &mut KernelScratch) {
        gate_scores(x, &self.gate_weights, self.gate_bias, scores);
    }

    fn reduce(&self, x: &[f32], pixels: &ActiveSet, s: &mut KernelScratch) {
        let reduced = SharedMut(s.reduced.as_mut_ptr());
        let workers = &s.workers;
        for_each_tile(pixels.indices(), TILE, |tile| workers.with(|w| self.reduce_tile(x, tile, reduced, w)));
    }

    fn selector_scores(&self, pixels: &ActiveSet, scores: &mut [f32], s: &mut KernelScratch) {
        let (mid, n) = (self.shape.mid, self.shape.pixels());
        let out = SharedMut(scores.as_mut_ptr());
        let (reduced, weights, biases) = (&s.reduced[..], &self.selector_weights, &self.selector_bias);
        for_each_tile(pixels.indices(), TILE, |tile| {
            let out = out; // the whole Sync wrapper, not its raw pointer field
            for &q in tile {
                let row = &reduced[q as usize * mid..][..mid];
                for (b, (wb, bias)) in weights.chunks_exact(mid).zip(biases).enumerate() {
                    // SAFETY: element (b, q) of the P × n scores; tiles hold distinct pixels.
                    unsafe { *out.0.add(b * n + q as usize) = bias + selector_dot(wb, row) };
                }
            }
        });
    }

    fn branch(&self, x: &mut [f32], branch: usize, pixels: &[u32], s: &mut KernelScratch) {
        let xs = SharedMut(x.as_mut_ptr());
        let (reduced, workers) = (&s.reduced[..], &s.workers);
        for_each_tile(pixels, TILE, |tile| workers.with(|w| self.branch_tile(xs, branch, tile, reduced, w)));
    }

    fn save(&self, x: &[f32], pixels: &[u32], s: &mut KernelScratch) {
        save_pixels(x, self.shape.pixels(), pixels, &mut s.saved);
    }

    fn restore(&self, x: &mut [f32], pixels: &[u32], s: &mut KernelScratch) {
        restore_pixels(x, self.shape.pixels(), pixels, &s.saved);
    }
}

/// A gate's logits: one output channel, a plain multiply-add over the input planes (a GEMM
/// with one row would waste most of its tile). Shared by every CPU family (the gate stays f32).
/// Pixel ranges run in parallel on the current pool; the loop is built for AVX2 where the CPU
/// has it. Every build and split gives the same bits (a multiply then an add per plane, in
/// plane order: no FMA), so masks do not depend on the machine or the thread count.
pub fn gate_scores(x: &[f32], weights: &[f32], bias: f32, scores: &mut [f32]) {
    gate_scores_with(isa::best(), x, weights, bias, scores)
}

/// [`gate_scores`] on the build of `isa` (which the CPU must support).
pub(crate) fn gate_scores_with(isa: &CpuIsa, x: &[f32], weights: &[f32], bias: f32, scores: &mut [f32]) {
    use rayon::prelude::*;
    isa.assert_supported();
    let n = scores.len();
    let threads = rayon::current_num_threads();
    let chunk = n.div_ceil(threads.max(1)).max(1024);
    // SAFETY (both calls): the build is supported (checked above).
    if threads > 1 && n > chunk {
        scores
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, part)| unsafe { (isa.gate)(x, n, i * chunk, weights, bias, part) });
    } else {
        unsafe { (isa.gate)(x, n, 0, weights, bias, scores) };
    }
}

/// [`gate_scores`] at pixels `from..from + scores.len()` of planes of `n`. One per ISA build.
pub(crate) type GateFn = unsafe fn(&[f32], usize, usize, &[f32], f32, &mut [f32]);

isa_builds!(gate_range_body => gate_range_portable, gate_range_avx2, gate_range_avx512(
    x: &[f32], n: usize, from: usize, weights: &[f32], bias: f32, scores: &mut [f32]
));

#[inline(always)]
fn gate_range_body(x: &[f32], n: usize, from: usize, weights: &[f32], bias: f32, scores: &mut [f32]) {
    let len = scores.len();
    scores.fill(bias);
    for (plane, &wc) in x.chunks_exact(n).zip(weights) {
        scores.iter_mut().zip(&plane[from..from + len]).for_each(|(s, &v)| *s += wc * v);
    }
}

/// Copies the planar `x` (planes of `n`) at `pixels` into `saved` (`C × pixels`).
pub fn save_pixels(x: &[f32], n: usize, pixels: &[u32], saved: &mut [f32]) {
    let k = pixels.len();
    for (saved, plane) in saved.chunks_exact_mut(k.max(1)).zip(x.chunks_exact(n)) {
        saved.iter_mut().zip(pixels).for_each(|(v, &p)| *v = plane[p as usize]);
    }
}

/// Writes back what [`save_pixels`] kept, bit for bit.
pub fn restore_pixels(x: &mut [f32], n: usize, pixels: &[u32], saved: &[f32]) {
    let k = pixels.len();
    for (saved, plane) in saved.chunks_exact(k.max(1)).zip(x.chunks_exact_mut(n)) {
        saved.iter().zip(pixels).for_each(|(&v, &p)| plane[p as usize] = v);
    }
}
