use proptest::prelude::*;

use super::data::Data;
use crate::kernels::cpu_f32::*;
use crate::pag::*;

/// All branches densely with `reference_conv`, the selector's argmax (ties → lowest index) as a
/// one-hot, `output = Σ onehot_i · branch_i`.
fn reference_multipool(
    c: usize,
    (h, w): (usize, usize),
    input: &[f32],
    selector: (&[f32], &[f32]),
    branches: &[MultiPoolBranch<'_>],
) -> Vec<f32> {
    let (n, p) = (h * w, branches.len());
    let point = ConvGeometry::new((h, w), (1, 1), 1, 1, [0; 4]).unwrap();
    let scores = reference_conv(input, c, selector.0, p, Some(selector.1), &point);
    let onehot: Vec<Vec<f32>> = (0..p)
        .map(|i| {
            let argmax =
                |q: usize| (0..p).fold(0, |best, j| if scores[j * n + q] > scores[best * n + q] { j } else { best });
            (0..n).map(|q| if argmax(q) == i { 1.0 } else { 0.0 }).collect()
        })
        .collect();
    let mut output = vec![0.0f32; c * n];
    for (b, hot) in branches.iter().zip(&onehot) {
        let values = if b.dilation == 0 {
            input.to_vec()
        } else {
            let g = ConvGeometry::new((h, w), (3, 3), 1, b.dilation, [b.dilation; 4]).unwrap();
            let mut v = reference_conv(input, c, b.weights, c, Some(b.bias), &g);
            if b.relu {
                v.iter_mut().for_each(|x| *x = x.max(0.0));
            }
            v
        };
        for (i, o) in output.iter_mut().enumerate() {
            *o += hot[i % n] * values[i];
        }
    }
    output
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn multipool_matches_reference_one_branch_per_pixel(
        (c, h, w) in (1usize..=12, 1usize..=19, 1usize..=19),
        dilations in prop::collection::vec(prop::sample::select(vec![0usize, 1, 2, 4, 6, 8, 10]), 1..=7),
        relus in prop::collection::vec(any::<bool>(), 7),
        steps in prop_oneof![Just(1u64), Just(4), Just(64)],
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let p = dilations.len();
        let selector_weights = data.quantized(p * c, steps);
        let selector_bias = data.quantized(p, steps);
        let convs: Vec<(Vec<f32>, Vec<f32>)> = dilations
            .iter()
            .map(|&d| if d == 0 { (vec![], vec![]) } else { (data.vec(c * c * 9, 1.0 / (9.0 * c as f32).sqrt()), data.vec(c, 0.5)) })
            .collect();
        let branches: Vec<MultiPoolBranch<'_>> = dilations
            .iter()
            .zip(&convs)
            .zip(&relus)
            .map(|((&dilation, (weights, bias)), &relu)| MultiPoolBranch { dilation, weights, bias, relu: relu && dilation > 0 })
            .collect();
        let isas = CpuIsa::supported();
        let isa = isas[seed as usize % isas.len()];
        let module = MultiPool::new(c, (h, w), &selector_weights, &selector_bias, &branches).unwrap().with_isa(isa);
        let input = data.quantized(c * h * w, 64);
        let want = reference_multipool(c, (h, w), &input, (&selector_weights, &selector_bias), &branches);

        let mut output = vec![f32::NAN; c * h * w];
        let mut scratch = MultiPoolScratch::default();
        let stats = module.run(&input, &mut output, &mut scratch).unwrap();
        for (i, (&got, &exp)) in output.iter().zip(&want).enumerate() {
            prop_assert!((got - exp).abs() <= 1e-4, "output {i}: got {got}, reference {exp}");
        }
        // Every pixel ran exactly one branch.
        let mut runs = vec![0usize; h * w];
        (0..p).flat_map(|i| scratch.branch_pixels(i).unwrap().indices()).for_each(|&q| runs[q as usize] += 1);
        prop_assert!(runs.iter().all(|&r| r == 1));
        let conv_pixels: usize = (0..p).filter(|&i| dilations[i] > 0).map(|i| scratch.branch_pixels(i).unwrap().len()).sum();
        let (c2, n) = ((c * c * 9) as u64, (h * w) as u64);
        let convs_dense = dilations.iter().filter(|&&d| d > 0).count() as u64 * c2 * n;
        prop_assert_eq!(stats, MultiPoolStats {
            pixels: h * w,
            conv_pixels,
            executed_macs: (c * p) as u64 * n + c2 * conv_pixels as u64,
            dense_macs: (c * p) as u64 * n + convs_dense,
        });

        // Warm scratch: same bits again, nothing grows.
        let warm = scratch.allocated_bytes();
        let mut again = vec![0.0f32; c * h * w];
        module.run(&input, &mut again, &mut scratch).unwrap();
        prop_assert_eq!(scratch.allocated_bytes(), warm);
        prop_assert!(again.iter().zip(&output).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}

#[test]
fn argmax_ties_pick_the_lowest_branch_and_bad_shapes_are_errors() {
    let copy = MultiPoolBranch { dilation: 0, weights: &[], bias: &[], relu: false };
    let (weights, bias) = (vec![0.0f32; 2 * 2 * 9], vec![-5.0f32; 2]);
    let conv = MultiPoolBranch { dilation: 2, weights: &weights, bias: &bias, relu: true };
    // Equal selector scores everywhere: branch 0 (the copy) wins every pixel.
    let module = MultiPool::new(2, (3, 4), &[0.0; 4], &[1.0, 1.0], &[copy, conv]).unwrap();
    let input: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let mut output = vec![0.0f32; 24];
    let mut scratch = MultiPoolScratch::default();
    let stats = module.run(&input, &mut output, &mut scratch).unwrap();
    assert_eq!(output, input);
    assert_eq!(stats.conv_pixels, 0);
    // Branch 1 wins: the conv gives bias −5, ReLU makes it 0.
    let module = MultiPool::new(2, (3, 4), &[0.0; 4], &[1.0, 2.0], &[copy, conv]).unwrap();
    module.run(&input, &mut output, &mut scratch).unwrap();
    assert!(output.iter().all(|&v| v == 0.0));

    assert!(MultiPool::new(2, (3, 4), &[0.0; 4], &[1.0, 2.0], &[]).is_err());
    assert!(MultiPool::new(2, (3, 4), &[0.0; 3], &[1.0, 2.0], &[copy, conv]).is_err());
    assert!(MultiPool::new(2, (3, 4), &[0.0; 4], &[1.0, 2.0], &[MultiPoolBranch { relu: true, ..copy }, conv]).is_err());
    assert!(MultiPool::new(2, (3, 4), &[0.0; 4], &[1.0, 2.0], &[copy, MultiPoolBranch { bias: &[], ..conv }]).is_err());
    assert!(module.run(&input[1..], &mut output, &mut scratch).is_err());
}
