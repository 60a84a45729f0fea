//! aarch64 int8 matrix-vector product with the ARMv8.2 dot-product
//! instruction `sdot` (Raspberry Pi 5's Cortex-A76 and later), bit-identical
//! to [`crate::kernels::generic::matvec_i8`]. `sdot` sums four exact int8 products
//! into each int32 lane. Written with `asm!` because the `vdotq_s32`
//! intrinsic is not stable Rust.
#![allow(unsafe_code)]

use core::arch::aarch64::*;
use core::arch::asm;

/// `acc += sdot(a, b)`: each int32 lane adds four int8 products.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut acc = acc;
    // Safety: register-only instruction, enabled by the target feature.
    unsafe {
        asm!("sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b", acc = inout(vreg) acc, a = in(vreg) a, b = in(vreg) b, options(pure, nomem, nostack));
    }
    acc
}

/// `out[o] += w[o] · x` for every row `o` of `w`.
///
/// # Safety
/// The CPU must support `dotprod`, and `w.len() == out.len() * x.len()`.
#[target_feature(enable = "neon,dotprod")]
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
                acc = sdot(acc, vld1q_s8(row.add(i)), vld1q_s8(x.as_ptr().add(i)));
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
