//! The class argmax of `Outputs::from_raw`: per pixel, the index of the largest of K logit
//! planes. One build per ISA table (the crate targets baseline x86-64, where the select does not
//! vectorise).

/// Pixels per call (the running maxima and labels stay in L1).
pub const CHUNK: usize = 2048;

/// `out[j]` = the argmax over `planes` (K planes of `n` logits) at pixel `first + j`, for
/// `out.len()` ≤ [`CHUNK`] pixels: a strictly greater logit wins, so ties keep the lower class
/// id (a scan from class 0), and a NaN never wins over an earlier class.
pub(crate) type ArgmaxFn = unsafe fn(&[f32], usize, usize, &mut [u8]);

isa_builds!(argmax_rows => argmax_portable, argmax_avx2, argmax_avx512(planes: &[f32], n: usize, first: usize, out: &mut [u8]));

/// Pixels per register block of [`argmax_rows`].
const BLOCK: usize = 16;

/// The argmax of `out.len()` pixels (any number; [`ArgmaxFn`]'s callers pass ≤ [`CHUNK`]): blocks of [`BLOCK`] pixels whose running maxima
/// and labels stay in registers across the K planes, stored once per block. (A plane-by-plane
/// scan keeps them in memory, and LLVM turns its `*v = if greater { s } else { *v }` into
/// masked stores — `vmaskmovps`, microcoded on AMD Zen: the argmax ran 4–5× slower there.)
#[inline(always)]
fn argmax_rows(planes: &[f32], n: usize, first: usize, out: &mut [u8]) {
    let t = out.len();
    let k = planes.len().checked_div(n).unwrap_or(0);
    assert!(k >= 1 && first + t <= n, "argmax of {t} pixels from {first} in {k} planes of {n}");
    let mut blocks = out.chunks_exact_mut(BLOCK);
    for (b, o) in (&mut blocks).enumerate() {
        let at = first + b * BLOCK;
        let mut best: [f32; BLOCK] = planes[at..at + BLOCK].try_into().expect("a block");
        let mut label = [0u32; BLOCK];
        for c in 1..k {
            let p: &[f32; BLOCK] = planes[c * n + at..][..BLOCK].try_into().expect("a block");
            for j in 0..BLOCK {
                let greater = p[j] > best[j];
                best[j] = if greater { p[j] } else { best[j] };
                label[j] = if greater { c as u32 } else { label[j] };
            }
        }
        o.iter_mut().zip(label).for_each(|(o, l)| *o = l as u8);
    }
    let done = t - blocks.into_remainder().len();
    for (j, o) in out[done..].iter_mut().enumerate() {
        let at = first + done + j;
        let (mut best, mut label) = (planes[at], 0u8);
        for c in 1..k {
            let v = planes[c * n + at];
            if v > best {
                best = v;
                label = c as u8;
            }
        }
        *o = label;
    }
}
