//! Times the shipped model's dense stride-2 convs (the stem and `down2` shapes) on one thread,
//! the direct stride-2 kernel (`strided.rs`) against im2col + GEMM, side by side, on every ISA
//! build this CPU runs (the data behind `CpuIsa::strided_max_depth`): `cargo run --release -p pag-runtime --example conv_bench [REPS]`.
use std::time::Instant;

use pag_runtime::kernels::cpu_f32::{ConvScratch, CpuIsa, PerforatedConv};

fn main() -> anyhow::Result<()> {
    let reps: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(200);
    // (name, in channels, out channels, kernel, padding, input size)
    let shapes = [
        ("stem.0 3→16 3×3/2", 3, 16, 3, 1, (240, 320)),
        ("stem.1 16→48 2×2/2", 16, 48, 2, 0, (120, 160)),
        ("down2 48→96 2×2/2", 48, 96, 2, 0, (60, 80)),
    ];
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    for (name, cin, cout, k, pad, (h, w)) in shapes {
        let weights: Vec<f32> = (0..cout * cin * k * k).map(|i| ((i * 7919) % 97) as f32 / 97.0 - 0.5).collect();
        let bias = vec![0.1f32; cout];
        let input: Vec<f32> = (0..cin * h * w).map(|i| ((i * 104_729) % 89) as f32 / 89.0).collect();
        let conv = PerforatedConv::new(&weights, [cout, cin, k, k], Some(&bias), 2, 1, [pad; 4], (h, w))?;
        let macs = (cout * cin * k * k * conv.geometry().out_height() * conv.geometry().out_width()) as f64;
        for isa in CpuIsa::supported() {
            let mut line = format!("{name:<20} {:<9}", isa.name);
            for (what, conv) in [
                ("direct", conv.clone().with_isa(isa).with_direct(true)),
                ("im2col+gemm", conv.clone().with_isa(isa).with_direct(false)),
            ] {
                let mut out = vec![0f32; conv.output_len()];
                let mut scratch = ConvScratch::default();
                let ms = pool.install(|| -> anyhow::Result<f64> {
                    conv.run_dense(&input, &mut out, &mut scratch)?;
                    let t = Instant::now();
                    for _ in 0..reps {
                        conv.run_dense(&input, &mut out, &mut scratch)?;
                    }
                    Ok(t.elapsed().as_secs_f64() * 1e3 / reps as f64)
                })?;
                line += &format!("  {what} {ms:.3} ms ({:.0} GMAC/s)", macs / ms / 1e6);
            }
            println!("{line}");
        }
    }
    Ok(())
}
