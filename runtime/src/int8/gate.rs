//! The gate in integers: `tanh(a) · sigmoid(b)` through lookup tables, and
//! the range of its inputs.

use super::tables;

/// Gate inputs are integers in units of `1 / PRE_SCALE`.
pub const PRE_SCALE: f32 = 64.0;
/// Smallest gate input (the tables' index 0).
pub const PRE_MIN: i32 = -512;
/// Largest gate input.
pub const PRE_MAX: i32 = 511;

/// Clamps to a gate input index.
#[inline]
pub fn clamp_pre(x: i32) -> i32 {
    x.clamp(PRE_MIN, PRE_MAX)
}

/// The gate in integers: `tanh(a) · sigmoid(b)` for gate inputs `a`, `b`
/// (units of 1/64), in units of 1/127.
#[inline]
pub fn gate_i8(a: i32, b: i32) -> i8 {
    let t = i32::from(tables::TANH[(clamp_pre(a) - PRE_MIN) as usize]);
    let s = i32::from(tables::SIGMOID[(clamp_pre(b) - PRE_MIN) as usize]);
    // |t · s| ≤ 127 · 256, so the result stays within ±127.
    ((t * s + 128) >> 8) as i8
}

/// `out[c] = gate_i8(pre[c], pre[p + c])` for every channel `c < p`,
/// `p = out.len()`: a gated layer's output from its int16 pre-activation.
///
/// # Panics
/// If `pre.len() != 2 * out.len()`.
#[inline]
pub fn gate_i8_slice(out: &mut [i8], pre: &[i16]) {
    assert_eq!(pre.len(), 2 * out.len(), "gate_i8_slice shapes");
    let (a, b) = pre.split_at(out.len());
    for (g, (&a, &b)) in out.iter_mut().zip(a.iter().zip(b)) {
        *g = gate_i8(i32::from(a), i32::from(b));
    }
}
