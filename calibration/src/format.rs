//! The device-profile file: versioned JSON (serde). Documented in `calibration/README.md`.
use std::path::Path;

use pag_runtime::controller::{LatencyProfile, ProfilePoint};
use serde::{Deserialize, Serialize};

use crate::CalibrationError;

/// The `format` field of every device profile.
pub const FORMAT: &str = "pagrt-device-profile";
/// The version this crate writes and reads. Bumped on any change that an older reader would
/// misread; readers refuse other versions with a clear error.
pub const FORMAT_VERSION: u32 = 1;

/// Latency (and energy, where exposed) of one model vs ρ on one machine, thread count and
/// precision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub version: u32,
    /// Seconds since the Unix epoch when the measurement finished.
    pub created_unix_s: u64,
    pub model: ModelId,
    pub machine: Machine,
    pub session: SessionSettings,
    pub method: Method,
    /// Budget-mode points, ρ descending (ρ = 1 first).
    pub points: Vec<Point>,
    /// Native mode (each gate's own decision; content-dependent), if measured.
    pub native: Option<Point>,
    pub energy: Energy,
}

/// Which model was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelId {
    /// As given on the command line (informative).
    pub path: String,
    /// SHA-256 of the ONNX file's bytes, lowercase hex: identifies the model.
    pub sha256: String,
    pub bytes: u64,
}

/// Where it was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Machine {
    /// `model name` of /proc/cpuinfo (as lscpu shows it), or "unknown".
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub logical_cpus: usize,
    pub os: String,
    pub arch: String,
}

/// How the session ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// Threads of the inference session (the runtime runs on 1 today).
    pub threads: usize,
    /// Arithmetic of the model ("f32" today).
    pub precision: String,
    /// "sparse" (pagrt's kernels, the default) or "dense" (the masked reference).
    pub execution: String,
    /// The model's input size, height × width.
    pub input_hw: [usize; 2],
}

/// How the numbers were taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Method {
    /// What a frame's latency covers.
    pub latency: String,
    /// Frames run and discarded at each mode before each round's timed frames.
    pub warmup_frames: usize,
    /// Timed frames per mode per round.
    pub frames_per_round: usize,
    /// Rounds; modes are interleaved within each round so that drift hits every mode alike.
    pub rounds: usize,
    /// Which images were run.
    pub images: String,
}

/// One mode's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    /// `budget:ρ` or `native`.
    pub mode: String,
    /// ρ of a budget point; `None` for native.
    pub rho: Option<f32>,
    /// Whole frame (`Session::run`: normalise, model, outputs), milliseconds.
    pub frame_ms: Stats,
    /// The model alone (`Session::last_inference_seconds`), milliseconds.
    pub inference_ms: Stats,
    /// Median frame time at ρ=1 / this point's (> 1 = faster).
    pub speedup_vs_rho1: f64,
    /// Mean active density of the gated layers (telemetry), if the model has sparse ops.
    pub mean_density: Option<f32>,
    /// Millijoules per frame; `None` where the platform exposes no energy counter.
    pub energy_mj_per_frame: Option<f64>,
}

/// Order statistics of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stats {
    pub n: usize,
    pub median: f64,
    pub p10: f64,
    pub p90: f64,
    pub min: f64,
    pub max: f64,
    /// Median absolute deviation from the median.
    pub mad: f64,
}

impl Stats {
    /// Of a non-empty sample (sorted here).
    pub fn of(sample: &mut [f64]) -> Stats {
        assert!(!sample.is_empty(), "statistics of an empty sample");
        sample.sort_by(f64::total_cmp);
        let q = |s: &[f64], p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
        let median = q(sample, 0.5);
        let mut dev: Vec<f64> = sample.iter().map(|x| (x - median).abs()).collect();
        dev.sort_by(f64::total_cmp);
        Stats {
            n: sample.len(),
            median,
            p10: q(sample, 0.1),
            p90: q(sample, 0.9),
            min: sample[0],
            max: sample[sample.len() - 1],
            mad: q(&dev, 0.5),
        }
    }
}

/// Whether energy per frame was measured, and from what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Energy {
    pub available: bool,
    /// E.g. `rapl:/sys/class/powercap/intel-rapl:0/energy_uj` or `ina3221:VDD_IN`.
    pub source: Option<String>,
    /// What was looked for and why it is (un)available.
    pub note: String,
}

impl DeviceProfile {
    /// Reads and checks a profile: JSON syntax, `format`, `version`, and every point.
    pub fn load(path: &Path) -> Result<DeviceProfile, CalibrationError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| CalibrationError::Io { path: path.into(), source })?;
        Self::from_json(&text).map_err(|reason| CalibrationError::Format { path: path.into(), reason })
    }

    /// Parses and checks a profile from JSON text.
    pub fn from_json(text: &str) -> Result<DeviceProfile, String> {
        // Check format and version before the full schema, so that a newer file says so.
        let head: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match head.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(format!("`format` is `{other}`, expected `{FORMAT}`")),
            None => return Err(format!("no `format` field: not a {FORMAT} file")),
        }
        match head.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) => {
                return Err(format!(
                    "version {v} is not supported (this build reads version {FORMAT_VERSION}); re-run `pag profile`"
                ))
            }
            None => return Err("no numeric `version` field".into()),
        }
        let p: DeviceProfile = serde_json::from_value(head).map_err(|e| format!("{e}"))?;
        p.latency_profile().map_err(|e| e.to_string())?;
        Ok(p)
    }

    /// Writes the profile as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let text = serde_json::to_string_pretty(self).expect("a profile always serialises");
        std::fs::write(path, text + "\n").map_err(|source| CalibrationError::Io { path: path.into(), source })
    }

    /// The controller's feed-forward: median whole-frame seconds at each budget ρ.
    pub fn latency_profile(&self) -> Result<LatencyProfile, pag_runtime::controller::ConfigError> {
        let mut pts = Vec::with_capacity(self.points.len());
        for p in &self.points {
            let rho = p.rho.ok_or_else(|| {
                pag_runtime::controller::ConfigError::Profile(format!("point `{}` in `points` has no ρ", p.mode))
            })?;
            pts.push(ProfilePoint { rho, seconds: (p.frame_ms.median * 1e-3) as f32 });
        }
        LatencyProfile::new(&pts)
    }

    /// The ρ=1 point's median frame time in milliseconds, if measured.
    pub fn rho1_ms(&self) -> Option<f64> {
        self.points.iter().find(|p| p.rho == Some(1.0)).map(|p| p.frame_ms.median)
    }

    /// Whether `onnx_bytes` is the model this profile was measured with.
    pub fn is_for_model(&self, onnx_bytes: &[u8]) -> bool {
        crate::sha256_hex(onnx_bytes) == self.model.sha256
    }
}
