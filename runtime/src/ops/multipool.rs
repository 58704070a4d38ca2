//! [`MultiPoolOp`]: one ungated MultiPool module (contract version 1) replacing its subgraph.
//! Input: the module input (f32 `[1, C, h, w]`); output: the module output, same shape.
use tract_onnx::tract_core::internal::*;

use super::{floats, same_as_input, OutputSlot, PagKernelOp};
use crate::kernels::cpu_f32::{MultiPool, MultiPoolScratch};
use crate::pag::MultiPoolStats;

/// One MultiPool module as a tract op.
#[derive(Debug, Clone)]
pub struct MultiPoolOp {
    /// The module's name in the model metadata.
    pub name: String,
    /// The kernel.
    pub module: MultiPool,
}

/// Per-session working memory of a [`MultiPoolOp`], with what its last run did.
#[derive(Debug, Default)]
pub struct MultiPoolState {
    scratch: MultiPoolScratch,
    /// Stats of the last run; `None` before the first.
    pub(crate) stats: Option<MultiPoolStats>,
}

impl PagKernelOp for MultiPoolOp {
    type State = MultiPoolState;
    const NAME: &'static str = "PagMultiPool";

    fn info(&self) -> String {
        format!("{} branches={}", self.name, self.module.branches())
    }

    fn output_fact(&self, inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        same_as_input(inputs)
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        let s = self.module.block_shape();
        let per_pixel = s.channels * s.branches.len()
            + s.branches.iter().map(|b| b.taps()).sum::<usize>() * s.channels * s.channels;
        Ok((per_pixel * s.pixels()) as u64)
    }

    fn eval(&self, state: &mut MultiPoolState, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let x = args_1!(inputs);
        let input = floats(&x, "MultiPool input")?;
        let (scratch, stats) = (&mut state.scratch, &mut state.stats);
        output.fill(x.shape(), |out| {
            *stats = Some(self.module.run(input, out, scratch)?);
            Ok(())
        })
    }
}
