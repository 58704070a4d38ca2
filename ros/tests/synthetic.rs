//! The README's main command on a bare machine: the node with its built-in synthetic camera
//! processes frames and exits after `--frames`.
mod common;

use std::process::Command;

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
}

/// A camera faster than inference: the latest-frame slot drops the surplus (counted) instead of
/// queueing it, so the frames processed stay fresh.
#[test]
fn a_fast_camera_causes_drops_not_a_backlog() {
    let out = Command::new(env!("CARGO_BIN_EXE_pag-ros"))
        .args(["--synthetic", "--frames", "12", "--rate-hz", "200", "--width", "160", "--height", "120"])
        .args(["--domain-id", &common::domain(4).to_string()])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    println!("{log}");
    assert!(out.status.success(), "{log}");
    let line = log.lines().find(|l| l.starts_with("processed 12 frames")).expect("summary line");
    let dropped: u64 = line.split("dropped ").nth(1).unwrap().split(',').next().unwrap().trim().parse().unwrap();
    assert!(dropped > 0, "a 200 Hz camera should outrun inference: {line}");
}
