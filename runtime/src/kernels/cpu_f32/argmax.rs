//! The class argmax of `Outputs::from_raw`: per pixel, the index of the largest of K logit
//! planes. One build per ISA table (the crate targets baseline x86-64, where the select does not
//! vectorise).

/// Pixels per call (the running maxima and labels stay in L1).
pub const CHUNK: usize = 2048;

/// `out[j]` = the argmax over `planes` (K planes of `n` logits) at pixel `first + j`, for
/// `out.len()` ≤ [`CHUNK`] pixels: a strictly greater logit wins, so ties keep the lower class
/// id (a scan from class 0), and a NaN never wins over an earlier class.
pub(crate) type ArgmaxFn = unsafe fn(&[f32], usize, usize, &mut [u8]);

isa_builds!(argmax_body => argmax_portable, argmax_avx2, argmax_avx512(planes: &[f32], n: usize, first: usize, out: &mut [u8]));

#[inline(always)]
fn argmax_body(planes: &[f32], n: usize, first: usize, out: &mut [u8]) {
    let t = out.len();
    let (mut best, mut label) = ([0f32; CHUNK], [0u32; CHUNK]);
    let (best, label) = (&mut best[..t], &mut label[..t]);
    best.copy_from_slice(&planes[first..first + t]);
    for (c, plane) in planes.chunks_exact(n).enumerate().skip(1) {
        let c = c as u32;
        // Branch-free select in 32-bit lanes (vectorises), narrowed to u8 once at the end.
        for ((v, l), &s) in best.iter_mut().zip(label.iter_mut()).zip(&plane[first..first + t]) {
            let greater = s > *v;
            *v = if greater { s } else { *v };
            *l = if greater { c } else { *l };
        }
    }
    out.iter_mut().zip(label.iter()).for_each(|(o, &l)| *o = l as u8);
}
