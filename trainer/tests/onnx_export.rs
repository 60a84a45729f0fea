//! The exported ONNX keeps the contract: it loads in tract-onnx, gives the
//! trainer's logits within 1e-4, carries the architecture, and is causal.

use pixelcnn_runtime::onnx::to_onnx_bytes;
use pixelcnn_runtime::random_weights::random_params;
use pixelcnn_runtime::{Arch, Variant, Weights};
use pixelcnn_trainer::engine::{Engine, Example};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;

fn gated() -> Arch {
    Arch {
        variant: Variant::Gated,
        height: 6,
        width: 5,
        levels: 3,
        classes: 4,
        channels: 4,
        blocks: 2,
        first_kernel: 5,
        kernel: 3,
        head: 5,
    }
}

fn archs() -> Vec<Arch> {
    vec![
        gated(),
        Arch { classes: 0, levels: 2, first_kernel: 7, ..gated() },
        Arch { variant: Variant::Plain, ..gated() },
        Arch { variant: Variant::Plain, classes: 0, ..gated() },
    ]
}

/// Runs the ONNX bytes in tract on `images` (levels) with `labels`.
fn run_tract(arch: &Arch, bytes: &[u8], images: &[Vec<u8>], labels: &[i64]) -> Vec<f32> {
    let n = images.len();
    let (h, w) = (arch.height, arch.width);
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .expect("tract reads the export")
        .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), tvec!(n, 1, h, w)))
        .unwrap();
    if arch.classes > 0 {
        model =
            model.with_input_fact(1, InferenceFact::dt_shape(i64::datum_type(), tvec!(n))).unwrap();
    }
    let runnable = model.into_optimized().expect("optimizes").into_runnable().expect("runnable");
    let scale = 1.0 / (arch.levels - 1) as f32;
    let pixels: Vec<f32> = images.iter().flatten().map(|&l| f32::from(l) * scale).collect();
    let mut inputs: TVec<TValue> =
        tvec!(Tensor::from_shape(&[n, 1, h, w], &pixels).unwrap().into());
    if arch.classes > 0 {
        inputs.push(Tensor::from_shape(&[n], labels).unwrap().into());
    }
    let out = runnable.run(inputs).expect("runs");
    let view = out[0].to_plain_array_view::<f32>().unwrap();
    assert_eq!(view.shape(), &[n, arch.levels, h, w]);
    view.iter().copied().collect()
}

fn images(arch: &Arch, n: usize, seed: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|b| (0..arch.pixels()).map(|i| ((i * 7 + b * 5 + seed) % arch.levels) as u8).collect())
        .collect()
}

#[test]
fn tract_gives_the_trainer_logits() {
    for (seed, arch) in archs().into_iter().enumerate() {
        let params = random_params(&arch, seed as u64 + 10);
        let bytes = to_onnx_bytes(&Weights::new(arch, &params).unwrap());
        let imgs = images(&arch, 3, seed);
        let labels: Vec<i64> =
            (0..3).map(|b| if arch.classes > 0 { b % arch.classes as i64 } else { 0 }).collect();
        let got = run_tract(&arch, &bytes, &imgs, &labels);
        // The training engine's logits, `[pixel][level]` per image, in
        // tract's `[image][level][pixel]` order.
        let mut engine = Engine::new(arch, 1).unwrap();
        let (k, pixels) = (arch.levels, arch.pixels());
        let mut want = Vec::new();
        for (img, &label) in imgs.iter().zip(&labels) {
            let label = (arch.classes > 0).then_some(label as usize);
            let logits = engine.logits(&params, Example { levels: img, label }).unwrap();
            want.extend(
                (0..k)
                    .flat_map(|l| (0..pixels).map(move |p| (p, l)))
                    .map(|(p, l)| logits[p * k + l]),
            );
        }
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{arch:?}: tract differs from the trainer by {worst}");
    }
}

#[test]
fn the_contract_holds() {
    let arch = gated();
    let params = random_params(&arch, 1);
    let bytes = to_onnx_bytes(&Weights::new(arch, &params).unwrap());
    let model = pb::ModelProto::decode(&bytes[..]).unwrap();
    let graph = model.graph.unwrap();
    let names = |v: &[pb::ValueInfoProto]| v.iter().map(|i| i.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&graph.input), ["pixels", "label"]);
    assert_eq!(names(&graph.output), ["logits"]);
    let meta =
        model.metadata_props.iter().find(|p| p.key == "pixelcnn").expect("pixelcnn metadata");
    let json: serde_json::Value = serde_json::from_str(&meta.value).unwrap();
    assert_eq!(Arch::from_json(&json), Ok(arch));
    let unconditional = Arch { classes: 0, ..arch };
    let params = random_params(&unconditional, 1);
    let bytes = to_onnx_bytes(&Weights::new(unconditional, &params).unwrap());
    let graph = pb::ModelProto::decode(&bytes[..]).unwrap().graph.unwrap();
    assert_eq!(names(&graph.input), ["pixels"]);
}

#[test]
fn the_exported_graph_is_causal() {
    // Perturb each pixel in turn: no logit at or before it may move, and
    // some later logit must (so the check is not vacuous).
    for arch in [
        Arch { height: 5, width: 5, ..gated() },
        Arch { variant: Variant::Plain, height: 5, width: 5, ..gated() },
    ] {
        let params = random_params(&arch, 4);
        let bytes = to_onnx_bytes(&Weights::new(arch, &params).unwrap());
        let n = arch.pixels();
        let base_image = images(&arch, 1, 0).remove(0);
        let mut batch = vec![base_image.clone()];
        for p in 0..n {
            let mut img = base_image.clone();
            img[p] = if img[p] == 0 { (arch.levels - 1) as u8 } else { 0 };
            batch.push(img);
        }
        let labels = vec![1i64; n + 1];
        let out = run_tract(&arch, &bytes, &batch, &labels);
        let k = arch.levels;
        let logit = |b: usize, q: usize, level: usize| out[(b * k + level) * n + q];
        let mut later_changed = 0;
        for p in 0..n {
            for q in 0..n {
                let moved = (0..k).any(|l| logit(p + 1, q, l) != logit(0, q, l));
                if q <= p {
                    assert!(!moved, "{:?}: pixel {p} moved the prediction at {q}", arch.variant);
                } else if moved {
                    later_changed += 1;
                }
            }
        }
        assert!(later_changed > 0);
    }
}
