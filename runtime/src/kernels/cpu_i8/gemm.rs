//! The int8 product of a conv, `C (m × n) = W (m × k) · act (k × n)`, on a K4-interleaved tile of
//! u8 activations (the 4 values of pixel `j` for channels `4q..4q + 4` at `act[(q · ld + j) · 4..]`),
//! channel-major out. Every conv of a quantized block is one such product: a 1×1 conv on its
//! input tile, a k×k conv on a gathered im2col tile (`k = taps · channels`).
//!
//! Two families of kernels, one picked per block ([`I8Kernel::best`]), every one this CPU runs
//! listed by [`I8Kernel::all`] for the tests:
//! - `vnni`: pagrt's AVX-512 VNNI kernel ([`super::vnni`]): reads the tile as it lies, weights
//!   packed once.
//! - tract-linalg's int8 kernels (AVX2, AVX-512 VNNI 8×8 and 16×16, AVX-VNNI, AMX, arm64 SMLAL and
//!   SDOT, portable): the tile is re-packed (shifted to s8) into the kernel's B panels each call,
//!   into a buffer of the worker's — no allocation per call.
use tract_linalg::mmm::{
    AsInputValue, EagerPackedInput, FusedSpec, MMMInputFormat, MMMInputValue, MatMatMul, MmmDispatch, PackedExoticFact,
    Query, ScratchSpace,
};
use tract_linalg::multithread::{multithread_tract_scope, Executor};
use tract_linalg::pack::{PackedFormat, PackedI8K4};
use tract_onnx::prelude::{Blob, DatumType, Tensor, ToDim};

use crate::error::{PagError, Result};

/// An int8 kernel: pagrt's VNNI one, or one of tract-linalg's with the index of its i8 × i8
/// packing.
#[derive(Debug, Clone)]
pub enum I8Kernel {
    Vnni,
    /// pagrt's exact AVX2 kernel ([`super::avx2`]).
    Avx2,
    Tract {
        mmm: Box<dyn MatMatMul>,
        packing: usize,
    },
}

impl I8Kernel {
    /// The fastest kernel here for an `m × k × n` product: pagrt's VNNI kernel where the CPU
    /// has AVX-512 VNNI, else tract-linalg's choice where it has dot-product int8 (AVX-VNNI,
    /// AMX, SDOT), else pagrt's AVX2 kernel where the CPU has AVX2, else tract-linalg's choice. `PAGRT_INT8_KERNEL=<name>` overrides
    /// it (benchmarks, debugging).
    pub fn best(m: usize, k: usize, n: usize) -> Result<I8Kernel> {
        if let Ok(name) = std::env::var("PAGRT_INT8_KERNEL") {
            if let Some(kernel) = Self::all(m, k, n).into_iter().find(|kr| kr.name() == name) {
                return Ok(kernel);
            }
            eprintln!("pagrt: PAGRT_INT8_KERNEL={name} is not an int8 kernel this CPU runs; choosing one");
        }
        if super::vnni::supported() {
            return Ok(I8Kernel::Vnni);
        }
        let tract = Self::tract_best(m, k, n);
        match tract {
            Ok(t) if t.has_dot_product() => Ok(t),
            _ if super::avx2::supported() => Ok(I8Kernel::Avx2),
            other => other,
        }
    }

    /// tract-linalg's pick for the product, except that a dot-product kernel the CPU runs is
    /// never passed over: under qemu's Cortex-A76 (FEAT_DotProd) tract picked the SMLAL
    /// `arm64simd_mmm_i32_8x8` over `arm64simd_mmm_i32_8x8_dot` (~4× the MACs per instruction).
    fn tract_best(m: usize, k: usize, n: usize) -> Result<I8Kernel> {
        let query = Query::plain(DatumType::I32, Some(m), Some(k), Some(n));
        let picked = MmmDispatch::native()
            .pick(&query)
            .filter(|(mmm, ix, extractor)| extractor.is_none() && supported_b(&*mmm.packings()[*ix].1))
            .map(|(mmm, packing, _)| I8Kernel::Tract { mmm, packing });
        match picked {
            Some(kernel) if kernel.has_dot_product() => Ok(kernel),
            picked => {
                let all = Self::tract_all(m, k, n);
                let fallback = picked.or_else(|| all.last().cloned());
                all.into_iter().find(I8Kernel::has_dot_product).or(fallback).ok_or_else(|| no_kernel(m, k, n))
            }
        }
    }

    /// Every int8 kernel this CPU runs for such products (tests run them all, not only the one
    /// [`I8Kernel::best`] picks).
    pub fn all(m: usize, k: usize, n: usize) -> Vec<I8Kernel> {
        let mut kernels = Self::tract_all(m, k, n);
        if super::avx2::supported() {
            kernels.insert(0, I8Kernel::Avx2);
        }
        if super::vnni::supported() {
            kernels.insert(0, I8Kernel::Vnni);
        }
        kernels
    }

    /// tract-linalg's int8 kernels whose B packing `pack_b` writes.
    fn tract_all(m: usize, k: usize, n: usize) -> Vec<I8Kernel> {
        let query = Query::plain(DatumType::I32, Some(m), Some(k), Some(n));
        let mut kernels: Vec<I8Kernel> = MmmDispatch::native()
            .suitable(&query)
            .into_iter()
            .filter(|(mmm, ix, extractor)| extractor.is_none() && supported_b(&*mmm.packings()[*ix].1))
            .map(|(mmm, packing, _)| I8Kernel::Tract { mmm, packing })
            .collect();
        kernels.sort_by(|a, b| a.name().cmp(b.name()));
        kernels.dedup_by(|a, b| a.name() == b.name());
        kernels
    }

    /// Whether the kernel multiplies with dot-product int8 instructions (VNNI, AVX-VNNI, AMX,
    /// arm64 SDOT). Without them (tract-linalg's AVX2 `vpmaddubsw` emulation, arm64 SMLAL, the
    /// portable kernel) int8 is slower than pagrt's f32 here: on an AMD Zen 5, a 60×80 gated
    /// block took 3.9 ms on `avx2_mmm_i32_8x8` against 0.8 ms in f32 and 0.35 ms on `vnni`.
    pub fn has_dot_product(&self) -> bool {
        let name = self.name();
        ["vnni", "amx", "dot"].iter().any(|k| name.contains(k))
    }

    /// `vnni` (pagrt's), or tract-linalg's name for the kernel (e.g. `avx512vnni_mmm_i32_16x16`).
    pub fn name(&self) -> &str {
        match self {
            I8Kernel::Vnni => "vnni",
            I8Kernel::Avx2 => "pagrt_avx2",
            I8Kernel::Tract { mmm, .. } => mmm.name(),
        }
    }

    /// Packs `weights` (`m × k`, row-major) as this kernel's A operand.
    pub fn pack_weights(&self, weights: &[i8], m: usize, k: usize) -> Result<PackedWeights> {
        match self {
            I8Kernel::Vnni => Ok(PackedWeights::Vnni(super::vnni::VnniWeights::pack(weights, m, k))),
            I8Kernel::Avx2 => Ok(PackedWeights::Avx2(super::avx2::Avx2Weights::pack(weights, m, k))),
            I8Kernel::Tract { mmm, packing } => {
                let tensor = Tensor::from_shape(&[m, k], weights).map_err(|e| internal(format!("{e:#}")))?;
                let packed = mmm.packings()[*packing]
                    .0
                    .prepare_one(&tensor, 1, 0)
                    .map_err(|e| internal(format!("packing int8 weights for {}: {e:#}", self.name())))?;
                let shift = weights
                    .chunks_exact(k.max(1))
                    .map(|row| 128 * row.iter().map(|&v| v as i32).sum::<i32>())
                    .collect();
                Ok(PackedWeights::Tract { packed, m, k, shift })
            }
        }
    }

    /// `C = W · act` for `n` pixels of a K4-interleaved activation tile (the 4 values of pixel
    /// `j` for channels `4q..4q + 4` at `act[(q · ld + j) · 4..]`, `k` a multiple of 4), in `s`'s
    /// buffer (returned), channel-major (`C[o · n + j]`). `act` needs `((k / 4 − 1) · ld + n) · 4`
    /// bytes (a tile's last group may end at its last pixel).
    pub fn conv_k4<'s>(
        &self,
        w: &PackedWeights,
        act: &[u8],
        ld: usize,
        n: usize,
        s: &'s mut I8GemmScratch,
    ) -> &'s [i32] {
        let (m, k) = w.dims();
        assert!(
            k.is_multiple_of(4)
                && k >= 4
                && act.len() >= ((k / 4 - 1) * ld + n) * 4
                && ld >= n
                && n <= s.max_n
                && k <= s.max_k
                && m <= s.max_m
        );
        match (self, w) {
            #[cfg(target_arch = "x86_64")]
            (I8Kernel::Vnni, PackedWeights::Vnni(vw)) => {
                // SAFETY: listed only where the CPU supports it; sizes asserted above.
                unsafe { super::vnni::conv_k4(vw, act, ld, n, &mut s.out[..n * m]) };
                &s.out[..n * m]
            }
            #[cfg(target_arch = "x86_64")]
            (I8Kernel::Avx2, PackedWeights::Avx2(aw)) => {
                // SAFETY: listed only where the CPU supports it; sizes asserted above.
                unsafe { super::avx2::conv_k4(aw, act, ld, n, &mut s.out[..n * m]) };
                &s.out[..n * m]
            }
            (I8Kernel::Tract { .. }, PackedWeights::Tract { shift, .. }) => {
                self.run(w, act, ld, n, s);
                // SAFETY: s.c holds max_m · max_n ≥ n · m i32, written by the product.
                let c = unsafe { std::slice::from_raw_parts_mut(s.c.as_ptr_mut_unchecked::<i32>(), n * m) };
                c.chunks_exact_mut(n).zip(shift).for_each(|(row, s)| row.iter_mut().for_each(|v| *v += s));
                c
            }
            _ => panic!("weights packed for another int8 kernel than {}", self.name()),
        }
    }

    /// tract-linalg's product of `a` and the K4 tile `act`, channel-major into `s.c`.
    fn run(&self, a: &PackedWeights, act: &[u8], ld: usize, n: usize, s: &mut I8GemmScratch) {
        let (I8Kernel::Tract { mmm, packing }, PackedWeights::Tract { packed: a, m, k, .. }) = (self, a) else {
            unreachable!("only tract-linalg kernels pack B")
        };
        let (m, k, packing) = (*m, *k, *packing);
        assert!(n <= s.max_n && k <= s.max_k && m <= s.max_m);
        let packed_b = s.b.as_mut().expect("reserved");
        pack_b(&*mmm.packings()[packing].1, act, ld, n, k, packed_b);
        let store = unsafe { mmm.c_from_data_and_strides(4, n as isize, 1).wrap(&s.c.view()) };
        let scratch = s.mmm.as_mut().expect("reserved");
        // SAFETY: A is m × k in this kernel's packing, B k × n in its B packing (just packed),
        // and the store addresses m × n i32 inside `s.c`, which holds max_m · max_n.
        let result = multithread_tract_scope(Executor::SingleThread, || unsafe {
            mmm.run_with_scratch_space(
                m,
                n,
                &mut **scratch,
                &[
                    FusedSpec::AddMatMul {
                        a: AsInputValue::Borrowed(&**a),
                        b: AsInputValue::Borrowed(&*packed_b),
                        packing,
                    },
                    FusedSpec::Store(store),
                ],
            )
        });
        result.expect("int8 matmul");
    }
}

/// A conv's weights packed for one [`I8Kernel`].
#[derive(Debug, Clone)]
pub enum PackedWeights {
    Vnni(super::vnni::VnniWeights),
    Avx2(super::avx2::Avx2Weights),
    /// tract-linalg multiplies s8 by s8: the activations are packed as `u8 − 128`, and
    /// `shift[o] = 128 · Σ_k W[o][k]` restores the u8 product.
    Tract {
        packed: Box<dyn MMMInputValue>,
        m: usize,
        k: usize,
        shift: Vec<i32>,
    },
}

impl PackedWeights {
    /// `(m, k)`.
    pub fn dims(&self) -> (usize, usize) {
        match self {
            PackedWeights::Vnni(w) => (w.m(), w.k()),
            PackedWeights::Avx2(w) => (w.m(), w.k()),
            PackedWeights::Tract { m, k, .. } => (*m, *k),
        }
    }
}

fn no_kernel(m: usize, k: usize, n: usize) -> PagError {
    internal(format!("tract-linalg offers no int8 kernel for a {m}×{k}×{n} product on this CPU"))
}

fn internal(reason: String) -> PagError {
    PagError::Tract { stage: "build the int8 kernels of", reason }
}

/// Whether `pack_b` writes this B format.
fn supported_b(f: &dyn MMMInputFormat) -> bool {
    f.downcast_ref::<PackedI8K4>().is_some()
        || f.downcast_ref::<PackedFormat>().is_some_and(|p| p.dt.unquantized() == DatumType::I8)
}

/// Packs the K4 tile `act` (`k × n`, row length `ld`) into `dst` in format `f` (the B
/// operand), shifted to s8, zeroing the padding.
fn pack_b(f: &dyn MMMInputFormat, act: &[u8], ld: usize, n: usize, k: usize, dst: &mut EagerPackedInput) {
    let blob = std::sync::Arc::get_mut(&mut dst.packed).expect("the B buffer is not shared");
    let bytes = blob.as_bytes_mut();
    let (r, panel, k4) = if let Some(p) = f.downcast_ref::<PackedI8K4>() {
        (p.r, k.div_ceil(4) * 4 * p.r, true)
    } else if let Some(p) = f.downcast_ref::<PackedFormat>() {
        (p.r, p.single_panel_len(k), false)
    } else {
        unreachable!("unsupported B packing {f}");
    };
    let panels = n.div_ceil(r);
    if !k4 || k % 4 != 0 {
        bytes[..panels * panel].fill(0);
    } else if n % r != 0 {
        // Only the last panel's missing lanes are padding.
        bytes[(panels - 1) * panel..panels * panel].fill(0);
    }
    pack_k4(bytes, act, ld, n, k, r, panel, k4);
    dst.panel_bytes = panel;
    dst.mn = n;
    dst.fact.k = k;
    dst.fact.mn = n.to_dim();
}

/// Packs a K4-interleaved tile as B panels of width `r`, shifted to s8.
#[allow(clippy::too_many_arguments)]
fn pack_k4(bytes: &mut [u8], data: &[u8], ld: usize, n: usize, k: usize, r: usize, panel: usize, k4: bool) {
    for q in 0..k / 4 {
        let src = &data[q * ld * 4..][..n * 4];
        if k4 {
            // Panel p's quad q is lanes p·r.. of the tile's quad q: 4r contiguous bytes.
            for (p, lanes) in src.chunks(4 * r).enumerate() {
                let at = p * panel + q * r * 4;
                bytes[at..at + lanes.len()].iter_mut().zip(lanes).for_each(|(d, &v)| *d = v ^ 0x80);
            }
        } else {
            for (j, quad) in src.chunks_exact(4).enumerate() {
                for (i, &v) in quad.iter().enumerate() {
                    bytes[(j / r) * panel + (4 * q + i) * r + j % r] = v ^ 0x80;
                }
            }
        }
    }
}

/// One worker's buffers for [`I8Kernel::run`]: the packed B, the i32 result and tract's own
/// scratch. Sized once by [`I8GemmScratch::reserve`].
#[derive(Default)]
pub struct I8GemmScratch {
    /// The result of pagrt's VNNI kernel.
    out: Vec<i32>,
    b: Option<EagerPackedInput>,
    c: Tensor,
    mmm: Option<Box<dyn ScratchSpace>>,
    max_m: usize,
    max_k: usize,
    max_n: usize,
}

impl std::fmt::Debug for I8GemmScratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8GemmScratch").field("max_mkn", &(self.max_m, self.max_k, self.max_n)).finish()
    }
}

// SAFETY: the scratch is only ever used by one thread at a time (one per worker, behind a
// mutex); tract's ScratchSpace holds plain buffers.
unsafe impl Send for I8GemmScratch {}

impl I8GemmScratch {
    /// Grows the buffers for products up to `m × k × n` on `kernel`.
    pub fn reserve(&mut self, kernel: &I8Kernel, m: usize, k: usize, n: usize) {
        let (m, k, n) = (m.max(self.max_m), k.max(self.max_k), n.max(self.max_n));
        (self.max_m, self.max_k, self.max_n) = (m, k, n);
        let I8Kernel::Tract { mmm, packing } = kernel else {
            if self.out.len() < m * n {
                self.out.resize(m * n, 0);
            }
            return;
        };
        let format = &*mmm.packings()[*packing].1;
        let (len, align) = if let Some(p) = format.downcast_ref::<PackedI8K4>() {
            (p.len(k, n), p.alignment())
        } else if let Some(p) = format.downcast_ref::<PackedFormat>() {
            (p.len(k, n), p.alignment())
        } else {
            unreachable!("unsupported B packing {format}");
        };
        let same_format = self.b.as_ref().is_some_and(|b| b.fact.format.dyn_eq(format));
        if !same_format || self.b.as_ref().is_some_and(|b| b.packed.len() < len) {
            // SAFETY: a fresh zeroed blob of `len` bytes at the format's alignment.
            let mut blob = unsafe { Blob::new_for_size_and_align(len, align.max(1)) };
            blob.as_bytes_mut().fill(0);
            self.b = Some(EagerPackedInput {
                fact: PackedExoticFact { format: mmm.packings()[*packing].1.clone(), mn: n.to_dim(), k },
                packed: std::sync::Arc::new(blob),
                panel_bytes: 0,
                mn: n,
            });
        }
        if self.c.len() < m * n {
            self.c = Tensor::zero::<i32>(&[m * n]).expect("i32 buffer");
        }
        let usable = self.mmm.as_ref().is_some_and(|s| unsafe { mmm.can_use_scratch_space(&**s) });
        if !usable {
            self.mmm = Some(unsafe { mmm.allocate_scratch_space() });
        }
    }

    /// Bytes reserved (packed B and the i32 result; tract's scratch is not counted).
    pub fn allocated_bytes(&self) -> usize {
        self.b.as_ref().map_or(0, |b| b.packed.len()) + 4 * (self.c.len() + self.out.capacity())
    }
}
