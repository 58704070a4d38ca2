//! A session runs one model frame after frame; created once, reused per frame.
use std::sync::Arc;

use ndarray::{Array2, ArrayView3, Ix4};
use tract_onnx::prelude::*;

use tract_onnx::tract_core::tract_linalg::multithread::{multithread_tract_scope, Executor};

use crate::error::{tract_err, PagError, Result};
use crate::mode::ComputeMode;
use crate::model::PagModel;
use crate::ops::{GatedBlockOp, MultiPoolOp, PagKernelOp, PagOp};
use crate::outputs::Outputs;
use crate::pag::telemetry::{add_to_ponder, count_by_grid, FrameTelemetry, LayerTelemetry};
use crate::preprocess::fill_input;
use crate::WorkerWait;

/// At which resolution a session returns its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolution {
    /// The model's own output size; `Outputs::scale` states it relative to the input image.
    #[default]
    Model,
    /// Resampled to the input image's size.
    Input,
}

fn view4(t: &TValue) -> Result<ndarray::ArrayView4<'_, f32>> {
    t.to_plain_array_view::<f32>()
        .map_err(tract_err("read outputs of"))?
        .into_dimensionality::<Ix4>()
        .map_err(|e| PagError::Shape { what: "model output".into(), expected: "4-D".into(), got: e.to_string() })
}

/// The largest image side a session accepts (a guard against absurd sizes).
pub const MAX_IMAGE_SIDE: usize = 16384;

/// Runs a [`PagModel`] on RGB frames. The compute mode may change between any two frames.
pub struct Session {
    model: Arc<PagModel>,
    state: TypedSimpleState,
    /// The normalised input image, shared with the plan during a run (no copy per frame).
    input: Arc<Tensor>,
    /// The `rho` input, refilled per frame.
    rho: Arc<Tensor>,
    mode: ComputeMode,
    resolution: Resolution,
    /// Plan node ids of the sparse gated-block ops, in the metadata's order.
    gated_nodes: Vec<usize>,
    /// Plan node ids of the sparse MultiPool ops, in the metadata's order.
    multipool_nodes: Vec<usize>,
    /// Filled after each frame when the model has sparse ops; `None` under dense execution.
    telemetry: Option<FrameTelemetry>,
    /// Seconds the last frame spent in the model itself (the tract plan), without the input
    /// normalisation and output conversion around it.
    inference_seconds: f64,
    /// The session's threads: pagrt's kernels and tract's own ops run on this pool.
    pool: Arc<rayon::ThreadPool>,
    /// What the pool's idle workers do during a frame.
    worker_wait: WorkerWait,
}

/// Node ids and names of the plan's ops of kernel `K`, sorted by their position in `order`.
fn sparse_nodes<K: PagKernelOp>(
    model: &PagModel,
    name: impl Fn(&K) -> &str,
    order: &[&str],
) -> (Vec<usize>, Vec<LayerTelemetry>) {
    let mut found: Vec<(usize, usize, String)> = model
        .plan
        .model()
        .nodes()
        .iter()
        .filter_map(|n| n.op_as::<PagOp<K>>().map(|op| (n.id, name(&op.0).to_owned())))
        .map(|(id, n)| (order.iter().position(|o| *o == n).unwrap_or(usize::MAX), id, n))
        .collect();
    found.sort();
    let ids = found.iter().map(|f| f.1).collect();
    let layers = found.into_iter().map(|(_, _, name)| LayerTelemetry { name, ..Default::default() }).collect();
    (ids, layers)
}

impl Session {
    /// A session on `model`, in [`ComputeMode::Dense`] at [`Resolution::Model`], with the
    /// model's thread count ([`crate::LoadOptions::threads`]; default every core).
    pub fn new(model: Arc<PagModel>) -> Result<Session> {
        let threads = model.options.resolved_threads();
        Self::with_threads(model, threads)
    }

    /// A session on `model` running on `threads` threads (≥ 1).
    pub fn with_threads(model: Arc<PagModel>, threads: usize) -> Result<Session> {
        if threads == 0 || threads > 1024 {
            return Err(PagError::Options(format!("threads must be in 1..=1024, got {threads}")));
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("pagrt-{i}"))
            .build()
            .map_err(|e| PagError::Options(format!("cannot start {threads} threads: {e}")))?;
        let state = TypedSimpleState::new(&model.plan).map_err(tract_err("start a session for"))?;
        let input = Arc::new(
            Tensor::zero::<f32>(&[1, 3, model.info.input.height, model.info.input.width])
                .map_err(tract_err("allocate input for"))?,
        );
        let rho = Arc::new(tensor1(&[1f32]));
        let gated_order: Vec<&str> = model.info.gated_blocks.iter().map(|b| b.name.as_str()).collect();
        let pool_order: Vec<&str> = model.info.multipools.iter().map(|m| m.name.as_str()).collect();
        let (gated_nodes, layers) = sparse_nodes::<GatedBlockOp>(&model, |op| &op.name, &gated_order);
        let (multipool_nodes, multipools) = sparse_nodes::<MultiPoolOp>(&model, |op| &op.name, &pool_order);
        let telemetry = (!gated_nodes.is_empty() || !multipool_nodes.is_empty()).then(|| FrameTelemetry {
            layers,
            multipools,
            ..Default::default()
        });
        let worker_wait = model.options.worker_wait;
        Ok(Session {
            worker_wait,
            model,
            state,
            input,
            rho,
            mode: ComputeMode::Dense,
            resolution: Resolution::Model,
            gated_nodes,
            multipool_nodes,
            telemetry,
            inference_seconds: 0.0,
            pool: Arc::new(pool),
        })
    }

    /// What the pool's idle workers do during a frame (from [`crate::LoadOptions::worker_wait`]).
    pub fn worker_wait(&self) -> WorkerWait {
        self.worker_wait
    }

    /// Applies from the next frame.
    pub fn set_worker_wait(&mut self, wait: WorkerWait) {
        self.worker_wait = wait;
    }

    /// Threads this session runs on.
    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Seconds the last frame spent running the model itself (the plan: pagrt's and tract's
    /// operators), without [`Session::run`]'s resize/normalisation of the input and conversion of
    /// the outputs. 0 before the first frame. What onnxruntime's `session.run` measures.
    pub fn last_inference_seconds(&self) -> f64 {
        self.inference_seconds
    }

    /// What the sparse modules did in the last frame ([`Session::run`] or
    /// [`Session::run_tensor`]): per gated block and MultiPool, active density and executed
    /// beside dense MACs. `None` when the model runs with [`crate::Execution::Dense`] (no sparse
    /// ops) or before the first frame. Refilled in place each frame, without allocating.
    pub fn telemetry(&self) -> Option<&FrameTelemetry> {
        self.telemetry.as_ref().filter(|_| self.ran_once())
    }

    fn ran_once(&self) -> bool {
        self.gated_nodes
            .iter()
            .chain(&self.multipool_nodes)
            .next()
            .and_then(|&id| self.state.op_states[id].as_deref())
            .is_some_and(|s| {
                PagOp::<GatedBlockOp>::state_of(s).is_some_and(|s| s.stats.is_some())
                    || PagOp::<MultiPoolOp>::state_of(s).is_some_and(|s| s.stats.is_some())
            })
    }

    /// The ponder map of the last frame, at the model's input resolution (`h × w` of
    /// `model.info.input`): at each pixel, how many gated blocks computed their branch there
    /// (each block's active mask upsampled nearest-neighbour from its own grid, then summed).
    /// `None` as for [`Session::telemetry`]. Allocates the returned array.
    pub fn ponder_map(&self) -> Option<Array2<u8>> {
        self.telemetry()?;
        let i = &self.model.info.input;
        let mut map = Array2::<u8>::zeros((i.height, i.width));
        let sets = self
            .gated_nodes
            .iter()
            .filter_map(|&id| self.state.op_states[id].as_deref().and_then(PagOp::<GatedBlockOp>::state_of))
            .map(|s| s.scratch.active());
        for (gh, gw, counts) in count_by_grid(sets) {
            add_to_ponder(&mut map, &counts, gh, gw);
        }
        Some(map)
    }

    fn update_telemetry(&mut self) {
        let Some(t) = self.telemetry.as_mut() else { return };
        for (layer, &id) in t.layers.iter_mut().zip(&self.gated_nodes) {
            let state = self.state.op_states[id].as_deref().and_then(PagOp::<GatedBlockOp>::state_of);
            if let Some(s) = state.and_then(|s| s.stats) {
                layer.density = if s.pixels == 0 { 0.0 } else { s.active as f32 / s.pixels as f32 };
                layer.executed_macs = s.executed_macs;
                layer.dense_macs = s.dense_macs;
                layer.ungated_macs = s.gate_macs;
            }
        }
        for (layer, &id) in t.multipools.iter_mut().zip(&self.multipool_nodes) {
            let state = self.state.op_states[id].as_deref().and_then(PagOp::<MultiPoolOp>::state_of);
            if let Some(s) = state.and_then(|s| s.stats) {
                layer.density = if s.pixels == 0 { 0.0 } else { s.conv_pixels as f32 / s.pixels as f32 };
                layer.executed_macs = s.executed_macs;
                layer.dense_macs = s.dense_macs;
                layer.ungated_macs = s.executed_macs;
            }
        }
        t.update_totals();
    }

    pub fn model(&self) -> &PagModel {
        &self.model
    }

    pub fn mode(&self) -> ComputeMode {
        self.mode
    }

    /// Applies from the next frame; no reload.
    pub fn set_mode(&mut self, mode: ComputeMode) {
        self.mode = mode;
    }

    pub fn set_resolution(&mut self, resolution: Resolution) {
        self.resolution = resolution;
    }

    /// Run one RGB frame (H×W×3, u8, any size): resized and normalised as the model requires.
    pub fn run(&mut self, rgb: ArrayView3<u8>) -> Result<Outputs> {
        self.run_inner(rgb, None)
    }

    /// As [`Session::run`], and calls `record(op_name, node_name, seconds)` after each operator
    /// of the plan: where a frame's inference time goes (`pag bench --profile`).
    pub fn run_profiled(
        &mut self,
        rgb: ArrayView3<u8>,
        record: &mut (dyn FnMut(&str, &str, f64) + Send),
    ) -> Result<Outputs> {
        self.run_inner(rgb, Some(record))
    }

    fn run_inner(
        &mut self,
        rgb: ArrayView3<u8>,
        record: Option<&mut (dyn FnMut(&str, &str, f64) + Send)>,
    ) -> Result<Outputs> {
        let (h, w, c) = rgb.dim();
        if h == 0 || w == 0 || c != 3 || h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE {
            return Err(PagError::Shape {
                what: "image".into(),
                expected: format!("H×W×3 RGB with 1 ≤ H, W ≤ {MAX_IMAGE_SIDE}"),
                got: format!("{h}×{w}×{c}"),
            });
        }
        // The plan drops its reference at the end of each run, so this does not copy.
        let view =
            Arc::make_mut(&mut self.input).to_plain_array_view_mut::<f32>().map_err(tract_err("fill the input of"))?;
        fill_input(rgb, &self.model.info.input, view.into_dimensionality::<Ix4>().expect("input is 4-D"));
        let raw = self.run_tensor_inner(self.input.clone().into_tvalue(), record)?;
        let (mh, mw) = (raw[1].shape()[2], raw[1].shape()[3]);
        let views: Vec<ndarray::ArrayView4<f32>> = raw.iter().map(view4).collect::<Result<_>>()?;
        let out = Outputs::from_raw(
            views[0].view(),
            views[1].view(),
            views[2].view(),
            (mh as f32 / h as f32, mw as f32 / w as f32),
        );
        Ok(match self.resolution {
            Resolution::Model => out,
            Resolution::Input => out.resized(h, w),
        })
    }

    /// Runs the model on its graph inputs as onnxruntime is fed them, in graph input order: the
    /// normalised image `[1, 3, H, W]` and, when the model has gates, ρ `[1]`, whose value
    /// selects this frame's mode as the contract encodes it (1 dense, 0 native, else a budget;
    /// the session's mode is set to it). Returns (seg_logits, depth, normals). `pag run --input`
    /// checks a PAG model this way, on the same path as every frame.
    pub fn run_graph_inputs(&mut self, inputs: Vec<Tensor>) -> Result<[TValue; 3]> {
        let m = self.model.clone();
        if inputs.len() != m.input_count() {
            return Err(PagError::Shape {
                what: "model inputs".into(),
                expected: format!(
                    "{} tensors ({}{})",
                    m.input_count(),
                    m.info.input.name,
                    m.info.rho_input.as_ref().map(|r| format!(", {r}")).unwrap_or_default()
                ),
                got: format!("{} tensors", inputs.len()),
            });
        }
        let mut image = None;
        for (ix, t) in inputs.into_iter().enumerate() {
            if ix == m.input_index {
                let want = [1, 3, m.info.input.height, m.info.input.width];
                if t.shape() != want || t.datum_type() != f32::datum_type() {
                    return Err(PagError::Shape {
                        what: format!("input `{}`", m.info.input.name),
                        expected: format!("shape {want:?} (f32)"),
                        got: format!("{:?} {:?}", t.datum_type(), t.shape()),
                    });
                }
                image = Some(t);
            } else {
                let rho = t.cast_to_scalar::<f32>().ok().filter(|_| t.len() == 1).ok_or_else(|| PagError::Shape {
                    what: "input ρ".into(),
                    expected: "one float".into(),
                    got: format!("{:?} {:?}", t.datum_type(), t.shape()),
                })?;
                self.mode = crate::mode::mode_from_rho(rho);
            }
        }
        self.run_tensor(image.expect("one image input"))
    }

    /// Run an already normalised 1×3×h×w tensor; returns (seg_logits, depth, normals).
    pub fn run_tensor(&mut self, image: Tensor) -> Result<[TValue; 3]> {
        self.run_tensor_inner(image.into_tvalue(), None)
    }

    fn run_tensor_inner(
        &mut self,
        image: TValue,
        record: Option<&mut (dyn FnMut(&str, &str, f64) + Send)>,
    ) -> Result<[TValue; 3]> {
        let m = &self.model;
        let mut image = Some(image);
        let rho_value = self.mode.rho_input();
        Arc::make_mut(&mut self.rho).to_plain_array_view_mut::<f32>().map_err(tract_err("set ρ of"))?.fill(rho_value);
        let mut rho = m.rho_index.map(|_| self.rho.clone().into_tvalue());
        let inputs: TVec<TValue> = (0..m.input_count())
            .map(|i| if i == m.input_index { image.take() } else { rho.take() }.expect("one image and one ρ"))
            .collect();
        let start = std::time::Instant::now();
        let (pool, state, wait) = (&self.pool, &mut self.state, self.worker_wait);
        // pagrt's kernels split work on the current rayon pool; tract's own ops on its executor.
        let outs = pool.install(|| {
            with_polling_workers(wait == WorkerWait::Poll, || {
                multithread_tract_scope(Executor::MultiThread(pool.clone()), || match record {
                    None => state.run(inputs),
                    Some(record) => state.run_plan_with_eval(inputs, |ctx, state, node, inputs| {
                        let start = std::time::Instant::now();
                        let r = tract_onnx::tract_core::plan::eval(ctx, state, node, inputs);
                        record(&node.op.name(), &node.name, start.elapsed().as_secs_f64());
                        r
                    }),
                })
            })
        });
        self.inference_seconds = start.elapsed().as_secs_f64();
        let mut outs: TVec<Option<TValue>> = outs.map_err(tract_err("run"))?.into_iter().map(Some).collect();
        self.update_telemetry();
        let m = &self.model;
        Ok(m.output_index.map(|i| outs[i].take().expect("distinct output indices")))
    }
}

/// Runs `frame` on the current rayon worker; with `poll`, the pool's other workers poll for its
/// jobs ([`WorkerWait::Poll`]: `rayon::yield_now`, else an OS yield) instead of sleeping, until
/// it returns.
///
/// A frame alternates parallel regions (kernel tiles) with serial steps (budget selection,
/// tract's bookkeeping) of tens to hundreds of µs. Idle rayon workers go to sleep after a few
/// µs, and waking one takes longer than that on a virtual machine or from a deep CPU idle state:
/// measured on 2 KVM vCPUs (AMD EPYC), a `join` of two 100 µs halves took 200 µs whenever the
/// caller had worked alone for ≥ 50 µs before it (the caller ran both halves), 101 µs with the
/// other worker polling. onnxruntime's thread pool spins the same way by default. The price: the
/// pollers take CPU time from the machine's other busy threads (the ROS node's synthetic camera
/// renders on the same cores, so the node sleeps by default).
///
/// No allocation: the pollers are `join` stack jobs. A poller that finds itself on the frame's
/// own thread (taken up there while the frame waits for a stolen job) returns at once, so the
/// frame can never end up waiting under its own poller.
fn with_polling_workers<R: Send>(poll: bool, frame: impl FnOnce() -> R + Send) -> R {
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Ends the polling however the frame ends (a panic too: `join` waits for the pollers).
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let others = rayon::current_num_threads().saturating_sub(1);
    if !poll || others == 0 {
        return frame();
    }
    let done = AtomicBool::new(false);
    let home = rayon::current_thread_index();
    let (out, ()) = rayon::join(
        || {
            let _done = Done(&done);
            frame()
        },
        || poll_on_workers(&done, home, others),
    );
    out
}

/// `n` pollers, each on whichever worker takes it (a chain of `join`s: each poller leaves the
/// next one for another worker to steal).
fn poll_on_workers(done: &std::sync::atomic::AtomicBool, home: Option<usize>, n: usize) {
    let poll = || {
        if rayon::current_thread_index() == home {
            return;
        }
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            if rayon::yield_now() != Some(rayon::Yield::Executed) {
                std::thread::yield_now();
            }
        }
    };
    match n {
        0 => {}
        1 => poll(),
        _ => {
            rayon::join(poll, || poll_on_workers(done, home, n - 1));
        }
    }
}
