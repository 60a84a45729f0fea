//! Helpers shared by the integration tests: architectures, random weights,
//! random images, and the incremental executor's logits over a whole image.
#![allow(dead_code)]

use pixelcnn_runtime::{
    random_weights::random_params, rng, Arch, Incremental, PlainIncremental, Variant, Weights,
};
use proptest::prelude::*;
use rand_core::RngCore;

/// A small gated architecture.
pub fn gated(
    height: usize,
    width: usize,
    first_kernel: usize,
    kernel: usize,
    blocks: usize,
) -> Arch {
    Arch {
        variant: Variant::Gated,
        height,
        width,
        levels: 2,
        classes: 0,
        channels: 3,
        blocks,
        first_kernel,
        kernel,
        head: 3,
    }
}

/// Plain architectures over the same ranges (kernels of 3 or more).
pub fn plain_archs() -> impl Strategy<Value = Arch> {
    gated_archs().prop_map(|a| Arch { variant: Variant::Plain, kernel: a.kernel.max(3), ..a })
}

/// The same architecture as a plain PixelCNN.
pub fn plain(arch: Arch) -> Arch {
    Arch { variant: Variant::Plain, ..arch }
}

/// Gated architectures over the ranges the executors must handle: images
/// narrower and shorter than the kernels, binary to 256 levels, with and
/// without classes, no blocks to several.
pub fn gated_archs() -> impl Strategy<Value = Arch> {
    (
        (1usize..=6, 1usize..=7),
        prop_oneof![Just(2usize), Just(3), Just(4), Just(16), Just(256)],
        prop_oneof![Just(0usize), Just(3)],
        1usize..=4,
        0usize..=3,
        prop_oneof![Just(3usize), Just(5), Just(7)],
        prop_oneof![Just(1usize), Just(3), Just(5)],
        1usize..=4,
    )
        .prop_map(
            |((height, width), levels, classes, channels, blocks, first_kernel, kernel, head)| {
                Arch {
                    variant: Variant::Gated,
                    height,
                    width,
                    levels,
                    classes,
                    channels,
                    blocks,
                    first_kernel,
                    kernel,
                    head,
                }
            },
        )
}

/// A random image of levels for `arch`.
pub fn random_image(arch: &Arch, seed: u64) -> Vec<u8> {
    let mut rng = rng::from_seed(seed ^ 0x9e37_79b9);
    (0..arch.pixels()).map(|_| (rng.next_u32() % arch.levels as u32) as u8).collect()
}

/// A label valid for `arch`, picked from `seed`.
pub fn label(arch: &Arch, seed: u64) -> Option<usize> {
    (arch.classes > 0).then(|| (seed % arch.classes as u64) as usize)
}

/// Owned random parameters.
pub fn params(arch: &Arch, seed: u64) -> Vec<f32> {
    random_params(arch, seed)
}

/// Logits of every pixel from the incremental executor, pixel-major, pushing
/// `image` as it goes. `ask` says at which pixels to request logits; pixels
/// not asked for are pushed without computing the head (as completion does),
/// and get NaN here.
pub fn incremental_logits(
    weights: &Weights<'_>,
    image: &[u8],
    class: Option<usize>,
    ask: impl Fn(usize) -> bool,
) -> Vec<f32> {
    let arch = *weights.arch();
    let mut state = vec![f32::NAN; arch.executor_state_len()];
    match arch.variant {
        Variant::Gated => {
            let inc = Incremental::new(weights, &mut state, class).expect("valid executor");
            logits_of_every_pixel(inc, image, ask)
        }
        Variant::Plain => {
            let inc = PlainIncremental::new(weights, &mut state, class).expect("valid executor");
            logits_of_every_pixel(inc, image, ask)
        }
    }
}

/// The two float executors' shared protocol, for [`incremental_logits`].
pub trait FloatExecutor {
    fn arch(&self) -> Arch;
    fn logits(&mut self) -> &[f32];
    fn push(&mut self, level: u8);
    fn is_complete(&self) -> bool;
}

impl FloatExecutor for Incremental<'_, '_> {
    fn arch(&self) -> Arch {
        *Incremental::arch(self)
    }
    fn logits(&mut self) -> &[f32] {
        Incremental::logits(self).expect("pixel left")
    }
    fn push(&mut self, level: u8) {
        Incremental::push(self, level).expect("valid level")
    }
    fn is_complete(&self) -> bool {
        Incremental::is_complete(self)
    }
}

impl FloatExecutor for PlainIncremental<'_, '_> {
    fn arch(&self) -> Arch {
        *PlainIncremental::arch(self)
    }
    fn logits(&mut self) -> &[f32] {
        PlainIncremental::logits(self).expect("pixel left")
    }
    fn push(&mut self, level: u8) {
        PlainIncremental::push(self, level).expect("valid level")
    }
    fn is_complete(&self) -> bool {
        PlainIncremental::is_complete(self)
    }
}

fn logits_of_every_pixel(
    mut inc: impl FloatExecutor,
    image: &[u8],
    ask: impl Fn(usize) -> bool,
) -> Vec<f32> {
    let arch = inc.arch();
    let mut out = vec![f32::NAN; arch.pixels() * arch.levels];
    for (pos, &level) in image.iter().enumerate() {
        if ask(pos) {
            let logits = inc.logits();
            out[pos * arch.levels..(pos + 1) * arch.levels].copy_from_slice(logits);
        }
        inc.push(level);
    }
    assert!(inc.is_complete());
    out
}
