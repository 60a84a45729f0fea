//! x86_64 AVX-VNNI int8 matrix-vector product (VEX-encoded 256-bit
//! `vpdpbusd`, for CPUs that have VNNI without AVX-512, such as Alder Lake),
//! bit-identical to [`crate::kernels::generic::matvec_i8`].
//!
//! The arithmetic is that of [`super::matvec_i8_avx512vnni`]: weights read
//! as `w + 128` by flipping their sign bit, the correction `128 · Σx`
//! subtracted once per row, everything wrapping modulo 2^32. Without
//! AVX-512's byte masks, the last `n mod 32` bytes of a row are summed in
//! scalar code.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// `out[o] += w[o] · x` for every row `o` of `w` (`out.len()` rows of
/// `x.len()` int8 each).
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI, and
/// `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx2,avxvnni")]
pub unsafe fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    debug_assert_eq!(w.len(), out.len() * x.len());
    // The tail is summed exactly, without the bias, so the correction only
    // covers the vector part.
    let body = x.len() / 32 * 32;
    let corr = bias_correction(&x[..body]);
    let mut o = 0;
    while o + 4 <= out.len() {
        // Safety: rows o..o + 4 lie inside `w` (the caller's shape).
        unsafe { rows::<4>(&mut out[o..o + 4], w.as_ptr().add(o * x.len()), x, corr) };
        o += 4;
    }
    while o < out.len() {
        // Safety: row o lies inside `w`.
        unsafe { rows::<1>(&mut out[o..o + 1], w.as_ptr().add(o * x.len()), x, corr) };
        o += 1;
    }
}

/// `out[r] += row r · x` for the `R` consecutive rows of `x.len()` bytes at
/// `w`.
///
/// # Safety
/// AVX2 and AVX-VNNI; `R · x.len()` bytes readable at `w`; `out.len() == R`.
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn rows<const R: usize>(out: &mut [i32], w: *const i8, x: &[i8], corr: i32) {
    let n = x.len();
    let flip = _mm256_set1_epi8(i8::MIN);
    let mut acc = [_mm256_setzero_si256(); R];
    let mut i = 0;
    while i + 32 <= n {
        // Safety: i + 32 <= n: 32 bytes readable in `x` and in each row.
        unsafe {
            let xv = _mm256_loadu_si256(x.as_ptr().add(i).cast());
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_si256(w.add(r * n + i).cast());
                *a = _mm256_dpbusd_avx_epi32(*a, _mm256_xor_si256(wv, flip), xv);
            }
        }
        i += 32;
    }
    for (r, (o, a)) in out.iter_mut().zip(&acc).enumerate() {
        let mut s = hsum(*a).wrapping_sub(corr);
        for (j, &xj) in x.iter().enumerate().skip(i) {
            // Safety: j < n: inside row r.
            let wj = unsafe { *w.add(r * n + j) };
            s = s.wrapping_add(i32::from(wj) * i32::from(xj));
        }
        *o = o.wrapping_add(s);
    }
}

/// `128 · Σx` with wrapping, the term each row's biased product carries.
#[inline]
pub(crate) fn bias_correction(x: &[i8]) -> i32 {
    x.iter().fold(0i32, |s, &v| s.wrapping_add(i32::from(v))).wrapping_mul(128)
}

/// Wrapping sum of the eight int32 lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(crate) fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}
