//! A headless run: the expected number of frames, and a final screen whose
//! display pixels are the runtime's own samples for those seeds, pixel for
//! pixel.

use embedded_graphics::pixelcolor::{BinaryColor, Rgb565};
use embedded_graphics::prelude::*;
use pixelcnn_firmware_sim::host::{self, DisplayKind};
use pixelcnn_firmware_sim::{flash, Config, Palette};
use pixelcnn_runtime::{format, rng, sampler, Executor, Model};

fn model() -> Model<'static> {
    format::parse(&flash::DEFAULT_MODEL.0).unwrap()
}

/// The runtime's sample for digit `i` of `config`, as `pixelcnn sample` draws it.
fn runtime_sample(model: &Model<'_>, config: &Config, digit: usize) -> Vec<u8> {
    let mut state = vec![0u32; model.state_words()];
    let class = Some(config.class.unwrap_or(digit % 10));
    let mut exec = Executor::new(model, &mut state, class).unwrap();
    let mut image = vec![0u8; 784];
    let mut g = rng::from_seed(config.seed.wrapping_add(digit as u64));
    sampler::generate(&mut exec, class, config.temperature, &mut g, &mut image).unwrap();
    image
}

fn check_screen<C>(kind: DisplayKind)
where
    C: Palette + Into<embedded_graphics::pixelcolor::Rgb888> + core::fmt::Debug,
{
    let model = model();
    let config = Config { count: 5, seed: 7, ..Config::default() };
    let frame_every = 100;
    let mut frames = Vec::new();
    let run = host::run::<C>(&model, kind, config, frame_every, |_, f| {
        frames.push(f.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(run.micros.len(), 5 * 784);
    assert_eq!(run.frames, (5 * 784usize).div_ceil(frame_every));
    assert_eq!(frames.len(), run.frames);
    assert_eq!(frames.last(), Some(&run.screen));
    // The digits of the last page are on the screen, 2×2 per pixel.
    let slots = run.origins.iter().skip(1).position(|&o| o == run.origins[0]).map_or(5, |p| p + 1);
    let first_on_screen = (5 - 1) / slots * slots;
    for digit in first_on_screen..5 {
        let want = runtime_sample(&model, &config, digit);
        let origin = run.origins[digit];
        for (pos, &level) in want.iter().enumerate() {
            let at = origin + Point::new(2 * (pos % 28) as i32, 2 * (pos / 28) as i32);
            for d in [Point::zero(), Point::new(1, 1)] {
                assert_eq!(
                    run.display.get_pixel(at + d),
                    C::level(level, 2),
                    "{kind:?}: digit {digit}, pixel {pos}"
                );
            }
        }
    }
}

#[test]
fn oled_screen_shows_the_runtime_samples() {
    check_screen::<BinaryColor>(DisplayKind::Ssd1306);
}

#[test]
fn tft_screen_shows_the_runtime_samples() {
    check_screen::<Rgb565>(DisplayKind::St7789);
}

#[test]
fn init_refuses_what_does_not_fit() {
    let model = model();
    let mut state = vec![0u32; flash::STATE_WORDS];
    let bad_class = Config { class: Some(10), ..Config::default() };
    let err = pixelcnn_firmware_sim::App::new(&model, &mut state, Size::new(128, 64), bad_class)
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    let mut state = vec![0u32; 10];
    assert!(pixelcnn_firmware_sim::App::new(
        &model,
        &mut state,
        Size::new(128, 64),
        Config::default()
    )
    .is_err());
    let mut state = vec![0u32; flash::STATE_WORDS];
    let err =
        pixelcnn_firmware_sim::App::new(&model, &mut state, Size::new(40, 40), Config::default())
            .unwrap_err();
    assert_eq!(err, pixelcnn_firmware_sim::InitError::DisplayTooSmall);
}

#[test]
fn the_gif_is_written_as_frames_arrive() {
    let path = std::env::temp_dir().join(format!("pixelcnn-gif-{}.gif", std::process::id()));
    // Busy frames, larger than the file buffer once compressed.
    let frame = |v: usize| host::Frame {
        width: 256,
        height: 128,
        rgb: (0..256 * 128 * 3u64)
            .map(|i| ((i + 1_000_003 * v as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
            .collect(),
    };
    let mut gif = host::GifWriter::new(&path, 4);
    gif.push(&frame(0)).unwrap();
    gif.push(&frame(1)).unwrap();
    // The first frame is on disk before the run ends: nothing piles up in memory.
    let after_two = std::fs::metadata(&path).unwrap().len();
    gif.push(&frame(2)).unwrap();
    assert_eq!(gif.finish().unwrap(), 3);
    let end = std::fs::metadata(&path).unwrap().len();
    assert!(after_two > 0 && end > after_two, "{after_two} then {end} bytes");
    let mut decoder = gif::DecodeOptions::new();
    decoder.set_color_output(gif::ColorOutput::RGBA);
    let mut reader = decoder.read_info(std::fs::File::open(&path).unwrap()).unwrap();
    let mut delays = Vec::new();
    while let Some(f) = reader.read_next_frame().unwrap() {
        delays.push(f.delay);
    }
    assert_eq!(delays, [4, 4, 300]);
}
