use std::path::PathBuf;

/// Everything that can go wrong in pag-runtime. Each variant says what and where.
#[derive(Debug, thiserror::Error)]
pub enum PagError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{what} is not a valid ONNX model: {reason}")]
    NotOnnx { what: String, reason: String },
    #[error("model breaks the PAG contract at {at}: {reason} (see models/CONTRACT.md)")]
    Contract { at: String, reason: String },
    #[error("unsupported operator `{op}` at node `{node}` (tract-onnx 0.23.9 has no implementation of it)")]
    UnsupportedOperator { op: String, node: String },
    #[error("tract could not {stage} the model: {reason}")]
    Tract { stage: &'static str, reason: String },
    #[error("invalid {what}: expected {expected}, got {got}")]
    Shape { what: String, expected: String, got: String },
    #[error("invalid compute mode: {0}")]
    Mode(String),
    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable { device: String, reason: String },
    #[error("invalid load option: {0}")]
    Options(String),
}

pub type Result<T> = std::result::Result<T, PagError>;

pub(crate) fn tract_err(stage: &'static str) -> impl FnOnce(tract_onnx::prelude::TractError) -> PagError {
    move |e| PagError::Tract { stage, reason: format!("{e:#}") }
}

pub(crate) fn contract(at: impl Into<String>, reason: impl Into<String>) -> PagError {
    PagError::Contract { at: at.into(), reason: reason.into() }
}
