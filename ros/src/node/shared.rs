//! State shared by the node's threads: the configuration (changed by parameter services), the
//! validated models, the counters, the latest-frame slot and the latest camera_info.
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use pag_runtime::{LoadOptions, PagModel};
use ros2_client::ParameterValue;
use tracing::info;

use crate::config::{Config, P_MODEL_PATH};
use crate::msg::{CameraInfo, Header};
use crate::slot::LatestSlot;
use crate::stats::Stats;

/// A decoded frame waiting in the slot.
pub(crate) struct InFrame {
    pub header: Header,
    pub rgb: ndarray::Array3<u8>,
    pub received: Instant,
    /// Wall clock at reception (for cross-process latency breakdowns on one machine).
    pub received_unix: f64,
}

pub(crate) fn unix_ms() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Loads a model with the node's load options (sparse execution, `threads`).
pub(crate) fn load_model(path: &str, options: LoadOptions) -> Result<Arc<PagModel>, String> {
    let model = PagModel::load_with_options(path, options).map_err(|e| format!("cannot load model {path}: {e}"))?;
    info!("model {}: {} on {} thread(s)", model_name(path), model.precision(), options.resolved_threads());
    Ok(Arc::new(model))
}

pub(crate) fn model_name(path: &str) -> String {
    Path::new(path).file_name().map_or(path.to_owned(), |f| f.to_string_lossy().into_owned())
}

/// State shared by the node's threads.
pub(crate) struct Shared {
    pub config: Mutex<Config>,
    pub generation: AtomicU64,
    /// Models that passed validation, by path (the validator loads; the inference thread uses).
    pub models: Mutex<Vec<(String, Arc<PagModel>)>>,
    pub stats: Stats,
    pub slot: LatestSlot<InFrame>,
    pub camera_info: Mutex<Option<CameraInfo>>,
    /// The model the inference thread runs: (path, whole-network dense MACs).
    pub current_model: Mutex<(String, u64)>,
    /// How models are loaded (fixed at start-up: `threads`).
    pub load_options: LoadOptions,
}

impl Shared {
    pub fn new(config: Config, first_model: Arc<PagModel>) -> Shared {
        let dense_macs = first_model.dense_macs;
        Shared {
            load_options: config.load_options(),
            generation: AtomicU64::new(1),
            models: Mutex::new(vec![(config.model_path.clone(), first_model)]),
            stats: Stats::default(),
            slot: LatestSlot::new(),
            camera_info: Mutex::new(None),
            current_model: Mutex::new((config.model_path.clone(), dense_macs)),
            config: Mutex::new(config),
        }
    }

    /// The model at `path`, loaded once and kept (the last two are cached).
    pub fn model(&self, path: &str) -> Result<Arc<PagModel>, String> {
        if let Some((_, m)) = lock(&self.models).iter().find(|(p, _)| p == path) {
            return Ok(m.clone());
        }
        let m = load_model(path, self.load_options)?;
        let mut models = lock(&self.models);
        models.push((path.to_owned(), m.clone()));
        if models.len() > 2 {
            models.remove(0);
        }
        Ok(m)
    }

    /// Parameter validator: the value is valid for the config, and a new `model_path` loads.
    pub fn validate(&self, name: &str, value: &ParameterValue) -> Result<(), String> {
        lock(&self.config).validate(name, value)?;
        if let (P_MODEL_PATH, ParameterValue::String(p)) = (name, value) {
            self.model(p)?;
        }
        Ok(())
    }

    /// Parameter set action; the inference thread picks the change up at its next frame.
    pub fn apply(&self, name: &str, value: &ParameterValue) -> Result<(), String> {
        lock(&self.config).set(name, value)?;
        self.generation.fetch_add(1, Ordering::SeqCst);
        info!("parameter {name} = {value:?}");
        Ok(())
    }
}
