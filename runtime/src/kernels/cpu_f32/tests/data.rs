//! Deterministic test data for the sparse-kernel property tests.

/// SplitMix64: deterministic test data from one proptest-chosen seed.
pub(crate) struct Data(pub(crate) u64);

impl Data {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub(crate) fn signed(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Uniform in 0..n.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `len` values uniform in [-scale, scale).
    pub(crate) fn vec(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|_| self.signed() * scale).collect()
    }

    /// Multiples of `1 / steps` in [-1, 1]: sums of their products are exact in f32 and f64
    /// alike, so scores (and their ties) do not depend on the summation order.
    pub(crate) fn quantized(&mut self, len: usize, steps: u64) -> Vec<f32> {
        (0..len).map(|_| (self.next() % (2 * steps + 1)) as f32 / steps as f32 - 1.0).collect()
    }
}
