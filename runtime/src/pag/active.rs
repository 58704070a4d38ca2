use super::geometry::ConvGeometry;
use crate::error::{PagError, Result};

/// A value of a gate mask: active when "nonzero".
pub trait MaskValue: Copy {
    /// True when the pixel is active. For `f32`, any value `!= 0.0` (NaN included).
    fn is_active(self) -> bool;
}

impl MaskValue for f32 {
    fn is_active(self) -> bool {
        self != 0.0
    }
}

impl MaskValue for bool {
    fn is_active(self) -> bool {
        self
    }
}

impl MaskValue for u8 {
    fn is_active(self) -> bool {
        self != 0
    }
}

/// The active pixels of one gate over an `height × width` grid, as a compact list of row-major
/// positions (`y · width + x`), strictly ascending and all `< height · width`.
///
/// Built once per gate and shared by every convolution that uses the same mask. The `refill_*`
/// methods rebuild it in place and allocate nothing once the list has reached its largest size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ActiveSet {
    indices: Vec<u32>,
    height: usize,
    width: usize,
}

fn grid_len(height: usize, width: usize) -> Result<usize> {
    match height.checked_mul(width) {
        Some(n) if n <= u32::MAX as usize => Ok(n),
        _ => Err(PagError::Shape {
            what: "active set grid".into(),
            expected: "height · width ≤ 2³²−1".into(),
            got: format!("{height}×{width}"),
        }),
    }
}

/// Writes the positions of the set bits of `bits` (bit `q % 32` of word `q / 32`), ascending,
/// into the front of `list`; returns how many.
fn bits_to_list(bits: &[u32], list: &mut [u32]) -> usize {
    let mut count = 0;
    for (w, &word) in bits.iter().enumerate() {
        let mut word = word;
        while word != 0 {
            list[count] = (w * 32) as u32 + word.trailing_zeros();
            count += 1;
            word &= word - 1;
        }
    }
    count
}

fn check_len(what: &str, got: usize, height: usize, width: usize) -> Result<usize> {
    let n = grid_len(height, width)?;
    if got != n {
        return Err(PagError::Shape {
            what: what.into(),
            expected: format!("{n} values ({height}×{width})"),
            got: format!("{got} values"),
        });
    }
    Ok(n)
}

/// `k = clamp(ceil(f32(ρ) · f32(n)), 1, n)` computed in f32, as models/CONTRACT.md specifies.
/// Errors unless `ρ > 0`.
pub fn budget_count(rho: f32, n: usize) -> Result<usize> {
    if rho.is_nan() || rho <= 0.0 {
        return Err(PagError::Mode(format!("budget ρ must be > 0, got {rho}")));
    }
    if n == 0 {
        return Ok(0);
    }
    Ok(((rho * n as f32).ceil().clamp(1.0, n as f32) as usize).clamp(1, n))
}

impl ActiveSet {
    /// No active pixel on an `height × width` grid.
    pub fn empty(height: usize, width: usize) -> Result<Self> {
        grid_len(height, width)?;
        Ok(ActiveSet { indices: Vec::new(), height, width })
    }

    /// Every pixel of an `height × width` grid active.
    pub fn full(height: usize, width: usize) -> Result<Self> {
        let mut set = ActiveSet::default();
        set.refill_full(height, width)?;
        Ok(set)
    }

    /// Pixels whose `mask` value is nonzero (see [`MaskValue`]). `mask` is row-major, `height · width` long.
    pub fn from_mask<M: MaskValue>(mask: &[M], height: usize, width: usize) -> Result<Self> {
        let mut set = ActiveSet::default();
        set.refill_from_mask(mask, height, width)?;
        Ok(set)
    }

    /// A gate's own decision: pixels whose score is `> 0` (NaN is inactive).
    pub fn native(scores: &[f32], height: usize, width: usize) -> Result<Self> {
        let mut set = ActiveSet::default();
        set.refill_native(scores, height, width)?;
        Ok(set)
    }

    /// The contract's budget rule: exactly `k = budget_count(ρ, n)` pixels, those with the largest
    /// scores, ties broken towards the lower pixel index (-0.0 ties with 0.0). Scores compare by
    /// `f32::total_cmp` otherwise (so +NaN ranks above +∞). Errors unless `ρ > 0` or when `scores` has the wrong length.
    pub fn budget(scores: &[f32], height: usize, width: usize, rho: f32) -> Result<Self> {
        let mut set = ActiveSet::default();
        set.refill_budget(scores, height, width, rho)?;
        Ok(set)
    }

    /// A set from explicit row-major positions; errors unless strictly ascending and in the grid.
    pub fn from_indices(indices: Vec<u32>, height: usize, width: usize) -> Result<Self> {
        let n = grid_len(height, width)?;
        let ascending = indices.windows(2).all(|p| p[0] < p[1]);
        if !ascending || indices.last().is_some_and(|&last| last as usize >= n) {
            return Err(PagError::Shape {
                what: "active pixel indices".into(),
                expected: format!("strictly ascending positions < {n}"),
                got: format!("{} positions, not sorted or out of range", indices.len()),
            });
        }
        Ok(ActiveSet { indices, height, width })
    }

    /// In-place [`ActiveSet::full`].
    pub fn refill_full(&mut self, height: usize, width: usize) -> Result<()> {
        let n = grid_len(height, width)?;
        self.reset(height, width);
        self.indices.extend(0..n as u32);
        Ok(())
    }

    /// Makes `self` a copy of `other` without allocating once `self` has the capacity.
    pub fn copy_from(&mut self, other: &ActiveSet) {
        self.reset(other.height, other.width);
        self.indices.extend_from_slice(&other.indices);
    }

    /// In-place [`ActiveSet::from_mask`].
    pub fn refill_from_mask<M: MaskValue>(&mut self, mask: &[M], height: usize, width: usize) -> Result<()> {
        check_len("gate mask", mask.len(), height, width)?;
        self.reset(height, width);
        self.indices.extend(mask.iter().enumerate().filter(|(_, m)| m.is_active()).map(|(i, _)| i as u32));
        Ok(())
    }

    /// In-place [`ActiveSet::native`].
    pub fn refill_native(&mut self, scores: &[f32], height: usize, width: usize) -> Result<()> {
        check_len("gate scores", scores.len(), height, width)?;
        self.reset(height, width);
        self.indices.extend(scores.iter().enumerate().filter(|(_, &s)| s > 0.0).map(|(i, _)| i as u32));
        Ok(())
    }

    /// In-place [`ActiveSet::budget`]. O(n): a selection, then a sort of the `k` chosen positions.
    pub fn refill_budget(&mut self, scores: &[f32], height: usize, width: usize, rho: f32) -> Result<()> {
        self.refill_budget_with(scores, height, width, rho, &mut Vec::new())
    }

    /// [`ActiveSet::refill_budget`] with the caller's key buffer (`keys` grows to the grid's
    /// pixel count once, then never allocates). The selection runs on one u64 per pixel — the
    /// score's descending total order in the high half, the pixel index in the low half — so
    /// equal scores keep the lower index, as the contract's rule says, with integer compares.
    pub fn refill_budget_with(
        &mut self,
        scores: &[f32],
        height: usize,
        width: usize,
        rho: f32,
        keys: &mut Vec<u64>,
    ) -> Result<()> {
        let n = check_len("gate scores", scores.len(), height, width)?;
        let k = budget_count(rho, n)?;
        self.reset(height, width);
        if k >= n {
            self.indices.extend(0..n as u32);
            return Ok(());
        }
        // `+ 0.0` turns -0.0 into 0.0: the two zeros tie, as they do in ONNX TopK. The total
        // order of f32 as an ascending u32, inverted: smaller key, larger score.
        let descending = |v: f32| {
            let bits = (v + 0.0).to_bits();
            let ascending = if bits >> 31 == 1 { !bits } else { bits | 0x8000_0000 };
            !ascending
        };
        keys.clear();
        keys.extend(scores.iter().enumerate().map(|(i, &v)| (u64::from(descending(v)) << 32) | i as u64));
        keys.select_nth_unstable(k);
        // The k chosen, ascending: through a bitmap of 64-bit words kept past the chosen keys
        // (an O(n) pass instead of a sort).
        let words = n.div_ceil(64);
        keys.truncate(k);
        keys.resize(k + words, 0);
        let (chosen, bits) = keys.split_at_mut(k);
        chosen.iter().for_each(|&key| {
            let q = key as u32 as usize;
            bits[q / 64] |= 1 << (q % 64);
        });
        self.indices.resize(k, 0);
        let mut count = 0;
        for (w, &word) in bits.iter().enumerate() {
            let mut word = word;
            while word != 0 {
                self.indices[count] = (w * 64) as u32 + word.trailing_zeros();
                count += 1;
                word &= word - 1;
            }
        }
        debug_assert_eq!(count, k);
        self.indices.truncate(k);
        Ok(())
    }

    /// The input pixels that a perforated conv of `geometry` reads to compute the output pixels
    /// in `self` (padding taps excluded). `self` must be over the conv's output grid; the result is
    /// over its input grid. Lets a preceding 1×1 conv run only where it is needed.
    pub fn input_footprint(&self, geometry: &ConvGeometry) -> Result<ActiveSet> {
        let mut set = ActiveSet::default();
        set.refill_input_footprint(self, geometry)?;
        Ok(set)
    }

    /// In-place [`ActiveSet::input_footprint`] of `outputs`.
    pub fn refill_input_footprint(&mut self, outputs: &ActiveSet, geometry: &ConvGeometry) -> Result<()> {
        outputs.check_grid("output active set", geometry.out_height(), geometry.out_width())?;
        let (ih, iw) = (geometry.in_height(), geometry.in_width());
        let n = grid_len(ih, iw)?;
        let (kh, kw, dil) = (geometry.kernel_height(), geometry.kernel_width(), geometry.dilation());
        // The bitmap of touched input pixels lives past the first `n` slots of our own Vec: the
        // ascending list written at the front never reaches it, so nothing else is allocated.
        let words = n.div_ceil(32);
        let taps = kh * kw;
        if geometry.stride() == 1 && outputs.indices.len() * taps > 2 * n {
            return self.refill_footprint_by_dilation(outputs, geometry);
        }
        self.reset(ih, iw);
        self.indices.resize(n + words, 0);
        let (list, bits) = self.indices.split_at_mut(n);
        let ow = outputs.width;
        let mut oy = 0;
        for &p in &outputs.indices {
            // Row and column of p: no division while it stays on the previous row.
            let p = p as usize;
            if p < oy * ow || p >= (oy + 1) * ow {
                oy = p / ow;
            }
            let (y0, x0) = geometry.tap_origin(oy, p - oy * ow);
            for ky in 0..kh {
                let iy = y0 + (ky * dil) as isize;
                if iy < 0 || iy >= ih as isize {
                    continue;
                }
                for kx in 0..kw {
                    let ix = x0 + (kx * dil) as isize;
                    if ix >= 0 && ix < iw as isize {
                        let q = iy as usize * iw + ix as usize;
                        bits[q / 32] |= 1 << (q % 32);
                    }
                }
            }
        }
        let count = bits_to_list(bits, list);
        self.indices.truncate(count);
        Ok(())
    }

    /// [`ActiveSet::refill_input_footprint`] for a stride-1 conv over many active pixels: the
    /// active mask dilated by the kernel's taps, a row pass then a column pass (O(pixels · (kh +
    /// kw)) instead of O(active · kh · kw)). Scratch lives past the first `n` slots.
    fn refill_footprint_by_dilation(&mut self, outputs: &ActiveSet, geometry: &ConvGeometry) -> Result<()> {
        let (ih, iw) = (geometry.in_height(), geometry.in_width());
        let (oh, ow) = (geometry.out_height(), geometry.out_width());
        let (n, on) = (ih * iw, oh * ow);
        let (kh, kw, d) = (geometry.kernel_height(), geometry.kernel_width(), geometry.dilation());
        let [top, left, _, _] = geometry.padding();
        self.reset(ih, iw);
        // [0, n): the list; then the active mask (on), the rows dilated (oh · iw) and one input
        // row's OR (iw).
        self.indices.resize(n + on + oh * iw + iw, 0);
        let (list, rest) = self.indices.split_at_mut(n);
        let (active, rest) = rest.split_at_mut(on);
        let (rows, touched) = rest.split_at_mut(oh * iw);
        active.fill(0);
        outputs.indices.iter().for_each(|&p| active[p as usize] = 1);
        // rows[oy][ix] = OR over kx of active[oy][ox] with ox = ix + left − kx·d inside the grid.
        for (out_row, row) in active.chunks_exact(ow).zip(rows.chunks_exact_mut(iw)) {
            row.fill(0);
            for kx in 0..kw {
                let shift = left as isize - (kx * d) as isize;
                let (from, to) = ((-shift).max(0) as usize, ((ow as isize - shift).min(iw as isize)).max(0) as usize);
                for ix in from..to {
                    row[ix] |= out_row[(ix as isize + shift) as usize];
                }
            }
        }
        // touched[iy][ix] = OR over ky of rows[oy][ix] with oy = iy + top − ky·d inside the grid,
        // one input row at a time, then listed.
        let mut count = 0;
        for iy in 0..ih {
            touched.fill(0);
            for ky in 0..kh {
                let oy = iy as isize + top as isize - (ky * d) as isize;
                if oy >= 0 && oy < oh as isize {
                    let row = &rows[oy as usize * iw..][..iw];
                    touched.iter_mut().zip(row).for_each(|(t, &r)| *t |= r);
                }
            }
            // Branch-free: every pixel is written at the next slot, which only advances for a
            // touched one (mask edges made the branch mispredict). count ≤ iy·iw + ix < n here.
            for (ix, &t) in touched.iter().enumerate() {
                list[count] = (iy * iw + ix) as u32;
                count += (t != 0) as usize;
            }
        }
        self.indices.truncate(count);
        Ok(())
    }

    fn reset(&mut self, height: usize, width: usize) {
        self.indices.clear();
        self.height = height;
        self.width = width;
    }

    /// Errors unless the set is over an `height × width` grid.
    pub(crate) fn check_grid(&self, what: &str, height: usize, width: usize) -> Result<()> {
        if (self.height, self.width) != (height, width) {
            return Err(PagError::Shape {
                what: what.into(),
                expected: format!("a {height}×{width} grid"),
                got: format!("{}×{}", self.height, self.width),
            });
        }
        Ok(())
    }

    /// The active positions, row-major, strictly ascending.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }
    /// Grid height.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Grid width.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Number of active pixels.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
    /// True when no pixel is active.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
    /// True when every pixel of the grid is active.
    pub fn is_full(&self) -> bool {
        self.indices.len() == self.height * self.width
    }
    /// Fraction of active pixels, in [0, 1] (0 for an empty grid).
    pub fn density(&self) -> f32 {
        let n = self.height * self.width;
        if n == 0 {
            0.0
        } else {
            self.indices.len() as f32 / n as f32
        }
    }
    /// Allocated capacity of the index list (to check that refills stop allocating).
    pub fn capacity(&self) -> usize {
        self.indices.capacity()
    }

    /// The most slots [`ActiveSet::refill_input_footprint`] uses for a conv over an `h × w` grid
    /// whose output grid is `oh × ow` (the list, and the dilation's scratch): reserve it to warm up.
    pub fn footprint_capacity(h: usize, w: usize, oh: usize, ow: usize) -> usize {
        let n = h * w;
        (n + n.div_ceil(32)).max(n + oh * ow + oh * w + w)
    }

    /// Grows the list's capacity to at least `slots` (warm-up: later refills then never allocate).
    pub fn reserve(&mut self, slots: usize) {
        self.indices.reserve(slots.saturating_sub(self.indices.len()));
    }
}
