//! Writing rendered samples to disk as PNG / `.npy` files plus a `meta.json`.

use super::camera::{CameraMount, Intrinsics, Pose};
use super::render::Frame;
use super::scene::Scene;
use super::trajectory::Trajectory;
use super::{CLASS_NAMES, PALETTE};
use ndarray::ArrayD;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Frames per second of trajectory datasets.
pub const TRAJECTORY_FPS: f32 = 10.0;
/// Largest accepted image side.
pub const MAX_SIDE: u32 = 8192;

/// Errors of dataset writing / reading.
#[derive(Debug, thiserror::Error)]
pub enum SceneError {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("image error on {}: {source}", path.display())]
    Image {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("invalid dataset spec: {0}")]
    InvalidSpec(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SceneError + '_ {
    move |source| SceneError::Io { path: path.to_path_buf(), source }
}

/// What [`write_dataset`] renders.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    pub out_dir: PathBuf,
    /// Seed of the first scene (sample i uses scene and pose seed `first_seed + i`), or of
    /// the single scene and trajectory when `trajectory` is set.
    pub first_seed: u64,
    pub count: usize,
    pub width: u32,
    pub height: u32,
    pub hfov_deg: f32,
    /// If true: one scene from `first_seed`, `count` consecutive frames at 10 fps along a
    /// [`Trajectory`]; samples are named by frame index.
    pub trajectory: bool,
    /// How the camera is carried. `None`: the varied random poses of [`Scene::random_pose`]
    /// (height 0.4–1.6 m, pitch −25°..+10°). `Some(mount)`: a robot driving with its camera on
    /// `mount` ([`Scene::mount_pose`]); trajectories use it too (default [`CameraMount::ROBOT`]).
    pub mount: Option<CameraMount>,
}

impl DatasetSpec {
    /// 100 independent 320x240 samples from seed 0 with a 70° horizontal field of view.
    pub fn new(out_dir: impl Into<PathBuf>) -> DatasetSpec {
        DatasetSpec {
            out_dir: out_dir.into(),
            first_seed: 0,
            count: 100,
            width: 320,
            height: 240,
            hfov_deg: super::DEFAULT_HFOV_DEG,
            trajectory: false,
            mount: None,
        }
    }

    /// Check sizes, count, field of view and seed range.
    pub fn validate(&self) -> Result<(), SceneError> {
        let bad = |m: String| Err(SceneError::InvalidSpec(m));
        if self.width == 0 || self.height == 0 || self.width > MAX_SIDE || self.height > MAX_SIDE {
            return bad(format!("image size {}x{} must be within 1..={MAX_SIDE}", self.width, self.height));
        }
        if self.count == 0 {
            return bad("count must be at least 1".into());
        }
        if !(self.hfov_deg.is_finite() && self.hfov_deg > 0.0 && self.hfov_deg < 180.0) {
            return bad(format!("hfov_deg {} must be in (0, 180)", self.hfov_deg));
        }
        if let Some(mount) = &self.mount {
            mount.validate().map_err(SceneError::InvalidSpec)?;
        }
        if !self.trajectory && self.first_seed.checked_add(self.count as u64 - 1).is_none() {
            return bad("first_seed + count overflows u64".into());
        }
        Ok(())
    }

    pub fn intrinsics(&self) -> Intrinsics {
        Intrinsics::with_hfov(self.width, self.height, self.hfov_deg)
    }
}

/// Save an RGB (H, W, 3) frame part as PNG.
fn save_png(path: &Path, data: &[u8], w: u32, h: u32, color: image::ExtendedColorType) -> Result<(), SceneError> {
    image::save_buffer_with_format(path, data, w, h, color, image::ImageFormat::Png)
        .map_err(|source| SceneError::Image { path: path.to_path_buf(), source })
}

/// Write `data` with `shape` as a little-endian f32 `.npy` file.
pub fn save_npy(path: &Path, shape: &[usize], data: &[f32]) -> Result<(), SceneError> {
    let bad = |e: String| SceneError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    };
    let a = ndarray::ArrayViewD::from_shape(shape, data).map_err(|e| bad(e.to_string()))?;
    ndarray_npy::write_npy(path, &a).map_err(|e| bad(e.to_string()))
}

/// Read an f32 `.npy` file written by [`save_npy`] (or numpy).
pub fn load_npy(path: &Path) -> Result<ArrayD<f32>, SceneError> {
    ndarray_npy::read_npy(path).map_err(|e| SceneError::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// Write `NAME_rgb.png`, `NAME_label.png`, `NAME_depth.npy`, `NAME_normals.npy` into `dir`.
pub fn write_frame(dir: &Path, name: &str, frame: &Frame) -> Result<(), SceneError> {
    let (w, h) = (frame.width(), frame.height());
    let (wu, hu) = (w as usize, h as usize);
    let contiguous = |o: Option<&[u8]>| o.map(<[u8]>::to_vec);
    let rgb = contiguous(frame.rgb.as_slice()).unwrap_or_else(|| frame.rgb.iter().copied().collect());
    save_png(&dir.join(format!("{name}_rgb.png")), &rgb, w, h, image::ExtendedColorType::Rgb8)?;
    let label = contiguous(frame.label.as_slice()).unwrap_or_else(|| frame.label.iter().copied().collect());
    save_png(&dir.join(format!("{name}_label.png")), &label, w, h, image::ExtendedColorType::L8)?;
    let depth: Vec<f32> = frame.depth.iter().copied().collect();
    save_npy(&dir.join(format!("{name}_depth.npy")), &[hu, wu], &depth)?;
    let normals: Vec<f32> = frame.normals.iter().copied().collect();
    save_npy(&dir.join(format!("{name}_normals.npy")), &[hu, wu, 3], &normals)
}

/// One planned sample.
struct Sample {
    name: String,
    seed: u64,
    time: Option<f32>,
    pose: Pose,
}

fn plan(spec: &DatasetSpec) -> (Option<Scene>, Vec<Sample>) {
    if spec.trajectory {
        let scene = Scene::random(spec.first_seed);
        let traj = Trajectory::with_mount(&scene, spec.first_seed, &spec.mount.unwrap_or(CameraMount::ROBOT));
        let samples = (0..spec.count)
            .map(|i| {
                let t = i as f32 / TRAJECTORY_FPS;
                Sample { name: format!("{i:06}"), seed: spec.first_seed, time: Some(t), pose: traj.pose_at(t) }
            })
            .collect();
        (Some(scene), samples)
    } else {
        let samples = (0..spec.count as u64)
            .map(|i| {
                let seed = spec.first_seed + i;
                // Only the pose is needed here; scenes are rebuilt (cheaply) while rendering.
                let scene = Scene::random(seed);
                let pose = match &spec.mount {
                    Some(mount) => scene.mount_pose(seed, mount),
                    None => scene.random_pose(seed),
                };
                Sample { name: format!("{seed:06}"), seed, time: None, pose }
            })
            .collect();
        (None, samples)
    }
}

fn meta_json(spec: &DatasetSpec, samples: &[Sample]) -> serde_json::Value {
    let k = spec.intrinsics();
    let samples: Vec<_> = samples
        .iter()
        .map(|s| {
            let mut v = serde_json::json!({
                "name": s.name,
                "seed": s.seed,
                "pose": { "rotation": s.pose.rotation, "position": s.pose.position },
            });
            if let Some(t) = s.time {
                v["time_s"] = t.into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "generator": "pag-models procedural indoor scenes",
        "generator_version": env!("CARGO_PKG_VERSION"),
        "class_names": CLASS_NAMES,
        "palette": PALETTE,
        "intrinsics": {
            "width": k.width, "height": k.height,
            "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy,
            "hfov_deg": spec.hfov_deg,
        },
        "first_seed": spec.first_seed,
        "count": spec.count,
        "trajectory": spec.trajectory,
        "camera_mount": spec.mount,
        "fps": if spec.trajectory { Some(TRAJECTORY_FPS) } else { None },
        "samples": samples,
        "format": {
            "rgb": "NAME_rgb.png: 8-bit RGB, H x W",
            "label": "NAME_label.png: 8-bit grayscale, class id per pixel (index into class_names), 255 = nothing hit",
            "depth": "NAME_depth.npy: float32 little-endian, shape (H, W), metres along the camera optical z axis (not ray length), NaN = nothing hit",
            "normals": "NAME_normals.npy: float32 little-endian, shape (H, W, 3), unit surface normal in the camera optical frame (x right, y down, z forward), facing the camera",
            "pose": "camera-to-world: p_world = rotation @ p_cam + position; rotation is row-major, its columns are the optical x, y, z axes in the world frame (z up, floor at z = 0)",
            "pixel_rays": "ray of pixel (u, v) passes through ((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1) in the optical frame",
            "names": "NAME is the zero-padded (6 digits) scene seed, or the frame index in trajectory mode",
        },
    })
}

/// Render and write a dataset; `progress(n)` is called (from worker threads) each time a
/// sample finishes, with the number of samples finished so far.
pub fn write_dataset(spec: &DatasetSpec, progress: &(dyn Fn(usize) + Sync)) -> Result<(), SceneError> {
    spec.validate()?;
    let dir = spec.out_dir.as_path();
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let (scene, samples) = plan(spec);
    let meta_path = dir.join("meta.json");
    let meta = serde_json::to_string_pretty(&meta_json(spec, &samples)).expect("JSON serialisation");
    std::fs::write(&meta_path, meta).map_err(io_err(&meta_path))?;

    let intr = spec.intrinsics();
    let done = AtomicUsize::new(0);
    samples.par_iter().try_for_each_init(
        || Frame::new(spec.width, spec.height),
        |frame, s| {
            match &scene {
                Some(scene) => scene.render_into(&intr, &s.pose, frame),
                None => Scene::random(s.seed).render_into(&intr, &s.pose, frame),
            }
            write_frame(dir, &s.name, frame)?;
            progress(done.fetch_add(1, Ordering::SeqCst) + 1);
            Ok(())
        },
    )
}
