//! The scatter half of a sparse conv (im2col's gather is the other): a tile's GEMM result, one
//! row of `t` values per output channel, written or added to the tile's pixels of a
//! channel-planar output.
use super::im2col::{find_runs, Run};
use super::parallel::SharedMut;

/// From this mean run length on (consecutive pixels of the tile), the scatter goes run by run —
/// a vector loop per run — instead of element by element. Measured on a gated block's expand
/// conv (the residual add at a sparse tile, AMD EPYC Zen 3, interleaved A/B): run by run took
/// 1–3.5 % less block time at ρ = 0.25 (48-channel blocks; ~1 % on 96-channel ones).
const MIN_MEAN_RUN: usize = 4;

/// `out[co·plane + tile[j]] = result[co·t + j] + bias[co]` for every channel `co <
/// bias.len()` and `j < t = tile.len()`, or `+=` when `accumulate` (then every value is
/// `old + (result + bias)`, in that order, on either path). `runs` is working memory (reserve
/// `t` runs to keep this allocation-free).
///
/// # Safety
/// `out` must be valid for reads and writes at every `co·plane + tile[j]`, and no other thread
/// may touch those elements during the call.
pub(super) unsafe fn scatter_channels(
    result: &[f32],
    tile: &[u32],
    bias: &[f32],
    out: SharedMut<f32>,
    plane: usize,
    accumulate: bool,
    runs: &mut Vec<Run>,
) {
    let t = tile.len();
    runs.clear();
    find_runs(tile, 1, runs);
    let by_runs = t >= MIN_MEAN_RUN * runs.len();
    for (co, (values, &b)) in result.chunks_exact(t).zip(bias).enumerate() {
        // SAFETY (every write below): element co·plane + tile[j] of `out` (the caller's
        // guarantee); a run covers pixels source..source + len, which are tile[start..start + len].
        let row = unsafe { out.0.add(co * plane) };
        if by_runs {
            for run in runs.iter() {
                let dst = unsafe { std::slice::from_raw_parts_mut(row.add(run.source as usize), run.len) };
                let src = &values[run.start..run.start + run.len];
                if accumulate {
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v + b);
                } else {
                    dst.iter_mut().zip(src).for_each(|(d, &v)| *d = v + b);
                }
            }
        } else if accumulate {
            tile.iter().zip(values).for_each(|(&p, &v)| unsafe { *row.add(p as usize) += v + b });
        } else {
            tile.iter().zip(values).for_each(|(&p, &v)| unsafe { *row.add(p as usize) = v + b });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths (run by run, element by element), written and accumulated, against the
    /// formula; pixels outside the tile untouched.
    #[test]
    fn scatter_matches_the_formula_on_runs_and_scattered_pixels() {
        let plane = 64;
        let tiles: [Vec<u32>; 4] = [
            (10..40).collect(),                                                     // one long run
            vec![0, 1, 2, 3, 4, 9, 10, 11, 12, 13, 40, 50, 51, 52, 53, 54, 55, 63], // runs and a few singles
            vec![1, 3, 5, 7, 9, 20, 22, 40],                                        // all singles: element by element
            vec![5],
        ];
        let bias = [0.5f32, -1.25, 3.0];
        let mut by_runs_seen = [false; 2];
        for tile in &tiles {
            let t = tile.len();
            let mut runs = Vec::new();
            find_runs(tile, 1, &mut runs);
            by_runs_seen[(t >= MIN_MEAN_RUN * runs.len()) as usize] = true;
            let result: Vec<f32> = (0..bias.len() * t).map(|i| (i as f32 * 0.37).sin()).collect();
            for accumulate in [false, true] {
                let before: Vec<f32> = (0..bias.len() * plane).map(|i| (i as f32 * 0.11).cos()).collect();
                let mut out = before.clone();
                // SAFETY: out is 3 × plane and every tile pixel is < plane.
                unsafe {
                    scatter_channels(&result, tile, &bias, SharedMut(out.as_mut_ptr()), plane, accumulate, &mut runs)
                };
                let mut want = before.clone();
                for (co, b) in bias.iter().enumerate() {
                    for (j, &p) in tile.iter().enumerate() {
                        let v = result[co * t + j] + b;
                        let w = &mut want[co * plane + p as usize];
                        *w = if accumulate { *w + v } else { v };
                    }
                }
                assert_eq!(out, want, "tile {tile:?}, accumulate {accumulate}");
            }
        }
        assert_eq!(by_runs_seen, [true, true], "both paths run");
    }
}
