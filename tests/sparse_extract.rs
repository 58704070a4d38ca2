//! The sparse kernels extracted from the shipped model reproduce tract's own values of every
//! gated block and MultiPool output, on golden inputs, in dense, native and budget modes.
mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use pag_runtime::generic::{read_npy, run_onnx};
use pag_runtime::graph::{extract_sparse_blocks, SparsePlan};
use pag_runtime::kernels::cpu_f32::MultiPoolScratch;
use pag_runtime::kernels::AnyGatedScratch;
use pag_runtime::{decode_onnx, ComputeMode, ModelInfo};
use tract_onnx::pb::{ModelProto, ValueInfoProto};
use tract_onnx::prelude::Tensor;

const TOL: f32 = 1e-4;

fn shipped() -> (ModelProto, ModelInfo) {
    load(shipped_model())
}

fn load(path: std::path::PathBuf) -> (ModelProto, ModelInfo) {
    let bytes = std::fs::read(path).unwrap();
    let proto = decode_onnx(&bytes, "shipped model").unwrap();
    let info = ModelInfo::from_proto(&proto).unwrap();
    (proto, info)
}

fn floats(t: &Tensor) -> Vec<f32> {
    t.to_plain_array_view::<f32>().unwrap().iter().copied().collect()
}

/// Runs `proto` in tract on a golden case with `names` added as graph outputs; returns the
/// values by name and the case's compute mode.
fn tract_values(proto: &ModelProto, case: &Path, names: &[&str]) -> (HashMap<String, Vec<f32>>, ComputeMode) {
    let mut proto = proto.clone();
    let graph = proto.graph.as_mut().unwrap();
    for name in names {
        graph.output.push(ValueInfoProto { name: name.to_string(), ..Default::default() });
    }
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), prost::Message::encode_to_vec(&proto)).unwrap();
    let image = read_npy(&case.join("input.npy")).unwrap();
    let rho_t = read_npy(&case.join("rho.npy")).unwrap();
    let rho = floats(&rho_t)[0];
    let outs = run_onnx(file.path(), vec![image, rho_t]).unwrap();
    let mode = pag_runtime::mode_from_rho(rho);
    (outs.into_iter().map(|(n, t)| (n, floats(&t))).collect(), mode)
}

/// Checks every extracted module of `plan` against tract on golden `case`.
fn check_case(proto: &ModelProto, plan: &SparsePlan, case: &str) {
    check_case_within(proto, plan, case, |_| TOL)
}

/// [`check_case`] with a tolerance per block (by name).
fn check_case_within(proto: &ModelProto, plan: &SparsePlan, case: &str, tol: impl Fn(&str) -> f32) {
    let blocks: Vec<_> = plan.gated.iter().map(|b| b.as_ref().unwrap()).collect();
    let pools: Vec<_> = plan.multipools.iter().map(|m| m.as_ref().unwrap()).collect();
    let mut names: Vec<&str> = Vec::new();
    for b in &blocks {
        names.extend([b.spec.input.as_str(), b.spec.output.as_str(), b.spec.mask.as_str()]);
    }
    for m in &pools {
        names.extend([m.spec.input.as_str(), m.spec.output.as_str()]);
    }
    names.sort();
    names.dedup();
    let (values, mode) = tract_values(proto, &goldens().join(case), &names);
    let mut scratch = AnyGatedScratch::default();
    for b in &blocks {
        let (input, expected, mask) = (&values[&b.spec.input], &values[&b.spec.output], &values[&b.spec.mask]);
        let mut x = input.clone();
        let stats = b.block.run_in_place(&mut x, mode, &mut scratch).unwrap();
        let n = stats.pixels;
        // Our active pixels: those the block wrote (a computed branch is never exactly 0 in
        // every channel here); tract's: its mask tensor.
        let ours: Vec<bool> = (0..n).map(|p| x.iter().zip(input).skip(p).step_by(n).any(|(a, b)| a != b)).collect();
        let theirs: Vec<bool> = mask.iter().map(|&m| m > 0.5).collect();
        assert_eq!(theirs.len(), n, "{}: mask size", b.spec.name);
        let flips = ours.iter().zip(&theirs).filter(|(a, b)| a != b).count();
        let (mut diff, mut differing) = (0.0f32, 0usize);
        for (i, (a, e)) in x.iter().zip(expected).enumerate() {
            if ours[i % n] == theirs[i % n] {
                diff = diff.max((a - e).abs());
                differing += ((a - e).abs() > TOL) as usize;
            }
        }
        // The size of what the block adds, so that a small diff means something.
        let change = expected.iter().zip(input).map(|(e, i)| (e - i).abs()).fold(0.0, f32::max);
        eprintln!(
            "{case} ({mode}) {:<8} active {:>5}/{:<5} tract {:>5} flips {flips}  max|branch| {change:.2e}  max|diff| {diff:.2e} ({differing} values differ)",
            b.spec.name,
            stats.active,
            n,
            theirs.iter().filter(|&&t| t).count()
        );
        assert!(change > 1e-2, "{case}: {} changes nothing; the comparison would be vacuous", b.spec.name);
        assert_eq!(flips, 0, "{case}: {} mask differs from tract's at {flips} pixels", b.spec.name);
        assert!(diff <= tol(&b.spec.name), "{case}: {} differs from tract by {diff}", b.spec.name);
        // Float blocks match everywhere within TOL; int8 blocks differ from tract's f32
        // evaluation of the QDQ graph only where a requantization sits on a rounding boundary.
        assert!(differing * 1000 <= x.len(), "{case}: {} differs from tract at {differing} values", b.spec.name);
    }
    let mut pool_scratch = MultiPoolScratch::default();
    for m in &pools {
        let (input, expected) = (&values[&m.spec.input], &values[&m.spec.output]);
        let mut out = vec![f32::NAN; input.len()];
        let stats = m.module.run(input, &mut out, &mut pool_scratch).unwrap();
        let diff = out.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0, f32::max);
        eprintln!(
            "{case} ({mode}) {} conv pixels {}/{}  max|diff| {diff:.2e}",
            m.spec.name, stats.conv_pixels, stats.pixels
        );
        assert!(diff <= TOL, "{case}: {} differs from tract by {diff}", m.spec.name);
    }
}

#[test]
fn every_module_of_the_shipped_model_extracts() {
    let (proto, info) = shipped();
    let plan = extract_sparse_blocks(&proto, &info);
    // Model v2: 9 gated blocks (stage2.2 is a gated MultiPool), no standalone MultiPool.
    assert_eq!(plan.gated.len(), 9);
    assert_eq!(plan.multipools.len(), 0);
    for b in &plan.gated {
        let b = b.as_ref().unwrap_or_else(|e| panic!("{e}"));
        let (h, w) = b.block.size();
        assert!((h, w) == (60, 80) || (h, w) == (30, 40), "{}: {h}×{w}", b.spec.name);
    }
    for m in &plan.multipools {
        assert_eq!(m.as_ref().unwrap_or_else(|e| panic!("{e}")).module.branches(), 7);
    }
}

#[test]
fn extracted_modules_match_tract_on_goldens() {
    let (proto, info) = shipped();
    let plan = extract_sparse_blocks(&proto, &info);
    for case in ["scene1_native", "scene0_dense", "scene1_rho0.5"] {
        check_case(&proto, &plan, case);
    }
}

/// The int8 model's blocks (int8 kernels) against tract's evaluation of the QDQ graph (f32
/// convs on dequantized values, Q/DQ round trips), block by block from tract's own inputs.
#[test]
fn int8_modules_match_tract_on_goldens() {
    let (proto, info) = load(int8_model());
    let plan = extract_sparse_blocks(&proto, &info);
    for case in ["scene1_native", "scene0_dense", "scene1_rho0.5"] {
        // One step of a block's output quantization (the expand convs' output scales here are
        // 0.046–0.072).
        check_case_within(&proto, &plan, case, |_| 0.08);
    }
}

/// The shipped model with `edit` applied to the node named `node`.
fn edited(node: &str, edit: impl FnOnce(&mut tract_onnx::pb::NodeProto)) -> (ModelProto, ModelInfo) {
    let (mut proto, info) = shipped();
    let n = proto.graph.as_mut().unwrap().node.iter_mut().find(|n| n.name == node).expect("node exists");
    edit(n);
    (proto, info)
}

#[test]
fn a_strided_spatial_conv_is_unsupported_with_its_reason() {
    let (proto, info) = edited("/net/stage2.1/spatial/conv/Conv", |n| {
        n.attribute.iter_mut().find(|a| a.name == "strides").unwrap().ints = vec![2, 2];
    });
    let plan = extract_sparse_blocks(&proto, &info);
    let ix = info.gated_blocks.iter().position(|b| b.name == "stage2.1").unwrap();
    let err = plan.gated[ix].as_ref().unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("gated block `stage2.1` runs densely: "), "{msg}");
    assert!(msg.contains("3×3 conv") && msg.contains("stride [2, 2]"), "{msg}");
}

#[test]
fn a_sigmoid_in_the_branch_is_unsupported_with_its_reason() {
    let (proto, info) = edited("/net/stage1.1/spatial/Relu", |n| n.op_type = "Sigmoid".into());
    let plan = extract_sparse_blocks(&proto, &info);
    for (spec, entry) in info.gated_blocks.iter().zip(&plan.gated) {
        if spec.name == "stage1.1" {
            let msg = entry.as_ref().unwrap_err().to_string();
            assert!(msg.contains("Sigmoid") && msg.contains("between the spatial and expand convs"), "{msg}");
        } else {
            assert!(entry.is_ok(), "{}: {:?}", spec.name, entry.as_ref().err());
        }
    }
    assert!(plan.multipools.iter().all(|m| m.is_ok()));
}

/// The int8 model with initializer `name` edited.
fn int8_edited(name: &str, edit: impl FnOnce(&mut tract_onnx::pb::TensorProto)) -> (ModelProto, ModelInfo) {
    let (mut proto, info) = load(int8_model());
    let t = proto.graph.as_mut().unwrap().initializer.iter_mut().find(|t| t.name == name).expect("initializer exists");
    edit(t);
    (proto, info)
}

/// The reason stage2.1 gets for running in tract instead of the int8 kernels; every other block
/// still extracts.
fn stage2_1_reason(proto: &ModelProto, info: &ModelInfo) -> String {
    let plan = extract_sparse_blocks(proto, info);
    let mut reason = None;
    for (spec, entry) in info.gated_blocks.iter().zip(&plan.gated) {
        match (spec.name.as_str(), entry) {
            ("stage2.1", Err(e)) => reason = Some(e.to_string()),
            ("stage2.1", Ok(_)) => panic!("stage2.1 should not extract"),
            (_, entry) => assert!(entry.is_ok(), "{}: {:?}", spec.name, entry.as_ref().err()),
        }
    }
    reason.unwrap()
}

#[test]
fn an_asymmetric_int8_weight_is_refused_with_its_reason_and_the_model_still_runs() {
    let (proto, info) = int8_edited("net.stage2.1.expand.conv.weight_zero_point", |t| {
        t.raw_data.iter_mut().for_each(|b| *b = 3);
        t.int32_data.iter_mut().for_each(|v| *v = 3);
    });
    let msg = stage2_1_reason(&proto, &info);
    assert!(msg.starts_with("gated block `stage2.1` runs densely: "), "{msg}");
    assert!(msg.contains("per-output-channel symmetric"), "{msg}");
    // The loader still builds the model and says why: that block runs in tract, its reduce and
    // spatial convs (Q/DQ pairs on both sides) as fused int8 ops, its expand conv in tract.
    let model = pag_runtime::PagModel::from_bytes(&prost::Message::encode_to_vec(&proto), "edited int8 model").unwrap();
    assert!(
        model.dense_fallbacks.iter().any(|f| f.contains("per-output-channel symmetric")),
        "{:?}",
        model.dense_fallbacks
    );
    assert_eq!(model.precision(), "int8 (8 of 9 gated blocks, 6 convs)");
    let (h, w) = (model.info.input.height, model.info.input.width);
    let mut session = pag_runtime::Session::new(std::sync::Arc::new(model)).unwrap();
    session.set_mode(pag_runtime::ComputeMode::budget(0.5).unwrap());
    let out = session.run(ndarray::Array3::<u8>::from_elem((h, w, 3), 90).view()).unwrap();
    assert!(out.depth.iter().any(|d| d.is_finite()));
}

#[test]
fn a_signed_activation_zero_point_is_refused_with_its_reason() {
    let (proto, info) = int8_edited("/net/stage2.1/reduce/Relu_output_0_zero_point", |t| {
        t.data_type = tract_onnx::pb::tensor_proto::DataType::Int8 as i32;
    });
    let msg = stage2_1_reason(&proto, &info);
    assert!(msg.contains("activations are u8"), "{msg}");
}

#[test]
fn a_missing_quantize_pair_between_int8_convs_is_refused_with_its_reason() {
    // The spatial conv reads the reduce ReLU's float output, skipping its Q/DQ pair: the block
    // then mixes a quantized tensor boundary with an unquantized one.
    let (mut proto, info) = load(int8_model());
    let graph = proto.graph.as_mut().unwrap();
    let conv = graph.node.iter_mut().find(|n| n.name == "/net/stage2.1/spatial/conv/Conv").unwrap();
    conv.input[0] = "/net/stage2.1/reduce/Relu_output_0".into();
    let msg = stage2_1_reason(&proto, &info);
    assert!(msg.contains("not quantized") || msg.contains("QuantizeLinear"), "{msg}");
}
