//! The `pag-inference` role: takes frames from the latest-frame slot, picks the frame's mode (the
//! ρ controller's decision, or the fixed mode under the battery cap), runs the model, builds and
//! publishes the outputs that somebody reads, records the frame in the stats. When the
//! controller is switched on (or the model changes under it) without a usable profile, this
//! thread loads or measures one first (frames wait; the one taken meanwhile is dropped).
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use pag_runtime::controller::LatencyProfile;
use pag_runtime::{PagModel, Session};
use ros2_client::dds::rustdds::DomainParticipant;
use ros2_client::Publisher;
use tracing::{debug, error, info, warn};

use super::shared::{lock, unix_ms, Shared};
use crate::control::{self, NodeController};
use crate::convert;
use crate::msg::{CameraInfo, DiagnosticArray, DiagnosticStatus, Image, KeyValue};
use crate::slot::Taken;
use crate::stats::LastFrame;
use crate::stop::Stop;

/// An output publisher and its DDS topic name.
pub(crate) struct Output<M: serde::Serialize> {
    pub publisher: Publisher<M>,
    pub dds_topic: String,
}

/// The output publishers.
pub(crate) struct Outputs {
    pub labels: Output<Image>,
    pub segmentation: Output<Image>,
    pub depth: Output<Image>,
    pub normals: Output<Image>,
    pub ponder: Output<Image>,
    pub camera_info: Output<CameraInfo>,
    pub timing: Output<DiagnosticArray>,
}

/// Which DDS topics some reader in the domain subscribes to, from discovery (SEDP), read once per
/// frame. ros2-client's own matched-reader count logs an ERROR for a publisher that has never
/// been matched, and its `wait_for_subscription` registers a status channel per call that is
/// only freed at the next discovery event (it leaked ~2 kB per output per frame on a quiet
/// network).
struct Audience {
    topics: Vec<String>,
}

impl Audience {
    fn read(participant: &DomainParticipant) -> Audience {
        Audience {
            topics: participant
                .discovered_readers()
                .into_iter()
                .map(|r| r.subscription_topic_data.topic_name)
                .collect(),
        }
    }

    fn reads<M: serde::Serialize>(&self, output: &Output<M>) -> bool {
        self.topics.contains(&output.dds_topic)
    }
}

fn count<D>(shared: &Shared, r: ros2_client::WriteResult<(), D>) {
    if r.is_err() {
        shared.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the role needs besides the shared state.
pub(crate) struct InferenceSetup {
    pub outputs: Outputs,
    pub participant: DomainParticipant,
    /// Stop after this many processed frames.
    pub frames: Option<u64>,
    /// The controller's profile when it was on at start-up (loaded or measured before the node
    /// started taking frames).
    pub profile: Option<LatencyProfile>,
}

fn publish_controller_state(shared: &Shared, ctl: &NodeController) {
    shared.stats.set_controller_state(ctl.phase(), ctl.profile_description(), ctl.error());
}

/// Runs until the stop request (or until `frames` frames are processed, then requests the stop
/// itself). A frame being processed when the stop comes is finished; one still waiting in the
/// slot is dropped. Returns the publishers, so that the caller disposes them with the node.
pub(crate) fn run_inference(shared: &Shared, setup: InferenceSetup, stop: &Stop) -> anyhow::Result<Outputs> {
    let InferenceSetup { outputs: out, participant, frames, profile } = setup;
    let mut generation = 0;
    let mut config = lock(&shared.config).clone();
    let mut model_path = config.model_path.clone();
    let mut model = shared.model(&model_path).map_err(|e| anyhow!(e))?;
    let mut session = Session::new(model.clone()).context("cannot start a session")?;
    let palette = |m: &PagModel| -> Vec<[u8; 3]> { m.info.palette.clone() };
    let mut colours = palette(&model);
    let mut ctl = NodeController::new(&config.controller, &model_path).map_err(|e| anyhow!(e))?;
    if let Some(p) = profile {
        ctl.set_profile(Ok(p));
    }
    publish_controller_state(shared, &ctl);
    loop {
        if let Some(n) = frames.filter(|n| shared.stats.processed.load(Ordering::Relaxed) >= *n) {
            stop.request(format!("processed {n} frames"));
        }
        if stop.is_requested() {
            break;
        }
        // A timeout still looks at parameter changes (the controller may need profiling).
        let frame = match shared.slot.take_timeout(Duration::from_millis(500)) {
            Taken::Item(_) if stop.is_requested() => {
                shared.slot.count_dropped();
                break;
            }
            Taken::Item(f) => Some(f),
            Taken::Closed => break,
            Taken::Timeout => None,
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
            if let Err(e) = ctl.update(&config.controller, &model_path) {
                shared.stats.record_error(format!("controller: {e}"));
            }
            publish_controller_state(shared, &ctl);
        }
        if ctl.profile_needed() {
            let r = control::prepare_profile(&config.controller, &model_path, config.threads);
            if let Err(e) = &r {
                error!(
                    "controller: {e}; running the fixed mode until the model, controller_profile or rho_min changes"
                );
            }
            ctl.set_profile(r);
            publish_controller_state(shared, &ctl);
            if frame.is_some() {
                // It waited through the profiling: too old to process.
                shared.slot.count_dropped();
            }
            continue;
        }
        let Some(frame) = frame else { continue };
        // The controller observes the previous frame and picks this one's ρ (or just the
        // battery cap for the fixed mode). No allocation.
        let now = Instant::now();
        let battery = shared.stats.battery_message().map(|b| b.reading(now));
        let decision = ctl.decide(control::seconds_since(shared.stats.started, now), battery);
        let mode = ctl.mode(config.fixed_mode(), &decision);
        shared.stats.set_controller_snapshot(ctl.snapshot());
        session.set_mode(mode);
        let (in_h, in_w, _) = frame.rgb.dim();
        let t0 = Instant::now();
        let result = session.run(frame.rgb.view());
        let run_s = t0.elapsed().as_secs_f64();
        let inference_ms = run_s * 1e3;
        let mut o = match result {
            Ok(o) => {
                ctl.observe(run_s, mode);
                o
            }
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
        // Outputs nobody subscribes to are neither built nor published.
        let audience = Audience::read(&participant);
        if p.labels && audience.reads(&out.labels) {
            count(shared, out.labels.publisher.publish(convert::mono8(h, &o.labels)));
        }
        mark(0, &mut marks);
        if p.segmentation && audience.reads(&out.segmentation) {
            count(shared, out.segmentation.publisher.publish(convert::colorized(h, &o.labels, &colours)));
        }
        mark(1, &mut marks);
        if p.depth && audience.reads(&out.depth) {
            count(shared, out.depth.publisher.publish(convert::depth32(h, &o.depth)));
        }
        mark(2, &mut marks);
        if p.normals && audience.reads(&out.normals) {
            count(shared, out.normals.publisher.publish(convert::normals32(h, &o.normals)));
        }
        mark(3, &mut marks);
        if p.ponder && audience.reads(&out.ponder) {
            if let Some(map) = session.ponder_map() {
                let image = convert::mono8(h, &convert::resize_nearest(&map, oh, ow));
                count(shared, out.ponder.publisher.publish(image));
            }
        }
        mark(4, &mut marks);
        debug!("publish marks (ms after inference: labels, segmentation, depth, normals, ponder): {marks:.3?}");
        let info = lock(&shared.camera_info).clone().filter(|_| audience.reads(&out.camera_info));
        if let Some(ci) = info.and_then(|i| convert::scaled_camera_info(&i, h, ow as u32, oh as u32)) {
            count(shared, out.camera_info.publisher.publish(ci));
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
        shared.stats.record_frame(last, total_ms, config.deadline_ms());
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
            count(shared, out.timing.publisher.publish(DiagnosticArray { header: h.clone(), status: vec![status] }));
        }
    }
    Ok(out)
}
