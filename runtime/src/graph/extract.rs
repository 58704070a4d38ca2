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

/// A gated block of the model, matched and built as a sparse [`GatedBlock`].
#[derive(Debug, Clone)]
pub struct ExtractedGatedBlock {
    /// The block as the model's metadata declares it.
    pub spec: GatedBlockSpec,
    /// The sparse kernel computing `spec.input → spec.output` (in place).
    pub block: GatedBlock,
}

/// A MultiPool module of the model, matched and built as a sparse [`MultiPool`].
#[derive(Debug, Clone)]
pub struct ExtractedMultiPool {
    /// The module as the model's metadata declares it.
    pub spec: MultiPoolSpec,
    /// The sparse kernel computing `spec.input → spec.output`.
    pub module: MultiPool,
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
        write!(f, "{} `{}` runs densely: {}", self.kind, self.name, self.reason)
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

/// The `(channels, h, w)` of tensor `name`, which must be `[1, C, h, w]` and concrete.
pub(super) fn grid(shapes: Shapes, name: &str) -> Result<(usize, usize, usize), String> {
    let model = shapes.map_err(str::to_owned)?;
    let outlet = model.find_outlet_label(name).ok_or_else(|| format!("tract has no tensor `{name}`"))?;
    let fact = model.outlet_fact(outlet).map_err(|e| format!("no shape for `{name}`: {e:#}"))?;
    match fact.shape.as_concrete() {
        Some(&[1, c, h, w]) => Ok((c, h, w)),
        _ => Err(format!("tensor `{name}` has shape {:?} (expected concrete [1, C, H, W])", fact.shape)),
    }
}

fn extract_gated(g: &OnnxIndex, shapes: Shapes, spec: &GatedBlockSpec, info: &ModelInfo) -> Result<GatedBlock, String> {
    let expand = g.conv(&spec.branch, "expand conv (producing the branch)")?;
    expand.check_pointwise("expand conv")?;
    if let Some(name) = &spec.multipool {
        let pool = info.multipools.iter().find(|m| &m.name == name).ok_or_else(|| format!("no MultiPool `{name}`"))?;
        return extract_gated_multipool(g, shapes, spec, &expand, pool);
    }
    let spatial_out = g.through_relu(expand.input(), "between the spatial and expand convs")?;
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
    GatedBlock::new(&weights, (h, w)).map_err(|e| e.to_string())
}

/// The reduce conv (1×1, reading the block input, followed by Relu producing `reduce_out`) and
/// the gate (a 1-channel 1×1 conv of the block input) of a gated block.
fn reduce_and_gate<'a>(
    g: &OnnxIndex<'a>,
    spec: &GatedBlockSpec,
    reduce_out: &str,
    relu_role: &str,
) -> Result<(ConvNode<'a>, ConvNode<'a>), String> {
    let reduce_in = g.through_relu(reduce_out, relu_role)?;
    let reduce = g.conv(reduce_in, "reduce conv")?;
    reduce.check_pointwise("reduce conv")?;
    if reduce.input() != spec.input {
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
) -> Result<GatedBlock, String> {
    if expand.input() != pool.output {
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
    GatedBlock::with_multipool(&weights, &pool_weights, (h, w)).map_err(|e| e.to_string())
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
        let relu = g.producer(t)?.op_type == "Relu";
        let conv_out = if relu { g.through_relu(t, "after a branch conv")? } else { t.as_str() };
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
