//! What one controller step costs, beside the frame budget it controls:
//! `cargo run --release -p pag-runtime --example controller_cost [deadline_ms]`.
//! Times 1 000 000 steps (with a battery reading and an observed frame each) in 5 rounds and
//! prints the median per step and its share of the deadline (the goal: < 1 %).
use std::hint::black_box;
use std::time::Instant;

use pag_runtime::controller::{
    BatteryReading, Controller, ControllerConfig, Frame, LatencyLaw, LatencyProfile, PowerSupplyStatus,
};

fn main() {
    let deadline_ms: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(14.4);
    // Nine points like `pag profile`'s default sweep (ρ = 1, 0.9, …, 0.2).
    let rhos: Vec<f32> = (2..=10).map(|i| i as f32 / 10.0).collect();
    let profile = LatencyProfile::from_fn(&rhos, 0.012, |r| 0.42 + 0.58 * r).unwrap();
    for (name, law) in
        [("kalman", ControllerConfig::default().law), ("integral", LatencyLaw::Integral { gain: 0.3, margin: 0.2 })]
    {
        let cfg = ControllerConfig { law, ..Default::default() };
        let mut c = Controller::new(cfg, profile.clone(), deadline_ms * 1e-3).unwrap();
        let n = 1_000_000usize;
        let mut per_step = Vec::new();
        let mut d = c.step(0.0, None, None);
        for round in 0..5 {
            let t = Instant::now();
            for i in 0..n {
                let k = round * n + i;
                // Slowdown alternating 1× / 2× every 1000 frames; jitter from the index.
                let slow = if (k / 1000) % 2 == 0 { 1.0 } else { 2.0 };
                let jitter = 1.0 + ((k * 7919) % 61) as f32 * 1e-3;
                let latency = profile.seconds_at(d.rho) * slow * jitter;
                let battery = BatteryReading {
                    percentage: 1.0 - (k % 100_000) as f32 * 1e-5,
                    status: PowerSupplyStatus::Discharging,
                    age_s: (k % 20) as f32 * 0.05,
                };
                d = c.step(
                    black_box(k as f64 * 0.05),
                    black_box(Some(Frame { latency_s: latency, rho: d.rho })),
                    black_box(Some(battery)),
                );
            }
            per_step.push(t.elapsed().as_secs_f64() / n as f64);
        }
        black_box(d);
        per_step.sort_by(f64::total_cmp);
        let med = per_step[2];
        println!(
            "{name:8}: {:.1} ns per step (median of 5 × {n}; min {:.1}, max {:.1}) = {:.5} % of a {deadline_ms} ms frame budget",
            med * 1e9,
            per_step[0] * 1e9,
            per_step[4] * 1e9,
            100.0 * med / (deadline_ms * 1e-3)
        );
    }
}
