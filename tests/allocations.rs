//! Heap allocations per frame after warm-up, counted by a global allocator wrapper (this test
//! binary only): pagrt's own operators (gated blocks, MultiPool, resize, conv) must allocate
//! nothing once warm; what tract's remaining operators and the returned `Outputs` allocate is
//! printed (`cargo test --release --test allocations -- --nocapture`).
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pag_runtime::{ComputeMode, Execution, PagModel, Session};

mod common;

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

/// Whether the caller is the process's main thread: libtest's own, which runs no test (each
/// test gets a thread of its own) but writes "has been running for over 60 seconds" at whatever
/// moment a slow run (e.g. under qemu) crosses that mark, allocating inside a measured frame.
fn on_harness_thread() -> bool {
    #[cfg(target_os = "linux")]
    {
        unsafe extern "C" {
            fn gettid() -> i32;
        }
        // SAFETY: gettid has no preconditions.
        (unsafe { gettid() }) as u32 == std::process::id()
    }
    #[cfg(not(target_os = "linux"))]
    false
}

fn count(bytes: usize) {
    if !on_harness_thread() {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn counters() -> (u64, u64) {
    (ALLOCS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed))
}

const OURS: [&str; 6] = ["PagGatedBlock", "PagMultiPool", "PagResize", "PagConv", "PagL2Norm", "PagQConv"];

#[test]
fn pagrt_operators_allocate_nothing_after_warm_up_on_1_thread() {
    operators_allocate_nothing_after_warm_up(common::shipped_model(), 1);
}

#[test]
fn pagrt_operators_allocate_nothing_after_warm_up_on_2_threads() {
    operators_allocate_nothing_after_warm_up(common::shipped_model(), 2);
}

/// The int8 model: int8 gated blocks and PagQConv ops.
#[test]
fn int8_operators_allocate_nothing_after_warm_up_on_1_and_2_threads() {
    operators_allocate_nothing_after_warm_up(common::int8_model(), 1);
    operators_allocate_nothing_after_warm_up(common::int8_model(), 2);
}

/// Both thread counts run in one process (tests share the counters, so they take turns).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn operators_allocate_nothing_after_warm_up(path: std::path::PathBuf, threads: usize) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let model = Arc::new(PagModel::load_with(path, Execution::Sparse).unwrap());
    let (h, w) = (model.info.input.height, model.info.input.width);
    let rgb = ndarray::Array3::<u8>::from_shape_fn((h, w, 3), |(y, x, c)| ((y * 7 + x * 3 + c * 50) % 256) as u8);
    let mut session = Session::with_threads(model, threads).unwrap();
    // Warm up every mode once (scratch grows to what any mode needs), then switch modes freely.
    let modes = [
        ComputeMode::Dense,
        ComputeMode::budget(0.9).unwrap(),
        ComputeMode::budget(0.5).unwrap(),
        ComputeMode::budget(0.2).unwrap(),
        ComputeMode::Native,
    ];
    for mode in modes {
        session.set_mode(mode);
        session.run(rgb.view()).unwrap();
    }
    let frames = 3u64;
    for mode in modes {
        session.set_mode(mode);
        // Per operator type: (allocations, bytes), attributed without allocating in the callback.
        let mut ours = [(0u64, 0u64); OURS.len()];
        let mut theirs = (0u64, 0u64);
        let start = counters();
        for _ in 0..frames {
            let mut last = counters();
            let mut record = |op: &str, _node: &str, _seconds: f64| {
                let now = counters();
                let delta = (now.0 - last.0, now.1 - last.1);
                match OURS.iter().position(|o| *o == op) {
                    Some(i) => (ours[i].0 += delta.0, ours[i].1 += delta.1),
                    None => (theirs.0 += delta.0, theirs.1 += delta.1),
                };
                last = now;
            };
            session.run_profiled(rgb.view(), &mut record).unwrap();
        }
        let total = (counters().0 - start.0, counters().1 - start.1);
        println!(
            "{threads} thread(s), {mode}: per frame {} allocations / {} KiB in all; tract's operators {} / {} KiB; pagrt's {:?}",
            total.0 / frames,
            total.1 / frames / 1024,
            theirs.0 / frames,
            theirs.1 / frames / 1024,
            ours.map(|o| o.0 / frames)
        );
        for (name, (allocs, bytes)) in OURS.iter().zip(ours) {
            assert_eq!(
                (allocs, bytes),
                (0, 0),
                "{name} allocated {allocs} times ({bytes} bytes) in {frames} frames of {mode} on {threads} thread(s)"
            );
        }
    }
    // The counters are process-wide: a dropped session's pool threads exit asynchronously (and
    // allocate while they do), so let them finish before the next measurement takes its turn.
    drop(session);
    std::thread::sleep(std::time::Duration::from_millis(300));
}
