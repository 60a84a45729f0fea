//! The f16-arithmetic kernel (`neon-fp16`, aarch64 CPUs with FP16 such as
//! the Pi 5's Cortex-A76) keeps an f16 model's negative log-likelihood
//! within 0.1% of the f32 model's. Its own binary: it prefers that kernel
//! for the whole process. Skipped (and says so) where the CPU has no FP16
//! arithmetic; `scripts/cross-test.sh` runs it under qemu as a Cortex-A76.

use pixelcnn_runtime::kernels::FloatKernel;
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{f16, sampler, Arch, Incremental, Param, Variant, Weights};

fn nll<T: Param>(arch: &Arch, params: &[T], images: &[Vec<u8>], class: Option<usize>) -> f64 {
    let weights = Weights::new(*arch, params).unwrap();
    let mut state = vec![0.0f32; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, class).unwrap();
    images.iter().map(|img| -sampler::log_likelihood(&mut inc, class, img).unwrap()).sum()
}

#[test]
fn f16_arithmetic_keeps_the_nll_within_a_thousandth_of_f32() {
    if !FloatKernel::NeonFp16.is_available() {
        eprintln!("no FP16 arithmetic on this CPU: nothing to test");
        return;
    }
    // Rows long enough for several f16 runs of 32 inputs and tails.
    let arch = Arch {
        variant: Variant::Gated,
        height: 8,
        width: 9,
        levels: 4,
        classes: 3,
        channels: 24,
        blocks: 3,
        first_kernel: 5,
        kernel: 3,
        head: 40,
    };
    let images: Vec<Vec<u8>> = (0..6)
        .map(|s| (0..arch.pixels()).map(|p| ((p * 7 + s * 13) % 11 % arch.levels) as u8).collect())
        .collect();
    for seed in 0..3 {
        let params = random_params(&arch, seed);
        let halves: Vec<f16> = params.iter().map(|&w| f16::from_f32(w)).collect();
        let class = Some(seed as usize % arch.classes);
        let want = nll(&arch, &params, &images, class);
        assert!(FloatKernel::NeonFp16.prefer());
        let got = nll(&arch, &halves, &images, class);
        assert!(FloatKernel::Neon.prefer());
        let exact = nll(&arch, &halves, &images, class);
        let drift = (got - want).abs() / want;
        assert!(drift < 1e-3, "seed {seed}: f16 arithmetic {got}, f32 {want}: {drift:e}");
        // And it did compute something else than the exact kernel.
        assert_ne!(got, exact, "seed {seed}: the FP16 kernel gave the exact kernel's NLL");
    }
}
