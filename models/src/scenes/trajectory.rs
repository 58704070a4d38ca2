//! Smooth closed camera paths through the free floor area (robot-like motion for video).

use super::camera::{CameraMount, Pose};
use super::scene::Scene;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::{PI, TAU};

/// Horizontal clearance kept from walls and object footprints along the path (m).
const PATH_CLEARANCE: f32 = 0.35;
/// Nominal forward speed (m/s).
const SPEED: f32 = 0.5;
/// Shortest allowed loop period (s), so that small loops do not spin the camera too fast.
const MIN_PERIOD: f32 = 10.0;
/// Largest heading change rate allowed along the path (rad/s), before the yaw sway.
const MAX_TURN_RATE: f32 = 0.8;

/// A closed Lissajous-like path `c + R(θ) (a_x cos φ, a_y sin kφ)` (k = 1: ellipse,
/// k = 2: figure eight) at robot height, traversed at about 0.5 m/s. The camera yaw
/// follows the path tangent plus a slow sway; pitch and roll wobble slightly.
#[derive(Clone, Debug, PartialEq)]
pub struct Trajectory {
    center: [f32; 2],
    axes: [f32; 2],
    rot: (f32, f32),
    k: f32,
    omega: f32,
    phase0: f32,
    height: f32,
    pitch0: f32,
    sway: (f32, f32, f32),
    pitch_wobble: (f32, f32, f32),
    roll_wobble: (f32, f32, f32),
    bob: (f32, f32, f32),
}

fn uni(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        0.5 * (lo + hi)
    }
}

fn wave(p: (f32, f32, f32), t: f32) -> f32 {
    p.0 * (TAU * t / p.1 + p.2).sin()
}

impl Trajectory {
    /// [`Trajectory::with_mount`] for the robot mount pagrt's models are trained on
    /// ([`CameraMount::ROBOT`]).
    pub fn new(scene: &Scene, seed: u64) -> Trajectory {
        Self::with_mount(scene, seed, &CameraMount::ROBOT)
    }

    /// A random path in `scene` that keeps 0.35 m from walls and objects (falling back to a
    /// small loop around a random free point when no larger path fits), seen by a camera on
    /// `mount`: height and pitch drawn within half the mount's play per trip, the other half
    /// spent on bobbing and pitch wobble along the way; roll wobbles within the mount's roll play.
    pub fn with_mount(scene: &Scene, seed: u64, mount: &CameraMount) -> Trajectory {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3c6e_f372_fe94_f82b);
        let [w, l, _] = scene.size();
        let fps = scene.footprints();
        let mut traj = Trajectory {
            center: [w * 0.5, l * 0.5],
            axes: [0.05, 0.05],
            rot: (0.0, 1.0),
            k: 1.0,
            omega: 0.0,
            phase0: uni(&mut rng, 0.0, TAU),
            height: mount.height_m + uni(&mut rng, -0.5, 0.5) * mount.height_play_m,
            pitch0: (mount.pitch_deg + uni(&mut rng, -0.5, 0.5) * mount.pitch_play_deg).to_radians(),
            sway: (uni(&mut rng, 0.1, 0.35), uni(&mut rng, 6.0, 12.0), uni(&mut rng, 0.0, TAU)),
            pitch_wobble: ((0.5 * mount.pitch_play_deg).to_radians(), uni(&mut rng, 4.0, 8.0), uni(&mut rng, 0.0, TAU)),
            roll_wobble: (mount.roll_play_deg.to_radians(), uni(&mut rng, 4.0, 7.0), uni(&mut rng, 0.0, TAU)),
            bob: (0.5 * mount.height_play_m, uni(&mut rng, 2.0, 4.0), uni(&mut rng, 0.0, TAU)),
        };
        let reverse = rng.random_bool(0.5);
        let mut best: Option<(f32, Trajectory)> = None;
        let smax = 0.5 * w.max(l);
        for _ in 0..400 {
            let mut cand = traj.clone();
            cand.center = [uni(&mut rng, 0.5, w - 0.5), uni(&mut rng, 0.5, l - 0.5)];
            if scene.clearance_with(&fps, cand.center[0], cand.center[1]) < PATH_CLEARANCE {
                continue;
            }
            let aspect = uni(&mut rng, 0.4, 1.0);
            let theta = uni(&mut rng, 0.0, PI);
            cand.rot = theta.sin_cos();
            cand.k = if rng.random_bool(0.6) { 1.0 } else { 2.0 };
            // Largest scale (shrinking geometrically) at which the loop is clear and not too twisty.
            let mut scale = smax;
            while scale >= 0.15 {
                cand.axes = [scale, scale * aspect];
                if best.as_ref().is_some_and(|(b, _)| cand.length() <= *b) {
                    break; // cannot beat the best any more
                }
                let clear = (0..256).all(|i| {
                    let [x, y] = cand.xy(i as f32 / 256.0 * TAU);
                    scene.clearance_with(&fps, x, y) >= PATH_CLEARANCE
                });
                if clear && cand.max_turn_rate(Self::angular_speed(cand.length())) <= MAX_TURN_RATE {
                    best = Some((cand.length(), cand.clone()));
                    break;
                }
                scale *= 0.85;
            }
        }
        match best {
            Some((_, b)) => traj = b,
            None => {
                let p = scene.random_pose(seed).position;
                traj.center = [p[0], p[1]];
            }
        }
        traj.omega = Self::angular_speed(traj.length()) * if reverse { -1.0 } else { 1.0 };
        traj
    }

    /// Curve-parameter rate (rad/s) for a loop of length `len`.
    fn angular_speed(len: f32) -> f32 {
        (TAU * SPEED / len).min(TAU / MIN_PERIOD)
    }

    /// Largest rate of change of the path heading (rad/s) at parameter rate `omega`.
    fn max_turn_rate(&self, omega: f32) -> f32 {
        let (a, b, k) = (self.axes[0], self.axes[1], self.k);
        (0..256)
            .map(|i| {
                let phi = i as f32 / 256.0 * TAU;
                let (dx, dy) = (-a * phi.sin(), k * b * (k * phi).cos());
                let cross = a * b * (k * k * phi.sin() * (k * phi).sin() + k * phi.cos() * (k * phi).cos());
                omega.abs() * cross.abs() / (dx * dx + dy * dy)
            })
            .fold(0.0, f32::max)
    }

    /// Path point at curve parameter `phi`.
    fn xy(&self, phi: f32) -> [f32; 2] {
        let (qx, qy) = (self.axes[0] * phi.cos(), self.axes[1] * (self.k * phi).sin());
        let (s, c) = self.rot;
        [self.center[0] + c * qx - s * qy, self.center[1] + s * qx + c * qy]
    }

    /// d(xy)/dphi.
    fn tangent(&self, phi: f32) -> [f32; 2] {
        let (dx, dy) = (-self.axes[0] * phi.sin(), self.k * self.axes[1] * (self.k * phi).cos());
        let (s, c) = self.rot;
        [c * dx - s * dy, s * dx + c * dy]
    }

    /// Length of one loop (m).
    pub fn length(&self) -> f32 {
        let n = 512;
        let mut len = 0.0;
        let mut prev = self.xy(0.0);
        for i in 1..=n {
            let p = self.xy(i as f32 / n as f32 * TAU);
            len += (p[0] - prev[0]).hypot(p[1] - prev[1]);
            prev = p;
        }
        len
    }

    /// Duration of one loop (s).
    pub fn period(&self) -> f32 {
        TAU / self.omega.abs()
    }

    /// Camera position (world) at time `t` seconds.
    pub fn position_at(&self, t: f32) -> [f32; 3] {
        let [x, y] = self.xy(self.phase0 + self.omega * t);
        [x, y, self.height + wave(self.bob, t)]
    }

    /// Camera pose at time `t` seconds; continuous in `t` and periodic in the path.
    pub fn pose_at(&self, t: f32) -> Pose {
        let phi = self.phase0 + self.omega * t;
        let [tx, ty] = self.tangent(phi);
        let sign = self.omega.signum();
        let yaw = (sign * ty).atan2(sign * tx) + wave(self.sway, t);
        let pitch = self.pitch0 + wave(self.pitch_wobble, t);
        let roll = wave(self.roll_wobble, t);
        Pose::look(self.position_at(t), yaw, pitch, roll)
    }
}
