//! x86_64 AVX-512 VNNI: one image's output head ([`crate::kernels::Resolved::head`])
//! with the hidden layer kept in registers, bit-identical to the separate
//! kernels it replaces.
//!
//! The head ends each pixel's chain of dependent work: a 32-row product of
//! the last layer's output, its requantization and ReLU, and the logits'
//! product. As three calls each stores its result and the next loads it
//! back; here the hidden sums go straight into the requantization
//! ([`Fast`]) and the hidden bytes into the logits' broadcasts.
//!
//! Used for 32 channels in, 32 hidden and at most 16 logits, packed weights
//! and right shifts of 33 or more; anything else goes the separate way.
//!
//! [`Fast`]: super::requant_avx512::Fast
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::gated_step_avx512vnni::{load32, prepared_rows, product};
use super::matmul_packed_avx512vnni::step as product_step;
use crate::kernels::Head;

/// The fused head, or `false` (nothing written) where it does not apply.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; the row-major shapes of `head` agree with `top`,
/// `hidden` and `logits` as [`crate::kernels::Resolved::head`] checks them (the
/// packed ones are checked here).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn head(
    head: &Head<'_>,
    top: &[i8],
    hidden: &mut [i8],
    logits: &mut [i32],
) -> bool {
    let k = logits.len();
    if top.len() != 32 || hidden.len() != 32 || k == 0 || k > 16 {
        return false;
    }
    let Some(w1) = head.hidden_weights.packed.filter(|w| w.rows() == 32 && w.len() == 32) else {
        return false;
    };
    let Some(w2) = head.logit_weights.packed.filter(|w| w.rows() == k && w.len() == 32) else {
        return false;
    };
    let Some(fast) = prepared_rows::<2>(head.hidden_scales) else { return false };
    // Safety (the rest): the loads read the 32 biases and the `k` logit
    // biases under a mask; the stores write hidden's 32 bytes and `k`
    // logits under a mask.
    unsafe {
        let (sums, corr) = product::<2, 8>(w1, top);
        let (zero, top_clamp) = (_mm512_setzero_si512(), _mm512_set1_epi32(127));
        // The hidden layer: requantized, clamped to 0 ..= 127 (the ReLU).
        let mut y = [zero; 2];
        for (r, v) in y.iter_mut().enumerate() {
            let a =
                _mm512_add_epi32(_mm512_sub_epi32(sums[r], corr), load32(head.hidden_bias, 16 * r));
            *v = _mm512_min_epi32(_mm512_max_epi32(fast.block(r).apply(a), zero), top_clamp);
        }
        let bytes = _mm256_inserti128_si256::<1>(
            _mm256_castsi128_si256(_mm512_cvtepi32_epi8(y[0])),
            _mm512_cvtepi32_epi8(y[1]),
        );
        _mm256_storeu_si256(hidden.as_mut_ptr().cast(), bytes);
        // The logits' product: the hidden bytes' four-byte groups,
        // broadcast; `128 · Σ hidden` corrects the biased weights.
        let mut words = [0i32; 8];
        _mm256_storeu_si256(words.as_mut_ptr().cast(), bytes);
        let (base, groups) = w2.blocks();
        let mut acc = [[[_mm512_setzero_si512(); 1]; 1]; 2];
        for (g, &word) in words.iter().enumerate() {
            product_step(&mut acc[g % 2], base, groups, g, [word]);
        }
        let total = _mm512_reduce_add_epi32(_mm512_add_epi32(y[0], y[1]));
        let mask: __mmask16 = if k == 16 { u16::MAX } else { (1u16 << k) - 1 };
        let bias = _mm512_maskz_loadu_epi32(mask, head.logit_bias.as_ptr());
        let a = _mm512_add_epi32(acc[0][0][0], acc[1][0][0]);
        let a =
            _mm512_add_epi32(_mm512_sub_epi32(a, _mm512_set1_epi32(total.wrapping_mul(128))), bias);
        _mm512_mask_storeu_epi32(logits.as_mut_ptr(), mask, a);
        true
    }
}
