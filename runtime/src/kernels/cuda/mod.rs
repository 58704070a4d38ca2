//! The CUDA backend's seam. pagrt built without the `cuda` feature (the default) has this stub:
//! the same entry point, answering with [`PagError::DeviceUnavailable`] — so every feature set
//! compiles and no `#[cfg]` leaks into the code that picks a device.
use crate::error::{PagError, Result};

/// Whether this build can run models on a CUDA GPU.
pub const COMPILED: bool = false;

/// A CUDA device ready to run models. Never constructed in this build.
#[derive(Debug)]
pub enum CudaDevice {}

/// Opens CUDA device `ordinal`.
pub fn open(ordinal: usize) -> Result<CudaDevice> {
    Err(PagError::DeviceUnavailable {
        device: format!("cuda:{ordinal}"),
        reason: "this pagrt was built without the `cuda` feature (rebuild with `--features cuda`)".into(),
    })
}
