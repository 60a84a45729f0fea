//! `pixelcnn sample`: a PNG grid of samples.

use std::time::Instant;

use anyhow::{bail, Context};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use pixelcnn_runtime::{rng, sampler, Arch, Executor};

use crate::cli::SampleArgs;
use crate::model_file;
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

pub fn run(args: &SampleArgs) -> anyhow::Result<()> {
    crate::output::check(&args.out, "png", &[args.model.model.as_path()])?;
    if args.count == 0 || args.columns == 0 || args.scale == 0 {
        bail!("--count, --columns and --scale must be at least 1");
    }
    let file = model_file::load(&args.model)?;
    let model = file.model()?;
    let arch = *model.arch();
    let mut state = vec![0u32; model.state_words()];
    let mut exec = Executor::new(&model, &mut state, class_of(&arch, args.class, 0)?)?;
    let mut images = Vec::with_capacity(args.count);
    let start = Instant::now();
    for i in 0..args.count {
        let mut image = vec![0u8; arch.pixels()];
        // One stream per image: image i is the same whatever --count is.
        let mut g = rng::from_seed(args.seed.wrapping_add(i as u64));
        let class = class_of(&arch, args.class, i)?;
        sampler::generate(&mut exec, class, args.temperature, &mut g, &mut image)?;
        images.push(image);
    }
    let elapsed = start.elapsed();
    let cols = args.columns.min(args.count);
    let rows = args.count.div_ceil(cols);
    let (cw, ch) = (arch.width as u32 * args.scale + 2, arch.height as u32 * args.scale + 2);
    let (width, height) = (cols as u64 * u64::from(cw) + 2, rows as u64 * u64::from(ch) + 2);
    let mut canvas = Canvas::new(width, height, Rgb888::new(60, 60, 60))?;
    for (i, image) in images.iter().enumerate() {
        let at =
            Point::new(((i % cols) as u32 * cw + 2) as i32, ((i / cols) as u32 * ch + 2) as i32);
        canvas.image(at, image, arch.width, arch.levels, args.scale, |_| false);
    }
    canvas.save_png(&args.out).with_context(|| format!("cannot save {}", args.out.display()))?;
    let pixels = (args.count * arch.pixels()) as f64;
    say!(
        "wrote {} to {} ({}, {:.1} µs per pixel, {} from {})",
        crate::text::count(args.count, "image"),
        args.out.display(),
        model.precision(),
        elapsed.as_secs_f64() * 1e6 / pixels,
        file.origin,
        file.path.display()
    )?;
    Ok(())
}
