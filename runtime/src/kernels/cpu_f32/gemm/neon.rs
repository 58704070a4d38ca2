//! The NEON micro-kernel (aarch64, where NEON is part of the baseline): an 8 × 12 register tile,
//! 24 four-lane accumulators fed by `fmla` (fused multiply-add, as the AVX2 and AVX-512 tiles;
//! the portable tile multiplies then adds, since Rust never fuses on its own).
//!
//! The shape follows the usual choice for Cortex-A7x cores (BLIS, tract-linalg): 24 of the 32
//! vector registers hold the tile, three hold a row of B, and one a broadcast element of A.
use std::arch::aarch64::*;

use super::{ASrc, Dst};

const MR: usize = 8;
const NR: usize = 12;

gemm_entry!(<8, 12, true> |kc, a, b, d| if a.ks == 1 { kernel::<true>(kc, a, b, d) } else { kernel::<false>(kc, a, b, d) });

/// One `MR × NR` tile over `kc` steps: A read in place (`DIRECT`: row `i` at `a.ptr + i·rs`,
/// consecutive elements along the depth) or from a packed panel (`MR` values per step).
#[inline(always)]
unsafe fn kernel<const DIRECT: bool>(kc: usize, a: ASrc, b: &[f32], dst: Dst) {
    assert!(b.len() >= kc * NR && (DIRECT || a.ks == MR));
    let (rs, ks) = if DIRECT { (a.rs, 1) } else { (1, MR) };
    // SAFETY: NEON is baseline on aarch64; reads stay within the asserted panel lengths (B) and
    // the caller's A block; writes stay inside the tile `dst` describes (the caller's guarantee).
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 3]; MR];
        let (mut ap, mut bp) = (a.ptr, b.as_ptr());
        for _ in 0..kc {
            let b0 = vld1q_f32(bp);
            let b1 = vld1q_f32(bp.add(4));
            let b2 = vld1q_f32(bp.add(8));
            for (i, row) in acc.iter_mut().enumerate() {
                let ai = vld1q_dup_f32(ap.add(i * rs));
                row[0] = vfmaq_f32(row[0], ai, b0);
                row[1] = vfmaq_f32(row[1], ai, b1);
                row[2] = vfmaq_f32(row[2], ai, b2);
            }
            ap = ap.add(ks);
            bp = bp.add(NR);
        }
        if dst.cs == 1 && dst.nr == NR {
            // Whole rows of contiguous C: vector read-modify-write.
            let scale = vdupq_n_f32(dst.scale);
            for (i, row) in acc.iter().enumerate().take(dst.mr) {
                let p = dst.ptr.add(i * dst.rs);
                for (h, &v) in row.iter().enumerate() {
                    let q = p.add(4 * h);
                    let v = if dst.scale == 0.0 { v } else { vfmaq_f32(v, scale, vld1q_f32(q)) };
                    vst1q_f32(q, v);
                }
            }
            return;
        }
        let mut out = [[0f32; NR]; MR];
        for (row, vals) in out.iter_mut().zip(&acc) {
            for (h, &v) in vals.iter().enumerate() {
                vst1q_f32(row.as_mut_ptr().add(4 * h), v);
            }
        }
        dst.write(&out);
    }
}
