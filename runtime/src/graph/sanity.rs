//! Checks on the ONNX protobuf before tract sees it, so that a corrupted or hostile file becomes
//! an error naming the node instead of an assertion deep in tract (found by fuzzing the loader,
//! `fuzz/`): convolution and pooling attributes with the wrong arity, shapes from the file that
//! are negative or absurdly large. After typing, every tensor must have a concrete shape (the
//! runtime fixes the input shape, so a symbol means an inconsistent graph, and tract's
//! declutter can spend seconds growing symbolic expressions on one).
use std::collections::HashMap;

use tract_onnx::pb::{self, NodeProto};
use tract_onnx::prelude::*;

use crate::error::{PagError, Result};

/// The most elements a tensor whose shape comes from the file may have (2²⁸ floats, 1 GiB).
pub const MAX_ELEMENTS: u64 = 1 << 28;

fn bad(node: &NodeProto, reason: String) -> PagError {
    PagError::Contract { at: format!("node `{}` ({})", node.name, node.op_type), reason }
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a pb::AttributeProto> {
    n.attribute.iter().find(|a| a.name == name)
}

/// Integer values of a constant tensor (int64 or int32, raw or typed storage).
fn int_values(t: &pb::TensorProto) -> Option<Vec<i64>> {
    use pb::tensor_proto::DataType;
    let dt = t.data_type;
    if dt == DataType::Int64 as i32 {
        if !t.raw_data.is_empty() {
            return Some(
                t.raw_data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect(),
            );
        }
        return Some(t.int64_data.clone());
    }
    if dt == DataType::Int32 as i32 {
        if !t.raw_data.is_empty() {
            return Some(
                t.raw_data.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64).collect(),
            );
        }
        return Some(t.int32_data.iter().map(|&v| v as i64).collect());
    }
    None
}

/// Checks the graph's declared dims and the shapes it builds from constants (see the module docs).
pub fn check_proto(proto: &pb::ModelProto) -> Result<()> {
    let graph =
        proto.graph.as_ref().ok_or_else(|| PagError::NotOnnx { what: "model".into(), reason: "no graph".into() })?;
    let mut constants: HashMap<&str, &pb::TensorProto> = HashMap::new();
    for t in &graph.initializer {
        if t.dims.iter().any(|&d| d < 0) {
            return Err(PagError::Contract {
                at: format!("initializer `{}`", t.name),
                reason: format!("negative dimension in {:?}", t.dims),
            });
        }
        let n = t.dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64));
        if n.is_none_or(|n| n > MAX_ELEMENTS) {
            return Err(PagError::Contract {
                at: format!("initializer `{}`", t.name),
                reason: format!("dims {:?} exceed {MAX_ELEMENTS} elements", t.dims),
            });
        }
        constants.insert(t.name.as_str(), t);
    }
    for n in &graph.node {
        if n.op_type == "Constant" {
            if let (Some(out), Some(a)) = (n.output.first(), attr(n, "value")) {
                if let Some(t) = a.t.as_ref() {
                    constants.insert(out.as_str(), t);
                }
            }
        }
    }
    let weight_rank = |n: &NodeProto| -> Option<usize> {
        let w = constants.get(n.input.get(1)?.as_str())?;
        w.dims.len().checked_sub(2)
    };
    for n in &graph.node {
        match n.op_type.as_str() {
            "Conv" | "ConvTranspose" | "MaxPool" | "AveragePool" | "LpPool" => {
                let spatial = attr(n, "kernel_shape").map(|a| a.ints.len()).or_else(|| weight_rank(n));
                let Some(spatial) = spatial else { continue };
                for (name, arity, min) in
                    [("kernel_shape", 1, 1), ("strides", 1, 1), ("dilations", 1, 1), ("pads", 2, 0)]
                {
                    if let Some(a) = attr(n, name) {
                        if a.ints.len() != arity * spatial || a.ints.iter().any(|&v| v < min) {
                            return Err(bad(
                                n,
                                format!(
                                    "`{name}` is {:?}: expected {} values ≥ {min} for {spatial} spatial axes",
                                    a.ints,
                                    arity * spatial
                                ),
                            ));
                        }
                    }
                }
                if let Some(a) = attr(n, "group") {
                    if a.i < 1 {
                        return Err(bad(n, format!("`group` is {}", a.i)));
                    }
                }
            }
            "ConstantOfShape" | "Expand" | "Tile" | "Reshape" => {
                let Some(values) = n.input.get(if n.op_type == "ConstantOfShape" { 0 } else { 1 }) else { continue };
                let Some(values) = constants.get(values.as_str()).and_then(|t| int_values(t)) else { continue };
                // Reshape may use -1 (infer) and 0 (copy); every other value is a size.
                let min = if n.op_type == "Reshape" { -1 } else { 0 };
                if values.iter().any(|&v| v < min) {
                    return Err(bad(n, format!("shape {values:?} has a negative size")));
                }
                let count = values.iter().try_fold(1u64, |acc, &v| acc.checked_mul(v.max(1) as u64));
                if count.is_none_or(|c| c > MAX_ELEMENTS) {
                    return Err(bad(n, format!("shape {values:?} exceeds {MAX_ELEMENTS} elements")));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Errors, naming the first node, unless every tensor of `model` has a concrete shape.
pub fn check_concrete(model: &TypedModel) -> Result<()> {
    for node in model.nodes() {
        for (i, out) in node.outputs.iter().enumerate() {
            if out.fact.shape.as_concrete().is_none() {
                return Err(PagError::Contract {
                    at: format!("node `{}` ({}) output {i}", node.name, node.op.name()),
                    reason: format!(
                        "its shape {:?} is not fixed although the inputs are: the graph is inconsistent",
                        out.fact.shape
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Runs a tract stage, turning a panic inside tract into an error (the last line of defence:
/// the checks above are the fix for every case found so far).
pub fn guarded<T>(stage: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let why = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(PagError::Tract { stage, reason: format!("tract failed internally ({why})") })
        }
    }
}
