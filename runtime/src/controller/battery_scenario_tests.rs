//! The battery half of the disturbance test, on a simulated clock (20 frames/s, a reading every
//! 0.25 s): a ramp 100 % → 5 % with ±1 % noise, a NaN burst, a 5 s dropout, a jump to charging;
//! the same from a publisher that sends 0–100 and one that sends negative values.
use super::*;

const PERIOD_S: f64 = 0.05;
const FRAMES: usize = 4000; // 200 s
const READ_EVERY: usize = 5;
const NAN_BURST: std::ops::Range<usize> = 1200..1260; // 3 s of NaN
const DROPOUT: std::ops::Range<usize> = 2000..2100; // 5 s without messages
const CHARGING_AT: usize = 3600;

/// Seeded ±1 % noise (a fixed LCG: portable and deterministic).
fn noise(i: usize) -> f32 {
    let x = (i as u64).wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    ((x >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.02
}

/// The true charge at frame i: 100 % → 5 % linearly until charging starts.
fn charge(i: usize) -> f32 {
    1.0 - 0.95 * (i.min(CHARGING_AT) as f32 / CHARGING_AT as f32)
}

#[derive(Clone, Copy, PartialEq)]
enum Publisher {
    Fraction,
    Percent,
    /// A standard publisher that also sends −1 every 20th message.
    WithNegatives,
}

/// The reading the caller holds at frame i: the last message (published every READ_EVERY
/// frames except during the dropout), its age, NaN during the burst.
fn reading(i: usize, publisher: Publisher) -> Option<BatteryReading> {
    let mut last = i - i % READ_EVERY;
    while DROPOUT.contains(&last) {
        last -= READ_EVERY;
    }
    let mut p = (charge(last) + noise(last)).clamp(0.0, 1.0);
    if NAN_BURST.contains(&last) {
        p = f32::NAN;
    }
    match publisher {
        Publisher::Percent => p *= 100.0,
        Publisher::WithNegatives if (last / READ_EVERY) % 20 == 19 => p = -1.0,
        _ => {}
    }
    let status = if last >= CHARGING_AT { PowerSupplyStatus::Charging } else { PowerSupplyStatus::Discharging };
    Some(BatteryReading { percentage: p, status, age_s: ((i - last) as f64 * PERIOD_S) as f32 })
}

fn profile() -> LatencyProfile {
    LatencyProfile::from_fn(&[0.25, 0.5, 0.75, 1.0], 0.012, |r| 0.42 + 0.58 * r).unwrap()
}

/// Runs the scenario with steady latencies (ρ=1 fits the deadline, so the battery is what
/// limits) and checks the cap against the policy frame by frame.
fn run(publisher: Publisher) -> Controller {
    let mut cfg = ControllerConfig::default();
    cfg.battery.stale_s = 2.0;
    let policy = cfg.battery.clone();
    let p = profile();
    let mut c = Controller::new(cfg, p.clone(), 0.0144).unwrap();
    let mut d = c.step(0.0, None, reading(0, publisher));
    let mut level_cap = 1.0f32;
    let mut last_valid: Option<usize> = Some(0);
    let mut changes = 0;
    for i in 1..FRAMES {
        let now = i as f64 * PERIOD_S;
        let r = reading(i, publisher).unwrap();
        let prev_cap = d.battery_cap;
        d = c.step(now, Some(Frame { latency_s: p.seconds_at(d.rho), rho: d.rho }), Some(r));
        changes += (d.battery_cap != prev_cap) as usize;
        // Never above the cap, never below ρ_min.
        assert!(d.rho <= d.battery_cap && d.rho >= 0.25, "frame {i}: {d:?}");
        let new_msg = r.age_s == 0.0;
        if new_msg && r.status == PowerSupplyStatus::Charging {
            assert_eq!(d.battery_cap, 1.0, "frame {i}: charging lifts the cap in the same frame");
            assert_eq!(d.battery, BatteryKnowledge::OnPower);
        }
        if i >= CHARGING_AT {
            continue;
        }
        let value = if publisher == Publisher::Percent { r.percentage / 100.0 } else { r.percentage };
        if new_msg && (0.0..=1.0).contains(&value) {
            last_valid = Some(i);
            // Every step the reading is under applies in this very frame; a cap is lifted only
            // once the reading clears the threshold by the hysteresis.
            for s in &policy.steps {
                if value < s.below {
                    assert!(
                        d.battery_cap <= s.cap,
                        "frame {i}: charge {value} < {} but cap {}",
                        s.below,
                        d.battery_cap
                    );
                }
                if prev_cap <= s.cap && d.battery_cap > s.cap && prev_cap < d.battery_cap {
                    assert!(value >= s.below + policy.hysteresis, "frame {i}: cap lifted at charge {value}");
                }
            }
            level_cap = d.battery_cap;
        } else {
            // NaN, negative, or no new message: the level holds while the last valid reading is
            // fresh; then the fallback, in the frame the reading turns stale.
            let age = last_valid.map_or(f64::INFINITY, |k| (i - k) as f64 * PERIOD_S);
            if age <= 2.0 + 1e-6 {
                assert_eq!((d.battery, d.battery_cap), (BatteryKnowledge::Fresh, level_cap), "frame {i}");
            } else {
                assert_eq!((d.battery, d.battery_cap), (BatteryKnowledge::Stale, level_cap.min(0.5)), "frame {i}");
                assert!(d.reason == Reason::BatteryUnknown || d.battery_cap >= 0.5, "frame {i}: {d:?}");
            }
        }
    }
    // 3 steps down along the ramp, fallback in and out at the end of the NaN burst and during the
    // dropout, the lift when charging: no chatter from the ±1 % noise.
    assert!(changes <= 8, "{changes} cap changes");
    c
}

#[test]
fn battery_scenario_standard_publisher() {
    let c = run(Publisher::Fraction);
    let n = c.battery_counts();
    println!("standard publisher: {n:?}");
    // The NaN burst (3 s) outlives stale_s (2 s): the fallback applies at its end, as in the
    // 5 s dropout.
    assert_eq!(n.nan as usize, NAN_BURST.len() / READ_EVERY, "every NaN message counted once");
    assert_eq!(n.percent + n.invalid, 0);
    assert!(n.unknown_frames > 0);
}

#[test]
fn battery_scenario_percent_publisher() {
    let n = run(Publisher::Percent).battery_counts();
    println!("0–100 publisher: {n:?}");
    assert_eq!(n.fraction, 0, "once a value > 1 is seen, everything from this publisher is percent");
    // Every message but the NaN ones: 800 sent, 20 lost in the dropout, 12 NaN.
    assert_eq!(n.percent as usize, FRAMES / READ_EVERY - DROPOUT.len() / READ_EVERY - NAN_BURST.len() / READ_EVERY);
}

#[test]
fn battery_scenario_negative_values() {
    let n = run(Publisher::WithNegatives).battery_counts();
    println!("publisher with negative values: {n:?}");
    assert_eq!(n.invalid as usize, FRAMES / READ_EVERY / 20 - 1, "{n:?}");
}
