//! The QDQ rewrite: which convs are quantized, their activation parameters, and the ONNX graph
//! with QuantizeLinear / DequantizeLinear pairs written exactly as `models/CONTRACT.md`
//! ("Quantized models (QDQ)") specifies.
use std::collections::{BTreeMap, HashMap, HashSet};

use tract_onnx::pb::{self, GraphProto, ModelProto, NodeProto, TensorProto};

use super::{Method, StatsCache};
use crate::CalibrationError;

fn err(reason: String) -> CalibrationError {
    CalibrationError::Quantize(reason)
}

/// The tensor a conv's output is quantized at: its Relu's output when a Relu is its only
/// consumer, else its own output.
pub fn conv_output_tensor(g: &GraphProto, conv: &NodeProto) -> Option<String> {
    let out = conv.output.first()?;
    let consumers: Vec<&NodeProto> = g.node.iter().filter(|n| n.input.iter().any(|i| i == out)).collect();
    let is_output = g.output.iter().any(|o| &o.name == out);
    match consumers.as_slice() {
        [relu] if relu.op_type == "Relu" && !is_output => relu.output.first().cloned(),
        _ => Some(out.clone()),
    }
}

/// One quantized conv.
#[derive(Debug, Clone)]
pub struct QuantConv {
    pub node_index: usize,
    pub node_name: String,
    /// Its data input (activation tensor).
    pub input: String,
    /// Its quantized output tensor (after the Relu, see [`conv_output_tensor`]).
    pub output: String,
    pub weight: String,
    pub bias: Option<String>,
}

/// Which convs and tensors a model's QDQ version quantizes.
#[derive(Debug, Clone)]
pub struct QdqPlan {
    pub quantized: Vec<QuantConv>,
    /// Node names of the convs kept in float.
    pub kept_float: Vec<String>,
    /// Quantized activation tensors in graph order; `true` when a quantized conv produces it
    /// (every consumer then reads its dequantized version).
    pub tensors: Vec<(String, bool)>,
    /// Tensors sharing one set of parameters (a MultiPool's input, conv branches and output).
    pub groups: Vec<Vec<String>>,
}

/// One activation tensor's u8 parameters and the range they came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationParams {
    pub lo: f32,
    pub hi: f32,
    pub scale: f32,
    pub zero_point: u8,
}

impl ActivationParams {
    /// `rmin = min(0, lo)`, `rmax = max(0, hi)`, `scale = (rmax − rmin) / 255` (1 if 0),
    /// `zero_point = clamp(round_half_even(−rmin / scale), 0, 255)`.
    pub fn from_range(lo: f32, hi: f32) -> ActivationParams {
        let (rmin, rmax) = (lo.min(0.0), hi.max(0.0));
        let mut scale = (rmax - rmin) / 255.0;
        if scale == 0.0 || !scale.is_finite() {
            scale = 1.0;
        }
        let zero_point = (-rmin / scale).round_ties_even().clamp(0.0, 255.0) as u8;
        ActivationParams { lo, hi, scale, zero_point }
    }
}

impl QdqPlan {
    /// Quantize every `Conv` whose node name contains none of `keep_float`.
    pub fn new(
        proto: &ModelProto,
        info: &pag_runtime::ModelInfo,
        keep_float: &[String],
    ) -> Result<QdqPlan, CalibrationError> {
        let g = proto.graph.as_ref().ok_or_else(|| err("the model has no graph".into()))?;
        let inits: HashMap<&str, &TensorProto> = g.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let (mut quantized, mut kept_float) = (Vec::new(), Vec::new());
        for (i, n) in g.node.iter().enumerate().filter(|(_, n)| n.op_type == "Conv") {
            if keep_float.iter().any(|k| !k.is_empty() && n.name.contains(k.as_str())) {
                kept_float.push(n.name.clone());
                continue;
            }
            let at = |what: &str| err(format!("conv `{}`: {what}; keep it in float with --keep-float", n.name));
            let weight = n
                .input
                .get(1)
                .filter(|w| inits.contains_key(w.as_str()))
                .ok_or_else(|| at("its weight is not an initializer"))?;
            if inits[weight.as_str()].dims.len() != 4 {
                return Err(at("its weight is not 4-D"));
            }
            let bias = n.input.get(2).filter(|b| !b.is_empty()).cloned();
            if bias.as_ref().is_some_and(|b| !inits.contains_key(b.as_str())) {
                return Err(at("its bias is not an initializer"));
            }
            quantized.push(QuantConv {
                node_index: i,
                node_name: n.name.clone(),
                input: n.input[0].clone(),
                output: conv_output_tensor(g, n).ok_or_else(|| at("it has no output"))?,
                weight: weight.clone(),
                bias,
            });
        }
        let owned: HashSet<&str> = quantized.iter().map(|c| c.output.as_str()).collect();
        let mut wanted: HashSet<&str> = owned.clone();
        wanted.extend(quantized.iter().map(|c| c.input.as_str()));
        // Graph order: graph inputs, then node outputs as produced.
        let order = g.input.iter().map(|i| &i.name).chain(g.node.iter().flat_map(|n| n.output.iter()));
        let mut tensors: Vec<(String, bool)> = Vec::new();
        for t in order {
            if wanted.remove(t.as_str()) {
                tensors.push((t.clone(), owned.contains(t.as_str())));
            }
        }
        if let Some(t) = wanted.iter().next() {
            return Err(err(format!("tensor `{t}` is read by a quantized conv but produced by no node or input")));
        }
        let is_quantized: HashSet<&str> = tensors.iter().map(|t| t.0.as_str()).collect();
        let mut groups = Vec::new();
        for mp in &info.multipools {
            let mut members: Vec<String> = Vec::new();
            for t in std::iter::once(&mp.input).chain(&mp.branches).chain(std::iter::once(&mp.output)) {
                if is_quantized.contains(t.as_str()) && !members.contains(t) {
                    members.push(t.clone());
                }
            }
            if members.len() > 1 {
                groups.push(members);
            }
        }
        Ok(QdqPlan { quantized, kept_float, tensors, groups })
    }

    /// Parameters of every quantized tensor from the cached statistics by `method`; the members
    /// of a group share the union of their ranges.
    pub fn activation_params(
        &self,
        cache: &StatsCache,
        method: Method,
    ) -> Result<BTreeMap<String, ActivationParams>, CalibrationError> {
        let range = |t: &str| {
            cache.tensor(t).map(|s| s.range(method)).ok_or_else(|| {
                err(format!("the calibration cache has no statistics for tensor `{t}` (delete it to recompute)"))
            })
        };
        let mut out = BTreeMap::new();
        for (t, _) in &self.tensors {
            let (lo, hi) = range(t)?;
            out.insert(t.clone(), ActivationParams::from_range(lo, hi));
        }
        for group in &self.groups {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for t in group {
                let (a, b) = range(t)?;
                lo = lo.min(a);
                hi = hi.max(b);
            }
            for t in group {
                out.insert(t.clone(), ActivationParams::from_range(lo, hi));
            }
        }
        Ok(out)
    }
}

/// `T_quantized`, `T_dequantized`, `T_scale`, `T_zero_point`.
pub fn qname(t: &str, suffix: &str) -> String {
    format!("{t}_{suffix}")
}

fn raw_tensor(name: String, dims: Vec<i64>, dt: pb::tensor_proto::DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto { name, dims, data_type: dt as i32, raw_data: raw, ..Default::default() }
}

fn f32_tensor(name: String, dims: Vec<i64>, v: &[f32]) -> TensorProto {
    raw_tensor(name, dims, pb::tensor_proto::DataType::Float, v.iter().flat_map(|x| x.to_le_bytes()).collect())
}

fn node(name: String, op: &str, inputs: Vec<String>, output: String, axis: Option<i64>) -> NodeProto {
    let attribute = axis
        .map(|a| pb::AttributeProto {
            name: "axis".into(),
            r#type: pb::attribute_proto::AttributeType::Int as i32,
            i: a,
            ..Default::default()
        })
        .into_iter()
        .collect();
    NodeProto { name, op_type: op.into(), input: inputs, output: vec![output], attribute, ..Default::default() }
}

/// The float values of a weight or bias initializer.
fn floats(t: &TensorProto) -> Result<Vec<f32>, CalibrationError> {
    if t.data_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(err(format!("initializer `{}` is not float32", t.name)));
    }
    let n: i64 = t.dims.iter().product();
    let v: Vec<f32> = if !t.raw_data.is_empty() {
        t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        t.float_data.clone()
    };
    if v.len() as i64 != n {
        return Err(err(format!(
            "initializer `{}` has {} values for dims {:?} (external data?)",
            t.name,
            v.len(),
            t.dims
        )));
    }
    Ok(v)
}

/// Per-output-channel symmetric int8 with `limit` = 127 (8-bit weights) or 63 (7-bit, "reduce
/// range"): `s[o] = max|W[o]| / limit` (1 if 0), `q = clamp(round_half_even(W / s[o]), −limit,
/// limit)`.
pub fn quantize_weights(w: &[f32], out_channels: usize, limit: i8) -> (Vec<i8>, Vec<f32>) {
    let limit = limit as f32;
    let per = w.len() / out_channels.max(1);
    let mut q = Vec::with_capacity(w.len());
    let mut scales = Vec::with_capacity(out_channels);
    for row in w.chunks(per.max(1)) {
        let mut s = row.iter().fold(0f32, |m, x| m.max(x.abs())) / limit;
        if s == 0.0 || !s.is_finite() {
            s = 1.0;
        }
        scales.push(s);
        q.extend(row.iter().map(|x| (x / s).round_ties_even().clamp(-limit, limit) as i8));
    }
    (q, scales)
}

/// The QDQ version of `proto` (see the module doc); `quantization` is the `pag.quantization`
/// metadata value.
pub fn quantize_model(
    proto: &ModelProto,
    plan: &QdqPlan,
    params: &BTreeMap<String, ActivationParams>,
    quantization: &str,
    weight_limit: i8,
) -> Result<ModelProto, CalibrationError> {
    use pb::tensor_proto::DataType;
    let mut out = proto.clone();
    let g = out.graph.as_mut().ok_or_else(|| err("the model has no graph".into()))?;
    let opset =
        proto.opset_import.iter().find(|o| o.domain.is_empty() || o.domain == "ai.onnx").map_or(0, |o| o.version);
    if opset < 13 {
        return Err(err(format!(
            "the model uses opset {opset}; per-channel DequantizeLinear needs opset ≥ 13 (17 expected)"
        )));
    }
    let owned: HashSet<&str> = plan.tensors.iter().filter(|t| t.1).map(|t| t.0.as_str()).collect();
    let param = |t: &str| params.get(t).copied().ok_or_else(|| err(format!("no activation parameters for `{t}`")));
    let old_nodes = std::mem::take(&mut g.node);
    let inits: HashMap<String, TensorProto> = g.initializer.iter().map(|t| (t.name.clone(), t.clone())).collect();
    let mut nodes: Vec<NodeProto> = Vec::new();
    let mut new_inits: Vec<TensorProto> = Vec::new();
    let qdq = |t: &str, nodes: &mut Vec<NodeProto>| {
        let (s, z) = (qname(t, "scale"), qname(t, "zero_point"));
        nodes.push(node(
            qname(t, "QuantizeLinear"),
            "QuantizeLinear",
            vec![t.into(), s.clone(), z.clone()],
            qname(t, "quantized"),
            None,
        ));
        nodes.push(node(
            qname(t, "DequantizeLinear"),
            "DequantizeLinear",
            vec![qname(t, "quantized"), s, z],
            qname(t, "dequantized"),
            None,
        ));
    };
    // Weights and biases: constant DequantizeLinear nodes first.
    let mut replaced_inits: HashSet<String> = HashSet::new();
    for c in &plan.quantized {
        let wt = &inits[&c.weight];
        let o = wt.dims[0] as usize;
        let (wq, sw) = quantize_weights(&floats(wt)?, o, weight_limit);
        new_inits.push(raw_tensor(
            qname(&c.weight, "quantized"),
            wt.dims.clone(),
            DataType::Int8,
            wq.iter().map(|&v| v as u8).collect(),
        ));
        new_inits.push(f32_tensor(qname(&c.weight, "scale"), vec![o as i64], &sw));
        new_inits.push(raw_tensor(qname(&c.weight, "zero_point"), vec![o as i64], DataType::Int8, vec![0; o]));
        nodes.push(node(
            qname(&c.weight, "DequantizeLinear"),
            "DequantizeLinear",
            vec![qname(&c.weight, "quantized"), qname(&c.weight, "scale"), qname(&c.weight, "zero_point")],
            qname(&c.weight, "dequantized"),
            Some(0),
        ));
        replaced_inits.insert(c.weight.clone());
        if let Some(b) = &c.bias {
            let bv = floats(&inits[b])?;
            if bv.len() != o {
                return Err(err(format!(
                    "conv `{}`: bias has {} values for {o} output channels",
                    c.node_name,
                    bv.len()
                )));
            }
            let sx = param(&c.input)?.scale;
            let bs: Vec<f32> = sw.iter().map(|s| sx * s).collect();
            let bq: Vec<i32> = bv
                .iter()
                .zip(&bs)
                .map(|(b, s)| (*b as f64 / *s as f64).round_ties_even().clamp(i32::MIN as f64, i32::MAX as f64) as i32)
                .collect();
            new_inits.push(raw_tensor(
                qname(b, "quantized"),
                vec![o as i64],
                DataType::Int32,
                bq.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ));
            new_inits.push(f32_tensor(qname(b, "scale"), vec![o as i64], &bs));
            new_inits.push(raw_tensor(qname(b, "zero_point"), vec![o as i64], DataType::Int32, vec![0; 4 * o]));
            nodes.push(node(
                qname(b, "DequantizeLinear"),
                "DequantizeLinear",
                vec![qname(b, "quantized"), qname(b, "scale"), qname(b, "zero_point")],
                qname(b, "dequantized"),
                Some(0),
            ));
            replaced_inits.insert(b.clone());
        }
    }
    // Activation parameters.
    for (t, _) in &plan.tensors {
        let p = param(t)?;
        new_inits.push(f32_tensor(qname(t, "scale"), vec![], &[p.scale]));
        new_inits.push(raw_tensor(qname(t, "zero_point"), vec![], DataType::Uint8, vec![p.zero_point]));
    }
    let quantized: HashSet<&str> = plan.tensors.iter().map(|t| t.0.as_str()).collect();
    for i in &g.input {
        if quantized.contains(i.name.as_str()) {
            qdq(&i.name, &mut nodes);
        }
    }
    let by_node: HashMap<usize, &QuantConv> = plan.quantized.iter().map(|c| (c.node_index, c)).collect();
    for (ix, n) in old_nodes.iter().enumerate() {
        let mut n2 = n.clone();
        let conv = by_node.get(&ix);
        for (k, inp) in n2.input.iter_mut().enumerate() {
            if inp.is_empty() {
                continue;
            }
            match (conv, k) {
                (Some(_), 0..=2) => *inp = qname(inp, "dequantized"),
                _ if owned.contains(inp.as_str()) => *inp = qname(inp, "dequantized"),
                _ => {}
            }
        }
        nodes.push(n2);
        for o in &n.output {
            if quantized.contains(o.as_str()) {
                qdq(o, &mut nodes);
            }
        }
    }
    for o in g.output.iter_mut() {
        if owned.contains(o.name.as_str()) {
            o.name = qname(&o.name, "dequantized");
        }
    }
    // Float weights no other node reads are dropped.
    let still_read: HashSet<&str> = nodes.iter().flat_map(|n| n.input.iter().map(|s| s.as_str())).collect();
    let dropped: HashSet<String> = replaced_inits.into_iter().filter(|t| !still_read.contains(t.as_str())).collect();
    g.initializer.retain(|t| !dropped.contains(&t.name));
    g.input.retain(|i| !dropped.contains(&i.name));
    g.initializer.extend(new_inits);
    g.node = nodes;
    // Metadata: names of tensors that are now read dequantized.
    let rename = |v: &mut serde_json::Value| rename_tensors(v, &owned);
    for p in out.metadata_props.iter_mut() {
        if p.key == "pag.gated_blocks" || p.key == "pag.multipools" {
            let mut v: serde_json::Value =
                serde_json::from_str(&p.value).map_err(|e| err(format!("metadata `{}`: {e}", p.key)))?;
            rename(&mut v);
            p.value = v.to_string();
        }
    }
    out.metadata_props.retain(|p| p.key != "pag.quantization");
    out.metadata_props.push(pb::StringStringEntryProto { key: "pag.quantization".into(), value: quantization.into() });
    if out.ir_version > 8 {
        out.ir_version = 8;
    }
    Ok(out)
}

fn rename_tensors(v: &mut serde_json::Value, owned: &HashSet<&str>) {
    match v {
        serde_json::Value::String(s) if owned.contains(s.as_str()) => *s = qname(s, "dequantized"),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rename_tensors(x, owned)),
        serde_json::Value::Object(o) => o.iter_mut().for_each(|(_, x)| rename_tensors(x, owned)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_parameters_follow_the_formula() {
        let p = ActivationParams::from_range(0.5, 5.1);
        assert_eq!((p.scale, p.zero_point), (5.1 / 255.0, 0), "rmin is min(0, lo)");
        let p = ActivationParams::from_range(-1.0, 1.55);
        assert_eq!(p.scale, 2.55 / 255.0);
        assert_eq!(p.zero_point, (1.0f32 / p.scale).round_ties_even() as u8);
        assert_eq!(ActivationParams::from_range(0.0, 0.0).scale, 1.0);
        // Half to even: −rmin / scale = 2.5 exactly → 2, not 3.
        let p = ActivationParams::from_range(-2.5, 252.5);
        assert_eq!((p.scale, p.zero_point), (1.0, 2));
        assert_eq!(ActivationParams::from_range(-3.0, -1.0).zero_point, 255);
    }

    #[test]
    fn weights_are_symmetric_per_channel_rounded_half_to_even_and_never_minus_128() {
        // Channel 0: max 127 → scale 1, 2.5 → 2, −3.5 → −4; channel 1 all zero → scale 1.
        let (q, s) = quantize_weights(&[127.0, 2.5, -3.5, -127.0, 0.0, 0.0, 0.0, 0.0], 2, 127);
        assert_eq!(s, [1.0, 1.0]);
        assert_eq!(q, [127, 2, -4, -127, 0, 0, 0, 0]);
        let (q, s) = quantize_weights(&[-0.3, 0.1, 0.2, 0.05], 1, 127);
        assert_eq!(s, [0.3 / 127.0]);
        assert_eq!(q[0], -127);
        assert!(q.iter().all(|&v| v != i8::MIN));
    }

    #[test]
    fn reduced_range_weights_use_seven_bits() {
        // Max 63 → scale 1; 2.5 → 2, −3.5 → −4, −63 stays; every value within ±63.
        let (q, s) = quantize_weights(&[63.0, 2.5, -3.5, -63.0], 1, 63);
        assert_eq!((q, s), (vec![63, 2, -4, -63], vec![1.0]));
        let (q, s) = quantize_weights(&[-0.3, 0.1, 0.2, 0.05, 9.0, -1.0, 0.5, 0.25], 2, 63);
        assert_eq!(s, [0.3 / 63.0, 9.0 / 63.0]);
        assert!(q.iter().all(|&v| (-63..=63).contains(&v)) && q[0] == -63 && q[4] == 63);
    }
}
