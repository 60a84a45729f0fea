//! x86_64 AVX2 int8 matrix-vector product, bit-identical to
//! [`crate::kernels::generic::matvec_i8`].
//!
//! Four weight rows share each load of the input: int8 is widened to int16
//! (`vpmovsxbw`) and multiplied pairwise into int32 (`vpmaddwd`), which is
//! exact (|2 · 128²| < 2^31). Lanes add with wrapping, as the scalar kernel
//! does, and wrapping addition is associative, so any summation order gives
//! the same bits.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// `out[o] += w[o] · x` for every row `o` of `w` (`out.len()` rows of
/// `x.len()` int8 each).
///
/// # Safety
/// The CPU must support AVX2, and `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx2")]
pub unsafe fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    let n = x.len();
    debug_assert_eq!(w.len(), out.len() * n);
    let rows = out.len();
    let mut o = 0;
    while o + 4 <= rows {
        // Safety: rows o..o+4 lie inside `w` (checked by the caller).
        let sums = unsafe { rows4(w.as_ptr().add(o * n), n, x) };
        for (r, s) in sums.iter().enumerate() {
            out[o + r] = out[o + r].wrapping_add(*s);
        }
        o += 4;
    }
    while o < rows {
        // Safety: as above, one row.
        let s = unsafe { rows1(w.as_ptr().add(o * n), x) };
        out[o] = out[o].wrapping_add(s);
        o += 1;
    }
}

#[inline]
#[target_feature(enable = "avx2")]
unsafe fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
    _mm_cvtsi128_si32(s)
}

/// Loads 16 int8 at `p` as 16 int16.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn widen16(p: *const i8) -> __m256i {
    // Safety: the caller guarantees 16 readable bytes at `p`.
    _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(p.cast()) })
}

/// Dot products of four consecutive rows (each `n` long, starting at `w`)
/// with `x`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rows4(w: *const i8, n: usize, x: &[i8]) -> [i32; 4] {
    let mut acc = [_mm256_setzero_si256(); 4];
    let mut i = 0;
    while i + 16 <= n {
        // Safety: i + 16 <= n, so 16 bytes are readable in `x` and in each
        // of the four rows.
        unsafe {
            let xv = widen16(x.as_ptr().add(i));
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = widen16(w.add(r * n + i));
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(wv, xv));
            }
        }
        i += 16;
    }
    let mut out = [0i32; 4];
    for (r, (a, o)) in acc.iter().zip(&mut out).enumerate() {
        // Safety: AVX2 is enabled for this function.
        let mut s = unsafe { hsum(*a) };
        for (j, &xj) in x.iter().enumerate().skip(i) {
            // Safety: j < n: inside row r.
            let wj = unsafe { *w.add(r * n + j) };
            s = s.wrapping_add(i32::from(wj) * i32::from(xj));
        }
        *o = s;
    }
    out
}

/// Dot product of one row starting at `w` with `x`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn rows1(w: *const i8, x: &[i8]) -> i32 {
    let n = x.len();
    let mut acc = _mm256_setzero_si256();
    let mut i = 0;
    while i + 16 <= n {
        // Safety: i + 16 <= n for both `x` and the row.
        unsafe {
            acc = _mm256_add_epi32(
                acc,
                _mm256_madd_epi16(widen16(w.add(i)), widen16(x.as_ptr().add(i))),
            );
        }
        i += 16;
    }
    // Safety: AVX2 is enabled for this function.
    let mut s = unsafe { hsum(acc) };
    for (j, &xj) in x.iter().enumerate().skip(i) {
        // Safety: j < n.
        s = s.wrapping_add(i32::from(unsafe { *w.add(j) }) * i32::from(xj));
    }
    s
}
