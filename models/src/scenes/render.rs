//! Ray casting: primary rays through pixel centres, Lambertian shading with one hard
//! shadow ray, exact label / depth / normal ground truth.

use super::accel::ShadowGrid;
use super::camera::{Intrinsics, Pose};
use super::geometry::{Ray, Vec3};
use super::scene::{Scene, FACE_CEILING, FACE_FLOOR};
use super::{Class, LABEL_NONE, NUM_CLASSES, PALETTE};
use ndarray::{Array2, Array3};
use rayon::prelude::*;

/// Scenes with more objects than this are rendered without per-row culling.
const MAX_ROW_CANDIDATES: usize = 256;

/// One rendered image with its ground truth.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Shaded colour image, shape (H, W, 3).
    pub rgb: Array3<u8>,
    /// Class id per pixel (see [`super::CLASS_NAMES`]); 255 where nothing was hit.
    pub label: Array2<u8>,
    /// Metric depth along the optical z axis (not the ray length); NaN where nothing was hit.
    pub depth: Array2<f32>,
    /// Unit surface normal in the camera optical frame, facing the camera, shape (H, W, 3).
    pub normals: Array3<f32>,
}

impl Frame {
    /// A zeroed frame of the given size.
    pub fn new(width: u32, height: u32) -> Frame {
        let (w, h) = (width as usize, height as usize);
        Frame {
            rgb: Array3::zeros((h, w, 3)),
            label: Array2::zeros((h, w)),
            depth: Array2::zeros((h, w)),
            normals: Array3::zeros((h, w, 3)),
        }
    }

    pub fn width(&self) -> u32 {
        self.label.ncols() as u32
    }

    pub fn height(&self) -> u32 {
        self.label.nrows() as u32
    }

    fn fits(&self, width: u32, height: u32) -> bool {
        let (w, h) = (width as usize, height as usize);
        self.rgb.dim() == (h, w, 3)
            && self.label.dim() == (h, w)
            && self.depth.dim() == (h, w)
            && self.normals.dim() == (h, w, 3)
            && self.rgb.is_standard_layout()
            && self.label.is_standard_layout()
            && self.depth.is_standard_layout()
            && self.normals.is_standard_layout()
    }

    /// The label map coloured with [`PALETTE`] (unknown ids are black).
    pub fn colorized_labels(&self) -> Array3<u8> {
        colorize_labels(&self.label)
    }
}

/// Colour a label map with [`PALETTE`], shape (H, W, 3); ids ≥ 8 become black.
pub fn colorize_labels(label: &Array2<u8>) -> Array3<u8> {
    let (h, w) = label.dim();
    Array3::from_shape_fn((h, w, 3), |(v, u, c)| {
        let id = label[[v, u]] as usize;
        if id < NUM_CLASSES {
            PALETTE[id][c]
        } else {
            0
        }
    })
}

/// What a primary ray hit.
struct SurfaceHit {
    t: f32,
    normal: Vec3,
    class: Class,
    albedo: [f32; 3],
}

impl Scene {
    /// Nearest surface along `ray` (t > 0), testing only the objects listed in `candidates`.
    fn trace(&self, ray: &Ray, candidates: &[u32]) -> Option<SurfaceHit> {
        const TMIN: f32 = 1e-6;
        let mut best = None;
        let mut tmax = f32::INFINITY;
        if let Some(h) = self.room_shape.intersect(ray, TMIN, tmax) {
            let n = h.local_normal;
            let face = if n.z < 0.0 {
                FACE_FLOOR
            } else if n.z > 0.0 {
                FACE_CEILING
            } else if n.x != 0.0 {
                if n.x < 0.0 {
                    2
                } else {
                    3
                }
            } else if n.y < 0.0 {
                4
            } else {
                5
            };
            let class = match face {
                FACE_FLOOR => Class::Floor,
                FACE_CEILING => Class::Ceiling,
                _ => Class::Wall,
            };
            let world = ray.at(h.t);
            let albedo = self.room[face].albedo(world, n);
            tmax = h.t;
            best = Some(SurfaceHit { t: h.t, normal: h.normal, class, albedo });
        }
        let mut best_obj = None;
        let dd = ray.dir.dot(ray.dir);
        for &i in candidates {
            let i = i as usize;
            if !self.bounds[i].may_hit(ray, dd, tmax) {
                continue;
            }
            if let Some(h) = self.objects[i].shape.intersect(ray, TMIN, tmax) {
                tmax = h.t;
                best_obj = Some((i, h));
            }
        }
        if let Some((i, h)) = best_obj {
            let o = &self.objects[i];
            let albedo = o.material.albedo(h.local, h.local_normal);
            best = Some(SurfaceHit { t: h.t, normal: h.normal, class: o.class, albedo });
        }
        best
    }

    /// Whether an object blocks the segment from `p` to the light.
    fn shadowed(&self, p: Vec3, grid: &ShadowGrid) -> bool {
        let ray = Ray { origin: p, dir: self.light - p };
        let dd = ray.dir.dot(ray.dir);
        let inv = 1.0 / dd.sqrt();
        let dist = dd * inv;
        let from_light = ray.dir * -inv;
        let tmax = 1.0 - 1e-4;
        grid.candidates(from_light).iter().any(|&i| {
            let (o, b) = (&self.objects[i as usize], &self.bounds[i as usize]);
            b.may_shadow(from_light, dist) && b.may_hit(&ray, dd, tmax) && o.shape.occludes(&ray, 1e-4, tmax)
        })
    }

    /// Objects whose bounding sphere meets the plane of the rays of image row `v`
    /// (all objects when there are more than `out.len()`); returns how many were written.
    fn row_candidates(&self, intr: &Intrinsics, pose: &Pose, v: u32, out: &mut [u32]) -> usize {
        if self.objects.len() > out.len() {
            // Too many to list: the caller tests every object.
            return usize::MAX;
        }
        // Rays of row v: a * right + (b * down + forward), so the plane normal is
        // right x (b down + forward) = b forward - down.
        let b = (v as f32 + 0.5 - intr.cy) / intr.fy;
        let n = pose.axis(2) * b - pose.axis(1);
        let inv_len = 1.0 / n.length();
        let origin = pose.position_vec();
        let fwd = pose.axis(2);
        let mut count = 0;
        for (i, bd) in self.bounds.iter().enumerate() {
            let oc = bd.center - origin;
            if (oc.dot(n) * inv_len).abs() <= bd.radius && oc.dot(fwd) > -bd.radius {
                out[count] = i as u32;
                count += 1;
            }
        }
        count
    }

    /// Shaded colour of a surface point with albedo `albedo` and unit normal `n` facing the viewer.
    fn shade(&self, p: Vec3, n: Vec3, albedo: [f32; 3], grid: &ShadowGrid) -> [u8; 3] {
        let to_light = self.light - p;
        let dist2 = to_light.dot(to_light);
        let ndotl = n.dot(to_light) / dist2.sqrt();
        let mut direct = 0.0;
        if ndotl > 0.0 && !self.shadowed(p + n * 1e-3, grid) {
            direct = ndotl * self.light_gain * 1.6 / (1.0 + 0.06 * dist2);
        }
        // Soft hemispherical ambient: surfaces facing up get a bit more.
        let ambient = self.ambient * (0.85 + 0.15 * n.z);
        let lit = (ambient + (1.0 - self.ambient) * direct).min(1.2);
        let gain = lit.sqrt(); // display gamma 2
        let c = |a: f32| ((a * gain).clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
        [c(albedo[0]), c(albedo[1]), c(albedo[2])]
    }

    /// Render a new frame.
    pub fn render(&self, intr: &Intrinsics, pose: &Pose) -> Frame {
        let mut frame = Frame::new(intr.width, intr.height);
        self.render_into(intr, pose, &mut frame);
        frame
    }

    /// Render into `frame`, reallocating it only if its size (or layout) does not match.
    /// Rows are rendered in parallel with rayon.
    pub fn render_into(&self, intr: &Intrinsics, pose: &Pose, frame: &mut Frame) {
        if !frame.fits(intr.width, intr.height) {
            *frame = Frame::new(intr.width, intr.height);
        }
        let w = intr.width as usize;
        if w == 0 || intr.height == 0 {
            return;
        }
        let rgb = frame.rgb.as_slice_mut().expect("standard layout");
        let label = frame.label.as_slice_mut().expect("standard layout");
        let depth = frame.depth.as_slice_mut().expect("standard layout");
        let normals = frame.normals.as_slice_mut().expect("standard layout");
        let origin = pose.position_vec();
        let grid = self.shadow_grid.get_or_init(|| ShadowGrid::build(&self.bounds));
        rgb.par_chunks_mut(w * 3)
            .zip(label.par_chunks_mut(w))
            .zip(depth.par_chunks_mut(w))
            .zip(normals.par_chunks_mut(w * 3))
            .enumerate()
            .for_each(|(v, (((rgb, label), depth), normals))| {
                let mut buf = [0u32; MAX_ROW_CANDIDATES];
                let all: Vec<u32>;
                let candidates = match self.row_candidates(intr, pose, v as u32, &mut buf) {
                    usize::MAX => {
                        all = (0..self.objects.len() as u32).collect();
                        &all[..]
                    }
                    n => &buf[..n],
                };
                for u in 0..w {
                    let dc = Vec3::from_array(intr.pixel_ray(u as u32, v as u32));
                    let ray = Ray { origin, dir: pose.cam_to_world_dir(dc) };
                    match self.trace(&ray, candidates) {
                        Some(hit) => {
                            // Normal into the camera frame, facing the camera.
                            let mut nc = pose.world_to_cam_dir(hit.normal).normalized();
                            let mut nw = hit.normal;
                            if nc.dot(dc) > 0.0 {
                                nc = -nc;
                                nw = -nw;
                            }
                            let p = ray.at(hit.t);
                            rgb[3 * u..3 * u + 3].copy_from_slice(&self.shade(p, nw, hit.albedo, grid));
                            label[u] = hit.class.id();
                            depth[u] = hit.t;
                            normals[3 * u..3 * u + 3].copy_from_slice(&nc.to_array());
                        }
                        None => {
                            rgb[3 * u..3 * u + 3].fill(0);
                            label[u] = LABEL_NONE;
                            depth[u] = f32::NAN;
                            normals[3 * u..3 * u + 3].fill(0.0);
                        }
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenes::{Material, Object, Shape};

    /// The light-space grid never drops an occluder: same answers as testing every object.
    #[test]
    fn shadow_grid_matches_brute_force() {
        let intr = Intrinsics::new(48, 36);
        let mut shadowed = 0;
        for seed in 0..30u64 {
            let scene = Scene::random(seed);
            let grid = ShadowGrid::build(&scene.bounds);
            let pose = scene.random_pose(seed);
            for v in 0..36 {
                for u in 0..48 {
                    let dc = Vec3::from_array(intr.pixel_ray(u, v));
                    let ray = Ray { origin: pose.position_vec(), dir: pose.cam_to_world_dir(dc) };
                    let all: Vec<u32> = (0..scene.objects.len() as u32).collect();
                    let hit = scene.trace(&ray, &all).unwrap();
                    let p = ray.at(hit.t) + hit.normal * 1e-3;
                    let fast = scene.shadowed(p, &grid);
                    let to_light = Ray { origin: p, dir: scene.light - p };
                    let brute = scene.objects.iter().any(|o| o.shape.occludes(&to_light, 1e-4, 1.0 - 1e-4));
                    assert_eq!(fast, brute, "seed {seed} pixel ({u},{v})");
                    shadowed += brute as usize;
                }
            }
        }
        assert!(shadowed > 100, "too few shadowed pixels ({shadowed}) to test anything");
    }

    #[test]
    fn slab_casts_shadow_below() {
        let mut scene = Scene::empty_room(6.0, 6.0, 3.0);
        scene.set_light([3.0, 3.0, 2.8]);
        let intr = Intrinsics::new(9, 9);
        let pose = Pose::look([3.0, 3.0, 0.8], 0.0, -std::f32::consts::FRAC_PI_2, 0.0);
        let lit = scene.render(&intr, &pose);
        let slab = Shape::aabb(Vec3::new(2.0, 2.0, 1.0), Vec3::new(4.0, 4.0, 1.1));
        scene.push_object(Object { class: Class::Table, shape: slab, material: Material::plain([0.5; 3]) });
        let dark = scene.render(&intr, &pose);
        assert_eq!(dark.label, lit.label); // the slab is above the camera: only floor visible
        let (a, b) = (lit.rgb[[4, 4, 0]] as f32, dark.rgb[[4, 4, 0]] as f32);
        assert!(b < 0.7 * a, "shadowed {b} vs lit {a}");
    }
}
