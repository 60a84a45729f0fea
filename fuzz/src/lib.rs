//! What each fuzz target does with its input, as plain functions: the
//! targets in `fuzz_targets/` call them under libFuzzer, and
//! `runtime/tests/fuzz_corpus.rs` replays the committed corpus and every
//! crash found through them in the ordinary test run (and under qemu).

use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::{rng, Executor, PixelExecutor};

/// Executor state above this many words is skipped (a valid huge model
/// would only exhaust the fuzzer's memory, which is not a bug).
const MAX_STATE_WORDS: usize = 1 << 20;

/// A `.pcnn` file from untrusted bytes: parse it, and when it parses, sample
/// and score pixels with the executor a device would build for it. Nothing
/// may panic, hang or read out of bounds.
///
/// The bytes run twice: as they are, and with the CRC-32 field set to the
/// checksum of the rest. A mutated file almost never carries a valid CRC,
/// so without the second run the fuzzer would stop at the checksum and
/// never reach the section table, the tensors or the executor.
pub fn pcnn_parse_sample(data: &[u8]) {
    parse_and_sample(data);
    if data.len() >= format::HEADER_LEN {
        let mut fixed = data.to_vec();
        let crc = format::checksum(&fixed);
        fixed[format::CRC_OFFSET..format::CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        parse_and_sample(&fixed);
    }
}

fn parse_and_sample(data: &[u8]) {
    let aligned = AlignedBytes::new(data);
    let Ok(model) = format::parse(aligned.as_bytes()) else { return };
    let _ = format::notes(aligned.as_bytes());
    if model.state_words() > MAX_STATE_WORDS {
        return;
    }
    let arch = *model.arch();
    let mut state = vec![0u32; model.state_words()];
    let class = arch.classes.checked_sub(1);
    let Ok(mut exec) = Executor::new(&model, &mut state, class) else { return };
    let mut g = rng::from_seed(data.len() as u64);
    for _ in 0..arch.pixels().min(200) {
        let _ = exec.log_probability(0);
        let Ok(level) = exec.sample(0.7, &mut g) else { break };
        if exec.push(level).is_err() {
            break;
        }
    }
}

/// Most streams of one input decoded.
const MAX_STREAMS: usize = 2;

/// A small int8 model of the default's geometry (28×28, two levels, ten
/// classes): decoding does the same coder and container work whatever the
/// model's depth, and under the sanitizer the shipped model's 784 pixels
/// per stream take seconds.
fn tiny_model() -> &'static pixelcnn_runtime::quant::calibrate::QuantModel {
    use pixelcnn_runtime::quant::calibrate::{quantize, Calibration, QuantModel};
    use pixelcnn_runtime::{random_weights::random_params, Arch, Weights};
    static MODEL: std::sync::OnceLock<QuantModel> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| {
        let arch = Arch { channels: 4, head: 4, blocks: 1, ..Arch::MNIST_GATED };
        let params = random_params(&arch, 5);
        let weights = Weights::new(arch, &params).expect("random weights");
        let images: Vec<_> =
            (0..2u8).map(|v| (vec![v; arch.pixels()], Some(usize::from(v)))).collect();
        let cal =
            Calibration::measure(&weights, &images, String::new(), || {}).expect("calibration");
        quantize(&weights, &cal).expect("quantize")
    })
}

/// A `.pcnz` container from untrusted bytes, decoded with an int8 model:
/// parse it, check it against the model, decode its first streams, and
/// decode the bytes themselves as one raw stream. Nothing may panic, hang
/// or read out of bounds. As for `.pcnn`, the bytes also run with their
/// CRC-32 (the last four bytes) recomputed, so mutations reach the lengths
/// and the streams.
pub fn codec_decode(data: &[u8]) {
    use pixelcnn_runtime::codec::{self, container};
    use pixelcnn_runtime::IncrementalI8;

    let q = tiny_model().view().expect("the tiny model");
    let arch = *q.arch();
    let mut state = vec![0i32; arch.quant_state_words()];
    let mut exec = IncrementalI8::new(&q, &mut state, Some(0)).expect("executor");
    let mut image = vec![0u8; arch.pixels()];
    let mut fixed = data.to_vec();
    if fixed.len() >= 4 {
        let n = fixed.len() - 4;
        let crc = crc32(&fixed[..n]);
        fixed[n..].copy_from_slice(&crc.to_le_bytes());
    }
    for bytes in [data, &fixed[..]] {
        let Ok(file) = container::parse(bytes) else { continue };
        let _ = file.header.check_model(&arch, 0);
        for stream in file.streams().take(MAX_STREAMS) {
            codec::decode(&mut exec, stream, &mut image).expect("any stream decodes");
        }
        let _ = file.stream(file.header.count as usize);
    }
    codec::decode(&mut exec, &data[..data.len().min(64)], &mut image).expect("raw bytes decode");
}

/// CRC-32 (ISO-HDLC), bit by bit: the container's checksum.
fn crc32(bytes: &[u8]) -> u32 {
    !bytes.iter().fold(u32::MAX, |mut c, &b| {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 { (c >> 1) ^ 0xEDB8_8320 } else { c >> 1 };
        }
        c
    })
}

/// ONNX import from untrusted bytes (protobuf decoding, the metadata's
/// JSON, the stored int8 ranges, the graph check, tract's loader); a file
/// that imports is run through the reference executor. Nothing may panic or
/// hang.
#[cfg(feature = "onnx")]
pub fn onnx_import(data: &[u8]) {
    use pixelcnn_runtime::onnx::import_bytes;
    use pixelcnn_runtime::{reference, Weights};

    let Ok(imported) = import_bytes(data) else { return };
    let arch = imported.arch;
    if arch.pixels() > 64 || arch.param_count() > 100_000 {
        return;
    }
    let weights = Weights::new(arch, &imported.params).expect("import checked the weights");
    let image = vec![0u8; arch.pixels()];
    let class = (arch.classes > 0).then_some(0);
    let _ = reference::forward(&weights, &image, class);
}
