//! Times `Outputs::from_raw` (argmax over the logits, depth validity, normals to H×W×3) on a
//! 240×320 frame of 8 classes, with the allocator the binaries use:
//! `cargo run --release -p pag-runtime --example outputs_bench [REPS]`.
use std::time::Instant;

use ndarray::Array4;
use pag_runtime::Outputs;

/// As in the `pag` CLI and the ROS node.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let reps: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(300);
    let (k, h, w) = (8, 240, 320);
    let seg = Array4::from_shape_fn((1, k, h, w), |(_, c, y, x)| ((c * 7919 + y * 31 + x * 17) % 101) as f32 * 0.01);
    let depth = Array4::from_shape_fn((1, 1, h, w), |(_, _, y, x)| 0.5 + (y + x) as f32 * 0.01);
    let normals = Array4::from_shape_fn((1, 3, h, w), |(_, c, _, x)| if c == 2 { -1.0 } else { x as f32 * 1e-3 });
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(Outputs::from_raw(seg.view(), depth.view(), normals.view(), (1.0, 1.0)));
        }
        best = best.min(t.elapsed().as_secs_f64() * 1e3 / reps as f64);
    }
    println!("Outputs::from_raw 8×240×320: {best:.3} ms (best of 5 rounds of {reps})");
}
