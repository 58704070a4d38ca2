//! Scene description and deterministic random generation.

use super::accel::ShadowGrid;
use super::camera::{CameraMount, Pose};
use super::geometry::{Bound, Shape, Vec3};
use super::texture::Material;
use super::trajectory::Trajectory;
use super::Class;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;
use std::sync::OnceLock;

/// A solid primitive with a semantic class and a material.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub class: Class,
    pub shape: Shape,
    pub material: Material,
}

/// Room faces, in the order of [`Scene`]'s room materials.
pub(crate) const FACE_FLOOR: usize = 0;
pub(crate) const FACE_CEILING: usize = 1;

/// A closed rectangular room `[0, W] x [0, L] x [0, H]` (z up, floor at z = 0) with
/// solid objects inside, lit by one point light plus ambient light.
#[derive(Clone, Debug)]
pub struct Scene {
    pub(crate) size: Vec3,
    pub(crate) room_shape: Shape,
    /// Floor, ceiling, wall x = 0, wall x = W, wall y = 0, wall y = L.
    pub(crate) room: [Material; 6],
    pub(crate) objects: Vec<Object>,
    /// Bounding spheres of `objects` (same order).
    pub(crate) bounds: Vec<Bound>,
    /// Shadow-ray candidates by direction from the light (built on first render).
    pub(crate) shadow_grid: OnceLock<ShadowGrid>,
    pub(crate) light: Vec3,
    pub(crate) light_gain: f32,
    pub(crate) ambient: f32,
    /// Number of furniture items (a table with legs or a framed picture counts once).
    pub(crate) furniture: usize,
}

/// Minimum horizontal clearance of a random camera from obstacles and walls (m).
pub(crate) const CAMERA_CLEARANCE: f32 = 0.45;

pub(crate) fn uni(rng: &mut ChaCha8Rng, lo: f32, hi: f32) -> f32 {
    if hi > lo {
        rng.random_range(lo..hi)
    } else {
        0.5 * (lo + hi)
    }
}

impl Scene {
    /// An empty room of the given size (metres) with plain grey surfaces and the light
    /// centred 0.15 m below the ceiling.
    pub fn empty_room(width: f32, length: f32, height: f32) -> Scene {
        let size = Vec3::new(width, length, height);
        let grey = Material::plain([0.6, 0.6, 0.6]);
        let mut room = [grey; 6];
        room[FACE_FLOOR] = Material::plain([0.45, 0.4, 0.35]);
        room[FACE_CEILING] = Material::plain([0.9, 0.9, 0.9]);
        Scene {
            size,
            room_shape: Shape::aabb(Vec3::ZERO, size),
            room,
            objects: Vec::new(),
            bounds: Vec::new(),
            shadow_grid: OnceLock::new(),
            light: Vec3::new(width * 0.5, length * 0.5, height - 0.15),
            light_gain: 1.0,
            ambient: 0.3,
            furniture: 0,
        }
    }

    /// Room extents `[width (x), length (y), height (z)]` in metres.
    pub fn size(&self) -> [f32; 3] {
        self.size.to_array()
    }

    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Add an object (no overlap check).
    pub fn push_object(&mut self, object: Object) {
        self.bounds.push(Bound::new(&object.shape, self.light));
        self.shadow_grid = OnceLock::new();
        self.objects.push(object);
    }

    /// Number of furniture items placed by [`Scene::random`] (a table with its legs, or a
    /// framed picture, counts as one; objects added with `push_object` are not counted).
    pub fn furniture_count(&self) -> usize {
        self.furniture
    }

    pub fn light(&self) -> [f32; 3] {
        self.light.to_array()
    }

    pub fn set_light(&mut self, position: [f32; 3]) {
        self.light = Vec3::from_array(position);
        let light = self.light;
        self.bounds = self.objects.iter().map(|o| Bound::new(&o.shape, light)).collect();
        self.shadow_grid = OnceLock::new();
    }

    /// Set the material of a room face: 0 floor, 1 ceiling, 2 wall x=0, 3 wall x=W,
    /// 4 wall y=0, 5 wall y=L.
    pub fn set_room_material(&mut self, face: usize, material: Material) {
        self.room[face] = material;
    }

    /// Horizontal footprints `(x, y, radius)` of floor-standing objects (pictures excluded).
    pub fn footprints(&self) -> Vec<[f32; 3]> {
        self.objects
            .iter()
            .filter(|o| o.class != Class::Picture)
            .map(|o| match o.shape {
                Shape::Cuboid(b) => [b.center.x, b.center.y, b.half.x.hypot(b.half.y)],
                Shape::Cylinder(c) => [c.x, c.y, c.radius],
                Shape::Sphere(s) => [s.center.x, s.center.y, s.radius],
            })
            .collect()
    }

    /// Horizontal distance from (x, y) to the nearest wall or object footprint
    /// (negative inside a footprint or outside the room).
    pub fn clearance(&self, x: f32, y: f32) -> f32 {
        self.clearance_with(&self.footprints(), x, y)
    }

    pub(crate) fn clearance_with(&self, fps: &[[f32; 3]], x: f32, y: f32) -> f32 {
        let mut c = x.min(self.size.x - x).min(y).min(self.size.y - y);
        for f in fps {
            c = c.min((x - f[0]).hypot(y - f[1]) - f[2]);
        }
        c
    }

    /// A random camera pose inside the room, at least 0.45 m (horizontally) from objects
    /// and walls where possible, height 0.4–1.6 m, pitch −25°..+10°, roll ±5°. The yaw is
    /// random (preferring views across the room), or 60% of the time roughly towards a
    /// random object (with pitch then aimed near it). Same seed, same pose.
    pub fn random_pose(&self, seed: u64) -> Pose {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7a3d_51c9_e2b4_0f68);
        let fps = self.footprints();
        let (w, l) = (self.size.x, self.size.y);
        let mut best = ([w * 0.5, l * 0.5], f32::NEG_INFINITY);
        for _ in 0..2000 {
            let p = [uni(&mut rng, 0.3, w - 0.3), uni(&mut rng, 0.3, l - 0.3)];
            let c = self.clearance_with(&fps, p[0], p[1]);
            if c > best.1 {
                best = (p, c);
            }
            if c >= CAMERA_CLEARANCE {
                break;
            }
        }
        let [x, y] = best.0;
        let z = uni(&mut rng, 0.4, 1.6).min(self.size.z - 0.2);
        let mut pitch = uni(&mut rng, -25.0, 10.0).to_radians();
        let roll = uni(&mut rng, -5.0, 5.0).to_radians();
        let mut yaw = 0.0;
        if !self.objects.is_empty() && rng.random_bool(0.6) {
            // Look roughly towards a random object (more object pixels in the data).
            let (c, _) = self.objects[rng.random_range(0..self.objects.len())].shape.bounding_sphere();
            let jitter = uni(&mut rng, -0.35, 0.35);
            yaw = (c.y - y).atan2(c.x - x) + jitter;
            let towards = (c.z - z).atan2((c.x - x).hypot(c.y - y));
            pitch = (towards + uni(&mut rng, -0.15, 0.15)).clamp(-25f32.to_radians(), 10f32.to_radians());
        } else {
            // Random direction, preferring views across the room over staring at a wall.
            let mut best_free = f32::NEG_INFINITY;
            for _ in 0..16 {
                let cand = uni(&mut rng, -PI, PI);
                let free = self.free_distance(x, y, cand);
                if free > best_free {
                    best_free = free;
                    yaw = cand;
                }
                if free >= 2.0 {
                    break;
                }
            }
        }
        Pose::look([x, y, z], yaw, pitch, roll)
    }

    /// A camera pose of a robot driving through the room with its camera on `mount`: a point of
    /// the [`Trajectory`] of this seed (so position, heading, height, pitch and roll follow a
    /// driving robot's distribution). Of six random times along the path, 70% of the time the one
    /// that sees the most objects is kept (more object pixels in the data, as [`Scene::random_pose`]
    /// aims at objects), otherwise the first. Same seed, same pose.
    pub fn mount_pose(&self, seed: u64, mount: &CameraMount) -> Pose {
        let traj = Trajectory::with_mount(self, seed, mount);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5be0_cd19_137e_2179);
        let times: Vec<f32> = (0..6).map(|_| uni(&mut rng, 0.0, traj.period())).collect();
        if !rng.random_bool(0.7) {
            return traj.pose_at(times[0]);
        }
        let seen = |pose: &Pose| -> f32 {
            // Objects whose bounding sphere centre lies within ±30° of the heading and 6 m,
            // nearer ones counting more.
            let (fwd, pos) = (pose.axis(2), pose.position_vec());
            self.objects
                .iter()
                .map(|o| {
                    let (c, _) = o.shape.bounding_sphere();
                    let v = c - pos;
                    let (horiz, along) = ((v.x * v.x + v.y * v.y).sqrt(), v.x * fwd.x + v.y * fwd.y);
                    let cos = along / (horiz * (fwd.x * fwd.x + fwd.y * fwd.y).sqrt()).max(1e-6);
                    if horiz < 6.0 && cos > 30f32.to_radians().cos() {
                        1.0 / horiz.max(0.5)
                    } else {
                        0.0
                    }
                })
                .sum()
        };
        times
            .iter()
            .map(|&t| traj.pose_at(t))
            .map(|p| (seen(&p), p))
            .fold(None, |best: Option<(f32, Pose)>, (s, p)| match best {
                Some((b, _)) if b >= s => best,
                _ => Some((s, p)),
            })
            .map(|(_, p)| p)
            .expect("six candidates")
    }

    /// Horizontal distance from (x, y) to the wall in direction `yaw`.
    fn free_distance(&self, x: f32, y: f32, yaw: f32) -> f32 {
        let (s, c) = yaw.sin_cos();
        let tx = if c > 0.0 {
            (self.size.x - x) / c
        } else if c < 0.0 {
            -x / c
        } else {
            f32::INFINITY
        };
        let ty = if s > 0.0 {
            (self.size.y - y) / s
        } else if s < 0.0 {
            -y / s
        } else {
            f32::INFINITY
        };
        tx.min(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_scenes_are_valid() {
        for seed in 0..200 {
            let s = Scene::random(seed);
            let [w, l, h] = s.size();
            assert!((4.0..=9.0).contains(&w) && (4.0..=9.0).contains(&l) && (2.4..=3.2).contains(&h));
            assert!((3..=10).contains(&s.furniture_count()), "seed {seed}: {} items", s.furniture_count());
            assert!(s.objects().len() >= s.furniture_count());
            // Floor-standing footprints don't overlap each other (multi-part tables share one
            // top, whose footprint covers the legs, so only compare non-leg footprints).
            let fps: Vec<[f32; 3]> = s
                .objects()
                .iter()
                .filter(|o| o.class != Class::Picture)
                .filter(|o| !(o.class == Class::Table && o.shape.is_leg()))
                .map(|o| footprint(&o.shape))
                .collect();
            for i in 0..fps.len() {
                for j in 0..i {
                    let d = (fps[i][0] - fps[j][0]).hypot(fps[i][1] - fps[j][1]);
                    assert!(d >= fps[i][2] + fps[j][2], "seed {seed}: objects {i} and {j} overlap");
                }
                assert!(fps[i][0] > 0.0 && fps[i][0] < w && fps[i][1] > 0.0 && fps[i][1] < l);
            }
            let light = s.light();
            assert!(light[2] < h && light[2] > 2.2);
            // Random poses are inside the room and usually clear of objects.
            let p = s.random_pose(seed);
            let [x, y, z] = p.position;
            assert!(x > 0.0 && x < w && y > 0.0 && y < l && (0.4..=1.6).contains(&z));
            assert!(s.clearance(x, y) > 0.0, "seed {seed}: camera inside an object");
        }
    }

    fn footprint(shape: &Shape) -> [f32; 3] {
        match *shape {
            Shape::Cuboid(b) => [b.center.x, b.center.y, b.half.x.hypot(b.half.y)],
            Shape::Cylinder(c) => [c.x, c.y, c.radius],
            Shape::Sphere(s) => [s.center.x, s.center.y, s.radius],
        }
    }

    impl Shape {
        /// Test helper: thin table leg (cylinder or narrow box).
        fn is_leg(&self) -> bool {
            match self {
                Shape::Cylinder(c) => c.radius <= 0.04,
                Shape::Cuboid(b) => b.half.x <= 0.04 && b.half.y <= 0.04,
                _ => false,
            }
        }
    }

    #[test]
    fn same_seed_same_scene() {
        let a = Scene::random(42);
        let b = Scene::random(42);
        assert_eq!(a.objects(), b.objects());
        assert_eq!(a.size(), b.size());
        assert_ne!(Scene::random(43).size(), a.size());
    }
}
