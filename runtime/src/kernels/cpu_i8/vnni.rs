//! pagrt's AVX-512 VNNI kernel for a conv's product on a K4-interleaved activation tile.
//!
//! The tile holds, for each group of 4 input channels `q` and pixel `j`, the 4 u8 activations
//! at `act[(q · ld + j) · 4..]`: 16 consecutive pixels of one group are one 64-byte vector, the
//! u8 operand of `vpdpbusd`. The weights are the broadcast operand (4 s8 of one output channel).
//! Pixels are the vector lanes, so the result comes out channel-major — what the block's planar
//! residual stream and the next K4 tile both want — and nothing is packed per frame: tract-linalg's
//! kernels would re-pack the tile into their panels every call (measured as costly as the product
//! itself on pagrt's narrow blocks).
#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Weights for [`conv_k4`]: row-major quads, `[m][k / 4]` as little-endian i32.
#[derive(Debug, Clone)]
pub struct VnniWeights {
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // used by the x86 builds only
    quads: Vec<i32>,
    m: usize,
    k: usize,
}

impl VnniWeights {
    /// Packs row-major `weights` (`m × k`, `k` a multiple of 4).
    pub fn pack(weights: &[i8], m: usize, k: usize) -> VnniWeights {
        assert!(k.is_multiple_of(4) && weights.len() == m * k);
        let quads = weights
            .chunks_exact(4)
            .map(|q| i32::from_le_bytes([q[0] as u8, q[1] as u8, q[2] as u8, q[3] as u8]))
            .collect();
        VnniWeights { quads, m, k }
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
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[o · n + j] = Σ_k W[o][k] · act[k][j]` for the `n` pixels of a K4 tile with row length
/// `ld ≥ n`: 16 pixels at a time (the last block masked), 16 output channels at a time.
///
/// # Safety
/// The CPU must support AVX-512 F, BW and VNNI ([`supported`]); `act` must hold
/// `((k / 4 − 1) · ld + n) · 4` bytes and `out` `m · n` values.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn conv_k4(w: &VnniWeights, act: &[u8], ld: usize, n: usize, out: &mut [i32]) {
    let (m, kq) = (w.m, w.k / 4);
    debug_assert!(kq >= 1 && act.len() >= ((kq - 1) * ld + n) * 4 && out.len() >= m * n && ld >= n);
    let mut j = 0;
    while j < n {
        let lanes = (n - j).min(16);
        let mask = super::simd::lanes_mask(lanes);
        let (a, o_ptr) = (act.as_ptr().add(j * 4), out.as_mut_ptr().add(j));
        for (o, width) in super::channel_blocks(m, &[16, 8, 4, 1]) {
            let (wq, dst) = (w.quads.as_ptr().add(o * kq), o_ptr.add(o * n));
            match width {
                16 => tile::<16>(wq, kq, a, ld, dst, n, mask),
                8 => tile::<8>(wq, kq, a, ld, dst, n, mask),
                4 => tile::<4>(wq, kq, a, ld, dst, n, mask),
                _ => tile::<1>(wq, kq, a, ld, dst, n, mask),
            }
        }
        j += 16;
    }
}

/// 16 pixels × `O` output channels of [`conv_k4`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[inline]
unsafe fn tile<const O: usize>(
    w: *const i32,
    kq: usize,
    act: *const u8,
    ld: usize,
    out: *mut i32,
    n: usize,
    mask: __mmask16,
) {
    let mut acc = [_mm512_setzero_si512(); O];
    for q in 0..kq {
        let a = _mm512_maskz_loadu_epi32(mask, act.add(q * ld * 4) as *const i32);
        for (o, acc) in acc.iter_mut().enumerate() {
            *acc = _mm512_dpbusd_epi32(*acc, a, _mm512_set1_epi32(*w.add(o * kq + q)));
        }
    }
    for (o, &v) in acc.iter().enumerate() {
        _mm512_mask_storeu_epi32(out.add(o * n), mask, v);
    }
}
