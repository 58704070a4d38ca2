//! The CPU's f32 micro-kernels, one table per instruction set, chosen once at start-up.
//!
//! Each table holds plain functions (the GEMM's blocked driver with its register tile, the
//! im2col gathers, the bilinear resize, the stride-2 direct conv, the outputs' class argmax, the
//! normals' L2 normalisation, the gate scores)
//! compiled for one ISA. [`best`] picks the widest the CPU
//! supports (`PAGRT_CPU_ISA=portable|avx2|avx512|neon` overrides it, for debugging and benchmarks);
//! [`CpuIsa::supported`] lists every table this CPU can run, so tests check them all, not only
//! the one the dispatcher picks.
use std::sync::OnceLock;

use super::argmax::{self, ArgmaxFn};
use super::gated_block::{self, GateFn};
use super::gemm::{self, GemmFn};
use super::im2col::{self, ChannelsLastFn, Im2colFn};
use super::l2norm::{self, L2NormFn};
use super::resize::{self, ResizeFn};
use super::strided::{self, SplitFn, StridedFn};

/// One instruction set's f32 kernels.
#[derive(Debug)]
pub struct CpuIsa {
    /// `portable`, `avx2` (AVX2 + FMA), `avx512` (AVX-512F) or `neon` (aarch64).
    pub name: &'static str,
    pub(crate) gemm: GemmFn,
    pub(crate) im2col: Im2colFn,
    /// The gated block's channels-last im2col (`im2col.rs`).
    pub(crate) im2col_channels_last: ChannelsLastFn,
    pub(crate) resize: ResizeFn,
    pub(crate) strided: StridedFn,
    pub(crate) strided_split: SplitFn,
    /// Dense stride-2 convs with at most this many input channels × taps run on `strided`
    /// rather than im2col + GEMM: where it measured faster (`examples/conv_bench`, AMD EPYC Zen
    /// 5 and Zen 3: the direct kernel wins on the 3×3 RGB stem (27) and on 16-channel 2×2 (64)
    /// on AVX2 and AVX-512; at depth 192 they tie on AVX2 (Zen 3) and the GEMM wins on
    /// AVX-512; the portable build never wins).
    pub(crate) strided_max_depth: usize,
    pub(crate) argmax: ArgmaxFn,
    pub(crate) l2norm: L2NormFn,
    /// Gate scores (`gated_block.rs`; a multiply then an add per plane, so every build gives the
    /// same bits and masks do not depend on the machine).
    pub(crate) gate: GateFn,
    detect: fn() -> bool,
}

/// Plain Rust for any target (the crate's baseline instruction set).
pub static PORTABLE: CpuIsa = CpuIsa {
    name: "portable",
    gemm: gemm::generic::gemm,
    im2col: im2col::gather_columns_portable,
    im2col_channels_last: im2col::channels_last_portable,
    resize: resize::resize_portable,
    strided: strided::strided_portable,
    strided_split: strided::split_portable,
    strided_max_depth: 0,
    argmax: argmax::argmax_portable,
    l2norm: l2norm::l2norm_portable,
    gate: gated_block::gate_range_portable,
    detect: || true,
};

/// AVX2 + FMA: 6 × 16 GEMM tile.
#[cfg(target_arch = "x86_64")]
pub static AVX2: CpuIsa = CpuIsa {
    name: "avx2",
    gemm: gemm::avx2::gemm,
    im2col: im2col::gather_columns_avx2,
    im2col_channels_last: im2col::channels_last_avx2,
    resize: resize::resize_avx2,
    strided: strided::strided_avx2,
    strided_split: strided::split_avx2,
    strided_max_depth: 64,
    argmax: argmax::argmax_avx2,
    l2norm: l2norm::l2norm_avx2,
    gate: gated_block::gate_range_avx2,
    detect: || is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
};

/// AVX-512F: 8 × 32 and 16 × 16 GEMM tiles.
#[cfg(target_arch = "x86_64")]
pub static AVX512: CpuIsa = CpuIsa {
    name: "avx512",
    gemm: gemm::avx512::gemm,
    im2col: im2col::gather_columns_avx512,
    im2col_channels_last: im2col::channels_last_avx512,
    resize: resize::resize_avx512,
    strided: strided::strided_avx512,
    strided_split: strided::split_avx512,
    strided_max_depth: 64,
    argmax: argmax::argmax_avx512,
    l2norm: l2norm::l2norm_avx512,
    gate: gated_block::gate_range_avx512,
    detect: || {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    },
};

/// NEON (aarch64, e.g. the Jetson Orin's Cortex-A78AE): the 8 × 12 `fmla` GEMM tile; every
/// other kernel is the portable body, which LLVM already vectorises with NEON (part of the
/// aarch64 baseline). Dense stride-2 convs take im2col + GEMM: the direct kernel has no NEON
/// build, and no Arm CPU was at hand to measure one against the other.
#[cfg(target_arch = "aarch64")]
pub static NEON: CpuIsa = CpuIsa {
    name: "neon",
    gemm: gemm::neon::gemm,
    strided_max_depth: 0,
    detect: || std::arch::is_aarch64_feature_detected!("neon"),
    ..PORTABLE
};

/// Every table built for this target, widest last.
pub fn all() -> &'static [&'static CpuIsa] {
    #[cfg(target_arch = "x86_64")]
    static ALL: [&CpuIsa; 3] = [&PORTABLE, &AVX2, &AVX512];
    #[cfg(target_arch = "aarch64")]
    static ALL: [&CpuIsa; 2] = [&PORTABLE, &NEON];
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    static ALL: [&CpuIsa; 1] = [&PORTABLE];
    &ALL
}

impl CpuIsa {
    /// Whether this CPU can run this table.
    pub fn is_supported(&self) -> bool {
        (self.detect)()
    }

    /// Panics, naming the table, unless this CPU can run it (before any of its builds is called).
    pub(crate) fn assert_supported(&self) {
        assert!(self.is_supported(), "{} is not supported by this CPU", self.name);
    }

    /// Every table this CPU can run, widest last.
    pub fn supported() -> Vec<&'static CpuIsa> {
        all().iter().copied().filter(|i| i.is_supported()).collect()
    }

    /// The table named `name`, if built for this target and supported by this CPU.
    pub fn by_name(name: &str) -> Option<&'static CpuIsa> {
        all().iter().copied().find(|i| i.name == name && i.is_supported())
    }
}

/// The widest table this CPU supports, or the one `PAGRT_CPU_ISA` names (ignored, with a
/// message on stderr, when unknown or unsupported). Decided once per process.
pub fn best() -> &'static CpuIsa {
    static BEST: OnceLock<&'static CpuIsa> = OnceLock::new();
    BEST.get_or_init(|| {
        let widest = *CpuIsa::supported().last().expect("the portable table is always supported");
        match std::env::var("PAGRT_CPU_ISA") {
            Ok(name) => CpuIsa::by_name(&name).unwrap_or_else(|| {
                eprintln!("pagrt: PAGRT_CPU_ISA={name} is not a supported instruction set here; using {}", widest.name);
                widest
            }),
            Err(_) => widest,
        }
    })
}
