//! x86_64 AVX-512 VBMI integer gate, bit-identical to
//! [`crate::quant::gate::gate_i8_slice`]: 32 channels at a time in int16
//! lanes, the tables read with `vpermi2b` from registers instead of
//! gathered from memory (a `vpgatherdd` of sixteen words is the slowest
//! step of [`super::avx512_gate_s16_s8`]).
//!
//! Both tables are odd around the middle input 0 (`tanh(−x) = −tanh(x)`,
//! `σ(−x) = 1 − σ(x)`, and the rounded tables keep it), so each is read at
//! `|x|` and reflected: tanh saturates (127) from `|x| = 255` on, so its
//! half fits 256 byte entries; the logistic saturates later, so its half is
//! 512 entries of `σ − 128` (0 to 128). The tests check every input against
//! the scalar gate, so the tables' symmetry is checked, not assumed.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use crate::quant::gate::{PRE_MAX, PRE_MIN};
use crate::quant::tables::{SIGMOID, TANH};

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

/// `out[c] = gate_i8(pre[c], pre[p + c])`, `p = out.len()`.
///
/// # Safety
/// AVX-512F/BW/VL/VBMI; `pre.len() == 2 · out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
pub unsafe fn gate_i8(out: &mut [i8], pre: &[i16]) {
    let p = out.len();
    debug_assert_eq!(pre.len(), 2 * p);
    let tanh: [__m512i; 4] = registers(&TANH_HALF);
    let sigmoid: [__m512i; 8] = registers(&SIGMOID_HALF);
    let (sig_low, sig_high) = (
        [sigmoid[0], sigmoid[1], sigmoid[2], sigmoid[3]],
        [sigmoid[4], sigmoid[5], sigmoid[6], sigmoid[7]],
    );
    let (lo, hi) = (_mm512_set1_epi16(PRE_MIN as i16), _mm512_set1_epi16(PRE_MAX as i16));
    let clamp = |v: __m512i| _mm512_min_epi16(_mm512_max_epi16(v, lo), hi);
    let (zero, c128, c256, c511) = (
        _mm512_setzero_si512(),
        _mm512_set1_epi16(128),
        _mm512_set1_epi16(256),
        _mm512_set1_epi16(511),
    );
    let mut c = 0;
    while c < p {
        let left = p - c;
        let m: __mmask32 = if left >= 32 { u32::MAX } else { (1u32 << left) - 1 };
        // Safety: the mask's lanes lie inside `out[c..]`, `pre[c..p]` and
        // `pre[p + c..]`; masked-off lanes are neither read nor written.
        unsafe {
            let a = clamp(_mm512_maskz_loadu_epi16(m, pre.as_ptr().add(c)));
            let b = clamp(_mm512_maskz_loadu_epi16(m, pre.as_ptr().add(p + c)));
            // |a| saturated to a byte: from 255 on, tanh is 127.
            let ia = _mm512_castsi256_si512(_mm512_cvtusepi16_epi8(_mm512_abs_epi16(a)));
            let ub = _mm512_min_epu16(_mm512_abs_epi16(b), c511);
            let ib = _mm512_castsi256_si512(_mm512_cvtepi16_epi8(ub));
            let ib_high = u64::from(_mm512_cmpge_epu16_mask(ub, c256));
            let t = lookup256(ia, &tanh);
            let s =
                _mm512_mask_blend_epi8(ib_high, lookup256(ib, &sig_low), lookup256(ib, &sig_high));
            let t = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(t));
            let s = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(s));
            // Reflect: tanh(−x) = −tanh(x), σ(−x) = 256 − σ(x).
            let t = _mm512_mask_sub_epi16(t, _mm512_movepi16_mask(a), zero, t);
            let s =
                _mm512_mask_sub_epi16(_mm512_add_epi16(c128, s), _mm512_movepi16_mask(b), c128, s);
            // |t · s| ≤ 127 · 256 and the rounding term fit int16.
            let g = _mm512_srai_epi16::<8>(_mm512_add_epi16(_mm512_mullo_epi16(t, s), c128));
            _mm512_mask_cvtepi16_storeu_epi8(out.as_mut_ptr().add(c).cast(), m, g);
        }
        c += 32;
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use crate::quant::gate::gate_i8_slice;

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
            unsafe { crate::kernels::avx512_gate_s16_s8::gate_i8(&mut gathered, &pre) };
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
