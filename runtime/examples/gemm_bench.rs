//! Times pagrt's GEMM against matrixmultiply on the sparse kernels' shapes (one thread).
//! `cargo run --release -p pag-runtime --example gemm_bench`
use std::time::Instant;

use pag_runtime::sparse::gemm::{sgemm, GemmScratch};

fn main() {
    for (m, k, n) in [(32, 288, 256), (16, 144, 256), (96, 32, 256), (4800, 32, 16), (256, 288, 32)] {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let mut s = GemmScratch::default();
        let reps = (2e8 / (m * k * n) as f64) as usize + 1;
        let mut best = [f64::MAX; 2];
        for _ in 0..5 {
            let t = Instant::now();
            for _ in 0..reps {
                unsafe {
                    sgemm((m, k, n), (a.as_ptr(), k, 1), (b.as_ptr(), n, 1), 0.0, (c.as_mut_ptr(), n, 1), &mut s)
                };
            }
            best[0] = best[0].min(t.elapsed().as_secs_f64() / reps as f64);
            let t = Instant::now();
            for _ in 0..reps {
                unsafe {
                    matrixmultiply::sgemm(
                        m,
                        k,
                        n,
                        1.0,
                        a.as_ptr(),
                        k as isize,
                        1,
                        b.as_ptr(),
                        n as isize,
                        1,
                        0.0,
                        c.as_mut_ptr(),
                        n as isize,
                        1,
                    )
                };
            }
            best[1] = best[1].min(t.elapsed().as_secs_f64() / reps as f64);
        }
        let gflops = |t: f64| 2.0 * (m * k * n) as f64 / t / 1e9;
        println!("{m}x{k}x{n}: pagrt {:.1} GFLOP/s, matrixmultiply {:.1} GFLOP/s", gflops(best[0]), gflops(best[1]));
    }
}
