//! [`PagResizeOp`]: a tract op running [`resize_bilinear_half_pixel`] in place of tract's
//! generic `Resize` for bilinear `half_pixel` upsamplings of NCHW f32 maps.
use tract_onnx::tract_core::internal::*;

use super::resize::{resize_bilinear_half_pixel_with, ResizeScratch};
use super::tract_ops::OutputSlot;

/// Bilinear resize (ONNX `half_pixel`, clamped edges) of the last two axes of a 4-D f32 tensor
/// `[N, C, ih, iw]` to `[N, C, oh, ow]`. Input: the tensor; output: the resized tensor.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PagResizeOp {
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Op for PagResizeOp {
    fn name(&self) -> StaticName {
        "PagResize".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("bilinear half_pixel → {}×{}", self.oh, self.ow)])
    }

    op_as_typed_op!();
}

impl EvalOp for PagResizeOp {
    not_out_of_plan!();

    fn state(&self, _ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        Ok(Some(Box::<ResizeState>::default()))
    }
}

/// Per-session working memory and output buffer of a [`PagResizeOp`].
#[derive(Debug, Default, Clone)]
struct ResizeState {
    scratch: ResizeScratch,
    output: OutputSlot,
}

impl OpState for ResizeState {
    fn eval(&mut self, _ctx: &EvalContext, op: &dyn Op, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let op = op.downcast_ref::<PagResizeOp>().context("PagResize state given another op")?;
        let x = args_1!(inputs);
        let shape = x.shape();
        ensure!(shape.len() == 4, "PagResize expects a 4-D input, got {shape:?}");
        let (n, c, ih, iw) = (shape[0], shape[1], shape[2], shape[3]);
        let view = x.to_plain_array_view::<f32>()?;
        let input = view.as_slice().context("Resize input is not contiguous")?;
        let scratch = &mut self.scratch;
        // The kernel writes every output element.
        let out = self.output.fill(&[n, c, op.oh, op.ow], |output| {
            resize_bilinear_half_pixel_with(input, n * c, ih, iw, output, op.oh, op.ow, scratch);
            Ok(())
        })?;
        Ok(tvec!(out))
    }

    fn reset_lanes(&mut self, _lanes: &[LaneId]) -> TractResult<()> {
        Ok(())
    }
}

impl TypedOp for PagResizeOp {
    as_op!();

    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let s = &inputs[0].shape;
        ensure!(s.rank() == 4, "PagResize expects a 4-D input");
        Ok(tvec!(f32::fact([s[0].clone(), s[1].clone(), self.oh.to_dim(), self.ow.to_dim()])))
    }
}
