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
