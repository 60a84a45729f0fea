//! The desktop harness: a simulated display, a clock, frames for a GIF and
//! the final screen as PNG. Allocation happens here, around the app, never
//! inside its loop.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use embedded_graphics::pixelcolor::{BinaryColor, Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_graphics_simulator::{
    BinaryColorTheme, OutputSettings, OutputSettingsBuilder, SimulatorDisplay,
};
use pixelcnn_runtime::Model;

use crate::app::{App, Clock, Config, Step, StepError};
use crate::flash::STATE_WORDS;
use crate::palette::Palette;

/// The clock of the host: microseconds since the harness started.
#[derive(Debug)]
pub struct HostClock(Instant);

impl HostClock {
    /// A clock starting now.
    pub fn new() -> Self {
        HostClock(Instant::now())
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for HostClock {
    fn now_us(&self) -> u64 {
        self.0.elapsed().as_micros() as u64
    }
}

/// The displays the simulator offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum DisplayKind {
    /// SSD1306 OLED, 128×64 monochrome.
    Ssd1306,
    /// ST7789 TFT, 240×240 colour.
    St7789,
}

impl DisplayKind {
    /// The panel's name, as a datasheet spells it.
    pub fn name(self) -> &'static str {
        match self {
            DisplayKind::Ssd1306 => "SSD1306 OLED",
            DisplayKind::St7789 => "ST7789 TFT",
        }
    }

    /// Panel size in pixels.
    pub fn size(self) -> Size {
        match self {
            DisplayKind::Ssd1306 => Size::new(128, 64),
            DisplayKind::St7789 => Size::new(240, 240),
        }
    }

    /// How the panel is rendered to PNG/GIF: the OLED blue-on-black theme
    /// at 2× with a pixel grid, the TFT at its own resolution.
    pub fn output_settings(self) -> OutputSettings {
        match self {
            DisplayKind::Ssd1306 => OutputSettingsBuilder::new()
                .theme(BinaryColorTheme::OledBlue)
                .scale(2)
                .pixel_spacing(0)
                .build(),
            DisplayKind::St7789 => OutputSettingsBuilder::new().scale(1).build(),
        }
    }
}

/// An RGB image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width × height × 3` bytes.
    pub rgb: Vec<u8>,
}

/// A finished headless run.
#[derive(Debug)]
pub struct Run<C: PixelColor> {
    /// The display at the end.
    pub display: SimulatorDisplay<C>,
    /// One frame every `frame_every` pixels, and the final screen.
    pub frames: Vec<Frame>,
    /// Sampling time of every pixel, µs.
    pub micros: Vec<u32>,
    /// Top-left corner of every digit on the screen where it was drawn.
    pub origins: Vec<Point>,
    /// The final screen rendered as the PNG will be.
    pub screen: Frame,
}

fn frame<C>(display: &SimulatorDisplay<C>, settings: &OutputSettings) -> Frame
where
    C: PixelColor + Into<Rgb888>,
{
    let image = display.to_rgb_output_image(settings);
    let buffer = image.as_image_buffer();
    Frame { width: buffer.width(), height: buffer.height(), rgb: buffer.as_raw().to_vec() }
}

/// Runs the app to the end on a simulated display of `kind`'s size and
/// colour type `C`, keeping a frame every `frame_every` pixels.
///
/// # Errors
/// The app's init error, as text.
pub fn run<C>(
    model: &Model<'_>,
    kind: DisplayKind,
    config: Config,
    frame_every: usize,
    mut on_frame: impl FnMut(&SimulatorDisplay<C>),
) -> anyhow::Result<Run<C>>
where
    C: Palette + Into<Rgb888>,
{
    if frame_every == 0 {
        bail!("--frame-every must be at least 1");
    }
    let settings = kind.output_settings();
    let mut display = SimulatorDisplay::<C>::with_default_color(kind.size(), C::background());
    let mut state = vec![0u32; STATE_WORDS.max(model.state_words())];
    let mut app = App::new(model, &mut state, kind.size(), config)
        .map_err(|e| anyhow::anyhow!("cannot start: {e}"))?;
    let origins = (0..config.count).map(|d| app.slot_origin(d)).collect();
    let clock = HostClock::new();
    let mut frames = Vec::new();
    let mut micros = Vec::with_capacity(config.count * model.arch().pixels());
    let infallible = |e: StepError<core::convert::Infallible>| match e {
        StepError::Runtime(e) => anyhow::anyhow!("the runtime failed: {e}"),
        StepError::Display(never) => match never {},
    };
    let Ok(()) = app.start(&mut display);
    while let Step::Pixel { micros: us, .. } = app.step(&mut display, &clock).map_err(infallible)? {
        micros.push(us);
        if micros.len() % frame_every == 0 {
            frames.push(frame(&display, &settings));
            on_frame(&display);
        }
    }
    if micros.len() % frame_every != 0 || frames.is_empty() {
        frames.push(frame(&display, &settings));
        on_frame(&display);
    }
    let screen = frame(&display, &settings);
    Ok(Run { display, frames, micros, origins, screen })
}

/// Writes frames as an animated GIF: `delay_cs` hundredths of a second per
/// frame, the last one held for three seconds.
///
/// # Errors
/// File or encoder errors.
pub fn save_gif(path: &Path, frames: &[Frame], delay_cs: u16) -> anyhow::Result<()> {
    let Some(first) = frames.first() else { bail!("no frames to write") };
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = gif::Encoder::new(
        std::io::BufWriter::new(file),
        first.width as u16,
        first.height as u16,
        &[],
    )?;
    encoder.set_repeat(gif::Repeat::Infinite)?;
    for (i, f) in frames.iter().enumerate() {
        let mut g = gif::Frame::from_rgb_speed(f.width as u16, f.height as u16, &f.rgb, 10);
        g.delay = if i + 1 == frames.len() { 300 } else { delay_cs };
        encoder.write_frame(&g)?;
    }
    Ok(())
}

/// Writes a frame as an 8-bit RGB PNG.
///
/// # Errors
/// File or encoder errors.
pub fn save_png(path: &Path, frame: &Frame) -> anyhow::Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), frame.width, frame.height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&frame.rgb)?;
    writer.finish()?;
    Ok(())
}

/// Marker so both colour types are used: SSD1306 draws `BinaryColor`, the
/// ST7789 `Rgb565`.
pub type OledColor = BinaryColor;
/// See [`OledColor`].
pub type TftColor = Rgb565;
