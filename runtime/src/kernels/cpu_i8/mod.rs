//! int8 on the CPU, for QDQ models (models/CONTRACT.md, "Quantized models"): arithmetic only,
//! behind the same traits as [`super::cpu_f32`], driven by the same PAG policy.
//!
//! - [`quant`]: the requantization arithmetic of a QDQ conv, written once (kernels and
//!   references use it alike).
//! - [`gemm`]: a conv's u8 × s8 → i32 product through an implicit im2col, on pagrt's AVX-512 VNNI
//!   kernel ([`vnni`]) or tract-linalg's int8 kernels (AVX2, AVX-512 VNNI, AVX-VNNI, AMX, arm64
//!   SMLAL/SDOT, portable), one picked per block; every kernel this CPU runs is listed by
//!   [`I8Kernel::all`] so tests check them all.
//! - [`QConv2d`]: a dense quantized conv, f32 in and out (the Q/DQ pairs around it fused).
//! - [`GatedBlockI8`]: a quantized gated block (plain or MultiPool); f32 block input and output,
//!   f32 gate and selector, int8 branch.
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
