//! How a model is loaded and run: execution, device, precision, threads.
use std::fmt;
use std::str::FromStr;

use crate::error::{PagError, Result};

/// How a [`crate::PagModel`] executes its gated blocks and MultiPool modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Execution {
    /// tract's own ops everywhere: every gated branch is computed at every pixel and masked
    /// (the reference the sparse kernels are checked against).
    Dense,
    /// The default. Each supported gated block and MultiPool runs as one pagrt op that really
    /// skips inactive pixels; unsupported modules stay dense and are listed in
    /// [`crate::PagModel::dense_fallbacks`]. Bilinear resizes, the ungated spatial convs and the
    /// normals' L2 normalisation also run on pagrt's kernels.
    #[default]
    Sparse,
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    /// The CPU (tract plus pagrt's CPU kernels).
    #[default]
    Cpu,
    /// CUDA GPU `n` (no CUDA backend exists yet: loading answers `DeviceUnavailable`).
    Cuda(usize),
    /// CUDA GPU 0 when this build and machine can use it, else the CPU.
    Auto,
}

impl FromStr for Device {
    type Err = PagError;
    /// `cpu`, `cuda`, `cuda:N` or `auto`.
    fn from_str(s: &str) -> Result<Device> {
        match s.trim() {
            "cpu" => Ok(Device::Cpu),
            "auto" => Ok(Device::Auto),
            "cuda" => Ok(Device::Cuda(0)),
            other => {
                other.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(Device::Cuda).ok_or_else(|| {
                    PagError::Options(format!("device `{other}` is not `cpu`, `cuda`, `cuda:N` or `auto`"))
                })
            }
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
            Device::Auto => write!(f, "auto"),
        }
    }
}

/// The numeric precision of the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// 32-bit floats.
    #[default]
    F32,
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Precision::F32 => write!(f, "f32"),
        }
    }
}

/// What a session's idle worker threads do between the parallel regions of a frame.
///
/// A frame alternates parallel kernel tiles with serial steps of tens to hundreds of µs (budget
/// selection, tract's bookkeeping). A sleeping worker takes longer than that to wake on a
/// virtual machine or from a deep CPU idle state, so with `Sleep` the frame's thread often runs
/// a parallel region alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WorkerWait {
    /// Poll for the frame's work (yielding the core to any other runnable thread) until the
    /// frame ends, as onnxruntime's thread pool spins by default: the fastest frames when the
    /// session's cores are otherwise free; it takes CPU time from other busy threads of the
    /// machine and keeps the cores awake during a frame.
    #[default]
    Poll,
    /// Sleep as rayon does by default: no CPU time taken from other threads between regions.
    Sleep,
}

impl FromStr for WorkerWait {
    type Err = PagError;
    fn from_str(s: &str) -> Result<WorkerWait> {
        match s.trim() {
            "poll" => Ok(WorkerWait::Poll),
            "sleep" => Ok(WorkerWait::Sleep),
            other => Err(PagError::Options(format!("worker wait `{other}` is not `poll` or `sleep`"))),
        }
    }
}

impl fmt::Display for WorkerWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkerWait::Poll => "poll",
            WorkerWait::Sleep => "sleep",
        })
    }
}

/// Everything [`crate::PagModel::load_with_options`] can be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadOptions {
    /// Sparse (the product) or dense (the reference) execution.
    pub execution: Execution,
    /// Where to run.
    pub device: Device,
    /// Arithmetic precision.
    pub precision: Precision,
    /// Threads of each session's pool; `None` = every core this process may use.
    pub threads: Option<usize>,
    /// What each session's idle workers do during a frame (see [`WorkerWait`]).
    pub worker_wait: WorkerWait,
}

impl LoadOptions {
    /// The thread count sessions of this model use (≥ 1).
    pub fn resolved_threads(&self) -> usize {
        self.threads.unwrap_or_else(default_threads).max(1)
    }

    /// Errors on a zero or absurd thread count.
    pub fn validate(&self) -> Result<()> {
        match self.threads {
            Some(0) => Err(PagError::Options("threads must be ≥ 1 (or unset for every core)".into())),
            Some(n) if n > 1024 => Err(PagError::Options(format!("threads = {n} is more than 1024"))),
            _ => Ok(()),
        }
    }
}

/// Cores available to this process.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_and_print() {
        for (s, d) in
            [("cpu", Device::Cpu), ("auto", Device::Auto), ("cuda", Device::Cuda(0)), ("cuda:2", Device::Cuda(2))]
        {
            assert_eq!(s.parse::<Device>().unwrap(), d);
        }
        assert_eq!(Device::Cuda(1).to_string(), "cuda:1");
        for bad in ["gpu", "cuda:", "cuda:x", ""] {
            assert!(bad.parse::<Device>().is_err(), "{bad}");
        }
    }

    #[test]
    fn worker_waits_parse_print_and_name_the_choices() {
        for w in [WorkerWait::Poll, WorkerWait::Sleep] {
            assert_eq!(w.to_string().parse::<WorkerWait>().unwrap(), w);
        }
        assert_eq!(" sleep ".parse::<WorkerWait>().unwrap(), WorkerWait::Sleep);
        let err = "spin".parse::<WorkerWait>().unwrap_err().to_string();
        assert!(err.contains("`spin` is not `poll` or `sleep`"), "{err}");
    }

    #[test]
    fn threads_are_validated() {
        assert!(LoadOptions { threads: Some(0), ..Default::default() }.validate().is_err());
        assert!(LoadOptions { threads: Some(2), ..Default::default() }.validate().is_ok());
        assert!(LoadOptions::default().resolved_threads() >= 1);
    }
}
