//! The one index of an ONNX graph that contract validation and extraction share: the producer
//! and consumers of each tensor, the initializers, the graph inputs, and Conv nodes with their
//! weights and attributes. Extraction failures are plain reason strings.
use std::collections::HashMap;

use tract_onnx::pb::{self, NodeProto};

use crate::error::{contract, Result as PagResult};

/// The producer and consumers of every tensor, the initializers and inputs of one ONNX graph.
pub struct OnnxIndex<'a> {
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
        OnnxIndex { producer, consumers, initializers, inputs }
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

    /// The Conv producing `tensor`; `role` names it in errors ("reduce conv", …).
    pub fn conv(&self, tensor: &str, role: &str) -> Result<ConvNode<'a>, String> {
        let node = self.producer(tensor)?;
        if node.op_type != "Conv" {
            return Err(format!("the {role} is a {} (expected Conv), node `{}`", node.op_type, node.name));
        }
        let at = format!("{role} `{}`", node.name);
        let w_name = node.input.get(1).ok_or_else(|| format!("{at} has no weight input"))?;
        let w = self
            .initializers
            .get(w_name.as_str())
            .ok_or_else(|| format!("{at} weights `{w_name}` are not an initializer"))?;
        if w.dims.len() != 4 || w.dims.iter().any(|&d| d <= 0) {
            return Err(format!("{at} weights have dims {:?} (expected 4 positive dims)", w.dims));
        }
        let dims = [w.dims[0] as usize, w.dims[1] as usize, w.dims[2] as usize, w.dims[3] as usize];
        let weights = floats(w)?;
        let bias = match node.input.get(2).filter(|b| !b.is_empty()) {
            None => vec![0.0; dims[0]],
            Some(b) => {
                let t = self
                    .initializers
                    .get(b.as_str())
                    .ok_or_else(|| format!("{at} bias `{b}` is not an initializer"))?;
                floats(t)?
            }
        };
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
