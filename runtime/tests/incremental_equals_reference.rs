//! The incremental executors (gated and plain) compute what the full forward
//! pass computes, at every pixel: logits within 1e-5 (relative to the largest logit, or absolute below 1) over many architectures
//! and weights.

mod common;

use common::*;
use pixelcnn_runtime::{reference, rng, sampler, Arch, Incremental, Weights};
use proptest::prelude::*;

/// Largest difference, relative to the largest logit (at least 1).
const TOLERANCE: f32 = 1e-5;

/// Max abs difference; a NaN anywhere gives NaN, which fails the check.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, |m, d| {
        if m.is_nan() || d.is_nan() {
            f32::NAN
        } else {
            m.max(d)
        }
    })
}

fn assert_matches_reference(arch: Arch, seed: u64, ask: impl Fn(usize) -> bool + Copy) {
    let params = params(&arch, seed);
    let weights = Weights::new(arch, &params).unwrap();
    let image = random_image(&arch, seed);
    let class = label(&arch, seed);
    let expected = reference::forward(&weights, &image, class).unwrap();
    let got = incremental_logits(&weights, &image, class, ask);
    let k = arch.levels;
    for pos in (0..arch.pixels()).filter(|&pos| ask(pos)) {
        let want = &expected[pos * k..(pos + 1) * k];
        let d = max_abs_diff(&got[pos * k..(pos + 1) * k], want);
        // Float sums in another order: the error grows with the logits' size
        // (the plain stack's residuals are not squashed by gates).
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        assert!(d <= TOLERANCE * scale, "{arch:?} seed {seed}: pixel {pos} differs by {d}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_pixel_matches_the_full_pass(arch in gated_archs(), seed in any::<u64>()) {
        assert_matches_reference(arch, seed, |_| true);
    }

    #[test]
    fn skipping_logits_does_not_change_later_pixels(arch in gated_archs(), seed in any::<u64>()) {
        // Completion pushes known pixels without asking for their logits.
        assert_matches_reference(arch, seed, |pos| (pos as u64 ^ seed).is_multiple_of(3));
    }

    #[test]
    fn every_pixel_of_a_plain_pixelcnn_matches_the_full_pass(
        arch in plain_archs(),
        seed in any::<u64>(),
    ) {
        assert_matches_reference(arch, seed, |_| true);
        assert_matches_reference(arch, seed, |pos| (pos as u64 ^ seed).is_multiple_of(3));
    }
}

#[test]
fn mnist_sized_plain_model_matches() {
    let arch = Arch { channels: 8, head: 8, blocks: 3, ..plain(Arch::MNIST_GATED) };
    assert_matches_reference(arch, 2, |_| true);
}

#[test]
fn mnist_sized_conditional_model_matches() {
    let arch = Arch { channels: 8, head: 8, blocks: 3, ..Arch::MNIST_GATED };
    assert_matches_reference(arch, 1, |_| true);
}

#[test]
fn wide_kernels_on_a_tiny_image_match() {
    // Kernels wider than the image: every tap but the centre is padding.
    let arch = Arch { height: 2, width: 2, first_kernel: 7, kernel: 5, ..gated(2, 2, 7, 5, 2) };
    assert_matches_reference(arch, 5, |_| true);
}

#[test]
fn restart_forgets_the_previous_image() {
    let arch = Arch { classes: 4, ..gated(5, 6, 5, 3, 2) };
    let params = params(&arch, 9);
    let weights = Weights::new(arch, &params).unwrap();
    let image = random_image(&arch, 9);
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(1)).unwrap();
    // A first image of another class, left half done.
    for _ in 0..arch.pixels() / 2 {
        inc.push(1).unwrap();
    }
    let nats = sampler::log_likelihood(&mut inc, Some(2), &image).unwrap();
    let logits = reference::forward(&weights, &image, Some(2)).unwrap();
    let expected: f64 = image
        .iter()
        .enumerate()
        .map(|(pos, &l)| sampler::log_probability(&logits[pos * 2..pos * 2 + 2], l.into()))
        .sum();
    assert!((nats - expected).abs() < 1e-4, "{nats} vs {expected}");
}

#[test]
fn sampling_equals_naive_sampling_with_the_same_seed() {
    // The naive path: one full forward pass per pixel over the image so far.
    let arch = Arch { levels: 4, classes: 3, ..gated(6, 5, 5, 3, 2) };
    let params = params(&arch, 21);
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(2)).unwrap();
    let mut fast = vec![0u8; arch.pixels()];
    sampler::generate(&mut inc, Some(2), 0.8, &mut rng::from_seed(77), &mut fast).unwrap();

    let mut naive = vec![0u8; arch.pixels()];
    let mut r = rng::from_seed(77);
    for pos in 0..arch.pixels() {
        let logits = reference::forward(&weights, &naive, Some(2)).unwrap();
        naive[pos] = sampler::sample_level(&logits[pos * 4..pos * 4 + 4], 0.8, &mut r).unwrap();
    }
    assert_eq!(fast, naive);
}
