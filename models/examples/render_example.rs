//! Render one example frame (RGB, coloured labels, depth and normal visualisations) and
//! time the renderer.
//!
//! `cargo run --release -p pag-models --example render_example -- [SEED] [OUT_DIR]`

use pag_models::{Frame, Intrinsics, Scene};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let seed: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(12);
    let out = std::path::PathBuf::from(args.get(2).cloned().unwrap_or_else(|| "/tmp/scene_example".into()));
    std::fs::create_dir_all(&out)?;

    let scene = Scene::random(seed);
    let pose = scene.random_pose(seed);
    let intr = Intrinsics::new(320, 240);
    let mut frame = Frame::new(320, 240);
    scene.render_into(&intr, &pose, &mut frame); // warm-up
    let n = 200;
    let t0 = Instant::now();
    for _ in 0..n {
        scene.render_into(&intr, &pose, &mut frame);
    }
    let per_frame = t0.elapsed().as_secs_f64() / n as f64;
    println!(
        "seed {seed}: room {:?}, {} primitives, 320x240 render {:.2} ms/frame ({} rayon threads)",
        scene.size(),
        scene.objects().len(),
        per_frame * 1e3,
        rayon::current_num_threads()
    );

    let (w, h) = (frame.width(), frame.height());
    let save =
        |name: &str, data: Vec<u8>| image::save_buffer(out.join(name), &data, w, h, image::ExtendedColorType::Rgb8);
    save("rgb.png", frame.rgb.iter().copied().collect())?;
    save("label.png", frame.colorized_labels().iter().copied().collect())?;
    let dmax = frame.depth.iter().copied().fold(0.0f32, f32::max);
    save("depth.png", frame.depth.iter().flat_map(|&d| [(255.0 * (1.0 - d / dmax)) as u8; 3]).collect())?;
    save("normals.png", frame.normals.iter().map(|&n| ((n * 0.5 + 0.5) * 255.0) as u8).collect())?;
    println!("wrote {}/{{rgb,label,depth,normals}}.png", out.display());
    Ok(())
}
