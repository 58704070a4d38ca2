//! The model loader on arbitrary bytes: ONNX decode, operator check, the PAG contract, tract
//! typing and optimisation, sparse extraction (`PagModel::from_bytes`, sparse execution) and,
//! when that loads, dense execution too. The contract: never a panic, only `Err`.
//!
//! `PAGRT_FUZZ_COUNT_KNOWN=1` lets fuzzing go past crashes that are already reported: a panic
//! raised at one of the `KNOWN` source locations is counted (a line on stderr) and the input
//! is treated as rejected; any other panic aborts as usual. Off by default: then every panic is
//! a crash.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

use libfuzzer_sys::fuzz_target;
use pag_runtime::{Execution, PagModel};

/// Panic locations (file suffix, line) of crashes already reported, with their regression
/// inputs in fuzz/regressions/loader/.
const KNOWN: &[(&str, u32)] = &[
    // A Conv whose `dilations` (or `strides`) has fewer entries than the kernel has spatial
    // axes: tract-hir's Conv shape inference indexes past the attribute.
    ("tract-core-0.23.9/src/ops/cnn/padding.rs", 76),
    // A ConstantOfShape whose shape constant asks for billions of elements: tract materialises
    // it while typing; the allocation fails (under the address-space limit run.sh sets) and
    // tract-data asserts. Without a limit, the same input takes tens of GB or times out.
    ("tract-data-0.23.9/src/blob.rs", 76),
    // A ConstantOfShape whose shape constant holds a negative number (the case of issue 11):
    // tract asserts every dimension is >= 0 when it types the constant.
    ("tract-core-0.23.9/src/model/fact.rs", 21),
];

static KNOWN_HITS: AtomicU64 = AtomicU64::new(0);

/// Sparse execution (the default) exercises everything dense execution does and more; dense is
/// tried too when the sparse load succeeded.
fn load(data: &[u8]) {
    if PagModel::from_bytes(data, "fuzz input").is_ok() {
        let _ = PagModel::from_bytes_with(data, "fuzz input", Execution::Dense);
    }
}

/// Replaces libFuzzer's abort-on-panic hook by one that lets known panics unwind (to be
/// counted) and aborts on every other one, after printing it as the default hook would.
fn install_known_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let known = info.location().is_some_and(|l| KNOWN.iter().any(|(f, n)| l.file().ends_with(f) && l.line() == *n));
        if known {
            let n = KNOWN_HITS.fetch_add(1, Ordering::Relaxed) + 1;
            let at = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
            eprintln!("pagrt-fuzz: known loader panic #{n} at {at}");
            return;
        }
        default(info);
        std::process::abort();
    }));
}

fuzz_target!(|data: &[u8]| {
    if std::env::var_os("PAGRT_FUZZ_COUNT_KNOWN").is_none() {
        load(data);
        return;
    }
    static HOOK: Once = Once::new();
    HOOK.call_once(install_known_panic_hook);
    let _ = std::panic::catch_unwind(|| load(data));
});
