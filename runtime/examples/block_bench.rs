//! Times each gated block of a model on its own (f32 or int8, whichever the model stores), at a
//! few compute modes, on one thread, from a fixed pseudo-random input — for profiling a kernel
//! family (`perf record` this): `cargo run --release -p pag-runtime --example block_bench --
//! MODEL.onnx [BLOCK] [RHO...]` (`SMOOTH=1`: a smooth input, blob-like masks; `REPS=N`).
use std::time::Instant;

use pag_runtime::graph::extract_sparse_blocks;
use pag_runtime::kernels::AnyGatedScratch;
use pag_runtime::{decode_onnx, ComputeMode, ModelInfo};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args.first().ok_or_else(|| anyhow::anyhow!("usage: block_bench MODEL.onnx [BLOCK] [RHO...]"))?;
    let only = args.get(1).filter(|a| a.parse::<f32>().is_err());
    let rhos: Vec<f32> = args.iter().skip(1).filter_map(|a| a.parse().ok()).collect();
    let rhos = if rhos.is_empty() { vec![1.0, 0.5, 0.25] } else { rhos };
    let proto = decode_onnx(&std::fs::read(path)?, "model")?;
    let info = ModelInfo::from_proto(&proto)?;
    let plan = extract_sparse_blocks(&proto, &info);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    for b in plan.gated.into_iter().flatten() {
        if only.is_some_and(|o| *o != b.spec.name) {
            continue;
        }
        let (c, (h, w)) = (b.block.channels(), b.block.size());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        // i.i.d. values (scattered masks), or with SMOOTH=1 a smooth field plus a little noise
        // (blob-like masks, closer to a real scene's).
        let smooth = std::env::var("SMOOTH").is_ok();
        let input: Vec<f32> = (0..c * h * w)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let noise = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.3) * 3.0;
                if !smooth {
                    return noise;
                }
                let (ch, y, x) = (i / (h * w), (i / w) % h, i % w);
                let field = (y as f32 * 0.11 + ch as f32).sin() * (x as f32 * 0.07 + 2.0 * ch as f32).cos() * 2.0;
                field + 0.1 * noise
            })
            .collect();
        let mut scratch = AnyGatedScratch::default();
        let mut line = format!("{:<10} {} C={c} mid={} {h}×{w}", b.spec.name, b.block.precision(), b.block.mid());
        for &rho in &rhos {
            let mode = ComputeMode::budget(rho)?;
            let reps: usize = std::env::var("REPS").map_or(200, |r| r.parse().unwrap_or(200));
            let ms = pool.install(|| -> anyhow::Result<f64> {
                let mut x = input.clone();
                b.block.run_in_place(&mut x, mode, &mut scratch)?;
                let t = Instant::now();
                for _ in 0..reps {
                    x.copy_from_slice(&input);
                    b.block.run_in_place(&mut x, mode, &mut scratch)?;
                }
                Ok(t.elapsed().as_secs_f64() * 1e3 / reps as f64)
            })?;
            line += &format!("  ρ={rho}: {ms:.3} ms");
        }
        println!("{line}");
    }
    Ok(())
}
