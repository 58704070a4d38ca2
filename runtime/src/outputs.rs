//! Typed per-frame results: class ids, metric depth, unit normals.
use ndarray::{Array2, Array3, ArrayView4, Axis};

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
    pub fn from_raw(seg: ArrayView4<f32>, depth: ArrayView4<f32>, normals: ArrayView4<f32>, scale: (f32, f32)) -> Outputs {
        let seg = seg.index_axis(Axis(0), 0);
        let (k, h, w) = (seg.shape()[0], seg.shape()[1], seg.shape()[2]);
        let labels = Array2::from_shape_fn((h, w), |(y, x)| {
            let mut best = 0;
            for c in 1..k {
                if seg[[c, y, x]] > seg[[best, y, x]] {
                    best = c;
                }
            }
            best as u8
        });
        let depth = depth.index_axis(Axis(0), 0).index_axis(Axis(0), 0).mapv(|d| if d.is_finite() && d > 0.0 { d } else { f32::NAN });
        let normals = normals.index_axis(Axis(0), 0).permuted_axes([1, 2, 0]).as_standard_layout().into_owned();
        Outputs { labels, depth, normals, scale }
    }

    /// Resample to `(height, width)`: nearest for labels, bilinear for depth and normals
    /// (normals renormalised). Used to return results at the input image's resolution.
    pub fn resized(&self, height: usize, width: usize) -> Outputs {
        let (h, w) = self.labels.dim();
        let sy = h as f32 / height as f32;
        let sx = w as f32 / width as f32;
        let near = |o: usize, s: f32, n: usize| (((o as f32 + 0.5) * s) as usize).min(n - 1);
        let lin = |o: usize, s: f32, n: usize| {
            let p = ((o as f32 + 0.5) * s - 0.5).clamp(0.0, (n - 1) as f32);
            let i0 = p.floor() as usize;
            (i0, (i0 + 1).min(n - 1), p - i0 as f32)
        };
        let labels = Array2::from_shape_fn((height, width), |(y, x)| self.labels[[near(y, sy, h), near(x, sx, w)]]);
        let bilerp = |y: usize, x: usize, f: &dyn Fn(usize, usize) -> f32| {
            let (y0, y1, fy) = lin(y, sy, h);
            let (x0, x1, fx) = lin(x, sx, w);
            let top = f(y0, x0) * (1.0 - fx) + f(y0, x1) * fx;
            let bot = f(y1, x0) * (1.0 - fx) + f(y1, x1) * fx;
            top * (1.0 - fy) + bot * fy
        };
        let depth = Array2::from_shape_fn((height, width), |(y, x)| bilerp(y, x, &|a, b| self.depth[[a, b]]));
        let mut normals = Array3::from_shape_fn((height, width, 3), |(y, x, c)| bilerp(y, x, &|a, b| self.normals[[a, b, c]]));
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
