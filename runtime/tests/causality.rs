//! Causality, checked exhaustively on small images: changing any pixel at or
//! after raster position i never changes the distribution at position i. For
//! both executors and both variants.

mod common;

use common::*;
use pixelcnn_runtime::{reference, Arch, Weights};

/// Flips pixel `pos` to the level farthest from its own.
fn flipped(image: &[u8], pos: usize, levels: usize) -> Vec<u8> {
    let mut out = image.to_vec();
    out[pos] = if usize::from(image[pos]) * 2 < levels { (levels - 1) as u8 } else { 0 };
    out
}

/// For every pixel p: the logits of every pixel q <= p are bit-identical
/// after p changes, and some later pixel does change (the check can fail).
fn assert_causal(arch: Arch, seed: u64, logits: impl Fn(&Weights<'_>, &[u8]) -> Vec<f32>) {
    let params = params(&arch, seed);
    let weights = Weights::new(arch, &params).unwrap();
    let image = random_image(&arch, seed);
    let base = logits(&weights, &image);
    let k = arch.levels;
    let mut changed_later = 0;
    for p in 0..arch.pixels() {
        let other = logits(&weights, &flipped(&image, p, k));
        for q in 0..=p {
            assert_eq!(
                &other[q * k..(q + 1) * k],
                &base[q * k..(q + 1) * k],
                "{arch:?}: changing pixel {p} changed the prediction at {q}"
            );
        }
        if other[(p + 1) * k..] != base[(p + 1) * k..] {
            changed_later += 1;
        }
    }
    assert!(changed_later > 0, "no pixel influenced any later pixel: the check is vacuous");
}

fn archs() -> Vec<Arch> {
    vec![
        gated(5, 5, 3, 3, 1),
        gated(6, 7, 5, 3, 2),
        Arch { levels: 4, classes: 2, ..gated(4, 9, 7, 5, 1) },
        gated(7, 4, 3, 1, 3),
        gated(1, 6, 3, 3, 2),
        gated(6, 1, 5, 3, 2),
    ]
}

#[test]
fn reference_gated_is_causal() {
    for (i, arch) in archs().into_iter().enumerate() {
        let class = label(&arch, 1);
        assert_causal(arch, i as u64, |w, img| reference::forward(w, img, class).unwrap());
    }
}

#[test]
fn reference_plain_is_causal() {
    for (i, arch) in archs().into_iter().filter(|a| a.kernel >= 3).enumerate() {
        let arch = plain(arch);
        let class = label(&arch, 1);
        assert_causal(arch, i as u64, |w, img| reference::forward(w, img, class).unwrap());
    }
}

#[test]
fn incremental_is_causal() {
    for (i, arch) in archs().into_iter().enumerate() {
        let class = label(&arch, 1);
        assert_causal(arch, i as u64, |w, img| incremental_logits(w, img, class, |_| true));
    }
}
