//! `trainer`: trains Gated PixelCNN models, evaluates them and exports ONNX.

use std::process::ExitCode;

use clap::Parser;

use pixelcnn_trainer::{cli, commands};

fn main() -> ExitCode {
    match commands::run(cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
