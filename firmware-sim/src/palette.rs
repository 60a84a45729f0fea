//! How levels and text look on each display's colours.

use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, RgbColor};

/// A display colour type the app can draw with.
pub trait Palette: embedded_graphics::pixelcolor::PixelColor {
    /// Screen background and not-yet-sampled pixels.
    fn background() -> Self;
    /// The status line.
    fn text() -> Self;
    /// A pixel of `level` out of `levels`.
    fn level(level: u8, levels: usize) -> Self;
}

/// Monochrome OLED (SSD1306): a level is lit from the upper half up.
impl Palette for BinaryColor {
    fn background() -> Self {
        BinaryColor::Off
    }
    fn text() -> Self {
        BinaryColor::On
    }
    fn level(level: u8, levels: usize) -> Self {
        if 2 * usize::from(level) >= levels {
            BinaryColor::On
        } else {
            BinaryColor::Off
        }
    }
}

/// Colour TFT (ST7789): a gray ramp; the status line in amber.
impl Palette for Rgb565 {
    fn background() -> Self {
        Rgb565::BLACK
    }
    fn text() -> Self {
        Rgb565::new(31, 45, 0)
    }
    fn level(level: u8, levels: usize) -> Self {
        let v = (usize::from(level) * 255 / (levels - 1).max(1)) as u8;
        Rgb565::new(v >> 3, v >> 2, v >> 3)
    }
}
