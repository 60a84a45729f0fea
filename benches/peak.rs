//! The machine's int8 ceiling, for reading `pixelcnn bench`'s GMAC/s:
//! - `clock/dependent_adds`: 1,000,000 dependent integer adds take one
//!   cycle each, so this time gives the core's clock (GHz ≈ 1e6 / ns);
//! - `matvec_i8/<kernel>/64x192`: the int8 kernel on the vertical stack's
//!   shape with everything in L1, the best the kernel does without the
//!   executor around it.
//!
//! `cargo bench --bench peak`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pixelcnn_runtime::kernels::Int8Kernel;

fn clock(c: &mut Criterion) {
    c.bench_function("clock/dependent_adds", |b| {
        b.iter(|| {
            let mut x = black_box(1u64);
            for _ in 0..1_000_000 {
                // One add per cycle: each depends on the last; the barrier
                // stops the compiler folding the loop.
                x = black_box(x.wrapping_add(1));
            }
            x
        });
    });
}

fn kernels(c: &mut Criterion) {
    let (rows, n) = (64, 192);
    let w: Vec<i8> = (0..rows * n).map(|i| (i * 7 % 255) as i8).collect();
    let x: Vec<i8> = (0..n).map(|i| (i * 13 % 255) as i8).collect();
    let mut out = vec![0i32; rows];
    let mut group = c.benchmark_group("matvec_i8");
    group.throughput(Throughput::Elements((rows * n) as u64));
    for kernel in Int8Kernel::available() {
        group.bench_function(format!("{}/64x192", kernel.name()), |b| {
            b.iter(|| {
                kernel.matvec_i8(&mut out, black_box(&w), black_box(&x));
                black_box(&out);
            });
        });
    }
    group.finish();
}

criterion_group!(peak, clock, kernels);
criterion_main!(peak);
