use crate::pag::ConvGeometry;

/// Direct nested-loop convolution over every output pixel (f32, NCHW, batch 1, groups 1, zero
/// padding), with weights `[out_channels, in_channels, kh, kw]` and an optional bias. Slow and
/// obviously correct: the oracle the perforated kernel is tested against. Panics on size
/// mismatches (it is a test helper, not an API).
pub fn reference_conv(
    input: &[f32],
    in_channels: usize,
    weights: &[f32],
    out_channels: usize,
    bias: Option<&[f32]>,
    geometry: &ConvGeometry,
) -> Vec<f32> {
    let g = geometry;
    let (ih, iw, oh, ow) = (g.in_height(), g.in_width(), g.out_height(), g.out_width());
    let (kh, kw, d, s) = (g.kernel_height(), g.kernel_width(), g.dilation(), g.stride());
    let [top, left, _, _] = g.padding();
    assert_eq!(input.len(), in_channels * ih * iw, "reference_conv input");
    assert_eq!(weights.len(), out_channels * in_channels * kh * kw, "reference_conv weights");
    let mut output = vec![0.0f32; out_channels * oh * ow];
    for co in 0..out_channels {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut acc = bias.map_or(0.0, |b| b[co]) as f64;
                for ci in 0..in_channels {
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let iy = (oy * s + ky * d) as isize - top as isize;
                            let ix = (ox * s + kx * d) as isize - left as isize;
                            if iy < 0 || ix < 0 || iy >= ih as isize || ix >= iw as isize {
                                continue;
                            }
                            let x = input[(ci * ih + iy as usize) * iw + ix as usize];
                            let w = weights[((co * in_channels + ci) * kh + ky) * kw + kx];
                            acc += x as f64 * w as f64;
                        }
                    }
                }
                output[(co * oh + oy) * ow + ox] = acc as f32;
            }
        }
    }
    output
}
