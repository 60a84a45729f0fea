//! `pixelcnn eval`: negative log-likelihood of a dataset split.
//!
//! Output contract (`--json`), relied on by scripts and CI:
//! `{"nats_per_image": …, "bits_per_dim": …, "images": …, "precision": …,
//! "kernel": …}`.

use std::time::Instant;

use pixelcnn_runtime::kernels::{FloatKernel, Int8Kernel};
use pixelcnn_runtime::{sampler, Precision};

use crate::cli::EvalArgs;
use crate::{images, model_file};

pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let file = model_file::load(&args.model)?;
    let precision = file.precision()?;
    if let Some(name) = &args.kernel {
        super::kernel_choice::prefer(name, precision)?;
    }
    let arch = file.geometry()?;
    let class = args.data.class.as_deref().map(|c| file.class(c, arch.classes)).transpose()?;
    let set = images::load(&args.data, &arch, class)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, set.len());
    let bar = crate::progress::bar(set.len() as u64, "scoring images");
    let start = Instant::now();
    let class_of = |i: usize| set.label(i).filter(|_| arch.classes > 0);
    // A conditional model on unlabelled images: each image is scored under
    // the class that gives it the highest likelihood.
    let best_class = arch.classes > 0 && set.labels.is_none();
    if best_class && !args.json {
        eprintln!("note: the images have no labels; each is scored under its most likely class (or give --class N)");
    }
    // Each thread scores every `threads`-th image with its own executor.
    let total: anyhow::Result<f64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (file, set, bar) = (&file, &set, bar.clone());
                scope.spawn(move || -> anyhow::Result<f64> {
                    let first = class_of(t).or(best_class.then_some(0));
                    file.with_executor(first, |exec| {
                        let mut sum = 0.0;
                        for i in (t..set.len()).step_by(threads) {
                            let ll = if best_class {
                                let mut best = f64::NEG_INFINITY;
                                for c in 0..arch.classes {
                                    best = best.max(sampler::log_likelihood(
                                        exec,
                                        Some(c),
                                        set.image(i),
                                    )?);
                                }
                                best
                            } else {
                                sampler::log_likelihood(exec, class_of(i), set.image(i))?
                            };
                            sum -= ll;
                            bar.inc(1);
                        }
                        Ok(sum)
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("scoring thread panicked")).sum()
    });
    bar.finish_and_clear();
    let nats = total? / set.len() as f64;
    let bits_per_dim = nats / (arch.pixels() as f64 * std::f64::consts::LN_2);
    if args.json {
        say!(
            "{}",
            serde_json::json!({
                "nats_per_image": nats,
                "bits_per_dim": bits_per_dim,
                "images": set.len(),
                "precision": precision.name(),
                "kernel": match precision {
                    Precision::Int8 => Int8Kernel::best().name(),
                    _ => FloatKernel::best().name(),
                },
                "best_class": best_class,
            })
        )?;
    } else {
        say!(
            "{}: {nats:.4} nats/image, {bits_per_dim:.5} bits/dim ({}, {} from {}, {:.1} s)",
            crate::text::count(set.len(), "image"),
            precision,
            file.origin,
            file.path.display(),
            start.elapsed().as_secs_f64()
        )?;
    }
    Ok(())
}
