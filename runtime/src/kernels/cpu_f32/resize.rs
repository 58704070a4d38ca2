//! Bilinear resize of NCHW f32 maps with ONNX `half_pixel` coordinates (pytorch's
//! `align_corners=False`), edges clamped: the fast kernel behind [`crate::ops::ResizeOp`].

use super::parallel::SharedMut;

/// One output coordinate of one axis: the two input indices it reads and the weight of the
/// second (`1 - weight` goes to the first).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Tap {
    i0: u32,
    i1: u32,
    w: f32,
}

/// The taps of an axis resized from `len_in` to `len_out`: source coordinate
/// `(dst + 0.5) / (len_out / len_in) - 0.5`, clamped to `[0, len_in - 1]`.
fn axis_taps(taps: &mut Vec<Tap>, len_in: usize, len_out: usize) {
    let scale = len_out as f32 / len_in as f32;
    let last = len_in.saturating_sub(1);
    taps.clear();
    taps.extend((0..len_out).map(|d| {
        let src = ((d as f32 + 0.5) / scale - 0.5).clamp(0.0, last as f32);
        let i0 = (src.floor() as usize).min(last);
        let i1 = (i0 + 1).min(last);
        Tap { i0: i0 as u32, i1: i1 as u32, w: src - i0 as f32 }
    }));
}

/// Working memory of [`resize_bilinear_half_pixel_with`]: grows once per larger size.
#[derive(Debug, Default, Clone)]
pub struct ResizeScratch {
    rows: Vec<Tap>,
    cols: Vec<Tap>,
    wide: Vec<f32>,
}

impl ResizeScratch {
    /// Room for a resize to `oh × ow`, so that a worker which first resizes in a later frame
    /// does not allocate then.
    fn reserve(&mut self, oh: usize, ow: usize) {
        self.rows.reserve(oh.saturating_sub(self.rows.len()));
        self.cols.reserve(ow.saturating_sub(self.cols.len()));
        if self.wide.len() < 2 * ow {
            self.wide.resize(2 * ow, 0.0);
        }
    }
}

/// Per-worker resize scratch of a session (see [`resize_planes`]).
pub type ResizeWorkers = super::parallel::PerWorker<ResizeScratch>;

/// [`resize_bilinear_half_pixel_with`] of `planes` channel planes, output rows split across the
/// current pool's threads (each band with its own scratch from `workers`; every split gives the
/// same bits). With `addend` (the output's layout), each output value is the resized value plus
/// the addend's, in that order (a following `Add` fused into the resize's stores: the same bits
/// as the two ops).
pub fn resize_planes(
    input: &[f32],
    planes: usize,
    (ih, iw): (usize, usize),
    output: &mut [f32],
    (oh, ow): (usize, usize),
    addend: Option<&[f32]>,
    workers: &mut ResizeWorkers,
) {
    assert_eq!(input.len(), planes * ih * iw, "input length");
    assert_eq!(output.len(), planes * oh * ow, "output length");
    if let Some(a) = addend {
        assert_eq!(a.len(), output.len(), "addend length");
    }
    workers.ensure();
    // Every worker's scratch, not only those that happen to run now: which worker takes a
    // band changes from frame to frame.
    workers.each_mut().for_each(|s| s.reserve(oh, ow));
    let isa = super::isa::best();
    isa.assert_supported();
    let out = SharedMut(output.as_mut_ptr());
    let band = |rows: std::ops::Range<usize>, s: &mut ResizeScratch| {
        // SAFETY: the ISA is supported (checked above); `output` holds `planes · oh · ow`
        // values (checked); bands are disjoint row ranges.
        unsafe { (isa.resize)(input, planes, ih, iw, out, oh, ow, rows, addend, s) }
    };
    // Rows, not planes: the depth head has one plane and the normals three.
    let threads = rayon::current_num_threads();
    if threads <= 1 || oh < 2 || planes * ow == 0 {
        return workers.with(|s| band(0..oh, s));
    }
    use rayon::prelude::*;
    let per = oh.div_ceil(threads);
    let workers = &*workers;
    (0..oh.div_ceil(per)).into_par_iter().for_each(|t| workers.with(|s| band(t * per..((t + 1) * per).min(oh), s)));
}

/// Resizes `c` channels of `ih × iw` (`input`, channel-major, contiguous) to `oh × ow`
/// (`output`, same layout) by bilinear interpolation with ONNX `half_pixel` coordinates and
/// clamped edges. Separable: each output row first blends two input rows, then two columns.
///
/// # Panics
/// If `input` is not `c·ih·iw` long, `output` not `c·oh·ow`, or a size is zero while the
/// other side of its axis is not.
pub fn resize_bilinear_half_pixel(
    input: &[f32],
    c: usize,
    ih: usize,
    iw: usize,
    output: &mut [f32],
    oh: usize,
    ow: usize,
) {
    resize_bilinear_half_pixel_with(input, c, ih, iw, output, oh, ow, &mut ResizeScratch::default());
}

/// [`resize_bilinear_half_pixel`] with caller-owned working memory: allocation-free once
/// `scratch` has served this size.
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear_half_pixel_with(
    input: &[f32],
    c: usize,
    ih: usize,
    iw: usize,
    output: &mut [f32],
    oh: usize,
    ow: usize,
    scratch: &mut ResizeScratch,
) {
    resize_with(super::isa::best(), input, c, ih, iw, output, oh, ow, None, scratch)
}

/// [`resize_bilinear_half_pixel_with`] on the build of `isa` (which the CPU must support).
#[allow(clippy::too_many_arguments)]
pub(crate) fn resize_with(
    isa: &super::isa::CpuIsa,
    input: &[f32],
    c: usize,
    ih: usize,
    iw: usize,
    output: &mut [f32],
    oh: usize,
    ow: usize,
    addend: Option<&[f32]>,
    scratch: &mut ResizeScratch,
) {
    isa.assert_supported();
    assert_eq!(output.len(), c * oh * ow, "output length");
    if let Some(a) = addend {
        assert_eq!(a.len(), output.len(), "addend length");
    }
    // SAFETY: the ISA is supported (checked above); the output's length is checked.
    unsafe { (isa.resize)(input, c, ih, iw, SharedMut(output.as_mut_ptr()), oh, ow, 0..oh, addend, scratch) }
}

/// Output columns `slot` of one input row `src` from their taps.
#[inline(always)]
fn widen_taps(slot: &mut [f32], src: &[f32], cols: &[Tap]) {
    for (o, col) in slot.iter_mut().zip(cols) {
        let (a, b) = (src[col.i0 as usize], src[col.i1 as usize]);
        *o = a + col.w * (b - a);
    }
}

/// Where an upsampling by exactly `S` (even) has periodic taps: for input columns `lo..hi`,
/// output column `S·i + j` blends input columns `i − 1, i` (j < S/2) or `i, i + 1` (j ≥ S/2)
/// with weight `w[j]` — what `half_pixel` coordinates give away from the clamped edges.
#[derive(Debug, Clone, Copy)]
struct Periodic<const S: usize> {
    lo: usize,
    hi: usize,
    w: [f32; S],
}

/// The longest run of input columns whose taps follow [`Periodic`], checked tap by tap
/// (so the fast loop computes exactly what the taps say); `None` unless `ow = S · iw` and the
/// run is non-empty.
fn periodic_interior<const S: usize>(cols: &[Tap], iw: usize) -> Option<Periodic<S>> {
    if cols.len() != S * iw || iw < 3 {
        return None;
    }
    let w: [f32; S] = std::array::from_fn(|j| cols[S + j].w);
    let fits = |i: usize| {
        (0..S).all(|j| {
            let t = cols[S * i + j];
            let a = if j < S / 2 { i.wrapping_sub(1) } else { i };
            t.i0 as usize == a && t.i1 as usize == a + 1 && t.w.to_bits() == w[j].to_bits()
        })
    };
    // The last column's right neighbour is clamped: it never fits, and `widen_periodic` reads
    // column `hi`.
    let lo = (1..iw - 1).find(|&i| fits(i))?;
    let hi = (lo..iw - 1).find(|&i| !fits(i)).unwrap_or(iw - 1);
    Some(Periodic { lo, hi, w })
}

/// [`widen_taps`] with the columns of `p`'s run as a vector loop (three contiguous input
/// streams, `S` interleaved outputs each): the same values, the same arithmetic.
#[inline(always)]
fn widen_periodic<const S: usize>(slot: &mut [f32], src: &[f32], cols: &[Tap], p: &Periodic<S>) {
    let (head, rest) = slot.split_at_mut(S * p.lo);
    let (body, tail) = rest.split_at_mut(S * (p.hi - p.lo));
    widen_taps(head, src, &cols[..S * p.lo]);
    widen_taps(tail, src, &cols[S * p.hi..]);
    let (left, mid, right) = (&src[p.lo - 1..p.hi - 1], &src[p.lo..p.hi], &src[p.lo + 1..=p.hi]);
    for (((o, &l), &c), &r) in body.chunks_exact_mut(S).zip(left).zip(mid).zip(right) {
        for (j, (o, &w)) in o.iter_mut().zip(&p.w).enumerate() {
            let (a, b) = if j < S / 2 { (l, c) } else { (c, r) };
            *o = a + w * (b - a);
        }
    }
}

/// The resize entry points' signature (one per ISA build).
pub(crate) type ResizeFn = unsafe fn(
    &[f32],
    usize,
    usize,
    usize,
    SharedMut<f32>,
    usize,
    usize,
    std::ops::Range<usize>,
    Option<&[f32]>,
    &mut ResizeScratch,
);

isa_builds!(resize_impl => resize_portable, resize_avx2, resize_avx512(
    input: &[f32], c: usize, ih: usize, iw: usize, output: SharedMut<f32>, oh: usize, ow: usize,
    band: std::ops::Range<usize>, addend: Option<&[f32]>, scratch: &mut ResizeScratch
));

/// Output rows `band` of each of the `c` planes.
///
/// # Safety
/// `output` must be valid for writes of `c · oh · ow` values, rows `band` of every plane
/// written by no one else.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn resize_impl(
    input: &[f32],
    c: usize,
    ih: usize,
    iw: usize,
    output: SharedMut<f32>,
    oh: usize,
    ow: usize,
    band: std::ops::Range<usize>,
    addend: Option<&[f32]>,
    scratch: &mut ResizeScratch,
) {
    assert_eq!(input.len(), c * ih * iw, "input length");
    assert!(band.end <= oh, "rows {band:?} of {oh}");
    if band.is_empty() || ow == 0 || c == 0 {
        return;
    }
    assert!(ih > 0 && iw > 0, "cannot resize an empty map to a non-empty one");
    let ResizeScratch { rows, cols, wide } = scratch;
    axis_taps(rows, ih, oh);
    axis_taps(cols, iw, ow);
    // Columns first, once per input row (`ih` rows, not `oh`), kept in a two-row cache keyed by
    // input row; each output row is then a vectorisable blend of two cached wide rows.
    if wide.len() < 2 * ow {
        wide.resize(2 * ow, 0.0);
    }
    let (rows, cols, wide) = (&rows[..], &cols[..], &mut wide[..2 * ow]);
    // ×2 and ×4 (the decoder's and the heads' upsamplings): the interior columns as a gather-free
    // vector loop.
    let (ratio2, ratio4) = (periodic_interior::<2>(cols, iw), periodic_interior::<4>(cols, iw));
    for (p, plane_in) in input.chunks_exact(ih * iw).enumerate() {
        let mut cached = [usize::MAX; 2];
        let widen = |slot: &mut [f32], r: usize| {
            let src = &plane_in[r * iw..][..iw];
            match (&ratio2, &ratio4) {
                (Some(p), _) => widen_periodic::<2>(slot, src, cols, p),
                (_, Some(p)) => widen_periodic::<4>(slot, src, cols, p),
                _ => widen_taps(slot, src, cols),
            }
        };
        for (y, row) in rows.iter().enumerate().skip(band.start).take(band.len()) {
            // SAFETY: row y of plane p lies inside `output`, and rows `band` are this call's.
            let out_row = unsafe { std::slice::from_raw_parts_mut(output.0.add((p * oh + y) * ow), ow) };
            for (k, r) in [row.i0 as usize, row.i1 as usize].into_iter().enumerate() {
                if cached[k] == r {
                    continue;
                }
                let (first, second) = wide.split_at_mut(ow);
                // Reuse the other slot's row when it holds `r` (the window moved down by one).
                if cached[1 - k] == r {
                    if k == 0 {
                        first.copy_from_slice(second)
                    } else {
                        second.copy_from_slice(first)
                    }
                } else {
                    widen(if k == 0 { first } else { second }, r);
                }
                cached[k] = r;
            }
            let (w0, w1) = wide.split_at(ow);
            let b = row.w;
            match (addend, b == 0.0) {
                (None, true) => out_row.copy_from_slice(w0),
                (None, false) => {
                    for ((o, &x0), &x1) in out_row.iter_mut().zip(w0).zip(w1) {
                        *o = x0 + b * (x1 - x0);
                    }
                }
                (Some(a), true) => {
                    let a = &a[(p * oh + y) * ow..][..ow];
                    for ((o, &x0), &v) in out_row.iter_mut().zip(w0).zip(a) {
                        *o = x0 + v;
                    }
                }
                (Some(a), false) => {
                    let a = &a[(p * oh + y) * ow..][..ow];
                    for (((o, &x0), &x1), &v) in out_row.iter_mut().zip(w0).zip(w1).zip(a) {
                        *o = (x0 + b * (x1 - x0)) + v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Direct per-pixel bilinear interpolation, in f64.
    fn reference(input: &[f32], c: usize, ih: usize, iw: usize, oh: usize, ow: usize) -> Vec<f32> {
        let src = |d: usize, n_in: usize, n_out: usize| {
            let s = (d as f64 + 0.5) * n_in as f64 / n_out as f64 - 0.5;
            let s = s.clamp(0.0, (n_in - 1) as f64);
            let i0 = s.floor() as usize;
            (i0, (i0 + 1).min(n_in - 1), s - i0 as f64)
        };
        let mut out = Vec::with_capacity(c * oh * ow);
        for ch in 0..c {
            for y in 0..oh {
                let (y0, y1, wy) = src(y, ih, oh);
                for x in 0..ow {
                    let (x0, x1, wx) = src(x, iw, ow);
                    let at = |yy: usize, xx: usize| input[(ch * ih + yy) * iw + xx] as f64;
                    let v = (1.0 - wy) * ((1.0 - wx) * at(y0, x0) + wx * at(y0, x1))
                        + wy * ((1.0 - wx) * at(y1, x0) + wx * at(y1, x1));
                    out.push(v as f32);
                }
            }
        }
        out
    }

    /// The largest difference from the reference over every ISA build this CPU runs.
    fn check(input: &[f32], c: usize, ih: usize, iw: usize, oh: usize, ow: usize) -> f32 {
        let want = reference(input, c, ih, iw, oh, ow);
        let mut worst = 0f32;
        for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
            let mut out = vec![f32::NAN; c * oh * ow];
            resize_with(isa, input, c, ih, iw, &mut out, oh, ow, None, &mut ResizeScratch::default());
            if out.iter().any(|v| v.is_nan()) {
                return f32::INFINITY; // an output left unwritten (`max` would skip a NaN)
            }
            worst = out.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(worst, f32::max);
        }
        worst
    }

    /// ×2 and ×4 take the periodic loop on every column but the clamped edge ones, with the
    /// bits of the per-tap loop.
    #[test]
    fn integer_upsamplings_take_the_periodic_path_with_the_same_bits() {
        fn check<const S: usize>(iw: usize) {
            let mut cols = Vec::new();
            axis_taps(&mut cols, iw, S * iw);
            let p = periodic_interior::<S>(&cols, iw).expect("periodic");
            assert_eq!((p.lo, p.hi), (1, iw - 1), "×{S} of {iw}");
            let src: Vec<f32> = (0..iw).map(|i| ((i * 7919) % 101) as f32 * 0.37 - 17.0).collect();
            let (mut fast, mut taps) = (vec![f32::NAN; S * iw], vec![f32::NAN; S * iw]);
            widen_periodic::<S>(&mut fast, &src, &cols, &p);
            widen_taps(&mut taps, &src, &cols);
            assert!(fast.iter().zip(&taps).all(|(a, b)| a.to_bits() == b.to_bits()), "×{S} of {iw}");
        }
        for iw in 3..40 {
            check::<2>(iw);
            check::<4>(iw);
        }
        // Not an exact ratio: the per-tap loop.
        let mut cols = Vec::new();
        axis_taps(&mut cols, 10, 25);
        assert!(periodic_interior::<2>(&cols, 10).is_none() && periodic_interior::<4>(&cols, 10).is_none());
    }

    #[test]
    fn identity_is_a_copy() {
        let input: Vec<f32> = (0..2 * 5 * 7).map(|i| i as f32 * 0.37 - 3.0).collect();
        let mut out = vec![0f32; input.len()];
        resize_bilinear_half_pixel(&input, 2, 5, 7, &mut out, 5, 7);
        assert_eq!(out, input);
    }

    #[test]
    fn upsample_by_two_matches_pytorch_values() {
        // torch.nn.functional.interpolate([[0, 1]], scale_factor=2, mode="linear",
        // align_corners=False) == [0, 0.25, 0.75, 1].
        let mut out = vec![0f32; 4];
        resize_bilinear_half_pixel(&[0.0, 1.0], 1, 1, 2, &mut out, 1, 4);
        assert_eq!(out, [0.0, 0.25, 0.75, 1.0]);
    }

    proptest! {
        #[test]
        fn matches_the_per_pixel_formula(
            c in 1usize..=8, ih in 1usize..=17, iw in 1usize..=17, oh in 1usize..=40,
            ow in 1usize..=40, seed in any::<u64>(),
        ) {
            let mut s = seed | 1;
            let input: Vec<f32> = (0..c * ih * iw)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
                })
                .collect();
            let d = check(&input, c, ih, iw, oh, ow);
            prop_assert!(d <= 1e-5, "max |diff| {d:e}");
        }

        /// With an addend, every build and thread split gives exactly the bits of the resize
        /// followed by a separate add.
        #[test]
        fn a_fused_add_has_the_bits_of_resize_then_add(
            c in 1usize..=5, ih in 1usize..=9, iw in 1usize..=9, oh in 1usize..=24, ow in 1usize..=24,
            seed in any::<u64>(),
        ) {
            let mut s = seed | 1;
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 * 4.0 - 2.0
            };
            let input: Vec<f32> = (0..c * ih * iw).map(|_| next()).collect();
            let addend: Vec<f32> = (0..c * oh * ow).map(|_| next()).collect();
            for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
                let mut plain = vec![f32::NAN; c * oh * ow];
                resize_with(isa, &input, c, ih, iw, &mut plain, oh, ow, None, &mut ResizeScratch::default());
                let want: Vec<f32> = plain.iter().zip(&addend).map(|(a, b)| a + b).collect();
                let mut fused = vec![f32::NAN; c * oh * ow];
                resize_with(isa, &input, c, ih, iw, &mut fused, oh, ow, Some(&addend), &mut ResizeScratch::default());
                prop_assert!(fused.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", isa.name);
            }
            let mut one = vec![f32::NAN; c * oh * ow];
            resize_bilinear_half_pixel(&input, c, ih, iw, &mut one, oh, ow);
            for threads in [1, 2, 3] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut plain = vec![f32::NAN; c * oh * ow];
                let mut fused = vec![f32::NAN; c * oh * ow];
                let mut workers = ResizeWorkers::default();
                pool.install(|| {
                    resize_planes(&input, c, (ih, iw), &mut plain, (oh, ow), None, &mut workers);
                    resize_planes(&input, c, (ih, iw), &mut fused, (oh, ow), Some(&addend), &mut workers);
                });
                // Split into row bands, every value has the bits of the whole resize on one thread.
                prop_assert!(plain.iter().zip(&one).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads");
                let want: Vec<f32> = plain.iter().zip(&addend).map(|(a, b)| a + b).collect();
                prop_assert!(fused.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads");
            }
        }
    }
}
