//! Dense vs perforated 3×3 conv on one thread: median time of each, interleaved in one run, at
//! several densities, and the speedup against the ideal 1/density.
//!
//! `cargo run --release -p pag-runtime --example perforated_ratios [-- RUNS]` (default 41 runs;
//! `PERFORATED_TILE=N` overrides the kernel's tile size; `PERFORATED_PROFILE=0.5` only runs the
//! random-mask conv at that density, RUNS times, for a profiler).
//! Masks are `ActiveSet::budget` of fixed-seed scores: "random" = i.i.d. scores (scattered
//! pixels, the worst case for the gather), "blobs" = a smooth score field (spatially coherent
//! masks, as real gates make).
//! A last table times a whole `GatedBlock` (64 channels, mid 24, 3×3) in Dense vs Budget(ρ)
//! mode, its masks from its own gate: on random input (scattered) or on a smooth field (blobs).
use std::time::Instant;

use pag_runtime::kernels::cpu_f32::{ConvScratch, GatedBlock, GatedBlockScratch, GatedBlockWeights, PerforatedConv};
use pag_runtime::pag::ActiveSet;
use pag_runtime::ComputeMode;

const DENSITIES: [f32; 6] = [1.0, 0.9, 0.7, 0.5, 0.25, 0.1];

struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.next_f32() * scale).collect()
    }
}

fn median_ms(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2] * 1e3
}

fn blob_scores(h: usize, w: usize, rng: &mut Rng) -> Vec<f32> {
    let (a, b, c) = (rng.next_f32() * 3.0, rng.next_f32() * 3.0, rng.next_f32() * 3.0);
    (0..h * w)
        .map(|p| {
            let (y, x) = ((p / w) as f32 / h as f32, (p % w) as f32 / w as f32);
            (6.0 * x + a).sin() + (5.0 * y + b).cos() + (4.0 * (x + y) + c).sin() + 0.05 * rng.next_f32()
        })
        .collect()
}

fn measure(channels: usize, h: usize, w: usize, runs: usize) -> pag_runtime::Result<()> {
    let mut rng = Rng(42);
    let weights = rng.vec(channels * channels * 9, 1.0 / (channels as f32 * 9.0).sqrt());
    let bias = rng.vec(channels, 0.1);
    let mut conv = PerforatedConv::new(&weights, [channels, channels, 3, 3], Some(&bias), 1, 1, [1; 4], (h, w))?;
    if let Some(tile) = std::env::var("PERFORATED_TILE").ok().and_then(|t| t.parse().ok()) {
        conv = conv.with_tile(tile);
    }
    let input = rng.vec(channels * h * w, 1.0);
    let random = rng.vec(h * w, 1.0);
    let blobs = blob_scores(h, w, &mut rng);
    let mut sets = Vec::new();
    for (kind, scores) in [("random", &random), ("blobs", &blobs)] {
        for &rho in &DENSITIES {
            sets.push((kind, rho, ActiveSet::budget(scores, h, w, rho)?));
        }
    }

    let mut scratch = ConvScratch::default();
    let mut dense_out = vec![0.0f32; conv.output_len()];
    let mut out = vec![0.0f32; conv.output_len()];
    conv.run_dense(&input, &mut dense_out, &mut scratch)?;
    for (_, _, set) in &sets {
        out.copy_from_slice(&input[..conv.output_len()]);
        conv.run(&input, set, &mut out, &mut scratch)?;
        let plane = h * w;
        let worst = (0..channels)
            .flat_map(|c| set.indices().iter().map(move |&p| c * plane + p as usize))
            .map(|i| (out[i] - dense_out[i]).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "perforated differs from dense by {worst}");
    }

    if let Some(rho) = std::env::var("PERFORATED_PROFILE").ok().and_then(|r| r.parse::<f32>().ok()) {
        // For `perf record`: the random-mask conv at this density only, over and over.
        let (_, _, set) = sets.iter().find(|(kind, r, _)| *kind == "random" && *r == rho).expect("a listed density");
        for _ in 0..runs {
            conv.run(&input, set, &mut out, &mut scratch)?;
        }
        return Ok(());
    }
    let mut dense_samples = Vec::with_capacity(runs);
    let mut samples = vec![Vec::with_capacity(runs); sets.len()];
    for _ in 0..runs {
        let t = Instant::now();
        conv.run_dense(&input, &mut dense_out, &mut scratch)?;
        dense_samples.push(t.elapsed().as_secs_f64());
        for ((_, _, set), s) in sets.iter().zip(&mut samples) {
            let t = Instant::now();
            conv.run(&input, set, &mut out, &mut scratch)?;
            s.push(t.elapsed().as_secs_f64());
        }
    }
    let dense_ms = median_ms(&mut dense_samples);
    let gflops = 2.0 * (channels * channels * 9 * h * w) as f64 / (dense_ms * 1e6);
    println!(
        "\n3×3 conv {channels}→{channels} at {h}×{w}, stride 1, dilation 1, tile {} px; dense {dense_ms:.3} ms \
         ({gflops:.1} GFLOP/s); median of {runs} interleaved runs, 1 thread",
        conv.tile()
    );
    println!(
        "{:<7} {:>7} {:>9} {:>13} {:>8} {:>7} {:>10}",
        "mask", "density", "dense ms", "perforated ms", "speedup", "ideal", "efficiency"
    );
    for ((kind, rho, set), s) in sets.iter().zip(&mut samples) {
        let ms = median_ms(s);
        let (speedup, ideal) = (dense_ms / ms, 1.0 / set.density() as f64);
        println!(
            "{kind:<7} {rho:>7.2} {dense_ms:>9.3} {ms:>13.3} {speedup:>7.2}× {ideal:>6.2}× {:>10.2}",
            speedup / ideal
        );
    }
    Ok(())
}

/// `GatedBlock::run_in_place` (64 → 24 → 3×3 → 64 at 60×80) in Dense vs Budget modes; the input
/// is restored from a pristine copy before each run, outside the timed region. "random": a
/// random gate conv on random input (scattered masks); "blobs": the gate reads channel 0, a
/// smooth field (coherent masks).
fn measure_block(runs: usize) -> pag_runtime::Result<()> {
    let (c, mid, h, w) = (64, 24, 60, 80);
    let mut rng = Rng(7);
    let convs = [
        rng.vec(mid * c, 1.0 / (c as f32).sqrt()),
        rng.vec(mid, 0.1),
        rng.vec(mid * mid * 9, 1.0 / (mid as f32 * 9.0).sqrt()),
        rng.vec(mid, 0.1),
        rng.vec(c * mid, 1.0 / (mid as f32).sqrt()),
        rng.vec(c, 0.1),
    ];
    let [rw, rb, sw, sb, ew, eb] = &convs;
    println!("\nGatedBlock {c}→{mid}→3×3→{c} at {h}×{w}, dilation 1; median of {runs} interleaved runs, 1 thread");
    println!(
        "{:<7} {:<12} {:>7} {:>9} {:>9} {:>8} {:>7} {:>10}",
        "mask", "mode", "active", "footprint", "ms", "speedup", "ideal", "efficiency"
    );
    for kind in ["random", "blobs"] {
        let mut pristine = rng.vec(c * h * w, 1.0);
        let gate = if kind == "random" {
            rng.vec(c, 1.0 / (c as f32).sqrt())
        } else {
            pristine[..h * w].copy_from_slice(&blob_scores(h, w, &mut rng));
            (0..c).map(|i| if i == 0 { 1.0 } else { 0.0 }).collect()
        };
        let weights = GatedBlockWeights {
            channels: c,
            mid,
            kernel: 3,
            dilation: 1,
            gate_weights: &gate,
            gate_bias: &[0.0],
            reduce_weights: rw,
            reduce_bias: rb,
            spatial_weights: sw,
            spatial_bias: sb,
            expand_weights: ew,
            expand_bias: eb,
        };
        let block = GatedBlock::new(&weights, (h, w))?;
        let mut x = pristine.clone();
        let mut scratch = GatedBlockScratch::default();
        let modes = [ComputeMode::Dense, ComputeMode::budget(0.5).unwrap(), ComputeMode::budget(0.25).unwrap()];
        let mut stats = Vec::new();
        for &mode in &modes {
            x.copy_from_slice(&pristine);
            stats.push(block.run_in_place(&mut x, mode, &mut scratch)?);
        }
        let mut samples = vec![Vec::with_capacity(runs); modes.len()];
        for _ in 0..runs {
            for (&mode, s) in modes.iter().zip(&mut samples) {
                x.copy_from_slice(&pristine);
                let t = Instant::now();
                block.run_in_place(&mut x, mode, &mut scratch)?;
                s.push(t.elapsed().as_secs_f64());
            }
        }
        let medians: Vec<f64> = samples.iter_mut().map(|s| median_ms(s)).collect();
        for ((mode, st), &ms) in modes.iter().zip(&stats).zip(&medians) {
            let (speedup, ideal) = (medians[0] / ms, st.dense_macs as f64 / st.executed_macs as f64);
            let (active, footprint) = (st.active as f64 / st.pixels as f64, st.footprint as f64 / st.pixels as f64);
            println!(
                "{kind:<7} {:<12} {active:>7.3} {footprint:>9.3} {ms:>9.3} {speedup:>7.2}× {ideal:>6.2}× {:>10.2}",
                mode.to_string(),
                speedup / ideal
            );
        }
    }
    Ok(())
}

fn main() -> pag_runtime::Result<()> {
    let runs = std::env::args().nth(1).map_or(41, |a| a.parse().expect("RUNS must be a number"));
    measure(64, 60, 80, runs)?;
    measure(96, 30, 40, runs)?;
    measure_block(runs)?;
    Ok(())
}
