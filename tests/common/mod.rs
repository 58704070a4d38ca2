#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_model() -> PathBuf {
    root().join("models/shipped/pag_multitask.onnx")
}

/// The shipped int8 (QDQ) version of the shipped model.
#[allow(dead_code)]
pub fn int8_model() -> PathBuf {
    root().join("models/shipped/pag_multitask_int8.onnx")
}

pub fn baseline_model() -> PathBuf {
    root().join("models/shipped/pag_dense_baseline.onnx")
}

pub fn goldens() -> PathBuf {
    root().join("models/goldens")
}

/// Run the `pag` binary; returns (success, stdout, stderr).
pub fn pag(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pag")).args(args).output().expect("pag runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The golden cases (one directory each under models/goldens), sorted.
pub fn golden_cases() -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(goldens())
        .expect("models/goldens exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert!(v.len() >= 3, "expected golden cases in {:?}", goldens());
    v
}

/// The compute mode a golden case was made with (its `rho.npy`, decoded as the runtime does).
pub fn golden_mode(case: &Path) -> pag_runtime::ComputeMode {
    let rho = pag_runtime::generic::read_npy(&case.join("rho.npy")).unwrap();
    pag_runtime::mode_from_rho(rho.to_plain_array_view::<f32>().unwrap()[[0]])
}

/// Largest absolute difference of two f32 tensors of the same shape.
pub fn max_abs_diff(a: &tract_onnx::prelude::Tensor, b: &tract_onnx::prelude::Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let (a, b) = (a.to_plain_array_view::<f32>().unwrap(), b.to_plain_array_view::<f32>().unwrap());
    a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Whether this CPU runs an RGB stem (`3 → out` 3×3 stride 2 at 240×320) on pagrt's direct
/// stride-2 kernel, so that the loader moves it from tract onto pagrt's conv.
#[allow(dead_code)]
pub fn rgb_stem_is_direct(out: usize) -> bool {
    let weights = vec![0.0; out * 3 * 9];
    pag_runtime::kernels::cpu_f32::PerforatedConv::new(&weights, [out, 3, 3, 3], None, 2, 1, [1, 1, 1, 1], (240, 320))
        .unwrap()
        .is_direct()
}

/// The head's one upsampling runs as one PagResize per head (its channel slices moved before
/// it), the decoder's as another, and no full-resolution slice copy is left.
#[allow(dead_code)]
pub fn assert_resizes_fused(model: &pag_runtime::PagModel) {
    assert_eq!(model.sparse_resize_count(), 4, "both upsamplings on PagResize, the head's split per head");
    assert_eq!(model.op_count("Slice"), 0, "no full-resolution slice copies are left");
}
