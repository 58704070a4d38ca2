//! Small vector type and ray/primitive intersection routines.
//!
//! Ray directions are *not* required to be unit length: the renderer uses
//! directions whose optical-z component is 1, so that the ray parameter `t`
//! of a hit equals its depth along the optical axis.

use std::ops::{Add, Mul, Neg, Sub};

/// A 3-vector of `f32` (world or camera coordinates, metres).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vec3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

impl Vec3 {
    pub const ZERO: Vec3 = Vec3 { x: 0.0, y: 0.0, z: 0.0 };

    pub const fn new(x: f32, y: f32, z: f32) -> Self {
        Vec3 { x, y, z }
    }
    pub fn dot(self, o: Vec3) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }
    pub fn cross(self, o: Vec3) -> Vec3 {
        Vec3::new(self.y * o.z - self.z * o.y, self.z * o.x - self.x * o.z, self.x * o.y - self.y * o.x)
    }
    pub fn length(self) -> f32 {
        self.dot(self).sqrt()
    }
    /// Unit vector in the same direction (returns `self` for the zero vector).
    pub fn normalized(self) -> Vec3 {
        let l = self.length();
        if l > 0.0 {
            self * (1.0 / l)
        } else {
            self
        }
    }
    pub fn to_array(self) -> [f32; 3] {
        [self.x, self.y, self.z]
    }
    pub fn from_array(a: [f32; 3]) -> Vec3 {
        Vec3::new(a[0], a[1], a[2])
    }
    pub(crate) fn get(self, axis: usize) -> f32 {
        match axis {
            0 => self.x,
            1 => self.y,
            _ => self.z,
        }
    }
}

impl Add for Vec3 {
    type Output = Vec3;
    fn add(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}
impl Sub for Vec3 {
    type Output = Vec3;
    fn sub(self, o: Vec3) -> Vec3 {
        Vec3::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}
impl Mul<f32> for Vec3 {
    type Output = Vec3;
    fn mul(self, s: f32) -> Vec3 {
        Vec3::new(self.x * s, self.y * s, self.z * s)
    }
}
impl Neg for Vec3 {
    type Output = Vec3;
    fn neg(self) -> Vec3 {
        Vec3::new(-self.x, -self.y, -self.z)
    }
}

/// A ray `origin + t * dir`; `dir` need not be normalised.
#[derive(Clone, Copy, Debug)]
pub struct Ray {
    pub origin: Vec3,
    pub dir: Vec3,
}

impl Ray {
    pub fn at(&self, t: f32) -> Vec3 {
        self.origin + self.dir * t
    }
}

/// Result of a ray/primitive intersection.
#[derive(Clone, Copy, Debug)]
pub struct Hit {
    /// Ray parameter of the hit.
    pub t: f32,
    /// Outward unit surface normal in world coordinates.
    pub normal: Vec3,
    /// Hit point in the primitive's local frame (used for texturing).
    pub local: Vec3,
    /// Outward unit normal in the primitive's local frame.
    pub local_normal: Vec3,
}

/// A bounding sphere for quick ray rejection, plus the cone it subtends as seen from the
/// scene's light (for quick shadow-ray rejection).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bound {
    pub(crate) center: Vec3,
    pub(crate) radius: f32,
    r2: f32,
    /// Unit direction from the light to the centre.
    pub(crate) to_center: Vec3,
    /// Cosine of the cone half-angle (−1: the light is inside the sphere).
    cos_half: f32,
    /// Distance from the light to the nearest point of the sphere.
    near: f32,
}

impl Bound {
    pub(crate) fn new(shape: &Shape, light: Vec3) -> Bound {
        let (center, r) = shape.bounding_sphere();
        // Slightly inflated so that rounding can never reject a real hit.
        let r = r * 1.001 + 1e-4;
        let lc = center - light;
        let dist = lc.length();
        let (to_center, cos_half) = if dist > r * 1.0001 {
            let s = r / dist;
            // Cone slightly widened for the same reason.
            (lc * (1.0 / dist), (1.0 - s * s).sqrt() - 1e-4)
        } else {
            (Vec3::ZERO, -2.0)
        };
        Bound { center, radius: r, r2: r * r, to_center, cos_half, near: dist - r }
    }

    /// False only if the ray certainly misses the sphere for all t in (0, tmax).
    #[inline]
    pub(crate) fn may_hit(&self, ray: &Ray, dd: f32, tmax: f32) -> bool {
        let oc = self.center - ray.origin;
        let b = oc.dot(ray.dir);
        let c = oc.dot(oc) - self.r2;
        if c > 0.0 && b <= 0.0 {
            return false; // origin outside, sphere behind
        }
        let disc = b * b - dd * c;
        if disc < 0.0 {
            return false;
        }
        let e = b - tmax * dd;
        !(e > 0.0 && e * e > disc) // entry point beyond tmax
    }

    /// Half-angle (radians) of the cone the sphere subtends from the light; `None` when the
    /// light is inside the sphere.
    pub(crate) fn cone_half_angle(&self) -> Option<f32> {
        (self.cos_half >= -1.0).then(|| self.cos_half.acos())
    }

    /// False only if the object certainly cannot shadow a point at distance `dist` from the
    /// light in unit direction `dir` (light to point).
    #[inline]
    pub(crate) fn may_shadow(&self, dir: Vec3, dist: f32) -> bool {
        dist > self.near && dir.dot(self.to_center) >= self.cos_half
    }
}

/// A box rotated about the vertical (world z) axis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cuboid {
    pub center: Vec3,
    pub half: Vec3,
    cos: f32,
    sin: f32,
    yaw: f32,
}

/// A vertical (z-aligned) capped cylinder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cylinder {
    pub x: f32,
    pub y: f32,
    pub radius: f32,
    pub z0: f32,
    pub z1: f32,
}

/// A sphere.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sphere {
    pub center: Vec3,
    pub radius: f32,
}

/// A solid primitive.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shape {
    Cuboid(Cuboid),
    Cylinder(Cylinder),
    Sphere(Sphere),
}

impl Shape {
    /// A box with the given centre and half extents, rotated by `yaw` radians about world z.
    pub fn cuboid(center: Vec3, half: Vec3, yaw: f32) -> Shape {
        let (sin, cos) = yaw.sin_cos();
        Shape::Cuboid(Cuboid { center, half, cos, sin, yaw })
    }
    /// An axis-aligned box from its min and max corners.
    pub fn aabb(min: Vec3, max: Vec3) -> Shape {
        Shape::cuboid((min + max) * 0.5, (max - min) * 0.5, 0.0)
    }
    /// A vertical cylinder with axis through (x, y), spanning z0..z1.
    pub fn cylinder(x: f32, y: f32, radius: f32, z0: f32, z1: f32) -> Shape {
        Shape::Cylinder(Cylinder { x, y, radius, z0, z1 })
    }
    pub fn sphere(center: Vec3, radius: f32) -> Shape {
        Shape::Sphere(Sphere { center, radius })
    }

    /// Nearest intersection with `t` in `(tmin, tmax)`.
    pub fn intersect(&self, ray: &Ray, tmin: f32, tmax: f32) -> Option<Hit> {
        match self {
            Shape::Cuboid(b) => b.intersect(ray, tmin, tmax),
            Shape::Cylinder(c) => c.intersect(ray, tmin, tmax),
            Shape::Sphere(s) => s.intersect(ray, tmin, tmax),
        }
    }

    /// A sphere `(centre, radius)` enclosing the shape.
    pub fn bounding_sphere(&self) -> (Vec3, f32) {
        match self {
            Shape::Cuboid(b) => (b.center, b.half.length()),
            Shape::Cylinder(c) => {
                let h = 0.5 * (c.z1 - c.z0);
                (Vec3::new(c.x, c.y, 0.5 * (c.z0 + c.z1)), c.radius.hypot(h))
            }
            Shape::Sphere(s) => (s.center, s.radius),
        }
    }

    /// Whether the shape blocks the ray anywhere in `(tmin, tmax)`.
    pub fn occludes(&self, ray: &Ray, tmin: f32, tmax: f32) -> bool {
        self.intersect(ray, tmin, tmax).is_some()
    }
}

impl Cuboid {
    pub fn yaw(&self) -> f32 {
        self.yaw
    }
    fn to_local(&self, v: Vec3) -> Vec3 {
        Vec3::new(self.cos * v.x + self.sin * v.y, -self.sin * v.x + self.cos * v.y, v.z)
    }
    fn to_world(&self, v: Vec3) -> Vec3 {
        Vec3::new(self.cos * v.x - self.sin * v.y, self.sin * v.x + self.cos * v.y, v.z)
    }

    fn intersect(&self, ray: &Ray, tmin: f32, tmax: f32) -> Option<Hit> {
        let o = self.to_local(ray.origin - self.center);
        let d = self.to_local(ray.dir);
        let mut tnear = f32::NEG_INFINITY;
        let mut tfar = f32::INFINITY;
        let mut near_axis = 0;
        let mut far_axis = 0;
        for axis in 0..3 {
            let (oa, da, ha) = (o.get(axis), d.get(axis), self.half.get(axis));
            if da == 0.0 {
                if oa < -ha || oa > ha {
                    return None;
                }
                continue;
            }
            let inv = 1.0 / da;
            let t1 = (-ha - oa) * inv;
            let t2 = (ha - oa) * inv;
            let (lo, hi) = if t1 < t2 { (t1, t2) } else { (t2, t1) };
            if lo > tnear {
                tnear = lo;
                near_axis = axis;
            }
            if hi < tfar {
                tfar = hi;
                far_axis = axis;
            }
            if tnear > tfar {
                return None;
            }
        }
        let (t, axis, sign) = if tnear > tmin && tnear < tmax {
            (tnear, near_axis, -d.get(near_axis).signum())
        } else if tnear <= tmin && tfar > tmin && tfar < tmax {
            (tfar, far_axis, d.get(far_axis).signum())
        } else {
            return None;
        };
        let mut ln = [0.0f32; 3];
        ln[axis] = sign;
        let local_normal = Vec3::from_array(ln);
        Some(Hit { t, normal: self.to_world(local_normal), local: o + d * t, local_normal })
    }
}

impl Cylinder {
    fn intersect(&self, ray: &Ray, tmin: f32, tmax: f32) -> Option<Hit> {
        let ox = ray.origin.x - self.x;
        let oy = ray.origin.y - self.y;
        let (dx, dy, dz) = (ray.dir.x, ray.dir.y, ray.dir.z);
        let mut best: Option<(f32, Vec3)> = None;
        let mut consider = |t: f32, n: Vec3| {
            if t > tmin && t < tmax && best.is_none_or(|(bt, _)| t < bt) {
                best = Some((t, n));
            }
        };
        // Side.
        let a = dx * dx + dy * dy;
        if a > 0.0 {
            let b = ox * dx + oy * dy; // half of the usual b
            let c = ox * ox + oy * oy - self.radius * self.radius;
            let disc = b * b - a * c;
            if disc >= 0.0 {
                let s = disc.sqrt();
                // Numerically stable roots.
                let q = -(b + b.signum() * s);
                let (r1, r2) = if q != 0.0 { (q / a, c / q) } else { (0.0, 0.0) };
                for t in [r1, r2] {
                    let z = ray.origin.z + dz * t;
                    if z >= self.z0 && z <= self.z1 {
                        let n = Vec3::new(ox + dx * t, oy + dy * t, 0.0).normalized();
                        consider(t, n);
                    }
                }
            }
        }
        // Caps.
        if dz != 0.0 {
            for (zc, nz) in [(self.z0, -1.0f32), (self.z1, 1.0)] {
                let t = (zc - ray.origin.z) / dz;
                let px = ox + dx * t;
                let py = oy + dy * t;
                if px * px + py * py <= self.radius * self.radius {
                    consider(t, Vec3::new(0.0, 0.0, nz));
                }
            }
        }
        best.map(|(t, normal)| {
            let p = ray.at(t);
            Hit { t, normal, local: Vec3::new(p.x - self.x, p.y - self.y, p.z - self.z0), local_normal: normal }
        })
    }
}

impl Sphere {
    fn intersect(&self, ray: &Ray, tmin: f32, tmax: f32) -> Option<Hit> {
        let oc = ray.origin - self.center;
        let a = ray.dir.dot(ray.dir);
        let b = oc.dot(ray.dir); // half b
        let c = oc.dot(oc) - self.radius * self.radius;
        let disc = b * b - a * c;
        if disc < 0.0 || a == 0.0 {
            return None;
        }
        let s = disc.sqrt();
        let q = -(b + b.signum() * s);
        let (mut r1, mut r2) = if q != 0.0 { (q / a, c / q) } else { (0.0, 0.0) };
        if r1 > r2 {
            std::mem::swap(&mut r1, &mut r2);
        }
        let t = if r1 > tmin && r1 < tmax {
            r1
        } else if r2 > tmin && r2 < tmax {
            r2
        } else {
            return None;
        };
        let local = ray.at(t) - self.center;
        let normal = local.normalized();
        Some(Hit { t, normal, local, local_normal: normal })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ray(o: [f32; 3], d: [f32; 3]) -> Ray {
        Ray { origin: Vec3::from_array(o), dir: Vec3::from_array(d) }
    }

    #[test]
    fn sphere_hit_distance_and_normal() {
        let s = Shape::sphere(Vec3::new(5.0, 0.0, 1.0), 0.5);
        let h = s.intersect(&ray([0.0, 0.0, 1.0], [2.0, 0.0, 0.0]), 0.0, f32::INFINITY).unwrap();
        assert!((h.t - 2.25).abs() < 1e-6, "t = {}", h.t); // 4.5 m / |dir| = 2
        assert!((h.normal.x + 1.0).abs() < 1e-6);
        assert!(s.intersect(&ray([0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]), 0.0, f32::INFINITY).is_none());
    }

    #[test]
    fn rotated_box_hit() {
        // 45° rotated unit cube at origin: a ray along +x hits the corner edge at x = -sqrt(2)/2.
        let b = Shape::cuboid(Vec3::ZERO, Vec3::new(0.5, 0.5, 0.5), std::f32::consts::FRAC_PI_4);
        let h = b.intersect(&ray([-3.0, 0.0, 0.0], [1.0, 0.0, 0.0]), 0.0, 100.0).unwrap();
        assert!((h.t - (3.0 - 0.5f32.sqrt())).abs() < 1e-5, "t = {}", h.t);
        // Axis-aligned: hit face normal.
        let b = Shape::aabb(Vec3::new(1.0, -1.0, -1.0), Vec3::new(2.0, 1.0, 1.0));
        let h = b.intersect(&ray([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]), 0.0, 100.0).unwrap();
        assert_eq!(h.t, 1.0);
        assert_eq!(h.normal, Vec3::new(-1.0, 0.0, 0.0));
        assert!(b.intersect(&ray([0.0, 0.0, 0.0], [1.0, 0.0, 0.0]), 0.0, 0.5).is_none());
    }

    #[test]
    fn cylinder_side_and_cap() {
        let c = Shape::cylinder(3.0, 0.0, 0.5, 0.0, 2.0);
        let h = c.intersect(&ray([0.0, 0.0, 1.0], [1.0, 0.0, 0.0]), 0.0, 100.0).unwrap();
        assert!((h.t - 2.5).abs() < 1e-6);
        assert!((h.normal.x + 1.0).abs() < 1e-6);
        let h = c.intersect(&ray([3.1, 0.0, 5.0], [0.0, 0.0, -1.0]), 0.0, 100.0).unwrap();
        assert!((h.t - 3.0).abs() < 1e-6);
        assert_eq!(h.normal, Vec3::new(0.0, 0.0, 1.0));
        assert!(c.intersect(&ray([0.0, 0.0, 3.0], [1.0, 0.0, 0.0]), 0.0, 100.0).is_none());
    }
}
