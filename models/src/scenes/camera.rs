//! Pinhole intrinsics and camera poses.
//!
//! World frame: z up, floor at z = 0. Camera optical frame: x right, y down, z forward.

use super::geometry::Vec3;
use serde::{Deserialize, Serialize};

/// Default horizontal field of view in degrees.
pub const DEFAULT_HFOV_DEG: f32 = 70.0;

/// Pinhole camera intrinsics (pixels). Pixel (u, v) covers `[u, u+1) x [v, v+1)`;
/// rays go through pixel centres `(u + 0.5, v + 0.5)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intrinsics {
    pub width: u32,
    pub height: u32,
    pub fx: f32,
    pub fy: f32,
    pub cx: f32,
    pub cy: f32,
}

impl Intrinsics {
    /// Square pixels, principal point at the image centre, horizontal field of view `hfov_deg`.
    pub fn with_hfov(width: u32, height: u32, hfov_deg: f32) -> Self {
        let f = (width as f32 * 0.5) / (hfov_deg.to_radians() * 0.5).tan();
        Intrinsics { width, height, fx: f, fy: f, cx: width as f32 * 0.5, cy: height as f32 * 0.5 }
    }

    /// [`Intrinsics::with_hfov`] with the default 70° horizontal field of view.
    pub fn new(width: u32, height: u32) -> Self {
        Self::with_hfov(width, height, DEFAULT_HFOV_DEG)
    }

    /// Direction (camera optical frame) of the ray through the centre of pixel (u, v),
    /// scaled so that its z component is 1.
    #[inline]
    pub fn pixel_ray(&self, u: u32, v: u32) -> [f32; 3] {
        [(u as f32 + 0.5 - self.cx) / self.fx, (v as f32 + 0.5 - self.cy) / self.fy, 1.0]
    }
}

/// How a robot carries its camera: a declared height above the floor and a downward pitch,
/// each with a little play (the mount's tolerance, suspension, bumps), and a small roll.
/// Models trained on one mount predict metric depth for cameras mounted that way; the mount
/// travels with the model (`pag.camera_mount` metadata, see models/CONTRACT.md).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraMount {
    /// Optical centre above the floor (m).
    pub height_m: f32,
    /// Height varies uniformly within ± this (m) from one trip to the next.
    pub height_play_m: f32,
    /// Pitch of the optical axis (degrees, negative looks down).
    pub pitch_deg: f32,
    /// Pitch varies within ± this (degrees), mount tolerance and wobble together.
    pub pitch_play_deg: f32,
    /// Roll stays within ± this (degrees).
    pub roll_play_deg: f32,
}

impl CameraMount {
    /// The mount pagrt's shipped models (v2 on) are trained for: a small indoor robot with its
    /// camera 0.60 m above the floor, tilted 5° down.
    pub const ROBOT: CameraMount =
        CameraMount { height_m: 0.60, height_play_m: 0.03, pitch_deg: -5.0, pitch_play_deg: 3.0, roll_play_deg: 2.0 };

    /// Errors unless every value is finite, the height is positive and above its play, and the
    /// pitch looks neither straight up nor down.
    pub fn validate(&self) -> Result<(), String> {
        let all = [self.height_m, self.height_play_m, self.pitch_deg, self.pitch_play_deg, self.roll_play_deg];
        if all.iter().any(|v| !v.is_finite()) {
            return Err(format!("camera mount values must be finite: {self:?}"));
        }
        if self.height_play_m < 0.0 || self.pitch_play_deg < 0.0 || self.roll_play_deg < 0.0 {
            return Err(format!("camera mount play must be ≥ 0: {self:?}"));
        }
        if self.height_m - self.height_play_m <= 0.05 {
            return Err(format!(
                "camera mount height {} ± {} m must stay above 0.05 m",
                self.height_m, self.height_play_m
            ));
        }
        if (self.pitch_deg.abs() + self.pitch_play_deg) >= 80.0 || self.roll_play_deg >= 45.0 {
            return Err(format!(
                "camera mount pitch {}° ± {}° must stay within ±80°, roll below 45°",
                self.pitch_deg, self.pitch_play_deg
            ));
        }
        Ok(())
    }
}

/// Camera-to-world transform: `p_world = rotation * p_cam + position`.
///
/// `rotation` is row-major; its columns are the camera optical x (right), y (down)
/// and z (forward) axes expressed in world coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pose {
    pub rotation: [[f32; 3]; 3],
    pub position: [f32; 3],
}

impl Pose {
    /// A camera at `position` (world, metres) looking in direction `yaw` (radians,
    /// counter-clockwise about world z from the +x axis), tilted up by `pitch` (radians,
    /// negative looks down, −π/2 looks straight down) and rolled by `roll` radians about
    /// its optical axis (positive turns the image content counter-clockwise).
    pub fn look(position: [f32; 3], yaw: f32, pitch: f32, roll: f32) -> Pose {
        // Computed in f64 so that e.g. pitch = −90° gives an (almost) exact down vector.
        let (y, p, r) = (yaw as f64, pitch as f64, roll as f64);
        let f = [p.cos() * y.cos(), p.cos() * y.sin(), p.sin()];
        let r0 = [y.sin(), -y.cos(), 0.0];
        // down = forward x right
        let d0 = [f[1] * r0[2] - f[2] * r0[1], f[2] * r0[0] - f[0] * r0[2], f[0] * r0[1] - f[1] * r0[0]];
        let (sr, cr) = r.sin_cos();
        let right: Vec<f64> = (0..3).map(|i| cr * r0[i] + sr * d0[i]).collect();
        let down: Vec<f64> = (0..3).map(|i| -sr * r0[i] + cr * d0[i]).collect();
        let mut rotation = [[0.0f32; 3]; 3];
        for i in 0..3 {
            rotation[i] = [right[i] as f32, down[i] as f32, f[i] as f32];
        }
        Pose { rotation, position }
    }

    /// Camera axis `i` (0 = right, 1 = down, 2 = forward) in world coordinates.
    pub fn axis(&self, i: usize) -> Vec3 {
        Vec3::new(self.rotation[0][i], self.rotation[1][i], self.rotation[2][i])
    }

    pub fn position_vec(&self) -> Vec3 {
        Vec3::from_array(self.position)
    }

    /// Rotate a camera-frame vector into the world frame.
    #[inline]
    pub fn cam_to_world_dir(&self, v: Vec3) -> Vec3 {
        let m = &self.rotation;
        Vec3::new(
            m[0][0] * v.x + m[0][1] * v.y + m[0][2] * v.z,
            m[1][0] * v.x + m[1][1] * v.y + m[1][2] * v.z,
            m[2][0] * v.x + m[2][1] * v.y + m[2][2] * v.z,
        )
    }

    /// Rotate a world-frame vector into the camera optical frame.
    #[inline]
    pub fn world_to_cam_dir(&self, v: Vec3) -> Vec3 {
        let m = &self.rotation;
        Vec3::new(
            m[0][0] * v.x + m[1][0] * v.y + m[2][0] * v.z,
            m[0][1] * v.x + m[1][1] * v.y + m[2][1] * v.z,
            m[0][2] * v.x + m[1][2] * v.y + m[2][2] * v.z,
        )
    }

    /// Transform a world point into the camera optical frame.
    pub fn world_to_cam(&self, p: Vec3) -> Vec3 {
        self.world_to_cam_dir(p - self.position_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intrinsics_hfov() {
        let k = Intrinsics::with_hfov(320, 240, 90.0);
        assert!((k.fx - 160.0).abs() < 1e-3);
        assert_eq!(k.fx, k.fy);
        assert_eq!((k.cx, k.cy), (160.0, 120.0));
        assert_eq!(Intrinsics::new(320, 240), Intrinsics::with_hfov(320, 240, 70.0));
    }

    #[test]
    fn look_axes() {
        let p = Pose::look([1.0, 2.0, 3.0], 0.0, 0.0, 0.0);
        assert_eq!(p.axis(2), Vec3::new(1.0, 0.0, 0.0)); // forward +x
        assert_eq!(p.axis(0), Vec3::new(0.0, -1.0, 0.0)); // right −y
        assert_eq!(p.axis(1), Vec3::new(0.0, 0.0, -1.0)); // down −z
        let p = Pose::look([0.0; 3], 0.3, -std::f32::consts::FRAC_PI_2, 0.0);
        assert!((p.axis(2).z + 1.0).abs() < 1e-6);
        // Orthonormal, right-handed.
        let p = Pose::look([0.0; 3], 1.1, -0.3, 0.07);
        let (x, y, z) = (p.axis(0), p.axis(1), p.axis(2));
        assert!((x.dot(y)).abs() < 1e-6 && (x.dot(z)).abs() < 1e-6 && (y.dot(z)).abs() < 1e-6);
        assert!((x.cross(y) - z).length() < 1e-6);
        let w = Vec3::new(0.3, -2.0, 0.5);
        assert!((p.world_to_cam_dir(p.cam_to_world_dir(w)) - w).length() < 1e-6);
    }
}
