//! Parameters over the ROS 2 parameter services, from a ros2-client peer: the node runs on its
//! synthetic camera; the test sets `mode`/`rho` at run time and observes the change in the
//! diagnostics (mode, executed MACs) and in the outputs (the ponder map); invalid values are
//! rejected with a reason and the old value stays.
mod common;

use std::time::{Duration, Instant};

use pag_ros::msg::{self, BatteryState, DiagnosticArray, DiagnosticStatus, Image};
use pag_ros::node::{diagnostics_qos, output_qos};
use ros2_client::rcl_interfaces::{
    GetParametersRequest, GetParametersResponse, SetParametersRequest, SetParametersResponse,
};
use ros2_client::{
    Context, ContextOptions, Message, Name, Node, NodeName, NodeOptions, Parameter, ParameterValue, ServiceMapping,
    ServiceTypeName,
};

struct Peer {
    node: Node,
    set: ros2_client::Client<SetParametersRequest, SetParametersResponse>,
    get: ros2_client::Client<GetParametersRequest, GetParametersResponse>,
    diagnostics: ros2_client::Subscription<DiagnosticArray>,
    ponder: ros2_client::Subscription<Image>,
    battery: ros2_client::Publisher<BatteryState>,
}

fn call<Req: Message + Clone + 'static, Resp: Message + 'static>(c: &ros2_client::Client<Req, Resp>, req: Req) -> Resp {
    // Requests sent before the service is discovered are lost: resend until answered.
    let end = Instant::now() + Duration::from_secs(60);
    while Instant::now() < end {
        let id = c.send_request(req.clone()).expect("send request");
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(1) {
            if let Ok(Some((rid, resp))) = c.receive_response() {
                if rid == id {
                    return resp;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    panic!("no response from the parameter service");
}

impl Peer {
    fn new(domain: u16) -> Peer {
        let ctx = Context::with_options(ContextOptions::new().domain_id(domain)).unwrap();
        let mut node = ctx
            .new_node(NodeName::new("/test", "param_peer").unwrap(), NodeOptions::new().enable_rosout(false))
            .unwrap();
        let qos = ros2_client::QosProfile::publisher_default();
        let set = node
            .create_client(
                ServiceMapping::Enhanced,
                &Name::new("/pag/pag_node", "set_parameters").unwrap(),
                &ServiceTypeName::new("rcl_interfaces", "SetParameters"),
                qos.clone(),
                qos.clone(),
            )
            .unwrap();
        let get = node
            .create_client(
                ServiceMapping::Enhanced,
                &Name::new("/pag/pag_node", "get_parameters").unwrap(),
                &ServiceTypeName::new("rcl_interfaces", "GetParameters"),
                qos.clone(),
                qos,
            )
            .unwrap();
        let t = node
            .create_topic(&Name::parse("/diagnostics").unwrap(), msg::diagnostic_array_type(), &diagnostics_qos())
            .unwrap();
        let diagnostics = node.create_subscription(&t, None).unwrap();
        let t = node.create_topic(&Name::parse("/pag/ponder").unwrap(), msg::image_type(), &output_qos()).unwrap();
        let ponder = node.create_subscription(&t, None).unwrap();
        let t = node
            .create_topic(&Name::parse("/battery_state").unwrap(), msg::battery_state_type(), &output_qos())
            .unwrap();
        let battery = node.create_publisher(&t, None).unwrap();
        let spinner = node.spinner().unwrap();
        std::thread::spawn(move || futures::executor::block_on(spinner.spin()));
        Peer { node, set, get, diagnostics, ponder, battery }
    }

    fn set(&self, name: &str, value: ParameterValue) -> (bool, String) {
        let r =
            call(&self.set, SetParametersRequest { parameter: vec![Parameter { name: name.into(), value }.into()] });
        let r = &r.results[0];
        (r.successful, r.reason.clone())
    }

    fn get(&self, name: &str) -> ParameterValue {
        let r = call(&self.get, GetParametersRequest { names: vec![name.into()] });
        r.values[0].clone().into()
    }

    /// Waits for a node status satisfying `pred`.
    fn wait_status(&self, what: &str, pred: impl Fn(&DiagnosticStatus) -> bool) -> DiagnosticStatus {
        let end = Instant::now() + Duration::from_secs(60);
        let mut last = None;
        while Instant::now() < end {
            while let Ok(Some((d, _))) = self.diagnostics.take() {
                if let Some(s) = d.status.into_iter().find(|s| s.name == "pag: inference") {
                    if pred(&s) {
                        return s;
                    }
                    last = Some(s);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("timed out waiting for {what}; last status {last:#?}");
    }

    /// Mean, width and height of the next ponder map published after now.
    fn next_ponder(&self) -> (f64, u32, u32) {
        while let Ok(Some(_)) = self.ponder.take() {}
        let end = Instant::now() + Duration::from_secs(30);
        while Instant::now() < end {
            if let Ok(Some((img, _))) = self.ponder.take() {
                assert_eq!(img.encoding, "mono8");
                return (
                    img.data.iter().map(|&v| v as f64).sum::<f64>() / img.data.len() as f64,
                    img.width,
                    img.height,
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no ponder map");
    }
}

fn num(s: &DiagnosticStatus, key: &str) -> f64 {
    s.get(key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

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

    // Battery policy `scale`: ρ is capped by the battery fraction (0.2, floored at 0.25).
    assert!(peer.set("battery_policy", ParameterValue::String("scale".into())).0);
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let _ = peer.battery.publish(BatteryState { percentage: 0.2, present: true, ..Default::default() });
        let s = peer.wait_status("a status", |_| true);
        if s.get("last_frame_mode") == Some("budget:0.25") {
            assert_eq!(s.get("battery_fraction"), Some("0.200"));
            assert_eq!(s.get("effective_rho"), Some("0.25"));
            break;
        }
        assert!(Instant::now() < end, "battery cap not applied: {s:#?}");
    }
    assert!(peer.set("battery_policy", ParameterValue::String("off".into())).0);

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
