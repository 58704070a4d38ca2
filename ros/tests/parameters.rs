//! Parameters over the ROS 2 parameter services, from a ros2-client peer: the node runs on its
//! synthetic camera; the test sets `mode`/`rho` at run time and observes the change in the
//! diagnostics (mode, executed MACs) and in the outputs (the ponder map); invalid values are
//! rejected with a reason and the old value stays. The controller's parameters likewise, and the
//! controller switched on at run time with a `controller_profile` file.
mod common;

use std::time::{Duration, Instant};

use common::peer::{num, write_profile, Peer};
use pag_ros::msg::{BatteryState, DiagnosticStatus};
use ros2_client::ParameterValue;

#[test]
fn parameters_change_at_run_time_and_invalid_values_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(2);
    let mut node = common::NodeProcess::spawn(
        domain,
        &["--synthetic", "--rate-hz", "8", "--width", "640", "--height", "480"],
        dir.path(),
    );
    let peer = Peer::new(domain);

    let s = peer.wait_status("dense frames", |s| num(s, "frames_processed") >= 2.0);
    assert_eq!(s.get("compute_mode"), Some("dense"));
    assert_eq!(s.get("last_frame_mode"), Some("dense"));
    // Dense still skips some MultiPool convs (their branch choice is not gated by ρ).
    let dense_fraction = num(&s, "macs_executed_fraction");
    assert!(dense_fraction > 0.5, "{s:#?}");
    let (dense_ponder, w, h) = peer.next_ponder();
    assert_eq!((w, h), (320, 240), "outputs at the model's resolution");
    assert_eq!(peer.get("rho"), ParameterValue::Double(0.5));

    assert_eq!(peer.set("rho", ParameterValue::Double(0.3)), (true, String::new()));
    assert_eq!(peer.set("mode", ParameterValue::String("budget".into())), (true, String::new()));
    let s = peer.wait_status("budget frames", |s| s.get("last_frame_mode") == Some("budget:0.3"));
    assert_eq!(s.get("compute_mode"), Some("budget"));
    assert_eq!(s.get("rho"), Some("0.3"));
    let s = peer.wait_status("budget MACs", |s| {
        s.get("last_frame_mode") == Some("budget:0.3") && num(s, "macs_executed_fraction") < dense_fraction - 0.1
    });
    println!("executed MAC fraction: dense {dense_fraction}, budget 0.3 {}", num(&s, "macs_executed_fraction"));
    let budget_ponder = peer.next_ponder().0;
    println!("ponder mean: dense {dense_ponder:.2}, budget 0.3 {budget_ponder:.2}");
    assert!(budget_ponder < 0.8 * dense_ponder, "ponder map did not thin out: {dense_ponder} → {budget_ponder}");

    for (name, value, expect) in [
        ("rho", ParameterValue::Double(1.5), "rho must be in (0, 1]"),
        ("rho", ParameterValue::Integer(1), "type"),
        ("mode", ParameterValue::String("fast".into()), "mode must be"),
        ("deadline_ms", ParameterValue::Double(-5.0), "deadline_ms"),
        ("model_path", ParameterValue::String("/nonexistent/model.onnx".into()), "cannot load model"),
    ] {
        let (ok, reason) = peer.set(name, value.clone());
        assert!(!ok, "{name} = {value:?} was accepted");
        assert!(reason.contains(expect), "{name} = {value:?}: reason {reason:?} lacks {expect:?}");
        println!("rejected {name} = {value:?}: {reason}");
    }
    assert_eq!(peer.get("rho"), ParameterValue::Double(0.3));
    assert_eq!(peer.get("mode"), ParameterValue::String("budget".into()));
    let s = peer.wait_status("status after rejections", |s| s.get("last_frame_mode") == Some("budget:0.3"));
    assert_eq!(s.get("rho"), Some("0.3"));

    // Output toggles: depth off stops it; the deadline parameter shows in the diagnostics.
    // A 1 µs deadline: every frame processed from now on misses it, whatever the machine's speed
    // (frames may already have missed the 100 ms default on a loaded machine).
    assert!(peer.set("deadline_ms", ParameterValue::Double(0.001)).0);
    let s = peer.wait_status("the new deadline", |s| s.get("deadline_ms") == Some("0.001"));
    let (misses, processed) = (num(&s, "deadline_misses"), num(&s, "frames_processed"));
    let s = peer.wait_status("deadline misses", |s| num(s, "frames_processed") > processed + 1.0);
    // One frame may have started before the change (a change applies from the next frame).
    assert!(num(&s, "deadline_misses") - misses >= num(&s, "frames_processed") - processed - 1.0, "{s:#?}");
    let s = peer.wait_status("a WARN for the misses", |s| s.level == DiagnosticStatus::WARN);
    assert_eq!(s.get("deadline_ms"), Some("0.001"));

    // One battery policy, the controller's steps (`scale`, the older name, is read as `steps`),
    // caps the fixed mode too: 10 % is below 0.15 → ρ ≤ 0.25.
    assert!(peer.set("battery_policy", ParameterValue::String("scale".into())).0);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = peer.battery.publish(BatteryState { percentage: 0.1, present: true, ..Default::default() });
        let s = peer.wait_status("a status", |_| true);
        if s.get("last_frame_mode") == Some("budget:0.25") {
            assert_eq!(s.get("battery_fraction"), Some("0.100"));
            assert_eq!(s.get("effective_rho"), Some("0.25"));
            assert_eq!(s.get("battery cap"), Some("0.25"));
            assert_eq!(s.get("battery state"), Some("fresh"));
            assert_eq!(s.get("controller"), Some("off"));
            assert_eq!(s.get("controller reason"), None, "the controller's keys only while it runs");
            break;
        }
        assert!(Instant::now() < end, "battery cap not applied: {s:#?}");
    }
    // The whole controller configuration is validated: a floor above the lowest battery cap is
    // refused while the policy is on.
    let (ok, reason) = peer.set("rho_min", ParameterValue::Double(0.3));
    assert!(!ok && reason.contains("cap 0.25 (below 0.15) is below rho_min (0.3)"), "{reason}");
    assert!(peer.set("battery_policy", ParameterValue::String("off".into())).0);

    // The controller's parameters: bad values rejected with a reason, the old value kept.
    let threads = peer.get("threads");
    assert!(matches!(threads, ParameterValue::Integer(n) if n >= 1), "{threads:?}");
    for (name, value, expect) in [
        ("controller", ParameterValue::String("yes".into()), "Cannot change type of parameter 'controller'"),
        ("rho_min", ParameterValue::Double(0.0), "rho_min must be in (0, 1], got 0"),
        ("deadline_probability", ParameterValue::Double(1.5), "deadline_probability must be in [0.5, 0.9999]"),
        ("battery_policy", ParameterValue::String("max".into()), "battery_policy must be `off`, `steps` or `scale`"),
        ("battery_steps", ParameterValue::String("half".into()), "`half` is not `below:cap`"),
        ("battery_steps", ParameterValue::String("0.3:0.5, 0.5:0.75".into()), "thresholds must decrease"),
        ("battery_hysteresis", ParameterValue::Double(0.5), "battery hysteresis must be in [0, 0.2]"),
        ("battery_unknown_cap", ParameterValue::Double(2.0), "battery unknown cap must be in (0, 1]"),
        ("battery_stale_s", ParameterValue::Double(-1.0), "battery_stale_s must be a positive number of seconds"),
        ("controller_profile", ParameterValue::String("/nonexistent/p.json".into()), "cannot read or write"),
        ("threads", ParameterValue::Integer(99), "threads is read at start-up only"),
        ("battery_min_rho", ParameterValue::Double(0.3), "battery_min_rho"),
    ] {
        let (ok, reason) = peer.set(name, value.clone());
        assert!(!ok, "{name} = {value:?} was accepted");
        assert!(reason.contains(expect), "{name} = {value:?}: reason {reason:?} lacks {expect:?}");
        println!("rejected {name} = {value:?}: {reason}");
    }
    assert_eq!(peer.get("controller"), ParameterValue::Boolean(false));
    assert_eq!(peer.get("rho_min"), ParameterValue::Double(0.25));
    assert_eq!(peer.get("battery_steps"), ParameterValue::String("0.5:0.75, 0.3:0.5, 0.15:0.25".into()));
    assert_eq!(peer.get("controller_profile"), ParameterValue::String(String::new()));
    assert_eq!(peer.get("threads"), threads);
    // Good values are taken and read back.
    for (name, value) in [
        ("battery_steps", ParameterValue::String("0.5:0.75, 0.3:0.5".into())),
        ("rho_min", ParameterValue::Double(0.3)),
        ("deadline_probability", ParameterValue::Double(0.99)),
        ("battery_hysteresis", ParameterValue::Double(0.05)),
        ("battery_unknown_cap", ParameterValue::Double(0.75)),
        ("battery_stale_s", ParameterValue::Double(2.0)),
        ("threads", threads.clone()),
    ] {
        let (ok, reason) = peer.set(name, value.clone());
        assert!(ok, "{name} = {value:?}: {reason}");
        assert_eq!(peer.get(name), value, "{name}");
    }

    // The controller on at run time, planning with a profile file: with a 10 s deadline it runs
    // every frame at ρ = 1 (the fixed mode is budget:0.3).
    let profile = dir.path().join("profile.json");
    write_profile(&profile, &common::model_path(), &[(1.0, 40.0), (0.75, 34.0), (0.5, 28.0), (0.3, 24.0)]);
    let path = ParameterValue::String(profile.to_str().unwrap().into());
    assert_eq!(peer.set("controller_profile", path), (true, String::new()));
    assert!(peer.set("deadline_ms", ParameterValue::Double(10_000.0)).0);
    assert!(peer.set("controller", ParameterValue::Boolean(true)).0);
    let s = peer.wait_status("the controller running at rho 1", |s| {
        s.get("controller") == Some("running")
            && s.get("last_frame_mode") == Some("budget:1")
            && s.level == DiagnosticStatus::OK
    });
    assert!(s.get("controller_profile").unwrap().starts_with(profile.to_str().unwrap()), "{s:#?}");
    assert!(s.get("controller_profile").unwrap().contains("4 points, rho 0.3–1"), "{s:#?}");
    assert_eq!(s.get("controller deadline ms"), Some("10000.00"));
    assert!(num(&s, "controller slowdown xi") > 0.0, "{s:#?}");
    assert!(s.message.contains("; rho 1.00 (unconstrained)"), "{}", s.message);
    // Off again: the fixed mode.
    assert!(peer.set("controller", ParameterValue::Boolean(false)).0);
    peer.wait_status("the fixed mode again", |s| {
        s.get("controller") == Some("off") && s.get("last_frame_mode") == Some("budget:0.3")
    });

    // Output resolution and model path change at run time too.
    assert!(peer.set("output_resolution", ParameterValue::String("input".into())).0);
    let end = Instant::now() + Duration::from_secs(30);
    while peer.next_ponder().1 != 640 {
        assert!(Instant::now() < end, "ponder map never came at the input resolution");
    }
    let copy = dir.path().join("copy_of_shipped.onnx");
    std::fs::copy(common::model_path(), &copy).unwrap();
    let (ok, reason) = peer.set("model_path", ParameterValue::String(copy.to_str().unwrap().into()));
    assert!(ok, "{reason}");
    peer.wait_status("the new model", |s| s.get("model") == Some("copy_of_shipped.onnx"));
    assert!(node.is_running(), "{}", node.log());
    drop(peer.node);
}
