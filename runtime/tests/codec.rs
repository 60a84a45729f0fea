//! The int8 model as an entropy coder: every image decodes to itself, and a
//! stream costs what the model says the image is worth (its NLL in bits)
//! plus at most a few bytes of termination and class.

use pixelcnn_runtime::codec::{decode, encode, encode_best_class};
use pixelcnn_runtime::{format, rng, sampler, IncrementalI8, Model};

#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../models/gated-mnist-int8.pcnn"));

/// Digits drawn from the model itself (seeded), so the test needs no data
/// files and runs on every target.
fn digits(q: &pixelcnn_runtime::QuantWeights<'_>, n: usize) -> Vec<(Vec<u8>, usize)> {
    let arch = *q.arch();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut exec = IncrementalI8::new(q, &mut state, Some(0)).unwrap();
    (0..n)
        .map(|i| {
            let mut image = vec![0u8; arch.pixels()];
            let class = i % 10;
            sampler::generate(
                &mut exec,
                Some(class),
                1.0,
                &mut rng::from_seed(40 + i as u64),
                &mut image,
            )
            .unwrap();
            (image, class)
        })
        .collect()
}

#[test]
fn every_image_decodes_to_itself_within_a_few_bytes_of_its_nll() {
    let model = format::parse(&MODEL.0).unwrap();
    let Model::Int8(q) = &model else { panic!("the shipped model is int8") };
    let arch = *q.arch();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut exec = IncrementalI8::new(q, &mut state, Some(0)).unwrap();
    let mut buf = [0u8; 256];
    let mut back = vec![0u8; arch.pixels()];
    // Six digits (the qemu runs of the cross targets are slow); the best
    // class, ten passes each, for two of them.
    for (n, (image, class)) in digits(q, 6).into_iter().enumerate() {
        let nll = sampler::log_likelihood(&mut exec, Some(class), &image).unwrap();
        let nll_bits = -nll / std::f64::consts::LN_2;
        let len = encode(&mut exec, Some(class), &image, &mut buf).unwrap();
        assert_eq!(decode(&mut exec, &buf[..len], &mut back).unwrap(), Some(class));
        assert_eq!(back, image, "class {class}");
        // The class costs log2(10) bits; termination at most two bytes.
        let bits = 8.0 * len as f64;
        assert!(bits <= nll_bits + 3.33 + 16.0, "{bits} bits for an NLL of {nll_bits:.1}");
        assert!(bits >= nll_bits - 1.0, "{bits} bits for an NLL of {nll_bits:.1}");
        if n >= 2 {
            continue;
        }
        // The best class is never longer, and decodes too.
        let (best, best_class) = encode_best_class(&mut exec, &image, &mut buf).unwrap();
        assert!(best <= len);
        assert_eq!(decode(&mut exec, &buf[..best], &mut back).unwrap(), best_class);
        assert_eq!(back, image);
    }
}

#[test]
fn damaged_streams_decode_without_panicking_and_differ() {
    let model = format::parse(&MODEL.0).unwrap();
    let Model::Int8(q) = &model else { panic!() };
    let arch = *q.arch();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut exec = IncrementalI8::new(q, &mut state, Some(0)).unwrap();
    let (image, class) = digits(q, 1).remove(0);
    let mut buf = [0u8; 256];
    let len = encode(&mut exec, Some(class), &image, &mut buf).unwrap();
    let mut back = vec![0u8; arch.pixels()];
    let mut changed = 0;
    for i in 0..len {
        let mut bad = buf[..len].to_vec();
        bad[i] ^= 0x10;
        decode(&mut exec, &bad, &mut back).unwrap();
        changed += usize::from(back != image);
    }
    // A flipped bit changes the decoded image (the container's checksum
    // catches it); truncation and empty input decode too.
    assert!(changed >= len - 1, "{changed} of {len}");
    decode(&mut exec, &buf[..len / 2], &mut back).unwrap();
    decode(&mut exec, &[], &mut back).unwrap();
}

#[test]
fn wrong_sizes_and_levels_are_errors() {
    let model = format::parse(&MODEL.0).unwrap();
    let Model::Int8(q) = &model else { panic!() };
    let arch = *q.arch();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut exec = IncrementalI8::new(q, &mut state, Some(0)).unwrap();
    let mut buf = [0u8; 256];
    let short = vec![0u8; 10];
    assert!(encode(&mut exec, Some(1), &short, &mut buf).is_err());
    let mut bad = vec![0u8; arch.pixels()];
    bad[5] = 2;
    assert!(matches!(
        encode(&mut exec, Some(1), &bad, &mut buf),
        Err(pixelcnn_runtime::Error::LevelOutOfRange { pixel: 5, level: 2, .. })
    ));
    let mut tiny = [0u8; 1];
    let (image, class) = digits(q, 1).remove(0);
    assert!(matches!(
        encode(&mut exec, Some(class), &image, &mut tiny),
        Err(pixelcnn_runtime::Error::OutputFull { found: 1, .. })
    ));
    let mut back = vec![0u8; 5];
    assert!(decode(&mut exec, &buf, &mut back).is_err());
}

/// 24 test digits of `tests/fixtures/mnist-mini`, compressed on x86_64 by
/// `pixelcnn compress --model models/gated-mnist-int8.pcnn --data
/// tests/fixtures/mnist-mini --split test --limit 24`.
static FIXTURE: &[u8] = include_bytes!("fixtures/mnist-mini-24.pcnz");

/// FNV-1a of the fixture's 24 decoded digits (levels, raster order, one
/// after the other), as decoded on x86_64.
const FIXTURE_IMAGES_FNV: u64 = 0xe189_8ee6_69d0_0ded;

#[test]
fn a_file_from_x86_64_decodes_and_reencodes_byte_for_byte_here() {
    use pixelcnn_runtime::codec::container;
    let model = format::parse(&MODEL.0).unwrap();
    let Model::Int8(q) = &model else { panic!() };
    let arch = *q.arch();
    let file = container::parse(FIXTURE).unwrap();
    file.header.check_model(&arch, container::model_id(&MODEL.0)).unwrap();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut exec = IncrementalI8::new(q, &mut state, Some(0)).unwrap();
    let (mut image, mut buf) = (vec![0u8; arch.pixels()], [0u8; 256]);
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for stream in file.streams() {
        let class = decode(&mut exec, stream, &mut image).unwrap();
        hash = image.iter().fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        // This target's encoder writes the same bytes as the x86_64 one.
        let len = encode(&mut exec, class, &image, &mut buf).unwrap();
        assert_eq!(&buf[..len], stream);
    }
    assert_eq!(file.header.count, 24);
    assert_eq!(hash, FIXTURE_IMAGES_FNV, "decoded digits changed: {hash:#x}");
}
