//! [`PagResizeOp`]: a tract op running [`resize_bilinear_half_pixel`] in place of tract's
//! generic `Resize` for bilinear `half_pixel` upsamplings of NCHW f32 maps.
use tract_onnx::tract_core::internal::*;

use super::resize::resize_bilinear_half_pixel;

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
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let x = args_1!(inputs);
        let shape = x.shape();
        ensure!(shape.len() == 4, "PagResize expects a 4-D input, got {shape:?}");
        let (n, c, ih, iw) = (shape[0], shape[1], shape[2], shape[3]);
        let view = x.to_plain_array_view::<f32>()?;
        let input = view.as_slice().context("Resize input is not contiguous")?;
        // SAFETY: f32 has no invalid bit patterns, and the kernel writes every output element.
        let mut out = unsafe { Tensor::uninitialized::<f32>(&[n, c, self.oh, self.ow])? };
        let mut out_view = out.to_plain_array_view_mut::<f32>()?;
        let output = out_view.as_slice_mut().context("Resize output is not contiguous")?;
        resize_bilinear_half_pixel(input, n * c, ih, iw, output, self.oh, self.ow);
        Ok(tvec!(out.into_tvalue()))
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
