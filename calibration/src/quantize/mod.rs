//! `pag calibrate`: post-training int8 quantization of a float PAG model into a QDQ ONNX file
//! (format: `models/CONTRACT.md`, "Quantized models (QDQ)").
//!
//! - [`images`]: the calibration images (a folder of the user's images, or rendered scenes with
//!   the model's camera mount) and the hash that identifies the set.
//! - [`stats`]: per-tensor statistics (min, max, one histogram per sign) gathered by running
//!   the float model in tract at ρ = 1, and the ranges each [`Method`] derives from them.
//! - [`cache`]: the statistics as versioned JSON, keyed by model, image set and format version.
//! - [`qdq`]: the graph rewrite that writes QuantizeLinear / DequantizeLinear pairs.
use std::path::{Path, PathBuf};
use std::time::Instant;

pub mod cache;
pub mod images;
pub mod qdq;
pub mod stats;

pub use cache::{CacheStatus, StatsCache, CACHE_FORMAT, STATS_VERSION};
pub use images::{ImageSet, ImageSource, MIN_IMAGES};
pub use qdq::{quantize_model, ActivationParams, QdqPlan};
pub use stats::{collect, Method, TensorStats, BINS, PERCENTILE};

use crate::{sha256_hex, CalibrationError};

/// Node-name substrings of the convs kept in float by default: the gates, the MultiPool
/// selectors and the output head.
pub const DEFAULT_KEEP_FLOAT: [&str; 3] = ["gate", "selector", "head"];

/// The method `pag calibrate` uses when none is given (chosen by measured held-out accuracy,
/// calibration/README.md).
pub const DEFAULT_METHOD: Method = Method::Percentile;

/// What `pag calibrate` does.
#[derive(Debug, Clone)]
pub struct CalibrateOptions {
    /// The float PAG model (contract v1 or v2).
    pub model: PathBuf,
    /// Where the QDQ model is written.
    pub out: PathBuf,
    /// Where the statistics are cached (`<out>.calib.json` when `None`).
    pub cache: Option<PathBuf>,
    pub images: ImageSource,
    pub method: Method,
    /// Convs whose node name contains one of these stay in float.
    pub keep_float: Vec<String>,
    /// Threads running calibration frames (`None`: every core).
    pub threads: Option<usize>,
    /// 7-bit weights (±63) instead of 8-bit (±127): onnxruntime's "reduce range", for its int8
    /// kernels on x86 without VNNI, whose 16-bit pair sums (AVX2 `vpmaddubsw`) saturate on
    /// full-range weights. pagrt runs either exactly.
    pub reduce_range: bool,
}

impl CalibrateOptions {
    /// Defaults: 64 rendered scenes from seed 500000, the default method and kept-float set.
    pub fn new(model: impl Into<PathBuf>, out: impl Into<PathBuf>) -> CalibrateOptions {
        CalibrateOptions {
            model: model.into(),
            out: out.into(),
            cache: None,
            images: ImageSource::Render { count: 64, seed: 500_000 },
            method: DEFAULT_METHOD,
            keep_float: DEFAULT_KEEP_FLOAT.iter().map(|s| s.to_string()).collect(),
            threads: None,
            reduce_range: false,
        }
    }

    /// The cache path: `--cache`, else `<out>.calib.json`.
    pub fn cache_path(&self) -> PathBuf {
        self.cache.clone().unwrap_or_else(|| {
            let mut s = self.out.clone().into_os_string();
            s.push(".calib.json");
            PathBuf::from(s)
        })
    }
}

/// What calibration is doing, for a progress display.
#[derive(Debug, Clone, Copy)]
pub enum CalibrateProgress {
    /// Decoding or rendering image `done` of `total`.
    Images { done: usize, total: usize },
    /// Pass `pass` (1: ranges, 2: histograms) of 2 has run `done` of `total` frames.
    Frames { pass: usize, done: usize, total: usize },
}

/// What a calibration run did.
#[derive(Debug, Clone)]
pub struct CalibrateReport {
    pub cache_path: PathBuf,
    pub cache_status: CacheStatus,
    /// Float-model frames run to gather statistics (0 on a cache hit).
    pub frames_run: usize,
    /// Seconds from start to statistics in hand (cache read or frames run), ranges derived.
    pub calibration_seconds: f64,
    /// Seconds writing the QDQ model.
    pub write_seconds: f64,
    pub method: Method,
    pub quantized_convs: Vec<String>,
    pub kept_float_convs: Vec<String>,
    /// Quantized activation tensors (after MultiPool grouping, one per Q/DQ pair).
    pub activation_tensors: usize,
    pub out_bytes: usize,
}

/// Calibrate `opts.model` and write the QDQ model to `opts.out` (and the cache).
pub fn calibrate(
    opts: &CalibrateOptions,
    progress: &mut dyn FnMut(CalibrateProgress),
) -> Result<CalibrateReport, CalibrationError> {
    let start = Instant::now();
    check_writable(&opts.out)?;
    let cache_path = opts.cache_path();
    check_writable(&cache_path)?;
    let model_bytes =
        std::fs::read(&opts.model).map_err(|source| CalibrationError::Io { path: opts.model.clone(), source })?;
    let what = opts.model.display().to_string();
    let proto = pag_runtime::decode_onnx(&model_bytes, &what)?;
    let info = pag_runtime::ModelInfo::from_proto(&proto)?;
    let model_sha = sha256_hex(&model_bytes);
    let set = ImageSet::describe(&opts.images, &info)?;
    let (stats_cache, status) = match StatsCache::load_matching(&cache_path, &model_sha, &set.sha256) {
        (Some(c), status) => (c, status),
        (None, status) => {
            let frames = set.load(&info, progress)?;
            let tensors = stats::tensors_to_observe(&proto);
            let collected = collect(&proto, &info, &frames, &tensors, opts.threads, progress)?;
            let mut c = StatsCache::new(&model_sha, &set, frames.len(), collected);
            c.save(&cache_path)?;
            (c, status)
        }
    };
    let plan = QdqPlan::new(&proto, &info, &opts.keep_float)?;
    let params = plan.activation_params(&stats_cache, opts.method)?;
    let calibration_seconds = start.elapsed().as_secs_f64();
    let t = Instant::now();
    let meta = serde_json::json!({
        "format": "qdq",
        "activations": "u8 per-tensor asymmetric",
        "weights": if opts.reduce_range { "s8 per-channel symmetric, 7-bit range (±63)" } else { "s8 per-channel symmetric" },
        "method": opts.method.name(),
        "images": set.description,
        "kept_float": opts.keep_float,
        "calibration_sha256": stats_cache.sha256(),
    });
    let out = quantize_model(&proto, &plan, &params, &meta.to_string(), if opts.reduce_range { 63 } else { 127 })?;
    let bytes = prost::Message::encode_to_vec(&out);
    std::fs::write(&opts.out, &bytes).map_err(|source| CalibrationError::Io { path: opts.out.clone(), source })?;
    Ok(CalibrateReport {
        cache_path,
        frames_run: if status.is_hit() { 0 } else { stats_cache.frames * 2 },
        cache_status: status,
        calibration_seconds,
        write_seconds: t.elapsed().as_secs_f64(),
        method: opts.method,
        quantized_convs: plan.quantized.iter().map(|c| c.node_name.clone()).collect(),
        kept_float_convs: plan.kept_float.clone(),
        activation_tensors: params.len(),
        out_bytes: bytes.len(),
    })
}

/// Refuse early (before any work) an output whose directory is missing or not writable.
fn check_writable(path: &Path) -> Result<(), CalibrationError> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(p) => p.to_owned(),
        None => PathBuf::from("."),
    };
    let refuse = |why: String| Err(CalibrationError::Output(format!("cannot write {}: {why}", path.display())));
    if !dir.is_dir() {
        return refuse(format!("directory {} does not exist", dir.display()));
    }
    if path.is_dir() {
        return refuse("it is a directory".into());
    }
    // Probe by opening for append (creates the file if missing; removed again then).
    let existed = path.exists();
    if let Err(e) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
        return refuse(e.to_string());
    }
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
