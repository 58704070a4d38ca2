//! The node's input messages on arbitrary bytes, decoded exactly as the node's subscriptions do
//! (RustDDS's CDR deserializer, chosen by the 2-byte encapsulation header that starts every
//! serialized payload on the wire) and then validated and converted as the node does:
//! `sensor_msgs/Image` → `image::to_rgb`; `CameraInfo` → `convert::scaled_camera_info`;
//! `BatteryState` → `config::read_battery`. The first byte picks the type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pag_ros::msg::{BatteryState, CameraInfo, Image};
use pag_ros::{config, convert, image};
use ros2_client::dds::rustdds::serialization::{deserialize_from_cdr_with_rep_id, RepresentationIdentifier};

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else { return };
    if rest.len() < 4 {
        return;
    }
    let Ok(rep) = RepresentationIdentifier::from_bytes(&rest[..2]) else { return };
    let payload = &rest[4..];
    match kind % 3 {
        0 => {
            if let Ok((img, _)) = deserialize_from_cdr_with_rep_id::<Image>(payload, rep) {
                if let Ok(rgb) = image::to_rgb(&img) {
                    assert_eq!(rgb.dim(), (img.height as usize, img.width as usize, 3));
                }
            }
        }
        1 => {
            if let Ok((info, _)) = deserialize_from_cdr_with_rep_id::<CameraInfo>(payload, rep) {
                let header = info.header.clone();
                for (w, h) in [(320, 240), (info.width, info.height), (1, 1), (u32::MAX, u32::MAX)] {
                    let _ = convert::scaled_camera_info(&info, &header, w, h);
                }
            }
        }
        _ => {
            if let Ok((b, _)) = deserialize_from_cdr_with_rep_id::<BatteryState>(payload, rep) {
                if let config::BatteryReading::Fraction(f) | config::BatteryReading::Percent(f) =
                    config::read_battery(b.percentage)
                {
                    assert!((0.0..=1.0).contains(&f), "battery fraction {f} out of range");
                }
            }
        }
    }
});
