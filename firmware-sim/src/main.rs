//! `pixelcnn-firmware-sim`: watch the firmware draw digits pixel by pixel
//! on a simulated SSD1306 OLED or ST7789 TFT. Headless by default: writes
//! `out/generation.gif` and `out/screen.png`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Parser;
use embedded_graphics::pixelcolor::Rgb888;
use pixelcnn_firmware_sim::host::{self, DisplayKind, OledColor, TftColor};
use pixelcnn_firmware_sim::{flash, Config, Palette};
use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::Model;

/// Draw Gated PixelCNN samples pixel by pixel on a virtual display, as the
/// firmware would on a device: int8 model in flash, no heap, one pixel per
/// loop step.
#[derive(Debug, Parser)]
#[command(name = "pixelcnn-firmware-sim", version, about)]
struct Args {
    /// Class of every digit; default: one digit of each class in turn.
    #[arg(long)]
    class: Option<usize>,
    /// Seed of the first digit; digit i uses seed + i (as `pixelcnn sample`).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of digits.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Sampling temperature.
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Which display to simulate.
    #[arg(long, value_enum, default_value_t = DisplayKind::Ssd1306)]
    display: DisplayKind,
    /// A .pcnn model (from `pixelcnn convert`) instead of the bundled int8
    /// model.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Folder for generation.gif and screen.png.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Pixels between two GIF frames.
    #[arg(long, default_value_t = 56)]
    frame_every: usize,
    /// Also show a live window (needs the `window` feature and SDL2).
    #[arg(long)]
    window: bool,
}

/// `println!` that returns the write error instead of panicking: a closed
/// stdout ends the program quietly in `main`, after the files are written.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn run(args: &Args) -> anyhow::Result<()> {
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.frame_every == 0 {
        bail!("--frame-every must be at least 1");
    }
    if args.window && !cfg!(feature = "window") {
        bail!("--window needs a build with `--features window` (and SDL2 installed)");
    }
    // Host-side loading: a file is copied into an aligned buffer that lives
    // as long as the program, like flash.
    let bytes: &'static [u8] = match &args.model {
        None => &flash::DEFAULT_MODEL.0,
        Some(path) => {
            let raw = std::fs::read(path)
                .with_context(|| format!("cannot read model {}", path.display()))?;
            Box::leak(Box::new(AlignedBytes::new(&raw))).as_bytes()
        }
    };
    let model = format::parse(bytes)
        .context("cannot load the model (convert one with `pixelcnn convert`)")?;
    let config = Config {
        count: args.count,
        class: args.class,
        seed: args.seed,
        temperature: args.temperature,
        ..Config::default()
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    match args.display {
        DisplayKind::Ssd1306 => draw::<OledColor>(&model, args, config),
        DisplayKind::St7789 => draw::<TftColor>(&model, args, config),
    }
}

fn draw<C: Palette + Into<Rgb888>>(
    model: &Model<'_>,
    args: &Args,
    config: Config,
) -> anyhow::Result<()> {
    let mut live = window::Live::new(args.window, args.display)?;
    let gif = args.out.join("generation.gif");
    let png = args.out.join("screen.png");
    let mut writer = host::GifWriter::new(&gif, 4);
    let run = host::run::<C>(model, args.display, config, args.frame_every, |d, frame| {
        live.show(d);
        writer.push(frame)
    })?;
    let frames = writer.finish()?;
    host::save_png(&png, &run.screen)?;
    let mut sorted = run.micros.clone();
    sorted.sort_unstable();
    let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p).round() as usize];
    let mean = sorted.iter().map(|&v| f64::from(v)).sum::<f64>() / sorted.len().max(1) as f64;
    let what = if config.count == 1 { "image" } else { "images" };
    say!(
        "drew {} {what}, {} pixels, on a simulated {} ({} model)",
        config.count,
        run.micros.len(),
        args.display.name(),
        model.precision()
    )?;
    say!("per-pixel latency: p50 {} µs, p99 {} µs, mean {mean:.1} µs", pct(0.5), pct(0.99))?;
    say!("wrote {} ({frames} frames) and {}", gif.display(), png.display())?;
    Ok(())
}

#[cfg(feature = "window")]
mod window {
    use embedded_graphics::prelude::*;
    use embedded_graphics_simulator::{SimulatorDisplay, SimulatorEvent, Window};
    use pixelcnn_firmware_sim::host::DisplayKind;

    pub struct Live(Option<Window>);

    impl Live {
        pub fn new(on: bool, kind: DisplayKind) -> anyhow::Result<Self> {
            Ok(Live(on.then(|| Window::new("pixelcnn-edge", &kind.output_settings()))))
        }

        pub fn show<C>(&mut self, display: &SimulatorDisplay<C>)
        where
            C: PixelColor
                + Into<embedded_graphics::pixelcolor::Rgb888>
                + From<embedded_graphics::pixelcolor::Rgb888>,
        {
            if let Some(w) = &mut self.0 {
                w.update(display);
                if w.events().any(|e| e == SimulatorEvent::Quit) {
                    std::process::exit(0);
                }
            }
        }
    }
}

#[cfg(not(feature = "window"))]
mod window {
    use embedded_graphics::prelude::*;
    use embedded_graphics_simulator::SimulatorDisplay;
    use pixelcnn_firmware_sim::host::DisplayKind;

    pub struct Live;

    impl Live {
        pub fn new(_on: bool, _kind: DisplayKind) -> anyhow::Result<Self> {
            Ok(Live)
        }

        pub fn show<C: PixelColor>(&mut self, _display: &SimulatorDisplay<C>) {}
    }
}
