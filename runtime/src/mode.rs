use std::fmt;
use std::str::FromStr;

use crate::error::PagError;

/// Which pixels the gated layers compute. Switchable per frame on the same session.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ComputeMode {
    /// Every gate open: the full model.
    Dense,
    /// Each gate's own binary decision (score > 0).
    Native,
    /// The top ⌈ρ·H·W⌉ pixels per gated layer by gate score, ρ ∈ (0, 1].
    Budget(f32),
}

impl ComputeMode {
    /// A validated budget mode.
    pub fn budget(rho: f32) -> Result<ComputeMode, PagError> {
        if rho > 0.0 && rho <= 1.0 {
            Ok(ComputeMode::Budget(rho))
        } else {
            Err(PagError::Mode(format!("ρ must be in (0, 1], got {rho}")))
        }
    }

    /// The value of the contract's ρ input that selects this mode (0 = native).
    pub fn rho_input(self) -> f32 {
        match self {
            ComputeMode::Dense => 1.0,
            ComputeMode::Native => 0.0,
            ComputeMode::Budget(r) => r,
        }
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
                let rho: f32 = num.parse().map_err(|_| {
                    PagError::Mode(format!("`{s}` is not `dense`, `native`, `budget:ρ` or a number ρ in (0, 1]"))
                })?;
                ComputeMode::budget(rho)
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

    #[test]
    fn parses_every_spelling_and_rejects_bad_rho() {
        assert_eq!("dense".parse::<ComputeMode>().unwrap(), ComputeMode::Dense);
        assert_eq!(" native ".parse::<ComputeMode>().unwrap(), ComputeMode::Native);
        assert_eq!("budget:0.5".parse::<ComputeMode>().unwrap(), ComputeMode::Budget(0.5));
        assert_eq!("0.25".parse::<ComputeMode>().unwrap(), ComputeMode::Budget(0.25));
        for bad in ["budget:0", "1.5", "-0.1", "NaN", "fast", ""] {
            assert!(bad.parse::<ComputeMode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn rho_input_encodes_the_mode() {
        assert_eq!(ComputeMode::Dense.rho_input(), 1.0);
        assert_eq!(ComputeMode::Native.rho_input(), 0.0);
        assert_eq!(ComputeMode::Budget(0.3).rho_input(), 0.3);
        assert_eq!(ComputeMode::Budget(0.3).to_string().parse::<ComputeMode>().unwrap(), ComputeMode::Budget(0.3));
    }
}
