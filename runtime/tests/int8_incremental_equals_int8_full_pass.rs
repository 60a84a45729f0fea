//! The int8 incremental executor equals the int8 full pass bit for bit, at
//! every pixel, over the same architectures as the float oracle: the caches
//! (rings, links, left windows) change nothing, exactly.

mod common;

use common::*;
use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
use pixelcnn_runtime::quant::reference::forward_i8;
use pixelcnn_runtime::{Arch, IncrementalI8, Weights};
use proptest::prelude::*;

/// Quantizes random weights of `arch`, calibrated on two random images;
/// `None` when a scale ratio does not fit a multiplier (random weights can
/// be that extreme; trained ones are not).
fn check(arch: Arch, seed: u64, ask: impl Fn(usize) -> bool) -> Result<(), TestCaseError> {
    let params = params(&arch, seed);
    let weights = Weights::new(arch, &params).unwrap();
    let images: Vec<_> =
        (0..2).map(|s| (random_image(&arch, seed ^ s), label(&arch, seed ^ s))).collect();
    let cal = Calibration::measure(&weights, &images, String::new(), || {}).unwrap();
    let Ok(model) = quantize(&weights, &cal) else {
        return Err(TestCaseError::reject("multiplier out of range"));
    };
    let q = model.view().unwrap();
    let image = random_image(&arch, seed.rotate_left(7));
    let class = label(&arch, seed.rotate_left(7));
    let full = forward_i8(&q, &image, class).unwrap();
    let mut state = vec![0x5a5a_5a5ai32; arch.quant_state_words()];
    let mut inc = IncrementalI8::new(&q, &mut state, class).unwrap();
    let k = arch.levels;
    for (pos, &level) in image.iter().enumerate() {
        if ask(pos) {
            let got = inc.logits().unwrap();
            prop_assert_eq!(got, &full[pos * k..(pos + 1) * k], "{:?}: pixel {}", arch, pos);
        }
        inc.push(level).unwrap();
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_pixel_equals_the_int8_full_pass(arch in gated_archs(), seed in any::<u64>()) {
        check(arch, seed, |_| true)?;
    }

    #[test]
    fn skipping_logits_changes_nothing(arch in gated_archs(), seed in any::<u64>()) {
        check(arch, seed, |pos| (pos as u64 ^ seed).is_multiple_of(3))?;
    }
}

#[test]
fn an_mnist_sized_conditional_model_is_exact() {
    let arch = Arch { channels: 8, head: 8, blocks: 3, ..Arch::MNIST_GATED };
    check(arch, 3, |_| true).unwrap();
}
