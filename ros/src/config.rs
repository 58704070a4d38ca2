//! The node's run-time parameters: names, defaults, validation (an invalid value is rejected
//! with a reason and the old value stays) and how they combine into a compute mode, including
//! the battery policy. Pure logic, no DDS.
use std::fmt;
use std::str::FromStr;

use pag_runtime::{ComputeMode, Resolution, Rho};
use ros2_client::ParameterValue;

pub const P_MODEL_PATH: &str = "model_path";
pub const P_MODE: &str = "mode";
pub const P_RHO: &str = "rho";
pub const P_DEADLINE_MS: &str = "deadline_ms";
pub const P_BATTERY_POLICY: &str = "battery_policy";
pub const P_BATTERY_MIN_RHO: &str = "battery_min_rho";
pub const P_OUTPUT_RESOLUTION: &str = "output_resolution";
pub const P_PUBLISH_LABELS: &str = "publish_labels";
pub const P_PUBLISH_SEGMENTATION: &str = "publish_segmentation";
pub const P_PUBLISH_DEPTH: &str = "publish_depth";
pub const P_PUBLISH_NORMALS: &str = "publish_normals";
pub const P_PUBLISH_PONDER: &str = "publish_ponder";
pub const P_PUBLISH_TIMING: &str = "publish_timing";
pub const P_MAX_DEPTH_M: &str = "max_depth_m";

/// Which compute mode family; ρ is its own parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModeKind {
    Dense,
    Native,
    Budget,
}

impl FromStr for ModeKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dense" => Ok(ModeKind::Dense),
            "native" => Ok(ModeKind::Native),
            "budget" => Ok(ModeKind::Budget),
            _ => Err(format!("mode must be `dense`, `native` or `budget`, got `{s}`")),
        }
    }
}

impl fmt::Display for ModeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModeKind::Dense => "dense",
            ModeKind::Native => "native",
            ModeKind::Budget => "budget",
        })
    }
}

/// How the battery level limits compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatteryPolicy {
    /// Ignore the battery.
    Off,
    /// ρ is capped by the battery fraction, never below `battery_min_rho`; dense counts as
    /// ρ = 1 (so it becomes a budget when the cap bites); native is left alone.
    Scale,
}

impl FromStr for BatteryPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "off" => Ok(BatteryPolicy::Off),
            "scale" => Ok(BatteryPolicy::Scale),
            _ => Err(format!("battery_policy must be `off` or `scale`, got `{s}`")),
        }
    }
}

impl fmt::Display for BatteryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BatteryPolicy::Off => "off",
            BatteryPolicy::Scale => "scale",
        })
    }
}

fn parse_resolution(s: &str) -> Result<Resolution, String> {
    match s {
        "model" => Ok(Resolution::Model),
        "input" => Ok(Resolution::Input),
        _ => Err(format!("output_resolution must be `model` or `input`, got `{s}`")),
    }
}

fn resolution_name(r: Resolution) -> &'static str {
    match r {
        Resolution::Model => "model",
        Resolution::Input => "input",
    }
}

/// Which outputs are published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Toggles {
    pub labels: bool,
    pub segmentation: bool,
    pub depth: bool,
    pub normals: bool,
    pub ponder: bool,
    /// Per-frame timing on `~/frame_timing` (for latency measurement).
    pub timing: bool,
}

impl Default for Toggles {
    fn default() -> Self {
        Toggles { labels: true, segmentation: true, depth: true, normals: true, ponder: true, timing: false }
    }
}

/// Everything the parameters control.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub model_path: String,
    pub mode: ModeKind,
    pub rho: f64,
    pub deadline_ms: f64,
    pub battery_policy: BatteryPolicy,
    pub battery_min_rho: f64,
    pub output_resolution: Resolution,
    /// Depths beyond this (metres) are published as NaN (invalid); 0 = no limit.
    pub max_depth_m: f64,
    pub publish: Toggles,
}

impl Config {
    pub fn new(model_path: String) -> Config {
        Config {
            model_path,
            mode: ModeKind::Dense,
            rho: 0.5,
            deadline_ms: 100.0,
            battery_policy: BatteryPolicy::Off,
            battery_min_rho: 0.25,
            output_resolution: Resolution::Model,
            max_depth_m: 0.0,
            publish: Toggles::default(),
        }
    }

    /// The parameters to declare, with this config's values.
    pub fn parameters(&self) -> Vec<(&'static str, ParameterValue)> {
        use ParameterValue::*;
        vec![
            (P_MODEL_PATH, String(self.model_path.clone())),
            (P_MODE, String(self.mode.to_string())),
            (P_RHO, Double(self.rho)),
            (P_DEADLINE_MS, Double(self.deadline_ms)),
            (P_BATTERY_POLICY, String(self.battery_policy.to_string())),
            (P_BATTERY_MIN_RHO, Double(self.battery_min_rho)),
            (P_OUTPUT_RESOLUTION, String(resolution_name(self.output_resolution).into())),
            (P_MAX_DEPTH_M, Double(self.max_depth_m)),
            (P_PUBLISH_LABELS, Boolean(self.publish.labels)),
            (P_PUBLISH_SEGMENTATION, Boolean(self.publish.segmentation)),
            (P_PUBLISH_DEPTH, Boolean(self.publish.depth)),
            (P_PUBLISH_NORMALS, Boolean(self.publish.normals)),
            (P_PUBLISH_PONDER, Boolean(self.publish.ponder)),
            (P_PUBLISH_TIMING, Boolean(self.publish.timing)),
        ]
    }

    /// Applies one parameter after validating it; on error `self` is unchanged. Model files are
    /// not opened here (the node checks that `model_path` loads before accepting it).
    pub fn set(&mut self, name: &str, value: &ParameterValue) -> Result<(), String> {
        use ParameterValue as V;
        // A valid ρ (pag_runtime::Rho): in (0, 1] and still > 0 as an f32 (1e-46 is rejected,
        // it would silently become native mode).
        let unit = |what: &str, v: f64| match Rho::new(v) {
            Ok(_) => Ok(v),
            Err(_) => Err(format!("{what} must be in (0, 1] (and representable as a positive f32), got {v}")),
        };
        match (name, value) {
            (P_MODEL_PATH, V::String(s)) => {
                if s.trim().is_empty() {
                    return Err("model_path must not be empty".into());
                }
                self.model_path = s.clone();
            }
            (P_MODE, V::String(s)) => self.mode = s.parse()?,
            (P_RHO, V::Double(v)) => self.rho = unit("rho", *v)?,
            (P_DEADLINE_MS, V::Double(v)) => {
                if !(v.is_finite() && *v > 0.0) {
                    return Err(format!("deadline_ms must be a positive number of milliseconds, got {v}"));
                }
                self.deadline_ms = *v;
            }
            (P_BATTERY_POLICY, V::String(s)) => self.battery_policy = s.parse()?,
            (P_BATTERY_MIN_RHO, V::Double(v)) => self.battery_min_rho = unit("battery_min_rho", *v)?,
            (P_OUTPUT_RESOLUTION, V::String(s)) => self.output_resolution = parse_resolution(s)?,
            (P_MAX_DEPTH_M, V::Double(v)) => {
                if !(v.is_finite() && *v >= 0.0) {
                    return Err(format!("max_depth_m must be ≥ 0 metres (0 = no limit), got {v}"));
                }
                self.max_depth_m = *v;
            }
            (P_PUBLISH_LABELS, V::Boolean(b)) => self.publish.labels = *b,
            (P_PUBLISH_SEGMENTATION, V::Boolean(b)) => self.publish.segmentation = *b,
            (P_PUBLISH_DEPTH, V::Boolean(b)) => self.publish.depth = *b,
            (P_PUBLISH_NORMALS, V::Boolean(b)) => self.publish.normals = *b,
            (P_PUBLISH_PONDER, V::Boolean(b)) => self.publish.ponder = *b,
            (P_PUBLISH_TIMING, V::Boolean(b)) => self.publish.timing = *b,
            (
                P_MODEL_PATH
                | P_MODE
                | P_RHO
                | P_DEADLINE_MS
                | P_BATTERY_POLICY
                | P_BATTERY_MIN_RHO
                | P_OUTPUT_RESOLUTION
                | P_MAX_DEPTH_M
                | P_PUBLISH_LABELS
                | P_PUBLISH_SEGMENTATION
                | P_PUBLISH_DEPTH
                | P_PUBLISH_NORMALS
                | P_PUBLISH_PONDER
                | P_PUBLISH_TIMING,
                v,
            ) => return Err(format!("parameter {name} has the wrong type ({:?})", v.to_parameter_type())),
            _ => return Err(format!("unknown parameter {name}")),
        }
        Ok(())
    }

    /// Checks a value without applying it.
    pub fn validate(&self, name: &str, value: &ParameterValue) -> Result<(), String> {
        self.clone().set(name, value)
    }

    /// The compute mode for the next frame given the battery fraction (0–1, `None` unknown).
    /// Returns the mode and ρ actually used (1 for dense, 0 for native).
    pub fn effective_mode(&self, battery: Option<f32>) -> ComputeMode {
        let base = match self.mode {
            ModeKind::Dense => ComputeMode::Dense,
            ModeKind::Native => ComputeMode::Native,
            ModeKind::Budget => ComputeMode::Budget(Rho::new(self.rho).unwrap_or(Rho::ONE)),
        };
        match (self.battery_policy, battery, base) {
            (BatteryPolicy::Scale, Some(b), ComputeMode::Dense | ComputeMode::Budget(_)) => {
                let rho = base.rho_input();
                let cap = (b.clamp(0.0, 1.0)).max(self.battery_min_rho as f32);
                if cap < rho {
                    ComputeMode::Budget(Rho::new(cap as f64).unwrap_or(Rho::ONE))
                } else {
                    base
                }
            }
            _ => base,
        }
    }
}

/// REP 118 depth: depths beyond `max_m` (when > 0) become NaN (invalid), as do non-positive
/// or non-finite ones (already NaN from the runtime).
pub fn limit_depth(depth: &mut ndarray::Array2<f32>, max_m: f64) {
    if max_m > 0.0 {
        let max = max_m as f32;
        depth.mapv_inplace(|d| if d > max { f32::NAN } else { d });
    }
}

/// How a `BatteryState.percentage` was read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatteryReading {
    /// A proper 0–1 fraction.
    Fraction(f32),
    /// A value in (1, 100]: taken as a percentage sent by a non-conforming publisher, divided by
    /// 100 and counted.
    Percent(f32),
    /// NaN: the publisher does not know; the battery level becomes unknown (no cap).
    Unknown,
    /// Negative, infinite or above 100: ignored, the previous reading stays, counted.
    Invalid,
}

pub fn read_battery(percentage: f32) -> BatteryReading {
    if percentage.is_nan() {
        BatteryReading::Unknown
    } else if (0.0..=1.0).contains(&percentage) {
        BatteryReading::Fraction(percentage)
    } else if percentage > 1.0 && percentage <= 100.0 {
        BatteryReading::Percent(percentage / 100.0)
    } else {
        BatteryReading::Invalid
    }
}

/// Splits a CLI `--mode` (`dense`, `native`, `budget`, `budget:0.3` or a bare ρ) into kind and ρ.
pub fn parse_cli_mode(s: &str) -> Result<(ModeKind, Option<f64>), String> {
    if s == "budget" {
        return Ok((ModeKind::Budget, None));
    }
    match s.parse::<ComputeMode>().map_err(|e| e.to_string())? {
        ComputeMode::Dense => Ok((ModeKind::Dense, None)),
        ComputeMode::Native => Ok((ModeKind::Native, None)),
        ComputeMode::Budget(r) => Ok((ModeKind::Budget, Some(r.get() as f64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParameterValue as V;

    #[test]
    fn invalid_values_are_rejected_with_a_reason_and_leave_the_config_alone() {
        let mut c = Config::new("m.onnx".into());
        let before = c.clone();
        for (name, v) in [
            (P_RHO, V::Double(0.0)),
            (P_RHO, V::Double(1.5)),
            (P_RHO, V::Double(f64::NAN)),
            (P_RHO, V::Integer(1)),
            (P_MODE, V::String("fast".into())),
            (P_DEADLINE_MS, V::Double(-1.0)),
            (P_BATTERY_POLICY, V::String("max".into())),
            (P_BATTERY_MIN_RHO, V::Double(0.0)),
            (P_OUTPUT_RESOLUTION, V::String("4k".into())),
            (P_MAX_DEPTH_M, V::Double(-1.0)),
            (P_MAX_DEPTH_M, V::Double(f64::INFINITY)),
            (P_PUBLISH_DEPTH, V::String("yes".into())),
            (P_MODEL_PATH, V::String(" ".into())),
            ("nope", V::Boolean(true)),
        ] {
            let err = c.set(name, &v).unwrap_err();
            assert!(!err.is_empty(), "{name}");
            assert_eq!(c, before, "{name} changed the config");
        }
        c.set(P_RHO, &V::Double(0.3)).unwrap();
        c.set(P_MODE, &V::String("budget".into())).unwrap();
        assert_eq!(c.effective_mode(None), ComputeMode::budget(0.3).unwrap());
        for (name, value) in before.parameters() {
            c.validate(name, &value).unwrap();
        }
    }

    #[test]
    fn battery_policy_caps_rho_with_a_floor() {
        let mut c = Config::new("m".into());
        assert_eq!(c.effective_mode(Some(0.1)), ComputeMode::Dense, "policy off");
        c.battery_policy = BatteryPolicy::Scale;
        assert_eq!(c.effective_mode(None), ComputeMode::Dense, "unknown battery: no cap");
        assert_eq!(c.effective_mode(Some(0.6)), ComputeMode::budget(0.6).unwrap());
        assert_eq!(c.effective_mode(Some(0.1)), ComputeMode::budget(0.25).unwrap(), "floor");
        c.mode = ModeKind::Budget;
        c.rho = 0.5;
        assert_eq!(c.effective_mode(Some(0.9)), ComputeMode::budget(0.5).unwrap(), "cap above ρ");
        assert_eq!(c.effective_mode(Some(0.4)), ComputeMode::budget(0.4).unwrap());
        c.mode = ModeKind::Native;
        assert_eq!(c.effective_mode(Some(0.1)), ComputeMode::Native);
    }

    #[test]
    fn depth_limit() {
        let mut d = ndarray::arr2(&[[1.0f32, 5.0, f32::NAN]]);
        limit_depth(&mut d, 0.0);
        assert_eq!(d[[0, 1]], 5.0);
        limit_depth(&mut d, 4.0);
        assert_eq!(d[[0, 0]], 1.0);
        assert!(d[[0, 1]].is_nan() && d[[0, 2]].is_nan());
    }

    #[test]
    fn battery_readings() {
        assert_eq!(read_battery(0.5), BatteryReading::Fraction(0.5));
        assert_eq!(read_battery(1.0), BatteryReading::Fraction(1.0));
        assert_eq!(read_battery(55.0), BatteryReading::Percent(0.55));
        assert_eq!(read_battery(f32::NAN), BatteryReading::Unknown);
        for bad in [-0.1, 100.5, f32::INFINITY, f32::NEG_INFINITY] {
            assert_eq!(read_battery(bad), BatteryReading::Invalid, "{bad}");
        }
    }

    #[test]
    fn cli_modes() {
        assert_eq!(parse_cli_mode("dense").unwrap(), (ModeKind::Dense, None));
        assert_eq!(parse_cli_mode("budget").unwrap(), (ModeKind::Budget, None));
        assert_eq!(parse_cli_mode("budget:0.25").unwrap(), (ModeKind::Budget, Some(0.25)));
        assert!(parse_cli_mode("budget:2").is_err());
        assert!(parse_cli_mode("budget:1e-46").is_err());
    }

    #[test]
    fn rho_that_would_round_to_zero_is_rejected() {
        let mut c = Config::new("m.onnx".into());
        for bad in [1e-46, 0.0, -1.0, f64::NAN, 1.5] {
            assert!(c.set(P_RHO, &ParameterValue::Double(bad)).is_err(), "{bad}");
        }
        assert!(c.set(P_RHO, &ParameterValue::Double(0.3)).is_ok());
    }
}
