//! Procedural materials: plain, checker, stripes, bands and smooth value noise.

use super::geometry::Vec3;

/// Procedural pattern mixing a material's `base` and `alt` colours.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Texture {
    /// Uniform `base` colour.
    Plain,
    /// 2-D checkerboard of square cells of side `scale` metres (in the surface's plane).
    Checker { scale: f32 },
    /// Stripes across the surface's first in-plane coordinate (vertical stripes on walls,
    /// planks on floors); `duty` is the fraction of each period drawn in `alt`.
    Stripes { period: f32, duty: f32 },
    /// Horizontal bands (along local z).
    Bands { period: f32, duty: f32 },
    /// Smooth fractal value noise with features of about `scale` metres.
    Noise { scale: f32 },
}

/// A diffuse material: albedo = mix(base, alt, pattern) with RGB in [0, 1].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Material {
    pub base: [f32; 3],
    pub alt: [f32; 3],
    pub texture: Texture,
}

impl Material {
    pub fn plain(rgb: [f32; 3]) -> Material {
        Material { base: rgb, alt: rgb, texture: Texture::Plain }
    }

    /// Albedo at local point `p` with local normal `n` (both in the primitive's frame).
    #[inline]
    pub fn albedo(&self, p: Vec3, n: Vec3) -> [f32; 3] {
        let w = match self.texture {
            Texture::Plain => return self.base,
            Texture::Checker { scale } => {
                let (u, v) = plane_coords(p, n);
                let k = ifloor(u / scale) as i64 + ifloor(v / scale) as i64;
                (k & 1) as f32
            }
            Texture::Stripes { period, duty } => {
                let (u, _) = plane_coords(p, n);
                if fract(u / period) < duty {
                    1.0
                } else {
                    0.0
                }
            }
            Texture::Bands { period, duty } => {
                if fract(p.z / period) < duty {
                    1.0
                } else {
                    0.0
                }
            }
            Texture::Noise { scale } => {
                let inv = 1.0 / scale;
                if n.x.abs().max(n.y.abs()).max(n.z.abs()) == 1.0 {
                    // Axis-aligned planar face: 2-D noise in the face's plane (cheaper).
                    let (u, v) = plane_coords(p, n);
                    fbm2(u * inv, v * inv)
                } else {
                    fbm(p * inv)
                }
            }
        };
        mix(self.base, self.alt, w)
    }
}

/// floor(x) as an integer, without a libm call (x86-64 baseline has no SSE4.1 round).
#[inline]
fn ifloor(x: f32) -> i32 {
    let i = x as i32;
    i - (x < i as f32) as i32
}

#[inline]
fn fract(x: f32) -> f32 {
    x - ifloor(x) as f32
}

fn mix(a: [f32; 3], b: [f32; 3], w: f32) -> [f32; 3] {
    [a[0] + (b[0] - a[0]) * w, a[1] + (b[1] - a[1]) * w, a[2] + (b[2] - a[2]) * w]
}

/// 2-D coordinates in the plane most perpendicular to `n`: (x, y) on horizontal
/// surfaces, the horizontal coordinate first on vertical ones.
#[inline]
fn plane_coords(p: Vec3, n: Vec3) -> (f32, f32) {
    let (ax, ay, az) = (n.x.abs(), n.y.abs(), n.z.abs());
    if az >= ax && az >= ay {
        (p.x, p.y)
    } else if ax >= ay {
        (p.y, p.z)
    } else {
        (p.x, p.z)
    }
}

#[inline]
fn hash3(x: i32, y: i32, z: i32) -> f32 {
    let mut h = (x as u32).wrapping_mul(0x8da6_b343)
        ^ (y as u32).wrapping_mul(0xd816_3841)
        ^ (z as u32).wrapping_mul(0xcb1a_b31f);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2c1b_3c6d);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297a_2d39);
    h ^= h >> 15;
    (h >> 8) as f32 * (1.0 / 16_777_216.0)
}

#[inline]
fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

#[inline]
fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// Bilinear value noise in [0, 1] with smoothstep interpolation.
fn value_noise2(x: f32, y: f32) -> f32 {
    let (ix, iy) = (ifloor(x), ifloor(y));
    let (tx, ty) = (smooth(x - ix as f32), smooth(y - iy as f32));
    let c = |dx, dy| hash3(ix + dx, iy + dy, 0x5bd1);
    lerp(lerp(c(0, 0), c(1, 0), tx), lerp(c(0, 1), c(1, 1), tx), ty)
}

/// Three octaves of 2-D value noise, in [0, 1].
pub fn fbm2(x: f32, y: f32) -> f32 {
    let a = value_noise2(x, y);
    let b = value_noise2(x * 2.03 + 17.1, y * 2.03 + 3.7);
    let c = value_noise2(x * 4.11 - 5.3, y * 4.11 + 11.9);
    (a * 0.57 + b * 0.29 + c * 0.14).clamp(0.0, 1.0)
}

/// Trilinear value noise in [0, 1] with smoothstep interpolation.
fn value_noise(p: Vec3) -> f32 {
    let (ix, iy, iz) = (ifloor(p.x), ifloor(p.y), ifloor(p.z));
    let (fx, fy, fz) = (ix as f32, iy as f32, iz as f32);
    let (tx, ty, tz) = (smooth(p.x - fx), smooth(p.y - fy), smooth(p.z - fz));
    let c = |dx, dy, dz| hash3(ix + dx, iy + dy, iz + dz);
    let x00 = lerp(c(0, 0, 0), c(1, 0, 0), tx);
    let x10 = lerp(c(0, 1, 0), c(1, 1, 0), tx);
    let x01 = lerp(c(0, 0, 1), c(1, 0, 1), tx);
    let x11 = lerp(c(0, 1, 1), c(1, 1, 1), tx);
    lerp(lerp(x00, x10, ty), lerp(x01, x11, ty), tz)
}

/// Three octaves of value noise, in [0, 1].
pub fn fbm(p: Vec3) -> f32 {
    let a = value_noise(p);
    let b = value_noise(p * 2.03 + Vec3::new(17.1, 3.7, 9.2));
    let c = value_noise(p * 4.11 + Vec3::new(-5.3, 11.9, 2.8));
    (a * 0.57 + b * 0.29 + c * 0.14).clamp(0.0, 1.0)
}

/// HSV (h in degrees, s and v in [0, 1]) to RGB in [0, 1].
pub fn hsv(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h = h.rem_euclid(360.0) / 60.0;
    let c = v * s;
    let x = c * (1.0 - ((h % 2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_range_and_determinism() {
        for i in 0..1000 {
            let p = Vec3::new(i as f32 * 0.137, -(i as f32) * 0.071, i as f32 * 0.013);
            let v = fbm(p);
            assert!((0.0..=1.0).contains(&v));
            assert_eq!(v, fbm(p));
            let w = fbm2(p.x, p.y);
            assert!((0.0..=1.0).contains(&w));
        }
        for x in [-2.5f32, -1.0, -0.3, 0.0, 0.7, 3.0] {
            assert_eq!(ifloor(x) as f32, x.floor());
        }
    }

    #[test]
    fn checker_alternates() {
        let m = Material { base: [0.0; 3], alt: [1.0; 3], texture: Texture::Checker { scale: 1.0 } };
        let up = Vec3::new(0.0, 0.0, 1.0);
        assert_eq!(m.albedo(Vec3::new(0.5, 0.5, 0.0), up), [0.0; 3]);
        assert_eq!(m.albedo(Vec3::new(1.5, 0.5, 0.0), up), [1.0; 3]);
        assert_eq!(m.albedo(Vec3::new(-0.5, 0.5, 0.0), up), [1.0; 3]);
    }

    #[test]
    fn hsv_primaries() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [1.0, 0.0, 0.0]);
        assert_eq!(hsv(120.0, 1.0, 1.0), [0.0, 1.0, 0.0]);
        assert_eq!(hsv(240.0, 1.0, 0.5), [0.0, 0.0, 0.5]);
    }
}
