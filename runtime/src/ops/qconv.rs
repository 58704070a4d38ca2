//! [`QConvOp`]: a quantized conv of a QDQ model with the Q/DQ pairs around it, in one op (f32 in,
//! f32 out) on pagrt's int8 kernels, in place of tract's conv with its element-wise round trips.
use tract_onnx::tract_core::internal::*;

use super::{floats, OutputSlot, PagKernelOp};
use crate::kernels::cpu_i8::{QConv2d, QConv2dScratch};

/// `DequantizeLinear(QuantizeLinear([Relu](Conv(DequantizeLinear(QuantizeLinear(x))))))`.
#[derive(Debug, Clone)]
pub struct QConvOp {
    /// The conv node's name.
    pub name: String,
    pub conv: QConv2d,
}

impl PagKernelOp for QConvOp {
    type State = QConv2dScratch;
    const NAME: &'static str = "PagQConv";

    fn info(&self) -> String {
        let g = self.conv.geometry();
        format!(
            "{} int8 {}→{} {}×{} stride {} dilation {}{}",
            self.name,
            self.conv.in_channels(),
            self.conv.out_channels(),
            g.kernel_height(),
            g.kernel_width(),
            g.stride(),
            g.dilation(),
            if self.conv.relu() { " + ReLU" } else { "" }
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

    fn eval(&self, scratch: &mut QConv2dScratch, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let x = args_1!(inputs);
        let input = floats(&x, "quantized conv input")?;
        let g = self.conv.geometry();
        let shape = [1, self.conv.out_channels(), g.out_height(), g.out_width()];
        output.fill(&shape, |out| Ok(self.conv.run(input, out, scratch)?))
    }
}
