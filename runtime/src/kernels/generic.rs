//! Portable scalar kernels for every precision (f32, f16 weights, int8): the
//! reference each optimised kernel is tested against, bit for bit.

/// The one requantization (defined with the rest of the int8 arithmetic in
/// [`crate::int8`]), here beside the kernels that apply it.
pub use crate::int8::requantize;

/// Dot product of two equally long slices.
///
/// Sums in eight independent lanes, so the compiler can vectorise it without
/// reassociating; the result differs from a sequential sum by rounding only.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot_f32 length mismatch");
    const LANES: usize = 8;
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        tail += x * y;
    }
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + tail
}

/// `out[i] += a · x[i]`: a multiply then an add per element (no fused
/// multiply-add), so every kernel gives the same bits.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn axpy_f32(out: &mut [f32], a: f32, x: &[f32]) {
    assert_eq!(out.len(), x.len(), "axpy_f32 length mismatch");
    for (o, &v) in out.iter_mut().zip(x) {
        *o += a * v;
    }
}

/// `out[n] += Σ_k x[k] · w[k · N + n]` (`N = out.len()`, `w` row-major
/// `x.len() × N`): [`axpy_f32`] row by row in `k` order, rows whose `x[k]`
/// is zero skipped (binary pixels and ReLU outputs add nothing).
///
/// # Panics
/// If `w.len() != x.len() · out.len()`.
#[inline]
pub fn gemv_f32(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = out.len();
    assert_eq!(w.len(), x.len() * n, "gemv_f32 shape mismatch");
    if n == 0 {
        return;
    }
    for (&a, row) in x.iter().zip(w.chunks_exact(n)) {
        if a != 0.0 {
            axpy_f32(out, a, row);
        }
    }
}

/// `out[i] += a · w[i]` for f16 `w` (widened exactly), a multiply then an
/// add, as [`axpy_f32`].
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn axpy_f16(out: &mut [f32], a: f32, w: &[half::f16]) {
    assert_eq!(out.len(), w.len(), "axpy_f16 length mismatch");
    for (o, &v) in out.iter_mut().zip(w) {
        *o += a * finite_f16_to_f32(v);
    }
}

/// Converts f16 bits to f32, exactly (every f16 is an f32), without
/// branches the compiler cannot turn into selects, so loops over it
/// vectorize (F. Giesen's "half to float" with the magic-number renormalize).
#[inline(always)]
pub fn f16_to_f32(h: half::f16) -> f32 {
    let h = u32::from(h.to_bits());
    let sign = (h & 0x8000) << 16;
    let bits = (h & 0x7fff) << 13;
    let exp = bits & (0x7c00 << 13);
    let normal = f32::from_bits(bits + ((127 - 15) << 23));
    // Zero and subnormals: renormalize through a float subtraction.
    let small = f32::from_bits(bits + (113 << 23)) - f32::from_bits(113 << 23);
    // Infinity and NaN: push the exponent to all ones.
    let special = f32::from_bits(bits + ((255 - 31) << 23));
    let value = if exp == 0 {
        small
    } else if exp == 0x7c00 << 13 {
        special
    } else {
        normal
    };
    f32::from_bits(value.to_bits() | sign)
}

/// Converts a *finite* f16 to f32, exactly and without branches: the f16's
/// exponent and mantissa bits, moved into f32 position, are an f32 2^112
/// times too small (a subnormal f16 lands on an f32 subnormal, so it is
/// exact too); one multiply rescales. Infinity and NaN come out finite, so
/// weights are checked with the exact [`f16_to_f32`] when a model loads.
#[inline(always)]
pub fn finite_f16_to_f32(h: half::f16) -> f32 {
    let h = u32::from(h.to_bits());
    let magnitude = f32::from_bits((h & 0x7fff) << 13) * f32::from_bits((127 + 112) << 23);
    f32::from_bits(magnitude.to_bits() | ((h & 0x8000) << 16))
}

/// Dot product of f16 weights with f32 inputs, accumulated in f32 in the
/// same eight lanes as [`dot_f32`], converting each weight on the way
/// ([`finite_f16_to_f32`]: weights are checked finite at load), so short
/// rows pay no buffer set-up.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot_f16(w: &[half::f16], x: &[f32]) -> f32 {
    assert_eq!(w.len(), x.len(), "dot_f16 length mismatch");
    const LANES: usize = 8;
    let mut acc = [0.0f32; LANES];
    let mut cw = w.chunks_exact(LANES);
    let mut cx = x.chunks_exact(LANES);
    for (a, b) in (&mut cw).zip(&mut cx) {
        for i in 0..LANES {
            acc[i] += finite_f16_to_f32(a[i]) * b[i];
        }
    }
    let mut tail = 0.0f32;
    for (&a, b) in cw.remainder().iter().zip(cx.remainder()) {
        tail += finite_f16_to_f32(a) * b;
    }
    let pairs = [acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]];
    (pairs[0] + pairs[2]) + (pairs[1] + pairs[3]) + tail
}

/// Dot product of two equally long int8 slices, in i32.
///
/// Exact for up to 2^31 / 127² ≈ 133,000 terms; the int8 model's rows are
/// checked against that bound when it is loaded. Sums wrap rather than panic.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len(), "dot_i8 length mismatch");
    a.iter().zip(b).fold(0i32, |acc, (&x, &y)| acc.wrapping_add(i32::from(x) * i32::from(y)))
}

/// `out[o] += dot_i8(w[o*n..(o+1)*n], x)` for every row `o`, with wrapping
/// int32 arithmetic; `n = x.len()`. The reference of the SIMD kernels.
///
/// # Panics
/// If `w.len() != out.len() * x.len()`.
#[inline]
pub fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    let n = x.len();
    assert_eq!(w.len(), out.len() * n, "matvec_i8 shape mismatch");
    if n == 0 {
        return;
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o = o.wrapping_add(dot_i8(row, x));
    }
}

/// `out[o] = clamp(requant[o](acc[o]), lo, hi)` as int8, for the
/// `(multiplier, shift)` pairs `pairs` (`2 · acc.len()` words, as the model
/// stores them: the shift in the low byte of each pair's second word);
/// `-128 ≤ lo ≤ hi ≤ 127`.
///
/// # Panics
/// If the lengths disagree.
#[inline]
pub fn requant_i8(out: &mut [i8], acc: &[i32], pairs: &[i32], lo: i8, hi: i8) {
    assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len(), "requant_i8 shapes");
    for ((y, &a), pair) in out.iter_mut().zip(acc).zip(pairs.chunks_exact(2)) {
        *y = requantize(a, pair[0], pair[1] as i8).clamp(i32::from(lo), i32::from(hi)) as i8;
    }
}

/// `out[o] = clamp(requant[o](acc[o]) + add[o], lo, hi)` as int16, the sum
/// exact (no wrap); without `add`, nothing is added.
///
/// # Panics
/// If the lengths disagree.
#[inline]
pub fn requant_i16(
    out: &mut [i16],
    acc: &[i32],
    pairs: &[i32],
    add: Option<&[i16]>,
    lo: i16,
    hi: i16,
) {
    assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len(), "requant_i16 shapes");
    assert!(add.is_none_or(|a| a.len() == acc.len()), "requant_i16 addend length");
    let rows = out.iter_mut().zip(acc).zip(pairs.chunks_exact(2));
    // One loop per case, so neither tests for the addend per channel.
    match add {
        None => {
            for ((y, &a), pair) in rows {
                *y = requantize(a, pair[0], pair[1] as i8).clamp(i32::from(lo), i32::from(hi))
                    as i16;
            }
        }
        Some(add) => {
            for (((y, &a), pair), &b) in rows.zip(add) {
                let r = i64::from(requantize(a, pair[0], pair[1] as i8)) + i64::from(b);
                *y = r.clamp(i64::from(lo), i64::from(hi)) as i16;
            }
        }
    }
}

/// The residual block's output:
/// `out[o] = clamp(residual_mult(res[o]) + requant[o](acc[o]), -127, 127)`,
/// each requantized term saturated to i32 first, the sum exact.
///
/// # Panics
/// If the lengths disagree.
#[inline]
pub fn requant_residual_i8(
    out: &mut [i8],
    acc: &[i32],
    pairs: &[i32],
    res: &[i8],
    (res_multiplier, res_shift): (i32, i8),
) {
    assert!(
        out.len() == acc.len() && pairs.len() == 2 * acc.len() && res.len() == acc.len(),
        "requant_residual_i8 shapes"
    );
    for (((y, &a), &r), pair) in out.iter_mut().zip(acc).zip(res).zip(pairs.chunks_exact(2)) {
        let sum = i64::from(requantize(i32::from(r), res_multiplier, res_shift))
            + i64::from(requantize(a, pair[0], pair[1] as i8));
        *y = sum.clamp(-127, 127) as i8;
    }
}

/// `out[o] += dot(w[o*n..(o+1)*n], x)` for every output `o`, where
/// `n = x.len()` and `w` is row-major `[out.len()][n]`.
///
/// # Panics
/// If `w.len() != out.len() * x.len()`.
#[inline]
pub fn matvec_f32(out: &mut [f32], w: &[f32], x: &[f32]) {
    let n = x.len();
    assert_eq!(w.len(), out.len() * n, "matvec_f32 shape mismatch");
    if n == 0 {
        return;
    }
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o += dot_f32(row, x);
    }
}

/// The gate: `out[c] = tanh(pre[c]) * sigmoid(pre[p + c])` with
/// `p = out.len()`. NaN in gives NaN out; saturates cleanly at ±inf.
///
/// # Panics
/// If `pre.len() != 2 * out.len()`.
#[inline]
pub fn gate_f32(out: &mut [f32], pre: &[f32]) {
    let p = out.len();
    assert_eq!(pre.len(), 2 * p, "gate_f32 shape mismatch");
    let (f, g) = pre.split_at(p);
    for ((o, &a), &b) in out.iter_mut().zip(f).zip(g) {
        *o = libm::tanhf(a) * sigmoid_f32(b);
    }
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline]
pub fn sigmoid_f32(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// `x = max(x, 0)` in place. NaN stays NaN.
#[inline]
pub fn relu_f32(x: &mut [f32]) {
    for v in x {
        if *v < 0.0 {
            *v = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_sequential_sum_on_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 17, 33] {
            let a: [f32; 40] = core::array::from_fn(|i| (i as f32 * 0.37).sin());
            let b: [f32; 40] = core::array::from_fn(|i| (i as f32 * 0.91).cos());
            let seq: f32 = a[..n].iter().zip(&b[..n]).map(|(x, y)| x * y).sum();
            assert!((dot_f32(&a[..n], &b[..n]) - seq).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn f16_conversion_is_exact_for_every_value() {
        for bits in 0..=u16::MAX {
            let h = half::f16::from_bits(bits);
            let (got, want) = (f16_to_f32(h), h.to_f32());
            if want.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(got.to_bits(), want.to_bits(), "{bits:#06x}");
            }
            if want.is_finite() {
                assert_eq!(finite_f16_to_f32(h).to_bits(), want.to_bits(), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn gate_is_tanh_times_sigmoid() {
        let pre = [0.5f32, -2.0, 1.0, 0.0];
        let mut out = [0.0f32; 2];
        gate_f32(&mut out, &pre);
        assert!((out[0] - 0.5f32.tanh() / (1.0 + (-1.0f32).exp())).abs() < 1e-6);
        assert!((out[1] - (-2.0f32).tanh() * 0.5).abs() < 1e-6);
    }

    #[test]
    fn gate_saturates_at_infinity() {
        let pre = [f32::INFINITY, f32::NEG_INFINITY, f32::INFINITY, f32::INFINITY];
        let mut out = [0.0f32; 2];
        gate_f32(&mut out, &pre);
        assert_eq!(out, [1.0, -1.0]);
    }

    #[test]
    fn relu_clamps_negatives_only() {
        let mut x = [-1.0f32, 0.0, 2.5, -0.0];
        relu_f32(&mut x);
        assert_eq!(x, [0.0, 0.0, 2.5, -0.0]);
    }
}
