//! `pag calibrate`: write an int8 QDQ version of a float PAG model (calibration/README.md).
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use pag_calibration::quantize::{
    calibrate as run_calibration, CacheStatus, CalibrateOptions, CalibrateProgress, ImageSource, Method,
    DEFAULT_KEEP_FLOAT, DEFAULT_METHOD,
};

#[derive(Args)]
pub struct CalibrateArgs {
    /// The float PAG model (.onnx).
    #[arg(long)]
    model: PathBuf,
    /// Where to write the QDQ model (.onnx).
    #[arg(long)]
    out: PathBuf,
    /// A folder of your own calibration images (PNG/JPEG, resized like `pag run --image`);
    /// default: rendered scenes with the model's camera mount.
    #[arg(long, conflicts_with_all = ["count", "seed"])]
    images: Option<PathBuf>,
    /// Scenes to render when no --images.
    #[arg(long, default_value_t = 64)]
    count: usize,
    /// First render seed (training used 10000–15999, held-out 900000–900199).
    #[arg(long, default_value_t = 500_000)]
    seed: u64,
    /// How each tensor's range is chosen: minmax, percentile (99.99) or entropy (KL).
    #[arg(long, default_value_t = DEFAULT_METHOD)]
    method: Method,
    /// Statistics cache (default: <out>.calib.json).
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Node-name substrings of convs kept in float (comma-separated; empty quantizes every conv).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_KEEP_FLOAT.map(String::from))]
    keep_float: Vec<String>,
    /// Threads running calibration frames (default: every core).
    #[arg(long)]
    threads: Option<usize>,
    /// 7-bit weights (±63), onnxruntime's "reduce range": for checking the model with
    /// onnxruntime on x86 CPUs without VNNI, whose int8 kernels lose accuracy on 8-bit weights.
    #[arg(long)]
    reduce_range: bool,
}

pub fn calibrate(a: CalibrateArgs) -> Result<()> {
    let mut opts = CalibrateOptions::new(&a.model, &a.out);
    opts.cache = a.cache;
    opts.images = match a.images {
        Some(dir) => ImageSource::Folder(dir),
        None => ImageSource::Render { count: a.count, seed: a.seed },
    };
    opts.method = a.method;
    opts.keep_float = a.keep_float.into_iter().filter(|s| !s.is_empty()).collect();
    opts.threads = a.threads;
    opts.reduce_range = a.reduce_range;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:28} [{bar:40}] {pos}/{len}, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let report = run_calibration(&opts, &mut |ev| match ev {
        CalibrateProgress::Images { done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message("preparing images");
        }
        CalibrateProgress::Frames { pass, done, total } => {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
            bar.set_message(if pass == 1 { "pass 1/2: ranges" } else { "pass 2/2: histograms" });
        }
    })
    .with_context(|| format!("calibrating {}", a.model.display()))?;
    bar.finish_and_clear();
    let cache = report.cache_path.display();
    match &report.cache_status {
        CacheStatus::Hit => eprintln!("reused calibration cache {cache} (0 frames run)"),
        CacheStatus::Missing => eprintln!("no calibration cache yet: ran {} frames, wrote {cache}", report.frames_run),
        CacheStatus::Invalid(why) => {
            eprintln!(
                "calibration cache {cache} is not valid: {why}; recomputed ({} frames) and rewrote it",
                report.frames_run
            )
        }
    }
    println!(
        "calibration: {:.3} s ({}, {} frames run); method {}; {} convs quantized, {} kept in float; {} activation tensors",
        report.calibration_seconds,
        if report.cache_status.is_hit() { "cache hit" } else { "statistics computed" },
        report.frames_run,
        report.method,
        report.quantized_convs.len(),
        report.kept_float_convs.len(),
        report.activation_tensors
    );
    println!(
        "→ {} ({:.1} kB, written in {:.3} s)",
        a.out.display(),
        report.out_bytes as f64 / 1e3,
        report.write_seconds
    );
    Ok(())
}
