//! Firmware-style Gated PixelCNN generation on a small display.
//!
//! [`app`] is shaped like firmware: `no_std`, no heap, one init and then a
//! loop of [`app::App::step`], each step sampling one pixel with the
//! incremental int8 runtime and drawing it through embedded-graphics. The
//! model sits in flash ([`flash::DEFAULT_MODEL`]), the executor's state in a
//! caller-provided buffer (a static or the stack). [`host`] (feature `host`,
//! on by default) is the desktop harness: a simulated SSD1306 or ST7789, a
//! clock, and PNG/GIF output.
#![cfg_attr(not(feature = "host"), no_std)]
#![deny(missing_docs)]

pub mod app;
pub mod flash;
pub mod palette;

#[cfg(feature = "host")]
pub mod host;

pub use app::{App, Clock, Config, InitError, Step, StepError};
pub use palette::Palette;
