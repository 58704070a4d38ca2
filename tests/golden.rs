//! Dense execution (tract's own ops, the reference) reproduces onnxruntime's outputs on the
//! shipped model (models/goldens); tests/sparse_model.rs checks sparse execution the same way.
mod common;

use std::sync::Arc;

use common::*;
use pag_runtime::{generic::read_npy, ComputeMode, Execution, PagModel, Session};

const TOL: f32 = 1e-4;

#[test]
fn every_mode_matches_onnxruntime_within_1e4() {
    let model = Arc::new(PagModel::load_with(shipped_model(), Execution::Dense).unwrap());
    let mut session = Session::new(model).unwrap();
    for case in golden_cases() {
        session.set_mode(golden_mode(&case));
        let outs = session.run_tensor(read_npy(&case.join("input.npy")).unwrap()).unwrap();
        for (o, name) in outs.iter().zip(["seg_logits", "depth", "normals"]) {
            let d = max_abs_diff(o, &read_npy(&case.join(format!("{name}.npy"))).unwrap());
            assert!(d <= TOL, "{}: {name} differs from onnxruntime by {d:e}", case.display());
        }
    }
}

#[test]
fn image_path_matches_onnxruntime_labels_and_depth() {
    // From the PNG through the session's own resize/normalisation (identity resize here).
    let model = Arc::new(PagModel::load_with(shipped_model(), Execution::Dense).unwrap());
    let mut session = Session::new(model).unwrap();
    let case = golden_cases().into_iter().find(|c| golden_mode(c) == ComputeMode::Dense).expect("a dense golden");
    let img = image::open(case.join("input.png")).unwrap().to_rgb8();
    let rgb =
        ndarray::Array3::from_shape_vec((img.height() as usize, img.width() as usize, 3), img.into_raw()).unwrap();
    let out = session.run(rgb.view()).unwrap();
    let depth = read_npy(&case.join("depth.npy")).unwrap();
    let depth = depth.to_plain_array_view::<f32>().unwrap();
    let d = out.depth.iter().zip(depth.iter()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(d <= TOL, "depth differs by {d:e}");
    let seg = read_npy(&case.join("seg_logits.npy")).unwrap();
    let seg = seg.to_plain_array_view::<f32>().unwrap();
    let mut disagree = 0;
    for ((y, x), &l) in out.labels.indexed_iter() {
        let best = (0..seg.shape()[1]).max_by(|&a, &b| seg[[0, a, y, x]].total_cmp(&seg[[0, b, y, x]])).unwrap();
        disagree += (best != l as usize) as usize;
    }
    // Only exact near-ties may flip under 1e-7 normalisation rounding.
    assert!(disagree <= 3, "{disagree} labels differ from onnxruntime's argmax");
}

#[test]
fn mode_changes_per_frame_without_reloading() {
    let model = Arc::new(PagModel::load_with(shipped_model(), Execution::Dense).unwrap());
    let mut session = Session::new(model).unwrap();
    let case = golden_cases().into_iter().find(|c| golden_mode(c) != ComputeMode::Dense).unwrap();
    let x = read_npy(&case.join("input.npy")).unwrap();
    session.set_mode(ComputeMode::Dense);
    let dense = session.run_tensor(x.clone()).unwrap();
    session.set_mode(golden_mode(&case));
    let sparse = session.run_tensor(x.clone()).unwrap();
    session.set_mode(ComputeMode::Dense);
    let dense_again = session.run_tensor(x).unwrap();
    assert!(max_abs_diff(&dense[1], &sparse[1]) > 1e-3, "a sparser mode must change the depth output");
    assert_eq!(max_abs_diff(&dense[1], &dense_again[1]), 0.0);
}
