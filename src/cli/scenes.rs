use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pag_models::{write_dataset, CameraMount, DatasetSpec};

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
    /// How the camera is carried: `random` (height 0.4–1.6 m, pitch −25°..+10°: varied views)
    /// or `robot` (0.60 ± 0.03 m, pitch −5 ± 3°, roll ± 2°, poses along a robot's trajectory:
    /// the mount the shipped model is trained for). Trajectories always use a robot mount.
    #[arg(long, value_enum, default_value_t = Mount::Random)]
    mount: Mount,
    /// With `--mount robot`: camera height above the floor in metres (default 0.60).
    #[arg(long, requires = "mount")]
    mount_height: Option<f32>,
    /// With `--mount robot`: camera pitch in degrees, negative looks down (default −5).
    #[arg(long, requires = "mount", allow_negative_numbers = true)]
    mount_pitch: Option<f32>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mount {
    Random,
    Robot,
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
        mount: match a.mount {
            Mount::Random if a.mount_height.is_some() || a.mount_pitch.is_some() => {
                anyhow::bail!("--mount-height and --mount-pitch need --mount robot")
            }
            Mount::Random => None,
            Mount::Robot => Some(CameraMount {
                height_m: a.mount_height.unwrap_or(CameraMount::ROBOT.height_m),
                pitch_deg: a.mount_pitch.unwrap_or(CameraMount::ROBOT.pitch_deg),
                ..CameraMount::ROBOT
            }),
        },
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
