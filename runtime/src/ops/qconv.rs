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
        let c = &self.conv;
        format!(
            "{} int8 {}",
            self.name,
            super::conv::describe(c.geometry(), c.in_channels(), c.out_channels(), c.relu())
        )
    }

    fn output_fact(&self, _inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        Ok(super::conv::output_fact(self.conv.geometry(), self.conv.out_channels()))
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(super::conv::dense_fmas(self.conv.geometry(), self.conv.in_channels(), self.conv.out_channels()))
    }

    fn eval(&self, scratch: &mut QConv2dScratch, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let x = args_1!(inputs);
        let input = floats(&x, "quantized conv input")?;
        let g = self.conv.geometry();
        let shape = [1, self.conv.out_channels(), g.out_height(), g.out_width()];
        output.fill(&shape, |out| Ok(self.conv.run(input, out, scratch)?))
    }
}
