//! Turning the gated blocks and MultiPools a PAG model declares (models/CONTRACT.md) into
//! pagrt's kernels: the graph around each declared tensor is matched against the
//! pattern the kernel implements, its weights are read from the initializers, and its grid size
//! comes from tract's shape inference. What does not match runs densely, with the reason.
use std::fmt;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::{DatumExt, Framework, InferenceModelExt, TypedModel};

use super::contract::{GatedBlockSpec, ModelInfo, MultiPoolSpec};
use super::index::{ConvNode, OnnxIndex};
use crate::kernels::cpu_f32::{
    BranchWeights, GatedBlock, GatedBlockWeights, MultiPool, MultiPoolBranch, MultiPoolWeights,
};
use crate::kernels::cpu_i8::{
    GatedBlockI8, QBranchWeights, QConv2d, QConvWeights, QGatedBlockWeights, QMultiPoolWeights, QParams,
};
use crate::kernels::AnyGatedBlock;

/// A gated block of the model, matched and built as a sparse [`GatedBlock`].
#[derive(Debug, Clone)]
pub struct ExtractedGatedBlock {
    /// The block as the model's metadata declares it.
    pub spec: GatedBlockSpec,
    /// The sparse kernel computing `spec.input → spec.output` (in place): f32, or int8 when the
    /// block's convs are QDQ.
    pub block: AnyGatedBlock,
}

/// A MultiPool module of the model, matched and built as a sparse [`MultiPool`].
#[derive(Debug, Clone)]
pub struct ExtractedMultiPool {
    /// The module as the model's metadata declares it.
    pub spec: MultiPoolSpec,
    /// The sparse kernel computing `spec.input → spec.output`.
    pub module: MultiPool,
}

/// An ungated quantized conv of a QDQ model with the Q/DQ pairs around it, as one int8 op.
#[derive(Debug, Clone)]
pub struct ExtractedQConv {
    /// The float tensor the input QuantizeLinear reads.
    pub input: String,
    /// The conv's data input (that pair's DequantizeLinear output): read instead of `input`
    /// when another quantized conv produces `input` (quantizing a dequantized value again gives
    /// the same value).
    pub input_dequantized: String,
    /// The conv's (or its Relu's) float output, which the output pair quantizes.
    pub activation: String,
    /// The output DequantizeLinear's tensor.
    pub output: String,
    /// The conv node's name.
    pub name: String,
    pub conv: QConv2d,
}

/// Every quantized conv of `proto` (DequantizeLinear weights) whose input and output are Q/DQ
/// pairs, as int8 ops; why each other quantized conv is not one. Convs inside gated blocks are
/// listed too: the caller skips those its blocks replaced.
pub(crate) fn extract_qconvs(proto: &ModelProto, shapes: Shapes) -> Vec<Result<ExtractedQConv, Unsupported>> {
    let Some(graph) = proto.graph.as_ref() else { return vec![] };
    let g = OnnxIndex::new(graph);
    let mut out = Vec::new();
    for node in g.convs() {
        let Some(output) = node.output.first() else { continue };
        let extracted = (|| -> Result<Option<ExtractedQConv>, String> {
            let conv = g.conv(output, "conv")?;
            let Some(q) = conv.quant.as_ref() else { return Ok(None) };
            let Some((input, in_q)) = g.qdq(conv.input())? else {
                return Err("its input is not a QuantizeLinear/DequantizeLinear pair".into());
            };
            let relu = g.consumers.get(output.as_str()).is_some_and(|c| c.len() == 1 && c[0].op_type == "Relu");
            let activation = if relu { g.consumers[output.as_str()][0].output[0].as_str() } else { output.as_str() };
            let Some((dequantized, out_q)) = g.qdq_after(activation)? else {
                return Err("its output is not read by one QuantizeLinear/DequantizeLinear pair only".into());
            };
            if conv.group != 1
                || conv.strides.iter().any(|&s| s != conv.strides[0])
                || conv.dilations.iter().any(|&d| d != conv.dilations[0])
            {
                return Err(format!(
                    "strides {:?}, dilations {:?}, group {} (equal strides and dilations, group 1 supported)",
                    conv.strides, conv.dilations, conv.group
                ));
            }
            let pads: Vec<usize> = conv.pads.iter().map(|&p| p.max(0) as usize).collect();
            let [top, left, bottom, right] = pads[..] else { return Err(format!("pads {:?}", conv.pads)) };
            let (c, h, w) = grid(shapes, input)?;
            if c != conv.dims[1] {
                return Err(format!("the input has {c} channels, the weights {}", conv.dims[1]));
            }
            let geometry = crate::pag::ConvGeometry::new(
                (h, w),
                (conv.dims[2], conv.dims[3]),
                conv.strides[0].max(1) as usize,
                conv.dilations[0].max(1) as usize,
                [top, left, bottom, right],
            )
            .map_err(|e| e.to_string())?;
            let in_q = QParams::new(in_q.scale, in_q.zero_point).map_err(|e| e.to_string())?;
            let out_q = QParams::new(out_q.scale, out_q.zero_point).map_err(|e| e.to_string())?;
            let bias = bias_in_units(&conv, q, in_q)?;
            let weights =
                QConvWeights { weights: &q.weights, scales: &q.scales, bias: &bias, input: in_q, output: out_q };
            let conv2d = QConv2d::new(&weights, conv.dims, geometry, relu).map_err(|e| e.to_string())?;
            Ok(Some(ExtractedQConv {
                input: input.into(),
                input_dequantized: conv.input().into(),
                activation: activation.into(),
                output: dequantized.into(),
                name: node.name.clone(),
                conv: conv2d,
            }))
        })();
        match extracted {
            Ok(Some(e)) => out.push(Ok(e)),
            Ok(None) => {}
            Err(reason) => out.push(Err(Unsupported { kind: "quantized conv", name: node.name.clone(), reason })),
        }
    }
    out
}

/// An ungated float 1×1 conv (the lateral, the head) as one pagrt conv op: tract's declutter
/// would turn it into a matmul that ran 3–6× slower than pagrt's GEMM on these shapes.
#[derive(Debug, Clone)]
pub struct ExtractedPointwise {
    pub input: String,
    /// The conv's output, or its Relu's when a Relu is its only consumer (then fused).
    pub output: String,
    pub name: String,
    pub conv: crate::kernels::cpu_f32::PerforatedConv,
    pub relu: bool,
}

/// Every float 1×1, stride-1, unpadded, ungrouped conv of `proto` with ≥ 16 input channels and
/// initializer weights, as pagrt conv ops (convs inside gated blocks included: the caller skips
/// those its blocks replaced).
pub(crate) fn extract_pointwise(proto: &ModelProto, shapes: Shapes) -> Vec<ExtractedPointwise> {
    let Some(graph) = proto.graph.as_ref() else { return vec![] };
    let g = OnnxIndex::new(graph);
    g.convs()
        .filter_map(|node| {
            let output = node.output.first()?;
            let conv = g.conv(output, "conv").ok()?;
            if conv.quant.is_some() || conv.check_pointwise("conv").is_err() || conv.dims[1] < 16 {
                return None;
            }
            let (c, h, w) = grid(shapes, conv.input()).ok()?;
            if c != conv.dims[1] {
                return None;
            }
            let consumers = g.consumers.get(output.as_str())?;
            let relu = consumers.len() == 1 && consumers[0].op_type == "Relu";
            let output = if relu { consumers[0].output.first()?.clone() } else { output.clone() };
            let perforated = crate::kernels::cpu_f32::PerforatedConv::new(
                &conv.weights,
                conv.dims,
                Some(&conv.bias),
                1,
                1,
                [0; 4],
                (h, w),
            )
            .ok()?;
            Some(ExtractedPointwise {
                input: conv.input().into(),
                output,
                name: node.name.clone(),
                conv: perforated,
                relu,
            })
        })
        .collect()
}

/// Why a declared module cannot run on the sparse kernels (it then runs densely in tract).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// What the module is: `"gated block"` or `"MultiPool"`.
    pub kind: &'static str,
    /// The module's name in the metadata (e.g. `stage2.1`).
    pub name: String,
    /// What differs from the supported pattern, naming the node.
    pub reason: String,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let how =
            if self.kind == "quantized conv" { "runs in tract (f32 with Q/DQ round trips)" } else { "runs densely" };
        write!(f, "{} `{}` {how}: {}", self.kind, self.name, self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// Every declared module of a model, in metadata order: its sparse kernel, or why it has none.
#[derive(Debug, Clone)]
pub struct SparsePlan {
    /// One entry per `info.gated_blocks`.
    pub gated: Vec<Result<ExtractedGatedBlock, Unsupported>>,
    /// One entry per `info.multipools` that is not the spatial stage of a gated block (those
    /// run inside their block's kernel).
    pub multipools: Vec<Result<ExtractedMultiPool, Unsupported>>,
}

/// Builds the sparse kernel of every gated block and MultiPool `info` declares in `proto`.
///
/// A gated block must be `branch = Conv1×1(Relu(Conv k×k(Relu(Conv1×1(input)))))` (odd `k`,
/// stride 1, group 1, dilation `d`, pads `d · (k / 2)`), or (version 2, `multipool` declared)
/// `branch = Conv1×1(MultiPool(Relu(Conv1×1(input))))`, with the gate a 1-channel 1×1 Conv of
/// the input producing `score`. A MultiPool's selector must be a 1×1 Conv of the input, its
/// dilation-0 branch the input itself and every other branch a 3×3 Conv (dilation `d`, pads
/// `d`, optionally followed by Relu) of the input. Weights must be float32 initializers; a
/// missing bias is zeros. The grid `(h, w)` of each module is its input's shape when the image
/// input is `1×3×H×W` (the metadata's size) and ρ is `[1]`.
pub fn extract_sparse_blocks(proto: &ModelProto, info: &ModelInfo) -> SparsePlan {
    let shapes = infer_shapes(proto, info);
    extract_with_shapes(proto, info, shapes.as_ref().map_err(String::as_str))
}

/// [`extract_sparse_blocks`] with tensor shapes from `shapes`, a typed model of `proto` whose
/// outlets still carry the ONNX tensor names (the loader's, before decluttering).
pub(crate) fn extract_with_shapes(proto: &ModelProto, info: &ModelInfo, shapes: Shapes) -> SparsePlan {
    let Some(graph) = proto.graph.as_ref() else {
        let none = |kind, name: &str| Unsupported { kind, name: name.into(), reason: "the model has no graph".into() };
        return SparsePlan {
            gated: info.gated_blocks.iter().map(|b| Err(none("gated block", &b.name))).collect(),
            multipools: info.multipools.iter().map(|m| Err(none("MultiPool", &m.name))).collect(),
        };
    };
    let g = OnnxIndex::new(graph);
    let gated = info
        .gated_blocks
        .iter()
        .map(|spec| {
            extract_gated(&g, shapes, spec, info)
                .map(|block| ExtractedGatedBlock { spec: spec.clone(), block })
                .map_err(|reason| Unsupported { kind: "gated block", name: spec.name.clone(), reason })
        })
        .collect();
    let inside_blocks: Vec<&str> = info.gated_blocks.iter().filter_map(|b| b.multipool.as_deref()).collect();
    let multipools = info
        .multipools
        .iter()
        .filter(|spec| !inside_blocks.contains(&spec.name.as_str()))
        .map(|spec| {
            extract_multipool(&g, shapes, spec)
                .map(|module| ExtractedMultiPool { spec: spec.clone(), module })
                .map_err(|reason| Unsupported { kind: "MultiPool", name: spec.name.clone(), reason })
        })
        .collect();
    SparsePlan { gated, multipools }
}

/// A typed model to read tensor shapes from, or why there is none.
pub(crate) type Shapes<'a> = Result<&'a TypedModel, &'a str>;

/// The typed tract model of `proto` with the contract's input shapes, for tensor shapes.
fn infer_shapes(proto: &ModelProto, info: &ModelInfo) -> Result<TypedModel, String> {
    let graph = proto.graph.as_ref().ok_or("the model has no graph")?;
    let mut model = tract_onnx::onnx()
        .model_for_proto_model(proto)
        .map_err(|e| format!("tract cannot parse the model for shape inference: {e:#}"))?;
    let inputs = graph.input.iter().filter(|i| !graph.initializer.iter().any(|t| t.name == i.name));
    for (ix, input) in inputs.enumerate() {
        let fact = if input.name == info.input.name {
            f32::fact([1, 3, info.input.height, info.input.width])
        } else if info.rho_input.as_deref() == Some(input.name.as_str()) {
            f32::fact([1])
        } else {
            return Err(format!("graph input `{}` is neither the image nor ρ", input.name));
        };
        model.set_input_fact(ix, fact.into()).map_err(|e| format!("cannot type input `{}`: {e:#}", input.name))?;
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| model.into_typed())) {
        Ok(typed) => typed.map_err(|e| format!("shape inference failed: {e:#}")),
        Err(_) => Err("shape inference failed inside tract".into()),
    }
}

/// The outlet carrying ONNX tensor `name`: its label, or (a graph input) its source node.
pub(crate) fn outlet_of(model: &TypedModel, name: &str) -> Option<tract_onnx::prelude::OutletId> {
    model
        .find_outlet_label(name)
        .or_else(|| model.node_by_name(name).ok().map(|n| tract_onnx::prelude::OutletId::new(n.id, 0)))
}

/// The `(channels, h, w)` of tensor `name`, which must be `[1, C, h, w]` and concrete.
pub(super) fn grid(shapes: Shapes, name: &str) -> Result<(usize, usize, usize), String> {
    let model = shapes.map_err(str::to_owned)?;
    let outlet = outlet_of(model, name).ok_or_else(|| format!("tract has no tensor `{name}`"))?;
    let fact = model.outlet_fact(outlet).map_err(|e| format!("no shape for `{name}`: {e:#}"))?;
    match fact.shape.as_concrete() {
        Some(&[1, c, h, w]) => Ok((c, h, w)),
        _ => Err(format!("tensor `{name}` has shape {:?} (expected concrete [1, C, H, W])", fact.shape)),
    }
}

fn extract_gated(
    g: &OnnxIndex,
    shapes: Shapes,
    spec: &GatedBlockSpec,
    info: &ModelInfo,
) -> Result<AnyGatedBlock, String> {
    let expand = g.conv(g.skip_qdq(&spec.branch)?, "expand conv (producing the branch)")?;
    expand.check_pointwise("expand conv")?;
    if let Some(name) = &spec.multipool {
        let pool = info.multipools.iter().find(|m| &m.name == name).ok_or_else(|| format!("no MultiPool `{name}`"))?;
        return extract_gated_multipool(g, shapes, spec, &expand, pool);
    }
    let spatial_out = g.through_relu(g.skip_qdq(expand.input())?, "between the spatial and expand convs")?;
    let spatial = g.conv(spatial_out, "spatial conv")?;
    let (kernel, dilation) = spatial.check_spatial(&format!("{}×{} conv", spatial.dims[2], spatial.dims[3]))?;
    let (reduce, gate) = reduce_and_gate(g, spec, spatial.input(), "between the reduce and spatial convs")?;
    let (c, mid) = (reduce.dims[1], reduce.dims[0]);
    let expected = [
        ("gate", gate.dims, [1, c, 1, 1]),
        ("spatial", spatial.dims, [mid, mid, kernel, kernel]),
        ("expand", expand.dims, [c, mid, 1, 1]),
    ];
    for (role, got, want) in expected {
        if got != want {
            return Err(format!("the {role} conv has weights {got:?}, expected {want:?}"));
        }
    }
    let (channels, h, w) = grid(shapes, &spec.input)?;
    if channels != c {
        return Err(format!("the block input has {channels} channels, its convs {c}"));
    }
    if let Some(q) = quantized(g, spec, &[&reduce, &spatial, &expand])? {
        let [rq, sq, eq] = [&reduce, &spatial, &expand].map(|c| c.quant.as_ref().expect("checked"));
        let reduce_out = q.params(spatial.input())?;
        let spatial_out = q.params(expand.input())?;
        let (spatial_bias, expand_bias) =
            (q.conv_bias(&spatial, sq, reduce_out)?, q.conv_bias(&expand, eq, spatial_out)?);
        let weights = QGatedBlockWeights {
            channels: c,
            mid,
            kernel,
            dilation,
            gate_weights: &gate.weights,
            gate_bias: &gate.bias,
            reduce: q.conv(&reduce, rq, reduce_out, &q.reduce_bias)?,
            spatial: q.conv(&spatial, sq, spatial_out, &spatial_bias)?,
            expand: q.conv(&expand, eq, q.branch, &expand_bias)?,
        };
        return GatedBlockI8::new(&weights, (h, w)).map(AnyGatedBlock::I8).map_err(|e| e.to_string());
    }
    let weights = GatedBlockWeights {
        channels: c,
        mid,
        kernel,
        dilation,
        gate_weights: &gate.weights,
        gate_bias: &gate.bias,
        reduce_weights: &reduce.weights,
        reduce_bias: &reduce.bias,
        spatial_weights: &spatial.weights,
        spatial_bias: &spatial.bias,
        expand_weights: &expand.weights,
        expand_bias: &expand.bias,
    };
    GatedBlock::new(&weights, (h, w)).map(AnyGatedBlock::F32).map_err(|e| e.to_string())
}

/// The quantization of a QDQ gated block: the index, the reduce conv's input and the branch
/// output's Q/DQ parameters, and the reduce bias in the kernel's units.
struct QuantBlock<'g, 'a> {
    g: &'g OnnxIndex<'a>,
    branch: QParams,
    reduce_bias: Vec<i32>,
}

/// `None` when none of `convs` is a QDQ conv; the block's quantization when all are; an error
/// for a mix, or when a tensor between them lacks its Q/DQ pair.
fn quantized<'g, 'a>(
    g: &'g OnnxIndex<'a>,
    spec: &GatedBlockSpec,
    convs: &[&ConvNode],
) -> Result<Option<QuantBlock<'g, 'a>>, String> {
    let count = convs.iter().filter(|c| c.quant.is_some()).count();
    if count == 0 {
        return Ok(None);
    }
    if count != convs.len() {
        return Err(format!("gated block `{}` mixes QDQ and float convs", spec.name));
    }
    let reduce = convs[0];
    let reduce_bias = bias_in_units(reduce, reduce.quant.as_ref().expect("checked"), qdq_params(g, reduce.input())?)?;
    Ok(Some(QuantBlock { g, branch: qdq_params(g, &spec.branch)?, reduce_bias }))
}

/// The Q/DQ parameters of `tensor`, which must be a Q/DQ pair's output.
fn qdq_params(g: &OnnxIndex, tensor: &str) -> Result<QParams, String> {
    match g.qdq(tensor)? {
        Some((_, p)) => QParams::new(p.scale, p.zero_point).map_err(|e| e.to_string()),
        None => Err(format!(
            "tensor `{tensor}` between QDQ convs is not quantized (no QuantizeLinear/DequantizeLinear pair)"
        )),
    }
}

/// A QDQ conv's bias in units of `input.scale · weight scale` (the stored int32 bias, rescaled
/// when its own scales differ from that product).
fn bias_in_units(conv: &ConvNode, q: &super::index::ConvQuant, input: QParams) -> Result<Vec<i32>, String> {
    if q.bias.is_empty() {
        return Ok(vec![]);
    }
    q.bias
        .iter()
        .zip(&q.bias_scales)
        .zip(&q.scales)
        .map(|((&b, &bs), &ws)| {
            let unit = input.scale * ws;
            let v = (b as f64 * bs as f64 / unit as f64).round();
            if (bs - unit).abs() <= 1e-4 * unit {
                Ok(b)
            } else if v.abs() < i32::MAX as f64 {
                Ok(v as i32)
            } else {
                Err(format!(
                    "the bias of `{}` does not fit int32 in units of its input and weight scales",
                    conv.node.name
                ))
            }
        })
        .collect()
}

impl QuantBlock<'_, '_> {
    fn params(&self, tensor: &str) -> Result<QParams, String> {
        qdq_params(self.g, tensor)
    }

    fn conv_bias(&self, conv: &ConvNode, q: &super::index::ConvQuant, input: QParams) -> Result<Vec<i32>, String> {
        bias_in_units(conv, q, input)
    }

    /// The kernel's view of one QDQ conv.
    fn conv<'c>(
        &self,
        conv: &'c ConvNode,
        q: &'c super::index::ConvQuant,
        output: QParams,
        bias: &'c [i32],
    ) -> Result<QConvWeights<'c>, String> {
        Ok(QConvWeights { weights: &q.weights, scales: &q.scales, bias, input: self.params(conv.input())?, output })
    }
}

/// The reduce conv (1×1, reading the block input, followed by Relu producing `reduce_out`) and
/// the gate (a 1-channel 1×1 conv of the block input) of a gated block.
fn reduce_and_gate<'a>(
    g: &OnnxIndex<'a>,
    spec: &GatedBlockSpec,
    reduce_out: &str,
    relu_role: &str,
) -> Result<(ConvNode<'a>, ConvNode<'a>), String> {
    let reduce_in = g.through_relu(g.skip_qdq(reduce_out)?, relu_role)?;
    let reduce = g.conv(reduce_in, "reduce conv")?;
    reduce.check_pointwise("reduce conv")?;
    if reduce.input() != spec.input && g.skip_qdq(reduce.input())? != spec.input {
        return Err(format!(
            "the reduce conv `{}` reads `{}`, not the block input `{}`",
            reduce.node.name,
            reduce.input(),
            spec.input
        ));
    }
    let gate = g.conv(&spec.score, "gate")?;
    gate.check_pointwise("gate conv")?;
    if gate.input() != spec.input || gate.dims[0] != 1 {
        return Err(format!(
            "the gate `{}` must be a 1-channel conv of the block input, reads `{}` with {} channels",
            gate.node.name,
            gate.input(),
            gate.dims[0]
        ));
    }
    Ok((reduce, gate))
}

/// A version-2 gated block whose spatial stage is the MultiPool `pool`:
/// `branch = expand(pool(Relu(reduce(input))))`.
fn extract_gated_multipool(
    g: &OnnxIndex,
    shapes: Shapes,
    spec: &GatedBlockSpec,
    expand: &ConvNode,
    pool: &MultiPoolSpec,
) -> Result<AnyGatedBlock, String> {
    if g.skip_qdq(expand.input())? != pool.output {
        return Err(format!(
            "the expand conv `{}` reads `{}`, not the output `{}` of its MultiPool `{}`",
            expand.node.name,
            expand.input(),
            pool.output,
            pool.name
        ));
    }
    let (reduce, gate) = reduce_and_gate(g, spec, &pool.input, "between the reduce conv and the MultiPool")?;
    let (selector, convs) = multipool_convs(g, pool)?;
    let (c, mid) = (reduce.dims[1], reduce.dims[0]);
    let chained = gate.dims == [1, c, 1, 1] && expand.dims == [c, mid, 1, 1] && selector.dims[1] == mid;
    if !chained || convs.iter().flatten().any(|(k, _)| k.dims[..2] != [mid, mid]) {
        return Err(format!("the convs of MultiPool block `{}` do not chain C={c} → mid={mid} → C", spec.name));
    }
    let (channels, h, w) = grid(shapes, &spec.input)?;
    if channels != c {
        return Err(format!("the block input has {channels} channels, its convs {c}"));
    }
    let mut all: Vec<&ConvNode> = vec![&reduce, expand];
    all.extend(convs.iter().flatten().map(|(conv, _)| conv));
    if let Some(q) = quantized(g, spec, &all)? {
        // Every branch reads and writes the reduce output's quantization, which the expand conv
        // reads (the contract's rule for a quantized MultiPool).
        let shared = q.params(&pool.input)?;
        let mut biases = Vec::with_capacity(convs.len());
        for b in &convs {
            biases.push(match b {
                None => vec![],
                Some((conv, _)) => q.conv_bias(conv, conv.quant.as_ref().expect("checked"), shared)?,
            });
        }
        let mut branches = Vec::with_capacity(convs.len());
        for ((b, bias), (&d, t)) in convs.iter().zip(&biases).zip(pool.dilations.iter().zip(&pool.branches)) {
            branches.push(match b {
                None => QBranchWeights { dilation: 0, conv: None, relu: false },
                Some((conv, relu)) => QBranchWeights {
                    dilation: d as usize,
                    conv: Some(q.conv(conv, conv.quant.as_ref().expect("checked"), q.params(t)?, bias)?),
                    relu: *relu,
                },
            });
        }
        let (rq, eq) = (reduce.quant.as_ref().expect("checked"), expand.quant.as_ref().expect("checked"));
        let expand_bias = q.conv_bias(expand, eq, q.params(expand.input())?)?;
        let weights = QGatedBlockWeights {
            channels: c,
            mid,
            kernel: 3,
            dilation: 1,
            gate_weights: &gate.weights,
            gate_bias: &gate.bias,
            reduce: q.conv(&reduce, rq, shared, &q.reduce_bias)?,
            spatial: q.conv(&reduce, rq, shared, &q.reduce_bias)?,
            expand: q.conv(expand, eq, q.branch, &expand_bias)?,
        };
        let pool_weights = QMultiPoolWeights {
            selector_weights: &selector.weights,
            selector_bias: &selector.bias,
            branches: &branches,
        };
        return GatedBlockI8::with_multipool(&weights, &pool_weights, (h, w))
            .map(AnyGatedBlock::I8)
            .map_err(|e| e.to_string());
    }
    let branches: Vec<BranchWeights> = convs
        .iter()
        .map(|b| match b {
            None => BranchWeights { dilation: 0, weights: &[], bias: &[], relu: false },
            Some((conv, relu)) => BranchWeights {
                dilation: conv.dilations[0] as usize,
                weights: &conv.weights,
                bias: &conv.bias,
                relu: *relu,
            },
        })
        .collect();
    let weights = GatedBlockWeights {
        channels: c,
        mid,
        kernel: 3,
        dilation: 1,
        gate_weights: &gate.weights,
        gate_bias: &gate.bias,
        reduce_weights: &reduce.weights,
        reduce_bias: &reduce.bias,
        spatial_weights: &[],
        spatial_bias: &[],
        expand_weights: &expand.weights,
        expand_bias: &expand.bias,
    };
    let pool_weights =
        MultiPoolWeights { selector_weights: &selector.weights, selector_bias: &selector.bias, branches: &branches };
    GatedBlock::with_multipool(&weights, &pool_weights, (h, w)).map(AnyGatedBlock::F32).map_err(|e| e.to_string())
}

/// A MultiPool's selector conv and, per branch, `None` for a copy or its 3×3 conv with whether a
/// Relu follows.
#[allow(clippy::type_complexity)]
fn multipool_convs<'a>(
    g: &OnnxIndex<'a>,
    spec: &MultiPoolSpec,
) -> Result<(ConvNode<'a>, Vec<Option<(ConvNode<'a>, bool)>>), String> {
    if spec.dilations.len() != spec.branches.len() {
        return Err(format!("{} dilations for {} branches", spec.dilations.len(), spec.branches.len()));
    }
    let selector = g.conv(&spec.selector, "selector")?;
    selector.check_pointwise("selector conv")?;
    if selector.input() != spec.input || selector.dims[0] != spec.branches.len() {
        return Err(format!(
            "the selector `{}` must be a {}-channel conv of the module input, reads `{}` with {} channels",
            selector.node.name,
            spec.branches.len(),
            selector.input(),
            selector.dims[0]
        ));
    }
    let c = selector.dims[1];
    let mut convs = Vec::with_capacity(spec.branches.len());
    for (i, (&d, t)) in spec.dilations.iter().zip(&spec.branches).enumerate() {
        if d == 0 {
            if *t != spec.input {
                return Err(format!("branch {i} (dilation 0) names `{t}`, not the module input `{}`", spec.input));
            }
            convs.push(None);
            continue;
        }
        let t = g.skip_qdq(t)?;
        let relu = g.producer(t)?.op_type == "Relu";
        let conv_out = if relu { g.through_relu(t, "after a branch conv")? } else { t };
        let role = format!("branch {i} conv");
        let conv = g.conv(conv_out, &role)?;
        let (k, dil) = conv.check_spatial(&role)?;
        if k != 3 || dil != d as usize || conv.input() != spec.input || conv.dims[..2] != [c, c] {
            return Err(format!(
                "the {role} `{}` must be a {c}→{c} 3×3 conv of the module input with dilation {d}, is \
                 {}→{} {k}×{k} with dilation {dil} reading `{}`",
                conv.node.name,
                conv.dims[1],
                conv.dims[0],
                conv.input()
            ));
        }
        convs.push(Some((conv, relu)));
    }
    Ok((selector, convs))
}

fn extract_multipool(g: &OnnxIndex, shapes: Shapes, spec: &MultiPoolSpec) -> Result<MultiPool, String> {
    let (selector, convs) = multipool_convs(g, spec)?;
    let c = selector.dims[1];
    let (channels, h, w) = grid(shapes, &spec.input)?;
    if channels != c {
        return Err(format!("the module input has {channels} channels, its convs {c}"));
    }
    let branches: Vec<MultiPoolBranch> = convs
        .iter()
        .map(|b| match b {
            None => MultiPoolBranch { dilation: 0, weights: &[], bias: &[], relu: false },
            Some((conv, relu)) => MultiPoolBranch {
                dilation: conv.dilations[0] as usize,
                weights: &conv.weights,
                bias: &conv.bias,
                relu: *relu,
            },
        })
        .collect();
    MultiPool::new(c, (h, w), &selector.weights, &selector.bias, &branches).map_err(|e| e.to_string())
}
