//! Interop with an independent DDS implementation: a peer built on Eclipse Cyclone DDS
//! (tests/peer/peer.py) publishes camera images (every encoding, several sizes, padded rows)
//! and BatteryState into the node and subscribes to every output. The peer checks encodings,
//! sizes, steps, header passthrough, camera_info scaling, NaN/unit-normal handling, battery
//! handling and diagnostics; this test then checks that the label, depth, normal, colour and
//! ponder values it received equal the runtime's own outputs for the same input.
mod common;

use std::sync::Arc;
use std::time::Duration;

use ndarray::{Array2, Array3};
use ndarray_npy::{read_npy, write_npy};
use pag_models::{Intrinsics, Scene};
use pag_runtime::{PagModel, Resolution, Session};

struct Case {
    file: String,
    encoding: &'static str,
    pad: usize,
    rgb: Array3<u8>,
}

fn render(seed: u64, w: u32, h: u32) -> Array3<u8> {
    let scene = Scene::random(seed);
    let pose = scene.random_pose(seed);
    scene.render(&Intrinsics::new(w, h), &pose).rgb
}

#[test]
fn cyclone_peer_sees_every_output_with_the_runtimes_values() {
    interop(Resolution::Model, 0);
}

#[test]
fn cyclone_peer_sees_outputs_at_the_input_resolution() {
    interop(Resolution::Input, 5);
}

fn interop(resolution: Resolution, domain_k: u16) {
    if !common::cyclone_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    for (i, (enc, w, h, pad)) in [
        ("rgb8", 320, 240, 0),
        ("bgr8", 640, 480, 0),
        ("rgba8", 160, 120, 4),
        ("bgra8", 333, 201, 0),
        ("mono8", 320, 240, 3),
    ]
    .into_iter()
    .enumerate()
    {
        let mut rgb = render(10 + i as u64, w, h);
        if enc == "mono8" {
            // mono8 carries one channel: the node replicates it, so the reference input is grey.
            let g = rgb.index_axis(ndarray::Axis(2), 1).to_owned();
            rgb = Array3::from_shape_fn(rgb.dim(), |(y, x, _)| g[[y, x]]);
        }
        let file = format!("in_{i}.npy");
        write_npy(dir.path().join(&file), &rgb).unwrap();
        cases.push(Case { file, encoding: enc, pad, rgb });
    }
    let model = Arc::new(PagModel::load_with(common::model_path(), pag_runtime::Execution::Sparse).unwrap());
    let (mh, mw) = (model.info.input.height, model.info.input.width);
    let output_hw = match resolution {
        Resolution::Model => format!("[{mh}, {mw}]"),
        Resolution::Input => "\"input\"".to_owned(),
    };
    let spec = serde_json_like(&cases, &output_hw, model.info.class_names.len(), 4.0);
    std::fs::write(dir.path().join("cases.json"), spec).unwrap();

    let domain = common::domain(domain_k);
    // A depth limit inside the rooms' range, so that the depth images carry NaNs (REP 118 invalid).
    let max_depth_m = 4.0;
    let res_arg = if resolution == Resolution::Input { "input" } else { "model" };
    let mut node =
        common::NodeProcess::spawn(domain, &["--max-depth-m", "4.0", "--output-resolution", res_arg], dir.path());
    let (ok, out) = common::run_peer(
        &["interop", "--domain", &domain.to_string(), "--cases", dir.path().to_str().unwrap(), "--timeout", "90"],
        Duration::from_secs(300),
    );
    println!("{out}");
    assert!(node.is_running(), "node died:\n{}", node.log());
    assert!(ok, "Cyclone peer checks failed:\n{out}\nnode log:\n{}", node.log());

    let mut session = Session::new(model.clone()).unwrap();
    session.set_resolution(resolution);
    for (i, case) in cases.iter().enumerate() {
        let mut o = session.run(case.rgb.view()).unwrap();
        pag_ros::config::limit_depth(&mut o.depth, max_depth_m);
        let get2 = |t: &str| -> Array2<u8> { read_npy(dir.path().join(format!("out_{i}_{t}.npy"))).unwrap() };
        let labels = get2("labels");
        assert_eq!(labels, o.labels, "case {i}: labels differ");
        let seg: Array3<u8> = read_npy(dir.path().join(format!("out_{i}_segmentation.npy"))).unwrap();
        assert_eq!(seg, o.colorize(&model.info.palette), "case {i}: colour segmentation differs");
        let depth: Array2<f32> = read_npy(dir.path().join(format!("out_{i}_depth.npy"))).unwrap();
        assert_eq!(depth.dim(), o.depth.dim());
        let nans = o.depth.iter().filter(|d| d.is_nan()).count();
        assert!(nans > 0 && nans < o.depth.len(), "case {i}: want some NaN depth to check, have {nans}");
        for (a, b) in depth.iter().zip(o.depth.iter()) {
            assert!(
                a.is_nan() == b.is_nan() && (a.is_nan() || (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
                "case {i}: depth {a} vs {b}"
            );
        }
        let normals: Array3<f32> = read_npy(dir.path().join(format!("out_{i}_normals.npy"))).unwrap();
        assert_eq!(normals.dim(), o.normals.dim());
        let max = normals.iter().zip(o.normals.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-5, "case {i}: normals differ by {max}");
        if let Some(p) = session.ponder_map() {
            let (h, w) = o.labels.dim();
            assert_eq!(get2("ponder"), pag_ros::convert::resize_nearest(&p, h, w), "case {i}: ponder map differs");
        }
    }
}

/// cases.json for the peer (no serde_json dependency needed for this little document).
fn serde_json_like(cases: &[Case], output_hw: &str, classes: usize, max_depth_m: f64) -> String {
    let items: Vec<String> = cases
        .iter()
        .map(|c| format!(r#"{{"file": "{}", "encoding": "{}", "pad": {}}}"#, c.file, c.encoding, c.pad))
        .collect();
    format!(
        r#"{{"output_hw": {output_hw}, "num_classes": {classes}, "max_depth_m": {max_depth_m}, "cases": [{}]}}"#,
        items.join(", ")
    )
}
