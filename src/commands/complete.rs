//! `pixelcnn complete`: the seed blog's occluded digits, filled in.

use anyhow::{bail, ensure, Context};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use pixelcnn_runtime::{rng, sampler};

use crate::cli::CompleteArgs;
use crate::picture::Canvas;
use crate::{images, model_file};

/// Images completed when --limit is not given.
const DEFAULT_IMAGES: usize = 8;

pub fn run(args: &CompleteArgs) -> anyhow::Result<()> {
    crate::output::check(&args.out, "png", &[args.model.model.as_path()])?;
    if args.samples == 0 || args.scale == 0 {
        bail!("--samples and --scale must be at least 1");
    }
    let file = model_file::load(&args.model)?;
    let arch = file.geometry()?;
    let mut data = args.data.clone();
    data.limit = data.limit.or(Some(DEFAULT_IMAGES));
    let class = data.class.as_deref().map(|c| file.class(c, arch.classes)).transpose()?;
    let set = images::load(&data, &arch, class)?;
    ensure!(
        arch.classes == 0 || set.labels.is_some(),
        "the model is class-conditional and these images have no labels: give --class N (0 to {})",
        arch.classes - 1
    );
    let rows = args.rows.unwrap_or(arch.height / 2);
    ensure!(rows <= arch.height, "--rows {rows} is more than the image's {} rows", arch.height);
    let known: Vec<bool> = (0..arch.pixels()).map(|p| p < rows * arch.width).collect();
    let cols = 2 + args.samples;
    let (cw, ch) = (arch.width as u32 * args.scale + 4, arch.height as u32 * args.scale + 4);
    let top = Canvas::LINE + 4;
    let (width, height) =
        (cols as u64 * u64::from(cw) + 4, u64::from(top) + set.len() as u64 * u64::from(ch) + 4);
    let mut canvas = Canvas::new(width, height, Rgb888::new(60, 60, 60))?;
    let ink = Rgb888::new(230, 230, 230);
    canvas.text(Point::new(4, 2), "original", ink);
    canvas.text(Point::new(cw as i32 + 4, 2), "given", ink);
    canvas.text(Point::new(2 * cw as i32 + 4, 2), "completions", ink);
    file.with_executor(set.label(0).filter(|_| arch.classes > 0), |exec| {
        for i in 0..set.len() {
            let y = (top + i as u32 * ch + 2) as i32;
            let original = set.image(i);
            let class = set.label(i).filter(|_| arch.classes > 0);
            canvas
                .image(Point::new(4, y), original, arch.width, arch.levels, args.scale, |_| false);
            canvas.image(
                Point::new(cw as i32 + 4, y),
                original,
                arch.width,
                arch.levels,
                args.scale,
                |p| !known[p],
            );
            for s in 0..args.samples {
                let mut image = original.to_vec();
                let mut g = rng::from_seed(args.seed.wrapping_add((i * args.samples + s) as u64));
                sampler::complete(exec, class, args.temperature, &mut g, &mut image, &known)?;
                let x = ((2 + s) as u32 * cw + 4) as i32;
                canvas.image(Point::new(x, y), &image, arch.width, arch.levels, args.scale, |_| {
                    false
                });
            }
        }
        Ok(())
    })?;
    canvas.save_png(&args.out).with_context(|| format!("cannot save {}", args.out.display()))?;
    say!(
        "completed {} from {} top {rows} rows, {} each: {} ({})",
        crate::text::count(set.len(), "image"),
        if set.len() == 1 { "its" } else { "their" },
        crate::text::count(args.samples, "sample"),
        args.out.display(),
        file.precision()?
    )?;
    Ok(())
}
