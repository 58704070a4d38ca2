//! PAG policy, host-side and backend-agnostic, bit-identical on every backend: which pixels each
//! gated block and MultiPool computes, and what that cost.
//!
//! - [`ActiveSet`] and the budget rule ([`budget_count`], models/CONTRACT.md): the compact list
//!   of active pixels of one gate, built once per gate and shared by every conv that uses it;
//!   [`ActiveSet::input_footprint`] gives the input pixels such a conv reads.
//! - [`ConvGeometry`]: a conv's spatial shape (footprints, taps).
//! - [`gated_block`]: the block plan (full / dense-branch / sparse path, where the reduce conv
//!   runs, MultiPool branch choice inside a gated block) and its MAC accounting.
//! - [`multipool`]: one branch per pixel by the selector's argmax.
//! - [`telemetry`]: per-frame density and executed vs dense MACs per module; ponder maps.
//!
//! The arithmetic lives in [`crate::kernels`], behind the traits the drivers here call.

mod active;
pub mod gated_block;
mod geometry;
pub mod multipool;
pub mod telemetry;

pub use active::{budget_count, ActiveSet, MaskValue};
pub use gated_block::{BlockShape, BlockStats, BranchShape, PolicyScratch};
pub use geometry::ConvGeometry;
pub use multipool::{MultiPoolPolicy, MultiPoolStats};
pub use telemetry::{FrameTelemetry, LayerTelemetry};
