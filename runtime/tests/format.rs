//! The `.pcnn` parser on good and bad bytes: round trips in all three
//! precisions, one crafted file per error, and fuzzing (corrupted files
//! re-signed with a valid checksum, truncations) that must never panic.

use pixelcnn_runtime::format::{self, section, AlignedBytes, FormatError, CRC_OFFSET};
use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{f16, rng, sampler, Arch, Error, Executor, Model, Variant, Weights};
use proptest::prelude::*;

fn arch() -> Arch {
    Arch {
        variant: Variant::Gated,
        height: 6,
        width: 7,
        levels: 4,
        classes: 3,
        channels: 3,
        blocks: 2,
        first_kernel: 5,
        kernel: 3,
        head: 4,
    }
}

/// The same random model encoded in f32, f16 and int8.
fn files(arch: Arch, seed: u64) -> [Vec<u8>; 3] {
    let params = random_params(&arch, seed);
    let weights = Weights::new(arch, &params).unwrap();
    let halves: Vec<f16> = params.iter().map(|&w| f16::from_f32(w)).collect();
    let mut cal = Calibration::new(&arch);
    for i in 0..3u8 {
        let image: Vec<u8> =
            (0..arch.pixels()).map(|p| (p as u8 + i) % arch.levels as u8).collect();
        cal.observe(&weights, &image, (arch.classes > 0).then_some(usize::from(i) % arch.classes))
            .unwrap();
    }
    let quant = quantize(&weights, &cal).unwrap();
    [
        format::to_bytes(&Model::F32(weights.clone()), ""),
        format::to_bytes(&Model::F16(Weights::new(arch, &halves).unwrap()), "notes"),
        format::to_bytes(&Model::Int8(quant.view().unwrap()), ""),
    ]
}

fn parse(bytes: &[u8]) -> Result<(), FormatError> {
    let aligned = AlignedBytes::new(bytes);
    format::parse(aligned.as_bytes()).map(|_| ())
}

/// Rewrites the checksum so that a deliberate change gets past it.
fn resign(bytes: &mut [u8]) {
    let crc = format::checksum(bytes);
    bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

fn edited(bytes: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    f(&mut b);
    resign(&mut b);
    b
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Offset of the first byte of section `id`.
fn section_offset(bytes: &[u8], id: u32) -> usize {
    let header = format::read_header(bytes).unwrap();
    let offset = header.sections().find(|s| s.0 == id).unwrap().1;
    offset
}

#[test]
fn every_precision_round_trips() {
    let arch = arch();
    for bytes in files(arch, 1) {
        let aligned = AlignedBytes::new(&bytes);
        let model = format::parse(aligned.as_bytes()).unwrap();
        assert_eq!(*model.arch(), arch);
        assert_eq!(format::to_bytes(&model, format::notes(&bytes).unwrap_or("")), bytes);
    }
}

#[test]
fn each_error_has_its_own_crafted_file() {
    let [f32_file, _, int8_file] = files(arch(), 2);
    let e = |b: &[u8]| parse(b).unwrap_err();
    assert_eq!(e(&f32_file[..10]), FormatError::Truncated { needed: 64, found: 10 });
    assert!(matches!(e(&f32_file[..f32_file.len() - 1]), FormatError::Truncated { .. }));
    assert_eq!(e(&edited(&f32_file, |b| b[0] = b'X')), FormatError::BadMagic);
    assert_eq!(e(&edited(&f32_file, |b| b[8] = 2)), FormatError::UnsupportedVersion { found: 2 });
    let longer = edited(&f32_file, |b| b.push(0));
    assert!(matches!(e(&longer), FormatError::LengthMismatch { .. }));
    let mut flipped = f32_file.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(matches!(e(&flipped), FormatError::Checksum { .. }));
    assert_eq!(
        e(&edited(&f32_file, |b| b[10] = 7)),
        FormatError::UnknownCode { field: "precision", code: 7 }
    );
    assert_eq!(
        e(&edited(&f32_file, |b| b[11] = 9)),
        FormatError::UnknownCode { field: "variant", code: 9 }
    );
    assert_eq!(
        e(&edited(&f32_file, |b| put_u32(b, 64 + 4, 65))),
        FormatError::BadSection { id: section::PARAMS_F32 }
    );
    assert_eq!(
        e(&edited(&f32_file, |b| put_u32(b, 64, 99))),
        FormatError::MissingSection { id: section::PARAMS_F32 }
    );
    // A wider network than the weights on file.
    assert!(matches!(
        e(&edited(&f32_file, |b| put_u32(b, 24 + 4 * 4, 4))),
        FormatError::SectionLength { id: section::PARAMS_F32, .. }
    ));
    assert!(matches!(
        e(&edited(&f32_file, |b| put_u32(b, 24 + 4 * 2, 1))),
        FormatError::Model(Error::Arch(_))
    ));
    let nan_at = section_offset(&f32_file, section::PARAMS_F32) + 8;
    assert_eq!(
        e(&edited(&f32_file, |b| b[nan_at..nan_at + 4].copy_from_slice(&f32::NAN.to_le_bytes()))),
        FormatError::Model(Error::NonFinite { index: 2 })
    );
    let shift_at = section_offset(&int8_file, section::REQUANT_I32) + 4;
    assert_eq!(
        e(&edited(&int8_file, |b| put_u32(b, shift_at, 99))),
        FormatError::Model(Error::InvalidRequant { index: 0 })
    );
    // The message says what a user can do about it, not only what is wrong.
    let message = Error::InvalidRequant { index: 0 }.to_string();
    assert!(
        message.contains("damaged") && message.contains("convert the model again"),
        "{message}"
    );
    assert_eq!(e(&edited(&int8_file, |b| b[11] = 1)), FormatError::Model(Error::NeedsGated));
    // Bytes that are fine but not 4-byte aligned in memory.
    let mut shifted = AlignedBytes::new(&[&[0u8][..], &f32_file].concat());
    let unaligned = &shifted.as_bytes()[1..];
    assert_eq!(format::parse(unaligned).unwrap_err(), FormatError::Misaligned);
    shifted = AlignedBytes::new(&f32_file);
    assert!(format::parse(shifted.as_bytes()).is_ok());
}

/// Parses `bytes`; when they parse, samples a few pixels, which must not
/// panic either (a re-signed corrupt file is a valid file with odd weights).
fn parse_and_run(bytes: &[u8]) {
    let aligned = AlignedBytes::new(bytes);
    let Ok(model) = format::parse(aligned.as_bytes()) else { return };
    let mut state = vec![0u32; model.state_words()];
    let class = (model.arch().classes > 0).then_some(0);
    let Ok(mut exec) = Executor::new(&model, &mut state, class) else { return };
    let mut image = vec![0u8; model.arch().pixels()];
    let _ = sampler::generate(&mut exec, class, 1.0, &mut rng::from_seed(1), &mut image);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_files_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        sign in any::<bool>(),
    ) {
        let mut bytes = files(arch(), 3)[which].clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if sign {
            resign(&mut bytes);
        }
        parse_and_run(&bytes);
    }

    #[test]
    fn truncated_files_are_errors(which in 0usize..3, cut in any::<prop::sample::Index>()) {
        let bytes = &files(arch(), 4)[which];
        let len = cut.index(bytes.len());
        prop_assert!(parse(&bytes[..len]).is_err());
    }

    #[test]
    fn header_fields_are_checked(field in 0usize..16, value in any::<u32>()) {
        // Any value in any header word: an error or a model that runs.
        for bytes in files(arch(), 5) {
            let edited = edited(&bytes, |b| put_u32(b, 4 * field, value));
            parse_and_run(&edited);
        }
    }
}
