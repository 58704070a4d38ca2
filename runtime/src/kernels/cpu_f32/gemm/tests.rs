//! Every supported GEMM micro-kernel against a triple loop.

use super::*;
use crate::kernels::cpu_f32::isa::CpuIsa;
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
      for isa in CpuIsa::supported() {
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
            sgemm_with(isa, (m, k, n), (sa.as_ptr(), ra, ca), (sb.as_ptr(), rb, cb), beta, (sc.as_mut_ptr(), rc, cc), &mut scratch);
        }
        let want = naive(m, k, n, &a, &b);
        for i in 0..m {
            for j in 0..n {
                let got = sc[i * rc + j * cc] as f64;
                let exp = want[i * n + j] + if beta == 0.0 { 0.0 } else { beta as f64 * c0[i * n + j] as f64 };
                prop_assert!((got - exp).abs() <= 1e-4 * (1.0 + k as f64).sqrt(), "{}: ({i},{j}) got {got} want {exp}", isa.name);
            }
        }
        // A warm scratch does not grow for the same problem.
        let warm = scratch.allocated_bytes();
        unsafe {
            sgemm_with(isa, (m, k, n), (sa.as_ptr(), ra, ca), (sb.as_ptr(), rb, cb), 0.0, (sc.as_mut_ptr(), rc, cc), &mut scratch);
        }
        prop_assert_eq!(scratch.allocated_bytes(), warm);
      }
    }
}

/// Products taller than a row block (`MC` = 128) and deeper than a depth block (`KC` = 256),
/// where a micro-tile height that does not divide `MC` (AVX2's 6) must stop at the block's end:
/// rows of the next block computed twice were added twice at the second depth block, which the
/// proptest above (m < 70) never reached.
#[test]
fn tiles_stop_at_the_row_block_end() {
    for isa in CpuIsa::supported() {
        for (m, k, n, beta) in [(129, 300, 20, 0.0f32), (134, 257, 17, 1.0), (200, 300, 33, 0.5), (257, 520, 8, 0.0)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7919) % 101) as f32 / 101.0 - 0.5).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 104_729) % 89) as f32 / 89.0 - 0.5).collect();
            let c0: Vec<f32> = (0..m * n).map(|i| ((i * 31) % 13) as f32 / 13.0).collect();
            let mut c = c0.clone();
            let mut scratch = GemmScratch::default();
            // SAFETY: row-major operands of exactly these shapes.
            unsafe {
                sgemm_with(
                    isa,
                    (m, k, n),
                    (a.as_ptr(), k, 1),
                    (b.as_ptr(), n, 1),
                    beta,
                    (c.as_mut_ptr(), n, 1),
                    &mut scratch,
                );
            }
            let want = naive(m, k, n, &a, &b);
            for (i, (&got, &w)) in c.iter().zip(&want).enumerate() {
                let exp = w + beta as f64 * c0[i] as f64;
                assert!((got as f64 - exp).abs() <= 1e-3, "{} {m}×{k}×{n}: element {i} got {got} want {exp}", isa.name);
            }
        }
    }
}
