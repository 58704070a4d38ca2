//! A small f32 GEMM with caller-owned packing buffers: `C = beta·C + A·B` for general (row,
//! column) strides. The sparse kernels call it once per tile, so it must not allocate (warm
//! [`GemmScratch`]s never grow) and must not read `C` when `beta == 0` (outputs may be
//! uninitialised). Blocked BLIS-style: B is packed in `NR`-column panels per `KC` slice of the
//! depth, A in `MR`-row panels per `MC` rows, and an `MR × NR` register-tile micro-kernel runs
//! each pair. The micro-kernels (one file per ISA: [`generic`], `avx2`, `avx512`, `neon`) are plain
//! functions in the ISA table ([`super::isa`]) chosen once at start-up.
//!
//! Every micro-kernel the CPU supports is checked against a naive triple loop by property tests
//! (random shapes, strides, β), not only the one the dispatcher picks.

/// Defines an ISA's `gemm` entry point (the [`GemmFn`] signature): [`gemm_blocked`] on an
/// `MR × NR` tile whose micro-kernel `tile(kc, a, b, dst)` is given (reading A in place when
/// `DIRECT` and A is row-major), compiled with the attributes given (`#[target_feature(…)]`).
macro_rules! gemm_entry {
    ($(#[$attr:meta])* <$mr:literal, $nr:literal, $direct:literal> $tile:expr) => {
        /// The blocked GEMM on this file's tile.
        ///
        /// # Safety
        /// As [`super::sgemm`], and the CPU has this build's features.
        $(#[$attr])*
        #[allow(clippy::too_many_arguments)]
        pub(crate) unsafe fn gemm(
            m: usize,
            k: usize,
            n: usize,
            a: super::Operand<*const f32>,
            b: super::Operand<*const f32>,
            beta: f32,
            c: super::Operand<*mut f32>,
            s: &mut super::GemmScratch,
        ) {
            // SAFETY: forwarded.
            unsafe { super::gemm_blocked::<$mr, $nr, $direct>($tile, m, k, n, a, b, beta, c, s) }
        }
    };
}

#[cfg(target_arch = "x86_64")]
pub(super) mod avx2;
#[cfg(target_arch = "x86_64")]
pub(super) mod avx512;
pub(super) mod generic;
#[cfg(target_arch = "aarch64")]
pub(super) mod neon;

/// Depth per packed slice.
const KC: usize = 256;
/// Rows of A per packed block.
const MC: usize = 128;

/// A matrix operand: pointer, row stride and column stride, in elements.
pub type Operand<T> = (T, usize, usize);

/// Packing buffers of [`sgemm`]; grows to the largest problem it has served, never shrinks.
#[derive(Debug, Default, Clone)]
pub struct GemmScratch {
    a: Vec<f32>,
    b: Vec<f32>,
}

impl GemmScratch {
    /// Bytes currently reserved.
    pub fn allocated_bytes(&self) -> usize {
        (self.a.capacity() + self.b.capacity()) * std::mem::size_of::<f32>()
    }

    /// Grows the buffers to what an `m × k × n` product needs (any orientation), so that
    /// [`sgemm`] of that size or smaller does not allocate.
    pub fn reserve(&mut self, m: usize, k: usize, n: usize) {
        let big = m.max(n);
        let kc = k.min(KC);
        // Upper bounds over both orientations and every ISA's tile (MR ≤ 16, NR ≤ 32).
        let a = kc * (MC.min(big).div_ceil(16) * 16 + 16) + 16;
        let b = kc * (big.div_ceil(32) * 32 + 32) + 16;
        if self.a.len() < a {
            self.a.resize(a, 0.0);
        }
        if self.b.len() < b {
            self.b.resize(b, 0.0);
        }
    }
}

/// `C = beta·C + A·B` with A `m × k`, B `k × n` and C `m × n`, on the CPU's best micro-kernel
/// ([`super::isa::best`]). `C` is not read when `beta == 0`.
///
/// # Safety
/// Every element the shapes and strides address must be valid: reads of A and B, reads (when
/// `beta != 0`) and writes of C; C must not overlap A or B.
pub unsafe fn sgemm(
    shape: (usize, usize, usize),
    a: Operand<*const f32>,
    b: Operand<*const f32>,
    beta: f32,
    c: Operand<*mut f32>,
    scratch: &mut GemmScratch,
) {
    // SAFETY: forwarded.
    unsafe { sgemm_with(super::isa::best(), shape, a, b, beta, c, scratch) }
}

/// [`sgemm`] on the micro-kernel of `isa` (which the CPU must support: see
/// [`super::isa::CpuIsa::supported`]).
///
/// # Safety
/// As [`sgemm`], and `isa` must be supported by this CPU.
pub unsafe fn sgemm_with(
    isa: &super::isa::CpuIsa,
    (m, k, n): (usize, usize, usize),
    a: Operand<*const f32>,
    b: Operand<*const f32>,
    beta: f32,
    c: Operand<*mut f32>,
    scratch: &mut GemmScratch,
) {
    if m == 0 || n == 0 {
        return;
    }
    // Cᵀ = Bᵀ·Aᵀ when that makes C's rows contiguous (the micro-kernels then write whole
    // vectors).
    let (m, n, a, b, c) =
        if c.2 != 1 && c.1 == 1 { (n, m, (b.0, b.2, b.1), (a.0, a.2, a.1), (c.0, c.2, c.1)) } else { (m, n, a, b, c) };
    scratch.reserve(m, k, n);
    // SAFETY: forwarded; `scratch` is large enough for this problem; the caller guarantees the ISA.
    unsafe { (isa.gemm)(m, k, n, a, b, beta, c, scratch) }
}

/// The blocked GEMM on the ISA-specific entry points' signature (after orientation).
pub(crate) type GemmFn =
    unsafe fn(usize, usize, usize, Operand<*const f32>, Operand<*const f32>, f32, Operand<*mut f32>, &mut GemmScratch);

#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm_blocked<const MR: usize, const NR: usize, const DIRECT: bool>(
    kernel: impl Fn(usize, ASrc, &[f32], Dst),
    m: usize,
    k: usize,
    n: usize,
    a: Operand<*const f32>,
    b: Operand<*const f32>,
    beta: f32,
    c: Operand<*mut f32>,
    s: &mut GemmScratch,
) {
    if k == 0 {
        // No depth: C = beta·C.
        for i in 0..m {
            for j in 0..n {
                // SAFETY: inside C.
                let dst = unsafe { &mut *c.0.add(i * c.1 + j * c.2) };
                *dst = if beta == 0.0 { 0.0 } else { beta * *dst };
            }
        }
        return;
    }
    let n_panels = n.div_ceil(NR);
    // Panels start on a 64-byte boundary so the micro-kernels' vector loads of B never split
    // across cache lines (the buffers carry 16 spare floats for this).
    let (boff, aoff) = (s.b.as_ptr().align_offset(64).min(16), s.a.as_ptr().align_offset(64).min(16));
    let mut pc = 0;
    loop {
        let kc = KC.min(k - pc);
        // Pack B[pc.., ..] into NR-wide panels, zero-padded: panel j holds kc rows of NR values.
        let bpack = &mut s.b[boff..boff + n_panels * kc * NR];
        for (jp, panel) in bpack.chunks_exact_mut(kc * NR).enumerate() {
            let j0 = jp * NR;
            let nr = NR.min(n - j0);
            for (p, row) in panel.chunks_exact_mut(NR).enumerate() {
                // SAFETY: rows pc + p < k and columns j0 + j < n of B.
                let src = unsafe { b.0.add((pc + p) * b.1 + j0 * b.2) };
                if b.2 == 1 && nr == NR {
                    // SAFETY: NR contiguous elements of one row of B.
                    row.copy_from_slice(unsafe { &*(src as *const [f32; NR]) });
                } else if b.2 == 1 {
                    // SAFETY: nr contiguous elements of one row of B.
                    row[..nr].copy_from_slice(unsafe { std::slice::from_raw_parts(src, nr) });
                } else {
                    for (j, v) in row[..nr].iter_mut().enumerate() {
                        // SAFETY: as above.
                        *v = unsafe { *src.add(j * b.2) };
                    }
                }
                row[nr..].fill(0.0);
            }
        }
        let first = pc == 0;
        let mut ic = 0;
        while ic < m {
            let mc = MC.min(m - ic);
            let m_panels = mc.div_ceil(MR);
            // Pack A[ic.., pc..] into MR-tall panels: panel i holds kc columns of MR values.
            // With DIRECT kernels and row-major A, full panels are read in place (packing them
            // is a transposition that cost as much as the FMAs on narrow products); only a
            // partial last panel is packed (zero rows past m).
            let direct = DIRECT && a.2 == 1;
            let apack = &mut s.a[aoff..aoff + m_panels * kc * MR];
            for (ip, panel) in apack.chunks_exact_mut(kc * MR).enumerate() {
                let i0 = ic + ip * MR;
                // The block's last tile stops at the block's end (MC need not be a multiple
                // of MR: AVX2's 6), not at m: rows past it belong to the next block.
                let mr = MR.min(ic + mc - i0);
                if direct && mr == MR {
                    continue;
                }
                if a.1 == 1 {
                    for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                        // SAFETY: rows i0.. i0 + mr ≤ ic + mc ≤ m and column pc + p < k of A.
                        let src = unsafe { a.0.add(i0 + (pc + p) * a.2) };
                        if mr == MR {
                            // SAFETY: MR contiguous elements of one column of A.
                            col.copy_from_slice(unsafe { &*(src as *const [f32; MR]) });
                        } else {
                            // SAFETY: as above.
                            col[..mr].copy_from_slice(unsafe { std::slice::from_raw_parts(src, mr) });
                            col[mr..].fill(0.0);
                        }
                    }
                } else {
                    for i in 0..MR {
                        if i < mr {
                            // SAFETY: row i0 + i < m, columns pc.. pc + kc ≤ k of A.
                            let row = unsafe { a.0.add((i0 + i) * a.1 + pc * a.2) };
                            for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                                // SAFETY: as above.
                                col[i] = unsafe { *row.add(p * a.2) };
                            }
                        } else {
                            panel.chunks_exact_mut(MR).for_each(|col| col[i] = 0.0);
                        }
                    }
                }
            }
            for (jp, bpanel) in s.b[boff..boff + n_panels * kc * NR].chunks_exact(kc * NR).enumerate() {
                let j0 = jp * NR;
                let nr = NR.min(n - j0);
                for (ip, apanel) in s.a[aoff..aoff + m_panels * kc * MR].chunks_exact(kc * MR).enumerate() {
                    let i0 = ic + ip * MR;
                    let mr = MR.min(ic + mc - i0);
                    let scale = if first { beta } else { 1.0 };
                    // SAFETY: the tile's rows and columns are inside C.
                    let ptr = unsafe { c.0.add(i0 * c.1 + j0 * c.2) };
                    let src = if direct && mr == MR {
                        // SAFETY: rows i0.. i0 + MR ≤ m, columns pc.. of A.
                        ASrc { ptr: unsafe { a.0.add(i0 * a.1 + pc) }, rs: a.1, ks: 1 }
                    } else {
                        ASrc { ptr: apanel.as_ptr(), rs: 1, ks: MR }
                    };
                    kernel(kc, src, bpanel, Dst { ptr, rs: c.1, cs: c.2, mr, nr, scale });
                }
            }
            ic += mc;
        }
        pc += kc;
        if pc >= k {
            break;
        }
    }
}

/// Where a micro-kernel reads A: element `(i, p)` of its `MR × kc` block is `ptr[i·rs + p·ks]`
/// (a packed panel: `rs = 1`, `ks = MR`; row-major A read in place: `rs` = A's row stride,
/// `ks = 1`).
#[derive(Clone, Copy)]
pub(super) struct ASrc {
    pub(super) ptr: *const f32,
    pub(super) rs: usize,
    pub(super) ks: usize,
}

/// Where a micro-kernel writes its tile: `C[i][j] = scale·C[i][j] + tile[i][j]` for `i < mr`,
/// `j < nr` (C not read when `scale == 0`).
#[derive(Clone, Copy)]
pub(super) struct Dst {
    pub(super) ptr: *mut f32,
    pub(super) rs: usize,
    pub(super) cs: usize,
    pub(super) mr: usize,
    pub(super) nr: usize,
    pub(super) scale: f32,
}

impl Dst {
    /// Writes a finished tile element by element (edges, strided C).
    ///
    /// # Safety
    /// The `mr × nr` tile at `ptr` must be inside C.
    #[inline(always)]
    pub(super) unsafe fn write<const MR: usize, const NR: usize>(self, tile: &[[f32; NR]; MR]) {
        for (i, row) in tile.iter().enumerate().take(self.mr) {
            for (j, &v) in row.iter().enumerate().take(self.nr) {
                // SAFETY: inside the tile.
                let dst = unsafe { &mut *self.ptr.add(i * self.rs + j * self.cs) };
                *dst = if self.scale == 0.0 { v } else { self.scale * *dst + v };
            }
        }
    }
}

#[cfg(test)]
mod tests;
