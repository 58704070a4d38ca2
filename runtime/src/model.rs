//! Loading a PAG ONNX model: decode, check operators and the contract, build the tract plan.
use std::path::Path;
use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::Cost;

use crate::contract::{check_operators, ModelInfo};
use crate::error::{tract_err, PagError, Result};

pub(crate) type Plan = Arc<TypedRunnableModel>;

/// A loaded, validated PAG model with its optimised tract plan. Cheap to share between sessions.
pub struct PagModel {
    pub info: ModelInfo,
    /// Multiply-accumulates of one dense frame (every gate open), from tract's op costs.
    pub dense_macs: u64,
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
    /// Load and validate the model at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<PagModel> {
        let path = path.as_ref();
        Self::from_bytes(&read_file(path)?, &path.display().to_string())
    }

    /// Load from ONNX bytes; `what` names the source in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<PagModel> {
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
        let typed =
            model.into_typed().map_err(tract_err("type"))?.into_decluttered().map_err(tract_err("declutter"))?;
        let dense_macs = count_macs(&typed)?;
        let names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
        let pos = |n: &str| names.iter().position(|x| x == n).expect("validated by the contract");
        let output_index = [
            pos(crate::contract::OUTPUT_SEG),
            pos(crate::contract::OUTPUT_DEPTH),
            pos(crate::contract::OUTPUT_NORMALS),
        ];
        let plan = typed.into_optimized().map_err(tract_err("optimise"))?.into_runnable().map_err(tract_err("plan"))?;
        Ok(PagModel { info, dense_macs, plan, input_index, rho_index, output_index })
    }

    /// Number of model inputs the plan expects.
    pub(crate) fn input_count(&self) -> usize {
        1 + self.rho_index.is_some() as usize
    }
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
