//! int8 CPU arithmetic of a gated residual block of a QDQ model ([`GatedBlockKernel`]); the PAG
//! policy that drives it is [`crate::pag::gated_block::run`], the same as for f32.
//!
//! The block input and output stay f32 (the residual stream of a QDQ model is float); the gate
//! and a MultiPool's selector stay f32 (the contract keeps them float so that masks match the
//! float model). Inside the branch everything is int8: the block input is quantized (over the
//! whole grid when the reduce conv reads at least half of it, else at its pixels), each conv is a
//! u8 × s8 → i32 product ([`I8Kernel`]) followed by the requantization of [`QConv`], and the
//! expand conv's output is dequantized and added to the input.
//!
//! Every activation is held K4-interleaved (4 channels of a pixel in one u32, pixels
//! contiguous per group of 4 channels): the quantized input and the reduce output over the whole
//! grid (the latter plus one column of zero points that padding taps read), a MultiPool block's
//! spatial output over the grid (each pixel written by the branch it chose; one expand conv over
//! all of them in `finish`), and per tile the im2col of a spatial conv (gathered a u32 at a time
//! through a per-branch tap table) and a plain block's spatial output. The kernels take pixels as
//! vector lanes and return channel-major results, which the block's planar input and output
//! want as they are. Channel counts are padded to multiples of 4 with zero weights.
use super::gemm::{I8GemmScratch, I8Kernel, PackedWeights};
use super::quant::{QConv, QConvWeights};
use super::simd::{self, Columns, I8Simd};
use super::{bytes, grow, pack_padded, up4};
use crate::error::{PagError, Result};
use crate::kernels::cpu_f32::parallel::{for_each_tile, PerWorker, SharedMut};
use crate::kernels::cpu_f32::{isa, CpuIsa};
use crate::kernels::GatedBlockKernel;
use crate::mode::ComputeMode;
use crate::pag::gated_block::{self, BlockShape, BlockStats, BranchShape, PolicyScratch};
use crate::pag::ActiveSet;

/// Pixels per GEMM tile (at most).
const TILE: usize = 256;

/// A quantized plain gated block: float gate, quantized reduce (1×1, ReLU), spatial (k×k,
/// dilation `d`, ReLU) and expand (1×1) convs.
#[derive(Debug, Clone, Copy)]
pub struct QGatedBlockWeights<'a> {
    pub channels: usize,
    pub mid: usize,
    pub kernel: usize,
    pub dilation: usize,
    /// `[1, C, 1, 1]`, f32.
    pub gate_weights: &'a [f32],
    /// `[1]`, f32.
    pub gate_bias: &'a [f32],
    pub reduce: QConvWeights<'a>,
    /// Ignored by [`GatedBlockI8::with_multipool`].
    pub spatial: QConvWeights<'a>,
    pub expand: QConvWeights<'a>,
}

/// One branch of a quantized gated MultiPool block: a 3×3 conv of dilation `d ≥ 1`, or a copy
/// (`dilation == 0`, `conv` None).
#[derive(Debug, Clone, Copy)]
pub struct QBranchWeights<'a> {
    pub dilation: usize,
    pub conv: Option<QConvWeights<'a>>,
    pub relu: bool,
}

/// A quantized MultiPool stage: the f32 selector (`[P, mid, 1, 1]` + `[P]`) and the branches.
#[derive(Debug, Clone, Copy)]
pub struct QMultiPoolWeights<'a> {
    pub selector_weights: &'a [f32],
    pub selector_bias: &'a [f32],
    pub branches: &'a [QBranchWeights<'a>],
}

#[derive(Debug, Clone)]
struct Conv {
    q: QConv,
    packed: PackedWeights,
}

/// A gated residual block of a QDQ model on a fixed `h × w` grid, int8 on the CPU.
#[derive(Debug, Clone)]
pub struct GatedBlockI8 {
    shape: BlockShape,
    kernel: I8Kernel,
    isa: &'static CpuIsa,
    gate_weights: Vec<f32>,
    gate_bias: f32,
    reduce: Conv,
    /// `[P][mid]` (MultiPool blocks only), reading the dequantized reduce output.
    selector_weights: Vec<f32>,
    selector_bias: Vec<f32>,
    /// `None`: a copy.
    branches: Vec<Option<Conv>>,
    /// `0..C/4` (rounded up): the groups of 4 input planes, quantized in parallel.
    groups: Vec<u32>,
    /// Per branch, `[tap][pixel]`: the grid index each tap of a conv branch reads (`h·w`: the
    /// padding column), fixed by the geometry (empty for a copy). A tile of consecutive pixels
    /// reads its rows in place.
    taps_index: Vec<Vec<u32>>,
    expand: Conv,
}

/// One worker's buffers for one pixel tile (`t ≤ TILE` pixels).
#[derive(Default)]
struct TileScratch {
    /// The reduce conv's quantized input, planar `C × t`.
    planar: Vec<u8>,
    /// K4 tiles: the reduce input (`C/4 × t`), a spatial conv's im2col (`taps · mid/4 × t`) and
    /// its output (`mid/4 × t`).
    input: Vec<u32>,
    im2col: Vec<u32>,
    spatial: Vec<u32>,
    /// Per tap and pixel, the grid index a spatial conv reads (`h·w`: the padding column).
    index: Vec<u32>,
    gemm: I8GemmScratch,
}

impl TileScratch {
    fn allocated_bytes(&self) -> usize {
        4 * (self.input.capacity() + self.im2col.capacity() + self.spatial.capacity())
            + 4 * self.index.capacity()
            + self.planar.capacity()
            + self.gemm.allocated_bytes()
    }
}

/// Working memory of a [`GatedBlockI8`] (policy and arithmetic); grows on the first run and
/// never after.
#[derive(Default)]
pub struct GatedBlockI8Scratch {
    pub policy: PolicyScratch,
    kernel: KernelScratch,
}

impl std::fmt::Debug for GatedBlockI8Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedBlockI8Scratch").field("bytes", &self.allocated_bytes()).finish()
    }
}

/// The arithmetic's buffers.
#[derive(Default)]
pub struct KernelScratch {
    /// The reduce conv's output over the grid, K4 (`mid/4 × (h·w + 1)` quads; valid on the
    /// footprint), the last column the zero point that padding reads.
    reduced: Vec<u32>,
    /// A MultiPool block's spatial output over the grid, K4 like `reduced` (each pixel written
    /// by the one branch it chose); the expand conv reads it once, in `finish`.
    spatial: Vec<u32>,
    /// Saved passthrough values, `C × saved pixels` (dense-branch path).
    saved: Vec<f32>,
    /// The block input quantized over the whole grid into K4 quads (`C/4 × h·w`) when the
    /// reduce conv reads most of it; valid for the current frame when `input_valid` (reset by
    /// the frame's gate scores).
    input_grid: Vec<u32>,
    input_valid: bool,
    workers: PerWorker<TileScratch>,
}

impl GatedBlockI8Scratch {
    /// The active set of the last run.
    pub fn active(&self) -> &ActiveSet {
        self.policy.active()
    }

    /// Bytes currently reserved; stops changing once warmed up.
    pub fn allocated_bytes(&self) -> usize {
        let k = &self.kernel;
        self.policy.allocated_bytes()
            + 4 * (k.reduced.capacity() + k.spatial.capacity() + k.saved.capacity() + k.input_grid.capacity())
            + k.workers.allocated_bytes(TileScratch::allocated_bytes)
    }
}

/// A conv's weights packed for `kernel` (see [`pack_padded`]).
fn pack(q: QConv, taps: usize, kernel: &I8Kernel) -> Result<Conv> {
    let packed = pack_padded(&q, taps, kernel)?;
    Ok(Conv { q, packed })
}

fn mismatch(what: &str, a: &super::QParams, b: &super::QParams) -> PagError {
    PagError::Shape {
        what: format!("quantized gated block: {what}"),
        expected: format!("the same quantization ({a:?})"),
        got: format!("{b:?}"),
    }
}

impl GatedBlockI8 {
    /// A plain quantized gated bottleneck for an `input` grid `(h, w)`. The spatial conv must
    /// read the reduce conv's output quantization and the expand conv the spatial conv's.
    pub fn new(weights: &QGatedBlockWeights<'_>, input: (usize, usize)) -> Result<Self> {
        let QGatedBlockWeights { channels: c, mid, kernel: k, dilation: d, .. } = *weights;
        if k % 2 == 0 || d == 0 {
            return Err(PagError::Shape {
                what: "quantized gated block".into(),
                expected: "an odd kernel and dilation ≥ 1".into(),
                got: format!("kernel {k}, dilation {d}"),
            });
        }
        let shape = BlockShape::plain(c, mid, input, k, d)?;
        let spatial = QConv::new(&weights.spatial, mid, mid, k * k, true, "spatial conv")?;
        Self::build(shape, weights, vec![Some(spatial)], &[], &[])
    }

    /// A quantized gated MultiPool block: every branch reads and writes the reduce conv's output
    /// quantization (so a copy and the one-hot sum are exact), which the expand conv reads.
    pub fn with_multipool(
        weights: &QGatedBlockWeights<'_>,
        pool: &QMultiPoolWeights<'_>,
        input: (usize, usize),
    ) -> Result<Self> {
        let (c, mid, p) = (weights.channels, weights.mid, pool.branches.len());
        if p < 2 {
            return Err(PagError::Shape {
                what: "quantized gated MultiPool block".into(),
                expected: "at least 2 branches".into(),
                got: format!("{p}"),
            });
        }
        let mut shapes = Vec::with_capacity(p);
        let mut branches = Vec::with_capacity(p);
        for (i, b) in pool.branches.iter().enumerate() {
            match (b.dilation, &b.conv) {
                (0, None) => {
                    shapes.push(BranchShape::Copy);
                    branches.push(None);
                }
                (d, Some(conv)) if d > 0 => {
                    let geometry = crate::pag::ConvGeometry::new(input, (3, 3), 1, d, [d; 4])?;
                    shapes.push(BranchShape::Conv { geometry, relu: b.relu });
                    let what = format!("MultiPool branch {i}");
                    branches.push(Some(QConv::new(conv, mid, mid, 9, b.relu, &what)?));
                }
                _ => {
                    return Err(PagError::Shape {
                        what: format!("quantized MultiPool branch {i}"),
                        expected: "a copy (dilation 0, no conv) or a conv of dilation ≥ 1".into(),
                        got: format!("dilation {}, conv {}", b.dilation, b.conv.is_some()),
                    })
                }
            }
        }
        let shape = BlockShape::new(c, mid, input, shapes)?;
        let len = |what: &str, got: usize, want: usize| {
            if got == want {
                Ok(())
            } else {
                Err(PagError::Shape { what: what.into(), expected: format!("{want}"), got: format!("{got}") })
            }
        };
        len("MultiPool selector weights", pool.selector_weights.len(), p * mid)?;
        len("MultiPool selector bias", pool.selector_bias.len(), p)?;
        Self::build(shape, weights, branches, pool.selector_weights, pool.selector_bias)
    }

    fn build(
        shape: BlockShape,
        weights: &QGatedBlockWeights<'_>,
        branches: Vec<Option<QConv>>,
        selector_weights: &[f32],
        selector_bias: &[f32],
    ) -> Result<Self> {
        let (c, mid) = (shape.channels, shape.mid);
        if weights.gate_weights.len() != c || weights.gate_bias.len() != 1 {
            return Err(PagError::Shape {
                what: "quantized gated block gate".into(),
                expected: format!("{c} weights and 1 bias"),
                got: format!("{} weights and {} biases", weights.gate_weights.len(), weights.gate_bias.len()),
            });
        }
        let reduce = QConv::new(&weights.reduce, mid, c, 1, true, "reduce conv")?;
        let expand = QConv::new(&weights.expand, c, mid, 1, false, "expand conv")?;
        let multipool = branches.len() > 1;
        for b in branches.iter().flatten() {
            if b.input != reduce.output {
                return Err(mismatch("a spatial conv's input vs the reduce output", &reduce.output, &b.input));
            }
            let feeds = if multipool { &reduce.output } else { &expand.input };
            if b.output != *feeds {
                return Err(mismatch("a spatial conv's output vs what the expand conv reads", feeds, &b.output));
            }
        }
        if multipool && expand.input != reduce.output {
            return Err(mismatch("the MultiPool output vs its input", &reduce.output, &expand.input));
        }
        let taps = shape.branches.iter().map(|b| b.taps()).max().unwrap_or(1);
        let kernel = I8Kernel::best(mid.max(c), (taps * up4(mid)).max(up4(c)), TILE)?;
        let branch_taps: Vec<usize> = shape.branches.iter().map(|b| b.taps()).collect();
        let reduce = pack(reduce, 1, &kernel)?;
        let expand = pack(expand, 1, &kernel)?;
        let branches = branches
            .into_iter()
            .zip(&branch_taps)
            .map(|(b, &taps)| b.map(|q| pack(q, taps, &kernel)).transpose())
            .collect::<Result<Vec<_>>>()?;
        let taps_index = shape
            .branches
            .iter()
            .map(|b| match b {
                BranchShape::Conv { geometry, .. } => geometry.tap_table(),
                BranchShape::Copy => vec![],
            })
            .collect();
        Ok(GatedBlockI8 {
            groups: (0..up4(c) as u32 / 4).collect(),
            taps_index,
            shape,
            kernel,
            isa: isa::best(),
            gate_weights: weights.gate_weights.to_vec(),
            gate_bias: weights.gate_bias[0],
            reduce,
            selector_weights: selector_weights.to_vec(),
            selector_bias: selector_bias.to_vec(),
            branches,
            expand,
        })
    }

    /// The same block on another int8 kernel (tests run every one).
    pub fn with_kernel(mut self, kernel: I8Kernel) -> Result<Self> {
        self.reduce = pack(self.reduce.q.clone(), 1, &kernel)?;
        self.expand = pack(self.expand.q.clone(), 1, &kernel)?;
        for (b, shape) in self.branches.iter_mut().zip(&self.shape.branches) {
            if let Some(conv) = b {
                *conv = pack(conv.q.clone(), shape.taps(), &kernel)?;
            }
        }
        self.kernel = kernel;
        Ok(self)
    }

    /// The same block with its element-wise loops built for `isa` (tests run every one).
    pub fn with_isa(mut self, isa: &'static CpuIsa) -> Self {
        isa.assert_supported();
        self.isa = isa;
        self
    }

    fn simd(&self) -> &'static I8Simd {
        simd::for_isa(self.isa)
    }

    /// The int8 kernel the block runs on.
    pub fn kernel(&self) -> &I8Kernel {
        &self.kernel
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
    /// Sizes and branches.
    pub fn block_shape(&self) -> &BlockShape {
        &self.shape
    }

    /// Runs the block in place: `x` (`C × h × w`, f32) becomes the block output; inactive
    /// pixels are not written. Errors, touching nothing, when `x.len() != C · h · w`.
    pub fn run_in_place(
        &self,
        x: &mut [f32],
        mode: ComputeMode,
        scratch: &mut GatedBlockI8Scratch,
    ) -> Result<BlockStats> {
        let want = self.shape.channels * self.shape.pixels();
        if x.len() != want {
            return Err(PagError::Shape {
                what: "quantized gated block input".into(),
                expected: format!("{want} floats"),
                got: format!("{} floats", x.len()),
            });
        }
        self.warm(&mut scratch.kernel);
        gated_block::run(self, x, mode, &mut scratch.policy, &mut scratch.kernel)
    }

    fn warm(&self, s: &mut KernelScratch) {
        let (c, mid, n) = (self.shape.channels, self.shape.mid, self.shape.pixels());
        let (c4, m4) = (up4(c) / 4, up4(mid) / 4);
        grow(&mut s.reduced, m4 * (n + 1));
        grow(&mut s.input_grid, c4 * n);
        if self.branches.len() > 1 {
            grow(&mut s.spatial, m4 * (n + 1));
        }
        // The padding column: the reduce output's zero point in every real channel.
        let zp = self.reduce.q.output.zero_point;
        for q in 0..m4 {
            let quad: [u8; 4] = std::array::from_fn(|r| if 4 * q + r < mid { zp } else { 0 });
            s.reduced[q * (n + 1) + n] = u32::from_le_bytes(quad);
        }
        grow(&mut s.saved, c * (n / gated_block::DENSE_BRANCH_DENOMINATOR + 1));
        s.workers.ensure();
        let tile = TILE.min(n);
        let taps = self.shape.branches.iter().map(|b| b.taps()).max().unwrap_or(0).max(1);
        for w in s.workers.each_mut() {
            grow(&mut w.planar, c * tile);
            grow(&mut w.input, c4 * tile);
            grow(&mut w.im2col, taps * m4 * tile);
            grow(&mut w.spatial, m4 * tile);
            grow(&mut w.index, taps * tile);
            w.gemm.reserve(&self.kernel, c.max(mid), (taps * m4 * 4).max(c4 * 4), tile);
        }
    }

    /// Quantizes one group of 4 input planes over the whole grid into the K4 input grid.
    fn quantize_group(&self, x: &[f32], g: usize, grid: SharedMut<u32>) {
        let (c, n) = (self.shape.channels, self.shape.pixels());
        let q = &self.reduce.q;
        let planes = (4 * g..(4 * g + 4).min(c)).len();
        // SAFETY: row g of the grid (C/4 × n) is written by this group only.
        let out = unsafe { std::slice::from_raw_parts_mut(grid.0.add(g * n), n) };
        let src = &x[4 * g * n..][..planes * n];
        // SAFETY: this CPU supports the block's ISA (checked when set).
        unsafe { (self.simd().quantize_quads)(src, planes, n, q.input.scale, q.input.zero_point as f32, out) };
    }

    /// The reduce conv at one tile's pixels: the input quantized there (or read from the frame's
    /// input grid), multiplied, requantized into the grid's K4 reduce output.
    fn reduce_tile(
        &self,
        x: &[f32],
        tile: &[u32],
        input_grid: Option<&[u32]>,
        reduced: SharedMut<u32>,
        w: &mut TileScratch,
    ) {
        let (c, n) = (self.shape.channels, self.shape.pixels());
        let t = tile.len();
        let (q, simd) = (&self.reduce.q, self.simd());
        let (scale, zp) = (q.input.scale, q.input.zero_point as f32);
        let first = tile[0] as usize;
        let consecutive = tile[t - 1] as usize - first == t - 1;
        let acc = match input_grid {
            // Consecutive pixels: the grid's columns are the tile, read in place.
            Some(grid) if consecutive => {
                self.kernel.conv_k4(&self.reduce.packed, bytes(&grid[first..]), n, t, &mut w.gemm)
            }
            Some(grid) => {
                let input = &mut w.input[..up4(c) / 4 * t];
                for (g, row) in input.chunks_exact_mut(t).enumerate() {
                    // SAFETY: tile pixels are < n; the grid has C/4 rows of n quads.
                    unsafe { (simd.gather)(grid, g * n, tile, row) };
                }
                self.kernel.conv_k4(&self.reduce.packed, bytes(input), t, t, &mut w.gemm)
            }
            None => {
                let planar = &mut w.planar[..c * t];
                for (plane, col) in x.chunks_exact(n).zip(planar.chunks_exact_mut(t)) {
                    // SAFETY (all simd calls): this CPU supports the block's ISA (checked when
                    // set); tile pixels are < n.
                    if consecutive {
                        unsafe { (simd.quantize)(&plane[first..first + t], scale, zp, col) };
                    } else {
                        unsafe { (simd.quantize_at)(plane, tile, scale, zp, col) };
                    }
                }
                let input = &mut w.input[..up4(c) / 4 * t];
                unsafe { (simd.interleave)(planar, c, t, input, t) };
                self.kernel.conv_k4(&self.reduce.packed, bytes(input), t, t, &mut w.gemm)
            }
        };
        let zp_out = q.output.zero_point as f32; // and the ReLU's clamp
        let columns = if consecutive { Columns::From(first) } else { Columns::At(tile) };
        let len = up4(self.shape.mid) / 4 * (n + 1);
        // SAFETY: the grid's reduce output; this tile writes only its own pixels' columns.
        let dst = unsafe { std::slice::from_raw_parts_mut(reduced.0, len) };
        unsafe { (simd.requantize_quads)(acc, t, &q.offset, &q.multiplier, zp_out, zp_out, dst, n + 1, columns) };
    }

    /// Branch `b` (conv or copy) at one tile's pixels; then, for a plain block, the expand conv
    /// there, added to `x`. A MultiPool block's branches write their outputs into `grid` (the
    /// block's spatial output over the grid) and leave the expand conv to `finish`.
    fn branch_tile(
        &self,
        x: SharedMut<f32>,
        b: usize,
        tile: &[u32],
        reduced: &[u32],
        grid: SharedMut<u32>,
        w: &mut TileScratch,
    ) {
        let (mid, h, wd) = (self.shape.mid, self.shape.height, self.shape.width);
        let (n, m4) = (h * wd, up4(mid) / 4);
        let t = tile.len();
        let simd = self.simd();
        let multipool = self.branches.len() > 1;
        // SAFETY: a MultiPool block's spatial grid (m4 columns of n + 1 quads); each tile writes
        // only its own pixels' quads.
        let grid = multipool.then(|| unsafe { std::slice::from_raw_parts_mut(grid.0, m4 * (n + 1)) });
        let spatial = &mut w.spatial[..m4 * t];
        match (&self.branches[b], &self.shape.branches[b]) {
            (Some(conv), BranchShape::Conv { geometry, .. }) => {
                let taps = geometry.taps();
                let table = &self.taps_index[b];
                let first = tile[0] as usize;
                let consecutive = tile[t - 1] as usize - first == t - 1;
                if !consecutive {
                    let index = &mut w.index[..taps * t];
                    for (tap, row) in index.chunks_exact_mut(t).enumerate() {
                        // SAFETY: tile pixels are < n; the table has taps rows of n.
                        unsafe { (simd.gather)(table, tap * n, tile, row) };
                    }
                }
                let im2col = &mut w.im2col[..taps * m4 * t];
                for (tap, rows) in im2col.chunks_exact_mut(m4 * t).enumerate() {
                    for (qd, row) in rows.chunks_exact_mut(t).enumerate() {
                        // SAFETY: indices are ≤ n and the grid has m4 columns of n + 1 quads.
                        let index = if consecutive { &table[tap * n + first..][..t] } else { &w.index[tap * t..][..t] };
                        unsafe { (simd.gather)(reduced, qd * (n + 1), index, row) };
                    }
                }
                let acc = self.kernel.conv_k4(&conv.packed, bytes(im2col), t, t, &mut w.gemm);
                let q = &conv.q;
                let zp = q.output.zero_point as f32;
                let lo = if q.relu { zp } else { 0.0 };
                let (dst, ld, columns) = match grid {
                    Some(g) => (g, n + 1, if consecutive { Columns::From(first) } else { Columns::At(tile) }),
                    None => (&mut *spatial, t, Columns::From(0)),
                };
                unsafe { (simd.requantize_quads)(acc, t, &q.offset, &q.multiplier, zp, lo, dst, ld, columns) };
            }
            _ => {
                // A copy: the reduce output at the tile's pixels.
                match grid {
                    Some(g) => {
                        for qd in 0..m4 {
                            let (src, dst) = (&reduced[qd * (n + 1)..][..n], &mut g[qd * (n + 1)..][..n]);
                            tile.iter().for_each(|&p| dst[p as usize] = src[p as usize]);
                        }
                    }
                    None => {
                        for (qd, row) in spatial.chunks_exact_mut(t).enumerate() {
                            // SAFETY: tile pixels are < n; the grid has m4 columns of n + 1 quads.
                            unsafe { (simd.gather)(reduced, qd * (n + 1), tile, row) };
                        }
                    }
                }
            }
        }
        if !multipool {
            self.expand_tile(x, tile, spatial, t, &mut w.gemm);
        }
    }

    /// The expand conv at one tile's pixels from their K4 spatial output (`spatial`, rows of
    /// `ld`), dequantized and added to `x`.
    fn expand_tile(&self, x: SharedMut<f32>, tile: &[u32], spatial: &[u32], ld: usize, gemm: &mut I8GemmScratch) {
        let (c, n, t) = (self.shape.channels, self.shape.pixels(), tile.len());
        let simd = self.simd();
        let acc = self.kernel.conv_k4(&self.expand.packed, bytes(spatial), ld, t, gemm);
        let q = &self.expand.q;
        let (zp, scale) = (q.output.zero_point as f32, q.output.scale);
        let first = tile[0] as usize;
        let consecutive = tile[t - 1] as usize - first == t - 1;
        for (o, a) in acc.chunks_exact(t).enumerate().take(c) {
            let (offset, mult) = (q.offset[o], q.multiplier[o]);
            if consecutive {
                // SAFETY: pixels first..first+t of plane o of x; no other tile writes them.
                let dst = unsafe { std::slice::from_raw_parts_mut(x.0.add(o * n + first), t) };
                unsafe { (simd.requantize_add)(a, offset, mult, zp, 0.0, scale, dst) };
            } else {
                // SAFETY: plane o of x; pixels < n, distinct, written by no other tile.
                let plane = unsafe { std::slice::from_raw_parts_mut(x.0.add(o * n), n) };
                unsafe { (simd.requantize_add_at)(a, offset, mult, zp, 0.0, scale, plane, tile) };
            }
        }
    }

    /// A MultiPool block's expand conv at one tile of its branch pixels, from the grid.
    fn finish_tile(&self, x: SharedMut<f32>, tile: &[u32], grid: &[u32], w: &mut TileScratch) {
        let (n, m4, t) = (self.shape.pixels(), up4(self.shape.mid) / 4, tile.len());
        let first = tile[0] as usize;
        if tile[t - 1] as usize - first == t - 1 {
            // Consecutive pixels: the grid's columns are the tile, read in place.
            return self.expand_tile(x, tile, &grid[first..], n + 1, &mut w.gemm);
        }
        let spatial = &mut w.spatial[..m4 * t];
        for (qd, row) in spatial.chunks_exact_mut(t).enumerate() {
            // SAFETY: tile pixels are < n; the grid has m4 columns of n + 1 quads.
            unsafe { (self.simd().gather)(grid, qd * (n + 1), tile, row) };
        }
        self.expand_tile(x, tile, spatial, t, &mut w.gemm);
    }
}

impl GatedBlockKernel for GatedBlockI8 {
    type Act = [f32];
    type Scratch = KernelScratch;

    fn shape(&self) -> &BlockShape {
        &self.shape
    }

    fn gate_scores(&self, x: &[f32], scores: &mut [f32], s: &mut KernelScratch) {
        // A new frame: its input is quantized afresh.
        s.input_valid = false;
        crate::kernels::cpu_f32::gate_scores(x, &self.gate_weights, self.gate_bias, scores);
    }

    fn reduce(&self, x: &[f32], pixels: &ActiveSet, s: &mut KernelScratch) {
        let n = self.shape.pixels();
        // When the reduce reads most of the grid, quantize the whole input once (contiguous,
        // in parallel by groups of 4 planes) and read it as K4 quads, rather than gathering
        // floats plane by plane at scattered pixels.
        if !s.input_valid && 2 * pixels.len() >= n {
            let grid = SharedMut(s.input_grid.as_mut_ptr());
            for_each_tile(&self.groups, 1, |groups| {
                groups.iter().for_each(|&g| self.quantize_group(x, g as usize, grid))
            });
            s.input_valid = true;
        }
        let reduced = SharedMut(s.reduced.as_mut_ptr());
        let grid = s.input_valid.then_some(&s.input_grid[..]);
        let workers = &s.workers;
        for_each_tile(pixels.indices(), TILE, |tile| workers.with(|w| self.reduce_tile(x, tile, grid, reduced, w)));
    }

    fn selector_scores(&self, pixels: &ActiveSet, scores: &mut [f32], s: &mut KernelScratch) {
        let (mid, n) = (self.shape.mid, self.shape.pixels());
        let q = self.reduce.q.output;
        let (w, b) = (&self.selector_weights, &self.selector_bias);
        let dq = (q.zero_point as f32, q.scale);
        // SAFETY: this CPU supports the block's ISA; active pixels are < n.
        unsafe { (self.simd().selector)(&s.reduced, n + 1, pixels.indices(), mid, dq, w, b, scores, n) };
    }

    fn branch(&self, x: &mut [f32], branch: usize, pixels: &[u32], s: &mut KernelScratch) {
        let xs = SharedMut(x.as_mut_ptr());
        let grid = SharedMut(s.spatial.as_mut_ptr());
        let (reduced, workers) = (&s.reduced[..], &s.workers);
        for_each_tile(pixels, TILE, |tile| workers.with(|w| self.branch_tile(xs, branch, tile, reduced, grid, w)));
    }

    fn finish(&self, x: &mut [f32], pixels: &[u32], s: &mut KernelScratch) {
        if self.branches.len() < 2 || pixels.is_empty() {
            return;
        }
        let xs = SharedMut(x.as_mut_ptr());
        let (grid, workers) = (&s.spatial[..], &s.workers);
        for_each_tile(pixels, TILE, |tile| workers.with(|w| self.finish_tile(xs, tile, grid, w)));
    }

    fn save(&self, x: &[f32], pixels: &[u32], s: &mut KernelScratch) {
        crate::kernels::cpu_f32::save_pixels(x, self.shape.pixels(), pixels, &mut s.saved);
    }

    fn restore(&self, x: &mut [f32], pixels: &[u32], s: &mut KernelScratch) {
        crate::kernels::cpu_f32::restore_pixels(x, self.shape.pixels(), pixels, &s.saved);
    }
}
