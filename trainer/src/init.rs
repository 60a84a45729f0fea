//! Initial parameters of a new run.

use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::Arch;

/// Initial parameters for training: uniform weights with variance 1/fan-in
/// (as the runtime's random models), zero biases and class biases.
pub fn initial_params(arch: &Arch, seed: u64) -> Vec<f32> {
    let mut params = random_params(arch, seed);
    let mut offset = 0;
    for spec in arch.tensors() {
        let len = spec.len();
        if !spec.kind.is_weight() {
            params[offset..offset + len].fill(0.0);
        }
        offset += len;
    }
    params
}
