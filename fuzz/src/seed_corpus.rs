//! Writes the seed corpus of both fuzz targets: small valid models (gated
//! and plain, conditional or not, f32, f16 and int8 for `.pcnn`; ONNX with
//! and without stored int8 ranges). `cargo run --bin seed_corpus` from
//! `fuzz/`.

use std::path::Path;

use pixelcnn_runtime::format::to_bytes;
use pixelcnn_runtime::onnx::{to_onnx_bytes, to_onnx_bytes_calibrated};
use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{f16, Arch, Model, Variant, Weights};

fn main() {
    let pcnn = Path::new("corpus/pcnn_parse_sample");
    let onnx = Path::new("corpus/onnx_import");
    std::fs::create_dir_all(pcnn).unwrap();
    std::fs::create_dir_all(onnx).unwrap();
    let gated = Arch {
        variant: Variant::Gated,
        height: 4,
        width: 5,
        levels: 2,
        classes: 3,
        channels: 2,
        blocks: 1,
        first_kernel: 3,
        kernel: 3,
        head: 2,
    };
    let archs = [
        ("gated", gated),
        ("gated-k4-uncond", Arch { levels: 4, classes: 0, ..gated }),
        ("plain", Arch { variant: Variant::Plain, ..gated }),
    ];
    for (seed, (name, arch)) in archs.into_iter().enumerate() {
        let params = random_params(&arch, seed as u64);
        let weights = Weights::new(arch, &params).unwrap();
        let write =
            |dir: &Path, file: &str, bytes: &[u8]| std::fs::write(dir.join(file), bytes).unwrap();
        write(pcnn, &format!("{name}-f32.pcnn"), &to_bytes(&Model::F32(weights.clone()), "seed"));
        let halves: Vec<f16> = params.iter().map(|&p| f16::from_f32(p)).collect();
        let w16 = Weights::new(arch, &halves).unwrap();
        write(pcnn, &format!("{name}-f16.pcnn"), &to_bytes(&Model::F16(w16), ""));
        write(onnx, &format!("{name}.onnx"), &to_onnx_bytes(&weights));
        if arch.variant == Variant::Gated {
            let image = vec![1u8; arch.pixels()];
            let class = (arch.classes > 0).then_some(0);
            let cal =
                Calibration::measure(&weights, &[(image, class)], "seed".into(), || {}).unwrap();
            let q = quantize(&weights, &cal).unwrap();
            write(
                pcnn,
                &format!("{name}-int8.pcnn"),
                &to_bytes(&Model::Int8(q.view().unwrap()), ""),
            );
            write(
                onnx,
                &format!("{name}-calibrated.onnx"),
                &to_onnx_bytes_calibrated(&weights, &cal),
            );
        }
    }
}
