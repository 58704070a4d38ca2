//! Bad input: thousands of malformed images (wrong encoding, step/size mismatch, truncated,
//! zero-sized, absurdly large, undecodable) and bad BatteryStates (NaN, 0–100, negative,
//! infinite) from the Cyclone DDS peer, then a good image, which must be processed. The node
//! keeps running and the diagnostics count every kind of rejection: first each kind is sent until
//! it is counted (deterministic on any machine), then the flood.
mod common;

use std::time::Duration;

#[test]
fn malformed_flood_is_counted_and_the_next_good_frame_is_processed() {
    if !common::cyclone_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(1);
    let mut node = common::NodeProcess::spawn(domain, &[], dir.path());
    let report = dir.path().join("flood.json");
    let (ok, out) = common::run_peer(
        &["flood", "--domain", &domain.to_string(), "--count", "3000", "--out", report.to_str().unwrap()],
        Duration::from_secs(240),
    );
    println!("{out}");
    assert!(node.is_running(), "node died:\n{}", node.log());
    assert!(ok, "flood checks failed:\n{out}\nnode log:\n{}", node.log());
}
