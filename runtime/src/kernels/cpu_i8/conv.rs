//! A dense quantized convolution of a QDQ model, f32 in and out: `DequantizeLinear ∘
//! QuantizeLinear ∘ [Relu] ∘ Conv ∘ DequantizeLinear ∘ QuantizeLinear` in one pass — the
//! ungated convs (stem, down-sampling, lateral) that tract would run in f32 with its slow
//! element-wise Q/DQ round trips around them.
//!
//! The input is quantized straight into a K4 grid, 4 planes a pass (with a column of zero
//! points for padding taps); each tile of output pixels gathers its im2col from the grid (a
//! pointwise, stride-1 conv reads the grid in place), multiplies on the block's [`I8Kernel`],
//! and requantizes and dequantizes straight into the output planes.
use super::gemm::{I8GemmScratch, I8Kernel, PackedWeights};
use super::quant::{QConv, QConvWeights};
use super::simd::{self, I8Simd};
use super::{bytes, grow, pack_padded, up4};
use crate::error::{PagError, Result};
use crate::kernels::cpu_f32::parallel::{for_each_tile, PerWorker, SharedMut};
use crate::kernels::cpu_f32::{isa, CpuIsa};
use crate::pag::ConvGeometry;

const TILE: usize = 256;

/// A quantized dense convolution `[1, C, h, w] → [1, O, oh, ow]` (groups 1).
#[derive(Debug, Clone)]
pub struct QConv2d {
    geometry: ConvGeometry,
    channels: usize,
    q: QConv,
    packed: PackedWeights,
    kernel: I8Kernel,
    isa: &'static CpuIsa,
    /// `0..oh·ow`, the output pixels the tiles split.
    pixels: Vec<u32>,
    /// `[tap][output pixel]`: the input pixel each tap reads (`h·w`: the padding column), fixed
    /// by the geometry, so built once.
    index: Vec<u32>,
}

#[derive(Default)]
struct TileScratch {
    im2col: Vec<u32>,
    gemm: I8GemmScratch,
}

/// Working memory of a [`QConv2d`]; grows on the first run and never after.
#[derive(Default)]
pub struct QConv2dScratch {
    grid: Vec<u32>,
    workers: PerWorker<TileScratch>,
}

impl std::fmt::Debug for QConv2dScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QConv2dScratch").field("bytes", &self.allocated_bytes()).finish()
    }
}

impl QConv2dScratch {
    /// Bytes currently reserved.
    pub fn allocated_bytes(&self) -> usize {
        4 * self.grid.capacity() + self.workers.allocated_bytes(|w| 4 * w.im2col.capacity() + w.gemm.allocated_bytes())
    }
}

impl QConv2d {
    /// From QDQ weights `[O, C, kh, kw]` (`dims`) on `geometry`, with a ReLU fused or not.
    pub fn new(weights: &QConvWeights<'_>, dims: [usize; 4], geometry: ConvGeometry, relu: bool) -> Result<Self> {
        let [o, c, kh, kw] = dims;
        if (kh, kw) != (geometry.kernel_height(), geometry.kernel_width()) {
            return Err(PagError::Shape {
                what: "quantized conv kernel".into(),
                expected: format!("{}×{}", geometry.kernel_height(), geometry.kernel_width()),
                got: format!("{kh}×{kw}"),
            });
        }
        let taps = kh * kw;
        let q = QConv::new(weights, o, c, taps, relu, "quantized conv")?;
        let kernel = I8Kernel::best(o, taps * up4(c), TILE)?;
        let packed = pack_padded(&q, taps, &kernel)?;
        let on = geometry.out_height() * geometry.out_width();
        let pixels = (0..on as u32).collect();
        let index = geometry.tap_table();
        Ok(QConv2d { geometry, channels: c, q, packed, kernel, isa: isa::best(), pixels, index })
    }

    /// The same conv on another int8 kernel and element-wise build (tests run every one).
    pub fn with_kernel(mut self, kernel: I8Kernel, isa: &'static CpuIsa) -> Result<Self> {
        self.packed = pack_padded(&self.q, self.geometry.taps(), &kernel)?;
        self.kernel = kernel;
        self.isa = isa;
        Ok(self)
    }

    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }
    pub fn in_channels(&self) -> usize {
        self.channels
    }
    pub fn out_channels(&self) -> usize {
        self.q.out
    }
    pub fn relu(&self) -> bool {
        self.q.relu
    }

    /// `output` (`O × oh × ow`) = the quantized conv of `input` (`C × h × w`), dequantized.
    pub fn run(&self, input: &[f32], output: &mut [f32], s: &mut QConv2dScratch) -> Result<()> {
        let g = &self.geometry;
        let (c, n) = (self.channels, g.in_height() * g.in_width());
        let on = g.out_height() * g.out_width();
        if input.len() != c * n || output.len() != self.q.out * on {
            return Err(PagError::Shape {
                what: "quantized conv input/output".into(),
                expected: format!("{} and {} floats", c * n, self.q.out * on),
                got: format!("{} and {}", input.len(), output.len()),
            });
        }
        let simd = simd::for_isa(self.isa);
        let c4 = up4(c) / 4;
        let taps = g.taps();
        grow(&mut s.grid, c4 * (n + 1));
        s.workers.ensure();
        let tile = TILE.min(on);
        for w in s.workers.each_mut() {
            grow(&mut w.im2col, taps * c4 * tile);
            w.gemm.reserve(&self.kernel, self.q.out, taps * c4 * 4, tile);
        }
        let (scale, zp) = (self.q.input.scale, self.q.input.zero_point);
        for (q, planes) in input.chunks(4 * n).enumerate() {
            // SAFETY: this CPU supports the conv's ISA (isa::best or checked).
            unsafe { (simd.quantize_quads)(planes, planes.len() / n, n, scale, zp as f32, &mut s.grid[q * (n + 1)..]) };
        }
        for q in 0..c4 {
            let quad: [u8; 4] = std::array::from_fn(|r| if 4 * q + r < c { zp } else { 0 });
            s.grid[q * (n + 1) + n] = u32::from_le_bytes(quad);
        }
        // Every output pixel is in one tile and each tile stores all its channels.
        let out = SharedMut(output.as_mut_ptr());
        let (grid, workers) = (&s.grid[..], &s.workers);
        for_each_tile(&self.pixels, TILE, |tile| workers.with(|w| self.tile(grid, tile, out, w, simd)));
        Ok(())
    }

    fn tile(&self, grid: &[u32], tile: &[u32], out: SharedMut<f32>, w: &mut TileScratch, simd: &I8Simd) {
        let g = &self.geometry;
        let n = g.in_height() * g.in_width();
        let on = g.out_height() * g.out_width();
        let (c4, taps, t) = (up4(self.channels) / 4, g.taps(), tile.len());
        let first = tile[0] as usize;
        let direct = g.is_pointwise() && g.stride() == 1 && g.padding() == [0; 4];
        let acc = if direct {
            // The grid's columns first..first+t are this tile's im2col already.
            self.kernel.conv_k4(&self.packed, bytes(&grid[first..]), n + 1, t, &mut w.gemm)
        } else {
            let im2col = &mut w.im2col[..taps * c4 * t];
            for (tap, rows) in im2col.chunks_exact_mut(c4 * t).enumerate() {
                for (q, row) in rows.chunks_exact_mut(t).enumerate() {
                    // SAFETY: indices are ≤ n; the grid has c4 columns of n + 1 quads.
                    unsafe { (simd.gather)(grid, q * (n + 1), &self.index[tap * on + first..][..t], row) };
                }
            }
            self.kernel.conv_k4(&self.packed, bytes(im2col), t, t, &mut w.gemm)
        };
        let q = &self.q;
        let zp = q.output.zero_point as f32;
        let lo = if q.relu { zp } else { 0.0 };
        for (o, a) in acc.chunks_exact(t).enumerate() {
            // SAFETY: output pixels first..first+t of plane o; tiles are disjoint ranges.
            let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(o * on + first), t) };
            unsafe { (simd.requantize)(a, q.offset[o], q.multiplier[o], zp, lo, q.output.scale, dst) };
        }
    }
}
