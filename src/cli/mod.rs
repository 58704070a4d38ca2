use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod bench;
mod calibrate;
mod control;
mod info;
mod profile;
mod run;
mod scenes;

/// pagrt: Pixel-wise Attentional Gating models on CPU.
#[derive(Parser)]
#[command(name = "pag", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a model on an image (or a rendered scene) and write pictures and raw outputs;
    /// or, with --input, run any ONNX model on .npy tensors.
    Run(run::RunArgs),
    /// Print what the loader found in a model: classes, input, gated blocks, MultiPool, MACs.
    Info {
        /// The model (.onnx). Default: the shipped multi-task PAG model.
        #[arg(long)]
        model: Option<PathBuf>,
    },
    /// Time whole frames per compute mode on one thread (median, p10, p90).
    Bench(bench::BenchArgs),
    /// Render synthetic indoor scenes with exact ground truth (RGB, labels, depth, normals).
    Scenes(scenes::ScenesArgs),
    /// Measure a device profile for the ρ controller: frame latency vs ρ (and native) on this
    /// machine, energy where exposed; writes versioned JSON (calibration/README.md).
    Profile(profile::ProfileArgs),
    /// Drive a trajectory video through the ρ controller in timed phases with and without a
    /// CPU hog; prints miss rate, misses after the step, settling time and mean ρ per phase.
    Control(control::ControlArgs),
    /// Quantize a float PAG model to int8: calibrate activation ranges on images and write a
    /// QDQ ONNX model (u8 activations, s8 per-channel weights) plus a statistics cache.
    Calibrate(calibrate::CalibrateArgs),
}

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(a) => run::run(a),
        Command::Info { model } => info::info(&model.unwrap_or_else(default_model)),
        Command::Scenes(a) => scenes::scenes(a),
        Command::Bench(a) => bench::bench(a),
        Command::Profile(a) => profile::profile(a),
        Command::Control(a) => control::control(a),
        Command::Calibrate(a) => calibrate::calibrate(a),
    }
}

/// How gated blocks execute: `sparse` runs pagrt's kernels (inactive pixels skipped), `dense`
/// runs tract's ops on every pixel and multiplies by the masks (the reference).
#[derive(Clone, Copy, Default, clap::ValueEnum)]
pub enum Exec {
    #[default]
    Sparse,
    Dense,
}

/// Where and on how many threads a model runs.
#[derive(clap::Args, Clone, Debug)]
pub struct DeviceArgs {
    /// Threads per session (default: every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// `cpu`, `cuda`, `cuda:N` or `auto` (CUDA when this build and machine have it, else CPU).
    #[arg(long, default_value = "cpu")]
    pub device: pag_runtime::Device,
    /// What idle worker threads do during a frame: `poll` for its work (the fastest frames on
    /// otherwise idle cores, as onnxruntime spins by default) or `sleep` (leave the cores to
    /// other busy threads).
    #[arg(long, default_value = "poll")]
    pub worker_wait: pag_runtime::WorkerWait,
}

/// The renderer's camera mount for a model's declared one.
pub fn mount_of(m: &pag_runtime::CameraMountSpec) -> pag_models::CameraMount {
    pag_models::CameraMount {
        height_m: m.height_m,
        height_play_m: m.height_play_m,
        pitch_deg: m.pitch_deg,
        pitch_play_deg: m.pitch_play_deg,
        roll_play_deg: m.roll_play_deg,
    }
}

/// Load `path` for `exec`; says once, on stderr, which PAG modules fall back to dense execution.
pub fn load_model(path: &std::path::Path, exec: Exec, device: &DeviceArgs) -> Result<pag_runtime::PagModel> {
    use anyhow::Context;
    let execution = match exec {
        Exec::Sparse => pag_runtime::Execution::Sparse,
        Exec::Dense => pag_runtime::Execution::Dense,
    };
    let options = pag_runtime::LoadOptions {
        execution,
        device: device.device,
        threads: device.threads,
        worker_wait: device.worker_wait,
        ..Default::default()
    };
    let model = pag_runtime::PagModel::load_with_options(path, options)
        .with_context(|| format!("loading {}", path.display()))?;
    for reason in &model.dense_fallbacks {
        eprintln!("note: {reason}");
    }
    Ok(model)
}

/// The shipped multi-task PAG model of this checkout.
pub fn default_model() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shipped/pag_multitask.onnx")
}
