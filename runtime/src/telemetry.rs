//! Per-frame telemetry of sparse execution: how much of each gated block and MultiPool module
//! ran, in active density and multiply-accumulates, and the ponder map (how many gated blocks
//! ran at each input pixel).
use ndarray::Array2;

use crate::sparse::ActiveSet;

/// What one sparse module (gated block or MultiPool) did in the last frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerTelemetry {
    /// The module's name in the model metadata (e.g. `"stage2.1"`).
    pub name: String,
    /// Fraction of its grid's pixels where it computed its branch: the gate's active set for a
    /// gated block; for a MultiPool, the pixels whose chosen branch is a conv (not a copy).
    pub density: f32,
    /// Multiply-accumulates executed.
    pub executed_macs: u64,
    /// Multiply-accumulates of the same module computed densely.
    pub dense_macs: u64,
}

/// What the sparse modules of a model did in the last frame a session ran.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FrameTelemetry {
    /// The gated blocks, in the model metadata's order.
    pub layers: Vec<LayerTelemetry>,
    /// The MultiPool modules, in the model metadata's order.
    pub multipools: Vec<LayerTelemetry>,
    /// Executed MACs of all these modules (not of the rest of the network).
    pub executed_macs_total: u64,
    /// Dense MACs of all these modules.
    pub dense_macs_total: u64,
}

impl FrameTelemetry {
    /// Executed MACs of the gated blocks only.
    pub fn gated_executed_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.executed_macs).sum()
    }

    /// Dense MACs of the gated blocks only.
    pub fn gated_dense_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.dense_macs).sum()
    }

    pub(crate) fn update_totals(&mut self) {
        let all = || self.layers.iter().chain(self.multipools.iter());
        self.executed_macs_total = all().map(|l| l.executed_macs).sum();
        self.dense_macs_total = all().map(|l| l.dense_macs).sum();
    }
}

/// Adds 1 at every pixel of `map` (the input resolution) whose nearest-neighbour source pixel on
/// the set's own grid is active.
pub(crate) fn add_to_ponder(map: &mut Array2<u8>, set: &ActiveSet) {
    let (h, w) = map.dim();
    let (gh, gw) = (set.height(), set.width());
    if gh == 0 || gw == 0 {
        return;
    }
    let mut mask = vec![false; gh * gw];
    set.indices().iter().for_each(|&p| mask[p as usize] = true);
    let cols: Vec<usize> = (0..w).map(|x| x * gw / w).collect();
    for (y, mut row) in map.rows_mut().into_iter().enumerate() {
        let src = &mask[(y * gh / h) * gw..][..gw];
        for (v, &gx) in row.iter_mut().zip(&cols) {
            if src[gx] {
                *v = v.saturating_add(1);
            }
        }
    }
}
