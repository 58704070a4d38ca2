//! The PAG ONNX contract (models/CONTRACT.md): metadata keys and the graph structure they name.
use std::collections::HashMap;

use serde::Deserialize;
use tract_onnx::pb::{ModelProto, NodeProto};

use super::index::OnnxIndex;
use crate::error::{contract, PagError, Result};

/// The contract version this runtime writes about and reads (it also reads every older one).
pub const CONTRACT_VERSION: &str = "2";
/// Every contract version this runtime reads.
pub const CONTRACT_VERSIONS: [&str; 2] = ["1", "2"];
/// The MultiPool dilation set of the paper (0 = copy the input).
pub const DILATIONS: [u32; 7] = [0, 1, 2, 4, 6, 8, 10];

/// How the model wants its image: size, layout and normalisation `(x * scale - mean) / std`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct InputSpec {
    pub name: String,
    pub height: usize,
    pub width: usize,
    pub layout: String,
    pub color: String,
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// One gated residual block: `output = input + mask(score) * branch`, names are ONNX tensors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct GatedBlockSpec {
    pub name: String,
    pub input: String,
    pub score: String,
    pub mask: String,
    pub branch: String,
    pub output: String,
    /// Contract version 2: the name of the MultiPool module (in `pag.multipools`) that is this
    /// block's spatial stage, when the branch is `1×1 → Relu → MultiPool → 1×1`.
    #[serde(default)]
    pub multipool: Option<String>,
}

/// Contract version 2: how the camera the model was trained for is carried (metric depth is
/// only right for cameras mounted alike). Heights in metres, angles in degrees.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
pub struct CameraMountSpec {
    pub height_m: f32,
    pub height_play_m: f32,
    pub pitch_deg: f32,
    pub pitch_play_deg: f32,
    pub roll_play_deg: f32,
}

/// One MultiPool module: `output = Σ_i onehot(argmax selector)_i * branches[i]`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct MultiPoolSpec {
    pub name: String,
    pub input: String,
    pub selector: String,
    pub dilations: Vec<u32>,
    pub branches: Vec<String>,
    pub output: String,
}

/// What a PAG model declares about itself, validated against its graph.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub class_names: Vec<String>,
    pub palette: Vec<[u8; 3]>,
    pub input: InputSpec,
    /// Name of the ρ input (float [1]); `None` for models without gates.
    pub rho_input: Option<String>,
    pub gated_blocks: Vec<GatedBlockSpec>,
    pub multipools: Vec<MultiPoolSpec>,
    /// Horizontal field of view of the camera the model was trained for, if declared.
    pub camera_hfov_deg: Option<f32>,
    /// The camera mount the model was trained for (`pag.camera_mount`, version 2), if declared.
    pub camera_mount: Option<CameraMountSpec>,
    /// The contract version the model declares.
    pub contract_version: u32,
    /// All `pag.*` metadata, verbatim.
    pub metadata: HashMap<String, String>,
}

/// The three outputs every PAG model of this contract has.
pub const OUTPUT_SEG: &str = "seg_logits";
pub const OUTPUT_DEPTH: &str = "depth";
pub const OUTPUT_NORMALS: &str = "normals";

fn json<'a, T: Deserialize<'a>>(meta: &'a HashMap<String, String>, key: &str) -> Result<T> {
    let raw = meta.get(key).ok_or_else(|| contract(format!("metadata `{key}`"), "missing"))?;
    serde_json::from_str(raw).map_err(|e| contract(format!("metadata `{key}`"), format!("bad JSON: {e}")))
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.ints.clone())
}

impl ModelInfo {
    /// Read the `pag.*` metadata of `proto` and check that the graph has the structure it names.
    pub fn from_proto(proto: &ModelProto) -> Result<ModelInfo> {
        let metadata: HashMap<String, String> = proto
            .metadata_props
            .iter()
            .filter(|p| p.key.starts_with("pag."))
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect();
        match metadata.get("pag.contract_version") {
            None => {
                return Err(contract(
                    "metadata",
                    "no `pag.contract_version`: this is not a PAG model (use `pag run --input` to run arbitrary ONNX)",
                ))
            }
            Some(v) if !CONTRACT_VERSIONS.contains(&v.as_str()) => {
                return Err(contract(
                    "metadata `pag.contract_version`",
                    format!(
                        "version {v} is not supported (this runtime reads versions {})",
                        CONTRACT_VERSIONS.join(", ")
                    ),
                ))
            }
            Some(_) => {}
        }
        let contract_version: u32 = metadata["pag.contract_version"].parse().expect("one of CONTRACT_VERSIONS");
        let graph = proto.graph.as_ref().ok_or_else(|| contract("model", "no graph"))?;
        let g = OnnxIndex::new(graph);
        let class_names: Vec<String> = json(&metadata, "pag.class_names")?;
        let palette: Vec<[u8; 3]> = json(&metadata, "pag.palette")?;
        if class_names.is_empty() || class_names.len() > 256 {
            return Err(contract(
                "metadata `pag.class_names`",
                format!("{} classes (1 to 256 allowed)", class_names.len()),
            ));
        }
        if palette.len() != class_names.len() {
            return Err(contract(
                "metadata `pag.palette`",
                format!("{} colours for {} classes", palette.len(), class_names.len()),
            ));
        }
        let input: InputSpec = json(&metadata, "pag.input")?;
        if input.layout != "NCHW" || input.color != "RGB" {
            return Err(contract(
                "metadata `pag.input`",
                format!("layout {} / colour {} (only NCHW RGB)", input.layout, input.color),
            ));
        }
        if input.height == 0 || input.width == 0 || input.height > 8192 || input.width > 8192 {
            return Err(contract(
                "metadata `pag.input`",
                format!("size {}x{} out of range", input.width, input.height),
            ));
        }
        if input.std.iter().any(|s| !s.is_finite() || *s <= 0.0) {
            return Err(contract("metadata `pag.input`", "std must be > 0"));
        }
        if !g.inputs.contains(&input.name.as_str()) {
            return Err(contract(format!("input `{}`", input.name), "declared in metadata but not a graph input"));
        }
        let rho_input = metadata.get("pag.rho_input").filter(|s| !s.is_empty()).cloned();
        if let Some(r) = &rho_input {
            if !g.inputs.contains(&r.as_str()) {
                return Err(contract(format!("input `{r}`"), "`pag.rho_input` names no graph input"));
            }
        }
        for out in [OUTPUT_SEG, OUTPUT_DEPTH, OUTPUT_NORMALS] {
            if !graph.output.iter().any(|o| o.name == out) {
                return Err(contract(format!("output `{out}`"), "missing graph output"));
            }
        }
        let gated_blocks: Vec<GatedBlockSpec> = json(&metadata, "pag.gated_blocks")?;
        let multipools: Vec<MultiPoolSpec> = json(&metadata, "pag.multipools")?;
        if !gated_blocks.is_empty() && rho_input.is_none() {
            return Err(contract("metadata `pag.rho_input`", "gated blocks need a ρ input"));
        }
        for b in &gated_blocks {
            validate_gated(&g, b)?;
            if let Some(m) = &b.multipool {
                let at = format!("gated block `{}`", b.name);
                if contract_version < 2 {
                    return Err(contract(at, "a gated MultiPool block needs contract version 2"));
                }
                if !multipools.iter().any(|p| &p.name == m) {
                    return Err(contract(at, format!("its MultiPool `{m}` is not in `pag.multipools`")));
                }
            }
        }
        for m in &multipools {
            validate_multipool(&g, m)?;
        }
        let camera_hfov_deg = metadata.get("pag.camera_hfov_deg").and_then(|s| s.parse().ok());
        let camera_mount = match metadata.get("pag.camera_mount") {
            None => None,
            Some(_) => {
                let m: CameraMountSpec = json(&metadata, "pag.camera_mount")?;
                let all = [m.height_m, m.height_play_m, m.pitch_deg, m.pitch_play_deg, m.roll_play_deg];
                if all.iter().any(|v| !v.is_finite()) || m.height_m <= 0.0 {
                    return Err(contract("metadata `pag.camera_mount`", "values must be finite and the height > 0"));
                }
                Some(m)
            }
        };
        Ok(ModelInfo {
            class_names,
            palette,
            input,
            rho_input,
            gated_blocks,
            multipools,
            camera_hfov_deg,
            camera_mount,
            contract_version,
            metadata,
        })
    }
}

fn validate_gated(g: &OnnxIndex, b: &GatedBlockSpec) -> Result<()> {
    let at = format!("gated block `{}`", b.name);
    for (role, t) in
        [("input", &b.input), ("score", &b.score), ("mask", &b.mask), ("branch", &b.branch), ("output", &b.output)]
    {
        if !g.exists(t) {
            return Err(contract(&at, format!("{role} tensor `{t}` does not exist")));
        }
    }
    let add = g.node(&b.output, &at)?;
    if add.op_type != "Add" {
        return Err(contract(
            format!("{at}, node `{}`", add.name),
            format!("output must come from Add, found {}", add.op_type),
        ));
    }
    let mul_t =
        add.input.iter().find(|i| **i != b.input).ok_or_else(|| contract(&at, "Add does not read the block input"))?;
    if !add.input.contains(&b.input) {
        return Err(contract(
            format!("{at}, node `{}`", add.name),
            format!("the residual Add does not read the block input `{}`", b.input),
        ));
    }
    let mul = g.node(mul_t, &at)?;
    if mul.op_type != "Mul" || !mul.input.contains(&b.mask) || !mul.input.contains(&b.branch) {
        return Err(contract(format!("{at}, node `{}`", mul.name), "the residual Add must read Mul(mask, branch)"));
    }
    let conv = g.node(&b.score, &at)?;
    if conv.op_type != "Conv" || conv.input.first() != Some(&b.input) {
        return Err(contract(
            format!("{at}, node `{}`", conv.name),
            "the gate score must be a Conv of the block input",
        ));
    }
    let w = g
        .conv_weight(conv)
        .ok_or_else(|| contract(format!("{at}, node `{}`", conv.name), "gate weights must be an initializer"))?;
    if w.dims.first() != Some(&1) {
        let found = w.dims.first().map_or("none".to_string(), |d| d.to_string());
        return Err(contract(
            format!("{at}, node `{}`", conv.name),
            format!("the gate must have 1 output channel, has {found}"),
        ));
    }
    Ok(())
}

fn validate_multipool(g: &OnnxIndex, m: &MultiPoolSpec) -> Result<()> {
    let at = format!("MultiPool `{}`", m.name);
    if m.dilations.len() != m.branches.len() || m.dilations.is_empty() {
        return Err(contract(&at, format!("{} dilations for {} branches", m.dilations.len(), m.branches.len())));
    }
    for t in [&m.input, &m.selector, &m.output].into_iter().chain(m.branches.iter()) {
        if !g.exists(t) {
            return Err(contract(&at, format!("tensor `{t}` does not exist")));
        }
    }
    let sel = g.node(&m.selector, &at)?;
    let sel_w = g.conv_weight(sel);
    if sel.op_type != "Conv" || sel_w.map(|w| w.dims.first().copied()) != Some(Some(m.branches.len() as i64)) {
        return Err(contract(
            format!("{at}, node `{}`", sel.name),
            format!("the selector must be a Conv with {} output channels", m.branches.len()),
        ));
    }
    if !g.consumers.get(m.selector.as_str()).is_some_and(|c| c.iter().any(|n| n.op_type == "ArgMax")) {
        return Err(contract(&at, "the selector must feed an ArgMax (one branch per pixel)"));
    }
    for (d, t) in m.dilations.iter().zip(&m.branches) {
        if *d == 0 {
            if *t != m.input {
                return Err(contract(&at, format!("dilation 0 must copy the input `{}`, names `{t}`", m.input)));
            }
            continue;
        }
        // The branch is a 3×3 Conv (possibly followed by Relu, possibly quantized: a Q/DQ pair
        // after it) on the module input.
        let mut n = g.node(g.skip_qdq(t).map_err(|reason| contract(&at, reason))?, &at)?;
        if n.op_type == "Relu" {
            n = g.node(&n.input[0], &at)?;
        }
        let dil = attr_ints(n, "dilations").unwrap_or_else(|| vec![1, 1]);
        if n.op_type != "Conv" || n.input.first() != Some(&m.input) || dil != vec![*d as i64, *d as i64] {
            return Err(contract(
                format!("{at}, node `{}`", n.name),
                format!(
                    "branch must be a Conv of the input with dilation {d}, found {} with dilations {dil:?}",
                    n.op_type
                ),
            ));
        }
    }
    Ok(())
}

/// Fail with the first node whose operator tract cannot run.
pub fn check_operators(proto: &ModelProto, known: impl Fn(&str) -> bool) -> Result<()> {
    let graph =
        proto.graph.as_ref().ok_or_else(|| PagError::NotOnnx { what: "model".into(), reason: "no graph".into() })?;
    for n in &graph.node {
        if !known(&n.op_type) {
            return Err(PagError::UnsupportedOperator { op: n.op_type.clone(), node: n.name.clone() });
        }
    }
    Ok(())
}
