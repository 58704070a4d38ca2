//! The `pag-camera` role: the built-in synthetic camera on a DDS participant of its own,
//! publishing image + camera_info on the camera topics at a steady rate (deadline ticks, no
//! drift) until the stop request. Its participant is disposed when the role returns.
use std::time::{Duration, Instant};

use anyhow::anyhow;
use ros2_client::{Context, ContextOptions, NodeName, NodeOptions, Publisher};
use tracing::info;

use super::{publisher, sensor_qos, SyntheticSettings};
use crate::msg::{self, CameraInfo, Image, Time};
use crate::stop::Stop;
use crate::synthetic::SyntheticCamera;

/// Where and what the camera publishes.
pub(crate) struct CameraSetup {
    pub settings: SyntheticSettings,
    pub domain_id: u16,
    pub image_topic: String,
    pub camera_info_topic: String,
    pub hfov_deg: f32,
}

pub(crate) fn run_synthetic_camera(setup: CameraSetup, stop: &Stop) -> anyhow::Result<u64> {
    let syn = &setup.settings;
    let context = Context::with_options(ContextOptions::new().domain_id(setup.domain_id))
        .map_err(|e| anyhow!("cannot start DDS for the synthetic camera: {e:?}"))?;
    let mut node = context
        .new_node(
            NodeName::new("/", "pag_synthetic_camera").map_err(|e| anyhow!("{e:?}"))?,
            NodeOptions::new().enable_rosout(false).start_parameter_services(false),
        )
        .map_err(|e| anyhow!("cannot create the synthetic camera node: {e:?}"))?;
    let image_pub: Publisher<Image> = publisher(&mut node, &setup.image_topic, msg::image_type(), &sensor_qos())?;
    let info_pub: Publisher<CameraInfo> =
        publisher(&mut node, &setup.camera_info_topic, msg::camera_info_type(), &sensor_qos())?;
    let mut camera = SyntheticCamera::new(syn.width, syn.height, setup.hfov_deg, syn.seed);
    info!("synthetic camera {}x{} at {} Hz on {}", syn.width, syn.height, syn.rate_hz, setup.image_topic);
    let period = Duration::from_secs_f64(1.0 / syn.rate_hz.max(0.01));
    let start = Instant::now();
    let mut n = 0u64;
    while !stop.is_requested() {
        let (image, info) = camera.capture((n as f64 / syn.rate_hz) as f32, Time::now());
        let _ = info_pub.publish(info);
        let _ = image_pub.publish(image);
        n += 1;
        if stop.sleep_until(start + period.mul_f64(n as f64)) {
            break;
        }
    }
    Ok(n)
}
