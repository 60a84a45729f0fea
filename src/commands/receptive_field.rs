//! `pixelcnn receptive-field`: the seed blog's receptive-field figures,
//! computed from a network instead of drawn by hand.

use anyhow::{bail, Context};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::receptive_field::{full_field, measure_influence_on, Pixel};
use pixelcnn_runtime::{rng, Arch, Variant, Weights};
use rand_core::RngCore;

use crate::cli::{ArchKind, ReceptiveFieldArgs};
use crate::picture::Canvas;

const TARGET: Rgb888 = Rgb888::new(214, 39, 40);
const LATER: Rgb888 = Rgb888::new(225, 225, 225);
const OUTSIDE: Rgb888 = Rgb888::new(255, 255, 255);
const BLIND: Rgb888 = Rgb888::new(255, 200, 120);
const BLIND_HATCH: Rgb888 = Rgb888::new(230, 120, 0);
const GRID: Rgb888 = Rgb888::new(150, 150, 150);
const INK: Rgb888 = Rgb888::new(20, 20, 20);

/// What one image pixel is, relative to the target.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Cell {
    Target,
    /// Moves the target's prediction; the value is 0 (weakest) to 1.
    Influences(f32),
    /// Within the kernels' reach, earlier than the target, and no influence.
    Blind,
    /// Earlier than the target but out of reach.
    Outside,
    /// At or after the target in raster order.
    Later,
}

pub fn run(args: &ReceptiveFieldArgs) -> anyhow::Result<()> {
    crate::output::check(&args.out, "png", &[])?;
    let arch = Arch {
        variant: match args.arch {
            ArchKind::Gated => Variant::Gated,
            ArchKind::Plain => Variant::Plain,
        },
        height: args.height,
        width: args.width,
        levels: 2,
        classes: 0,
        channels: args.channels,
        blocks: args.blocks,
        first_kernel: args.first_kernel,
        kernel: args.kernel,
        head: args.channels,
    };
    arch.validate().context("invalid network")?;
    let (arch, params) = match &args.model {
        Some(path) => import_float(path)?,
        None => (arch, random_params(&arch, args.seed)),
    };
    let target = Pixel {
        row: args.row.unwrap_or(arch.height * 2 / 3),
        col: args.col.unwrap_or(arch.width / 2),
    };
    if target.row >= arch.height || target.col >= arch.width {
        bail!(
            "pixel ({}, {}) is outside the {}x{} image",
            target.row,
            target.col,
            arch.height,
            arch.width
        );
    }
    if args.images == 0 {
        bail!("--images must be at least 1");
    }
    let weights = Weights::new(arch, &params)?;
    let influence = measured(&weights, target, args.seed, args.images)?;
    let cells = classify(&arch, target, &influence);
    let canvas = draw(&arch, target, &cells, args)?;
    canvas.save_png(&args.out)?;
    let count = |f: fn(&Cell) -> bool| cells.iter().filter(|c| f(c)).count();
    say!(
        "{}: pixel ({}, {}) is influenced by {} earlier pixels; blind spot: {} pixels -> {}",
        name(&arch),
        target.row,
        target.col,
        count(|c| matches!(c, Cell::Influences(_))),
        count(|c| *c == Cell::Blind),
        args.out.display()
    )?;
    Ok(())
}

/// Largest change of the target's logits per pixel, over several images.
fn measured(
    weights: &Weights<'_>,
    target: Pixel,
    seed: u64,
    images: u64,
) -> anyhow::Result<Vec<f32>> {
    let arch = *weights.arch();
    let mut rng = rng::from_seed(seed.wrapping_add(1));
    let mut worst = vec![0.0f32; arch.pixels()];
    // Every pixel before the target is changed in turn and the image run up
    // to the target with the incremental executor: the progress counts them.
    let earlier = (target.row * arch.width + target.col) as u64;
    let bar = crate::progress::bar(images * earlier, "perturbing the earlier pixels");
    for _ in 0..images {
        let image: Vec<u8> =
            (0..arch.pixels()).map(|_| (rng.next_u32() % arch.levels as u32) as u8).collect();
        let class = (arch.classes > 0).then(|| rng.next_u32() as usize % arch.classes);
        let influence = measure_influence_on(weights, &image, class, target, || bar.inc(1))?;
        for (w, &d) in worst.iter_mut().zip(&influence) {
            *w = w.max(d);
        }
    }
    bar.finish_and_clear();
    Ok(worst)
}

fn classify(arch: &Arch, target: Pixel, influence: &[f32]) -> Vec<Cell> {
    let reach = full_field(arch, target);
    let t = target.row * arch.width + target.col;
    let logs: Vec<f32> = influence.iter().filter(|&&d| d > 0.0).map(|d| d.ln()).collect();
    let lo = logs.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = logs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (0..arch.pixels())
        .map(|pos| {
            let d = influence[pos];
            if pos == t {
                Cell::Target
            } else if d > 0.0 {
                let v = if hi > lo { (d.ln() - lo) / (hi - lo) } else { 1.0 };
                Cell::Influences(v)
            } else if pos > t {
                Cell::Later
            } else if reach[pos] {
                Cell::Blind
            } else {
                Cell::Outside
            }
        })
        .collect()
}

fn name(arch: &Arch) -> &'static str {
    match arch.variant {
        Variant::Gated => "Gated PixelCNN",
        Variant::Plain => "Plain PixelCNN",
    }
}

fn blue(v: f32) -> Rgb888 {
    // From light to dark blue as influence grows (log scale).
    let lerp = |a: f32, b: f32| (a + (b - a) * v.clamp(0.0, 1.0)) as u8;
    Rgb888::new(lerp(190.0, 8.0), lerp(215.0, 48.0), lerp(240.0, 107.0))
}

fn draw(
    arch: &Arch,
    target: Pixel,
    cells: &[Cell],
    args: &ReceptiveFieldArgs,
) -> anyhow::Result<Canvas> {
    let cell = args.cell;
    let margin = 12u32;
    let line = Canvas::LINE + 4;
    let grid_w = cell * arch.width as u32;
    let grid_h = cell * arch.height as u32;
    let text_w = 7 * 46;
    let width = grid_w.max(text_w) + 2 * margin;
    let title_h = 2 * line + 6;
    let legend_h = 4 * line + 8;
    let height = margin + title_h + grid_h + legend_h + margin;
    let mut canvas = Canvas::new(u64::from(width), u64::from(height), OUTSIDE)?;

    let depth = match arch.variant {
        Variant::Gated => format!(
            "{k0}x{k0} first layer + {b} gated blocks of {k}x{k}",
            k0 = arch.first_kernel,
            b = arch.blocks,
            k = arch.kernel
        ),
        Variant::Plain => format!(
            "{k0}x{k0} mask A + {b} layers of {k}x{k} mask B",
            k0 = arch.first_kernel,
            b = arch.blocks,
            k = arch.kernel
        ),
    };
    canvas.text(
        Point::new(margin as i32, margin as i32),
        &format!("{}: field of pixel ({}, {})", name(arch), target.row, target.col),
        INK,
    );
    canvas.text(Point::new(margin as i32, (margin + line) as i32), &depth, INK);

    let origin = Point::new(margin as i32, (margin + title_h) as i32);
    canvas.fill(origin, Size::new(grid_w + 1, grid_h + 1), GRID);
    for (pos, c) in cells.iter().enumerate() {
        let (y, x) = ((pos / arch.width) as u32, (pos % arch.width) as u32);
        let top_left = origin + Point::new((x * cell + 1) as i32, (y * cell + 1) as i32);
        draw_cell(&mut canvas, top_left, cell - 1, *c);
    }

    let legend = origin + Point::new(0, (grid_h + 8) as i32);
    let entries = [
        (Cell::Target, "the pixel being predicted"),
        (Cell::Influences(0.6), "changes the prediction (darker: more)"),
        (Cell::Blind, "blind spot: in reach, never seen"),
        (Cell::Later, "later pixels (never seen)"),
    ];
    for (i, (c, label)) in entries.iter().enumerate() {
        let top = legend + Point::new(0, (i as u32 * line) as i32);
        canvas.fill(top, Size::new(Canvas::LINE + 1, Canvas::LINE + 1), GRID);
        draw_cell(&mut canvas, top + Point::new(1, 1), Canvas::LINE - 1, *c);
        canvas.text(top + Point::new((Canvas::LINE + 6) as i32, 1), label, INK);
    }
    Ok(canvas)
}

fn draw_cell(canvas: &mut Canvas, top_left: Point, side: u32, c: Cell) {
    let size = Size::new(side, side);
    match c {
        Cell::Target => canvas.fill(top_left, size, TARGET),
        Cell::Influences(v) => canvas.fill(top_left, size, blue(v)),
        Cell::Later => canvas.fill(top_left, size, LATER),
        Cell::Outside => canvas.fill(top_left, size, OUTSIDE),
        Cell::Blind => {
            canvas.fill(top_left, size, BLIND);
            // Diagonal hatching, so the blind spot reads without colour too.
            for d in (0..2 * side as i32).step_by(5) {
                for t in 0..side as i32 {
                    let (x, y) = (d - t, t);
                    if (0..side as i32).contains(&x) {
                        canvas.fill(top_left + Point::new(x, y), Size::new(1, 1), BLIND_HATCH);
                    }
                }
            }
        }
    }
}

/// The architecture and float parameters of a model file: ONNX, or an f32
/// or f16 `.pcnn` (an int8 one has no float weights to perturb).
fn import_float(path: &std::path::Path) -> anyhow::Result<(Arch, Vec<f32>)> {
    use pixelcnn_runtime::format::{self, AlignedBytes};
    use pixelcnn_runtime::Model;
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read model {}", path.display()))?;
    if bytes.starts_with(&format::MAGIC) {
        let aligned = AlignedBytes::new(&bytes);
        let model = format::parse(aligned.as_bytes())
            .with_context(|| format!("cannot load model {}", path.display()))?;
        return match model {
            Model::F32(w) => Ok((*w.arch(), w.as_slice().to_vec())),
            Model::F16(w) => Ok((*w.arch(), w.as_slice().iter().map(|h| h.to_f32()).collect())),
            Model::Int8(_) => bail!(
                "{} is an int8 model; receptive fields are measured on float weights: give the \
                 ONNX file from `trainer export`, or an f32 or f16 .pcnn (`pixelcnn convert \
                 MODEL.onnx --precision f32 -o MODEL-f32.pcnn`)",
                path.display()
            ),
        };
    }
    import_onnx(path, &bytes)
}

#[cfg(feature = "onnx")]
fn import_onnx(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<(Arch, Vec<f32>)> {
    let m = pixelcnn_runtime::onnx::import_bytes(bytes).with_context(|| {
        format!("cannot load model {}: neither a .pcnn file nor a usable ONNX file", path.display())
    })?;
    Ok((m.arch, m.params))
}

#[cfg(not(feature = "onnx"))]
fn import_onnx(path: &std::path::Path, _: &[u8]) -> anyhow::Result<(Arch, Vec<f32>)> {
    bail!(
        "cannot load {}: it is not a .pcnn file, and reading ONNX needs the `onnx` feature, which \
         this pixelcnn was built without; give an f32 .pcnn or rebuild with the default features",
        path.display()
    )
}
