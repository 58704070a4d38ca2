//! Run any ONNX model on given input tensors (conformance checks and debugging).
use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use tract_onnx::prelude::*;

use crate::error::{tract_err, PagError, Result};

use crate::graph::{check_supported, decode_onnx};
use crate::model::read_file;
/// tract's tensor types, for callers handling [`run_onnx`]'s and a session's raw outputs.
pub use tract_onnx::prelude::{IntoTensor, TValue, Tensor};

/// Read a `.npy` file into a tract tensor (f32, f64, i64, i32, u8 or bool).
pub fn read_npy(path: &Path) -> Result<Tensor> {
    let bytes = read_file(path)?;
    let bad = |reason: String| PagError::Shape {
        what: format!("tensor file {}", path.display()),
        expected: "a .npy array of f32, f64, i64, i32, u8 or bool".into(),
        got: reason,
    };
    macro_rules! try_as {
        ($($t:ty),*) => {$(
            if let Ok(a) = ArrayD::<$t>::read_npy(&bytes[..]) { return Ok(a.into_tensor()); }
        )*};
    }
    try_as!(f32, f64, i64, i32, u8, bool);
    Err(bad(match ArrayD::<f32>::read_npy(&bytes[..]) {
        Err(e) => e.to_string(),
        Ok(_) => unreachable!(),
    }))
}

/// Write a tract tensor as `.npy` (bool is written as u8).
pub fn write_npy(path: &Path, t: &Tensor) -> Result<()> {
    let io = |source| PagError::Io { path: path.to_owned(), source };
    let file = std::fs::File::create(path).map_err(io)?;
    let w = std::io::BufWriter::new(file);
    let res = match t.datum_type() {
        DatumType::F32 => t.to_plain_array_view::<f32>().map(|a| a.write_npy(w)),
        DatumType::F64 => t.to_plain_array_view::<f64>().map(|a| a.write_npy(w)),
        DatumType::I64 => t.to_plain_array_view::<i64>().map(|a| a.write_npy(w)),
        DatumType::I32 => t.to_plain_array_view::<i32>().map(|a| a.write_npy(w)),
        DatumType::U8 => t.to_plain_array_view::<u8>().map(|a| a.write_npy(w)),
        DatumType::Bool => t.to_plain_array_view::<bool>().map(|a| a.mapv(|b| b as u8).write_npy(w)),
        dt => {
            return Err(PagError::Shape {
                what: "output tensor".into(),
                expected: "f32, f64, i64, i32, u8 or bool".into(),
                got: format!("{dt:?}"),
            })
        }
    };
    res.map_err(tract_err("read an output of"))?.map_err(|e| io(std::io::Error::other(e.to_string())))
}

/// Whether the ONNX file at `path` declares itself a PAG model (`pag.contract_version`).
pub fn is_pag_model(path: &Path) -> Result<bool> {
    let proto = decode_onnx(&read_file(path)?, &path.display().to_string())?;
    Ok(proto.metadata_props.iter().any(|p| p.key == "pag.contract_version"))
}

/// Inputs of an ONNX graph as (name, declared shape; None for symbolic dims).
pub type InputDecl = (String, Vec<Option<usize>>);

/// Run the ONNX model at `path` on `inputs` (in graph input order); returns every output by name.
pub fn run_onnx(path: &Path, inputs: Vec<Tensor>) -> Result<Vec<(String, Tensor)>> {
    let proto = decode_onnx(&read_file(path)?, &path.display().to_string())?;
    check_supported(&proto)?;
    let graph = proto.graph.as_ref().expect("checked by decode_onnx");
    let decls: Vec<InputDecl> = graph
        .input
        .iter()
        .filter(|i| !graph.initializer.iter().any(|t| t.name == i.name))
        .map(|i| {
            let dims = i.r#type.as_ref().and_then(|t| t.value.as_ref()).map(|v| {
                let tract_onnx::pb::type_proto::Value::TensorType(tt) = v;
                tt.shape
                    .as_ref()
                    .map(|s| {
                        s.dim
                            .iter()
                            .map(|d| match d.value {
                                Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) if v > 0 => {
                                    Some(v as usize)
                                }
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            });
            (i.name.clone(), dims.unwrap_or_default())
        })
        .collect();
    if decls.len() != inputs.len() {
        return Err(PagError::Shape {
            what: "inputs".into(),
            expected: format!(
                "{} tensors ({})",
                decls.len(),
                decls.iter().map(|d| d.0.as_str()).collect::<Vec<_>>().join(", ")
            ),
            got: format!("{} tensors", inputs.len()),
        });
    }
    for ((name, dims), t) in decls.iter().zip(&inputs) {
        let ok = dims.is_empty()
            || (dims.len() == t.rank() && dims.iter().zip(t.shape()).all(|(d, s)| d.is_none_or(|d| d == *s)));
        if !ok {
            let show: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |d| d.to_string())).collect();
            return Err(PagError::Shape {
                what: format!("input `{name}`"),
                expected: format!("shape [{}]", show.join(", ")),
                got: format!("{:?}", t.shape()),
            });
        }
    }
    crate::graph::sanity::check_proto(&proto)?;
    crate::graph::sanity::guarded("run", || run_checked(&proto, graph, inputs))
}

fn run_checked(
    proto: &tract_onnx::pb::ModelProto,
    graph: &tract_onnx::pb::GraphProto,
    inputs: Vec<Tensor>,
) -> Result<Vec<(String, Tensor)>> {
    let mut model = tract_onnx::onnx().model_for_proto_model(proto).map_err(tract_err("parse"))?;
    for (ix, t) in inputs.iter().enumerate() {
        model
            .set_input_fact(ix, InferenceFact::dt_shape(t.datum_type(), t.shape()))
            .map_err(tract_err("type the inputs of"))?;
    }
    let typed = model.into_typed().map_err(tract_err("type"))?;
    crate::graph::sanity::check_concrete(&typed)?;
    let plan = typed.into_optimized().map_err(tract_err("optimise"))?.into_runnable().map_err(tract_err("plan"))?;
    let outs = plan.run(inputs.into_iter().map(|t| t.into_tvalue()).collect()).map_err(tract_err("run"))?;
    Ok(graph.output.iter().map(|o| o.name.clone()).zip(outs.into_iter().map(|v| v.into_tensor())).collect())
}
