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
    let highest = y1;
    y1 = y1.min(ys[ys.len() * 95 / 100] * 1.15 - y0 * 0.15).max(y0 + 1e-9);
    y0 -= (y1 - y0) * 0.05;
    // A quantity that is never negative (an NLL) gets no negative axis.
    if ys[0] >= 0.0 {
        y0 = y0.max(0.0);
    }
    let plot_w = w as i32 - left - right;
    let plot_h = h as i32 - top - bottom;
    let to_px = |x: f64, y: f64| {
        let fx = if x1 > x0 { (x - x0) / (x1 - x0) } else { 0.5 };
        let fy = (y - y0) / (y1 - y0);
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
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| p.1.is_finite()).collect();
        // Each segment is cut at the chart's edges: a curve that starts
        // above the range leaves through the top instead of running flat
        // along it.
        for pair in pts.windows(2) {
            if let Some((a, b)) = clip_segment(pair[0], pair[1], y0, y1) {
                let _ = Line::new(to_px(a.0, a.1), to_px(b.0, b.1))
                    .into_styled(style)
                    .draw(&mut canvas);
            }
        }
        if let [only] = pts[..] {
            if (y0..=y1).contains(&only.1) {
                let _ = Rectangle::new(to_px(only.0, only.1) - Point::new(2, 2), Size::new(5, 5))
                    .into_styled(PrimitiveStyle::with_fill(s.color))
                    .draw(&mut canvas);
            }
        }
        let ly = top + 8 + 14 * i as i32;
        let lx = left + plot_w - 200;
        let _ = Line::new(Point::new(lx, ly + 4), Point::new(lx + 20, ly + 4))
            .into_styled(style)
            .draw(&mut canvas);
        let _ = Text::with_baseline(s.label, Point::new(lx + 26, ly), ink, Baseline::Top)
            .draw(&mut canvas);
    }
    if highest > y1 {
        let note = format!("earlier points above the chart, up to {highest:.0}");
        let _ = Text::with_baseline(&note, Point::new(left + 6, top + 4), ink, Baseline::Top)
            .draw(&mut canvas);
    }
    canvas.save_png(path)
}

/// The part of the segment `a`–`b` with y in `[lo, hi]`, if any.
fn clip_segment(
    a: (f64, f64),
    b: (f64, f64),
    lo: f64,
    hi: f64,
) -> Option<((f64, f64), (f64, f64))> {
    let at = |y: f64| {
        let t = if b.1 == a.1 { 0.0 } else { (y - a.1) / (b.1 - a.1) };
        (a.0 + t * (b.0 - a.0), y)
    };
    let clamp = |p: (f64, f64)| {
        if p.1 > hi {
            at(hi)
        } else if p.1 < lo {
            at(lo)
        } else {
            p
        }
    };
    let outside = |p: (f64, f64)| {
        if p.1 > hi {
            1
        } else if p.1 < lo {
            -1
        } else {
            0
        }
    };
    match (outside(a), outside(b)) {
        (oa, ob) if oa != 0 && oa == ob => None,
        _ => Some((clamp(a), clamp(b))),
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_cut_at_the_chart_edges() {
        // Inside: unchanged. Both above: nothing drawn.
        assert_eq!(clip_segment((0.0, 1.0), (1.0, 2.0), 0.0, 3.0), Some(((0.0, 1.0), (1.0, 2.0))));
        assert_eq!(clip_segment((0.0, 5.0), (1.0, 4.0), 0.0, 3.0), None);
        // From above into the range: starts where it crosses the top.
        assert_eq!(clip_segment((0.0, 5.0), (2.0, 1.0), 0.0, 3.0), Some(((1.0, 3.0), (2.0, 1.0))));
        // Through the whole range: cut at both edges.
        assert_eq!(clip_segment((0.0, 4.0), (4.0, 0.0), 1.0, 3.0), Some(((1.0, 3.0), (3.0, 1.0))));
    }

    #[test]
    fn early_losses_above_the_range_leave_no_flat_line_along_the_top() {
        let dir = std::env::temp_dir().join(format!("chart-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("loss.png");
        // Loss falls from 500 to about 80 over 100 steps, then stays.
        let points: Vec<(f64, f64)> =
            (0..400).map(|i| (f64::from(i), 80.0 + 420.0 * (-f64::from(i) / 8.0).exp())).collect();
        let red = Rgb888::new(214, 39, 40);
        save_chart(&path, "t", "step", &[Series { label: "x", color: red, points: &points }])
            .unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut rgb = vec![0u8; reader.output_buffer_size().unwrap()];
        reader.next_frame(&mut rgb).unwrap();
        let width = 720usize;
        let red_in_row = |y: usize| {
            (64..704)
                .filter(|&x| rgb[3 * (y * width + x)..3 * (y * width + x) + 3] == [214, 39, 40])
                .count()
        };
        // The rows at and above the plot's top edge (y = 28) hold at most a
        // few red pixels where the curve enters, not a line.
        for y in 10..32 {
            assert!(red_in_row(y) < 20, "row {y}: {} red pixels", red_in_row(y));
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
