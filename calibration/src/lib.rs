//! pag-calibration: device profiles for the ρ controller and the controller's node glue.
//!
//! - [`measure`]: a model's frame latency vs ρ (and native) on this machine: warm-up, rounds with
//!   the modes interleaved, medians and spread; energy per frame where the platform exposes it
//!   (RAPL, INA3221), never estimated. `pag profile` is its command line.
//! - [`DeviceProfile`]: the versioned JSON file (format in `calibration/README.md`), naming the
//!   model (SHA-256 of the ONNX bytes), CPU, threads and precision;
//!   [`DeviceProfile::latency_profile`] is the controller's feed-forward.
//! - [`ros_glue`]: the node's controller parameters (names, defaults, validators) and its
//!   `/diagnostics` key/value pairs, without ROS types.
//! - [`quantize`]: `pag calibrate`: activation statistics over calibration images, a cache of
//!   them, and the int8 QDQ ONNX model (`models/CONTRACT.md`, "Quantized models (QDQ)").
use std::path::PathBuf;

pub mod energy;
mod format;
mod measure;
pub mod quantize;
pub mod ros_glue;

pub use format::{
    DeviceProfile, Energy, Machine, Method, ModelId, Point, SessionSettings, Stats, FORMAT, FORMAT_VERSION,
};
pub use measure::{cpu_model, measure, measure_default, sha256_hex, trajectory_frames, MeasureOptions, Progress};

/// What can go wrong while measuring, reading or writing a profile.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a usable device profile: {reason}")]
    Format { path: PathBuf, reason: String },
    #[error("invalid measurement options: {0}")]
    Options(String),
    /// The calibration images: none, too few, or one that does not decode (named).
    #[error("{0}")]
    Images(String),
    /// An output path that cannot be written (checked before any work).
    #[error("{0}")]
    Output(String),
    /// Quantizing a model: running it for statistics or rewriting it.
    #[error("{0}")]
    Quantize(String),
    #[error(transparent)]
    Runtime(#[from] pag_runtime::PagError),
}
