//! Per-frame telemetry of sparse execution: how much of each gated block and MultiPool module
//! ran, in active density and multiply-accumulates, and the ponder map (how many gated blocks
//! ran at each input pixel).
use ndarray::Array2;

use super::active::ActiveSet;

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
    /// Of `executed_macs`, those that run whatever the mode (a gated block's gate conv, a
    /// MultiPool's selector and branches): the rest is what the gate controls.
    pub ungated_macs: u64,
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

    /// Executed MACs inside gated branches (what ρ scales): the gated blocks' executed MACs
    /// without their gate convs.
    pub fn gated_branch_macs(&self) -> u64 {
        self.layers.iter().map(|l| l.executed_macs - l.ungated_macs).sum()
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

/// Adds, at every pixel of `map` (the input resolution), the count of its nearest-neighbour
/// source cell in `counts`, a `gh × gw` grid.
pub(crate) fn add_to_ponder(map: &mut Array2<u8>, counts: &[u8], gh: usize, gw: usize) {
    let (h, w) = map.dim();
    if gh == 0 || gw == 0 {
        return;
    }
    let cols: Vec<usize> = (0..w).map(|x| x * gw / w).collect();
    for (y, mut row) in map.rows_mut().into_iter().enumerate() {
        let src = &counts[(y * gh / h) * gw..][..gw];
        for (v, &gx) in row.iter_mut().zip(&cols) {
            *v = v.saturating_add(src[gx]);
        }
    }
}

/// Per grid size, how many of the given active sets cover each cell: the ponder map before it is
/// upsampled (one pass per distinct grid instead of one per block).
pub(crate) fn count_by_grid<'a>(sets: impl Iterator<Item = &'a ActiveSet>) -> Vec<(usize, usize, Vec<u8>)> {
    let mut grids: Vec<(usize, usize, Vec<u8>)> = Vec::new();
    for set in sets {
        let (gh, gw) = (set.height(), set.width());
        let i = match grids.iter().position(|g| (g.0, g.1) == (gh, gw)) {
            Some(i) => i,
            None => {
                grids.push((gh, gw, vec![0u8; gh * gw]));
                grids.len() - 1
            }
        };
        let counts = &mut grids[i].2;
        set.indices().iter().for_each(|&p| counts[p as usize] = counts[p as usize].saturating_add(1));
    }
    grids
}
