//! pagrt's AVX2 int8 kernel for a conv's product on a K4-interleaved activation tile, for x86
//! CPUs without dot-product int8 instructions (no AVX-512 VNNI or AVX-VNNI: AMD Zen 1–3, Intel
//! before Ice Lake / Alder Lake).
//!
//! Same layout and result as [`super::vnni::conv_k4`], 8 pixels per ymm. AVX2's u8 × s8
//! instruction (`vpmaddubsw`) saturates its 16-bit pair sums (255 · 128 · 2 > 32767), so this
//! kernel is exact instead: each 8-pixel K4 vector is split into its even and odd bytes as
//! 16-bit lanes (`a0, a2` and `a1, a3` of every pixel), and `vpmaddwd` with the weight pairs
//! `(w0, w2)` and `(w1, w3)` gives two exact i32 partial sums per pixel. It reads the tile as it
//! lies (tract-linalg's AVX2 kernel re-packs it every call, and measured ~40× slower than this
//! runtime's f32 on a whole frame of the shipped int8 model on an AMD EPYC Zen 3).
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Weights for [`conv_k4`]: per output channel and quad `q`, the two i32 words holding the i16
/// pairs `(w[4q], w[4q + 2])` and `(w[4q + 1], w[4q + 3])`, `[m][k / 4][2]`.
#[derive(Debug, Clone)]
pub struct Avx2Weights {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 builds only
    pairs: Vec<i32>,
    m: usize,
    k: usize,
}

impl Avx2Weights {
    /// Packs row-major `weights` (`m × k`, `k` a multiple of 4).
    pub fn pack(weights: &[i8], m: usize, k: usize) -> Avx2Weights {
        assert!(k.is_multiple_of(4) && weights.len() == m * k);
        let pair = |a: i8, b: i8| (a as i16 as u16 as u32 | ((b as i16 as u16 as u32) << 16)) as i32;
        let pairs = weights.chunks_exact(4).flat_map(|q| [pair(q[0], q[2]), pair(q[1], q[3])]).collect();
        Avx2Weights { pairs, m, k }
    }

    pub fn m(&self) -> usize {
        self.m
    }
    pub fn k(&self) -> usize {
        self.k
    }
}

/// Whether this CPU runs [`conv_k4`].
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[o · n + j] = Σ_k W[o][k] · act[k][j]` for the `n` pixels of a K4 tile with row length
/// `ld ≥ n`: 8 pixels at a time (the last block masked), 8 output channels at a time.
///
/// # Safety
/// The CPU must support AVX2 ([`supported`]); `act` must hold `((k / 4 − 1) · ld + n) · 4`
/// bytes and `out` `m · n` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub unsafe fn conv_k4(w: &Avx2Weights, act: &[u8], ld: usize, n: usize, out: &mut [i32]) {
    let (m, kq) = (w.m, w.k / 4);
    assert!(kq >= 1 && act.len() >= ((kq - 1) * ld + n) * 4 && out.len() >= m * n && ld >= n);
    let mut j = 0;
    while j < n {
        let lanes = (n - j).min(8);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        let (a, o_ptr) = (act.as_ptr().add(j * 4), out.as_mut_ptr().add(j));
        for (o, width) in super::channel_blocks(m, &[8, 4, 1]) {
            let (wp, dst) = (w.pairs.as_ptr().add(o * kq * 2), o_ptr.add(o * n));
            // SAFETY (each): pixels j..j + lanes of every quad row are inside `act` (asserted
            // above), channels o..o + width inside the weights and `out`.
            match width {
                8 => tile::<8>(wp, kq, a, ld, dst, n, lanes, mask),
                4 => tile::<4>(wp, kq, a, ld, dst, n, lanes, mask),
                _ => tile::<1>(wp, kq, a, ld, dst, n, lanes, mask),
            }
        }
        j += 8;
    }
}

/// 8 pixels (the first `lanes` of them kept) × `O` output channels of [`conv_k4`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const O: usize>(
    w: *const i32,
    kq: usize,
    act: *const u8,
    ld: usize,
    out: *mut i32,
    n: usize,
    lanes: usize,
    mask: __m256i,
) {
    let mut acc = [_mm256_setzero_si256(); O];
    let low_bytes = _mm256_set1_epi16(0x00FF);
    for q in 0..kq {
        let src = act.add(q * ld * 4) as *const i32;
        let a = if lanes == 8 { _mm256_loadu_si256(src as *const __m256i) } else { _mm256_maskload_epi32(src, mask) };
        // 16-bit lanes: (a0, a2) and (a1, a3) of each pixel, zero-extended.
        let even = _mm256_and_si256(a, low_bytes);
        let odd = _mm256_srli_epi16::<8>(a);
        for (o, acc) in acc.iter_mut().enumerate() {
            let wq = w.add((o * kq + q) * 2);
            let lo = _mm256_madd_epi16(even, _mm256_set1_epi32(*wq));
            let hi = _mm256_madd_epi16(odd, _mm256_set1_epi32(*wq.add(1)));
            *acc = _mm256_add_epi32(*acc, _mm256_add_epi32(lo, hi));
        }
    }
    for (o, &v) in acc.iter().enumerate() {
        let dst = out.add(o * n);
        if lanes == 8 {
            _mm256_storeu_si256(dst as *mut __m256i, v);
        } else {
            _mm256_maskstore_epi32(dst, mask, v);
        }
    }
}
