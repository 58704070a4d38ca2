//! [`isa_builds!`]: the portable, AVX2 and AVX-512 builds of one kernel body, for the ISA table.

/// Defines three `unsafe fn`s with the given signature — the portable build (the crate's
/// baseline instruction set), the AVX2 + FMA build and the AVX-512F build — each calling `body`,
/// an `#[inline(always)]` function that is thereby compiled with each build's features. The
/// callers (the ISA table in `isa.rs`) run a build only where the CPU has its features.
macro_rules! isa_builds {
    ($body:path => $portable:ident, $avx2:ident, $avx512:ident ($($arg:ident: $ty:ty),* $(,)?)) => {
        /// The portable build (see [`isa_builds!`]).
        #[allow(clippy::too_many_arguments, unused_unsafe)]
        pub(crate) unsafe fn $portable($($arg: $ty),*) {
            // SAFETY: forwarded; the caller upholds the body's contract.
            unsafe { $body($($arg),*) }
        }

        /// The AVX2 + FMA build (see [`isa_builds!`]).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments, unused_unsafe)]
        pub(crate) unsafe fn $avx2($($arg: $ty),*) {
            // SAFETY: forwarded; the caller upholds the body's contract and the CPU has AVX2.
            unsafe { $body($($arg),*) }
        }

        /// The AVX-512F build (see [`isa_builds!`]).
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        #[allow(clippy::too_many_arguments, unused_unsafe)]
        pub(crate) unsafe fn $avx512($($arg: $ty),*) {
            // SAFETY: forwarded; the caller upholds the body's contract and the CPU has AVX-512F.
            unsafe { $body($($arg),*) }
        }
    };
}
