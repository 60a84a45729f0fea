//! x86_64 AVX-512 VNNI int8 matrix-vector products, 512-bit and 256-bit,
//! bit-identical to [`crate::kernels::generic::matvec_i8`].
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, four products per int32
//! lane. Weights are signed, so each weight byte has its sign bit flipped,
//! which reads it as the unsigned `w + 128`, and its product with the signed
//! input `x` is `w · x + 128 · Σx`. The correction `128 · Σx` depends on the
//! input only: it is computed once per call and subtracted from every row.
//! Every step wraps modulo 2^32 (`vpdpbusd`'s four products fit in int32
//! before they are added, `|4 · 255 · 128| < 2^31`), and wrapping addition is
//! associative, so the result equals the scalar kernel's wrapping sum.
//!
//! Four rows share each load of `x`; the last partial block of a row is read
//! with a byte mask, which never touches memory past the mask, so rows of
//! any length need no scalar tail.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::matvec_i8_avxvnni::{bias_correction, hsum};

/// `out[o] += w[o] · x` for every row `o` of `w` (`out.len()` rows of
/// `x.len()` int8 each), 64 bytes per instruction.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VNNI, and
/// `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn matvec_i8_512(out: &mut [i32], w: &[i8], x: &[i8]) {
    debug_assert_eq!(w.len(), out.len() * x.len());
    let corr = bias_correction(x);
    let mut o = 0;
    while o + 16 <= out.len() {
        // Safety: rows o..o + 16 lie inside `w` (the caller's shape).
        unsafe { rows16_512(&mut out[o..o + 16], w.as_ptr().add(o * x.len()), x, corr) };
        o += 16;
    }
    while o + 4 <= out.len() {
        // Safety: rows o..o + 4 lie inside `w` (the caller's shape).
        unsafe { rows_512::<4>(&mut out[o..o + 4], w.as_ptr().add(o * x.len()), x, corr) };
        o += 4;
    }
    while o < out.len() {
        // Safety: row o lies inside `w`.
        unsafe { rows_512::<1>(&mut out[o..o + 1], w.as_ptr().add(o * x.len()), x, corr) };
        o += 1;
    }
}

/// `out[r] += row r · x` for the `R` consecutive rows of `x.len()` bytes at
/// `w`.
///
/// # Safety
/// AVX-512F/BW/VNNI; `R · x.len()` bytes readable at `w`; `out.len() == R`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn rows_512<const R: usize>(out: &mut [i32], w: *const i8, x: &[i8], corr: i32) {
    let n = x.len();
    let flip = _mm512_set1_epi8(i8::MIN);
    let mut acc = [_mm512_setzero_si512(); R];
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask64 = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        // Safety: the mask covers bytes i..min(i + 64, n), inside `x` and
        // inside each of the R rows; masked-off bytes are not read.
        unsafe {
            let xv = _mm512_maskz_loadu_epi8(mask, x.as_ptr().add(i));
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_maskz_loadu_epi8(mask, w.add(r * n + i));
                *a = _mm512_dpbusd_epi32(*a, _mm512_xor_si512(wv, flip), xv);
            }
        }
        i += 64;
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = o.wrapping_add(_mm512_reduce_add_epi32(*a).wrapping_sub(corr));
    }
}

/// Sixteen rows at a time: each load of `x` serves sixteen rows, and the
/// sixteen accumulators are reduced together by [`reduce16`] (15 steps
/// instead of 16 separate horizontal sums), leaving row `r`'s sum in lane
/// `r` of one vector.
///
/// # Safety
/// AVX-512F/BW/VNNI; `16 · x.len()` bytes readable at `w`; `out.len() == 16`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn rows16_512(out: &mut [i32], w: *const i8, x: &[i8], corr: i32) {
    debug_assert_eq!(out.len(), 16);
    let n = x.len();
    let flip = _mm512_set1_epi8(i8::MIN);
    let mut acc = [_mm512_setzero_si512(); 16];
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask64 = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        // Safety: as in `rows_512`, for 16 rows.
        unsafe {
            let xv = _mm512_maskz_loadu_epi8(mask, x.as_ptr().add(i));
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_maskz_loadu_epi8(mask, w.add(r * n + i));
                *a = _mm512_dpbusd_epi32(*a, _mm512_xor_si512(wv, flip), xv);
            }
        }
        i += 64;
    }
    // Row r's sum lands in lane r.
    let sums = reduce16(&acc);
    let sums = _mm512_sub_epi32(sums, _mm512_set1_epi32(corr));
    // Safety: `out` holds 16 int32.
    unsafe {
        let o = out.as_mut_ptr();
        _mm512_storeu_si512(o.cast(), _mm512_add_epi32(_mm512_loadu_si512(o.cast()), sums));
    }
}

/// As [`matvec_i8_512`], 32 bytes per instruction (EVEX-encoded 256-bit
/// `vpdpbusd`), for cores that split or down-clock 512-bit vectors.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX-512VL and AVX-512 VNNI,
/// and `w.len() == out.len() * x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matvec_i8_256(out: &mut [i32], w: &[i8], x: &[i8]) {
    debug_assert_eq!(w.len(), out.len() * x.len());
    let corr = bias_correction(x);
    let mut o = 0;
    while o + 4 <= out.len() {
        // Safety: rows o..o + 4 lie inside `w` (the caller's shape).
        unsafe { rows_256::<4>(&mut out[o..o + 4], w.as_ptr().add(o * x.len()), x, corr) };
        o += 4;
    }
    while o < out.len() {
        // Safety: row o lies inside `w`.
        unsafe { rows_256::<1>(&mut out[o..o + 1], w.as_ptr().add(o * x.len()), x, corr) };
        o += 1;
    }
}

/// As [`rows_512`], with 32-byte blocks.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; `R · x.len()` bytes readable at `w`;
/// `out.len() == R`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn rows_256<const R: usize>(out: &mut [i32], w: *const i8, x: &[i8], corr: i32) {
    let n = x.len();
    let flip = _mm256_set1_epi8(i8::MIN);
    let mut acc = [_mm256_setzero_si256(); R];
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask32 = if left >= 32 { u32::MAX } else { (1u32 << left) - 1 };
        // Safety: as in `rows_512`, with 32-byte blocks.
        unsafe {
            let xv = _mm256_maskz_loadu_epi8(mask, x.as_ptr().add(i));
            for (r, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_maskz_loadu_epi8(mask, w.add(r * n + i));
                *a = _mm256_dpbusd_epi32(*a, _mm256_xor_si256(wv, flip), xv);
            }
        }
        i += 32;
    }
    for (o, a) in out.iter_mut().zip(&acc) {
        *o = o.wrapping_add(hsum(*a).wrapping_sub(corr));
    }
}

/// Several inputs through the same rows: `out[c · out_stride + o] += w[o] ·
/// x[c · x_stride ..][..n]` for every row `o < rows` and column
/// `c < cols`, where `n = w.len() / rows`. Tiles of four rows by four
/// columns share each weight load (and its sign flip) among four inputs
/// and each input load among four rows; their sixteen accumulators are
/// reduced by the tree of `reduce16`, which leaves column `c`'s four
/// rows in the vector's 128-bit chunk `c`. Rows and columns beyond whole
/// tiles go through [`matvec_i8_512`].
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; `w.len() == rows · n`; for every `c < cols`,
/// `x[c · x_stride ..][..n]` and `out[c · out_stride ..][..rows]` are in
/// bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matmul_i8_512(
    out: &mut [i32],
    out_stride: usize,
    w: &[i8],
    rows: usize,
    x: &[i8],
    x_stride: usize,
    cols: usize,
) {
    let n = w.len().checked_div(rows).unwrap_or(0);
    let mut c = 0;
    while c + 4 <= cols {
        let xs: [&[i8]; 4] = core::array::from_fn(|k| &x[(c + k) * x_stride..][..n]);
        let corr: [i32; 4] = core::array::from_fn(|k| bias_correction(xs[k]));
        // [corr0 × 4, corr1 × 4, corr2 × 4, corr3 × 4]: lane 4k + r is column k.
        let corr_v = _mm512_set_epi32(
            corr[3], corr[3], corr[3], corr[3], corr[2], corr[2], corr[2], corr[2], corr[1],
            corr[1], corr[1], corr[1], corr[0], corr[0], corr[0], corr[0],
        );
        let mut o = 0;
        while o + 4 <= rows {
            // Safety: rows o..o + 4 lie inside `w`; the four columns are
            // `n` long.
            let sums = unsafe { tile4x4(w.as_ptr().add(o * n), n, &xs) };
            let sums = _mm512_sub_epi32(sums, corr_v);
            let mut lanes = [0i32; 16];
            // Safety: 16 int32 of stack.
            unsafe { _mm512_storeu_si512(lanes.as_mut_ptr().cast(), sums) };
            for k in 0..4 {
                let dst = &mut out[(c + k) * out_stride + o..][..4];
                for (d, s) in dst.iter_mut().zip(&lanes[4 * k..4 * k + 4]) {
                    *d = d.wrapping_add(*s);
                }
            }
            o += 4;
        }
        if o < rows {
            for (k, xk) in xs.iter().enumerate() {
                let dst = &mut out[(c + k) * out_stride + o..][..rows - o];
                // Safety: the caller's features; the shape is rows o.. of `w`.
                unsafe { matvec_i8_512(dst, &w[o * n..], xk) };
            }
        }
        c += 4;
    }
    while c < cols {
        let dst = &mut out[c * out_stride..][..rows];
        // Safety: as above, one column.
        unsafe { matvec_i8_512(dst, w, &x[c * x_stride..][..n]) };
        c += 1;
    }
}

/// Biased sums (without the `128 · Σx` correction) of four rows of `n`
/// bytes at `w` with four inputs: lane `4k + r` holds row `r` · column `k`.
///
/// # Safety
/// AVX-512F/BW/VNNI; `4 · n` bytes readable at `w`; each `xs[k]` is `n`
/// long.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn tile4x4(w: *const i8, n: usize, xs: &[&[i8]; 4]) -> __m512i {
    let flip = _mm512_set1_epi8(i8::MIN);
    // acc[4k + r]: column k, row r.
    let mut acc = [_mm512_setzero_si512(); 16];
    let mut i = 0;
    while i < n {
        let left = n - i;
        let mask: __mmask64 = if left >= 64 { u64::MAX } else { (1u64 << left) - 1 };
        // Safety: the mask covers bytes i..min(i + 64, n), inside the four
        // rows and the four columns; masked-off bytes are not read.
        unsafe {
            let wv: [__m512i; 4] = core::array::from_fn(|r| {
                _mm512_xor_si512(_mm512_maskz_loadu_epi8(mask, w.add(r * n + i)), flip)
            });
            for (k, xk) in xs.iter().enumerate() {
                let xv = _mm512_maskz_loadu_epi8(mask, xk.as_ptr().add(i));
                for (r, wr) in wv.iter().enumerate() {
                    acc[4 * k + r] = _mm512_dpbusd_epi32(acc[4 * k + r], *wr, xv);
                }
            }
        }
        i += 64;
    }
    reduce16(&acc)
}

/// Lane `v` of the result is the wrapping sum of the lanes of `acc[v]`: a
/// transpose-and-add tree of 15 steps. Level 1 interleaves vectors 2k and
/// 2k + 1 and folds each 128-bit chunk's four lanes to two; level 2 leaves
/// in each chunk one partial sum of four vectors; levels 3 and 4 fold the
/// four chunks.
#[inline]
#[target_feature(enable = "avx512f")]
fn reduce16(acc: &[__m512i; 16]) -> __m512i {
    let mut pairs = [_mm512_setzero_si512(); 8];
    for (k, p) in pairs.iter_mut().enumerate() {
        let (a, b) = (acc[2 * k], acc[2 * k + 1]);
        *p = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
    }
    let mut quads = [_mm512_setzero_si512(); 4];
    for (k, q) in quads.iter_mut().enumerate() {
        let (a, b) = (pairs[2 * k], pairs[2 * k + 1]);
        *q = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
    }
    let fold = |a: __m512i, b: __m512i| {
        _mm512_add_epi32(
            _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b),
            _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b),
        )
    };
    fold(fold(quads[0], quads[1]), fold(quads[2], quads[3]))
}
