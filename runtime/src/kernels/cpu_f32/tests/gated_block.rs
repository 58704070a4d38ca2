use proptest::prelude::*;

use super::data::Data;
use crate::kernels::cpu_f32::*;
use crate::mode::ComputeMode;
use crate::pag::*;
use crate::Rho;

/// Owned weights of one block (see [`GatedBlockWeights`] for the shapes).
struct Owned {
    channels: usize,
    mid: usize,
    kernel: usize,
    dilation: usize,
    convs: [Vec<f32>; 8],
}

impl Owned {
    fn random(channels: usize, mid: usize, kernel: usize, dilation: usize, gate_bias: f32, data: &mut Data) -> Self {
        let (c, m, k) = (channels, mid, kernel);
        let scale = |fan_in: usize| 1.0 / (fan_in as f32).sqrt();
        let convs = [
            data.quantized(c, 16),
            vec![gate_bias],
            data.vec(m * c, scale(c)),
            data.vec(m, 0.5),
            data.vec(m * m * k * k, scale(m * k * k)),
            data.vec(m, 0.5),
            data.vec(c * m, scale(m)),
            data.vec(c, 0.5),
        ];
        Owned { channels, mid, kernel, dilation, convs }
    }

    fn weights(&self) -> GatedBlockWeights<'_> {
        let v = &self.convs;
        GatedBlockWeights {
            channels: self.channels,
            mid: self.mid,
            kernel: self.kernel,
            dilation: self.dilation,
            gate_weights: &v[0],
            gate_bias: &v[1],
            reduce_weights: &v[2],
            reduce_bias: &v[3],
            spatial_weights: &v[4],
            spatial_bias: &v[5],
            expand_weights: &v[6],
            expand_bias: &v[7],
        }
    }
}

fn relu(mut v: Vec<f32>) -> Vec<f32> {
    v.iter_mut().for_each(|x| *x = x.max(0.0));
    v
}

/// Every conv at every pixel with `reference_conv`, then `x + mask · branch`, the mask from the
/// gate scores by the mode's rule. Returns the output and the mask's active set.
fn reference_gated_block(
    b: &GatedBlockWeights<'_>,
    (h, w): (usize, usize),
    x: &[f32],
    mode: ComputeMode,
) -> (Vec<f32>, ActiveSet) {
    let (c, m, k, d) = (b.channels, b.mid, b.kernel, b.dilation);
    let point = ConvGeometry::new((h, w), (1, 1), 1, 1, [0; 4]).unwrap();
    let spatial = ConvGeometry::new((h, w), (k, k), 1, d, [d * (k / 2); 4]).unwrap();
    let scores = reference_conv(x, c, b.gate_weights, 1, Some(b.gate_bias), &point);
    let active = match mode {
        ComputeMode::Dense => ActiveSet::full(h, w),
        ComputeMode::Native => ActiveSet::native(&scores, h, w),
        ComputeMode::Budget(rho) => ActiveSet::budget(&scores, h, w, rho.get()),
    }
    .unwrap();
    let mut mask = vec![0.0f32; h * w];
    active.indices().iter().for_each(|&p| mask[p as usize] = 1.0);
    let reduced = relu(reference_conv(x, c, b.reduce_weights, m, Some(b.reduce_bias), &point));
    let spatial = relu(reference_conv(&reduced, m, b.spatial_weights, m, Some(b.spatial_bias), &spatial));
    let branch = reference_conv(&spatial, m, b.expand_weights, c, Some(b.expand_bias), &point);
    let out = x.iter().zip(&branch).enumerate().map(|(i, (&xi, &bi))| xi + mask[i % (h * w)] * bi).collect();
    (out, active)
}

#[derive(Debug, Clone, Copy)]
enum ModeKind {
    Dense,
    Native,
    Budget(f32),
}

fn mode_kind() -> impl Strategy<Value = ModeKind> {
    prop_oneof![
        Just(ModeKind::Dense),
        Just(ModeKind::Native),
        prop_oneof![Just(1.0f32), 0.001f32..1.0].prop_map(ModeKind::Budget),
    ]
}

fn to_mode(kind: ModeKind) -> ComputeMode {
    match kind {
        ModeKind::Dense => ComputeMode::Dense,
        ModeKind::Native => ComputeMode::Native,
        ModeKind::Budget(rho) => ComputeMode::budget(rho).unwrap(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn gated_block_matches_reference_and_passes_inactive_through(
        (c, mid, h, w) in (1usize..=20, 1usize..=12, 1usize..=19, 1usize..=19),
        (kernel, dilation) in (prop_oneof![3 => Just(3usize), 1 => Just(1)], prop::sample::select(vec![1usize, 2, 4])),
        kind in mode_kind(),
        gate_bias in prop_oneof![Just(-100.0f32), Just(100.0), (-16i32..=16).prop_map(|q| q as f32 / 16.0)],
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let owned = Owned::random(c, mid, kernel, dilation, gate_bias, &mut data);
        let isas = CpuIsa::supported();
        let isa = isas[seed as usize % isas.len()];
        let block = GatedBlock::new(&owned.weights(), (h, w)).unwrap().with_isa(isa);
        let input = data.quantized(c * h * w, 64);
        let mode = to_mode(kind);
        let (want, active) = reference_gated_block(&owned.weights(), (h, w), &input, mode);

        let mut x = input.clone();
        let mut scratch = GatedBlockScratch::default();
        let stats = block.run_in_place(&mut x, mode, &mut scratch).unwrap();
        let plane = h * w;
        let mut is_active = vec![false; plane];
        active.indices().iter().for_each(|&p| is_active[p as usize] = true);
        for (i, (&got, &exp)) in x.iter().zip(&want).enumerate() {
            if is_active[i % plane] {
                prop_assert!((got - exp).abs() <= 1e-4, "output {i}: got {got}, reference {exp}");
            } else {
                prop_assert_eq!(got.to_bits(), input[i].to_bits(), "inactive output {} was written", i);
            }
        }
        if active.is_empty() {
            prop_assert!(x.iter().zip(&input).all(|(a, b)| a.to_bits() == b.to_bits()));
        }

        // Stats: the mask's size, the footprint through the spatial geometry, MACs by the formula.
        let pad = dilation * (kernel / 2);
        let geometry = ConvGeometry::new((h, w), (kernel, kernel), 1, dilation, [pad; 4]).unwrap();
        let footprint = active.input_footprint(&geometry).unwrap().len();
        // A footprint of ≥ 2/3 of the grid runs the reduce conv dense.
        let footprint = if 3 * footprint >= 2 * plane { plane } else { footprint };
        let (n, cm, taps) = (plane as u64, (c * mid) as u64, (kernel * kernel) as u64);
        let macs = |a: u64, f: u64| c as u64 * n + cm * f + ((mid * mid) as u64 * taps + cm) * a;
        // From 4/5 active (not all), the branch runs over every pixel, added only where active.
        let dense_branch = active.len() < plane && 5 * active.len() >= 4 * plane;
        let executed = if dense_branch { macs(n, n) } else { macs(active.len() as u64, footprint as u64) };
        prop_assert_eq!(stats, BlockStats {
            active: active.len(),
            pixels: plane,
            footprint,
            executed_macs: executed,
            dense_macs: macs(n, n),
            gate_macs: c as u64 * n,
        });

        // Once warmed up, no mode makes the scratch grow, and a rerun gives the same bits.
        let warm = scratch.allocated_bytes();
        for other in [ComputeMode::Dense, ComputeMode::Native, ComputeMode::budget(0.3).unwrap(), mode] {
            let mut y = input.clone();
            block.run_in_place(&mut y, other, &mut scratch).unwrap();
            prop_assert_eq!(scratch.allocated_bytes(), warm, "{} grew the scratch", other);
            if other == mode {
                prop_assert!(y.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
    }
}

#[test]
fn empty_native_mask_leaves_x_bit_identical_and_dense_counts_everything() {
    let mut data = Data(7);
    let owned = Owned::random(6, 3, 3, 2, -1e6, &mut data);
    let block = GatedBlock::new(&owned.weights(), (5, 7)).unwrap();
    let input = data.vec(6 * 35, 1.0);
    let mut x = input.clone();
    let mut scratch = GatedBlockScratch::default();
    let stats = block.run_in_place(&mut x, ComputeMode::Native, &mut scratch).unwrap();
    assert_eq!((stats.active, stats.footprint, stats.pixels), (0, 0, 35));
    assert_eq!(stats.executed_macs, 6 * 35);
    assert!(x.iter().zip(&input).all(|(a, b)| a.to_bits() == b.to_bits()));
    let dense = block.run_in_place(&mut x, ComputeMode::Dense, &mut scratch).unwrap();
    assert_eq!(dense.executed_macs, dense.dense_macs);
    assert_eq!(dense.dense_macs, 35 * (6 + 6 * 3 + 3 * 3 * 9 + 3 * 6));
}

#[test]
fn bad_shapes_and_modes_are_errors_and_touch_nothing() {
    let mut data = Data(3);
    let owned = Owned::random(4, 2, 3, 1, 0.0, &mut data);
    let good = owned.weights();
    assert!(GatedBlock::new(&good, (0, 4)).is_err());
    assert!(GatedBlock::new(&GatedBlockWeights { kernel: 2, ..good }, (4, 4)).is_err());
    assert!(GatedBlock::new(&GatedBlockWeights { dilation: 0, ..good }, (4, 4)).is_err());
    assert!(GatedBlock::new(&GatedBlockWeights { mid: 3, ..good }, (4, 4)).is_err());
    assert!(GatedBlock::new(&GatedBlockWeights { gate_bias: &[], ..good }, (4, 4)).is_err());
    let short = &owned.convs[6][1..];
    match GatedBlock::new(&GatedBlockWeights { expand_weights: short, ..good }, (4, 4)) {
        Err(crate::PagError::Shape { what, .. }) => assert!(what.contains("expand weights"), "{what}"),
        other => panic!("expected a shape error, got {other:?}"),
    }
    let block = GatedBlock::new(&good, (4, 4)).unwrap();
    let mut scratch = GatedBlockScratch::default();
    let mut x = vec![7.0f32; block.input_len()];
    assert!(block.run_in_place(&mut x[1..], ComputeMode::Dense, &mut scratch).is_err());
    assert!(ComputeMode::budget(0.0).is_err() && ComputeMode::budget(f32::NAN).is_err() && Rho::new(1e-46).is_err());
    assert!(x.iter().all(|&v| v == 7.0));
}

/// A gated MultiPool block computed densely: reduce, every branch at every pixel, the
/// selector's argmax (ties → lowest) as a one-hot, expand, then `x + mask · branch`.
#[allow(clippy::too_many_arguments)]
fn reference_gated_multipool(
    b: &GatedBlockWeights<'_>,
    pool: &MultiPoolWeights<'_>,
    (h, w): (usize, usize),
    x: &[f32],
    mode: ComputeMode,
) -> (Vec<f32>, ActiveSet, Vec<usize>) {
    let (c, m, n, p) = (b.channels, b.mid, h * w, pool.branches.len());
    let point = ConvGeometry::new((h, w), (1, 1), 1, 1, [0; 4]).unwrap();
    let scores = reference_conv(x, c, b.gate_weights, 1, Some(b.gate_bias), &point);
    let active = match mode {
        ComputeMode::Dense => ActiveSet::full(h, w),
        ComputeMode::Native => ActiveSet::native(&scores, h, w),
        ComputeMode::Budget(rho) => ActiveSet::budget(&scores, h, w, rho.get()),
    }
    .unwrap();
    let reduced = relu(reference_conv(x, c, b.reduce_weights, m, Some(b.reduce_bias), &point));
    let sel = reference_conv(&reduced, m, pool.selector_weights, p, Some(pool.selector_bias), &point);
    let choice: Vec<usize> =
        (0..n).map(|q| (0..p).fold(0, |best, j| if sel[j * n + q] > sel[best * n + q] { j } else { best })).collect();
    let outs: Vec<Vec<f32>> = pool
        .branches
        .iter()
        .map(|br| {
            if br.dilation == 0 {
                return reduced.clone();
            }
            let g = ConvGeometry::new((h, w), (3, 3), 1, br.dilation, [br.dilation; 4]).unwrap();
            let v = reference_conv(&reduced, m, br.weights, m, Some(br.bias), &g);
            if br.relu {
                relu(v)
            } else {
                v
            }
        })
        .collect();
    let spatial: Vec<f32> = (0..m * n).map(|i| outs[choice[i % n]][i]).collect();
    let branch = reference_conv(&spatial, m, b.expand_weights, c, Some(b.expand_bias), &point);
    let mut mask = vec![0.0f32; n];
    active.indices().iter().for_each(|&q| mask[q as usize] = 1.0);
    let out = x.iter().zip(&branch).enumerate().map(|(i, (&xi, &bi))| xi + mask[i % n] * bi).collect();
    (out, active, choice)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The gated MultiPool block (contract version 2): at each active pixel exactly the branch
    /// the selector picks, inactive pixels bit-identical, MACs by the formula, on every ISA.
    #[test]
    fn gated_multipool_block_matches_reference(
        (c, mid, h, w) in (1usize..=12, 1usize..=8, 1usize..=17, 1usize..=17),
        dilations in prop::collection::vec(prop::sample::select(vec![0usize, 1, 2, 4, 6]), 2..=5),
        relus in prop::collection::vec(any::<bool>(), 5),
        kind in mode_kind(),
        gate_bias in prop_oneof![Just(-100.0f32), Just(100.0), (-16i32..=16).prop_map(|q| q as f32 / 16.0)],
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let owned = Owned::random(c, mid, 3, 1, gate_bias, &mut data);
        let p = dilations.len();
        let selector_weights = data.quantized(p * mid, 8);
        let selector_bias = data.quantized(p, 8);
        let convs: Vec<(Vec<f32>, Vec<f32>)> = dilations
            .iter()
            .map(|&d| if d == 0 { (vec![], vec![]) } else { (data.vec(mid * mid * 9, 1.0 / (9.0 * mid as f32).sqrt()), data.vec(mid, 0.5)) })
            .collect();
        let branches: Vec<BranchWeights<'_>> = dilations
            .iter()
            .zip(&convs)
            .zip(&relus)
            .map(|((&dilation, (weights, bias)), &relu)| BranchWeights { dilation, weights, bias, relu: relu && dilation > 0 })
            .collect();
        let pool = MultiPoolWeights { selector_weights: &selector_weights, selector_bias: &selector_bias, branches: &branches };
        for isa in CpuIsa::supported() {
            let block = GatedBlock::with_multipool(&owned.weights(), &pool, (h, w)).unwrap().with_isa(isa);
            let input = data.quantized(c * h * w, 64);
            let mode = to_mode(kind);
            let (want, active, choice) = reference_gated_multipool(&owned.weights(), &pool, (h, w), &input, mode);
            let mut x = input.clone();
            let mut scratch = GatedBlockScratch::default();
            let stats = block.run_in_place(&mut x, mode, &mut scratch).unwrap();
            let n = h * w;
            let mut is_active = vec![false; n];
            active.indices().iter().for_each(|&q| is_active[q as usize] = true);
            for (i, (&got, &exp)) in x.iter().zip(&want).enumerate() {
                if is_active[i % n] {
                    prop_assert!((got - exp).abs() <= 1e-4, "{}: output {i}: got {got}, reference {exp}", isa.name);
                } else {
                    prop_assert_eq!(got.to_bits(), input[i].to_bits(), "{}: inactive output {} was written", isa.name, i);
                }
            }
            // MACs: gate everywhere; reduce where it ran; selector, one branch and expand at the
            // branch pixels (the active ones, or all on the dense-branch path).
            let dense_branch = active.len() < n && 5 * active.len() >= 4 * n;
            let every: Vec<usize> = if dense_branch || active.is_full() { (0..n).collect() } else { active.indices().iter().map(|&q| q as usize).collect() };
            let taps: u64 = every.iter().map(|&q| if dilations[choice[q]] == 0 { 0 } else { 9 }).sum();
            let (cu, mu, pu) = (c as u64, mid as u64, p as u64);
            let e = every.len() as u64;
            let expected = cu * n as u64 + cu * mu * stats.footprint as u64 + mu * pu * e + mu * mu * taps + mu * cu * e;
            prop_assert_eq!(stats.executed_macs, expected);
            prop_assert_eq!(stats.active, active.len());
            prop_assert!(stats.footprint >= every.len().min(n));
            let conv_branches = dilations.iter().filter(|&&d| d > 0).count() as u64;
            prop_assert_eq!(stats.dense_macs, n as u64 * (cu + cu * mu + mu * pu + 9 * conv_branches * mu * mu + mu * cu));
            // Warm: no growth, same bits.
            let warm = scratch.allocated_bytes();
            let mut y = input.clone();
            block.run_in_place(&mut y, mode, &mut scratch).unwrap();
            prop_assert_eq!(scratch.allocated_bytes(), warm);
            prop_assert!(y.iter().zip(&x).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The gated block's channels-last im2col, every ISA build, against the per-tap definition
    /// (a copy: bit-exact), at the row lengths the vector builds copy as fixed-size arrays
    /// (16 … 96 floats) and others, dilated and not, at the borders and inside.
    #[test]
    fn channels_last_im2col_of_every_build_matches_its_definition(
        mid in prop::sample::select(vec![1usize, 5, 8, 12, 16, 24, 32, 64]),
        (kernel, dilation) in (prop::sample::select(vec![1usize, 3]), 1usize..=3),
        (h, w) in (1usize..=9, 1usize..=40),
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let pad = dilation * (kernel / 2);
        let g = ConvGeometry::new((h, w), (kernel, kernel), 1, dilation, [pad; 4]).unwrap();
        let reduced = data.vec(h * w * mid, 1.0);
        let tile: Vec<u32> = (0..(h * w) as u32).filter(|_| data.below(3) > 0).collect();
        prop_assume!(!tile.is_empty());
        let depth = kernel * kernel * mid;
        let mut expected = vec![0f32; tile.len() * depth];
        for (&p, row) in tile.iter().zip(expected.chunks_exact_mut(depth)) {
            let (y, x) = (p as usize / w, p as usize % w);
            for (tap, dst) in row.chunks_exact_mut(mid).enumerate() {
                let iy = (y + (tap / kernel) * dilation) as isize - pad as isize;
                let ix = (x + (tap % kernel) * dilation) as isize - pad as isize;
                if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w {
                    dst.copy_from_slice(&reduced[(iy as usize * w + ix as usize) * mid..][..mid]);
                }
            }
        }
        for isa in CpuIsa::supported() {
            let mut columns = vec![f32::NAN; tile.len() * depth];
            // SAFETY: `supported` lists tables this CPU runs.
            unsafe { (isa.im2col_channels_last)(&g, mid, &tile, &reduced, &mut columns) };
            prop_assert!(columns.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", isa.name);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Gate scores, every ISA build on 1 and 3 threads: the same bits as the portable build on one
    /// thread (the masks must not depend on the machine), and the definition `bias + Σ_c w_c·x_c`
    /// summed in channel order.
    #[test]
    fn gate_scores_of_every_build_and_split_have_the_same_bits(
        (c, n) in (1usize..=40, 1usize..=5000),
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let x = data.vec(c * n, 3.0);
        let weights = data.vec(c, 1.0);
        let bias = data.signed();
        let mut want = vec![bias; n];
        for (plane, &w) in x.chunks_exact(n).zip(&weights) {
            want.iter_mut().zip(plane).for_each(|(s, &v)| *s += w * v);
        }
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for isa in CpuIsa::supported() {
                let mut got = vec![f32::NAN; n];
                pool.install(|| super::super::gated_block::gate_scores_with(isa, &x, &weights, bias, &mut got));
                prop_assert!(got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits()), "{} on {threads} threads", isa.name);
            }
        }
    }
}
