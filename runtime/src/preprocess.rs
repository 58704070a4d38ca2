//! Image → model input: bilinear resize (pixel centres aligned) fused with normalisation.
use ndarray::{ArrayView3, ArrayViewMut4};

use crate::contract::InputSpec;

/// Write `rgb` (H×W×3, u8) into `out` (1×3×h×w) resized and normalised as `spec` says.
pub fn fill_input(rgb: ArrayView3<u8>, spec: &InputSpec, mut out: ArrayViewMut4<f32>) {
    let (ih, iw) = (rgb.shape()[0], rgb.shape()[1]);
    let (oh, ow) = (spec.height, spec.width);
    let sy = ih as f32 / oh as f32;
    let sx = iw as f32 / ow as f32;
    let coef: [(f32, f32); 3] = std::array::from_fn(|c| (spec.scale / spec.std[c], spec.mean[c] / spec.std[c]));
    let axis = |o: usize, s: f32, n: usize| {
        let p = ((o as f32 + 0.5) * s - 0.5).clamp(0.0, (n - 1) as f32);
        let i0 = p.floor() as usize;
        (i0, (i0 + 1).min(n - 1), p - i0 as f32)
    };
    for y in 0..oh {
        let (y0, y1, fy) = axis(y, sy, ih);
        for x in 0..ow {
            let (x0, x1, fx) = axis(x, sx, iw);
            for (c, (a, b)) in coef.iter().enumerate() {
                let top = rgb[[y0, x0, c]] as f32 * (1.0 - fx) + rgb[[y0, x1, c]] as f32 * fx;
                let bot = rgb[[y1, x0, c]] as f32 * (1.0 - fx) + rgb[[y1, x1, c]] as f32 * fx;
                out[[0, c, y, x]] = (top * (1.0 - fy) + bot * fy) * a - b;
            }
        }
    }
}
