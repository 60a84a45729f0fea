//! aarch64 NEON float dot products: f32 weights, and f16 weights widened by
//! `FCVTL`/`FCVTL2` (base ARMv8-A floating point, exact for every finite
//! f16, so every Raspberry Pi 3 to 5 has it). Bit-identical to
//! [`crate::kernels::generic::dot_f32`] and [`crate::kernels::generic::dot_f16`]: the same
//! eight lanes (two vectors of four), separate multiplies and adds (no
//! fused multiply-add), the lanes combined in the portable kernels' order
//! and the tail added last, sequentially.
#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

/// `((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7))` for lanes `a0..a3`
/// in `lo` and `a4..a7` in `hi`: the portable kernels' pairing.
#[inline]
#[target_feature(enable = "neon")]
fn combine(lo: float32x4_t, hi: float32x4_t) -> f32 {
    // [a0 + a4, a1 + a5, a2 + a6, a3 + a7]
    let pairs = vaddq_f32(lo, hi);
    // [p0 + p2, p1 + p3]
    let halves = vadd_f32(vget_low_f32(pairs), vget_high_f32(pairs));
    vget_lane_f32::<0>(halves) + vget_lane_f32::<1>(halves)
}

/// `Σ a[i] · b[i]` as [`crate::kernels::generic::dot_f32`] computes it.
///
/// # Safety
/// `a.len() == b.len()` (NEON is part of every aarch64 CPU).
#[target_feature(enable = "neon")]
pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut i = 0;
    while i + 8 <= n {
        // Safety: i + 8 <= n: eight floats readable in both slices.
        unsafe {
            let (pa, pb) = (a.as_ptr().add(i), b.as_ptr().add(i));
            lo = vaddq_f32(lo, vmulq_f32(vld1q_f32(pa), vld1q_f32(pb)));
            hi = vaddq_f32(hi, vmulq_f32(vld1q_f32(pa.add(4)), vld1q_f32(pb.add(4))));
        }
        i += 8;
    }
    let mut tail = 0.0f32;
    for (x, y) in a[i..].iter().zip(&b[i..]) {
        tail += x * y;
    }
    combine(lo, hi) + tail
}

/// Eight f16 (as bits) widened to f32, exactly: lanes 0–3 and 4–7.
#[inline]
#[target_feature(enable = "neon")]
fn widen(h: uint16x8_t) -> (float32x4_t, float32x4_t) {
    let (lo, hi): (float32x4_t, float32x4_t);
    // Safety: FCVTL/FCVTL2 are base ARMv8-A floating-point instructions on
    // registers only.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack),
        )
    };
    (lo, hi)
}

/// `Σ w[i] · x[i]` for f16 weights, as [`crate::kernels::generic::dot_f16`]
/// computes it.
///
/// # Safety
/// `w.len() == x.len()`; the weights are finite (checked when a model
/// loads).
#[target_feature(enable = "neon")]
pub unsafe fn dot_f16(w: &[half::f16], x: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), x.len());
    let n = w.len();
    let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut i = 0;
    while i + 8 <= n {
        // Safety: i + 8 <= n: eight f16 (16 bytes) and eight f32 readable.
        unsafe {
            let (wl, wh) = widen(vld1q_u16(w.as_ptr().add(i).cast()));
            let px = x.as_ptr().add(i);
            lo = vaddq_f32(lo, vmulq_f32(wl, vld1q_f32(px)));
            hi = vaddq_f32(hi, vmulq_f32(wh, vld1q_f32(px.add(4))));
        }
        i += 8;
    }
    let mut tail = 0.0f32;
    for (&a, b) in w[i..].iter().zip(&x[i..]) {
        tail += crate::kernels::generic::finite_f16_to_f32(a) * b;
    }
    combine(lo, hi) + tail
}
