//! Counting a model's multiply-accumulates from its ops' declared costs.
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

use crate::error::{tract_err, PagError, Result};

/// Multiply-accumulates of the model's convolutions and matrix products, from each op's declared
/// FMA cost (pagrt's ops declare theirs). Element-wise ops and reductions, which tract also
/// costs as FMAs, are left out: they are not the network's MACs, and they differ between the
/// dense graph and the one where pagrt's ops replaced the masks and binarisation subgraphs.
pub fn count_macs(model: &TypedModel) -> Result<u64> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
    use tract_onnx::tract_core::ops::nn::Reduce;
    let mut total = 0u64;
    for node in model.nodes() {
        if node.op_is::<ElementWiseOp>() || node.op_is::<TypedBinOp>() || node.op_is::<Reduce>() {
            continue;
        }
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
