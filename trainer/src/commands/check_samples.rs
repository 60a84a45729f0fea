//! `trainer check-samples`: do class-conditional samples look like their
//! class? A digit classifier trained on the data's training split labels N
//! samples per class; the share it labels as the class they were drawn for
//! is printed beside its accuracy on real held-out images (the test split;
//! the validation split of a PNG folder, which has no test split).

use anyhow::{ensure, Context};
use pixelcnn_runtime::{
    rng, sampler, Incremental, PixelExecutor, PlainIncremental, Variant, Weights,
};
use serde_json::json;

use crate::checkpoint::Checkpoint;
use crate::cli::CheckSamplesArgs;
use crate::data::{self, DatasetKind, Split};
use crate::digits::Classifier;
use crate::plot::save_grid;

/// Samples per class drawn in `--grid`.
const GRID_COLUMNS: usize = 10;

/// Below this many training images, the report says the classifier's
/// judgement is rough.
const FEW_TRAINING_IMAGES: usize = 1000;

/// Seed of the classifier: fixed, so two runs judge with the same classifier.
const CLASSIFIER_SEED: u64 = 0xd161_7501;

pub fn run(args: &CheckSamplesArgs) -> anyhow::Result<()> {
    if let Some(grid) = &args.grid {
        crate::output::check(grid, "png", &[])?;
    }
    let ckpt = Checkpoint::load(&args.run)?;
    let arch = ckpt.arch;
    ensure!(
        arch.classes > 0,
        "{} is not class-conditional: there is no class to check",
        args.run.display()
    );
    ensure!(args.per_class > 0, "--per-class must be at least 1");
    let kind = ckpt.settings.dataset;
    let train = data::load(&args.data, kind, Split::Train, 256)?;
    // PNG folders have no test split; their held-out images are `valid`.
    let held_out = if kind == DatasetKind::PngDir { Split::Valid } else { Split::Test };
    let test = data::load(&args.data, kind, held_out, arch.levels)?;
    test.check_fits(&arch)?;
    eprintln!("training the digit classifier on {} images", train.len());
    let classifier = Classifier::train(&train, args.classifier_epochs, CLASSIFIER_SEED)?;
    let real = classifier.accuracy(&test);

    eprintln!("drawing {} samples per class", args.per_class);
    let (params, which) = ckpt.inference_params(args.raw_weights);
    eprintln!("sampling with {which}");
    let weights = Weights::new(arch, params).context("the checkpoint's parameters")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(arch.classes);
    let classes: Vec<usize> = (0..arch.classes).collect();
    let per_thread = classes.len().div_ceil(threads);
    let bar = crate::progress::bar((arch.classes * args.per_class) as u64, "sampling");
    let samples: Vec<(usize, Vec<Vec<u8>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = classes
            .chunks(per_thread)
            .map(|chunk| {
                let (weights, bar) = (&weights, &bar);
                s.spawn(move || -> anyhow::Result<Vec<(usize, Vec<Vec<u8>>)>> {
                    let mut state = vec![0.0f32; arch.executor_state_len()];
                    // Either network: the plain baseline is checked the same way.
                    let mut inc: Box<dyn PixelExecutor + '_> = match arch.variant {
                        Variant::Plain => {
                            Box::new(PlainIncremental::new(weights, &mut state, Some(chunk[0]))?)
                        }
                        Variant::Gated => {
                            Box::new(Incremental::new(weights, &mut state, Some(chunk[0]))?)
                        }
                    };
                    let mut out = Vec::new();
                    for &class in chunk {
                        let mut images = Vec::new();
                        for i in 0..args.per_class {
                            let mut image = vec![0u8; arch.pixels()];
                            let seed = args
                                .seed
                                .wrapping_mul(1_000_003)
                                .wrapping_add((class * args.per_class + i) as u64);
                            sampler::generate(
                                &mut *inc,
                                Some(class),
                                1.0,
                                &mut rng::from_seed(seed),
                                &mut image,
                            )?;
                            images.push(image);
                            bar.inc(1);
                        }
                        out.push((class, images));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sampling thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?
    .into_iter()
    .flatten()
    .collect();
    bar.finish_and_clear();

    let mut shares = Vec::new();
    let mut confusion = vec![vec![0usize; arch.classes]; arch.classes];
    for (class, images) in &samples {
        for p in classifier.predict(images, arch.levels) {
            confusion[*class][p] += 1;
        }
        shares.push(confusion[*class][*class] as f64 / images.len() as f64);
    }
    let overall = shares.iter().sum::<f64>() / shares.len() as f64;
    let names = &ckpt.settings.class_names;
    let describe = |c: usize| match names.get(c) {
        Some(name) => format!("{c} ({name})"),
        None => c.to_string(),
    };
    if let Some(path) = &args.grid {
        let rows: Vec<Vec<Vec<u8>>> = samples
            .iter()
            .map(|(_, images)| images.iter().take(GRID_COLUMNS).cloned().collect())
            .collect();
        save_grid(path, &rows, arch.height, arch.width, arch.levels, 2)?;
    }
    if args.json {
        say!(
            "{}",
            json!({"samples_recognised": overall, "per_class": shares, "confusion": confusion, "per_class_samples": args.per_class,
                   "classifier_test_accuracy": real, "test_images": test.len(),
                   "held_out_split": if held_out == Split::Test { "test" } else { "valid" },
                   "classifier_training_images": train.len(), "class_names": names})
        );
    } else {
        let split = if held_out == Split::Test {
            "test images"
        } else {
            "held-out images (the validation split: a PNG folder has no test split)"
        };
        say!(
            "classifier (trained on {} images) accuracy on {} real {split}: {:.1}%",
            train.len(),
            test.len(),
            100.0 * real
        );
        if train.len() < FEW_TRAINING_IMAGES {
            say!(
                "note: a classifier trained on {} images judges roughly; its accuracy on real \
                 images above is the yardstick for the shares below",
                train.len()
            );
        }
        for (class, share) in shares.iter().enumerate() {
            let (other, count) = confusion[class]
                .iter()
                .enumerate()
                .filter(|&(c, _)| c != class)
                .max_by_key(|&(_, n)| *n)
                .map_or((class, 0), |(c, &n)| (c, n));
            say!(
                "class {}: {:.0}% of {} samples recognised; most often taken for {} ({count})",
                describe(class),
                100.0 * share,
                args.per_class,
                describe(other)
            );
        }
        say!("all classes: {:.1}% of samples recognised as their class", 100.0 * overall);
    }
    Ok(())
}
