//! Image → model input: bilinear resize (pixel centres aligned) fused with normalisation.
use ndarray::{ArrayView3, ArrayViewMut4};

use crate::graph::InputSpec;

/// Write `rgb` (H×W×3, u8) into `out` (1×3×h×w) resized and normalised as `spec` says.
pub fn fill_input(rgb: ArrayView3<u8>, spec: &InputSpec, mut out: ArrayViewMut4<f32>) {
    let (ih, iw) = (rgb.shape()[0], rgb.shape()[1]);
    let (oh, ow) = (spec.height, spec.width);
    let sy = ih as f32 / oh as f32;
    let sx = iw as f32 / ow as f32;
    let coef: [(f32, f32); 3] = std::array::from_fn(|c| (spec.scale / spec.std[c], spec.mean[c] / spec.std[c]));
    if let (true, Some(src), Some(dst)) = ((ih, iw) == (oh, ow), rgb.as_slice(), out.as_slice_mut()) {
        // Same size (the common case): pure normalisation, same values as the bilinear path.
        let n = oh * ow;
        for (c, (a, b)) in coef.iter().enumerate() {
            for (o, px) in dst[c * n..][..n].iter_mut().zip(src.chunks_exact(3)) {
                *o = px[c] as f32 * a - b;
            }
        }
        return;
    }
    for y in 0..oh {
        let (y0, y1, fy) = bilinear_source(y, sy, ih);
        for x in 0..ow {
            let (x0, x1, fx) = bilinear_source(x, sx, iw);
            for (c, (a, b)) in coef.iter().enumerate() {
                let top = rgb[[y0, x0, c]] as f32 * (1.0 - fx) + rgb[[y0, x1, c]] as f32 * fx;
                let bot = rgb[[y1, x0, c]] as f32 * (1.0 - fx) + rgb[[y1, x1, c]] as f32 * fx;
                out[[0, c, y, x]] = (top * (1.0 - fy) + bot * fy) * a - b;
            }
        }
    }
}

/// For output index `o` of a resize by `scale` (input per output) from `n` samples: the two
/// source indices and the weight of the second (pixel centres aligned, edges clamped).
pub(crate) fn bilinear_source(o: usize, scale: f32, n: usize) -> (usize, usize, f32) {
    let p = ((o as f32 + 0.5) * scale - 0.5).clamp(0.0, (n - 1) as f32);
    let i0 = p.floor() as usize;
    (i0, (i0 + 1).min(n - 1), p - i0 as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, Array4};

    fn spec(h: usize, w: usize) -> InputSpec {
        InputSpec {
            name: "image".into(),
            height: h,
            width: w,
            layout: "NCHW".into(),
            color: "RGB".into(),
            scale: 1.0 / 255.0,
            mean: [0.5, 0.25, 0.0],
            std: [0.5, 0.25, 1.0],
        }
    }

    #[test]
    fn same_size_is_pure_normalisation() {
        let rgb = Array3::from_shape_fn((5, 7, 3), |(y, x, c)| (y * 31 + x * 7 + c * 50) as u8);
        let mut out = Array4::zeros((1, 3, 5, 7));
        fill_input(rgb.view(), &spec(5, 7), out.view_mut());
        let s = spec(5, 7);
        for ((_, c, y, x), v) in out.indexed_iter() {
            let want = (rgb[[y, x, c]] as f32 / 255.0 - s.mean[c]) / s.std[c];
            assert!((v - want).abs() < 1e-5);
        }
    }

    #[test]
    fn constant_image_stays_constant_at_any_size() {
        let rgb = Array3::from_elem((13, 3, 3), 200u8);
        let mut out = Array4::zeros((1, 3, 8, 9));
        fill_input(rgb.view(), &spec(8, 9), out.view_mut());
        for c in 0..3 {
            let want = (200.0 / 255.0 - spec(1, 1).mean[c]) / spec(1, 1).std[c];
            assert!(out.index_axis(ndarray::Axis(1), c).iter().all(|v| (v - want).abs() < 1e-5));
        }
    }

    #[test]
    fn bilinear_source_stays_in_range() {
        for n in 1..6 {
            for o in 0..20 {
                let (a, b, f) = bilinear_source(o, n as f32 / 20.0, n);
                assert!(a < n && b < n && (0.0..=1.0).contains(&f));
            }
        }
    }
}
