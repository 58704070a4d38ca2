//! tract operators that run the sparse kernels inside a tract plan: [`PagGatedBlockOp`] replaces
//! the subgraph of one gated residual block, [`PagMultiPoolOp`] that of one MultiPool module.
//! Both keep their working memory in a per-session [`OpState`], so steady-state frames do not
//! allocate scratch.
use std::sync::Arc;

use tract_onnx::tract_core::internal::*;

use super::active::ActiveSet;
use super::gated_block::{BlockStats, GatedBlock, GatedBlockScratch};
use super::multipool::{MultiPool, MultiPoolScratch, MultiPoolStats};
use crate::mode::ComputeMode;

/// An op's output tensor kept in its per-session state and reused frame after frame: once the
/// plan has dropped the previous frame's value, the same buffer (and its `Arc`) is handed out
/// again, so a steady-state frame allocates nothing for it.
#[derive(Debug, Default)]
pub(crate) struct OutputSlot(Option<Arc<Tensor>>);

impl OutputSlot {
    /// Runs `fill` on an f32 tensor of `shape` and returns it as the op's output value. `fill`
    /// must write every element: the tensor holds the previous frame's values or is
    /// uninitialised.
    pub(crate) fn fill(
        &mut self,
        shape: &[usize],
        fill: impl FnOnce(&mut [f32]) -> TractResult<()>,
    ) -> TractResult<TValue> {
        let mut arc = match self.0.take() {
            Some(t) if t.shape() == shape => t,
            // SAFETY: f32 has no invalid bit patterns; `fill` writes every element.
            _ => Arc::new(unsafe { Tensor::uninitialized::<f32>(shape)? }),
        };
        if Arc::get_mut(&mut arc).is_none() {
            // The graph still holds last frame's value (not expected): use a fresh buffer.
            // SAFETY: as above.
            arc = Arc::new(unsafe { Tensor::uninitialized::<f32>(shape)? });
        }
        let tensor = Arc::get_mut(&mut arc).expect("unique output tensor");
        let mut view = tensor.to_plain_array_view_mut::<f32>()?;
        fill(view.as_slice_mut().context("output is not contiguous")?)?;
        self.0 = Some(arc.clone());
        Ok(TValue::from_const(arc))
    }
}

impl Clone for OutputSlot {
    fn clone(&self) -> Self {
        OutputSlot::default()
    }
}

/// The compute mode the contract's ρ input encodes (≥ 1 → dense, ≤ 0 → native, else a budget).
pub fn mode_from_rho(rho: f32) -> ComputeMode {
    if rho >= 1.0 {
        ComputeMode::Dense
    } else if rho <= 0.0 || rho.is_nan() {
        ComputeMode::Native
    } else {
        ComputeMode::Budget(rho)
    }
}

/// One gated residual block `O = I + G ⊙ F(I)` as a tract op. Inputs: the block input
/// (f32 `[1, C, h, w]`) and ρ (f32 `[1]`); output: the block output, same shape.
#[derive(Debug, Clone)]
pub struct PagGatedBlockOp {
    /// The block's name in the model metadata.
    pub name: String,
    /// The sparse kernel.
    pub block: Arc<GatedBlock>,
}

impl PartialEq for PagGatedBlockOp {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.block, &other.block)
    }
}
impl Eq for PagGatedBlockOp {}

/// Per-session working memory of a [`PagGatedBlockOp`], with what its last run did (read by
/// [`crate::Session::telemetry`]).
#[derive(Debug, Default)]
struct GatedBlockState {
    scratch: GatedBlockScratch,
    /// Used only when the block input is shared and cannot be updated in place.
    output: OutputSlot,
    /// Stats of the last run; `None` before the first.
    stats: Option<BlockStats>,
}

impl Clone for GatedBlockState {
    fn clone(&self) -> Self {
        // Scratch is a cache: a clone starts empty.
        GatedBlockState::default()
    }
}

impl PagGatedBlockOp {
    /// What the last run of this op did in a session, read from its per-session `state`: the
    /// block's stats and its active set. `None` before the first run or for another op's state.
    pub(crate) fn last_run(state: &dyn OpState) -> Option<(BlockStats, &ActiveSet)> {
        let state = state.downcast_ref::<GatedBlockState>()?;
        Some((state.stats?, state.scratch.active()))
    }
}

impl Op for PagGatedBlockOp {
    fn name(&self) -> StaticName {
        "PagGatedBlock".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let (h, w) = self.block.size();
        Ok(vec![format!("{} C={} mid={} {h}×{w}", self.name, self.block.channels(), self.block.mid())])
    }

    op_as_typed_op!();
}

impl EvalOp for PagGatedBlockOp {
    not_out_of_plan!();

    fn state(&self, _ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        Ok(Some(Box::<GatedBlockState>::default()))
    }
}

impl OpState for GatedBlockState {
    fn eval(&mut self, _ctx: &EvalContext, op: &dyn Op, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let op = op.downcast_ref::<PagGatedBlockOp>().context("PagGatedBlock state given another op")?;
        let (x, rho) = args_2!(inputs);
        let rho = *rho.to_plain_array_view::<f32>()?.iter().next().context("ρ input is empty")?;
        let mode = mode_from_rho(rho);
        let mut x = x.into_arc_tensor();
        if let Some(tensor) = Arc::get_mut(&mut x) {
            // In place: the plan handed over its last reference to the block input.
            let mut view = tensor.to_plain_array_view_mut::<f32>()?;
            let slice = view.as_slice_mut().context("block input is not contiguous")?;
            self.stats = Some(op.block.run_in_place(slice, mode, &mut self.scratch)?);
            return Ok(tvec!(TValue::from_const(x)));
        }
        // Someone else holds the input (e.g. a producer that reuses its output buffer): copy it
        // into this op's own reused buffer and work there, still without allocating.
        let view = x.to_plain_array_view::<f32>()?;
        let input = view.as_slice().context("block input is not contiguous")?;
        let (block, scratch, stats) = (&op.block, &mut self.scratch, &mut self.stats);
        let out = self.output.fill(x.shape(), |output| {
            output.copy_from_slice(input);
            *stats = Some(block.run_in_place(output, mode, scratch)?);
            Ok(())
        })?;
        Ok(tvec!(out))
    }

    fn reset_lanes(&mut self, _lanes: &[LaneId]) -> TractResult<()> {
        // Only scratch lives here; nothing carries from one turn to the next.
        Ok(())
    }
}

impl TypedOp for PagGatedBlockOp {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }
}

/// One MultiPool module as a tract op. Input: the module input (f32 `[1, C, h, w]`); output: the
/// module output, same shape.
#[derive(Debug, Clone)]
pub struct PagMultiPoolOp {
    /// The module's name in the model metadata.
    pub name: String,
    /// The sparse kernel.
    pub module: Arc<MultiPool>,
}

impl PartialEq for PagMultiPoolOp {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.module, &other.module)
    }
}
impl Eq for PagMultiPoolOp {}

/// Per-session working memory of a [`PagMultiPoolOp`], with what its last run did.
#[derive(Debug, Default)]
struct MultiPoolState {
    scratch: MultiPoolScratch,
    output: OutputSlot,
    /// Stats of the last run; `None` before the first.
    stats: Option<MultiPoolStats>,
}

impl Clone for MultiPoolState {
    fn clone(&self) -> Self {
        MultiPoolState::default()
    }
}

impl PagMultiPoolOp {
    /// The stats of the last run of this op in a session, read from its per-session `state`.
    /// `None` before the first run or for another op's state.
    pub(crate) fn last_run(state: &dyn OpState) -> Option<MultiPoolStats> {
        state.downcast_ref::<MultiPoolState>()?.stats
    }
}

impl Op for PagMultiPoolOp {
    fn name(&self) -> StaticName {
        "PagMultiPool".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{} branches={}", self.name, self.module.branches())])
    }

    op_as_typed_op!();
}

impl EvalOp for PagMultiPoolOp {
    not_out_of_plan!();

    fn state(&self, _ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        Ok(Some(Box::<MultiPoolState>::default()))
    }
}

impl OpState for MultiPoolState {
    fn eval(&mut self, _ctx: &EvalContext, op: &dyn Op, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let op = op.downcast_ref::<PagMultiPoolOp>().context("PagMultiPool state given another op")?;
        let x = args_1!(inputs);
        let view = x.to_plain_array_view::<f32>()?;
        let input = view.as_slice().context("MultiPool input is not contiguous")?;
        let (module, scratch, stats) = (&op.module, &mut self.scratch, &mut self.stats);
        let out = self.output.fill(x.shape(), |output| {
            *stats = Some(module.run(input, output, scratch)?);
            Ok(())
        })?;
        Ok(tvec!(out))
    }

    fn reset_lanes(&mut self, _lanes: &[LaneId]) -> TractResult<()> {
        Ok(())
    }
}

impl TypedOp for PagMultiPoolOp {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }
}
