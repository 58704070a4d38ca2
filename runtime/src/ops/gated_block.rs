//! [`GatedBlockOp`]: one gated residual block (plain or MultiPool) replacing its subgraph.
//! Inputs: the block input (f32 `[1, C, h, w]`) and ρ (f32 `[1]`); output: the block output.
use tract_onnx::tract_core::internal::*;

use super::{same_as_input, OutputSlot, PagKernelOp};
use crate::kernels::{AnyGatedBlock, AnyGatedScratch};
use crate::mode::mode_from_rho;
use crate::pag::BlockStats;

/// One gated residual block `O = I + G ⊙ F(I)` as a tract op.
#[derive(Debug, Clone)]
pub struct GatedBlockOp {
    /// The block's name in the model metadata.
    pub name: String,
    /// The kernel (f32, or int8 for a block of QDQ convs).
    pub block: AnyGatedBlock,
}

/// Per-session working memory of a [`GatedBlockOp`], with what its last run did (read by
/// [`crate::Session::telemetry`]).
#[derive(Debug, Default)]
pub struct GatedBlockState {
    pub(crate) scratch: AnyGatedScratch,
    /// Stats of the last run; `None` before the first.
    pub(crate) stats: Option<BlockStats>,
}

impl PagKernelOp for GatedBlockOp {
    type State = GatedBlockState;
    const NAME: &'static str = "PagGatedBlock";

    fn info(&self) -> String {
        let (h, w) = self.block.size();
        let p = self.block.block_shape().branches.len();
        let pool = if p > 1 { format!(" MultiPool({p})") } else { String::new() };
        let precision = self.block.precision();
        format!("{} C={} mid={}{pool} {h}×{w} {precision}", self.name, self.block.channels(), self.block.mid())
    }

    fn output_fact(&self, inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        same_as_input(inputs)
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(self.block.block_shape().dense_macs())
    }

    fn eval(&self, state: &mut GatedBlockState, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let (x, rho) = args_2!(inputs);
        let rho = *rho.to_plain_array_view::<f32>()?.iter().next().context("ρ input is empty")?;
        let mode = mode_from_rho(rho);
        let mut x = x.into_arc_tensor();
        if let Some(tensor) = Arc::get_mut(&mut x) {
            // In place: the plan handed over its last reference to the block input.
            let mut view = tensor.to_plain_array_view_mut::<f32>()?;
            let slice = view.as_slice_mut().context("block input is not contiguous")?;
            state.stats = Some(self.block.run_in_place(slice, mode, &mut state.scratch)?);
            return Ok(TValue::from_const(x));
        }
        // Someone else holds the input (e.g. a producer that reuses its output buffer): copy it
        // into this op's own reused buffer and work there, still without allocating.
        let input = super::floats_of(&x, "block input")?;
        let (block, scratch, stats) = (&self.block, &mut state.scratch, &mut state.stats);
        output.fill(x.shape(), |out| {
            out.copy_from_slice(input);
            *stats = Some(block.run_in_place(out, mode, scratch)?);
            Ok(())
        })
    }
}
