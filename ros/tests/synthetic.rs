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
