//! A loaded PAG model: its contract info and runnable plan, shared by sessions.
use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use crate::error::{PagError, Result};
use crate::graph::{self, ModelInfo};
use crate::kernels::cuda;
use crate::ops::{GatedBlockOp, PagOp};
use crate::options::{Device, Execution, LoadOptions};

pub(crate) type Plan = Arc<TypedRunnableModel>;

/// A loaded, validated PAG model with its optimised tract plan. Cheap to share between sessions.
pub struct PagModel {
    pub info: ModelInfo,
    /// Multiply-accumulates of one dense frame (every gate open, every MultiPool branch at every
    /// pixel, as the ONNX graph computes it), from the ops' declared costs.
    pub dense_macs: u64,
    /// With [`Execution::Sparse`]: why each declared module that stays dense does (empty when
    /// every module runs on pagrt's kernels, and always with [`Execution::Dense`]).
    pub dense_fallbacks: Vec<String>,
    /// How the model was loaded (device resolved: never [`Device::Auto`]).
    pub options: LoadOptions,
    pub(crate) plan: Plan,
    pub(crate) input_index: usize,
    pub(crate) rho_index: Option<usize>,
    pub(crate) output_index: [usize; 3],
}

pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| PagError::Io { path: path.to_owned(), source })
}

/// The device `requested` resolves to in this build on this machine: `Auto` falls back to the
/// CPU when CUDA is unavailable (with the reason), `Cuda` without CUDA is an error.
fn resolve_device(requested: Device) -> Result<(Device, Option<String>)> {
    match requested {
        Device::Cpu => Ok((Device::Cpu, None)),
        Device::Cuda(n) => cuda::open(n).map(|_| (Device::Cuda(n), None)),
        Device::Auto => match cuda::open(0) {
            Ok(_) => Ok((Device::Cuda(0), None)),
            Err(e) => Ok((Device::Cpu, Some(format!("running on the CPU: {e}")))),
        },
    }
}

impl PagModel {
    /// Load and validate the model at `path`, with sparse execution on the CPU.
    pub fn load(path: impl AsRef<Path>) -> Result<PagModel> {
        Self::load_with_options(path, LoadOptions::default())
    }

    /// Load and validate the model at `path`, executing it as `execution` says.
    pub fn load_with(path: impl AsRef<Path>, execution: Execution) -> Result<PagModel> {
        Self::load_with_options(path, LoadOptions { execution, ..LoadOptions::default() })
    }

    /// Load and validate the model at `path` with `options`.
    pub fn load_with_options(path: impl AsRef<Path>, options: LoadOptions) -> Result<PagModel> {
        let path = path.as_ref();
        Self::from_bytes_with_options(&read_file(path)?, &path.display().to_string(), options)
    }

    /// Load from ONNX bytes; `what` names the source in errors.
    pub fn from_bytes(bytes: &[u8], what: &str) -> Result<PagModel> {
        Self::from_bytes_with_options(bytes, what, LoadOptions::default())
    }

    /// Load from ONNX bytes, executing the model as `execution` says.
    pub fn from_bytes_with(bytes: &[u8], what: &str, execution: Execution) -> Result<PagModel> {
        Self::from_bytes_with_options(bytes, what, LoadOptions { execution, ..LoadOptions::default() })
    }

    /// Load from ONNX bytes with `options`; `what` names the source in errors. A device note
    /// (e.g. why `Auto` chose the CPU) is added to [`PagModel::dense_fallbacks`].
    pub fn from_bytes_with_options(bytes: &[u8], what: &str, options: LoadOptions) -> Result<PagModel> {
        options.validate()?;
        let (device, note) = resolve_device(options.device)?;
        let proto = graph::decode_onnx(bytes, what)?;
        let built = graph::build(&proto, options.execution)?;
        let mut dense_fallbacks = built.dense_fallbacks;
        dense_fallbacks.extend(note);
        Ok(PagModel {
            info: built.info,
            dense_macs: built.dense_macs,
            dense_fallbacks,
            options: LoadOptions { device, ..options },
            plan: built.plan,
            input_index: built.input_index,
            rho_index: built.rho_index,
            output_index: built.output_index,
        })
    }

    /// How many nodes of the optimised plan are sparse ops: (gated blocks, MultiPools).
    pub fn sparse_op_counts(&self) -> (usize, usize) {
        (self.op_count("PagGatedBlock"), self.op_count("PagMultiPool"))
    }

    /// How many nodes of the optimised plan are fast bilinear resizes.
    pub fn sparse_resize_count(&self) -> usize {
        self.op_count("PagResize")
    }

    /// How many nodes of the optimised plan run the operator named `op` (e.g. `"PagConv"`,
    /// `"PagL2Norm"`, or a tract operator name).
    pub fn op_count(&self, op: &str) -> usize {
        self.plan.model().nodes().iter().filter(|n| n.op.name() == op).count()
    }

    /// The gated blocks (model metadata names, plan order) that work in their producer's output
    /// tensor instead of copying it: their input comes from another pagrt op and only they read
    /// it. (A block whose input nobody else holds, e.g. tract's `Add`, works in it anyway.)
    pub fn borrowing_blocks(&self) -> Vec<String> {
        self.plan
            .model()
            .nodes()
            .iter()
            .filter_map(|n| n.op_as::<PagOp<GatedBlockOp>>())
            .filter(|op| op.0.input_borrowable())
            .map(|op| op.0.name.clone())
            .collect()
    }

    /// What arithmetic the plan runs: `"f32"`, or for a QDQ model (`pag calibrate`) e.g.
    /// `"int8 (9 of 9 gated blocks, 4 convs)"` — how many gated blocks run on the int8 kernels
    /// and how many ungated quantized convs run as one int8 op.
    pub fn precision(&self) -> String {
        let nodes = self.plan.model().nodes();
        let blocks = nodes
            .iter()
            .filter(|n| {
                n.op.name() == "PagGatedBlock" && n.op.info().is_ok_and(|i| i.iter().any(|l| l.ends_with(" int8")))
            })
            .count();
        let convs = self.op_count("PagQConv");
        if blocks + convs == 0 {
            return "f32".into();
        }
        format!("int8 ({blocks} of {} gated blocks, {convs} convs)", self.info.gated_blocks.len())
    }

    /// Number of model inputs the plan expects.
    pub(crate) fn input_count(&self) -> usize {
        1 + self.rho_index.is_some() as usize
    }
}
