//! int8 on the CPU, for QDQ models (models/CONTRACT.md, "Quantized models"): arithmetic only,
//! behind the same traits as [`super::cpu_f32`], driven by the same PAG policy.
//!
//! - [`quant`]: the requantization arithmetic of a QDQ conv, written once (kernels and
//!   references use it alike).
//! - [`gemm`]: a conv's u8 × s8 → i32 product through an implicit im2col, on pagrt's AVX-512 VNNI
//!   kernel ([`vnni`]), its exact AVX2 kernel for x86 without dot-product int8 ([`avx2`]), or
//!   tract-linalg's int8 kernels (AVX2, AVX-512 VNNI, AVX-VNNI, AMX, arm64
//!   SMLAL/SDOT, portable), one picked per block; every kernel this CPU runs is listed by
//!   [`I8Kernel::all`] so tests check them all.
//! - [`QConv2d`]: a dense quantized conv, f32 in and out (the Q/DQ pairs around it fused).
//! - [`GatedBlockI8`]: a quantized gated block (plain or MultiPool); f32 block input and output,
//!   f32 gate and selector, int8 branch.
pub mod avx2;
mod conv;
mod gated_block;
pub mod gemm;
pub mod quant;
mod simd;
#[cfg(test)]
mod tests;
pub mod vnni;

pub use conv::{QConv2d, QConv2dScratch};
pub use gated_block::{GatedBlockI8, GatedBlockI8Scratch, QBranchWeights, QGatedBlockWeights, QMultiPoolWeights};
pub use gemm::{I8GemmScratch, I8Kernel, PackedWeights};
pub use quant::{QConv, QConvWeights, QParams};

/// `n` rounded up to a multiple of 4 (channels of a K4 tile).
pub(crate) fn up4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// The output-channel blocks of a kernel's product over `m` channels: `(first, width)`, each
/// the widest of `widths` (descending, ending with 1) that fits in what is left.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 builds only
pub(crate) fn channel_blocks(m: usize, widths: &'static [usize]) -> impl Iterator<Item = (usize, usize)> {
    let mut o = 0;
    std::iter::from_fn(move || {
        (o < m).then(|| {
            let width = widths.iter().copied().find(|&w| w <= m - o).unwrap_or(1);
            o += width;
            (o - width, width)
        })
    })
}

/// Grows `buffer` to at least `len` elements (never shrinks).
pub(crate) fn grow<T: Default + Clone>(buffer: &mut Vec<T>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
}

/// A u32 slice (K4 quads) as its bytes.
pub(crate) fn bytes(v: &[u32]) -> &[u8] {
    // SAFETY: u8 has no alignment or validity requirements; same memory, 4× the length.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 4) }
}

/// A conv's weights (`[out][tap][inp]`) packed for `kernel` with each tap's channels padded to a
/// multiple of 4 (zero weights), as the K4 tiles lay them out.
pub(crate) fn pack_padded(q: &QConv, taps: usize, kernel: &I8Kernel) -> crate::Result<PackedWeights> {
    let inp = q.depth / taps;
    let inp4 = up4(inp);
    let mut padded = vec![0i8; q.out * taps * inp4];
    for (dst, src) in padded.chunks_exact_mut(taps * inp4).zip(q.weights.chunks_exact(q.depth)) {
        for (d, s) in dst.chunks_exact_mut(inp4).zip(src.chunks_exact(inp)) {
            d[..inp].copy_from_slice(s);
        }
    }
    kernel.pack_weights(&padded, q.out, taps * inp4)
}
