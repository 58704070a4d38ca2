//! Interop with ROS 2's default middleware, eProsima Fast DDS 2.9 (Debian's `libfastrtps-dev`),
//! through a C++ peer (tests/fastdds/peer.cpp, fastddsgen types in ROS 2's DDS naming) that
//! uses Fast DDS as a stock ROS 2 node does: default participant (UDP + shared-memory
//! transports, the OS's default socket buffers), reliable keep-last-10 readers.
//!
//! * Both directions, like the Cyclone test: the peer publishes camera images (every encoding,
//!   several sizes, padded rows), camera_info and BatteryStates, subscribes to every output and
//!   checks encodings, sizes, steps, headers, NaN depth, unit normals, camera_info scaling and
//!   the battery handling; this test then checks the values against the runtime.
//! * Delivery: the node on its synthetic camera (320×240, 15 Hz) and a default-buffer reader of
//!   every output; every processed frame's outputs must arrive.
//! * Shutdown: SIGINT, and the Fast DDS peer is told the participant left (REMOVED, not a lease
//!   expiry).
//!
//! The tests of this file run one at a time (they measure delivery, and share the CPU).
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cases::{check_outputs_equal_the_runtime, write_cases};
use pag_runtime::{PagModel, Resolution};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn fastdds_peer_sees_every_output_with_the_runtimes_values() {
    let _one = serial();
    interop(Resolution::Model, 0);
}

#[test]
fn fastdds_peer_sees_outputs_at_the_input_resolution() {
    let _one = serial();
    interop(Resolution::Input, 1);
}

fn interop(resolution: Resolution, domain_k: u16) {
    let Some(peer) = common::fastdds_peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cases = write_cases(dir.path());
    let lines: Vec<String> = cases
        .iter()
        .map(|c| {
            let (h, w, _) = c.rgb.dim();
            format!("{} {} {w} {h} {}\n", c.file, c.encoding, c.pad)
        })
        .collect();
    std::fs::write(dir.path().join("cases.txt"), lines.concat()).unwrap();
    let model = Arc::new(PagModel::load_with(common::model_path(), pag_runtime::Execution::Sparse).unwrap());
    let out_size = match resolution {
        Resolution::Model => format!("{}x{}", model.info.input.height, model.info.input.width),
        Resolution::Input => "input".to_owned(),
    };
    let domain = common::domain(domain_k);
    let max_depth_m = 4.0;
    let res_arg = if resolution == Resolution::Input { "input" } else { "model" };
    let mut node =
        common::NodeProcess::spawn(domain, &["--max-depth-m", "4.0", "--output-resolution", res_arg], dir.path());
    let classes = model.info.class_names.len().to_string();
    let (ok, out) = common::run_with_timeout(
        &peer,
        &[
            "interop",
            "--domain",
            &domain.to_string(),
            "--cases",
            dir.path().to_str().unwrap(),
            "--out-size",
            &out_size,
            "--classes",
            &classes,
            "--max-depth",
            "4",
            "--timeout",
            "90",
        ],
        Duration::from_secs(300),
    );
    println!("{out}");
    assert!(node.is_running(), "node died:\n{}", node.log());
    assert!(ok, "Fast DDS peer checks failed:\n{out}\nnode log:\n{}", node.log());
    check_outputs_equal_the_runtime(dir.path(), &cases, &model, resolution, max_depth_m);
    let log = node.log();
    assert!(!log.contains("ERROR"), "the node logged errors:\n{log}");
}

/// Every output of every processed frame reaches a default-buffer Fast DDS reader on this
/// machine (reliable keep-last-10, as `ros2 topic echo`). Before the RustDDS fixes
/// (ros/vendor/README.md) this reader got 2–27 % of the normals, depth and segmentation.
#[test]
fn a_default_buffer_fastdds_reader_gets_every_output_at_15_hz() {
    let _one = serial();
    let Some(peer) = common::fastdds_peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(2);
    let mut node = common::NodeProcess::spawn(domain, &["--synthetic", "--timing"], dir.path());
    let (ok, out) = common::run_with_timeout(
        &peer,
        &["stream", "--domain", &domain.to_string(), "--seconds", "12", "--warmup", "5", "--min-delivered", "0.99"],
        Duration::from_secs(120),
    );
    println!("{out}");
    assert!(node.is_running(), "node died:\n{}", node.log());
    assert!(ok, "delivery to the Fast DDS reader failed:\n{out}");
    let log = node.log();
    assert!(!log.contains("ERROR"), "the node logged errors:\n{log}");
}

#[test]
fn fastdds_peer_sees_the_node_leave_on_sigint() {
    let _one = serial();
    let Some(peer) = common::fastdds_peer() else { return };
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(3);
    let mut watcher = Command::new(&peer)
        .args(["leave", "--domain", &domain.to_string(), "--timeout", "120"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watcher.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut node = common::NodeProcess::spawn(domain, &[], dir.path());
    let mut seen = Vec::new();
    let mut next = |timeout: Duration, what: &str| -> String {
        let line = rx.recv_timeout(timeout).unwrap_or_else(|_| panic!("no `{what}` from the peer; saw {seen:?}"));
        seen.push(line.clone());
        line
    };
    let discovered = next(Duration::from_secs(60), "discovered");
    assert!(discovered.contains(" discovered "), "{discovered}");
    // Let the node finish starting (its first diagnostics), then interrupt it.
    let started = Instant::now();
    while !node.log().contains("node /pag/pag_node") && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(Command::new("kill").args(["-INT", &node.child.id().to_string()]).status().unwrap().success());
    let sent = Instant::now();
    let exit = loop {
        if let Some(s) = node.child.try_wait().unwrap() {
            break s;
        }
        assert!(sent.elapsed() < Duration::from_secs(10), "the node did not exit after SIGINT");
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    assert!(exit.success(), "exit status {exit:?}\n{}", node.log());
    assert!(took < Duration::from_secs(1), "the node took {took:?} to exit");
    let left = next(Duration::from_secs(10), "removed");
    assert!(left.contains(" removed "), "the peer saw `{left}`, not the participant's own removal");
    let _ = watcher.kill();
    let _ = watcher.wait();
    let _ = reader.join();
}
