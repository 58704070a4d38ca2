//! [`GatedBlockOp`]: one gated residual block (plain or MultiPool) replacing its subgraph.
//! Inputs: the block input (f32 `[1, C, h, w]`) and ρ (f32 `[1]`); output: the block output.
use std::sync::atomic::{AtomicBool, Ordering};

use tract_onnx::tract_core::internal::*;

use super::{same_as_input, OutputSlot, PagKernelOp};
use crate::kernels::{AnyGatedBlock, AnyGatedScratch};
use crate::mode::mode_from_rho;
use crate::pag::BlockStats;

/// One gated residual block `O = I + G ⊙ F(I)` as a tract op.
#[derive(Debug)]
pub struct GatedBlockOp {
    /// The block's name in the model metadata.
    pub name: String,
    /// The kernel (f32, or int8 for a block of QDQ convs).
    pub block: AnyGatedBlock,
    /// Set by [`GatedBlockOp::set_input_borrowable`] on the final graph: the block input comes
    /// from a pagrt op and nothing else reads it, so its only other holder is that op's
    /// [`OutputSlot`], which nobody reads before the op's next run.
    borrowable: AtomicBool,
}

impl Clone for GatedBlockOp {
    fn clone(&self) -> Self {
        GatedBlockOp {
            name: self.name.clone(),
            block: self.block.clone(),
            borrowable: AtomicBool::new(self.borrowable.load(Ordering::Relaxed)),
        }
    }
}

impl GatedBlockOp {
    /// The op for `block`, named as in the model metadata; copies a shared input until
    /// [`GatedBlockOp::set_input_borrowable`] says otherwise.
    pub fn new(name: String, block: AnyGatedBlock) -> Self {
        GatedBlockOp { name, block, borrowable: AtomicBool::new(false) }
    }

    /// Declares (on the final graph, once) that the block input's only holders at run time are
    /// the plan's last reference and the [`OutputSlot`] of the pagrt op that produced it: the
    /// producer is one of pagrt's ops (each returns its slot's tensor or passes its input on in
    /// place) and the block is the value's only reader. The block then works in that tensor
    /// instead of copying it.
    pub(crate) fn set_input_borrowable(&self, yes: bool) {
        self.borrowable.store(yes, Ordering::Relaxed);
    }

    /// Whether [`GatedBlockOp::set_input_borrowable`] was set.
    pub fn input_borrowable(&self) -> bool {
        self.borrowable.load(Ordering::Relaxed)
    }
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
        // In place when the plan handed over its last reference, or when the only other holder
        // is the producer's output slot (see `set_input_borrowable`), which hands the buffer out
        // again only once every reference of this frame is gone.
        let unique = Arc::get_mut(&mut x).is_some();
        if unique || (self.input_borrowable() && Arc::strong_count(&x) == 2) {
            let len = x.len();
            let ptr = x.as_ptr::<f32>()? as *mut f32;
            // SAFETY: `x` is a contiguous f32 tensor of `len` elements (checked by `as_ptr`), its
            // data a raw heap allocation; no one else reads or writes it while this block runs
            // (as above: the plan gave up its last reference, and a producer's slot is only
            // touched by the producer's next run, after this frame).
            let slice = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
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
