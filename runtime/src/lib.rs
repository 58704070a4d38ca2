//! pag-runtime: loads Pixel-wise Attentional Gating (PAG) models — ONNX files that follow
//! `models/CONTRACT.md` — into tract and runs them on CPU, frame after frame, with the compute
//! mode (dense, native gates, or a ρ budget) switchable per frame without reloading.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pag_runtime::{ComputeMode, PagModel, Session};
//! let model = Arc::new(PagModel::load("models/shipped/pag_multitask.onnx")?);
//! let mut session = Session::new(model)?;
//! session.set_mode(ComputeMode::budget(0.5)?);
//! let rgb = ndarray::Array3::<u8>::zeros((480, 640, 3));
//! let out = session.run(rgb.view())?;
//! println!("{} classes, depth at centre {} m", out.labels.len(), out.depth[[120, 160]]);
//! # Ok::<(), pag_runtime::PagError>(())
//! ```
//! This crate knows nothing of ROS.

pub mod contract;
pub mod controller;
mod error;
pub mod generic;
mod mode;
mod model;
mod outputs;
mod preprocess;
mod session;
pub mod sparse;
mod telemetry;

pub use contract::{GatedBlockSpec, InputSpec, ModelInfo, MultiPoolSpec};
pub use controller::{Controller, ControllerConfig, Decision, LatencyProfile};
pub use error::{PagError, Result};
pub use mode::ComputeMode;
pub use model::{count_macs, decode_onnx, Execution, PagModel};
pub use outputs::Outputs;
pub use preprocess::fill_input;
pub use session::{Resolution, Session, MAX_IMAGE_SIDE};
pub use telemetry::{FrameTelemetry, LayerTelemetry};
