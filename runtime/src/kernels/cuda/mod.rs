//! The CUDA backend's seam. The backend itself does not exist yet (issue 14: no GPU has been
//! available to build and measure it against), so this stub is all there is: the entry point
//! the device choice calls, answering with [`PagError::DeviceUnavailable`]. A `cuda` feature
//! will put the real backend behind the same entry point, so no `#[cfg]` leaks into the code
//! that picks a device.
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
        reason: "pagrt has no CUDA backend yet (CPU only in this version)".into(),
    })
}
