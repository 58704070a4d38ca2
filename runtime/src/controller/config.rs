//! The controller's settings and their validation: every field is checked once, with an error
//! that names the field, its value and the valid range.
use heapless::Vec as FixedVec;

/// At most this many steps in a battery policy.
pub const MAX_BATTERY_STEPS: usize = 8;

/// A setting of the controller that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} must be {valid}, got {got}")]
    Field { name: &'static str, valid: &'static str, got: f64 },
    #[error("battery policy: {0}")]
    Battery(String),
    #[error("latency profile: {0}")]
    Profile(String),
}

fn check(name: &'static str, valid: &'static str, v: f64, ok: bool) -> Result<(), ConfigError> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(ConfigError::Field { name, valid, got: v })
    }
}

/// Checks a deadline in seconds: finite and > 0.
pub fn check_deadline_s(deadline_s: f64) -> Result<(), ConfigError> {
    check("deadline", "a positive, finite number of seconds", deadline_s, deadline_s > 0.0)
}

/// How the controller turns latency feedback into ρ. Both laws share the feed-forward from the
/// profile, the immediate cut after a late frame and the gentle raise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LatencyLaw {
    /// ALERT-style: a scalar Kalman filter tracks the slowdown ξ (observed latency / profiled
    /// latency), with process noise adapted to the innovation; ρ is the largest whose deadline
    /// probability Φ((T − ξ̂·t(ρ)) / (σ·t(ρ))) reaches `deadline_probability`, σ covering the
    /// filter's uncertainty and the measured frame-to-frame jitter.
    Kalman(KalmanParams),
    /// POET/JouleGuard-style integral law on the target latency in log space with a fixed
    /// margin (ApproxDet uses 30 %): τ ← τ·(T/((1+margin)·L))^gain, ρ = the largest with
    /// t(ρ) ≤ τ. gain = 1 is deadbeat.
    Integral { gain: f32, margin: f32 },
}

/// Parameters of [`LatencyLaw::Kalman`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KalmanParams {
    /// Wanted probability that a frame meets its deadline, in [0.5, 0.9999]. Default 0.999
    /// (real latencies have heavier tails than a Gaussian; 0.99 gave 1.05 % misses under the
    /// disturbance test's 2× phase, 0.999 0.26 % at 3 % less ρ).
    pub deadline_probability: f32,
    /// Floor of the process noise Q (variance of ξ's change per frame). Default 1e-4.
    pub q0: f32,
    /// Measurement noise R (variance of one frame's ξ around the true ξ). Default 4e-3.
    pub r: f32,
    /// Forgetting factor of the process-noise adaptation, in [0, 1). Default 0.3.
    pub alpha: f32,
}

impl Default for KalmanParams {
    fn default() -> Self {
        KalmanParams { deadline_probability: 0.999, q0: 1e-4, r: 4e-3, alpha: 0.3 }
    }
}

/// Below `below` (battery fraction, 0–1) ρ is capped at `cap`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatteryStep {
    pub below: f32,
    pub cap: f32,
}

/// How the battery limits ρ. Steps are sorted by `below` descending; the cap of the lowest step
/// whose threshold the charge is under applies. A cap is lowered as soon as the charge drops
/// below its threshold and lifted only once the charge is `hysteresis` above it (no chatter from
/// a noisy reading). A fresh reading that says charging or full lifts every cap.
#[derive(Debug, Clone, PartialEq)]
pub struct BatteryPolicy {
    /// Off: the battery is ignored, no cap.
    pub enabled: bool,
    pub steps: FixedVec<BatteryStep, MAX_BATTERY_STEPS>,
    /// In [0, 0.2]. Default 0.03.
    pub hysteresis: f32,
    /// A reading older than this (seconds, > 0) is stale. Default 5.
    pub stale_s: f32,
    /// Cap while the charge is unknown (never read, NaN, invalid or stale), and never above the
    /// last known level's cap: unknown never raises ρ. In (0, 1]. Default 0.5.
    pub unknown_cap: f32,
}

impl BatteryPolicy {
    /// Below 50 % → 0.75, below 30 % → 0.5, below 15 % → 0.25.
    pub fn default_steps() -> FixedVec<BatteryStep, MAX_BATTERY_STEPS> {
        let mut s = FixedVec::new();
        for (below, cap) in [(0.5, 0.75), (0.3, 0.5), (0.15, 0.25)] {
            s.push(BatteryStep { below, cap }).expect("3 ≤ MAX_BATTERY_STEPS");
        }
        s
    }

    /// The battery ignored.
    pub fn off() -> Self {
        BatteryPolicy { enabled: false, ..Default::default() }
    }

    /// Parses steps written as `below:cap` pairs, e.g. `0.5:0.75, 0.3:0.5, 0.15:0.25`
    /// (empty = no steps). Does not validate them against ρ_min: [`ControllerConfig::validate`]
    /// does.
    pub fn parse_steps(s: &str) -> Result<FixedVec<BatteryStep, MAX_BATTERY_STEPS>, ConfigError> {
        let mut steps = FixedVec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad = || ConfigError::Battery(format!("`{part}` is not `below:cap` (two numbers, e.g. `0.3:0.5`)"));
            let (b, c) = part.split_once(':').ok_or_else(bad)?;
            let below: f32 = b.trim().parse().map_err(|_| bad())?;
            let cap: f32 = c.trim().parse().map_err(|_| bad())?;
            steps
                .push(BatteryStep { below, cap })
                .map_err(|_| ConfigError::Battery(format!("more than {MAX_BATTERY_STEPS} steps in `{s}`")))?;
        }
        Ok(steps)
    }

    /// The steps in the format [`BatteryPolicy::parse_steps`] reads (allocates: not per frame).
    pub fn steps_string(&self) -> String {
        self.steps.iter().map(|s| format!("{}:{}", s.below, s.cap)).collect::<std::vec::Vec<_>>().join(", ")
    }

    fn validate(&self, rho_min: f32) -> Result<(), ConfigError> {
        check("battery hysteresis", "in [0, 0.2]", self.hysteresis as f64, (0.0..=0.2).contains(&self.hysteresis))?;
        check("battery_stale_s", "a positive number of seconds", self.stale_s as f64, self.stale_s > 0.0)?;
        let u = self.unknown_cap;
        check("battery unknown cap", "in (0, 1]", u as f64, u > 0.0 && u <= 1.0)?;
        if self.enabled && u < rho_min {
            return Err(ConfigError::Battery(format!(
                "the cap for an unknown charge ({u}) is below rho_min ({rho_min})"
            )));
        }
        let mut prev: Option<BatteryStep> = None;
        for s in &self.steps {
            if !(s.below.is_finite() && s.below > 0.0 && s.below <= 1.0) {
                return Err(ConfigError::Battery(format!("threshold {} is not a charge fraction in (0, 1]", s.below)));
            }
            if !(s.cap.is_finite() && s.cap > 0.0 && s.cap <= 1.0) {
                return Err(ConfigError::Battery(format!("cap {} (below {}) is not a ρ in (0, 1]", s.cap, s.below)));
            }
            if self.enabled && s.cap < rho_min {
                return Err(ConfigError::Battery(format!(
                    "cap {} (below {}) is below rho_min ({rho_min})",
                    s.cap, s.below
                )));
            }
            if let Some(p) = prev {
                if s.below >= p.below {
                    return Err(ConfigError::Battery(format!(
                        "thresholds must decrease: {} follows {}",
                        s.below, p.below
                    )));
                }
                if s.cap > p.cap {
                    return Err(ConfigError::Battery(format!(
                        "caps must not rise as the charge falls: {} (below {}) follows {} (below {})",
                        s.cap, s.below, p.cap, p.below
                    )));
                }
            }
            prev = Some(*s);
        }
        Ok(())
    }
}

impl Default for BatteryPolicy {
    fn default() -> Self {
        BatteryPolicy {
            enabled: true,
            steps: BatteryPolicy::default_steps(),
            hysteresis: 0.03,
            stale_s: 5.0,
            unknown_cap: 0.5,
        }
    }
}

/// Everything the controller needs besides the profile and the deadline.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerConfig {
    /// Lowest ρ the controller may choose, in (0, 1]. Default 0.25.
    pub rho_min: f32,
    /// Highest ρ, in [rho_min, 1]. Default 1.
    pub rho_max: f32,
    pub law: LatencyLaw,
    /// Fraction of the remaining distance to the latency target that ρ may rise per frame, in
    /// (0, 1] (falls are immediate). Default 0.35.
    pub raise_gain: f32,
    pub battery: BatteryPolicy,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            rho_min: 0.25,
            rho_max: 1.0,
            law: LatencyLaw::Kalman(KalmanParams::default()),
            raise_gain: 0.35,
            battery: BatteryPolicy::default(),
        }
    }
}

impl ControllerConfig {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let (lo, hi) = (self.rho_min, self.rho_max);
        check("rho_min", "in (0, 1]", lo as f64, lo > 0.0 && lo <= 1.0)?;
        check("rho_max", "in [rho_min, 1]", hi as f64, hi >= lo && hi <= 1.0)?;
        check("raise_gain", "in (0, 1]", self.raise_gain as f64, self.raise_gain > 0.0 && self.raise_gain <= 1.0)?;
        match self.law {
            LatencyLaw::Kalman(k) => {
                let p = k.deadline_probability;
                check("deadline_probability", "in [0.5, 0.9999]", p as f64, (0.5..=0.9999).contains(&p))?;
                check("kalman q0", "> 0", k.q0 as f64, k.q0 > 0.0)?;
                check("kalman r", "> 0", k.r as f64, k.r > 0.0)?;
                check("kalman alpha", "in [0, 1)", k.alpha as f64, (0.0..1.0).contains(&k.alpha))?;
            }
            LatencyLaw::Integral { gain, margin } => {
                check("integral gain", "in (0, 1]", gain as f64, gain > 0.0 && gain <= 1.0)?;
                check("integral margin", "in [0, 1]", margin as f64, (0.0..=1.0).contains(&margin))?;
            }
        }
        self.battery.validate(lo)
    }
}
