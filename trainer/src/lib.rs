//! The trainer's library: data, model, checkpoints, ONNX export, commands.
//! The `trainer` binary is a thin wrapper; tests use the library directly.

/// `println!` that ignores a closed stdout: a run piped into `head` keeps
/// training and checkpointing; only its messages are lost.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

pub mod backend;
#[cfg(feature = "burn")]
mod burn_backend;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod digits;
pub mod engine;
pub use pixelcnn_runtime::data;
pub mod init;
// burn's network: the `burn` backend and the engine's equality tests only
// (the `burn` feature, implied by `wgpu` and `cuda`).
#[cfg(feature = "burn")]
pub mod model;
pub mod plot;
// The same progress lines as the `pixelcnn` tool: a bar on a terminal, a line
// every few seconds in logs. One file, shared, so both tools behave alike.
#[path = "../../src/progress.rs"]
pub mod progress;
// The output checks of the `pixelcnn` tool: the extension says what is
// written, and no input is overwritten.
#[path = "../../src/output.rs"]
pub mod output;
// int8 calibration as `pixelcnn` runs it, so an export stores the same ranges.
#[path = "../../src/calibration.rs"]
pub mod calibration;
// The numeric options' value parsers of the `pixelcnn` tool.
#[path = "../../src/numbers.rs"]
pub mod numbers;
pub mod samples;
