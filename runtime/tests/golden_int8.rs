//! Golden int8 samples: the shipped int8 model, a seed and a class give
//! these exact images on every platform and build (x86_64 here, aarch64
//! under qemu in `scripts/cross-test.sh`). A change of any integer table,
//! multiplier rule, rounding or the generator breaks this test on purpose.

use pixelcnn_runtime::kernels::Int8Kernel;
use pixelcnn_runtime::{format, rng, sampler, Executor, Precision};

/// 16-byte aligned storage, so the model parses in place as it would in flash.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/gated-mnist-int8.pcnn"));

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// (seed, class, FNV-1a of the 784 pixel levels).
const GOLDEN: [(u64, usize, u64); 4] = [
    (1, 0, 0x3a98_7d64_8eba_7623),
    (2, 3, 0x740f_f9f3_7e8b_2300),
    (3, 7, 0x8ce1_42e1_8647_a9bc),
    (4, 9, 0x806a_3649_7b52_5a8b),
];

#[test]
fn int8_samples_match_the_golden_hashes() {
    // Every kernel this CPU runs gives the same images. Executors take the
    // preferred kernel when they are built; other tests here give the same
    // bits whichever kernel they pick, so changing it under them is safe.
    let best = Int8Kernel::best();
    for kernel in Int8Kernel::available() {
        assert!(kernel.prefer());
        golden_hashes_with(kernel);
    }
    best.prefer();
}

fn golden_hashes_with(kernel: Int8Kernel) {
    let model = format::parse(&MODEL.0).expect("the shipped int8 model parses");
    assert_eq!(model.precision(), Precision::Int8);
    let mut state = vec![0u32; model.state_words()];
    let mut exec = Executor::new(&model, &mut state, Some(0)).unwrap();
    let mut found = Vec::new();
    for (seed, class, _) in GOLDEN {
        let mut image = vec![0u8; model.arch().pixels()];
        sampler::generate(&mut exec, Some(class), 1.0, &mut rng::from_seed(seed), &mut image)
            .unwrap();
        // A digit, not an empty or saturated canvas.
        let ink = image.iter().filter(|&&l| l > 0).count();
        assert!((40..400).contains(&ink), "seed {seed}: {ink} ink pixels");
        found.push((seed, class, fnv1a(&image)));
    }
    assert_eq!(found, GOLDEN, "{kernel:?}: int8 samples changed; the new hashes are {found:#x?}");
}

#[test]
fn int8_sampling_repeats_exactly() {
    let model = format::parse(&MODEL.0).unwrap();
    let mut state = vec![0u32; model.state_words()];
    let mut exec = Executor::new(&model, &mut state, Some(5)).unwrap();
    let draw = |exec: &mut Executor<'_, '_>| {
        let mut image = vec![0u8; 784];
        sampler::generate(exec, Some(5), 0.8, &mut rng::from_seed(99), &mut image).unwrap();
        image
    };
    let first = draw(&mut exec);
    assert_eq!(first, draw(&mut exec));
}
