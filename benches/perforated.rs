//! The perforated 3×3 conv (pag_runtime::sparse) against our dense path and tract's own Conv on
//! the same shape, single thread. Masks are `ActiveSet::budget` of fixed-seed random scores
//! (scattered pixels: the worst case for the im2col gather).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use pag_runtime::kernels::cpu_f32::{ConvScratch, PerforatedConv};
use pag_runtime::pag::ActiveSet;
use tract_onnx::pb::tensor_shape_proto::{dimension, Dimension};
use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, type_proto, AttributeProto, GraphProto, ModelProto,
    NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use tract_onnx::prelude::*;

const DENSITIES: [f32; 6] = [1.0, 0.9, 0.7, 0.5, 0.25, 0.1];
/// (channels, height, width) of the benched 3×3 convs.
const SHAPES: [(usize, usize, usize); 2] = [(64, 60, 80), (96, 30, 40)];

fn random_vec(seed: u64, len: usize, scale: f32) -> Vec<f32> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: values.to_vec(),
        ..Default::default()
    }
}

fn initializer(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        float_data: data.to_vec(),
        ..Default::default()
    }
}

fn float_value(name: &str, shape: &[usize]) -> ValueInfoProto {
    let dim =
        shape.iter().map(|&d| Dimension { value: Some(dimension::Value::DimValue(d as i64)), ..Default::default() });
    let tensor =
        type_proto::Tensor { elem_type: DataType::Float as i32, shape: Some(TensorShapeProto { dim: dim.collect() }) };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() }),
        ..Default::default()
    }
}

/// tract's optimised plan of a one-node ONNX graph: `y = Conv(x, W, b)`, 3×3, pads 1, stride 1.
fn tract_conv(c: usize, h: usize, w: usize, weights: &[f32], bias: &[f32]) -> Arc<TypedSimplePlan> {
    let conv = NodeProto {
        op_type: "Conv".into(),
        name: "conv".into(),
        input: vec!["x".into(), "W".into(), "b".into()],
        output: vec!["y".into()],
        attribute: vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1]), ints("strides", &[1, 1])],
        ..Default::default()
    };
    let graph = GraphProto {
        name: "perforated_bench".into(),
        node: vec![conv],
        initializer: vec![initializer("W", &[c, c, 3, 3], weights), initializer("b", &[c], bias)],
        input: vec![float_value("x", &[1, c, h, w])],
        output: vec![float_value("y", &[1, c, h, w])],
        ..Default::default()
    };
    let proto = ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 17 }],
        graph: Some(graph),
        ..Default::default()
    };
    let model = tract_onnx::onnx().model_for_proto_model(&proto).expect("tract parses the conv");
    model.into_optimized().expect("tract optimises the conv").into_runnable().expect("runnable")
}

fn perforated_conv3x3(crit: &mut Criterion) {
    let mut group = crit.benchmark_group("cpu_perforated_conv3x3");
    group.sample_size(30);
    for (c, h, w) in SHAPES {
        let shape = format!("{c}ch_{h}x{w}");
        let weights = random_vec(1, c * c * 9, 1.0 / (c as f32 * 9.0).sqrt());
        let bias = random_vec(2, c, 0.1);
        let input = random_vec(3, c * h * w, 1.0);
        let scores = random_vec(4, h * w, 1.0);
        let conv = PerforatedConv::new(&weights, [c, c, 3, 3], Some(&bias), 1, 1, [1; 4], (h, w)).expect("conv");
        let mut scratch = ConvScratch::default();
        let mut output = vec![0.0f32; conv.output_len()];

        group.bench_function(BenchmarkId::new("ours_dense", &shape), |b| {
            b.iter(|| conv.run_dense(&input, &mut output, &mut scratch).expect("dense conv"))
        });
        for rho in DENSITIES {
            let active = ActiveSet::budget(&scores, h, w, rho).expect("budget");
            group.bench_function(BenchmarkId::new(format!("perforated_d{rho}"), &shape), |b| {
                b.iter(|| conv.run(&input, &active, &mut output, &mut scratch).expect("perforated conv"))
            });
        }

        let plan = tract_conv(c, h, w, &weights, &bias);
        // A shared TValue: each run clones a reference, not the 1×c×h×w tensor.
        let x = Tensor::from_shape(&[1, c, h, w], &input).expect("input tensor").into_tvalue();
        let mut state = plan.spawn().expect("tract state");
        let theirs = state.run(tvec![x.clone()]).expect("tract runs");
        let theirs = theirs[0].to_plain_array_view::<f32>().expect("f32 output");
        conv.run_dense(&input, &mut output, &mut scratch).expect("dense conv");
        let worst = theirs.iter().zip(&output).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "our dense conv differs from tract's by {worst}");
        group.bench_function(BenchmarkId::new("tract_dense", &shape), |b| {
            b.iter(|| state.run(tvec![x.clone()]).expect("tract runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, perforated_conv3x3);
criterion_main!(benches);
