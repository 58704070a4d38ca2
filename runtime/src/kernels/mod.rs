//! Arithmetic, one folder per numeric family: what a backend implements so that the PAG policy
//! ([`crate::pag`]: active sets, budgets, footprints, block plans, telemetry — written once)
//! runs on it.
//!
//! - [`cpu_f32`]: f32 on the CPU. Per-ISA micro-kernels (portable, AVX2, AVX-512) are plain
//!   functions in a table chosen once at start-up ([`cpu_f32::isa`]); work is split across the
//!   session's rayon pool by pixel tiles.
//! - [`cuda`]: the GPU backend's seam; today (no backend yet) a stub that answers every
//!   request with [`crate::PagError::DeviceUnavailable`].
//! - [`cpu_i8`]: int8 on the CPU for QDQ models: tract-linalg's int8 kernels (VNNI, AMX, SDOT,
//!   …) behind the same traits; f32 block inputs and outputs, f32 gates.
//! - A new numeric family gets a sibling folder implementing the same traits.
//!
//! The traits below are the whole interface between policy and arithmetic: the policy decides
//! *which pixels* (as [`ActiveSet`]s), the kernel computes *there* and nowhere else.
use crate::pag::ActiveSet;

pub mod cpu_f32;
pub mod cpu_i8;
pub mod cuda;

/// The arithmetic of one gated residual block `O = I + G ⊙ F(I)` with
/// `F = expand ∘ spatial ∘ reduce`, where `spatial` is either one k×k conv (branch 0) or a
/// MultiPool's per-pixel choice among several dilated 3×3 convs and a copy (branches `0..P`).
/// Driven by [`crate::pag::gated_block::run`].
pub trait GatedBlockKernel {
    /// The block's activations (`C × h × w`), e.g. `[f32]` on the CPU.
    type Act: ?Sized;
    /// Per-session working memory of this backend (grown once, reused every frame).
    type Scratch: Default + Send;

    /// Sizes and branch geometries, fixed at build time.
    fn shape(&self) -> &crate::pag::gated_block::BlockShape;

    /// Gate logits at every pixel into `scores` (`h · w`).
    fn gate_scores(&self, x: &Self::Act, scores: &mut [f32], s: &mut Self::Scratch);

    /// The reduce conv (`C → mid`, + bias, ReLU) at `pixels` only, kept in the scratch for the
    /// branches. Called once per frame with every pixel the branches will read, or twice with
    /// disjoint sets (a MultiPool block: the active pixels first, for its selector, then the rest
    /// of the footprint).
    fn reduce(&self, x: &Self::Act, pixels: &ActiveSet, s: &mut Self::Scratch);

    /// The MultiPool selector's logits (`P × h · w`, planar) at `pixels`, from the reduce output.
    /// Only called on blocks whose shape has more than one branch.
    fn selector_scores(&self, pixels: &ActiveSet, scores: &mut [f32], s: &mut Self::Scratch);

    /// Branch `branch`'s spatial conv (or copy) then the expand conv, added to `x` at `pixels`
    /// (ascending positions); every other pixel of `x` is left untouched.
    fn branch(&self, x: &mut Self::Act, branch: usize, pixels: &[u32], s: &mut Self::Scratch);

    /// Copies `x` at `pixels` (every channel) into the scratch, to put back with
    /// [`GatedBlockKernel::restore`] after a branch ran densely.
    fn save(&self, x: &Self::Act, pixels: &[u32], s: &mut Self::Scratch);

    /// Writes back what [`GatedBlockKernel::save`] kept, bit for bit.
    fn restore(&self, x: &mut Self::Act, pixels: &[u32], s: &mut Self::Scratch);

    /// Called once after every [`GatedBlockKernel::branch`] of a frame, with every pixel a branch
    /// ran at (ascending), before [`GatedBlockKernel::restore`]: a backend may leave part of the
    /// branches' work to this (e.g. one expand conv over all of a MultiPool's pixels instead of
    /// one per branch). By then `x` must hold the block output at those pixels.
    fn finish(&self, _x: &mut Self::Act, _pixels: &[u32], _s: &mut Self::Scratch) {}
}

/// The arithmetic of an ungated MultiPool module (contract version 1): a `C → P` 1×1 selector
/// and `P` branches, each a dilated 3×3 conv (+ optional ReLU) or a copy. Driven by
/// [`crate::pag::multipool::run`].
pub trait MultiPoolKernel {
    /// The module's activations (`C × h × w`).
    type Act: ?Sized;
    /// Per-session working memory of this backend.
    type Scratch: Default + Send;

    /// Channels, grid and branches.
    fn shape(&self) -> &crate::pag::gated_block::BlockShape;

    /// The selector's logits at every pixel (`P × h · w`, planar).
    fn selector_scores(&self, input: &Self::Act, scores: &mut [f32], s: &mut Self::Scratch);

    /// Branch `branch` of `input` written to `output` at `pixels` only.
    fn branch(
        &self,
        input: &Self::Act,
        branch: usize,
        pixels: &ActiveSet,
        output: &mut Self::Act,
        s: &mut Self::Scratch,
    );
}

/// A gated block's kernel in whichever numeric family the model's block is stored in: f32, or
/// int8 for a block of QDQ convs.
#[derive(Debug, Clone)]
pub enum AnyGatedBlock {
    F32(cpu_f32::GatedBlock),
    I8(cpu_i8::GatedBlockI8),
}

/// Working memory for an [`AnyGatedBlock`].
#[derive(Debug, Default)]
pub struct AnyGatedScratch {
    f32: cpu_f32::GatedBlockScratch,
    i8: cpu_i8::GatedBlockI8Scratch,
    last_i8: bool,
}

impl AnyGatedScratch {
    /// The active set of the last run (empty before the first).
    pub fn active(&self) -> &ActiveSet {
        if self.last_i8 {
            self.i8.active()
        } else {
            self.f32.active()
        }
    }

    /// Bytes currently reserved.
    pub fn allocated_bytes(&self) -> usize {
        self.f32.allocated_bytes() + self.i8.allocated_bytes()
    }
}

impl AnyGatedBlock {
    /// `"f32"` or `"int8"`.
    pub fn precision(&self) -> &'static str {
        match self {
            AnyGatedBlock::F32(_) => "f32",
            AnyGatedBlock::I8(_) => "int8",
        }
    }
    /// Sizes and branches.
    pub fn block_shape(&self) -> &crate::pag::gated_block::BlockShape {
        match self {
            AnyGatedBlock::F32(b) => b.block_shape(),
            AnyGatedBlock::I8(b) => b.block_shape(),
        }
    }
    /// Grid `(h, w)`.
    pub fn size(&self) -> (usize, usize) {
        let s = self.block_shape();
        (s.height, s.width)
    }
    /// Block channels `C`.
    pub fn channels(&self) -> usize {
        self.block_shape().channels
    }
    /// Bottleneck channels.
    pub fn mid(&self) -> usize {
        self.block_shape().mid
    }

    /// Runs the block in place (see [`cpu_f32::GatedBlock::run_in_place`]).
    pub fn run_in_place(
        &self,
        x: &mut [f32],
        mode: crate::mode::ComputeMode,
        s: &mut AnyGatedScratch,
    ) -> crate::Result<crate::pag::BlockStats> {
        match self {
            AnyGatedBlock::F32(b) => {
                s.last_i8 = false;
                b.run_in_place(x, mode, &mut s.f32)
            }
            AnyGatedBlock::I8(b) => {
                s.last_i8 = true;
                b.run_in_place(x, mode, &mut s.i8)
            }
        }
    }
}
