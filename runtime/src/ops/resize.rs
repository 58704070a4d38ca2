//! [`ResizeOp`]: bilinear `half_pixel` upsampling of NCHW f32 maps on pagrt's separable kernel,
//! in place of tract's generic `Resize`; channel planes split across the session's threads.
use tract_onnx::tract_core::internal::*;

use super::{floats, OutputSlot, PagKernelOp};
use crate::kernels::cpu_f32::{resize_planes, ResizeWorkers};

/// Bilinear resize (ONNX `half_pixel`, clamped edges) of the last two axes of a 4-D f32 tensor
/// `[N, C, ih, iw]` to `[N, C, oh, ow]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResizeOp {
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl PagKernelOp for ResizeOp {
    type State = ResizeWorkers;
    const NAME: &'static str = "PagResize";

    fn info(&self) -> String {
        format!("bilinear half_pixel → {}×{}", self.oh, self.ow)
    }

    fn output_fact(&self, inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        let s = &inputs[0].shape;
        ensure!(s.rank() == 4, "PagResize expects a 4-D input");
        Ok(f32::fact([s[0].clone(), s[1].clone(), self.oh.to_dim(), self.ow.to_dim()]))
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(0)
    }

    fn eval(&self, state: &mut ResizeWorkers, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let x = args_1!(inputs);
        let shape = x.shape();
        ensure!(shape.len() == 4, "PagResize expects a 4-D input, got {shape:?}");
        let (n, c, ih, iw) = (shape[0], shape[1], shape[2], shape[3]);
        let input = floats(&x, "Resize input")?;
        // The kernel writes every output element.
        output.fill(&[n, c, self.oh, self.ow], |out| {
            resize_planes(input, n * c, (ih, iw), out, (self.oh, self.ow), state);
            Ok(())
        })
    }
}
