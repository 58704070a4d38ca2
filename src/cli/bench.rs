use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use ndarray::ArrayView3;
use pag_models::{Intrinsics, Scene};
use pag_runtime::{ComputeMode, Session};
use std::collections::HashMap;

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
    /// Also print where a frame's inference time goes: per operator type and the slowest nodes.
    #[arg(long)]
    profile: bool,
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
        let mut inference_ms = Vec::with_capacity(a.frames.max(1));
        let mut ms: Vec<f64> = (0..a.frames.max(1))
            .map(|_| {
                let t = Instant::now();
                let out = session.run(rgb.view()).map(|_| t.elapsed().as_secs_f64() * 1e3);
                inference_ms.push(session.last_inference_seconds() * 1e3);
                out
            })
            .collect::<Result<_, _>>()?;
        ms.sort_by(f64::total_cmp);
        inference_ms.sort_by(f64::total_cmp);
        let inference_median = inference_ms[inference_ms.len() / 2];
        if a.profile {
            profile(&mut session, rgb.view(), a.frames.max(1))?;
        }
        let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
        // Executed MACs of the whole frame: the model's dense count minus what the sparse
        // modules skipped (their dense minus executed MACs); equal to dense_macs without them.
        let skipped = session.telemetry().map_or(0, |t| t.dense_macs_total - t.executed_macs_total);
        let executed_macs = model.dense_macs - skipped;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"model": path, "execution": exec_name, "mode": mode.to_string(), "frames": ms.len(), "median_ms": q(0.5), "p10_ms": q(0.1), "p90_ms": q(0.9), "dense_macs": model.dense_macs, "executed_macs": executed_macs, "inference_median_ms": inference_median})
            );
        } else {
            println!(
                "{exec_name:<7} {:<12} median {:7.2} ms  p10 {:7.2}  p90 {:7.2}  (model alone {:.2} ms; {} frames, {}×{}, {:.1} MMAC executed)",
                mode.to_string(),
                q(0.5),
                q(0.1),
                q(0.9),
                inference_median,
                ms.len(),
                w,
                h,
                executed_macs as f64 / 1e6
            );
        }
    }
    Ok(())
}

/// Times each operator of the plan over `frames` frames; prints mean milliseconds per frame per
/// operator type and for the ten slowest nodes.
fn profile(session: &mut Session, rgb: ArrayView3<u8>, frames: usize) -> Result<()> {
    let (mut by_op, mut by_node) = (HashMap::<String, f64>::new(), HashMap::<String, f64>::new());
    for _ in 0..frames {
        session.run_profiled(rgb, &mut |op, node, s| {
            *by_op.entry(op.to_owned()).or_default() += s * 1e3 / frames as f64;
            *by_node.entry(format!("{node} ({op})")).or_default() += s * 1e3 / frames as f64;
        })?;
    }
    let sorted = |m: HashMap<String, f64>| {
        let mut v: Vec<_> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v
    };
    let by_op = sorted(by_op);
    println!("  inference {:.2} ms/frame by operator type:", by_op.iter().map(|x| x.1).sum::<f64>());
    for (k, t) in &by_op {
        println!("    {t:7.2} ms  {k}");
    }
    println!("  slowest nodes:");
    for (k, t) in sorted(by_node).iter().take(10) {
        println!("    {t:7.2} ms  {k}");
    }
    Ok(())
}
