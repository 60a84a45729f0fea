//! A `.pcnn` file from untrusted bytes: parse it, and when it parses, sample
//! and score pixels with the executor a device would build for it. Nothing
//! may panic, hang or read out of bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::{rng, Executor, PixelExecutor};

/// Executor state above this many words is skipped (a valid huge model
/// would only exhaust the fuzzer's memory, which is not a bug).
const MAX_STATE_WORDS: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let aligned = AlignedBytes::new(data);
    let Ok(model) = format::parse(aligned.as_bytes()) else { return };
    let _ = format::notes(aligned.as_bytes());
    if model.state_words() > MAX_STATE_WORDS {
        return;
    }
    let arch = *model.arch();
    let mut state = vec![0u32; model.state_words()];
    let class = (arch.classes > 0).then_some(arch.classes - 1);
    let Ok(mut exec) = Executor::new(&model, &mut state, class) else { return };
    let mut g = rng::from_seed(data.len() as u64);
    for _ in 0..arch.pixels().min(200) {
        let _ = exec.log_probability(0);
        let Ok(level) = exec.sample(0.7, &mut g) else { break };
        if exec.push(level).is_err() {
            break;
        }
    }
});
