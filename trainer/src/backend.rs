//! The two training backends behind `trainer train --backend`: the CPU
//! engine (the default; written for this network family) and burn (for GPUs,
//! with `--features wgpu` or `cuda`; on a CPU it runs burn's flex backend).
//! Both take the same parameters, batches and optimizer rule.

use std::ops::Range;

use anyhow::ensure;
use pixelcnn_runtime::Arch;

#[cfg(feature = "burn")]
pub use crate::burn_backend::{burn_device, BurnBackend};
use crate::checkpoint::OptimizerState;
use crate::engine::{Adam, Engine, Example};

/// Which backend trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The CPU engine: im2col + gemm convolutions, fused gates, threads over the batch.
    Cpu,
    /// burn: on a GPU with the `wgpu` or `cuda` feature, else its CPU
    /// backend (a trainer built with the `burn` feature).
    Burn,
}

/// One optimizer step at a time, whatever the backend.
pub trait Backend {
    /// One Adam step on `batch` at learning rate `lr`; returns the batch's
    /// mean NLL in nats per image, measured before the step.
    ///
    /// # Errors
    /// Bad examples, or a loss that is not finite.
    fn step(&mut self, batch: &[Example<'_>], lr: f64) -> anyhow::Result<f64>;
    /// The parameters, in runtime layout.
    fn params(&self) -> Vec<f32>;
    /// The optimizer state to checkpoint.
    ///
    /// # Errors
    /// When the state cannot be serialized.
    fn optimizer(&self) -> anyhow::Result<OptimizerState>;
}

/// Builds the backend of `kind` from a checkpoint's parameters and state.
/// Returns a note when the saved optimizer state belongs to the other
/// backend and Adam's moments restart.
///
/// # Errors
/// When the engine cannot be built or burn's state does not load.
pub fn create(
    kind: BackendKind,
    arch: Arch,
    params: Vec<f32>,
    optimizer: OptimizerState,
    clip: f32,
    threads: usize,
) -> anyhow::Result<(Box<dyn Backend>, Option<&'static str>)> {
    Ok(match (kind, optimizer) {
        (BackendKind::Cpu, OptimizerState::Burn(_)) => (
            Box::new(CpuBackend::new(arch, params, None, clip, threads)?),
            Some("the checkpoint's optimizer state is burn's: Adam's moments restart on the CPU engine"),
        ),
        (BackendKind::Cpu, state) => {
            let adam = match state {
                OptimizerState::Adam(adam) => Some(adam),
                _ => None,
            };
            (Box::new(CpuBackend::new(arch, params, adam, clip, threads)?), None)
        }
        #[cfg(feature = "burn")]
        (BackendKind::Burn, OptimizerState::Adam(_)) => (
            Box::new(BurnBackend::new(arch, &params, None, clip)?),
            Some("the checkpoint's optimizer state is the CPU engine's: Adam's moments restart in burn"),
        ),
        #[cfg(feature = "burn")]
        (BackendKind::Burn, state) => {
            let bytes = match state {
                OptimizerState::Burn(bytes) => Some(bytes),
                _ => None,
            };
            (Box::new(BurnBackend::new(arch, &params, bytes, clip)?), None)
        }
        #[cfg(not(feature = "burn"))]
        (BackendKind::Burn, _) => anyhow::bail!("{BURN_MISSING}"),
    })
}

/// Why `--backend burn` fails in a build without burn, and what to do.
#[cfg(not(feature = "burn"))]
pub const BURN_MISSING: &str = "this trainer was built without burn: rebuild it with \
     `cargo build --release -p pixelcnn-trainer --features burn` (or `--features wgpu` / \
     `cuda` for a GPU), or train with the default CPU engine (`--backend cpu`)";

/// The CPU engine with its fused Adam.
#[derive(Debug)]
pub struct CpuBackend {
    engine: Engine,
    adam: Adam,
    params: Vec<f32>,
    tensors: Vec<Range<usize>>,
    clip: f32,
}

impl CpuBackend {
    /// A backend on `threads` threads, continuing `adam` when given.
    ///
    /// # Errors
    /// An invalid architecture, or Adam state of the wrong size.
    pub fn new(
        arch: Arch,
        params: Vec<f32>,
        adam: Option<Adam>,
        clip: f32,
        threads: usize,
    ) -> anyhow::Result<Self> {
        let engine = Engine::new(arch, threads)?;
        let adam = adam.unwrap_or_else(|| Adam::new(params.len()));
        ensure!(
            adam.m.len() == params.len() && adam.v.len() == params.len(),
            "the Adam state does not match the parameters"
        );
        let tensors = engine.index().tensors().to_vec();
        Ok(CpuBackend { engine, adam, params, tensors, clip })
    }
}

impl Backend for CpuBackend {
    fn step(&mut self, batch: &[Example<'_>], lr: f64) -> anyhow::Result<f64> {
        let (loss, grads) = self.engine.gradient(&self.params, batch)?;
        ensure!(loss.is_finite(), "the loss became {loss}; lower --lr");
        self.adam.step(&mut self.params, grads, &self.tensors, lr, self.clip);
        Ok(loss)
    }

    fn params(&self) -> Vec<f32> {
        self.params.clone()
    }

    fn optimizer(&self) -> anyhow::Result<OptimizerState> {
        Ok(OptimizerState::Adam(self.adam.clone()))
    }
}
