//! The built-in synthetic camera: the procedural scene renderer flown along a smooth robot-like
//! trajectory, producing `sensor_msgs/Image` (rgb8) + `CameraInfo` exactly as a camera driver
//! would. The node publishes them on the camera topics from a separate DDS participant, so they
//! take the same path as a real camera's frames.
use pag_models::{Frame, Intrinsics, Scene, Trajectory};

use crate::convert::{pinhole_camera_info, rgb8};
use crate::msg::{CameraInfo, Header, Image, Time};

pub const FRAME_ID: &str = "camera_optical_frame";

pub struct SyntheticCamera {
    scene: Scene,
    trajectory: Trajectory,
    intrinsics: Intrinsics,
    frame: Frame,
}

impl SyntheticCamera {
    /// A `width × height` camera with horizontal field of view `hfov_deg` in scene `seed`.
    pub fn new(width: u32, height: u32, hfov_deg: f32, seed: u64) -> SyntheticCamera {
        let scene = Scene::random(seed);
        let trajectory = Trajectory::new(&scene, seed);
        let intrinsics = Intrinsics::with_hfov(width, height, hfov_deg);
        SyntheticCamera { scene, trajectory, intrinsics, frame: Frame::new(width, height) }
    }

    /// Renders the view at `t` seconds along the trajectory, stamped `stamp`.
    pub fn capture(&mut self, t: f32, stamp: Time) -> (Image, CameraInfo) {
        let pose = self.trajectory.pose_at(t);
        self.scene.render_into(&self.intrinsics, &pose, &mut self.frame);
        let header = Header { stamp, frame_id: FRAME_ID.into() };
        let (h, w, _) = self.frame.rgb.dim();
        let image = rgb8(&header, &self.frame.rgb);
        let i = &self.intrinsics;
        // The renderer's rays pass through pixel centres (u + ½); ROS puts centres at integers.
        let info = pinhole_camera_info(
            &header,
            w as u32,
            h as u32,
            i.fx as f64,
            i.fy as f64,
            i.cx as f64 - 0.5,
            i.cy as f64 - 0.5,
        );
        (image, info)
    }
}
