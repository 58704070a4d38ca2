//! Light-space acceleration for shadow rays: a cube map of directions around the light,
//! each cell listing the objects whose bounding cone (seen from the light) overlaps it.

use super::geometry::{Bound, Vec3};

/// Cells per cube-face side.
const N: usize = 16;

#[derive(Clone, Debug, Default)]
pub(crate) struct ShadowGrid {
    /// `items[offsets[c]..offsets[c + 1]]` are the candidate objects of cell `c`.
    offsets: Vec<u32>,
    items: Vec<u32>,
}

/// Cube face and in-face coordinates in [-1, 1] of a (non-zero) direction.
#[inline]
fn face_coords(d: Vec3) -> (usize, f32, f32) {
    let (ax, ay, az) = (d.x.abs(), d.y.abs(), d.z.abs());
    if ax >= ay && ax >= az {
        (if d.x > 0.0 { 0 } else { 1 }, d.y / ax, d.z / ax)
    } else if ay >= az {
        (if d.y > 0.0 { 2 } else { 3 }, d.x / ay, d.z / ay)
    } else {
        (if d.z > 0.0 { 4 } else { 5 }, d.x / az, d.y / az)
    }
}

fn face_dir(face: usize, s: f32, t: f32) -> Vec3 {
    match face {
        0 => Vec3::new(1.0, s, t),
        1 => Vec3::new(-1.0, s, t),
        2 => Vec3::new(s, 1.0, t),
        3 => Vec3::new(s, -1.0, t),
        4 => Vec3::new(s, t, 1.0),
        _ => Vec3::new(s, t, -1.0),
    }
    .normalized()
}

#[inline]
fn cell_of(d: Vec3) -> usize {
    let (face, s, t) = face_coords(d);
    let idx = |x: f32| (((x + 1.0) * 0.5 * N as f32) as usize).min(N - 1);
    face * N * N + idx(t) * N + idx(s)
}

impl ShadowGrid {
    pub(crate) fn build(bounds: &[Bound]) -> ShadowGrid {
        let half_angles: Vec<Option<f32>> = bounds.iter().map(|b| b.cone_half_angle()).collect();
        let mut offsets = Vec::with_capacity(6 * N * N + 1);
        let mut items = Vec::new();
        offsets.push(0);
        let step = 2.0 / N as f32;
        for face in 0..6 {
            for j in 0..N {
                for i in 0..N {
                    let (s0, t0) = (-1.0 + i as f32 * step, -1.0 + j as f32 * step);
                    let center = face_dir(face, s0 + 0.5 * step, t0 + 0.5 * step);
                    let radius = [(s0, t0), (s0 + step, t0), (s0, t0 + step), (s0 + step, t0 + step)]
                        .iter()
                        .map(|&(s, t)| center.dot(face_dir(face, s, t)).clamp(-1.0, 1.0).acos())
                        .fold(0.0f32, f32::max);
                    for (k, (b, half)) in bounds.iter().zip(&half_angles).enumerate() {
                        let overlaps = match half {
                            None => true,
                            Some(a) => {
                                let angle = center.dot(b.to_center).clamp(-1.0, 1.0).acos();
                                angle <= a + radius + 1e-3
                            }
                        };
                        if overlaps {
                            items.push(k as u32);
                        }
                    }
                    offsets.push(items.len() as u32);
                }
            }
        }
        ShadowGrid { offsets, items }
    }

    /// Objects that may block light travelling from the light in direction `dir`.
    #[inline]
    pub(crate) fn candidates(&self, dir: Vec3) -> &[u32] {
        let c = cell_of(dir);
        &self.items[self.offsets[c] as usize..self.offsets[c + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenes::geometry::Shape;

    #[test]
    fn cells_cover_all_directions() {
        let mut seen = vec![false; 6 * N * N];
        for i in 0..20000 {
            let a = i as f32 * 0.618_034 * std::f32::consts::TAU;
            let z = 1.0 - 2.0 * (i as f32 + 0.5) / 20000.0;
            let r = (1.0 - z * z).sqrt();
            let d = Vec3::new(r * a.cos(), r * a.sin(), z);
            let c = cell_of(d);
            seen[c] = true;
            // The cell's centre direction is close to d.
            let (face, s, t) = face_coords(d);
            assert_eq!(c / (N * N), face);
            assert!(s.abs() <= 1.0 && t.abs() <= 1.0);
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn object_listed_in_its_direction_only() {
        let light = Vec3::new(0.0, 0.0, 3.0);
        let b = Bound::new(&Shape::sphere(Vec3::new(2.0, 0.0, 0.5), 0.3), light);
        let grid = ShadowGrid::build(&[b]);
        assert_eq!(grid.candidates(Vec3::new(2.0, 0.0, -2.5)), &[0]);
        assert_eq!(grid.candidates(Vec3::new(2.3, 0.2, -2.5)), &[0]);
        assert!(grid.candidates(Vec3::new(-2.0, 0.0, -2.5)).is_empty());
        assert!(grid.candidates(Vec3::new(0.0, 2.0, -2.5)).is_empty());
        // Light inside the bounding sphere: listed everywhere.
        let b = Bound::new(&Shape::sphere(Vec3::new(0.0, 0.0, 2.9), 0.3), light);
        let grid = ShadowGrid::build(&[b]);
        assert_eq!(grid.candidates(Vec3::new(0.0, 1.0, 0.0)), &[0]);
    }
}
