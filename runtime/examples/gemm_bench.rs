//! Times pagrt's GEMM against matrixmultiply on the gated blocks' calls (same shapes and
//! strides), one thread. `cargo run --release -p pag-runtime --example gemm_bench`
use std::time::Instant;

use pag_runtime::kernels::cpu_f32::gemm::{sgemm, GemmScratch};

/// (name, m, k, n, A strides, B strides, C strides) with A m×k, B k×n, C m×n.
type Call = (&'static str, usize, usize, usize, (usize, usize), (usize, usize), (usize, usize));

fn main() {
    let (n1, n2) = (4800, 1200);
    let calls: [Call; 7] = [
        ("stage1 reduce dense", n1, 32, 16, (1, n1), (1, 32), (16, 1)),
        ("stage1 spatial tile", 256, 144, 16, (144, 1), (1, 144), (16, 1)),
        ("stage1 expand tile", 32, 16, 256, (16, 1), (1, 16), (n1, 1)),
        ("stage3 reduce dense", n2, 96, 32, (1, n2), (1, 96), (32, 1)),
        ("stage3 spatial tile", 256, 288, 32, (288, 1), (1, 288), (32, 1)),
        ("stage3 expand tile", 96, 32, 256, (32, 1), (1, 32), (n2, 1)),
        ("fuse 3x3 tile", 32, 288, 256, (288, 1), (256, 1), (n1, 1)),
    ];
    for (name, m, k, n, sa, sb, sc) in calls {
        let len = |r: usize, c: usize, s: (usize, usize)| (r - 1) * s.0 + (c - 1) * s.1 + 1;
        let a: Vec<f32> = (0..len(m, k, sa)).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..len(k, n, sb)).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; len(m, n, sc)];
        let mut s = GemmScratch::default();
        let reps = (1e8 / (m * k * n) as f64) as usize + 1;
        let mut best = [f64::MAX; 2];
        for _ in 0..7 {
            let t = Instant::now();
            for _ in 0..reps {
                unsafe {
                    sgemm(
                        (m, k, n),
                        (a.as_ptr(), sa.0, sa.1),
                        (b.as_ptr(), sb.0, sb.1),
                        0.0,
                        (c.as_mut_ptr(), sc.0, sc.1),
                        &mut s,
                    )
                };
            }
            best[0] = best[0].min(t.elapsed().as_secs_f64() / reps as f64);
            let t = Instant::now();
            for _ in 0..reps {
                unsafe {
                    let i = |x: usize| x as isize;
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        i(sa.0),
                        i(sa.1),
                        b.as_ptr(),
                        i(sb.0),
                        i(sb.1),
                        0.0,
                        c.as_mut_ptr(),
                        i(sc.0),
                        i(sc.1),
                    )
                };
            }
            best[1] = best[1].min(t.elapsed().as_secs_f64() / reps as f64);
        }
        println!("{name:<22} {m}x{k}x{n}: pagrt {:6.1} µs, matrixmultiply {:6.1} µs", best[0] * 1e6, best[1] * 1e6);
    }
}
