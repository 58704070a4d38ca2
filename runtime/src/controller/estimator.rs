//! The feedback half: the slowdown ξ = observed latency / profiled latency at the ρ that ran,
//! tracked per frame by the chosen [`LatencyLaw`].
use super::config::LatencyLaw;

/// ξ's tracker. Both variants jump to the observation at once when a frame was late and the
/// observation is above the estimate ("cut at once"); falls of ξ are filtered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Estimator {
    /// ALERT's scalar Kalman filter with innovation-adapted process noise (ANCHORS.md):
    /// K = (P+Q)/(P+Q+R); μ ← μ + K·y; P ← (1−K)(P+Q); Q ← max(Q₀, αQ + (1−α)(K_prev·y)²),
    /// y = ξ_obs − μ. `v` is an online estimate of one frame's relative variance around μ
    /// (jitter), from winsorised squared relative innovations, for the deadline probability.
    Kalman { mu: f32, p: f32, q: f32, k: f32, v: f32 },
    /// Fixed-gain integral (first-order) law on log ξ.
    Integral { log_xi: f32 },
}

/// Weight of one frame in the jitter estimate.
const JITTER_WEIGHT: f32 = 0.05;
/// Innovations beyond this many standard deviations are clipped before entering the jitter
/// estimate (a step change is a change of ξ, not jitter).
const JITTER_CLIP_SIGMAS: f32 = 3.0;
/// Jitter variance never below this (0.5 % relative): a margin even on a perfectly quiet machine.
const JITTER_FLOOR: f32 = 2.5e-5;
/// Initial variance of ξ: the profile may come from another machine.
const P0: f32 = 0.01;

impl Estimator {
    pub(crate) fn new(law: &LatencyLaw) -> Estimator {
        match law {
            LatencyLaw::Kalman(k) => Estimator::Kalman { mu: 1.0, p: P0, q: k.q0, k: 0.0, v: k.r },
            LatencyLaw::Integral { .. } => Estimator::Integral { log_xi: 0.0 },
        }
    }

    /// Feeds one frame's observed slowdown; `late` = the frame missed its deadline.
    pub(crate) fn observe(&mut self, law: &LatencyLaw, xi_obs: f32, late: bool) {
        match (self, law) {
            (Estimator::Kalman { mu, p, q, k, v }, LatencyLaw::Kalman(params)) => {
                let y = xi_obs - *mu;
                let y_rel = y / mu.max(f32::MIN_POSITIVE);
                *q = params.q0.max(params.alpha * *q + (1.0 - params.alpha) * (*k * y) * (*k * y));
                *k = (*p + *q) / (*p + *q + params.r);
                *mu += *k * y;
                *p = (1.0 - *k) * (*p + *q);
                // Jitter is relative (a frame's noise scales with its latency): track the
                // variance of y / μ, so that the margin follows ξ through a step at once.
                let clip = JITTER_CLIP_SIGMAS * (*v).sqrt();
                let yc = y_rel.clamp(-clip, clip);
                *v = ((1.0 - JITTER_WEIGHT) * *v + JITTER_WEIGHT * yc * yc).max(JITTER_FLOOR);
                if late && xi_obs > *mu {
                    *mu = xi_obs;
                }
            }
            (Estimator::Integral { log_xi }, LatencyLaw::Integral { gain, .. }) => {
                let obs = xi_obs.ln();
                *log_xi += gain * (obs - *log_xi);
                if late && obs > *log_xi {
                    *log_xi = obs;
                }
            }
            (est, law) => *est = Estimator::new(law),
        }
    }

    /// The slowdown estimate ξ̂.
    pub(crate) fn xi(&self) -> f32 {
        match *self {
            Estimator::Kalman { mu, .. } => mu,
            Estimator::Integral { log_xi } => log_xi.exp(),
        }
    }

    /// Standard deviation of the next frame's ξ (filter uncertainty + μ²·relative jitter); NaN for the
    /// integral law, which has no model of it.
    pub(crate) fn sigma(&self) -> f32 {
        match *self {
            Estimator::Kalman { mu, p, q, v, .. } => (p + q + mu * mu * v).sqrt(),
            Estimator::Integral { .. } => f32::NAN,
        }
    }

    /// The slowdown to plan for: ξ̂ + z·σ (Kalman), ξ̂·(1 + margin) (integral).
    pub(crate) fn planning_xi(&self, law: &LatencyLaw, z: f32) -> f32 {
        match (*self, law) {
            (Estimator::Kalman { .. }, _) => self.xi() + z * self.sigma(),
            (Estimator::Integral { .. }, LatencyLaw::Integral { margin, .. }) => self.xi() * (1.0 + margin),
            (Estimator::Integral { .. }, _) => self.xi(),
        }
    }
}

/// Φ⁻¹(p) for p in (0, 1) (Acklam's rational approximation, relative error < 1.2e-9).
pub(crate) fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383577518672690e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// Φ(x), the standard normal CDF (Abramowitz–Stegun 7.1.26 erf, absolute error < 1.5e-7).
pub(crate) fn normal_cdf(x: f32) -> f32 {
    let z = x as f64 / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.3275911 * z.abs());
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let erf = 1.0 - poly * (-z * z).exp();
    (0.5 * (1.0 + if z >= 0.0 { erf } else { -erf })) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::KalmanParams;

    #[test]
    fn normal_quantiles() {
        for (p, z) in [(0.5, 0.0), (0.9, 1.2815516), (0.99, 2.3263479), (0.9999, 3.7190165), (0.01, -2.3263479)] {
            assert!((inverse_normal_cdf(p) - z).abs() < 1e-6, "{p}");
            assert!((normal_cdf(z as f32) - p as f32).abs() < 1e-6, "{p}");
        }
    }

    #[test]
    fn kalman_tracks_a_step_and_jumps_up_on_a_late_frame() {
        let law = LatencyLaw::Kalman(KalmanParams::default());
        let mut e = Estimator::new(&law);
        for _ in 0..50 {
            e.observe(&law, 1.0, false);
        }
        assert!((e.xi() - 1.0).abs() < 1e-3);
        e.observe(&law, 2.0, true);
        assert_eq!(e.xi(), 2.0, "late: at once");
        for _ in 0..5 {
            e.observe(&law, 1.0, false);
        }
        assert!(e.xi() < 1.05, "falls filtered but fast after a big innovation: {}", e.xi());
        let mut slow = Estimator::new(&law);
        slow.observe(&law, 1.5, false);
        assert!(slow.xi() > 1.0 && slow.xi() < 1.5, "an on-time frame is filtered");
    }

    #[test]
    fn integral_law_is_a_log_space_filter() {
        let law = LatencyLaw::Integral { gain: 0.5, margin: 0.3 };
        let mut e = Estimator::new(&law);
        e.observe(&law, 4.0, false);
        assert!((e.xi() - 2.0).abs() < 1e-5);
        assert!((e.planning_xi(&law, 0.0) - 2.6).abs() < 1e-5);
        e.observe(&law, 8.0, true);
        assert!((e.xi() - 8.0).abs() < 1e-4);
    }
}
