use std::path::Path;

use anyhow::{Context, Result};
use pag_runtime::{Execution, PagModel};

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
    println!(
        "sparse      {gated} of {} gated blocks and {pools} of {} MultiPool modules run on pagrt's sparse kernels",
        i.gated_blocks.len(),
        i.multipools.len()
    );
    for reason in &m.dense_fallbacks {
        println!("  {reason}");
    }
    if let Some(t) = i.metadata.get("pag.training") {
        println!("training    {t}");
    }
    Ok(())
}
