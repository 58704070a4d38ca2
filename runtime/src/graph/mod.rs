//! From ONNX bytes to a runnable tract plan, in one place: decode, check operators, validate
//! the PAG contract ([`contract`]) on one ONNX index ([`index`]), extract the declared modules
//! into pagrt's kernels ([`extract`]), replace their subgraphs by pagrt's ops ([`rewrite`]),
//! count MACs on the final graph ([`macs`]), optimise.
use std::sync::Arc;

use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

pub mod contract;
pub mod extract;
mod index;
mod macs;
mod rewrite;
pub mod sanity;

pub use contract::{check_operators, CameraMountSpec, GatedBlockSpec, InputSpec, ModelInfo, MultiPoolSpec};
pub use extract::{extract_sparse_blocks, ExtractedGatedBlock, ExtractedMultiPool, SparsePlan, Unsupported};
pub use macs::count_macs;

use crate::error::{tract_err, PagError, Result};
use crate::options::Execution;

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

/// Reject operators tract does not implement, naming the node.
pub(crate) fn check_supported(proto: &ModelProto) -> Result<()> {
    let onnx = tract_onnx::onnx();
    check_operators(proto, |op| onnx.op_register.0.contains_key(op))
}

/// A model's runnable plan and what building it found.
pub(crate) struct Built {
    pub info: ModelInfo,
    pub plan: Arc<TypedRunnableModel>,
    pub dense_macs: u64,
    pub dense_fallbacks: Vec<String>,
    pub input_index: usize,
    pub rho_index: Option<usize>,
    pub output_index: [usize; 3],
}

/// Validates `proto` as a PAG model and builds its plan for `execution`. Never panics on a bad
/// model: the protobuf is checked first ([`sanity`]) and tract runs under [`sanity::guarded`].
pub(crate) fn build(proto: &ModelProto, execution: Execution) -> Result<Built> {
    check_supported(proto)?;
    sanity::check_proto(proto)?;
    let info = ModelInfo::from_proto(proto)?;
    sanity::guarded("build a plan for", || build_checked(proto, info, execution))
}

fn build_checked(proto: &ModelProto, info: ModelInfo, execution: Execution) -> Result<Built> {
    let mut model = tract_onnx::onnx().model_for_proto_model(proto).map_err(tract_err("parse"))?;
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
    model.set_input_fact(input_index, f32::fact([1, 3, h, w]).into()).map_err(tract_err("type the image input of"))?;
    if let Some(ix) = rho_index {
        model.set_input_fact(ix, f32::fact([1]).into()).map_err(tract_err("type the ρ input of"))?;
    }
    let mut typed = model.into_typed().map_err(tract_err("type"))?;
    sanity::check_concrete(&typed)?;
    let mut dense_fallbacks = Vec::new();
    if execution == Execution::Sparse {
        let rho = rho_index
            .map(|ix| typed.input_outlets().map(|o| o[ix]))
            .transpose()
            .map_err(tract_err("find the ρ input of"))?;
        dense_fallbacks = rewrite::install_sparse_ops(&mut typed, proto, &info, rho)?;
    }
    let mut typed = typed.into_decluttered().map_err(tract_err("declutter"))?;
    if execution == Execution::Sparse {
        rewrite::install_fast_resizes(&mut typed)?;
        rewrite::install_sliced_resizes(&mut typed)?;
        rewrite::install_fused_resize_adds(&mut typed)?;
        rewrite::install_fast_convs(&mut typed)?;
        rewrite::install_fast_l2norms(&mut typed)?;
    }
    // Every pagrt op declares its dense cost, so the final graph counts like the ONNX graph.
    let dense_macs = count_macs(&typed)?;
    let names: Vec<String> = graph.output.iter().map(|o| o.name.clone()).collect();
    let pos = |n: &str| names.iter().position(|x| x == n).expect("validated by the contract");
    let output_index = [pos(contract::OUTPUT_SEG), pos(contract::OUTPUT_DEPTH), pos(contract::OUTPUT_NORMALS)];
    let optimized = typed.into_optimized().map_err(tract_err("optimise"))?;
    if execution == Execution::Sparse {
        rewrite::mark_borrowable_inputs(&optimized)?;
    }
    let plan = optimized.into_runnable().map_err(tract_err("plan"))?;
    Ok(Built { info, plan, dense_macs, dense_fallbacks, input_index, rho_index, output_index })
}
