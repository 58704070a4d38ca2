//! [`ConvOp`]: a dense convolution (f32, NCHW, batch 1, groups 1) on pagrt's im2col + GEMM
//! kernel, optionally with its ReLU fused, in place of tract's `Conv` for the network's ungated
//! spatial convs (stem, down-sampling, decoder).
use tract_onnx::tract_core::internal::*;

use super::{floats, OutputSlot, PagKernelOp};
use crate::kernels::cpu_f32::{ConvScratch, PerforatedConv};

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
        let g = self.conv.geometry();
        format!(
            "{}→{} {}×{} stride {} dilation {}{}",
            self.conv.in_channels(),
            self.conv.out_channels(),
            g.kernel_height(),
            g.kernel_width(),
            g.stride(),
            g.dilation(),
            if self.relu { " + ReLU" } else { "" }
        )
    }

    fn output_fact(&self, _inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        let g = self.conv.geometry();
        Ok(f32::fact([1, self.conv.out_channels(), g.out_height(), g.out_width()]))
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        let g = self.conv.geometry();
        Ok((self.conv.out_channels() * self.conv.in_channels() * g.taps() * g.out_height() * g.out_width()) as u64)
    }

    fn eval(&self, scratch: &mut ConvScratch, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let x = args_1!(inputs);
        let input = floats(&x, "conv input")?;
        let g = self.conv.geometry();
        let shape = [1, self.conv.out_channels(), g.out_height(), g.out_width()];
        // The dense conv writes every output element.
        output.fill(&shape, |out| {
            self.conv.run_dense(input, out, scratch)?;
            if self.relu {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            Ok(())
        })
    }
}
