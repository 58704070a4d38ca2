//! The node's run-time parameters: names, defaults, validation (an invalid value is rejected
//! with a reason and the old value stays) and the fixed compute mode they describe. The ρ
//! controller's parameters (`controller`, `deadline_ms`, `rho_min`, the battery policy, …) are
//! validated by `pag_calibration::ros_glue`; this module only routes them there. Pure logic, no
//! DDS.
use std::fmt;
use std::str::FromStr;

use pag_calibration::ros_glue::{self, ControllerParams, Value};
use pag_runtime::{ComputeMode, LoadOptions, Resolution, Rho};
use ros2_client::ParameterValue;

pub const P_MODEL_PATH: &str = "model_path";
pub const P_MODE: &str = "mode";
pub const P_RHO: &str = "rho";
pub const P_OUTPUT_RESOLUTION: &str = "output_resolution";
pub const P_PUBLISH_LABELS: &str = "publish_labels";
pub const P_PUBLISH_SEGMENTATION: &str = "publish_segmentation";
pub const P_PUBLISH_DEPTH: &str = "publish_depth";
pub const P_PUBLISH_NORMALS: &str = "publish_normals";
pub const P_PUBLISH_PONDER: &str = "publish_ponder";
pub const P_PUBLISH_TIMING: &str = "publish_timing";
pub const P_MAX_DEPTH_M: &str = "max_depth_m";
/// Inference threads; read at start-up only (`--threads`).
pub const P_THREADS: &str = "threads";
// The controller's parameters, validated by `ros_glue` (`deadline_ms` and `battery_policy` also
// apply with the controller off: deadline misses are counted, the battery caps the fixed mode).
pub use ros_glue::{
    P_BATTERY_HYSTERESIS, P_BATTERY_POLICY, P_BATTERY_STALE_S, P_BATTERY_STEPS, P_BATTERY_UNKNOWN_CAP, P_CONTROLLER,
    P_CONTROLLER_PROFILE, P_DEADLINE_MS, P_DEADLINE_PROBABILITY, P_RHO_MIN,
};

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
    pub output_resolution: Resolution,
    /// Depths beyond this (metres) are published as NaN (invalid); 0 = no limit.
    pub max_depth_m: f64,
    pub publish: Toggles,
    /// The ρ controller's parameters, `deadline_ms` and the battery policy among them (one
    /// battery policy: it caps the controller's ρ, or the fixed mode when the controller is off).
    pub controller: ControllerParams,
    /// Inference threads of every session (`LoadOptions::threads`); `None` = the runtime's
    /// default (every core this process may use). Start-up only.
    pub threads: Option<usize>,
    /// What idle inference threads do during a frame (`--worker-wait`; the node sleeps by
    /// default: its synthetic camera and DDS share the cores). Start-up only.
    pub worker_wait: pag_runtime::WorkerWait,
}

/// A ROS parameter value as `ros_glue` reads it (`None` for the types it never uses).
fn glue_value(v: &ParameterValue) -> Option<Value<'_>> {
    match v {
        ParameterValue::Boolean(b) => Some(Value::Bool(*b)),
        ParameterValue::Double(d) => Some(Value::Double(*d)),
        ParameterValue::String(s) => Some(Value::Str(s)),
        _ => None,
    }
}

fn ros_value(v: Value<'_>) -> ParameterValue {
    match v {
        Value::Bool(b) => ParameterValue::Boolean(b),
        Value::Double(d) => ParameterValue::Double(d),
        Value::Str(s) => ParameterValue::String(s.to_owned()),
    }
}

impl Config {
    pub fn new(model_path: String) -> Config {
        Config {
            model_path,
            mode: ModeKind::Dense,
            rho: 0.5,
            output_resolution: Resolution::Model,
            max_depth_m: 0.0,
            publish: Toggles::default(),
            // The node's battery policy stays off unless asked for: with `steps`, a robot that
            // publishes no BatteryState would run at `battery_unknown_cap`.
            controller: ControllerParams { battery_policy: "off".into(), ..ControllerParams::default() },
            threads: None,
            worker_wait: pag_runtime::WorkerWait::Sleep,
        }
    }

    /// `deadline_ms` (shared by the controller and the deadline-miss count).
    pub fn deadline_ms(&self) -> f64 {
        self.controller.deadline_ms
    }

    /// Whether the battery caps ρ (`battery_policy` is not `off`).
    pub fn battery_enabled(&self) -> bool {
        self.controller.battery_policy != "off"
    }

    /// The load options of every model the node loads: sparse execution, `threads`, `worker_wait`.
    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            execution: pag_runtime::Execution::Sparse,
            threads: self.threads,
            worker_wait: self.worker_wait,
            ..LoadOptions::default()
        }
    }

    /// The thread count sessions run on.
    pub fn resolved_threads(&self) -> usize {
        self.load_options().resolved_threads()
    }

    /// Sets the start-up-only thread count (`--threads`): `None` or 1–1024.
    pub fn set_threads(&mut self, threads: Option<usize>) -> Result<(), String> {
        let opts = LoadOptions { threads, ..self.load_options() };
        opts.validate().map_err(|e| e.to_string())?;
        self.threads = threads;
        Ok(())
    }

    /// The parameters to declare, with this config's values.
    pub fn parameters(&self) -> Vec<(&'static str, ParameterValue)> {
        use ParameterValue::*;
        let mut p = vec![
            (P_MODEL_PATH, String(self.model_path.clone())),
            (P_MODE, String(self.mode.to_string())),
            (P_RHO, Double(self.rho)),
            (P_OUTPUT_RESOLUTION, String(resolution_name(self.output_resolution).into())),
            (P_MAX_DEPTH_M, Double(self.max_depth_m)),
            (P_PUBLISH_LABELS, Boolean(self.publish.labels)),
            (P_PUBLISH_SEGMENTATION, Boolean(self.publish.segmentation)),
            (P_PUBLISH_DEPTH, Boolean(self.publish.depth)),
            (P_PUBLISH_NORMALS, Boolean(self.publish.normals)),
            (P_PUBLISH_PONDER, Boolean(self.publish.ponder)),
            (P_PUBLISH_TIMING, Boolean(self.publish.timing)),
            (P_THREADS, Integer(self.resolved_threads() as i64)),
        ];
        p.extend(self.controller.declared().into_iter().map(|(n, v)| (n, ros_value(v))));
        p
    }

    /// Applies one parameter after validating it; on error `self` is unchanged. Model files are
    /// not opened here (the node checks that `model_path` loads before accepting it); a
    /// `controller_profile` file is read (`ros_glue` checks that it is a usable profile).
    pub fn set(&mut self, name: &str, value: &ParameterValue) -> Result<(), String> {
        use ParameterValue as V;
        // A valid ρ (pag_runtime::Rho): in (0, 1] and still > 0 as an f32 (1e-46 is rejected,
        // it would silently become native mode).
        let unit = |what: &str, v: f64| match Rho::new(v) {
            Ok(_) => Ok(v),
            Err(_) => Err(format!("{what} must be in (0, 1] (and representable as a positive f32), got {v}")),
        };
        let wrong_type = || format!("parameter {name} has the wrong type ({:?})", value.to_parameter_type());
        if ros_glue::is_controller_param(name) {
            let v = glue_value(value).ok_or_else(wrong_type)?;
            return match self.controller.set(name, &v) {
                Err(e) if e.contains("has the wrong type") => Err(wrong_type()),
                r => r,
            };
        }
        match (name, value) {
            (P_MODEL_PATH, V::String(s)) => {
                if s.trim().is_empty() {
                    return Err("model_path must not be empty".into());
                }
                self.model_path = s.clone();
            }
            (P_MODE, V::String(s)) => self.mode = s.parse()?,
            (P_RHO, V::Double(v)) => self.rho = unit("rho", *v)?,
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
            // Setting the value it already has is a no-op.
            (P_THREADS, V::Integer(n)) if *n == self.resolved_threads() as i64 => {}
            (P_THREADS, V::Integer(_)) => {
                return Err(format!(
                    "threads is read at start-up only (--threads; now {}): restart the node to change it",
                    self.resolved_threads()
                ))
            }
            (
                P_MODEL_PATH
                | P_MODE
                | P_RHO
                | P_OUTPUT_RESOLUTION
                | P_MAX_DEPTH_M
                | P_PUBLISH_LABELS
                | P_PUBLISH_SEGMENTATION
                | P_PUBLISH_DEPTH
                | P_PUBLISH_NORMALS
                | P_PUBLISH_PONDER
                | P_PUBLISH_TIMING
                | P_THREADS,
                _,
            ) => return Err(wrong_type()),
            _ => return Err(format!("unknown parameter {name}")),
        }
        Ok(())
    }

    /// Checks a value without applying it.
    pub fn validate(&self, name: &str, value: &ParameterValue) -> Result<(), String> {
        self.clone().set(name, value)
    }

    /// The mode the `mode` and `rho` parameters ask for (the controller off).
    pub fn fixed_mode(&self) -> ComputeMode {
        match self.mode {
            ModeKind::Dense => ComputeMode::Dense,
            ModeKind::Native => ComputeMode::Native,
            ModeKind::Budget => ComputeMode::Budget(Rho::new(self.rho).unwrap_or(Rho::ONE)),
        }
    }
}

/// `mode` under a battery cap on ρ (the controller off): dense counts as ρ = 1, so it becomes
/// `budget:cap` when the cap is below 1; a budget above the cap is lowered to it; native is
/// left alone (it has no ρ). Allocates nothing.
pub fn capped_mode(mode: ComputeMode, cap: f32) -> ComputeMode {
    match mode {
        ComputeMode::Dense | ComputeMode::Budget(_) if cap < mode.rho_input() => {
            Rho::new(cap as f64).map_or(mode, ComputeMode::Budget)
        }
        _ => mode,
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

/// How a `BatteryState.percentage` was read, for the node's battery counters and the
/// `battery_fraction` diagnostic (the battery cap itself is the controller's: it reads the same
/// message, with its own memory of a publisher that sends percent).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatteryReading {
    /// A proper 0–1 fraction.
    Fraction(f32),
    /// A value in (1, 100]: taken as a percentage sent by a non-conforming publisher, divided by
    /// 100 and counted.
    Percent(f32),
    /// NaN: the publisher does not know; the battery level becomes unknown.
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
        for (name, v, want) in [
            (P_RHO, V::Double(0.0), "rho must be in (0, 1]"),
            (P_RHO, V::Double(1.5), "rho must be in (0, 1]"),
            (P_RHO, V::Double(f64::NAN), "rho must be in (0, 1]"),
            (P_RHO, V::Integer(1), "parameter rho has the wrong type (Integer)"),
            (P_MODE, V::String("fast".into()), "mode must be"),
            (P_DEADLINE_MS, V::Double(-1.0), "deadline_ms must be a positive number of milliseconds"),
            (P_DEADLINE_MS, V::Integer(10), "parameter deadline_ms has the wrong type (Integer)"),
            (P_BATTERY_POLICY, V::String("max".into()), "battery_policy must be `off`, `steps` or `scale`"),
            (P_OUTPUT_RESOLUTION, V::String("4k".into()), "output_resolution must be"),
            (P_MAX_DEPTH_M, V::Double(-1.0), "max_depth_m"),
            (P_MAX_DEPTH_M, V::Double(f64::INFINITY), "max_depth_m"),
            (P_PUBLISH_DEPTH, V::String("yes".into()), "wrong type"),
            (P_MODEL_PATH, V::String(" ".into()), "model_path must not be empty"),
            (P_CONTROLLER, V::String("on".into()), "parameter controller has the wrong type (String)"),
            (P_RHO_MIN, V::Double(0.0), "rho_min must be in (0, 1], got 0"),
            (P_RHO_MIN, V::Double(1.5), "rho_min"),
            (P_DEADLINE_PROBABILITY, V::Double(0.2), "deadline_probability must be in [0.5, 0.9999]"),
            (P_BATTERY_STEPS, V::String("half".into()), "is not `below:cap`"),
            (P_BATTERY_STEPS, V::String("0.3:0.5, 0.5:0.75".into()), "thresholds must decrease"),
            (P_BATTERY_HYSTERESIS, V::Double(0.5), "battery hysteresis must be in [0, 0.2]"),
            (P_BATTERY_UNKNOWN_CAP, V::Double(0.0), "battery unknown cap must be in (0, 1]"),
            (P_BATTERY_STALE_S, V::Double(0.0), "battery_stale_s must be a positive number of seconds"),
            (P_CONTROLLER_PROFILE, V::String("/nonexistent/profile.json".into()), "cannot read or write"),
            (P_THREADS, V::Integer(1000), "threads is read at start-up only"),
            (P_THREADS, V::Double(2.0), "parameter threads has the wrong type (Double)"),
            ("battery_min_rho", V::Double(0.3), "unknown parameter battery_min_rho"),
            ("nope", V::Boolean(true), "unknown parameter nope"),
        ] {
            let err = c.set(name, &v).unwrap_err();
            assert!(err.contains(want), "{name} = {v:?}: {err:?} lacks {want:?}");
            assert_eq!(c, before, "{name} changed the config");
        }
        c.set(P_RHO, &V::Double(0.3)).unwrap();
        c.set(P_MODE, &V::String("budget".into())).unwrap();
        assert_eq!(c.fixed_mode(), ComputeMode::budget(0.3).unwrap());
        for (name, value) in before.parameters() {
            c.validate(name, &value).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn controller_parameters_go_through_ros_glue() {
        let mut c = Config::new("m.onnx".into());
        assert!(!c.controller.enabled && !c.battery_enabled(), "controller and battery policy off by default");
        assert_eq!(c.deadline_ms(), 100.0);
        c.set(P_CONTROLLER, &V::Boolean(true)).unwrap();
        c.set(P_DEADLINE_MS, &V::Double(14.5)).unwrap();
        c.set(P_RHO_MIN, &V::Double(0.3)).unwrap();
        assert!(c.controller.enabled);
        assert_eq!(c.deadline_ms(), 14.5);
        // The whole controller configuration is validated: with the battery policy on, the
        // default lowest cap (0.25) is below rho_min 0.3.
        let e = c.set(P_BATTERY_POLICY, &V::String("steps".into())).unwrap_err();
        assert!(e.contains("is below rho_min (0.3)"), "{e}");
        assert!(!c.battery_enabled());
        c.set(P_BATTERY_STEPS, &V::String("0.5:0.75, 0.2:0.3".into())).unwrap();
        c.set(P_BATTERY_POLICY, &V::String("scale".into())).unwrap();
        assert!(c.battery_enabled(), "`scale`, the node's older policy, is read as `steps`");
        assert_eq!(c.controller.config().unwrap().battery.steps.len(), 2);
        // Every declared parameter is valid as declared, and names appear once.
        let params = c.parameters();
        let mut names: Vec<_> = params.iter().map(|p| p.0).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), params.len());
        for (name, value) in &params {
            c.validate(name, value).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn threads_are_start_up_only() {
        let mut c = Config::new("m.onnx".into());
        assert_eq!(c.resolved_threads(), pag_runtime::default_threads());
        assert!(c.set_threads(Some(0)).unwrap_err().contains("threads must be ≥ 1"));
        c.set_threads(Some(3)).unwrap();
        assert_eq!(c.load_options().threads, Some(3));
        assert!(c.parameters().contains(&(P_THREADS, V::Integer(3))));
        c.set(P_THREADS, &V::Integer(3)).unwrap();
        assert!(c.set(P_THREADS, &V::Integer(2)).unwrap_err().contains("restart the node"));
    }

    #[test]
    fn battery_cap_on_the_fixed_mode() {
        let mut c = Config::new("m".into());
        assert_eq!(capped_mode(c.fixed_mode(), 1.0), ComputeMode::Dense, "no cap");
        assert_eq!(capped_mode(c.fixed_mode(), 0.5), ComputeMode::budget(0.5).unwrap(), "dense counts as ρ = 1");
        c.mode = ModeKind::Budget;
        c.rho = 0.5;
        assert_eq!(capped_mode(c.fixed_mode(), 0.75), ComputeMode::budget(0.5).unwrap(), "cap above ρ");
        assert_eq!(capped_mode(c.fixed_mode(), 0.25), ComputeMode::budget(0.25).unwrap());
        c.mode = ModeKind::Native;
        assert_eq!(capped_mode(c.fixed_mode(), 0.25), ComputeMode::Native);
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
