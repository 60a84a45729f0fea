//! Per-pixel cost of sampling: the incremental executor against the naive
//! path (one full forward pass per pixel), on the MNIST-sized architecture
//! with random weights, batch 1, one thread.
//!
//! `cargo bench --bench per_pixel`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use pixelcnn_runtime::random::random_params;
use pixelcnn_runtime::{reference, rng, sampler, Arch, Incremental, Weights};
use std::hint::black_box;

fn per_pixel(c: &mut Criterion) {
    let arch = Arch::MNIST_GATED;
    let params = random_params(&arch, 1);
    let weights = Weights::new(arch, &params).expect("valid random model");
    let mut state = vec![0.0f32; arch.state_len()];

    let mut group = c.benchmark_group("f32_mnist_gated");
    group.throughput(Throughput::Elements(arch.pixels() as u64));
    group.bench_function("incremental_image", |b| {
        let mut inc = Incremental::new(&weights, &mut state, Some(3)).expect("executor");
        let mut image = vec![0u8; arch.pixels()];
        let mut seed = 0;
        b.iter(|| {
            seed += 1;
            sampler::generate(&mut inc, Some(3), 1.0, &mut rng::from_seed(seed), &mut image)
                .expect("sample");
            black_box(&image);
        });
    });
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.bench_function("naive_one_pixel", |b| {
        let image = vec![1u8; arch.pixels()];
        b.iter_batched(
            || image.clone(),
            |img| black_box(reference::forward(&weights, &img, Some(3)).expect("forward")),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, per_pixel);
criterion_main!(benches);
