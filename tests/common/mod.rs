#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn shipped_model() -> PathBuf {
    root().join("models/shipped/pag_multitask.onnx")
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
