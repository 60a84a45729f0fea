//! Random parameters, for tests, demos and receptive-field pictures.

use crate::arch::Arch;
use crate::rng::{from_seed, uniform_f32};
use alloc::vec::Vec;

/// Parameters for `arch` drawn from a seeded stream.
///
/// Weights are uniform with variance `1 / fan_in` (activations keep their
/// scale through depth); biases and class biases are uniform in
/// `[-0.5, 0.5)` and never all zero, so tests see every bias path, padded
/// rows included.
pub fn random_params(arch: &Arch, seed: u64) -> Vec<f32> {
    let mut rng = from_seed(seed);
    let mut out = Vec::with_capacity(arch.param_count());
    for spec in arch.tensors() {
        let scale = if spec.kind.is_weight() {
            // Fan-in of a weight tensor: every dimension but the output one.
            let [a, b, c, d] = spec.shape;
            let fan_in = if a == 1 && b == 1 { d } else { b * c * d };
            libm::sqrtf(3.0 / fan_in.max(1) as f32)
        } else {
            0.5
        };
        for _ in 0..spec.len() {
            out.push((2.0 * uniform_f32(&mut rng) - 1.0) * scale);
        }
    }
    out
}
