//! Property tests of the int8 kernels against direct integer references, on every int8 kernel
//! tract-linalg runs on this CPU (not only the one a block would pick).
use proptest::prelude::*;

use super::*;
use crate::kernels::cpu_f32::tests::data::Data;
use crate::mode::ComputeMode;
use crate::pag::ConvGeometry;
use crate::pag::*;

fn random_i8(data: &mut Data, len: usize) -> Vec<i8> {
    (0..len).map(|_| (data.below(255) as i32 - 127) as i8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Every kernel's product on a K4 tile (row length `ld > n`) equals the direct sum, bit for
    /// bit — odd sizes included (partial vectors and panels, every remainder of output channels)
    /// and extreme values.
    #[test]
    fn every_int8_kernel_matches_the_direct_product(
        (m, kq, n) in (1usize..=40, 1usize..=80, 1usize..=70),
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let k = 4 * kq;
        let a = random_i8(&mut data, m * k);
        let ld = n + data.below(5);
        let mut tile: Vec<u8> = (0..kq * ld * 4).map(|_| data.below(256) as u8).collect();
        tile.iter_mut().step_by(5).for_each(|v| *v = 255);
        let value = |kk: usize, j: usize| tile[((kk / 4) * ld + j) * 4 + kk % 4] as i32;
        let want: Vec<i32> = (0..m * n).map(|i| (0..k).map(|kk| a[(i / n) * k + kk] as i32 * value(kk, i % n)).sum()).collect();
        let kernels = I8Kernel::all(m, k, n);
        prop_assert!(!kernels.is_empty());
        for kernel in kernels {
            let packed = kernel.pack_weights(&a, m, k).unwrap();
            let mut s = I8GemmScratch::default();
            s.reserve(&kernel, m, k, n);
            let got = kernel.conv_k4(&packed, &tile, ld, n, &mut s).to_vec();
            prop_assert_eq!(&got, &want, "{}", kernel.name());
        }
    }
}

/// The kernel the blocks run on never passes over a dot-product one (VNNI, AMX, SDOT) that this
/// CPU runs: tract-linalg's own pick did on an emulated Cortex-A76 (SMLAL over SDOT). Shapes of
/// the shipped model's gated blocks.
#[test]
fn the_chosen_int8_kernel_uses_dot_product_wherever_one_runs() {
    if std::env::var_os("PAGRT_INT8_KERNEL").is_some() {
        return; // an explicit choice overrides the rule.
    }
    for (m, k, n) in [(32, 48, 256), (48, 32, 256), (32, 288, 256), (64, 96, 200), (96, 64, 200), (64, 576, 200)] {
        let best = I8Kernel::best(m, k, n).unwrap();
        let all: Vec<String> = I8Kernel::all(m, k, n).iter().map(|k| k.name().to_owned()).collect();
        assert!(all.iter().any(|a| a == best.name()), "{} is not among {all:?}", best.name());
        let dot = I8Kernel::all(m, k, n).iter().any(I8Kernel::has_dot_product);
        assert_eq!(best.has_dot_product(), dot, "{m}×{k}×{n}: chose {} among {all:?}", best.name());
    }
}

/// Owned quantized weights of one conv.
struct OwnedConv {
    weights: Vec<i8>,
    scales: Vec<f32>,
    bias: Vec<i32>,
    input: QParams,
    output: QParams,
}

impl OwnedConv {
    fn random(data: &mut Data, out: usize, inp: usize, taps: usize, input: QParams, output: QParams) -> Self {
        let fan_in = (inp * taps) as f32;
        OwnedConv {
            weights: random_i8(data, out * inp * taps),
            scales: (0..out).map(|_| (0.5 + data.signed().abs()) / (127.0 * fan_in.sqrt())).collect(),
            bias: (0..out).map(|_| (data.signed() * 2000.0) as i32).collect(),
            input,
            output,
        }
    }

    fn view(&self) -> QConvWeights<'_> {
        QConvWeights {
            weights: &self.weights,
            scales: &self.scales,
            bias: &self.bias,
            input: self.input,
            output: self.output,
        }
    }
}

/// The quantized arithmetic of one conv at every pixel, by direct sums: `input` is `h·w × inp`
/// u8 (channels-last), the result `h·w × out` u8, requantized by [`QConv`].
fn reference_qconv(conv: &QConv, input: &[u8], inp: usize, (h, w): (usize, usize), k: usize, d: usize) -> Vec<u8> {
    let pad = (k / 2 * d) as isize;
    let mut out = vec![0u8; h * w * conv.out];
    for y in 0..h {
        for x in 0..w {
            for o in 0..conv.out {
                let mut acc = 0i32;
                for tap in 0..k * k {
                    let (iy, ix) =
                        (y as isize - pad + ((tap / k) * d) as isize, x as isize - pad + ((tap % k) * d) as isize);
                    for i in 0..inp {
                        let v = if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                            input[(iy as usize * w + ix as usize) * inp + i]
                        } else {
                            conv.input.zero_point
                        };
                        acc += conv.weights[o * conv.depth + tap * inp + i] as i32 * v as i32;
                    }
                }
                out[(y * w + x) * conv.out + o] = conv.requantize(o, acc);
            }
        }
    }
    out
}

struct Case {
    c: usize,
    mid: usize,
    gate: Vec<f32>,
    gate_bias: Vec<f32>,
    reduce: OwnedConv,
    branches: Vec<(usize, Option<OwnedConv>, bool)>,
    selector: Vec<f32>,
    selector_bias: Vec<f32>,
    expand: OwnedConv,
}

impl Case {
    fn random(data: &mut Data, c: usize, mid: usize, dilations: &[usize], kernel: usize, gate_bias: f32) -> Case {
        let x_q = QParams::new(2.0 / 255.0, 120 + data.below(16) as u8).unwrap();
        let r_q = QParams::new(1.5 / 255.0, data.below(3) as u8).unwrap();
        let s_q = if dilations.len() > 1 { r_q } else { QParams::new(1.2 / 255.0, 0).unwrap() };
        let o_q = QParams::new(3.0 / 255.0, 110 + data.below(30) as u8).unwrap();
        let taps = if dilations.len() > 1 { 9 } else { kernel * kernel };
        let branches = dilations
            .iter()
            .map(|&d| match d {
                0 => (0, None, false),
                d => (
                    d,
                    Some(OwnedConv::random(data, mid, mid, taps, r_q, s_q)),
                    dilations.len() == 1 || data.below(2) == 0,
                ),
            })
            .collect();
        let p = dilations.len();
        Case {
            c,
            mid,
            gate: data.quantized(c, 16),
            gate_bias: vec![gate_bias],
            reduce: OwnedConv::random(data, mid, c, 1, x_q, r_q),
            branches,
            selector: if p > 1 { data.quantized(p * mid, 8) } else { vec![] },
            selector_bias: if p > 1 { data.quantized(p, 8) } else { vec![] },
            expand: OwnedConv::random(data, c, mid, 1, s_q, o_q),
        }
    }

    fn build(&self, kernel: usize, dilation: usize, size: (usize, usize)) -> crate::Result<GatedBlockI8> {
        let spatial = self.branches[0].1.as_ref().unwrap_or(&self.reduce).view();
        let weights = QGatedBlockWeights {
            channels: self.c,
            mid: self.mid,
            kernel,
            dilation,
            gate_weights: &self.gate,
            gate_bias: &self.gate_bias,
            reduce: self.reduce.view(),
            spatial,
            expand: self.expand.view(),
        };
        if self.branches.len() == 1 {
            return GatedBlockI8::new(&weights, size);
        }
        let branches: Vec<QBranchWeights<'_>> = self
            .branches
            .iter()
            .map(|(d, conv, relu)| QBranchWeights {
                dilation: *d,
                conv: conv.as_ref().map(OwnedConv::view),
                relu: *relu,
            })
            .collect();
        let pool = QMultiPoolWeights {
            selector_weights: &self.selector,
            selector_bias: &self.selector_bias,
            branches: &branches,
        };
        GatedBlockI8::with_multipool(&weights, &pool, size)
    }

    /// The block by direct sums at every pixel: `x + mask · dequantize(expand(branch(reduce)))`
    /// with the branch the selector's argmax (ties → lowest). Returns the output and the mask.
    fn reference(&self, kernel: usize, (h, w): (usize, usize), x: &[f32], mode: ComputeMode) -> (Vec<f32>, ActiveSet) {
        let (c, mid, n) = (self.c, self.mid, h * w);
        let mut scores = vec![self.gate_bias[0]; n];
        for (plane, &wc) in x.chunks_exact(n).zip(&self.gate) {
            scores.iter_mut().zip(plane).for_each(|(s, &v)| *s += wc * v);
        }
        let active = match mode {
            ComputeMode::Dense => ActiveSet::full(h, w),
            ComputeMode::Native => ActiveSet::native(&scores, h, w),
            ComputeMode::Budget(rho) => ActiveSet::budget(&scores, h, w, rho.get()),
        }
        .unwrap();
        let qc = |o: &OwnedConv, out, inp, taps, relu| QConv::new(&o.view(), out, inp, taps, relu, "ref").unwrap();
        let reduce = qc(&self.reduce, mid, c, 1, true);
        let xq: Vec<u8> = (0..n * c).map(|i| reduce.input.quantize(x[(i % c) * n + i / c])).collect();
        let reduced = reference_qconv(&reduce, &xq, c, (h, w), 1, 1);
        let p = self.branches.len();
        let outs: Vec<Vec<u8>> = self
            .branches
            .iter()
            .map(|(d, conv, relu)| match conv {
                None => reduced.clone(),
                Some(conv) => {
                    let k = if p > 1 { 3 } else { kernel };
                    reference_qconv(&qc(conv, mid, mid, k * k, *relu), &reduced, mid, (h, w), k, *d)
                }
            })
            .collect();
        let choice: Vec<usize> = (0..n)
            .map(|q| {
                if p == 1 {
                    return 0;
                }
                let row = &reduced[q * mid..][..mid];
                let s: Vec<f32> = (0..p)
                    .map(|b| {
                        let wb = &self.selector[b * mid..][..mid];
                        self.selector_bias[b]
                            + wb.iter().zip(row).map(|(a, &v)| a * reduce.output.dequantize(v)).sum::<f32>()
                    })
                    .collect();
                (0..p).fold(0, |best, j| if s[j] > s[best] { j } else { best })
            })
            .collect();
        let spatial: Vec<u8> = (0..n * mid).map(|i| outs[choice[i / mid]][i]).collect();
        let expand = qc(&self.expand, c, mid, 1, false);
        let branch = reference_qconv(&expand, &spatial, mid, (h, w), 1, 1);
        let mut out = x.to_vec();
        for &q in active.indices() {
            for o in 0..c {
                out[o * n + q as usize] += expand.output.dequantize(branch[q as usize * c + o]);
            }
        }
        (out, active)
    }
}

fn mode_of(kind: u8, rho: f32) -> ComputeMode {
    match kind % 3 {
        0 => ComputeMode::Dense,
        1 => ComputeMode::Native,
        _ => ComputeMode::budget(rho).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A quantized gated block (plain or MultiPool) equals the direct integer reference bit for
    /// bit at active pixels and leaves inactive pixels untouched, on every int8 kernel, in
    /// every mode; a warm rerun allocates nothing and gives the same bits.
    #[test]
    fn quantized_gated_block_matches_the_integer_reference(
        (c, mid, h, w) in (1usize..=20, 1usize..=12, 1usize..=15, 1usize..=15).prop_flat_map(|(c, mid, h, w)| {
            // Half the cases with channel counts the VNNI kernel takes (multiples of 4).
            prop_oneof![Just((c, mid, h, w)), Just((4 * c.div_ceil(4), 4 * mid.div_ceil(4), h, w))]
        }),
        (kernel, dilation) in (prop_oneof![3 => Just(3usize), 1 => Just(1)], prop::sample::select(vec![1usize, 2, 4])),
        pool in prop_oneof![1 => Just(vec![]), 1 => prop::collection::vec(prop::sample::select(vec![0usize, 1, 2, 4]), 2..=4)],
        (kind, rho) in (any::<u8>(), 0.01f32..1.0),
        gate_bias in prop_oneof![Just(-100.0f32), Just(100.0), (-16i32..=16).prop_map(|q| q as f32 / 16.0)],
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let dilations = if pool.is_empty() { vec![dilation] } else { pool };
        let case = Case::random(&mut data, c, mid, &dilations, kernel, gate_bias);
        let base = case.build(kernel, dilation, (h, w)).unwrap();
        let input = data.quantized(c * h * w, 64);
        let mode = mode_of(kind, rho);
        let (want, active) = case.reference(kernel, (h, w), &input, mode);
        let n = h * w;
        let mut is_active = vec![false; n];
        active.indices().iter().for_each(|&q| is_active[q as usize] = true);
        let taps = if dilations.len() > 1 { 9 } else { kernel * kernel };
        let isas = crate::kernels::cpu_f32::CpuIsa::supported();
        for (i, k8) in I8Kernel::all(c.max(mid), (taps * mid).max(c), 256).into_iter().enumerate() {
            // Every kernel, and every element-wise build (cycled, offset by the seed).
            let isa = isas[(i + seed as usize) % isas.len()];
            let name = format!("{} + {}", k8.name(), isa.name);
            let block = base.clone().with_kernel(k8).unwrap().with_isa(isa);
            let mut x = input.clone();
            let mut scratch = GatedBlockI8Scratch::default();
            let stats = block.run_in_place(&mut x, mode, &mut scratch).unwrap();
            prop_assert_eq!(stats.active, active.len());
            for (i, (&got, &exp)) in x.iter().zip(&want).enumerate() {
                if is_active[i % n] {
                    prop_assert_eq!(got.to_bits(), exp.to_bits(), "{}: output {}: got {}, reference {}", name, i, got, exp);
                } else {
                    prop_assert_eq!(got.to_bits(), input[i].to_bits(), "{}: inactive output {} was written", name, i);
                }
            }
            let warm = scratch.allocated_bytes();
            let mut y = input.clone();
            block.run_in_place(&mut y, mode, &mut scratch).unwrap();
            prop_assert_eq!(scratch.allocated_bytes(), warm);
            prop_assert!(y.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

#[test]
fn round_half_even_is_onnx_rounding() {
    for v in [0.5f32, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 254.5, 255.5, -127.5, 3.0e6 + 0.5, 1e-30] {
        assert_eq!(quant::round_half_even(v), v.round_ties_even(), "{v}");
    }
    let mut data = Data(9);
    for _ in 0..100_000 {
        let v = data.signed() * 70_000.0;
        assert_eq!(quant::round_half_even(v), v.round_ties_even(), "{v}");
    }
    assert_eq!(quant::round_half_even(1e9), 4_194_304.0);
}

#[test]
fn mismatched_quantization_and_bad_scales_are_errors() {
    let mut data = Data(5);
    let case = Case::random(&mut data, 6, 4, &[1], 3, 0.0);
    assert!(case.build(3, 1, (5, 5)).is_ok());
    let mut bad = Case::random(&mut Data(5), 6, 4, &[1], 3, 0.0);
    bad.expand.input = QParams::new(0.5, 3).unwrap();
    let err = bad.build(3, 1, (5, 5)).unwrap_err().to_string();
    assert!(err.contains("expand conv reads"), "{err}");
    assert!(QParams::new(0.0, 0).is_err() && QParams::new(f32::NAN, 0).is_err());
    let mut zero_scale = Case::random(&mut Data(5), 6, 4, &[1], 3, 0.0);
    zero_scale.reduce.scales[2] = 0.0;
    assert!(zero_scale.build(3, 1, (5, 5)).is_err());
}

proptest! {
    /// The quad gather of every element-wise build equals plain indexing, for index rows that
    /// are runs, clustered within 32 or 64 (the permute paths), spread out (hardware gather), point at
    /// a padding column far away, or end at the last quad of the source.
    #[test]
    fn every_gather_build_equals_indexing(
        len in 1usize..200,
        base in 0usize..40,
        kind in 0u8..6,
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let src: Vec<u32> = (0..base + 300).map(|_| data.below(u32::MAX as usize) as u32).collect();
        let n = src.len() - base;
        let mut index: Vec<u32> = Vec::with_capacity(len);
        let mut at = data.below(n);
        for _ in 0..len {
            let step = match kind {
                0 => 1,
                1 => 1 + data.below(2),
                2 => 1 + data.below(8),
                3 => 1 + data.below(40),
                _ => data.below(3),
            };
            at = (at + step) % n;
            let pad = kind == 5 && data.below(6) == 0;
            index.push(if pad { (n - 1) as u32 } else { at as u32 });
        }
        if kind == 4 {
            // Every other quad up to the last one of the source (windows cut by its end).
            for (k, v) in index.iter_mut().rev().enumerate() {
                *v = (n - 1).saturating_sub(2 * k) as u32;
            }
        }
        let want: Vec<u32> = index.iter().map(|&i| src[base + i as usize]).collect();
        for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
            let mut got = vec![0u32; len];
            // SAFETY: every index is below n, within src[base..].
            unsafe { (super::simd::for_isa(isa).gather)(&src, base, &index, &mut got) };
            prop_assert_eq!(&got, &want, "{}", isa.name);
        }
    }
}

proptest! {
    /// Quantizing 1–4 planes straight into K4 quads equals `quantize` then `interleave`, on every
    /// element-wise build (values beyond the u8 range, ties and NaN included).
    #[test]
    fn every_quantize_quads_build_equals_quantize_then_interleave(
        rows in 1usize..=4,
        n in 1usize..100,
        zp in 0u8..=255,
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let scale = 0.05f32;
        let src: Vec<f32> = (0..rows * n)
            .map(|_| match data.below(10) {
                0 => f32::NAN,
                1 => (data.below(21) as f32 - 10.0 + 0.5) * scale, // ties
                _ => data.below(4000) as f32 / 100.0 - 20.0,
            })
            .collect();
        let portable = super::simd::for_isa(crate::kernels::cpu_f32::CpuIsa::supported()[0]);
        for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
            let simd = super::simd::for_isa(isa);
            let mut planar = vec![0u8; rows * n];
            let (mut want, mut got) = (vec![0u32; n], vec![7u32; n]);
            // SAFETY: every build runs on this CPU (supported()).
            unsafe {
                (portable.quantize)(&src, scale, zp as f32, &mut planar);
                (portable.interleave)(&planar, rows, n, &mut want, n);
                (simd.quantize_quads)(&src, rows, n, scale, zp as f32, &mut got);
            }
            prop_assert_eq!(&got, &want, "{}", isa.name);
        }
    }
}

proptest! {
    /// The requantize-and-add at pixels of every element-wise build equals the scalar
    /// arithmetic, bit for bit, for pixel lists that are runs (vector stores), ascending with
    /// gaps, repeated or descending (scalar stores).
    #[test]
    fn every_requantize_add_at_build_equals_scalar(
        len in 1usize..120,
        kind in 0u8..5,
        relu in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let n = 400;
        let mut pixels: Vec<u32> = Vec::with_capacity(len);
        let mut at = data.below(n / 4);
        for _ in 0..len {
            let step = match kind {
                0 => 1,
                1 => 1 + data.below(3),
                2 => 1 + data.below(12),
                _ => data.below(3),
            };
            at = (at + step) % n;
            pixels.push(at as u32);
        }
        if kind == 4 {
            pixels.reverse();
        }
        let acc: Vec<i32> = (0..len).map(|_| data.below(40_000) as i32 - 20_000).collect();
        let (offset, mult, zp, scale) = (-1234, 0.0037f32, 17.0f32, 0.02f32);
        let lo = if relu { zp } else { 0.0 };
        let start: Vec<f32> = (0..n).map(|_| data.below(1000) as f32 / 100.0 - 5.0).collect();
        let mut want = start.clone();
        for (&a, &p) in acc.iter().zip(&pixels) {
            let q = (quant::round_half_even((a + offset) as f32 * mult) + zp).max(lo).min(255.0);
            want[p as usize] += (q - zp) * scale;
        }
        for isa in crate::kernels::cpu_f32::CpuIsa::supported() {
            let mut got = start.clone();
            // SAFETY: every pixel is below n.
            unsafe { (super::simd::for_isa(isa).requantize_add_at)(&acc, offset, mult, zp, lo, scale, &mut got, &pixels) };
            let (g, w): (Vec<u32>, Vec<u32>) = (got.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
            prop_assert_eq!(g, w, "{}", isa.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// A dense quantized conv (any kernel size, stride, dilation and padding, ReLU or not) equals
    /// the direct reference — quantize, integer sums, requantize, dequantize — bit for bit, on
    /// every int8 kernel and element-wise build.
    #[test]
    fn quantized_conv_matches_the_direct_reference(
        (c, o, h, w) in (1usize..=10, 1usize..=20, 1usize..=13, 1usize..=13),
        (kh, kw, stride, dilation) in (1usize..=3, 1usize..=3, 1usize..=2, 1usize..=2),
        pads in prop::array::uniform4(0usize..=2),
        relu in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let Ok(geometry) = ConvGeometry::new((h, w), (kh, kw), stride, dilation, pads) else { return Ok(()) };
        let x_q = QParams::new(2.0 / 255.0, 100 + data.below(50) as u8).unwrap();
        let y_q = QParams::new(2.5 / 255.0, if relu { 0 } else { 128 }).unwrap();
        let owned = OwnedConv::random(&mut data, o, c, kh * kw, x_q, y_q);
        let input = data.quantized(c * h * w, 64);
        let q = QConv::new(&owned.view(), o, c, kh * kw, relu, "ref").unwrap();
        // Reference: quantize, then for every output pixel the direct sum over taps and channels.
        let xq: Vec<u8> = input.iter().map(|&v| x_q.quantize(v)).collect();
        let (oh, ow) = (geometry.out_height(), geometry.out_width());
        let mut want = vec![0f32; o * oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                let (y0, x0) = geometry.tap_origin(oy, ox);
                for oc in 0..o {
                    let mut acc = 0i32;
                    for ky in 0..kh {
                        for kx in 0..kw {
                            let (iy, ix) = (y0 + (ky * dilation) as isize, x0 + (kx * dilation) as isize);
                            for ci in 0..c {
                                let v = if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                                    xq[(ci * h + iy as usize) * w + ix as usize]
                                } else {
                                    x_q.zero_point
                                };
                                acc += q.weights[oc * q.depth + (ky * kw + kx) * c + ci] as i32 * v as i32;
                            }
                        }
                    }
                    want[(oc * oh + oy) * ow + ox] = 0.0 + y_q.dequantize(q.requantize(oc, acc));
                }
            }
        }
        let base = QConv2d::new(&owned.view(), [o, c, kh, kw], geometry, relu).unwrap();
        let isas = crate::kernels::cpu_f32::CpuIsa::supported();
        for (i, kernel) in I8Kernel::all(o, kh * kw * 4 * c.div_ceil(4), 256).into_iter().enumerate() {
            let isa = isas[(i + seed as usize) % isas.len()];
            let name = format!("{} + {}", kernel.name(), isa.name);
            let conv = base.clone().with_kernel(kernel, isa).unwrap();
            let mut out = vec![f32::NAN; o * oh * ow];
            let mut s = QConv2dScratch::default();
            conv.run(&input, &mut out, &mut s).unwrap();
            for (k, (a, b)) in out.iter().zip(&want).enumerate() {
                prop_assert_eq!(a.to_bits(), b.to_bits(), "{}: output {}: {} vs {}", name, k, a, b);
            }
            let warm = s.allocated_bytes();
            conv.run(&input, &mut out, &mut s).unwrap();
            prop_assert_eq!(s.allocated_bytes(), warm);
        }
    }
}
