//! The portable micro-kernel (any target): a 4 × 8 register tile in plain Rust.
use super::{ASrc, Dst};

gemm_entry!(<4, 8, false> |kc, a, b, d| micro_kernel::<4, 8>(kc, a, b, d));

/// One `MR × NR` tile: `Σ_p a[i][p] · b[p][j]` over `kc` columns of A (a packed panel) and
/// rows of a packed B panel (portable version).
#[inline(always)]
unsafe fn micro_kernel<const MR: usize, const NR: usize>(kc: usize, a: ASrc, b: &[f32], dst: Dst) {
    // SAFETY: a packed panel of kc · MR values (the portable build never reads A in place).
    let a = unsafe { std::slice::from_raw_parts(a.ptr, kc * MR) };
    let mut acc = [[0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] += ap[i] * bp[j];
            }
        }
    }
    // SAFETY: forwarded.
    unsafe { dst.write(&acc) }
}
