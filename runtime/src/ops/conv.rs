//! [`ConvOp`]: a dense convolution (f32, NCHW, batch 1, groups 1) on pagrt's im2col + GEMM
//! kernel, optionally with its ReLU fused, in place of tract's `Conv` for the network's ungated
//! spatial convs (stem, down-sampling, decoder).
use tract_onnx::tract_core::internal::*;

use super::{floats, OutputSlot, PagKernelOp};
use crate::kernels::cpu_f32::{ConvScratch, PerforatedConv};
use crate::pag::ConvGeometry;

/// A dense convolution `[1, C, h, w] → [1, O, oh, ow]` with bias, optionally followed by ReLU.
#[derive(Debug, Clone)]
pub struct ConvOp {
    /// The kernel (weights, bias, geometry).
    pub conv: PerforatedConv,
    /// Whether a ReLU follows (fused into the output pass).
    pub relu: bool,
}

impl PagKernelOp for ConvOp {
    type State = ConvScratch;
    const NAME: &'static str = "PagConv";

    fn info(&self) -> String {
        describe(self.conv.geometry(), self.conv.in_channels(), self.conv.out_channels(), self.relu)
    }

    fn output_fact(&self, _inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        Ok(output_fact(self.conv.geometry(), self.conv.out_channels()))
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(dense_fmas(self.conv.geometry(), self.conv.in_channels(), self.conv.out_channels()))
    }

    fn eval(&self, scratch: &mut ConvScratch, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let x = args_1!(inputs);
        let input = floats(&x, "conv input")?;
        let g = self.conv.geometry();
        let shape = [1, self.conv.out_channels(), g.out_height(), g.out_width()];
        // The dense conv writes every output element.
        output.fill(&shape, |out| Ok(self.conv.run_dense_with(input, out, scratch, self.relu)?))
    }
}

/// `C→O k×k stride s dilation d [+ ReLU]`: a conv op's line in tract's dumps.
pub(super) fn describe(g: &ConvGeometry, inputs: usize, outputs: usize, relu: bool) -> String {
    format!(
        "{inputs}→{outputs} {}×{} stride {} dilation {}{}",
        g.kernel_height(),
        g.kernel_width(),
        g.stride(),
        g.dilation(),
        if relu { " + ReLU" } else { "" }
    )
}

/// A conv op's output: f32 `[1, O, oh, ow]`.
pub(super) fn output_fact(g: &ConvGeometry, outputs: usize) -> TypedFact {
    f32::fact([1, outputs, g.out_height(), g.out_width()])
}

/// A dense conv's FMAs.
pub(super) fn dense_fmas(g: &ConvGeometry, inputs: usize, outputs: usize) -> u64 {
    (outputs * inputs * g.taps() * g.out_height() * g.out_width()) as u64
}
