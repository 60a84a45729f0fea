//! x86_64 AVX-512 requantization epilogues, bit-identical to their
//! namesakes in [`crate::kernels::generic`]: int32 accumulators to int8 or int16
//! through per-channel `(multiplier, shift)` pairs, with the clamps and
//! additions that follow each requantization point.
//!
//! Eight channels at a time in int64 lanes: `vpmuldq` gives the exact
//! product of the accumulator and the multiplier, `vpsravq` the rounding
//! arithmetic shift, and `vpminsq`/`vpmaxsq` the saturation, so every step
//! is the scalar step done eight times. The last, partial group of a slice
//! is read and written through a lane mask: no byte outside the slices is
//! touched.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

/// The mask of the first `min(left, 8)` lanes.
#[inline]
pub(crate) fn lanes(left: usize) -> __mmask8 {
    if left >= 8 {
        u8::MAX
    } else {
        (1u8 << left) - 1
    }
}

/// `requantize(a, multiplier, shift)` of [`crate::kernels::generic::requantize`] in
/// each int64 lane: `a` holds the accumulator in its low 32 bits, `pair` the
/// multiplier in its low 32 bits and the shift in the low byte of its high
/// word (as the model stores a pair). The result is saturated to i32.
#[inline]
#[target_feature(enable = "avx512f")]
fn requantize8(a: __m512i, pair: __m512i) -> __m512i {
    clamp(Params::of(pair).apply(a), i64::from(i32::MIN), i64::from(i32::MAX))
}

/// Eight rows' requantization constants, as int64 lanes: the stored pair
/// (the multiplier in its low word), the right shift and its rounding term
/// (see [`crate::kernels::generic::requantize`]).
#[derive(Clone, Copy)]
pub(crate) struct Params {
    pair: __m512i,
    right: __m512i,
    half: __m512i,
}

impl Params {
    /// The constants of rows `first .. first + 8` and `first + 8 .. first +
    /// 16`, each half read under its mask.
    ///
    /// # Safety
    /// AVX-512F; the pairs of the rows under the masks are readable at
    /// `pairs + 2 · row`.
    #[cfg(feature = "alloc")] // for the packed kernel
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn rows16(pairs: *const i32, first: usize, halves: [u8; 2]) -> [Params; 2] {
        // Safety: the caller's bounds; masked-off pairs are not read.
        let load = |h: usize| unsafe {
            _mm512_maskz_loadu_epi64(halves[h], pairs.add(2 * (first + 8 * h)).cast())
        };
        [Params::of(load(0)), Params::of(load(1))]
    }

    /// The constants of the eight stored pairs in `pair`'s int64 lanes.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn of(pair: __m512i) -> Params {
        // The shift is the stored word's low byte, sign-extended (`as i8`).
        let shift = _mm512_srai_epi64::<56>(_mm512_slli_epi64::<24>(pair));
        let right = _mm512_min_epi64(
            _mm512_max_epi64(_mm512_sub_epi64(_mm512_set1_epi64(31), shift), _mm512_set1_epi64(1)),
            _mm512_set1_epi64(62),
        );
        let half =
            _mm512_sllv_epi64(_mm512_set1_epi64(1), _mm512_sub_epi64(right, _mm512_set1_epi64(1)));
        Params { pair, right, half }
    }

    /// `(a · multiplier + half) >> right` in each int64 lane, not yet
    /// saturated (at most 2^62 in magnitude).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn apply(&self, a: __m512i) -> __m512i {
        // Signed 32 × 32 → 64 of the low halves: the exact product.
        let prod = _mm512_mul_epi32(a, self.pair);
        _mm512_srav_epi64(_mm512_add_epi64(prod, self.half), self.right)
    }
}

/// The residual stream's term `requantize(stream, multiplier, shift)` of
/// sixteen rows at once (one pair for every row), as the residual epilogues
/// add it to the requantized accumulator.
#[derive(Clone, Copy)]
pub(crate) struct StreamTerm {
    /// The pair in every int64 lane, laid out as a stored pair.
    pair: __m512i,
    params: Params,
}

impl StreamTerm {
    /// The term of the stream's `(multiplier, shift)`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn of((multiplier, shift): (i32, i8)) -> StreamTerm {
        let pair = _mm512_set1_epi64((i64::from(shift) << 32) | i64::from(multiplier as u32));
        StreamTerm { pair, params: Params::of(pair) }
    }

    /// The term of the sixteen int32 lanes of `stream`, within int32 and
    /// then within ±1.5 · 2^30: any value beyond that plus a requantized
    /// accumulator within ±2^30 is beyond ±127 either way, and the sum of
    /// the two then fits int32.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn apply(&self, stream: __m512i) -> __m512i {
        // In the low words of int64 lanes: rows 0, 2, … and rows 1, 3, …
        let even = clamp(self.params.apply(stream), -(3 << 29), 3 << 29);
        let odd = clamp(self.params.apply(_mm512_srli_epi64::<32>(stream)), -(3 << 29), 3 << 29);
        _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64::<32>(odd))
    }
}

/// Sixteen rows' requantization on int32 lanes, for rows whose right
/// shift is 33 or more (every per-channel point of a trained model: their
/// scales are below 1/4). Then `(a · m + 2^(R−1)) >> R` equals
/// `(H + 2^(R−33)) >> (R − 32)` with `H` the product's high word (the low
/// word cannot carry into it), which fits int32: two `vpmuldq` give the
/// sixteen high words, and no int64 shift, clamp or narrowing is needed.
#[derive(Clone, Copy)]
pub(crate) struct Fast {
    /// Multipliers of rows 0, 2, … (low words of the int64 lanes) and of
    /// rows 1, 3, … (high words).
    multipliers: __m512i,
    odd_multipliers: __m512i,
    /// `R − 32` and its rounding term, per row.
    right: __m512i,
    half: __m512i,
}

impl Fast {
    /// The constants of rows `first ..` under `mask` (at most 16), or `None`
    /// when one of them has a right shift below 33.
    ///
    /// # Safety
    /// AVX-512F; the pairs of the rows under the mask are readable at
    /// `pairs + 2 · row`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn rows16(pairs: *const i32, first: usize, mask: __mmask16) -> Option<Fast> {
        // Safety: the caller's bounds; masked-off pairs are not read.
        let (p0, p1) = unsafe {
            (
                _mm512_maskz_loadu_epi64(mask as u8, pairs.add(2 * first).cast()),
                _mm512_maskz_loadu_epi64((mask >> 8) as u8, pairs.add(2 * first + 16).cast()),
            )
        };
        let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
        let multipliers = _mm512_permutex2var_epi32(p0, even, p1);
        let words = _mm512_permutex2var_epi32(p0, _mm512_add_epi32(even, _mm512_set1_epi32(1)), p1);
        // The shift is the stored word's low byte, sign-extended.
        let shift = _mm512_srai_epi32::<24>(_mm512_slli_epi32::<24>(words));
        let right =
            _mm512_min_epi32(_mm512_sub_epi32(_mm512_set1_epi32(31), shift), _mm512_set1_epi32(62));
        if _mm512_mask_cmplt_epi32_mask(mask, right, _mm512_set1_epi32(33)) != 0 {
            return None;
        }
        let right = _mm512_sub_epi32(right, _mm512_set1_epi32(32));
        let half =
            _mm512_sllv_epi32(_mm512_set1_epi32(1), _mm512_sub_epi32(right, _mm512_set1_epi32(1)));
        let odd_multipliers = _mm512_srli_epi64::<32>(multipliers);
        Some(Fast { multipliers, odd_multipliers, right, half })
    }

    /// `requantize(a)` of each int32 lane (exact, so already within int32).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn apply(&self, a: __m512i) -> __m512i {
        let even = mul_epi32(a, self.multipliers);
        let odd = mul_epi32(_mm512_srli_epi64::<32>(a), self.odd_multipliers);
        // High words: the even rows' shifted down, the odd rows' in place.
        let high = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64::<32>(even), odd);
        _mm512_srav_epi32(_mm512_add_epi32(high, self.half), self.right)
    }
}

/// A requantization point's int32-lane (`Fast`) constants, derived once when the
/// model is loaded rather than in every epilogue: per 16 rows, the
/// multipliers split even/odd, the shifts and their rounding terms.
#[cfg(feature = "alloc")]
#[derive(Clone)]
pub struct PreparedScales {
    blocks: alloc::vec::Vec<Fast>,
}

#[cfg(feature = "alloc")]
impl core::fmt::Debug for PreparedScales {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PreparedScales").field("rows", &(16 * self.blocks.len())).finish()
    }
}

#[cfg(feature = "alloc")]
impl PreparedScales {
    /// The constants of `pairs` (two words per row), or `None` where this
    /// CPU lacks AVX-512, the rows are not whole blocks of 16, or a row's
    /// right shift is under 33 (those go the int64 way).
    pub fn prepare(pairs: &[i32]) -> Option<PreparedScales> {
        if !crate::kernels::cpu::avx512vnni() || pairs.is_empty() || !pairs.len().is_multiple_of(32)
        {
            return None;
        }
        // Safety: AVX-512F detected; every block's sixteen pairs lie
        // inside `pairs`.
        unsafe { prepare_blocks(pairs) }
    }

    /// Rows `16 · b .. 16 · b + 16`.
    #[inline]
    pub(crate) fn block(&self, b: usize) -> Fast {
        self.blocks[b]
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        16 * self.blocks.len()
    }
}

/// # Safety
/// AVX-512F; `pairs.len()` a multiple of 32.
#[cfg(feature = "alloc")]
#[target_feature(enable = "avx512f")]
unsafe fn prepare_blocks(pairs: &[i32]) -> Option<PreparedScales> {
    let blocks = (0..pairs.len() / 32)
        // Safety: block b's pairs are words 32b .. 32b + 32 of `pairs`.
        .map(|b| unsafe { Fast::rows16(pairs.as_ptr(), 16 * b, u16::MAX) })
        .collect::<Option<_>>()?;
    Some(PreparedScales { blocks })
}

/// `vpmuldq`, kept one instruction: LLVM rewrites `_mm512_mul_epi32` as
/// a multiply of sign-extended int64 lanes, and where it cannot prove the
/// operands' high words are sign bits (constants passed through an array,
/// say) it emits a full 64-bit multiply, three `vpmuludq` and five shifts
/// and adds instead.
#[inline]
#[target_feature(enable = "avx512f")]
fn mul_epi32(a: __m512i, b: __m512i) -> __m512i {
    let product;
    // Safety: one register-only AVX-512F instruction (enabled here).
    unsafe {
        core::arch::asm!(
            "vpmuldq {p}, {a}, {b}",
            p = lateout(zmm_reg) product,
            a = in(zmm_reg) a,
            b = in(zmm_reg) b,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    product
}

/// The mask of the first `min(left, 16)` lanes.
#[inline]
pub(crate) fn lanes16(left: usize) -> __mmask16 {
    if left >= 16 {
        u16::MAX
    } else {
        (1u16 << left) - 1
    }
}

#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn clamp(v: __m512i, lo: i64, hi: i64) -> __m512i {
    _mm512_min_epi64(_mm512_max_epi64(v, _mm512_set1_epi64(lo)), _mm512_set1_epi64(hi))
}

/// Channels `i..i + 8` (masked by `m`) of `acc`, requantized by `pairs`.
///
/// # Safety
/// AVX-512F/VL; the lanes of `m` lie inside `acc[i..]` and `pairs[2i..]`.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
pub(crate) unsafe fn group(acc: &[i32], pairs: &[i32], i: usize, m: __mmask8) -> __m512i {
    // Safety: the caller's lanes lie inside both slices; masked-off lanes
    // are not read.
    unsafe {
        let a = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, acc.as_ptr().add(i)));
        let pair = _mm512_maskz_loadu_epi64(m, pairs.as_ptr().add(2 * i).cast());
        requantize8(a, pair)
    }
}

/// [`crate::kernels::generic::requant_i8`].
///
/// # Safety
/// AVX-512F/BW/VL; `out.len() == acc.len()`, `pairs.len() == 2 · acc.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn requant_i8(out: &mut [i8], acc: &[i32], pairs: &[i32], lo: i8, hi: i8) {
    debug_assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len());
    let mut i = 0;
    while i < acc.len() {
        let m = lanes(acc.len() - i);
        // Safety: lanes of `m` lie inside every slice (equal lengths, checked
        // by the caller).
        unsafe {
            let r = clamp(group(acc, pairs, i, m), i64::from(lo), i64::from(hi));
            _mm512_mask_cvtepi64_storeu_epi8(out.as_mut_ptr().add(i).cast(), m, r);
        }
        i += 8;
    }
}

/// [`crate::kernels::generic::requant_i16`].
///
/// # Safety
/// AVX-512F/BW/VL; `out`, `acc` (and `add`) equally long,
/// `pairs.len() == 2 · acc.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn requant_i16(
    out: &mut [i16],
    acc: &[i32],
    pairs: &[i32],
    add: Option<&[i16]>,
    lo: i16,
    hi: i16,
) {
    debug_assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len());
    let mut i = 0;
    while i < acc.len() {
        let m = lanes(acc.len() - i);
        // Safety: as in `requant_i8`; `add` is as long as `acc`.
        unsafe {
            let mut r = group(acc, pairs, i, m);
            if let Some(add) = add {
                let b = _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(m, add.as_ptr().add(i)));
                r = _mm512_add_epi64(r, b);
            }
            let r = clamp(r, i64::from(lo), i64::from(hi));
            _mm512_mask_cvtepi64_storeu_epi16(out.as_mut_ptr().add(i).cast(), m, r);
        }
        i += 8;
    }
}

/// [`crate::kernels::generic::requant_residual_i8`].
///
/// # Safety
/// AVX-512F/BW/VL; `out`, `acc`, `res` equally long,
/// `pairs.len() == 2 · acc.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn requant_residual_i8(
    out: &mut [i8],
    acc: &[i32],
    pairs: &[i32],
    res: &[i8],
    (res_multiplier, res_shift): (i32, i8),
) {
    debug_assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len() && res.len() == acc.len());
    let term = StreamTerm::of((res_multiplier, res_shift));
    let mut i = 0;
    while i < acc.len() {
        let m16 = lanes16(acc.len() - i);
        // Safety: as in `requant_i8`; `res` is as long as `acc`.
        let fast = unsafe { Fast::rows16(pairs.as_ptr(), i, m16) };
        if let Some(fast) = fast {
            // Safety: as above.
            unsafe {
                let r = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m16, res.as_ptr().add(i)));
                let res16 = term.apply(r);
                let a = if m16 == u16::MAX {
                    // Unmasked, to take the product's sums from the store
                    // buffer.
                    _mm512_loadu_si512(acc.as_ptr().add(i).cast())
                } else {
                    _mm512_maskz_loadu_epi32(m16, acc.as_ptr().add(i))
                };
                let sum = _mm512_add_epi32(res16, fast.apply(a));
                let y = _mm512_min_epi32(
                    _mm512_max_epi32(sum, _mm512_set1_epi32(-127)),
                    _mm512_set1_epi32(127),
                );
                _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(i).cast(), m16, y);
            }
            i += 16;
            continue;
        }
        let m = lanes(acc.len() - i);
        // Safety: as in `requant_i8`; `res` is as long as `acc`.
        unsafe {
            let r = _mm512_cvtepi8_epi64(_mm_maskz_loadu_epi8(m.into(), res.as_ptr().add(i)));
            let sum = _mm512_add_epi64(requantize8(r, term.pair), group(acc, pairs, i, m));
            let y = clamp(sum, -127, 127);
            _mm512_mask_cvtepi64_storeu_epi8(out.as_mut_ptr().add(i).cast(), m, y);
        }
        i += 8;
    }
}
