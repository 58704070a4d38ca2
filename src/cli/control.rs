//! `pag control`: drive a trajectory video through the ρ controller on this machine, in timed
//! phases with and without a real CPU hog, and report miss rate, misses after each step,
//! settling time and mean ρ per phase (the real disturbance run; scripts/controller_disturbance.sh).
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use ndarray::Array3;
use pag_calibration::{measure, ros_glue::quick_profile_options, trajectory_frames, DeviceProfile};
use pag_runtime::controller::{BatteryPolicy, Controller, ControllerConfig, Frame, KalmanParams, LatencyLaw, Reason};
use pag_runtime::{ComputeMode, Session};

use crate::{imageio, viz};

#[derive(Args)]
pub struct ControlArgs {
    /// The model (.onnx). Default: the shipped multi-task PAG model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// A device profile from `pag profile`; without one a quick profile is measured first.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Deadline in milliseconds (default: --deadline-factor × the profile's ρ=1 median).
    #[arg(long)]
    deadline_ms: Option<f64>,
    #[arg(long, default_value_t = 1.2)]
    deadline_factor: f64,
    /// Camera rate: frame k starts at k / fps (or at once when behind).
    #[arg(long, default_value_t = 30.0)]
    fps: f64,
    /// Phases as `name:seconds`, name `steady` or `hog` (a CPU hog runs during `hog`).
    #[arg(long, default_value = "steady:15,hog:15,steady:15")]
    phases: String,
    /// Busy-looping threads of the in-process hog during `hog` phases (0: the caller runs its
    /// own hog, e.g. scripts/controller_disturbance.sh starts and stops processes).
    #[arg(long, default_value_t = 3)]
    hog_threads: usize,
    /// Create this file when the timed phases start (after loading and warm-up), so that a
    /// script can start its own hog in step with the phases.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// A directory of `pag scenes --trajectory` output (`*_rgb.png`, in name order); default:
    /// render --images frames of a robot trajectory in-process.
    #[arg(long)]
    video: Option<PathBuf>,
    #[arg(long, default_value_t = 60)]
    images: usize,
    #[arg(long, default_value_t = 0.2)]
    rho_min: f32,
    /// Run at this fixed ρ instead of the controller (a baseline).
    #[arg(long)]
    fixed_rho: Option<f32>,
    /// `kalman` (default) or `integral:GAIN:MARGIN`, e.g. `integral:0.3:0.3`.
    #[arg(long, default_value = "kalman")]
    law: String,
    /// Write one CSV line per frame here.
    #[arg(long)]
    csv: Option<PathBuf>,
    #[command(flatten)]
    device: super::DeviceArgs,
}

#[derive(Clone, Copy)]
struct Phase {
    hog: bool,
    seconds: f64,
}

fn parse_phases(s: &str) -> Result<Vec<Phase>> {
    s.split(',')
        .map(|p| {
            let (name, secs) =
                p.trim().split_once(':').with_context(|| format!("phase `{p}` is not `name:seconds`"))?;
            let seconds: f64 = secs.parse().with_context(|| format!("phase `{p}`: `{secs}` is not seconds"))?;
            if !(seconds.is_finite() && seconds > 0.0 && seconds <= 600.0) {
                bail!("phase `{p}`: seconds must be in (0, 600]");
            }
            match name {
                "steady" => Ok(Phase { hog: false, seconds }),
                "hog" => Ok(Phase { hog: true, seconds }),
                _ => bail!("phase `{p}`: name must be `steady` or `hog`"),
            }
        })
        .collect()
}

fn parse_law(s: &str) -> Result<LatencyLaw> {
    if s == "kalman" {
        return Ok(LatencyLaw::Kalman(KalmanParams::default()));
    }
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        ["integral", g, m] => Ok(LatencyLaw::Integral {
            gain: g.parse().with_context(|| format!("gain `{g}`"))?,
            margin: m.parse().with_context(|| format!("margin `{m}`"))?,
        }),
        _ => bail!("--law must be `kalman` or `integral:GAIN:MARGIN`, got `{s}`"),
    }
}

/// N threads spinning until dropped.
struct Hog {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Hog {
    fn start(n: usize) -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1.0f64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x * 1.000_000_1 + 1e-9);
                        }
                    }
                })
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

struct Rec {
    t: f64,
    phase: usize,
    rho: f32,
    latency: f64,
    late: bool,
    xi: f32,
    reason: Reason,
}

fn load_video(dir: &std::path::Path) -> Result<Vec<Array3<u8>>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read video directory {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with("_rgb.png"))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{} has no *_rgb.png frames (render some with `pag scenes --trajectory --out DIR`)", dir.display());
    }
    names.iter().map(|p| Ok(viz::from_image(&imageio::read_rgb(p)?))).collect()
}

pub fn control(a: ControlArgs) -> Result<()> {
    let model_path = a.model.clone().unwrap_or_else(super::default_model);
    let phases = parse_phases(&a.phases)?;
    let law = parse_law(&a.law)?;
    if !(a.fps.is_finite() && a.fps > 0.0 && a.fps <= 1000.0) {
        bail!("--fps must be in (0, 1000], got {}", a.fps);
    }
    let model = Arc::new(super::load_model(&model_path, super::Exec::Sparse, &a.device)?);
    let profile = match &a.profile {
        Some(p) => DeviceProfile::load(p)?,
        None => {
            eprintln!("no --profile: measuring a quick one (a few seconds)…");
            let p = measure(&quick_profile_options(&model_path, a.rho_min), &mut |_| {})?;
            super::profile::print_profile(&p);
            p
        }
    };
    let rho1_ms = profile.rho1_ms().context("the profile has no ρ=1 point")?;
    let deadline_ms = a.deadline_ms.unwrap_or(a.deadline_factor * rho1_ms);
    let cfg = ControllerConfig { rho_min: a.rho_min, law, battery: BatteryPolicy::off(), ..Default::default() };
    let mut controller =
        Controller::new(cfg, profile.latency_profile()?, deadline_ms * 1e-3).context("controller settings")?;
    if let Some(r) = a.fixed_rho {
        ComputeMode::budget(r)?;
    }
    let images = match &a.video {
        Some(dir) => load_video(dir)?,
        None => trajectory_frames(&model, a.images.max(1), 3),
    };
    let mut session = Session::new(model)?;
    for img in images.iter().take(5) {
        session.run(img.view())?; // warm-up
    }
    println!(
        "deadline {deadline_ms:.2} ms ({}× the profile's ρ=1 median {rho1_ms:.2} ms), {} fps, {} frames of video, {}",
        if a.deadline_ms.is_some() { "given, not".to_string() } else { format!("{}", a.deadline_factor) },
        a.fps,
        images.len(),
        a.fixed_rho.map_or(format!("controller {}", a.law), |r| format!("fixed ρ={r}"))
    );

    let period = Duration::from_secs_f64(1.0 / a.fps);
    if let Some(f) = &a.ready_file {
        std::fs::write(f, "").with_context(|| format!("writing {}", f.display()))?;
    }
    let mut recs: Vec<Rec> = Vec::new();
    let mut step_ns: Vec<f64> = Vec::new();
    let start = Instant::now();
    let mut d = controller.step(0.0, None, None);
    let mut hog: Option<Hog> = None;
    let mut phase_end = 0.0;
    for (pi, ph) in phases.iter().enumerate() {
        phase_end += ph.seconds;
        hog = match (ph.hog, hog.take()) {
            (true, Some(h)) => Some(h),
            (true, None) => (a.hog_threads > 0).then(|| Hog::start(a.hog_threads)),
            (false, _) => None, // dropping stops it
        };
        eprintln!("[{:6.1} s] phase {pi}: {}", start.elapsed().as_secs_f64(), if ph.hog { "hog" } else { "steady" });
        let mut k = recs.len() as u32;
        while start.elapsed().as_secs_f64() < phase_end {
            let due = start + period * k;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            k += 1;
            let rho = a.fixed_rho.unwrap_or(d.rho);
            session.set_mode(ComputeMode::budget(rho)?);
            let t = Instant::now();
            session.run(images[recs.len() % images.len()].view())?;
            let latency = t.elapsed().as_secs_f64();
            let now = start.elapsed().as_secs_f64();
            let ts = Instant::now();
            d = controller.step(now, Some(Frame { latency_s: latency as f32, rho }), None);
            step_ns.push(ts.elapsed().as_secs_f64() * 1e9);
            recs.push(Rec {
                t: now,
                phase: pi,
                rho,
                latency,
                late: latency * 1e3 > deadline_ms,
                xi: d.xi,
                reason: d.reason,
            });
        }
    }
    drop(hog);
    if let Some(path) = &a.csv {
        let mut s = String::from("t_s,phase,rho,latency_ms,late,xi,reason\n");
        for r in &recs {
            s += &format!(
                "{:.4},{},{:.4},{:.3},{},{:.4},{}\n",
                r.t,
                r.phase,
                r.rho,
                r.latency * 1e3,
                r.late as u8,
                r.xi,
                r.reason.as_str()
            );
        }
        std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))?;
    }
    report(&recs, &phases, deadline_ms, &profile, a.rho_min);
    step_ns.sort_by(f64::total_cmp);
    let med = step_ns[step_ns.len() / 2];
    println!(
        "controller step: median {med:.0} ns, p99 {:.0} ns (timed in the loop, Instant overhead included) = {:.4} % of the deadline",
        step_ns[(step_ns.len() - 1) * 99 / 100],
        100.0 * med * 1e-9 / (deadline_ms * 1e-3)
    );
    Ok(())
}

fn report(recs: &[Rec], phases: &[Phase], deadline_ms: f64, profile: &DeviceProfile, rho_min: f32) {
    println!("phase      frames  miss %   mean ρ  mean ms   p50 ms   p95 ms  mean ξ̂   misses in first 20  settle (frames / ms)  ρ back within 5 % (frames)  overshoot");
    let mut prev_rho: Option<f32> = None;
    for (pi, ph) in phases.iter().enumerate() {
        let r: Vec<&Rec> = recs.iter().filter(|x| x.phase == pi).collect();
        if r.is_empty() {
            continue;
        }
        let n = r.len() as f64;
        let miss = r.iter().filter(|x| x.late).count() as f64 / n;
        let mean_rho = r.iter().map(|x| x.rho as f64).sum::<f64>() / n;
        let mean_ms = r.iter().map(|x| x.latency).sum::<f64>() / n * 1e3;
        let mut lat: Vec<f64> = r.iter().map(|x| x.latency * 1e3).collect();
        lat.sort_by(f64::total_cmp);
        let q = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
        let xi = r.iter().map(|x| x.xi as f64).sum::<f64>() / n;
        let first20 = r.iter().take(20).filter(|x| x.late).count();
        let (mut settle, mut back, mut overshoot) = ("-".to_string(), "-".to_string(), "-".to_string());
        if ph.hog {
            let k = (0..r.len().saturating_sub(10)).find(|&k| r[k..k + 10].iter().all(|x| !x.late));
            settle = k.map_or("never".into(), |k| format!("{k} / {:.0}", (r[k].t - r[0].t) * 1e3));
        } else if let Some(prior) = prev_rho {
            let k = r.iter().position(|x| (x.rho - prior).abs() <= 0.05 * prior);
            back = k.map_or("never".into(), |k| format!("{k} (prior ρ {prior:.3})"));
            let max = r.iter().map(|x| x.rho).fold(0.0, f32::max);
            overshoot = format!("{:.1} %", ((max / prior - 1.0) * 100.0).max(0.0));
        }
        if !ph.hog {
            let tail = &r[r.len().saturating_sub(50)..];
            prev_rho = Some(tail.iter().map(|x| x.rho).sum::<f32>() / tail.len() as f32);
        }
        println!(
            "{:<9} {:>7} {:>7.2} {:>8.3} {:>8.2} {:>8.2} {:>8.2} {:>7.3} {:>19} {:>21} {:>27} {:>10}",
            if ph.hog { "hog" } else { "steady" },
            r.len(),
            miss * 100.0,
            mean_rho,
            mean_ms,
            q(0.5),
            q(0.95),
            xi,
            if ph.hog { first20.to_string() } else { "-".into() },
            settle,
            back,
            overshoot
        );
        if ph.hog {
            // Could the knob absorb this slowdown? Needed: t(ρ)/t(1) ≤ deadline / (ξ·t(1)).
            let floor = r.iter().filter(|x| x.reason == Reason::Floor).count();
            if let (Ok(lp), Some(t1)) = (profile.latency_profile(), profile.rho1_ms()) {
                let best = lp.seconds_at(rho_min) as f64 * 1e3;
                let needed = deadline_ms / xi;
                println!(
                    "          slowdown ξ̂ ≈ {xi:.2}: needs a frame ≤ {needed:.2} ms as profiled ({:.2}× faster than ρ=1's {t1:.2} ms); ρ_min={rho_min} gives {best:.2} ms ({:.2}×){}; {floor} frames pinned at the floor",
                    t1 / needed,
                    t1 / best,
                    if best > needed { format!(": short by {:.2}×", best / needed) } else { ": absorbable".into() }
                );
            }
        }
    }
    let total_miss = recs.iter().filter(|x| x.late).count() as f64 / recs.len().max(1) as f64;
    println!("all: {} frames, {:.2} % over the {deadline_ms:.2} ms deadline", recs.len(), total_miss * 100.0);
}
