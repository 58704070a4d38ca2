//! pag-ros: a ROS 2 node for pagrt, built on `ros2-client` (RustDDS; no ROS installation
//! needed). A thin adapter over `pag-runtime`: camera images in; labels, colour segmentation,
//! depth (REP 118), normals, ponder map, camera_info and `/diagnostics` out. See README.md.
//!
//! Everything except [`node`] is plain logic, unit-tested without DDS.
pub mod config;
pub mod control;
pub mod convert;
pub mod image;
pub mod msg;
pub mod node;
pub mod signals;
pub mod slot;
pub mod stats;
pub mod stop;
pub mod synthetic;

/// The model the node loads unless told otherwise.
pub fn default_model_path() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../models/shipped/pag_multitask.onnx").to_owned()
}
