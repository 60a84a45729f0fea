//! x86_64 AVX-512 VBMI integer gate, bit-identical to
//! [`crate::int8::gate_i8_slice`]: 32 channels at a time in int16
//! lanes, the tables read with `vpermi2b` from registers instead of
//! gathered from memory (a `vpgatherdd` of sixteen words is the slowest
//! step of [`super::gate_avx512`]).
//!
//! Both tables are odd around the middle input 0 (`tanh(−x) = −tanh(x)`,
//! `σ(−x) = 1 − σ(x)`, and the rounded tables keep it), so each is read at
//! `|x|` and reflected: tanh saturates (127) from `|x| = 255` on, so its
//! half fits 256 byte entries; the logistic saturates later, so its half is
//! 512 entries of `σ − 128` (0 to 128). The tests check every input against
//! the scalar gate, so the tables' symmetry is checked, not assumed.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::requant_avx512::{clamp, group, lanes, lanes16, Fast};
use crate::int8::tables::{SIGMOID, TANH};
use crate::int8::{PRE_MAX, PRE_MIN};

/// The table index of gate input 0.
const MIDDLE: usize = (-PRE_MIN) as usize;

/// Byte tables in whole 64-byte registers.
#[repr(C, align(64))]
struct Bytes<const N: usize>([u8; N]);

/// `TANH` at inputs `0 ..= 255`.
static TANH_HALF: Bytes<256> = Bytes(tanh_half());
/// `SIGMOID − 128` at inputs `0 ..= 511`.
static SIGMOID_HALF: Bytes<512> = Bytes(sigmoid_half());

const fn tanh_half() -> [u8; 256] {
    let mut out = [0; 256];
    let mut u = 0;
    while u < 256 {
        out[u] = TANH[MIDDLE + u] as u8;
        u += 1;
    }
    out
}

const fn sigmoid_half() -> [u8; 512] {
    let mut out = [0; 512];
    let mut u = 0;
    while u < 512 {
        out[u] = (SIGMOID[MIDDLE + u] - 128) as u8;
        u += 1;
    }
    out
}

/// The 64-byte registers of a table.
#[inline]
#[target_feature(enable = "avx512f")]
fn registers<const N: usize, const R: usize>(t: &'static Bytes<N>) -> [__m512i; R] {
    // Safety: `R · 64 == N` (callers), the table is 64-byte aligned.
    core::array::from_fn(|r| unsafe { _mm512_load_si512(t.0.as_ptr().add(64 * r).cast()) })
}

/// Entry `i` (a byte, 0 to 255) of the 256-entry table in `t`, per byte.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn lookup256(i: __m512i, t: &[__m512i; 4]) -> __m512i {
    // `vpermi2b` reads 128 entries (bits 0 to 6); bit 7 picks the half.
    let low = _mm512_permutex2var_epi8(t[0], i, t[1]);
    let high = _mm512_permutex2var_epi8(t[2], i, t[3]);
    _mm512_mask_blend_epi8(_mm512_movepi8_mask(i), low, high)
}

/// The tables in registers.
pub(crate) struct Tables {
    tanh: [__m512i; 4],
    sigmoid_low: [__m512i; 4],
    sigmoid_high: [__m512i; 4],
}

impl Tables {
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn load() -> Tables {
        let s: [__m512i; 8] = registers(&SIGMOID_HALF);
        Tables {
            tanh: registers(&TANH_HALF),
            sigmoid_low: [s[0], s[1], s[2], s[3]],
            sigmoid_high: [s[4], s[5], s[6], s[7]],
        }
    }
}

/// The gate of 32 channels, from gate inputs `a` and `b` (int16 lanes,
/// already inside `PRE_MIN ..= PRE_MAX`); the outputs are the low bytes
/// of the result's int16 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
pub(crate) fn gate32(t: &Tables, a: __m512i, b: __m512i) -> __m512i {
    let (c128, c256, c511) =
        (_mm512_set1_epi16(128), _mm512_set1_epi16(256), _mm512_set1_epi16(511));
    // |a| saturated to a byte: from 255 on, tanh is 127.
    let ia = _mm512_castsi256_si512(_mm512_cvtusepi16_epi8(_mm512_abs_epi16(a)));
    let ub = _mm512_min_epu16(_mm512_abs_epi16(b), c511);
    let ib = _mm512_castsi256_si512(_mm512_cvtepi16_epi8(ub));
    let ib_high = u64::from(_mm512_cmpge_epu16_mask(ub, c256));
    let tanh = lookup256(ia, &t.tanh);
    let sigmoid = _mm512_mask_blend_epi8(
        ib_high,
        lookup256(ib, &t.sigmoid_low),
        lookup256(ib, &t.sigmoid_high),
    );
    let tanh = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(tanh));
    let sigmoid = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(sigmoid));
    // Reflect: tanh(−x) = −tanh(x), σ(−x) = 256 − σ(x).
    let zero = _mm512_setzero_si512();
    let tanh = _mm512_mask_sub_epi16(tanh, _mm512_movepi16_mask(a), zero, tanh);
    let sigmoid = _mm512_mask_sub_epi16(
        _mm512_add_epi16(c128, sigmoid),
        _mm512_movepi16_mask(b),
        c128,
        sigmoid,
    );
    // |t · s| ≤ 127 · 256 and the rounding term fit int16.
    _mm512_srai_epi16::<8>(_mm512_add_epi16(_mm512_mullo_epi16(tanh, sigmoid), c128))
}

/// Gate inputs `pre[first .. first + count]` (one or two blocks of 16
/// int32 lanes) as the int16 lanes [`gate32`] reads.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
#[cfg_attr(not(feature = "alloc"), allow(dead_code))]
pub(crate) fn gate_lanes<const RB: usize>(
    pre: &[__m512i; RB],
    first: usize,
    count: usize,
) -> __m512i {
    let low = _mm512_zextsi256_si512(_mm512_cvtepi32_epi16(pre[first]));
    if count == 1 {
        low
    } else {
        _mm512_inserti64x4::<1>(low, _mm512_cvtepi32_epi16(pre[first + 1]))
    }
}

/// The mask of the first `min(left, 32)` lanes.
#[inline]
fn lanes32(left: usize) -> __mmask32 {
    if left >= 32 {
        u32::MAX
    } else {
        (1u32 << left) - 1
    }
}

/// `out[c] = gate_i8(pre[c], pre[p + c])`, `p = out.len()`.
///
/// # Safety
/// AVX-512F/BW/VL/VBMI; `pre.len() == 2 · out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
pub unsafe fn gate_i8(out: &mut [i8], pre: &[i16]) {
    let p = out.len();
    debug_assert_eq!(pre.len(), 2 * p);
    let tables = Tables::load();
    let (lo, hi) = (_mm512_set1_epi16(PRE_MIN as i16), _mm512_set1_epi16(PRE_MAX as i16));
    let clamp = |v: __m512i| _mm512_min_epi16(_mm512_max_epi16(v, lo), hi);
    let mut c = 0;
    while c < p {
        let m = lanes32(p - c);
        // Safety: the mask's lanes lie inside `out[c..]`, `pre[c..p]` and
        // `pre[p + c..]`; masked-off lanes are neither read nor written.
        unsafe {
            let a = clamp(_mm512_maskz_loadu_epi16(m, pre.as_ptr().add(c)));
            let b = clamp(_mm512_maskz_loadu_epi16(m, pre.as_ptr().add(p + c)));
            let g = gate32(&tables, a, b);
            _mm512_mask_cvtepi16_storeu_epi8(out.as_mut_ptr().add(c).cast(), m, g);
        }
        c += 32;
    }
}

/// [`super::requant_avx512::requant_i16`] of the gate inputs (`add`
/// added, clamped to `PRE_MIN ..= PRE_MAX`) followed by [`gate_i8`], the
/// inputs kept in registers: `p = out.len()`, channels `c` and `p + c` of
/// `acc` make output `c`.
///
/// # Safety
/// AVX-512F/BW/VL/VBMI; `acc` and `add` hold `2p` values, `pairs` `4p`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
pub unsafe fn requant_gate_i8(out: &mut [i8], acc: &[i32], pairs: &[i32], add: &[i16]) {
    let p = out.len();
    debug_assert!(acc.len() == 2 * p && add.len() == 2 * p && pairs.len() == 4 * p);
    let tables = Tables::load();
    // Safety: channels below `first + p` lie inside every slice.
    let inputs = |first: usize, c: usize| unsafe {
        let low = _mm512_cvtepi32_epi16(inputs16(acc, pairs, add, p, first, c));
        let high = _mm512_cvtepi32_epi16(inputs16(acc, pairs, add, p, first, c + 16));
        _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high)
    };
    let mut c = 0;
    while c < p {
        let g = gate32(&tables, inputs(0, c), inputs(p, c));
        // Safety: the mask's lanes lie inside `out[c..]`.
        unsafe {
            _mm512_mask_cvtepi16_storeu_epi8(out.as_mut_ptr().add(c).cast(), lanes32(p - c), g);
        }
        c += 32;
    }
}

/// Channels `first + i .. first + i + 16` (those below `first + p`) as
/// clamped gate inputs in int32 lanes: `requantize(acc) + add`.
///
/// # Safety
/// AVX-512F/BW/VL; channels below `first + p` lie inside `acc`, `add` and
/// (two words each) `pairs`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn inputs16(
    acc: &[i32],
    pairs: &[i32],
    add: &[i16],
    p: usize,
    first: usize,
    i: usize,
) -> __m512i {
    if i >= p {
        return _mm512_setzero_si512();
    }
    let m16 = lanes16(p - i);
    // Safety: the lanes of the mask are channels below `first + p`;
    // masked-off lanes are not read.
    unsafe {
        let Some(fast) = Fast::rows16(pairs.as_ptr(), first + i, m16) else {
            return inputs16_wide(acc, pairs, add, p, first + i, i);
        };
        // Whole groups unmasked, so that the loads can take the product's
        // just-stored sums from the store buffer.
        let (a, v) = if m16 == u16::MAX {
            (
                _mm512_loadu_si512(acc.as_ptr().add(first + i).cast()),
                _mm256_loadu_si256(add.as_ptr().add(first + i).cast()),
            )
        } else {
            (
                _mm512_maskz_loadu_epi32(m16, acc.as_ptr().add(first + i)),
                _mm256_maskz_loadu_epi16(m16, add.as_ptr().add(first + i)),
            )
        };
        let v = _mm512_cvtepi16_epi32(v);
        // The requantized value is within ±2^30 and the addend within
        // int16: their sum cannot wrap, and clamping it is what saturating
        // first and clamping after does.
        let r = _mm512_add_epi32(fast.apply(a), v);
        _mm512_min_epi32(
            _mm512_max_epi32(r, _mm512_set1_epi32(PRE_MIN)),
            _mm512_set1_epi32(PRE_MAX),
        )
    }
}

/// [`inputs16`] for rows with a right shift under 33: eight rows at a time
/// in int64 lanes; `group` saturates to int32, then the addend, then the
/// clamp, as the scalar kernel does. `at = first + i`.
///
/// # Safety
/// As [`inputs16`].
#[inline(never)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn inputs16_wide(
    acc: &[i32],
    pairs: &[i32],
    add: &[i16],
    p: usize,
    at: usize,
    i: usize,
) -> __m512i {
    let halves: [__m256i; 2] = core::array::from_fn(|h| {
        let j = 8 * h;
        if i + j >= p {
            return _mm256_setzero_si256();
        }
        let m = lanes(p - i - j);
        // Safety: the lanes of `m` are channels below `first + p`.
        unsafe {
            let r = group(acc, pairs, at + j, m);
            let v = _mm512_cvtepi16_epi64(_mm_maskz_loadu_epi16(m, add.as_ptr().add(at + j)));
            _mm512_cvtepi64_epi32(clamp(_mm512_add_epi64(r, v), PRE_MIN.into(), PRE_MAX.into()))
        }
    });
    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(halves[0]), halves[1])
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::int8::gate_i8_slice;

    fn has_vbmi() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512vbmi")
    }

    /// Every pair of inputs from -600 to 600 (the tables span -512 to 511),
    /// and the int16 extremes.
    #[test]
    fn equals_the_scalar_gate_on_every_input() {
        if !has_vbmi() {
            eprintln!("skipped: this CPU lacks AVX-512 VBMI");
            return;
        }
        let inputs: Vec<i16> = (-600..=600).chain([i16::MIN, -513, 512, i16::MAX]).collect();
        let p = inputs.len();
        for &b in &inputs {
            // One gate of every `a` against this `b`.
            let mut pre = inputs.clone();
            pre.extend(core::iter::repeat_n(b, p));
            let (mut want, mut got, mut gathered) = (vec![0i8; p], vec![0i8; p], vec![0i8; p]);
            gate_i8_slice(&mut want, &pre);
            // Safety: features detected above; `pre` is twice `got`.
            unsafe { super::gate_i8(&mut got, &pre) };
            assert_eq!(got, want, "b = {b}");
            // The gather gate, which CPUs without VBMI use, on the same.
            // Safety: as above.
            unsafe { crate::kernels::x86_64::gate_avx512::gate_i8(&mut gathered, &pre) };
            assert_eq!(gathered, want, "gathered, b = {b}");
        }
    }

    #[test]
    fn leaves_bytes_past_the_output_alone() {
        if !has_vbmi() {
            return;
        }
        for p in 0..70 {
            let pre: Vec<i16> = (0..2 * p as i16).map(|v| v * 37 - 300).collect();
            let mut out = vec![99i8; p + 40];
            let mut want = vec![0i8; p];
            gate_i8_slice(&mut want, &pre);
            // Safety: as above.
            unsafe { super::gate_i8(&mut out[..p], &pre) };
            assert_eq!(&out[..p], &want[..]);
            assert!(out[p..].iter().all(|&v| v == 99), "p = {p}");
        }
    }
}
