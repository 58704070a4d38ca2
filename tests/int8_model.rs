//! The shipped int8 (QDQ) model on pagrt's int8 kernels: every gated block and every ungated
//! quantized conv runs int8, and the result matches the QDQ graph as tract evaluates it
//! (`Execution::Dense`: f32 convs with Q/DQ round trips, the masked reference) — on rendered
//! robot-mount scenes, in every compute mode, on 1 and 2 threads.
mod common;

use std::sync::Arc;

use ndarray::Array3;
use pag_models::{CameraMount, Intrinsics, Scene};
use pag_runtime::{ComputeMode, Execution, Outputs, PagModel, Session};

fn scene(model: &PagModel, seed: u64) -> Array3<u8> {
    let (h, w) = (model.info.input.height as u32, model.info.input.width as u32);
    let m = model.info.camera_mount.as_ref().expect("the shipped model declares its mount");
    let mount = CameraMount {
        height_m: m.height_m,
        height_play_m: m.height_play_m,
        pitch_deg: m.pitch_deg,
        pitch_play_deg: m.pitch_play_deg,
        roll_play_deg: m.roll_play_deg,
    };
    let s = Scene::random(seed);
    s.render(&Intrinsics::with_hfov(w, h, model.info.camera_hfov_deg.unwrap_or(70.0)), &s.mount_pose(seed, &mount)).rgb
}

/// (label agreement, mean |Δ depth| in metres over pixels valid in both, max |Δ normal|).
fn compare(a: &Outputs, b: &Outputs) -> (f64, f64, f32) {
    let agree = a.labels.iter().zip(&b.labels).filter(|(x, y)| x == y).count() as f64 / a.labels.len() as f64;
    let (mut sum, mut count) = (0f64, 0usize);
    for (x, y) in a.depth.iter().zip(&b.depth) {
        if x.is_finite() && y.is_finite() {
            sum += (x - y).abs() as f64;
            count += 1;
        }
    }
    let normals = a.normals.iter().zip(&b.normals).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    (agree, sum / count.max(1) as f64, normals)
}

#[test]
fn every_block_and_quantized_conv_runs_int8() {
    let model = PagModel::load_with(common::int8_model(), Execution::Sparse).unwrap();
    // Nothing runs densely; on a CPU without dot-product int8 instructions the loader says the
    // float model would be faster there, and that is the only note.
    let notes: Vec<&String> = model.dense_fallbacks.iter().filter(|n| !n.starts_with("int8 blocks run on")).collect();
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(model.sparse_op_counts(), (9, 0));
    // stem.0, stem.1, down2 and the lateral 1×1 (the head stays float by the calibration's
    // default), each with its Q/DQ pairs fused: no QuantizeLinear is left for tract to run.
    assert_eq!(model.op_count("PagQConv"), 4);
    // The float head (1×1) runs on pagrt's f32 conv.
    assert_eq!(model.op_count("PagConv"), 1);
    assert_eq!(model.precision(), "int8 (9 of 9 gated blocks, 4 convs)");
    let plan = pag_runtime::graph::extract_sparse_blocks(
        &pag_runtime::decode_onnx(&std::fs::read(common::int8_model()).unwrap(), "int8 model").unwrap(),
        &model.info,
    );
    for b in plan.gated {
        let b = b.unwrap();
        assert_eq!(b.block.precision(), "int8", "block {}", b.spec.name);
    }
    // The float model's blocks stay f32.
    let float = PagModel::load_with(common::shipped_model(), Execution::Sparse).unwrap();
    assert_eq!(float.op_count("PagQConv"), 0);
    assert_eq!(float.precision(), "f32");
}

#[test]
fn int8_execution_matches_the_qdq_graph_in_every_mode_on_1_and_2_threads() {
    let sparse = Arc::new(PagModel::load_with(common::int8_model(), Execution::Sparse).unwrap());
    let dense = Arc::new(PagModel::load_with(common::int8_model(), Execution::Dense).unwrap());
    let mut reference = Session::with_threads(dense, 1).unwrap();
    for threads in [1, 2] {
        let mut session = Session::with_threads(sparse.clone(), threads).unwrap();
        for seed in [3u64, 7, 11, 19] {
            let rgb = scene(&sparse, seed);
            for mode in [ComputeMode::Dense, ComputeMode::budget(0.5).unwrap(), ComputeMode::Native] {
                session.set_mode(mode);
                reference.set_mode(mode);
                let (got, want) = (session.run(rgb.view()).unwrap(), reference.run(rgb.view()).unwrap());
                let (agree, depth, normals) = compare(&got, &want);
                println!(
                    "{threads} thread(s), scene {seed}, {mode}: labels agree {:.3} %, mean |Δdepth| {:.2} mm, max |Δnormal| {normals:.3}",
                    100.0 * agree,
                    1000.0 * depth
                );
                // Block by block, pagrt's integer arithmetic and tract's f32 evaluation of the
                // QDQ graph differ only where a requantization sits on a rounding boundary (≤ 20
                // values of a block, one quantization step each: tests/sparse_extract.rs). A
                // quantized network passes such a step on, and a budget can flip the masks it
                // touches. Measured on 4 scenes × 3 modes: labels agree ≥ 99.78 %, mean |Δdepth|
                // ≤ 15.3 mm (often 0; tract's own QDQ-vs-float difference is ~55 mm).
                let (min_agree, max_depth) = (0.995, 0.025);
                assert!(agree >= min_agree, "{threads} threads, scene {seed}, {mode}: labels agree on {agree}");
                assert!(depth <= max_depth, "{threads} threads, scene {seed}, {mode}: mean |Δdepth| {depth} m");
            }
        }
    }
}

#[test]
fn int8_execution_is_deterministic_across_thread_counts() {
    let model = Arc::new(PagModel::load_with(common::int8_model(), Execution::Sparse).unwrap());
    let rgb = scene(&model, 5);
    let mut one = Session::with_threads(model.clone(), 1).unwrap();
    let mut two = Session::with_threads(model, 2).unwrap();
    for mode in [ComputeMode::Dense, ComputeMode::budget(0.3).unwrap()] {
        one.set_mode(mode);
        two.set_mode(mode);
        let (a, b) = (one.run(rgb.view()).unwrap(), two.run(rgb.view()).unwrap());
        assert_eq!(a.labels, b.labels, "{mode}");
        assert!(a.depth.iter().zip(&b.depth).all(|(x, y)| x.to_bits() == y.to_bits()), "{mode}: depth differs");
    }
}
