//! `trainer eval`: NLL over a whole split, batched on the CPU.

use anyhow::ensure;
use indicatif::ProgressBar;
use pixelcnn_runtime::Arch;

use crate::checkpoint::Checkpoint;
use crate::cli::EvalArgs;
use crate::data::{self, Images};
use crate::engine::{Engine, Example};

/// Images per call into the engine: enough to keep every thread busy.
const SCORE_CHUNK: usize = 64;

/// NLL of a split: mean nats per image and bits per dimension.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// Mean negative log-likelihood per image, in nats.
    pub nats_per_image: f64,
    /// The same per pixel, in bits.
    pub bits_per_dim: f64,
    /// Images scored.
    pub images: usize,
}

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let ckpt = Checkpoint::load(&args.run)?;
    let kind = args.dataset.unwrap_or(ckpt.settings.dataset);
    let images = data::load(&args.data, kind, args.split, ckpt.arch.levels)?;
    let (params, which) = ckpt.inference_params(args.raw_weights);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let score = score(&ckpt.arch, params, &images, args.limit, threads, !args.json)?;
    let averaged = ckpt.ema.is_some() && !args.raw_weights;
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "nats_per_image": score.nats_per_image,
                "bits_per_dim": score.bits_per_dim,
                "images": score.images,
                "weights": if averaged { "ema" } else { "raw" },
            })
        );
    } else {
        say!(
            "{:?} split: {:.3} nats/image, {:.4} bits/dim over {} images ({which})",
            args.split,
            score.nats_per_image,
            score.bits_per_dim,
            score.images
        );
    }
    Ok(())
}

/// Scores `images` (the first `limit` of them) under `params` with the CPU
/// engine on `threads` threads.
pub fn score(
    arch: &Arch,
    params: &[f32],
    images: &Images,
    limit: Option<usize>,
    threads: usize,
    bar: bool,
) -> anyhow::Result<Score> {
    images.check_fits(arch)?;
    let n = limit.unwrap_or(images.len()).min(images.len());
    ensure!(n > 0, "no images to score");
    let mut engine = Engine::new(*arch, threads)?;
    let progress =
        if bar { crate::progress::bar(n as u64, "scoring") } else { ProgressBar::hidden() };
    let mut total = 0.0f64;
    for start in (0..n).step_by(SCORE_CHUNK) {
        let end = (start + SCORE_CHUNK).min(n);
        let batch: Vec<Example<'_>> = (start..end)
            .map(|i| Example { levels: images.image(i), label: images.label(i) })
            .collect();
        total += engine.nll(params, &batch)?.iter().sum::<f64>();
        progress.inc((end - start) as u64);
    }
    progress.finish_and_clear();
    let nats = total / n as f64;
    Ok(Score {
        nats_per_image: nats,
        bits_per_dim: nats / (arch.pixels() as f64 * std::f64::consts::LN_2),
        images: n,
    })
}
