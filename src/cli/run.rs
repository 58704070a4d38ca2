use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use ndarray::Array3;
use pag_models::{Intrinsics, Scene};
use pag_runtime::{generic, ComputeMode, FrameTelemetry, LayerTelemetry, Outputs, PagModel, Resolution, Session};

use crate::{imageio, viz};
use pag_runtime::generic::IntoTensor;

#[derive(Args)]
pub struct RunArgs {
    /// The model (.onnx). Default: the shipped multi-task PAG model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// An RGB image (PNG or JPEG, any size).
    #[arg(long, conflicts_with_all = ["scene", "input"])]
    image: Option<PathBuf>,
    /// Render synthetic scene SEED at the model's input size and run on it (ground truth
    /// pictures are written beside the predictions).
    #[arg(long, conflicts_with = "input")]
    scene: Option<u64>,
    /// Run any ONNX model on these .npy tensors (graph input order); writes every output as .npy.
    #[arg(long, num_args = 1..)]
    input: Vec<PathBuf>,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Compute mode: dense, native, budget:ρ (or just ρ) with ρ in (0, 1].
    #[arg(long, default_value = "dense")]
    mode: ComputeMode,
    /// How gated blocks execute (sparse skips inactive pixels; dense is the masked reference).
    #[arg(long, value_enum, default_value_t = super::Exec::Sparse)]
    execution: super::Exec,
    /// Resolution of the outputs: the input image's, or the model's.
    #[arg(long, value_enum, default_value_t = Res::Input)]
    resolution: Res,
    /// Also write the ponder map (how many gated blocks ran at each input pixel, with sparse
    /// execution): ponder.png (coloured, with a scale) and ponder.npy (u8, model input size).
    #[arg(long)]
    ponder: bool,
    #[command(flatten)]
    device: super::DeviceArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Res {
    Input,
    Model,
}

pub fn run(a: RunArgs) -> Result<()> {
    let model_path = a.model.clone().unwrap_or_else(super::default_model);
    std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create output directory {}", a.out.display()))?;
    if !a.input.is_empty() {
        return run_tensors(&model_path, &a.input, &a.out, a.execution, &a.device);
    }
    let model = Arc::new(super::load_model(&model_path, a.execution, &a.device)?);
    let (rgb, truth) = match (&a.image, a.scene) {
        (Some(path), None) => (viz::from_image(&imageio::read_rgb(path)?), None),
        (None, Some(seed)) => {
            let i = &model.info;
            let intr =
                Intrinsics::with_hfov(i.input.width as u32, i.input.height as u32, i.camera_hfov_deg.unwrap_or(70.0));
            let scene = Scene::random(seed);
            // The camera the model was trained for: its declared mount, else varied poses.
            let pose = match &i.camera_mount {
                Some(m) => scene.mount_pose(seed, &super::mount_of(m)),
                None => scene.random_pose(seed),
            };
            let frame = scene.render(&intr, &pose);
            (frame.rgb.clone(), Some(frame))
        }
        _ => bail!("give one of --image IMG, --scene SEED or --input X.npy"),
    };
    let mut session = Session::new(model.clone())?;
    session.set_mode(a.mode);
    session.set_resolution(match a.resolution {
        Res::Input => Resolution::Input,
        Res::Model => Resolution::Model,
    });
    let t = Instant::now();
    let out = session.run(rgb.view())?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    // With ground truth, both depth pictures share one colour scale (the union of their ranges),
    // so that a colour means the same distance in depth.png and truth_depth.png.
    let range = viz::depth_range(out.depth.view());
    let shared = truth.as_ref().and_then(|f| match (range, viz::depth_range(f.depth.view())) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (x, y) => x.or(y),
    });
    write_pictures(&a.out, &rgb, &out, &model, shared)?;
    if let Some(f) = &truth {
        let gt =
            Outputs { labels: f.label.clone(), depth: f.depth.clone(), normals: f.normals.clone(), scale: (1.0, 1.0) };
        write_outputs(&a.out, "truth_", &gt, &model, shared)?;
    }
    let mut summary = serde_json::json!({
        "model": model_path, "mode": a.mode.to_string(), "milliseconds": ms,
        "output_size": [out.labels.dim().0, out.labels.dim().1], "scale_rows_cols": [out.scale.0, out.scale.1],
        "depth_range_m": range, "classes": model.info.class_names,
    });
    if let Some(t) = session.telemetry() {
        summary["telemetry"] = telemetry_json(t);
    }
    if a.ponder {
        match session.ponder_map() {
            Some(map) => {
                let layers = session.telemetry().map_or(0, |t| t.layers.len());
                let png = a.out.join("ponder.png");
                save(|| viz::ponder(map.view(), layers).save(&png), &png)?;
                npy(&a.out.join("ponder.npy"), &map)?;
            }
            None => eprintln!("no ponder map: it needs --execution sparse and a model with sparse gated blocks"),
        }
    }
    let summary_path = a.out.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    println!("{} in {ms:.1} ms ({}) → {}", model_path.display(), a.mode, a.out.display());
    if let Some(t) = session.telemetry() {
        let (x, y) = (t.gated_executed_macs(), t.gated_dense_macs());
        let pct = if y == 0 { 0.0 } else { 100.0 * x as f64 / y as f64 };
        println!("executed {:.1} M of {:.1} M gated MACs ({pct:.1}%)", x as f64 / 1e6, y as f64 / 1e6);
    }
    if let Some((lo, hi)) = range {
        println!("depth {lo:.2}–{hi:.2} m; pictures: segmentation.png overlay.png depth.png normals.png; raw: labels.npy depth.npy normals.npy");
    }
    Ok(())
}

fn layer_json(l: &LayerTelemetry) -> serde_json::Value {
    serde_json::json!({
        "name": l.name, "density": l.density, "executed_macs": l.executed_macs, "dense_macs": l.dense_macs,
    })
}

fn telemetry_json(t: &FrameTelemetry) -> serde_json::Value {
    serde_json::json!({
        "layers": t.layers.iter().map(layer_json).collect::<Vec<_>>(),
        "multipools": t.multipools.iter().map(layer_json).collect::<Vec<_>>(),
        "executed_macs_total": t.executed_macs_total, "dense_macs_total": t.dense_macs_total,
        "gated_executed_macs": t.gated_executed_macs(), "gated_dense_macs": t.gated_dense_macs(),
    })
}

fn save(img: impl FnOnce() -> Result<(), image::ImageError>, path: &Path) -> Result<()> {
    img().with_context(|| format!("writing {}", path.display()))
}

fn write_outputs(
    dir: &Path,
    prefix: &str,
    out: &Outputs,
    model: &PagModel,
    depth_range: Option<(f32, f32)>,
) -> Result<()> {
    let i = &model.info;
    let p = |n: &str| dir.join(format!("{prefix}{n}"));
    let seg = viz::segmentation(out.labels.view(), &i.palette, &i.class_names);
    save(|| seg.save(p("segmentation.png")), &p("segmentation.png"))?;
    save(|| viz::depth_in(out.depth.view(), depth_range).save(p("depth.png")), &p("depth.png"))?;
    save(|| viz::normals(out.normals.view()).save(p("normals.png")), &p("normals.png"))?;
    save(|| viz::mono(&out.labels).save(p("labels.png")), &p("labels.png"))?;
    npy(&p("depth.npy"), &out.depth)?;
    npy(&p("labels.npy"), &out.labels)?;
    npy(&p("normals.npy"), &out.normals)
}

fn npy<T: ndarray_npy::WritableElement, D: ndarray::Dimension>(path: &Path, a: &ndarray::Array<T, D>) -> Result<()> {
    ndarray_npy::write_npy(path, a).with_context(|| format!("writing {}", path.display()))
}

fn write_pictures(
    dir: &Path,
    rgb: &Array3<u8>,
    out: &Outputs,
    model: &PagModel,
    depth_range: Option<(f32, f32)>,
) -> Result<()> {
    write_outputs(dir, "", out, model, depth_range)?;
    let (h, w) = out.labels.dim();
    let mut base = viz::to_image(rgb.view());
    if base.dimensions() != (w as u32, h as u32) {
        base = image::imageops::resize(&base, w as u32, h as u32, image::imageops::FilterType::Triangle);
    }
    save(|| base.save(dir.join("input.png")), &dir.join("input.png"))?;
    let ov = viz::overlay(viz::from_image(&base).view(), out.labels.view(), &model.info.palette, 0.5);
    save(|| ov.save(dir.join("overlay.png")), &dir.join("overlay.png"))
}

/// `--input`: a PAG model runs on pagrt's product path (sparse execution unless `--execution
/// dense`), exactly as every frame does; any other ONNX runs as plain tract.
fn run_tensors(
    model: &Path,
    inputs: &[PathBuf],
    out: &Path,
    exec: super::Exec,
    device: &super::DeviceArgs,
) -> Result<()> {
    let tensors = inputs.iter().map(|p| generic::read_npy(p)).collect::<Result<Vec<_>, _>>()?;
    let outputs = if generic::is_pag_model(model)? {
        let loaded = Arc::new(super::load_model(model, exec, device)?);
        let mut session = Session::new(loaded)?;
        let values = session.run_graph_inputs(tensors).with_context(|| format!("running {}", model.display()))?;
        let names = [
            pag_runtime::graph::contract::OUTPUT_SEG,
            pag_runtime::graph::contract::OUTPUT_DEPTH,
            pag_runtime::graph::contract::OUTPUT_NORMALS,
        ];
        names.iter().map(|n| n.to_string()).zip(values.into_iter().map(|v| v.into_tensor())).collect::<Vec<_>>()
    } else {
        generic::run_onnx(model, tensors).with_context(|| format!("running {}", model.display()))?
    };
    for (name, t) in &outputs {
        let safe: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' { c } else { '_' })
            .collect();
        let path = out.join(format!("{safe}.npy"));
        generic::write_npy(&path, t)?;
        println!("{name}: {:?} {:?} → {}", t.datum_type(), t.shape(), path.display());
    }
    Ok(())
}
