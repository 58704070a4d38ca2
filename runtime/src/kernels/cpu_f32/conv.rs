use super::gemm::{self, GemmScratch};
use super::im2col::{gather_columns, grow, Run, TapTables};
use super::isa::{self, CpuIsa};
use super::parallel::{for_each_tile, PerWorker, SharedMut};
use super::scatter::scatter_channels;
use super::strided::{self, Phases, StridedArgs};
use crate::error::{PagError, Result};
use crate::pag::{ActiveSet, ConvGeometry};

/// Target size, in floats, of one tile's im2col block (`in_channels · taps × tile`): 256 pixels
/// of a 64-channel 3×3 conv, the best of 64..512 measured on Zen 4 (1 MiB L2 per core). Larger
/// blocks push it and the GEMM's packed copy of it out of L2; smaller ones repack the
/// weights too often.
const TILE_COLUMN_FLOATS: usize = 256 * 576;
const MIN_TILE: usize = 64;
const MAX_TILE: usize = 512;
/// A 2-D convolution (f32, NCHW, batch 1, groups 1, zero padding) that computes only the output
/// pixels of an [`ActiveSet`]: im2col of the active pixels, one GEMM, then a scatter that writes
/// the active pixels and nothing else.
#[derive(Debug, Clone)]
pub struct PerforatedConv {
    geometry: ConvGeometry,
    in_channels: usize,
    out_channels: usize,
    /// `[out_channels, in_channels · taps]`, row-major: the GEMM's left operand as is.
    weights: Vec<f32>,
    bias: Vec<f32>,
    tile: usize,
    every_output: ActiveSet,
    /// For a stride-2 conv (`strided.rs`): the weights packed for its direct kernel.
    strided: Option<Vec<f32>>,
    /// Whether [`PerforatedConv::run_dense`] takes the direct kernel (where it is the faster
    /// one on `isa`, see `CpuIsa::strided_max_depth`).
    direct: bool,
    isa: &'static CpuIsa,
}

/// Working memory of [`PerforatedConv::run`]: the im2col tile, the GEMM result tile and the
/// per-pixel tables. Grows to the largest conv it has served and never shrinks, so a warmed-up
/// scratch makes `run` allocation-free.
/// One scratch can serve any number of convs, one call at a time.
#[derive(Debug, Default)]
pub struct ConvScratch {
    workers: PerWorker<TileScratch>,
    /// The phase planes of a stride-2 conv's input (`strided.rs`).
    phases: Vec<f32>,
}

/// One worker's buffers for one tile.
#[derive(Debug, Default)]
struct TileScratch {
    columns: Vec<f32>,
    result: Vec<f32>,
    tables: TapTables,
    gemm: GemmScratch,
    /// The scatter's runs of consecutive pixels.
    runs: Vec<Run>,
}

impl TileScratch {
    fn allocated_bytes(&self) -> usize {
        use std::mem::size_of;
        (self.columns.capacity() + self.result.capacity()) * size_of::<f32>()
            + self.tables.allocated_bytes()
            + self.gemm.allocated_bytes()
            + self.runs.capacity() * size_of::<Run>()
    }
}

impl ConvScratch {
    /// Bytes currently reserved; stops changing once the scratch has warmed up.
    pub fn allocated_bytes(&self) -> usize {
        self.workers.allocated_bytes(TileScratch::allocated_bytes) + self.phases.capacity() * std::mem::size_of::<f32>()
    }
}

fn shape_error(what: &str, expected: usize, got: usize, layout: String) -> PagError {
    PagError::Shape { what: what.into(), expected: format!("{expected} floats ({layout})"), got: format!("{got}") }
}

impl PerforatedConv {
    /// Builds the conv from ONNX-layout `weights` of shape `[out_channels, in_channels, kh, kw]`,
    /// an optional `bias` of `out_channels` values, `stride`, `dilation`, zero `padding`
    /// `[top, left, bottom, right]` and the `input` size `(height, width)`. Weights are copied
    /// once, here, into the layout every call uses. Errors on any size mismatch.
    pub fn new(
        weights: &[f32],
        weight_shape: [usize; 4],
        bias: Option<&[f32]>,
        stride: usize,
        dilation: usize,
        padding: [usize; 4],
        input: (usize, usize),
    ) -> Result<Self> {
        let [out_channels, in_channels, kh, kw] = weight_shape;
        let geometry = ConvGeometry::new(input, (kh, kw), stride, dilation, padding)?;
        if out_channels == 0 || in_channels == 0 {
            return Err(PagError::Shape {
                what: "conv weight shape".into(),
                expected: "≥ 1 input and output channel".into(),
                got: format!("{weight_shape:?}"),
            });
        }
        let expected = weight_shape.iter().product();
        if weights.len() != expected {
            return Err(shape_error("conv weights", expected, weights.len(), format!("{weight_shape:?}")));
        }
        let bias = match bias {
            Some(b) if b.len() != out_channels => {
                return Err(shape_error("conv bias", out_channels, b.len(), format!("[{out_channels}]")))
            }
            Some(b) => b.to_vec(),
            None => vec![0.0; out_channels],
        };
        let depth = in_channels * geometry.taps();
        let tile = (TILE_COLUMN_FLOATS / depth / 16 * 16).clamp(MIN_TILE, MAX_TILE);
        let every_output = ActiveSet::full(geometry.out_height(), geometry.out_width())?;
        let strided = strided::applies(&geometry)
            .then(|| strided::pack_weights(weights, out_channels, in_channels, geometry.taps()));
        let isa = isa::best();
        let direct = strided.is_some() && in_channels * geometry.taps() <= isa.strided_max_depth;
        Ok(PerforatedConv {
            geometry,
            in_channels,
            out_channels,
            weights: weights.to_vec(),
            bias,
            tile,
            every_output,
            strided,
            direct,
            isa,
        })
    }

    /// The same conv on the micro-kernels of `isa` (tests run every supported one).
    pub fn with_isa(mut self, isa: &'static CpuIsa) -> Self {
        isa.assert_supported();
        self.isa = isa;
        self.direct = self.strided.is_some() && self.in_channels * self.geometry.taps() <= isa.strided_max_depth;
        self
    }

    /// The same conv processing `tile` active pixels per GEMM (≥ 1); for tuning and tests.
    pub fn with_tile(mut self, tile: usize) -> Self {
        self.tile = tile.max(1);
        self
    }

    /// The conv's spatial geometry.
    pub fn geometry(&self) -> &ConvGeometry {
        &self.geometry
    }
    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }
    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }
    /// Whether [`PerforatedConv::run_dense`] runs the direct stride-2 kernel (`strided.rs`)
    /// rather than im2col + GEMM.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The same conv with its dense runs on the direct stride-2 kernel (`true`, where the
    /// geometry allows it: stride 2, no dilation, up to 3×3) or on im2col + GEMM (`false`),
    /// whichever is faster on its ISA; for tests and benchmarks that compare the two. Call after
    /// [`PerforatedConv::with_isa`].
    pub fn with_direct(mut self, direct: bool) -> Self {
        self.direct = direct && self.strided.is_some();
        self
    }

    /// Active pixels per GEMM.
    pub fn tile(&self) -> usize {
        self.tile
    }
    /// Length of the `input` slice [`PerforatedConv::run`] takes: `in_channels · ih · iw`.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.geometry.in_height() * self.geometry.in_width()
    }
    /// Length of the `output` slice [`PerforatedConv::run`] takes: `out_channels · oh · ow`.
    pub fn output_len(&self) -> usize {
        self.out_channels * self.geometry.out_height() * self.geometry.out_width()
    }

    /// Computes the output pixels listed in `active` (a set over the OUTPUT grid) into `output`
    /// (`out_channels × oh × ow`) from `input` (`in_channels × ih × iw`), bias included. Every
    /// other output value is left exactly as the caller put it (the residual passthrough).
    /// Errors, touching nothing, when a buffer length or the set's grid does not match.
    pub fn run(&self, input: &[f32], active: &ActiveSet, output: &mut [f32], scratch: &mut ConvScratch) -> Result<()> {
        self.run_with(input, active, output, scratch, false)
    }

    /// Like [`PerforatedConv::run`], but ADDS the conv (bias included) to what `output` holds at
    /// the active pixels: `output[p] += conv(input)[p]`, fused into the GEMM / scatter (a residual
    /// add without a separate pass). Other pixels are left untouched.
    pub fn run_accumulate(
        &self,
        input: &[f32],
        active: &ActiveSet,
        output: &mut [f32],
        scratch: &mut ConvScratch,
    ) -> Result<()> {
        self.run_with(input, active, output, scratch, true)
    }

    /// Errors when `input` or `output` is not this conv's length.
    fn check_buffers(&self, input: &[f32], output: &[f32]) -> Result<()> {
        if input.len() != self.input_len() {
            let layout = format!("{}×{}×{}", self.in_channels, self.geometry.in_height(), self.geometry.in_width());
            return Err(shape_error("conv input", self.input_len(), input.len(), layout));
        }
        if output.len() != self.output_len() {
            let layout = format!("{}×{}×{}", self.out_channels, self.geometry.out_height(), self.geometry.out_width());
            return Err(shape_error("conv output", self.output_len(), output.len(), layout));
        }
        Ok(())
    }

    fn run_with(
        &self,
        input: &[f32],
        active: &ActiveSet,
        output: &mut [f32],
        scratch: &mut ConvScratch,
        accumulate: bool,
    ) -> Result<()> {
        self.check_buffers(input, output)?;
        active.check_grid("active set of the conv output", self.geometry.out_height(), self.geometry.out_width())?;
        self.reserve(scratch);
        let out = SharedMut(output.as_mut_ptr());
        let workers = &scratch.workers;
        for_each_tile(active.indices(), self.tile, |tile| {
            workers.with(|w| self.run_tile(input, tile, out, w, accumulate))
        });
        Ok(())
    }

    /// Grows `scratch` to everything [`PerforatedConv::run`] of this conv can need, whatever the
    /// active set, so that no later call with this conv grows it.
    pub fn reserve(&self, scratch: &mut ConvScratch) {
        let n = self.tile.min(self.geometry.out_height() * self.geometry.out_width());
        let depth = self.in_channels * self.geometry.taps();
        scratch.workers.ensure();
        for w in scratch.workers.each_mut() {
            grow(&mut w.columns, depth * n);
            grow(&mut w.result, self.out_channels * n);
            w.tables.reserve(self.geometry.taps(), n);
            w.runs.clear(); // reserve counts from the length
            w.runs.reserve(n);
            w.gemm.reserve(self.out_channels, depth, n);
        }
        if self.direct {
            grow(&mut scratch.phases, Phases::of(&self.geometry).len(self.in_channels));
        }
    }

    /// The dense baseline: the same kernel over every output pixel (tiles are then contiguous,
    /// so im2col copies whole row segments and the GEMM writes straight into `output`).
    /// A stride-2 conv (up to 3×3, no dilation) of few input channels × taps runs as a direct
    /// conv on its input's phase planes instead (`strided.rs`).
    pub fn run_dense(&self, input: &[f32], output: &mut [f32], scratch: &mut ConvScratch) -> Result<()> {
        self.run_dense_with(input, output, scratch, false)
    }

    /// [`PerforatedConv::run_dense`] followed by a ReLU when `relu`: fused into the direct
    /// kernel's stores, a pass over the output otherwise.
    pub fn run_dense_with(
        &self,
        input: &[f32],
        output: &mut [f32],
        scratch: &mut ConvScratch,
        relu: bool,
    ) -> Result<()> {
        let (true, Some(weights)) = (self.direct, &self.strided) else {
            self.run(input, &self.every_output, output, scratch)?;
            if relu {
                output.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            return Ok(());
        };
        self.check_buffers(input, output)?;
        let layout = Phases::of(&self.geometry);
        let len = layout.len(self.in_channels);
        grow(&mut scratch.phases, len);
        let phases = &mut scratch.phases[..len];
        strided::split_phases(self.isa.strided_split, &self.geometry, self.in_channels, input, layout, phases);
        let args = StridedArgs {
            g: &self.geometry,
            layout,
            in_channels: self.in_channels,
            out_channels: self.out_channels,
            phases,
            weights,
            bias: &self.bias,
            relu,
        };
        strided::run(self.isa.strided, &args, output);
        Ok(())
    }

    /// `C = beta·C + W·B` with W the packed `out_channels × depth` weights, B `depth × n` at
    /// `b` (row stride `b_stride`) and C `out_channels × n` at `c` (row stride `c_stride`).
    ///
    /// # Safety
    /// `b` must be valid for reads and `c` for writes of every element those shapes and
    /// strides address.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    unsafe fn gemm(
        &self,
        depth: usize,
        n: usize,
        b: *const f32,
        b_stride: usize,
        beta: f32,
        c: *mut f32,
        c_stride: usize,
        scratch: &mut GemmScratch,
    ) {
        // SAFETY: the weights are `out_channels × depth` row-major (length checked in `new`); the
        // caller guarantees B and C.
        unsafe {
            gemm::sgemm_with(
                self.isa,
                (self.out_channels, depth, n),
                (self.weights.as_ptr(), depth, 1),
                (b, b_stride, 1),
                beta,
                (c, c_stride, 1),
                scratch,
            )
        }
    }

    fn run_tile(
        &self,
        input: &[f32],
        tile: &[u32],
        output: SharedMut<f32>,
        scratch: &mut TileScratch,
        accumulate: bool,
    ) {
        let n = tile.len();
        let depth = self.in_channels * self.geometry.taps();
        let plane_in = self.geometry.in_height() * self.geometry.in_width();
        let plane_out = self.geometry.out_height() * self.geometry.out_width();
        let first = tile[0] as usize;
        let contiguous = tile[n - 1] as usize - first == n - 1;

        // The right operand: a `depth × n` matrix with row stride `n`, or for a pointwise conv
        // over consecutive pixels, the input itself (row stride = one channel plane).
        let (b_ptr, b_row_stride) = if self.geometry.is_pointwise() && contiguous {
            (input[first..].as_ptr(), plane_in)
        } else {
            grow(&mut scratch.columns, depth * n);
            gather_columns(
                self.isa,
                &self.geometry,
                self.in_channels,
                input,
                tile,
                &mut scratch.columns[..depth * n],
                &mut scratch.tables,
            );
            (scratch.columns.as_ptr(), n)
        };

        if contiguous {
            for (co, &b) in self.bias.iter().enumerate() {
                // SAFETY: pixels first..first+n of output plane co, written by this tile only
                // (tiles hold distinct pixels).
                let row = unsafe { std::slice::from_raw_parts_mut(output.0.add(co * plane_out + first), n) };
                if accumulate {
                    row.iter_mut().for_each(|v| *v += b);
                } else {
                    row.fill(b);
                }
            }
            // SAFETY: A is `out_channels × depth` row-major (`weights.len()` checked in `new`);
            // B is `depth × n` with row stride `b_row_stride`, inside `columns[..depth·n]` or, on
            // the pointwise path, inside `input` (last read: (depth−1)·plane_in + first + n − 1 <
            // input.len()); C element (co, j) is output[co·plane_out + first + j], inside
            // `output` because first + n ≤ plane_out and output.len() = out_channels·plane_out, and
            // no other tile writes these pixels.
            unsafe { self.gemm(depth, n, b_ptr, b_row_stride, 1.0, output.0.add(first), plane_out, &mut scratch.gemm) }
        } else {
            grow(&mut scratch.result, self.out_channels * n);
            let result = &mut scratch.result[..self.out_channels * n];
            // SAFETY: A as above; B as above; C is `out_channels × n` row-major in `result`.
            unsafe { self.gemm(depth, n, b_ptr, b_row_stride, 0.0, result.as_mut_ptr(), n, &mut scratch.gemm) }
            // SAFETY: output is out_channels × plane_out and holds every pixel of the tile; no
            // other tile writes them.
            unsafe { scatter_channels(result, tile, &self.bias, output, plane_out, accumulate, &mut scratch.runs) };
        }
    }
}
