use std::fmt;
use std::str::FromStr;

use crate::error::PagError;

/// A budget ρ ∈ (0, 1]: the fraction of pixels each gated layer keeps. Only valid values can
/// be built: NaN, ≤ 0, > 1, and values that round to 0 in f32 (e.g. 1e-46, which would silently
/// turn into native mode in the contract's ρ input) are errors.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Rho(f32);

impl Rho {
    /// ρ = 1: every pixel.
    pub const ONE: Rho = Rho(1.0);

    /// A validated ρ from any float (f64 parameters, parsed text).
    pub fn new(rho: f64) -> Result<Rho, PagError> {
        let r = rho as f32;
        if rho.is_finite() && rho > 0.0 && rho <= 1.0 && r > 0.0 {
            Ok(Rho(r.min(1.0)))
        } else {
            Err(PagError::Mode(format!("ρ must be in (0, 1] and representable as a positive f32, got {rho}")))
        }
    }

    /// The value, in (0, 1].
    pub fn get(self) -> f32 {
        self.0
    }
}

impl fmt::Display for Rho {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Which pixels the gated layers compute. Switchable per frame on the same session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ComputeMode {
    /// Every gate open: the full model.
    Dense,
    /// Each gate's own binary decision (score > 0).
    Native,
    /// The top ⌈ρ·H·W⌉ pixels per gated layer by gate score.
    Budget(Rho),
}

impl ComputeMode {
    /// A validated budget mode (see [`Rho::new`]).
    pub fn budget(rho: f32) -> Result<ComputeMode, PagError> {
        Rho::new(rho as f64).map(ComputeMode::Budget)
    }

    /// The value of the contract's ρ input that selects this mode (0 = native).
    pub fn rho_input(self) -> f32 {
        match self {
            ComputeMode::Dense => 1.0,
            ComputeMode::Native => 0.0,
            ComputeMode::Budget(r) => r.get(),
        }
    }
}

/// The compute mode the contract's ρ input encodes (≥ 1 → dense, ≤ 0 or NaN → native, else a
/// budget).
pub fn mode_from_rho(rho: f32) -> ComputeMode {
    if rho >= 1.0 {
        ComputeMode::Dense
    } else if rho <= 0.0 || rho.is_nan() {
        ComputeMode::Native
    } else {
        ComputeMode::Budget(Rho(rho))
    }
}

impl FromStr for ComputeMode {
    type Err = PagError;
    /// `dense`, `native`, `budget:0.5` or a bare `0.5`.
    fn from_str(s: &str) -> Result<Self, PagError> {
        let s = s.trim();
        match s {
            "dense" => Ok(ComputeMode::Dense),
            "native" => Ok(ComputeMode::Native),
            _ => {
                let num = s.strip_prefix("budget:").unwrap_or(s);
                let rho: f64 = num.parse().map_err(|_| {
                    PagError::Mode(format!("`{s}` is not `dense`, `native`, `budget:ρ` or a number ρ in (0, 1]"))
                })?;
                Rho::new(rho).map(ComputeMode::Budget)
            }
        }
    }
}

impl fmt::Display for ComputeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeMode::Dense => write!(f, "dense"),
            ComputeMode::Native => write!(f, "native"),
            ComputeMode::Budget(r) => write!(f, "budget:{r}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(r: f32) -> ComputeMode {
        ComputeMode::budget(r).unwrap()
    }

    #[test]
    fn parses_every_spelling_and_rejects_bad_rho() {
        assert_eq!("dense".parse::<ComputeMode>().unwrap(), ComputeMode::Dense);
        assert_eq!(" native ".parse::<ComputeMode>().unwrap(), ComputeMode::Native);
        assert_eq!("budget:0.5".parse::<ComputeMode>().unwrap(), budget(0.5));
        assert_eq!("0.25".parse::<ComputeMode>().unwrap(), budget(0.25));
        for bad in ["budget:0", "1.5", "-0.1", "NaN", "fast", "", "1e-46", "budget:inf"] {
            assert!(bad.parse::<ComputeMode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rho_rejects_what_would_turn_into_native_mode() {
        for bad in [0.0, -0.0, 1e-46, 1e-300, f64::NAN, f64::INFINITY, -1.0, 1.0000001] {
            assert!(Rho::new(bad).is_err(), "{bad}");
        }
        for good in [1e-40, 0.001, 0.5, 1.0] {
            let r = Rho::new(good).unwrap();
            assert!(r.get() > 0.0 && r.get() <= 1.0);
            assert_ne!(ComputeMode::Budget(r).rho_input(), 0.0, "{good} must stay a budget");
        }
    }

    #[test]
    fn rho_input_encodes_the_mode() {
        assert_eq!(ComputeMode::Dense.rho_input(), 1.0);
        assert_eq!(ComputeMode::Native.rho_input(), 0.0);
        assert_eq!(budget(0.3).rho_input(), 0.3);
        assert_eq!(budget(0.3).to_string().parse::<ComputeMode>().unwrap(), budget(0.3));
        assert_eq!(mode_from_rho(0.3), budget(0.3));
        assert_eq!(mode_from_rho(f32::NAN), ComputeMode::Native);
        assert_eq!(mode_from_rho(2.0), ComputeMode::Dense);
    }
}
