//! Per-pixel cost of sampling on the default model (batch 1, one thread):
//! whole-image incremental generation in f32, f16 and int8 (every int8
//! kernel this CPU runs), against the naive paths that run the whole network
//! once per pixel: the runtime's reference executor and tract-onnx.
//!
//! `cargo bench --bench per_pixel`. Divide an image time by 784 for the mean
//! per-pixel latency; a full pass *is* the naive cost of one pixel.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::kernels::{FloatKernel, Int8Kernel};
use pixelcnn_runtime::onnx::{import, TractRunner};
use pixelcnn_runtime::{f16, reference, rng, sampler, Executor, Model, Weights};

const ONNX: &str = "models/gated-mnist.onnx";
const INT8: &str = "models/gated-mnist-int8.pcnn";

fn generate_images(c: &mut Criterion, name: &str, model: &Model<'_>) {
    let pixels = model.arch().pixels();
    let mut state = vec![0u32; model.state_words()];
    let mut exec = Executor::new(model, &mut state, Some(3)).expect("executor");
    let mut image = vec![0u8; pixels];
    let mut group = c.benchmark_group("incremental_image");
    group.throughput(Throughput::Elements(pixels as u64));
    let mut seed = 0;
    group.bench_function(name, |b| {
        b.iter(|| {
            seed += 1;
            sampler::generate(&mut exec, Some(3), 1.0, &mut rng::from_seed(seed), &mut image)
                .expect("sample");
            black_box(&image);
        });
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let imported = import(Path::new(ONNX)).expect("default model");
    let arch = imported.arch;
    let weights = Weights::new(arch, &imported.params).expect("weights");
    let halves: Vec<f16> = imported.params.iter().map(|&w| f16::from_f32(w)).collect();
    let f16_weights = Weights::new(arch, &halves).expect("f16");
    let best_float = FloatKernel::best();
    for kernel in FloatKernel::available() {
        kernel.prefer();
        generate_images(c, &format!("f32_{}", kernel.name()), &Model::F32(weights.clone()));
        generate_images(c, &format!("f16_{}", kernel.name()), &Model::F16(f16_weights.clone()));
    }
    best_float.prefer();
    let int8 = AlignedBytes::new(&std::fs::read(INT8).expect("int8 model"));
    let int8 = format::parse(int8.as_bytes()).expect("int8");
    let best = Int8Kernel::best();
    for kernel in Int8Kernel::available() {
        kernel.prefer();
        generate_images(c, &format!("int8_{}", kernel.name()), &int8);
    }
    best.prefer();

    let image = vec![0u8; arch.pixels()];
    let mut group = c.benchmark_group("full_pass_per_pixel");
    group.sample_size(10);
    group.bench_function("reference", |b| {
        b.iter(|| black_box(reference::forward(&weights, &image, Some(3)).expect("forward")));
    });
    let runner = TractRunner::new(&std::fs::read(ONNX).expect("onnx"), &arch).expect("tract");
    group.sample_size(30);
    group.bench_function("tract", |b| {
        b.iter(|| black_box(runner.logits(&image, Some(3)).expect("tract")));
    });
    group.finish();
}

criterion_group!(per_pixel, benches);
criterion_main!(per_pixel);
