//! Deterministic random generation of furnished rooms ([`Scene::random`]).

use super::geometry::{Shape, Vec3};
use super::scene::{uni, Object, Scene, FACE_CEILING, FACE_FLOOR};
use super::texture::{hsv, Material, Texture};
use super::Class;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f32::consts::{FRAC_PI_2, PI};

/// Margin kept between objects and walls / between objects (m).
const MARGIN: f32 = 0.05;
const ANY_HUE: (f32, f32) = (0.0, 360.0);
const WOOD_HUE: (f32, f32) = (15.0, 45.0);

fn rand_hsv(rng: &mut ChaCha8Rng, h: (f32, f32), s: (f32, f32), v: (f32, f32)) -> [f32; 3] {
    let (hh, ss, vv) = (uni(rng, h.0, h.1), uni(rng, s.0, s.1), uni(rng, v.0, v.1));
    hsv(hh, ss, vv)
}

fn shade(c: [f32; 3], k: f32) -> [f32; 3] {
    [(c[0] * k).min(1.0), (c[1] * k).min(1.0), (c[2] * k).min(1.0)]
}

impl Scene {
    /// A random furnished room; the same seed always gives the same scene.
    pub fn random(seed: u64) -> Scene {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w = uni(&mut rng, 4.0, 9.0);
        let l = uni(&mut rng, 4.0, 9.0);
        let h = uni(&mut rng, 2.4, 3.2);
        let mut scene = Scene::empty_room(w, l, h);
        scene.ambient = uni(&mut rng, 0.22, 0.38);
        scene.light_gain = uni(&mut rng, 0.9, 1.3);

        scene.room[FACE_FLOOR] = floor_material(&mut rng);
        scene.room[FACE_CEILING] = ceiling_material(&mut rng);
        let wall = wall_material(&mut rng);
        for face in 2..6 {
            scene.room[face] = wall;
        }
        if rng.random_bool(0.3) {
            scene.room[rng.random_range(2..6)] = wall_material(&mut rng);
        }

        let mut placer = Placer { w, l, h, items: Vec::new(), pictures: Vec::new() };
        let n = rng.random_range(3..=10);
        let mut attempts = 0;
        while scene.furniture < n && attempts < 400 {
            let class = match rng.random_range(0..100) {
                0..24 => Class::Table,
                24..44 => Class::Cabinet,
                44..58 => Class::Pillar,
                58..78 => Class::Ball,
                _ => Class::Picture,
            };
            for _ in 0..10 {
                attempts += 1;
                if let Some(parts) = placer.try_place(&mut rng, class) {
                    for part in parts {
                        scene.push_object(part);
                    }
                    scene.furniture += 1;
                    break;
                }
            }
        }

        // Light near the ceiling, not inside a pillar.
        let fps = scene.footprints();
        for _ in 0..100 {
            let p = [uni(&mut rng, 0.25 * w, 0.75 * w), uni(&mut rng, 0.25 * l, 0.75 * l)];
            scene.set_light([p[0], p[1], h - 0.12]);
            if scene.clearance_with(&fps, p[0], p[1]) > 0.1 {
                break;
            }
        }
        scene
    }
}

fn floor_material(rng: &mut ChaCha8Rng) -> Material {
    match rng.random_range(0..4) {
        0 => {
            let base = rand_hsv(rng, ANY_HUE, (0.0, 0.3), (0.45, 0.9));
            let alt = if rng.random_bool(0.5) {
                shade(base, uni(rng, 0.55, 0.8))
            } else {
                rand_hsv(rng, ANY_HUE, (0.0, 0.4), (0.2, 0.8))
            };
            Material { base, alt, texture: Texture::Checker { scale: uni(rng, 0.3, 0.8) } }
        }
        1 => {
            let base = rand_hsv(rng, WOOD_HUE, (0.35, 0.7), (0.3, 0.75));
            let alt = shade(base, uni(rng, 0.72, 0.9));
            let texture = Texture::Stripes { period: uni(rng, 0.1, 0.25), duty: 0.5 };
            Material { base, alt, texture }
        }
        2 => {
            let base = rand_hsv(rng, ANY_HUE, (0.1, 0.6), (0.25, 0.7));
            let alt = shade(base, uni(rng, 0.65, 0.85));
            Material { base, alt, texture: Texture::Noise { scale: uni(rng, 0.05, 0.4) } }
        }
        _ => {
            let base = rand_hsv(rng, ANY_HUE, (0.0, 0.15), (0.35, 0.75));
            let alt = shade(base, uni(rng, 0.75, 0.9));
            Material { base, alt, texture: Texture::Noise { scale: uni(rng, 0.5, 2.0) } }
        }
    }
}

fn wall_material(rng: &mut ChaCha8Rng) -> Material {
    let base = rand_hsv(rng, ANY_HUE, (0.03, 0.35), (0.55, 0.95));
    match rng.random_range(0..100) {
        0..35 => Material::plain(base),
        35..60 => {
            let alt = shade(base, uni(rng, 0.8, 0.92));
            let texture = Texture::Stripes { period: uni(rng, 0.1, 0.5), duty: uni(rng, 0.3, 0.6) };
            Material { base, alt, texture }
        }
        60..85 => {
            let alt = shade(base, uni(rng, 0.82, 0.93));
            Material { base, alt, texture: Texture::Noise { scale: uni(rng, 0.2, 1.0) } }
        }
        _ => {
            let alt = rand_hsv(rng, ANY_HUE, (0.0, 0.4), (0.5, 0.95));
            Material { base, alt, texture: Texture::Checker { scale: uni(rng, 0.15, 0.4) } }
        }
    }
}

fn ceiling_material(rng: &mut ChaCha8Rng) -> Material {
    let base = rand_hsv(rng, ANY_HUE, (0.0, 0.12), (0.8, 0.97));
    match rng.random_range(0..3) {
        0 => Material::plain(base),
        1 => Material { base, alt: shade(base, 0.9), texture: Texture::Noise { scale: uni(rng, 0.3, 1.0) } },
        _ => Material { base, alt: shade(base, 0.85), texture: Texture::Checker { scale: 0.6 } },
    }
}

/// Keeps track of what has been placed so that objects do not overlap.
struct Placer {
    w: f32,
    l: f32,
    h: f32,
    /// Floor footprints (x, y, r).
    items: Vec<[f32; 3]>,
    /// Pictures: (wall, a0, a1, z0, z1).
    pictures: Vec<(usize, f32, f32, f32, f32)>,
}

impl Placer {
    /// Random centre for a rectangle with half extents (hx, hy) and `yaw`, fully inside the room.
    fn rect_center(&self, rng: &mut ChaCha8Rng, hx: f32, hy: f32, yaw: f32) -> (f32, f32) {
        let (s, c) = yaw.sin_cos();
        let ex = c.abs() * hx + s.abs() * hy + MARGIN;
        let ey = s.abs() * hx + c.abs() * hy + MARGIN;
        (uni(rng, ex, self.w - ex), uni(rng, ey, self.l - ey))
    }

    fn free(&self, x: f32, y: f32, r: f32) -> bool {
        self.items.iter().all(|f| (x - f[0]).hypot(y - f[1]) >= r + f[2] + 0.1)
    }

    fn try_place(&mut self, rng: &mut ChaCha8Rng, class: Class) -> Option<Vec<Object>> {
        match class {
            Class::Table => self.table(rng),
            Class::Cabinet => self.cabinet(rng),
            Class::Pillar => self.pillar(rng),
            Class::Ball => self.ball(rng),
            _ => self.picture(rng),
        }
    }

    fn commit(&mut self, x: f32, y: f32, r: f32, parts: Vec<Object>) -> Option<Vec<Object>> {
        if !self.free(x, y, r) {
            return None;
        }
        self.items.push([x, y, r]);
        Some(parts)
    }

    fn table(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<Object>> {
        let hx = uni(rng, 0.3, 0.9);
        let hy = uni(rng, 0.25, 0.5);
        let top = uni(rng, 0.6, 0.8);
        let thick = uni(rng, 0.03, 0.06);
        let yaw = if rng.random_bool(0.5) { rng.random_range(0..2) as f32 * FRAC_PI_2 } else { uni(rng, 0.0, PI) };
        let (x, y) = self.rect_center(rng, hx, hy, yaw);
        let material = if rng.random_bool(0.6) {
            let base = rand_hsv(rng, WOOD_HUE, (0.35, 0.75), (0.3, 0.75));
            Material { base, alt: shade(base, 0.8), texture: Texture::Noise { scale: uni(rng, 0.05, 0.3) } }
        } else {
            Material::plain(rand_hsv(rng, ANY_HUE, (0.05, 0.6), (0.3, 0.9)))
        };
        let mut parts = Vec::new();
        let obj = |shape| Object { class: Class::Table, shape, material };
        if rng.random_bool(0.2) {
            // Solid block (desk / counter).
            parts.push(obj(Shape::cuboid(Vec3::new(x, y, top * 0.5), Vec3::new(hx, hy, top * 0.5), yaw)));
        } else {
            let c = Vec3::new(x, y, top - thick * 0.5);
            parts.push(obj(Shape::cuboid(c, Vec3::new(hx, hy, thick * 0.5), yaw)));
            let lw = uni(rng, 0.02, 0.04);
            let inset = uni(rng, 0.02, 0.08) + lw;
            let round = rng.random_bool(0.4);
            let leg_h = top - thick;
            let (s, co) = yaw.sin_cos();
            for (sx, sy) in [(-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0)] {
                let lx = sx * (hx - inset);
                let ly = sy * (hy - inset);
                let (px, py) = (x + co * lx - s * ly, y + s * lx + co * ly);
                let shape = if round {
                    Shape::cylinder(px, py, lw, 0.0, leg_h)
                } else {
                    Shape::cuboid(Vec3::new(px, py, leg_h * 0.5), Vec3::new(lw, lw, leg_h * 0.5), yaw)
                };
                parts.push(obj(shape));
            }
        }
        self.commit(x, y, hx.hypot(hy), parts)
    }

    fn cabinet(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<Object>> {
        let hx = uni(rng, 0.2, 0.6); // half width
        let hy = uni(rng, 0.18, 0.3); // half depth
        let height = uni(rng, 1.2, 2.2).min(self.h - 0.1);
        let (x, y, yaw) = if rng.random_bool(0.6) {
            match rng.random_range(0..4) {
                0 => (MARGIN + hy, uni(rng, MARGIN + hx, self.l - MARGIN - hx), FRAC_PI_2),
                1 => (self.w - MARGIN - hy, uni(rng, MARGIN + hx, self.l - MARGIN - hx), -FRAC_PI_2),
                2 => (uni(rng, MARGIN + hx, self.w - MARGIN - hx), MARGIN + hy, 0.0),
                _ => (uni(rng, MARGIN + hx, self.w - MARGIN - hx), self.l - MARGIN - hy, PI),
            }
        } else {
            let yaw = uni(rng, 0.0, PI);
            let (x, y) = self.rect_center(rng, hx, hy, yaw);
            (x, y, yaw)
        };
        let base = rand_hsv(rng, ANY_HUE, (0.05, 0.6), (0.25, 0.9));
        let material = match rng.random_range(0..4) {
            0 => Material::plain(base),
            1 => {
                let doors = rng.random_range(1..=3) as f32;
                let texture = Texture::Stripes { period: 2.0 * hx / doors, duty: 0.03 };
                Material { base, alt: shade(base, 0.4), texture }
            }
            2 => {
                let texture = Texture::Bands { period: uni(rng, 0.2, 0.45), duty: 0.05 };
                Material { base, alt: shade(base, 0.45), texture }
            }
            _ => Material { base, alt: shade(base, 0.8), texture: Texture::Noise { scale: uni(rng, 0.05, 0.3) } },
        };
        let shape = Shape::cuboid(Vec3::new(x, y, height * 0.5), Vec3::new(hx, hy, height * 0.5), yaw);
        self.commit(x, y, hx.hypot(hy), vec![Object { class: Class::Cabinet, shape, material }])
    }

    fn pillar(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<Object>> {
        let base = rand_hsv(rng, ANY_HUE, (0.0, 0.3), (0.5, 0.95));
        let material = match rng.random_range(0..3) {
            0 => Material::plain(base),
            1 => Material { base, alt: shade(base, 0.85), texture: Texture::Noise { scale: uni(rng, 0.1, 0.5) } },
            _ => Material {
                base,
                alt: shade(base, 0.7),
                texture: Texture::Bands { period: uni(rng, 0.3, 1.2), duty: 0.1 },
            },
        };
        let (x, y, r, shape);
        if rng.random_bool(0.7) {
            r = uni(rng, 0.1, 0.35);
            (x, y) = self.rect_center(rng, r, r, 0.0);
            shape = Shape::cylinder(x, y, r, 0.0, self.h);
        } else {
            let hs = uni(rng, 0.1, 0.3);
            let yaw = if rng.random_bool(0.6) { 0.0 } else { uni(rng, 0.0, FRAC_PI_2) };
            (x, y) = self.rect_center(rng, hs, hs, yaw);
            r = hs * std::f32::consts::SQRT_2;
            shape = Shape::cuboid(Vec3::new(x, y, self.h * 0.5), Vec3::new(hs, hs, self.h * 0.5), yaw);
        }
        self.commit(x, y, r, vec![Object { class: Class::Pillar, shape, material }])
    }

    fn ball(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<Object>> {
        let r = uni(rng, 0.1, 0.45);
        let (x, y) = self.rect_center(rng, r, r, 0.0);
        let base = rand_hsv(rng, ANY_HUE, (0.4, 1.0), (0.4, 1.0));
        let alt = rand_hsv(rng, ANY_HUE, (0.0, 1.0), (0.3, 1.0));
        let texture = match rng.random_range(0..4) {
            0 => Texture::Plain,
            1 => Texture::Bands { period: r * uni(rng, 0.3, 0.8), duty: 0.5 },
            2 => Texture::Noise { scale: r * uni(rng, 0.3, 1.0) },
            _ => Texture::Checker { scale: r * uni(rng, 0.3, 0.7) },
        };
        let shape = Shape::sphere(Vec3::new(x, y, r), r);
        self.commit(x, y, r, vec![Object { class: Class::Ball, shape, material: Material { base, alt, texture } }])
    }

    fn picture(&mut self, rng: &mut ChaCha8Rng) -> Option<Vec<Object>> {
        let wall = rng.random_range(0..4usize);
        let wall_len = if wall < 2 { self.l } else { self.w };
        let pw = uni(rng, 0.4, 1.4f32.min(wall_len - 0.6));
        let ph = uni(rng, 0.3, 1.0);
        let cz = uni(rng, (ph * 0.5 + 0.6).max(1.0), self.h - 0.15 - ph * 0.5);
        let ca = uni(rng, 0.3 + pw * 0.5, wall_len - 0.3 - pw * 0.5);
        let (a0, a1, z0, z1) = (ca - pw * 0.5, ca + pw * 0.5, cz - ph * 0.5, cz + ph * 0.5);
        let clash = self.pictures.iter().any(|&(wl, b0, b1, y0, y1)| {
            wl == wall && a0 < b1 + 0.1 && b0 < a1 + 0.1 && z0 < y1 + 0.1 && y0 < z1 + 0.1
        });
        if clash {
            return None;
        }
        self.pictures.push((wall, a0, a1, z0, z1));
        let (w, l) = (self.w, self.l);
        // Box from wall-local (along-wall a, out-of-wall d, z) ranges.
        let make = |a: (f32, f32), d: (f32, f32), z: (f32, f32)| {
            let (p, q) = match wall {
                0 => ((d.0, a.0), (d.1, a.1)),
                1 => ((w - d.1, a.0), (w - d.0, a.1)),
                2 => ((a.0, d.0), (a.1, d.1)),
                _ => ((a.0, l - d.1), (a.1, l - d.0)),
            };
            Shape::aabb(Vec3::new(p.0, p.1, z.0), Vec3::new(q.0, q.1, z.1))
        };
        let t = uni(rng, 0.02, 0.04);
        let art = Material {
            base: rand_hsv(rng, ANY_HUE, (0.2, 0.9), (0.3, 0.95)),
            alt: rand_hsv(rng, ANY_HUE, (0.2, 0.9), (0.2, 0.95)),
            texture: match rng.random_range(0..10) {
                0..6 => Texture::Noise { scale: uni(rng, 0.03, 0.25) },
                6 | 7 => Texture::Checker { scale: uni(rng, 0.05, 0.2) },
                8 => Texture::Stripes { period: uni(rng, 0.05, 0.3), duty: 0.5 },
                _ => Texture::Bands { period: uni(rng, 0.05, 0.3), duty: 0.5 },
            },
        };
        let mut parts = Vec::new();
        if rng.random_bool(0.7) {
            let fw = uni(rng, 0.03, 0.07);
            let frame = Material::plain(if rng.random_bool(0.5) {
                rand_hsv(rng, WOOD_HUE, (0.3, 0.8), (0.15, 0.8))
            } else {
                rand_hsv(rng, ANY_HUE, (0.0, 0.3), (0.05, 0.95))
            });
            parts.push(Object { class: Class::Picture, shape: make((a0, a1), (-0.01, t), (z0, z1)), material: frame });
            let canvas = make((a0 + fw, a1 - fw), (-0.01, t + 0.006), (z0 + fw, z1 - fw));
            parts.push(Object { class: Class::Picture, shape: canvas, material: art });
        } else {
            parts.push(Object { class: Class::Picture, shape: make((a0, a1), (-0.01, t), (z0, z1)), material: art });
        }
        Some(parts)
    }
}
