//! The calibration cache: per-tensor statistics as versioned JSON, valid for one model (SHA-256
//! of its bytes), one image set (its hash) and one statistics format ([`STATS_VERSION`]).
//! Ranges for every method come from it, so changing `--method` or `--keep-float` needs no
//! frames.
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ImageSet, TensorStats, BINS};
use crate::{sha256_hex, CalibrationError};

/// The `format` field of every cache file.
pub const CACHE_FORMAT: &str = "pagrt-calibration-stats";
/// Bumped on any change to what the statistics mean or how they are gathered.
pub const STATS_VERSION: u32 = 1;

/// A cache file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsCache {
    pub format: String,
    pub version: u32,
    pub model_sha256: String,
    pub images_sha256: String,
    pub images: serde_json::Value,
    /// Images run (each twice: ranges, then histograms).
    pub frames: usize,
    pub bins: usize,
    pub tensors: Vec<TensorStats>,
    /// SHA-256 of the file's bytes (set when written or read).
    #[serde(skip)]
    file_sha256: String,
}

/// What became of the cache file.
#[derive(Debug, Clone, PartialEq)]
pub enum CacheStatus {
    /// Valid for this model and image set: no frames run.
    Hit,
    /// No cache file yet.
    Missing,
    /// A cache file that does not apply (the reason: another model, image set or version, or
    /// unreadable); recomputed and overwritten.
    Invalid(String),
}

impl CacheStatus {
    pub fn is_hit(&self) -> bool {
        matches!(self, CacheStatus::Hit)
    }
}

impl StatsCache {
    pub fn new(model_sha256: &str, set: &ImageSet, frames: usize, tensors: Vec<TensorStats>) -> StatsCache {
        StatsCache {
            format: CACHE_FORMAT.into(),
            version: STATS_VERSION,
            model_sha256: model_sha256.into(),
            images_sha256: set.sha256.clone(),
            images: set.description.clone(),
            frames,
            bins: BINS,
            tensors,
            file_sha256: String::new(),
        }
    }

    /// The cache at `path` if it is valid for this model and image set, and why not otherwise.
    pub fn load_matching(path: &Path, model_sha256: &str, images_sha256: &str) -> (Option<StatsCache>, CacheStatus) {
        let text = match std::fs::read_to_string(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (None, CacheStatus::Missing),
            Err(e) => return (None, CacheStatus::Invalid(format!("cannot read it: {e}"))),
            Ok(t) => t,
        };
        let mut c: StatsCache = match serde_json::from_str(&text) {
            Ok(c) => c,
            Err(e) => return (None, CacheStatus::Invalid(format!("not a calibration cache: {e}"))),
        };
        let reason = if c.format != CACHE_FORMAT {
            Some(format!("format `{}` is not `{CACHE_FORMAT}`", c.format))
        } else if c.version != STATS_VERSION || c.bins != BINS {
            Some(format!(
                "statistics version {} ({} bins), this build uses {STATS_VERSION} ({BINS})",
                c.version, c.bins
            ))
        } else if c.model_sha256 != model_sha256 {
            Some(format!(
                "it is for another model (sha256 {}…, this one {}…)",
                &c.model_sha256.get(..12).unwrap_or(&c.model_sha256),
                &model_sha256[..12]
            ))
        } else if c.images_sha256 != images_sha256 {
            Some(format!("the image set changed (was {})", c.images))
        } else {
            None
        };
        c.file_sha256 = sha256_hex(text.as_bytes());
        match reason {
            Some(r) => (None, CacheStatus::Invalid(r)),
            None => (Some(c), CacheStatus::Hit),
        }
    }

    /// Write the cache (compact JSON), then take the statistics back as read from those bytes, so
    /// that this run and a later one from the cache derive bit-identical parameters (a float's
    /// shortest text may not parse back to the same f32 in every case).
    pub fn save(&mut self, path: &Path) -> Result<(), CalibrationError> {
        let bytes = self.to_json();
        std::fs::write(path, &bytes).map_err(|source| CalibrationError::Io { path: path.to_owned(), source })?;
        *self = serde_json::from_slice(&bytes).expect("statistics parse back");
        self.file_sha256 = sha256_hex(&bytes);
        Ok(())
    }

    fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("statistics serialise")
    }

    /// SHA-256 of the cache file's bytes (empty before it is written or read): recorded in
    /// the QDQ model's `pag.quantization`.
    pub fn sha256(&self) -> String {
        self.file_sha256.clone()
    }

    /// One tensor's statistics.
    pub fn tensor(&self, name: &str) -> Option<&TensorStats> {
        self.tensors.iter().find(|t| t.name == name)
    }
}
