//! The ρ controller allocates nothing per frame: a counting global allocator (this test binary
//! only) over many steps that cross every branch — late frames, the floor, raising, battery caps,
//! NaN / 0–100 / negative / stale / absent readings, charging, invalid observations.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use pag_runtime::controller::{
    BatteryReading, Controller, ControllerConfig, Frame, LatencyLaw, LatencyProfile, PowerSupplyStatus, Reason,
};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn battery(i: usize) -> Option<BatteryReading> {
    let status = if i % 5000 > 4500 { PowerSupplyStatus::Charging } else { PowerSupplyStatus::Discharging };
    let percentage = match i % 997 {
        0..=9 => f32::NAN,
        10..=12 => -1.0,
        13..=15 => 55.0,
        _ => 1.0 - (i % 3000) as f32 / 3000.0,
    };
    match i % 1500 {
        0..=200 => None,
        _ => Some(BatteryReading { percentage, status, age_s: if i % 700 < 150 { 9.0 } else { 0.01 } }),
    }
}

#[test]
fn controller_steps_allocate_nothing() {
    let profile = LatencyProfile::from_fn(&[0.25, 0.5, 0.75, 1.0], 0.012, |r| 0.42 + 0.58 * r).unwrap();
    for law in [ControllerConfig::default().law, LatencyLaw::Integral { gain: 0.3, margin: 0.2 }] {
        let before_new = ALLOCS.load(Ordering::Relaxed);
        let cfg = ControllerConfig { law, ..Default::default() };
        let mut c = Controller::new(cfg, profile.clone(), 0.0144).unwrap();
        let mut d = c.step(0.0, None, battery(0));
        let built = ALLOCS.load(Ordering::Relaxed) - before_new;
        let mut seen = [false; 7];
        let start = ALLOCS.load(Ordering::Relaxed);
        for i in 1..100_000usize {
            let slow = match (i / 2000) % 3 {
                0 => 1.0,
                1 => 2.0,
                _ => 5.0,
            };
            let latency = if i % 4999 == 0 { f32::NAN } else { profile.seconds_at(d.rho) * slow };
            d = c.step(i as f64 * 0.05, Some(Frame { latency_s: latency, rho: d.rho }), battery(i));
            seen[d.reason as usize] = true;
        }
        let allocs = ALLOCS.load(Ordering::Relaxed) - start;
        println!("{law:?}: {allocs} allocations in 100k steps ({built} to build); reasons seen {seen:?}");
        assert_eq!(allocs, 0, "the controller allocated {allocs} times in 100 000 steps");
        assert!(seen.iter().filter(|s| **s).count() >= 5, "too few branches exercised: {seen:?}");
        assert!(seen[Reason::Floor as usize] && seen[Reason::BatteryUnknown as usize]);
    }
}
