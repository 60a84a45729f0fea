//! The CPU training engine: forward and backward passes written for the
//! PixelCNN family (im2col + `gemm` convolutions, fused gates, vectorised
//! tanh and σ), batch-level threading, and a fused Adam.
//!
//! Threads split each batch into contiguous chunks; each thread runs its
//! images one at a time (one image's activations stay in cache) and sums
//! its own gradient; the chunk gradients are then added in chunk order, so
//! a step is deterministic for a given thread count.

mod activations;
mod adam;
pub(crate) mod linalg;
mod network;

pub use adam::Adam;
pub use network::ParamIndex;

use anyhow::{ensure, Context};
use pixelcnn_runtime::Arch;

use network::{Network, Workspace};

/// One training or scoring example: an image's levels and its label.
#[derive(Clone, Copy, Debug)]
pub struct Example<'a> {
    /// Levels `0..K`, row-major.
    pub levels: &'a [u8],
    /// Class label, for class-conditional models.
    pub label: Option<usize>,
}

#[derive(Debug)]
struct Worker {
    ws: Workspace,
    grads: Vec<f32>,
    nll: Vec<f64>,
}

/// Gradients and NLL of batches on the CPU.
#[derive(Debug)]
pub struct Engine {
    arch: Arch,
    net: Network,
    workers: Vec<Worker>,
    grads: Vec<f32>,
}

impl Engine {
    /// An engine for `arch` on `threads` threads.
    ///
    /// # Errors
    /// When `arch` is invalid or `threads` is 0.
    pub fn new(arch: Arch, threads: usize) -> anyhow::Result<Self> {
        arch.validate().context("invalid network")?;
        ensure!(threads > 0, "the engine needs at least one thread");
        let net = Network::new(arch);
        let workers = (0..threads)
            .map(|_| Worker {
                ws: net.workspace(),
                grads: vec![0.0; arch.param_count()],
                nll: Vec::new(),
            })
            .collect();
        Ok(Engine { arch, net, workers, grads: vec![0.0; arch.param_count()] })
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Where each tensor lives in the parameter vector.
    pub fn index(&self) -> &ParamIndex {
        self.net.index()
    }

    fn check(&self, params: &[f32], batch: &[Example<'_>]) -> anyhow::Result<()> {
        let a = &self.arch;
        ensure!(
            params.len() == a.param_count(),
            "{} parameters, the network has {}",
            params.len(),
            a.param_count()
        );
        ensure!(!batch.is_empty(), "an empty batch");
        for (i, ex) in batch.iter().enumerate() {
            ensure!(
                ex.levels.len() == a.pixels(),
                "image {i} has {} pixels, the model expects {}",
                ex.levels.len(),
                a.pixels()
            );
            if let Some(p) = ex.levels.iter().position(|&l| usize::from(l) >= a.levels) {
                anyhow::bail!(
                    "image {i} has level {} at pixel {p}; the model has {} levels",
                    ex.levels[p],
                    a.levels
                );
            }
            if a.classes > 0 {
                let label = ex.label.with_context(|| {
                    format!("image {i} has no label; the model is class-conditional")
                })?;
                ensure!(
                    label < a.classes,
                    "image {i} has label {label}; the model knows classes 0 to {}",
                    a.classes - 1
                );
            }
        }
        Ok(())
    }

    /// How many workers [`Engine::run`] gives a chunk of a batch of `n`.
    fn workers_used(&self, n: usize) -> usize {
        n.div_ceil(n.div_ceil(self.workers.len()))
    }

    /// Runs `batch` forward (and backward when `grads`), each worker on its
    /// chunk; per-image NLL lands in the workers' `nll`.
    fn run(&mut self, params: &[f32], batch: &[Example<'_>], grads: bool) {
        let chunk = batch.len().div_ceil(self.workers.len());
        let scale = 1.0 / batch.len() as f32;
        let net = &self.net;
        let work = |worker: &mut Worker, part: &[Example<'_>]| {
            worker.nll.clear();
            if grads {
                worker.grads.fill(0.0);
            }
            for ex in part {
                worker.nll.push(net.forward(params, &mut worker.ws, ex.levels, ex.label, scale));
                if grads {
                    net.backward(params, &mut worker.ws, &mut worker.grads);
                }
            }
        };
        let mut parts = self.workers.iter_mut().zip(batch.chunks(chunk));
        let (first_worker, first_part) = parts.next().expect("a non-empty batch");
        std::thread::scope(|s| {
            for (worker, part) in parts {
                s.spawn(move || work(worker, part));
            }
            work(first_worker, first_part);
        });
    }

    /// Mean NLL (nats per image) of `batch` and its gradient with respect to
    /// `params`.
    ///
    /// # Errors
    /// When an image, a label or the parameter count does not fit the model.
    pub fn gradient(
        &mut self,
        params: &[f32],
        batch: &[Example<'_>],
    ) -> anyhow::Result<(f64, &[f32])> {
        self.check(params, batch)?;
        self.run(params, batch, true);
        let used = self.workers_used(batch.len());
        self.grads.fill(0.0);
        let mut total = 0.0;
        for w in &self.workers[..used] {
            for (g, v) in self.grads.iter_mut().zip(&w.grads) {
                *g += v;
            }
            total += w.nll.iter().sum::<f64>();
        }
        Ok((total / batch.len() as f64, &self.grads))
    }

    /// NLL of each image of `batch`, in nats.
    ///
    /// # Errors
    /// As [`Engine::gradient`].
    pub fn nll(&mut self, params: &[f32], batch: &[Example<'_>]) -> anyhow::Result<Vec<f64>> {
        self.check(params, batch)?;
        self.run(params, batch, false);
        let used = self.workers_used(batch.len());
        Ok(self.workers[..used].iter().flat_map(|w| w.nll.iter().copied()).collect())
    }

    /// The logits of one image, `[pixels][levels]`.
    ///
    /// # Errors
    /// As [`Engine::gradient`].
    pub fn logits(&mut self, params: &[f32], example: Example<'_>) -> anyhow::Result<Vec<f32>> {
        self.check(params, &[example])?;
        let w = &mut self.workers[0];
        Ok(self.net.logits(params, &mut w.ws, example.levels, example.label))
    }
}
