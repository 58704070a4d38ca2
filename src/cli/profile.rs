//! `pag profile`: measure a device profile (frame latency vs ρ on this machine) for the ρ
//! controller and write it as JSON (format: calibration/README.md).
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pag_calibration::{measure, DeviceProfile, MeasureOptions, Progress};

#[derive(Args)]
pub struct ProfileArgs {
    /// The model (.onnx). Default: the shipped multi-task PAG model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Where to write the profile (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Sweep ρ = 1, 0.9, … down to this (step 0.1).
    #[arg(long, default_value_t = 0.2)]
    rho_min: f32,
    /// Explicit ρ values instead of the sweep (ρ = 1 is always added).
    #[arg(long, num_args = 1..)]
    rhos: Option<Vec<f32>>,
    /// Timed frames per mode per round.
    #[arg(long, default_value_t = 20)]
    frames: usize,
    /// Rounds; all modes are interleaved in each round.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Discarded frames per mode before each round's timed frames.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Distinct frames of a rendered robot trajectory to cycle through.
    #[arg(long, default_value_t = 16)]
    images: usize,
    /// Skip native mode.
    #[arg(long)]
    no_native: bool,
    /// Threads of the profiled session (default: every core); the profile records it.
    #[arg(long)]
    threads: Option<usize>,
}

pub fn profile(a: ProfileArgs) -> Result<()> {
    let model = a.model.unwrap_or_else(super::default_model);
    if !(a.rho_min > 0.0 && a.rho_min <= 1.0) {
        bail!("--rho-min must be in (0, 1], got {}", a.rho_min);
    }
    if let Some(parent) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        if !parent.is_dir() {
            bail!("cannot write {}: directory {} does not exist", a.out.display(), parent.display());
        }
    }
    let mut opts = MeasureOptions::new(&model, a.rho_min);
    if let Some(r) = a.rhos {
        opts.rhos = r;
    }
    opts.frames = a.frames;
    opts.rounds = a.rounds;
    opts.warmup = a.warmup;
    opts.images = a.images;
    opts.native = !a.no_native;
    opts.threads = a.threads;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} frames, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let p = measure(&opts, &mut |ev| match ev {
        Progress::Rendering { images } => bar.set_message(format!("rendering {images} frames")),
        Progress::Frames { done, total, mode } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(format!("timing {mode}"));
        }
    })
    .with_context(|| format!("profiling {}", model.display()))?;
    bar.finish_and_clear();
    p.save(&a.out)?;
    print_profile(&p);
    println!("→ {}", a.out.display());
    Ok(())
}

/// The profile as a table.
pub fn print_profile(p: &DeviceProfile) {
    println!(
        "{} ({} logical CPUs), {} thread(s), {}, {} execution; model sha256 {}…",
        p.machine.cpu_model,
        p.machine.logical_cpus,
        p.session.threads,
        p.session.precision,
        p.session.execution,
        &p.model.sha256[..12]
    );
    println!("mode          frame ms: median   p10     p90   (MAD)   model ms   speedup   density   mJ/frame");
    for pt in p.points.iter().chain(&p.native) {
        let density = pt.mean_density.map_or("-".into(), |d| format!("{d:.3}"));
        let energy = pt.energy_mj_per_frame.map_or("-".into(), |e| format!("{e:.1}"));
        println!(
            "{:<13} {:>16.2} {:>7.2} {:>7.2} ({:.2}) {:>9.2} {:>8.2}× {:>9} {:>10}",
            pt.mode,
            pt.frame_ms.median,
            pt.frame_ms.p10,
            pt.frame_ms.p90,
            pt.frame_ms.mad,
            pt.inference_ms.median,
            pt.speedup_vs_rho1,
            density,
            energy
        );
    }
    println!("energy: {}", p.energy.note);
}
