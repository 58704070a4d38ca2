//! f32 on the CPU: every kernel pagrt's CPU execution runs, arithmetic only (the PAG policy that
//! decides where is [`crate::pag`]).
//!
//! - [`isa`]: the per-ISA micro-kernel tables (portable, AVX2, AVX-512), picked once.
//! - [`gemm`]: a blocked f32 GEMM with caller-owned packing buffers.
//! - [`PerforatedConv`] (`conv.rs`, `im2col.rs`): im2col of the active pixels only, one GEMM,
//!   scatter to the active pixels; also the dense conv of [`crate::ops::ConvOp`] (stride-2
//!   convs there run as direct convs on phase planes, `strided.rs`).
//! - [`GatedBlock`]: the arithmetic of a gated block (plain or MultiPool), channels-last inside.
//! - [`MultiPool`]: an ungated MultiPool module's selector and branch convs.
//! - [`resize_bilinear_half_pixel`], [`l2_normalize_channels`]: the dense helpers.
//! - [`reference_conv`]: a direct nested-loop convolution, the oracle of the tests.
//! - `parallel.rs`: pixel tiles across the session's rayon pool, scratch per worker.
//!
//! ```
//! use pag_runtime::kernels::cpu_f32::{ConvScratch, PerforatedConv};
//! use pag_runtime::pag::ActiveSet;
//! let (c, h, w) = (4, 6, 8);
//! let weights = vec![0.1f32; c * c * 3 * 3];
//! let conv = PerforatedConv::new(&weights, [c, c, 3, 3], None, 1, 1, [1, 1, 1, 1], (h, w))?;
//! let scores: Vec<f32> = (0..h * w).map(|i| (i % 7) as f32).collect();
//! let active = ActiveSet::budget(&scores, h, w, 0.25)?; // 12 of 48 pixels
//! let input = vec![1.0f32; c * h * w];
//! let mut output = input.clone(); // inactive pixels pass the input through
//! conv.run(&input, &active, &mut output, &mut ConvScratch::default())?;
//! # Ok::<(), pag_runtime::PagError>(())
//! ```

#[macro_use]
mod builds;
pub(crate) mod argmax;
mod conv;
mod gated_block;
pub mod gemm;
mod im2col;
pub mod isa;
mod l2norm;
mod multipool;
pub(crate) mod parallel;
mod reference;
mod resize;
mod scatter;
mod strided;
#[cfg(test)]
pub(crate) mod tests;

pub use conv::{ConvScratch, PerforatedConv};
pub use gated_block::{
    gate_scores, restore_pixels, save_pixels, BranchWeights, GatedBlock, GatedBlockScratch, GatedBlockWeights,
    MultiPoolWeights,
};
pub use isa::CpuIsa;
pub use l2norm::l2_normalize_channels;
pub use multipool::{MultiPool, MultiPoolBranch, MultiPoolScratch};
pub use reference::reference_conv;
pub use resize::{
    resize_bilinear_half_pixel, resize_bilinear_half_pixel_with, resize_planes, ResizeScratch, ResizeWorkers,
};
