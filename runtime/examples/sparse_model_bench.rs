//! Times the shipped model with tract's dense ops against tract with the sparse ops
//! (`Execution::Sparse`), frame after frame, interleaved, at several compute modes.
//!
//! `cargo run --release -p pag-runtime --example sparse_model_bench [MODEL] [FRAMES]`
use std::sync::Arc;
use std::time::Instant;

use pag_runtime::{generic::read_npy, ComputeMode, Execution, PagModel, Session};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).map(Into::into).unwrap_or_else(|| root.join("models/shipped/pag_multitask.onnx"));
    let frames: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(25);
    let image = read_npy(&root.join("models/goldens/scene1_native/input.npy"))?;
    let dense_model = Arc::new(PagModel::load_with(&path, Execution::Dense)?);
    let sparse_model = Arc::new(PagModel::load_with(&path, Execution::Sparse)?);
    println!(
        "sparse ops (gated, multipool): {:?}; dense fallbacks: {:?}",
        sparse_model.sparse_op_counts(),
        sparse_model.dense_fallbacks
    );
    let mut dense = Session::new(dense_model)?;
    let mut sparse = Session::new(sparse_model)?;
    let modes = [
        ComputeMode::Dense,
        ComputeMode::budget(0.9).unwrap(),
        ComputeMode::budget(0.7).unwrap(),
        ComputeMode::budget(0.5).unwrap(),
        ComputeMode::budget(0.3).unwrap(),
        ComputeMode::Native,
    ];
    println!("{frames} frames per mode, median ms");
    println!(
        "{:<12} {:>14} {:>15} {:>12} {:>22}",
        "mode", "dense-exec ms", "sparse-exec ms", "sparse/dense", "vs sparse-exec dense"
    );
    let mut sparse_dense_ms = None;
    for mode in modes {
        dense.set_mode(mode);
        sparse.set_mode(mode);
        for _ in 0..3 {
            dense.run_tensor(image.clone())?;
            sparse.run_tensor(image.clone())?;
        }
        let (mut td, mut ts) = (Vec::new(), Vec::new());
        for _ in 0..frames {
            let t = Instant::now();
            dense.run_tensor(image.clone())?;
            td.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            sparse.run_tensor(image.clone())?;
            ts.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (d, s) = (median(td), median(ts));
        let base = *sparse_dense_ms.get_or_insert(s);
        println!("{:<12} {d:>14.2} {s:>15.2} {:>11.2}× {:>21.2}×", mode.to_string(), d / s, base / s);
    }
    Ok(())
}
