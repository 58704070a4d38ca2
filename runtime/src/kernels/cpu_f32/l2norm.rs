//! Channel-wise L2 normalisation of NCHW f32 maps (the normals head), in one pass.

/// The normalisation of `input` (`n` maps of `c` planes of `plane` pixels) into `output`:
/// `y = x / sqrt(Σ_c x² + eps)` per pixel.
pub fn l2_normalize_channels(input: &[f32], c: usize, plane: usize, eps: f32, output: &mut [f32]) {
    for (x, y) in input.chunks_exact(c * plane).zip(output.chunks_exact_mut(c * plane)) {
        // Sum of squares per pixel, accumulated plane by plane (vectorised), into the first plane
        // of the output, then scaled in place.
        let (first, _) = y.split_at_mut(plane);
        first.iter_mut().zip(&x[..plane]).for_each(|(s, &v)| *s = v * v);
        for p in x.chunks_exact(plane).skip(1) {
            first.iter_mut().zip(p).for_each(|(s, &v)| *s += v * v);
        }
        first.iter_mut().for_each(|s| *s = 1.0 / (*s + eps).sqrt());
        // Planes from the last to the first, so the scale factors (in plane 0) are read last.
        for ch in (0..c).rev() {
            let (scale, rest) = y.split_at_mut(plane);
            let dst = if ch == 0 { None } else { Some(&mut rest[(ch - 1) * plane..ch * plane]) };
            let src = &x[ch * plane..(ch + 1) * plane];
            match dst {
                Some(d) => d.iter_mut().zip(src).zip(scale.iter()).for_each(|((o, &v), &r)| *o = v * r),
                None => scale.iter_mut().zip(src).for_each(|(r, &v)| *r *= v),
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn matches_the_formula(n in 1usize..3, c in 1usize..6, plane in 1usize..40, eps in prop_oneof![Just(0.0f32), Just(1e-12), Just(0.5)], seed in any::<u64>()) {
            let mut s = seed | 1;
            let x: Vec<f32> = (0..n * c * plane).map(|_| { s ^= s << 13; s ^= s >> 7; s ^= s << 17; (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0 }).collect();
            let mut y = vec![f32::NAN; x.len()];
            l2_normalize_channels(&x, c, plane, eps, &mut y);
            for b in 0..n {
                for p in 0..plane {
                    let at = |ch: usize| b * c * plane + ch * plane + p;
                    let norm = ((0..c).map(|ch| (x[at(ch)] as f64).powi(2)).sum::<f64>() + eps as f64).sqrt();
                    for ch in 0..c {
                        let want = x[at(ch)] as f64 / norm;
                        if want.is_finite() {
                            prop_assert!((y[at(ch)] as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()), "{} vs {}", y[at(ch)], want);
                        }
                    }
                }
            }
        }
    }
}
