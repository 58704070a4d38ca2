//! With `Execution::Sparse`, tract runs each gated block and MultiPool of the shipped model on
//! the sparse kernels, and still reproduces onnxruntime's outputs on every golden case.
mod common;

use std::sync::Arc;

use common::*;
use pag_runtime::{generic::read_npy, ComputeMode, Execution, PagModel, Session, WorkerWait};

const TOL: f32 = 1e-4;

#[test]
fn sparse_execution_installs_one_op_per_module() {
    let model = PagModel::load_with(shipped_model(), Execution::Sparse).unwrap();
    assert!(model.dense_fallbacks.is_empty(), "{:?}", model.dense_fallbacks);
    // Model v2: 9 gated blocks (one of them a gated MultiPool), no standalone MultiPool.
    assert_eq!(model.sparse_op_counts(), (9, 0));
    assert_resizes_fused(&model);
    assert_eq!(
        model.op_count("PagConv"),
        4 + usize::from(rgb_stem_is_direct(16)),
        "the 2×2 stride-2 convs stem.1 and down2, the 1×1 lateral and head (and the stem where direct) run on \
         pagrt's conv"
    );
    assert_eq!(model.op_count("PagL2Norm"), 1, "the normals head's L2 normalisation is fused");
    assert_eq!(
        model.op_count("OptAddUnicast") + model.op_count("Add"),
        0,
        "the decoder's skip add is fused into its upsampling"
    );
    let dense = PagModel::load_with(shipped_model(), Execution::Dense).unwrap();
    assert_eq!(dense.sparse_op_counts(), (0, 0));
    assert_eq!(dense.sparse_resize_count(), 0);
    assert_eq!(dense.op_count("PagConv") + dense.op_count("PagL2Norm"), 0);
    assert_eq!(model.dense_macs, dense.dense_macs);
}

#[test]
fn gated_blocks_after_pagrt_ops_work_in_their_input_without_copying() {
    // stem.1 → stage1.0 → stage1.1 and down2 → stage2.0 … stage2.4 are chains of pagrt ops with
    // one reader each; decoder.0 reads the decoder's upsampling with its skip add fused in, and
    // decoder.1 reads decoder.0. Stage1.1's output is read twice (down2, that fused add), but that
    // is its output, not its input.
    let expected =
        ["decoder.0", "decoder.1", "stage1.0", "stage1.1", "stage2.0", "stage2.1", "stage2.2", "stage2.3", "stage2.4"];
    for path in [shipped_model(), int8_model()] {
        let model = PagModel::load_with(&path, Execution::Sparse).unwrap();
        let mut got = model.borrowing_blocks();
        got.sort();
        assert_eq!(got, expected, "{}", path.display());
    }
    // Dense execution has no pagrt ops.
    assert!(PagModel::load_with(shipped_model(), Execution::Dense).unwrap().borrowing_blocks().is_empty());
}

#[test]
fn sparse_execution_matches_onnxruntime_within_1e4() {
    let model = Arc::new(PagModel::load_with(shipped_model(), Execution::Sparse).unwrap());
    let mut session = Session::new(model).unwrap();
    let cases = golden_cases();
    let mut modes = Vec::new();
    for case in &cases {
        let mode = golden_mode(case);
        modes.push(mode);
        session.set_mode(mode);
        let outs = session.run_tensor(read_npy(&case.join("input.npy")).unwrap()).unwrap();
        for (o, name) in outs.iter().zip(["seg_logits", "depth", "normals"]) {
            let d = max_abs_diff(o, &read_npy(&case.join(format!("{name}.npy"))).unwrap());
            eprintln!("{} ({mode}) {name}: max|diff| {d:.2e}", case.display());
            assert!(d <= TOL, "{}: {name} differs from onnxruntime by {d:e}", case.display());
        }
    }
    assert!(modes.contains(&ComputeMode::Dense) && modes.contains(&ComputeMode::Native));
    assert!(modes.iter().any(|m| matches!(m, ComputeMode::Budget(_))));
}

/// The goldens on every kernel table this CPU runs, not only the one the dispatcher picks: the
/// test above again in a child process per other table (`PAGRT_CPU_ISA` is read once per
/// process). A whole-model check of each table catches what the kernels' own property tests do
/// not reach: the AVX2 GEMM added some rows twice in products taller than its 128-row block,
/// unseen while every development machine picked AVX-512.
#[test]
fn sparse_execution_matches_onnxruntime_on_every_kernel_table() {
    if std::env::var_os("PAGRT_CPU_ISA").is_some() {
        return; // a child run: the parent covers the tables.
    }
    let best = pag_runtime::kernels::cpu_f32::isa::best().name;
    for isa in pag_runtime::kernels::cpu_f32::CpuIsa::supported() {
        if isa.name == best {
            continue;
        }
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["sparse_execution_matches_onnxruntime_within_1e4", "--exact", "--nocapture"])
            .env("PAGRT_CPU_ISA", isa.name)
            .output()
            .unwrap();
        let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "goldens on the {} kernels:\n{log}", isa.name);
        assert!(log.contains("1 passed"), "the child ran the golden test on {}:\n{log}", isa.name);
    }
}

/// Idle workers polling or sleeping give the same bits at any thread count (and a pool of three
/// runs two pollers without deadlocking the frame); any thread count stays within 1e-5 of one
/// thread (a different tile split may reassociate sums: measured 1.9e-6 at 3 threads).
#[test]
fn worker_wait_changes_no_bits_at_any_thread_count() {
    let model = Arc::new(PagModel::load_with(shipped_model(), Execution::Sparse).unwrap());
    let case = golden_cases().into_iter().find(|c| matches!(golden_mode(c), ComputeMode::Budget(_))).unwrap();
    let x = read_npy(&case.join("input.npy")).unwrap();
    let run = |threads: usize, wait: WorkerWait| {
        let mut session = Session::with_threads(model.clone(), threads).unwrap();
        session.set_worker_wait(wait);
        session.set_mode(golden_mode(&case));
        let outs: Vec<Vec<f32>> = (0..3)
            .map(|_| session.run_tensor(x.clone()).unwrap())
            .last()
            .unwrap()
            .iter()
            .map(|t| t.to_plain_array_view::<f32>().unwrap().iter().copied().collect())
            .collect();
        outs
    };
    let one = run(1, WorkerWait::Sleep);
    for threads in [1, 2, 3] {
        let (poll, sleep) = (run(threads, WorkerWait::Poll), run(threads, WorkerWait::Sleep));
        for ((p, s), o) in poll.iter().zip(&sleep).zip(&one) {
            assert!(p.iter().zip(s).all(|(a, b)| a.to_bits() == b.to_bits()), "{threads} threads: poll ≠ sleep");
            let d = p.iter().zip(o).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
            assert!(d <= 1e-5, "{threads} threads: {d:e} from one thread");
        }
    }
}
