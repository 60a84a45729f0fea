//! The machine's int8 ceiling, for reading `pixelcnn bench`'s GMAC/s:
//! - `clock/dependent_adds`: 1,000,000 dependent integer adds take one
//!   cycle each, so this time gives the core's clock (GHz ≈ 1e6 / ns);
//! - `matvec_i8/<kernel>/64x192`: the int8 kernel on the vertical stack's
//!   shape with everything in L1, the best the kernel does without the
//!   executor around it;
//! - `matvec_i8/avx512-vnni-packed/64x192` and
//!   `row_matmul_i8/<kernel>/64x192x28`: the packed AVX-512 VNNI kernel on
//!   one input, and every kernel on a whole row's 28 positions at once (the
//!   vertical stack of one layer for one image row);
//! - `int8_peak/vpdpbusd_<bits>`: independent VNNI `vpdpbusd` chains on
//!   registers, no memory traffic: the core's int8 MAC ceiling, to divide a
//!   kernel's or a digit's GMAC/s by.
//!
//! - `int8_peak/amx_tdpbssd` (Linux, CPUs with AMX-INT8): four independent
//!   `tdpbssd` tile products (16 × 16 outputs × 64 inputs, 16,384 MACs
//!   each) in a 2 × 2 blocking of the eight tiles: the core's int8 ceiling
//!   for products of at least 16 columns, which a batch-1 matvec (one
//!   column) cannot use; `int8_peak/amx_tdpbssd_loaded`: the same with
//!   the four operand tiles loaded from L1 for every four products, as a
//!   product from memory must (tiles are not renamed).
//!
//! - `row_epilogues/<kernel>/<what>`: one layer's vertical stack over a
//!   row as the executor runs it, the 64 × 192 product read in place from
//!   two ring rows with its gate (and int8 link inputs) in the epilogue,
//!   and the 64 × 64 link product into int16.
//!
//! - `gated_step/<kernel>/<how>`: nine dependent gated steps (32 channels,
//!   the left kernel over two positions, the residual block), each one's
//!   output the next one's input as in a pixel: the latency a pixel's
//!   chain of layers costs, fused in registers and as separate calls;
//!   `packed-fused-prepared-9-layers` takes each step's weights and
//!   constants from a layer of its own, as the executor does, and
//!   `-2-chains` and `-3-chains` run two or three independent chains with
//!   their steps interleaved: whether other work fills one chain's
//!   latency (what sampling a binary pixel's two possible successors
//!   beside it would need).
//!
//! `cargo bench --bench peak`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pixelcnn_runtime::kernels::{
    ColumnMap, Columns, Gated, GatedStep, Int8Kernel, Matrix, Narrow, Piece, Residual, Resolved,
    Scales, StepScratch, Wide,
};

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
    #[cfg(target_arch = "x86_64")]
    if let Some(vnni) = Int8Kernel::Avx512Vnni.resolve() {
        let packed = pixelcnn_runtime::kernels::PackedI8::pack(&w, rows);
        let m = Matrix { w: &w, packed: Some(&packed) };
        let cols = Columns { data: &x, stride: n, len: n, count: 1 };
        group.bench_function("avx512-vnni-packed/64x192", |b| {
            b.iter(|| {
                vnni.matmul(&mut out, rows, black_box(m), black_box(cols));
                black_box(&out);
            });
        });
    }
    group.finish();

    // One layer's vertical stack over a row: 28 positions, one product.
    let positions = 28;
    let xs: Vec<i8> = (0..positions * n).map(|i| (i * 13 % 255) as i8).collect();
    let mut outs = vec![0i32; positions * rows];
    let cols = Columns { data: &xs, stride: n, len: n, count: positions };
    let mut group = c.benchmark_group("row_matmul_i8");
    group.throughput(Throughput::Elements((rows * n * positions) as u64));
    for kernel in Int8Kernel::available().filter_map(Int8Kernel::resolve) {
        group.bench_function(format!("{}/64x192x28", kernel.kernel().name()), |b| {
            b.iter(|| {
                kernel.matmul(&mut outs, rows, black_box(Matrix::row_major(&w)), black_box(cols));
                black_box(&outs);
            });
        });
    }
    #[cfg(target_arch = "x86_64")]
    for kernel in
        [Int8Kernel::Avx512Vnni, Int8Kernel::Amx].into_iter().filter_map(Int8Kernel::resolve)
    {
        let packed = pixelcnn_runtime::kernels::PackedI8::pack(&w, rows);
        let m = Matrix { w: &w, packed: Some(&packed) };
        group.bench_function(format!("{}-packed/64x192x28", kernel.kernel().name()), |b| {
            b.iter(|| {
                kernel.matmul(&mut outs, rows, black_box(m), black_box(cols));
                black_box(&outs);
            });
        });
    }
    group.finish();
}

/// Register-only int8 MAC loops: `CHAINS` independent accumulators so the
/// instruction's latency is hidden and only its throughput counts.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod int8_peak {
    use core::arch::x86_64::*;

    pub const ITERS: usize = 100_000;
    pub const CHAINS: usize = 12;

    /// `ITERS · CHAINS` 512-bit `vpdpbusd`, 64 MACs each.
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn vnni_512(a: i8, b: i8) -> i32 {
        let (va, vb) = (_mm512_set1_epi8(a), _mm512_set1_epi8(b));
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for _ in 0..ITERS {
            for c in acc.iter_mut() {
                *c = _mm512_dpbusd_epi32(*c, va, vb);
            }
        }
        acc.iter().fold(0, |s, v| s ^ _mm512_reduce_add_epi32(*v))
    }

    /// `ITERS · CHAINS` 256-bit `vpdpbusd`, 32 MACs each.
    ///
    /// # Safety
    /// The CPU must support AVX-512F/VL and AVX-512 VNNI.
    #[target_feature(enable = "avx512f,avx512vl,avx512vnni")]
    pub unsafe fn vnni_256(a: i8, b: i8) -> i32 {
        let (va, vb) = (_mm256_set1_epi8(a), _mm256_set1_epi8(b));
        let mut acc = [_mm256_setzero_si256(); CHAINS];
        for _ in 0..ITERS {
            for c in acc.iter_mut() {
                *c = _mm256_dpbusd_epi32(*c, va, vb);
            }
        }
        acc.iter().fold(0, |s, v| s ^ _mm256_extract_epi32::<0>(*v))
    }
}

/// AMX-INT8 through inline assembly (its intrinsics are not stable).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(unsafe_code)]
mod amx_peak {
    use core::arch::asm;

    pub const ITERS: usize = 20_000;
    /// Tile products per iteration (accumulators `tmm0..tmm3`).
    pub const PRODUCTS: usize = 4;
    /// MACs of one `tdpbssd` of 16 × 64 by 64 × 16 bytes.
    pub const MACS: u64 = 16 * 16 * 64;

    #[repr(C, align(64))]
    struct Aligned<const N: usize>([u8; N]);

    /// `ITERS · PRODUCTS` tile products of bytes `a` and `b`; returns
    /// one output of the first accumulator (`ITERS · 64 · a · b`). With
    /// `loaded`, the four operand tiles are loaded again (from L1) for
    /// every four products, as a product over more than one K chunk must:
    /// a tile is not renamed, so its next load waits for the products that
    /// read it. That is the ceiling of products whose operands come from
    /// memory; without, the tiles' own.
    ///
    /// # Safety
    /// AMX usable in this process (`Int8Kernel::Amx.is_available()`, which
    /// also asks Linux for the tile state).
    pub unsafe fn tdpbssd(a: i8, b: i8, loaded: bool) -> i32 {
        // Palette 1, eight tiles of 16 rows of 64 bytes.
        let mut config = Aligned([0u8; 64]);
        config.0[0] = 1;
        for t in 0..8 {
            config.0[16 + 2 * t] = 64;
            config.0[48 + t] = 16;
        }
        // Two A and two B tiles, 1,024 bytes each.
        let (ta, tb) = (Aligned([a as u8; 2048]), Aligned([b as u8; 2048]));
        let mut out = Aligned([0u8; 1024]);
        // Safety: the caller's AMX; every tile address is 1,024 readable
        // (or, for the store, writable) bytes at a stride of 64.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack));
            asm!(
                "tilezero tmm0",
                "tilezero tmm1",
                "tilezero tmm2",
                "tilezero tmm3",
                options(nostack, nomem)
            );
            let (a, b, s) = (ta.0.as_ptr(), tb.0.as_ptr(), 64usize);
            let (a2, b2) = (a.add(1024), b.add(1024));
            if loaded {
                for _ in 0..ITERS {
                    asm!(
                        "tileloadd tmm4, [{a} + {s}*1]", "tileloadd tmm5, [{b} + {s}*1]",
                        "tdpbssd tmm0, tmm4, tmm5",
                        "tileloadd tmm6, [{a2} + {s}*1]", "tdpbssd tmm2, tmm6, tmm5",
                        "tileloadd tmm7, [{b2} + {s}*1]",
                        "tdpbssd tmm1, tmm4, tmm7", "tdpbssd tmm3, tmm6, tmm7",
                        a = in(reg) a, b = in(reg) b, a2 = in(reg) a2, b2 = in(reg) b2,
                        s = in(reg) s, options(nostack, readonly),
                    );
                }
            } else {
                asm!(
                    "tileloadd tmm4, [{a} + {s}*1]", "tileloadd tmm5, [{b} + {s}*1]",
                    "tileloadd tmm6, [{a2} + {s}*1]", "tileloadd tmm7, [{b2} + {s}*1]",
                    a = in(reg) a, b = in(reg) b, a2 = in(reg) a2, b2 = in(reg) b2,
                    s = in(reg) s, options(nostack, readonly),
                );
                for _ in 0..ITERS {
                    asm!(
                        "tdpbssd tmm0, tmm4, tmm5",
                        "tdpbssd tmm1, tmm4, tmm7",
                        "tdpbssd tmm2, tmm6, tmm5",
                        "tdpbssd tmm3, tmm6, tmm7",
                        options(nostack, nomem),
                    );
                }
            }
            asm!("tilestored [{o} + {s}*1], tmm0", "tilerelease",
                 o = in(reg) out.0.as_mut_ptr(), s = in(reg) 64usize, options(nostack));
        }
        i32::from_le_bytes([out.0[0], out.0[1], out.0[2], out.0[3]])
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn peaks(c: &mut Criterion) {
    use int8_peak::*;
    let mut group = c.benchmark_group("int8_peak");
    let ops = (ITERS * CHAINS) as u64;
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
        group.throughput(Throughput::Elements(ops * 64));
        // Safety: AVX-512F and VNNI detected.
        group.bench_function("vpdpbusd_512", |b| {
            b.iter(|| unsafe { vnni_512(black_box(3), black_box(-5)) })
        });
        if is_x86_feature_detected!("avx512vl") {
            group.throughput(Throughput::Elements(ops * 32));
            // Safety: AVX-512F/VL and VNNI detected.
            group.bench_function("vpdpbusd_256", |b| {
                b.iter(|| unsafe { vnni_256(black_box(3), black_box(-5)) })
            });
        }
    }
    #[cfg(target_os = "linux")]
    if Int8Kernel::Amx.is_available() {
        use amx_peak::*;
        group.throughput(Throughput::Elements((ITERS * PRODUCTS) as u64 * MACS));
        for (name, loaded) in [("amx_tdpbssd", false), ("amx_tdpbssd_loaded", true)] {
            // The sums are exact: a wrong product would show here.
            // Safety: AMX detected and permitted.
            let one = unsafe { tdpbssd(3, -5, loaded) };
            assert_eq!(one, ITERS as i32 * 64 * -15, "{name} sums");
            // Safety: as above.
            group.bench_function(name, |b| {
                b.iter(|| unsafe { tdpbssd(black_box(3), black_box(-5), loaded) })
            });
        }
    }
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn peaks(_: &mut Criterion) {}

/// One layer's weights and requantization constants for [`chain`].
type Layer<'a> = ((Matrix<'a>, Matrix<'a>), (Scales<'a>, Scales<'a>));

/// Nine dependent steps of `kernel`, step `s` over `layers[s % len]`: each
/// step's output shifts into the next one's window.
fn chain_layers(kernel: Resolved, layers: &[Layer<'_>], window: &mut [i8]) {
    chains_interleaved(kernel, layers, [window]);
}

/// [`chain_layers`] of `K` independent windows, their steps interleaved
/// (every chain's step `s`, then every chain's step `s + 1`): how much of
/// one chain's latency the other chains' work can fill.
fn chains_interleaved<const K: usize>(
    kernel: Resolved,
    layers: &[Layer<'_>],
    mut windows: [&mut [i8]; K],
) {
    let p = 32;
    let (bias, links) = ([3000i32; 64], [-20i16; 64]);
    let (mut acc, mut pre, mut gated) = ([0i32; 64], [0i16; 64], [0i8; 32]);
    let mut top = [[0i8; 32]; K];
    for s in 0..9 {
        let ((left, out), (gate, residual)) = layers[s % layers.len()];
        for (window, top) in windows.iter().zip(&mut top) {
            let step = GatedStep {
                weights: left,
                input: window,
                bias: &bias,
                scales: gate,
                links: &links,
                residual: Some(Residual {
                    weights: out,
                    bias: &bias[..p],
                    scales: residual,
                    stream: &window[p..],
                    stream_pair: (1 << 30, -1),
                }),
            };
            let scratch = StepScratch { acc: &mut acc, pre: &mut pre, gated: &mut gated };
            kernel.gated_step(&step, top, scratch);
        }
        for (window, top) in windows.iter_mut().zip(&top) {
            window.copy_within(p.., 0);
            window[p..].copy_from_slice(top);
        }
    }
}

/// Nine dependent steps of `kernel` over `(left, out)` weights: each
/// step's output shifts into the next one's window.
fn chain(
    kernel: Resolved,
    weights: (Matrix<'_>, Matrix<'_>),
    scales: (Scales<'_>, Scales<'_>),
    window: &mut [i8],
) {
    chain_layers(kernel, &[(weights, scales)], window);
}

fn gated_steps(c: &mut Criterion) {
    let (left, out): (Vec<i8>, Vec<i8>) = (
        (0..64 * 64).map(|i| (i * 7 % 255) as i8 >> 2).collect(),
        (0..32 * 32).map(|i| (i * 5 % 255) as i8 >> 2).collect(),
    );
    // Right shifts of 36; with one row's at 31 the fused kernel steps aside
    // and the separate calls run.
    let fused: Vec<i32> = (0..96).flat_map(|_| [1 << 30 | 12345, -5]).collect();
    let mut separate = fused.clone();
    separate[1] = 0;
    let mut group = c.benchmark_group("gated_step");
    for kernel in Int8Kernel::available().filter_map(Int8Kernel::resolve) {
        let mut window: Vec<i8> = (0..64).map(|i| (i * 13 % 255) as i8 >> 1).collect();
        group.bench_function(format!("{}/row-major", kernel.kernel().name()), |b| {
            let m = (Matrix::row_major(&left), Matrix::row_major(&out));
            b.iter(|| {
                chain(
                    kernel,
                    black_box(m),
                    (Scales::unprepared(&fused[..128]), Scales::unprepared(&fused[128..])),
                    &mut window,
                )
            });
        });
        #[cfg(target_arch = "x86_64")]
        if kernel.kernel() == Int8Kernel::Avx512Vnni {
            use pixelcnn_runtime::kernels::{PackedI8, PreparedScales};
            let packed = (PackedI8::pack(&left, 64), PackedI8::pack(&out, 32));
            let m = (
                Matrix { w: &left, packed: Some(&packed.0) },
                Matrix { w: &out, packed: Some(&packed.1) },
            );
            let prepared =
                (PreparedScales::prepare(&fused[..128]), PreparedScales::prepare(&fused[128..]));
            let prepared = (
                Scales { pairs: &fused[..128], prepared: prepared.0.as_ref() },
                Scales { pairs: &fused[128..], prepared: prepared.1.as_ref() },
            );
            // Nine layers' weights and constants, each in its own memory
            // as the executor's are (45 KB of weights and 14 KB of
            // constants: more than L1 holds).
            let copies: Vec<_> = (0..9)
                .map(|_| {
                    let packed = (PackedI8::pack(&left, 64), PackedI8::pack(&out, 32));
                    let scales = (
                        PreparedScales::prepare(&fused[..128]),
                        PreparedScales::prepare(&fused[128..]),
                    );
                    (packed, scales)
                })
                .collect();
            let layers: Vec<Layer<'_>> = copies
                .iter()
                .map(|(packed, scales)| {
                    (
                        (
                            Matrix { w: &left, packed: Some(&packed.0) },
                            Matrix { w: &out, packed: Some(&packed.1) },
                        ),
                        (
                            Scales { pairs: &fused[..128], prepared: scales.0.as_ref() },
                            Scales { pairs: &fused[128..], prepared: scales.1.as_ref() },
                        ),
                    )
                })
                .collect();
            group.bench_function(
                format!("{}/packed-fused-prepared-9-layers", kernel.kernel().name()),
                |b| b.iter(|| chain_layers(kernel, black_box(&layers), &mut window)),
            );
            let mut two: [Vec<i8>; 2] =
                core::array::from_fn(|k| window.iter().map(|&v| v ^ k as i8).collect());
            group.bench_function(
                format!("{}/packed-fused-prepared-9-layers-2-chains", kernel.kernel().name()),
                |b| {
                    b.iter(|| {
                        let windows = two.each_mut().map(Vec::as_mut_slice);
                        chains_interleaved(kernel, black_box(&layers), windows)
                    })
                },
            );
            let mut three: [Vec<i8>; 3] =
                core::array::from_fn(|k| window.iter().map(|&v| v ^ k as i8).collect());
            group.bench_function(
                format!("{}/packed-fused-prepared-9-layers-3-chains", kernel.kernel().name()),
                |b| {
                    b.iter(|| {
                        let windows = three.each_mut().map(Vec::as_mut_slice);
                        chains_interleaved(kernel, black_box(&layers), windows)
                    })
                },
            );
            for (how, scales) in [
                ("packed-fused-prepared", prepared),
                (
                    "packed-separate",
                    (Scales::unprepared(&separate[..128]), Scales::unprepared(&separate[128..])),
                ),
            ] {
                group.bench_function(format!("{}/{how}", kernel.kernel().name()), |b| {
                    b.iter(|| chain(kernel, black_box(m), scales, &mut window));
                });
            }
        }
    }
    group.finish();
}

/// One layer's vertical stack over a row as the executor runs it: the
/// 64 × 192 product read in place from two ring rows, its gate and its
/// int8 link inputs in the epilogue (`row_gate`), then the link product
/// 64 × 64 into int16 links (`row_link`).
#[cfg(target_arch = "x86_64")]
fn row_epilogues(c: &mut Criterion) {
    use pixelcnn_runtime::kernels::{PackedI8, PreparedScales};
    let (positions, p) = (28usize, 32usize);
    let (rows, n) = (2 * p, 6 * p);
    let w: Vec<i8> = (0..rows * n).map(|i| (i * 7 % 255) as i8 >> 2).collect();
    let lw: Vec<i8> = (0..rows * rows).map(|i| (i * 5 % 255) as i8 >> 2).collect();
    let (packed, lpacked) = (PackedI8::pack(&w, rows), PackedI8::pack(&lw, rows));
    let pairs: Vec<i32> = (0..rows).flat_map(|_| [1 << 30 | 12345, -5]).collect();
    let prepared = PreparedScales::prepare(&pairs);
    let scales = Scales { pairs: &pairs, prepared: prepared.as_ref() };
    // Two ring rows of 30 positions (one zero each side), 32 channels.
    let ring: Vec<i8> = (0..2 * 30 * p).map(|i| (i * 13 % 255) as i8 >> 1).collect();
    let bias = vec![300i32; rows];
    let (mut gated, mut link_in) = (vec![0i8; positions * p], vec![0i8; positions * rows]);
    let mut links = vec![0i16; positions * rows];
    let (mut acc, mut window, mut pre) =
        (vec![0i32; positions * rows], vec![0i8; positions * n], vec![0i16; positions * rows]);
    let mut group = c.benchmark_group("row_epilogues");
    for kernel in
        [Int8Kernel::Avx512Vnni, Int8Kernel::Amx].into_iter().filter_map(Int8Kernel::resolve)
    {
        let (m, lm) =
            (Matrix { w: &w, packed: Some(&packed) }, Matrix { w: &lw, packed: Some(&lpacked) });
        for narrow_too in [true, false] {
            let name = if narrow_too { "gate+narrow" } else { "gate" };
            group.bench_function(format!("{}/{name}/64x192x28", kernel.kernel().name()), |b| {
                b.iter(|| {
                    let map = ColumnMap::contiguous(p);
                    let pieces = [
                        Piece { data: &ring[..], map, len: 3 * p },
                        Piece { data: &ring[30 * p..], map, len: 3 * p },
                    ];
                    let out = Gated { out: &mut gated, map, scales, add: None };
                    let narrow = narrow_too.then(|| Narrow {
                        out: &mut link_in,
                        map: ColumnMap::contiguous(rows),
                        scales,
                        lo: -127,
                        hi: 127,
                    });
                    kernel.matmul_requant_gate(
                        black_box(m),
                        (&pieces, positions),
                        (&bias, ColumnMap::contiguous(0)),
                        out,
                        narrow,
                        (&mut acc, &mut window, &mut pre),
                    );
                    black_box(&gated);
                });
            });
        }
        group.bench_function(format!("{}/link/64x64x28", kernel.kernel().name()), |b| {
            b.iter(|| {
                let x = Columns { data: &link_in, stride: rows, len: rows, count: positions };
                let wide = Wide {
                    out: &mut links,
                    map: ColumnMap::contiguous(rows),
                    scales,
                    add: None,
                    lo: i16::MIN,
                    hi: i16::MAX,
                };
                kernel.matmul_requant(
                    black_box(lm),
                    x,
                    (&bias, ColumnMap::contiguous(0)),
                    Some(wide),
                    None,
                    &mut acc,
                );
                black_box(&links);
            });
        });
    }
    group.finish();
}

#[cfg(not(target_arch = "x86_64"))]
fn row_epilogues(_: &mut Criterion) {}

criterion_group!(peak, clock, kernels, peaks, gated_steps, row_epilogues);
criterion_main!(peak);
