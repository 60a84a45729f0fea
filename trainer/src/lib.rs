//! The trainer's library: data, model, checkpoints, ONNX export, commands.
//! The `trainer` binary is a thin wrapper; tests use the library directly.

pub mod backend;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod digits;
pub mod engine;
pub use pixelcnn_runtime::data;
pub mod model;
pub mod plot;
pub mod samples;
