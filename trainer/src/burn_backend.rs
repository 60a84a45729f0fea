//! The burn backend (`--backend burn`, the `burn` feature): burn with
//! autodiff and its Adam, on a GPU with `wgpu` or `cuda`, else on burn's
//! flex CPU backend.

use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Bytes, Device};
use pixelcnn_runtime::Arch;

use crate::backend::Backend;
use crate::checkpoint::OptimizerState;
use crate::engine::Example;
use crate::model::{forward, nats_per_image, Batch, Layout, Net};

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
