//! The ρ controller: each frame, from the measured latency of the frame just run, the deadline
//! and the latest battery reading, the ρ for the next frame.
//!
//! - **Feed-forward**: a [`LatencyProfile`] (frame latency vs ρ on some machine, e.g. from
//!   `pag profile`).
//! - **Feedback**: the observed slowdown ξ = latency / profiled latency at the ρ that ran, tracked
//!   by an ALERT-style Kalman filter (default) or an integral law ([`LatencyLaw`]). The profile
//!   may come from another machine: ξ absorbs the mismatch.
//! - **Decision**: the largest ρ in [ρ_min, ρ_max] whose latency ξ̂·t(ρ) meets the deadline with
//!   the wanted probability. A late frame cuts ρ at once; rises are gentle (a fraction of the
//!   remaining distance per frame).
//! - **Battery**: charge → ρ cap with hysteresis; charging lifts it; NaN, invalid, stale or
//!   absent readings fall back to a conservative cap; applied in the same frame.
//!
//! Fixed-size state, no heap allocation per frame (`tests/controller_allocations.rs`), no ROS.
//! ```
//! use pag_runtime::controller::*;
//! let profile = LatencyProfile::from_fn(&[0.25, 0.5, 0.75, 1.0], 0.012, |r| 0.3 + 0.7 * r).unwrap();
//! let mut c = Controller::new(ControllerConfig::default(), profile, 0.015).unwrap();
//! let battery = Some(BatteryReading { percentage: 0.8, status: PowerSupplyStatus::Discharging, age_s: 0.1 });
//! let first = c.step(0.0, None, battery);
//! let next = c.step(0.05, Some(Frame { latency_s: 0.024, rho: first.rho }), battery); // 2× slower
//! assert!(next.rho < first.rho);
//! let mode = next.mode(); // ComputeMode::Budget(ρ) for Session::set_mode
//! ```
mod battery;
mod config;
mod estimator;
mod profile;

#[cfg(test)]
mod battery_scenario_tests;
#[cfg(test)]
mod disturbance_tests;

pub use battery::{BatteryCounts, BatteryKnowledge, BatteryReading, PowerSupplyStatus};
pub use config::{
    check_deadline_s, BatteryPolicy, BatteryStep, ConfigError, ControllerConfig, KalmanParams, LatencyLaw,
    MAX_BATTERY_STEPS,
};
pub use profile::{LatencyProfile, ProfilePoint, MAX_PROFILE_POINTS};

use crate::mode::ComputeMode;
use battery::BatteryGovernor;
use estimator::{inverse_normal_cdf, normal_cdf, Estimator};

/// The frame just run: its measured latency (the same quantity the profile holds: a whole
/// `Session::run`) and the ρ it ran at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub latency_s: f32,
    pub rho: f32,
}

/// Why ρ has the value it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Reason {
    /// ρ_max: the deadline allows it and no cap applies.
    #[default]
    Unconstrained,
    /// The largest ρ predicted to meet the deadline with the wanted probability.
    Deadline,
    /// The last frame was late: ρ cut at once.
    DeadlineMissed,
    /// Rising gently towards what the deadline allows.
    Raising,
    /// The battery's charge caps ρ.
    Battery,
    /// The charge is unknown (never read, NaN, invalid or stale): the conservative cap.
    BatteryUnknown,
    /// Even ρ_min is predicted to miss the deadline: pinned at ρ_min (the deadline cannot be
    /// met on this machine under the current slowdown).
    Floor,
}

impl Reason {
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::Unconstrained => "unconstrained",
            Reason::Deadline => "deadline",
            Reason::DeadlineMissed => "deadline missed: cut",
            Reason::Raising => "raising",
            Reason::Battery => "battery cap",
            Reason::BatteryUnknown => "battery unknown: fallback cap",
            Reason::Floor => "floor: deadline unattainable at rho_min",
        }
    }
}

/// The controller's answer for the next frame, with the state behind it (for diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decision {
    /// ρ for the next frame, in [ρ_min, ρ_max] and ≤ `battery_cap`.
    pub rho: f32,
    pub reason: Reason,
    /// Slowdown estimate ξ̂ (1 = as profiled).
    pub xi: f32,
    /// Its standard deviation including frame jitter (NaN under the integral law).
    pub xi_sigma: f32,
    /// What the latency side alone allows (before the raise limit and the battery cap).
    pub latency_rho: f32,
    /// Predicted latency of the next frame: ξ̂·t(ρ).
    pub predicted_s: f32,
    /// Predicted relative slack: deadline / predicted − 1 (negative = predicted late).
    pub margin: f32,
    /// Φ((T − ξ̂·t(ρ)) / (σ·t(ρ))) (NaN under the integral law).
    pub deadline_probability: f32,
    pub battery_cap: f32,
    pub battery: BatteryKnowledge,
    /// The observed frame was late.
    pub late: bool,
}

impl Decision {
    /// The mode to run the next frame in.
    pub fn mode(&self) -> ComputeMode {
        // The controller keeps ρ in [ρ_min, 1] with ρ_min > 0 validated, so this is a budget.
        crate::Rho::new(self.rho as f64).map_or(ComputeMode::Dense, ComputeMode::Budget)
    }
}

/// Counters since the controller was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ControllerCounts {
    pub frames: u64,
    /// Observed frames over the deadline.
    pub late: u64,
    /// Observations ignored: latency not finite and > 0, or ρ not in (0, 1].
    pub invalid_observations: u64,
    /// Decisions pinned at ρ_min with the deadline predicted unattainable.
    pub floor: u64,
}

/// What diagnostics need of the controller, `Copy` (no allocation): the inference thread can
/// hand one to the diagnostics thread each frame.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Snapshot {
    pub decision: Decision,
    pub counts: ControllerCounts,
    pub battery: BatteryCounts,
    pub deadline_s: f64,
}

/// The ρ controller. See the module documentation.
#[derive(Debug, Clone)]
pub struct Controller {
    config: ControllerConfig,
    profile: LatencyProfile,
    deadline_s: f64,
    /// Φ⁻¹(deadline_probability), computed once.
    z: f32,
    estimator: Estimator,
    battery: BatteryGovernor,
    last: Decision,
    counts: ControllerCounts,
}

/// Below this distance ρ snaps to its target instead of creeping.
const SNAP: f32 = 0.005;

impl Controller {
    /// A controller with ξ̂ = 1 (the profile taken at its word until frames say otherwise).
    pub fn new(config: ControllerConfig, profile: LatencyProfile, deadline_s: f64) -> Result<Self, ConfigError> {
        config.validate()?;
        check_deadline_s(deadline_s)?;
        let mut c = Controller {
            estimator: Estimator::new(&config.law),
            z: 0.0,
            profile,
            deadline_s,
            battery: BatteryGovernor::new(),
            last: Decision { rho: config.rho_max, ..Default::default() },
            counts: ControllerCounts::default(),
            config,
        };
        c.z = c.z_of_config();
        Ok(c)
    }

    fn z_of_config(&self) -> f32 {
        match self.config.law {
            LatencyLaw::Kalman(k) => inverse_normal_cdf(k.deadline_probability as f64) as f32,
            LatencyLaw::Integral { .. } => 0.0,
        }
    }

    /// Changes the deadline from the next decision on (validated; unchanged on error).
    pub fn set_deadline_s(&mut self, deadline_s: f64) -> Result<(), ConfigError> {
        check_deadline_s(deadline_s)?;
        self.deadline_s = deadline_s;
        Ok(())
    }

    pub fn deadline_s(&self) -> f64 {
        self.deadline_s
    }

    /// Replaces the configuration (validated; unchanged on error). ξ̂ is kept unless the law
    /// changes kind.
    pub fn set_config(&mut self, config: ControllerConfig) -> Result<(), ConfigError> {
        config.validate()?;
        if core::mem::discriminant(&config.law) != core::mem::discriminant(&self.config.law) {
            self.estimator = Estimator::new(&config.law);
        }
        self.config = config;
        self.z = self.z_of_config();
        Ok(())
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Replaces the profile; ξ̂ is kept (it is relative to the old profile: the next frames
    /// correct it).
    pub fn set_profile(&mut self, profile: LatencyProfile) {
        self.profile = profile;
    }

    pub fn profile(&self) -> &LatencyProfile {
        &self.profile
    }

    /// The last decision.
    pub fn last(&self) -> &Decision {
        &self.last
    }

    pub fn counts(&self) -> ControllerCounts {
        self.counts
    }

    pub fn battery_counts(&self) -> BatteryCounts {
        self.battery.counts
    }

    /// The last decision and the counters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { decision: self.last, counts: self.counts, battery: self.battery.counts, deadline_s: self.deadline_s }
    }

    /// One control step at monotonic time `now_s` (seconds, any origin): `frame` is the frame
    /// just run (`None` before the first), `battery` the latest reading (`None` if none has
    /// arrived). Returns the decision for the next frame. No allocation.
    pub fn step(&mut self, now_s: f64, frame: Option<Frame>, battery: Option<BatteryReading>) -> Decision {
        let cfg = &self.config;
        let deadline = self.deadline_s as f32;
        let mut late = false;
        if let Some(f) = frame {
            if f.latency_s.is_finite() && f.latency_s > 0.0 && f.rho > 0.0 && f.rho <= 1.0 {
                late = f.latency_s > deadline;
                self.counts.late += late as u64;
                let xi_obs = f.latency_s / self.profile.seconds_at(f.rho);
                self.estimator.observe(&cfg.law, xi_obs, late);
            } else {
                self.counts.invalid_observations += 1;
            }
        }
        self.counts.frames += 1;

        // What the latency side allows.
        let plan_xi = self.estimator.planning_xi(&cfg.law, self.z).max(f32::MIN_POSITIVE);
        let target = deadline / plan_xi;
        let (latency_rho, floor) = match self.profile.max_rho_within(target, cfg.rho_min, cfg.rho_max) {
            Some(r) => (r, false),
            None => (cfg.rho_min, true),
        };
        // Falls at once, rises gently.
        let prev = self.last.rho;
        let mut rho = latency_rho;
        if latency_rho > prev {
            rho = prev + cfg.raise_gain * (latency_rho - prev);
            if latency_rho - rho < SNAP {
                rho = latency_rho;
            }
        }
        let cap = self.battery.update(&cfg.battery, now_s, battery);
        let capped = cap < rho;
        let rho = rho.min(cap).clamp(cfg.rho_min, cfg.rho_max);

        let reason = if floor {
            self.counts.floor += 1;
            Reason::Floor
        } else if capped && self.battery.knowledge.is_unknown() {
            Reason::BatteryUnknown
        } else if capped {
            Reason::Battery
        } else if late && rho < prev {
            Reason::DeadlineMissed
        } else if rho < latency_rho {
            Reason::Raising
        } else if latency_rho < cfg.rho_max {
            Reason::Deadline
        } else {
            Reason::Unconstrained
        };
        let xi = self.estimator.xi();
        let sigma = self.estimator.sigma();
        let t = self.profile.seconds_at(rho);
        let predicted = xi * t;
        self.last = Decision {
            rho,
            reason,
            xi,
            xi_sigma: sigma,
            latency_rho,
            predicted_s: predicted,
            margin: deadline / predicted - 1.0,
            deadline_probability: normal_cdf((deadline - predicted) / (sigma * t)),
            battery_cap: cap,
            battery: self.battery.knowledge,
            late,
        };
        self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_like() -> LatencyProfile {
        // ρ=0.5 ≈ 1.5×, ρ=0.25 ≈ 2.3× faster than ρ=1 (what model v2 aims at).
        let pts = [(1.0, 1.0), (0.75, 0.82), (0.5, 0.667), (0.25, 0.435)]
            .map(|(rho, f)| ProfilePoint { rho, seconds: 0.012 * f });
        LatencyProfile::new(&pts).unwrap()
    }

    #[test]
    fn validates_config_and_deadline_with_clear_errors() {
        let p = v2_like();
        let bad = |f: &dyn Fn(&mut ControllerConfig)| {
            let mut c = ControllerConfig::default();
            f(&mut c);
            Controller::new(c, p.clone(), 0.015).unwrap_err().to_string()
        };
        assert!(bad(&|c| c.rho_min = 0.0).contains("rho_min must be in (0, 1], got 0"));
        assert!(bad(&|c| c.rho_min = f32::NAN).contains("rho_min"));
        assert!(bad(&|c| c.rho_max = 0.2).contains("rho_max must be in [rho_min, 1]"));
        assert!(bad(&|c| c.raise_gain = 0.0).contains("raise_gain"));
        assert!(bad(&|c| c.battery.stale_s = -1.0).contains("battery_stale_s"));
        assert!(bad(&|c| c.rho_min = 0.3).contains("cap 0.25 (below 0.15) is below rho_min (0.3)"));
        assert!(bad(&|c| c.law = LatencyLaw::Kalman(KalmanParams { deadline_probability: 1.0, ..Default::default() }))
            .contains("deadline_probability"));
        assert!(bad(&|c| c.battery.steps = BatteryPolicy::parse_steps("0.3:0.5, 0.5:0.75").unwrap())
            .contains("thresholds must decrease"));
        assert!(bad(&|c| c.battery.steps = BatteryPolicy::parse_steps("0.5:0.5, 0.3:0.75").unwrap())
            .contains("caps must not rise"));
        for d in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = Controller::new(ControllerConfig::default(), p.clone(), d).unwrap_err().to_string();
            assert!(e.contains("deadline must be a positive, finite number of seconds"), "{e}");
        }
        let mut c = Controller::new(ControllerConfig::default(), p, 0.015).unwrap();
        assert!(c.set_deadline_s(0.0).is_err());
        assert_eq!(c.deadline_s(), 0.015);
        let e = BatteryPolicy::parse_steps("0.5-0.75").unwrap_err().to_string();
        assert!(e.contains("`0.5-0.75` is not `below:cap`"), "{e}");
    }

    #[test]
    fn cuts_at_once_raises_gently_and_pins_the_floor() {
        let cfg = ControllerConfig { battery: BatteryPolicy::off(), ..Default::default() };
        let mut c = Controller::new(cfg, v2_like(), 0.0144).unwrap();
        let mut d = c.step(0.0, None, None);
        for i in 0..30 {
            d = c.step(i as f64 * 0.05, Some(Frame { latency_s: c.profile.seconds_at(d.rho), rho: d.rho }), None);
        }
        assert_eq!(d.rho, 1.0);
        assert_eq!(d.reason, Reason::Unconstrained);
        // 2× slower: one late frame, ρ cut in the same step.
        let d2 = c.step(2.0, Some(Frame { latency_s: 2.0 * c.profile.seconds_at(d.rho), rho: d.rho }), None);
        assert!(d2.late && d2.rho < 0.5, "{d2:?}");
        assert_eq!(d2.reason, Reason::DeadlineMissed);
        assert!(2.0 * c.profile.seconds_at(d2.rho) <= 0.0144);
        // 4× slower: not absorbable; pinned at ρ_min, reported.
        let d3 = c.step(2.1, Some(Frame { latency_s: 4.0 * c.profile.seconds_at(d2.rho), rho: d2.rho }), None);
        assert_eq!((d3.rho, d3.reason), (0.25, Reason::Floor));
        assert!(d3.margin < 0.0);
        // Back to normal: rises over several frames, not at once.
        let d4 = c.step(2.2, Some(Frame { latency_s: c.profile.seconds_at(d3.rho), rho: d3.rho }), None);
        assert!(d4.rho < 0.9, "{d4:?}");
        assert_eq!(c.counts().late, 2, "the 2× and the 4× frame");
        assert!(c.counts().floor >= 1);
    }

    #[test]
    fn ignores_invalid_observations() {
        let mut c = Controller::new(ControllerConfig::default(), v2_like(), 0.015).unwrap();
        let d0 = c.step(0.0, None, None);
        for bad in [
            Frame { latency_s: f32::NAN, rho: 1.0 },
            Frame { latency_s: -1.0, rho: 1.0 },
            Frame { latency_s: 0.01, rho: 0.0 },
            Frame { latency_s: 0.01, rho: f32::NAN },
        ] {
            let d = c.step(0.1, Some(bad), None);
            assert_eq!(d.xi, d0.xi);
        }
        assert_eq!(c.counts().invalid_observations, 4);
    }
}
