//! The ρ controller in the node, end to end: the node starts with `--controller` and no
//! profile file, so it measures a quick profile first (progress in its log); then, on its
//! synthetic camera, a deadline no frame can meet pins ρ at `rho_min` with a WARN, a deadline
//! every frame meets lets ρ rise to 1, and the battery policy caps it (charging lifts the cap, a
//! silent battery goes stale). Only behaviour that does not depend on the machine's speed is
//! asserted: a 1 µs deadline is missed and a 10 s one met on any machine.
mod common;

use std::time::{Duration, Instant};

use common::peer::{num, Peer};
use pag_ros::msg::{BatteryState, DiagnosticStatus};
use ros2_client::ParameterValue;

#[test]
fn the_controller_picks_rho_from_the_deadline_and_the_battery() {
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(0);
    let mut node = common::NodeProcess::spawn(
        domain,
        &["--synthetic", "--rate-hz", "10", "--controller", "--deadline-ms", "0.001"],
        dir.path(),
    );
    let peer = Peer::new(domain);

    // A deadline of 1 µs: unattainable even at rho_min. ρ is pinned there, and the status says
    // why (WARN, per ros_glue).
    let s = peer.wait_status("rho pinned at rho_min", |s| {
        s.get("controller") == Some("running") && s.get("last_frame_mode") == Some("budget:0.25")
    });
    println!("{s:#?}");
    let log = node.log();
    assert!(log.contains("measuring a quick profile"), "{log}");
    assert!(log.contains("controller: profiling 100%"), "{log}");
    assert!(log.contains("controller: profiled in"), "{log}");
    assert!(s.get("controller_profile").unwrap().starts_with("measured at start-up: 9 points, rho 0.25–1"), "{s:#?}");
    let s = peer.wait_status("the floor reported", |s| {
        s.get("controller reason") == Some("floor: deadline unattainable at rho_min")
            && s.level == DiagnosticStatus::WARN
    });
    assert!(s.message.contains("rho 0.25 (floor: deadline unattainable at rho_min)"), "{}", s.message);
    assert_eq!(s.get("controller rho"), Some("0.2500"));
    assert!(s.get("controller margin").unwrap().starts_with('-'), "{s:#?}");
    assert!(num(&s, "controller late frames") >= 1.0, "{s:#?}");
    assert!(num(&s, "controller floor frames") >= 1.0, "{s:#?}");
    assert_eq!(s.get("controller deadline ms"), Some("0.00"));

    // A deadline every frame meets: ρ rises (gently) to 1.
    assert!(peer.set("deadline_ms", ParameterValue::Double(10_000.0)).0);
    let s = peer.wait_status("rho back at 1", |s| {
        s.get("last_frame_mode") == Some("budget:1") && s.get("controller reason") == Some("unconstrained")
    });
    assert_eq!(s.get("controller rho"), Some("1.0000"));
    assert!(s.get("controller margin").unwrap().starts_with('+'), "{s:#?}");

    // The battery policy caps the controller's ρ: 10 % is below 0.15 → 0.25 (reason: battery).
    assert!(peer.set("battery_policy", ParameterValue::String("steps".into())).0);
    assert!(peer.set("battery_stale_s", ParameterValue::Double(1.0)).0);
    let battery = |percentage: f32, power_supply_status: u8| BatteryState {
        percentage,
        power_supply_status,
        present: true,
        ..Default::default()
    };
    let until = |what: &str, msg: &BatteryState, pred: &dyn Fn(&DiagnosticStatus) -> bool| {
        let end = Instant::now() + Duration::from_secs(60);
        loop {
            let _ = peer.battery.publish(msg.clone());
            let s = peer.wait_status("a status", |_| true);
            if pred(&s) {
                return s;
            }
            assert!(Instant::now() < end, "timed out waiting for {what}: {s:#?}");
        }
    };
    let s = until("the battery cap", &battery(0.1, 2), &|s| {
        s.get("last_frame_mode") == Some("budget:0.25") && s.get("controller reason") == Some("battery cap")
    });
    assert_eq!((s.get("battery cap"), s.get("battery state")), (Some("0.25"), Some("fresh")));
    // Charging (now at 90 %) lifts it.
    let s = until("charging", &battery(0.9, 1), &|s| s.get("last_frame_mode") == Some("budget:1"));
    assert_eq!((s.get("battery cap"), s.get("battery state")), (Some("1.00"), Some("on power")));
    // Silence: after battery_stale_s the reading is stale and the fallback cap (0.5, the last
    // level's cap being none at 90 %) applies, with a WARN.
    let s = peer.wait_status("a stale battery", |s| {
        s.get("battery state") == Some("stale") && s.get("last_frame_mode") == Some("budget:0.5")
    });
    assert_eq!(s.get("controller reason"), Some("battery unknown: fallback cap"));
    let s = peer
        .wait_status("a WARN for it", |s| s.level == DiagnosticStatus::WARN && s.get("battery state") == Some("stale"));
    assert!(s.message.contains("battery unknown: fallback cap"), "{}", s.message);

    // Off: the fixed mode (dense) again, still under the battery cap while the policy is on.
    assert!(peer.set("controller", ParameterValue::Boolean(false)).0);
    peer.wait_status("the fixed mode under the cap", |s| {
        s.get("controller") == Some("off") && s.get("last_frame_mode") == Some("budget:0.5")
    });
    assert!(peer.set("battery_policy", ParameterValue::String("off".into())).0);
    peer.wait_status("the fixed mode", |s| s.get("last_frame_mode") == Some("dense"));
    assert!(node.is_running(), "{}", node.log());
    drop(peer.node);
}
