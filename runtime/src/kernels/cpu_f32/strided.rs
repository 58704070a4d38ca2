//! Dense stride-2 convolutions (the stem and the down-sampling convs) as direct convolutions on
//! the input's four phase planes, output pixels as SIMD lanes.
//!
//! A stride-2 conv reads input pixel `(2y + ky − top, 2x + kx − left)` for output `(y, x)`.
//! Split the zero-padded input by row and column parity into four phase planes,
//! `P[py][px][r][c] = in[2r + py − top][2c + px − left]`; then tap `(ky, kx)` of output row `y`
//! reads phase `(ky % 2, kx % 2)` at row `y + ky / 2`, columns `x + kx / 2`: consecutive output
//! pixels read consecutive floats. The kernel keeps a block of output channels × a vector of
//! output pixels in registers over every input channel and tap (no im2col, no packing), so few
//! input channels (the RGB stem: 27 taps) cost nothing extra.
//!
//! The phase split is one pass over the input (parallel over channels); rows of output run in
//! parallel on the session's pool.
use rayon::prelude::*;

use super::parallel::SharedMut;
use crate::pag::ConvGeometry;

/// Output channels per packed weight block (the widest kernel's register block).
pub(super) const PACK: usize = 16;
/// Floats after the last phase plane, so that a kernel's full-vector loads at the last row's
/// end (lanes past the output width, never stored) stay inside the buffer.
const TAIL_SLACK: usize = 32;

/// Whether the direct kernel computes convs of this geometry: stride 2, no dilation, kernels up
/// to 3×3.
pub(super) fn applies(g: &ConvGeometry) -> bool {
    g.stride() == 2 && g.dilation() == 1 && g.kernel_height() <= 3 && g.kernel_width() <= 3
}

/// The layout of one conv's phase planes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Phases {
    /// Rows per phase plane: `oh + (kh − 1) / 2`.
    rows: usize,
    /// Floats per phase row: `ow + (kw − 1) / 2`, the columns the taps read. A vector load near
    /// a row's end runs into the next row (or the tail slack) in lanes that are never stored.
    stride: usize,
}

impl Phases {
    pub(super) fn of(g: &ConvGeometry) -> Self {
        let rows = g.out_height() + (g.kernel_height() - 1) / 2;
        let stride = g.out_width() + (g.kernel_width() - 1) / 2;
        Phases { rows, stride }
    }

    fn plane(&self) -> usize {
        self.rows * self.stride
    }

    /// Floats of the phase buffer for `channels` input channels.
    pub(super) fn len(&self, channels: usize) -> usize {
        4 * channels * self.plane() + TAIL_SLACK
    }
}

/// Weights `[O, C, kh, kw]` (ONNX layout) packed for the kernels: blocks of [`PACK`] output
/// channels, each `[C][kh·kw][PACK]` (zeros beyond the last channel).
pub(super) fn pack_weights(weights: &[f32], out: usize, inp: usize, taps: usize) -> Vec<f32> {
    let blocks = out.div_ceil(PACK);
    let mut packed = vec![0f32; blocks * inp * taps * PACK];
    for co in 0..out {
        for ci in 0..inp {
            for t in 0..taps {
                packed[((co / PACK * inp + ci) * taps + t) * PACK + co % PACK] = weights[(co * inp + ci) * taps + t];
            }
        }
    }
    packed
}

/// Splits `input` (`C × ih × iw`) into its zero-padded phase planes (`phases`, laid out as
/// [`Phases`] says) with `split` (an ISA build of [`split_channel`]), channels in parallel on the
/// current pool.
pub(super) fn split_phases(
    split: SplitFn,
    g: &ConvGeometry,
    channels: usize,
    input: &[f32],
    layout: Phases,
    phases: &mut [f32],
) {
    let (ih, iw) = (g.in_height(), g.in_width());
    let plane = layout.plane();
    // SAFETY: `split` is a build this CPU supports (the ISA table's).
    let one =
        |(ci, quad): (usize, &mut [f32])| unsafe { split(g, &input[ci * ih * iw..(ci + 1) * ih * iw], layout, quad) };
    let quads = &mut phases[..4 * channels * plane];
    if rayon::current_num_threads() > 1 && channels > 1 {
        quads.par_chunks_exact_mut(4 * plane).enumerate().for_each(one);
    } else {
        quads.chunks_exact_mut(4 * plane).enumerate().for_each(one);
    }
}

/// Splits one input channel `src` (`ih × iw`) into its four phase planes `quad`. One per ISA
/// build (the deinterleave vectorises as permutes where the ISA has them).
pub(crate) type SplitFn = unsafe fn(&ConvGeometry, &[f32], Phases, &mut [f32]);

/// The portable build of [`split_channel`].
pub(crate) unsafe fn split_portable(g: &ConvGeometry, src: &[f32], layout: Phases, quad: &mut [f32]) {
    split_channel(g, src, layout, quad, deinterleave_scalar)
}

/// The AVX2 build of [`split_channel`] (an explicit shuffle-and-permute deinterleave measured no
/// faster: the split is memory-bound; `examples/conv_bench` under perf, AMD EPYC Zen 3).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn split_avx2(g: &ConvGeometry, src: &[f32], layout: Phases, quad: &mut [f32]) {
    split_channel(g, src, layout, quad, deinterleave_scalar)
}

/// The AVX-512 build of [`split_channel`]: the deinterleave as two-source permutes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn split_avx512(g: &ConvGeometry, src: &[f32], layout: Phases, quad: &mut [f32]) {
    split_channel(g, src, layout, quad, |pairs, a, b| {
        // SAFETY: this build runs only where AVX-512F is (the ISA table's check).
        unsafe { deinterleave_avx512(pairs, a, b) }
    })
}

/// `a[k] = pairs[2k]`, `b[k] = pairs[2k + 1]` for `k < min(a.len(), b.len(), pairs.len() / 2)`;
/// returns that count.
#[inline(always)]
fn deinterleave_scalar(pairs: &[f32], a: &mut [f32], b: &mut [f32]) -> usize {
    let mut done = 0;
    for ((a, b), pair) in a.iter_mut().zip(b.iter_mut()).zip(pairs.chunks_exact(2)) {
        *a = pair[0];
        *b = pair[1];
        done += 1;
    }
    done
}

/// [`deinterleave_scalar`] 16 pairs at a time with `vpermt2ps`, the rest scalar.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn deinterleave_avx512(pairs: &[f32], a: &mut [f32], b: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let m = a.len().min(b.len()).min(pairs.len() / 2);
    let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    let odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    let mut k = 0;
    while k + 16 <= m {
        // SAFETY: pairs[2k..2k + 32] and a, b[k..k + 16] are in bounds (k + 16 ≤ m).
        unsafe {
            let lo = _mm512_loadu_ps(pairs.as_ptr().add(2 * k));
            let hi = _mm512_loadu_ps(pairs.as_ptr().add(2 * k + 16));
            _mm512_storeu_ps(a.as_mut_ptr().add(k), _mm512_permutex2var_ps(lo, evens, hi));
            _mm512_storeu_ps(b.as_mut_ptr().add(k), _mm512_permutex2var_ps(lo, odds, hi));
        }
        k += 16;
    }
    k + deinterleave_scalar(&pairs[2 * k..], &mut a[k..], &mut b[k..])
}

/// Splits one input channel `src` (`ih × iw`) into its four zero-padded phase planes `quad`,
/// writing every float of them (data once, zeros only where no input lands), so a scratch that
/// served another conv needs no clearing. `deinterleave` is the ISA's [`deinterleave_scalar`].
#[inline(always)]
fn split_channel(
    g: &ConvGeometry,
    src: &[f32],
    layout: Phases,
    quad: &mut [f32],
    deinterleave: impl Fn(&[f32], &mut [f32], &mut [f32]) -> usize,
) {
    let (ih, iw) = (g.in_height(), g.in_width());
    let [top, left, ..] = g.padding();
    let plane = layout.plane();
    for py in 0..2 {
        for r in 0..layout.rows {
            // Phase rows (py, px = 0) and (py, px = 1) at row r.
            let (even, odd) = {
                let at = |px: usize| (py * 2 + px) * plane + r * layout.stride;
                let (head, tail) = quad.split_at_mut(at(1));
                (&mut head[at(0)..][..layout.stride], &mut tail[..layout.stride])
            };
            let iy = 2 * r + py;
            if iy < top || iy - top >= ih {
                even.fill(0.0);
                odd.fill(0.0);
                continue;
            }
            let line = &src[(iy - top) * iw..][..iw];
            // Source column s lands in phase (s + left) % 2, column (s + left) / 2: a
            // deinterleave of the line's pairs, shifted by the left padding. Phase px gets the
            // columns [from[px], to[px]) of its row; the rest of the row is padding.
            let (pairs, rest) = line.split_at(iw / 2 * 2);
            let half = pairs.len() / 2;
            let (mut from, mut to) = ([0usize; 2], [0usize; 2]);
            {
                let (p0, p1, o0, o1) =
                    if left % 2 == 0 { (0, 1, left / 2, left / 2) } else { (1, 0, left / 2, left / 2 + 1) };
                let (first, second) =
                    if p0 == 0 { (&mut even[..], &mut odd[..]) } else { (&mut odd[..], &mut even[..]) };
                let (o0, o1) = (o0.min(layout.stride), o1.min(layout.stride));
                let (first, second) = (&mut first[o0..], &mut second[o1..]);
                // Either row may end before the pairs do (columns no tap reads).
                let (n0, n1) = (half.min(first.len()), half.min(second.len()));
                let both = deinterleave(pairs, first, second);
                first[both..n0].iter_mut().zip(pairs[2 * both..].chunks_exact(2)).for_each(|(a, pair)| *a = pair[0]);
                second[both..n1].iter_mut().zip(pairs[2 * both..].chunks_exact(2)).for_each(|(b, pair)| *b = pair[1]);
                (from[p0], to[p0]) = (o0, o0 + n0);
                (from[p1], to[p1]) = (o1, o1 + n1);
            }
            if let Some(&last) = rest.first() {
                let j = iw - 1 + left;
                let px = j % 2;
                let row = if px == 0 { &mut *even } else { &mut *odd };
                if let Some(d) = row.get_mut(j / 2) {
                    *d = last;
                    // The last column follows the pairs' columns of its phase (or is its only one).
                    if to[px] == from[px] {
                        from[px] = j / 2;
                    }
                    to[px] = j / 2 + 1;
                }
            }
            for (px, row) in [&mut *even, &mut *odd].into_iter().enumerate() {
                let (a, b) = (from[px].min(row.len()), to[px].min(row.len()).max(from[px].min(row.len())));
                row[..a].fill(0.0);
                row[b..].fill(0.0);
            }
        }
    }
}

/// One stride-2 conv's operands for a kernel call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StridedArgs<'a> {
    pub(super) g: &'a ConvGeometry,
    pub(super) layout: Phases,
    pub(super) in_channels: usize,
    pub(super) out_channels: usize,
    pub(super) phases: &'a [f32],
    /// [`pack_weights`]' layout.
    pub(super) weights: &'a [f32],
    pub(super) bias: &'a [f32],
    /// A ReLU on the outputs, applied as they are stored.
    pub(super) relu: bool,
}

/// Computes output rows `rows` (every output channel, bias included) into `out`
/// (`O × oh × ow`). One per ISA build.
pub(crate) type StridedFn = unsafe fn(&StridedArgs<'_>, std::ops::Range<usize>, SharedMut<f32>);

/// The whole conv: output rows split across the current pool's threads.
pub(super) fn run(kernel: StridedFn, args: &StridedArgs<'_>, output: &mut [f32]) {
    let oh = args.g.out_height();
    assert_eq!(output.len(), args.out_channels * oh * args.g.out_width(), "output length");
    let out = SharedMut(output.as_mut_ptr());
    let threads = rayon::current_num_threads();
    // SAFETY (both calls): `kernel` is a build this CPU supports (the ISA table's); each call
    // writes only its own output rows, and the ranges are disjoint.
    if threads <= 1 || oh < 2 {
        return unsafe { kernel(args, 0..oh, out) };
    }
    let per = oh.div_ceil(threads * 2).max(1);
    (0..oh.div_ceil(per)).into_par_iter().for_each(|t| unsafe { kernel(args, t * per..((t + 1) * per).min(oh), out) });
}

/// The portable build (plain Rust: 4 output channels × 8 pixels, multiply then add).
pub(crate) unsafe fn strided_portable(args: &StridedArgs<'_>, rows: std::ops::Range<usize>, out: SharedMut<f32>) {
    const CB: usize = 4;
    let k = Kernel::of(args);
    for y in rows {
        for x0 in (0..k.ow).step_by(8) {
            let lanes = 8.min(k.ow - x0);
            for c0 in (0..k.cout).step_by(CB) {
                let mut acc = [[0f32; 8]; CB];
                for (c, a) in acc.iter_mut().enumerate() {
                    *a = [args.bias.get(c0 + c).copied().unwrap_or(0.0); 8];
                }
                k.for_each_tap(args, y, x0, c0, CB, |src, w| {
                    // SAFETY: `for_each_tap` hands out pointers with 8 (src) and CB (w) readable
                    // floats.
                    let (src, w) = unsafe { (&*(src as *const [f32; 8]), &*(w as *const [f32; CB])) };
                    for (a, &wc) in acc.iter_mut().zip(w) {
                        a.iter_mut().zip(src).for_each(|(a, &v)| *a += wc * v);
                    }
                });
                for (c, a) in acc.iter().enumerate().take(k.cout - c0) {
                    // SAFETY: row y of plane c0 + c, this call's alone.
                    unsafe { k.store(out, c0 + c, y, x0, &a[..lanes]) };
                }
            }
        }
    }
}

/// The AVX2 + FMA build: blocks of 6 output channels × 16 pixels in ymm accumulators (12 of the
/// 16 registers), stored straight into the output rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn strided_avx2(args: &StridedArgs<'_>, rows: std::ops::Range<usize>, out: SharedMut<f32>) {
    let k = Kernel::of(args);
    for y in rows {
        let mut x0 = 0;
        while x0 < k.ow {
            let mut c0 = 0;
            // SAFETY (each call): forwarded; x0 is a multiple of 8 and a block reads at most 16
            // floats from it, so the loads stay inside the phase rows (16 readable past ow).
            let width = if k.ow - x0 > 8 {
                while c0 < k.cout {
                    // 16 channels of a packed block as 6 + 6 + 4.
                    c0 += unsafe {
                        if PACK - c0 % PACK >= 6 {
                            avx2_block::<6, 2>(&k, args, y, x0, c0, out)
                        } else {
                            avx2_block::<4, 2>(&k, args, y, x0, c0, out)
                        }
                    };
                }
                16
            } else {
                while c0 < k.cout {
                    c0 += unsafe { avx2_block::<8, 1>(&k, args, y, x0, c0, out) };
                }
                8
            };
            x0 += width;
        }
    }
}

/// Output row `y`, pixels `x0..x0 + 8·NV` (fewer at the row's end), output channels
/// `c0..c0 + CB` (fewer past the last): returns `CB`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_block<const CB: usize, const NV: usize>(
    k: &Kernel,
    args: &StridedArgs<'_>,
    y: usize,
    x0: usize,
    c0: usize,
    out: SharedMut<f32>,
) -> usize {
    use std::arch::x86_64::*;
    let lanes = (8 * NV).min(k.ow - x0);
    let mut acc = [[_mm256_setzero_ps(); NV]; CB];
    for (c, a) in acc.iter_mut().enumerate() {
        *a = [_mm256_set1_ps(args.bias.get(c0 + c).copied().unwrap_or(0.0)); NV];
    }
    k.for_each_tap(args, y, x0, c0, CB, |src, w| {
        // SAFETY: `for_each_tap` hands out pointers with 16 (src) and CB (w) readable floats.
        unsafe {
            let mut v = [_mm256_setzero_ps(); NV];
            for (j, v) in v.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(src.add(8 * j));
            }
            for (c, a) in acc.iter_mut().enumerate() {
                let wc = _mm256_set1_ps(*w.add(c));
                for j in 0..NV {
                    a[j] = _mm256_fmadd_ps(wc, v[j], a[j]);
                }
            }
        }
    });
    let zero = _mm256_setzero_ps();
    for (c, a) in acc.iter().enumerate().take(k.cout - c0) {
        if lanes == 8 * NV {
            for (j, &v) in a.iter().enumerate() {
                let v = if k.relu { _mm256_max_ps(v, zero) } else { v };
                // SAFETY: row y, pixels x0 + 8j..x0 + 8j + 8 of plane c0 + c: inside the
                // output, this call's alone.
                unsafe { _mm256_storeu_ps(k.at(out, c0 + c, y, x0 + 8 * j), v) };
            }
        } else {
            // The row's end: through a buffer, `store` applying the ReLU.
            let mut row = [0f32; 16];
            for (j, &v) in a.iter().enumerate() {
                // SAFETY: `row` holds 16 floats.
                unsafe { _mm256_storeu_ps(row.as_mut_ptr().add(8 * j), v) };
            }
            // SAFETY: the output range is row y of plane c0 + c, this call's alone.
            unsafe { k.store(out, c0 + c, y, x0, &row[..lanes]) };
        }
    }
    CB
}

/// The AVX-512 build: 8 output channels × 32 pixels (two zmm each; 16 where fewer than 32
/// pixels are left in the row), so a tap costs 2 loads and 8 broadcasts for 16 FMAs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
pub(crate) unsafe fn strided_avx512(args: &StridedArgs<'_>, rows: std::ops::Range<usize>, out: SharedMut<f32>) {
    let k = Kernel::of(args);
    for y in rows {
        let mut x0 = 0;
        while x0 < k.ow {
            // SAFETY: forwarded; x0 is a multiple of 16, so the loads stay inside the phase rows.
            x0 += unsafe {
                if k.ow - x0 >= 32 {
                    avx512_block::<2>(&k, args, y, x0, out)
                } else {
                    avx512_block::<1>(&k, args, y, x0, out)
                }
            };
        }
    }
}

/// Output row `y`, pixels `x0..x0 + 16·NV` (fewer at the row's end), every output channel.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn avx512_block<const NV: usize>(
    k: &Kernel,
    args: &StridedArgs<'_>,
    y: usize,
    x0: usize,
    out: SharedMut<f32>,
) -> usize {
    use std::arch::x86_64::*;
    const CB: usize = 8;
    let lanes = (16 * NV).min(k.ow - x0);
    for c0 in (0..k.cout).step_by(CB) {
        let mut acc = [[_mm512_setzero_ps(); NV]; CB];
        for (c, a) in acc.iter_mut().enumerate() {
            *a = [_mm512_set1_ps(args.bias.get(c0 + c).copied().unwrap_or(0.0)); NV];
        }
        k.for_each_tap(args, y, x0, c0, CB, |src, w| {
            // SAFETY: `for_each_tap` hands out pointers with 16·NV (src) and CB (w) readable
            // floats.
            unsafe {
                let mut v = [_mm512_setzero_ps(); NV];
                for (j, v) in v.iter_mut().enumerate() {
                    *v = _mm512_loadu_ps(src.add(16 * j));
                }
                for (c, a) in acc.iter_mut().enumerate() {
                    let wc = _mm512_set1_ps(*w.add(c));
                    for j in 0..NV {
                        a[j] = _mm512_fmadd_ps(wc, v[j], a[j]);
                    }
                }
            }
        });
        let mut row = [0f32; 32];
        for (c, a) in acc.iter().enumerate().take(k.cout - c0) {
            // SAFETY: `row` holds 32 floats; the output range is row y of plane c0 + c, this
            // call's alone.
            unsafe {
                for (j, v) in a.iter().enumerate() {
                    _mm512_storeu_ps(row.as_mut_ptr().add(16 * j), *v);
                }
                k.store(out, c0 + c, y, x0, &row[..lanes]);
            }
        }
    }
    16 * NV
}

/// What every build derives once per call: sizes and the offset of each tap in an input
/// channel's four phase planes.
struct Kernel {
    ow: usize,
    plane_out: usize,
    cin: usize,
    cout: usize,
    taps: usize,
    stride: usize,
    plane: usize,
    tap_offsets: [usize; 9],
    /// The largest of `tap_offsets`.
    max_offset: usize,
    relu: bool,
}

impl Kernel {
    fn of(args: &StridedArgs<'_>) -> Self {
        let g = args.g;
        let (kw, ow) = (g.kernel_width(), g.out_width());
        let (stride, plane) = (args.layout.stride, args.layout.plane());
        let mut tap_offsets = [0usize; 9];
        for (t, o) in tap_offsets.iter_mut().enumerate().take(g.taps()) {
            let (ky, kx) = (t / kw, t % kw);
            *o = ((ky % 2) * 2 + kx % 2) * plane + (ky / 2) * stride + kx / 2;
        }
        Kernel {
            ow,
            plane_out: g.out_height() * ow,
            cin: args.in_channels,
            cout: args.out_channels,
            taps: g.taps(),
            stride,
            plane,
            tap_offsets,
            max_offset: tap_offsets.iter().max().copied().unwrap_or(0),
            relu: args.relu,
        }
    }

    /// Calls `f(src, w)` for every input channel and tap of output channels `c0..c0 + cb`
    /// (inside one block of [`PACK`]) at row `y`, pixel `x0`: `src` points at the phase row the tap
    /// reads (readable up to 16 floats past column `ow`, through the next rows or the tail slack)
    /// and `w` at the `cb` weights of that tap.
    #[inline(always)]
    fn for_each_tap(
        &self,
        args: &StridedArgs<'_>,
        y: usize,
        x0: usize,
        c0: usize,
        cb: usize,
        mut f: impl FnMut(*const f32, *const f32),
    ) {
        let block = &args.weights[(c0 / PACK) * self.cin * self.taps * PACK..][..self.cin * self.taps * PACK];
        let within = c0 % PACK;
        assert!(within + cb <= PACK);
        let offsets = &self.tap_offsets[..self.taps];
        let first = y * self.stride + x0;
        // The furthest float any tap's 16-float read reaches: checked once, not per tap.
        let furthest = (self.cin - 1) * 4 * self.plane + first + self.max_offset + 16;
        assert!(furthest <= args.phases.len(), "phase buffer too short");
        let (phases, weights) = (args.phases.as_ptr(), block[within..].as_ptr());
        for ci in 0..self.cin {
            // SAFETY: every tap's source, with 16 floats after it, is inside `phases` (asserted
            // above); the weights of channel ci, tap t, lanes within..within + cb are inside
            // `block` (within + cb ≤ PACK).
            unsafe {
                let base = phases.add(ci * 4 * self.plane + first);
                let wci = weights.add(ci * self.taps * PACK);
                for (t, &off) in offsets.iter().enumerate() {
                    f(base.add(off), wci.add(t * PACK));
                }
            }
        }
    }

    /// The output address of row `y`, pixel `x0` of plane `c`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 builds only
    #[inline(always)]
    fn at(&self, out: SharedMut<f32>, c: usize, y: usize, x0: usize) -> *mut f32 {
        out.0.wrapping_add(c * self.plane_out + y * self.ow + x0)
    }

    /// Writes `values` (through a ReLU when the conv has one) at row `y`, pixels `x0..` of
    /// output plane `c`.
    ///
    /// # Safety
    /// `out` must hold `cout × oh × ow` floats, and no other thread write this range.
    #[inline(always)]
    unsafe fn store(&self, out: SharedMut<f32>, c: usize, y: usize, x0: usize, values: &[f32]) {
        // SAFETY: inside plane c (x0 + values.len() ≤ ow), as the caller guarantees.
        let dst =
            unsafe { std::slice::from_raw_parts_mut(out.0.add(c * self.plane_out + y * self.ow + x0), values.len()) };
        if self.relu {
            dst.iter_mut().zip(values).for_each(|(d, &v)| *d = v.max(0.0));
        } else {
            dst.copy_from_slice(values);
        }
    }
}
