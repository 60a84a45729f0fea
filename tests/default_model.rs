//! The shipped default model through the device path: its f32 `.pcnn`
//! matches tract-onnx's full-image run of the ONNX file, and f16 and int8
//! stay within the stated NLL drift on the committed test images.

use std::path::Path;

use pixelcnn_runtime::data::{self, DatasetKind, Images, Split};
use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::onnx::import;
use pixelcnn_runtime::{f16, sampler, Executor, Incremental, Model, Weights};
use tract_onnx::prelude::*;

const ONNX: &str = "models/gated-mnist.onnx";
const INT8: &str = "models/gated-mnist-int8.pcnn";

fn test_images() -> Images {
    data::load(Path::new("tests/fixtures/mnist-mini"), DatasetKind::Mnist, Split::Test, 2).unwrap()
}

fn float_file() -> AlignedBytes {
    let m = import(Path::new(ONNX)).unwrap();
    AlignedBytes::new(&format::to_bytes(&Model::F32(Weights::new(m.arch, &m.params).unwrap()), ""))
}

#[test]
fn f32_device_model_equals_tract_on_the_onnx_file() {
    let file = float_file();
    let Model::F32(weights) = format::parse(file.as_bytes()).unwrap() else { panic!("f32") };
    let arch = *weights.arch();
    let onnx = std::fs::read(ONNX).unwrap();
    let runnable = tract_onnx::onnx()
        .model_for_read(&mut &onnx[..])
        .unwrap()
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), tvec!(1, 1, 28, 28)))
        .unwrap()
        .with_input_fact(1, InferenceFact::dt_shape(i64::datum_type(), tvec!(1)))
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let images = test_images();
    for i in [0, 1, 17] {
        let image = images.image(i);
        let class = images.label(i).unwrap();
        let pixels: Vec<f32> = image.iter().map(|&l| f32::from(l)).collect();
        let out = runnable
            .run(tvec!(
                Tensor::from_shape(&[1, 1, 28, 28], &pixels).unwrap().into(),
                Tensor::from_shape(&[1], &[class as i64]).unwrap().into()
            ))
            .unwrap();
        let tract_logits = out[0].to_plain_array_view::<f32>().unwrap();
        let mut state = vec![0.0f32; arch.state_len()];
        let mut inc = Incremental::new(&weights, &mut state, Some(class)).unwrap();
        let mut worst = 0.0f32;
        for (pos, &level) in image.iter().enumerate() {
            for (k, &g) in inc.logits().unwrap().iter().enumerate() {
                worst = worst.max((g - tract_logits[[0, k, pos / 28, pos % 28]]).abs());
            }
            inc.push(level).unwrap();
        }
        assert!(worst <= 1e-4, "image {i}: incremental and tract differ by {worst}");
    }
}

fn nll(model: &Model<'_>, images: &Images) -> f64 {
    let mut state = vec![0u32; model.state_words()];
    let mut exec = Executor::new(model, &mut state, Some(0)).unwrap();
    let total: f64 = (0..images.len())
        .map(|i| -sampler::log_likelihood(&mut exec, images.label(i), images.image(i)).unwrap())
        .sum();
    total / images.len() as f64
}

#[test]
fn f16_and_int8_stay_within_the_stated_nll_drift() {
    let images = test_images();
    let file = float_file();
    let f32_model = format::parse(file.as_bytes()).unwrap();
    let Model::F32(w) = &f32_model else { panic!("f32") };
    let halves: Vec<f16> = w.as_slice().iter().map(|&v| f16::from_f32(v)).collect();
    let f16_model = Model::F16(Weights::new(*w.arch(), &halves).unwrap());
    let int8_file = AlignedBytes::new(&std::fs::read(INT8).unwrap());
    let int8_model = format::parse(int8_file.as_bytes()).unwrap();
    let base = nll(&f32_model, &images);
    let f16_drift = (nll(&f16_model, &images) - base).abs() / base;
    let int8_drift = (nll(&int8_model, &images) - base).abs() / base;
    assert!(f16_drift < 0.001, "f16 drifts {:.4}% from f32 ({base:.3} nats)", 100.0 * f16_drift);
    assert!(int8_drift < 0.01, "int8 drifts {:.4}% from f32 ({base:.3} nats)", 100.0 * int8_drift);
}

/// Every per-channel scale of the shipped int8 model is below 1/4 (a right
/// shift of 33 or more), which is what lets AVX-512 hosts requantize in
/// int32 lanes and take the fused gated step at every layer. A quantizer
/// change that broke it would fail nothing else, only slow every pixel.
#[test]
fn the_int8_models_per_channel_scales_take_the_int32_path() {
    use pixelcnn_runtime::quant::weights::RequantPoint;
    let file = AlignedBytes::new(&std::fs::read(INT8).unwrap());
    let Model::Int8(q) = format::parse(file.as_bytes()).unwrap() else { panic!("int8") };
    let points = [
        RequantPoint::VGate,
        RequantPoint::VLink,
        RequantPoint::Horizontal,
        RequantPoint::Link,
        RequantPoint::Out,
    ];
    let mut checked = 0;
    for l in 0..q.arch().layers() {
        for point in points {
            let scales = q.layer(l).requant(point);
            for c in 0..scales.len() {
                let m = scales.get(c);
                let right = 31 - i32::from(m.shift);
                assert!(right >= 33, "layer {l} {point:?} channel {c}: right shift {right}");
                checked += 1;
            }
        }
    }
    // Four points of 64 channels in each of the 9 layers, and `out`'s 32 in 8.
    assert_eq!(checked, 9 * 4 * 64 + 8 * 32);
}
