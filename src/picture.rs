//! An RGB canvas that embedded-graphics draws on, saved as PNG.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::Context;
use embedded_graphics::mono_font::{ascii::FONT_7X13, MonoTextStyle};
use embedded_graphics::pixelcolor::{Rgb888, RgbColor};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

/// An RGB888 image in memory.
#[derive(Debug)]
pub struct Canvas {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
}

impl Canvas {
    /// Largest canvas, in pixels (192 MB of RGB).
    pub const MAX_PIXELS: u64 = 1 << 26;

    /// A `width × height` canvas filled with `background`.
    ///
    /// # Errors
    /// When it would hold more than [`Canvas::MAX_PIXELS`] pixels.
    pub fn new(width: u64, height: u64, background: Rgb888) -> anyhow::Result<Self> {
        let pixels = Self::check_size(width, height)?;
        let rgb = [background.r(), background.g(), background.b()].repeat(pixels as usize);
        // Both sides fit u32: their product is at most 2^26 and neither is 0 here.
        Ok(Canvas { width: width as u32, height: height as u32, rgb })
    }

    /// The pixels of a `width × height` canvas, checked before any work
    /// goes into what it will show.
    ///
    /// # Errors
    /// When it would hold more than [`Canvas::MAX_PIXELS`] pixels.
    pub fn check_size(width: u64, height: u64) -> anyhow::Result<u64> {
        let pixels = width.checked_mul(height).filter(|&p| p <= Self::MAX_PIXELS);
        pixels.ok_or_else(|| {
            anyhow::anyhow!(
                "a {width}x{height} picture is too large (at most {} pixels): lower --scale, --cell or the number of images",
                Self::MAX_PIXELS
            )
        })
    }

    /// Fills a rectangle.
    pub fn fill(&mut self, top_left: Point, size: Size, color: Rgb888) {
        // Drawing on a canvas cannot fail.
        let _ =
            Rectangle::new(top_left, size).into_styled(PrimitiveStyle::with_fill(color)).draw(self);
    }

    /// Writes a line of text with its top-left corner at `top_left`.
    pub fn text(&mut self, top_left: Point, text: &str, color: Rgb888) {
        let style = MonoTextStyle::new(&FONT_7X13, color);
        let _ = Text::with_baseline(text, top_left, style, Baseline::Top).draw(self);
    }

    /// Draws an image of `levels`-level pixels (row-major, `width` wide) as
    /// gray squares of `scale` screen pixels; `hidden` pixels are drawn as a
    /// hatch (what the model was not shown).
    pub fn image(
        &mut self,
        top_left: Point,
        image: &[u8],
        width: usize,
        levels: usize,
        scale: u32,
        hidden: impl Fn(usize) -> bool,
    ) {
        for (pos, &level) in image.iter().enumerate() {
            let (y, x) = ((pos / width) as i32, (pos % width) as i32);
            let at = top_left + Point::new(x * scale as i32, y * scale as i32);
            let color = if hidden(pos) {
                if (x + y) % 2 == 0 {
                    Rgb888::new(90, 40, 40)
                } else {
                    Rgb888::new(50, 20, 20)
                }
            } else {
                let v = (usize::from(level) * 255 / (levels - 1)) as u8;
                Rgb888::new(v, v, v)
            };
            self.fill(at, Size::new(scale, scale), color);
        }
    }

    /// Height of one line of [`Canvas::text`].
    pub const LINE: u32 = 13;

    /// Saves the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> anyhow::Result<()> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer =
            encoder.write_header().with_context(|| format!("cannot write {}", path.display()))?;
        writer
            .write_image_data(&self.rgb)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writer.finish().with_context(|| format!("cannot write {}", path.display()))?;
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
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < self.width && (p.y as u32) < self.height {
                let i = 3 * (p.y as usize * self.width as usize + p.x as usize);
                self.rgb[i..i + 3].copy_from_slice(&[c.r(), c.g(), c.b()]);
            }
        }
        Ok(())
    }
}
