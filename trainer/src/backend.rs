//! The two training backends behind `trainer train --backend`: the CPU
//! engine (the default; written for this network family) and burn (for GPUs,
//! with `--features wgpu` or `cuda`; on a CPU it runs burn's flex backend).
//! Both take the same parameters, batches and optimizer rule.

use std::ops::Range;

use anyhow::ensure;
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device};
use pixelcnn_runtime::Arch;

use crate::checkpoint::OptimizerState;
use crate::engine::{Adam, Engine, Example};
use crate::model::{forward, nats_per_image, Batch, Layout, Net};

/// Which backend trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// The CPU engine: im2col + gemm convolutions, fused gates, threads over the batch.
    Cpu,
    /// burn: on a GPU with `--features wgpu` or `cuda`, else its CPU backend.
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
        (BackendKind::Burn, OptimizerState::Adam(_)) => (
            Box::new(BurnBackend::new(arch, &params, None, clip)?),
            Some("the checkpoint's optimizer state is the CPU engine's: Adam's moments restart in burn"),
        ),
        (BackendKind::Burn, state) => {
            let bytes = match state {
                OptimizerState::Burn(bytes) => Some(bytes),
                _ => None,
            };
            (Box::new(BurnBackend::new(arch, &params, bytes, clip)?), None)
        }
    })
}

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

/// burn's device: the GPU of the enabled feature, else flex on the CPU.
pub fn burn_device() -> Device {
    #[cfg(feature = "cuda")]
    return Device::cuda(0);
    #[cfg(all(feature = "wgpu", not(feature = "cuda")))]
    return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(not(any(feature = "wgpu", feature = "cuda")))]
    Device::flex()
}

/// burn with autodiff and its Adam.
pub struct BurnBackend {
    arch: Arch,
    layout: Layout,
    net: Option<Net>,
    optim: ModuleOptimizer,
    device: Device,
}

impl std::fmt::Debug for BurnBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BurnBackend").field("arch", &self.arch).finish_non_exhaustive()
    }
}

impl BurnBackend {
    /// A backend continuing burn's optimizer record `state` when given.
    ///
    /// # Errors
    /// When the optimizer record does not load.
    pub fn new(
        arch: Arch,
        params: &[f32],
        state: Option<Vec<u8>>,
        clip: f32,
    ) -> anyhow::Result<Self> {
        let device = burn_device().autodiff();
        let net = Net::from_flat(&arch, params, &device);
        let mut optim = AdamConfig::new()
            .with_epsilon(1e-8)
            .with_grad_clipping(Some(GradientClippingConfig::Norm(clip)))
            .init();
        if let Some(bytes) = state {
            optim = optim
                .from_bytes(Bytes::from_bytes_vec(bytes))
                .map_err(|e| anyhow::anyhow!("cannot restore the optimizer state: {e:?}"))?;
        }
        Ok(BurnBackend { arch, layout: Layout::new(arch), net: Some(net), optim, device })
    }
}

impl Backend for BurnBackend {
    fn step(&mut self, batch: &[Example<'_>], lr: f64) -> anyhow::Result<f64> {
        let images: Vec<&[u8]> = batch.iter().map(|e| e.levels).collect();
        let labels = (self.arch.classes > 0)
            .then(|| batch.iter().map(|e| e.label.unwrap_or(0) as i64).collect());
        let batch = Batch::new(&self.arch, &images, labels, &self.device);
        let net = self.net.take().expect("the network is always put back");
        let loss = nats_per_image(forward(&self.layout, &net, batch.x, batch.labels), batch.levels);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            self.net = Some(net);
            anyhow::bail!("the loss became {value}; lower --lr");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optim.step(lr, net, grads));
        Ok(value)
    }

    fn params(&self) -> Vec<f32> {
        self.net.as_ref().expect("the network is always put back").to_flat()
    }

    fn optimizer(&self) -> anyhow::Result<OptimizerState> {
        let bytes = self
            .optim
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("cannot serialize the optimizer: {e:?}"))?;
        Ok(OptimizerState::Burn(bytes.to_vec()))
    }
}
