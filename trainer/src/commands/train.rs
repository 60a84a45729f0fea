//! `trainer train`: Adam with warm-up and cosine decay, per-tensor gradient
//! clipping, validation every epoch, checkpoints that `--resume` continues.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, ensure, Context};
use embedded_graphics::pixelcolor::Rgb888;
use indicatif::{ProgressBar, ProgressStyle};
use pixelcnn_runtime::{rng, Arch, Variant};
use rand_core::RngCore;
use serde_json::json;

use crate::backend::{self, Backend};
use crate::checkpoint::{self, Checkpoint, Cycle, Ema, OptimizerState, Progress, Settings};
use crate::cli::TrainArgs;
use crate::commands::eval::score;
use crate::data::{self, DatasetKind, Images, Split};
use crate::engine::Example;
use crate::init::initial_params;
use crate::plot::{save_chart, Series};
use crate::samples::save_sample_grid;

/// Steps of linear learning-rate warm-up (at most 5% of a planned run).
const WARMUP_STEPS: usize = 200;
/// The learning rate decays to this fraction of the peak.
const FINAL_LR_FRACTION: f64 = 0.05;
/// Steps between training-loss records in metrics.jsonl.
const LOG_EVERY: usize = 25;
/// Steps between progress lines on stderr when it is not a terminal (the
/// progress bar shows only on terminals).
const PROGRESS_EVERY: usize = 100;
/// Per-epoch sample grids kept in a run folder (the latest ones).
const KEEP_SAMPLE_GRIDS: usize = 5;
/// Why a session stopped after Ctrl-C.
const INTERRUPTED: &str = "interrupted";
/// Decay of the weights' moving average in a new run (per step), as
/// PixelCNN++ used: an average over roughly the last 2,000 steps.
const DEFAULT_EMA: f64 = 0.9995;

pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let threads = match args.threads {
        Some(0) => bail!("--threads must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    // burn's flex backend runs on rayon's global pool, sized from this
    // variable at first use.
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    check_options(args)?;
    let ckpt = open_run(args)?;
    let arch = ckpt.arch;
    let settings = ckpt.settings.clone();
    let data = TrainingData::load(args, &settings, &arch)?;
    // Only now: a run refused for its options or data leaves no folder.
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    if !args.resume {
        // A new run starts its log afresh: what is there came from a run
        // that died before its first checkpoint (else it would be refused
        // above), and would mix into this run's curves.
        let metrics = args.out.join("metrics.jsonl");
        if metrics.exists() {
            fs::remove_file(&metrics)
                .with_context(|| format!("cannot remove {}", metrics.display()))?;
            say!(
                "note: removed {}, left by an earlier run that saved no checkpoint",
                metrics.display()
            );
        }
    }
    announce(&arch, &settings, &data);
    if let Some(decay) = settings.ema {
        say!("keeping a moving average of the weights, decay {decay} per step");
    }
    let stop = ctrl_c_flag();
    let (mut backend, note) =
        backend::create(args.backend, arch, ckpt.params, ckpt.optimizer, settings.clip, threads)?;
    if let Some(note) = note {
        say!("note: {note}");
    }
    let mut progress = ckpt.progress;
    let mut run =
        RunState { backend: backend.as_mut(), threads, ema: ckpt.ema, progress: &mut progress };
    let session = train_loop(args, &arch, &settings, &data, &mut run, &stop)?;
    end_session(args, &arch, &settings, &data, &mut run, &session)
}

/// What a training session changes: the weights and optimizer (in the
/// backend), their moving average, and the run's progress.
struct RunState<'a> {
    backend: &'a mut dyn Backend,
    /// Worker threads (--threads), for validation too.
    threads: usize,
    ema: Option<Ema>,
    progress: &'a mut Progress,
}

impl RunState<'_> {
    /// Writes the checkpoint.
    fn save(&self, out: &Path, arch: &Arch, settings: &Settings) -> anyhow::Result<()> {
        Checkpoint {
            arch: *arch,
            params: self.backend.params(),
            optimizer: self.backend.optimizer()?,
            ema: self.ema.clone(),
            settings: settings.clone(),
            progress: self.progress.clone(),
        }
        .save(out)
    }
}

/// "unconditional", "10 classes", or "2 classes (0 circle, 1 square)".
pub fn describe_classes(classes: usize, names: &[String]) -> String {
    match (classes, names.is_empty()) {
        (0, _) => "unconditional".into(),
        (n, true) => format!("{n} classes"),
        (n, false) => {
            let named: Vec<String> =
                names.iter().enumerate().map(|(i, name)| format!("{i} {name}")).collect();
            format!("{n} classes ({})", named.join(", "))
        }
    }
}

/// The run's first line: network, size, data.
fn announce(arch: &Arch, settings: &Settings, data: &TrainingData) {
    say!(
        "{} PixelCNN, {} parameters, {}x{}, K = {}, {}; {} training and {} validation images{}",
        match arch.variant {
            Variant::Gated => "Gated",
            Variant::Plain => "Plain",
        },
        arch.param_count(),
        arch.height,
        arch.width,
        arch.levels,
        describe_classes(arch.classes, &settings.class_names),
        data.train.len(),
        data.valid.len(),
        if settings.dynamic_binarization { ", binarized anew every epoch" } else { "" }
    );
}

/// A flag that Ctrl-C raises; the training loop stops at the next step.
fn ctrl_c_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // A second Ctrl-C while the checkpoint is written is ignored.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    stop
}

/// After the loop: validate if the last step was not, save the checkpoint,
/// report; an interrupted session saves at once and ends with an error.
fn end_session(
    args: &TrainArgs,
    arch: &Arch,
    settings: &Settings,
    data: &TrainingData,
    run: &mut RunState<'_>,
    session: &Session,
) -> anyhow::Result<()> {
    if session.reason == INTERRUPTED {
        // Stop promptly: no validation pass, just the checkpoint.
        run.save(&args.out, arch, settings)?;
        let progress = &run.progress;
        bail!(
            "interrupted at step {} (epoch {} + {} steps); the checkpoint is saved: continue with \
             `trainer train --data {} --out {} --resume`",
            progress.step,
            progress.epoch,
            progress.step_in_epoch,
            args.data.display(),
            args.out.display()
        );
    }
    if session.validated_at != Some(run.progress.step) && session.steps > 0 {
        let steps_per_epoch = data.train.len() / settings.batch;
        validate_and_draw(args, arch, run, &data.valid, settings, steps_per_epoch)?;
    }
    run.save(&args.out, arch, settings)?;
    let progress = &run.progress;
    say!(
        "stopped ({}) after {} steps this session, {:.1} images/s; run total {} epochs + {} steps, {:.1} min; checkpoint in {}",
        session.reason,
        session.steps,
        session.images_per_s,
        progress.epoch,
        progress.step_in_epoch,
        progress.seconds / 60.0,
        args.out.display()
    );
    Ok(())
}

/// Refuses options that would fail only after work was done.
fn check_options(args: &TrainArgs) -> anyhow::Result<()> {
    #[cfg(not(feature = "burn"))]
    ensure!(args.backend != backend::BackendKind::Burn, "{}", backend::BURN_MISSING);
    ensure!(args.valid_images != Some(0), "--valid-images must be at least 1");
    if let Some(d) = args.ema {
        ensure!(
            (0.0..1.0).contains(&d),
            "--ema must be a decay in [0, 1) (0 turns the average off), got {d}"
        );
    }
    if let Some(lr) = args.lr {
        ensure!(lr > 0.0 && lr.is_finite(), "--lr must be a positive number, got {lr}");
    }
    ensure!(args.batch != Some(0), "--batch must be at least 1");
    ensure!(
        !args.restart_schedule || args.epochs.is_some() || args.minutes.is_some(),
        "--restart-schedule needs the new cycle's length: --epochs N or --minutes M"
    );
    ensure!(args.epochs != Some(0), "--epochs must be at least 1");
    if let Some(m) = args.minutes {
        ensure!(m.is_finite() && m > 0.0, "--minutes must be a positive number, got {m}");
    }
    ensure!(
        args.checkpoint_minutes.is_finite() && args.checkpoint_minutes > 0.0,
        "--checkpoint-minutes must be a positive number, got {}",
        args.checkpoint_minutes
    );
    Ok(())
}

/// The checkpoint to continue: the saved one with `--resume`, else a new run.
fn open_run(args: &TrainArgs) -> anyhow::Result<Checkpoint> {
    if args.resume {
        let mut ckpt = Checkpoint::load(&args.out).context("cannot resume")?;
        if let Some((flag, given, saved)) = args.net.conflict(&ckpt.arch) {
            bail!(
                "--{flag} {given} conflicts with the run's {flag} {saved}: a resumed run keeps its \
                 architecture (drop the flag, or start a new run in another --out)"
            );
        }
        check_resume_flags(args, &ckpt)?;
        if args.restart_schedule {
            // A warm restart: a new warm-up and cosine decay from here.
            ckpt.settings.cycle =
                Cycle { step: ckpt.progress.step, seconds: ckpt.progress.seconds };
            if let Some(lr) = args.lr {
                ckpt.settings.lr = lr;
            }
        }
        if args.epochs.is_some() || args.minutes.is_some() {
            // A finished run can be extended: the schedule spans the new length.
            ckpt.settings.epochs = args.epochs;
            ckpt.settings.minutes = args.minutes;
        }
        match args.ema {
            Some(0.0) => {
                ckpt.settings.ema = None;
                ckpt.ema = None;
            }
            Some(d) => {
                ckpt.settings.ema = Some(d);
                if ckpt.ema.is_none() {
                    ckpt.ema = Some(Ema::new(&ckpt.params));
                }
            }
            None => {}
        }
        truncate_metrics(&args.out, ckpt.progress.step)?;
        say!(
            "resuming {}: epoch {}, step {}, {:.1} min trained",
            args.out.display(),
            ckpt.progress.epoch,
            ckpt.progress.step,
            ckpt.progress.seconds / 60.0
        );
        Ok(ckpt)
    } else {
        if checkpoint::path(&args.out).exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it, or choose another --out",
                args.out.display()
            );
        }
        new_run(args)
    }
}

/// Refuses resume flags that would change what the run is, or that a
/// resumed run could not honour, instead of ignoring them.
fn check_resume_flags(args: &TrainArgs, ckpt: &Checkpoint) -> anyhow::Result<()> {
    let (arch, settings) = (&ckpt.arch, &ckpt.settings);
    if let Some(levels) = args.levels.filter(|&l| l != arch.levels) {
        bail!(
            "--levels {levels} conflicts with the run's levels {}: a resumed run keeps its \
             architecture (drop the flag, or start a new run in another --out)",
            arch.levels
        );
    }
    ensure!(
        !args.conditional || arch.classes > 0,
        "--conditional conflicts with the run, which is unconditional: a resumed run keeps its \
         architecture (drop the flag, or start a new run in another --out)"
    );
    ensure!(
        !args.dynamic_binarization || settings.dynamic_binarization,
        "--dynamic-binarization conflicts with the run, which binarizes its training images \
         once: start a new run in another --out to change it"
    );
    if let Some(batch) = args.batch.filter(|&b| b != settings.batch) {
        bail!(
            "--batch {batch} conflicts with the run's batch {}: a resumed run keeps its batch \
             (its epochs' order and its optimizer state depend on it)",
            settings.batch
        );
    }
    if let Some(lr) = args.lr.filter(|&lr| lr != settings.lr) {
        ensure!(
            args.restart_schedule,
            "--lr {lr} would change the peak of the schedule in progress (the run's is {}): \
             add --restart-schedule with --epochs or --minutes to start a new cycle at that peak",
            settings.lr
        );
    }
    Ok(())
}

/// The images a run trains and validates on.
struct TrainingData {
    /// Training images: levels, or grey intensities with dynamic binarization.
    train: Images,
    valid: Images,
    dynamic: bool,
    seed: u64,
}

impl TrainingData {
    fn load(args: &TrainArgs, settings: &Settings, arch: &Arch) -> anyhow::Result<Self> {
        let dynamic = settings.dynamic_binarization;
        let train_levels = if dynamic { 256 } else { arch.levels };
        // A resumed run reads its data as the kind it was trained on: when
        // that fails, say so first (the folder given may be another kind).
        let trained_on = || {
            let kind = match settings.dataset {
                DatasetKind::Mnist => "MNIST IDX files".to_string(),
                DatasetKind::FashionMnist => "Fashion-MNIST IDX files".to_string(),
                DatasetKind::PngDir if settings.class_names.is_empty() => "a PNG folder".into(),
                DatasetKind::PngDir => {
                    format!("a PNG folder with class folders {}", settings.class_names.join(", "))
                }
            };
            format!(
                "the run in {} was trained on {kind}: give that data as --data",
                args.out.display()
            )
        };
        let load = |split, levels| {
            let images = data::load(&args.data, settings.dataset, split, levels);
            if args.resume {
                images.with_context(trained_on)
            } else {
                images
            }
        };
        let train = load(Split::Train, train_levels)?;
        let valid = load(Split::Valid, arch.levels)?;
        if args.resume && !settings.class_names.is_empty() {
            ensure!(
                train.class_names == settings.class_names,
                "the run in {} was trained on the classes {}, and {} has {}: give the run's data \
                 as --data",
                args.out.display(),
                settings.class_names.join(", "),
                args.data.display(),
                if train.class_names.is_empty() {
                    "no class folders".to_string()
                } else {
                    train.class_names.join(", ")
                }
            );
        }
        valid.check_fits(arch)?;
        train.check_fits(arch)?;
        ensure!(
            train.len() >= settings.batch,
            "{} training images, fewer than one batch of {}",
            train.len(),
            settings.batch
        );
        Ok(TrainingData { train, valid, dynamic, seed: settings.seed })
    }

    /// Training image `i` as levels: binarized for `epoch` under dynamic
    /// binarization (a fixed draw per seed, epoch and image, so resumed
    /// runs see the same pixels).
    fn levels(&self, i: usize, epoch: usize) -> std::borrow::Cow<'_, [u8]> {
        if self.dynamic {
            let seed = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (epoch as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9)
                ^ (i as u64).wrapping_mul(0x94d0_49bb_1331_11eb);
            data::to_levels(self.train.image(i), 2, seed).into()
        } else {
            self.train.image(i).into()
        }
    }
}

/// What one session of the training loop did.
struct Session {
    reason: &'static str,
    steps: usize,
    images_per_s: f64,
    validated_at: Option<usize>,
}

fn train_loop(
    args: &TrainArgs,
    arch: &Arch,
    settings: &Settings,
    data: &TrainingData,
    run: &mut RunState<'_>,
    stop: &AtomicBool,
) -> anyhow::Result<Session> {
    let steps_per_epoch = data.train.len() / settings.batch;
    // The current cycle's length in steps, and where it ends.
    let total_steps = settings.epochs.map(|e| e * steps_per_epoch);
    let cycle = settings.cycle;
    let seconds_before = run.progress.seconds;
    let session_start = Instant::now();
    let mut last_checkpoint = Instant::now();
    let (mut steps, mut images) = (0usize, 0u64);
    let mut window = (0.0f64, 0usize);
    let mut validated_at = None;
    let bar = epoch_bar(steps_per_epoch, run.progress);
    let reason = loop {
        let progress = &mut *run.progress;
        progress.seconds = seconds_before + session_start.elapsed().as_secs_f64();
        if stop.load(Ordering::SeqCst) {
            break INTERRUPTED;
        }
        if total_steps.is_some_and(|t| progress.step >= cycle.step + t) {
            break "planned epochs done";
        }
        if settings.minutes.is_some_and(|m| progress.seconds >= cycle.seconds + m * 60.0) {
            break "planned minutes done";
        }
        if args.max_steps.is_some_and(|m| steps >= m) {
            break "--max-steps reached";
        }
        let order = epoch_order(data.train.len(), settings.seed, progress.epoch);
        let start = progress.step_in_epoch * settings.batch;
        let indices = &order[start..start + settings.batch];
        let levels: Vec<_> = indices.iter().map(|&i| data.levels(i, progress.epoch)).collect();
        let batch: Vec<Example<'_>> = indices
            .iter()
            .zip(&levels)
            .map(|(&i, l)| Example { levels: l, label: data.train.label(i) })
            .collect();
        let lr = learning_rate(
            settings,
            progress.step - cycle.step,
            total_steps,
            progress.seconds - cycle.seconds,
        );
        let value = run
            .backend
            .step(&batch, lr)
            .with_context(|| format!("step {} failed", progress.step))?;
        if let (Some(ema), Some(decay)) = (&mut run.ema, settings.ema) {
            ema.update(&run.backend.params(), decay);
        }

        progress.step += 1;
        progress.step_in_epoch += 1;
        progress.images += settings.batch as u64;
        steps += 1;
        images += settings.batch as u64;
        window = (window.0 + value, window.1 + 1);
        let rate = images as f64 / session_start.elapsed().as_secs_f64();
        bar.set_position(progress.step_in_epoch as u64);
        bar.set_message(format!("{value:6.2} nats/img  lr {lr:.1e}  {rate:5.1} img/s"));
        if bar.is_hidden() && progress.step.is_multiple_of(PROGRESS_EVERY) {
            eprintln!(
                "epoch {} step {}/{steps_per_epoch}: {value:.2} nats/image, lr {lr:.1e}, {rate:.1} images/s",
                progress.epoch + 1,
                progress.step_in_epoch
            );
        }
        if progress.step.is_multiple_of(LOG_EVERY) {
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
            validate_and_draw(args, arch, run, &data.valid, settings, steps_per_epoch)?;
            run.save(&args.out, arch, settings)?;
            validated_at = Some(run.progress.step);
            last_checkpoint = Instant::now();
            bar.reset();
            bar.set_prefix(format!("epoch {}", run.progress.epoch + 1));
        } else if last_checkpoint.elapsed().as_secs_f64() >= args.checkpoint_minutes * 60.0 {
            run.save(&args.out, arch, settings)?;
            last_checkpoint = Instant::now();
        }
    };
    bar.finish_and_clear();
    run.progress.seconds = seconds_before + session_start.elapsed().as_secs_f64();
    let images_per_s = images as f64 / session_start.elapsed().as_secs_f64().max(1e-9);
    Ok(Session { reason, steps, images_per_s, validated_at })
}

fn new_run(args: &TrainArgs) -> anyhow::Result<Checkpoint> {
    ensure!(
        args.epochs.is_some() || args.minutes.is_some(),
        "say how long to train: --epochs N or --minutes M"
    );
    let levels = args.levels.unwrap_or(2);
    ensure!(args.clip > 0.0 && args.clip.is_finite(), "--clip must be a positive number");
    ensure!(
        !args.dynamic_binarization || levels == 2,
        "--dynamic-binarization needs --levels 2 (it draws binary pixels from grey levels)"
    );
    let dataset = match args.dataset {
        Some(kind) => kind,
        None => data::detect(&args.data)?,
    };
    let probe = data::load(&args.data, dataset, Split::Valid, levels)?;
    let classes = if args.conditional {
        ensure!(probe.labels.is_some() && probe.classes > 0, "--conditional needs labelled data");
        probe.classes
    } else {
        0
    };
    let arch = args.net.arch(probe.height, probe.width, levels, classes);
    arch.validate().context("invalid network")?;
    let params = initial_params(&arch, args.seed);
    let ema = Some(args.ema.unwrap_or(DEFAULT_EMA)).filter(|&d| d > 0.0);
    Ok(Checkpoint {
        arch,
        ema: ema.map(|_| Ema::new(&params)),
        params,
        optimizer: OptimizerState::Fresh,
        settings: Settings {
            dataset,
            batch: args.batch.unwrap_or(32),
            lr: args.lr.unwrap_or(2e-3),
            clip: args.clip,
            epochs: args.epochs,
            minutes: args.minutes,
            seed: args.seed,
            dynamic_binarization: args.dynamic_binarization,
            ema,
            cycle: Cycle::default(),
            class_names: if classes > 0 { probe.class_names.clone() } else { Vec::new() },
        },
        progress: Progress::default(),
    })
}

/// Warm-up, then cosine decay from the peak to `FINAL_LR_FRACTION` of it,
/// over the planned steps or minutes; `step` and `seconds` count from the
/// start of the current cycle.
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

fn validate_and_draw(
    args: &TrainArgs,
    arch: &Arch,
    run: &mut RunState<'_>,
    valid: &Images,
    settings: &Settings,
    steps_per_epoch: usize,
) -> anyhow::Result<()> {
    let trained = run.backend.params();
    let threads = run.threads;
    let progress = &mut *run.progress;
    let s = score(arch, &trained, valid, args.valid_images, threads, true)?;
    append_metrics(
        &args.out,
        json!({"kind": "valid", "step": progress.step, "epoch": progress.epoch,
               "nats_per_image": s.nats_per_image, "bits_per_dim": s.bits_per_dim,
               "images": s.images, "seconds": progress.seconds}),
    )?;
    // The moving average is what eval and export use: it sets the best.
    let averaged = match &run.ema {
        Some(ema) => {
            let a = score(arch, &ema.params, valid, args.valid_images, threads, true)?;
            append_metrics(
                &args.out,
                json!({"kind": "valid_ema", "step": progress.step, "epoch": progress.epoch,
                       "nats_per_image": a.nats_per_image, "bits_per_dim": a.bits_per_dim,
                       "images": a.images, "seconds": progress.seconds}),
            )?;
            Some(a)
        }
        None => None,
    };
    let best = averaged.unwrap_or(s).nats_per_image;
    progress.best_valid = Some(progress.best_valid.map_or(best, |b| b.min(best)));
    // The moment in the words of the step lines: "epoch 3" is the third
    // epoch, 1-based; a mid-epoch stop names its step within the epoch.
    let moment = if progress.step_in_epoch == 0 {
        format!("after epoch {}", progress.epoch)
    } else {
        format!("epoch {} step {}/{steps_per_epoch}", progress.epoch + 1, progress.step_in_epoch)
    };
    say!(
        "{moment} (step {} in all): validation {:.3} nats/image ({:.4} bits/dim, {} images){}",
        progress.step,
        s.nats_per_image,
        s.bits_per_dim,
        s.images,
        averaged.map_or_else(String::new, |a| format!(
            "; moving average {:.3} nats/image ({:.4} bits/dim)",
            a.nats_per_image, a.bits_per_dim
        ))
    );
    let params: &[f32] = run.ema.as_ref().map_or(&trained, |e| &e.params);
    // Sampling a plain PixelCNN takes a full forward pass per pixel (it has
    // no incremental executor): minutes per grid, so only gated runs draw one.
    // A grid after a whole epoch is kept as samples-epoch-NNN.png (the last
    // few); one drawn mid-epoch (a run stopped early) only as the latest.
    if arch.variant == Variant::Gated && progress.step_in_epoch != 0 {
        save_sample_grid(arch, params, &args.out.join("samples-latest.png"), 8, settings.seed)?;
    } else if arch.variant == Variant::Gated {
        let grid = args.out.join(format!("samples-epoch-{:03}.png", progress.epoch));
        if let Some(old) = progress.epoch.checked_sub(KEEP_SAMPLE_GRIDS) {
            let _ = fs::remove_file(args.out.join(format!("samples-epoch-{old:03}.png")));
        }
        save_sample_grid(arch, params, &grid, 8, settings.seed)?;
        fs::copy(&grid, args.out.join("samples-latest.png"))?;
    }
    plot_curves(&args.out)
}

/// Drops the records of steps after `step` from metrics.jsonl: a run killed
/// after its last checkpoint repeats those steps when it resumes.
fn truncate_metrics(out: &Path, step: usize) -> anyhow::Result<()> {
    let path = out.join("metrics.jsonl");
    let Ok(text) = fs::read_to_string(&path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_none_or(|s| s as usize <= step)
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    if kept.len() != text.len() {
        fs::write(&path, kept).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
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
    let mut valid_ema = Vec::new();
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
            Some("valid_ema") => valid_ema.push((x, nats)),
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
            Series {
                label: "validation, EMA weights",
                color: Rgb888::new(44, 160, 44),
                points: &valid_ema,
            },
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey_data(dynamic: bool) -> TrainingData {
        let grey: Vec<u8> = (0..2 * 400).map(|i| (i % 256) as u8).collect();
        let images = |levels| Images {
            height: 20,
            width: 20,
            levels,
            classes: 0,
            pixels: if levels == 2 { data::to_levels(&grey, 2, 1) } else { grey.clone() },
            labels: None,
            class_names: Vec::new(),
        };
        TrainingData { train: images(256), valid: images(2), dynamic, seed: 5 }
    }

    #[test]
    fn dynamic_binarization_draws_new_pixels_every_epoch_and_the_same_on_resume() {
        let d = grey_data(true);
        let (a, b) = (d.levels(1, 0), d.levels(1, 1));
        assert!(a.iter().all(|&v| v <= 1) && b.iter().all(|&v| v <= 1));
        assert_ne!(a, b, "a new epoch draws new pixels");
        assert_eq!(a, d.levels(1, 0), "the same epoch draws the same pixels");
        assert_ne!(d.levels(0, 0), d.levels(1, 0));
        // Bernoulli(grey / 255): the mean over many epochs follows the grey level.
        let mut on = vec![0u32; 400];
        for epoch in 0..400 {
            for (count, &v) in on.iter_mut().zip(d.levels(0, epoch).iter()) {
                *count += u32::from(v);
            }
        }
        for (i, &count) in on.iter().enumerate().step_by(17) {
            let p = (i % 256) as f64 / 255.0;
            let mean = f64::from(count) / 400.0;
            assert!((mean - p).abs() < 0.1, "pixel {i}: {mean} vs {p}");
        }
    }

    #[test]
    fn static_binarization_keeps_the_training_levels() {
        let d = grey_data(false);
        assert_eq!(&*d.levels(1, 0), d.train.image(1));
        assert_eq!(d.levels(1, 0), d.levels(1, 7));
    }
}
