//! ONNX import from untrusted bytes (protobuf decoding, the metadata's
//! JSON, the graph check, tract's loader); a file that imports is run
//! through the reference executor. Nothing may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pixelcnn_runtime::onnx::import_bytes;
use pixelcnn_runtime::{reference, Weights};

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = import_bytes(data) else { return };
    let arch = imported.arch;
    if arch.pixels() > 64 || arch.param_count() > 100_000 {
        return;
    }
    let weights = Weights::new(arch, &imported.params).expect("import checked the weights");
    let image = vec![0u8; arch.pixels()];
    let class = (arch.classes > 0).then_some(0);
    let _ = reference::forward(&weights, &image, class);
});
