//! Interop cases shared by the Cyclone DDS and Fast DDS peers: camera images in every encoding
//! and several sizes (one with padded rows) written as `in_<i>.npy`, and the check that the
//! outputs a peer received (`out_<i>_<topic>.npy`) equal `pag-runtime`'s own for the same input.
use std::path::Path;
use std::sync::Arc;

use ndarray::{Array2, Array3};
use ndarray_npy::{read_npy, write_npy};
use pag_models::{Intrinsics, Scene};
use pag_runtime::{PagModel, Resolution, Session};

pub struct Case {
    pub file: String,
    pub encoding: &'static str,
    pub pad: usize,
    pub rgb: Array3<u8>,
}

fn render(seed: u64, w: u32, h: u32) -> Array3<u8> {
    let scene = Scene::random(seed);
    let pose = scene.random_pose(seed);
    scene.render(&Intrinsics::new(w, h), &pose).rgb
}

/// The cases, written to `dir` as `in_<i>.npy`.
pub fn write_cases(dir: &Path) -> Vec<Case> {
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
        write_npy(dir.join(&file), &rgb).unwrap();
        cases.push(Case { file, encoding: enc, pad, rgb });
    }
    cases
}

/// Checks that the labels, colour segmentation, depth (NaNs included), normals and ponder map
/// a peer wrote to `dir` equal the runtime's outputs for the same inputs.
pub fn check_outputs_equal_the_runtime(
    dir: &Path,
    cases: &[Case],
    model: &Arc<PagModel>,
    resolution: Resolution,
    max_depth_m: f64,
) {
    let mut session = Session::new(model.clone()).unwrap();
    session.set_resolution(resolution);
    for (i, case) in cases.iter().enumerate() {
        let mut o = session.run(case.rgb.view()).unwrap();
        pag_ros::config::limit_depth(&mut o.depth, max_depth_m);
        let get2 = |t: &str| -> Array2<u8> { read_npy(dir.join(format!("out_{i}_{t}.npy"))).unwrap() };
        let labels = get2("labels");
        assert_eq!(labels, o.labels, "case {i}: labels differ");
        let seg: Array3<u8> = read_npy(dir.join(format!("out_{i}_segmentation.npy"))).unwrap();
        assert_eq!(seg, o.colorize(&model.info.palette), "case {i}: colour segmentation differs");
        let depth: Array2<f32> = read_npy(dir.join(format!("out_{i}_depth.npy"))).unwrap();
        assert_eq!(depth.dim(), o.depth.dim());
        let nans = o.depth.iter().filter(|d| d.is_nan()).count();
        assert!(nans > 0 && nans < o.depth.len(), "case {i}: want some NaN depth to check, have {nans}");
        for (a, b) in depth.iter().zip(o.depth.iter()) {
            assert!(
                a.is_nan() == b.is_nan() && (a.is_nan() || (a - b).abs() <= 1e-5 * b.abs().max(1.0)),
                "case {i}: depth {a} vs {b}"
            );
        }
        let normals: Array3<f32> = read_npy(dir.join(format!("out_{i}_normals.npy"))).unwrap();
        assert_eq!(normals.dim(), o.normals.dim());
        let max = normals.iter().zip(o.normals.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max <= 1e-5, "case {i}: normals differ by {max}");
        if let Some(p) = session.ponder_map() {
            let (h, w) = o.labels.dim();
            assert_eq!(get2("ponder"), pag_ros::convert::resize_nearest(&p, h, w), "case {i}: ponder map differs");
        }
    }
}
