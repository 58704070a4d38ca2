//! A small f32 GEMM with caller-owned packing buffers: `C = beta·C + A·B` for general (row,
//! column) strides. The sparse kernels call it once per tile, so it must not allocate (warm
//! [`GemmScratch`]s never grow) and must not read `C` when `beta == 0` (outputs may be
//! uninitialised). Blocked BLIS-style: B is packed in `NR`-column panels per `KC` slice of the
//! depth, A in `MR`-row panels per `MC` rows, and an `MR × NR` register-tile micro-kernel runs
//! each pair. The micro-kernel is plain Rust compiled for AVX-512F or AVX2+FMA (chosen once at
//! run time) so LLVM keeps the tile in vector registers; other targets get a portable build.
//!
//! Checked against a naive triple loop by property tests (random shapes, strides, β).

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

/// `C = beta·C + A·B` with A `m × k`, B `k × n` and C `m × n`. `C` is not read when `beta == 0`.
///
/// # Safety
/// Every element the shapes and strides address must be valid: reads of A and B, reads (when
/// `beta != 0`) and writes of C; C must not overlap A or B.
pub unsafe fn sgemm(
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
    // SAFETY: forwarded; `scratch` is large enough for this problem.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma");
            if std::arch::is_x86_feature_detected!("avx512f") {
                return gemm_avx512(m, k, n, a, b, beta, c, scratch);
            }
            if avx2 {
                return gemm_avx2(m, k, n, a, b, beta, c, scratch);
            }
        }
        gemm_blocked::<4, 8>(|kc, a, b, d| micro_kernel::<4, 8>(kc, a, b, d), m, k, n, a, b, beta, c, scratch)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx512(
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
            gemm_blocked::<16, 16>(|kc, a, b, d| kernel_avx512::<16, 16>(kc, a, b, d), m, k, n, a, b, beta, c, s)
        } else {
            gemm_blocked::<8, 32>(|kc, a, b, d| kernel_avx512::<8, 32>(kc, a, b, d), m, k, n, a, b, beta, c, s)
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_avx2(
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
    unsafe { gemm_blocked::<6, 16>(|kc, a, b, d| kernel_avx2(kc, a, b, d), m, k, n, a, b, beta, c, s) }
}

/// The blocked product with an `MR × NR` micro-tile. Inlined into each ISA's wrapper so the
/// micro-kernel is compiled with that wrapper's target features.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_blocked<const MR: usize, const NR: usize>(
    kernel: impl Fn(usize, &[f32], &[f32], Dst),
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
            let apack = &mut s.a[aoff..aoff + m_panels * kc * MR];
            for (ip, panel) in apack.chunks_exact_mut(kc * MR).enumerate() {
                let i0 = ic + ip * MR;
                let mr = MR.min(m - i0);
                if a.1 == 1 {
                    // Column-major A: each packed column is a contiguous run.
                    for (p, col) in panel.chunks_exact_mut(MR).enumerate() {
                        // SAFETY: rows i0..i0 + mr < m of column pc + p < k of A.
                        let src = unsafe { a.0.add(i0 + (pc + p) * a.2) };
                        if mr == MR {
                            // A fixed-length copy (inlined vector moves, no memcpy call).
                            // SAFETY: as above, MR elements.
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
                    let mr = MR.min(m - i0);
                    let scale = if first { beta } else { 1.0 };
                    // SAFETY: the tile's rows and columns are inside C.
                    let ptr = unsafe { c.0.add(i0 * c.1 + j0 * c.2) };
                    kernel(kc, apanel, bpanel, Dst { ptr, rs: c.1, cs: c.2, mr, nr, scale });
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

/// Where a micro-kernel writes its tile: `C[i][j] = scale·C[i][j] + tile[i][j]` for `i < mr`,
/// `j < nr` (C not read when `scale == 0`).
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    rs: usize,
    cs: usize,
    mr: usize,
    nr: usize,
    scale: f32,
}

impl Dst {
    /// Writes a finished tile element by element (edges, strided C).
    ///
    /// # Safety
    /// The `mr × nr` tile at `ptr` must be inside C.
    #[inline(always)]
    unsafe fn write<const MR: usize, const NR: usize>(self, tile: &[[f32; NR]; MR]) {
        for (i, row) in tile.iter().enumerate().take(self.mr) {
            for (j, &v) in row.iter().enumerate().take(self.nr) {
                // SAFETY: inside the tile.
                let dst = unsafe { &mut *self.ptr.add(i * self.rs + j * self.cs) };
                *dst = if self.scale == 0.0 { v } else { self.scale * *dst + v };
            }
        }
    }
}

/// One `MR × NR` tile: `Σ_p a[p][i] · b[p][j]` over `kc` packed columns of A and rows of B
/// (portable version).
#[inline(always)]
unsafe fn micro_kernel<const MR: usize, const NR: usize>(kc: usize, a: &[f32], b: &[f32], dst: Dst) {
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

/// An `MR × NR` tile with AVX-512F (8 × 32 or 16 × 16): 16 zmm accumulators.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_avx512<const MR: usize, const NR: usize>(kc: usize, a: &[f32], b: &[f32], dst: Dst) {
    use std::arch::x86_64::*;
    // NR / 16 vectors per row, MR · NR / 16 ≤ 16 accumulators.
    let nv = NR / 16;
    assert!(NR % 16 == 0 && MR * nv <= 16 && a.len() >= kc * MR && b.len() >= kc * NR);
    let mut out = [[0f32; NR]; MR];
    // SAFETY: only called from `gemm_avx512` (AVX-512F present); reads within the asserted
    // lengths; writes the tile `dst` describes, inside C (the caller's guarantee).
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 16];
        let (mut ap, mut bp) = (a.as_ptr(), b.as_ptr());
        for _ in 0..kc {
            let bv = [_mm512_loadu_ps(bp), if nv > 1 { _mm512_loadu_ps(bp.add(16)) } else { _mm512_setzero_ps() }];
            for i in 0..MR {
                let ai = _mm512_set1_ps(*ap.add(i));
                for v in 0..nv {
                    acc[nv * i + v] = _mm512_fmadd_ps(ai, bv[v], acc[nv * i + v]);
                }
            }
            ap = ap.add(MR);
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

/// The 6 × 16 tile with AVX2 + FMA: 12 ymm accumulators.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn kernel_avx2(kc: usize, a: &[f32], b: &[f32], dst: Dst) {
    use std::arch::x86_64::*;
    assert!(a.len() >= kc * 6 && b.len() >= kc * 16);
    let mut out = [[0f32; 16]; 6];
    // SAFETY: only called from `gemm_avx2` (AVX2 and FMA present); reads within the asserted
    // lengths; writes the tile `dst` describes, inside C (the caller's guarantee).
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 12];
        let (mut ap, mut bp) = (a.as_ptr(), b.as_ptr());
        for _ in 0..kc {
            let b0 = _mm256_loadu_ps(bp);
            let b1 = _mm256_loadu_ps(bp.add(8));
            for i in 0..6 {
                let ai = _mm256_set1_ps(*ap.add(i));
                acc[2 * i] = _mm256_fmadd_ps(ai, b0, acc[2 * i]);
                acc[2 * i + 1] = _mm256_fmadd_ps(ai, b1, acc[2 * i + 1]);
            }
            ap = ap.add(6);
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(m: usize, k: usize, n: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut c = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
            }
        }
        c
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
        #[test]
        fn matches_the_triple_loop(
            m in 1usize..70, k in 0usize..300, n in 1usize..70,
            transpose_a in any::<bool>(), transpose_b in any::<bool>(), transpose_c in any::<bool>(),
            beta in prop_oneof![Just(0.0f32), Just(1.0), -2.0f32..2.0],
            seed in any::<u64>(),
        ) {
            let mut s = seed | 1;
            let mut next = || { s ^= s << 13; s ^= s >> 7; s ^= s << 17; ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0 };
            let a: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..k * n).map(|_| next()).collect();
            let c0: Vec<f32> = (0..m * n).map(|_| next()).collect();
            // Store each operand row- or column-major as asked; strides describe the layout.
            let store = |x: &[f32], r: usize, cols: usize, t: bool| -> (Vec<f32>, usize, usize) {
                if !t { return (x.to_vec(), cols, 1) }
                let mut y = vec![0f32; x.len()];
                for i in 0..r { for j in 0..cols { y[j * r + i] = x[i * cols + j]; } }
                (y, 1, r)
            };
            let (sa, ra, ca) = store(&a, m, k, transpose_a);
            let (sb, rb, cb) = store(&b, k, n, transpose_b);
            let (mut sc, rc, cc) = store(&c0, m, n, transpose_c);
            if beta == 0.0 { sc.iter_mut().for_each(|v| *v = f32::NAN); }
            let mut scratch = GemmScratch::default();
            unsafe {
                sgemm((m, k, n), (sa.as_ptr(), ra, ca), (sb.as_ptr(), rb, cb), beta, (sc.as_mut_ptr(), rc, cc), &mut scratch);
            }
            let want = naive(m, k, n, &a, &b);
            for i in 0..m {
                for j in 0..n {
                    let got = sc[i * rc + j * cc] as f64;
                    let exp = want[i * n + j] + if beta == 0.0 { 0.0 } else { beta as f64 * c0[i * n + j] as f64 };
                    prop_assert!((got - exp).abs() <= 1e-4 * (1.0 + k as f64).sqrt(), "({i},{j}) got {got} want {exp}");
                }
            }
            // A warm scratch does not grow for the same problem.
            let warm = scratch.allocated_bytes();
            unsafe {
                sgemm((m, k, n), (sa.as_ptr(), ra, ca), (sb.as_ptr(), rb, cb), 0.0, (sc.as_mut_ptr(), rc, cc), &mut scratch);
            }
            prop_assert_eq!(scratch.allocated_bytes(), warm);
        }
    }
}
