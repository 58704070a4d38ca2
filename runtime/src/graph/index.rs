//! The one index of an ONNX graph that contract validation and extraction share: the producer
//! and consumers of each tensor, the initializers, the graph inputs, and Conv nodes with their
//! weights and attributes. Extraction failures are plain reason strings.
use std::collections::HashMap;

use tract_onnx::pb::{self, NodeProto};

use crate::error::{contract, Result as PagResult};

/// The producer and consumers of every tensor, the initializers and inputs of one ONNX graph.
pub struct OnnxIndex<'a> {
    order: Vec<&'a NodeProto>,
    producer: HashMap<&'a str, &'a NodeProto>,
    pub(super) consumers: HashMap<&'a str, Vec<&'a NodeProto>>,
    initializers: HashMap<&'a str, &'a pb::TensorProto>,
    pub(super) inputs: Vec<&'a str>,
}

/// A Conv node with its weights (ONNX layout `[out, in, kh, kw]`), bias and attributes.
pub struct ConvNode<'a> {
    /// The node itself.
    pub node: &'a NodeProto,
    /// Weight dims `[out, in, kh, kw]`.
    pub dims: [usize; 4],
    /// Weights, `out · in · kh · kw` floats.
    pub weights: Vec<f32>,
    /// Bias, `out` floats (zeros when the node has none).
    pub bias: Vec<f32>,
    /// `strides` attribute (default `[1, 1]`).
    pub strides: Vec<i64>,
    /// `dilations` attribute (default `[1, 1]`).
    pub dilations: Vec<i64>,
    /// `pads` attribute (default `[0, 0, 0, 0]`).
    pub pads: Vec<i64>,
    /// `group` attribute (default 1).
    pub group: i64,
    /// The int8 weights and biases of a QDQ conv (weights and bias read through
    /// DequantizeLinear); `weights` and `bias` above then hold their dequantized values.
    pub quant: Option<ConvQuant>,
}

/// The stored int8 form of a QDQ conv's weights (models/CONTRACT.md, "Quantized models").
pub struct ConvQuant {
    /// `[out, in, kh, kw]` int8, symmetric.
    pub weights: Vec<i8>,
    /// Per output channel.
    pub scales: Vec<f32>,
    /// int32 in units of `input scale · scales[o]` (empty without a bias).
    pub bias: Vec<i32>,
    /// The scale of each bias value (`[out]`), to check against `input scale · scales[o]`.
    pub bias_scales: Vec<f32>,
}

/// What a `DequantizeLinear(QuantizeLinear(source))` pair does to a tensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QdqParams {
    pub scale: f32,
    pub zero_point: u8,
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// Reads a float32 initializer (`float_data` or little-endian `raw_data`).
fn floats(t: &pb::TensorProto) -> Result<Vec<f32>, String> {
    if t.data_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(format!("initializer `{}` is not float32 (ONNX data type {})", t.name, t.data_type));
    }
    let len: usize = t.dims.iter().map(|&d| d.max(0) as usize).product();
    let data: Vec<f32> = if !t.raw_data.is_empty() {
        t.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        t.float_data.clone()
    };
    if data.len() != len {
        return Err(format!("initializer `{}` holds {} floats for dims {:?}", t.name, data.len(), t.dims));
    }
    Ok(data)
}

/// Reads an integer initializer of ONNX type `dt` (int8 = 3, uint8 = 2, int32 = 6) as i64.
fn ints(t: &pb::TensorProto, dt: i32) -> Result<Vec<i64>, String> {
    if t.data_type != dt {
        return Err(format!("initializer `{}` has ONNX data type {} (expected {dt})", t.name, t.data_type));
    }
    let len: usize = t.dims.iter().map(|&d| d.max(0) as usize).product();
    let data: Vec<i64> = if !t.raw_data.is_empty() {
        match dt {
            3 => t.raw_data.iter().map(|&b| b as i8 as i64).collect(),
            2 => t.raw_data.iter().map(|&b| b as i64).collect(),
            _ => t.raw_data.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64).collect(),
        }
    } else {
        t.int32_data.iter().map(|&v| v as i64).collect()
    };
    if data.len() != len {
        return Err(format!("initializer `{}` holds {} values for dims {:?}", t.name, data.len(), t.dims));
    }
    Ok(data)
}

const INT8: i32 = 3;
const UINT8: i32 = 2;
const INT32: i32 = 6;

impl<'a> OnnxIndex<'a> {
    /// Indexes `graph`.
    pub fn new(graph: &'a pb::GraphProto) -> Self {
        let mut producer = HashMap::new();
        let mut consumers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
        for n in &graph.node {
            for o in &n.output {
                producer.insert(o.as_str(), n);
            }
            for i in &n.input {
                consumers.entry(i.as_str()).or_default().push(n);
            }
        }
        let initializers = graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
        let inputs = graph.input.iter().map(|i| i.name.as_str()).collect();
        OnnxIndex { order: graph.node.iter().collect(), producer, consumers, initializers, inputs }
    }

    /// Whether `t` is produced by a node, a graph input or an initializer.
    pub fn exists(&self, t: &str) -> bool {
        self.producer.contains_key(t) || self.inputs.contains(&t) || self.initializers.contains_key(t)
    }

    /// The node producing `t`, or a contract error at `at`.
    pub fn node(&self, t: &str, at: &str) -> PagResult<&'a NodeProto> {
        self.producer.get(t).copied().ok_or_else(|| contract(at, format!("tensor `{t}` is not produced by any node")))
    }

    /// The weight initializer of a Conv node, if it has one.
    pub fn conv_weight(&self, conv: &NodeProto) -> Option<&'a pb::TensorProto> {
        conv.input.get(1).and_then(|w| self.initializers.get(w.as_str()).copied())
    }

    /// The node producing `tensor`, or why there is none.
    pub fn producer(&self, tensor: &str) -> Result<&'a NodeProto, String> {
        self.producer.get(tensor).copied().ok_or_else(|| format!("tensor `{tensor}` is not produced by any node"))
    }

    /// Follows a `Relu` producing `tensor` (the `role` names its place in errors) to its input.
    pub fn through_relu(&self, tensor: &str, role: &str) -> Result<&'a str, String> {
        let n = self.producer(tensor)?;
        if n.op_type != "Relu" {
            return Err(format!("branch has a {} {role} (expected Relu), node `{}`", n.op_type, n.name));
        }
        n.input.first().map(String::as_str).ok_or_else(|| format!("Relu `{}` has no input", n.name))
    }

    fn initializer(&self, name: &str, at: &str) -> Result<&'a pb::TensorProto, String> {
        self.initializers.get(name).copied().ok_or_else(|| format!("{at}: `{name}` is not an initializer"))
    }

    /// A DequantizeLinear node's `(values, scales, zero points)` initializers.
    fn dequantize_inputs(&self, dq: &'a NodeProto) -> Result<[&'a pb::TensorProto; 3], String> {
        let at = format!("DequantizeLinear `{}`", dq.name);
        let get = |i: usize| {
            let name = dq.input.get(i).filter(|n| !n.is_empty()).ok_or_else(|| format!("{at} lacks input {i}"))?;
            self.initializer(name, &at)
        };
        Ok([get(0)?, get(1)?, get(2)?])
    }

    /// If `tensor` is `DequantizeLinear(QuantizeLinear(source))` with one per-tensor u8 scale
    /// and zero point on both, `(source, params)`; `None` if it is not produced that way.
    pub fn qdq(&self, tensor: &str) -> Result<Option<(&'a str, QdqParams)>, String> {
        let Some(dq) = self.producer.get(tensor).copied().filter(|n| n.op_type == "DequantizeLinear") else {
            return Ok(None);
        };
        let q_out = dq.input.first().map(String::as_str).unwrap_or("");
        let q = self.producer(q_out)?;
        if q.op_type != "QuantizeLinear" {
            return Err(format!("DequantizeLinear `{}` reads a {} (expected QuantizeLinear)", dq.name, q.op_type));
        }
        let params = |n: &NodeProto| -> Result<QdqParams, String> {
            let at = format!("{} `{}`", n.op_type, n.name);
            let name = |i: usize| n.input.get(i).map(String::as_str).unwrap_or("");
            let scale = floats(self.initializer(name(1), &at)?)?;
            let zp =
                ints(self.initializer(name(2), &at)?, UINT8).map_err(|e| format!("{at}: {e} (activations are u8)"))?;
            if scale.len() != 1 || zp.len() != 1 {
                return Err(format!("{at} is not per-tensor ({} scales)", scale.len()));
            }
            if !(scale[0].is_finite() && scale[0] > 0.0) {
                return Err(format!("{at} has scale {}", scale[0]));
            }
            Ok(QdqParams { scale: scale[0], zero_point: zp[0] as u8 })
        };
        let (pq, pdq) = (params(q)?, params(dq)?);
        if pq != pdq {
            return Err(format!(
                "QuantizeLinear `{}` and DequantizeLinear `{}` differ: {pq:?} vs {pdq:?}",
                q.name, dq.name
            ));
        }
        let source = q.input.first().map(String::as_str).unwrap_or("");
        Ok(Some((source, pq)))
    }

    /// If `tensor`'s only consumer is a QuantizeLinear whose output only a DequantizeLinear reads
    /// (the pair a QDQ model puts after a quantized conv), that DequantizeLinear's output and the
    /// pair's parameters.
    pub fn qdq_after(&self, tensor: &str) -> Result<Option<(&'a str, QdqParams)>, String> {
        let Some([q]) = self.consumers.get(tensor).map(Vec::as_slice) else { return Ok(None) };
        if q.op_type != "QuantizeLinear" {
            return Ok(None);
        }
        let q_out = q.output.first().map(String::as_str).unwrap_or("");
        let Some([dq]) = self.consumers.get(q_out).map(Vec::as_slice) else { return Ok(None) };
        if dq.op_type != "DequantizeLinear" {
            return Ok(None);
        }
        let out = dq.output.first().map(String::as_str).unwrap_or("");
        Ok(self.qdq(out)?.map(|(_, p)| (out, p)))
    }

    /// Every Conv node, in graph order.
    pub fn convs(&self) -> impl Iterator<Item = &'a NodeProto> + '_ {
        self.order.iter().copied().filter(|n| n.op_type == "Conv")
    }

    /// `tensor`, or its source when it is a Q/DQ pair's output; why, when it is a pair pagrt
    /// cannot read (see [`OnnxIndex::qdq`]).
    pub fn skip_qdq<'t>(&self, tensor: &'t str) -> Result<&'t str, String>
    where
        'a: 't,
    {
        Ok(self.qdq(tensor)?.map_or(tensor, |(source, _)| source))
    }

    /// A QDQ conv's int8 weights and int32 bias, read through their DequantizeLinear nodes.
    fn conv_quant(&self, node: &'a NodeProto, at: &str) -> Result<(ConvQuant, Vec<i64>), String> {
        let w_dq = self.producer(&node.input[1])?;
        let [w, w_scale, w_zp] = self.dequantize_inputs(w_dq)?;
        let weights: Vec<i8> =
            ints(w, INT8).map_err(|e| format!("{at} weights: {e}"))?.into_iter().map(|v| v as i8).collect();
        let out = w.dims.first().copied().unwrap_or(0).max(0) as usize;
        let scales = floats(w_scale)?;
        let zps = ints(w_zp, INT8).map_err(|e| format!("{at} weight zero points: {e}"))?;
        if scales.len() != out || zps.iter().any(|&z| z != 0) {
            return Err(format!(
                "{at} weights must be per-output-channel symmetric ({} scales for {out} channels)",
                scales.len()
            ));
        }
        let axis = attr(w_dq, "axis").map_or(1, |a| a.i);
        if out > 1 && axis != 0 {
            return Err(format!("{at} weight DequantizeLinear has axis {axis} (expected 0)"));
        }
        let (bias, bias_scales) = match node.input.get(2).filter(|b| !b.is_empty()) {
            None => (vec![], vec![]),
            Some(b) => {
                let b_dq = self.producer(b)?;
                if b_dq.op_type != "DequantizeLinear" {
                    return Err(format!(
                        "{at} bias is a {} (a QDQ conv's bias is DequantizeLinear of int32)",
                        b_dq.op_type
                    ));
                }
                let [bq, bs, bz] = self.dequantize_inputs(b_dq)?;
                let bias: Vec<i32> =
                    ints(bq, INT32).map_err(|e| format!("{at} bias: {e}"))?.into_iter().map(|v| v as i32).collect();
                let zero = ints(bz, INT32).map_err(|e| format!("{at} bias zero points: {e}"))?;
                let bs = floats(bs)?;
                if bias.len() != out || bs.len() != out || zero.iter().any(|&z| z != 0) {
                    return Err(format!("{at} bias must be {out} int32 values with {out} scales and zero points 0"));
                }
                (bias, bs)
            }
        };
        let dims = w.dims.clone();
        Ok((ConvQuant { weights, scales, bias, bias_scales }, dims))
    }

    /// The Conv producing `tensor`; `role` names it in errors ("reduce conv", …).
    pub fn conv(&self, tensor: &str, role: &str) -> Result<ConvNode<'a>, String> {
        let node = self.producer(tensor)?;
        if node.op_type != "Conv" {
            return Err(format!("the {role} is a {} (expected Conv), node `{}`", node.op_type, node.name));
        }
        let at = format!("{role} `{}`", node.name);
        let w_name = node.input.get(1).ok_or_else(|| format!("{at} has no weight input"))?;
        let quantized = self.producer.get(w_name.as_str()).is_some_and(|n| n.op_type == "DequantizeLinear");
        let (w_dims, weights, bias, quant) = if quantized {
            let (q, w_dims) = self.conv_quant(node, &at)?;
            let taps = q.weights.len() / q.scales.len().max(1);
            let weights = q.weights.iter().enumerate().map(|(i, &v)| v as f32 * q.scales[i / taps.max(1)]).collect();
            let bias = if q.bias.is_empty() {
                vec![0.0; q.scales.len()]
            } else {
                q.bias.iter().zip(&q.bias_scales).map(|(&b, &s)| b as f32 * s).collect()
            };
            (w_dims, weights, bias, Some(q))
        } else {
            let w = self
                .initializers
                .get(w_name.as_str())
                .ok_or_else(|| format!("{at} weights `{w_name}` are not an initializer"))?;
            let out = w.dims.first().copied().unwrap_or(0).max(0) as usize;
            let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
                None => vec![0.0; out],
                Some(b) => {
                    let t = self
                        .initializers
                        .get(b.as_str())
                        .ok_or_else(|| format!("{at} bias `{b}` is not an initializer"))?;
                    floats(t)?
                }
            };
            (w.dims.clone(), floats(w)?, bias, None)
        };
        if w_dims.len() != 4 || w_dims.iter().any(|&d| d <= 0) {
            return Err(format!("{at} weights have dims {w_dims:?} (expected 4 positive dims)"));
        }
        let dims = [w_dims[0] as usize, w_dims[1] as usize, w_dims[2] as usize, w_dims[3] as usize];
        if bias.len() != dims[0] {
            return Err(format!("{at} has {} bias values for {} output channels", bias.len(), dims[0]));
        }
        if let Some(a) = attr(node, "auto_pad") {
            let mode = String::from_utf8_lossy(&a.s);
            if !(mode.is_empty() || mode == "NOTSET") {
                return Err(format!("{at} uses auto_pad {mode} (only explicit pads are supported)"));
            }
        }
        if let Some(k) = attr(node, "kernel_shape") {
            if k.ints != [dims[2] as i64, dims[3] as i64] {
                return Err(format!("{at} kernel_shape {:?} differs from its weights {dims:?}", k.ints));
            }
        }
        let ints = |name: &str, default: Vec<i64>| attr(node, name).map_or(default, |a| a.ints.clone());
        Ok(ConvNode {
            node,
            dims,
            weights,
            bias,
            strides: ints("strides", vec![1, 1]),
            dilations: ints("dilations", vec![1, 1]),
            pads: ints("pads", vec![0; 4]),
            group: attr(node, "group").map_or(1, |a| a.i),
            quant,
        })
    }
}

impl ConvNode<'_> {
    /// The node's data input (first input).
    pub fn input(&self) -> &str {
        self.node.input.first().map_or("", String::as_str)
    }

    fn at(&self, role: &str) -> String {
        format!("the {role} `{}`", self.node.name)
    }

    /// Checks stride 1 and group 1, which every sparse conv needs.
    fn check_plain(&self, role: &str) -> Result<(), String> {
        if self.strides.iter().any(|&s| s != 1) {
            return Err(format!("{} has stride {:?} (only 1 is supported)", self.at(role), self.strides));
        }
        if self.group != 1 {
            return Err(format!("{} has group {} (only 1 is supported)", self.at(role), self.group));
        }
        Ok(())
    }

    /// Checks a 1×1, stride 1, unpadded, ungrouped conv.
    pub fn check_pointwise(&self, role: &str) -> Result<(), String> {
        if self.dims[2] != 1 || self.dims[3] != 1 {
            return Err(format!("{} is {}×{} (expected 1×1)", self.at(role), self.dims[2], self.dims[3]));
        }
        self.check_plain(role)?;
        if self.pads.iter().any(|&p| p != 0) {
            return Err(format!("{} has pads {:?} (expected none)", self.at(role), self.pads));
        }
        Ok(())
    }

    /// Checks a square odd `k × k`, stride 1, ungrouped conv with equal dilations `d` and pads
    /// `d · (k / 2)` on every side; returns `(k, d)`.
    pub fn check_spatial(&self, role: &str) -> Result<(usize, usize), String> {
        let k = self.dims[2];
        if k != self.dims[3] || k.is_multiple_of(2) {
            return Err(format!("{} is {}×{} (expected a square odd kernel)", self.at(role), k, self.dims[3]));
        }
        self.check_plain(role)?;
        let d = self.dilations.first().copied().unwrap_or(1);
        if d < 1 || self.dilations.iter().any(|&x| x != d) {
            return Err(format!("{} has dilations {:?} (expected equal, ≥ 1)", self.at(role), self.dilations));
        }
        let pad = d * (k as i64 / 2);
        if self.pads.len() != 4 || self.pads.iter().any(|&p| p != pad) {
            return Err(format!("{} has pads {:?} (expected {pad} on every side)", self.at(role), self.pads));
        }
        Ok((k, d as usize))
    }
}
