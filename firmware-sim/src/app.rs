//! The firmware application: init once, then one pixel per step.
//!
//! Only `pixelcnn-runtime`, `embedded-graphics` and `heapless`; no heap.
//! Digit `i` is sampled with seed `seed + i` and class `class` (or `i mod
//! classes`), exactly as `pixelcnn sample --seed` does, so the screen can be
//! checked against the runtime's own samples.

use core::fmt::Write;

use embedded_graphics::mono_font::{ascii, MonoFont, MonoTextStyle};
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use pixelcnn_runtime::rng::{self, Rng};
use pixelcnn_runtime::state::check_class;
use pixelcnn_runtime::{Arch, Error, Executor, Model, PixelExecutor};

use crate::flash::MAX_PIXELS;
use crate::palette::Palette;

/// Microseconds since some fixed start.
pub trait Clock {
    /// The current time in microseconds.
    fn now_us(&self) -> u64;
}

/// What to draw.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Number of digits.
    pub count: usize,
    /// Class of every digit; `None` cycles through the classes.
    pub class: Option<usize>,
    /// Seed of digit 0; digit `i` uses `seed + i`.
    pub seed: u64,
    /// Sampling temperature.
    pub temperature: f32,
    /// Screen pixels per image pixel.
    pub scale: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config { count: 10, class: None, seed: 1, temperature: 1.0, scale: 2 }
    }
}

/// Why the app cannot start.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InitError {
    /// The runtime refused the model, the label or the temperature.
    Runtime(Error),
    /// The model's images are larger than the firmware's image buffer.
    ImageTooLarge {
        /// Pixels of one image.
        pixels: usize,
        /// Pixels the firmware was built for.
        max: usize,
    },
    /// Not even one digit fits on the display.
    DisplayTooSmall,
    /// The model is not class-conditional but a class was given, or the
    /// class is out of range.
    Class(Error),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Runtime(e) => write!(f, "{e}"),
            InitError::ImageTooLarge { pixels, max } => {
                write!(f, "the model's images have {pixels} pixels, the firmware holds {max}")
            }
            InitError::DisplayTooSmall => f.write_str("the display is too small for one image"),
            InitError::Class(e) => write!(f, "{e}"),
        }
    }
}

impl From<Error> for InitError {
    fn from(e: Error) -> Self {
        InitError::Runtime(e)
    }
}

/// A failed step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepError<E> {
    /// The display refused to draw.
    Display(E),
    /// The runtime failed (cannot happen after a successful init).
    Runtime(Error),
}

/// What a step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Sampled and drew one pixel.
    Pixel {
        /// Digit index.
        digit: usize,
        /// Raster index of the pixel in its digit.
        pixel: usize,
        /// Sampling time of this pixel in microseconds (drawing excluded).
        micros: u32,
    },
    /// Every digit is complete.
    Finished,
}

/// Where digits go on the screen.
#[derive(Clone, Copy, Debug)]
struct Layout {
    font: &'static MonoFont<'static>,
    status_height: u32,
    columns: u32,
    rows: u32,
    cell: Size,
    origin: Point,
    gap: u32,
}

const GAP: u32 = 4;

impl Layout {
    fn new(display: Size, arch: &Arch, scale: u32) -> Option<Layout> {
        let font = if display.width >= 200 { &ascii::FONT_6X10 } else { &ascii::FONT_4X6 };
        let status_height = font.character_size.height + 2;
        let cell = Size::new(arch.width as u32 * scale, arch.height as u32 * scale);
        let columns = (display.width + GAP) / (cell.width + GAP);
        let rows =
            display.height.saturating_sub(status_height).saturating_add(GAP) / (cell.height + GAP);
        if columns == 0 || rows == 0 {
            return None;
        }
        // Centre the block of digits below the status line.
        let used_w = columns * cell.width + (columns - 1) * GAP;
        let used_h = rows * cell.height + (rows - 1) * GAP;
        let origin = Point::new(
            ((display.width - used_w) / 2) as i32,
            (status_height + (display.height - status_height - used_h) / 2) as i32,
        );
        Some(Layout { font, status_height, columns, rows, cell, origin, gap: GAP })
    }

    fn slots(&self) -> usize {
        (self.columns * self.rows) as usize
    }

    fn slot_origin(&self, digit: usize) -> Point {
        let slot = (digit % self.slots()) as u32;
        let (c, r) = (slot % self.columns, slot / self.columns);
        self.origin
            + Point::new(
                (c * (self.cell.width + self.gap)) as i32,
                (r * (self.cell.height + self.gap)) as i32,
            )
    }
}

/// The firmware application.
#[derive(Debug)]
pub struct App<'m> {
    exec: Executor<'m, 'm>,
    arch: Arch,
    config: Config,
    layout: Layout,
    display_size: Size,
    digit: usize,
    pixel: usize,
    rng: Rng,
    image: [u8; MAX_PIXELS],
    digit_micros: u64,
}

impl<'m> App<'m> {
    /// Init: checks that the model, the buffers, the labels and the display
    /// fit, and sets up digit 0. Everything the loop needs is sized here.
    ///
    /// # Errors
    /// [`InitError`] saying what does not fit.
    pub fn new(
        model: &'m Model<'m>,
        state: &'m mut [u32],
        display_size: Size,
        config: Config,
    ) -> Result<Self, InitError> {
        let arch = *model.arch();
        if arch.pixels() > MAX_PIXELS {
            return Err(InitError::ImageTooLarge { pixels: arch.pixels(), max: MAX_PIXELS });
        }
        pixelcnn_runtime::int8::softmax::inverse_temperature(config.temperature)?;
        let layout = Layout::new(display_size, &arch, config.scale.max(1))
            .ok_or(InitError::DisplayTooSmall)?;
        let class_of = |i| class_for(&arch, config.class, i);
        // Every digit's label is checked now, not halfway through the loop.
        if config.count > 0 {
            for i in 0..arch.classes.max(1).min(config.count) {
                check_class(&arch, class_of(i)).map_err(InitError::Class)?;
            }
        }
        let exec = Executor::new(model, state, class_of(0))?;
        Ok(App {
            exec,
            arch,
            config,
            layout,
            display_size,
            digit: 0,
            pixel: 0,
            rng: rng::from_seed(config.seed),
            image: [0; MAX_PIXELS],
            digit_micros: 0,
        })
    }

    /// Clears the screen and draws the first status line.
    ///
    /// # Errors
    /// The display's error.
    pub fn start<D, C>(&mut self, display: &mut D) -> Result<(), D::Error>
    where
        D: DrawTarget<Color = C>,
        C: Palette,
    {
        display.clear(C::background())?;
        self.draw_status(display)
    }

    /// Samples and draws one pixel, moving to the next digit when one is
    /// complete.
    ///
    /// # Errors
    /// The display's error.
    pub fn step<D, C>(
        &mut self,
        display: &mut D,
        clock: &impl Clock,
    ) -> Result<Step, StepError<D::Error>>
    where
        D: DrawTarget<Color = C>,
        C: Palette,
    {
        if self.digit >= self.config.count {
            return Ok(Step::Finished);
        }
        let pixels = self.arch.pixels();
        if self.pixel == 0 {
            self.begin_digit(display)?;
        }
        let t0 = clock.now_us();
        let level =
            self.exec.sample(self.config.temperature, &mut self.rng).map_err(StepError::Runtime)?;
        self.exec.push(level).map_err(StepError::Runtime)?;
        let micros = clock.now_us().saturating_sub(t0);
        self.digit_micros += micros;
        self.image[self.pixel] = level;
        let (y, x) = ((self.pixel / self.arch.width) as i32, (self.pixel % self.arch.width) as i32);
        let s = self.config.scale.max(1);
        let at = self.layout.slot_origin(self.digit) + Point::new(x * s as i32, y * s as i32);
        Rectangle::new(at, Size::new(s, s))
            .into_styled(PrimitiveStyle::with_fill(C::level(level, self.arch.levels)))
            .draw(display)
            .map_err(StepError::Display)?;
        let done = Step::Pixel { digit: self.digit, pixel: self.pixel, micros: micros as u32 };
        self.pixel += 1;
        self.draw_status(display).map_err(StepError::Display)?;
        if self.pixel == pixels {
            self.digit += 1;
            self.pixel = 0;
        }
        Ok(done)
    }

    fn begin_digit<D, C>(&mut self, display: &mut D) -> Result<(), StepError<D::Error>>
    where
        D: DrawTarget<Color = C>,
        C: Palette,
    {
        let class = class_for(&self.arch, self.config.class, self.digit);
        self.exec.restart(class).map_err(StepError::Runtime)?;
        self.rng = rng::from_seed(self.config.seed.wrapping_add(self.digit as u64));
        self.digit_micros = 0;
        if self.digit.is_multiple_of(self.layout.slots()) && self.digit > 0 {
            // A new page: clear the digits, keep the status line.
            let top = self.layout.status_height as i32;
            Rectangle::new(
                Point::new(0, top),
                Size::new(self.display_size.width, self.display_size.height - top as u32),
            )
            .into_styled(PrimitiveStyle::with_fill(C::background()))
            .draw(display)
            .map_err(StepError::Display)?;
        }
        Ok(())
    }

    fn draw_status<D, C>(&self, display: &mut D) -> Result<(), D::Error>
    where
        D: DrawTarget<Color = C>,
        C: Palette,
    {
        let mut line: heapless::String<48> = heapless::String::new();
        let digit = self.digit.min(self.config.count.saturating_sub(1));
        match class_for(&self.arch, self.config.class, digit) {
            Some(c) => {
                let _ = write!(line, "class {c} ");
            }
            None => {
                let _ = write!(line, "image {digit} ");
            }
        }
        let _ = write!(line, "px {}/{}", self.pixel, self.arch.pixels());
        if self.pixel > 0 {
            let _ = write!(line, " {}us/px", self.digit_micros / self.pixel as u64);
        }
        Rectangle::new(
            Point::zero(),
            Size::new(self.display_size.width, self.layout.status_height),
        )
        .into_styled(PrimitiveStyle::with_fill(C::background()))
        .draw(display)?;
        let style = MonoTextStyle::new(self.layout.font, C::text());
        Text::with_baseline(&line, Point::new(1, 1), style, Baseline::Top).draw(display)?;
        Ok(())
    }

    /// The model's architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The levels of the digit being drawn (or the last one drawn).
    pub fn image(&self) -> &[u8] {
        &self.image[..self.arch.pixels()]
    }

    /// Top-left screen corner of digit `digit`.
    pub fn slot_origin(&self, digit: usize) -> Point {
        self.layout.slot_origin(digit)
    }

    /// Digits on one screen.
    pub fn slots(&self) -> usize {
        self.layout.slots()
    }

    /// The class digit `digit` is drawn with.
    pub fn class_of(&self, digit: usize) -> Option<usize> {
        class_for(&self.arch, self.config.class, digit)
    }
}

fn class_for(arch: &Arch, class: Option<usize>, digit: usize) -> Option<usize> {
    match (arch.classes, class) {
        (0, c) => c,
        (_, Some(c)) => Some(c),
        (n, None) => Some(digit % n),
    }
}
