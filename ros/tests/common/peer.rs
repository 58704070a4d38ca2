//! A ros2-client peer of the node, for the parameter and controller tests: parameter service
//! clients, `/diagnostics` and `ponder` subscriptions, a BatteryState publisher.
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

pub struct Peer {
    pub node: Node,
    pub set: ros2_client::Client<SetParametersRequest, SetParametersResponse>,
    pub get: ros2_client::Client<GetParametersRequest, GetParametersResponse>,
    pub diagnostics: ros2_client::Subscription<DiagnosticArray>,
    pub ponder: ros2_client::Subscription<Image>,
    pub battery: ros2_client::Publisher<BatteryState>,
}

pub fn call<Req: Message + Clone + 'static, Resp: Message + 'static>(
    c: &ros2_client::Client<Req, Resp>,
    req: Req,
) -> Resp {
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
    pub fn new(domain: u16) -> Peer {
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

    pub fn set(&self, name: &str, value: ParameterValue) -> (bool, String) {
        let r =
            call(&self.set, SetParametersRequest { parameter: vec![Parameter { name: name.into(), value }.into()] });
        let r = &r.results[0];
        (r.successful, r.reason.clone())
    }

    pub fn get(&self, name: &str) -> ParameterValue {
        let r = call(&self.get, GetParametersRequest { names: vec![name.into()] });
        r.values[0].clone().into()
    }

    /// Waits for a node status satisfying `pred`.
    pub fn wait_status(&self, what: &str, pred: impl Fn(&DiagnosticStatus) -> bool) -> DiagnosticStatus {
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
    pub fn next_ponder(&self) -> (f64, u32, u32) {
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

/// A numeric diagnostics value (NaN when missing).
pub fn num(s: &DiagnosticStatus, key: &str) -> f64 {
    s.get(key).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
}

/// Writes a device profile for the model at `model` with the given (ρ, median frame ms) points,
/// as `pag profile` would (made up: the controller's feedback corrects the numbers).
pub fn write_profile(path: &std::path::Path, model: &str, points: &[(f32, f64)]) {
    use pag_calibration::{
        sha256_hex, DeviceProfile, Energy, Machine, Method, ModelId, Point, SessionSettings, Stats, FORMAT,
        FORMAT_VERSION,
    };
    let bytes = std::fs::read(model).unwrap();
    let stats = |ms: f64| Stats { n: 10, median: ms, p10: ms, p90: ms, min: ms, max: ms, mad: 0.0 };
    let p = DeviceProfile {
        format: FORMAT.into(),
        version: FORMAT_VERSION,
        created_unix_s: 0,
        model: ModelId { path: model.into(), sha256: sha256_hex(&bytes), bytes: bytes.len() as u64 },
        machine: Machine { cpu_model: "test".into(), logical_cpus: 2, os: "linux".into(), arch: "x86_64".into() },
        session: SessionSettings {
            threads: 1,
            precision: "f32".into(),
            execution: "sparse".into(),
            input_hw: [240, 320],
        },
        method: Method {
            latency: "made up by the test".into(),
            warmup_frames: 0,
            frames_per_round: 10,
            rounds: 1,
            images: "none".into(),
        },
        points: points
            .iter()
            .map(|&(rho, ms)| Point {
                mode: format!("budget:{rho}"),
                rho: Some(rho),
                frame_ms: stats(ms),
                inference_ms: stats(ms),
                speedup_vs_rho1: points[0].1 / ms,
                mean_density: None,
                energy_mj_per_frame: None,
            })
            .collect(),
        native: None,
        energy: Energy { available: false, source: None, note: "test".into() },
    };
    p.save(path).unwrap();
}
