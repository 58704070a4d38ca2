//! Typed per-frame results: class ids, metric depth, unit normals.
use ndarray::{Array2, Array3, ArrayView4, Axis};

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
            // Contiguous logits (what the runtime produces): a running max over channel planes.
            Some(planes) if k > 0 => {
                let n = h * w;
                let mut best_val = planes[..n].to_vec();
                let mut labels = vec![0u8; n];
                for (c, plane) in planes.chunks_exact(n).enumerate().skip(1) {
                    // Branch-free select (vectorises); a strictly greater logit wins, so ties keep
                    // the lower class id.
                    let c = c as u8;
                    for ((v, l), &s) in best_val.iter_mut().zip(labels.iter_mut()).zip(plane) {
                        let greater = s > *v;
                        *v = if greater { s } else { *v };
                        *l = if greater { c } else { *l };
                    }
                }
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
        let depth = depth.index_axis(Axis(0), 0).index_axis(Axis(0), 0).mapv(|d| {
            if d.is_finite() && d > 0.0 {
                d
            } else {
                f32::NAN
            }
        });
        let normals = normals.index_axis(Axis(0), 0);
        let normals = match normals.as_slice() {
            Some(planes) => {
                let (c, nh, nw) = normals.dim();
                let n = nh * nw;
                let mut hwc = vec![0f32; n * c];
                if c == 3 {
                    // The usual case: one pass writing whole pixels.
                    let (x, y, z) = (&planes[..n], &planes[n..2 * n], &planes[2 * n..3 * n]);
                    for (((px, &a), &b), &d) in hwc.chunks_exact_mut(3).zip(x).zip(y).zip(z) {
                        px.copy_from_slice(&[a, b, d]);
                    }
                } else {
                    for (ch, plane) in planes.chunks_exact(n).enumerate() {
                        for (p, &v) in plane.iter().enumerate() {
                            hwc[p * c + ch] = v;
                        }
                    }
                }
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
