//! x86_64 AVX-512 VNNI and VBMI: one image's gated step
//! ([`crate::kernels::Resolved::gated_step`]) with every intermediate in registers,
//! bit-identical to the separate kernels it replaces.
//!
//! At batch 1 a pixel is a chain of dependent layers, each a 64-row product
//! of one input, its requantization, the gate, a 32-row product and the
//! residual. Run as five calls, each step stores its result and the next
//! loads it back, and each call derives its own constants. Here the left
//! kernel's sums go straight into the requantization
//! ([`super::requant_avx512::Fast`], its constants prepared at load),
//! the gate inputs into the register tables ([`gate32`]), the gate's bytes
//! are broadcast into the residual block's product, and only the layer's
//! output is stored. A pixel's nine steps are one dependent chain, so the
//! step's latency is what counts: its products run in four accumulator
//! sets (`benches/peak.rs`, `gated_step`).
//!
//! Used where the model's constants were prepared (every row's right shift
//! 33 or more), the layer has 16 or 32 channels and the left kernel one of
//! the executor's input lengths; anything else goes the separate way.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::gate_avx512vbmi::{gate32, gate_lanes, Tables};
use super::matmul_packed_avx512vnni::{step as product_step, PackedI8};
use super::requant_avx512::StreamTerm;
use crate::int8::{PRE_MAX, PRE_MIN};
use crate::kernels::GatedStep;
use crate::kernels::{PreparedScales, Scales};

/// Independent accumulator sets of the left kernel's product: one input
/// gives each row block a single chain of `vpdpbusd`s, and a pixel's steps
/// are one dependent chain, so its length is the step's latency. Four sets
/// (with the input broadcast from memory) are 5% faster per step than two
/// in `benches/peak.rs`; eight spill.
const SETS: usize = 4;
/// The same for the residual block's product.
const RES_SETS: usize = 4;

/// The fused step into `out`, or `false` (nothing written) where it does
/// not apply: channels other than 16 or 32, weights not packed, a right
/// shift under 33.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI/VBMI; the row-major shapes of `step` agree with
/// `p = out.len()` as [`crate::kernels::Resolved::gated_step`] checks them (the
/// packed ones are checked here).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
pub(crate) unsafe fn gated_step(step: &GatedStep<'_>, out: &mut [i8]) -> bool {
    // Safety (each): the caller's features and shapes. The shapes of the
    // layers there are (the first layer's left kernel reads a few pixels,
    // the others two positions of p channels) are unrolled in full.
    unsafe {
        match (out.len(), step.input.len().div_ceil(4)) {
            (16, 1) => fused::<1, 2, 1>(step, out),
            (16, 8) => fused::<1, 2, 8>(step, out),
            (32, 1) => fused::<2, 4, 1>(step, out),
            (32, 16) => fused::<2, 4, 16>(step, out),
            _ => false,
        }
    }
}

/// [`gated_step`] for `p = 16 · PB` channels, `RB = 2 · PB` row blocks of
/// gate inputs, `G` groups of four inputs.
///
/// # Safety
/// As [`gated_step`], with `out.len() == 16 · PB` and `G` groups.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
unsafe fn fused<const PB: usize, const RB: usize, const G: usize>(
    step: &GatedStep<'_>,
    out: &mut [i8],
) -> bool {
    let p = 16 * PB;
    let n = step.input.len();
    let Some(left) = step.weights.packed.filter(|w| w.rows() == 2 * p && w.len() == n) else {
        return false;
    };
    let residual = match &step.residual {
        None => None,
        Some(r) => match r.weights.packed.filter(|w| w.rows() == p && w.len() == p) {
            Some(w) => Some((r, w)),
            None => return false,
        },
    };
    let Some(gate_fast) = prepared_rows::<RB>(step.scales) else { return false };
    let out_fast = match residual {
        Some((r, _)) => match prepared_rows::<PB>(r.scales) {
            Some(f) => Some(f),
            None => return false,
        },
        None => None,
    };

    // Safety (the rest): every load below reads the first 2p (or p) values
    // of slices of that length, or the input's n ≤ 4G ≤ 64 bytes under a
    // mask; the stores write out's p bytes.
    unsafe {
        let (sums, corr) = product::<RB, G>(left, step.input);
        let (lo, hi) = (_mm512_set1_epi32(PRE_MIN), _mm512_set1_epi32(PRE_MAX));
        // Gate inputs: requantized, the link added (within ±2^30 and an
        // int16, so no wrap), clamped to the tables' range.
        // (Loops and named functions, not closures, here and below: a
        // closure LLVM leaves out of line cost pixels 9% once.)
        let mut pre = [_mm512_setzero_si512(); RB];
        for (r, v) in pre.iter_mut().enumerate() {
            let a = _mm512_add_epi32(_mm512_sub_epi32(sums[r], corr), load32(step.bias, 16 * r));
            let link =
                _mm512_cvtepi16_epi32(_mm256_loadu_si256(step.links.as_ptr().add(16 * r).cast()));
            let y = _mm512_add_epi32(gate_fast.block(r).apply(a), link);
            *v = _mm512_min_epi32(_mm512_max_epi32(y, lo), hi);
        }
        let gate_mask: __mmask32 = if PB == 1 { 0xFFFF } else { u32::MAX };
        let (tanh_in, sigmoid_in) = (gate_lanes(&pre, 0, PB), gate_lanes(&pre, PB, PB));
        let gated = _mm512_maskz_mov_epi16(gate_mask, gate32(&Tables::load(), tanh_in, sigmoid_in));
        let Some(((r, weights), out_fast)) = residual.zip(out_fast) else {
            _mm512_mask_cvtepi16_storeu_epi8(out.as_mut_ptr().cast(), gate_mask, gated);
            return true;
        };

        // The residual block. Its input's four-byte groups, broadcast.
        let mut words = [0i32; 8];
        _mm256_storeu_si256(words.as_mut_ptr().cast(), _mm512_cvtepi16_epi8(gated));
        let (base, groups) = weights.blocks();
        let mut acc = [[[_mm512_setzero_si512(); 1]; PB]; RES_SETS];
        for (g, &word) in words.iter().enumerate().take(p / 4) {
            product_step(&mut acc[g % RES_SETS], base, groups, g, [word]);
        }
        let total = _mm512_reduce_add_epi32(_mm512_madd_epi16(gated, _mm512_set1_epi16(1)));
        let corr = _mm512_set1_epi32(total.wrapping_mul(128));
        let term = StreamTerm::of(r.stream_pair);
        for b in 0..PB {
            let fast = out_fast.block(b);
            let s = _mm512_cvtepi8_epi32(_mm_loadu_si128(r.stream.as_ptr().add(16 * b).cast()));
            let stream = term.apply(s);
            let mut a = acc[0][b][0];
            for set in &acc[1..] {
                a = _mm512_add_epi32(a, set[b][0]);
            }
            let a = _mm512_add_epi32(_mm512_sub_epi32(a, corr), load32(r.bias, 16 * b));
            let y = _mm512_add_epi32(stream, fast.apply(a));
            let y = _mm512_min_epi32(
                _mm512_max_epi32(y, _mm512_set1_epi32(-127)),
                _mm512_set1_epi32(127),
            );
            _mm_storeu_si128(out.as_mut_ptr().add(16 * b).cast(), _mm512_cvtepi32_epi8(y));
        }
        true
    }
}

/// The sums `w · x` (biased weights, not yet corrected) of the `16 · RB`
/// rows of `w` with the one input `x` of `G` groups, and the correction
/// `128 · Σx` to subtract from each.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; `w` has `RB` row blocks of `G` groups, `x` at most
/// `4 · G` (and at most 64) bytes.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn product<const RB: usize, const G: usize>(
    w: &PackedI8,
    x: &[i8],
) -> ([__m512i; RB], __m512i) {
    let (base, groups) = w.blocks();
    // The input once, zero-padded to whole groups (the padding's weights
    // are 0), for the broadcasts to read.
    let mut padded = Aligned([0; 16]);
    let mask = if x.len() >= 64 { u64::MAX } else { (1u64 << x.len()) - 1 };
    // Safety: the mask's bytes lie inside `x`.
    let v = unsafe { _mm512_maskz_loadu_epi8(mask, x.as_ptr()) };
    // Safety: `padded` is 64 aligned bytes.
    unsafe { _mm512_store_si512(padded.0.as_mut_ptr().cast(), v) };
    let mut acc = [[[_mm512_setzero_si512(); 1]; RB]; SETS];
    // Whole groups are broadcast from the input itself: a load-port
    // broadcast, where words of a register would take port 5's shuffles.
    let words: *const i32 = if x.len() == 4 * G { x.as_ptr().cast() } else { padded.0.as_ptr() };
    for g in 0..G {
        // Safety: blocks (r, g) exist for r < RB and g < G = groups; word
        // g lies inside `x` or `padded`.
        unsafe {
            product_step(&mut acc[g % SETS], base, groups, g, [words.add(g).read_unaligned()])
        };
    }
    let mut sums = [_mm512_setzero_si512(); RB];
    for (r, s) in sums.iter_mut().enumerate() {
        *s = acc[0][r][0];
        for set in &acc[1..] {
            *s = _mm512_add_epi32(*s, set[r][0]);
        }
    }
    // Σx from the unsigned bytes x + 128: eight sums of eight.
    let biased =
        _mm512_sad_epu8(_mm512_xor_si512(v, _mm512_set1_epi8(-128)), _mm512_setzero_si512());
    let total = (_mm512_reduce_add_epi64(biased) - 128 * 64) as i32;
    (sums, _mm512_set1_epi32(total.wrapping_mul(128)))
}

/// 64 bytes on a 64-byte boundary, as sixteen words.
#[repr(C, align(64))]
struct Aligned([i32; 16]);

/// The [`Fast`] constants of rows `0 .. 16 · B` of `scales`, prepared at
/// load, or `None` (not prepared: the separate kernels run instead). Only
/// prepared constants, so that nothing here is big enough for LLVM to
/// leave out of line: deriving them in the step once cost pixels 9%
/// where it did.
///
/// [`Fast`]: super::requant_avx512::Fast
#[inline]
pub(crate) fn prepared_rows<const B: usize>(scales: Scales<'_>) -> Option<&PreparedScales> {
    scales.prepared.filter(|p| p.rows() == 16 * B)
}

/// Sixteen int32 values from `v[at..]`.
///
/// # Safety
/// AVX-512F; `v[at..at + 16]` in bounds.
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn load32(v: &[i32], at: usize) -> __m512i {
    // Safety: the caller's bounds.
    unsafe { _mm512_loadu_si512(v.as_ptr().add(at).cast()) }
}
