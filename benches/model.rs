//! The shipped model end to end (resize + normalise + inference + output conversion), one
//! thread, at 240×320: sparse execution (pagrt's kernels skip inactive pixels) at ρ = 1.0, 0.9,
//! 0.7, 0.5, 0.3 and native, beside dense execution (tract's ops on every pixel, masks multiply:
//! the reference) at ρ = 1 and 0.5; and the shipped int8 model (`pag calibrate`'s QDQ version,
//! on pagrt's int8 kernels) at ρ = 1, 0.5, 0.25.
//!
//! `cargo bench --bench model` (add `-- sparse`, `-- dense` or `-- int8` to run one group). For speedup
//! ratios and the comparison with onnxruntime measured side by side in one run, use
//! `scripts/compare_onnxruntime.py`.
use std::sync::Arc;

/// As in the `pag` binary (tract allocates every operator output afresh each frame).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion};
use pag_models::{Intrinsics, Scene};
use pag_runtime::{ComputeMode, Execution, LoadOptions, PagModel, Session};

fn end_to_end(c: &mut Criterion) {
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shipped");
    let (float, int8) = (shipped.join("pag_multitask.onnx"), shipped.join("pag_multitask_int8.onnx"));
    for (group, path, execution, modes) in [
        (
            "e2e_sparse_240x320",
            &float,
            Execution::Sparse,
            &[
                ("rho_1.0", ComputeMode::Dense),
                ("rho_0.9", ComputeMode::budget(0.9).unwrap()),
                ("rho_0.7", ComputeMode::budget(0.7).unwrap()),
                ("rho_0.5", ComputeMode::budget(0.5).unwrap()),
                ("rho_0.3", ComputeMode::budget(0.3).unwrap()),
                ("native", ComputeMode::Native),
            ][..],
        ),
        (
            "e2e_dense_240x320",
            &float,
            Execution::Dense,
            &[("rho_1.0", ComputeMode::Dense), ("rho_0.5_masked", ComputeMode::budget(0.5).unwrap())][..],
        ),
        (
            "e2e_int8_sparse_240x320",
            &int8,
            Execution::Sparse,
            &[
                ("rho_1.0", ComputeMode::Dense),
                ("rho_0.5", ComputeMode::budget(0.5).unwrap()),
                ("rho_0.25", ComputeMode::budget(0.25).unwrap()),
            ][..],
        ),
    ] {
        let options = LoadOptions { execution, threads: Some(1), ..LoadOptions::default() };
        let model = Arc::new(PagModel::load_with_options(path, options).expect("shipped model loads"));
        let (h, w) = (model.info.input.height as u32, model.info.input.width as u32);
        let scene = Scene::random(1);
        let rgb = scene.render(&Intrinsics::with_hfov(w, h, 70.0), &scene.random_pose(1)).rgb;
        let mut session = Session::new(model).expect("session");
        let mut g = c.benchmark_group(group);
        g.sample_size(20);
        for &(name, mode) in modes {
            session.set_mode(mode);
            g.bench_function(name, |b| b.iter(|| session.run(rgb.view()).expect("frame")));
        }
        g.finish();
    }
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
