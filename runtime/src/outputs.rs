//! Typed per-frame results: class ids, metric depth, unit normals.
use ndarray::{Array2, Array3, ArrayView4, Axis};

use crate::kernels::cpu_f32::argmax::CHUNK;
use crate::preprocess::bilinear_source;

/// One frame's results at a stated resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Outputs {
    /// Class id per pixel (index into the model's class names).
    pub labels: Array2<u8>,
    /// Metres along the camera's optical axis (z); NaN where invalid.
    pub depth: Array2<f32>,
    /// H×W×3 unit vectors in the camera optical frame (x right, y down, z forward).
    pub normals: Array3<f32>,
    /// Output pixels per input pixel, (rows, columns). (1, 1) when at the input resolution.
    pub scale: (f32, f32),
}

impl Outputs {
    /// Convert raw model outputs (1×K×H×W logits, 1×1×H×W depth, 1×3×H×W normals).
    pub fn from_raw(
        seg: ArrayView4<f32>,
        depth: ArrayView4<f32>,
        normals: ArrayView4<f32>,
        scale: (f32, f32),
    ) -> Outputs {
        let seg = seg.index_axis(Axis(0), 0);
        let (k, h, w) = (seg.shape()[0], seg.shape()[1], seg.shape()[2]);
        let labels = match seg.as_slice() {
            // Contiguous logits (what the runtime produces): argmax by pixel chunks.
            Some(planes) if k > 0 => {
                let n = h * w;
                let mut labels = vec![0u8; n];
                chunked(&mut labels, 1, |first, out| argmax_chunk(planes, n, first, out));
                Array2::from_shape_vec((h, w), labels).expect("h·w labels")
            }
            _ => Array2::from_shape_fn((h, w), |(y, x)| {
                let mut best = 0;
                for c in 1..k {
                    if seg[[c, y, x]] > seg[[best, y, x]] {
                        best = c;
                    }
                }
                best as u8
            }),
        };
        let valid = |d: f32| if d.is_finite() && d > 0.0 { d } else { f32::NAN };
        let depth = depth.index_axis_move(Axis(0), 0).index_axis_move(Axis(0), 0);
        let depth = match depth.as_slice() {
            Some(src) => {
                let mut out = vec![0f32; src.len()];
                chunked(&mut out, 1, |first, dst| {
                    dst.iter_mut().zip(&src[first..]).for_each(|(d, &s)| *d = valid(s));
                });
                Array2::from_shape_vec(depth.dim(), out).expect("h·w depth")
            }
            None => depth.mapv(valid),
        };
        let normals = normals.index_axis(Axis(0), 0);
        let normals = match normals.as_slice() {
            Some(planes) => {
                let (c, nh, nw) = normals.dim();
                let n = nh * nw;
                let mut hwc = vec![0f32; n * c];
                chunked(&mut hwc, c.max(1), |first, px| {
                    if c == 3 {
                        // The usual case: one pass writing whole pixels.
                        let (x, y, z) = (&planes[first..n], &planes[n + first..2 * n], &planes[2 * n + first..3 * n]);
                        for (((px, &a), &b), &d) in px.chunks_exact_mut(3).zip(x).zip(y).zip(z) {
                            px.copy_from_slice(&[a, b, d]);
                        }
                    } else {
                        for (p, px) in px.chunks_exact_mut(c).enumerate() {
                            for (ch, v) in px.iter_mut().enumerate() {
                                *v = planes[ch * n + first + p];
                            }
                        }
                    }
                });
                Array3::from_shape_vec((nh, nw, c), hwc).expect("h·w·c normals")
            }
            None => normals.permuted_axes([1, 2, 0]).as_standard_layout().into_owned(),
        };
        Outputs { labels, depth, normals, scale }
    }

    /// Resample to `(height, width)`: nearest for labels, bilinear for depth and normals
    /// (normals renormalised). Used to return results at the input image's resolution.
    pub fn resized(&self, height: usize, width: usize) -> Outputs {
        let (h, w) = self.labels.dim();
        let sy = h as f32 / height as f32;
        let sx = w as f32 / width as f32;
        let near = |o: usize, s: f32, n: usize| (((o as f32 + 0.5) * s) as usize).min(n - 1);
        let labels = Array2::from_shape_fn((height, width), |(y, x)| self.labels[[near(y, sy, h), near(x, sx, w)]]);
        let bilerp = |y: usize, x: usize, f: &dyn Fn(usize, usize) -> f32| {
            let (y0, y1, fy) = bilinear_source(y, sy, h);
            let (x0, x1, fx) = bilinear_source(x, sx, w);
            let top = f(y0, x0) * (1.0 - fx) + f(y0, x1) * fx;
            let bot = f(y1, x0) * (1.0 - fx) + f(y1, x1) * fx;
            top * (1.0 - fy) + bot * fy
        };
        let depth = Array2::from_shape_fn((height, width), |(y, x)| bilerp(y, x, &|a, b| self.depth[[a, b]]));
        let mut normals =
            Array3::from_shape_fn((height, width, 3), |(y, x, c)| bilerp(y, x, &|a, b| self.normals[[a, b, c]]));
        for mut n in normals.lanes_mut(Axis(2)) {
            let len = n.dot(&n).sqrt().max(1e-12);
            n.mapv_inplace(|v| v / len);
        }
        Outputs { labels, depth, normals, scale: (1.0, 1.0) }
    }

    /// RGB image of the labels using `palette` (class id → colour).
    pub fn colorize(&self, palette: &[[u8; 3]]) -> Array3<u8> {
        let (h, w) = self.labels.dim();
        Array3::from_shape_fn((h, w, 3), |(y, x, c)| palette.get(self.labels[[y, x]] as usize).map_or(0, |p| p[c]))
    }
}

/// Calls `f(first_pixel, values)` on consecutive chunks of `out` (`per_pixel` values a pixel).
/// (Splitting the chunks across 2 threads measured no gain on a 2-vCPU AMD EPYC: the passes are
/// memory-bound once the argmax vectorises; `examples/outputs_bench`.)
fn chunked<T>(out: &mut [T], per_pixel: usize, f: impl Fn(usize, &mut [T])) {
    out.chunks_mut(CHUNK * per_pixel).enumerate().for_each(|(i, c)| f(i * CHUNK, c));
}

/// The class argmax of pixels `first..first + out.len()` on the process's ISA table.
fn argmax_chunk(planes: &[f32], n: usize, first: usize, out: &mut [u8]) {
    // SAFETY: isa::best() is a table this CPU supports; `out` is at most one CHUNK.
    unsafe { (crate::kernels::cpu_f32::isa::best().argmax)(planes, n, first, out) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    fn raw() -> Outputs {
        let seg = Array4::from_shape_fn((1, 3, 4, 6), |(_, c, y, x)| if c == (x + y) % 3 { 1.0 } else { 0.0 });
        let depth =
            Array4::from_shape_fn((1, 1, 4, 6), |(_, _, y, x)| if x == 0 && y == 0 { -1.0 } else { 1.0 + x as f32 });
        let normals = Array4::from_shape_fn((1, 3, 4, 6), |(_, c, _, x)| match c {
            0 => (x as f32 * 0.3).sin(),
            1 => 0.0,
            _ => -(x as f32 * 0.3).cos(),
        });
        Outputs::from_raw(seg.view(), depth.view(), normals.view(), (0.5, 0.5))
    }

    /// The chunked passes equal a per-pixel scan, on a frame whose pixel count is not a multiple
    /// of the chunk, with ties, NaN and invalid depths (on 1 and 3 threads: nothing depends on
    /// the caller's pool).
    #[test]
    fn chunked_passes_equal_a_per_pixel_scan() {
        let (k, h, w) = (5, 37, 131);
        let logit = |c: usize, y: usize, x: usize| match (c * 7 + y * 3 + x) % 11 {
            0 => f32::NAN,
            1 | 2 => 0.5, // ties
            v => v as f32 * 0.1 - (c as f32 * 0.05),
        };
        let seg = Array4::from_shape_fn((1, k, h, w), |(_, c, y, x)| logit(c, y, x));
        let depth = Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| match (y + x) % 5 {
            0 => -1.0,
            1 => f32::INFINITY,
            v => v as f32,
        });
        let normals = Array4::from_shape_fn((1, 3, h, w), |(_, c, y, x)| (c * 100 + y * w + x) as f32);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let o = pool.install(|| Outputs::from_raw(seg.view(), depth.view(), normals.view(), (1.0, 1.0)));
            for y in 0..h {
                for x in 0..w {
                    let mut best = 0;
                    for c in 1..k {
                        if logit(c, y, x) > seg[[0, best, y, x]] {
                            best = c;
                        }
                    }
                    assert_eq!(o.labels[[y, x]] as usize, best, "label at {y},{x}, {threads} threads");
                    let d = depth[[0, 0, y, x]];
                    let want = if d.is_finite() && d > 0.0 { d } else { f32::NAN };
                    assert_eq!(o.depth[[y, x]].to_bits(), want.to_bits(), "depth at {y},{x}");
                    for c in 0..3 {
                        assert_eq!(o.normals[[y, x, c]], normals[[0, c, y, x]], "normal at {y},{x},{c}");
                    }
                }
            }
        }
    }

    /// Every argmax build this CPU runs equals the per-pixel scan (ties, NaN, a partial chunk).
    #[test]
    fn every_argmax_build_equals_a_scan() {
        let (k, n) = (7, 3001);
        let planes: Vec<f32> = (0..k * n)
            .map(|i| match (i * 7 + i / n) % 13 {
                0 => f32::NAN,
                1 | 2 => 0.25,
                v => v as f32 * 0.1 - (i / n) as f32 * 0.07,
            })
            .collect();
        let want: Vec<u8> = (0..n)
            .map(|p| {
                let mut best = 0;
                for c in 1..k {
                    if planes[c * n + p] > planes[best * n + p] {
                        best = c;
                    }
                }
                best as u8
            })
            .collect();
        for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
            let mut got = vec![9u8; n];
            for (i, chunk) in got.chunks_mut(CHUNK).enumerate() {
                // SAFETY: supported() lists only tables this CPU runs.
                unsafe { (isa.argmax)(&planes, n, i * CHUNK, chunk) };
            }
            assert_eq!(got, want, "{}", isa.name);
        }
    }

    #[test]
    fn argmax_layout_and_invalid_depth() {
        let o = raw();
        assert_eq!(o.labels[[1, 2]], 0);
        assert_eq!(o.labels[[0, 1]], 1);
        assert!(o.depth[[0, 0]].is_nan());
        assert_eq!(o.depth[[2, 3]], 4.0);
        assert_eq!(o.normals.dim(), (4, 6, 3));
        assert_eq!(o.scale, (0.5, 0.5));
    }

    #[test]
    fn resized_keeps_unit_normals_and_valid_labels() {
        let o = raw().resized(9, 13);
        assert_eq!(o.labels.dim(), (9, 13));
        assert!(o.labels.iter().all(|&l| l < 3));
        for n in o.normals.lanes(Axis(2)) {
            assert!((n.dot(&n).sqrt() - 1.0).abs() < 1e-4);
        }
        assert_eq!(o.scale, (1.0, 1.0));
        assert_eq!(o.colorize(&[[1, 2, 3], [4, 5, 6], [7, 8, 9]]).dim(), (9, 13, 3));
    }
}
