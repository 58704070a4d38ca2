//! Clean shutdown: SIGINT or SIGTERM makes the node exit with status 0 within 1 s, and a DDS peer
//! is told that the node's participant left (a dispose from the node, not a lease expiry).
//! The peer is a plain RustDDS participant in this process.
mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use ros2_client::dds::rustdds::{DomainParticipant, DomainParticipantStatusEvent, LostReason, StatusEvented};

/// Polls `f` every 20 ms until it returns `Some`, for at most `timeout`.
fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stops_cleanly(signal: &str, domain_k: u16, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let domain = common::domain(domain_k);
    // A namespace of its own, so that the node's participant is told apart from any other
    // process on this domain.
    let namespace = format!("/shutdown_{}_{domain_k}", std::process::id());
    let labels_topic = format!("rt{namespace}/labels");
    let peer = DomainParticipant::new(domain).unwrap();
    let status = peer.status_listener();
    let mut args = vec!["--namespace", namespace.as_str()];
    args.extend_from_slice(extra);
    let mut node = common::NodeProcess::spawn(domain, &args, dir.path());

    let node_prefix = wait_for(Duration::from_secs(60), || {
        peer.discovered_writers()
            .into_iter()
            .find(|w| w.publication_topic_data.topic_name == labels_topic)
            .map(|w| w.writer_proxy.remote_writer_guid.prefix)
    })
    .unwrap_or_else(|| panic!("the peer never discovered the node's writers\n{}", node.log()));
    if extra.contains(&"--synthetic") {
        // Signal in the middle of processing frames.
        let log = wait_for(Duration::from_secs(60), || Some(node.log()).filter(|l| l.contains("synthetic camera ")));
        assert!(log.is_some(), "the synthetic camera did not start\n{}", node.log());
        std::thread::sleep(Duration::from_millis(1500));
    }
    while status.try_recv_status().is_some() {}

    let pid = node.child.id().to_string();
    assert!(Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success());
    let sent = Instant::now();
    let exit = wait_for(Duration::from_secs(10), || node.child.try_wait().unwrap());
    let took = sent.elapsed();
    let log = node.log();
    println!("{log}");
    let exit = exit.unwrap_or_else(|| panic!("the node did not exit within 10 s of SIG{signal}"));
    assert!(exit.success(), "exit status {exit:?} after SIG{signal}\n{log}");
    assert!(took < Duration::from_secs(1), "the node took {took:?} to exit after SIG{signal}");
    assert!(log.contains(&format!("received SIG{signal}")), "{log}");

    let left = wait_for(Duration::from_secs(5), || match status.try_recv_status() {
        Some(DomainParticipantStatusEvent::ParticipantLost { id, reason }) if id == node_prefix => Some(reason),
        _ => None,
    });
    match left {
        Some(LostReason::Disposed) => {}
        other => panic!("the peer did not see the node's participant disposed: {other:?}"),
    }
    assert!(
        !peer.discovered_writers().iter().any(|w| w.publication_topic_data.topic_name == labels_topic),
        "the node's writers are still in the peer's discovery database"
    );
}

#[test]
fn sigint_exits_0_within_a_second_and_the_peer_sees_the_node_leave() {
    stops_cleanly("INT", 5, &[]);
}

#[test]
fn sigterm_while_processing_frames_exits_0_within_a_second() {
    stops_cleanly("TERM", 4, &["--synthetic", "--rate-hz", "30"]);
}
