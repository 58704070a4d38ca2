//! [`ResizeOp`]: bilinear `half_pixel` upsampling of NCHW f32 maps on pagrt's separable kernel,
//! in place of tract's generic `Resize`; channel planes split across the session's threads.
use tract_onnx::tract_core::internal::*;

use super::{floats, OutputSlot, PagKernelOp};
use crate::kernels::cpu_f32::{resize_planes, ResizeWorkers};

/// Bilinear resize (ONNX `half_pixel`, clamped edges) of the last two axes of a 4-D f32 tensor
/// `[N, C, ih, iw]` to `[N, C, oh, ow]`; or, with `channels`, of channels `c0..c1` of a
/// `[1, C, ih, iw]` input only (a channel `Slice` after a resize, moved before it: a slice of
/// the small map instead of a copy of the large one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResizeOp {
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
    /// The input channels `c0..c1` to resize (batch 1), or every channel.
    pub channels: Option<(usize, usize)>,
    /// A second input of the output's shape added to the result (a following `Add` fused into
    /// the resize's stores).
    pub add: bool,
}

impl PagKernelOp for ResizeOp {
    type State = ResizeWorkers;
    const NAME: &'static str = "PagResize";

    fn info(&self) -> String {
        let channels = self.channels.map_or(String::new(), |(c0, c1)| format!("channels {c0}..{c1} "));
        let add = if self.add { " + addend" } else { "" };
        format!("bilinear half_pixel {channels}→ {}×{}{add}", self.oh, self.ow)
    }

    fn output_fact(&self, inputs: &[&TypedFact]) -> TractResult<TypedFact> {
        let s = &inputs[0].shape;
        ensure!(s.rank() == 4, "PagResize expects a 4-D input");
        let c = match self.channels {
            Some((c0, c1)) => (c1 - c0).to_dim(),
            None => s[1].clone(),
        };
        Ok(f32::fact([s[0].clone(), c, self.oh.to_dim(), self.ow.to_dim()]))
    }

    fn dense_fmas(&self, _inputs: &[&TypedFact]) -> TractResult<u64> {
        Ok(0)
    }

    fn eval(&self, state: &mut ResizeWorkers, output: &mut OutputSlot, inputs: TVec<TValue>) -> TractResult<TValue> {
        let (x, addend) = if self.add {
            let (x, a) = args_2!(inputs);
            (x, Some(a))
        } else {
            (args_1!(inputs), None)
        };
        let shape = x.shape();
        ensure!(shape.len() == 4, "PagResize expects a 4-D input, got {shape:?}");
        let (n, c, ih, iw) = (shape[0], shape[1], shape[2], shape[3]);
        let input = floats(&x, "Resize input")?;
        let (c, input) = match self.channels {
            Some((c0, c1)) => {
                ensure!(n == 1 && c0 < c1 && c1 <= c, "PagResize of channels {c0}..{c1} given {shape:?}");
                (c1 - c0, &input[c0 * ih * iw..c1 * ih * iw])
            }
            None => (c, input),
        };
        let out_shape = [n, c, self.oh, self.ow];
        let addend = match &addend {
            Some(a) => {
                ensure!(a.shape() == out_shape, "PagResize addend {:?} for output {out_shape:?}", a.shape());
                Some(floats(a, "Resize addend")?)
            }
            None => None,
        };
        // The kernel writes every output element.
        output.fill(&out_shape, |out| {
            resize_planes(input, n * c, (ih, iw), out, (self.oh, self.ow), addend, state);
            Ok(())
        })
    }
}
