//! `trainer`: trains Gated PixelCNN models. Training, evaluation and ONNX
//! export land with issue #3; until then this binary says so and fails.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "trainer: training is not implemented yet (issue #3). The runtime's \
         architecture is {} parameters for the MNIST default.",
        pixelcnn_runtime::Arch::MNIST_GATED.param_count()
    );
    ExitCode::FAILURE
}
