use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result};
use pag_runtime::{ComputeMode, Execution, PagModel, Session};

pub fn info(path: &Path) -> Result<()> {
    let m = PagModel::load_with(path, Execution::Sparse).with_context(|| format!("loading {}", path.display()))?;
    let i = &m.info;
    println!("model       {}", path.display());
    println!(
        "input       `{}` 1×3×{}×{} {} (x·{:.6} − mean {:?}) / std {:?}",
        i.input.name, i.input.height, i.input.width, i.input.color, i.input.scale, i.input.mean, i.input.std
    );
    println!(
        "outputs     seg_logits ({} classes), depth (m, optical z), normals (unit, camera optical frame)",
        i.class_names.len()
    );
    println!("classes     {}", i.class_names.join(", "));
    println!("ρ input     {}", i.rho_input.as_deref().unwrap_or("none (no gates)"));
    if let Some(f) = i.camera_hfov_deg {
        println!("camera      trained for a {f}° horizontal field of view");
    }
    println!("dense MACs  {:.1} M per frame", m.dense_macs as f64 / 1e6);
    println!("gated blocks ({}):", i.gated_blocks.len());
    for b in &i.gated_blocks {
        println!("  {:<14} score {}  mask {}", b.name, b.score, b.mask);
    }
    println!("MultiPool modules ({}):", i.multipools.len());
    for p in &i.multipools {
        println!("  {:<14} dilations {:?}  selector {}", p.name, p.dilations, p.selector);
    }
    let (gated, pools) = m.sparse_op_counts();
    let inside = i.gated_blocks.iter().filter(|b| b.multipool.is_some()).count();
    println!(
        "sparse      {gated} of {} gated blocks ({inside} with a MultiPool inside) and {pools} of {} standalone MultiPool modules run on pagrt's sparse kernels",
        i.gated_blocks.len(),
        i.multipools.len() - inside
    );
    for reason in &m.dense_fallbacks {
        println!("  {reason}");
    }
    println!("precision   {}", m.precision());
    if let Some(t) = i.metadata.get("pag.training") {
        println!("training    {t}");
    }
    if let Some(mount) = &i.camera_mount {
        println!(
            "camera      mounted {:.2} ± {:.2} m above the floor, pitch {:+.1} ± {:.1}°, roll ± {:.1}°",
            mount.height_m, mount.height_play_m, mount.pitch_deg, mount.pitch_play_deg, mount.roll_play_deg
        );
    }
    if gated > 0 {
        gated_share(Arc::new(m))?;
    }
    Ok(())
}

/// Executed MACs per module at ρ = 1 on a rendered scene (as the runtime's telemetry counts
/// them), and the share of the frame's executed MACs inside gated branches (the part ρ scales).
fn gated_share(model: Arc<PagModel>) -> Result<()> {
    let (h, w) = (model.info.input.height as u32, model.info.input.width as u32);
    let scene = pag_models::Scene::random(1);
    let intr = pag_models::Intrinsics::with_hfov(w, h, model.info.camera_hfov_deg.unwrap_or(70.0));
    let rgb = scene.render(&intr, &scene.random_pose(1)).rgb;
    let mut session = Session::with_threads(model.clone(), 1)?;
    session.set_mode(ComputeMode::Dense);
    session.run(rgb.view())?;
    let t = session.telemetry().context("no telemetry")?;
    let skipped = t.dense_macs_total - t.executed_macs_total;
    let frame = model.dense_macs - skipped;
    let branch = t.gated_branch_macs();
    println!("executed MACs at ρ = 1 (one frame, runtime telemetry): {:.1} M", frame as f64 / 1e6);
    for l in &t.layers {
        println!(
            "  {:<14} {:7.1} M  {:5.1}%",
            l.name,
            l.executed_macs as f64 / 1e6,
            100.0 * l.executed_macs as f64 / frame as f64
        );
    }
    for l in &t.multipools {
        println!(
            "  {:<14} {:7.1} M  {:5.1}% (MultiPool, not gated)",
            l.name,
            l.executed_macs as f64 / 1e6,
            100.0 * l.executed_macs as f64 / frame as f64
        );
    }
    println!(
        "gated share {:.1}% of the frame's executed MACs are inside gated branches (the gates themselves excluded)",
        100.0 * branch as f64 / frame as f64
    );
    Ok(())
}
