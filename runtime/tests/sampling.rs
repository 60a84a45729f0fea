//! Sampling, completion and scoring: reproducible, faithful to given pixels,
//! and consistent with the model's probabilities.

mod common;

use common::*;
use pixelcnn_runtime::{reference, rng, sampler, Arch, Incremental, Weights};

fn model() -> (Arch, Vec<f32>) {
    let arch = Arch { levels: 4, classes: 10, channels: 6, head: 6, ..gated(8, 8, 5, 3, 2) };
    let params = params(&arch, 11);
    (arch, params)
}

#[test]
fn the_same_seed_gives_the_same_image_and_another_seed_another() {
    let (arch, params) = model();
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(4)).unwrap();
    let mut draw = |seed| {
        let mut image = vec![0u8; arch.pixels()];
        sampler::generate(&mut inc, Some(4), 1.0, &mut rng::from_seed(seed), &mut image).unwrap();
        image
    };
    let a = draw(5);
    assert_eq!(a, draw(5));
    assert_ne!(a, draw(6));
}

#[test]
fn completion_keeps_the_given_pixels_and_samples_the_rest() {
    let (arch, params) = model();
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(1)).unwrap();
    // The seed blog's occlusion demo: the top half is given.
    let given = random_image(&arch, 3);
    let known: Vec<bool> = (0..arch.pixels()).map(|p| p < arch.pixels() / 2).collect();
    let mut completions = Vec::new();
    for seed in 0..4 {
        let mut image = given.clone();
        sampler::complete(&mut inc, Some(1), 1.0, &mut rng::from_seed(seed), &mut image, &known)
            .unwrap();
        assert_eq!(image[..arch.pixels() / 2], given[..arch.pixels() / 2]);
        completions.push(image);
    }
    assert!(completions.windows(2).any(|w| w[0] != w[1]), "completions never differ");
}

#[test]
fn all_known_completion_returns_the_image() {
    let (arch, params) = model();
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(2)).unwrap();
    let given = random_image(&arch, 8);
    let mut image = given.clone();
    let known = vec![true; arch.pixels()];
    sampler::complete(&mut inc, Some(2), 1.0, &mut rng::from_seed(0), &mut image, &known).unwrap();
    assert_eq!(image, given);
}

#[test]
fn log_likelihood_matches_the_full_pass_and_sums_to_one_on_a_tiny_image() {
    // 2×2 binary images: the probabilities of all 16 images must sum to 1.
    let arch = Arch { classes: 2, ..gated(2, 2, 3, 3, 1) };
    let params = params(&arch, 4);
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(1)).unwrap();
    let mut total = 0.0;
    for bits in 0..16u8 {
        let image: Vec<u8> = (0..4).map(|i| (bits >> i) & 1).collect();
        let nats = sampler::log_likelihood(&mut inc, Some(1), &image).unwrap();
        let logits = reference::forward(&weights, &image, Some(1)).unwrap();
        let expected: f64 = (0..4)
            .map(|p| sampler::log_probability(&logits[p * 2..p * 2 + 2], image[p].into()))
            .sum();
        assert!((nats - expected).abs() < 1e-5);
        total += nats.exp();
    }
    assert!((total - 1.0).abs() < 1e-5, "probabilities sum to {total}");
}

#[test]
fn the_class_changes_the_samples() {
    let (arch, params) = model();
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(0)).unwrap();
    let mut images = Vec::new();
    for class in 0..3 {
        let mut image = vec![0u8; arch.pixels()];
        sampler::generate(&mut inc, Some(class), 1.0, &mut rng::from_seed(9), &mut image).unwrap();
        images.push(image);
    }
    assert!(images[0] != images[1] || images[1] != images[2]);
}
