//! The element-wise loops of the int8 kernels (quantize, requantize into K4 quads, gather quads,
//! dequantize-and-add), one build per instruction set of [`CpuIsa`] so that they vectorise: the
//! baseline x86-64 target has neither AVX nor a rounding instruction. Every build computes the
//! same bits as [`super::QParams::quantize`] and [`super::QConv::requantize`] (tested).
use super::quant::round_half_even;
use crate::kernels::cpu_f32::CpuIsa;

/// Where [`I8Simd::requantize_quads`] writes pixel `j`: at `base + j`, or at `pixels[j]`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Columns<'a> {
    From(usize),
    At(&'a [u32]),
}

/// `(acc, offset, multiplier, zero_point, lo, scale, dst)`: see [`I8Simd::requantize_add`].
pub(crate) type RequantizeFn = unsafe fn(&[i32], i32, f32, f32, f32, f32, &mut [f32]);

/// One instruction set's element-wise int8 loops.
#[derive(Debug)]
pub(crate) struct I8Simd {
    /// `dst[i] = quantize(src[i])` with `(scale, zero_point)`.
    pub quantize: unsafe fn(&[f32], f32, f32, &mut [u8]),
    /// `rows` (1–4) planes of `n` floats (`src`, one after the other) quantized straight into
    /// K4 quads: byte `r` of `dst[p]` is `quantize(src[r · n + p])`, bytes past `rows` zero —
    /// `quantize` then `interleave` in one pass: `(src, rows, n, scale, zero_point, dst)`.
    pub quantize_quads: unsafe fn(&[f32], usize, usize, f32, f32, &mut [u32]),
    /// `dst[j] = quantize(plane[pixels[j]])`: `(plane, pixels, scale, zero_point, dst)`; every
    /// pixel must be within the plane (unchecked).
    pub quantize_at: unsafe fn(&[f32], &[u32], f32, f32, &mut [u8]),
    /// `c` planar rows of `t` u8 (`src`) as K4 quads: `dst[q · ld + j]` holds rows `4q..4q + 4`
    /// of column `j` (rows past `c` zero): `(src, c, t, dst, ld)`.
    pub interleave: unsafe fn(&[u8], usize, usize, &mut [u32], usize),
    /// Channel-major accumulators (`offset.len()` rows of `t`) requantized (`lo` = the zero
    /// point after a ReLU, else 0) into K4 quads: channel `o` of pixel `j` is byte `o % 4` of
    /// `dst[(o / 4) · ld + column(j)]` (channels past the last up to a multiple of 4 zero):
    /// `(acc, t, offset, multiplier, zero_point, lo, dst, ld, columns)`.
    #[allow(clippy::type_complexity)]
    pub requantize_quads: unsafe fn(&[i32], usize, &[i32], &[f32], f32, f32, &mut [u32], usize, Columns<'_>),
    /// `dst[i] = src[base + index[i]]`: `(src, base, index, dst)`; every `base + index[i]` must
    /// be within `src` (unchecked).
    pub gather: unsafe fn(&[u32], usize, &[u32], &mut [u32]),
    /// One channel's accumulators requantized (clamped below at `lo`: the zero point after a
    /// ReLU, else 0), dequantized and added to `dst`:
    /// `(acc, offset, multiplier, zero_point, lo, scale, dst)`.
    pub requantize_add: RequantizeFn,
    /// As `requantize_add`, the value stored instead of added (a dense conv's output: no
    /// clearing pass first).
    pub requantize: RequantizeFn,
    /// A MultiPool selector on the K4 reduce output (`grid`, columns of `stride` quads):
    /// `scores[b · n + p] = bias[b] + Σ_o w[b][o] · dequantize(channel o of pixel p)` for every
    /// pixel `p` of `pixels` (the sum from 0 in channel order, then the bias: the portable
    /// arithmetic in every build): `(grid, stride, pixels, mid, (zero_point, scale), weights,
    /// bias, scores, n)`.
    #[allow(clippy::type_complexity)]
    pub selector: unsafe fn(&[u32], usize, &[u32], usize, (f32, f32), &[f32], &[f32], &mut [f32], usize),
    /// Like `requantize_add`, added at `plane[pixels[j]]` (every pixel within the plane,
    /// unchecked): `(acc, offset, multiplier, zero_point, lo, scale, plane, pixels)`.
    #[allow(clippy::type_complexity)]
    pub requantize_add_at: unsafe fn(&[i32], i32, f32, f32, f32, f32, &mut [f32], &[u32]),
}

#[inline(always)]
fn to_u8(q: f32, lo: f32) -> u8 {
    let q = q.max(lo).min(255.0);
    // SAFETY: q is finite (max ignores NaN) and in lo..=255.
    unsafe { q.to_int_unchecked::<i32>() as u8 }
}

#[inline(always)]
fn quantize_quads_body(src: &[f32], rows: usize, n: usize, scale: f32, zp: f32, dst: &mut [u32]) {
    let planes: [&[f32]; 4] = std::array::from_fn(|r| if r < rows { &src[r * n..][..n] } else { &[][..] });
    pack_quads(&planes[..rows.min(4)], &mut dst[..n], |x| to_u8(round_half_even(x / scale) + zp, 0.0));
}

/// `dst[p]` = the bytes `byte(rows[r][p])` for r = 0..rows.len() (1–4; missing bytes 0): one pass
/// per quad row, shaped so that it vectorises.
#[inline(always)]
fn pack_quads<T: Copy>(rows: &[&[T]], dst: &mut [u32], byte: impl Fn(T) -> u8) {
    let b = |v: T| byte(v) as u32;
    match rows {
        [a] => dst.iter_mut().zip(*a).for_each(|(d, &x)| *d = b(x)),
        [a, bb] => dst.iter_mut().zip(*a).zip(*bb).for_each(|((d, &x), &y)| *d = b(x) | b(y) << 8),
        [a, bb, c] => {
            dst.iter_mut().zip(*a).zip(*bb).zip(*c).for_each(|(((d, &x), &y), &z)| *d = b(x) | b(y) << 8 | b(z) << 16)
        }
        [a, bb, c, e, ..] => dst
            .iter_mut()
            .zip(*a)
            .zip(*bb)
            .zip(*c)
            .zip(*e)
            .for_each(|((((d, &x), &y), &z), &w)| *d = b(x) | b(y) << 8 | b(z) << 16 | b(w) << 24),
        [] => dst.fill(0),
    }
}

#[inline(always)]
fn quantize_body(src: &[f32], scale: f32, zp: f32, dst: &mut [u8]) {
    for (d, &x) in dst.iter_mut().zip(src) {
        *d = to_u8(round_half_even(x / scale) + zp, 0.0);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn selector_body(
    grid: &[u32],
    stride: usize,
    pixels: &[u32],
    mid: usize,
    (zp, scale): (f32, f32),
    weights: &[f32],
    bias: &[f32],
    scores: &mut [f32],
    n: usize,
) {
    let mut row = [0f32; 256];
    assert!(mid <= 256, "selectors read at most 256 channels");
    for &p in pixels {
        for (o, v) in row[..mid].iter_mut().enumerate() {
            let q = grid[(o / 4) * stride + p as usize].to_le_bytes()[o % 4];
            *v = (q as f32 - zp) * scale;
        }
        for (b, (wb, bias)) in weights.chunks_exact(mid).zip(bias).enumerate() {
            scores[b * n + p as usize] = bias + wb.iter().zip(&row[..mid]).map(|(a, v)| a * v).sum::<f32>();
        }
    }
}

#[inline(always)]
fn quantize_at_body(plane: &[f32], pixels: &[u32], scale: f32, zp: f32, dst: &mut [u8]) {
    for (d, &p) in dst.iter_mut().zip(pixels) {
        // SAFETY: the caller guarantees every pixel is within the plane.
        let x = unsafe { *plane.get_unchecked(p as usize) };
        *d = to_u8(round_half_even(x / scale) + zp, 0.0);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn requantize_add_at_body(
    acc: &[i32],
    offset: i32,
    mult: f32,
    zp: f32,
    lo: f32,
    scale: f32,
    plane: &mut [f32],
    pixels: &[u32],
) {
    for (&a, &p) in acc.iter().zip(pixels) {
        let q = (round_half_even((a + offset) as f32 * mult) + zp).max(lo).min(255.0);
        // SAFETY: the caller guarantees every pixel is within the plane.
        unsafe { *plane.get_unchecked_mut(p as usize) += (q - zp) * scale };
    }
}

#[inline(always)]
fn interleave_body(src: &[u8], c: usize, t: usize, dst: &mut [u32], ld: usize) {
    for q in 0..c.div_ceil(4) {
        let rows: [&[u8]; 4] =
            std::array::from_fn(|r| if 4 * q + r < c { &src[(4 * q + r) * t..][..t] } else { &[][..] });
        // The last group may have 1–3 rows; the missing bytes are 0.
        pack_quads(&rows[..(c - 4 * q).min(4)], &mut dst[q * ld..][..t], |v| v);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn requantize_quads_body(
    acc: &[i32],
    t: usize,
    offset: &[i32],
    mult: &[f32],
    zp: f32,
    lo: f32,
    dst: &mut [u32],
    ld: usize,
    columns: Columns<'_>,
) {
    const CHUNK: usize = 64;
    let m = offset.len();
    let mut rows = [[0u8; CHUNK]; 4];
    for q in 0..m.div_ceil(4) {
        for j0 in (0..t).step_by(CHUNK) {
            let len = CHUNK.min(t - j0);
            for (r, row) in rows.iter_mut().enumerate() {
                let o = 4 * q + r;
                if o >= m {
                    row.fill(0);
                    continue;
                }
                let (off, mu) = (offset[o], mult[o]);
                for (d, &a) in row[..len].iter_mut().zip(&acc[o * t + j0..][..len]) {
                    *d = to_u8(round_half_even((a + off) as f32 * mu) + zp, lo);
                }
            }
            let [r0, r1, r2, r3] = &rows;
            match columns {
                Columns::From(base) => {
                    let out = &mut dst[q * ld + base + j0..][..len];
                    for (j, d) in out.iter_mut().enumerate() {
                        *d = u32::from_le_bytes([r0[j], r1[j], r2[j], r3[j]]);
                    }
                }
                Columns::At(pixels) => {
                    for (j, &p) in pixels[j0..j0 + len].iter().enumerate() {
                        dst[q * ld + p as usize] = u32::from_le_bytes([r0[j], r1[j], r2[j], r3[j]]);
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn gather_body(src: &[u32], base: usize, index: &[u32], dst: &mut [u32]) {
    let src = &src[base..];
    let mut j = 0;
    while j < dst.len().min(index.len()) {
        // Runs of consecutive indices (a tile along an image row) are plain copies.
        let start = index[j] as usize;
        let mut len = 1;
        while j + len < dst.len().min(index.len()) && index[j + len] as usize == start + len {
            len += 1;
        }
        if len >= 8 {
            dst[j..j + len].copy_from_slice(&src[start..start + len]);
        } else {
            for (d, &i) in dst[j..j + len].iter_mut().zip(&index[j..j + len]) {
                // SAFETY: the caller guarantees every index is within `src[base..]`.
                *d = unsafe { *src.get_unchecked(i as usize) };
            }
        }
        j += len;
    }
}

#[inline(always)]
fn requantize_add_body(acc: &[i32], offset: i32, mult: f32, zp: f32, lo: f32, scale: f32, dst: &mut [f32]) {
    requantize_body::<true>(acc, offset, mult, zp, lo, scale, dst)
}

#[inline(always)]
fn requantize_body<const ADD: bool>(
    acc: &[i32],
    offset: i32,
    mult: f32,
    zp: f32,
    lo: f32,
    scale: f32,
    dst: &mut [f32],
) {
    for (d, &a) in dst.iter_mut().zip(acc) {
        let q = (round_half_even((a + offset) as f32 * mult) + zp).max(lo).min(255.0);
        let v = (q - zp) * scale;
        *d = if ADD { *d + v } else { v };
    }
}

/// One table of the bodies above, compiled with the target features listed (none: portable).
macro_rules! build {
    ($name:ident $(, $feature:literal)*) => {
        #[allow(non_snake_case)]
        mod $name {
            use super::*;
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn quantize(src: &[f32], scale: f32, zp: f32, dst: &mut [u8]) {
                quantize_body(src, scale, zp, dst)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn quantize_quads(src: &[f32], rows: usize, n: usize, scale: f32, zp: f32, dst: &mut [u32]) {
                quantize_quads_body(src, rows, n, scale, zp, dst)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn selector(
                grid: &[u32],
                stride: usize,
                pixels: &[u32],
                mid: usize,
                q: (f32, f32),
                weights: &[f32],
                bias: &[f32],
                scores: &mut [f32],
                n: usize,
            ) {
                selector_body(grid, stride, pixels, mid, q, weights, bias, scores, n)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn quantize_at(plane: &[f32], pixels: &[u32], scale: f32, zp: f32, dst: &mut [u8]) {
                quantize_at_body(plane, pixels, scale, zp, dst)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn requantize_add_at(acc: &[i32], offset: i32, mult: f32, zp: f32, lo: f32, scale: f32, plane: &mut [f32], pixels: &[u32]) {
                requantize_add_at_body(acc, offset, mult, zp, lo, scale, plane, pixels)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn interleave(src: &[u8], c: usize, t: usize, dst: &mut [u32], ld: usize) {
                interleave_body(src, c, t, dst, ld)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            #[allow(clippy::too_many_arguments)]
            pub(super) unsafe fn requantize_quads(
                acc: &[i32],
                t: usize,
                offset: &[i32],
                mult: &[f32],
                zp: f32,
                lo: f32,
                dst: &mut [u32],
                ld: usize,
                columns: Columns<'_>,
            ) {
                requantize_quads_body(acc, t, offset, mult, zp, lo, dst, ld, columns)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn gather(src: &[u32], base: usize, index: &[u32], dst: &mut [u32]) {
                gather_body(src, base, index, dst)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn requantize_add(acc: &[i32], offset: i32, mult: f32, zp: f32, lo: f32, scale: f32, dst: &mut [f32]) {
                requantize_add_body(acc, offset, mult, zp, lo, scale, dst)
            }
            #[cfg_attr(target_arch = "x86_64", target_feature($(enable = $feature),*))]
            pub(super) unsafe fn requantize(acc: &[i32], offset: i32, mult: f32, zp: f32, lo: f32, scale: f32, dst: &mut [f32]) {
                requantize_body::<false>(acc, offset, mult, zp, lo, scale, dst)
            }
        }
    };
}

macro_rules! table {
    ($name:ident) => {
        I8Simd {
            quantize: $name::quantize,
            quantize_quads: $name::quantize_quads,
            quantize_at: $name::quantize_at,
            selector: $name::selector,
            requantize_add_at: $name::requantize_add_at,
            interleave: $name::interleave,
            requantize_quads: $name::requantize_quads,
            gather: $name::gather,
            requantize_add: $name::requantize_add,
            requantize: $name::requantize,
        }
    };
}

build!(PORTABLE, "sse2");
#[cfg(target_arch = "x86_64")]
build!(AVX2, "avx2", "fma");
#[cfg(target_arch = "x86_64")]
build!(AVX512, "avx512f", "avx512bw", "avx512vl", "avx2", "fma");

static PORTABLE_TABLE: I8Simd = table!(PORTABLE);
#[cfg(target_arch = "x86_64")]
static AVX2_TABLE: I8Simd = I8Simd {
    gather: gather_avx2,
    requantize_add_at: requantize_add_at_avx2,
    requantize_quads: requantize_quads_avx2,
    ..table!(AVX2)
};
#[cfg(target_arch = "x86_64")]
static AVX512_TABLE: I8Simd = I8Simd {
    gather: gather_avx512,
    requantize_quads: requantize_quads_avx512,
    quantize_at: quantize_at_avx512,
    requantize_add_at: requantize_add_at_avx512,
    selector: selector_avx512,
    ..table!(AVX512)
};

/// [`I8Simd::selector`] 16 pixels at a time (pixels in the lanes; the portable body's operation
/// order, mul then add, per lane).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn selector_avx512(
    grid: &[u32],
    stride: usize,
    pixels: &[u32],
    mid: usize,
    (zp, scale): (f32, f32),
    weights: &[f32],
    bias: &[f32],
    scores: &mut [f32],
    n: usize,
) {
    use std::arch::x86_64::*;
    let p = bias.len();
    if p > 16 {
        return selector_body(grid, stride, pixels, mid, (zp, scale), weights, bias, scores, n);
    }
    assert!(weights.len() >= p * mid && scores.len() >= p * n && grid.len() >= mid.div_ceil(4) * stride);
    assert!(pixels.iter().all(|&q| (q as usize) < n && (q as usize) < stride));
    let (zpv, sv, byte) = (_mm512_set1_ps(zp), _mm512_set1_ps(scale), _mm512_set1_epi32(0xFF));
    let mut j = 0;
    while j < pixels.len() {
        let lanes = (pixels.len() - j).min(16);
        let mask = lanes_mask(lanes);
        let index = _mm512_maskz_loadu_epi32(mask, pixels.as_ptr().add(j) as *const i32);
        let first = *pixels.get_unchecked(j);
        let run = run16(index, first, mask);
        let mut acc = [_mm512_setzero_ps(); 16];
        for qd in 0..mid.div_ceil(4) {
            let column = grid.as_ptr().add(qd * stride) as *const i32;
            let quads = if run {
                _mm512_maskz_loadu_epi32(mask, column.add(first as usize))
            } else {
                _mm512_mask_i32gather_epi32::<4>(_mm512_setzero_si512(), mask, index, column)
            };
            for r in 0..4 {
                let o = 4 * qd + r;
                if o >= mid {
                    break;
                }
                let q = match r {
                    0 => quads,
                    1 => _mm512_srli_epi32::<8>(quads),
                    2 => _mm512_srli_epi32::<16>(quads),
                    _ => _mm512_srli_epi32::<24>(quads),
                };
                let v = _mm512_mul_ps(_mm512_sub_ps(_mm512_cvtepi32_ps(_mm512_and_si512(q, byte)), zpv), sv);
                for (b, a) in acc.iter_mut().enumerate().take(p) {
                    *a = _mm512_add_ps(*a, _mm512_mul_ps(_mm512_set1_ps(*weights.get_unchecked(b * mid + o)), v));
                }
            }
        }
        for (b, a) in acc.iter().enumerate().take(p) {
            let v = _mm512_add_ps(_mm512_set1_ps(bias[b]), *a);
            let plane = scores.as_mut_ptr().add(b * n);
            if run {
                _mm512_mask_storeu_ps(plane.add(first as usize), mask, v);
            } else {
                scatter16(plane, &pixels[j..j + lanes], v, false);
            }
        }
        j += 16;
    }
}

/// [`I8Simd::quantize_at`] with `vgatherdps`, 16 pixels at a time (the portable body's
/// arithmetic, op for op).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn quantize_at_avx512(plane: &[f32], pixels: &[u32], scale: f32, zp: f32, dst: &mut [u8]) {
    use std::arch::x86_64::*;
    let n = dst.len().min(pixels.len());
    let (zero, sv) = (_mm512_setzero_ps(), _mm512_set1_ps(scale));
    let mut j = 0;
    while j < n {
        let lanes = (n - j).min(16);
        let mask = lanes_mask(lanes);
        let index = _mm512_maskz_loadu_epi32(mask, pixels.as_ptr().add(j) as *const i32);
        let first = *pixels.get_unchecked(j);
        let x = if run16(index, first, mask) {
            _mm512_maskz_loadu_ps(mask, plane.as_ptr().add(first as usize))
        } else {
            _mm512_mask_i32gather_ps::<4>(zero, mask, index, plane.as_ptr())
        };
        let v = saturate16(_mm512_div_ps(x, sv), zp, 0.0);
        _mm512_mask_cvtepi32_storeu_epi8(dst.as_mut_ptr().add(j) as *mut i8, mask, _mm512_cvttps_epi32(v));
        j += 16;
    }
}

/// [`I8Simd::requantize_add_at`] with gathers and scatters, 16 pixels at a time (distinct pixels
/// in a call, so no lane overwrites another's sum).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn requantize_add_at_avx512(
    acc: &[i32],
    offset: i32,
    mult: f32,
    zp: f32,
    lo: f32,
    scale: f32,
    plane: &mut [f32],
    pixels: &[u32],
) {
    use std::arch::x86_64::*;
    let n = acc.len().min(pixels.len());
    let (off, mu, sc, zpv) =
        (_mm512_set1_epi32(offset), _mm512_set1_ps(mult), _mm512_set1_ps(scale), _mm512_set1_ps(zp));
    let mut j = 0;
    while j < n {
        let lanes = (n - j).min(16);
        let mask = lanes_mask(lanes);
        let a = _mm512_maskz_loadu_epi32(mask, acc.as_ptr().add(j));
        let q = saturate16(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(a, off)), mu), zp, lo);
        let value = _mm512_mul_ps(_mm512_sub_ps(q, zpv), sc);
        let index = _mm512_maskz_loadu_epi32(mask, pixels.as_ptr().add(j) as *const i32);
        let first = *pixels.get_unchecked(j);
        if run16(index, first, mask) {
            let at = plane.as_mut_ptr().add(first as usize);
            _mm512_mask_storeu_ps(at, mask, _mm512_add_ps(_mm512_maskz_loadu_ps(mask, at), value));
        } else {
            scatter16(plane.as_mut_ptr(), &pixels[j..j + lanes], value, true);
        }
        j += 16;
    }
}

/// Where the SIMD `requantize_quads` builds store (`(base, None)` from column `base` on, or
/// `(0, Some(pixels))` at those columns), after checking that every store of `m` channels of `t`
/// pixels lands inside `dst` (their writes are unchecked).
#[cfg(target_arch = "x86_64")]
fn quads_target<'a>(
    acc: &[i32],
    t: usize,
    m: usize,
    dst: &[u32],
    ld: usize,
    columns: Columns<'a>,
) -> (usize, Option<&'a [u32]>) {
    let (base, pixels) = match columns {
        Columns::From(base) => (base, None),
        Columns::At(pixels) => (0, Some(pixels)),
    };
    assert!(acc.len() >= m * t);
    match pixels {
        None => assert!(dst.len() >= (m.div_ceil(4) - 1) * ld + base + t),
        Some(p) => {
            assert!(p.len() >= t && p[..t].iter().all(|&p| (p as usize) < ld) && dst.len() >= m.div_ceil(4) * ld)
        }
    }
    (base, pixels)
}

/// [`I8Simd::requantize_quads`] with the 4 channels of a quad requantized and packed in
/// registers, 16 pixels at a time (the same arithmetic, op for op, as the portable body).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn requantize_quads_avx512(
    acc: &[i32],
    t: usize,
    offset: &[i32],
    mult: &[f32],
    zp: f32,
    lo: f32,
    dst: &mut [u32],
    ld: usize,
    columns: Columns<'_>,
) {
    use std::arch::x86_64::*;
    let m = offset.len();
    let (base, pixels) = quads_target(acc, t, m, dst, ld, columns);
    for q in 0..m.div_ceil(4) {
        let out = dst.as_mut_ptr().add(q * ld + base);
        let mut j = 0;
        while j < t {
            let lanes = (t - j).min(16);
            let mask = lanes_mask(lanes);
            let mut packed = _mm512_setzero_si512();
            for r in 0..4 {
                let o = 4 * q + r;
                if o >= m {
                    break;
                }
                let a = _mm512_maskz_loadu_epi32(mask, acc.as_ptr().add(o * t + j));
                let v = _mm512_mul_ps(
                    _mm512_cvtepi32_ps(_mm512_add_epi32(a, _mm512_set1_epi32(offset[o]))),
                    _mm512_set1_ps(mult[o]),
                );
                let v = _mm512_cvttps_epi32(saturate16(v, zp, lo));
                let v = match r {
                    0 => v,
                    1 => _mm512_slli_epi32::<8>(v),
                    2 => _mm512_slli_epi32::<16>(v),
                    _ => _mm512_slli_epi32::<24>(v),
                };
                packed = _mm512_or_si512(packed, v);
            }
            match pixels {
                None => _mm512_mask_storeu_epi32(out.add(j) as *mut i32, mask, packed),
                Some(p) => {
                    let index = _mm512_maskz_loadu_epi32(mask, p.as_ptr().add(j) as *const i32);
                    let first = *p.get_unchecked(j);
                    if run16(index, first, mask) {
                        _mm512_mask_storeu_epi32(out.add(first as usize) as *mut i32, mask, packed);
                    } else {
                        _mm512_mask_i32scatter_epi32::<4>(out as *mut i32, mask, index, packed);
                    }
                }
            }
            j += 16;
        }
    }
}

/// The quantizer of the AVX-512 builds: `min(max(round_half_even(v) + zp, lo), 255)` on 16
/// lanes, op for op the portable bodies' arithmetic (`round_half_even` clamps to ±2²², then adds
/// and subtracts 1.5 · 2²³).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn saturate16(v: std::arch::x86_64::__m512, zp: f32, lo: f32) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let v = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-4_194_304.0)), _mm512_set1_ps(4_194_304.0));
    let v = _mm512_sub_ps(_mm512_add_ps(v, _mm512_set1_ps(MAGIC)), _mm512_set1_ps(MAGIC));
    _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(v, _mm512_set1_ps(zp)), _mm512_set1_ps(lo)), _mm512_set1_ps(255.0))
}

/// The mask of the first `lanes` (≤ 16) lanes.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn lanes_mask(lanes: usize) -> std::arch::x86_64::__mmask16 {
    if lanes >= 16 {
        0xFFFF
    } else {
        (1u16 << lanes) - 1
    }
}

/// Writes (or, with `add`, adds) the first `pixels.len()` (≤ 16) lanes of `v` at
/// `plane[pixels[l]]`, one lane at a time: Zen 5's `vscatterdps` is slower than 16 scalar
/// stores. The pixels must be within the plane (unchecked).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn scatter16(plane: *mut f32, pixels: &[u32], v: std::arch::x86_64::__m512, add: bool) {
    let mut lanes = [0f32; 16];
    std::arch::x86_64::_mm512_storeu_ps(lanes.as_mut_ptr(), v);
    for (&p, &x) in pixels.iter().zip(&lanes) {
        let at = plane.add(p as usize);
        *at = if add { *at + x } else { x };
    }
}

/// Whether the `mask`ed lanes of `index` are `first, first + 1, …` (a run: plain loads and
/// stores serve it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn run16(index: std::arch::x86_64::__m512i, first: u32, mask: std::arch::x86_64::__mmask16) -> bool {
    use std::arch::x86_64::*;
    let iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    _mm512_mask_cmpeq_epi32_mask(mask, index, _mm512_add_epi32(_mm512_set1_epi32(first as i32), iota)) == mask
}

/// [`I8Simd::gather`] with `vpgatherdd`, 16 quads at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gather_avx512(src: &[u32], base: usize, index: &[u32], dst: &mut [u32]) {
    use std::arch::x86_64::*;
    let n = dst.len().min(index.len());
    let from = src.as_ptr().add(base) as *const i32;
    let mut j = 0;
    while j < n {
        let lanes = (n - j).min(16);
        let mask = lanes_mask(lanes);
        let vindex = _mm512_maskz_loadu_epi32(mask, index.as_ptr().add(j) as *const i32);
        // 16 consecutive indices (a dense tile inside an image row): one plain load.
        let first = *index.get_unchecked(j);
        let offsets = _mm512_sub_epi32(vindex, _mm512_set1_epi32(first as i32));
        let v = if run16(vindex, first, mask) {
            _mm512_maskz_loadu_epi32(mask, from.add(first as usize))
        } else if _mm512_mask_cmplt_epu32_mask(mask, offsets, _mm512_set1_epi32(64)) == mask {
            // Every index within first..first + 64 (a sparse tile's pixels clustered in a row):
            // loads of that window and permutes (cheaper than `vpgatherdd` on Zen 5). The loads
            // stop at the end of `src` (lanes past it are never selected: every index is within
            // `src`).
            let avail = src.len() - base - first as usize;
            let window = |k: usize| {
                _mm512_maskz_loadu_epi32(
                    lanes_mask(avail.saturating_sub(16 * k)),
                    from.wrapping_add(first as usize + 16 * k),
                )
            };
            let near = _mm512_maskz_permutex2var_epi32(mask, window(0), offsets, window(1));
            let far = _mm512_mask_cmpge_epu32_mask(mask, offsets, _mm512_set1_epi32(32));
            if far == 0 {
                near
            } else {
                // permutex2var reads the offsets' low 5 bits: offset − 32 into windows 2 and 3.
                _mm512_mask_mov_epi32(near, far, _mm512_permutex2var_epi32(window(2), offsets, window(3)))
            }
        } else {
            _mm512_mask_i32gather_epi32::<4>(_mm512_setzero_si512(), mask, vindex, from)
        };
        _mm512_mask_storeu_epi32(dst.as_mut_ptr().add(j) as *mut i32, mask, v);
        j += 16;
    }
}

/// The quantizer of the AVX2 builds, [`saturate16`] on 8 lanes: `min(max(round_half_even(v) +
/// zp, lo), 255)`, op for op the portable bodies' arithmetic.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn saturate8(v: std::arch::x86_64::__m256, zp: f32, lo: f32) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    const MAGIC: f32 = 12_582_912.0;
    let v = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-4_194_304.0)), _mm256_set1_ps(4_194_304.0));
    let v = _mm256_sub_ps(_mm256_add_ps(v, _mm256_set1_ps(MAGIC)), _mm256_set1_ps(MAGIC));
    _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, _mm256_set1_ps(zp)), _mm256_set1_ps(lo)), _mm256_set1_ps(255.0))
}

/// Whether the 8 lanes of `index` are `first, first + 1, …`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn run8(index: std::arch::x86_64::__m256i, first: u32) -> bool {
    use std::arch::x86_64::*;
    let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_movemask_epi8(_mm256_cmpeq_epi32(index, _mm256_add_epi32(_mm256_set1_epi32(first as i32), iota))) == -1
}

/// [`I8Simd::requantize_quads`] with the 4 channels of a quad requantized and packed in
/// registers, 8 pixels at a time (the portable body's arithmetic, op for op); the last `t % 8`
/// pixels as the portable body computes them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn requantize_quads_avx2(
    acc: &[i32],
    t: usize,
    offset: &[i32],
    mult: &[f32],
    zp: f32,
    lo: f32,
    dst: &mut [u32],
    ld: usize,
    columns: Columns<'_>,
) {
    use std::arch::x86_64::*;
    let m = offset.len();
    let (base, pixels) = quads_target(acc, t, m, dst, ld, columns);
    let whole = t / 8 * 8;
    for q in 0..m.div_ceil(4) {
        let out = dst.as_mut_ptr().add(q * ld + base);
        for j in (0..whole).step_by(8) {
            let mut packed = _mm256_setzero_si256();
            for r in 0..4 {
                let o = 4 * q + r;
                if o >= m {
                    break;
                }
                let a = _mm256_loadu_si256(acc.as_ptr().add(o * t + j) as *const __m256i);
                let v = _mm256_mul_ps(
                    _mm256_cvtepi32_ps(_mm256_add_epi32(a, _mm256_set1_epi32(offset[o]))),
                    _mm256_set1_ps(mult[o]),
                );
                let v = _mm256_cvttps_epi32(saturate8(v, zp, lo));
                let v = match r {
                    0 => v,
                    1 => _mm256_slli_epi32::<8>(v),
                    2 => _mm256_slli_epi32::<16>(v),
                    _ => _mm256_slli_epi32::<24>(v),
                };
                packed = _mm256_or_si256(packed, v);
            }
            match pixels {
                None => _mm256_storeu_si256(out.add(j) as *mut __m256i, packed),
                Some(p) => {
                    let index = _mm256_loadu_si256(p.as_ptr().add(j) as *const __m256i);
                    let first = *p.get_unchecked(j);
                    if run8(index, first) {
                        _mm256_storeu_si256(out.add(first as usize) as *mut __m256i, packed);
                    } else {
                        let mut lanes = [0u32; 8];
                        _mm256_storeu_si256(lanes.as_mut_ptr() as *mut __m256i, packed);
                        for (&p, v) in p[j..j + 8].iter().zip(lanes) {
                            *out.add(p as usize) = v;
                        }
                    }
                }
            }
        }
        for j in whole..t {
            let byte = |r: usize| {
                let o = 4 * q + r;
                if o >= m {
                    return 0;
                }
                to_u8(round_half_even((acc[o * t + j] + offset[o]) as f32 * mult[o]) + zp, lo)
            };
            let v = u32::from_le_bytes([byte(0), byte(1), byte(2), byte(3)]);
            match pixels {
                None => *out.add(j) = v,
                Some(p) => *out.add(p[j] as usize) = v,
            }
        }
    }
}

/// [`I8Simd::requantize_add_at`] 8 pixels at a time: the requantization in registers (the
/// portable body's operations, op for op), then one vector add for 8 consecutive pixels or 8
/// scalar adds. (The portable body does not vectorise around its scattered adds: 10 % of an
/// int8 frame at ρ=0.5 on Zen 3.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn requantize_add_at_avx2(
    acc: &[i32],
    offset: i32,
    mult: f32,
    zp: f32,
    lo: f32,
    scale: f32,
    plane: &mut [f32],
    pixels: &[u32],
) {
    use std::arch::x86_64::*;
    let n = acc.len().min(pixels.len());
    let (off, mu, sc, zpv) =
        (_mm256_set1_epi32(offset), _mm256_set1_ps(mult), _mm256_set1_ps(scale), _mm256_set1_ps(zp));
    let mut j = 0;
    while j + 8 <= n {
        let a = _mm256_loadu_si256(acc.as_ptr().add(j) as *const __m256i);
        let q = saturate8(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_add_epi32(a, off)), mu), zp, lo);
        let value = _mm256_mul_ps(_mm256_sub_ps(q, zpv), sc);
        let index = _mm256_loadu_si256(pixels.as_ptr().add(j) as *const __m256i);
        let first = *pixels.get_unchecked(j);
        if run8(index, first) {
            let at = plane.as_mut_ptr().add(first as usize);
            _mm256_storeu_ps(at, _mm256_add_ps(_mm256_loadu_ps(at), value));
        } else {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), value);
            for (&p, v) in pixels[j..j + 8].iter().zip(lanes) {
                // SAFETY: the caller guarantees every pixel is within the plane.
                *plane.get_unchecked_mut(p as usize) += v;
            }
        }
        j += 8;
    }
    requantize_add_at_body(&acc[j..n], offset, mult, zp, lo, scale, plane, &pixels[j..n]);
}

/// [`I8Simd::gather`] 8 quads at a time: 8 consecutive indices are one plain load; indices
/// within a 16-quad window of the first (a sparse tile's pixels clustered in a row) two loads
/// and permutes; others `vpgatherdd`. (The portable body's run detection, one index at a time,
/// was 21 % of an int8 frame at ρ=0.5 on Zen 3.)
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn gather_avx2(src: &[u32], base: usize, index: &[u32], dst: &mut [u32]) {
    use std::arch::x86_64::*;
    let n = dst.len().min(index.len());
    let from = src.as_ptr().add(base) as *const i32;
    let iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let mut j = 0;
    while j + 8 <= n {
        let vindex = _mm256_loadu_si256(index.as_ptr().add(j) as *const __m256i);
        let first = *index.get_unchecked(j) as usize;
        let offsets = _mm256_sub_epi32(vindex, _mm256_set1_epi32(first as i32));
        // Quads from `first` to the end of `src`: a window load may not pass it.
        let avail = src.len() - base - first;
        let v = if _mm256_movemask_epi8(_mm256_cmpeq_epi32(offsets, iota)) == -1 && avail >= 8 {
            _mm256_loadu_si256(from.add(first) as *const __m256i)
        } else if avail >= 16
            && _mm256_movemask_epi8(_mm256_and_si256(
                _mm256_cmpgt_epi32(offsets, _mm256_set1_epi32(-1)),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(16), offsets),
            )) == -1
        {
            // permutevar8x32 reads the offsets' low 3 bits; offsets ≥ 8 take the second window.
            let lo = _mm256_loadu_si256(from.add(first) as *const __m256i);
            let hi = _mm256_loadu_si256(from.add(first + 8) as *const __m256i);
            let high = _mm256_cmpgt_epi32(offsets, _mm256_set1_epi32(7));
            _mm256_blendv_epi8(_mm256_permutevar8x32_epi32(lo, offsets), _mm256_permutevar8x32_epi32(hi, offsets), high)
        } else {
            _mm256_i32gather_epi32::<4>(from, vindex)
        };
        _mm256_storeu_si256(dst.as_mut_ptr().add(j) as *mut __m256i, v);
        j += 8;
    }
    for (d, &i) in dst[j..n].iter_mut().zip(&index[j..n]) {
        // SAFETY: the caller guarantees every index is within `src[base..]`.
        *d = *src.get_unchecked(base + i as usize);
    }
}

/// The element-wise loops built for `isa` (same name; the portable build for any other).
pub(crate) fn for_isa(isa: &CpuIsa) -> &'static I8Simd {
    match isa.name {
        #[cfg(target_arch = "x86_64")]
        "avx2" => &AVX2_TABLE,
        #[cfg(target_arch = "x86_64")]
        "avx512" => &AVX512_TABLE,
        _ => &PORTABLE_TABLE,
    }
}
