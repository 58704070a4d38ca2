use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pag_models::{write_dataset, DatasetSpec};

#[derive(Args)]
pub struct ScenesArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Number of samples (or of frames with --trajectory).
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Seed of the first scene; sample i uses seed + i.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value_t = 320)]
    width: u32,
    #[arg(long, default_value_t = 240)]
    height: u32,
    /// Horizontal field of view in degrees.
    #[arg(long, default_value_t = 70.0)]
    hfov: f32,
    /// One scene, consecutive frames of a robot driving through it at 10 fps.
    #[arg(long)]
    trajectory: bool,
}

pub fn scenes(a: ScenesArgs) -> Result<()> {
    let spec = DatasetSpec {
        out_dir: a.out.clone(),
        first_seed: a.seed,
        count: a.count,
        width: a.width,
        height: a.height,
        hfov_deg: a.hfov,
        trajectory: a.trajectory,
    };
    let bar = ProgressBar::new(a.count as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message("rendering");
    let done = AtomicUsize::new(0);
    write_dataset(&spec, &|_| {
        done.fetch_add(1, Ordering::Relaxed);
        bar.set_position(done.load(Ordering::Relaxed) as u64);
    })
    .with_context(|| format!("writing scenes to {}", a.out.display()))?;
    bar.finish();
    println!("wrote {} samples to {}", done.load(Ordering::Relaxed), a.out.display());
    Ok(())
}
