//! Bad input to the runtime gives the error that names the problem, never a
//! panic or a wrong answer.

mod common;

use common::*;
use pixelcnn_runtime::{
    reference, rng, sampler, Arch, ArchError, Error, Incremental, PlainIncremental, Weights,
};

fn conditional() -> Arch {
    Arch { classes: 3, levels: 4, ..gated(4, 5, 3, 3, 1) }
}

#[test]
fn wrong_parameter_count() {
    let arch = conditional();
    let params = vec![0.0; arch.param_count() - 1];
    assert_eq!(
        Weights::new(arch, &params).unwrap_err(),
        Error::ParamCount { expected: arch.param_count(), found: arch.param_count() - 1 }
    );
}

#[test]
fn nan_and_infinite_weights() {
    let arch = conditional();
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut params = params(&arch, 1);
        params[17] = bad;
        assert_eq!(Weights::new(arch, &params).unwrap_err(), Error::NonFinite { index: 17 });
    }
}

#[test]
fn invalid_architectures() {
    let base = conditional();
    let cases = [
        (Arch { levels: 1, ..base }, "levels"),
        (Arch { levels: 257, ..base }, "levels"),
        (Arch { height: 0, ..base }, "height"),
        (Arch { channels: 0, ..base }, "channels"),
        (Arch { first_kernel: 1, ..base }, "first_kernel"),
    ];
    for (arch, field) in cases {
        match arch.validate() {
            Err(ArchError::OutOfRange { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{arch:?}: {other:?}"),
        }
    }
    assert_eq!(
        Arch { kernel: 4, ..base }.validate(),
        Err(ArchError::EvenKernel { field: "kernel", value: 4 })
    );
    assert_eq!(
        Weights::<f32>::new(Arch { levels: 1, ..base }, &[]).unwrap_err().to_string(),
        "invalid architecture: levels is 1, expected 2 to 256"
    );
}

#[test]
fn labels_are_checked() {
    let arch = conditional();
    let params = params(&arch, 2);
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    assert_eq!(
        Incremental::new(&weights, &mut state, Some(3)).unwrap_err(),
        Error::LabelOutOfRange { label: 3, classes: 3 }
    );
    assert_eq!(
        Incremental::new(&weights, &mut state, None).unwrap_err(),
        Error::MissingLabel { classes: 3 }
    );
    let image = vec![0u8; arch.pixels()];
    assert_eq!(
        reference::forward(&weights, &image, Some(7)).unwrap_err(),
        Error::LabelOutOfRange { label: 7, classes: 3 }
    );
    let unconditional = gated(4, 5, 3, 3, 1);
    let unconditional_params = common::params(&unconditional, 2);
    let weights = Weights::new(unconditional, &unconditional_params).unwrap();
    let mut state = vec![0.0; unconditional.state_len()];
    assert_eq!(
        Incremental::new(&weights, &mut state, Some(0)).unwrap_err(),
        Error::UnconditionalModel
    );
}

#[test]
fn small_buffers_images_and_levels() {
    let arch = conditional();
    let params = params(&arch, 3);
    let weights = Weights::new(arch, &params).unwrap();
    let mut short = vec![0.0; arch.state_len() - 1];
    assert_eq!(
        Incremental::new(&weights, &mut short, Some(0)).unwrap_err(),
        Error::BufferTooSmall { needed: arch.state_len(), found: arch.state_len() - 1 }
    );
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, Some(0)).unwrap();
    assert_eq!(inc.push(4), Err(Error::LevelOutOfRange { pixel: 0, level: 4, levels: 4 }));
    let wrong = vec![0u8; arch.pixels() + 1];
    assert_eq!(
        sampler::log_likelihood(&mut inc, Some(0), &wrong).unwrap_err(),
        Error::ImageSize { expected: arch.pixels(), found: arch.pixels() + 1 }
    );
    let mut image = vec![0u8; arch.pixels()];
    image[5] = 9;
    assert_eq!(
        sampler::log_likelihood(&mut inc, Some(0), &image).unwrap_err(),
        Error::LevelOutOfRange { pixel: 5, level: 9, levels: 4 }
    );
    assert_eq!(
        reference::forward(&weights, &image, Some(0)).unwrap_err(),
        Error::LevelOutOfRange { pixel: 5, level: 9, levels: 4 }
    );
    let mut r = rng::from_seed(1);
    let mut out = vec![0u8; arch.pixels()];
    assert_eq!(
        sampler::generate(&mut inc, Some(0), 0.0, &mut r, &mut out).unwrap_err(),
        Error::InvalidTemperature
    );
    assert_eq!(
        sampler::complete(&mut inc, Some(0), 1.0, &mut r, &mut out, &[true; 3]).unwrap_err(),
        Error::ImageSize { expected: arch.pixels(), found: 3 }
    );
}

#[test]
fn pushing_past_the_end_is_an_error() {
    let arch = gated(2, 2, 3, 3, 0);
    let params = params(&arch, 4);
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; arch.state_len()];
    let mut inc = Incremental::new(&weights, &mut state, None).unwrap();
    for _ in 0..4 {
        inc.push(1).unwrap();
    }
    assert!(inc.is_complete());
    assert_eq!(inc.push(0), Err(Error::ImageComplete));
    assert_eq!(inc.logits().unwrap_err(), Error::ImageComplete);
}

#[test]
fn each_float_executor_refuses_the_other_variant() {
    let arch = plain(gated(4, 4, 3, 3, 1));
    let params = params(&arch, 5);
    let weights = Weights::new(arch, &params).unwrap();
    let mut state = vec![0.0; 10_000];
    assert_eq!(Incremental::new(&weights, &mut state, None).unwrap_err(), Error::NeedsGated);
    let arch = gated(4, 4, 3, 3, 1);
    let params = common::params(&arch, 5);
    let weights = Weights::new(arch, &params).unwrap();
    let refused = PlainIncremental::new(&weights, &mut state, None).unwrap_err();
    assert_eq!(refused, Error::NeedsPlain);
}
