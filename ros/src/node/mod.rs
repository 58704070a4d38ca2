//! DDS wiring. `run` creates the node, its topics and parameter services, starts one thread per
//! role and, when the stop is requested, shuts down in order: no more frames are taken (the one
//! being processed is finished, one waiting is dropped), every thread is joined, and the DDS
//! participants are disposed so that peers see the node leave at once rather than at lease
//! expiry. The roles:
//!
//! | thread | function | does |
//! |---|---|---|
//! | `pag-inputs` | [`inputs::receive_inputs`] | image / camera_info / battery subscriptions → slot, stats |
//! | `pag-parameters` | ros2-client's `Spinner::spin` | parameter services, discovery bookkeeping |
//! | `pag-inference` | [`inference::run_inference`] | slot → ρ controller → model → outputs |
//! | `pag-diagnostics` | [`diagnostics::publish_diagnostics`] | `/diagnostics` every period |
//! | `pag-camera` | [`camera::run_synthetic_camera`] | the synthetic camera (`--synthetic`) |
//!
//! The caller's thread waits for the stop and then runs the shutdown.
mod camera;
mod diagnostics;
mod inference;
mod inputs;
mod shared;

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use ros2_client::dds::rustdds::TopicDescription;
use ros2_client::qos::{Durability, History, WhenFull};
use ros2_client::{
    Context, ContextOptions, MessageTypeName, Name, Node, NodeName, NodeOptions, Publisher, QosProfile, Subscription,
};
use tracing::{error, info};

use crate::msg::{self, DiagnosticArray};
use crate::stop::Stop;
use camera::{run_synthetic_camera, CameraSetup};
use diagnostics::{publish_diagnostics, DiagnosticsSetup};
use inference::{run_inference, InferenceSetup, Output, Outputs};
use inputs::{receive_inputs, Inputs};
use shared::{load_model, Shared};

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
    pub config: crate::config::Config,
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

/// What a finished run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Images received; each was processed, dropped (replaced in the latest-frame slot, or
    /// waiting there at the stop), rejected, or failed in inference.
    pub received: u64,
    pub processed: u64,
    pub inference_errors: u64,
    pub dropped: u64,
    pub rejected: u64,
    /// From the start of `run` to the stop request.
    pub elapsed: Duration,
    /// Why the node stopped.
    pub reason: String,
    /// From the stop request to every thread joined and the participants disposed.
    pub shutdown: Duration,
}

fn topic(
    node: &mut Node,
    name: &str,
    ty: MessageTypeName,
    qos: &QosProfile,
) -> anyhow::Result<ros2_client::dds::rustdds::Topic> {
    node.create_topic(&Name::parse(name).map_err(|e| anyhow!("bad topic name {name}: {e:?}"))?, ty, qos)
        .map_err(|e| anyhow!("cannot create topic {name}: {e:?}"))
}

pub(crate) fn publisher<M: serde::Serialize>(
    node: &mut Node,
    name: &str,
    ty: MessageTypeName,
    qos: &QosProfile,
) -> anyhow::Result<Publisher<M>> {
    let topic = topic(node, name, ty, qos)?;
    node.create_publisher(&topic, None).map_err(|e| anyhow!("cannot create publisher {name}: {e:?}"))
}

fn output<M: serde::Serialize>(
    node: &mut Node,
    name: &str,
    ty: MessageTypeName,
    qos: &QosProfile,
) -> anyhow::Result<Output<M>> {
    let topic = topic(node, name, ty, qos)?;
    let publisher =
        node.create_publisher(&topic, None).map_err(|e| anyhow!("cannot create publisher {name}: {e:?}"))?;
    Ok(Output { publisher, dds_topic: topic.name() })
}

fn subscription<M: 'static>(
    node: &mut Node,
    name: &str,
    ty: MessageTypeName,
    qos: &QosProfile,
) -> anyhow::Result<Subscription<M>> {
    let topic = topic(node, name, ty, qos)?;
    node.create_subscription(&topic, None).map_err(|e| anyhow!("cannot subscribe to {name}: {e:?}"))
}

fn spawn<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<JoinHandle<T>> {
    std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| anyhow!("cannot start thread {name}: {e}"))
}

/// A role that fails stops the node (its error is returned when the thread is joined).
fn stop_on_error<T>(result: anyhow::Result<T>, stop: &Stop, role: &str) -> anyhow::Result<T> {
    if let Err(e) = &result {
        stop.request(format!("{role} failed: {e:#}"));
    }
    result
}

/// Joins `thread`; a panic is logged and turned into an error.
fn join<T>(name: &str, thread: JoinHandle<T>) -> anyhow::Result<T> {
    thread.join().map_err(|_| {
        error!("thread {name} panicked");
        anyhow!("thread {name} panicked")
    })
}

/// Runs the node until `stop` is requested (by the caller, e.g. on a signal, or by the node
/// itself when `settings.frames` frames are processed or a role fails), then shuts it down.
pub fn run(settings: Settings, stop: &Stop) -> anyhow::Result<Summary> {
    let start = Instant::now();
    let config = settings.config.clone();
    let first_model = load_model(&config.model_path, config.load_options()).map_err(|e| anyhow!(e))?;
    info!("model {} on {} inference threads", config.model_path, config.resolved_threads());
    // With the controller on from the start, its profile is loaded or measured before the node
    // and its camera start (a measurement then has the machine to itself).
    let profile = if config.controller.enabled {
        Some(
            crate::control::prepare_profile(&config.controller, &config.model_path, config.threads)
                .map_err(|e| anyhow!("controller: {e}"))?,
        )
    } else {
        None
    };
    let hfov_deg = first_model.info.camera_hfov_deg.unwrap_or(pag_models::DEFAULT_HFOV_DEG);
    let shared = Arc::new(Shared::new(config.clone(), first_model));

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
        labels: output(&mut node, "labels", msg::image_type(), &qos)?,
        segmentation: output(&mut node, "segmentation", msg::image_type(), &qos)?,
        depth: output(&mut node, "depth", msg::image_type(), &qos)?,
        normals: output(&mut node, "normals", msg::image_type(), &qos)?,
        ponder: output(&mut node, "ponder", msg::image_type(), &qos)?,
        camera_info: output(&mut node, "camera_info", msg::camera_info_type(), &qos)?,
        timing: output(&mut node, "frame_timing", msg::diagnostic_array_type(), &qos)?,
    };
    let diagnostics: Publisher<DiagnosticArray> =
        publisher(&mut node, "/diagnostics", msg::diagnostic_array_type(), &diagnostics_qos())?;
    let sensor = sensor_qos();
    let inputs = Inputs {
        images: subscription(&mut node, &settings.image_topic, msg::image_type(), &sensor)?,
        camera_infos: subscription(&mut node, &settings.camera_info_topic, msg::camera_info_type(), &sensor)?,
        batteries: subscription(&mut node, &settings.battery_topic, msg::battery_state_type(), &sensor)?,
    };
    let spinner = node.spinner().map_err(|e| anyhow!("cannot start the spinner: {e:?}"))?;
    info!(
        "node {hardware_id} on domain {}: {} -> {}/{{labels,segmentation,depth,normals,ponder,camera_info}}",
        settings.domain_id, settings.image_topic, settings.namespace
    );

    let (s, st) = (shared.clone(), stop.clone());
    let inputs_thread = spawn("pag-inputs", move || receive_inputs(&s, inputs, &st))?;
    // Parameter services on their own thread: validating a new `model_path` loads the model,
    // which must not stall the inputs.
    let parameters_thread = spawn("pag-parameters", move || futures::executor::block_on(spinner.spin()))?;
    let setup = DiagnosticsSetup {
        publisher: diagnostics,
        period: settings.diagnostics_period,
        stale_after: settings.stale_after,
        hardware_id,
    };
    let (s, st) = (shared.clone(), stop.clone());
    let diagnostics_thread = spawn("pag-diagnostics", move || publish_diagnostics(&s, setup, &st))?;
    let camera_thread = match settings.synthetic.clone() {
        None => None,
        Some(syn) => {
            let setup = CameraSetup {
                settings: syn,
                domain_id: settings.domain_id,
                image_topic: settings.image_topic.clone(),
                camera_info_topic: settings.camera_info_topic.clone(),
                hfov_deg,
            };
            let st = stop.clone();
            Some(spawn("pag-camera", move || stop_on_error(run_synthetic_camera(setup, &st), &st, "synthetic camera"))?)
        }
    };
    let setup = InferenceSetup { outputs, participant: context.domain_participant(), frames: settings.frames, profile };
    let (s, st) = (shared.clone(), stop.clone());
    let inference_thread =
        spawn("pag-inference", move || stop_on_error(run_inference(&s, setup, &st), &st, "inference"))?;

    stop.wait();
    let stopped_at = Instant::now();
    let reason = stop.reason().unwrap_or_default();
    info!("stopping: {reason}");
    shared.slot.close();
    let mut failure = None;
    let outputs = join("pag-inference", inference_thread).and_then(|r| r);
    if let Some(t) = camera_thread {
        match join("pag-camera", t).and_then(|r| r) {
            Ok(n) => info!("synthetic camera published {n} frames"),
            Err(e) => failure = Some(e),
        }
    }
    join("pag-inputs", inputs_thread)?;
    shared.slot.discard();
    join("pag-diagnostics", diagnostics_thread)?;
    // Every DDS entity is released here, so the participant is disposed: peers are told it left.
    // Dropping the node also stops its spinner.
    let outputs = outputs.map(drop);
    drop(node);
    if let Err(e) = join("pag-parameters", parameters_thread)? {
        error!("parameter services stopped with an error: {e:?}");
    }
    drop(context);
    outputs?;
    if let Some(e) = failure {
        return Err(e);
    }
    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    Ok(Summary {
        received: count(&shared.stats.received),
        processed: count(&shared.stats.processed),
        inference_errors: count(&shared.stats.inference_errors),
        dropped: shared.slot.dropped(),
        rejected: shared.stats.rejected_total(),
        elapsed: stopped_at - start,
        reason,
        shutdown: stopped_at.elapsed(),
    })
}
