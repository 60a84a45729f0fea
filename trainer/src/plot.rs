//! Pictures of a training run: the loss curve and grids of samples.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use embedded_graphics::mono_font::{ascii::FONT_6X10, MonoTextStyle};
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

/// An RGB888 image that embedded-graphics draws on.
#[derive(Debug)]
pub struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: u32, height: u32, background: Rgb888) -> Self {
        let rgb =
            [background.r(), background.g(), background.b()].repeat((width * height) as usize);
        Canvas { width, height, rgb }
    }

    /// Sets one pixel (ignored outside the canvas).
    pub fn set(&mut self, x: u32, y: u32, c: Rgb888) {
        if x < self.width && y < self.height {
            let i = 3 * (y as usize * self.width as usize + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
        }
    }

    /// Saves as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.rgb)?;
        writer.finish()?;
        Ok(())
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = embedded_graphics::Pixel<Self::Color>>,
    {
        for embedded_graphics::Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 {
                self.set(p.x as u32, p.y as u32, c);
            }
        }
        Ok(())
    }
}

/// A grid of images (levels `0..levels`), one row per entry of `rows`,
/// each pixel drawn as a `scale`×`scale` square, white on black.
pub fn save_grid(
    path: &Path,
    rows: &[Vec<Vec<u8>>],
    height: usize,
    width: usize,
    levels: usize,
    scale: u32,
) -> anyhow::Result<()> {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let gap = 2u32;
    let cell_w = width as u32 * scale + gap;
    let cell_h = height as u32 * scale + gap;
    let mut canvas =
        Canvas::new(cols * cell_w + gap, rows.len() as u32 * cell_h + gap, Rgb888::new(90, 90, 90));
    for (r, row) in rows.iter().enumerate() {
        for (c, image) in row.iter().enumerate() {
            let (x0, y0) = (gap + c as u32 * cell_w, gap + r as u32 * cell_h);
            for (pos, &level) in image.iter().enumerate() {
                let v = (usize::from(level) * 255 / (levels - 1)) as u8;
                let (py, px) = ((pos / width) as u32, (pos % width) as u32);
                for dy in 0..scale {
                    for dx in 0..scale {
                        canvas.set(
                            x0 + px * scale + dx,
                            y0 + py * scale + dy,
                            Rgb888::new(v, v, v),
                        );
                    }
                }
            }
        }
    }
    canvas.save_png(path)
}

/// A series of (x, y) points with a colour and a legend label.
pub struct Series<'a> {
    /// Legend text.
    pub label: &'a str,
    /// Line colour.
    pub color: Rgb888,
    /// Points, x increasing.
    pub points: &'a [(f64, f64)],
}

/// A line chart with axes, tick labels and a legend.
pub fn save_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    series: &[Series<'_>],
) -> anyhow::Result<()> {
    let (w, h) = (720u32, 420u32);
    let (left, right, top, bottom) = (64i32, 16i32, 28i32, 44i32);
    let mut canvas = Canvas::new(w, h, Rgb888::WHITE);
    let ink = MonoTextStyle::new(&FONT_6X10, Rgb888::BLACK);
    let _ = Text::with_baseline(title, Point::new(left, 8), ink, Baseline::Top).draw(&mut canvas);
    let all: Vec<(f64, f64)> =
        series.iter().flat_map(|s| s.points.iter().copied()).filter(|p| p.1.is_finite()).collect();
    if all.is_empty() {
        return canvas.save_png(path);
    }
    let (x0, x1) = bounds(all.iter().map(|p| p.0));
    let (mut y0, mut y1) = bounds(all.iter().map(|p| p.1));
    // Early losses dwarf the rest; keep the interesting range readable.
    let mut ys: Vec<f64> = all.iter().map(|p| p.1).collect();
    ys.sort_by(f64::total_cmp);
    y1 = y1.min(ys[ys.len() * 95 / 100] * 1.15 - y0 * 0.15).max(y0 + 1e-9);
    y0 -= (y1 - y0) * 0.05;
    let plot_w = w as i32 - left - right;
    let plot_h = h as i32 - top - bottom;
    let to_px = |x: f64, y: f64| {
        let fx = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.5 };
        let fy = ((y - y0) / (y1 - y0)).clamp(-0.02, 1.02);
        Point::new(left + (fx * plot_w as f64) as i32, top + plot_h - (fy * plot_h as f64) as i32)
    };
    let axis = PrimitiveStyle::with_stroke(Rgb888::new(60, 60, 60), 1);
    let grid = PrimitiveStyle::with_stroke(Rgb888::new(225, 225, 225), 1);
    for i in 0..=4 {
        let y = y0 + (y1 - y0) * f64::from(i) / 4.0;
        let p = to_px(x0, y);
        let _ = Line::new(p, Point::new(left + plot_w, p.y)).into_styled(grid).draw(&mut canvas);
        let _ = Text::with_baseline(&format!("{y:.1}"), Point::new(4, p.y - 5), ink, Baseline::Top)
            .draw(&mut canvas);
        let x = x0 + (x1 - x0) * f64::from(i) / 4.0;
        let q = to_px(x, y0);
        let _ = Text::with_baseline(
            &format!("{x:.0}"),
            Point::new(q.x - 8, top + plot_h + 4),
            ink,
            Baseline::Top,
        )
        .draw(&mut canvas);
    }
    let _ = Rectangle::new(Point::new(left, top), Size::new(plot_w as u32, plot_h as u32))
        .into_styled(axis)
        .draw(&mut canvas);
    let _ = Text::with_baseline(
        x_label,
        Point::new(left + plot_w / 2 - 30, h as i32 - 14),
        ink,
        Baseline::Top,
    )
    .draw(&mut canvas);
    for (i, s) in series.iter().enumerate() {
        let style = PrimitiveStyle::with_stroke(s.color, 2);
        let pts: Vec<Point> =
            s.points.iter().filter(|p| p.1.is_finite()).map(|&(x, y)| to_px(x, y)).collect();
        for pair in pts.windows(2) {
            let _ = Line::new(pair[0], pair[1]).into_styled(style).draw(&mut canvas);
        }
        if pts.len() == 1 {
            let _ = Rectangle::new(pts[0] - Point::new(2, 2), Size::new(5, 5))
                .into_styled(PrimitiveStyle::with_fill(s.color))
                .draw(&mut canvas);
        }
        let ly = top + 8 + 14 * i as i32;
        let lx = left + plot_w - 200;
        let _ = Line::new(Point::new(lx, ly + 4), Point::new(lx + 20, ly + 4))
            .into_styled(style)
            .draw(&mut canvas);
        let _ = Text::with_baseline(s.label, Point::new(lx + 26, ly), ink, Baseline::Top)
            .draw(&mut canvas);
    }
    canvas.save_png(path)
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}
