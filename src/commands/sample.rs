//! `pixelcnn sample`: a PNG grid of samples.

use std::time::Instant;

use anyhow::{bail, Context};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use pixelcnn_runtime::quant::{lockstep, LockstepI8};
use pixelcnn_runtime::{rng, sampler, Arch, Model, PixelExecutor, QuantWeights};

use crate::cli::SampleArgs;
use crate::model_file::{self, ModelFile};
use crate::picture::Canvas;

/// The class of image `i`: the one asked for, or cycling through them.
pub fn class_of(arch: &Arch, class: Option<usize>, i: usize) -> anyhow::Result<Option<usize>> {
    match (arch.classes, class) {
        (0, None) => Ok(None),
        (0, Some(_)) => bail!("the model is unconditional: drop --class"),
        (n, Some(c)) if c >= n => {
            bail!("--class {c} out of range: the model has classes 0 to {}", n - 1)
        }
        (_, Some(c)) => Ok(Some(c)),
        (n, None) => Ok(Some(i % n)),
    }
}

/// Image `i` of `args`: its own seed `seed + i` and class, so it is the same
/// on whichever thread and in whichever batch it is drawn.
fn sample_one(
    exec: &mut dyn PixelExecutor,
    args: &SampleArgs,
    class: Option<usize>,
    i: usize,
) -> anyhow::Result<Vec<u8>> {
    let arch = *exec.arch();
    let mut image = vec![0u8; arch.pixels()];
    let mut g = rng::from_seed(args.seed.wrapping_add(i as u64));
    let class = class_of(&arch, class, i)?;
    sampler::generate(exec, class, args.temperature, &mut g, &mut image)?;
    Ok(image)
}

/// Images `ids` of `args` in one lockstep batch of the int8 model `q`.
fn sample_batch(
    q: &QuantWeights<'_>,
    args: &SampleArgs,
    class: Option<usize>,
    ids: std::ops::Range<usize>,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let arch = *q.arch();
    let classes =
        ids.clone().map(|i| class_of(&arch, class, i)).collect::<anyhow::Result<Vec<_>>>()?;
    let mut rngs: Vec<_> = ids.map(|i| rng::from_seed(args.seed.wrapping_add(i as u64))).collect();
    let mut state = vec![0i32; LockstepI8::state_words_whole_rows(&arch, classes.len())];
    let mut batch = LockstepI8::new(q, &mut state, &classes)?;
    let mut images = vec![0u8; classes.len() * arch.pixels()];
    lockstep::generate(&mut batch, &classes, args.temperature, &mut rngs, &mut images)?;
    Ok(images.chunks_exact(arch.pixels()).map(<[u8]>::to_vec).collect())
}

/// The `args.count` images in order, drawn on `threads` threads in groups of
/// `--batch` consecutive images (group `g` on thread `g mod threads`).
fn sample_all(
    file: &ModelFile,
    args: &SampleArgs,
    class: Option<usize>,
    threads: usize,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<Vec<u8>>> {
    let arch = file.geometry()?;
    let batch = usize::from(args.batch);
    let model = if batch > 1 { Some(file.model()?) } else { None };
    let quant = match &model {
        None => None,
        Some(Model::Int8(q)) => Some(q),
        Some(_) => bail!(
            "--batch needs an int8 model (lockstep batches run the integer kernels); \
             add --precision int8 or leave out --batch"
        ),
    };
    let groups = args.count.div_ceil(batch);
    let per_thread = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads.min(groups))
            .map(|t| {
                scope.spawn(move || -> anyhow::Result<Vec<Vec<u8>>> {
                    let ids = |g: usize| g * batch..((g + 1) * batch).min(args.count);
                    let mut out = Vec::new();
                    if let Some(q) = quant {
                        for g in (t..groups).step_by(threads) {
                            out.extend(sample_batch(q, args, class, ids(g))?);
                            bar.inc(ids(g).len() as u64);
                        }
                        return Ok(out);
                    }
                    file.with_executor(class_of(&arch, class, t)?, |exec| {
                        for g in (t..groups).step_by(threads) {
                            for i in ids(g) {
                                out.push(sample_one(exec, args, class, i)?);
                                bar.inc(1);
                            }
                        }
                        Ok(out)
                    })
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a sampling thread panicked")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    // Thread t drew groups t, t + threads, ... in that order.
    let mut images = vec![Vec::new(); args.count];
    for (t, list) in per_thread.into_iter().enumerate() {
        let ids =
            (t..groups).step_by(threads).flat_map(|g| g * batch..((g + 1) * batch).min(args.count));
        for (i, image) in ids.zip(list) {
            images[i] = image;
        }
    }
    Ok(images)
}

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    crate::output::check(&args.out, "png", &[args.model.model.as_path()])?;
    if args.count == 0 || args.columns == 0 || args.scale == 0 {
        bail!("--count, --columns and --scale must be at least 1");
    }
    let file = model_file::load(&args.model)?;
    let arch = file.geometry()?;
    // Fail on a bad --class before starting any thread.
    let class = args.class.as_deref().map(|c| file.class(c, arch.classes)).transpose()?;
    class_of(&arch, class, 0)?;
    let threads = args
        .threads
        .map_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()), usize::from);
    // The picture's size is known before any sampling: check it first.
    let cols = args.columns.min(args.count);
    let rows = args.count.div_ceil(cols);
    let (cw, ch) = (
        arch.width as u64 * u64::from(args.scale) + 2,
        arch.height as u64 * u64::from(args.scale) + 2,
    );
    let (width, height) = (cols as u64 * cw + 2, rows as u64 * ch + 2);
    Canvas::check_size(width, height)?;
    let start = Instant::now();
    let bar = crate::progress::bar(args.count as u64, "sampling");
    let images = sample_all(&file, args, class, threads, &bar)?;
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    let mut canvas = Canvas::new(width, height, Rgb888::new(60, 60, 60))?;
    for (i, image) in images.iter().enumerate() {
        let at =
            Point::new(((i % cols) as u64 * cw + 2) as i32, ((i / cols) as u64 * ch + 2) as i32);
        canvas.image(at, image, arch.width, arch.levels, args.scale, |_| false);
    }
    canvas.save_png(&args.out).with_context(|| format!("cannot save {}", args.out.display()))?;
    let pixels = (args.count * arch.pixels()) as f64;
    let groups = args.count.div_ceil(usize::from(args.batch));
    let batches = match args.batch {
        1 => String::new(),
        b => format!(" in batches of {b}"),
    };
    let of_class = match (class, file.class_names.is_empty()) {
        _ if arch.classes == 0 => String::new(),
        (Some(c), _) => format!(" of class {}", file.describe_class(c)),
        (None, true) => String::new(),
        (None, false) => format!(
            " cycling through the classes {}",
            (0..arch.classes).map(|c| file.describe_class(c)).collect::<Vec<_>>().join(", ")
        ),
    };
    say!(
        "wrote {}{of_class} to {} ({}, {:.1} µs per pixel on {}{batches}, {} from {})",
        crate::text::count(args.count, "image"),
        args.out.display(),
        file.precision()?,
        elapsed.as_secs_f64() * 1e6 / pixels,
        crate::text::count(threads.min(groups), "thread"),
        file.origin,
        file.path.display()
    )?;
    Ok(())
}
