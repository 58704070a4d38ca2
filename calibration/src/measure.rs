//! Measuring a device profile: a model's frame latency per mode on this machine.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ndarray::Array3;
use pag_models::{CameraMount, Intrinsics, Scene, Trajectory};
use pag_runtime::{ComputeMode, Execution, LoadOptions, PagModel, Session};

use crate::energy::{EnergyMeter, Reading};
use crate::format::{DeviceProfile, Energy, Machine, Method, ModelId, Point, SessionSettings, Stats};
use crate::{CalibrationError, FORMAT, FORMAT_VERSION};

/// What to measure and how.
#[derive(Debug, Clone)]
pub struct MeasureOptions {
    pub model: PathBuf,
    /// Budget ρ values; ρ = 1 is added if missing (speedups are relative to it).
    pub rhos: Vec<f32>,
    /// Also measure native mode.
    pub native: bool,
    pub warmup: usize,
    pub frames: usize,
    pub rounds: usize,
    /// Distinct frames of a rendered robot trajectory the timed frames cycle through.
    pub images: usize,
    pub trajectory_seed: u64,
    /// Root of the sysfs tree energy counters are looked for under (`/`).
    pub sysfs_root: PathBuf,
    /// Threads of the measured session (`None`: every core, the session default).
    pub threads: Option<usize>,
}

impl MeasureOptions {
    /// ρ = 1, 0.9, …, `rho_min` (step 0.1) plus native; 3 rounds of 20 frames after 3 warm-up
    /// frames per mode and round; 16 trajectory frames.
    pub fn new(model: impl Into<PathBuf>, rho_min: f32) -> MeasureOptions {
        let mut rhos = Vec::new();
        let mut k = 10;
        while k as f32 / 10.0 >= rho_min - 1e-6 && k > 0 {
            rhos.push(k as f32 / 10.0);
            k -= 1;
        }
        MeasureOptions {
            model: model.into(),
            rhos,
            native: true,
            warmup: 3,
            frames: 20,
            rounds: 3,
            images: 16,
            trajectory_seed: 3,
            sysfs_root: PathBuf::from("/"),
            threads: None,
        }
    }

    fn validate(&self) -> Result<(), CalibrationError> {
        let bad = |s: String| Err(CalibrationError::Options(s));
        if let Some(r) = self.rhos.iter().find(|r| !(r.is_finite() && **r > 0.0 && **r <= 1.0)) {
            return bad(format!("every ρ must be in (0, 1], got {r}"));
        }
        if self.frames == 0 || self.rounds == 0 || self.images == 0 {
            return bad(format!(
                "frames, rounds and images must be ≥ 1 (got {}, {}, {})",
                self.frames, self.rounds, self.images
            ));
        }
        if self.rhos.len() + 1 > pag_runtime::controller::MAX_PROFILE_POINTS {
            return bad(format!("at most {} ρ values", pag_runtime::controller::MAX_PROFILE_POINTS - 1));
        }
        Ok(())
    }
}

/// What the measurement is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Rendering {
        images: usize,
    },
    /// `done` of `total` timed frames; the mode being timed.
    Frames {
        done: usize,
        total: usize,
        mode: ComputeMode,
    },
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `model name` from /proc/cpuinfo (what lscpu shows), or "unknown".
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Frames of a robot trajectory at the model's input size (the mount the model is trained for).
pub fn trajectory_frames(model: &PagModel, count: usize, seed: u64) -> Vec<Array3<u8>> {
    let i = &model.info;
    let intr = Intrinsics::with_hfov(i.input.width as u32, i.input.height as u32, i.camera_hfov_deg.unwrap_or(70.0));
    let scene = Scene::random(seed);
    let traj = Trajectory::with_mount(&scene, seed, &CameraMount::ROBOT);
    (0..count).map(|k| scene.render(&intr, &traj.pose_at(k as f32 / 10.0)).rgb).collect()
}

struct Sample {
    frame_ms: Vec<f64>,
    inference_ms: Vec<f64>,
    density: Vec<f32>,
    millijoules: f64,
    energy_frames: usize,
}

/// Measures `opts.model` on this machine. Modes are interleaved within each round.
pub fn measure(opts: &MeasureOptions, progress: &mut dyn FnMut(Progress)) -> Result<DeviceProfile, CalibrationError> {
    opts.validate()?;
    let bytes =
        std::fs::read(&opts.model).map_err(|source| CalibrationError::Io { path: opts.model.clone(), source })?;
    let load = LoadOptions { execution: Execution::Sparse, threads: opts.threads, ..LoadOptions::default() };
    let model = Arc::new(PagModel::load_with_options(&opts.model, load)?);
    progress(Progress::Rendering { images: opts.images });
    let images = trajectory_frames(&model, opts.images, opts.trajectory_seed);
    let mut rhos = opts.rhos.clone();
    if !rhos.contains(&1.0) {
        rhos.push(1.0);
    }
    rhos.sort_by(|a, b| b.total_cmp(a));
    rhos.dedup();
    // Every ρ was validated in (0, 1] above.
    let mut modes: Vec<ComputeMode> = rhos.iter().filter_map(|&r| ComputeMode::budget(r).ok()).collect();
    if opts.native {
        modes.push(ComputeMode::Native);
    }
    let (meter, note) = EnergyMeter::probe(&opts.sysfs_root);
    let mut samples: Vec<Sample> = modes
        .iter()
        .map(|_| Sample { frame_ms: vec![], inference_ms: vec![], density: vec![], millijoules: 0.0, energy_frames: 0 })
        .collect();
    let mut session = Session::new(model.clone())?;
    let total = modes.len() * opts.rounds * opts.frames;
    let mut done = 0;
    let mut next_image = 0;
    for _ in 0..opts.rounds {
        for (mode, sample) in modes.iter().zip(&mut samples) {
            session.set_mode(*mode);
            for _ in 0..opts.warmup {
                session.run(images[next_image % images.len()].view())?;
                next_image += 1;
            }
            let (start, t0) = (meter.as_ref().and_then(EnergyMeter::read), Instant::now());
            let mut powers: Vec<Reading> = Vec::new();
            for _ in 0..opts.frames {
                let t = Instant::now();
                session.run(images[next_image % images.len()].view())?;
                sample.frame_ms.push(t.elapsed().as_secs_f64() * 1e3);
                next_image += 1;
                sample.inference_ms.push(session.last_inference_seconds() * 1e3);
                if let Some(t) = session.telemetry() {
                    let n = t.layers.len().max(1) as f32;
                    sample.density.push(t.layers.iter().map(|l| l.density).sum::<f32>() / n);
                }
                if let Some(EnergyMeter::Ina3221 { .. }) = &meter {
                    powers.extend(meter.as_ref().and_then(EnergyMeter::read));
                }
                done += 1;
                progress(Progress::Frames { done, total, mode: *mode });
            }
            let secs = t0.elapsed().as_secs_f64();
            match (&meter, start) {
                (Some(m @ EnergyMeter::Rapl { .. }), Some(a)) => {
                    if let Some(mj) = m.read().and_then(|b| m.millijoules(&a, &b, secs)) {
                        sample.millijoules += mj;
                        sample.energy_frames += opts.frames;
                    }
                }
                (Some(EnergyMeter::Ina3221 { .. }), _) if !powers.is_empty() => {
                    let mean_mw =
                        powers.iter().map(|r| if let Reading::PowerMw(p) = r { *p } else { 0.0 }).sum::<f64>()
                            / powers.len() as f64;
                    sample.millijoules += mean_mw * secs;
                    sample.energy_frames += opts.frames;
                }
                _ => {}
            }
        }
    }
    let mut points: Vec<Point> = modes
        .iter()
        .zip(samples)
        .map(|(mode, mut s)| Point {
            mode: mode.to_string(),
            rho: match mode {
                ComputeMode::Budget(r) => Some(r.get()),
                _ => None,
            },
            frame_ms: Stats::of(&mut s.frame_ms),
            inference_ms: Stats::of(&mut s.inference_ms),
            speedup_vs_rho1: 0.0,
            mean_density: (!s.density.is_empty()).then(|| s.density.iter().sum::<f32>() / s.density.len() as f32),
            energy_mj_per_frame: (s.energy_frames > 0).then(|| s.millijoules / s.energy_frames as f64),
        })
        .collect();
    let base = points[0].frame_ms.median;
    for p in &mut points {
        p.speedup_vs_rho1 = base / p.frame_ms.median;
    }
    let native = if opts.native { points.pop() } else { None };
    Ok(DeviceProfile {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        created_unix_s: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        model: ModelId {
            path: opts.model.display().to_string(),
            sha256: sha256_hex(&bytes),
            bytes: bytes.len() as u64,
        },
        machine: Machine {
            cpu_model: cpu_model(),
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
        },
        session: SessionSettings {
            threads: session.threads(),
            precision: "f32".into(),
            execution: "sparse".into(),
            input_hw: [model.info.input.height, model.info.input.width],
        },
        method: Method {
            latency: "whole frame: Session::run (normalise the u8 image, the model, the outputs)".into(),
            warmup_frames: opts.warmup,
            frames_per_round: opts.frames,
            rounds: opts.rounds,
            images: format!(
                "{} frames of a rendered robot trajectory (scene seed {}, robot mount, 10 fps), cycled",
                opts.images, opts.trajectory_seed
            ),
        },
        points,
        native,
        energy: Energy { available: meter.is_some(), source: meter.as_ref().map(EnergyMeter::source), note },
    })
}

/// `measure` with the defaults of [`MeasureOptions::new`], for the model at `model`.
pub fn measure_default(model: &Path, rho_min: f32) -> Result<DeviceProfile, CalibrationError> {
    measure(&MeasureOptions::new(model, rho_min), &mut |_| {})
}
