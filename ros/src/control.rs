//! The ρ controller inside the node, without DDS: which mode each frame runs in (the
//! controller's decision, or the fixed `mode`/`rho` under the battery cap), the device profile
//! the controller plans with (a `controller_profile` file, or a quick measurement when none is
//! given, as `calibration/README.md` specifies), and the state the diagnostics show.
//!
//! One battery policy: the controller's (`battery_policy` = `steps`, `battery_steps`, hysteresis,
//! staleness, the cap for an unknown charge, charging lifts the cap). With the controller on it
//! caps the controller's ρ; with it off it caps the fixed mode ([`capped_mode`]). So the
//! controller always steps, once per frame; while it is off (or has no profile yet) it observes
//! no latencies and only its battery cap is used.
//!
//! Per frame ([`NodeController::decide`], [`NodeController::mode`], [`NodeController::observe`],
//! [`NodeController::snapshot`]) nothing is allocated (`tests::the_per_frame_path_allocates_nothing`).
use std::path::Path;
use std::time::Instant;

use pag_calibration::ros_glue::{battery_reading, quick_profile_options, ControllerParams};
use pag_calibration::{measure, Progress};
use pag_runtime::controller::{BatteryReading, Controller, Decision, Frame, LatencyProfile, ProfilePoint, Snapshot};
use pag_runtime::ComputeMode;
use tracing::{info, warn};

use crate::config::capped_mode;

/// The latest `sensor_msgs/BatteryState` as the controller needs it, with its arrival time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BatteryMessage {
    pub percentage: f32,
    pub power_supply_status: u8,
    pub received: Instant,
}

impl BatteryMessage {
    /// The controller's reading of this message at `now` (its age is `now` − arrival).
    pub fn reading(&self, now: Instant) -> BatteryReading {
        let age = now.saturating_duration_since(self.received).as_secs_f32();
        battery_reading(self.percentage, self.power_supply_status, age)
    }
}

/// Where the controller stands, for the diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// `controller` = false: the fixed mode (under the battery cap).
    #[default]
    Off,
    /// On, its profile being loaded or measured (frames wait).
    Profiling,
    /// On: it picks ρ each frame.
    Running,
    /// On, but no profile could be had (the error is reported): the fixed mode runs.
    Failed,
}

impl Phase {
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Off => "off",
            Phase::Profiling => "profiling",
            Phase::Running => "running",
            Phase::Failed => "failed",
        }
    }
}

/// What a profile was made for: the model and the `controller_profile` path (empty = measured).
#[derive(Debug, Clone, PartialEq)]
struct ProfileKey {
    model_path: String,
    profile_path: String,
}

#[derive(Debug, Clone, PartialEq)]
enum ProfileState {
    /// None yet: the controller holds a placeholder (only its battery side is used).
    None,
    Ready {
        key: ProfileKey,
        lowest_rho: f32,
        description: String,
    },
    /// Not retried until the key or `rho_min` changes.
    Failed {
        key: ProfileKey,
        rho_min: f64,
        error: String,
    },
}

/// The node's controller: a `pag_runtime` [`Controller`] plus what the node needs around it.
#[derive(Debug, Clone)]
pub struct NodeController {
    controller: Controller,
    params: ControllerParams,
    model_path: String,
    profile: ProfileState,
    /// The controller picks ρ (on, with a profile for the current model).
    running: bool,
    /// The last frame the controller chose ρ for, not yet observed.
    pending: Option<Frame>,
}

/// Stands in until a real profile exists; never observed against (the controller is not running).
fn placeholder_profile() -> LatencyProfile {
    LatencyProfile::new(&[ProfilePoint { rho: 1.0, seconds: 1e-3 }]).expect("a valid one-point profile")
}

impl NodeController {
    /// A controller for `params` running `model_path`, without a profile yet.
    pub fn new(params: &ControllerParams, model_path: &str) -> Result<NodeController, String> {
        Ok(NodeController {
            controller: params.build(placeholder_profile())?,
            params: params.clone(),
            model_path: model_path.to_owned(),
            profile: ProfileState::None,
            running: false,
            pending: None,
        })
    }

    fn key(&self) -> ProfileKey {
        ProfileKey { model_path: self.model_path.clone(), profile_path: self.params.profile_path.clone() }
    }

    fn key_is_current(&self, key: &ProfileKey) -> bool {
        key.model_path == self.model_path && key.profile_path == self.params.profile_path
    }

    /// New parameters or model (the controller's state is kept). Allocates only on a change.
    pub fn update(&mut self, params: &ControllerParams, model_path: &str) -> Result<(), String> {
        if *params != self.params {
            params.apply(&mut self.controller)?;
            self.params = params.clone();
        }
        if model_path != self.model_path {
            self.model_path = model_path.to_owned();
        }
        self.running =
            self.params.enabled && !self.profile_needed() && matches!(self.profile, ProfileState::Ready { .. });
        Ok(())
    }

    /// The controller is on and has no usable profile for the current model and parameters:
    /// none yet, another model's or another file's, or a quick one that stops above a lowered
    /// `rho_min`. A failed attempt is not repeated until the model, the file or `rho_min`
    /// changes.
    pub fn profile_needed(&self) -> bool {
        if !self.params.enabled {
            return false;
        }
        match &self.profile {
            ProfileState::None => true,
            ProfileState::Ready { key, lowest_rho, .. } => {
                !self.key_is_current(key)
                    || (self.params.profile_path.is_empty() && (self.params.rho_min as f32) < lowest_rho - 1e-6)
            }
            ProfileState::Failed { key, rho_min, .. } => !self.key_is_current(key) || *rho_min != self.params.rho_min,
        }
    }

    /// Installs the profile (or the reason there is none) for the current model and parameters.
    pub fn set_profile(&mut self, profile: Result<LatencyProfile, String>) {
        let key = self.key();
        self.pending = None;
        self.profile = match profile {
            Ok(p) => {
                let description = describe(&p, &key.profile_path);
                let lowest_rho = p.rho_range().0;
                self.controller.set_profile(p);
                ProfileState::Ready { key, lowest_rho, description }
            }
            Err(error) => ProfileState::Failed { key, rho_min: self.params.rho_min, error },
        };
        self.running = self.params.enabled && matches!(self.profile, ProfileState::Ready { .. });
    }

    pub fn phase(&self) -> Phase {
        if !self.params.enabled {
            Phase::Off
        } else if self.running {
            Phase::Running
        } else if self.profile_needed() {
            Phase::Profiling
        } else {
            Phase::Failed
        }
    }

    /// The profile in use (`None` before one is ready).
    pub fn profile_description(&self) -> Option<&str> {
        match &self.profile {
            ProfileState::Ready { description, .. } => Some(description),
            _ => None,
        }
    }

    /// Why the controller is on but has no profile.
    pub fn error(&self) -> Option<&str> {
        match &self.profile {
            ProfileState::Failed { error, .. } if self.phase() == Phase::Failed => Some(error),
            _ => None,
        }
    }

    /// The decision for the frame about to run, at `now_s` seconds since the node started, with
    /// the latest battery reading: the controller observes the previous frame's latency (when
    /// it chose that frame's ρ) and updates its battery cap. No allocation.
    pub fn decide(&mut self, now_s: f64, battery: Option<BatteryReading>) -> Decision {
        let frame = if self.running { self.pending.take() } else { None };
        self.pending = None;
        self.controller.step(now_s, frame, battery)
    }

    /// The mode for the frame `d` was decided for: the controller's ρ when it runs, else the
    /// fixed mode under `d`'s battery cap (1 when the battery policy is off).
    pub fn mode(&self, fixed: ComputeMode, d: &Decision) -> ComputeMode {
        if self.running {
            d.mode()
        } else {
            capped_mode(fixed, d.battery_cap)
        }
    }

    /// The frame just run in `mode` took `latency_s` (the whole `Session::run`); observed at the
    /// next decision if the controller chose its ρ.
    pub fn observe(&mut self, latency_s: f64, mode: ComputeMode) {
        self.pending = match (self.running, mode) {
            (true, ComputeMode::Budget(r)) => Some(Frame { latency_s: latency_s as f32, rho: r.get() }),
            _ => None,
        };
    }

    pub fn snapshot(&self) -> Snapshot {
        self.controller.snapshot()
    }

    pub fn controller(&self) -> &Controller {
        &self.controller
    }
}

fn describe(p: &LatencyProfile, path: &str) -> String {
    let (lo, hi) = p.rho_range();
    let source = if path.is_empty() { "measured at start-up".to_owned() } else { path.to_owned() };
    format!(
        "{source}: {} points, rho {lo}–{hi}, {:.2}–{:.2} ms",
        p.points().len(),
        p.seconds_at(lo) * 1e3,
        p.seconds_at(hi) * 1e3
    )
}

/// The profile for `params` and the model at `model_path`: the `controller_profile` file (a
/// warning is logged when it was measured for another model), or, when none is given, a quick
/// measurement of this model on this machine with the node's `threads` (a few seconds; progress
/// in the log every quarter).
pub fn prepare_profile(
    params: &ControllerParams,
    model_path: &str,
    threads: Option<usize>,
) -> Result<LatencyProfile, String> {
    let bytes = std::fs::read(model_path).map_err(|e| format!("cannot read model {model_path}: {e}"))?;
    if let Some((profile, warning)) = params.load_profile(&bytes)? {
        if let Some(w) = warning {
            warn!("controller: {w}");
        }
        info!("controller: profile {}", describe(&profile, &params.profile_path));
        return Ok(profile);
    }
    let opts = pag_calibration::MeasureOptions {
        threads,
        ..quick_profile_options(Path::new(model_path), params.rho_min as f32)
    };
    let modes = opts.rhos.len();
    let per_mode = opts.rounds * (opts.warmup + opts.frames);
    info!(
        "controller: no controller_profile given: measuring a quick profile of {model_path} ({modes} modes from rho 1 \
         down to {}, {per_mode} frames each)…",
        params.rho_min
    );
    let start = Instant::now();
    let mut quarter = 0;
    let device = measure(&opts, &mut |p| {
        if let Progress::Frames { done, total, mode } = p {
            let q = 4 * done / total.max(1);
            if q > quarter {
                quarter = q;
                info!("controller: profiling {}% ({done}/{total} timed frames, {mode})", 25 * q);
            }
        }
    })
    .map_err(|e| format!("cannot measure a quick profile of {model_path}: {e}"))?;
    let profile = device.latency_profile().map_err(|e| e.to_string())?;
    info!(
        "controller: profiled in {:.1} s: {}",
        start.elapsed().as_secs_f64(),
        describe(&profile, &params.profile_path)
    );
    Ok(profile)
}

/// Seconds since `start`, for [`NodeController::decide`].
pub fn seconds_since(start: Instant, now: Instant) -> f64 {
    now.saturating_duration_since(start).as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pag_calibration::ros_glue::{Value, P_BATTERY_POLICY, P_CONTROLLER, P_DEADLINE_MS};
    use pag_runtime::controller::{BatteryKnowledge, Reason};
    use pag_runtime::Rho;
    use std::time::Duration;

    fn profile() -> LatencyProfile {
        LatencyProfile::from_fn(&[0.25, 0.5, 0.75, 1.0], 0.012, |r| 0.4 + 0.6 * r).unwrap()
    }

    fn params(enabled: bool, deadline_ms: f64) -> ControllerParams {
        let mut p = ControllerParams { battery_policy: "off".into(), ..Default::default() };
        p.set(P_CONTROLLER, &Value::Bool(enabled)).unwrap();
        p.set(P_DEADLINE_MS, &Value::Double(deadline_ms)).unwrap();
        p
    }

    /// Runs `n` frames taking `slowdown` × the profile's latency; returns the last decision.
    fn run(c: &mut NodeController, fixed: ComputeMode, t0: f64, n: usize, slowdown: f32) -> (Decision, ComputeMode) {
        let mut last = None;
        for i in 0..n {
            let d = c.decide(t0 + i as f64 * 0.05, None);
            let mode = c.mode(fixed, &d);
            let latency = slowdown * profile().seconds_at(mode.rho_input().max(0.25));
            c.observe(latency as f64, mode);
            last = Some((d, mode));
        }
        last.unwrap()
    }

    #[test]
    fn off_runs_the_fixed_mode_and_on_needs_a_profile_first() {
        let mut c = NodeController::new(&params(false, 14.4), "m.onnx").unwrap();
        assert_eq!((c.phase(), c.profile_needed()), (Phase::Off, false));
        let (_, mode) = run(&mut c, ComputeMode::Dense, 0.0, 5, 3.0);
        assert_eq!(mode, ComputeMode::Dense, "off: the fixed mode, however slow");
        assert_eq!(c.snapshot().counts.late, 0, "off: no latency observed");

        c.update(&params(true, 14.4), "m.onnx").unwrap();
        assert_eq!((c.phase(), c.profile_needed()), (Phase::Profiling, true));
        let (_, mode) = run(&mut c, ComputeMode::Dense, 1.0, 2, 1.0);
        assert_eq!(mode, ComputeMode::Dense, "no profile yet: still the fixed mode");
        c.set_profile(Ok(profile()));
        assert_eq!((c.phase(), c.profile_needed()), (Phase::Running, false));
        assert!(c.profile_description().unwrap().starts_with("measured at start-up: 4 points"));
        // As profiled: ρ rises to 1. Twice as slow: cut below 1 at once, and the reason says so.
        let (d, mode) = run(&mut c, ComputeMode::Dense, 2.0, 30, 1.0);
        assert_eq!((d.rho, mode), (1.0, ComputeMode::Budget(Rho::ONE)));
        let (d, _) = run(&mut c, ComputeMode::Dense, 4.0, 2, 2.0);
        assert!(d.rho < 0.75, "{d:?}");
        // Far too slow: pinned at rho_min with the reason floor.
        let (d, mode) = run(&mut c, ComputeMode::Dense, 5.0, 5, 10.0);
        assert_eq!((d.rho, d.reason), (0.25, Reason::Floor));
        assert_eq!(mode, ComputeMode::budget(0.25).unwrap());
        assert!(c.snapshot().counts.late >= 4);

        // Another model: a new profile is needed; meanwhile the fixed mode runs.
        c.update(&params(true, 14.4), "other.onnx").unwrap();
        assert_eq!(c.phase(), Phase::Profiling);
        assert_eq!(c.mode(ComputeMode::Native, c.controller().last()), ComputeMode::Native);
        c.set_profile(Err("cannot read model other.onnx".into()));
        assert_eq!((c.phase(), c.profile_needed()), (Phase::Failed, false), "not retried every frame");
        assert_eq!(c.error(), Some("cannot read model other.onnx"));
        c.update(&params(false, 14.4), "other.onnx").unwrap();
        assert_eq!((c.phase(), c.error()), (Phase::Off, None));
    }

    #[test]
    fn a_lowered_rho_min_remeasures_a_quick_profile_only() {
        let mut p = params(true, 14.4);
        p.rho_min = 0.5;
        let mut c = NodeController::new(&p, "m.onnx").unwrap();
        c.set_profile(Ok(LatencyProfile::from_fn(&[0.5, 1.0], 0.012, |r| r).unwrap()));
        assert!(!c.profile_needed());
        p.rho_min = 0.6;
        c.update(&p, "m.onnx").unwrap();
        assert!(!c.profile_needed(), "a higher floor is inside the profile");
        p.rho_min = 0.25;
        c.update(&p, "m.onnx").unwrap();
        assert!(c.profile_needed(), "measured down to 0.5 only");
    }

    #[test]
    fn one_battery_policy_caps_the_fixed_mode_and_the_controller() {
        let mut p = params(false, 100.0);
        p.set(P_BATTERY_POLICY, &Value::Str("steps")).unwrap();
        let mut c = NodeController::new(&p, "m.onnx").unwrap();
        let t = Instant::now();
        let msg = |pct: f32, status: u8| BatteryMessage { percentage: pct, power_supply_status: status, received: t };
        // Never read: the conservative cap.
        let d = c.decide(0.0, None);
        assert_eq!((d.battery, d.battery_cap), (BatteryKnowledge::NeverRead, 0.5));
        assert_eq!(c.mode(ComputeMode::Dense, &d), ComputeMode::budget(0.5).unwrap());
        // 20 % (discharging): below 0.3 → 0.5; 10 %: below 0.15 → 0.25; a percent publisher too.
        let d = c.decide(0.1, Some(msg(0.1, 2).reading(t)));
        assert_eq!(c.mode(ComputeMode::Dense, &d), ComputeMode::budget(0.25).unwrap());
        assert_eq!(c.mode(ComputeMode::Native, &d), ComputeMode::Native, "native has no ρ to cap");
        // Charging lifts the cap.
        let d = c.decide(
            0.2,
            Some(
                BatteryMessage { received: t + Duration::from_millis(100), ..msg(0.1, 1) }
                    .reading(t + Duration::from_millis(100)),
            ),
        );
        assert_eq!((d.battery, c.mode(ComputeMode::Dense, &d)), (BatteryKnowledge::OnPower, ComputeMode::Dense));
        // Stale (no message for more than battery_stale_s): the fallback cap, reported.
        let d = c.decide(10.0, Some(msg(0.1, 1).reading(t + Duration::from_secs(10))));
        assert_eq!(d.battery, BatteryKnowledge::Stale);
        assert!(d.battery_cap <= 0.5);
        // The same policy caps the controller's ρ.
        p.set(P_CONTROLLER, &Value::Bool(true)).unwrap();
        c.update(&p, "m.onnx").unwrap();
        c.set_profile(Ok(profile()));
        let d = c.decide(10.1, Some(msg(0.1, 2).reading(t + Duration::from_secs(10))));
        assert_eq!(d.reason, Reason::BatteryUnknown);
        assert!(c.mode(ComputeMode::Dense, &d).rho_input() <= 0.5);
    }

    mod alloc {
        use std::alloc::{GlobalAlloc, Layout, System};
        use std::cell::Cell;

        thread_local! {
            pub static COUNT: Cell<u64> = const { Cell::new(0) };
        }

        /// Counts this thread's allocations (other test threads do not disturb the count).
        pub struct Counting;

        unsafe impl GlobalAlloc for Counting {
            unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
                unsafe { System.alloc(layout) }
            }
            unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
                unsafe { System.dealloc(ptr, layout) }
            }
            unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
                unsafe { System.realloc(ptr, layout, new_size) }
            }
        }

        #[global_allocator]
        static A: Counting = Counting;
    }

    #[test]
    fn the_per_frame_path_allocates_nothing() {
        let mut p = params(true, 14.4);
        p.set(P_BATTERY_POLICY, &Value::Str("steps")).unwrap();
        let mut c = NodeController::new(&p, "m.onnx").unwrap();
        c.set_profile(Ok(profile()));
        let stats = crate::stats::Stats::default();
        let start = Instant::now();
        let battery = BatteryMessage { percentage: 0.4, power_supply_status: 2, received: start };
        let before = alloc::COUNT.with(|n| n.get());
        std::hint::black_box(vec![0u8; 16]);
        assert_eq!(alloc::COUNT.with(|n| n.get()), before + 1, "the counter sees this thread's allocations");
        let before = before + 1;
        for i in 0..20_000 {
            let now = start + Duration::from_micros(i * 50);
            let d = c.decide(seconds_since(start, now), Some(battery.reading(now)));
            let mode = c.mode(ComputeMode::Dense, &d);
            let slow = if (i / 1000) % 2 == 0 { 1.0 } else { 3.0 };
            c.observe(slow * profile().seconds_at(mode.rho_input()) as f64, mode);
            stats.set_controller_snapshot(c.snapshot());
            stats.set_battery_message(battery);
            std::hint::black_box(stats.battery_message());
        }
        let after = alloc::COUNT.with(|n| n.get());
        assert_eq!(after - before, 0, "allocations in 20 000 frames");
        assert!(c.snapshot().counts.late > 0, "the slow phases were seen");
    }
}
