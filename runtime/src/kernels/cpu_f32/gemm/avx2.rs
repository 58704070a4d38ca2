//! The AVX2+FMA micro-kernel: a 6 × 16 register tile.
use super::{ASrc, Dst};

gemm_entry!(
    #[target_feature(enable = "avx2,fma")]
    <6, 16, true> |kc, a, b, d| if a.ks == 1 { kernel_avx2::<true>(kc, a, b, d) } else { kernel_avx2::<false>(kc, a, b, d) }
);

/// The blocked product with an `MR × NR` micro-tile. Inlined into each ISA's wrapper so the
/// micro-kernel is compiled with that wrapper's target features.
/// The 6 × 16 tile with AVX2 + FMA: 12 ymm accumulators.
#[inline(always)]
unsafe fn kernel_avx2<const DIRECT: bool>(kc: usize, a: ASrc, b: &[f32], dst: Dst) {
    use std::arch::x86_64::*;
    assert!(b.len() >= kc * 16 && (DIRECT || a.ks == 6));
    // In place (DIRECT): row i of the block starts at a.ptr + i·rs; packed: at a.ptr + i.
    let (rs, ks) = if DIRECT { (a.rs, 1) } else { (1, 6) };
    let mut out = [[0f32; 16]; 6];
    // SAFETY: only called from `gemm_avx2` (AVX2 and FMA present); reads within the asserted
    // lengths; writes the tile `dst` describes, inside C (the caller's guarantee).
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 12];
        let (mut ap, mut bp) = (a.ptr, b.as_ptr());
        for _ in 0..kc {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for i in 0..6 {
                let ai = _mm256_set1_ps(*ap.add(i * rs));
                acc[2 * i] = _mm256_fmadd_ps(ai, b0, acc[2 * i]);
                acc[2 * i + 1] = _mm256_fmadd_ps(ai, b1, acc[2 * i + 1]);
            }
            ap = ap.add(ks);
            bp = bp.add(16);
        }
        if dst.cs == 1 {
            // Rows of contiguous C: masked vector read-modify-write of the first nr columns.
            let scale = _mm256_set1_ps(dst.scale);
            let lanes = |from: usize| {
                let n = dst.nr.saturating_sub(from).min(8) as i32;
                _mm256_setr_epi32(
                    -((0 < n) as i32),
                    -((1 < n) as i32),
                    -((2 < n) as i32),
                    -((3 < n) as i32),
                    -((4 < n) as i32),
                    -((5 < n) as i32),
                    -((6 < n) as i32),
                    -((7 < n) as i32),
                )
            };
            let masks = [lanes(0), lanes(8)];
            for i in 0..dst.mr {
                let row = dst.ptr.add(i * dst.rs);
                for (h, v) in [acc[2 * i], acc[2 * i + 1]].into_iter().enumerate() {
                    if dst.nr <= 8 * h {
                        continue;
                    }
                    let p = row.add(8 * h);
                    if dst.nr >= 8 * (h + 1) {
                        // A whole vector: plain loads and stores (masked ones are slow on AMD).
                        let v = if dst.scale == 0.0 { v } else { _mm256_fmadd_ps(scale, _mm256_loadu_ps(p), v) };
                        _mm256_storeu_ps(p, v);
                        continue;
                    }
                    let k = masks[h];
                    let v = if dst.scale == 0.0 { v } else { _mm256_fmadd_ps(scale, _mm256_maskload_ps(p, k), v) };
                    _mm256_maskstore_ps(p, k, v);
                }
            }
            return;
        }
        for (i, row) in out.iter_mut().enumerate() {
            _mm256_storeu_ps(row.as_mut_ptr(), acc[2 * i]);
            _mm256_storeu_ps(row.as_mut_ptr().add(8), acc[2 * i + 1]);
        }
        dst.write(&out);
    }
}
