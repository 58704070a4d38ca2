//! DDS wiring: topics, QoS, parameter services, the receive side that validates frames into
//! the latest-frame slot, the inference thread, the diagnostics publisher and the optional
//! synthetic camera. Thin: the logic lives in the other modules.
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use futures::StreamExt;
use pag_runtime::{Execution, PagModel, Session};
use ros2_client::qos::{Durability, History, WhenFull};
use ros2_client::{
    Context, ContextOptions, MessageTypeName, Name, Node, NodeName, NodeOptions, ParameterValue, Publisher, QosProfile,
};
use tracing::{debug, error, info, warn};

use crate::config::{read_battery, BatteryReading, Config, P_MODEL_PATH};
use crate::convert;
use crate::image::{to_rgb, Reject};
use crate::msg::{self, BatteryState, CameraInfo, DiagnosticArray, DiagnosticStatus, Header, Image, KeyValue, Time};
use crate::slot::{LatestSlot, Taken};
use crate::stats::{diagnostic_status, DiagContext, LastFrame, Previous, Stats};
use crate::synthetic::SyntheticCamera;

/// Sensor-data QoS (ROS `rmw_qos_profile_sensor_data`): best effort, keep last 5, volatile.
pub fn sensor_qos() -> QosProfile {
    QosProfile::subscription_default()
        .reliability_best_effort()
        .history(History::KeepLast { depth: 5 })
        .durability(Durability::Volatile)
}

/// QoS of the image outputs: reliable (matches reliable and best-effort subscribers), keep
/// last 5, volatile, and never blocking the inference thread: when a slow reliable reader has
/// 5 unacknowledged samples the write fails at once and is counted as a publish failure.
pub fn output_qos() -> QosProfile {
    QosProfile::publisher_default()
        .reliability_reliable(WhenFull::Fail)
        .history(History::KeepLast { depth: 5 })
        .durability(Durability::Volatile)
}

/// QoS of `/diagnostics`: reliable, keep last 10 (as `diagnostic_updater`).
pub fn diagnostics_qos() -> QosProfile {
    output_qos().history(History::KeepLast { depth: 10 })
}

/// Settings of the synthetic camera.
#[derive(Debug, Clone)]
pub struct SyntheticSettings {
    pub width: u32,
    pub height: u32,
    pub rate_hz: f64,
    pub seed: u64,
}

/// Everything `run` needs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub namespace: String,
    pub node_name: String,
    pub domain_id: u16,
    pub image_topic: String,
    pub camera_info_topic: String,
    pub battery_topic: String,
    /// Exit after this many processed frames.
    pub frames: Option<u64>,
    pub synthetic: Option<SyntheticSettings>,
    pub diagnostics_period: Duration,
    pub stale_after: Duration,
}

/// A decoded frame waiting in the slot.
struct InFrame {
    header: Header,
    rgb: ndarray::Array3<u8>,
    received: Instant,
    /// Wall clock at reception (for cross-process latency breakdowns on one machine).
    received_unix: f64,
}

fn unix_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// State shared by the node's threads.
struct Shared {
    config: Mutex<Config>,
    generation: AtomicU64,
    /// Models that passed validation, by path (the validator loads; the inference thread uses).
    models: Mutex<Vec<(String, Arc<PagModel>)>>,
    stats: Stats,
    slot: LatestSlot<InFrame>,
    camera_info: Mutex<Option<CameraInfo>>,
    /// The model the inference thread runs: (path, whole-network dense MACs).
    current_model: Mutex<(String, u64)>,
    stop: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn load_model(path: &str) -> Result<Arc<PagModel>, String> {
    PagModel::load_with(path, Execution::Sparse).map(Arc::new).map_err(|e| format!("cannot load model {path}: {e}"))
}

impl Shared {
    fn model(&self, path: &str) -> Result<Arc<PagModel>, String> {
        if let Some((_, m)) = lock(&self.models).iter().find(|(p, _)| p == path) {
            return Ok(m.clone());
        }
        let m = load_model(path)?;
        let mut models = lock(&self.models);
        models.push((path.to_owned(), m.clone()));
        if models.len() > 2 {
            models.remove(0);
        }
        Ok(m)
    }

    fn validate(&self, name: &str, value: &ParameterValue) -> Result<(), String> {
        lock(&self.config).validate(name, value)?;
        if let (P_MODEL_PATH, ParameterValue::String(p)) = (name, value) {
            self.model(p)?;
        }
        Ok(())
    }

    fn apply(&self, name: &str, value: &ParameterValue) -> Result<(), String> {
        lock(&self.config).set(name, value)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        info!("parameter {name} = {value:?}");
        Ok(())
    }
}

fn model_name(path: &str) -> String {
    Path::new(path).file_name().map_or(path.to_owned(), |f| f.to_string_lossy().into_owned())
}

/// The output publishers.
struct Outputs {
    labels: Publisher<Image>,
    segmentation: Publisher<Image>,
    depth: Publisher<Image>,
    normals: Publisher<Image>,
    ponder: Publisher<Image>,
    camera_info: Publisher<CameraInfo>,
    timing: Publisher<DiagnosticArray>,
}

fn publisher<M: serde::Serialize>(
    node: &mut Node,
    name: &str,
    ty: MessageTypeName,
    qos: &QosProfile,
) -> anyhow::Result<Publisher<M>> {
    let topic = node
        .create_topic(&Name::parse(name).map_err(|e| anyhow!("bad topic name {name}: {e:?}"))?, ty, qos)
        .map_err(|e| anyhow!("cannot create topic {name}: {e:?}"))?;
    node.create_publisher(&topic, None).map_err(|e| anyhow!("cannot create publisher {name}: {e:?}"))
}

fn subscription<M: 'static>(
    node: &mut Node,
    name: &str,
    ty: MessageTypeName,
    qos: &QosProfile,
) -> anyhow::Result<ros2_client::Subscription<M>> {
    let topic = node
        .create_topic(&Name::parse(name).map_err(|e| anyhow!("bad topic name {name}: {e:?}"))?, ty, qos)
        .map_err(|e| anyhow!("cannot create topic {name}: {e:?}"))?;
    node.create_subscription(&topic, None).map_err(|e| anyhow!("cannot subscribe to {name}: {e:?}"))
}

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Summary {
    pub processed: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub elapsed: Duration,
}

/// Runs the node until `settings.frames` frames are processed (forever when `None`).
pub fn run(settings: Settings) -> anyhow::Result<Summary> {
    let config = settings.config.clone();
    let first_model = load_model(&config.model_path).map_err(|e| anyhow!(e))?;
    let hfov = first_model.info.camera_hfov_deg.unwrap_or(pag_models::DEFAULT_HFOV_DEG);
    let dense_macs = first_model.dense_macs;
    let shared = Arc::new(Shared {
        config: Mutex::new(config.clone()),
        generation: AtomicU64::new(1),
        models: Mutex::new(vec![(config.model_path.clone(), first_model)]),
        stats: Stats::default(),
        slot: LatestSlot::new(),
        camera_info: Mutex::new(None),
        current_model: Mutex::new((config.model_path.clone(), dense_macs)),
        stop: AtomicBool::new(false),
    });

    let context = Context::with_options(ContextOptions::new().domain_id(settings.domain_id))
        .map_err(|e| anyhow!("cannot start DDS: {e:?}"))?;
    let mut options = NodeOptions::new().enable_rosout(false).start_parameter_services(true);
    for (name, value) in config.parameters() {
        options = options.declare_parameter(name, value);
    }
    let (v, a) = (shared.clone(), shared.clone());
    options = options
        .parameter_validator(Box::new(move |name, value| v.validate(name, value)))
        .parameter_set_action(Box::new(move |name, value| a.apply(name, value)));
    let node_name = NodeName::new(&settings.namespace, &settings.node_name)
        .map_err(|e| anyhow!("bad node name {}/{}: {e:?}", settings.namespace, settings.node_name))?;
    let mut node = context.new_node(node_name, options).map_err(|e| anyhow!("cannot create node: {e:?}"))?;
    let hardware_id = node.fully_qualified_name();

    let qos = output_qos();
    let outputs = Outputs {
        labels: publisher(&mut node, "labels", msg::image_type(), &qos)?,
        segmentation: publisher(&mut node, "segmentation", msg::image_type(), &qos)?,
        depth: publisher(&mut node, "depth", msg::image_type(), &qos)?,
        normals: publisher(&mut node, "normals", msg::image_type(), &qos)?,
        ponder: publisher(&mut node, "ponder", msg::image_type(), &qos)?,
        camera_info: publisher(&mut node, "camera_info", msg::camera_info_type(), &qos)?,
        timing: publisher(&mut node, "frame_timing", msg::diagnostic_array_type(), &qos)?,
    };
    let diagnostics: Publisher<DiagnosticArray> =
        publisher(&mut node, "/diagnostics", msg::diagnostic_array_type(), &diagnostics_qos())?;
    let sensor = sensor_qos();
    let images = subscription::<Image>(&mut node, &settings.image_topic, msg::image_type(), &sensor)?;
    let infos = subscription::<CameraInfo>(&mut node, &settings.camera_info_topic, msg::camera_info_type(), &sensor)?;
    let batteries =
        subscription::<BatteryState>(&mut node, &settings.battery_topic, msg::battery_state_type(), &sensor)?;
    let spinner = node.spinner().map_err(|e| anyhow!("cannot start the spinner: {e:?}"))?;
    info!(
        "node {hardware_id} on domain {}: {} -> {}/{{labels,segmentation,depth,normals,ponder,camera_info}}",
        settings.domain_id, settings.image_topic, settings.namespace
    );

    // DDS receive side: the three inputs.
    let rx = shared.clone();
    std::thread::Builder::new().name("pag-dds".into()).spawn(move || {
        let s = &rx;
        let image_loop = images.async_stream().for_each(|r| {
            s.stats.received.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok((img, _)) => match to_rgb(&img) {
                    Ok(rgb) => {
                        s.slot.put(InFrame {
                            header: img.header,
                            rgb,
                            received: Instant::now(),
                            received_unix: unix_ms(),
                        });
                    }
                    Err(why) => {
                        s.stats.reject(why);
                        debug!(
                            "rejected image {}x{} {:?} step {} len {}: {why}",
                            img.width,
                            img.height,
                            img.encoding,
                            img.step,
                            img.data.len()
                        );
                    }
                },
                Err(e) => {
                    s.stats.reject(Reject::Undecodable);
                    debug!("undecodable image: {e:?}");
                }
            }
            futures::future::ready(())
        });
        let info_loop = infos.async_stream().for_each(|r| {
            if let Ok((info, _)) = r {
                s.stats.camera_info_received.fetch_add(1, Ordering::Relaxed);
                *lock(&s.camera_info) = Some(info);
            }
            futures::future::ready(())
        });
        let battery_loop = batteries.async_stream().for_each(|r| {
            s.stats.battery_received.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok((b, _)) => match read_battery(b.percentage) {
                    BatteryReading::Fraction(f) => s.stats.set_battery(Some(f)),
                    BatteryReading::Percent(f) => {
                        s.stats.battery_percent_scaled.fetch_add(1, Ordering::Relaxed);
                        s.stats.set_battery(Some(f));
                    }
                    BatteryReading::Unknown => {
                        s.stats.battery_unknown.fetch_add(1, Ordering::Relaxed);
                        s.stats.set_battery(None);
                    }
                    BatteryReading::Invalid => {
                        s.stats.battery_invalid.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Err(_) => {
                    s.stats.battery_undecodable.fetch_add(1, Ordering::Relaxed);
                }
            }
            futures::future::ready(())
        });
        futures::executor::block_on(async {
            futures::join!(image_loop, info_loop, battery_loop);
        });
    })?;
    // Parameter services on their own thread: validating a new `model_path` loads the model,
    // which must not stall the inputs.
    std::thread::Builder::new().name("pag-parameters".into()).spawn(move || {
        if let Err(e) = futures::executor::block_on(spinner.spin()) {
            error!("spinner stopped: {e:?}");
        }
    })?;

    // Diagnostics publisher.
    let ds = shared.clone();
    let period = settings.diagnostics_period;
    let stale_after = settings.stale_after.as_secs_f64();
    let hw = hardware_id.clone();
    let diag_thread = std::thread::Builder::new().name("pag-diagnostics".into()).spawn(move || {
        let mut prev = Previous::default();
        let mut next = Instant::now() + period;
        loop {
            let stop = ds.stop.load(Ordering::SeqCst);
            if !stop {
                std::thread::sleep(next.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
                if Instant::now() < next {
                    continue;
                }
            }
            next += period;
            let config = lock(&ds.config).clone();
            let (path, dense_macs) = lock(&ds.current_model).clone();
            let name = model_name(&path);
            let ctx = DiagContext {
                config: &config,
                model_name: &name,
                model_dense_macs: dense_macs,
                dropped: ds.slot.dropped(),
                hardware_id: &hw,
                stale_after_s: stale_after,
            };
            let status = diagnostic_status(&ds.stats, &ctx, &mut prev);
            let array = DiagnosticArray {
                header: Header { stamp: Time::now(), frame_id: String::new() },
                status: vec![status],
            };
            if diagnostics.publish(array).is_err() {
                ds.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
            }
            if stop {
                break;
            }
        }
    })?;

    // Synthetic camera: its own participant, publishing on the camera topics.
    let camera_thread = match settings.synthetic.clone() {
        None => None,
        Some(syn) => {
            let cs = shared.clone();
            let domain = settings.domain_id;
            let (image_topic, info_topic) = (settings.image_topic.clone(), settings.camera_info_topic.clone());
            Some(std::thread::Builder::new().name("pag-synthetic-camera".into()).spawn(
                move || -> anyhow::Result<()> {
                    let context = Context::with_options(ContextOptions::new().domain_id(domain))
                        .map_err(|e| anyhow!("cannot start DDS: {e:?}"))?;
                    let mut node = context
                        .new_node(
                            NodeName::new("/", "pag_synthetic_camera").expect("valid name"),
                            NodeOptions::new().enable_rosout(false).start_parameter_services(false),
                        )
                        .map_err(|e| anyhow!("cannot create the synthetic camera node: {e:?}"))?;
                    let image_pub: Publisher<Image> =
                        publisher(&mut node, &image_topic, msg::image_type(), &sensor_qos())?;
                    let info_pub: Publisher<CameraInfo> =
                        publisher(&mut node, &info_topic, msg::camera_info_type(), &sensor_qos())?;
                    let mut camera = SyntheticCamera::new(syn.width, syn.height, hfov, syn.seed);
                    info!("synthetic camera {}x{} at {} Hz on {image_topic}", syn.width, syn.height, syn.rate_hz);
                    let period = Duration::from_secs_f64(1.0 / syn.rate_hz.max(0.01));
                    let start = Instant::now();
                    let mut n = 0u64;
                    while !cs.stop.load(Ordering::SeqCst) {
                        let (image, info) = camera.capture((n as f64 / syn.rate_hz) as f32, Time::now());
                        let _ = info_pub.publish(info);
                        let _ = image_pub.publish(image);
                        n += 1;
                        let next = start + period.mul_f64(n as f64);
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        }
                    }
                    Ok(())
                },
            )?)
        }
    };

    let summary = inference_loop(&shared, &node, outputs, settings.frames);
    shared.stop.store(true, Ordering::SeqCst);
    shared.slot.close();
    let _ = diag_thread.join();
    if let Some(t) = camera_thread {
        match t.join() {
            Ok(Err(e)) => error!("synthetic camera: {e:#}"),
            Err(_) => error!("synthetic camera panicked"),
            Ok(Ok(())) => {}
        }
    }
    // Let reliable writers deliver the last frame before the participant goes away.
    std::thread::sleep(Duration::from_millis(300));
    drop(node);
    summary
}

fn count<D>(stats: &Stats, r: ros2_client::WriteResult<(), D>) {
    if r.is_err() {
        stats.publish_failures.fetch_add(1, Ordering::Relaxed);
    }
}

fn inference_loop(shared: &Shared, node: &Node, out: Outputs, frames: Option<u64>) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let mut generation = 0;
    let mut config = lock(&shared.config).clone();
    let mut model_path = config.model_path.clone();
    let mut model = shared.model(&model_path).map_err(|e| anyhow!(e))?;
    let mut session = Session::new(model.clone()).context("cannot start a session")?;
    let palette = |m: &PagModel| -> Vec<[u8; 3]> { m.info.palette.clone() };
    let mut colours = palette(&model);
    loop {
        if frames.is_some_and(|n| shared.stats.processed.load(Ordering::Relaxed) >= n) {
            break;
        }
        let frame = match shared.slot.take_timeout(Duration::from_millis(200)) {
            Taken::Item(f) => f,
            Taken::Timeout => continue,
            Taken::Closed => break,
        };
        let g = shared.generation.load(Ordering::SeqCst);
        if g != generation {
            generation = g;
            config = lock(&shared.config).clone();
            if config.model_path != model_path {
                match shared
                    .model(&config.model_path)
                    .and_then(|m| Session::new(m.clone()).map(|s| (m, s)).map_err(|e| e.to_string()))
                {
                    Ok((m, s)) => {
                        info!("switched to model {}", config.model_path);
                        *lock(&shared.current_model) = (config.model_path.clone(), m.dense_macs);
                        model = m;
                        model_path = config.model_path.clone();
                        session = s;
                        colours = palette(&model);
                    }
                    Err(e) => shared.stats.record_error(e),
                }
            }
            session.set_resolution(config.output_resolution);
        }
        let mode = config.effective_mode(shared.stats.battery());
        session.set_mode(mode);
        let (in_h, in_w, _) = frame.rgb.dim();
        let t0 = Instant::now();
        let result = session.run(frame.rgb.view());
        let inference_ms = t0.elapsed().as_secs_f64() * 1e3;
        let mut o = match result {
            Ok(o) => o,
            Err(e) => {
                warn!("inference failed: {e}");
                shared.stats.record_error(e.to_string());
                continue;
            }
        };
        let t1 = Instant::now();
        crate::config::limit_depth(&mut o.depth, config.max_depth_m);
        let h = &frame.header;
        let (oh, ow) = o.labels.dim();
        let p = config.publish;
        let mut marks = [0f64; 5];
        let mark = |i: usize, marks: &mut [f64; 5]| marks[i] = t1.elapsed().as_secs_f64() * 1e3;
        // Outputs nobody subscribes to (no matched DDS reader) are neither built nor published.
        let wanted = |p: &Publisher<Image>| has_subscriber(p, node);
        if p.labels && wanted(&out.labels) {
            count(&shared.stats, out.labels.publish(convert::mono8(h, &o.labels)));
        }
        mark(0, &mut marks);
        if p.segmentation && wanted(&out.segmentation) {
            count(&shared.stats, out.segmentation.publish(convert::colorized(h, &o.labels, &colours)));
        }
        mark(1, &mut marks);
        if p.depth && wanted(&out.depth) {
            count(&shared.stats, out.depth.publish(convert::depth32(h, &o.depth)));
        }
        mark(2, &mut marks);
        if p.normals && wanted(&out.normals) {
            count(&shared.stats, out.normals.publish(convert::normals32(h, &o.normals)));
        }
        mark(3, &mut marks);
        if p.ponder && wanted(&out.ponder) {
            if let Some(map) = session.ponder_map() {
                count(&shared.stats, out.ponder.publish(convert::mono8(h, &convert::resize_nearest(&map, oh, ow))));
            }
        }
        mark(4, &mut marks);
        debug!("publish marks (ms after inference: labels, segmentation, depth, normals, ponder): {marks:.3?}");
        let info = lock(&shared.camera_info).clone();
        let info = info.filter(|_| has_subscriber(&out.camera_info, node));
        if let Some(ci) = info.and_then(|i| convert::scaled_camera_info(&i, h, ow as u32, oh as u32)) {
            count(&shared.stats, out.camera_info.publish(ci));
        }
        let total_ms = frame.received.elapsed().as_secs_f64() * 1e3;
        let telemetry = session.telemetry();
        let last = LastFrame {
            mode: mode.to_string(),
            rho: mode.rho_input(),
            inference_ms,
            gated_executed_macs: telemetry.map_or(model.dense_macs, |t| t.executed_macs_total),
            gated_dense_macs: telemetry.map_or(model.dense_macs, |t| t.dense_macs_total),
            input_size: (in_w as u32, in_h as u32),
            output_size: (ow as u32, oh as u32),
        };
        shared.stats.record_frame(last, total_ms, config.deadline_ms);
        if p.timing {
            let kv = |k: &str, v: f64| KeyValue { key: k.into(), value: format!("{v:.4}") };
            let status = DiagnosticStatus {
                level: DiagnosticStatus::OK,
                name: "pag: frame timing".into(),
                message: mode.to_string(),
                hardware_id: String::new(),
                values: vec![
                    kv("inference_ms", inference_ms),
                    kv("queue_ms", (t0 - frame.received).as_secs_f64() * 1e3),
                    kv("total_ms", total_ms),
                    kv("publish_ms", t1.elapsed().as_secs_f64() * 1e3),
                    kv("received_unix_ms", frame.received_unix),
                    kv("published_unix_ms", unix_ms()),
                ],
            };
            count(&shared.stats, out.timing.publish(DiagnosticArray { header: h.clone(), status: vec![status] }));
        }
    }
    Ok(Summary {
        processed: shared.stats.processed.load(Ordering::Relaxed),
        dropped: shared.slot.dropped(),
        rejected: shared.stats.rejected_total(),
        elapsed: start.elapsed(),
    })
}

/// Whether `publisher` has a matched reader now. ros2-client's `get_subscription_count` logs an
/// ERROR for a publisher that has never been matched (every frame, for every output, while
/// nobody listens); its `wait_for_subscription` future is ready exactly when a reader is matched,
/// so polling it once answers without the noise.
fn has_subscriber<M: serde::Serialize>(publisher: &Publisher<M>, node: &Node) -> bool {
    use futures::FutureExt;
    publisher.wait_for_subscription(node).now_or_never().is_some() && publisher.get_subscription_count(node) > 0
}
