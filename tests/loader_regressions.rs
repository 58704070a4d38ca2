//! Every model input that made the loader panic (or crawl) under `cargo fuzz` (fuzz/README.md)
//! is now a clear error naming the node, in both executions and for `pag run --input`'s plain
//! ONNX path.
use std::path::PathBuf;

use pag_runtime::{generic, Execution, PagModel};

fn regressions() -> Vec<(PathBuf, &'static str)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/loader");
    [
        // Conv dilations = [1] for a 3×3 kernel: tract indexed dilations[1] (padding.rs:76).
        ("conv_dilations_too_short.onnx", "`dilations` is [1]"),
        // ConstantOfShape [-2]: tract asserted on a negative dimension (fact.rs:21), issue 11's case.
        ("constant_of_shape_negative.onnx", "negative size"),
        // ConstantOfShape [435526984018]: a 14 GB allocation during type inference.
        ("constant_of_shape_huge.onnx", "exceeds"),
        // A Conv stride lost: declutter grew symbolic broadcast expressions for seconds.
        ("slow_symbolic_broadcast.onnx", "not fixed although the inputs are"),
    ]
    .into_iter()
    .map(|(f, why)| (dir.join(f), why))
    .collect()
}

#[test]
fn fuzzed_models_are_errors_naming_the_node() {
    for (path, why) in regressions() {
        let bytes = std::fs::read(&path).unwrap();
        for execution in [Execution::Sparse, Execution::Dense] {
            let err = match PagModel::from_bytes_with(&bytes, "fuzzed", execution) {
                Ok(_) => panic!("{} loaded", path.display()),
                Err(e) => e.to_string(),
            };
            assert!(err.contains(why), "{}: {err}", path.display());
            assert!(err.contains("node `"), "{}: the error names no node: {err}", path.display());
        }
    }
}

#[test]
fn fuzzed_models_are_errors_as_plain_onnx_too() {
    for (path, _) in regressions() {
        let image = tract_onnx::prelude::Tensor::zero::<f32>(&[1, 3, 16, 16]).unwrap();
        let rho = tract_onnx::prelude::tensor1(&[1f32]);
        assert!(generic::run_onnx(&path, vec![image, rho]).is_err(), "{}", path.display());
    }
}
