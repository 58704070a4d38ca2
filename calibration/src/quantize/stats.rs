//! Per-tensor activation statistics and the ranges each calibration method derives from them.
//!
//! Statistics are gathered in two passes of the float model (tract, ρ = 1) over the images:
//! pass 1 finds each tensor's min and max, pass 2 fills two histograms of [`BINS`] bins each —
//! the non-negative values over `[0, max]` and the magnitudes of the negative ones over
//! `[0, −min]` — so that every method's range comes from the cache without re-running.
use std::collections::HashMap;

use ndarray::Array4;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tract_onnx::pb::ModelProto;
use tract_onnx::prelude::*;

use super::CalibrateProgress;
use crate::CalibrationError;

/// Bins per sign histogram (TensorRT's entropy calibration uses 2048).
pub const BINS: usize = 2048;

/// Counts given to an empty quantized bin under outliers (MXNet's `_smooth_distribution`).
pub const KL_EPSILON: f64 = 1e-4;

/// The percentile [`Method::Percentile`] clips at (and, mirrored, `100 − PERCENTILE` below).
pub const PERCENTILE: f64 = 99.99;

/// How a tensor's range `[lo, hi]` is chosen from its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// The observed min and max.
    MinMax,
    /// The [`PERCENTILE`]th percentile above and the `100 − PERCENTILE`th below (of all values).
    Percentile,
    /// TensorRT's entropy calibration: per sign, the clipping threshold that minimises the KL
    /// divergence between the histogram and its quantized version (255 levels for a tensor of one
    /// sign, 128 per side for a signed one).
    Entropy,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::MinMax, Method::Percentile, Method::Entropy];

    /// `minmax`, `percentile`, `entropy`.
    pub fn name(self) -> &'static str {
        match self {
            Method::MinMax => "minmax",
            Method::Percentile => "percentile",
            Method::Entropy => "entropy",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = String;
    fn from_str(s: &str) -> Result<Method, String> {
        Method::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown calibration method `{s}` (minmax, percentile, entropy)"))
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One tensor's statistics over all calibration images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TensorStats {
    pub name: String,
    pub count: u64,
    pub min: f32,
    pub max: f32,
    /// Values `x ≥ 0`, bin `min(⌊x / (max / BINS)⌋, BINS − 1)`; empty when `max ≤ 0`.
    pub pos: Vec<u64>,
    /// Values `x < 0` by `|x|` over `[0, −min]`, binned alike; empty when `min ≥ 0`.
    pub neg: Vec<u64>,
}

fn bin(x: f32, top: f32) -> usize {
    ((x / top * BINS as f32) as usize).min(BINS - 1)
}

impl TensorStats {
    fn empty(name: &str) -> TensorStats {
        TensorStats {
            name: name.into(),
            count: 0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
            pos: vec![],
            neg: vec![],
        }
    }

    fn observe_range(&mut self, xs: &[f32]) {
        for &x in xs {
            if x.is_finite() {
                self.min = self.min.min(x);
                self.max = self.max.max(x);
            }
        }
    }

    fn observe_histogram(&mut self, xs: &[f32]) {
        if self.pos.is_empty() && self.max > 0.0 {
            self.pos = vec![0; BINS];
        }
        if self.neg.is_empty() && self.min < 0.0 {
            self.neg = vec![0; BINS];
        }
        for &x in xs {
            if !x.is_finite() {
                continue;
            }
            self.count += 1;
            if x >= 0.0 {
                if let Some(b) = self.pos.get_mut(if self.max > 0.0 { bin(x, self.max) } else { usize::MAX }) {
                    *b += 1;
                }
            } else {
                self.neg[bin(-x, -self.min)] += 1;
            }
        }
    }

    fn merge(&mut self, o: &TensorStats) {
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        for (side, other) in [(&mut self.pos, &o.pos), (&mut self.neg, &o.neg)] {
            if side.is_empty() {
                side.clone_from(other);
            } else {
                side.iter_mut().zip(other).for_each(|(a, b)| *a += b);
            }
        }
    }

    /// Non-negative values counted (the positive histogram plus exact zeros).
    fn pos_count(&self) -> u64 {
        self.pos.iter().sum()
    }

    fn neg_count(&self) -> u64 {
        self.neg.iter().sum()
    }

    /// The range `[lo, hi]` `method` chooses (before the zero is added: see `ActivationParams`).
    pub fn range(&self, method: Method) -> (f32, f32) {
        if self.count == 0 || !(self.min.is_finite() && self.max.is_finite()) {
            return (0.0, 0.0);
        }
        match method {
            Method::MinMax => (self.min, self.max),
            Method::Percentile => {
                let tail = (self.count as f64 * (1.0 - PERCENTILE / 100.0)).floor() as u64;
                let hi = tail_threshold(&self.pos, self.max, tail);
                let lo = -tail_threshold(&self.neg, -self.min, tail);
                (lo.max(self.min), hi.min(self.max))
            }
            Method::Entropy => {
                let (np, nn) = (self.pos_count(), self.neg_count());
                let levels = |other: u64| if other == 0 { 255 } else { 128 };
                let hi = if np > 0 && self.max > 0.0 { kl_threshold(&self.pos, self.max, levels(nn)) } else { 0.0 };
                let lo = if nn > 0 { -kl_threshold(&self.neg, -self.min, levels(np)) } else { 0.0 };
                (lo.max(self.min), hi.min(self.max))
            }
        }
    }
}

/// The smallest bin edge `e` with at most `tail` values of `hist` above it (`top` = last edge).
fn tail_threshold(hist: &[u64], top: f32, tail: u64) -> f32 {
    let mut above = 0u64;
    for b in (0..hist.len()).rev() {
        if above + hist[b] > tail {
            return (b + 1) as f32 * top / hist.len() as f32;
        }
        above += hist[b];
    }
    0.0
}

/// TensorRT's entropy threshold for a histogram of magnitudes over `[0, top]`: among the
/// candidate cut-offs `i ∈ [levels, BINS]` bins, P the first `i` bins with the outliers folded
/// into the last, Q the first `i` bins (without outliers) quantized to `levels` levels and
/// expanded back (each level's mass spread evenly over the bins where P is non-zero), the `i`
/// with the least KL(P‖Q); returns its upper bin edge. Where P has only outliers and Q nothing,
/// Q is ε counts ([`KL_EPSILON`], MXNet's smoothing). Closed form per chunk (prefix sums),
/// `O(BINS · levels)`.
fn kl_threshold(hist: &[u64], top: f32, levels: usize) -> f32 {
    let n = hist.len();
    if n <= levels {
        return top;
    }
    let total: f64 = hist.iter().map(|&h| h as f64).sum();
    if total == 0.0 {
        return 0.0;
    }
    let (mut cs, mut hlogh, mut nzc) = (vec![0f64; n + 1], vec![0f64; n + 1], vec![0usize; n + 1]);
    for (k, &h) in hist.iter().enumerate() {
        let h = h as f64;
        cs[k + 1] = cs[k] + h;
        hlogh[k + 1] = hlogh[k] + if h > 0.0 { h * h.ln() } else { 0.0 };
        nzc[k + 1] = nzc[k] + (h > 0.0) as usize;
    }
    let mut best = (f64::INFINITY, n);
    for i in levels..=n {
        let zq = cs[i];
        if zq == 0.0 {
            continue;
        }
        let outliers = total - zq;
        let last = hist[i - 1] as f64;
        let p_last = last + outliers;
        let splogp = hlogh[i - 1] + if p_last > 0.0 { p_last * p_last.ln() } else { 0.0 };
        let m = i / levels;
        // Σ_k p_k ln q_k, q spreading each chunk's (outlier-free) mass evenly over the bins where
        // p is non-zero.
        let mut cross = 0.0;
        for c in 0..levels {
            let s = c * m;
            let e = if c == levels - 1 { i } else { s + m };
            let mass = cs[e] - cs[s];
            let mut nz = nzc[e] - nzc[s];
            let mut pmass = mass;
            if c == levels - 1 {
                pmass += outliers;
                if last == 0.0 && p_last > 0.0 {
                    nz += 1;
                }
            }
            if pmass == 0.0 {
                continue;
            }
            cross += if mass > 0.0 {
                pmass * (mass / nz as f64).ln()
            } else {
                // Only the outliers, in an empty chunk: q = ε there (TensorRT/MXNet smoothing).
                pmass * KL_EPSILON.ln()
            };
        }
        let kl = (splogp - cross) / total - total.ln() + zq.ln();
        if kl < best.0 {
            best = (kl, i);
        }
    }
    best.1 as f32 * top / n as f32
}

/// The tensors whose statistics are gathered: every `Conv`'s data input and its output (after
/// its Relu when a Relu is its only consumer) — a superset of what any `--keep-float` quantizes,
/// so the cache does not depend on it. In graph order, without repeats.
pub fn tensors_to_observe(proto: &ModelProto) -> Vec<String> {
    let Some(g) = proto.graph.as_ref() else { return vec![] };
    let mut out: Vec<String> = Vec::new();
    for n in g.node.iter().filter(|n| n.op_type == "Conv") {
        for t in [n.input.first().cloned(), super::qdq::conv_output_tensor(g, n)].into_iter().flatten() {
            if !t.is_empty() && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

fn tract_error(what: &str) -> impl Fn(TractError) -> CalibrationError + '_ {
    move |e| CalibrationError::Quantize(format!("{what}: {e:#}"))
}

/// Run the float model (tract, ρ = 1) over `frames` twice and gather [`TensorStats`] of
/// `tensors`. Frames run in parallel on `threads` (default every core).
pub fn collect(
    proto: &ModelProto,
    info: &pag_runtime::ModelInfo,
    frames: &[Array4<f32>],
    tensors: &[String],
    threads: Option<usize>,
    progress: &mut dyn FnMut(CalibrateProgress),
) -> Result<Vec<TensorStats>, CalibrationError> {
    let graph = proto.graph.as_ref().ok_or_else(|| CalibrationError::Quantize("the model has no graph".into()))?;
    let inits: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).filter(|n| !inits.contains(n)).collect();
    // Tensors read straight from the inputs (the image) need no extra graph output.
    let fetched: Vec<&String> = tensors.iter().filter(|t| !inputs.contains(&t.as_str())).collect();
    let mut model = tract_onnx::onnx().model_for_proto_model(proto).map_err(tract_error("parsing the model"))?;
    let (h, w) = (info.input.height, info.input.width);
    for (ix, name) in inputs.iter().enumerate() {
        let fact = if *name == info.input.name {
            InferenceFact::dt_shape(f32::datum_type(), [1, 3, h, w])
        } else if info.rho_input.as_deref() == Some(*name) {
            InferenceFact::dt_shape(f32::datum_type(), [1])
        } else {
            return Err(CalibrationError::Quantize(format!("unexpected graph input `{name}`")));
        };
        model.set_input_fact(ix, fact).map_err(tract_error("typing the inputs"))?;
    }
    model.select_outputs_by_name(fetched.iter().map(|s| s.as_str())).map_err(tract_error("selecting tensors"))?;
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(tract_error("optimising the model for calibration"))?;
    let threads = threads.unwrap_or_else(pag_runtime::default_threads).max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CalibrationError::Quantize(format!("cannot start {threads} threads: {e}")))?;
    let position: HashMap<&str, usize> = tensors.iter().enumerate().map(|(i, t)| (t.as_str(), i)).collect();
    let run = |x: &Array4<f32>, stats: &mut [TensorStats], histogram: bool| -> Result<(), CalibrationError> {
        let mut feed: TVec<TValue> = tvec![];
        for name in &inputs {
            if *name == info.input.name {
                feed.push(x.clone().into_tensor().into_tvalue());
            } else {
                feed.push(tensor1(&[1.0f32]).into_tvalue());
            }
        }
        let image = x.as_slice().expect("standard layout");
        let outs = plan.run(feed).map_err(tract_error("running a calibration frame"))?;
        let observe = |s: &mut TensorStats, xs: &[f32]| {
            if histogram {
                s.observe_histogram(xs)
            } else {
                s.observe_range(xs)
            }
        };
        if let Some(&i) = position.get(info.input.name.as_str()) {
            observe(&mut stats[i], image);
        }
        for (t, v) in fetched.iter().zip(outs.iter()) {
            let view = v.to_plain_array_view::<f32>().map_err(tract_error("reading a tensor"))?;
            let xs =
                view.as_slice().ok_or_else(|| CalibrationError::Quantize(format!("tensor `{t}` not contiguous")))?;
            observe(&mut stats[position[t.as_str()]], xs);
        }
        Ok(())
    };
    let mut total: Vec<TensorStats> = tensors.iter().map(|t| TensorStats::empty(t)).collect();
    for pass in 1..=2 {
        progress(CalibrateProgress::Frames { pass, done: 0, total: frames.len() });
        for (c, chunk) in frames.chunks(threads).enumerate() {
            let template = total.clone();
            let parts: Vec<Result<Vec<TensorStats>, CalibrationError>> = pool.install(|| {
                chunk
                    .par_iter()
                    .map(|x| {
                        let mut s = template.clone();
                        if pass == 2 {
                            s.iter_mut().for_each(|s| {
                                s.count = 0;
                                s.pos.clear();
                                s.neg.clear();
                            });
                        }
                        run(x, &mut s, pass == 2).map(|_| s)
                    })
                    .collect()
            });
            for part in parts {
                for (a, b) in total.iter_mut().zip(part?) {
                    if pass == 1 {
                        a.min = a.min.min(b.min);
                        a.max = a.max.max(b.max);
                    } else {
                        a.merge(&b);
                    }
                }
            }
            progress(CalibrateProgress::Frames {
                pass,
                done: (c * threads + chunk.len()).min(frames.len()),
                total: frames.len(),
            });
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(xs: &[f32]) -> TensorStats {
        let mut s = TensorStats::empty("t");
        s.observe_range(xs);
        s.observe_histogram(xs);
        s
    }

    #[test]
    fn minmax_and_percentile_ranges() {
        // 100 000 values in [0, 1) and one outlier at 100: percentile clips it, minmax keeps it.
        let mut xs: Vec<f32> = (0..100_000).map(|i| i as f32 / 100_000.0).collect();
        xs.push(100.0);
        xs.push(-2.0);
        let s = stats_of(&xs);
        assert_eq!(s.range(Method::MinMax), (-2.0, 100.0));
        let (lo, hi) = s.range(Method::Percentile);
        assert_eq!(lo, 0.0, "one negative value of 100 002 is inside the 0.01 % tail");
        assert!((0.99..=1.05).contains(&hi), "hi {hi}");
    }

    #[test]
    fn entropy_clips_a_long_tail_but_keeps_a_compact_distribution() {
        // Compact: uniform on [0, 1] → threshold near the max.
        let uniform: Vec<f32> = (0..=20_000).map(|i| i as f32 / 20_000.0).collect();
        let (_, hi) = stats_of(&uniform).range(Method::Entropy);
        assert!(hi > 0.95, "uniform: {hi}");
        // Long tail: exponential-like bulk with a few far outliers → threshold well below max.
        let mut tail: Vec<f32> = (1..20_000).map(|i| -(i as f32 / 20_000.0).ln()).collect();
        tail.extend([60.0, 80.0, 100.0]);
        let s = stats_of(&tail);
        let (lo, hi) = s.range(Method::Entropy);
        assert!(lo >= 0.0, "no negative values: rmin stays 0 ({lo})");
        assert!(hi < 30.0 && hi > 3.0, "long tail: {hi} of max {}", s.max);
    }

    #[test]
    fn merging_partial_statistics_equals_one_pass() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let whole = stats_of(&xs);
        let mut a = TensorStats::empty("t");
        a.observe_range(&xs);
        let mut b = a.clone();
        a.observe_histogram(&xs[..400]);
        b.observe_histogram(&xs[400..]);
        a.merge(&b);
        assert_eq!(a, whole);
    }
}
