//! Dense end-to-end inference of the shipped model: the baseline later work is measured against.
//! Every mode here still computes every pixel (masks multiply); the sparse kernels come later.
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use pag_models::{Intrinsics, Scene};
use pag_runtime::{ComputeMode, PagModel, Session};

fn dense_end_to_end(c: &mut Criterion) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shipped/pag_multitask.onnx");
    let model = Arc::new(PagModel::load(&path).expect("shipped model loads"));
    let (h, w) = (model.info.input.height as u32, model.info.input.width as u32);
    let scene = Scene::random(1);
    let rgb = scene.render(&Intrinsics::with_hfov(w, h, 70.0), &scene.random_pose(1)).rgb;
    let mut session = Session::new(model).expect("session");
    let mut g = c.benchmark_group("cpu_tract_dense_e2e_240x320");
    g.sample_size(20);
    for (name, mode) in [
        ("rho_1.0", ComputeMode::Dense),
        ("rho_0.5_masked", ComputeMode::Budget(0.5)),
        ("native_masked", ComputeMode::Native),
    ] {
        session.set_mode(mode);
        g.bench_function(name, |b| b.iter(|| session.run(rgb.view()).expect("frame")));
    }
    g.finish();
}

criterion_group!(benches, dense_end_to_end);
criterion_main!(benches);
