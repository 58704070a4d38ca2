//! ROS 2 message types used by the node, as serde structs in ROS field order (CDR encoding is
//! positional). `ros2-client` ships no `sensor_msgs`/`diagnostic_msgs`, so they live here.
//! Byte payloads use `serde_bytes` so that they (de)serialise as one block, not per element.
use ros2_client::{Message, MessageTypeName};
use serde::{Deserialize, Serialize};

/// `builtin_interfaces/Time`, kept as the two wire fields so that headers pass through bit-exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Time {
    pub sec: i32,
    pub nanosec: u32,
}

impl Time {
    /// Wall-clock now.
    pub fn now() -> Time {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        Time { sec: d.as_secs() as i32, nanosec: d.subsec_nanos() }
    }

    pub fn as_nanos(&self) -> i64 {
        self.sec as i64 * 1_000_000_000 + self.nanosec as i64
    }
}

/// `std_msgs/Header`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub stamp: Time,
    pub frame_id: String,
}

/// `sensor_msgs/Image`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Image {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub encoding: String,
    pub is_bigendian: u8,
    pub step: u32,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// `sensor_msgs/RegionOfInterest`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RegionOfInterest {
    pub x_offset: u32,
    pub y_offset: u32,
    pub height: u32,
    pub width: u32,
    pub do_rectify: bool,
}

/// `sensor_msgs/CameraInfo`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    pub header: Header,
    pub height: u32,
    pub width: u32,
    pub distortion_model: String,
    pub d: Vec<f64>,
    pub k: [f64; 9],
    pub r: [f64; 9],
    pub p: [f64; 12],
    pub binning_x: u32,
    pub binning_y: u32,
    pub roi: RegionOfInterest,
}

/// `sensor_msgs/BatteryState` (ROS 2 field order).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BatteryState {
    pub header: Header,
    pub voltage: f32,
    pub temperature: f32,
    pub current: f32,
    pub charge: f32,
    pub capacity: f32,
    pub design_capacity: f32,
    /// 0–1, NaN if unknown.
    pub percentage: f32,
    pub power_supply_status: u8,
    pub power_supply_health: u8,
    pub power_supply_technology: u8,
    pub present: bool,
    pub cell_voltage: Vec<f32>,
    pub cell_temperature: Vec<f32>,
    pub location: String,
    pub serial_number: String,
}

/// `diagnostic_msgs/KeyValue`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

/// `diagnostic_msgs/DiagnosticStatus`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticStatus {
    /// [`DiagnosticStatus::OK`], `WARN`, `ERROR` or `STALE`.
    pub level: u8,
    pub name: String,
    pub message: String,
    pub hardware_id: String,
    pub values: Vec<KeyValue>,
}

impl DiagnosticStatus {
    pub const OK: u8 = 0;
    pub const WARN: u8 = 1;
    pub const ERROR: u8 = 2;
    pub const STALE: u8 = 3;

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.iter().find(|kv| kv.key == key).map(|kv| kv.value.as_str())
    }
}

/// `diagnostic_msgs/DiagnosticArray`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiagnosticArray {
    pub header: Header,
    pub status: Vec<DiagnosticStatus>,
}

impl Message for Image {}
impl Message for CameraInfo {}
impl Message for BatteryState {}
impl Message for DiagnosticArray {}

/// ROS type names (the DDS type name becomes e.g. `sensor_msgs::msg::dds_::Image_`).
pub fn image_type() -> MessageTypeName {
    MessageTypeName::new("sensor_msgs", "Image")
}
pub fn camera_info_type() -> MessageTypeName {
    MessageTypeName::new("sensor_msgs", "CameraInfo")
}
pub fn battery_state_type() -> MessageTypeName {
    MessageTypeName::new("sensor_msgs", "BatteryState")
}
pub fn diagnostic_array_type() -> MessageTypeName {
    MessageTypeName::new("diagnostic_msgs", "DiagnosticArray")
}

/// Image encodings (`sensor_msgs/image_encodings.hpp` spellings).
pub mod encodings {
    pub const RGB8: &str = "rgb8";
    pub const BGR8: &str = "bgr8";
    pub const RGBA8: &str = "rgba8";
    pub const BGRA8: &str = "bgra8";
    pub const MONO8: &str = "mono8";
    pub const TYPE_32FC1: &str = "32FC1";
    pub const TYPE_32FC3: &str = "32FC3";
}
