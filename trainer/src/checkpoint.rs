//! Checkpoints: one safetensors file per run holding the parameters (by
//! runtime tensor name and shape), the optimizer state, and the run's
//! progress as metadata. Written to a temporary file and renamed, so a killed
//! process leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context};
use pixelcnn_runtime::{Arch, TensorSpec};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use serde::{Deserialize, Serialize};

use crate::data::DatasetKind;
use crate::engine::Adam;

/// File name of the checkpoint inside a run directory.
pub const FILE: &str = "checkpoint.safetensors";

/// Training settings that a resumed run must keep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Dataset kind.
    pub dataset: DatasetKind,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Gradient clipping: largest L2 norm of each parameter's gradient.
    pub clip: f32,
    /// Planned epochs (the schedule's length), when training by epochs.
    pub epochs: Option<usize>,
    /// Planned minutes of training, when training by time.
    pub minutes: Option<f64>,
    /// Seed of initialization and shuffling.
    pub seed: u64,
    /// Draw new binary training pixels every epoch from the grey levels
    /// (validation and test stay statically binarized).
    #[serde(default)]
    pub dynamic_binarization: bool,
    /// Decay of the exponential moving average of the weights (Polyak
    /// averaging), when the run keeps one.
    #[serde(default)]
    pub ema: Option<f64>,
    /// Where the current learning-rate cycle began: 0 for a run's first,
    /// later when `--restart-schedule` started a new warm-up and cosine
    /// decay. `epochs`/`minutes` count from here.
    #[serde(default)]
    pub cycle: Cycle,
    /// The classes' names, in label order, when the data names them (PNG
    /// sub-folders, Fashion-MNIST); empty for numbered classes or an
    /// unconditional run. Export writes them into the model.
    #[serde(default)]
    pub class_names: Vec<String>,
}

/// The start of a learning-rate cycle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cycle {
    /// The step the cycle began at.
    pub step: usize,
    /// Training seconds of the run when it began.
    pub seconds: f64,
}

/// An exponential moving average of the parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Ema {
    /// The averaged parameters, in runtime layout.
    pub params: Vec<f32>,
    /// Updates done since the average began.
    pub steps: u64,
}

impl Ema {
    /// An average that starts at `params`.
    pub fn new(params: &[f32]) -> Self {
        Ema { params: params.to_vec(), steps: 0 }
    }

    /// Folds in the parameters after one step. The decay ramps up as
    /// `min(decay, (1 + t) / (10 + t))` so that an average begun late, or
    /// from random weights, is not dominated by where it started (the rule
    /// of TensorFlow's `ExponentialMovingAverage` with `num_updates`).
    pub fn update(&mut self, params: &[f32], decay: f64) {
        assert_eq!(
            params.len(),
            self.params.len(),
            "the average and the parameters differ in size"
        );
        self.steps += 1;
        let t = self.steps as f64;
        let d = decay.min((1.0 + t) / (10.0 + t)) as f32;
        for (e, &p) in self.params.iter_mut().zip(params) {
            *e = d * *e + (1.0 - d) * p;
        }
    }
}

/// The optimizer's state, in the form of the backend that trained it.
#[derive(Clone, Debug, PartialEq)]
pub enum OptimizerState {
    /// No step taken yet.
    Fresh,
    /// The CPU engine's Adam moments.
    Adam(Adam),
    /// burn's record bytes (`--backend burn`).
    Burn(Vec<u8>),
}

/// Where a run stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Completed epochs.
    pub epoch: usize,
    /// Steps done inside the current epoch.
    pub step_in_epoch: usize,
    /// Steps done in total.
    pub step: usize,
    /// Training seconds so far, over all sessions.
    pub seconds: f64,
    /// Images seen so far.
    pub images: u64,
    /// Best validation NLL so far (nats per image).
    pub best_valid: Option<f64>,
}

/// Everything a checkpoint holds.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The architecture.
    pub arch: Arch,
    /// Parameters in runtime layout.
    pub params: Vec<f32>,
    /// The optimizer's state.
    pub optimizer: OptimizerState,
    /// The moving average of the parameters, when the run keeps one.
    pub ema: Option<Ema>,
    /// Training settings.
    pub settings: Settings,
    /// Progress.
    pub progress: Progress,
}

/// The runtime name of a tensor: `layers.3.v.weight`, `head.head1.bias`.
pub fn tensor_name(spec: &TensorSpec) -> String {
    match spec.layer {
        Some(l) => format!("layers.{l}.{}", spec.kind.name()),
        None => format!("head.{}", spec.kind.name()),
    }
}

/// Path of the checkpoint in `run_dir`.
pub fn path(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE)
}

impl Checkpoint {
    /// Writes the checkpoint atomically to `run_dir`.
    pub fn save(&self, run_dir: &Path) -> anyhow::Result<()> {
        let bytes: Vec<Vec<u8>> = {
            let mut offset = 0;
            self.arch
                .tensors()
                .map(|spec| {
                    let len = spec.len();
                    let b = self.params[offset..offset + len]
                        .iter()
                        .flat_map(|v| v.to_le_bytes())
                        .collect();
                    offset += len;
                    b
                })
                .collect()
        };
        let mut views: Vec<(String, TensorView<'_>)> = Vec::new();
        for (spec, data) in self.arch.tensors().zip(&bytes) {
            views.push((
                tensor_name(&spec),
                TensorView::new(Dtype::F32, spec.shape.to_vec(), data)?,
            ));
        }
        let moments: Vec<Vec<u8>> = match &self.optimizer {
            OptimizerState::Adam(adam) => [&adam.m, &adam.v]
                .iter()
                .map(|t| t.iter().flat_map(|v| v.to_le_bytes()).collect())
                .collect(),
            _ => Vec::new(),
        };
        for (name, data) in ["adam.m", "adam.v"].iter().zip(&moments) {
            views
                .push((name.to_string(), TensorView::new(Dtype::F32, vec![data.len() / 4], data)?));
        }
        let ema_bytes: Option<Vec<u8>> =
            self.ema.as_ref().map(|e| e.params.iter().flat_map(|v| v.to_le_bytes()).collect());
        if let Some(data) = &ema_bytes {
            views.push(("ema".into(), TensorView::new(Dtype::F32, vec![data.len() / 4], data)?));
        }
        if let OptimizerState::Burn(bytes) = &self.optimizer {
            views.push(("optimizer".into(), TensorView::new(Dtype::U8, vec![bytes.len()], bytes)?));
        }
        let mut metadata = HashMap::from([
            ("arch".to_string(), self.arch.to_json().to_string()),
            ("settings".to_string(), serde_json::to_string(&self.settings)?),
            ("progress".to_string(), serde_json::to_string(&self.progress)?),
        ]);
        if let OptimizerState::Adam(adam) = &self.optimizer {
            metadata.insert("adam_steps".to_string(), adam.steps.to_string());
        }
        if let Some(ema) = &self.ema {
            metadata.insert("ema_steps".to_string(), ema.steps.to_string());
        }
        let final_path = path(run_dir);
        let tmp = run_dir.join(format!("{FILE}.tmp"));
        safetensors::serialize_to_file(views, Some(metadata), &tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &final_path).with_context(|| {
            format!("cannot move {} to {}", tmp.display(), final_path.display())
        })?;
        Ok(())
    }

    /// Reads the checkpoint of `run_dir`.
    pub fn load(run_dir: &Path) -> anyhow::Result<Checkpoint> {
        let file = path(run_dir);
        ensure!(
            file.is_file(),
            "no checkpoint in {}: expected {}",
            run_dir.display(),
            file.display()
        );
        let bytes =
            std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
        Self::from_bytes(&bytes).with_context(|| format!("invalid checkpoint {}", file.display()))
    }

    fn from_bytes(bytes: &[u8]) -> anyhow::Result<Checkpoint> {
        let (_, meta) = SafeTensors::read_metadata(bytes)?;
        let meta = meta.metadata().clone().unwrap_or_default();
        let field = |k: &str| meta.get(k).with_context(|| format!("metadata `{k}` is missing"));
        let arch_json: serde_json::Value = serde_json::from_str(field("arch")?)?;
        let arch = Arch::from_json(&arch_json).map_err(anyhow::Error::msg)?;
        let settings: Settings = serde_json::from_str(field("settings")?)?;
        let progress: Progress = serde_json::from_str(field("progress")?)?;
        let tensors = SafeTensors::deserialize(bytes)?;
        let mut params = Vec::with_capacity(arch.param_count());
        for spec in arch.tensors() {
            let name = tensor_name(&spec);
            let t = tensors.tensor(&name).with_context(|| format!("tensor {name} is missing"))?;
            if t.dtype() != Dtype::F32 || t.shape() != spec.shape {
                bail!(
                    "tensor {name} is {:?} {:?}, expected F32 {:?}",
                    t.dtype(),
                    t.shape(),
                    spec.shape
                );
            }
            params.extend(
                t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())),
            );
        }
        let floats = |name: &str| -> anyhow::Result<Vec<f32>> {
            let t = tensors.tensor(name)?;
            ensure!(
                t.dtype() == Dtype::F32 && t.shape() == [params.len()],
                "tensor {name} is {:?} {:?}, expected F32 [{}]",
                t.dtype(),
                t.shape(),
                params.len()
            );
            Ok(t.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect())
        };
        let optimizer = if let Some(steps) = meta.get("adam_steps") {
            let steps = steps.parse().context("metadata `adam_steps` is not a number")?;
            OptimizerState::Adam(Adam { m: floats("adam.m")?, v: floats("adam.v")?, steps })
        } else if let Ok(t) = tensors.tensor("optimizer") {
            OptimizerState::Burn(t.data().to_vec())
        } else {
            OptimizerState::Fresh
        };
        let ema = match meta.get("ema_steps") {
            Some(steps) => Some(Ema {
                params: floats("ema")?,
                steps: steps.parse().context("metadata `ema_steps` is not a number")?,
            }),
            None => None,
        };
        Ok(Checkpoint { arch, params, optimizer, ema, settings, progress })
    }

    /// The parameters to evaluate, sample and export: the moving average
    /// when the run keeps one (unless `raw`), else the trained ones. Also
    /// says which it chose.
    pub fn inference_params(&self, raw: bool) -> (&[f32], &'static str) {
        match (&self.ema, raw) {
            (Some(ema), false) => (&ema.params, "the moving average of the weights"),
            _ => (&self.params, "the trained weights"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_average_follows_the_ramped_decay() {
        let mut ema = Ema::new(&[0.0, 10.0]);
        // Step 1: decay min(0.9, 2/11) = 2/11.
        ema.update(&[1.0, 0.0], 0.9);
        let d = 2.0f32 / 11.0;
        assert!((ema.params[0] - (1.0 - d)).abs() < 1e-6, "{:?}", ema.params);
        assert!((ema.params[1] - 10.0 * d).abs() < 1e-5, "{:?}", ema.params);
        // Late steps use the decay itself: a constant input is approached
        // geometrically.
        let mut ema = Ema { params: vec![0.0], steps: 1_000 };
        ema.update(&[1.0], 0.9);
        assert!((ema.params[0] - 0.1).abs() < 1e-6);
        assert_eq!(ema.steps, 1_001);
    }
}
