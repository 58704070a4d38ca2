//! Loading a PAG ONNX model: decode, check operators and the contract, build the tract plan.
use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

use crate::contract::{check_operators, ModelInfo};
use crate::error::{tract_err, PagError, Result};
use crate::sparse::{
    extract_sparse_blocks, PagConvOp, PagGatedBlockOp, PagL2NormOp, PagMultiPoolOp, PagResizeOp, PerforatedConv,
};

pub(crate) type Plan = Arc<TypedRunnableModel>;

/// How a [`PagModel`] executes its gated blocks and MultiPool modules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Execution {
    /// tract's own ops everywhere: every gated branch is computed at every pixel and masked
    /// (the reference the sparse kernels are checked against).
    Dense,
    /// The default. Each supported gated block and MultiPool runs as one op calling the sparse kernels
    /// ([`crate::sparse`]), which really skip inactive pixels; unsupported modules stay dense and
    /// are listed in [`PagModel::dense_fallbacks`]. Bilinear `half_pixel` Resize nodes also run
    /// on a fast dedicated kernel ([`PagResizeOp`]).
    #[default]
    Sparse,
}

/// A loaded, validated PAG model with its optimised tract plan. Cheap to share between sessions.
pub struct PagModel {
    pub info: ModelInfo,
    /// Multiply-accumulates of one dense frame (every gate open), from tract's op costs.
    pub dense_macs: u64,
    /// With [`Execution::Sparse`]: why each declared module that stays dense does (empty when
    /// every module runs on the sparse kernels, and always with [`Execution::Dense`]).
    pub dense_fallbacks: Vec<String>,
    pub(crate) plan: Plan,
    pub(crate) input_index: usize,
    pub(crate) rho_index: Option<usize>,
    pub(crate) output_index: [usize; 3],
}

/// Decode an ONNX protobuf; `what` names the source in errors.
pub fn decode_onnx(bytes: &[u8], what: &str) -> Result<ModelProto> {
    let proto = tract_onnx::onnx()
        .proto_model_for_read(&mut &bytes[..])
        .map_err(|e| PagError::NotOnnx { what: what.into(), reason: format!("{e:#}") })?;
    if proto.graph.as_ref().is_none_or(|g| g.node.is_empty()) {
        return Err(PagError::NotOnnx {
            what: what.into(),
            reason: "it has no graph nodes (truncated or not a model?)".into(),
        });
    }
    Ok(proto)
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| PagError::Io { path: path.to_owned(), source })
}

/// Reject operators tract does not implement, naming the node.
pub(crate) fn check_supported(proto: &ModelProto) -> Result<()> {
    let onnx = tract_onnx::onnx();
    check_operators(proto, |op| onnx.op_register.0.contains_key(op))
}

impl PagModel {
    /// Load and validate the model at `path`, with sparse execution ([`Execution::Sparse`]).
    pub fn load(path: impl AsRef<Path>) -> Result<PagModel> {
        Self::load_with(path, Execution::Sparse)
    }

    /// Load and validate the model at `path`, executing it as `execution` says.
    pub fn load_with(path: impl AsRef<Path>, execution: Execution) -> Result<PagModel> {
        let path = path.as_ref();
        Self::from_bytes_with(&read_file(path)?, &path.display().to_string(), execution)
    }

    /// Load from ONNX bytes; `what` names the source in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<PagModel> {
        Self::from_bytes_with(bytes, what, Execution::Sparse)
    }

    /// Load from ONNX bytes, executing the model as `execution` says; `what` names the source in
    /// errors.
    pub fn from_bytes_with(bytes: &[u8], what: &str, execution: Execution) -> Result<PagModel> {
        let proto = decode_onnx(bytes, what)?;
        check_supported(&proto)?;
        let info = ModelInfo::from_proto(&proto)?;
        let mut model = tract_onnx::onnx().model_for_proto_model(&proto).map_err(tract_err("parse"))?;
        let graph = proto.graph.as_ref().expect("checked by decode_onnx");
        let inputs: Vec<&str> = graph
            .input
            .iter()
            .map(|i| i.name.as_str())
            .filter(|n| !graph.initializer.iter().any(|t| t.name == *n))
            .collect();
        let input_index = inputs.iter().position(|n| *n == info.input.name).expect("validated by the contract");
        let rho_index =
            info.rho_input.as_ref().map(|r| inputs.iter().position(|n| n == r).expect("validated by the contract"));
        let (h, w) = (info.input.height, info.input.width);
        model
            .set_input_fact(input_index, f32::fact([1, 3, h, w]).into())
            .map_err(tract_err("type the image input of"))?;
        if let Some(ix) = rho_index {
            model.set_input_fact(ix, f32::fact([1]).into()).map_err(tract_err("type the ρ input of"))?;
        }
        let mut typed = model.into_typed().map_err(tract_err("type"))?;
        let mut dense_fallbacks = Vec::new();
        let (typed, dense_macs) = if execution == Execution::Sparse {
            // MACs of the dense model, counted before the modules become sparse ops (whose cost
            // is data dependent).
            let dense_macs = count_macs(&typed.clone().into_decluttered().map_err(tract_err("declutter"))?)?;
            let rho = rho_index
                .map(|ix| typed.input_outlets().map(|o| o[ix]))
                .transpose()
                .map_err(tract_err("find the ρ input of"))?;
            dense_fallbacks = install_sparse_ops(&mut typed, &proto, &info, rho)?;
            let mut typed = typed.into_decluttered().map_err(tract_err("declutter"))?;
            install_fast_resizes(&mut typed)?;
            install_fast_convs(&mut typed)?;
            install_fast_l2norms(&mut typed)?;
            (typed, dense_macs)
        } else {
            let typed = typed.into_decluttered().map_err(tract_err("declutter"))?;
            let dense_macs = count_macs(&typed)?;
            (typed, dense_macs)
        };
        let names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let pos = |n: &str| names.iter().position(|x| x == n).expect("validated by the contract");
        let output_index = [
            pos(crate::contract::OUTPUT_SEG),
            pos(crate::contract::OUTPUT_DEPTH),
            pos(crate::contract::OUTPUT_NORMALS),
        ];
        let plan = typed.into_optimized().map_err(tract_err("optimise"))?.into_runnable().map_err(tract_err("plan"))?;
        Ok(PagModel { info, dense_macs, dense_fallbacks, plan, input_index, rho_index, output_index })
    }

    /// How many nodes of the optimised plan are sparse ops: (gated blocks, MultiPools).
    pub fn sparse_op_counts(&self) -> (usize, usize) {
        let nodes = self.plan.model().nodes();
        let count = |name: &str| nodes.iter().filter(|n| n.op.name() == name).count();
        (count("PagGatedBlock"), count("PagMultiPool"))
    }

    /// How many nodes of the optimised plan are fast bilinear resizes ([`PagResizeOp`]).
    pub fn sparse_resize_count(&self) -> usize {
        self.op_count("PagResize")
    }

    /// How many nodes of the optimised plan run the operator named `op` (e.g. `"PagConv"`,
    /// `"PagL2Norm"`, or a tract operator name).
    pub fn op_count(&self, op: &str) -> usize {
        self.plan.model().nodes().iter().filter(|n| n.op.name() == op).count()
    }

    /// Number of model inputs the plan expects.
    pub(crate) fn input_count(&self) -> usize {
        1 + self.rho_index.is_some() as usize
    }
}

/// Replaces every supported gated block and MultiPool of `model` (typed, not yet decluttered,
/// so that ONNX tensor names are still outlet labels) by one sparse op; returns why each other
/// module stays dense.
fn install_sparse_ops(
    model: &mut TypedModel,
    proto: &ModelProto,
    info: &ModelInfo,
    rho: Option<OutletId>,
) -> Result<Vec<String>> {
    let plan = extract_sparse_blocks(proto, info);
    let mut fallbacks = Vec::new();
    let find = |model: &TypedModel, name: &str| {
        model.find_outlet_label(name).ok_or_else(|| PagError::Tract {
            stage: "install sparse ops in",
            reason: format!("no tensor `{name}` in the typed model"),
        })
    };
    for entry in plan.gated {
        let b = match entry {
            Ok(b) => b,
            Err(e) => {
                fallbacks.push(e.to_string());
                continue;
            }
        };
        let Some(rho) = rho else {
            fallbacks.push(format!("gated block `{}` runs densely: the model has no ρ input", b.spec.name));
            continue;
        };
        let (input, output) = (find(model, &b.spec.input)?, find(model, &b.spec.output)?);
        let op = PagGatedBlockOp { name: b.spec.name.clone(), block: Arc::new(b.block) };
        replace_subgraph(model, &[input, rho], output, format!("pag_gated.{}", b.spec.name), op)?;
    }
    for entry in plan.multipools {
        let m = match entry {
            Ok(m) => m,
            Err(e) => {
                fallbacks.push(e.to_string());
                continue;
            }
        };
        let (input, output) = (find(model, &m.spec.input)?, find(model, &m.spec.output)?);
        let op = PagMultiPoolOp { name: m.spec.name.clone(), module: Arc::new(m.module) };
        replace_subgraph(model, &[input], output, format!("pag_multipool.{}", m.spec.name), op)?;
    }
    Ok(fallbacks)
}

/// Wire `op` on `inputs` and make it produce what `output` produced; the subgraph it replaces
/// becomes dead and is pruned by the next declutter.
fn replace_subgraph(
    model: &mut TypedModel,
    inputs: &[OutletId],
    output: OutletId,
    name: String,
    op: impl Into<Box<dyn TypedOp>>,
) -> Result<()> {
    let mut patch = TypedModelPatch::default();
    let wired = (|| -> TractResult<()> {
        let taps = inputs.iter().map(|&i| patch.tap_model(model, i)).collect::<TractResult<TVec<_>>>()?;
        let y = patch.wire_node(name, op, &taps)?[0];
        patch.shunt_outside(model, output, y)?;
        patch.apply(model)
    })();
    wired.map_err(tract_err("install pagrt ops in"))
}

/// The output size `(oh, ow)` of a `Resize` node [`PagResizeOp`] computes exactly: linear,
/// `half_pixel` (or `pytorch_half_pixel` with outputs longer than 1), f32 `[N, C, h, w]` in with
/// a concrete shape, only the last two axes resized, and any constant scales equal to the size
/// ratios.
fn fast_resize_size(model: &TypedModel, node: &TypedNode) -> Option<(usize, usize)> {
    use tract_onnx::tract_core::ops::nn::resize::{CoordTransformer, Interpolator, Resize};
    let op = node.op_as::<Resize>()?;
    let input = model.outlet_fact(*node.inputs.first()?).ok()?;
    let output = node.outputs.first()?.fact.shape.as_concrete()?.to_vec();
    let in_shape = input.shape.as_concrete()?;
    if input.datum_type != f32::datum_type()
        || in_shape.len() != 4
        || output.len() != 4
        || in_shape[..2] != output[..2]
        || in_shape[2] == 0
        || in_shape[3] == 0
        || !matches!(op.interpolator, Interpolator::Linear)
    {
        return None;
    }
    let (oh, ow) = (output[2], output[3]);
    match op.coord_transformer {
        CoordTransformer::HalfPixel => (),
        CoordTransformer::PytorchHalfPixel if oh > 1 && ow > 1 => (),
        _ => return None,
    }
    if let Some(ix) = op.optional_scales_input {
        if let Some(scales) = node.inputs.get(ix).and_then(|o| model.outlet_fact(*o).ok()?.konst.clone()) {
            if scales.len() == 4 {
                let scales = scales.cast_to::<f32>().ok()?;
                let s = scales.to_plain_array_view::<f32>().ok()?;
                let want = [1.0, 1.0, oh as f32 / in_shape[2] as f32, ow as f32 / in_shape[3] as f32];
                if s.iter().zip(want).any(|(a, b)| *a != b) {
                    return None;
                }
            }
        }
    }
    Some((oh, ow))
}

/// Replaces every `Resize` node of `model` that [`PagResizeOp`] computes exactly (see
/// [`fast_resize_size`]) by that op; returns how many it replaced.
fn install_fast_resizes(model: &mut TypedModel) -> Result<usize> {
    let candidates: Vec<(usize, usize, usize)> =
        model.nodes().iter().filter_map(|n| fast_resize_size(model, n).map(|(oh, ow)| (n.id, oh, ow))).collect();
    for &(id, oh, ow) in &candidates {
        let node = model.node(id);
        let (input, name) = (node.inputs[0], node.name.clone());
        replace_subgraph(model, &[input], OutletId::new(id, 0), format!("{name}.pag_resize"), PagResizeOp { oh, ow })?;
    }
    Ok(candidates.len())
}

/// Replaces tract's ungated spatial convs (f32 NCHW, batch 1, groups 1, k×k with k > 1, stride 1,
/// ≥ 16 input channels, equal dilations, explicit padding, constant weights and bias) with [`PagConvOp`], fusing
/// a following ReLU. Returns how many were replaced.
fn install_fast_convs(model: &mut TypedModel) -> Result<usize> {
    let candidates: Vec<(usize, PerforatedConv, Option<usize>)> =
        model.nodes().iter().filter_map(|n| fast_conv(model, n).map(|(c, relu)| (n.id, c, relu))).collect();
    for (id, conv, relu) in &candidates {
        let node = model.node(*id);
        let (input, name) = (node.inputs[0], node.name.clone());
        let output = OutletId::new(relu.unwrap_or(*id), 0);
        let op = PagConvOp { conv: Arc::new(conv.clone()), relu: relu.is_some() };
        replace_subgraph(model, &[input], output, format!("{name}.pag_conv"), op)?;
    }
    Ok(candidates.len())
}

/// The [`PerforatedConv`] computing `node` when it is a conv [`PagConvOp`] supports, with the id
/// of a ReLU (`Max` with a constant 0) that is its only consumer.
fn fast_conv(model: &TypedModel, node: &TypedNode) -> Option<(PerforatedConv, Option<usize>)> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat, PaddingSpec};
    use tract_onnx::tract_core::ops::nn::DataFormat;
    let op = node.op_as::<Conv>()?;
    let spec = &op.pool_spec;
    if op.q_params.is_some()
        || op.group != 1
        || op.kernel_fmt != KernelFormat::OIHW
        || spec.data_format != DataFormat::NCHW
        || spec.kernel_shape.len() != 2
        || spec.kernel_shape.iter().all(|&k| k == 1)
        || node.inputs.len() != 3
    {
        return None;
    }
    let equal = |v: &Option<TVec<usize>>| match v {
        None => Some(1),
        Some(v) if v.len() == 2 && v[0] == v[1] => Some(v[0]),
        _ => None,
    };
    let (stride, dilation) = (equal(&spec.strides)?, equal(&spec.dilations)?);
    // Measured on the shipped model (`pag bench --profile`): inputs of few channels (a short GEMM
    // depth) run faster in tract's own conv (stem 3→24 s2: 1.40 ms here vs 0.70 ms in tract).
    if stride > 2 || spec.input_channels < 16 {
        return None;
    }
    let padding = match &spec.padding {
        PaddingSpec::Valid => [0; 4],
        PaddingSpec::Explicit(b, a) | PaddingSpec::ExplicitOnnxPool(b, a, false) if b.len() == 2 && a.len() == 2 => {
            [b[0], b[1], a[0], a[1]]
        }
        _ => return None,
    };
    let fact = |i: usize| model.outlet_fact(node.inputs[i]).ok();
    let x = fact(0)?;
    let shape = x.shape.as_concrete()?;
    let kernel = fact(1)?.konst.clone()?;
    let bias = fact(2)?.konst.clone()?;
    if x.datum_type != f32::datum_type()
        || shape.len() != 4
        || shape[0] != 1
        || kernel.datum_type() != f32::datum_type()
    {
        return None;
    }
    let k = kernel.shape();
    if k.len() != 4 || k[1] != shape[1] || bias.datum_type() != f32::datum_type() {
        return None;
    }
    let floats = |t: &Tensor| t.to_plain_array_view::<f32>().ok().map(|v| v.iter().copied().collect::<Vec<f32>>());
    let bias = floats(&bias)?;
    let bias: Vec<f32> = match bias.len() {
        1 => vec![bias[0]; k[0]],
        n if n == k[0] => bias.to_vec(),
        _ => return None,
    };
    let conv = PerforatedConv::new(
        &floats(&kernel)?,
        [k[0], k[1], k[2], k[3]],
        Some(&bias),
        stride,
        dilation,
        padding,
        (shape[2], shape[3]),
    )
    .ok()?;
    let want = node.outputs[0].fact.shape.as_concrete()?;
    let g = conv.geometry();
    if want != [1, k[0], g.out_height(), g.out_width()] {
        return None;
    }
    let relu = (|| {
        let [succ] = &node.outputs[0].successors[..] else { return None };
        let next = model.node(succ.node);
        let other = next.inputs.iter().find(|o| o.node != node.id)?;
        let zero = model
            .outlet_fact(*other)
            .ok()?
            .konst
            .as_ref()
            .is_some_and(|c| c.len() == 1 && c.cast_to_scalar::<f32>().is_ok_and(|v| v == 0.0));
        let is_max = next.op_as::<TypedBinOp>().is_some_and(|b| b.0.name() == "Max");
        (is_max && zero && next.inputs.len() == 2).then_some(next.id)
    })();
    Some((conv, relu))
}

/// Replaces the decluttered form of a channel-wise L2 normalisation,
/// `Mul(x, Rsqrt(Add(Reduce<Sum, axis 1>(Square(x)), ε)))` on a 4-D f32 `x`, with one
/// [`PagL2NormOp`]. Returns how many were replaced.
fn install_fast_l2norms(model: &mut TypedModel) -> Result<usize> {
    let candidates: Vec<(usize, OutletId, f32)> =
        model.nodes().iter().filter_map(|n| fast_l2norm(model, n).map(|(x, eps)| (n.id, x, eps))).collect();
    for &(id, x, eps) in &candidates {
        let name = model.node(id).name.clone();
        replace_subgraph(model, &[x], OutletId::new(id, 0), format!("{name}.pag_l2norm"), PagL2NormOp { eps })?;
    }
    Ok(candidates.len())
}

/// `(x, ε)` when `node` is the final multiply of a channel-wise L2 normalisation of `x`.
fn fast_l2norm(model: &TypedModel, node: &TypedNode) -> Option<(OutletId, f32)> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
    use tract_onnx::tract_core::ops::nn::{Reduce, Reducer};
    let is_bin = |n: &TypedNode, name: &str| n.op_as::<TypedBinOp>().is_some_and(|b| b.0.name() == name);
    let is_ew = |n: &TypedNode, name: &str| n.op_as::<ElementWiseOp>().is_some_and(|e| e.0.name() == name);
    if !is_bin(node, "Mul") || node.inputs.len() != 2 {
        return None;
    }
    for (xi, ri) in [(0, 1), (1, 0)] {
        let (x, r) = (node.inputs[xi], node.inputs[ri]);
        let rsqrt = model.node(r.node);
        if !is_ew(rsqrt, "Rsqrt") {
            continue;
        }
        let add = model.node(rsqrt.inputs[0].node);
        if !is_bin(add, "Add") || add.inputs.len() != 2 {
            continue;
        }
        let Some((reduce_in, eps)) = (0..2).find_map(|i| {
            let k = model.outlet_fact(add.inputs[1 - i]).ok()?.konst.clone()?;
            (k.len() == 1).then_some(())?;
            Some((add.inputs[i], k.cast_to_scalar::<f32>().ok()?))
        }) else {
            continue;
        };
        let reduce = model.node(reduce_in.node);
        let sums_channels =
            reduce.op_as::<Reduce>().is_some_and(|r| matches!(r.reducer, Reducer::Sum) && r.axes[..] == [1]);
        if !sums_channels {
            continue;
        }
        let square = model.node(reduce.inputs[0].node);
        if !is_ew(square, "Square") || square.inputs[0] != x {
            continue;
        }
        let fact = model.outlet_fact(x).ok()?;
        if fact.datum_type != f32::datum_type() || fact.rank() != 4 || !eps.is_finite() || eps < 0.0 {
            return None;
        }
        return Some((x, eps));
    }
    None
}

/// Total FMA count of a typed model, from each op's declared cost.
pub fn count_macs(model: &TypedModel) -> Result<u64> {
    let mut total = 0u64;
    for node in model.nodes() {
        let facts: TVec<&TypedFact> = node
            .inputs
            .iter()
            .map(|o| model.outlet_fact(*o))
            .collect::<TractResult<_>>()
            .map_err(tract_err("inspect"))?;
        for (cost, n) in node.op.cost(&facts).map_err(tract_err("cost"))? {
            if let Cost::FMA(_) = cost {
                total += n.to_i64().map_err(|e| PagError::Tract { stage: "count MACs of", reason: format!("{e:?}") })?
                    as u64;
            }
        }
    }
    Ok(total)
}
