use proptest::prelude::*;

use super::data::Data;
use crate::kernels::cpu_f32::*;
use crate::pag::*;

const SENTINEL: f32 = 7.0;

#[derive(Debug, Clone, Copy)]
enum MaskKind {
    Empty,
    Full,
    Single,
    Border,
    Rectangle,
    Random(f32),
}

fn mask_kind() -> impl Strategy<Value = MaskKind> {
    prop_oneof![
        Just(MaskKind::Empty),
        Just(MaskKind::Full),
        Just(MaskKind::Single),
        Just(MaskKind::Border),
        Just(MaskKind::Rectangle),
        (0.0f32..1.0).prop_map(MaskKind::Random),
    ]
}

fn make_mask(kind: MaskKind, h: usize, w: usize, data: &mut Data) -> Vec<bool> {
    let (y0, x0) = (data.below(h), data.below(w));
    let (y1, x1) = (y0 + data.below(h - y0), x0 + data.below(w - x0));
    let single = data.below(h * w);
    (0..h * w)
        .map(|p| {
            let (y, x) = (p / w, p % w);
            match kind {
                MaskKind::Empty => false,
                MaskKind::Full => true,
                MaskKind::Single => p == single,
                MaskKind::Border => y == 0 || x == 0 || y == h - 1 || x == w - 1,
                MaskKind::Rectangle => (y0..=y1).contains(&y) && (x0..=x1).contains(&x),
                MaskKind::Random(d) => (data.signed() + 1.0) * 0.5 < d,
            }
        })
        .collect()
}

/// Padding for one axis: symmetric `dilation·(k/2)`, or a random asymmetric pair that still
/// leaves room for the dilated kernel.
fn axis_padding(symmetric: bool, size: usize, k: usize, dilation: usize, data: &mut Data) -> (usize, usize) {
    if symmetric {
        return (dilation * (k / 2), dilation * (k / 2));
    }
    let span = dilation * (k - 1) + 1;
    let before = data.below(span);
    let need = span.saturating_sub(size + before);
    (before, need + data.below(span - need))
}

#[derive(Debug, Clone)]
struct Case {
    cin: usize,
    cout: usize,
    h: usize,
    w: usize,
    k: usize,
    dilation: usize,
    stride: usize,
    symmetric: bool,
    tile: Option<usize>,
    mask: MaskKind,
    seed: u64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (1usize..=24, 1usize..=24, 1usize..=23, 1usize..=23),
        (prop_oneof![Just(1usize), Just(3)], prop::sample::select(vec![1usize, 2, 4, 6, 8, 10]), 1usize..=2),
        (any::<bool>(), prop::option::of(prop::sample::select(vec![1usize, 5, 16, 37, 64]))),
        (mask_kind(), any::<u64>()),
    )
        .prop_map(|((cin, cout, h, w), (k, dilation, stride), (symmetric, tile), (mask, seed))| Case {
            cin,
            cout,
            h,
            w,
            k,
            dilation,
            stride,
            symmetric,
            tile,
            mask,
            seed,
        })
}

struct Built {
    conv: PerforatedConv,
    input: Vec<f32>,
    expected: Vec<f32>,
    mask: Vec<bool>,
    active: ActiveSet,
}

fn build(c: &Case) -> Built {
    let mut data = Data(c.seed);
    let (top, bottom) = axis_padding(c.symmetric, c.h, c.k, c.dilation, &mut data);
    let (left, right) = axis_padding(c.symmetric, c.w, c.k, c.dilation, &mut data);
    let padding = [top, left, bottom, right];
    let weights = data.vec(c.cout * c.cin * c.k * c.k, 1.0 / ((c.cin * c.k * c.k) as f32).sqrt());
    let bias = data.vec(c.cout, 1.0);
    let input = data.vec(c.cin * c.h * c.w, 1.0);
    let mut conv = PerforatedConv::new(
        &weights,
        [c.cout, c.cin, c.k, c.k],
        Some(&bias),
        c.stride,
        c.dilation,
        padding,
        (c.h, c.w),
    )
    .expect("valid conv");
    if let Some(tile) = c.tile {
        conv = conv.with_tile(tile);
    }
    let g = *conv.geometry();
    let expected = reference_conv(&input, c.cin, &weights, c.cout, Some(&bias), &g);
    let mask = make_mask(c.mask, g.out_height(), g.out_width(), &mut data);
    let active = ActiveSet::from_mask(&mask, g.out_height(), g.out_width()).unwrap();
    Built { conv, input, expected, mask, active }
}

fn assert_close(got: f32, want: f32, what: &str) -> Result<(), TestCaseError> {
    prop_assert!((got - want).abs() <= 1e-4, "{what}: got {got}, reference {want}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn perforated_conv_matches_reference_and_skips_inactive(c in case()) {
      for isa in CpuIsa::supported() {
        let mut b = build(&c);
        b.conv = b.conv.with_isa(isa);
        let mut output = vec![SENTINEL; b.conv.output_len()];
        let mut scratch = ConvScratch::default();
        b.conv.run(&b.input, &b.active, &mut output, &mut scratch).unwrap();
        let plane = b.mask.len();
        for (i, (&got, &want)) in output.iter().zip(&b.expected).enumerate() {
            if b.mask[i % plane] {
                assert_close(got, want, &format!("active output {i}"))?;
            } else {
                prop_assert_eq!(got, SENTINEL, "inactive output {} was written", i);
            }
        }
        // A second call with the warmed-up scratch gives the same result and allocates nothing.
        let warm = scratch.allocated_bytes();
        let mut again = vec![SENTINEL; b.conv.output_len()];
        b.conv.run(&b.input, &b.active, &mut again, &mut scratch).unwrap();
        prop_assert_eq!(scratch.allocated_bytes(), warm);
        prop_assert_eq!(again, output);
        // The accumulating variant adds the same values onto what the output holds.
        let mut sum = vec![SENTINEL; b.conv.output_len()];
        b.conv.run_accumulate(&b.input, &b.active, &mut sum, &mut scratch).unwrap();
        for (i, (&got, &want)) in sum.iter().zip(&b.expected).enumerate() {
            let want = if b.mask[i % plane] { SENTINEL + want } else { SENTINEL };
            assert_close(got, want, &format!("{}: accumulated output {i}", isa.name))?;
        }
      }
    }

    #[test]
    fn dense_path_matches_reference(c in case()) {
        for isa in CpuIsa::supported() {
            let b = build(&c);
            let conv = b.conv.with_isa(isa);
            let mut output = vec![SENTINEL; conv.output_len()];
            conv.run_dense(&b.input, &mut output, &mut ConvScratch::default()).unwrap();
            for (i, (&got, &want)) in output.iter().zip(&b.expected).enumerate() {
                assert_close(got, want, &format!("{}: output {i}", isa.name))?;
            }
        }
    }

    /// The direct stride-2 kernel (`strided.rs`) of every ISA build against the reference, any
    /// kernel up to 3×3 (not only square), asymmetric padding, channel counts around its
    /// register blocks, on 1 and 3 threads; a warmed scratch does not grow.
    #[test]
    fn stride_two_direct_conv_matches_reference(
        (cin, cout, h, w) in (1usize..=20, 1usize..=40, 1usize..=41, 1usize..=41),
        (kh, kw, symmetric, seed) in (1usize..=3, 1usize..=3, any::<bool>(), any::<u64>()),
    ) {
        let mut data = Data(seed);
        let (top, bottom) = axis_padding(symmetric, h, kh, 1, &mut data);
        let (left, right) = axis_padding(symmetric, w, kw, 1, &mut data);
        let weights = data.vec(cout * cin * kh * kw, 1.0 / ((cin * kh * kw) as f32).sqrt());
        let bias = data.vec(cout, 1.0);
        let input = data.vec(cin * h * w, 1.0);
        let conv = PerforatedConv::new(&weights, [cout, cin, kh, kw], Some(&bias), 2, 1, [top, left, bottom, right], (h, w))
            .expect("valid conv");
        let expected = reference_conv(&input, cin, &weights, cout, Some(&bias), conv.geometry());
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            for isa in CpuIsa::supported() {
                let conv = conv.clone().with_isa(isa).with_direct(true);
                prop_assert!(conv.is_direct());
                let mut scratch = ConvScratch::default();
                // A scratch that served a larger conv first: its phase buffer holds other data
                // where this conv's padding goes.
                let other = PerforatedConv::new(&[1.5; 2 * 3 * 3], [1, 2, 3, 3], None, 2, 1, [1; 4], (h + 3, w + 5))
                    .expect("valid conv")
                    .with_isa(isa)
                    .with_direct(true);
                let mut scrap = vec![0f32; other.output_len()];
                pool.install(|| other.run_dense(&vec![7.0; other.input_len()], &mut scrap, &mut scratch)).unwrap();
                let mut output = vec![SENTINEL; conv.output_len()];
                pool.install(|| conv.run_dense(&input, &mut output, &mut scratch)).unwrap();
                for (i, (&got, &want)) in output.iter().zip(&expected).enumerate() {
                    assert_close(got, want, &format!("{} on {threads} threads: output {i}", isa.name))?;
                }
                let warm = scratch.allocated_bytes();
                let mut again = vec![SENTINEL; conv.output_len()];
                // (`warm` includes the larger conv's phase buffer: this one fits in it.)
                pool.install(|| conv.run_dense(&input, &mut again, &mut scratch)).unwrap();
                prop_assert_eq!(scratch.allocated_bytes(), warm);
                prop_assert_eq!(&again, &output);
                // The ReLU fused into the stores: exactly max(0, ·) of the plain outputs.
                pool.install(|| conv.run_dense_with(&input, &mut again, &mut scratch, true)).unwrap();
                for (i, (&got, &plain)) in again.iter().zip(&output).enumerate() {
                    prop_assert!(got == plain.max(0.0), "{} ReLU output {i}: {got} vs {plain}", isa.name);
                }
            }
        }
    }

    #[test]
    fn input_footprint_is_exactly_what_the_conv_reads(c in case()) {
        let b = build(&c);
        let g = *b.conv.geometry();
        let footprint = b.active.input_footprint(&g).unwrap();
        let [top, left, _, _] = g.padding();
        let mut read = vec![false; g.in_height() * g.in_width()];
        for &p in b.active.indices() {
            let (oy, ox) = (p as usize / g.out_width(), p as usize % g.out_width());
            for ky in 0..g.kernel_height() {
                for kx in 0..g.kernel_width() {
                    let iy = (oy * g.stride() + ky * g.dilation()) as isize - top as isize;
                    let ix = (ox * g.stride() + kx * g.dilation()) as isize - left as isize;
                    if iy >= 0 && ix >= 0 && (iy as usize) < g.in_height() && (ix as usize) < g.in_width() {
                        read[iy as usize * g.in_width() + ix as usize] = true;
                    }
                }
            }
        }
        prop_assert_eq!(footprint, ActiveSet::from_mask(&read, g.in_height(), g.in_width()).unwrap());
    }

    #[test]
    fn budget_keeps_exactly_k_top_scores_ties_to_lower_index(
        (h, w) in (1usize..=23, 1usize..=23),
        levels in 1u32..=6,
        rho in prop_oneof![Just(1.0f32), Just(0.5), 0.001f32..1.2],
        seed in any::<u64>(),
    ) {
        let mut data = Data(seed);
        let n = h * w;
        // Few distinct levels: heavy ties (levels = 1 makes every score equal).
        let scores: Vec<f32> = (0..n).map(|_| data.below(levels as usize) as f32 - 1.0).collect();
        let k = budget_count(rho, n).unwrap();
        prop_assert_eq!(k, ((rho * n as f32).ceil() as usize).clamp(1, n));
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| scores[b as usize].partial_cmp(&scores[a as usize]).unwrap().then(a.cmp(&b)));
        let mut want = order[..k].to_vec();
        want.sort_unstable();
        let set = ActiveSet::budget(&scores, h, w, rho).unwrap();
        prop_assert_eq!(set.indices(), &want[..]);
        if rho >= 1.0 {
            prop_assert!(set.is_full());
        }
        // Refilling in place gives the same set without growing the list.
        let mut refilled = ActiveSet::full(h, w).unwrap();
        let capacity = refilled.capacity();
        refilled.refill_budget(&scores, h, w, rho).unwrap();
        prop_assert_eq!(&refilled, &set);
        prop_assert_eq!(refilled.capacity(), capacity);
    }
}

#[test]
fn budget_ties_and_signed_zero() {
    let scores = [0.0, -0.0, 5.0, 0.0, -0.0, 5.0];
    let set = ActiveSet::budget(&scores, 2, 3, 0.5).unwrap();
    assert_eq!(set.indices(), &[0, 2, 5]); // 5.0, 5.0, then the lowest-index zero (either sign)
    assert_eq!(ActiveSet::budget(&[1.0; 12], 3, 4, 0.25).unwrap().indices(), &[0, 1, 2]);
    assert_eq!(ActiveSet::budget(&[1.0; 12], 3, 4, 1e-9).unwrap().len(), 1);
    assert!(ActiveSet::budget(&[1.0; 12], 3, 4, 0.0).is_err());
    assert!(ActiveSet::budget(&[1.0; 12], 3, 4, f32::NAN).is_err());
    assert!(ActiveSet::budget(&[1.0; 11], 3, 4, 0.5).is_err());
}

#[test]
fn constructors_follow_their_rules() {
    let scores = [0.5, -1.0, 0.0, f32::NAN, 2.0, -0.0];
    assert_eq!(ActiveSet::native(&scores, 2, 3).unwrap().indices(), &[0, 4]);
    assert_eq!(ActiveSet::from_mask(&scores, 2, 3).unwrap().indices(), &[0, 1, 3, 4]);
    assert_eq!(ActiveSet::full(2, 3).unwrap().density(), 1.0);
    assert_eq!(ActiveSet::empty(2, 3).unwrap().density(), 0.0);
    assert!(ActiveSet::from_indices(vec![1, 1], 2, 3).is_err());
    assert!(ActiveSet::from_indices(vec![6], 2, 3).is_err());
    assert_eq!(ActiveSet::from_indices(vec![1, 5], 2, 3).unwrap().density(), 2.0 / 6.0);
}

#[test]
fn mismatched_buffers_are_errors_and_touch_nothing() {
    let conv = PerforatedConv::new(&[1.0; 2 * 3 * 9], [2, 3, 3, 3], None, 1, 1, [1; 4], (4, 5)).unwrap();
    let mut scratch = ConvScratch::default();
    let active = ActiveSet::full(4, 5).unwrap();
    let mut output = vec![SENTINEL; 2 * 20];
    assert!(conv.run(&[0.0; 3 * 20 - 1], &active, &mut output, &mut scratch).is_err());
    assert!(conv.run(&[0.0; 3 * 20], &active, &mut output[1..], &mut scratch).is_err());
    assert!(conv.run(&[0.0; 3 * 20], &ActiveSet::full(5, 4).unwrap(), &mut output, &mut scratch).is_err());
    assert!(output.iter().all(|&v| v == SENTINEL));
    assert!(PerforatedConv::new(&[1.0; 5], [2, 3, 3, 3], None, 1, 1, [1; 4], (4, 5)).is_err());
    assert!(PerforatedConv::new(&[1.0; 54], [2, 3, 3, 3], Some(&[0.0; 3]), 1, 1, [1; 4], (4, 5)).is_err());
    assert!(PerforatedConv::new(&[1.0; 54], [2, 3, 3, 3], None, 1, 3, [0; 4], (4, 5)).is_err());
    assert!(PerforatedConv::new(&[1.0; 54], [2, 3, 3, 3], None, 0, 1, [1; 4], (4, 5)).is_err());
}
