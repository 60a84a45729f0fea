//! aarch64 NEON int8 matrix-vector product (any ARMv8-A core, such as the
//! Raspberry Pi 4's Cortex-A72), bit-identical to
//! [`crate::kernels::generic::matvec_i8`].
//!
//! `smull`/`smull2` multiply int8 into int16 exactly (|128²| < 2^15) and
//! `sadalp` adds pairs into int32 lanes, with wrapping like the scalar
//! kernel.
#![allow(unsafe_code)]

use core::arch::aarch64::*;

/// `out[o] += w[o] · x` for every row `o` of `w`.
///
/// # Safety
/// `w.len() == out.len() * x.len()` (NEON is part of every aarch64 CPU).
#[target_feature(enable = "neon")]
pub unsafe fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    let n = x.len();
    debug_assert_eq!(w.len(), out.len() * n);
    for (o, acc_out) in out.iter_mut().enumerate() {
        // Safety: row o lies inside `w`.
        let row = unsafe { w.as_ptr().add(o * n) };
        let mut acc = vdupq_n_s32(0);
        let mut i = 0;
        while i + 16 <= n {
            // Safety: i + 16 <= n: 16 readable bytes in the row and in `x`.
            unsafe {
                let wv = vld1q_s8(row.add(i));
                let xv = vld1q_s8(x.as_ptr().add(i));
                acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(wv), vget_low_s8(xv)));
                acc = vpadalq_s16(acc, vmull_high_s8(wv, xv));
            }
            i += 16;
        }
        let mut s = vaddvq_s32(acc);
        for (j, &xj) in x.iter().enumerate().skip(i) {
            // Safety: j < n.
            s = s.wrapping_add(i32::from(unsafe { *row.add(j) }) * i32::from(xj));
        }
        *acc_out = acc_out.wrapping_add(s);
    }
}
