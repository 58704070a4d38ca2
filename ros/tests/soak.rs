//! Soak: the node on its synthetic camera for many frames, every output subscribed by a peer
//! (a ros2-client participant in this process: reliable keep-last-10 readers, as a ROS 2
//! default subscription), the node's RSS sampled as it goes. The memory must stay flat after
//! warm-up: the node once grew by ~12 kB per frame (ros2-client status channels registered per
//! output per frame), ~5 GB in 8 hours at 15 fps.
//!
//! `soak_short` runs in CI (5 000 frames). The long soak (≥ 20 000 frames) is the same test with
//! more frames: `ros/tests/soak.sh [frames]` (PAGRT_SOAK_FRAMES), which prints the RSS table.
mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pag_ros::msg::{self, CameraInfo, DiagnosticArray, Image};
use ros2_client::qos::{Durability, History};
use ros2_client::{Context, ContextOptions, MessageTypeName, Name, NodeName, NodeOptions, QosProfile, Subscription};

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

fn drain<M: 'static + serde::de::DeserializeOwned>(sub: &Subscription<M>, count: &AtomicU64) {
    while let Ok(Some(_)) = sub.take() {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

struct Soak {
    frames: u64,
    warmup: u64,
    domain_k: u16,
}

/// Returns (frames, RSS kB) samples after warm-up, and per-output receive counts.
fn soak(s: &Soak) -> (Vec<(u64, u64)>, Vec<(&'static str, u64)>) {
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(s.domain_k);
    let context = Context::with_options(ContextOptions::new().domain_id(domain)).unwrap();
    let mut peer = context
        .new_node(
            NodeName::new("/", "soak_peer").unwrap(),
            NodeOptions::new().enable_rosout(false).start_parameter_services(false),
        )
        .unwrap();
    let qos = QosProfile::subscription_default()
        .reliability_reliable(ros2_client::qos::WhenFull::Fail)
        .history(History::KeepLast { depth: 10 })
        .durability(Durability::Volatile);
    let sub = |peer: &mut ros2_client::Node, name: &str, ty: MessageTypeName| {
        let topic = peer.create_topic(&Name::parse(name).unwrap(), ty, &qos).unwrap();
        topic
    };
    let images: Vec<(&'static str, Subscription<Image>)> = ["labels", "segmentation", "depth", "normals", "ponder"]
        .into_iter()
        .map(|t| {
            let topic = sub(&mut peer, &format!("/pag/{t}"), msg::image_type());
            (t, peer.create_subscription::<Image>(&topic, None).unwrap())
        })
        .collect();
    let info_topic = sub(&mut peer, "/pag/camera_info", msg::camera_info_type());
    let infos: Subscription<CameraInfo> = peer.create_subscription(&info_topic, None).unwrap();
    let diag_topic = sub(&mut peer, "/diagnostics", msg::diagnostic_array_type());
    let diagnostics: Subscription<DiagnosticArray> = peer.create_subscription(&diag_topic, None).unwrap();

    let mut node = common::NodeProcess::spawn(
        domain,
        &["--synthetic", "--rate-hz", "60", "--frames", &s.frames.to_string()],
        dir.path(),
    );
    let pid = node.child.id();
    let counts: Arc<Vec<AtomicU64>> = Arc::new((0..6).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let processed = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let reader = {
        let (counts, done, processed, failures) = (counts.clone(), done.clone(), processed.clone(), failures.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                for (i, (_, s)) in images.iter().enumerate() {
                    drain(s, &counts[i]);
                }
                drain(&infos, &counts[5]);
                while let Ok(Some((d, _))) = diagnostics.take() {
                    if let Some(st) = d.status.iter().find(|s| s.name == "pag: inference") {
                        if let Some(n) = st.get("frames_processed").and_then(|v| v.parse().ok()) {
                            processed.store(n, Ordering::Relaxed);
                        }
                        if let Some(n) = st.get("publish_failures").and_then(|v| v.parse().ok()) {
                            failures.store(n, Ordering::Relaxed);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    let mut samples = Vec::new();
    let mut next_print = s.warmup;
    let start = Instant::now();
    println!("{:>8} {:>10} {:>8}", "frames", "RSS kB", "s");
    while node.is_running() {
        let n = processed.load(Ordering::Relaxed);
        if let Some(kb) = rss_kb(pid) {
            if n >= s.warmup {
                samples.push((n, kb));
            }
            if n >= next_print {
                println!("{n:>8} {kb:>10} {:>8.0}", start.elapsed().as_secs_f64());
                next_print += (s.frames / 20).max(100);
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    done.store(true, Ordering::Relaxed);
    reader.join().unwrap();
    let status = node.child.wait().unwrap();
    let log = node.log();
    println!("node: {}", log.lines().find(|l| l.starts_with("processed ")).unwrap_or("no summary"));
    println!("node publish failures (writes refused by a full reliable window): {}", failures.load(Ordering::Relaxed));
    assert!(status.success(), "{log}");
    assert!(log.contains(&format!("processed {} frames", s.frames)), "{log}");
    let names = ["labels", "segmentation", "depth", "normals", "ponder", "camera_info"];
    (samples, names.into_iter().zip(counts.iter().map(|c| c.load(Ordering::Relaxed))).collect())
}

/// RSS growth after warm-up. The node's RSS saw-tooths by tens of MB as large samples are
/// allocated and acknowledged, so the floor is compared: the lowest RSS in the first third of
/// the samples after warm-up against the lowest in the last third (a leak raises the floor).
/// Returns the floor growth in kB and % and the fitted slope in kB per frame.
fn report(samples: &[(u64, u64)]) -> (f64, f64, f64) {
    assert!(samples.len() >= 12, "too few RSS samples: {samples:?}");
    let third = samples.len() / 3;
    let floor = |s: &[(u64, u64)]| s.iter().map(|p| p.1).min().unwrap() as f64;
    let (first, last) = (floor(&samples[..third]), floor(&samples[samples.len() - third..]));
    let (lo, hi) = (samples.iter().map(|p| p.1).min().unwrap(), samples.iter().map(|p| p.1).max().unwrap());
    let per_frame = slope(&samples.iter().map(|&(n, kb)| (n as f64, kb as f64)).collect::<Vec<_>>());
    let growth = last - first;
    println!(
        "RSS after warm-up (frames {}..{}): floor {first:.0} kB in the first third, {last:.0} kB in the last: \
         growth {growth:.0} kB ({:+.2} %); range {lo}..{hi} kB; fitted slope {per_frame:.3} kB/frame",
        samples[0].0,
        samples[samples.len() - 1].0,
        100.0 * growth / first
    );
    (growth, 100.0 * growth / first, per_frame)
}

#[test]
fn soak_short_memory_stays_flat_with_every_output_subscribed() {
    let frames: u64 = std::env::var("PAGRT_SOAK_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(5000);
    let warmup = (frames / 5).clamp(1000, 2000);
    let (samples, counts) = soak(&Soak { frames, warmup, domain_k: 0 });
    println!("outputs received by the peer: {counts:?}");
    for (name, n) in &counts {
        assert!(*n >= frames / 2, "the peer got only {n} {name} of {frames} frames");
    }
    let (growth_kb, growth_pct, _per_frame_kb) = report(&samples);
    // A leak of 12 kB per frame (the old one) raises the floor by ~16 MB (8 %) between the
    // thirds of a 3 000-frame run and by 38 MB (+16.7 %, measured) in 5 000 frames. Without one the floor
    // still moves in allocator-sized steps: with model v2 a 3 000-frame run once saw +8 MB
    // (+3.9 %, slope +6 kB/frame) while 8 000 frames of the same build gave +1.0 % and a slope of
    // −0.4 kB/frame. 5 000 frames and a 6 % bound separate the two.
    assert!(growth_pct < 6.0, "the RSS floor grew by {growth_kb:.0} kB ({growth_pct:.1} %) after warm-up");
}
