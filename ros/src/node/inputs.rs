//! The `pag-inputs` role: the three input subscriptions. Images are validated and decoded into
//! the latest-frame slot; camera_info is kept; BatteryState readings are checked and counted,
//! and the latest message is kept for the controller's battery cap.
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures::StreamExt;
use ros2_client::Subscription;
use tracing::debug;

use super::shared::{lock, unix_ms, InFrame, Shared};
use crate::config::{read_battery, BatteryReading};
use crate::control::BatteryMessage;
use crate::image::{to_rgb, Reject};
use crate::msg::{BatteryState, CameraInfo, Image};
use crate::stop::Stop;

/// The node's input subscriptions.
pub(crate) struct Inputs {
    pub images: Subscription<Image>,
    pub camera_infos: Subscription<CameraInfo>,
    pub batteries: Subscription<BatteryState>,
}

/// Runs until `stop` is requested; the subscriptions are dropped on return.
pub(crate) fn receive_inputs(shared: &Shared, inputs: Inputs, stop: &Stop) {
    let s = shared;
    let images = inputs.images.async_stream().for_each(|r| {
        s.stats.received.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok((img, _)) => match to_rgb(&img) {
                Ok(rgb) => {
                    let frame = InFrame { header: img.header, rgb, received: Instant::now(), received_unix: unix_ms() };
                    s.slot.put(frame);
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
    let camera_infos = inputs.camera_infos.async_stream().for_each(|r| {
        if let Ok((info, _)) = r {
            s.stats.camera_info_received.fetch_add(1, Ordering::Relaxed);
            *lock(&s.camera_info) = Some(info);
        }
        futures::future::ready(())
    });
    let batteries = inputs.batteries.async_stream().for_each(|r| {
        s.stats.battery_received.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok((b, _)) => {
                // Every message is the controller's latest (it counts and ignores NaN or
                // invalid charges itself, and keeps the last valid one until it goes stale).
                s.stats.set_battery_message(BatteryMessage {
                    percentage: b.percentage,
                    power_supply_status: b.power_supply_status,
                    received: Instant::now(),
                });
                match read_battery(b.percentage) {
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
                }
            }
            Err(_) => {
                s.stats.battery_undecodable.fetch_add(1, Ordering::Relaxed);
            }
        }
        futures::future::ready(())
    });
    futures::executor::block_on(async {
        let all = futures::future::join3(images, camera_infos, batteries);
        futures::pin_mut!(all);
        futures::future::select(all, stop.requested()).await;
    });
}
