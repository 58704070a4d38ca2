//! Per-frame telemetry and ponder maps of sparse execution on the shipped model.
mod common;

use std::sync::Arc;

use common::*;
use pag_runtime::{generic::read_npy, ComputeMode, Execution, PagModel, Session};

fn session(execution: Execution, mode: ComputeMode) -> Session {
    let model = Arc::new(PagModel::load_with(shipped_model(), execution).unwrap());
    let mut s = Session::new(model).unwrap();
    s.set_mode(mode);
    s
}

fn run_golden(s: &mut Session) {
    let input = read_npy(&goldens().join("scene1_rho0.5/input.npy")).unwrap();
    s.run_tensor(input).unwrap();
}

#[test]
fn budget_telemetry_has_exact_densities_and_fewer_macs() {
    let mut s = session(Execution::Sparse, ComputeMode::budget(0.5).unwrap());
    assert!(s.telemetry().is_none(), "no telemetry before the first frame");
    run_golden(&mut s);
    let t = s.telemetry().unwrap().clone();
    assert_eq!(t.layers.len(), 9, "model v2's gated blocks");
    assert_eq!(t.multipools.len(), 0, "model v2's MultiPool is inside a gated block");
    let names: Vec<&str> = s.model().info.gated_blocks.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(t.layers.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), names);
    let mut density_sum = 0.0f64;
    for l in &t.layers {
        assert!(l.executed_macs < l.dense_macs, "{l:?}");
        density_sum += l.density as f64;
    }
    // Each grid is 60×80 or 30×40 (n pixels): the budget keeps exactly ceil(0.5·n) of them.
    for l in &t.layers {
        let d = l.density as f64;
        assert!([60 * 80, 30 * 40].iter().any(|&n| d == (0.5f64 * n as f64).ceil() / n as f64), "{l:?}");
    }
    let all = t.layers.iter().chain(&t.multipools);
    assert_eq!(t.executed_macs_total, all.clone().map(|l| l.executed_macs).sum::<u64>());
    assert_eq!(t.dense_macs_total, all.map(|l| l.dense_macs).sum::<u64>());
    assert!(t.executed_macs_total < t.dense_macs_total);
    let map = s.ponder_map().unwrap();
    let i = &s.model().info.input;
    assert_eq!(map.dim(), (i.height, i.width));
    let mean = map.iter().map(|&v| v as f64).sum::<f64>() / map.len() as f64;
    assert!((mean - density_sum).abs() < 1e-3 && (mean - 4.5).abs() < 1e-3, "mean {mean}, Σ densities {density_sum}");
    assert!(map.iter().all(|&v| v <= 9));
    // Same frame again: telemetry is refilled in place and unchanged.
    run_golden(&mut s);
    assert_eq!(s.telemetry().unwrap(), &t);
}

#[test]
fn dense_mode_executes_every_mac_and_ponders_everywhere() {
    let mut s = session(Execution::Sparse, ComputeMode::Dense);
    run_golden(&mut s);
    let t = s.telemetry().unwrap();
    for (l, spec) in t.layers.iter().zip(&s.model().info.gated_blocks) {
        assert_eq!(l.density, 1.0, "{l:?}");
        if spec.multipool.is_some() {
            // A gated MultiPool runs one of its branches per active pixel; dense MACs count the
            // graph's every branch at every pixel.
            assert!(l.executed_macs < l.dense_macs, "{l:?}");
        } else {
            assert_eq!(l.executed_macs, l.dense_macs, "{l:?}");
        }
    }
    let map = s.ponder_map().unwrap();
    assert!(map.iter().all(|&v| v == 9));
}

#[test]
fn dense_execution_has_no_telemetry() {
    let mut s = session(Execution::Dense, ComputeMode::budget(0.5).unwrap());
    run_golden(&mut s);
    assert!(s.telemetry().is_none());
    assert!(s.ponder_map().is_none());
}

#[test]
fn cli_writes_ponder_map() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = pag(&["run", "--scene", "3", "--mode", "0.5", "--ponder", "--out", path_str(dir.path())]);
    assert!(ok, "{err}");
    assert!(out.contains("gated MACs"), "{out}");
    assert!(dir.path().join("ponder.png").is_file());
    let map: ndarray::Array2<u8> = ndarray_npy::read_npy(dir.path().join("ponder.npy")).unwrap();
    assert_eq!(map.dim(), (240, 320));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["telemetry"]["layers"].as_array().unwrap().len(), 9);
}
