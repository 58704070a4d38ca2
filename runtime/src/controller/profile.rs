//! The feed-forward half of the controller: frame latency as a function of ρ on one machine,
//! piecewise linear between measured points, in fixed-capacity storage.
use heapless::Vec as FixedVec;

use super::ConfigError;

/// At most this many (ρ, latency) points in a [`LatencyProfile`].
pub const MAX_PROFILE_POINTS: usize = 32;

/// One measured point: a whole frame at budget ρ took `seconds` (median) on the profiled machine.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProfilePoint {
    pub rho: f32,
    pub seconds: f32,
}

/// Frame latency vs ρ, sorted by ρ ascending, at most [`MAX_PROFILE_POINTS`] distinct ρ in
/// (0, 1]. Between points the latency is interpolated linearly; below the smallest profiled ρ
/// it is taken as that point's latency (never extrapolated downwards: conservative), above the
/// largest as the largest's. Latency need not fall monotonically with ρ (on the v1 model ρ=0.9 is
/// slower than ρ=1): [`LatencyProfile::max_rho_within`] looks for the largest ρ that fits.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyProfile {
    points: FixedVec<ProfilePoint, MAX_PROFILE_POINTS>,
}

impl LatencyProfile {
    /// Validates and sorts `points`: each ρ finite in (0, 1] and distinct, each latency finite
    /// and > 0, at least one and at most [`MAX_PROFILE_POINTS`] points.
    pub fn new(points: &[ProfilePoint]) -> Result<LatencyProfile, ConfigError> {
        if points.is_empty() {
            return Err(ConfigError::Profile("it has no points".into()));
        }
        let mut sorted = FixedVec::<ProfilePoint, MAX_PROFILE_POINTS>::new();
        for p in points {
            if !(p.rho.is_finite() && p.rho > 0.0 && p.rho <= 1.0) {
                return Err(ConfigError::Profile(format!("ρ must be in (0, 1], got {}", p.rho)));
            }
            if !(p.seconds.is_finite() && p.seconds > 0.0) {
                return Err(ConfigError::Profile(format!(
                    "the latency at ρ={} must be a positive number of seconds, got {}",
                    p.rho, p.seconds
                )));
            }
            sorted.push(*p).map_err(|_| {
                ConfigError::Profile(format!("more than {MAX_PROFILE_POINTS} points ({})", points.len()))
            })?;
        }
        sorted.sort_unstable_by(|a, b| a.rho.total_cmp(&b.rho));
        if let Some(w) = sorted.windows(2).find(|w| w[0].rho == w[1].rho) {
            return Err(ConfigError::Profile(format!("ρ={} appears twice", w[0].rho)));
        }
        Ok(LatencyProfile { points: sorted })
    }

    /// A profile with the latency proportional to `shape(ρ)` and `seconds_at_1` at ρ=1,
    /// sampled at `rhos` (tests and synthetic profiles).
    pub fn from_fn(rhos: &[f32], seconds_at_1: f32, shape: impl Fn(f32) -> f32) -> Result<Self, ConfigError> {
        let mut pts = FixedVec::<ProfilePoint, MAX_PROFILE_POINTS>::new();
        for &rho in rhos {
            pts.push(ProfilePoint { rho, seconds: seconds_at_1 * shape(rho) })
                .map_err(|_| ConfigError::Profile(format!("more than {MAX_PROFILE_POINTS} points")))?;
        }
        LatencyProfile::new(&pts)
    }

    pub fn points(&self) -> &[ProfilePoint] {
        &self.points
    }

    /// The smallest and largest profiled ρ.
    pub fn rho_range(&self) -> (f32, f32) {
        (self.points[0].rho, self.points[self.points.len() - 1].rho)
    }

    /// Predicted frame seconds at `rho` on the profiled machine (no slowdown).
    pub fn seconds_at(&self, rho: f32) -> f32 {
        let p = &self.points;
        if rho <= p[0].rho {
            return p[0].seconds;
        }
        for w in p.windows(2) {
            if rho <= w[1].rho {
                let t = (rho - w[0].rho) / (w[1].rho - w[0].rho);
                return w[0].seconds + t * (w[1].seconds - w[0].seconds);
            }
        }
        p[p.len() - 1].seconds
    }

    /// The largest ρ in `[lo, hi]` whose predicted latency is ≤ `target_s`, or `None` when even
    /// the fastest ρ in the range is predicted slower. O(points), no allocation.
    pub fn max_rho_within(&self, target_s: f32, lo: f32, hi: f32) -> Option<f32> {
        let mut b = hi;
        let mut tb = self.seconds_at(b);
        if tb <= target_s {
            return Some(b);
        }
        // Walk down the breakpoints inside (lo, hi), then lo; between two consecutive ones the
        // latency is linear in ρ, so the first segment whose lower end fits holds the answer.
        let inner = self.points.iter().rev().map(|p| p.rho).filter(|&r| r < hi && r > lo);
        for a in inner.chain(core::iter::once(lo)) {
            let ta = self.seconds_at(a);
            if ta <= target_s {
                let x = if tb > ta { a + (target_s - ta) / (tb - ta) * (b - a) } else { a };
                return Some(x.clamp(a, b));
            }
            (b, tb) = (a, ta);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> LatencyProfile {
        // README: whole-frame medians of the shipped v1 model on the 2-core EPYC.
        let pts = [(1.0, 11.96), (0.9, 12.19), (0.7, 11.50), (0.5, 10.71), (0.3, 9.85)]
            .map(|(rho, ms)| ProfilePoint { rho, seconds: ms * 1e-3 });
        LatencyProfile::new(&pts).unwrap()
    }

    #[test]
    fn interpolates_and_clamps() {
        let p = v1();
        assert!((p.seconds_at(1.0) - 11.96e-3).abs() < 1e-9);
        assert!((p.seconds_at(0.4) - (9.85e-3 + 10.71e-3) / 2.0).abs() < 1e-7);
        assert_eq!(p.seconds_at(0.1), p.seconds_at(0.3), "no extrapolation below the smallest ρ");
        assert_eq!(p.rho_range(), (0.3, 1.0));
    }

    #[test]
    fn largest_rho_within_a_target_even_when_not_monotonic() {
        let p = v1();
        assert_eq!(p.max_rho_within(12.0e-3, 0.25, 1.0), Some(1.0));
        // ρ=1 (11.96) misses 11.9, ρ ∈ (0.7, 0.9] too; the crossing is in the 0.7–0.9 segment.
        let r = p.max_rho_within(11.9e-3, 0.25, 1.0).unwrap();
        assert!(r > 0.7 && r < 0.9, "{r}");
        assert!((p.seconds_at(r) - 11.9e-3).abs() < 1e-7);
        assert_eq!(p.max_rho_within(9.0e-3, 0.25, 1.0), None, "ρ=0.3's 9.85 ms is the fastest");
        // Capped range: the answer never exceeds hi, never goes below lo.
        assert_eq!(p.max_rho_within(20e-3, 0.25, 0.6), Some(0.6));
        let r = p.max_rho_within(10.0e-3, 0.4, 1.0);
        assert_eq!(r, None, "below 0.4 is excluded");
    }

    #[test]
    fn rejects_bad_points() {
        let ok = ProfilePoint { rho: 1.0, seconds: 0.01 };
        for bad in [
            ProfilePoint { rho: 0.0, seconds: 0.01 },
            ProfilePoint { rho: 1.5, seconds: 0.01 },
            ProfilePoint { rho: f32::NAN, seconds: 0.01 },
            ProfilePoint { rho: 0.5, seconds: 0.0 },
            ProfilePoint { rho: 0.5, seconds: f32::INFINITY },
        ] {
            assert!(LatencyProfile::new(&[ok, bad]).is_err(), "{bad:?}");
        }
        assert!(LatencyProfile::new(&[]).is_err());
        let e = LatencyProfile::new(&[ok, ok]).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
