//! Ground-truth exactness, determinism, trajectories and dataset writing.

use pag_models::scenes::dataset::load_npy;
use pag_models::*;
use std::f32::consts::FRAC_PI_2;

fn cam_normal(frame: &Frame, v: usize, u: usize) -> [f32; 3] {
    [frame.normals[[v, u, 0]], frame.normals[[v, u, 1]], frame.normals[[v, u, 2]]]
}

fn assert_vec_close(a: [f32; 3], b: [f32; 3], tol: f32, what: &str) {
    for i in 0..3 {
        assert!((a[i] - b[i]).abs() <= tol, "{what}: {a:?} != {b:?}");
    }
}

#[test]
fn straight_down_at_floor() {
    let scene = Scene::empty_room(6.0, 5.0, 3.0);
    let intr = Intrinsics::new(64, 48);
    for (h, yaw) in [(1.3f32, 0.4f32), (0.5, 0.0), (2.2, -2.7), (0.87, FRAC_PI_2)] {
        let pose = Pose::look([3.0, 2.5, h], yaw, -FRAC_PI_2, 0.0);
        let f = scene.render(&intr, &pose);
        for v in 0..48 {
            for u in 0..64 {
                assert_eq!(f.label[[v, u]], Class::Floor.id(), "label at ({u},{v})");
                let d = f.depth[[v, u]];
                assert!((d - h).abs() < 1e-5, "depth {d} != {h} at ({u},{v})");
                assert_vec_close(cam_normal(&f, v, u), [0.0, 0.0, -1.0], 1e-5, "normal");
            }
        }
    }
}

#[test]
fn horizontal_view_of_wall() {
    let scene = Scene::empty_room(10.0, 10.0, 3.0);
    let intr = Intrinsics::new(80, 60);
    let cam_h = 1.4f32;
    // Looking along +x at the wall x = 10, and along +y at the wall y = 10.
    for (pos, yaw, d) in [([8.0, 5.0, cam_h], 0.0, 2.0f32), ([5.0, 6.3, cam_h], FRAC_PI_2, 3.7)] {
        let pose = Pose::look(pos, yaw, 0.0, 0.0);
        let f = scene.render(&intr, &pose);
        let mut walls = 0;
        for v in 0..60 {
            for u in 0..80 {
                let depth = f.depth[[v, u]];
                let n = cam_normal(&f, v, u);
                match Class::from_id(f.label[[v, u]]).unwrap() {
                    Class::Wall => {
                        walls += 1;
                        assert!((depth - d).abs() < 1e-5 * d, "wall depth {depth} != {d}");
                        assert_vec_close(n, [0.0, 0.0, -1.0], 1e-5, "wall normal");
                    }
                    Class::Floor => {
                        // Floor seen at row v: depth = height / ((v + 0.5 - cy) / fy).
                        let b = (v as f32 + 0.5 - intr.cy) / intr.fy;
                        assert!((depth - cam_h / b).abs() < 1e-4 * depth, "floor depth {depth}");
                        assert_vec_close(n, [0.0, -1.0, 0.0], 1e-5, "floor normal");
                    }
                    Class::Ceiling => assert_vec_close(n, [0.0, 1.0, 0.0], 1e-5, "ceiling normal"),
                    c => panic!("unexpected class {c:?}"),
                }
            }
        }
        assert!(walls > 80 * 30, "only {walls} wall pixels");
        assert_eq!(f.label[[30, 40]], Class::Wall.id());
    }
}

#[test]
fn sphere_depth_and_normal_at_centre_pixel() {
    let mut scene = Scene::empty_room(8.0, 8.0, 3.0);
    let material = Material::plain([0.8, 0.1, 0.1]);
    scene.push_object(Object { class: Class::Ball, shape: Shape::sphere(Vec3::new(5.0, 2.0, 0.4), 0.4), material });
    // Odd size: the centre pixel's ray is the optical axis.
    let intr = Intrinsics::new(65, 49);
    let pose = Pose::look([2.0, 2.0, 0.4], 0.0, 0.0, 0.0);
    let f = scene.render(&intr, &pose);
    assert_eq!(f.label[[24, 32]], Class::Ball.id());
    assert!((f.depth[[24, 32]] - 2.6).abs() < 1e-5, "{}", f.depth[[24, 32]]);
    assert_vec_close(cam_normal(&f, 24, 32), [0.0, 0.0, -1.0], 1e-5, "ball normal");
    // Box face, fronto-parallel: constant depth over its pixels.
    let mut scene = Scene::empty_room(8.0, 8.0, 3.0);
    let shape = Shape::aabb(Vec3::new(4.0, 1.0, 0.0), Vec3::new(4.5, 3.0, 1.5));
    scene.push_object(Object { class: Class::Cabinet, shape, material });
    let f = scene.render(&intr, &pose);
    let cab: Vec<f32> =
        f.depth.iter().zip(f.label.iter()).filter(|(_, &l)| l == Class::Cabinet.id()).map(|(d, _)| *d).collect();
    assert!(cab.len() > 200);
    assert!(cab.iter().all(|&d| (d - 2.0).abs() < 1e-5));
}

/// Back-project every pixel and check label, depth and normal agree with the geometry.
#[test]
fn random_scenes_ground_truth_is_consistent() {
    let intr = Intrinsics::new(96, 72);
    for seed in 0..25u64 {
        let scene = Scene::random(seed);
        let [w, l, h] = scene.size();
        let pose = scene.random_pose(seed);
        let f = scene.render(&intr, &pose);
        let mut seen = [false; NUM_CLASSES];
        for v in 0..72 {
            for u in 0..96 {
                let label = f.label[[v, u]];
                assert!((label as usize) < NUM_CLASSES, "seed {seed}: label {label}");
                seen[label as usize] = true;
                let d = f.depth[[v, u]];
                assert!(d.is_finite() && d > 0.0, "seed {seed}: depth {d}");
                let n = cam_normal(&f, v, u);
                let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
                assert!((len - 1.0).abs() < 1e-5, "seed {seed}: |n| = {len}");
                let ray = intr.pixel_ray(u as u32, v as u32);
                let facing = n[0] * ray[0] + n[1] * ray[1] + n[2] * ray[2];
                assert!(facing < 0.0, "seed {seed}: normal not facing the camera");
                // World point of the pixel.
                let pc = Vec3::new(ray[0] * d, ray[1] * d, d);
                let p = pose.cam_to_world_dir(pc) + pose.position_vec();
                let tol = 1e-3 + 1e-5 * d;
                assert!(p.x > -tol && p.x < w + tol && p.y > -tol && p.y < l + tol && p.z > -tol && p.z < h + tol);
                match Class::from_id(label).unwrap() {
                    Class::Floor => assert!(p.z.abs() < tol, "seed {seed}: floor point z = {}", p.z),
                    Class::Ceiling => assert!((p.z - h).abs() < tol),
                    Class::Wall => {
                        let dist = p.x.abs().min((p.x - w).abs()).min(p.y.abs()).min((p.y - l).abs());
                        assert!(dist < tol, "seed {seed}: wall point {p:?} not on a wall");
                    }
                    _ => {}
                }
            }
        }
        assert!(seen[Class::Wall as usize] || seen[Class::Floor as usize], "seed {seed}");
    }
}

#[test]
fn rendering_is_deterministic_and_seed_dependent() {
    let intr = Intrinsics::new(80, 60);
    let render = |seed: u64| {
        let s = Scene::random(seed);
        s.render(&intr, &s.random_pose(seed))
    };
    let a = render(11);
    let b = render(11);
    assert_eq!(a.rgb, b.rgb);
    assert_eq!(a.label, b.label);
    let bits = |x: &Frame| {
        (
            x.depth.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            x.normals.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(bits(&a), bits(&b));
    let c = render(12);
    assert_ne!(a.rgb, c.rgb);
    assert_ne!(bits(&a).0, bits(&c).0);

    // render_into reuses a right-sized frame and resizes a wrong-sized one.
    let s = Scene::random(11);
    let mut frame = Frame::new(80, 60);
    let ptr = frame.depth.as_ptr();
    s.render_into(&intr, &s.random_pose(11), &mut frame);
    assert_eq!(frame.depth.as_ptr(), ptr);
    assert_eq!(frame, a);
    let mut small = Frame::new(3, 2);
    s.render_into(&intr, &s.random_pose(11), &mut small);
    assert_eq!(small, a);
}

#[test]
fn nothing_hit_outside_the_room() {
    let scene = Scene::empty_room(4.0, 4.0, 2.5);
    let f = scene.render(&Intrinsics::new(16, 12), &Pose::look([2.0, 2.0, 10.0], 0.0, 1.4, 0.0));
    assert!(f.label.iter().all(|&l| l == LABEL_NONE));
    assert!(f.depth.iter().all(|d| d.is_nan()));
}

#[test]
fn trajectories_are_smooth_closed_and_inside() {
    for seed in 0..12u64 {
        let scene = Scene::random(seed);
        let [w, l, _] = scene.size();
        let traj = Trajectory::new(&scene, seed);
        let dt = 0.01f32;
        let mut prev = traj.pose_at(0.0);
        let mut travelled = 0.0;
        for i in 1..=6000 {
            let t = i as f32 * dt;
            let p = traj.pose_at(t);
            let [x, y, z] = p.position;
            assert!(x > 0.3 && x < w - 0.3 && y > 0.3 && y < l - 0.3, "seed {seed}: ({x}, {y}) outside");
            assert!((0.28..=0.82).contains(&z), "seed {seed}: height {z}");
            assert!(scene.clearance(x, y) >= 0.3, "seed {seed}: too close to an object");
            let step = (p.position_vec() - prev.position_vec()).length();
            assert!(step < 0.02, "seed {seed}: jump of {step} m in {dt} s");
            for r in 0..3 {
                for c in 0..3 {
                    assert!((p.rotation[r][c] - prev.rotation[r][c]).abs() < 0.03, "seed {seed}: rotation jump");
                }
            }
            travelled += step;
            prev = p;
        }
        let speed = travelled / 60.0;
        assert!(speed > 0.02 && speed < 0.6, "seed {seed}: mean speed {speed}");
        // Closed: one period later the camera is back at the same place.
        let period = traj.period();
        let a = traj.position_at(1.0);
        let b = traj.position_at(1.0 + period);
        assert!((a[0] - b[0]).abs() < 1e-2 && (a[1] - b[1]).abs() < 1e-2, "seed {seed}: not closed");
    }
}

#[test]
fn npy_round_trip_through_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.npy");
    let data: Vec<f32> = (0..60).map(|i| (i as f32).sin()).collect();
    pag_models::scenes::dataset::save_npy(&path, &[3, 4, 5], &data).unwrap();
    let back = load_npy(&path).unwrap();
    assert_eq!(back.shape(), &[3, 4, 5]);
    assert_eq!(back.iter().copied().collect::<Vec<_>>(), data);
}

#[test]
fn npy_readable_by_numpy() {
    let ok = std::process::Command::new("python3").args(["-c", "import numpy"]).status().is_ok_and(|s| s.success());
    if !ok {
        eprintln!("python3 with numpy not available: skipping the numpy.load check");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npy");
    let data: Vec<f32> = (0..24).map(|i| i as f32 * 0.25 - 1.0).collect();
    pag_models::scenes::dataset::save_npy(&path, &[2, 3, 4], &data).unwrap();
    let script = format!(
        "import numpy as np; a = np.load({:?}); assert a.dtype == np.float32 and a.shape == (2, 3, 4), (a.dtype, a.shape); \
         assert (a.ravel() == np.arange(24, dtype=np.float32) * 0.25 - 1).all(); print('ok')",
        path.to_str().unwrap()
    );
    let out = std::process::Command::new("python3").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "numpy failed: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn write_dataset_files_and_meta() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ds");
    let spec = DatasetSpec {
        out_dir: out.clone(),
        first_seed: 5,
        count: 3,
        width: 40,
        height: 30,
        hfov_deg: 70.0,
        trajectory: false,
        mount: None,
    };
    let calls = std::sync::Mutex::new(Vec::new());
    write_dataset(&spec, &|n| calls.lock().unwrap().push(n)).unwrap();
    let mut calls = calls.into_inner().unwrap();
    calls.sort();
    assert_eq!(calls, vec![1, 2, 3]);
    for seed in 5..8u64 {
        for suffix in ["rgb.png", "label.png", "depth.npy", "normals.npy"] {
            assert!(out.join(format!("{seed:06}_{suffix}")).is_file(), "missing {seed:06}_{suffix}");
        }
    }
    // Contents match a direct render.
    let scene = Scene::random(6);
    let frame = scene.render(&spec.intrinsics(), &scene.random_pose(6));
    let label = image::open(out.join("000006_label.png")).unwrap();
    assert_eq!(label.color(), image::ColorType::L8);
    assert_eq!(label.to_luma8().into_raw(), frame.label.iter().copied().collect::<Vec<_>>());
    let rgb = image::open(out.join("000006_rgb.png")).unwrap();
    assert_eq!(rgb.color(), image::ColorType::Rgb8);
    assert_eq!(rgb.to_rgb8().into_raw(), frame.rgb.iter().copied().collect::<Vec<_>>());
    let depth = load_npy(&out.join("000006_depth.npy")).unwrap();
    assert_eq!(depth.shape(), &[30, 40]);
    assert!(depth.iter().zip(frame.depth.iter()).all(|(a, b)| a.to_bits() == b.to_bits()));
    let normals = load_npy(&out.join("000006_normals.npy")).unwrap();
    assert_eq!(normals.shape(), &[30, 40, 3]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["class_names"][7], "picture");
    assert_eq!(meta["palette"].as_array().unwrap().len(), 8);
    assert_eq!(meta["intrinsics"]["width"], 40);
    assert_eq!(meta["trajectory"], false);
    assert_eq!(meta["samples"].as_array().unwrap().len(), 3);
    assert_eq!(meta["samples"][2]["seed"], 7);

    // Trajectory mode: frame-indexed names.
    let traj_dir = dir.path().join("traj");
    let spec = DatasetSpec { out_dir: traj_dir.clone(), trajectory: true, ..spec };
    write_dataset(&spec, &|_| {}).unwrap();
    for i in 0..3 {
        assert!(traj_dir.join(format!("{i:06}_rgb.png")).is_file());
    }
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(traj_dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["trajectory"], true);
    assert!((meta["samples"][1]["time_s"].as_f64().unwrap() - 0.1).abs() < 1e-6);
}

#[test]
fn bad_specs_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never");
    let good = DatasetSpec {
        out_dir: out.clone(),
        first_seed: 0,
        count: 2,
        width: 32,
        height: 24,
        hfov_deg: 70.0,
        trajectory: false,
        mount: None,
    };
    assert!(good.validate().is_ok());
    let bad = [
        DatasetSpec { width: 0, ..good.clone() },
        DatasetSpec { height: 0, ..good.clone() },
        DatasetSpec { width: 8193, ..good.clone() },
        DatasetSpec { count: 0, ..good.clone() },
        DatasetSpec { hfov_deg: 0.0, ..good.clone() },
        DatasetSpec { hfov_deg: f32::NAN, ..good.clone() },
        DatasetSpec { first_seed: u64::MAX, ..good.clone() },
        DatasetSpec { mount: Some(CameraMount { height_m: f32::NAN, ..CameraMount::ROBOT }), ..good.clone() },
        DatasetSpec { mount: Some(CameraMount { height_m: 0.02, ..CameraMount::ROBOT }), ..good.clone() },
        DatasetSpec { mount: Some(CameraMount { pitch_deg: -85.0, ..CameraMount::ROBOT }), ..good.clone() },
        DatasetSpec { mount: Some(CameraMount { height_play_m: -0.1, ..CameraMount::ROBOT }), ..good.clone() },
    ];
    for spec in bad {
        match write_dataset(&spec, &|_| {}) {
            Err(SceneError::InvalidSpec(_)) => {}
            other => panic!("{spec:?}: expected InvalidSpec, got {other:?}"),
        }
    }
    assert!(!out.exists());
    // An unwritable output path gives an Io error naming the path.
    let file = dir.path().join("a_file");
    std::fs::write(&file, b"x").unwrap();
    match write_dataset(&DatasetSpec { out_dir: file.join("sub"), ..good }, &|_| {}) {
        Err(SceneError::Io { path, .. }) => assert!(path.starts_with(&file)),
        other => panic!("expected Io, got {other:?}"),
    }
}

/// Poses on a robot mount stay within the mount's declared height, pitch and roll play, vary
/// between seeds, and the dataset records the mount in meta.json.
#[test]
fn robot_mount_poses_stay_within_the_mount() {
    let mount = CameraMount::ROBOT;
    let mut heights = Vec::new();
    for seed in 0..40u64 {
        let scene = Scene::random(seed);
        let pose = scene.mount_pose(seed, &mount);
        assert_eq!(pose, scene.mount_pose(seed, &mount), "same seed, same pose");
        let z = pose.position[2];
        assert!((z - mount.height_m).abs() <= mount.height_play_m + 1e-4, "seed {seed}: height {z}");
        let forward = pose.axis(2);
        let pitch = forward.z.asin().to_degrees();
        assert!((pitch - mount.pitch_deg).abs() <= mount.pitch_play_deg + 1e-3, "seed {seed}: pitch {pitch}");
        // Roll: the camera's right axis leaves the horizontal plane by at most the roll play.
        let roll = pose.axis(0).z.asin().to_degrees().abs();
        assert!(roll <= mount.roll_play_deg + 1e-3, "seed {seed}: roll {roll}");
        let [x, y, _] = pose.position;
        let [w, l, _] = scene.size();
        assert!(x > 0.0 && y > 0.0 && x < w && y < l, "seed {seed}: inside the room");
        heights.push(z);
    }
    let spread = heights.iter().cloned().fold(f32::MIN, f32::max) - heights.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread > 0.5 * mount.height_play_m, "heights vary within the play: spread {spread}");

    let dir = tempfile::tempdir().unwrap();
    let spec = DatasetSpec { mount: Some(mount), ..DatasetSpec::new(dir.path().join("m")) };
    let spec = DatasetSpec { count: 2, width: 32, height: 24, ..spec };
    write_dataset(&spec, &|_| {}).unwrap();
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("m/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["camera_mount"]["height_m"].as_f64().unwrap() as f32, mount.height_m);
    assert_eq!(meta["samples"][1]["seed"], 1);
}
