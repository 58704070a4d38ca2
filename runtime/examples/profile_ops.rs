//! Per-operator time of a model in tract (dense, ρ=1): `cargo run --release -p pag-runtime --example profile_ops -- MODEL.onnx`.
//! Shows where a frame goes (e.g. Resize vs matmul) before optimising.
use std::collections::HashMap;
use std::time::Instant;
use tract_onnx::prelude::*;
fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: profile_ops MODEL.onnx"))?;
    let mut m = tract_onnx::onnx().model_for_path(&path)?;
    m.set_input_fact(0, f32::fact([1, 3, 240, 320]).into())?;
    m.set_input_fact(1, f32::fact([1]).into())?;
    let plan = m.into_optimized()?.into_runnable()?;
    let x = Tensor::zero::<f32>(&[1, 3, 240, 320])?;
    let mut state = plan.spawn()?;
    let mut per: HashMap<String, f64> = HashMap::new();
    for it in 0..6 {
        let inputs = tvec![x.clone().into_tvalue(), tensor1(&[1.0f32]).into_tvalue()];
        state.run_plan_with_eval(inputs, |ctx, st, node, inputs| {
            let t = Instant::now();
            let r = tract_onnx::tract_core::plan::eval(ctx, st, node, inputs);
            if it > 0 {
                *per.entry(node.op.name().to_string()).or_default() += t.elapsed().as_secs_f64() * 1e3 / 5.0;
            }
            r
        })?;
    }
    let mut v: Vec<_> = per.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    let tot: f64 = v.iter().map(|x| x.1).sum();
    println!("total {tot:.1} ms");
    for (k, t) in v.iter().take(15) {
        println!("{k:<30} {t:7.2} ms");
    }
    Ok(())
}
