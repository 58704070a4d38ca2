//! [`PagConvOp`]: a dense convolution (f32, NCHW, batch 1, groups 1) on pagrt's im2col + GEMM
//! kernel ([`PerforatedConv::run_dense`]), optionally with its ReLU fused, in place of tract's
//! `Conv` for the network's ungated spatial convs (stem, down-sampling, decoder).
use tract_onnx::tract_core::internal::*;

use super::perforated_conv::{ConvScratch, PerforatedConv};

/// A dense convolution `[1, C, h, w] → [1, O, oh, ow]` with bias, optionally followed by ReLU.
#[derive(Debug, Clone)]
pub struct PagConvOp {
    /// The kernel (weights, bias, geometry).
    pub conv: Arc<PerforatedConv>,
    /// Whether a ReLU follows (fused into the output pass).
    pub relu: bool,
}

impl PartialEq for PagConvOp {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.conv, &other.conv) && self.relu == other.relu
    }
}
impl Eq for PagConvOp {}

/// Per-session working memory of a [`PagConvOp`].
#[derive(Debug, Default)]
struct ConvState {
    scratch: ConvScratch,
    output: super::tract_ops::OutputSlot,
}

impl Clone for ConvState {
    fn clone(&self) -> Self {
        ConvState::default()
    }
}

impl Op for PagConvOp {
    fn name(&self) -> StaticName {
        "PagConv".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        let g = self.conv.geometry();
        Ok(vec![format!(
            "{}→{} {}×{} stride {} dilation {}{}",
            self.conv.in_channels(),
            self.conv.out_channels(),
            g.kernel_height(),
            g.kernel_width(),
            g.stride(),
            g.dilation(),
            if self.relu { " + ReLU" } else { "" }
        )])
    }

    op_as_typed_op!();
}

impl EvalOp for PagConvOp {
    not_out_of_plan!();

    fn state(&self, _ctx: &EvalContext) -> TractResult<Option<Box<dyn OpState>>> {
        Ok(Some(Box::<ConvState>::default()))
    }
}

impl OpState for ConvState {
    fn eval(&mut self, _ctx: &EvalContext, op: &dyn Op, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let op = op.downcast_ref::<PagConvOp>().context("PagConv state given another op")?;
        let x = args_1!(inputs);
        let view = x.to_plain_array_view::<f32>()?;
        let input = view.as_slice().context("conv input is not contiguous")?;
        let g = op.conv.geometry();
        let shape = [1, op.conv.out_channels(), g.out_height(), g.out_width()];
        let scratch = &mut self.scratch;
        // The dense conv writes every output element.
        let out = self.output.fill(&shape, |output| {
            op.conv.run_dense(input, output, scratch)?;
            if op.relu {
                output.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            Ok(())
        })?;
        Ok(tvec!(out))
    }

    fn reset_lanes(&mut self, _lanes: &[LaneId]) -> TractResult<()> {
        Ok(())
    }
}

impl TypedOp for PagConvOp {
    as_op!();

    fn output_facts(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let g = self.conv.geometry();
        Ok(tvec!(f32::fact([1, self.conv.out_channels(), g.out_height(), g.out_width()])))
    }

    fn cost(&self, _inputs: &[&TypedFact]) -> TractResult<TVec<(Cost, TDim)>> {
        let g = self.conv.geometry();
        let macs = self.conv.out_channels() * self.conv.in_channels() * g.taps() * g.out_height() * g.out_width();
        Ok(tvec!((Cost::FMA(f32::datum_type()), macs.to_dim())))
    }
}
