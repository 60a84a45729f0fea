//! `pixelcnn bench`: per-pixel latency of incremental sampling, and the
//! naive full-pass-per-pixel paths it replaces.
//!
//! `--json` contract: `{"per_pixel_us_p50", "per_pixel_us_p99", "image_ms",
//! "macs_per_pixel", "gmacs", "digits_per_s", "threads": {"threads",
//! "batch", "digits_per_s", "digits_per_s_per_thread"} (with --threads or
//! --batch), "baseline":
//! {"naive_ratio", "tract_ratio"}}` plus more detail.

use std::path::Path;
use std::time::Instant;

use anyhow::ensure;
use pixelcnn_runtime::kernels::{FloatKernel, Int8Kernel};
use pixelcnn_runtime::quant::{lockstep, LockstepI8};
use pixelcnn_runtime::{rng, Arch, Model, PixelExecutor, Precision};

use crate::cli::BenchArgs;
use crate::model_file;

/// The `q`-quantile of sorted values (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(f64::total_cmp);
    v
}

/// Median seconds of `reps` calls of `f`, after one warm-up call.
#[cfg(feature = "onnx")]
fn median_secs(reps: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok(quantile(&sorted(times), 0.5))
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    ensure!(args.images >= 1, "--images must be at least 1");
    let file = model_file::load(&args.model)?;
    let precision = file.precision()?;
    if let Some(name) = &args.kernel {
        super::kernel_choice::prefer(name, precision)?;
    }
    let arch = file.geometry()?;
    let class_of = |i: usize| (arch.classes > 0).then(|| i % arch.classes);
    let timings = file.with_executor(class_of(0), |exec| time_sampling(exec, args.images))?;
    let batch = usize::from(args.batch);
    ensure!(
        batch == 1 || precision == Precision::Int8,
        "--batch needs an int8 model (lockstep batches run the integer kernels); \
         add --precision int8 or leave out --batch"
    );
    let throughput = match (args.threads, batch) {
        (None, 1) => None,
        (threads, _) => {
            let threads = threads.map_or(1, usize::from);
            Some(throughput(&file, args.images, threads, batch)?)
        }
    };
    let baseline = match (&file.graph, args.baseline) {
        (_, false) => None,
        (Some(g), true) => Some(graph_baseline(&file.path, g)?),
        (None, true) => Some(baseline_passes(args, &file.path, arch, arch.pixels())?),
    };
    let macs_per_pixel = match &file.graph {
        Some(g) => g.graph.macs_per_pixel() as u64,
        None => arch.macs_per_pixel(),
    };
    let report = Report {
        model: file.path.display().to_string(),
        precision,
        kernel: match precision {
            Precision::Int8 => Int8Kernel::best().name(),
            _ => FloatKernel::best().name(),
        },
        macs_per_pixel,
        arch,
        images: args.images,
        timings,
        throughput,
        baseline,
    };
    if args.json {
        report.print_json()
    } else {
        report.print_text()
    }
}

/// Sorted seconds per pixel, row and image of sampled images.
struct Timings {
    per_pixel: Vec<f64>,
    per_row: Vec<f64>,
    per_image: Vec<f64>,
    mean_pixel: f64,
}

/// Samples `images` images (after one warm-up image that is not counted),
/// timing every pixel and row; then each image again, timed as a whole
/// without the per-pixel clock reads (two per pixel, ~2% of a digit).
fn time_sampling(exec: &mut dyn PixelExecutor, images: usize) -> anyhow::Result<Timings> {
    let arch = *exec.arch();
    let class_of = |i: usize| (arch.classes > 0).then(|| i % arch.classes);
    let pixels = arch.pixels();
    let mut per_pixel = Vec::with_capacity(images * pixels);
    let mut per_row = Vec::new();
    let mut per_image = Vec::new();
    // Image 0 warms caches and branch predictors and is not counted.
    for i in 0..=images {
        exec.restart(class_of(i))?;
        let mut g = rng::from_seed(1000 + i as u64);
        let mut row_time = 0.0;
        for pos in 0..pixels {
            let t = Instant::now();
            let level = exec.sample(1.0, &mut g)?;
            exec.push(level)?;
            let dt = t.elapsed().as_secs_f64();
            row_time += dt;
            if i > 0 {
                per_pixel.push(dt);
            }
            if (pos + 1) % arch.width == 0 {
                if i > 0 {
                    per_row.push(row_time);
                }
                row_time = 0.0;
            }
        }
        if i > 0 {
            // The same image (same class and seed), untimed inside.
            exec.restart(class_of(i))?;
            let mut g = rng::from_seed(1000 + i as u64);
            let image_start = Instant::now();
            for _ in 0..pixels {
                let level = exec.sample(1.0, &mut g)?;
                exec.push(level)?;
            }
            per_image.push(image_start.elapsed().as_secs_f64());
        }
    }
    let mean_pixel = per_pixel.iter().sum::<f64>() / per_pixel.len() as f64;
    Ok(Timings {
        per_pixel: sorted(per_pixel),
        per_row: sorted(per_row),
        per_image: sorted(per_image),
        mean_pixel,
    })
}

/// Digits per second with `threads` threads sampling at once, each in
/// lockstep batches of `batch` digits.
#[derive(Clone, Copy, Debug)]
struct Throughput {
    threads: usize,
    batch: usize,
    digits_per_s: f64,
}

/// `threads` threads each sample `images` digits with their own executor
/// (or `images` lockstep batches of `batch` digits), after one warm-up
/// digit (batch) each; the wall time from the moment all have warmed up
/// gives the digits per second of the whole machine.
fn throughput(
    file: &model_file::ModelFile,
    images: usize,
    threads: usize,
    batch: usize,
) -> anyhow::Result<Throughput> {
    let arch = file.geometry()?;
    let model = if batch > 1 { Some(file.model()?) } else { None };
    let class_of = |i: usize| (arch.classes > 0).then(|| i % arch.classes);
    let seed = |t: usize, r: usize, b: usize| 5000 + ((t * images + r) * batch + b) as u64;
    let seconds = match (&model, batch) {
        (Some(Model::Int8(q)), 2..) => timed_rounds(
            threads,
            images,
            || {
                (
                    vec![0i32; LockstepI8::state_words_whole_rows(&arch, batch)],
                    vec![0u8; batch * arch.pixels()],
                )
            },
            |(state, images), t, r| {
                let classes: Vec<_> = (0..batch).map(class_of).collect();
                let mut rngs: Vec<_> = (0..batch).map(|b| rng::from_seed(seed(t, r, b))).collect();
                let mut lanes = LockstepI8::new(q, state, &classes)?;
                lockstep::generate(&mut lanes, &classes, 1.0, &mut rngs, images)?;
                Ok(())
            },
        )?,
        _ => timed_rounds(
            threads,
            images,
            || (),
            |_, t, r| {
                file.with_executor(class_of(r), |exec| {
                    let mut g = rng::from_seed(seed(t, r, 0));
                    while exec.position() < arch.pixels() {
                        let level = exec.sample(1.0, &mut g)?;
                        exec.push(level)?;
                    }
                    Ok(())
                })
            },
        )?,
    };
    let batch = if matches!(model, Some(Model::Int8(_))) { batch } else { 1 };
    Ok(Throughput { threads, batch, digits_per_s: (threads * images * batch) as f64 / seconds })
}

/// Runs `round(state, t, r)` for rounds `r = 0..=rounds` on each of
/// `threads` threads, `state` made by `init` once per thread. Round 0 warms
/// up; the result is the seconds from when every thread has warmed up to
/// when the last one ends.
fn timed_rounds<S>(
    threads: usize,
    rounds: usize,
    init: impl Fn() -> S + Sync,
    round: impl Fn(&mut S, usize, usize) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<f64> {
    let ready = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (ready, init, round) = (&ready, &init, &round);
                scope.spawn(move || -> anyhow::Result<()> {
                    let mut state = init();
                    let warm = round(&mut state, t, 0);
                    // Every thread reaches the barrier, failed or not.
                    ready.wait();
                    warm?;
                    (1..=rounds).try_for_each(|r| round(&mut state, t, r))
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        for w in workers {
            w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a benchmark thread panicked")))?;
        }
        Ok(start.elapsed().as_secs_f64())
    })
}

/// What `bench` measured, to print.
struct Report {
    model: String,
    precision: Precision,
    kernel: &'static str,
    macs_per_pixel: u64,
    arch: Arch,
    images: usize,
    timings: Timings,
    throughput: Option<Throughput>,
    /// Seconds of one full pass: the reference executor and tract-onnx.
    baseline: Option<(f64, f64)>,
}

impl Report {
    fn gmacs(&self) -> f64 {
        self.macs_per_pixel as f64 / self.timings.mean_pixel / 1e9
    }

    fn print_json(&self) -> anyhow::Result<()> {
        let t = &self.timings;
        let mut v = serde_json::json!({
            "model": self.model,
            "precision": self.precision.name(),
            "kernel": self.kernel,
            "images": self.images,
            "per_pixel_us_p50": 1e6 * quantile(&t.per_pixel, 0.5),
            "per_pixel_us_p99": 1e6 * quantile(&t.per_pixel, 0.99),
            "per_pixel_us_mean": 1e6 * t.mean_pixel,
            "per_row_us_p50": 1e6 * quantile(&t.per_row, 0.5),
            "per_row_us_p99": 1e6 * quantile(&t.per_row, 0.99),
            "image_ms": 1e3 * t.per_image.iter().sum::<f64>() / t.per_image.len() as f64,
            "macs_per_pixel": self.macs_per_pixel,
            "gmacs": self.gmacs(),
        });
        let image_s = t.per_image.iter().sum::<f64>() / t.per_image.len() as f64;
        v["digits_per_s"] = serde_json::json!(1.0 / image_s);
        if let Some(tp) = self.throughput {
            v["threads"] = serde_json::json!({
                "threads": tp.threads,
                "batch": tp.batch,
                "digits_per_s": tp.digits_per_s,
                "digits_per_s_per_thread": tp.digits_per_s / tp.threads as f64,
            });
        }
        if let Some((naive, tract)) = self.baseline {
            v["baseline"] = serde_json::json!({
                "naive_pass_ms": 1e3 * naive,
                "tract_pass_ms": 1e3 * tract,
                "naive_ratio": naive / t.mean_pixel,
                "tract_ratio": tract / t.mean_pixel,
            });
        }
        say!("{v}")?;
        Ok(())
    }

    fn print_text(&self) -> anyhow::Result<()> {
        let t = &self.timings;
        say!(
            "{} ({}, {} kernel), {} of {}x{} after one warm-up",
            self.model,
            self.precision,
            self.kernel,
            crate::text::count(self.images, "image"),
            self.arch.height,
            self.arch.width
        )?;
        say!(
            "per pixel   p50 {:>9.2} µs   p99 {:>9.2} µs   mean {:.2} µs",
            1e6 * quantile(&t.per_pixel, 0.5),
            1e6 * quantile(&t.per_pixel, 0.99),
            1e6 * t.mean_pixel
        )?;
        say!(
            "per row     p50 {:>9.1} µs   p99 {:>9.1} µs",
            1e6 * quantile(&t.per_row, 0.5),
            1e6 * quantile(&t.per_row, 0.99)
        )?;
        say!(
            "per image   p50 {:>9.2} ms   p99 {:>9.2} ms",
            1e3 * quantile(&t.per_image, 0.5),
            1e3 * quantile(&t.per_image, 0.99)
        )?;
        say!("work        {} MACs per pixel, {:.2} GMAC/s", self.macs_per_pixel, self.gmacs())?;
        if let Some(tp) = self.throughput {
            say!(
                "throughput  {:.1} digits/s on {}{} ({:.1} per thread); one thread alone, one digit at a time: {:.1} digits/s",
                tp.digits_per_s,
                crate::text::count(tp.threads, "thread"),
                if tp.batch > 1 { format!(", lockstep batches of {}", tp.batch) } else { String::new() },
                tp.digits_per_s / tp.threads as f64,
                t.per_image.len() as f64 / t.per_image.iter().sum::<f64>()
            )?;
        }
        if let Some((naive, tract)) = self.baseline {
            say!(
                "naive       one full pass per pixel: reference {:.2} ms ({:.0}x slower), tract-onnx {:.3} ms ({:.0}x slower)",
                1e3 * naive,
                naive / t.mean_pixel,
                1e3 * tract,
                tract / t.mean_pixel
            )?;
        }
        Ok(())
    }
}

/// Seconds of one full pass of a foreign graph: the graph's own full pass
/// and tract-onnx's of the file (the naive paths caching replaces).
#[cfg(feature = "onnx")]
fn graph_baseline(path: &Path, g: &model_file::GraphModel) -> anyhow::Result<(f64, f64)> {
    use pixelcnn_runtime::graph::naive;
    use pixelcnn_runtime::onnx::ForeignTract;
    let graph = &g.graph;
    let class = (graph.classes > 0).then_some(0);
    let image = vec![0u8; graph.pixels()];
    let naive = median_secs(3, || {
        naive::full_pass(graph, &image, class)?;
        Ok(())
    })?;
    let bytes = std::fs::read(path)?;
    let runner = ForeignTract::new(&bytes, &g.io, graph)?;
    let tract = median_secs(20, || {
        runner.run(&image, class)?;
        Ok(())
    })?;
    Ok((naive, tract))
}

#[cfg(not(feature = "onnx"))]
fn graph_baseline(_: &Path, _: &model_file::GraphModel) -> anyhow::Result<(f64, f64)> {
    anyhow::bail!("--baseline times tract-onnx, and this pixelcnn was built without ONNX support")
}

#[cfg(feature = "onnx")]
fn baseline_onnx(args: &BenchArgs, model: &Path) -> std::path::PathBuf {
    if let Some(p) = &args.baseline_onnx {
        return p.clone();
    }
    let is_onnx = std::fs::read(model).map(|b| !b.starts_with(&pixelcnn_runtime::format::MAGIC));
    if is_onnx.unwrap_or(false) {
        model.to_path_buf()
    } else {
        std::path::PathBuf::from("models/gated-mnist.onnx")
    }
}

/// Seconds of one full forward pass in the runtime's reference executor and
/// in tract-onnx, on the float model: the naive paths caching replaces.
#[cfg(feature = "onnx")]
fn baseline_passes(
    args: &BenchArgs,
    model: &Path,
    arch: Arch,
    pixels: usize,
) -> anyhow::Result<(f64, f64)> {
    use anyhow::Context;
    use pixelcnn_runtime::onnx::{import, TractRunner};
    use pixelcnn_runtime::{reference, Weights};

    let onnx = baseline_onnx(args, model);
    let imported =
        import(&onnx).with_context(|| format!("cannot load baseline {}", onnx.display()))?;
    ensure!(
        imported.arch == arch,
        "the baseline {} has a different architecture from the model",
        onnx.display()
    );
    let class = (arch.classes > 0).then_some(0);
    let weights = Weights::new(arch, &imported.params)?;
    let image = vec![0u8; pixels];
    let naive = median_secs(3, || {
        reference::forward(&weights, &image, class)?;
        Ok(())
    })?;
    let runner = TractRunner::new(&std::fs::read(&onnx)?, &arch)?;
    let tract = median_secs(20, || {
        runner.logits(&image, class)?;
        Ok(())
    })?;
    Ok((naive, tract))
}

#[cfg(not(feature = "onnx"))]
fn baseline_passes(
    _args: &BenchArgs,
    _model: &Path,
    _arch: Arch,
    _pixels: usize,
) -> anyhow::Result<(f64, f64)> {
    anyhow::bail!(
        "--baseline times tract-onnx, and this pixelcnn was built without ONNX support; \
         rebuild it with the default features (the `onnx` feature) or leave out --baseline"
    )
}
