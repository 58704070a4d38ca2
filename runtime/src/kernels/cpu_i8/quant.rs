//! The arithmetic of a QDQ conv (models/CONTRACT.md, "Quantized models"), written once and used
//! by the kernels and by their references alike.
//!
//! Activations are per-tensor asymmetric u8 (`real = scale · (q − zero_point)`), weights
//! per-output-channel symmetric s8, biases s32 in units of `input.scale · weight_scale[o]`.
//! Accumulators are `Σ w · q` over the u8 activations; the conv's constant [`QConv::offset`]
//! holds the bias and the zero point's share.
use crate::error::{PagError, Result};

/// Round half to even, as ONNX QuantizeLinear does, for `|v| < 2²²` (larger values are clamped
/// there first; every caller saturates to 0..=255 afterwards). Adding and subtracting 1.5 · 2²³
/// rounds in the FPU's default mode (ties to even) — `f32::round_ties_even` is a libm call on
/// the baseline x86-64 target.
#[inline(always)]
pub fn round_half_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v.clamp(-4_194_304.0, 4_194_304.0) + MAGIC) - MAGIC
}

/// Per-tensor quantization of an activation: `real = scale · (q − zero_point)`, `q` in 0..=255.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    pub scale: f32,
    pub zero_point: u8,
}

impl QParams {
    /// Errors unless the scale is finite and positive.
    pub fn new(scale: f32, zero_point: u8) -> Result<QParams> {
        if !(scale.is_finite() && scale > 0.0) {
            return Err(PagError::Shape {
                what: "activation quantization scale".into(),
                expected: "a finite scale > 0".into(),
                got: format!("{scale}"),
            });
        }
        Ok(QParams { scale, zero_point })
    }

    /// ONNX QuantizeLinear to u8: `saturate(round_half_even(x / scale) + zero_point)`.
    #[inline]
    pub fn quantize(&self, x: f32) -> u8 {
        let q = round_half_even(x / self.scale) + self.zero_point as f32;
        q.clamp(0.0, 255.0) as u8
    }

    /// ONNX DequantizeLinear: `scale · (q − zero_point)`.
    #[inline]
    pub fn dequantize(&self, q: u8) -> f32 {
        (q as i32 - self.zero_point as i32) as f32 * self.scale
    }
}

/// A quantized conv as a QDQ model stores it.
#[derive(Debug, Clone, Copy)]
pub struct QConvWeights<'a> {
    /// `[out, in, kh, kw]`.
    pub weights: &'a [i8],
    /// Per output channel, `[out]`.
    pub scales: &'a [f32],
    /// `[out]` in units of `input.scale · scales[o]`; empty means zeros.
    pub bias: &'a [i32],
    /// The quantization of the conv's input tensor.
    pub input: QParams,
    /// The quantization of the conv's output tensor (after its ReLU, if any).
    pub output: QParams,
}

/// A conv's requantization: `out = saturate(round_half_even((acc + offset[o]) · multiplier[o])
/// + zero_point)` with `acc = Σ w · q_in` (u8 activations); a ReLU clamps at the zero point.
#[derive(Debug, Clone)]
pub struct QConv {
    /// Output channels.
    pub out: usize,
    /// Weights per output channel (`in · taps`).
    pub depth: usize,
    /// `[out][tap][in]`: the GEMM's A operand for channels-last im2col.
    pub weights: Vec<i8>,
    /// `bias[o] − zp_in · Σ_k w[o][k]`.
    pub offset: Vec<i32>,
    /// `input.scale · scales[o] / output.scale`.
    pub multiplier: Vec<f32>,
    pub input: QParams,
    pub output: QParams,
    pub relu: bool,
}

impl QConv {
    /// From ONNX-layout weights with `taps = kh · kw`; errors on mismatched lengths or bad scales.
    pub fn new(w: &QConvWeights<'_>, out: usize, inp: usize, taps: usize, relu: bool, what: &str) -> Result<QConv> {
        let len = |name: &str, got: usize, want: usize| -> Result<()> {
            if got != want {
                return Err(PagError::Shape {
                    what: format!("{what} {name}"),
                    expected: format!("{want} values"),
                    got: format!("{got}"),
                });
            }
            Ok(())
        };
        len("weights", w.weights.len(), out * inp * taps)?;
        len("weight scales", w.scales.len(), out)?;
        if !w.bias.is_empty() {
            len("bias", w.bias.len(), out)?;
        }
        if let Some(s) = w.scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(PagError::Shape {
                what: format!("{what} weight scales"),
                expected: "finite scales > 0".into(),
                got: format!("{s}"),
            });
        }
        QParams::new(w.input.scale, w.input.zero_point)?;
        QParams::new(w.output.scale, w.output.zero_point)?;
        let depth = inp * taps;
        let mut weights = vec![0i8; out * depth];
        for (o, row) in weights.chunks_exact_mut(depth).enumerate() {
            for tap in 0..taps {
                for i in 0..inp {
                    row[tap * inp + i] = w.weights[(o * inp + i) * taps + tap];
                }
            }
        }
        let shift = -(w.input.zero_point as i32);
        let offset = weights
            .chunks_exact(depth)
            .enumerate()
            .map(|(o, row)| {
                let sum: i32 = row.iter().map(|&v| v as i32).sum();
                w.bias.get(o).copied().unwrap_or(0) + shift * sum
            })
            .collect();
        let multiplier = w.scales.iter().map(|s| w.input.scale * s / w.output.scale).collect();
        Ok(QConv { out, depth, weights, offset, multiplier, input: w.input, output: w.output, relu })
    }

    /// Requantizes one output channel's accumulator.
    #[inline]
    pub fn requantize(&self, o: usize, acc: i32) -> u8 {
        let zp = self.output.zero_point as f32;
        let lo = if self.relu { zp } else { 0.0 };
        let q = round_half_even((acc + self.offset[o]) as f32 * self.multiplier[o]) + zp;
        q.clamp(lo, 255.0) as u8
    }
}
