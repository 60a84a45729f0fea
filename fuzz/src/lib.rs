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
