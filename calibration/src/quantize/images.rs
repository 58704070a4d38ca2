//! Calibration images: a folder of the user's PNG/JPEG files, or scenes rendered with the
//! model's declared camera mount; each becomes the model's normalised input tensor exactly as
//! `pag run` prepares a frame (`pag_runtime::fill_input`: bilinear resize + normalisation).
use std::path::{Path, PathBuf};

use ndarray::{Array3, Array4};
use pag_models::{CameraMount, Intrinsics, Scene};
use pag_runtime::ModelInfo;

use super::CalibrateProgress;
use crate::{sha256_hex, CalibrationError};

/// Fewer images than this give ranges too noisy to trust; calibration refuses them.
pub const MIN_IMAGES: usize = 8;

/// Where the calibration images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Every `.png`, `.jpg`, `.jpeg` file directly in this folder (sorted by name).
    Folder(PathBuf),
    /// `count` scenes, seeds `seed..seed + count`, rendered at the model's input size with its
    /// camera mount (`pag.camera_mount`; random poses for a model without one).
    Render { count: usize, seed: u64 },
}

/// An image set as identified for the cache: what it is, and a hash of everything that
/// decides its pixels.
#[derive(Debug, Clone)]
pub struct ImageSet {
    pub source: ImageSource,
    /// Folder: the image files, sorted.
    pub files: Vec<PathBuf>,
    /// JSON recorded in the cache and in `pag.quantization.images`.
    pub description: serde_json::Value,
    /// SHA-256 of the file names and bytes, or of the render parameters.
    pub sha256: String,
}

fn images_error(reason: String) -> CalibrationError {
    CalibrationError::Images(reason)
}

impl ImageSet {
    /// List (folder) or parametrise (render) the images and hash them; no decoding.
    pub fn describe(source: &ImageSource, info: &ModelInfo) -> Result<ImageSet, CalibrationError> {
        let (h, w) = (info.input.height, info.input.width);
        match source {
            ImageSource::Folder(dir) => {
                let entries =
                    std::fs::read_dir(dir).map_err(|source| CalibrationError::Io { path: dir.clone(), source })?;
                let mut files: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file() && is_image_name(p))
                    .collect();
                files.sort();
                if files.is_empty() {
                    return Err(images_error(format!(
                        "{} has no PNG or JPEG images (.png, .jpg, .jpeg)",
                        dir.display()
                    )));
                }
                if files.len() < MIN_IMAGES {
                    return Err(images_error(format!(
                        "too few calibration images: {} has {}, at least {MIN_IMAGES} are needed",
                        dir.display(),
                        files.len()
                    )));
                }
                let mut hasher = Vec::new();
                for f in &files {
                    let bytes = std::fs::read(f).map_err(|source| CalibrationError::Io { path: f.clone(), source })?;
                    let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                    hasher.extend_from_slice(name.as_bytes());
                    hasher.push(0);
                    hasher.extend_from_slice(sha256_hex(&bytes).as_bytes());
                }
                let description = serde_json::json!({
                    "kind": "folder", "path": dir.display().to_string(), "count": files.len(),
                    "height": h, "width": w,
                });
                Ok(ImageSet { source: source.clone(), files, description, sha256: sha256_hex(&hasher) })
            }
            ImageSource::Render { count, seed } => {
                if *count < MIN_IMAGES {
                    return Err(images_error(format!(
                        "too few calibration images: --count {count}, at least {MIN_IMAGES} are needed"
                    )));
                }
                let mount = info.camera_mount.map(|m| {
                    serde_json::json!([m.height_m, m.height_play_m, m.pitch_deg, m.pitch_play_deg, m.roll_play_deg])
                });
                let description = serde_json::json!({
                    "kind": "render", "seed": seed, "count": count, "height": h, "width": w,
                    "hfov_deg": info.camera_hfov_deg.unwrap_or(70.0), "mount": mount,
                });
                let sha256 = sha256_hex(description.to_string().as_bytes());
                Ok(ImageSet { source: source.clone(), files: Vec::new(), description, sha256 })
            }
        }
    }

    /// Decode or render every image as the model's input tensor `[1, 3, H, W]`.
    pub fn load(
        &self,
        info: &ModelInfo,
        progress: &mut dyn FnMut(CalibrateProgress),
    ) -> Result<Vec<Array4<f32>>, CalibrationError> {
        let (h, w) = (info.input.height, info.input.width);
        let to_input = |rgb: &Array3<u8>| {
            let mut x = Array4::<f32>::zeros((1, 3, h, w));
            pag_runtime::fill_input(rgb.view(), &info.input, x.view_mut());
            x
        };
        let mut out = Vec::new();
        match &self.source {
            ImageSource::Folder(_) => {
                for (i, f) in self.files.iter().enumerate() {
                    progress(CalibrateProgress::Images { done: i, total: self.files.len() });
                    out.push(to_input(&decode(f)?));
                }
            }
            ImageSource::Render { count, seed } => {
                let intr = Intrinsics::with_hfov(w as u32, h as u32, info.camera_hfov_deg.unwrap_or(70.0));
                for i in 0..*count {
                    progress(CalibrateProgress::Images { done: i, total: *count });
                    let s = seed + i as u64;
                    let scene = Scene::random(s);
                    let pose = match &info.camera_mount {
                        Some(m) => scene.mount_pose(
                            s,
                            &CameraMount {
                                height_m: m.height_m,
                                height_play_m: m.height_play_m,
                                pitch_deg: m.pitch_deg,
                                pitch_play_deg: m.pitch_play_deg,
                                roll_play_deg: m.roll_play_deg,
                            },
                        ),
                        None => scene.random_pose(s),
                    };
                    out.push(to_input(&scene.render(&intr, &pose).rgb));
                }
            }
        }
        Ok(out)
    }
}

fn is_image_name(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Decode one image file as RGB u8 (H×W×3); the error names the file.
fn decode(path: &Path) -> Result<Array3<u8>, CalibrationError> {
    let bad = |reason: String| images_error(format!("calibration image {}: {reason}", path.display()));
    let reader = image::ImageReader::open(path)
        .map_err(|e| bad(format!("cannot open it: {e}")))?
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read it: {e}")))?;
    let img = reader.decode().map_err(|e| bad(format!("not a readable PNG or JPEG image: {e}")))?.to_rgb8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(bad(format!("the image is empty ({w}×{h})")));
    }
    Array3::from_shape_vec((h as usize, w as usize, 3), img.into_raw()).map_err(|e| bad(e.to_string()))
}
