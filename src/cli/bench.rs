use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use pag_models::{Intrinsics, Scene};
use pag_runtime::{ComputeMode, Session};

#[derive(Args)]
pub struct BenchArgs {
    /// The model (.onnx). Default: the shipped multi-task PAG model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Compute mode(s) to time, e.g. `dense native 0.5`.
    #[arg(long, num_args = 1.., default_value = "dense")]
    mode: Vec<ComputeMode>,
    /// How gated blocks execute (sparse skips inactive pixels; dense is the masked reference).
    #[arg(long, value_enum, default_value_t = super::Exec::Sparse)]
    execution: super::Exec,
    /// Timed frames per mode (after warm-up).
    #[arg(long, default_value_t = 30)]
    frames: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print one JSON object per mode instead of a table.
    #[arg(long)]
    json: bool,
}

/// Times whole frames (resize + normalisation + inference + output conversion) on one thread.
pub fn bench(a: BenchArgs) -> Result<()> {
    let path = a.model.unwrap_or_else(super::default_model);
    let model = Arc::new(super::load_model(&path, a.execution)?);
    let (h, w) = (model.info.input.height as u32, model.info.input.width as u32);
    let scene = Scene::random(1);
    let rgb = scene.render(&Intrinsics::with_hfov(w, h, 70.0), &scene.random_pose(1)).rgb;
    let exec_name = match a.execution {
        super::Exec::Sparse => "sparse",
        super::Exec::Dense => "dense",
    };
    let mut session = Session::new(model.clone())?;
    for mode in a.mode {
        session.set_mode(mode);
        for _ in 0..a.warmup {
            session.run(rgb.view())?;
        }
        let mut ms: Vec<f64> = (0..a.frames.max(1))
            .map(|_| {
                let t = Instant::now();
                session.run(rgb.view()).map(|_| t.elapsed().as_secs_f64() * 1e3)
            })
            .collect::<Result<_, _>>()?;
        ms.sort_by(f64::total_cmp);
        let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
        if a.json {
            println!(
                "{}",
                serde_json::json!({"model": path, "execution": exec_name, "mode": mode.to_string(), "frames": ms.len(), "median_ms": q(0.5), "p10_ms": q(0.1), "p90_ms": q(0.9), "dense_macs": model.dense_macs})
            );
        } else {
            println!(
                "{exec_name:<7} {:<12} median {:7.2} ms  p10 {:7.2}  p90 {:7.2}  ({} frames, {}×{})",
                mode.to_string(),
                q(0.5),
                q(0.1),
                q(0.9),
                ms.len(),
                w,
                h
            );
        }
    }
    Ok(())
}
