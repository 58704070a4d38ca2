//! pagrt's operators inside a tract plan. One generic wrapper, [`PagOp`], supplies the tract
//! glue every op needs (identity, per-session state, output-buffer reuse, declared cost); each op
//! is a small struct implementing [`PagKernelOp`]:
//!
//! - [`GatedBlockOp`]: one gated residual block (plain or MultiPool), in place;
//! - [`MultiPoolOp`]: one ungated MultiPool module (contract version 1);
//! - [`ConvOp`]: a dense conv on pagrt's kernel, ReLU fused (the network's ungated convs);
//! - [`QConvOp`]: a QDQ model's ungated quantized conv with its Q/DQ pairs, int8;
//! - [`ResizeOp`]: bilinear `half_pixel` upsampling;
//! - [`L2NormOp`]: channel-wise L2 normalisation (the normals head).
//!
//! States keep their working memory and output tensor per session, so steady-state frames
//! allocate nothing. Every op declares its dense FMA count in `cost()`, so the model's MACs are
//! counted on the final plan.
use std::fmt;
use std::sync::Arc;

use tract_onnx::tract_core::internal::*;

mod conv;
mod gated_block;
mod l2norm;
mod multipool;
mod qconv;
mod resize;

pub use conv::ConvOp;
pub use gated_block::{GatedBlockOp, GatedBlockState};
pub use l2norm::L2NormOp;
pub use multipool::{MultiPoolOp, MultiPoolState};
pub use qconv::QConvOp;
pub use resize::ResizeOp;

/// What a pagrt op computes; [`PagOp`] turns it into a tract operator.
pub trait PagKernelOp: fmt::Debug + Send + Sync + 'static {
    /// Per-session working memory (and what the last run did, for telemetry).
    type State: fmt::Debug + Default + Send + 'static;
    /// The operator name tract shows (`PagGatedBlock`, …).
    const NAME: &'static str;
    /// One line for tract's model dumps.
    fn info(&self) -> String;
    /// The output fact for `inputs`.
    fn output_fact(&self, inputs: &[&TypedFact]) -> TractResult<TypedFact>;
    /// FMAs of one dense evaluation (every pixel, as the ONNX graph computes it).
    fn dense_fmas(&self, inputs: &[&TypedFact]) -> TractResult<u64>;
    /// Computes the output; `output` is this op's reusable output tensor.
    fn eval(&self, state: &mut Self::State, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue>;
}

/// A [`PagKernelOp`] as a tract operator. Two `PagOp`s are equal when they share the kernel.
#[derive(Debug)]
pub struct PagOp<K>(pub Arc<K>);

impl<K> Clone for PagOp<K> {
    fn clone(&self) -> Self {
        PagOp(self.0.clone())
    }
}

impl<K> PartialEq for PagOp<K> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}
impl<K> Eq for PagOp<K> {}

impl<K: PagKernelOp> PagOp<K> {
    /// Wraps `kernel`.
    pub fn new(kernel: K) -> Self {
        PagOp(Arc::new(kernel))
    }

    /// This op's state in a session, `None` for another op's state.
    pub(crate) fn state_of(state: &dyn OpState) -> Option<&K::State> {
        state.downcast_ref::<SessionState<K>>().map(|s| &s.state)
    }
}

/// The per-session state of a [`PagOp`]: the kernel's own state and the reusable output.
#[derive(Debug)]
struct SessionState<K: PagKernelOp> {
    state: K::State,
    output: OutputSlot,
}

impl<K: PagKernelOp> Default for SessionState<K> {
    fn default() -> Self {
        SessionState { state: K::State::default(), output: OutputSlot::default() }
    }
}

impl<K: PagKernelOp> Clone for SessionState<K> {
    fn clone(&self) -> Self {
        // Working memory is a cache: a clone starts empty.
        Self::default()
    }
}

impl<K: PagKernelOp> Op for PagOp<K> {
    fn name(&self) -> StaticName {
        K::NAME.into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![self.0.info()])
    }

    op_as_typed_op!();
}

impl<K: PagKernelOp> EvalOp for PagOp<K> {
    not_out_of_plan!();

    fn state(&self, _ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        Ok(Some(Box::new(SessionState::<K>::default())))
    }
}

impl<K: PagKernelOp> OpState for SessionState<K> {
    fn eval(&mut self, _ctx: &EvalContext, op: &dyn Op, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let op = op.downcast_ref::<PagOp<K>>().with_context(|| format!("{} state given another op", K::NAME))?;
        Ok(tvec!(op.0.eval(&mut self.state, &mut self.output, inputs)?))
    }

    fn reset_lanes(&mut self, _lanes: &[LaneId]) -> TractResult<()> {
        // Only working memory lives here; nothing carries from one turn to the next.
        Ok(())
    }
}

impl<K: PagKernelOp> TypedOp for PagOp<K> {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(self.0.output_fact(inputs)?))
    }

    fn cost(&self, inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        Ok(tvec!((Cost::FMA(f32::datum_type()), (self.0.dense_fmas(inputs)? as i64).to_dim())))
    }
}

/// An op's output tensor kept in its per-session state and reused frame after frame: once the
/// plan has dropped the previous frame's value, the same buffer (and its `Arc`) is handed out
/// again, so a steady-state frame allocates nothing for it.
#[derive(Debug, Default)]
pub struct OutputSlot(Option<Arc<Tensor>>);

impl OutputSlot {
    /// Runs `fill` on an f32 tensor of `shape` and returns it as the op's output value. `fill`
    /// must write every element: the tensor holds the previous frame's values or is
    /// uninitialised.
    pub fn fill(&mut self, shape: &[usize], fill: impl FnOnce(&mut [f32]) -> TractResult<()>) -> TractResult<TValue> {
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

/// The input's f32 data as a contiguous slice.
pub(crate) fn floats<'a>(t: &'a TValue, what: &str) -> TractResult<&'a [f32]> {
    floats_of(t, what)
}

/// An `Arc<Tensor>`'s f32 data as a contiguous slice.
pub(crate) fn floats_of<'a>(t: &'a Tensor, what: &str) -> TractResult<&'a [f32]> {
    t.to_plain_array_view::<f32>()?.to_slice().with_context(|| format!("{what} is not a contiguous f32 tensor"))
}

/// `[1, C, h, w]`-style fact with the same shape as `inputs[0]`, without its value.
pub(crate) fn same_as_input(inputs: &[&TypedFact]) -> TractResult<TypedFact> {
    Ok(inputs[0].without_value())
}
