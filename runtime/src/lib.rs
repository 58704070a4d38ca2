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
//!
//! Layout: [`pag`] is the PAG policy (active sets, budgets, block plans, telemetry), written once
//! and backend-agnostic; [`kernels`] the arithmetic per numeric family (`cpu_f32`, the `cuda`
//! seam), behind the traits [`kernels::GatedBlockKernel`] and [`kernels::MultiPoolKernel`];
//! [`graph`] everything from ONNX bytes to a plan (contract, extraction, rewrites, MAC
//! counting); [`ops`] the tract operators wrapping the kernels; [`Session`] runs frames on its
//! own thread pool.

pub mod controller;
mod error;
pub mod generic;
pub mod graph;
pub mod kernels;
mod mode;
mod model;
pub mod ops;
mod options;
mod outputs;
pub mod pag;
mod preprocess;
mod session;

pub use controller::{Controller, ControllerConfig, Decision, LatencyProfile};
pub use error::{PagError, Result};
pub use graph::{count_macs, decode_onnx, CameraMountSpec, GatedBlockSpec, InputSpec, ModelInfo, MultiPoolSpec};
pub use mode::{mode_from_rho, ComputeMode, Rho};
pub use model::PagModel;
pub use options::{default_threads, Device, Execution, LoadOptions, Precision, WorkerWait};
pub use outputs::Outputs;
pub use pag::{FrameTelemetry, LayerTelemetry};
pub use preprocess::fill_input;
pub use session::{Resolution, Session, MAX_IMAGE_SIDE};
