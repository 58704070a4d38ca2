//! im2col of the active pixels of one tile: the gather half of the perforated conv.
use crate::pag::ConvGeometry;

/// Below this mean run length (consecutive pixels reading consecutive inputs), an element-wise
/// gather beats one `copy_from_slice` per run.
const MIN_MEAN_RUN: usize = 8;
/// Marks a padding tap in the per-tap source table.
const PADDING: u32 = u32::MAX;
/// Input channels gathered together, sharing each source-index load.
const GATHER_CHANNELS: usize = 4;

/// im2col of `tile` (row-major output positions): `columns[(ci·taps + tap)·n + j]` = what tap
/// `tap` of output pixel `tile[j]` reads in input channel `ci`, 0 on padding. Runs of consecutive
/// sources are copied as slices, scattered pixels element by element.
pub(super) fn gather_columns(
    isa: &super::isa::CpuIsa,
    g: &ConvGeometry,
    in_channels: usize,
    input: &[f32],
    tile: &[u32],
    columns: &mut [f32],
    tables: &mut TapTables,
) {
    // SAFETY: a `CpuIsa` in use is supported by this CPU (checked where it is chosen).
    unsafe { (isa.im2col)(g, in_channels, input, tile, columns, tables) }
}

/// The im2col entry points' signature (one per ISA build).
pub(crate) type Im2colFn = unsafe fn(&ConvGeometry, usize, &[f32], &[u32], &mut [f32], &mut TapTables);

isa_builds!(gather_columns_impl => gather_columns_portable, gather_columns_avx2, gather_columns_avx512(
    g: &ConvGeometry, in_channels: usize, input: &[f32], tile: &[u32], columns: &mut [f32], tables: &mut TapTables
));

#[inline(always)]
fn gather_columns_impl(
    g: &ConvGeometry,
    in_channels: usize,
    input: &[f32],
    tile: &[u32],
    columns: &mut [f32],
    tables: &mut TapTables,
) {
    let n = tile.len();
    let (ih, iw, ow) = (g.in_height(), g.in_width(), g.out_width());
    let plane_in = ih * iw;
    let taps = g.taps();
    tables.reserve(taps, n);
    tables.origins.clear();
    if !g.is_pointwise() {
        tables.origins.extend(tile.iter().map(|&p| g.tap_origin(p as usize / ow, p as usize % ow)));
    }
    tables.runs.clear();
    tables.padding.clear();
    tables.plans.clear();
    for (tap, sources) in tables.sources[..taps * n].chunks_exact_mut(n).enumerate() {
        if g.is_pointwise() {
            // Output pixel p reads input pixel p: the active list is the source table.
            sources.copy_from_slice(tile);
        } else {
            let dy = ((tap / g.kernel_width()) * g.dilation()) as isize;
            let dx = ((tap % g.kernel_width()) * g.dilation()) as isize;
            for (src, &(y0, x0)) in sources.iter_mut().zip(&tables.origins) {
                let (iy, ix) = (y0 + dy, x0 + dx);
                let inside = iy >= 0 && ix >= 0 && (iy as usize) < ih && (ix as usize) < iw;
                *src = if inside { (iy as usize * iw + ix as usize) as u32 } else { PADDING };
            }
        }
        let first_run = tables.runs.len();
        find_runs(sources, g.stride() as u32, &mut tables.runs);
        let runs = first_run..tables.runs.len();
        let first_padding = tables.padding.len();
        tables.padding.extend(tables.runs[runs.clone()].iter().filter(|run| run.source == PADDING));
        let padding = first_padding..tables.padding.len();
        let by_runs = n >= MIN_MEAN_RUN * runs.len();
        if !padding.is_empty() && !by_runs {
            // The element-wise gather reads padding taps from pixel 0, then zeroes them.
            sources.iter_mut().filter(|src| **src == PADDING).for_each(|src| *src = 0);
        }
        tables.plans.push(TapPlan { runs, padding, by_runs });
    }

    // Channels outer, taps inner: the input rows a tile reads stay in L1 across its taps.
    let row_stride = taps * n;
    let mut channel = 0;
    while channel < in_channels {
        let group = if in_channels - channel >= GATHER_CHANNELS { GATHER_CHANNELS } else { 1 };
        let planes = &input[channel * plane_in..(channel + group) * plane_in];
        let block = &mut columns[channel * row_stride..(channel + group) * row_stride];
        for (tap, plan) in tables.plans.iter().enumerate() {
            let runs = &tables.runs[plan.runs.clone()];
            let rows = &mut block[tap * n..];
            if plan.by_runs {
                for (c, plane) in planes.chunks_exact(plane_in).enumerate() {
                    copy_runs(plane, runs, &mut rows[c * row_stride..c * row_stride + n]);
                }
                continue;
            }
            let sources = &tables.sources[tap * n..(tap + 1) * n];
            if group == GATHER_CHANNELS {
                gather_group(planes, rows, row_stride, sources);
            } else {
                for (dst, &src) in rows[..n].iter_mut().zip(sources) {
                    *dst = planes[src as usize];
                }
            }
            for c in 0..group {
                for run in &tables.padding[plan.padding.clone()] {
                    let start = c * row_stride + run.start;
                    rows[start..start + run.len].fill(0.0);
                }
            }
        }
        channel += group;
    }
}

/// Per-tile tables of the gather, reused from tile to tile (they live in `ConvScratch`).
#[derive(Debug, Default)]
pub(crate) struct TapTables {
    /// Input coordinates of tap (0, 0) of each tile pixel.
    origins: Vec<(isize, isize)>,
    /// `taps × n`: the input pixel each tap of each tile pixel reads (`PADDING`, or 0 once the
    /// tap's plan says the element-wise gather zeroes it afterwards).
    sources: Vec<u32>,
    /// Every tap's runs, one after the other.
    runs: Vec<Run>,
    /// Every tap's padding runs, one after the other.
    padding: Vec<Run>,
    plans: Vec<TapPlan>,
}

impl TapTables {
    /// Room for the largest tables a tile of `n` pixels can need, so that the first call with
    /// the largest tile is the last to allocate.
    pub(super) fn reserve(&mut self, taps: usize, n: usize) {
        grow(&mut self.sources, taps * n);
        self.origins.reserve(n.saturating_sub(self.origins.len()));
        self.runs.reserve((taps * n).saturating_sub(self.runs.len()));
        self.padding.reserve((taps * n).saturating_sub(self.padding.len()));
        self.plans.reserve(taps.saturating_sub(self.plans.len()));
    }

    pub(super) fn allocated_bytes(&self) -> usize {
        use std::mem::size_of;
        self.origins.capacity() * size_of::<(isize, isize)>()
            + self.sources.capacity() * size_of::<u32>()
            + (self.runs.capacity() + self.padding.capacity()) * size_of::<Run>()
            + self.plans.capacity() * size_of::<TapPlan>()
    }
}

/// Grows `buffer` to at least `len` elements (never shrinks it).
pub(super) fn grow<T: Clone + Default>(buffer: &mut Vec<T>, len: usize) {
    if buffer.len() < len {
        buffer.resize(len, T::default());
    }
}

/// How one tap's row of the im2col tile is filled.
#[derive(Debug, Clone)]
struct TapPlan {
    /// This tap's slice of `TapTables::runs`.
    runs: std::ops::Range<usize>,
    /// This tap's slice of `TapTables::padding`.
    padding: std::ops::Range<usize>,
    /// Copy run by run (long runs) rather than element by element.
    by_runs: bool,
}

/// For `GATHER_CHANNELS` consecutive input channel planes in `group`:
/// `rows[c·row_stride + j] = plane_c[sources[j]]`, one source lookup for all of them. Every
/// source must be `< plane length`. Kept out of line so its loop gets registers of its own.
#[inline(never)]
fn gather_group(group: &[f32], rows: &mut [f32], row_stride: usize, sources: &[u32]) {
    let n = sources.len();
    let plane_in = group.len() / GATHER_CHANNELS;
    let (p0, p1, p2, p3) = (
        &group[..plane_in],
        &group[plane_in..2 * plane_in],
        &group[2 * plane_in..3 * plane_in],
        &group[3 * plane_in..4 * plane_in],
    );
    let (r0, rest) = rows.split_at_mut(row_stride);
    let (r1, rest) = rest.split_at_mut(row_stride);
    let (r2, r3) = rest.split_at_mut(row_stride);
    let (r0, r1, r2, r3) = (&mut r0[..n], &mut r1[..n], &mut r2[..n], &mut r3[..n]);
    for (j, &s) in sources.iter().enumerate() {
        // A no-op for valid sources; it lets the compiler drop the four bounds checks.
        let s = (s as usize).min(plane_in - 1);
        r0[j] = p0[s];
        r1[j] = p1[s];
        r2[j] = p2[s];
        r3[j] = p3[s];
    }
}

/// `row[j] = plane[source + k·step]` over each run (0 for padding runs).
#[inline(always)]
fn copy_runs(plane: &[f32], runs: &[Run], row: &mut [f32]) {
    for run in runs {
        let dst = &mut row[run.start..run.start + run.len];
        match (run.source, run.step) {
            (PADDING, _) => dst.fill(0.0),
            (s, 1) => dst.copy_from_slice(&plane[s as usize..s as usize + run.len]),
            (s, 2) => {
                // Stride 2: an indexed loop LLVM vectorises as an interleaved load group.
                let src = &plane[s as usize..s as usize + 2 * run.len - 1];
                for (k, d) in dst.iter_mut().enumerate() {
                    *d = src[2 * k];
                }
            }
            (s, step) => {
                let src = &plane[s as usize..s as usize + (run.len - 1) * step as usize + 1];
                dst.iter_mut().zip(src.iter().step_by(step as usize)).for_each(|(d, &v)| *d = v);
            }
        }
    }
}

/// `len` consecutive tile pixels from `start` whose sources are input pixels `step` apart from
/// `source` (`step` = the conv's stride), or all padding (`source == PADDING`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Run {
    pub(super) start: usize,
    pub(super) len: usize,
    pub(super) source: u32,
    step: u32,
}

/// Appends the maximal runs of one tap's source table to `runs` (sources `step` apart).
pub(super) fn find_runs(sources: &[u32], step: u32, runs: &mut Vec<Run>) {
    for (j, &source) in sources.iter().enumerate() {
        match runs.last_mut() {
            // j > 0: the last run is this tap's, not the previous tap's.
            Some(run) if j > 0 && run.source == PADDING && source == PADDING => run.len += 1,
            Some(run)
                if j > 0
                    && run.source != PADDING
                    && source != PADDING
                    && source as usize == run.source as usize + run.len * step as usize =>
            {
                run.len += 1
            }
            _ => runs.push(Run { start: j, len: 1, source, step }),
        }
    }
}

/// The channels-last im2col of a gated block's spatial conv (stride 1): row `j` of `columns`
/// (`taps · mid` floats) holds, tap after tap, the `mid` channels of input pixel
/// `(y0 + ky·d, x0 + kx·d)` of output pixel `tile[j]` in `reduced` (`h·w × mid`, channels-last),
/// zeros where that falls in the padding. One per ISA build.
pub(crate) type ChannelsLastFn = unsafe fn(&ConvGeometry, usize, &[u32], &[f32], &mut [f32]);

isa_builds!(channels_last_impl => channels_last_portable, channels_last_avx2, channels_last_avx512(
    g: &ConvGeometry, mid: usize, tile: &[u32], reduced: &[f32], columns: &mut [f32]
));

/// `dst = src` for the short rows of the channels-last im2col (`mid` or `k·mid` floats, a few
/// hundred bytes). Rows of the common lengths are copied as fixed-size arrays, which a vector
/// build inlines as a few moves; others call `memmove`, which cost ~5 % of an f32 frame in these
/// per-row calls. (A loop of 16-float chunks does not do: LLVM turns it back into the call; and
/// it must be called directly, not passed as a fn item, whose call shim is not inlined.)
#[inline(always)]
fn copy_row(dst: &mut [f32], src: &[f32]) {
    #[inline(always)]
    fn fixed<const N: usize>(dst: &mut [f32], src: &[f32]) {
        let d: &mut [f32; N] = dst.try_into().expect("N floats");
        *d = *<&[f32; N]>::try_from(src).expect("N floats");
    }
    match dst.len() {
        16 => fixed::<16>(dst, src),
        24 => fixed::<24>(dst, src),
        32 => fixed::<32>(dst, src),
        48 => fixed::<48>(dst, src),
        64 => fixed::<64>(dst, src),
        72 => fixed::<72>(dst, src),
        96 => fixed::<96>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

#[inline(always)]
fn channels_last_impl(g: &ConvGeometry, mid: usize, tile: &[u32], reduced: &[f32], columns: &mut [f32]) {
    let (h, wd) = (g.in_height(), g.in_width());
    let (k, d) = (g.kernel_width(), g.dilation());
    let depth = g.taps() * mid;
    for (&p, row) in tile.iter().zip(columns.chunks_exact_mut(depth)) {
        let (y0, x0) = g.tap_origin(p as usize / wd, p as usize % wd);
        if d == 1 && x0 >= 0 && x0 as usize + k <= wd {
            // Undilated and clear of the side borders: each kernel row is one run of k·mid
            // floats in the channels-last input.
            for (ky, dst) in row.chunks_exact_mut(k * mid).enumerate() {
                let iy = y0 + ky as isize;
                if iy >= 0 && (iy as usize) < h {
                    copy_row(dst, &reduced[(iy as usize * wd + x0 as usize) * mid..][..k * mid]);
                } else {
                    dst.fill(0.0);
                }
            }
            continue;
        }
        for (tap, dst) in row.chunks_exact_mut(mid).enumerate() {
            let (iy, ix) = (y0 + ((tap / k) * d) as isize, x0 + ((tap % k) * d) as isize);
            if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                copy_row(dst, &reduced[(iy as usize * wd + ix as usize) * mid..][..mid]);
            } else {
                dst.fill(0.0);
            }
        }
    }
}
