//! Perforated convolution on CPU: convolutions that compute only the output pixels a PAG gate
//! keeps active, and really skip the others (no compute, no write).
//!
//! - [`ActiveSet`]: the compact, ascending list of active pixels of one gate, built once per
//!   gate (from a mask, native scores or the contract's ρ budget) and shared by every conv that
//!   uses that mask; [`ActiveSet::input_footprint`] gives the input pixels such a conv reads.
//! - [`PerforatedConv`]: im2col of the active pixels only, one GEMM, scatter to the active
//!   pixels; inactive outputs keep what the caller put there (the residual passthrough).
//! - [`ConvScratch`]: reusable working memory, so that steady-state calls do not allocate.
//! - [`reference_conv`]: a direct nested-loop convolution, the oracle of the tests.
//! - [`GatedBlock`]: a whole gated residual block `O = I + G ⊙ F(I)` in place: gate scores at
//!   every pixel, the mode's active set, the branch only there (its 1×1 reduce only at the
//!   footprint), inactive pixels untouched; [`BlockStats`] counts the MACs it executed.
//! - [`MultiPool`]: the selector's argmax picks one branch per pixel (copy or dilated 3×3), and
//!   each branch's conv runs only at its own pixels.
//! - [`resize_bilinear_half_pixel`] / [`PagResizeOp`]: a fast separable bilinear upsampling
//!   (ONNX `half_pixel`) replacing tract's generic `Resize` in sparse execution.
//!
//! ```
//! use pag_runtime::sparse::{ActiveSet, ConvScratch, PerforatedConv};
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

mod active;
mod conv_op;
mod extract;
mod extract_proto;
mod gated_block;
#[cfg(test)]
mod gated_block_tests;
pub mod gemm;
mod geometry;
mod im2col;
mod l2norm_op;
mod multipool;
#[cfg(test)]
mod multipool_tests;
mod perforated_conv;
mod reference;
mod resize;
mod resize_op;
#[cfg(test)]
mod test_data;
#[cfg(test)]
mod tests;
mod tract_ops;

pub use active::{budget_count, ActiveSet, MaskValue};
pub use conv_op::PagConvOp;
pub use extract::{extract_sparse_blocks, ExtractedGatedBlock, ExtractedMultiPool, SparsePlan, Unsupported};
pub use gated_block::{BlockStats, GatedBlock, GatedBlockScratch, GatedBlockWeights};
pub use geometry::ConvGeometry;
pub use l2norm_op::{l2_normalize_channels, PagL2NormOp};
pub use multipool::{MultiPool, MultiPoolBranch, MultiPoolScratch, MultiPoolStats};
pub use perforated_conv::{ConvScratch, PerforatedConv};
pub use reference::reference_conv;
pub use resize::{resize_bilinear_half_pixel, resize_bilinear_half_pixel_with, ResizeScratch};
pub use resize_op::PagResizeOp;
pub use tract_ops::{mode_from_rho, PagGatedBlockOp, PagMultiPoolOp};
