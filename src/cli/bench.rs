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
    /// Interleaved rounds: each round runs every mode for frames / rounds frames.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Print one JSON object per mode instead of a table.
    #[arg(long)]
    json: bool,
    /// Also print where a frame's inference time goes: per operator type and the slowest nodes.
    #[arg(long)]
    profile: bool,
    #[command(flatten)]
    device: super::DeviceArgs,
}

/// Times whole frames (resize + normalisation + inference + output conversion) on the session's
/// threads (`--threads`, default every core). Modes are interleaved: `--rounds` rounds, each
/// running every mode for its share of `--frames`, so ratios between modes are measured side by
/// side. Prints a ladder: speedup over the first mode, the ideal speedup from executed MACs, and
/// the fraction of that ideal reached.
pub fn bench(a: BenchArgs) -> Result<()> {
    let path = a.model.unwrap_or_else(super::default_model);
    let model = Arc::new(super::load_model(&path, a.execution, &a.device)?);
    let (h, w) = (model.info.input.height as u32, model.info.input.width as u32);
    let scene = Scene::random(1);
    let pose = match &model.info.camera_mount {
        Some(m) => scene.mount_pose(1, &super::mount_of(m)),
        None => scene.random_pose(1),
    };
    let rgb = scene.render(&Intrinsics::with_hfov(w, h, model.info.camera_hfov_deg.unwrap_or(70.0)), &pose).rgb;
    let exec_name = match a.execution {
        super::Exec::Sparse => "sparse",
        super::Exec::Dense => "dense",
    };
    let mut session = Session::new(model.clone())?;
    let rounds = a.rounds.max(1);
    let per_round = a.frames.max(1).div_ceil(rounds);
    let n = a.mode.len();
    let (mut ms, mut inference_ms) = (vec![Vec::new(); n], vec![Vec::new(); n]);
    // Each round's median frame time per mode: the ladder's spread between rounds.
    let mut round_ms = vec![Vec::with_capacity(rounds); n];
    let mut executed = vec![0u64; n];
    for (i, &mode) in a.mode.iter().enumerate() {
        session.set_mode(mode);
        for _ in 0..a.warmup {
            session.run(rgb.view())?;
        }
        // Executed MACs of the whole frame: the model's dense count minus what the sparse
        // modules skipped (their dense minus executed MACs); equal to dense_macs without them.
        let skipped = session.telemetry().map_or(0, |t| t.dense_macs_total - t.executed_macs_total);
        executed[i] = model.dense_macs - skipped;
    }
    for _ in 0..rounds {
        for (i, &mode) in a.mode.iter().enumerate() {
            session.set_mode(mode);
            session.run(rgb.view())?;
            for _ in 0..per_round {
                let t = Instant::now();
                session.run(rgb.view())?;
                ms[i].push(t.elapsed().as_secs_f64() * 1e3);
                inference_ms[i].push(session.last_inference_seconds() * 1e3);
            }
            let mut this_round = ms[i][ms[i].len() - per_round..].to_vec();
            round_ms[i].push(quantile(&mut this_round, 0.5));
        }
    }
    println!(
        "{} on {} thread(s) (idle workers {}), {}×{}, CPU kernels: {}, precision: {}",
        path.display(),
        session.threads(),
        session.worker_wait(),
        w,
        h,
        pag_runtime::kernels::cpu_f32::isa::best().name,
        model.precision()
    );
    let mut ladder = Vec::new();
    for (i, mode) in a.mode.iter().enumerate() {
        let (p50, p10, p90) = (quantile(&mut ms[i], 0.5), quantile(&mut ms[i], 0.1), quantile(&mut ms[i], 0.9));
        let inference = quantile(&mut inference_ms[i], 0.5);
        ladder.push((mode.to_string(), p50, executed[i]));
        if a.json {
            println!(
                "{}",
                serde_json::json!({"model": path, "execution": exec_name, "mode": mode.to_string(), "threads": session.threads(), "frames": ms[i].len(), "median_ms": p50, "p10_ms": p10, "p90_ms": p90, "dense_macs": model.dense_macs, "executed_macs": executed[i], "inference_median_ms": inference, "round_median_ms": round_ms[i]})
            );
        } else {
            println!(
                "{exec_name:<7} {:<12} median {:7.2} ms  p10 {:7.2}  p90 {:7.2}  (model alone {:.2} ms; {} frames, {:.1} MMAC executed)",
                mode.to_string(),
                p50,
                p10,
                p90,
                inference,
                ms[i].len(),
                executed[i] as f64 / 1e6
            );
        }
    }
    if !a.json && n > 1 {
        let (base_ms, base_macs) = (ladder[0].1, ladder[0].2 as f64);
        let spread_legend = if rounds > 1 {
            format!("; [lowest – highest of the {rounds} rounds' own speedups: how far host noise moves it]")
        } else {
            String::new()
        };
        println!("ladder (against {}): mode, speedup, ideal from executed MACs, of ideal{spread_legend}", ladder[0].0);
        for (i, (mode, p50, macs)) in ladder.iter().enumerate() {
            let (speedup, ideal) = (base_ms / p50, base_macs / *macs as f64);
            let mut line = format!("  {mode:<12} {speedup:5.2}×  ideal {ideal:5.2}×  {:5.2}", speedup / ideal);
            if rounds > 1 && i > 0 {
                let (lo, hi) = spread(&round_ms[0], &round_ms[i]);
                line += &format!("   [{lo:.2}× – {hi:.2}×, of ideal {:.2} – {:.2}]", lo / ideal, hi / ideal);
            }
            println!("{line}");
        }
    }
    if a.profile {
        for &mode in &a.mode {
            session.set_mode(mode);
            println!("profile, {mode}:");
            profile(&mut session, rgb.view(), a.frames.max(1))?;
        }
    }
    Ok(())
}

/// The `p` quantile of `v` (sorts it): the element at rank `round((len − 1) · p)`.
fn quantile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Lowest and highest of the per-round speedups `base[r] / mode[r]` (each round's medians,
/// measured minutes apart at most): how much the host moved the ladder during the run.
fn spread(base: &[f64], mode: &[f64]) -> (f64, f64) {
    base.iter().zip(mode).map(|(b, m)| b / m).fold((f64::INFINITY, 0f64), |(lo, hi), s| (lo.min(s), hi.max(s)))
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
    for (k, t) in
        sorted(by_node).iter().take(std::env::var("PAG_PROFILE_NODES").ok().and_then(|v| v.parse().ok()).unwrap_or(10))
    {
        println!("    {t:7.2} ms  {k}");
    }
    Ok(())
}
