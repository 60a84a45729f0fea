//! `trainer bench`: images per second of full training steps on random
//! binary images, the measurement `torch_train_speed.py` makes for PyTorch.

use std::time::Instant;

use anyhow::{ensure, Context};
use pixelcnn_runtime::rng;
use rand_core::RngCore;

use crate::backend::{self, BackendKind};
use crate::checkpoint::OptimizerState;
use crate::cli::BenchArgs;
use crate::engine::Example;
use crate::init::initial_params;

/// Warm-up steps before timing.
const WARMUP: usize = 3;

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    ensure!(args.batch > 0 && args.steps > 0, "--batch and --steps must be at least 1");
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    ensure!(threads > 0, "--threads must be at least 1");
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    let arch = args.net.arch(28, 28, args.levels, args.classes);
    arch.validate().context("invalid network")?;
    // Pixels on with probability 0.2 (about MNIST's ink), labels uniform.
    let mut r = rng::from_seed(7);
    let images: Vec<Vec<u8>> = (0..args.batch)
        .map(|_| (0..arch.pixels()).map(|_| u8::from(r.next_u32() < u32::MAX / 5)).collect())
        .collect();
    let labels: Vec<Option<usize>> = (0..args.batch)
        .map(|_| (arch.classes > 0).then(|| r.next_u32() as usize % arch.classes))
        .collect();
    let batch: Vec<Example<'_>> =
        images.iter().zip(&labels).map(|(i, &label)| Example { levels: i, label }).collect();
    let (mut backend, _) = backend::create(
        args.backend,
        arch,
        initial_params(&arch, 1),
        OptimizerState::Fresh,
        1.0,
        threads,
    )?;
    for _ in 0..WARMUP {
        backend.step(&batch, 1e-3)?;
    }
    let start = Instant::now();
    for _ in 0..args.steps {
        backend.step(&batch, 1e-3)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let macs = arch.macs_per_pixel() as f64 * arch.pixels() as f64;
    let images_per_s = (args.steps * args.batch) as f64 / seconds;
    say!(
        "{} backend, {} parameters, {} threads, batch {}: {:.1} ms/step, {:.1} images/s, {:.1} GFLOP/s (3 passes of {:.1} MMAC per image)",
        match args.backend {
            BackendKind::Cpu => "cpu",
            BackendKind::Burn => "burn",
        },
        arch.param_count(),
        threads,
        args.batch,
        seconds / args.steps as f64 * 1e3,
        images_per_s,
        images_per_s * 3.0 * 2.0 * macs / 1e9,
        macs / 1e6
    );
    Ok(())
}
