//! Portable scalar kernels (f32). The reference for every optimised kernel.

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

/// Dot product of f16 weights with f32 inputs, accumulated in f32.
///
/// Converts a block at a time (exactly: every f16 is an f32) and reuses
/// [`dot_f32`]; `half` uses the CPU's conversion instructions where it can.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub fn dot_f16(w: &[half::f16], x: &[f32]) -> f32 {
    use half::slice::HalfFloatSliceExt;
    assert_eq!(w.len(), x.len(), "dot_f16 length mismatch");
    const BLOCK: usize = 64;
    let mut buf = [0.0f32; BLOCK];
    let mut total = 0.0f32;
    for (wb, xb) in w.chunks(BLOCK).zip(x.chunks(BLOCK)) {
        let wf = &mut buf[..wb.len()];
        wb.convert_to_f32_slice(wf);
        total += dot_f32(wf, xb);
    }
    total
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
