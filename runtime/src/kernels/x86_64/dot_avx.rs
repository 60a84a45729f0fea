//! x86_64 AVX float dot products: f32 weights, and f16 weights widened by
//! F16C (`vcvtph2ps`, exact for every finite f16). Bit-identical to
//! [`crate::kernels::generic::dot_f32`] and [`crate::kernels::generic::dot_f16`]: the same
//! eight lanes (element `i` into lane `i mod 8`), separate multiplies and
//! adds (no fused multiply-add, which would round differently), the lanes
//! combined in the portable kernels' order and the tail added last,
//! sequentially.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// `(a0 + a4 + (a2 + a6)) + (a1 + a5 + (a3 + a7))`, the portable kernels'
/// pairing of the eight lanes.
#[inline]
#[target_feature(enable = "avx")]
fn combine(acc: __m256) -> f32 {
    // [a0 + a4, a1 + a5, a2 + a6, a3 + a7]
    let pairs = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps::<1>(acc));
    // [p0 + p2, p1 + p3, ...]
    let halves = _mm_add_ps(pairs, _mm_movehl_ps(pairs, pairs));
    _mm_cvtss_f32(halves) + _mm_cvtss_f32(_mm_shuffle_ps::<0b01>(halves, halves))
}

/// `Σ a[i] · b[i]` as [`crate::kernels::generic::dot_f32`] computes it.
///
/// # Safety
/// The CPU must support AVX; `a.len() == b.len()`.
#[target_feature(enable = "avx")]
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // Safety: i + 8 <= n: eight floats readable in both slices.
        unsafe {
            let p = _mm256_mul_ps(
                _mm256_loadu_ps(a.as_ptr().add(i)),
                _mm256_loadu_ps(b.as_ptr().add(i)),
            );
            acc = _mm256_add_ps(acc, p);
        }
        i += 8;
    }
    let mut tail = 0.0f32;
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        tail += x * y;
    }
    combine(acc) + tail
}

/// `out[i] += a · x[i]` as [`crate::kernels::generic::axpy_f32`] computes
/// it (a multiply, then an add).
///
/// # Safety
/// The CPU must support AVX; `out.len() == x.len()`.
#[target_feature(enable = "avx")]
pub unsafe fn axpy_f32(out: &mut [f32], a: f32, x: &[f32]) {
    debug_assert_eq!(out.len(), x.len());
    let n = out.len();
    let va = _mm256_set1_ps(a);
    let mut i = 0;
    while i + 8 <= n {
        // Safety: i + 8 <= n: eight floats readable and writable.
        unsafe {
            let p = _mm256_mul_ps(va, _mm256_loadu_ps(x.as_ptr().add(i)));
            let o = out.as_mut_ptr().add(i);
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), p));
        }
        i += 8;
    }
    for (o, &v) in out[i..].iter_mut().zip(&x[i..]) {
        *o += a * v;
    }
}

/// `out[n] += Σ_k x[k] · w[k · N + n]` as
/// [`crate::kernels::generic::gemv_f32`] computes it, with the outputs held
/// in registers, 32 at a time, across all of `k` (the same multiply and add
/// per element, in the same order).
///
/// # Safety
/// The CPU must support AVX; `w.len() == x.len() · out.len()`.
#[target_feature(enable = "avx")]
pub unsafe fn gemv_f32(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = out.len();
    debug_assert_eq!(w.len(), x.len() * n);
    let mut j = 0;
    // Safety (all blocks): j + width <= n, and every row k has n floats at
    // w[k * n..], so each load and store is in bounds.
    while j + 32 <= n {
        unsafe {
            let o = out.as_mut_ptr().add(j);
            let mut acc = [
                _mm256_loadu_ps(o),
                _mm256_loadu_ps(o.add(8)),
                _mm256_loadu_ps(o.add(16)),
                _mm256_loadu_ps(o.add(24)),
            ];
            for (k, &a) in x.iter().enumerate() {
                if a == 0.0 {
                    continue;
                }
                let va = _mm256_set1_ps(a);
                let r = w.as_ptr().add(k * n + j);
                for (i, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_add_ps(*acc, _mm256_mul_ps(va, _mm256_loadu_ps(r.add(8 * i))));
                }
            }
            for (i, acc) in acc.iter().enumerate() {
                _mm256_storeu_ps(o.add(8 * i), *acc);
            }
        }
        j += 32;
    }
    while j + 8 <= n {
        unsafe {
            let o = out.as_mut_ptr().add(j);
            let mut acc = _mm256_loadu_ps(o);
            for (k, &a) in x.iter().enumerate() {
                if a != 0.0 {
                    let r = w.as_ptr().add(k * n + j);
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(_mm256_set1_ps(a), _mm256_loadu_ps(r)));
                }
            }
            _mm256_storeu_ps(o, acc);
        }
        j += 8;
    }
    for jj in j..n {
        let mut acc = out[jj];
        for (k, &a) in x.iter().enumerate() {
            if a != 0.0 {
                acc += a * w[k * n + jj];
            }
        }
        out[jj] = acc;
    }
}

/// `out[i] += a · w[i]` for f16 `w` widened by F16C, as
/// [`crate::kernels::generic::axpy_f16`] computes it.
///
/// # Safety
/// The CPU must support AVX and F16C; `out.len() == w.len()`; `w` finite.
#[target_feature(enable = "avx,f16c")]
pub unsafe fn axpy_f16(out: &mut [f32], a: f32, w: &[half::f16]) {
    debug_assert_eq!(out.len(), w.len());
    let n = out.len();
    let va = _mm256_set1_ps(a);
    let mut i = 0;
    while i + 8 <= n {
        // Safety: i + 8 <= n: eight halves readable, eight floats writable.
        unsafe {
            let h = _mm_loadu_si128(w.as_ptr().add(i).cast());
            let p = _mm256_mul_ps(va, _mm256_cvtph_ps(h));
            let o = out.as_mut_ptr().add(i);
            _mm256_storeu_ps(o, _mm256_add_ps(_mm256_loadu_ps(o), p));
        }
        i += 8;
    }
    for (o, &v) in out[i..].iter_mut().zip(&w[i..]) {
        *o += a * v.to_f32();
    }
}

/// `Σ w[i] · x[i]` for f16 weights, as [`crate::kernels::generic::dot_f16`]
/// computes it.
///
/// # Safety
/// The CPU must support AVX and F16C; `w.len() == x.len()`; the weights are
/// finite (checked when a model loads).
#[target_feature(enable = "avx,f16c")]
pub unsafe fn dot_f16(w: &[half::f16], x: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), x.len());
    let n = w.len();
    let mut acc = _mm256_setzero_ps();
    let mut i = 0;
    while i + 8 <= n {
        // Safety: i + 8 <= n: eight f16 (16 bytes) and eight f32 readable.
        unsafe {
            let wv = _mm256_cvtph_ps(_mm_loadu_si128(w.as_ptr().add(i).cast()));
            acc = _mm256_add_ps(acc, _mm256_mul_ps(wv, _mm256_loadu_ps(x.as_ptr().add(i))));
        }
        i += 8;
    }
    let mut tail = 0.0f32;
    for (&a, b) in w[i..].iter().zip(&x[i..]) {
        tail += crate::kernels::generic::finite_f16_to_f32(a) * b;
    }
    combine(acc) + tail
}
