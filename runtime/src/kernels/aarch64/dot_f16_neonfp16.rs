//! aarch64 NEON FP16 arithmetic (ARMv8.2-A FP16, such as the Cortex-A76
//! of a Raspberry Pi 5): f16 weights times activations rounded to f16, one
//! `FMLA` on eight half-precision lanes per eight products, where the
//! exact kernels widen the weights and multiply and add in f32.
//!
//! The one float kernel that does not give the portable kernels' bits:
//! each activation is rounded to f16 (`FCVTN`, round to nearest even), the
//! products and their running sums are rounded to f16, and every
//! [`F16_RUN`] inputs the eight lanes' sums are widened (exactly) and added
//! in f32, which bounds how much an f16 sum can lose. The tail of a row
//! (its last `len mod 8` inputs) is summed in f32. It is never chosen by
//! default; `--kernel neon-fp16` asks for it, and its NLL against f32 is in
//! `docs/performance-log.md`.
//!
//! Inline assembly, because Rust's f16 NEON intrinsics are not stable; the
//! f16 lanes travel in `uint16x8_t` registers.
#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

/// Inputs whose products are summed in f16 before the sum moves to f32.
pub const F16_RUN: usize = 32;

/// Longest stretch of activations converted to f16 at once by
/// [`matvec_f16`] (on the stack).
const CHUNK: usize = 256;

/// `acc += w · x` on eight f16 lanes.
#[inline]
#[target_feature(enable = "neon,fp16")]
fn fmla_h(acc: uint16x8_t, w: uint16x8_t, x: uint16x8_t) -> uint16x8_t {
    let mut acc = acc;
    // Safety: FMLA (vector, half precision) on registers only; the CPU has
    // FP16 arithmetic (this function's target feature).
    unsafe {
        asm!(
            "fmla {acc:v}.8h, {w:v}.8h, {x:v}.8h",
            acc = inout(vreg) acc,
            w = in(vreg) w,
            x = in(vreg) x,
            options(pure, nomem, nostack),
        )
    };
    acc
}

/// Eight f32 rounded to f16 (round to nearest even), as bits.
#[inline]
#[target_feature(enable = "neon")]
fn narrow(lo: float32x4_t, hi: float32x4_t) -> uint16x8_t {
    let h: uint16x8_t;
    // Safety: FCVTN/FCVTN2 are base ARMv8-A instructions on registers only.
    unsafe {
        asm!(
            "fcvtn {h:v}.4h, {lo:v}.4s",
            "fcvtn2 {h:v}.8h, {hi:v}.4s",
            h = out(vreg) h,
            lo = in(vreg) lo,
            hi = in(vreg) hi,
            options(pure, nomem, nostack),
        )
    };
    h
}

/// Eight f16 lanes widened to f32, exactly, and added to `(lo, hi)`.
#[inline]
#[target_feature(enable = "neon")]
fn spill(acc: uint16x8_t, lo: &mut float32x4_t, hi: &mut float32x4_t) {
    let (l, h): (float32x4_t, float32x4_t);
    // Safety: FCVTL/FCVTL2 on registers only.
    unsafe {
        asm!(
            "fcvtl {l:v}.4s, {a:v}.4h",
            "fcvtl2 {h:v}.4s, {a:v}.8h",
            a = in(vreg) acc,
            l = out(vreg) l,
            h = out(vreg) h,
            options(pure, nomem, nostack),
        )
    };
    *lo = vaddq_f32(*lo, l);
    *hi = vaddq_f32(*hi, h);
}

/// The eight f32 lanes of `(lo, hi)` summed, plus `tail`.
#[inline]
#[target_feature(enable = "neon")]
fn total(lo: float32x4_t, hi: float32x4_t, tail: f32) -> f32 {
    vaddvq_f32(vaddq_f32(lo, hi)) + tail
}

/// `Σ w[i] · x[i]`, products and runs of [`F16_RUN`] sums in f16.
///
/// # Safety
/// The CPU has FP16 arithmetic; `w.len() == x.len()`; the weights are
/// finite (checked when a model loads).
#[target_feature(enable = "neon,fp16")]
pub unsafe fn dot_f16(w: &[half::f16], x: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), x.len());
    let body = w.len() / 8 * 8;
    let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
    let mut i = 0;
    while i < body {
        let end = (i + F16_RUN).min(body);
        let mut acc = vdupq_n_u16(0);
        while i < end {
            // Safety: i + 8 <= body: eight f16 (16 bytes) and eight f32
            // readable.
            unsafe {
                let wv = vld1q_u16(w.as_ptr().add(i).cast());
                let px = x.as_ptr().add(i);
                acc = fmla_h(acc, wv, narrow(vld1q_f32(px), vld1q_f32(px.add(4))));
            }
            i += 8;
        }
        spill(acc, &mut lo, &mut hi);
    }
    total(lo, hi, tail(&w[body..], &x[body..]))
}

/// `out[o] += Σ w[o · n + i] · x[i]` (`n = x.len()`), with the
/// activations rounded to f16 once for all rows; for rows of up to 256
/// inputs, `out[o] += dot_f16(row o, x)` bit for bit.
///
/// # Safety
/// As [`dot_f16`]; `w.len() == out.len() · x.len()`.
#[target_feature(enable = "neon,fp16")]
pub unsafe fn matvec_f16(out: &mut [f32], w: &[half::f16], x: &[f32]) {
    let n = x.len();
    debug_assert_eq!(w.len(), out.len() * n);
    let body = n / 8 * 8;
    if body == 0 {
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            *o += tail(row, x);
        }
        return;
    }
    let mut xh = [0u16; CHUNK];
    // Rows longer than a chunk: each chunk's sum (a whole number of f16
    // runs) is added to the row's total; the tail comes with the last.
    let mut start = 0;
    while start < body {
        let len = (body - start).min(CHUNK);
        for k in (0..len).step_by(8) {
            // Safety: start + k + 8 <= body: eight f32 readable; eight u16
            // writable in `xh` (len <= CHUNK, a multiple of 8).
            unsafe {
                let px = x.as_ptr().add(start + k);
                vst1q_u16(xh.as_mut_ptr().add(k), narrow(vld1q_f32(px), vld1q_f32(px.add(4))));
            }
        }
        let last = start + len == body;
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            let (mut lo, mut hi) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
            let wr = &row[start..start + len];
            let mut k = 0;
            while k < len {
                let end = (k + F16_RUN).min(len);
                let mut acc = vdupq_n_u16(0);
                while k < end {
                    // Safety: k + 8 <= len: eight f16 of the row and of `xh`.
                    unsafe {
                        let wv = vld1q_u16(wr.as_ptr().add(k).cast());
                        acc = fmla_h(acc, wv, vld1q_u16(xh.as_ptr().add(k)));
                    }
                    k += 8;
                }
                spill(acc, &mut lo, &mut hi);
            }
            let t = if last { tail(&row[body..], &x[body..]) } else { 0.0 };
            *o += total(lo, hi, t);
        }
        start += len;
    }
}

/// The last `len mod 8` products, summed in f32 in order.
fn tail(w: &[half::f16], x: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (&a, b) in w.iter().zip(x) {
        sum += crate::kernels::generic::finite_f16_to_f32(a) * b;
    }
    sum
}
