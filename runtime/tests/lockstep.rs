//! Lockstep batches equal one image at a time, bit for bit: every lane's
//! logits at every pixel equal those of the one-image int8 executor on the
//! same image and class, and sampled batches give the same images (and the
//! golden ones with the shipped model), whatever the batch size and lane,
//! and whether the batch computes the vertical stack a position at a time
//! or a whole row at once.

// The loops run over pixels and, inside, over the images of a batch: one
// index into several images reads clearer than zipped iterators.
#![allow(clippy::needless_range_loop)]

mod common;

use common::*;
use pixelcnn_runtime::quant::calibrate::{quantize, Calibration, QuantModel};
use pixelcnn_runtime::quant::{lockstep, LockstepI8};
use pixelcnn_runtime::{format, rng, sampler, Arch, Error, Executor, IncrementalI8, Weights};
use proptest::prelude::*;

/// Quantized random weights of `arch`, or a rejection when a scale does not
/// fit a multiplier (as in int8_incremental_equals_int8_full_pass.rs).
fn quantized(arch: Arch, seed: u64) -> Result<QuantModel, TestCaseError> {
    let params = params(&arch, seed);
    let weights = Weights::new(arch, &params).unwrap();
    let images: Vec<_> =
        (0..2).map(|s| (random_image(&arch, seed ^ s), label(&arch, seed ^ s))).collect();
    let cal = Calibration::measure(&weights, &images, String::new(), || {}).unwrap();
    quantize(&weights, &cal).map_err(|_| TestCaseError::reject("multiplier out of range"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_lane_equals_the_one_image_executor(
        arch in gated_archs(),
        seed in any::<u64>(),
        lanes in 1usize..6,
        whole_rows in any::<bool>(),
    ) {
        let model = quantized(arch, seed)?;
        let q = model.view().unwrap();
        let images: Vec<Vec<u8>> = (0..lanes).map(|b| random_image(&arch, seed ^ (b as u64 + 11))).collect();
        let classes: Vec<_> = (0..lanes).map(|b| label(&arch, seed.wrapping_add(b as u64))).collect();
        // The singles run in the least state (one position at a time).
        let words = if whole_rows {
            LockstepI8::state_words_whole_rows(&arch, lanes)
        } else {
            LockstepI8::state_words(&arch, lanes)
        };
        let mut state = vec![0x5a5a_5a5ai32; words];
        let mut batch = LockstepI8::new(&q, &mut state, &classes).unwrap();
        let mut singles: Vec<Vec<i32>> = vec![vec![0; arch.quant_state_words()]; lanes];
        let mut execs: Vec<IncrementalI8<'_, '_>> = singles
            .iter_mut()
            .zip(&classes)
            .map(|(s, &c)| IncrementalI8::new(&q, s, c).unwrap())
            .collect();
        let mut levels = vec![0u8; lanes];
        for pos in 0..arch.pixels() {
            // Logits at some pixels only: skipped heads change nothing.
            if (pos as u64 ^ seed) % 4 != 1 {
                for (b, exec) in execs.iter_mut().enumerate() {
                    let want = exec.logits().unwrap().to_vec();
                    prop_assert_eq!(batch.logits(b).unwrap(), &want[..], "{:?}: lane {} of {}, pixel {}, whole rows {}", arch, b, lanes, pos, whole_rows);
                }
            }
            for (b, exec) in execs.iter_mut().enumerate() {
                levels[b] = images[b][pos];
                exec.push(levels[b]).unwrap();
            }
            batch.push(&levels).unwrap();
        }
        prop_assert!(batch.is_complete());
    }
}

/// 16-byte aligned storage, so the model parses in place.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/gated-mnist-int8.pcnn"));

#[test]
fn sampled_batches_are_the_images_drawn_one_at_a_time() {
    let model = format::parse(&MODEL.0).unwrap();
    let pixelcnn_runtime::Model::Int8(q) = &model else { panic!("the shipped model is int8") };
    let arch = *model.arch();
    let pixels = arch.pixels();
    // One at a time: image s of class s mod 10 from seed 100 + s.
    let mut state = vec![0u32; model.state_words()];
    let mut exec = Executor::new(&model, &mut state, Some(0)).unwrap();
    let alone: Vec<Vec<u8>> = (0..9)
        .map(|s| {
            let mut image = vec![0u8; pixels];
            let mut g = rng::from_seed(100 + s as u64);
            sampler::generate(&mut exec, Some(s % 10), 0.9, &mut g, &mut image).unwrap();
            image
        })
        .collect();
    // The same images in batches of 1, 4 and 9, and in another lane order.
    for (lanes, order) in [(1, 0..1), (4, 0..4), (4, 5..9), (9, 0..9)] {
        let ids: Vec<usize> = order.collect();
        let classes: Vec<_> = ids.iter().map(|&s| Some(s % 10)).collect();
        let mut rngs: Vec<_> = ids.iter().map(|&s| rng::from_seed(100 + s as u64)).collect();
        let mut state = vec![0i32; LockstepI8::state_words(&arch, lanes)];
        let mut batch = LockstepI8::new(q, &mut state, &classes).unwrap();
        let mut out = vec![0u8; lanes * pixels];
        lockstep::generate(&mut batch, &classes, 0.9, &mut rngs, &mut out).unwrap();
        for (b, &s) in ids.iter().enumerate() {
            assert_eq!(
                &out[b * pixels..][..pixels],
                &alone[s][..],
                "image {s} in lane {b} of {lanes}"
            );
        }
    }
}

#[test]
fn wrong_lane_counts_and_levels_are_errors() {
    let model = format::parse(&MODEL.0).unwrap();
    let pixelcnn_runtime::Model::Int8(q) = &model else { panic!() };
    let arch = *model.arch();
    let mut state = vec![0i32; LockstepI8::state_words(&arch, 2)];
    assert!(matches!(
        LockstepI8::new(q, &mut state, &[]),
        Err(Error::LaneCount { expected: 0, .. })
    ));
    let mut small = vec![0i32; LockstepI8::state_words(&arch, 2) - 1];
    assert!(matches!(
        LockstepI8::new(q, &mut small, &[Some(1), Some(2)]),
        Err(Error::BufferTooSmall { .. })
    ));
    let mut batch = LockstepI8::new(q, &mut state, &[Some(1), Some(2)]).unwrap();
    assert_eq!(batch.restart(&[Some(1)]), Err(Error::LaneCount { expected: 2, found: 1 }));
    assert_eq!(
        batch.restart(&[Some(1), Some(10)]),
        Err(Error::LabelOutOfRange { label: 10, classes: 10 })
    );
    assert!(matches!(batch.push(&[0, 2]), Err(Error::LevelOutOfRange { level: 2, .. })));
    assert_eq!(batch.push(&[0]), Err(Error::LaneCount { expected: 2, found: 1 }));
    assert!(matches!(batch.logits(2), Err(Error::LaneCount { .. })));
    let mut rngs = [rng::from_seed(1)];
    let mut out = [0u8; 2];
    assert_eq!(
        batch.sample(1.0, &mut rngs, &mut out),
        Err(Error::LaneCount { expected: 2, found: 1 })
    );
    assert_eq!(batch.position(), 0, "a refused push moves nothing");
}
