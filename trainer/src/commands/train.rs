//! `trainer train`: Adam with warm-up and cosine decay, per-tensor gradient
//! clipping, validation every epoch, checkpoints that `--resume` continues.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use burn::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Bytes, Device};
use embedded_graphics::pixelcolor::Rgb888;
use indicatif::{ProgressBar, ProgressStyle};
use pixelcnn_runtime::{rng, Arch, Variant};
use rand_core::RngCore;
use serde_json::json;

use crate::checkpoint::{self, Checkpoint, Progress, Settings};
use crate::cli::{ArchKind, TrainArgs};
use crate::commands::eval::score;
use crate::data::{self, Images, Split};
use crate::model::{forward, initial_params, nats_per_image, Layout, Net};
use crate::plot::{save_chart, Series};
use crate::samples::save_sample_grid;

/// Steps of linear learning-rate warm-up (at most 5% of a planned run).
const WARMUP_STEPS: usize = 200;
/// The learning rate decays to this fraction of the peak.
const FINAL_LR_FRACTION: f64 = 0.05;
/// Steps between training-loss records in metrics.jsonl.
const LOG_EVERY: usize = 25;

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        ensure!(threads > 0, "--threads must be at least 1");
        // flex runs on rayon's global pool, sized from this variable at first use.
        std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut ckpt = if args.resume {
        let ckpt = Checkpoint::load(&args.out).context("cannot resume")?;
        println!(
            "resuming {}: epoch {}, step {}, {:.1} min trained",
            args.out.display(),
            ckpt.progress.epoch,
            ckpt.progress.step,
            ckpt.progress.seconds / 60.0
        );
        ckpt
    } else {
        if checkpoint::path(&args.out).exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it, or choose another --out",
                args.out.display()
            );
        }
        new_run(args)?
    };
    let arch = ckpt.arch;
    let settings = ckpt.settings.clone();
    let train = data::load(&args.data, settings.dataset, Split::Train, arch.levels)?;
    let valid = data::load(&args.data, settings.dataset, Split::Valid, arch.levels)?;
    train.check_fits(&arch)?;
    ensure!(
        train.len() >= settings.batch,
        "{} training images, fewer than one batch of {}",
        train.len(),
        settings.batch
    );
    println!(
        "{} PixelCNN, {} parameters, {}x{}, K = {}, {} classes; {} training and {} validation images",
        match arch.variant {
            Variant::Gated => "Gated",
            Variant::Plain => "Plain",
        },
        arch.param_count(),
        arch.height,
        arch.width,
        arch.levels,
        arch.classes,
        train.len(),
        valid.len()
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // A second Ctrl-C while the checkpoint is written is ignored.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }

    let device = Device::flex().autodiff();
    let layout = Layout::new(arch);
    let mut net = Net::from_flat(&arch, &ckpt.params, &device);
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_grad_clipping(Some(GradientClippingConfig::Norm(settings.clip)))
        .init();
    if !ckpt.optimizer.is_empty() {
        optim = optim
            .from_bytes(Bytes::from_bytes_vec(std::mem::take(&mut ckpt.optimizer)))
            .map_err(|e| anyhow::anyhow!("cannot restore the optimizer state: {e:?}"))?;
    }

    let steps_per_epoch = train.len() / settings.batch;
    let total_steps = settings.epochs.map(|e| e * steps_per_epoch);
    let session_start = Instant::now();
    let seconds_before = ckpt.progress.seconds;
    let mut last_checkpoint = Instant::now();
    let mut session_steps = 0usize;
    let mut session_images = 0u64;
    let mut window = (0.0f64, 0usize);
    let mut progress = ckpt.progress.clone();
    let mut validated_at = None;
    let bar = epoch_bar(steps_per_epoch, &progress);

    let reason = loop {
        let seconds = seconds_before + session_start.elapsed().as_secs_f64();
        progress.seconds = seconds;
        if stop.load(Ordering::SeqCst) {
            break "interrupted";
        }
        if total_steps.is_some_and(|t| progress.step >= t) {
            break "planned epochs done";
        }
        if settings.minutes.is_some_and(|m| seconds >= m * 60.0) {
            break "planned minutes done";
        }
        if args.max_steps.is_some_and(|m| session_steps >= m) {
            break "--max-steps reached";
        }
        let order = epoch_order(train.len(), settings.seed, progress.epoch);
        let start = progress.step_in_epoch * settings.batch;
        let indices = &order[start..start + settings.batch];
        let imgs: Vec<&[u8]> = indices.iter().map(|&i| train.image(i)).collect();
        let labels = (arch.classes > 0)
            .then(|| indices.iter().map(|&i| train.label(i).unwrap_or(0) as i64).collect());
        let batch = crate::model::Batch::new(&arch, &imgs, labels, &device);
        let logits = forward(&layout, &net, batch.x, batch.labels);
        let loss = nats_per_image(logits, batch.levels);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        ensure!(value.is_finite(), "the loss became {value} at step {}; lower --lr", progress.step);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let lr = learning_rate(&settings, progress.step, total_steps, seconds);
        net = optim.step(lr, net, grads);

        progress.step += 1;
        progress.step_in_epoch += 1;
        progress.images += settings.batch as u64;
        session_steps += 1;
        session_images += settings.batch as u64;
        window = (window.0 + value, window.1 + 1);
        let rate = session_images as f64 / session_start.elapsed().as_secs_f64();
        bar.set_position(progress.step_in_epoch as u64);
        bar.set_message(format!("{value:6.2} nats/img  lr {lr:.1e}  {rate:5.1} img/s"));
        if progress.step % LOG_EVERY == 0 {
            append_metrics(
                &args.out,
                json!({"kind": "train", "step": progress.step, "epoch": progress.epoch,
                       "nats_per_image": window.0 / window.1 as f64, "lr": lr,
                       "images_per_s": rate, "seconds": progress.seconds, "images": progress.images}),
            )?;
            window = (0.0, 0);
        }
        if progress.step_in_epoch == steps_per_epoch {
            bar.finish();
            progress.epoch += 1;
            progress.step_in_epoch = 0;
            end_of_epoch(args, &arch, &net, &valid, &mut progress, &settings, &optim)?;
            validated_at = Some(progress.step);
            last_checkpoint = Instant::now();
            bar.reset();
            bar.set_prefix(format!("epoch {}", progress.epoch + 1));
        } else if last_checkpoint.elapsed().as_secs_f64() >= args.checkpoint_minutes * 60.0 {
            save(&args.out, &arch, &net, &optim, &settings, &progress)?;
            last_checkpoint = Instant::now();
        }
    };
    bar.finish_and_clear();
    progress.seconds = seconds_before + session_start.elapsed().as_secs_f64();
    if validated_at != Some(progress.step) && session_steps > 0 {
        validate_and_draw(args, &arch, &net, &valid, &mut progress, &settings)?;
    }
    save(&args.out, &arch, &net, &optim, &settings, &progress)?;
    let rate = session_images as f64 / session_start.elapsed().as_secs_f64().max(1e-9);
    println!(
        "stopped ({reason}) after {} steps this session, {:.1} images/s; run total {} epochs + {} steps, {:.1} min; checkpoint in {}",
        session_steps,
        rate,
        progress.epoch,
        progress.step_in_epoch,
        progress.seconds / 60.0,
        args.out.display()
    );
    Ok(())
}

fn new_run(args: &TrainArgs) -> anyhow::Result<Checkpoint> {
    ensure!(
        args.epochs.is_some() || args.minutes.is_some(),
        "say how long to train: --epochs N or --minutes M"
    );
    ensure!(args.batch > 0, "--batch must be at least 1");
    ensure!(args.lr > 0.0 && args.lr.is_finite(), "--lr must be a positive number");
    ensure!(args.clip > 0.0 && args.clip.is_finite(), "--clip must be a positive number");
    let probe = data::load(&args.data, args.dataset, Split::Valid, args.levels)?;
    let classes = if args.conditional {
        ensure!(probe.labels.is_some() && probe.classes > 0, "--conditional needs labelled data");
        probe.classes
    } else {
        0
    };
    let arch = Arch {
        variant: match args.arch {
            ArchKind::Gated => Variant::Gated,
            ArchKind::Pixelcnn => Variant::Plain,
        },
        height: probe.height,
        width: probe.width,
        levels: args.levels,
        classes,
        channels: args.channels,
        blocks: args.blocks,
        first_kernel: args.first_kernel,
        kernel: args.kernel,
        head: args.head.unwrap_or(args.channels),
    };
    arch.validate().context("invalid network")?;
    Ok(Checkpoint {
        arch,
        params: initial_params(&arch, args.seed),
        optimizer: Vec::new(),
        settings: Settings {
            dataset: args.dataset,
            batch: args.batch,
            lr: args.lr,
            clip: args.clip,
            epochs: args.epochs,
            minutes: args.minutes,
            seed: args.seed,
        },
        progress: Progress::default(),
    })
}

/// Warm-up, then cosine decay from the peak to `FINAL_LR_FRACTION` of it,
/// over the planned steps or minutes.
fn learning_rate(
    settings: &Settings,
    step: usize,
    total_steps: Option<usize>,
    seconds: f64,
) -> f64 {
    let warmup = total_steps.map_or(WARMUP_STEPS, |t| WARMUP_STEPS.min(t / 20).max(1));
    let warm = ((step + 1) as f64 / warmup as f64).min(1.0);
    let done = match (total_steps, settings.minutes) {
        (Some(total), _) => step as f64 / total.max(1) as f64,
        (None, Some(m)) => seconds / (m * 60.0),
        (None, None) => 0.0,
    }
    .clamp(0.0, 1.0);
    let cosine = 0.5 * (1.0 + (std::f64::consts::PI * done).cos());
    settings.lr * warm * (FINAL_LR_FRACTION + (1.0 - FINAL_LR_FRACTION) * cosine)
}

/// The shuffled order of epoch `epoch`: fixed by the seed, so a resumed run
/// continues exactly where it stopped.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut r = rng::from_seed(seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for i in (1..n).rev() {
        let j = ((u64::from(r.next_u32()) * (i as u64 + 1)) >> 32) as usize;
        order.swap(i, j);
    }
    order
}

fn epoch_bar(steps: usize, progress: &Progress) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("epoch {}", progress.epoch + 1));
    bar.set_position(progress.step_in_epoch as u64);
    bar
}

fn end_of_epoch(
    args: &TrainArgs,
    arch: &Arch,
    net: &Net,
    valid: &Images,
    progress: &mut Progress,
    settings: &Settings,
    optim: &burn::optim::ModuleOptimizer,
) -> anyhow::Result<()> {
    validate_and_draw(args, arch, net, valid, progress, settings)?;
    save(&args.out, arch, net, optim, settings, progress)
}

fn validate_and_draw(
    args: &TrainArgs,
    arch: &Arch,
    net: &Net,
    valid: &Images,
    progress: &mut Progress,
    settings: &Settings,
) -> anyhow::Result<()> {
    let params = net.to_flat();
    let s = score(arch, &params, valid, args.valid_images, true)?;
    progress.best_valid =
        Some(progress.best_valid.map_or(s.nats_per_image, |b| b.min(s.nats_per_image)));
    println!(
        "epoch {} step {}: validation {:.3} nats/image ({:.4} bits/dim, {} images)",
        progress.epoch, progress.step, s.nats_per_image, s.bits_per_dim, s.images
    );
    append_metrics(
        &args.out,
        json!({"kind": "valid", "step": progress.step, "epoch": progress.epoch,
               "nats_per_image": s.nats_per_image, "bits_per_dim": s.bits_per_dim,
               "images": s.images, "seconds": progress.seconds}),
    )?;
    // Sampling a plain PixelCNN takes a full forward pass per pixel (it has
    // no incremental executor): minutes per grid, so only gated runs draw one.
    if arch.variant == Variant::Gated {
        let grid = args.out.join(format!("samples-epoch-{:03}.png", progress.epoch));
        save_sample_grid(arch, &params, &grid, 8, settings.seed)?;
        fs::copy(&grid, args.out.join("samples-latest.png"))?;
    }
    plot_curves(&args.out)
}

fn save(
    out: &Path,
    arch: &Arch,
    net: &Net,
    optim: &burn::optim::ModuleOptimizer,
    settings: &Settings,
    progress: &Progress,
) -> anyhow::Result<()> {
    let optimizer =
        optim.into_bytes().map_err(|e| anyhow::anyhow!("cannot serialize the optimizer: {e:?}"))?;
    Checkpoint {
        arch: *arch,
        params: net.to_flat(),
        optimizer: optimizer.to_vec(),
        settings: settings.clone(),
        progress: progress.clone(),
    }
    .save(out)
}

fn append_metrics(out: &Path, record: serde_json::Value) -> anyhow::Result<()> {
    let path = out.join("metrics.jsonl");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(f, "{record}")?;
    Ok(())
}

/// Draws `loss.png` from metrics.jsonl (all sessions of the run).
fn plot_curves(out: &Path) -> anyhow::Result<()> {
    let text = fs::read_to_string(out.join("metrics.jsonl")).unwrap_or_default();
    let mut train = Vec::new();
    let mut valid = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(images), Some(nats)) = (v["images"].as_f64(), v["nats_per_image"].as_f64())
        else {
            continue;
        };
        let x = v["step"].as_f64().unwrap_or(images);
        match v["kind"].as_str() {
            Some("train") => train.push((x, nats)),
            Some("valid") => valid.push((x, nats)),
            _ => {}
        }
    }
    save_chart(
        &out.join("loss.png"),
        "negative log-likelihood, nats per image",
        "training step",
        &[
            Series {
                label: "training (batch mean)",
                color: Rgb888::new(31, 119, 180),
                points: &train,
            },
            Series { label: "validation", color: Rgb888::new(214, 39, 40), points: &valid },
        ],
    )
}
