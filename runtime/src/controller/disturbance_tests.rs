//! The deterministic disturbance test: a simulated clock, latencies = the machine's true profile
//! × an injected slowdown × seeded jitter (Gaussian plus rare spikes); a steady phase, a 2×
//! slowdown step, its removal; a battery ramp 100 % → 5 % with ±1 % noise, a NaN burst, a
//! dropout and a jump to charging. `cargo test --release -p pag-runtime disturbance -- --nocapture`
//! prints the metrics of every law and profile.
use super::*;

/// SplitMix64: a seeded, portable generator (bit-identical on every machine).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const PERIOD_S: f64 = 0.05;
const RHOS: [f32; 7] = [0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0];

/// What model v2 aims at: ρ=0.5 ≈ 1.5×, ρ=0.25 ≈ 2.4× faster than ρ=1.
fn v2_shape(r: f32) -> f32 {
    // Piecewise linear through (0.25, 0.42), (0.5, 0.667), (0.75, 0.83), (1, 1).
    let pts = [(0.25, 0.42), (0.5, 0.667), (0.75, 0.83), (1.0, 1.0)];
    let i = pts.iter().position(|p| r <= p.0).unwrap_or(3).max(1);
    let (a, b) = (pts[i - 1], pts[i]);
    a.1 + (r - a.0) / (b.0 - a.0) * (b.1 - a.1)
}

/// Today's shipped model v1 (README, whole frame): 1.12× at ρ=0.5, 1.21× at ρ=0.3.
fn v1_profile() -> LatencyProfile {
    let pts = [(1.0, 11.96), (0.9, 12.19), (0.7, 11.50), (0.5, 10.71), (0.3, 9.85)]
        .map(|(rho, ms)| ProfilePoint { rho, seconds: ms * 1e-3 });
    LatencyProfile::new(&pts).unwrap()
}

fn v2_profile(seconds_at_1: f32) -> LatencyProfile {
    LatencyProfile::from_fn(&RHOS, seconds_at_1, v2_shape).unwrap()
}

struct Noise {
    jitter: f64,
    spike_prob: f64,
    spike: f64,
}

const NOISE: Noise = Noise { jitter: 0.03, spike_prob: 0.002, spike: 1.3 };

/// One simulated frame.
#[derive(Clone, Copy, Debug)]
struct Rec {
    late: bool,
    d: Decision,
}

/// Runs `frames` frames: the machine's latency at ρ is `truth.seconds_at(ρ) × slowdown(i) × noise`;
/// `battery(i)` is the reading passed at frame i. Returns one record per frame (the decision made
/// after it, applied to the next).
fn simulate(
    c: &mut Controller,
    truth: &LatencyProfile,
    noise: &Noise,
    seed: u64,
    frames: usize,
    slowdown: impl Fn(usize) -> f64,
    battery: impl Fn(usize) -> Option<BatteryReading>,
) -> Vec<Rec> {
    let mut rng = Rng(seed);
    let mut d = c.step(0.0, None, battery(0));
    let mut out = Vec::with_capacity(frames);
    for i in 0..frames {
        let mut f = 1.0 + noise.jitter * rng.normal();
        if rng.uniform() < noise.spike_prob {
            f *= noise.spike;
        }
        let latency = (truth.seconds_at(d.rho) as f64 * slowdown(i) * f.max(0.5)) as f32;
        let now = (i + 1) as f64 * PERIOD_S;
        let late = latency > c.deadline_s() as f32;
        d = c.step(now, Some(Frame { latency_s: latency, rho: d.rho }), battery(i + 1));
        out.push(Rec { late, d });
    }
    out
}

/// Phases of the latency scenario (frames): steady, 2× step, removed.
const STEADY: usize = 600;
const STEP_END: usize = 1000;
const END: usize = 1600;

#[derive(Debug)]
struct Metrics {
    steady_miss: f64,
    step_misses: usize,
    step_steady_miss: f64,
    settle: usize,
    prior_rho: f32,
    recover: usize,
    overshoot: f32,
    mean_rho_steady: f32,
    mean_rho_step: f32,
    floor_in_step: bool,
}

fn miss_rate(r: &[Rec]) -> f64 {
    r.iter().filter(|x| x.late).count() as f64 / r.len() as f64
}

fn mean_rho(r: &[Rec]) -> f32 {
    r.iter().map(|x| x.d.rho).sum::<f32>() / r.len() as f32
}

/// `rec[i].d` is the ρ that frame i+1 runs at; `rec[i].late` is frame i.
fn metrics(rec: &[Rec]) -> Metrics {
    let steady: Vec<Rec> = rec[..STEADY].iter().chain(&rec[STEP_END..]).copied().collect();
    let step = &rec[STEADY..STEP_END];
    // Settled: the first frame after which 10 in a row are on time.
    let settle = (0..step.len() - 10).find(|&k| step[k..k + 10].iter().all(|x| !x.late)).unwrap_or(step.len());
    let prior = mean_rho(&rec[STEADY - 100..STEADY]);
    let after = &rec[STEP_END..];
    let recover = after.iter().position(|x| (x.d.rho - prior).abs() <= 0.05 * prior).map_or(after.len(), |k| k + 1);
    // Overshoot: the transient's peak (3 s after the removal) above the prior mean.
    let max_after = after[..60].iter().map(|x| x.d.rho).fold(0.0, f32::max);
    Metrics {
        steady_miss: miss_rate(&steady),
        step_misses: step[..20].iter().filter(|x| x.late).count(),
        step_steady_miss: miss_rate(&step[20..]),
        settle,
        prior_rho: prior,
        recover,
        overshoot: (max_after / prior - 1.0).max(0.0),
        mean_rho_steady: mean_rho(&steady),
        mean_rho_step: mean_rho(&step[20..]),
        floor_in_step: step[20..].iter().all(|x| x.d.reason == Reason::Floor && x.d.rho == 0.25),
    }
}

fn full_battery(_: usize) -> Option<BatteryReading> {
    Some(BatteryReading { percentage: 1.0, status: PowerSupplyStatus::Discharging, age_s: 0.0 })
}

fn run_latency(
    law: LatencyLaw,
    given: &LatencyProfile,
    truth: &LatencyProfile,
    deadline: f64,
    noise: &Noise,
) -> Metrics {
    let cfg = ControllerConfig { law, ..Default::default() };
    let mut c = Controller::new(cfg, given.clone(), deadline).unwrap();
    let slow = |i: usize| if (STEADY..STEP_END).contains(&i) { 2.0 } else { 1.0 };
    let rec = simulate(&mut c, truth, noise, 7, END, slow, full_battery);
    metrics(&rec)
}

fn assert_absorbed(m: &Metrics, what: &str) {
    println!("{what}: {m:?}");
    assert!(m.steady_miss <= 0.01, "{what}: steady misses {:.2} %", m.steady_miss * 100.0);
    assert!(m.step_misses <= 3, "{what}: {} misses after the step", m.step_misses);
    assert!(m.settle <= 5, "{what}: back under the deadline after {} frames", m.settle);
    assert!(m.step_steady_miss <= 0.01, "{what}: {:.2} % misses under the slowdown", m.step_steady_miss * 100.0);
    assert!(m.recover <= 20, "{what}: ρ back within 5 % of {} after {} frames", m.prior_rho, m.recover);
    assert!(m.overshoot <= 0.05, "{what}: overshoot {:.1} %", m.overshoot * 100.0);
}

#[test]
fn disturbance_v2_like_profile_absorbs_a_2x_step() {
    let p = v2_profile(0.012);
    let law = LatencyLaw::Kalman(KalmanParams::default());
    // Deadline 1.2× the ρ=1 latency (as the real run): ρ=1 in steady phases.
    let m = run_latency(law, &p, &p, 1.2 * 0.012, &NOISE);
    assert_absorbed(&m, "v2-like, deadline 1.2×");
    assert!(m.mean_rho_steady > 0.97, "{m:?}");
    // Deadline 1.0× ρ=1: an interior ρ before the step, so return and overshoot are measurable.
    let m = run_latency(law, &p, &p, 0.012, &NOISE);
    assert_absorbed(&m, "v2-like, deadline 1.0×");
    assert!(m.prior_rho < 0.95 && m.prior_rho > 0.6, "{m:?}");
}

#[test]
fn disturbance_profile_from_another_machine() {
    // The profile says 12 ms at ρ=1; this machine takes 1.6× longer everywhere (and its shape
    // differs slightly). Feedback absorbs the mismatch: same criteria, deadline 1.2× this
    // machine's ρ=1 latency.
    let given = v2_profile(0.012);
    let truth = LatencyProfile::from_fn(&RHOS, 0.0192, |r| v2_shape(r) * (0.95 + 0.05 * r)).unwrap();
    let m = run_latency(LatencyLaw::Kalman(KalmanParams::default()), &given, &truth, 1.2 * 0.0192, &NOISE);
    assert_absorbed(&m, "profile from another machine");
}

#[test]
fn disturbance_v1_profile_cannot_absorb_2x_and_degrades_gracefully() {
    let p = v1_profile();
    let m = run_latency(LatencyLaw::Kalman(KalmanParams::default()), &p, &p, 1.2 * 11.96e-3, &NOISE);
    println!("v1: {m:?}");
    // Needs t(ρ) ≤ 1.2/2 = 0.60 of ρ=1's; v1's fastest is 9.85/11.96 = 0.82.
    assert!(m.floor_in_step, "pinned at ρ_min and reported as Floor through the slowdown");
    assert!(m.steady_miss <= 0.01, "{m:?}");
    assert!(m.recover <= 20 && m.overshoot <= 0.05, "{m:?}");
}

#[test]
fn disturbance_law_comparison() {
    // The evidence for the default law: every law on the same seeds, two jitter levels.
    let p = v2_profile(0.012);
    let laws = [
        ("kalman p=0.999", LatencyLaw::Kalman(KalmanParams::default())),
        ("kalman p=0.99", LatencyLaw::Kalman(KalmanParams { deadline_probability: 0.99, ..Default::default() })),
        ("integral g=0.3 m=30%", LatencyLaw::Integral { gain: 0.3, margin: 0.3 }),
        ("integral g=0.3 m=10%", LatencyLaw::Integral { gain: 0.3, margin: 0.1 }),
        ("integral g=1 m=10%", LatencyLaw::Integral { gain: 1.0, margin: 0.1 }),
    ];
    let noisy = Noise { jitter: 0.08, ..NOISE };
    println!("law | jitter | deadline×t(1) | steady miss % | misses after step | settle | miss % under 2× | prior ρ | recover | overshoot % | mean ρ steady | mean ρ under 2×");
    for (name, law) in laws {
        for (nname, noise) in [("3%", &NOISE), ("8%", &noisy)] {
            for dl in [1.2, 1.0] {
                let m = run_latency(law, &p, &p, dl * 0.012, noise);
                println!(
                    "{name} | {nname} | {dl} | {:.2} | {} | {} | {:.2} | {:.3} | {} | {:.1} | {:.3} | {:.3}",
                    m.steady_miss * 100.0,
                    m.step_misses,
                    m.settle,
                    m.step_steady_miss * 100.0,
                    m.prior_rho,
                    m.recover,
                    m.overshoot * 100.0,
                    m.mean_rho_steady,
                    m.mean_rho_step
                );
            }
        }
    }
    // The default meets every criterion at 3 % jitter (both deadlines); at 8 % jitter ρ itself
    // fluctuates by about ±10 % (the overshoot criterion is then noise), so there the misses are
    // checked: steady, after the step, settling (deadline 1.2×; at 1.0× even ρ_min leaves less
    // slack than 3σ of 8 % jitter, so it pins the floor).
    for dl in [1.2, 1.0] {
        assert_absorbed(&run_latency(laws[0].1, &p, &p, dl * 0.012, &NOISE), "kalman, 3 % jitter");
    }
    let m = run_latency(laws[0].1, &p, &p, 1.2 * 0.012, &noisy);
    assert!(m.steady_miss <= 0.01 && m.step_misses <= 3 && m.settle <= 5 && m.step_steady_miss <= 0.01, "{m:?}");
    // The fixed 10 % margin that matches Kalman's ρ at 3 % jitter misses > 5 % of frames at 8 %.
    let m = run_latency(laws[3].1, &p, &p, 1.0 * 0.012, &noisy);
    assert!(m.steady_miss > 0.05, "{m:?}");
}
