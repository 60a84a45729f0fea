//! 32-bit Arm int8 matrix-vector product with the DSP extension's `SMLAD`
//! (Cortex-M4/M7/M33 with DSP, and ARMv7-A such as a Raspberry Pi's 32-bit
//! OS), in the way of CMSIS-NN's `arm_nn_vec_mat_mult_t_s8`;
//! bit-identical to [`crate::kernels::generic::matvec_i8`].
//!
//! Four int8 of a row are one 32-bit load. `SXTB16` sign-extends bytes 0
//! and 2 into two int16 halves, `SXTB16 …, ROR #8` bytes 1 and 3, and each
//! `SMLAD` adds two int16 products to an int32 accumulator: four MACs in
//! four instructions, after the load. The products are exact
//! (`|2 · 128²| < 2^31`) and `SMLAD`'s accumulation wraps modulo 2^32 (it
//! only sets the Q flag, which nothing reads), so the sums equal the scalar
//! kernel's wrapping sums. Two rows share each input word's extension.
#![allow(unsafe_code)]

use core::arch::asm;

/// Bytes 0 and 2 of `v`, sign-extended into the two int16 halves.
#[inline(always)]
fn sxtb16(v: u32) -> u32 {
    let r: u32;
    // Safety: a register-only ALU instruction of the DSP extension, which
    // this module is only compiled for.
    unsafe {
        asm!("sxtb16 {r}, {v}", r = lateout(reg) r, v = in(reg) v, options(pure, nomem, nostack))
    };
    r
}

/// Bytes 1 and 3 of `v`, sign-extended into the two int16 halves.
#[inline(always)]
fn sxtb16_ror8(v: u32) -> u32 {
    let r: u32;
    // Safety: as in `sxtb16`.
    unsafe {
        asm!("sxtb16 {r}, {v}, ror #8", r = lateout(reg) r, v = in(reg) v, options(pure, nomem, nostack))
    };
    r
}

/// `acc + a.lo · b.lo + a.hi · b.hi` (int16 halves), wrapping.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // Safety: as in `sxtb16`; the Q flag it may set is not read anywhere.
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack))
    };
    r
}

/// Four bytes at `p` as one little-endian word.
///
/// # Safety
/// Four bytes must be readable at `p` (any alignment).
#[inline(always)]
unsafe fn word(p: *const i8) -> u32 {
    // Safety: the caller's four bytes; ARMv7 loads words unaligned.
    unsafe { p.cast::<u32>().read_unaligned() }
}

/// `out[o] += w[o] · x` for every row `o` of `w` (`out.len()` rows of
/// `x.len()` int8 each).
///
/// # Safety
/// `w.len() == out.len() * x.len()`; the CPU has the DSP extension (this
/// module is only compiled where the target has it).
pub unsafe fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    let n = x.len();
    debug_assert_eq!(w.len(), out.len() * n);
    let body = n / 4 * 4;
    let xp = x.as_ptr();
    let mut o = 0;
    while o + 2 <= out.len() {
        // Safety: rows o and o + 1 lie inside `w` (the caller's shape).
        let (w0, w1) = unsafe { (w.as_ptr().add(o * n), w.as_ptr().add((o + 1) * n)) };
        let (mut a0, mut a1) = (0i32, 0i32);
        let mut i = 0;
        while i < body {
            // Safety: i + 4 <= n: four bytes readable in `x` and both rows.
            let (xv, u0, u1) = unsafe { (word(xp.add(i)), word(w0.add(i)), word(w1.add(i))) };
            let (xe, xo) = (sxtb16(xv), sxtb16_ror8(xv));
            a0 = smlad(sxtb16_ror8(u0), xo, smlad(sxtb16(u0), xe, a0));
            a1 = smlad(sxtb16_ror8(u1), xo, smlad(sxtb16(u1), xe, a1));
            i += 4;
        }
        for j in body..n {
            let xj = i32::from(x[j]);
            a0 = a0.wrapping_add(i32::from(w[o * n + j]) * xj);
            a1 = a1.wrapping_add(i32::from(w[(o + 1) * n + j]) * xj);
        }
        out[o] = out[o].wrapping_add(a0);
        out[o + 1] = out[o + 1].wrapping_add(a1);
        o += 2;
    }
    if o < out.len() {
        let row = &w[o * n..(o + 1) * n];
        let mut a = 0i32;
        let mut i = 0;
        while i < body {
            // Safety: i + 4 <= n, inside `x` and the row.
            let (xv, u) = unsafe { (word(xp.add(i)), word(row.as_ptr().add(i))) };
            a = smlad(sxtb16_ror8(u), sxtb16_ror8(xv), smlad(sxtb16(u), sxtb16(xv), a));
            i += 4;
        }
        for j in body..n {
            a = a.wrapping_add(i32::from(row[j]) * i32::from(x[j]));
        }
        out[o] = out[o].wrapping_add(a);
    }
}
