//! Counters and timing windows shared by the node's threads, and their rendering as a
//! `diagnostic_msgs/DiagnosticStatus`.
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use pag_calibration::ros_glue;
use pag_runtime::controller::{BatteryKnowledge, Snapshot};

use crate::config::{capped_mode, Config};
use crate::control::{BatteryMessage, Phase};
use crate::image::Reject;
use crate::msg::{DiagnosticStatus, KeyValue};

/// How many recent frames the latency percentiles cover.
pub const WINDOW: usize = 512;

/// Recent durations in milliseconds.
#[derive(Debug, Default, Clone)]
pub struct Window {
    values: VecDeque<f64>,
}

impl Window {
    pub fn push(&mut self, v: f64) {
        if self.values.len() == WINDOW {
            self.values.pop_front();
        }
        self.values.push_back(v);
    }

    /// Nearest-rank percentile (`q` in 0–100); NaN when empty.
    pub fn percentile(&self, q: f64) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        let mut v: Vec<f64> = self.values.iter().copied().collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let rank = ((q / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// What the last processed frame did.
#[derive(Debug, Clone, Default)]
pub struct LastFrame {
    pub mode: String,
    pub rho: f32,
    pub inference_ms: f64,
    pub gated_executed_macs: u64,
    pub gated_dense_macs: u64,
    pub input_size: (u32, u32),
    pub output_size: (u32, u32),
}

/// What the diagnostics show of the controller, kept by the inference thread.
#[derive(Debug, Clone, Default)]
pub struct ControllerView {
    pub phase: Phase,
    /// The profile in use (`None` before one is ready).
    pub profile: Option<String>,
    /// Why there is no profile (phase [`Phase::Failed`]).
    pub error: Option<String>,
    /// The controller's state at the last frame (`None` before the first); also with the
    /// controller off (its battery cap then applies to the fixed mode).
    pub snapshot: Option<Snapshot>,
}

/// Counters shared between the DDS side, the inference thread and the diagnostics publisher.
#[derive(Debug)]
pub struct Stats {
    pub started: Instant,
    pub received: AtomicU64,
    pub processed: AtomicU64,
    rejected: [AtomicU64; 7],
    pub inference_errors: AtomicU64,
    pub deadline_misses: AtomicU64,
    pub publish_failures: AtomicU64,
    pub camera_info_received: AtomicU64,
    pub battery_received: AtomicU64,
    pub battery_percent_scaled: AtomicU64,
    pub battery_unknown: AtomicU64,
    pub battery_invalid: AtomicU64,
    pub battery_undecodable: AtomicU64,
    /// Battery fraction 0–1 (`None`: unknown), from the node's own reading of the latest
    /// message (`battery_fraction`).
    pub battery: Mutex<Option<f32>>,
    /// The latest BatteryState message (for the controller's battery cap).
    pub battery_message: Mutex<Option<BatteryMessage>>,
    pub controller: Mutex<ControllerView>,
    /// Receive → all outputs published (ms).
    pub latency: Mutex<Window>,
    /// `Session::run` alone (ms).
    pub inference: Mutex<Window>,
    pub last: Mutex<Option<LastFrame>>,
    pub last_error: Mutex<Option<String>>,
    pub last_processed_at: Mutex<Option<Instant>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            started: Instant::now(),
            received: AtomicU64::new(0),
            processed: AtomicU64::new(0),
            rejected: Default::default(),
            inference_errors: AtomicU64::new(0),
            deadline_misses: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            camera_info_received: AtomicU64::new(0),
            battery_received: AtomicU64::new(0),
            battery_percent_scaled: AtomicU64::new(0),
            battery_unknown: AtomicU64::new(0),
            battery_invalid: AtomicU64::new(0),
            battery_undecodable: AtomicU64::new(0),
            battery: Mutex::new(None),
            battery_message: Mutex::new(None),
            controller: Mutex::new(ControllerView::default()),
            latency: Mutex::new(Window::default()),
            inference: Mutex::new(Window::default()),
            last: Mutex::new(None),
            last_error: Mutex::new(None),
            last_processed_at: Mutex::new(None),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Stats {
    pub fn reject(&self, why: Reject) {
        self.rejected[why.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, why: Reject) -> u64 {
        get(&self.rejected[why.index()])
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().map(get).sum()
    }

    pub fn battery(&self) -> Option<f32> {
        *lock(&self.battery)
    }

    pub fn set_battery(&self, b: Option<f32>) {
        *lock(&self.battery) = b;
    }

    /// Keeps the latest battery message. No allocation.
    pub fn set_battery_message(&self, m: BatteryMessage) {
        *lock(&self.battery_message) = Some(m);
    }

    pub fn battery_message(&self) -> Option<BatteryMessage> {
        *lock(&self.battery_message)
    }

    /// The controller's state after a frame's decision. No allocation.
    pub fn set_controller_snapshot(&self, s: Snapshot) {
        lock(&self.controller).snapshot = Some(s);
    }

    /// The controller's phase, profile and error (allocates: on changes only).
    pub fn set_controller_state(&self, phase: Phase, profile: Option<&str>, error: Option<&str>) {
        let mut v = lock(&self.controller);
        if v.phase != phase || v.profile.as_deref() != profile || v.error.as_deref() != error {
            v.phase = phase;
            v.profile = profile.map(str::to_owned);
            v.error = error.map(str::to_owned);
        }
    }

    pub fn controller_view(&self) -> ControllerView {
        lock(&self.controller).clone()
    }

    pub fn record_frame(&self, last: LastFrame, latency_ms: f64, deadline_ms: f64) {
        lock(&self.inference).push(last.inference_ms);
        lock(&self.latency).push(latency_ms);
        if latency_ms > deadline_ms {
            self.deadline_misses.fetch_add(1, Ordering::Relaxed);
        }
        *lock(&self.last) = Some(last);
        *lock(&self.last_processed_at) = Some(Instant::now());
        *lock(&self.last_error) = None;
        self.processed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_error(&self, error: String) {
        self.inference_errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.last_error) = Some(error);
    }
}

/// Counts seen by the previous diagnostics message, to report changes as warnings.
#[derive(Debug, Default, Clone, Copy)]
pub struct Previous {
    rejected: u64,
    deadline_misses: u64,
    battery_bad: u64,
}

/// Everything the diagnostics need besides [`Stats`].
pub struct DiagContext<'a> {
    pub config: &'a Config,
    /// The model's name (file name) and its whole-network dense MACs.
    pub model_name: &'a str,
    pub model_dense_macs: u64,
    pub dropped: u64,
    pub hardware_id: &'a str,
    /// Seconds without a processed frame after which the status is STALE.
    pub stale_after_s: f64,
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else {
        format!("{v:.3}")
    }
}

/// The node's status. Level: ERROR when the last frame failed; WARN when frames were rejected,
/// deadlines missed or battery readings refused since the previous status; STALE when no frame
/// was processed for `stale_after_s`; OK otherwise.
pub fn diagnostic_status(stats: &Stats, ctx: &DiagContext, prev: &mut Previous) -> DiagnosticStatus {
    let c = ctx.config;
    let mut values = Vec::new();
    let mut kv = |k: &str, v: String| values.push(KeyValue { key: k.into(), value: v });
    let last = lock(&stats.last).clone();
    let battery = stats.battery();
    let ctl = stats.controller_view();
    let decision = ctl.snapshot.map(|s| s.decision);
    let running = ctl.phase == Phase::Running;
    // The mode the node runs now: the controller's, or the fixed mode under the battery cap.
    let effective = match decision {
        Some(d) if running => d.mode(),
        Some(d) => capped_mode(c.fixed_mode(), d.battery_cap),
        None => c.fixed_mode(),
    };
    kv("model", ctx.model_name.into());
    kv("model_path", c.model_path.clone());
    kv("threads", c.resolved_threads().to_string());
    kv("compute_mode", c.mode.to_string());
    kv("rho", format!("{}", c.rho));
    kv("effective_mode", effective.to_string());
    kv("effective_rho", format!("{}", effective.rho_input()));
    kv("last_frame_mode", last.as_ref().map_or("none".into(), |l| l.mode.clone()));
    kv("output_resolution", format!("{:?}", c.output_resolution).to_lowercase());
    kv("controller", ctl.phase.as_str().into());
    kv("controller_profile", ctl.profile.clone().unwrap_or_else(|| "none".into()));
    if let Some(e) = &ctl.error {
        kv("controller_error", e.clone());
    }
    kv("battery_policy", c.controller.battery_policy.clone());
    kv("battery_steps", c.controller.battery_steps.clone());
    kv("battery_fraction", battery.map_or("unknown".into(), |b| format!("{b:.3}")));
    if let Some(snap) = &ctl.snapshot {
        // ros_glue's keys: the controller's only while it picks ρ; the battery's whenever the
        // battery policy is on (it caps the fixed mode too).
        for (k, v) in ros_glue::diagnostics(snap) {
            let controller_key = k.starts_with("controller ");
            if (controller_key && running) || (!controller_key && c.battery_enabled()) {
                kv(k, v);
            }
        }
    }
    kv("deadline_ms", format!("{}", c.deadline_ms()));
    let (lat, inf) = (lock(&stats.latency).clone(), lock(&stats.inference).clone());
    for (name, w) in [("latency", &lat), ("inference", &inf)] {
        for q in [50.0, 90.0, 99.0] {
            kv(&format!("{name}_p{}_ms", q as u32), ms(w.percentile(q)));
        }
        kv(&format!("{name}_max_ms"), ms(w.percentile(100.0)));
    }
    kv("latency_window_frames", lat.len().to_string());
    kv("last_inference_ms", last.as_ref().map_or("nan".into(), |l| ms(l.inference_ms)));
    let received = get(&stats.received);
    let processed = get(&stats.processed);
    let elapsed = stats.started.elapsed().as_secs_f64().max(1e-9);
    kv("frames_received", received.to_string());
    kv("frames_processed", processed.to_string());
    kv("processed_fps", format!("{:.2}", processed as f64 / elapsed));
    kv("frames_dropped", ctx.dropped.to_string());
    let deadline_misses = get(&stats.deadline_misses);
    kv("deadline_misses", deadline_misses.to_string());
    let rejected = stats.rejected_total();
    kv("frames_rejected", rejected.to_string());
    for r in Reject::ALL {
        kv(&format!("rejected_{}", r.key()), stats.rejected(r).to_string());
    }
    kv("inference_errors", get(&stats.inference_errors).to_string());
    kv("publish_failures", get(&stats.publish_failures).to_string());
    kv("camera_info_received", get(&stats.camera_info_received).to_string());
    kv("battery_received", get(&stats.battery_received).to_string());
    kv("battery_percent_scaled", get(&stats.battery_percent_scaled).to_string());
    kv("battery_unknown", get(&stats.battery_unknown).to_string());
    let battery_bad = get(&stats.battery_invalid) + get(&stats.battery_undecodable);
    kv("battery_invalid", get(&stats.battery_invalid).to_string());
    kv("battery_undecodable", get(&stats.battery_undecodable).to_string());
    kv("macs_gated_executed", last.as_ref().map_or("0".into(), |l| l.gated_executed_macs.to_string()));
    kv("macs_gated_dense", last.as_ref().map_or("0".into(), |l| l.gated_dense_macs.to_string()));
    let (exec_total, ratio) = match &last {
        Some(l) => {
            let total = ctx.model_dense_macs.saturating_sub(l.gated_dense_macs) + l.gated_executed_macs;
            (total, total as f64 / ctx.model_dense_macs.max(1) as f64)
        }
        None => (0, f64::NAN),
    };
    kv("macs_executed", exec_total.to_string());
    kv("macs_dense", ctx.model_dense_macs.to_string());
    kv("macs_executed_fraction", format!("{ratio:.4}"));
    if let Some(l) = &last {
        kv("input_size", format!("{}x{}", l.input_size.0, l.input_size.1));
        kv("output_size", format!("{}x{}", l.output_size.0, l.output_size.1));
    }

    let error = lock(&stats.last_error).clone();
    let stale = lock(&stats.last_processed_at).map_or(elapsed, |t| t.elapsed().as_secs_f64()) > ctx.stale_after_s;
    let mut warnings = Vec::new();
    if rejected > prev.rejected {
        warnings.push(format!("{} frames rejected", rejected - prev.rejected));
    }
    if deadline_misses > prev.deadline_misses {
        warnings.push(format!("{} deadline misses", deadline_misses - prev.deadline_misses));
    }
    if battery_bad > prev.battery_bad {
        warnings.push(format!("{} battery messages refused", battery_bad - prev.battery_bad));
    }
    *prev = Previous { rejected, deadline_misses, battery_bad };
    // The controller's level (ros_glue): WARN when the deadline is unattainable at rho_min or
    // the battery reading is stale (the latter also with the controller off).
    match decision {
        Some(d) if running && ros_glue::diagnostic_level(&d) > 0 => warnings.push(ros_glue::diagnostic_message(&d)),
        Some(d) if c.battery_enabled() && d.battery == BatteryKnowledge::Stale => {
            warnings.push(format!("battery reading stale: rho capped at {:.2}", d.battery_cap))
        }
        _ => {}
    }
    let (level, message) = if let Some(e) = error {
        (DiagnosticStatus::ERROR, format!("inference failed: {e}"))
    } else if let (Phase::Failed, Some(e)) = (ctl.phase, &ctl.error) {
        (DiagnosticStatus::ERROR, format!("controller has no profile, running the fixed mode: {e}"))
    } else if !warnings.is_empty() {
        (DiagnosticStatus::WARN, warnings.join("; "))
    } else if ctl.phase == Phase::Profiling {
        (DiagnosticStatus::OK, "controller: profiling the model (frames wait)".into())
    } else if stale {
        (DiagnosticStatus::STALE, "no frames processed recently".into())
    } else {
        match decision {
            Some(d) if running => {
                (DiagnosticStatus::OK, format!("{processed} frames processed; {}", ros_glue::diagnostic_message(&d)))
            }
            _ => (DiagnosticStatus::OK, format!("{processed} frames processed")),
        }
    };
    DiagnosticStatus { level, name: "pag: inference".into(), message, hardware_id: ctx.hardware_id.into(), values }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut w = Window::default();
        assert!(w.percentile(50.0).is_nan());
        for v in 1..=100 {
            w.push(v as f64);
        }
        assert_eq!(w.percentile(50.0), 50.0);
        assert_eq!(w.percentile(99.0), 99.0);
        assert_eq!(w.percentile(100.0), 100.0);
        for _ in 0..2 * WINDOW {
            w.push(7.0);
        }
        assert_eq!(w.len(), WINDOW);
        assert_eq!(w.percentile(100.0), 7.0);
    }

    #[test]
    fn rejections_show_up_and_warn_once() {
        let stats = Stats::default();
        let config = Config::new("m.onnx".into());
        let ctx = DiagContext {
            config: &config,
            model_name: "m",
            model_dense_macs: 1000,
            dropped: 3,
            hardware_id: "hw",
            stale_after_s: 1e9,
        };
        let mut prev = Previous::default();
        stats.reject(Reject::Step);
        stats.reject(Reject::Step);
        stats.reject(Reject::Encoding);
        stats.record_frame(
            LastFrame {
                mode: "dense".into(),
                inference_ms: 5.0,
                gated_executed_macs: 100,
                gated_dense_macs: 400,
                ..Default::default()
            },
            12.0,
            10.0,
        );
        let s = diagnostic_status(&stats, &ctx, &mut prev);
        assert_eq!(s.level, DiagnosticStatus::WARN, "{}", s.message);
        assert_eq!(s.get("rejected_step"), Some("2"));
        assert_eq!(s.get("frames_rejected"), Some("3"));
        assert_eq!(s.get("frames_dropped"), Some("3"));
        assert_eq!(s.get("deadline_misses"), Some("1"));
        assert_eq!(s.get("macs_executed"), Some("700"));
        assert_eq!(s.get("inference_p50_ms"), Some("5.000"));
        let s = diagnostic_status(&stats, &ctx, &mut prev);
        assert_eq!(s.level, DiagnosticStatus::OK, "{}", s.message);
    }

    #[test]
    fn the_controller_state_shows_with_its_level() {
        use crate::config::{P_BATTERY_POLICY, P_CONTROLLER};
        use crate::control::NodeController;
        use pag_runtime::controller::LatencyProfile;
        use pag_runtime::ComputeMode;
        use ros2_client::ParameterValue as V;

        let stats = Stats::default();
        let mut config = Config::new("m.onnx".into());
        config.set(P_CONTROLLER, &V::Boolean(true)).unwrap();
        let ctx = |c: &Config| {
            let s = DiagContext {
                config: c,
                model_name: "m",
                model_dense_macs: 1000,
                dropped: 0,
                hardware_id: "hw",
                stale_after_s: 1e9,
            };
            diagnostic_status(&stats, &s, &mut Previous::default())
        };
        let s = ctx(&config);
        assert_eq!((s.get("controller"), s.get("controller_profile")), (Some("off"), Some("none")));
        let mut ctl = NodeController::new(&config.controller, "m.onnx").unwrap();
        ctl.set_profile(Ok(LatencyProfile::from_fn(&[0.25, 0.5, 1.0], 0.012, |r| 0.4 + 0.6 * r).unwrap()));
        // Frames of a second against a 100 ms deadline: pinned at rho_min.
        for i in 0..3 {
            let d = ctl.decide(i as f64, None);
            ctl.observe(1.0, ctl.mode(ComputeMode::Dense, &d));
        }
        stats.set_controller_snapshot(ctl.snapshot());
        stats.set_controller_state(ctl.phase(), ctl.profile_description(), ctl.error());
        stats.record_frame(LastFrame { mode: "budget:0.25".into(), ..Default::default() }, 12.0, 100.0);
        let s = ctx(&config);
        assert_eq!(s.level, DiagnosticStatus::WARN, "{s:#?}");
        assert!(s.message.contains("rho 0.25 (floor: deadline unattainable at rho_min)"), "{}", s.message);
        assert_eq!(s.get("controller"), Some("running"));
        assert!(s.get("controller_profile").unwrap().starts_with("measured at start-up: 3 points"));
        assert_eq!(s.get("controller reason"), Some("floor: deadline unattainable at rho_min"));
        assert_eq!(s.get("effective_mode"), Some("budget:0.25"));
        assert_eq!(s.get("battery cap"), None, "battery keys only with the policy on");
        config.set(P_BATTERY_POLICY, &V::String("steps".into())).unwrap();
        let s = ctx(&config);
        assert_eq!(s.get("battery cap"), Some("1.00"), "from the last snapshot (policy was off then)");
        // Controller off: its keys go, the fixed mode shows.
        config.set(P_CONTROLLER, &V::Boolean(false)).unwrap();
        ctl.update(&config.controller, "m.onnx").unwrap();
        let d = ctl.decide(5.0, None);
        stats.set_controller_snapshot(ctl.snapshot());
        stats.set_controller_state(ctl.phase(), ctl.profile_description(), ctl.error());
        let s = ctx(&config);
        assert_eq!(s.get("controller reason"), None);
        assert_eq!((d.battery_cap, s.get("battery state")), (0.5, Some("never read")));
        assert_eq!(s.get("effective_mode"), Some("budget:0.5"), "dense under the unknown-charge cap");
        // On without a profile: ERROR, the fixed mode runs.
        stats.set_controller_state(crate::control::Phase::Failed, None, Some("cannot read model m.onnx"));
        let s = ctx(&config);
        assert_eq!(s.level, DiagnosticStatus::ERROR);
        assert_eq!(s.get("controller_error"), Some("cannot read model m.onnx"));
        assert!(s.message.contains("controller has no profile"), "{}", s.message);
    }
}
