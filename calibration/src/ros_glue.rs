//! The ROS node's side of the ρ controller, without ROS types: parameter names, defaults and
//! validators (an invalid value is rejected with a reason and the old value stays), the
//! conversion of a `sensor_msgs/BatteryState`, and the `/diagnostics` key/value pairs.
//!
//! Where the node calls what (see also `calibration/README.md`):
//! 1. start-up: [`ControllerParams::default`], then [`ControllerParams::set`] for each
//!    `--flag`/parameter; [`ControllerParams::load_profile`] (or a quick
//!    [`quick_profile_options`] measurement when `controller_profile` is empty) and
//!    [`ControllerParams::build`] → `Controller`;
//! 2. parameter service: for names where [`is_controller_param`] holds, [`ControllerParams::set`]
//!    on a copy (reject on `Err`), then [`ControllerParams::apply`] to the running controller;
//! 3. battery subscriber: keep the latest message and its arrival `Instant`;
//! 4. inference thread, each frame: after `session.run` (timed whole), `controller.step(now,
//!    Some(Frame { latency_s, rho }), battery_reading(..))`, then `session.set_mode(d.mode())`;
//! 5. diagnostics thread: from a `controller.snapshot()` handed over by the inference thread,
//!    [`diagnostics`], [`diagnostic_level`] and [`diagnostic_message`] for one `DiagnosticStatus`.
use std::path::Path;

use pag_runtime::controller::{
    check_deadline_s, BatteryKnowledge, BatteryPolicy, BatteryReading, Controller, ControllerConfig, Decision,
    KalmanParams, LatencyLaw, LatencyProfile, PowerSupplyStatus, Reason, Snapshot,
};

use crate::{DeviceProfile, MeasureOptions};

pub const P_CONTROLLER: &str = "controller";
pub const P_DEADLINE_MS: &str = "deadline_ms";
pub const P_RHO_MIN: &str = "rho_min";
pub const P_DEADLINE_PROBABILITY: &str = "deadline_probability";
pub const P_BATTERY_POLICY: &str = "battery_policy";
pub const P_BATTERY_STEPS: &str = "battery_steps";
pub const P_BATTERY_HYSTERESIS: &str = "battery_hysteresis";
pub const P_BATTERY_UNKNOWN_CAP: &str = "battery_unknown_cap";
pub const P_BATTERY_STALE_S: &str = "battery_stale_s";
pub const P_CONTROLLER_PROFILE: &str = "controller_profile";

/// Every parameter this module validates (`deadline_ms` and `battery_policy` exist in the node
/// already; the node keeps its own handling when `controller` is off).
pub const CONTROLLER_PARAMS: [&str; 10] = [
    P_CONTROLLER,
    P_DEADLINE_MS,
    P_RHO_MIN,
    P_DEADLINE_PROBABILITY,
    P_BATTERY_POLICY,
    P_BATTERY_STEPS,
    P_BATTERY_HYSTERESIS,
    P_BATTERY_UNKNOWN_CAP,
    P_BATTERY_STALE_S,
    P_CONTROLLER_PROFILE,
];

pub fn is_controller_param(name: &str) -> bool {
    CONTROLLER_PARAMS.contains(&name)
}

/// A parameter value, mirroring ros2-client's `ParameterValue` variants used here.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Bool(bool),
    Double(f64),
    Str(&'a str),
}

/// The controller's parameters as the node holds them.
#[derive(Debug, Clone, PartialEq)]
pub struct ControllerParams {
    /// Off: the node's fixed mode (+ its simple battery cap) as before.
    pub enabled: bool,
    pub deadline_ms: f64,
    pub rho_min: f64,
    pub deadline_probability: f64,
    /// `off`, or `steps` (`scale`, the node's older name, is read as `steps`).
    pub battery_policy: String,
    /// `below:cap` pairs, e.g. `0.5:0.75, 0.3:0.5, 0.15:0.25`.
    pub battery_steps: String,
    pub battery_hysteresis: f64,
    pub battery_unknown_cap: f64,
    pub battery_stale_s: f64,
    /// A `pag profile` file; empty = measure a quick profile at start-up.
    pub profile_path: String,
}

impl Default for ControllerParams {
    fn default() -> Self {
        let c = ControllerConfig::default();
        ControllerParams {
            enabled: false,
            deadline_ms: 100.0,
            rho_min: c.rho_min as f64,
            deadline_probability: KalmanParams::default().deadline_probability as f64,
            battery_policy: "steps".into(),
            battery_steps: c.battery.steps_string(),
            battery_hysteresis: c.battery.hysteresis as f64,
            battery_unknown_cap: c.battery.unknown_cap as f64,
            battery_stale_s: c.battery.stale_s as f64,
            profile_path: String::new(),
        }
    }
}

impl ControllerParams {
    /// (name, value) of every parameter, for declaring them.
    pub fn declared(&self) -> Vec<(&'static str, Value<'_>)> {
        vec![
            (P_CONTROLLER, Value::Bool(self.enabled)),
            (P_DEADLINE_MS, Value::Double(self.deadline_ms)),
            (P_RHO_MIN, Value::Double(self.rho_min)),
            (P_DEADLINE_PROBABILITY, Value::Double(self.deadline_probability)),
            (P_BATTERY_POLICY, Value::Str(&self.battery_policy)),
            (P_BATTERY_STEPS, Value::Str(&self.battery_steps)),
            (P_BATTERY_HYSTERESIS, Value::Double(self.battery_hysteresis)),
            (P_BATTERY_UNKNOWN_CAP, Value::Double(self.battery_unknown_cap)),
            (P_BATTERY_STALE_S, Value::Double(self.battery_stale_s)),
            (P_CONTROLLER_PROFILE, Value::Str(&self.profile_path)),
        ]
    }

    /// Applies one parameter; the whole resulting configuration is validated (e.g. `rho_min`
    /// above a battery cap is rejected). On error `self` is unchanged.
    pub fn set(&mut self, name: &str, value: &Value) -> Result<(), String> {
        let mut next = self.clone();
        match (name, value) {
            (P_CONTROLLER, Value::Bool(b)) => next.enabled = *b,
            (P_DEADLINE_MS, Value::Double(v)) => {
                check_deadline_s(*v / 1e3)
                    .map_err(|_| format!("deadline_ms must be a positive number of milliseconds, got {v}"))?;
                next.deadline_ms = *v;
            }
            (P_RHO_MIN, Value::Double(v)) => next.rho_min = *v,
            (P_DEADLINE_PROBABILITY, Value::Double(v)) => next.deadline_probability = *v,
            (P_BATTERY_POLICY, Value::Str(s)) => match *s {
                "off" | "steps" | "scale" => next.battery_policy = (*s).to_owned(),
                _ => return Err(format!("battery_policy must be `off`, `steps` or `scale`, got `{s}`")),
            },
            (P_BATTERY_STEPS, Value::Str(s)) => next.battery_steps = (*s).to_owned(),
            (P_BATTERY_HYSTERESIS, Value::Double(v)) => next.battery_hysteresis = *v,
            (P_BATTERY_UNKNOWN_CAP, Value::Double(v)) => next.battery_unknown_cap = *v,
            (P_BATTERY_STALE_S, Value::Double(v)) => next.battery_stale_s = *v,
            (P_CONTROLLER_PROFILE, Value::Str(s)) => {
                if !s.is_empty() {
                    DeviceProfile::load(Path::new(s)).map_err(|e| e.to_string())?;
                }
                next.profile_path = (*s).to_owned();
            }
            (n, v) if is_controller_param(n) => return Err(format!("parameter {n} has the wrong type ({v:?})")),
            (n, _) => return Err(format!("unknown parameter {n}")),
        }
        next.config()?;
        *self = next;
        Ok(())
    }

    /// Checks a value without applying it.
    pub fn validate(&self, name: &str, value: &Value) -> Result<(), String> {
        self.clone().set(name, value)
    }

    /// The controller configuration these parameters describe (validated).
    pub fn config(&self) -> Result<ControllerConfig, String> {
        let f = |v: f64| v as f32;
        let nan_safe = |name: &str, v: f64| {
            if v.is_finite() {
                Ok(v)
            } else {
                Err(format!("{name} must be a finite number, got {v}"))
            }
        };
        let steps = BatteryPolicy::parse_steps(&self.battery_steps).map_err(|e| e.to_string())?;
        let cfg = ControllerConfig {
            rho_min: f(self.rho_min),
            law: LatencyLaw::Kalman(KalmanParams {
                deadline_probability: f(nan_safe(P_DEADLINE_PROBABILITY, self.deadline_probability)?),
                ..Default::default()
            }),
            battery: BatteryPolicy {
                enabled: self.battery_policy != "off",
                steps,
                hysteresis: f(self.battery_hysteresis),
                stale_s: f(self.battery_stale_s),
                unknown_cap: f(self.battery_unknown_cap),
            },
            ..Default::default()
        };
        cfg.validate().map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    pub fn deadline_s(&self) -> f64 {
        self.deadline_ms / 1e3
    }

    /// The profile named by `controller_profile` (`None` when empty), with a warning when it
    /// was measured for another model (it still works: feedback corrects the mismatch).
    pub fn load_profile(&self, model_bytes: &[u8]) -> Result<Option<(LatencyProfile, Option<String>)>, String> {
        if self.profile_path.is_empty() {
            return Ok(None);
        }
        let p = DeviceProfile::load(Path::new(&self.profile_path)).map_err(|e| e.to_string())?;
        let warn = (!p.is_for_model(model_bytes)).then(|| {
            format!(
                "controller_profile {} was measured for another model (sha256 {}…); feedback will correct the mismatch",
                self.profile_path,
                &p.model.sha256[..12.min(p.model.sha256.len())]
            )
        });
        Ok(Some((p.latency_profile().map_err(|e| e.to_string())?, warn)))
    }

    /// A controller for these parameters and `profile`.
    pub fn build(&self, profile: LatencyProfile) -> Result<Controller, String> {
        Controller::new(self.config()?, profile, self.deadline_s()).map_err(|e| e.to_string())
    }

    /// Pushes changed parameters into a running controller (state kept).
    pub fn apply(&self, controller: &mut Controller) -> Result<(), String> {
        controller.set_config(self.config()?).map_err(|e| e.to_string())?;
        controller.set_deadline_s(self.deadline_s()).map_err(|e| e.to_string())
    }
}

/// A short start-up measurement when no profile file is given: about 10 frames per mode
/// (≈ 2–3 s at 12 ms a frame). The modes are ρ = 1, 0.9, … (step 0.1) down to `rho_min`, and
/// `rho_min` itself when it is not on that grid (e.g. 0.25), so that the controller's floor is
/// measured rather than taken as the next profiled ρ above it.
pub fn quick_profile_options(model: &Path, rho_min: f32) -> MeasureOptions {
    let mut opts = MeasureOptions {
        warmup: 2,
        frames: 5,
        rounds: 2,
        images: 4,
        native: false,
        ..MeasureOptions::new(model, rho_min)
    };
    if rho_min.is_finite() && rho_min > 0.0 && rho_min <= 1.0 && !opts.rhos.iter().any(|r| (r - rho_min).abs() < 1e-6) {
        opts.rhos.push(rho_min);
    }
    opts
}

/// A `sensor_msgs/BatteryState` as the controller reads it; `age_s` = now − its arrival.
pub fn battery_reading(percentage: f32, power_supply_status: u8, age_s: f32) -> BatteryReading {
    BatteryReading { percentage, status: PowerSupplyStatus::from_ros(power_supply_status), age_s }
}

/// `diagnostic_msgs/DiagnosticStatus.level`: WARN (1) when the deadline is unattainable at ρ_min
/// or the battery reading went stale, else OK (0).
pub fn diagnostic_level(d: &Decision) -> u8 {
    if d.reason == Reason::Floor || d.battery == BatteryKnowledge::Stale {
        1
    } else {
        0
    }
}

/// One line for `DiagnosticStatus.message`, e.g. `rho 0.44 (deadline missed: cut)`.
pub fn diagnostic_message(d: &Decision) -> String {
    format!("rho {:.2} ({})", d.rho, d.reason.as_str())
}

/// The controller's state as `/diagnostics` key/value pairs, from `controller.snapshot()`
/// (allocates: call it at the diagnostics rate, not per frame).
pub fn diagnostics(s: &Snapshot) -> Vec<(&'static str, String)> {
    let d = &s.decision;
    let n = s.counts;
    let b = s.battery;
    let opt = |v: f32, prec: usize| if v.is_finite() { format!("{v:.prec$}") } else { "n/a".into() };
    vec![
        ("controller rho", format!("{:.4}", d.rho)),
        ("controller reason", d.reason.as_str().into()),
        ("controller rho allowed by latency", format!("{:.4}", d.latency_rho)),
        ("controller slowdown xi", opt(d.xi, 4)),
        ("controller slowdown sigma", opt(d.xi_sigma, 4)),
        ("controller margin", format!("{:+.1} %", d.margin * 100.0)),
        ("controller deadline probability", opt(d.deadline_probability, 4)),
        ("controller predicted ms", format!("{:.2}", d.predicted_s * 1e3)),
        ("controller deadline ms", format!("{:.2}", s.deadline_s * 1e3)),
        ("controller frames", n.frames.to_string()),
        ("controller late frames", n.late.to_string()),
        ("controller floor frames", n.floor.to_string()),
        ("controller invalid latencies", n.invalid_observations.to_string()),
        ("battery cap", format!("{:.2}", d.battery_cap)),
        ("battery state", d.battery.as_str().into()),
        (
            "battery messages fraction/percent/NaN/invalid",
            format!("{}/{}/{}/{}", b.fraction, b.percent, b.nan, b.invalid),
        ),
        ("battery frames on fallback cap", b.unknown_frames.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use pag_runtime::controller::Frame;

    #[test]
    fn defaults_validate_and_declare_every_parameter() {
        let p = ControllerParams::default();
        assert!(p.config().is_ok());
        let names: Vec<_> = p.declared().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, CONTROLLER_PARAMS);
    }

    #[test]
    fn rejects_bad_values_and_keeps_the_old_one() {
        let mut p = ControllerParams::default();
        let cases: [(&str, Value, &str); 12] = [
            (P_DEADLINE_MS, Value::Double(0.0), "deadline_ms must be a positive number"),
            (P_DEADLINE_MS, Value::Double(f64::NAN), "deadline_ms"),
            (P_RHO_MIN, Value::Double(0.0), "rho_min must be in (0, 1], got 0"),
            (P_RHO_MIN, Value::Double(f64::NAN), "rho_min"),
            (P_RHO_MIN, Value::Double(0.4), "below rho_min (0.4)"),
            (P_DEADLINE_PROBABILITY, Value::Double(0.2), "deadline_probability must be in [0.5, 0.9999]"),
            (P_BATTERY_POLICY, Value::Str("max"), "battery_policy must be `off`, `steps` or `scale`"),
            (P_BATTERY_STEPS, Value::Str("0.3:0.5, 0.5:0.75"), "thresholds must decrease"),
            (P_BATTERY_STEPS, Value::Str("half"), "is not `below:cap`"),
            (P_BATTERY_HYSTERESIS, Value::Double(0.5), "battery hysteresis must be in [0, 0.2]"),
            (P_BATTERY_STALE_S, Value::Double(-1.0), "battery_stale_s must be a positive number of seconds"),
            (P_CONTROLLER_PROFILE, Value::Str("/nonexistent/profile.json"), "cannot read or write"),
        ];
        for (name, v, want) in cases {
            let e = p.set(name, &v).unwrap_err();
            assert!(e.contains(want), "{name}: {e}");
            assert_eq!(p, ControllerParams::default(), "{name}: unchanged after an error");
        }
        assert!(p.set(P_RHO_MIN, &Value::Bool(true)).unwrap_err().contains("wrong type"));
        assert!(p.set("fast", &Value::Bool(true)).unwrap_err().contains("unknown parameter fast"));
        // Lowering the caps first makes the higher floor valid.
        p.set(P_BATTERY_STEPS, &Value::Str("0.5:0.75, 0.3:0.5")).unwrap();
        p.set(P_RHO_MIN, &Value::Double(0.4)).unwrap();
        p.set(P_BATTERY_POLICY, &Value::Str("off")).unwrap();
        assert!(!p.config().unwrap().battery.enabled);
    }

    #[test]
    fn quick_profiles_measure_rho_min_itself() {
        let rhos = |r: f32| quick_profile_options(Path::new("m.onnx"), r).rhos;
        assert_eq!(rhos(0.25), [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25]);
        assert_eq!(rhos(0.3), [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]);
        assert_eq!(rhos(1.0), [1.0]);
        assert!(!quick_profile_options(Path::new("m.onnx"), 0.25).native);
    }

    #[test]
    fn diagnostics_name_the_state() {
        let profile = LatencyProfile::from_fn(&[0.25, 0.5, 1.0], 0.012, |r| 0.4 + 0.6 * r).unwrap();
        let p = ControllerParams { deadline_ms: 14.4, ..Default::default() };
        let mut c = p.build(profile).unwrap();
        let b = Some(battery_reading(55.0, 2, 0.1));
        let d = c.step(0.0, None, b);
        // The same message 0.05 s later: counted once.
        let d = c.step(0.05, Some(Frame { latency_s: 0.1, rho: d.rho }), Some(battery_reading(55.0, 2, 0.15)));
        assert_eq!(d.reason, Reason::Floor);
        assert_eq!(diagnostic_level(&d), 1);
        assert!(diagnostic_message(&d).starts_with("rho 0.25 (floor"));
        let kv = diagnostics(&c.snapshot());
        let get = |k: &str| kv.iter().find(|x| x.0 == k).map(|x| x.1.clone()).unwrap();
        assert_eq!(get("controller late frames"), "1");
        assert_eq!(get("battery messages fraction/percent/NaN/invalid"), "0/1/0/0");
        assert_eq!(get("battery cap"), "1.00");
        assert!(get("controller margin").starts_with('-'));
        let mut p2 = p.clone();
        p2.set(P_DEADLINE_MS, &Value::Double(50.0)).unwrap();
        p2.apply(&mut c).unwrap();
        assert_eq!(c.deadline_s(), 0.05);
    }
}
