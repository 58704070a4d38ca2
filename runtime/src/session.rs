//! A session runs one model frame after frame; created once, reused per frame.
use std::sync::Arc;

use ndarray::{ArrayView3, Ix4};
use tract_onnx::prelude::*;

use crate::error::{tract_err, PagError, Result};
use crate::mode::ComputeMode;
use crate::model::PagModel;
use crate::outputs::Outputs;
use crate::preprocess::fill_input;

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
    input: Tensor,
    mode: ComputeMode,
    resolution: Resolution,
}

impl Session {
    pub fn new(model: Arc<PagModel>) -> Result<Session> {
        let state = TypedSimpleState::new(&model.plan).map_err(tract_err("start a session for"))?;
        let input = Tensor::zero::<f32>(&[1, 3, model.info.input.height, model.info.input.width])
            .map_err(tract_err("allocate input for"))?;
        Ok(Session { model, state, input, mode: ComputeMode::Dense, resolution: Resolution::Model })
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
        let (h, w, c) = rgb.dim();
        if h == 0 || w == 0 || c != 3 || h > MAX_IMAGE_SIDE || w > MAX_IMAGE_SIDE {
            return Err(PagError::Shape {
                what: "image".into(),
                expected: format!("H×W×3 RGB with 1 ≤ H, W ≤ {MAX_IMAGE_SIDE}"),
                got: format!("{h}×{w}×{c}"),
            });
        }
        let view = self.input.to_plain_array_view_mut::<f32>().map_err(tract_err("fill the input of"))?;
        fill_input(rgb, &self.model.info.input, view.into_dimensionality::<Ix4>().expect("input is 4-D"));
        let raw = self.run_tensor(self.input.clone())?;
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

    /// Run an already normalised 1×3×h×w tensor; returns (seg_logits, depth, normals).
    pub fn run_tensor(&mut self, image: Tensor) -> Result<[TValue; 3]> {
        let m = &self.model;
        let mut image = Some(image);
        let mut rho = m.rho_index.map(|_| tensor1(&[self.mode.rho_input()]));
        let inputs: TVec<TValue> = (0..m.input_count())
            .map(|i| {
                if i == m.input_index { image.take() } else { rho.take() }.expect("one image and one ρ").into_tvalue()
            })
            .collect();
        let mut outs: Vec<Option<TValue>> =
            self.state.run(inputs).map_err(tract_err("run"))?.into_iter().map(Some).collect();
        Ok(m.output_index.map(|i| outs[i].take().expect("distinct output indices")))
    }
}
