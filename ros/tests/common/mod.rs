//! Helpers shared by the DDS tests: the node binary as a child process, per-test DDS domains,
//! and the Cyclone DDS peer.
#![allow(dead_code)]
pub mod cases;
pub mod peer;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A DDS domain for one test: distinct per test (`k` < 6) and, modulo collisions, per test run.
/// Stays in 1–101: higher ids map to UDP ports inside Linux's ephemeral range (ROS advice), and
/// clear of 0, the default everybody uses.
pub fn domain(k: u16) -> u16 {
    assert!(k < 6);
    let run = (std::process::id() % 16) as u16;
    1 + run * 6 + k
}

/// The node, killed when dropped.
pub struct NodeProcess {
    pub child: Child,
    pub log: PathBuf,
}

impl NodeProcess {
    pub fn spawn(domain: u16, args: &[&str], log_dir: &Path) -> NodeProcess {
        let log = log_dir.join(format!("node-{domain}.log"));
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pag-ros"))
            .args(["--domain-id", &domain.to_string(), "--diagnostics-period", "0.25"])
            .args(args)
            .env("RUST_LOG", "info,rustdds=warn,ros2_client=warn")
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn the pag-ros node");
        NodeProcess { child, log }
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the Cyclone DDS Python peer can run. Without `cyclonedds` the test is skipped with a
/// loud message, unless `CI` is set: then it fails (CI installs it in `.ci/run`).
pub fn cyclone_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cyclonedds, numpy"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but `python3 -c 'import cyclonedds, numpy'` fails: install cyclonedds==11.0.1");
        }
        eprintln!(
            "\n*** SKIPPED: Cyclone DDS interop test needs `pip install cyclonedds==11.0.1 numpy` \
             (set CI=1 to make this a failure) ***\n"
        );
    }
    ok
}

pub fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer/peer.py")
}

/// Runs the peer with `args`; returns (success, stdout + stderr).
pub fn run_peer(args: &[&str], timeout: Duration) -> (bool, String) {
    let mut child = Command::new("python3")
        .arg("-u")
        .arg(peer_script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (status.is_some_and(|s| s.success()), text)
}

pub fn model_path() -> String {
    pag_ros::default_model_path()
}

/// The Fast DDS peer (tests/fastdds/peer.cpp), built by tests/fastdds/build.sh into the target
/// directory on first use. `None` (with a loud message) when Fast DDS 2.9's development
/// packages are missing, unless `CI` is set: then it panics (CI installs them in `.ci/run`).
pub fn fastdds_peer() -> Option<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(manifest.join("../target"), PathBuf::from);
    let out = target.join("fastdds-peer");
    let have = Path::new("/usr/include/fastdds/dds/domain/DomainParticipant.hpp").exists()
        && Command::new("fastddsgen").arg("-version").output().is_ok_and(|o| o.status.success());
    if !have {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but Fast DDS is missing: apt-get install libfastrtps-dev fastddsgen");
        }
        eprintln!(
            "\n*** SKIPPED: Fast DDS interop test needs Debian's `libfastrtps-dev fastddsgen` (Fast DDS 2.9) \
             (set CI=1 to make this a failure) ***\n"
        );
        return None;
    }
    // One build at a time (test threads of this binary share the output).
    static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let status = Command::new("bash")
        .arg(manifest.join("tests/fastdds/build.sh"))
        .arg(&out)
        .status()
        .expect("run tests/fastdds/build.sh");
    assert!(status.success(), "building the Fast DDS peer failed");
    Some(out.join("peer"))
}

/// Runs `program` with `args`, killed after `timeout`; returns (success, stdout + stderr).
pub fn run_with_timeout(program: &Path, args: &[&str], timeout: Duration) -> (bool, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (status.is_some_and(|s| s.success()), text)
}
