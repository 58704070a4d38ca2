//! Contract version 1 still loads and runs sparsely: the first shipped model (kept in
//! models/legacy/) runs its 8 gated blocks and its standalone MultiPool on pagrt's kernels and
//! matches tract's dense masked execution of the same graph in dense, budget and native modes.
mod common;

use std::sync::Arc;

use common::*;
use pag_runtime::generic::read_npy;
use pag_runtime::{ComputeMode, Execution, PagModel, Rho, Session};

fn legacy() -> std::path::PathBuf {
    root().join("models/legacy/pag_v1_multitask.onnx")
}

#[test]
fn version_1_model_loads_with_its_v1_structure() {
    let model = PagModel::load_with(legacy(), Execution::Sparse).unwrap();
    assert_eq!(model.info.contract_version, 1);
    assert!(model.dense_fallbacks.is_empty(), "{:?}", model.dense_fallbacks);
    assert_eq!(model.sparse_op_counts(), (8, 1), "8 gated blocks and one standalone MultiPool");
    assert_resizes_fused(&model);
    assert_eq!(
        model.op_count("PagConv"),
        9 + usize::from(rgb_stem_is_direct(24)),
        "stem.1, down2, the decoder's 3×3 and the six ungated 1×1s (trans3, the MultiPool bottleneck's \
         reduce and expand, the two laterals, the head) run on pagrt's conv, and the stem where direct"
    );
    assert!(model.info.camera_mount.is_none(), "version 1 declares no camera mount");
}

#[test]
fn version_1_sparse_matches_dense_masked_execution() {
    let sparse = Arc::new(PagModel::load_with(legacy(), Execution::Sparse).unwrap());
    let dense = Arc::new(PagModel::load_with(legacy(), Execution::Dense).unwrap());
    let (mut s, mut d) = (Session::new(sparse).unwrap(), Session::new(dense).unwrap());
    let image = read_npy(&golden_cases()[0].join("input.npy")).unwrap();
    for mode in [ComputeMode::Dense, ComputeMode::Budget(Rho::new(0.5).unwrap()), ComputeMode::Native] {
        s.set_mode(mode);
        d.set_mode(mode);
        let (a, b) = (s.run_tensor(image.clone()).unwrap(), d.run_tensor(image.clone()).unwrap());
        for ((x, y), name) in a.iter().zip(b.iter()).zip(["seg_logits", "depth", "normals"]) {
            let diff = max_abs_diff(x, y);
            assert!(diff <= 1e-4, "{mode} {name}: sparse and dense differ by {diff:e}");
        }
    }
}
