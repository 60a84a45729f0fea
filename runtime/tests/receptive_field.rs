//! The receptive field, measured by perturbation, against the one derived
//! from the architecture. The gated network has no blind spot: every earlier
//! pixel of its full field changes the prediction. The plain PixelCNN misses
//! the wedge above and to the right that the seed blog's figure marks.

mod common;

use common::*;
use pixelcnn_runtime::receptive_field::{
    full_field, measure_influence, measure_influence_on, structural_field, Pixel,
};
use pixelcnn_runtime::{Arch, Weights};

fn all_pixels(arch: &Arch) -> impl Iterator<Item = Pixel> + '_ {
    (0..arch.height).flat_map(move |row| (0..arch.width).map(move |col| Pixel { row, col }))
}

/// Asserts, for every target pixel, that the pixels that move its logits
/// are exactly the structural field; returns the structural fields.
///
/// A ReLU can hide a connection on one image (a unit below zero before and
/// after the change), so influence is the union over `images` random images;
/// influence outside the structural field is an error on any single image.
fn assert_measured_is_structural(arch: Arch, seed: u64, images: u64) -> Vec<(Pixel, Vec<bool>)> {
    let params = params(&arch, seed);
    let weights = Weights::new(arch, &params).unwrap();
    let mut measured = vec![vec![false; arch.pixels()]; arch.pixels()];
    for image_seed in 0..images {
        let image = random_image(&arch, seed * 1000 + image_seed);
        let influence = measure_influence(&weights, &image, label(&arch, image_seed)).unwrap();
        for (t, target) in all_pixels(&arch).enumerate() {
            for (m, &d) in measured[t].iter_mut().zip(influence.on(target)) {
                *m |= d > 0.0;
            }
        }
    }
    all_pixels(&arch)
        .zip(measured)
        .map(|(target, measured)| {
            let structural = structural_field(&arch, target);
            assert_eq!(measured, structural, "{arch:?}, target {target:?}");
            (target, structural)
        })
        .collect()
}

#[test]
fn gated_field_is_the_full_field() {
    for (seed, arch) in [
        gated(9, 9, 5, 3, 2),
        gated(8, 10, 3, 3, 3),
        gated(7, 8, 7, 5, 1),
        Arch { levels: 3, classes: 2, ..gated(6, 6, 3, 1, 2) },
    ]
    .into_iter()
    .enumerate()
    {
        // Wide enough that the head's ReLUs rarely hide a connection.
        let arch = Arch { channels: 8, head: 8, ..arch };
        for (target, structural) in assert_measured_is_structural(arch, seed as u64, 2) {
            assert_eq!(structural, full_field(&arch, target), "{arch:?}, target {target:?}");
        }
    }
}

#[test]
fn plain_pixelcnn_has_a_blind_spot_above_right() {
    let arch = Arch { channels: 8, head: 8, ..plain(gated(10, 11, 5, 3, 3)) };
    let mut blind_total = 0;
    for (target, structural) in assert_measured_is_structural(arch, 3, 4) {
        let full = full_field(&arch, target);
        for (pos, (&f, &s)) in full.iter().zip(&structural).enumerate() {
            assert!(!s || f, "structural field outside the full field at {pos}");
            if f && !s {
                blind_total += 1;
                let (row, col) = (pos / arch.width, pos % arch.width);
                assert!(
                    row < target.row && col > target.col,
                    "blind pixel ({row}, {col}) of {target:?} is not above-right"
                );
            }
        }
    }
    assert!(blind_total > 0, "the plain PixelCNN showed no blind spot");
}

#[test]
fn plain_blind_spot_matches_the_hand_derivation() {
    // 3×3 mask A then one 3×3 mask B, target (4, 4) on 7×7, reach 2. Mask A
    // reads (-1, -1..=1) and (0, -1); B∘A reaches (-2, -2..=2), (-1, -2..=1)
    // and (0, -2). The full field also has (-1, +2): the one blind pixel.
    let arch = plain(gated(7, 7, 3, 3, 1));
    let target = Pixel { row: 4, col: 4 };
    let structural = structural_field(&arch, target);
    let blind: Vec<usize> = full_field(&arch, target)
        .iter()
        .zip(&structural)
        .enumerate()
        .filter(|(_, (&f, &s))| f && !s)
        .map(|(pos, _)| pos)
        .collect();
    assert_eq!(blind, vec![3 * 7 + 6]);
}

/// The incremental measurement of one target's field (what `pixelcnn
/// receptive-field` runs) equals the full-pass measurement: the same pixels
/// have exactly zero influence, and the others the same change up to float
/// rounding (the executors add in different orders).
#[test]
fn incremental_influence_on_one_pixel_equals_the_full_passes() {
    for (seed, arch) in [
        Arch { channels: 8, head: 8, ..gated(7, 8, 5, 3, 2) },
        Arch { channels: 8, head: 8, levels: 3, classes: 2, ..gated(6, 6, 3, 1, 2) },
        Arch { channels: 8, head: 8, ..plain(gated(7, 9, 5, 3, 3)) },
    ]
    .into_iter()
    .enumerate()
    {
        let params = params(&arch, seed as u64);
        let weights = Weights::new(arch, &params).unwrap();
        let image = random_image(&arch, seed as u64 + 7);
        let class = label(&arch, seed as u64);
        let full = measure_influence(&weights, &image, class).unwrap();
        for target in all_pixels(&arch) {
            let mut calls = 0;
            let one = measure_influence_on(&weights, &image, class, target, || calls += 1).unwrap();
            let expected = full.on(target);
            assert_eq!(calls, target.row * arch.width + target.col, "{target:?}");
            for (pos, (&a, &b)) in one.iter().zip(expected).enumerate() {
                assert_eq!(a == 0.0, b == 0.0, "{arch:?} {target:?} pixel {pos}: {a} vs {b}");
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{target:?} {pos}: {a} vs {b}");
            }
        }
        let outside = Pixel { row: arch.height, col: 0 };
        assert!(measure_influence_on(&weights, &image, class, outside, || ()).is_err());
        assert!(measure_influence_on(
            &weights,
            &image[1..],
            class,
            Pixel { row: 0, col: 0 },
            || ()
        )
        .is_err());
    }
}
