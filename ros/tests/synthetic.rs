//! The README's main command on a bare machine: the node with its built-in synthetic camera
//! processes frames and exits after `--frames`.
mod common;

use std::process::Command;

/// The summary line's numbers: processed, received, dropped, rejected, failed.
fn summary(log: &str) -> [u64; 5] {
    let line = log.lines().find(|l| l.starts_with("processed ")).expect("summary line");
    let after = |key: &str| -> u64 {
        let rest = line.split(key).nth(1).unwrap_or_else(|| panic!("no `{key}` in {line}"));
        rest.trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    [after("processed "), after("received "), after("dropped "), after("rejected "), after("failed ")]
}

#[test]
fn synthetic_camera_runs_the_whole_node() {
    let out = Command::new(env!("CARGO_BIN_EXE_pag-ros"))
        .args(["--synthetic", "--frames", "5", "--rate-hz", "20", "--domain-id", &common::domain(3).to_string()])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    println!("{log}");
    assert!(out.status.success(), "{log}");
    assert!(log.contains("processed 5 frames"), "{log}");
    assert!(log.contains("stopped (processed 5 frames)"), "{log}");
}

/// A camera faster than inference: nothing queues. Every frame the node received is accounted
/// for exactly once: processed, or dropped by the latest-frame slot (replaced by a newer frame,
/// or still waiting when the node stopped). How many are dropped depends on the machine's
/// speed, so that is not asserted; the slot's own tests (src/slot.rs) check replacement and
/// counting deterministically.
#[test]
fn a_fast_camera_is_accounted_for_frame_by_frame() {
    let out = Command::new(env!("CARGO_BIN_EXE_pag-ros"))
        .args(["--synthetic", "--frames", "12", "--rate-hz", "200", "--width", "160", "--height", "120"])
        .args(["--domain-id", &common::domain(4).to_string()])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    println!("{log}");
    assert!(out.status.success(), "{log}");
    let [processed, received, dropped, rejected, failed] = summary(&log);
    assert_eq!(processed, 12, "{log}");
    assert_eq!((rejected, failed), (0, 0), "{log}");
    assert_eq!(received, processed + dropped, "every received frame is processed or dropped, none queued: {log}");
}
