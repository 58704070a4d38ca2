//! AVX-512F micro-kernels: 8 × 32 tiles, and 16 × 16 for narrow C (n ≤ 16).
use super::{gemm_blocked, ASrc, Dst, GemmScratch, Operand};

#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: Operand<*const f32>,
    b: Operand<*const f32>,
    beta: f32,
    c: Operand<*mut f32>,
    s: &mut GemmScratch,
) {
    // SAFETY: forwarded.
    unsafe {
        if n <= 16 {
            gemm_blocked::<16, 16, false>(
                |kc, a, b, d| kernel_avx512::<16, 16, false>(kc, a, b, d),
                m,
                k,
                n,
                a,
                b,
                beta,
                c,
                s,
            )
        } else {
            gemm_blocked::<8, 32, true>(
                |kc, a, b, d| {
                    if a.ks == 1 {
                        kernel_avx512::<8, 32, true>(kc, a, b, d)
                    } else {
                        kernel_avx512::<8, 32, false>(kc, a, b, d)
                    }
                },
                m,
                k,
                n,
                a,
                b,
                beta,
                c,
                s,
            )
        }
    }
}

/// An `MR × NR` tile with AVX-512F (8 × 32 or 16 × 16): 16 zmm accumulators.
#[inline(always)]
unsafe fn kernel_avx512<const MR: usize, const NR: usize, const DIRECT: bool>(kc: usize, a: ASrc, b: &[f32], dst: Dst) {
    use std::arch::x86_64::*;
    // NR / 16 vectors per row, MR · NR / 16 ≤ 16 accumulators.
    let nv = NR / 16;
    assert!(NR % 16 == 0 && MR * nv <= 16 && b.len() >= kc * NR && (DIRECT || a.ks == MR));
    // In place (DIRECT): row i of the block starts at a.ptr + i·rs; packed: at a.ptr + i.
    let (rs, ks) = if DIRECT { (a.rs, 1) } else { (1, MR) };
    let mut out = [[0f32; NR]; MR];
    // SAFETY: only called from `gemm_avx512` (AVX-512F present); reads within the asserted
    // lengths; writes the tile `dst` describes, inside C (the caller's guarantee).
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 16];
        let (mut ap, mut bp) = (a.ptr, b.as_ptr());
        for _ in 0..kc {
            let bv = [_mm512_loadu_ps(bp), if nv > 1 { _mm512_loadu_ps(bp.add(16)) } else { _mm512_setzero_ps() }];
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ap.add(i * rs));
                for v in 0..nv {
                    acc[nv * i + v] = _mm512_fmadd_ps(ai, bv[v], acc[nv * i + v]);
                }
            }
            ap = ap.add(ks);
            bp = bp.add(NR);
        }
        if dst.cs == 1 {
            // Rows of contiguous C: vector read-modify-write, masked for the last columns.
            let scale = _mm512_set1_ps(dst.scale);
            for i in 0..dst.mr {
                let row = dst.ptr.add(i * dst.rs);
                for v in 0..nv {
                    let (p, x) = (row.add(16 * v), acc[nv * i + v]);
                    let lanes = dst.nr.saturating_sub(16 * v).min(16);
                    if lanes == 16 {
                        let x = if dst.scale == 0.0 { x } else { _mm512_fmadd_ps(scale, _mm512_loadu_ps(p), x) };
                        _mm512_storeu_ps(p, x);
                    } else if lanes > 0 {
                        let k = ((1u32 << lanes) - 1) as __mmask16;
                        let x =
                            if dst.scale == 0.0 { x } else { _mm512_fmadd_ps(scale, _mm512_maskz_loadu_ps(k, p), x) };
                        _mm512_mask_storeu_ps(p, k, x);
                    }
                }
            }
            return;
        }
        for (i, row) in out.iter_mut().enumerate() {
            for v in 0..nv {
                _mm512_storeu_ps(row.as_mut_ptr().add(16 * v), acc[nv * i + v]);
            }
        }
        dst.write(&out);
    }
}
