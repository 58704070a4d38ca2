//! Channel-wise L2 normalisation of NCHW f32 maps (the normals head), in one pass.
use rayon::prelude::*;

use super::parallel::SharedMut;

/// Pixels per call of an ISA build (the squares and factors stay in L1).
const CHUNK: usize = 2048;

/// The normalisation of `input` (`n` maps of `c` planes of `plane` pixels) into `output`:
/// `y = x / sqrt(Σ_c x² + eps)` per pixel, on the best ISA build. Pixel ranges run in parallel on
/// the current pool (each pixel's arithmetic is the same whatever the split and the build).
pub fn l2_normalize_channels(input: &[f32], c: usize, plane: usize, eps: f32, output: &mut [f32]) {
    l2_normalize_channels_with(super::isa::best(), input, c, plane, eps, output)
}

/// [`l2_normalize_channels`] on the build of `isa` (which the CPU must support).
pub(crate) fn l2_normalize_channels_with(
    isa: &super::isa::CpuIsa,
    input: &[f32],
    c: usize,
    plane: usize,
    eps: f32,
    output: &mut [f32],
) {
    assert_eq!(input.len(), output.len(), "input and output lengths");
    isa.assert_supported();
    if c == 0 || plane == 0 {
        return;
    }
    let maps = input.len() / (c * plane);
    let threads = rayon::current_num_threads();
    let out = SharedMut(output.as_mut_ptr());
    let range = |r: std::ops::Range<usize>| {
        let out = out; // the whole Sync wrapper, not its raw pointer field
        for m in 0..maps {
            let base = m * c * plane;
            let mut start = r.start;
            while start < r.end {
                let end = (start + CHUNK).min(r.end);
                // SAFETY: the build is supported (checked above); it writes pixels start..end of
                // every plane of map m, inside `output` (as long as `input`), and ranges of
                // different calls are disjoint.
                unsafe {
                    (isa.l2norm)(&input[base..base + c * plane], c, plane, eps, SharedMut(out.0.add(base)), start..end)
                };
                start = end;
            }
        }
    };
    if threads <= 1 || plane < 2048 {
        return range(0..plane);
    }
    let per = plane.div_ceil(threads).next_multiple_of(16);
    (0..plane.div_ceil(per)).into_par_iter().for_each(|t| range(t * per..((t + 1) * per).min(plane)));
}

/// One map's pixels `r` (≤ a chunk): `x` is the map's `c` planes of `plane` pixels, `y` the
/// output map's start. One per ISA build.
pub(crate) type L2NormFn = unsafe fn(&[f32], usize, usize, f32, SharedMut<f32>, std::ops::Range<usize>);

isa_builds!(l2norm_body => l2norm_portable, l2norm_avx2, l2norm_avx512(
    x: &[f32], c: usize, plane: usize, eps: f32, y: SharedMut<f32>, r: std::ops::Range<usize>
));

/// The sum of squares is accumulated plane by plane (a multiply then an add: no FMA, so every
/// build gives the same bits) into a chunk buffer, turned into factors, and every plane scaled.
///
/// # Safety
/// `y` must be valid for writes of `c · plane` floats, pixels `r` of each plane written by no one
/// else; `r.len()` ≤ [`CHUNK`].
#[inline(always)]
unsafe fn l2norm_body(x: &[f32], c: usize, plane: usize, eps: f32, y: SharedMut<f32>, r: std::ops::Range<usize>) {
    let mut scale = [0f32; CHUNK];
    let scale = &mut scale[..r.len()];
    let x = |ch: usize| &x[ch * plane..][r.clone()];
    scale.iter_mut().zip(x(0)).for_each(|(s, &v)| *s = v * v);
    for ch in 1..c {
        scale.iter_mut().zip(x(ch)).for_each(|(s, &v)| *s += v * v);
    }
    scale.iter_mut().for_each(|s| *s = 1.0 / (*s + eps).sqrt());
    for ch in 0..c {
        // SAFETY: pixels r of plane ch, as the caller guarantees.
        let out = unsafe { std::slice::from_raw_parts_mut(y.0.add(ch * plane + r.start), r.len()) };
        out.iter_mut().zip(x(ch)).zip(scale.iter()).for_each(|((o, &v), &f)| *o = v * f);
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

    /// Split across threads, every pixel gets the same bits as on one thread.
    #[test]
    fn thread_split_gives_the_same_bits() {
        let (n, c, plane) = (2, 3, 76_800 + 5);
        let x: Vec<f32> = (0..n * c * plane).map(|i| ((i * 7919) % 1013) as f32 / 500.0 - 1.0).collect();
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut y = vec![f32::NAN; x.len()];
            pool.install(|| l2_normalize_channels(&x, c, plane, 1e-12, &mut y));
            y
        };
        let one = run(1);
        assert!(one.iter().all(|v| v.is_finite()));
        for threads in [2, 3] {
            assert!(run(threads).iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads");
        }
        let p = 12_345;
        let norm = (0..c).map(|ch| x[ch * plane + p].powi(2)).sum::<f32>().sqrt();
        assert!((one[p] - x[p] / norm).abs() < 1e-5);
        // Every ISA build: the same bits.
        for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
            let mut y = vec![f32::NAN; x.len()];
            l2_normalize_channels_with(isa, &x, c, plane, 1e-12, &mut y);
            assert!(y.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", isa.name);
        }
    }
}
