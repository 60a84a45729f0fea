//! x86_64 AVX-512 integer gate, bit-identical to
//! [`crate::int8::gate_i8_slice`]: sixteen channels at a time, the
//! tanh and logistic tables read with `vpgatherdd` from int32 copies of
//! them (a gather reads 32-bit words, so the byte and int16 tables are
//! widened once, at compile time).
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use crate::int8::tables::{SIGMOID, TANH};
use crate::int8::{PRE_MAX, PRE_MIN};

const LEN: usize = TANH.len();

static TANH32: [i32; LEN] = widen_i8(&TANH);
static SIGMOID32: [i32; LEN] = widen_u16(&SIGMOID);

const fn widen_i8(t: &[i8; LEN]) -> [i32; LEN] {
    let mut out = [0; LEN];
    let mut i = 0;
    while i < LEN {
        out[i] = t[i] as i32;
        i += 1;
    }
    out
}

const fn widen_u16(t: &[u16; LEN]) -> [i32; LEN] {
    let mut out = [0; LEN];
    let mut i = 0;
    while i < LEN {
        out[i] = t[i] as i32;
        i += 1;
    }
    out
}

/// `out[c] = gate_i8(pre[c], pre[p + c])`, `p = out.len()`.
///
/// # Safety
/// AVX-512F/BW/VL; `pre.len() == 2 · out.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn gate_i8(out: &mut [i8], pre: &[i16]) {
    let p = out.len();
    debug_assert_eq!(pre.len(), 2 * p);
    let (lo, hi) = (_mm512_set1_epi32(PRE_MIN), _mm512_set1_epi32(PRE_MAX));
    let index = |v: __m512i| _mm512_sub_epi32(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi), lo);
    let mut c = 0;
    while c < p {
        let left = p - c;
        let m: __mmask16 = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
        // Safety: the mask's lanes lie inside `out[c..]`, `pre[c..p]` and
        // `pre[p + c..]`; masked-off lanes are neither read nor written, and
        // clamped indices lie inside the 1024-entry tables.
        unsafe {
            let a = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, pre.as_ptr().add(c)));
            let b = _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, pre.as_ptr().add(p + c)));
            let t = _mm512_i32gather_epi32::<4>(index(a), TANH32.as_ptr().cast());
            let s = _mm512_i32gather_epi32::<4>(index(b), SIGMOID32.as_ptr().cast());
            let g = _mm512_srai_epi32::<8>(_mm512_add_epi32(
                _mm512_mullo_epi32(t, s),
                _mm512_set1_epi32(128),
            ));
            _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(c).cast(), m, g);
        }
        c += 16;
    }
}
