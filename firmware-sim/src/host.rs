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
    /// Frames handed to the caller: one every `frame_every` pixels, and the
    /// final screen.
    pub frames: usize,
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
/// colour type `C`, handing `on_frame` the display and its rendering every
/// `frame_every` pixels and at the end. Frames are not kept: a long run
/// streams them (to a GIF) in constant memory.
///
/// # Errors
/// The app's init error, as text, or the first error of `on_frame`.
pub fn run<C>(
    model: &Model<'_>,
    kind: DisplayKind,
    config: Config,
    frame_every: usize,
    mut on_frame: impl FnMut(&SimulatorDisplay<C>, &Frame) -> anyhow::Result<()>,
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
    let mut frames = 0usize;
    let mut micros = Vec::with_capacity(config.count * model.arch().pixels());
    let infallible = |e: StepError<core::convert::Infallible>| match e {
        StepError::Runtime(e) => anyhow::anyhow!("the runtime failed: {e}"),
        StepError::Display(never) => match never {},
    };
    let Ok(()) = app.start(&mut display);
    while let Step::Pixel { micros: us, .. } = app.step(&mut display, &clock).map_err(infallible)? {
        micros.push(us);
        if micros.len() % frame_every == 0 {
            on_frame(&display, &frame(&display, &settings))?;
            frames += 1;
        }
    }
    let screen = frame(&display, &settings);
    if micros.len() % frame_every != 0 || frames == 0 {
        on_frame(&display, &screen)?;
        frames += 1;
    }
    Ok(Run { display, frames, micros, origins, screen })
}

/// An animated GIF written frame by frame: `delay_cs` hundredths of a
/// second per frame, the last one held for three seconds. It holds one frame
/// back (to give the last its longer delay), so memory stays constant.
pub struct GifWriter {
    path: std::path::PathBuf,
    encoder: Option<gif::Encoder<std::io::BufWriter<std::fs::File>>>,
    pending: Option<Frame>,
    delay_cs: u16,
    written: usize,
}

impl std::fmt::Debug for GifWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GifWriter")
            .field("path", &self.path)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

impl GifWriter {
    /// A writer to `path`; the file is created with the first frame, at that
    /// frame's size.
    pub fn new(path: &Path, delay_cs: u16) -> Self {
        GifWriter { path: path.to_owned(), encoder: None, pending: None, delay_cs, written: 0 }
    }

    fn write(&mut self, f: &Frame, delay: u16) -> anyhow::Result<()> {
        let (w, h) = (u16::try_from(f.width)?, u16::try_from(f.height)?);
        let encoder = match &mut self.encoder {
            Some(e) => e,
            None => {
                let file = std::fs::File::create(&self.path)
                    .with_context(|| format!("cannot create {}", self.path.display()))?;
                let mut e = gif::Encoder::new(std::io::BufWriter::new(file), w, h, &[])?;
                e.set_repeat(gif::Repeat::Infinite)?;
                self.encoder.insert(e)
            }
        };
        let mut g = gif::Frame::from_rgb_speed(w, h, &f.rgb, 10);
        g.delay = delay;
        encoder.write_frame(&g)?;
        self.written += 1;
        Ok(())
    }

    /// Adds a frame (written when the next one arrives or at [`GifWriter::finish`]).
    ///
    /// # Errors
    /// File or encoder errors.
    pub fn push(&mut self, frame: &Frame) -> anyhow::Result<()> {
        if let Some(previous) = self.pending.replace(frame.clone()) {
            self.write(&previous, self.delay_cs)?;
        }
        Ok(())
    }

    /// Writes the last frame, held for three seconds; returns the frame count.
    ///
    /// # Errors
    /// File or encoder errors, or no frame at all.
    pub fn finish(mut self) -> anyhow::Result<usize> {
        let Some(last) = self.pending.take() else { bail!("no frames to write") };
        self.write(&last, 300)?;
        Ok(self.written)
    }
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
