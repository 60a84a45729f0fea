//! The int8 arithmetic, all of it in one place: the number formats, the
//! requantization and its rounding, the stored `(multiplier, shift)` pair
//! format, the clamps, the gate and its lookup tables, and the integer
//! exponentials of the sampling distribution. Kernels and executors both
//! import it, and nothing here imports them (the role of tract's
//! `generic/rounding.rs`, XNNPACK's `requantization.h` and CMSIS-NN's
//! `arm_nnsupportfunctions.h`).
//!
//! Integer-only (Ballé et al., "Integer networks", 2019): the same input and
//! seed give the same pixels on every platform.
//!
//! Number formats (all symmetric, zero point 0):
//! - image and gate outputs: int8 in units of 1/127 (their range is known);
//! - the horizontal stack's residual stream: int8, one calibrated scale per
//!   layer; the vertical pre-activation that feeds the v→h link: int8, one
//!   calibrated scale per layer; the head's hidden layer: int8, calibrated;
//! - weights: int8 with one scale per output channel; biases: int32 in the
//!   accumulator's units;
//! - gate inputs (pre-activations): integers in units of 1/64, clamped to
//!   `[-512, 511]` (±8, where tanh and the logistic are flat to 1/127), read
//!   through the [`tables::TANH`] and [`tables::SIGMOID`] lookup tables;
//! - logits: int32 in units of 1/256 nat; the sampling distribution is
//!   computed from them with integer exponentials ([`softmax`]).
//!
//! Every rescaling is a [`QuantMultiplier`]: an int32 multiplier and a
//! shift, as in TFLite and CMSIS-NN.

//!
//! A requantization point is stored as `(multiplier, shift)` pairs, two
//! 32-bit words per output row: the mantissa, then the shift in the low
//! byte of the second word ([`pair`] reads one); kernels take the pairs as
//! they lie in the model.

pub mod gate;
pub mod softmax;
pub mod tables;

pub use gate::{clamp_pre, gate_i8, gate_i8_slice, PRE_MAX, PRE_MIN, PRE_SCALE};

/// Logits are integers in units of `1 / LOGIT_SCALE` nats.
pub const LOGIT_SCALE: f32 = 256.0;
/// The image and gate outputs are int8 in units of `1 / UNIT_SCALE`.
pub const UNIT_SCALE: f32 = 127.0;

/// A real multiplier `multiplier · 2^(shift − 31)` applied to an int32 with
/// rounding (half up) and saturation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantMultiplier {
    /// Q31 mantissa in `[2^30, 2^31)`, or 0 for a zero multiplier.
    pub multiplier: i32,
    /// Power-of-two exponent, `-31..=30`.
    pub shift: i8,
}

impl QuantMultiplier {
    /// The zero multiplier.
    pub const ZERO: QuantMultiplier = QuantMultiplier { multiplier: 0, shift: 0 };

    /// Checks a stored pair: a non-negative mantissa and a shift in range.
    pub fn from_parts(multiplier: i32, shift: i32) -> Option<QuantMultiplier> {
        if multiplier < 0 || !(-31..=30).contains(&shift) {
            return None;
        }
        Some(QuantMultiplier { multiplier, shift: shift as i8 })
    }

    /// The nearest multiplier to `real` (host side, at conversion time).
    /// `None` when `real` is negative, not finite, or at least 2^30.
    pub fn from_real(real: f64) -> Option<QuantMultiplier> {
        if !real.is_finite() || real < 0.0 {
            return None;
        }
        if real == 0.0 {
            return Some(Self::ZERO);
        }
        let (mut frac, mut exp) = libm::frexp(real);
        let mut m = libm::round(frac * libm::ldexp(1.0, 31)) as i64;
        if m == 1 << 31 {
            m >>= 1;
            exp += 1;
        }
        frac = m as f64;
        if exp < -31 {
            return Some(Self::ZERO);
        }
        if exp > 30 {
            return None;
        }
        Some(QuantMultiplier { multiplier: frac as i32, shift: exp as i8 })
    }

    /// The real value, for reports.
    pub fn to_real(self) -> f64 {
        f64::from(self.multiplier) * libm::ldexp(1.0, i32::from(self.shift) - 31)
    }

    /// `round(x · multiplier · 2^(shift − 31))`, saturated to i32
    /// ([`requantize`]).
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        requantize(x, self.multiplier, self.shift)
    }
}

/// Clamps to int8's symmetric range `[-127, 127]`.
#[inline]
pub fn clamp_i8(x: i32) -> i8 {
    x.clamp(-127, 127) as i8
}

/// `round(x · multiplier · 2^(shift − 31))`, rounding half up, saturated to
/// i32: the one requantization every int8 path uses
/// ([`QuantMultiplier::apply`] calls it). Defined for every
/// `multiplier` and `shift`: the right shift is clamped to `1..=62`.
#[inline]
pub fn requantize(x: i32, multiplier: i32, shift: i8) -> i32 {
    // 1 ≤ right ≤ 62: the product is below 2^62 in magnitude, so neither
    // it nor the rounding term overflows i64.
    let right = (31 - i32::from(shift)).clamp(1, 62) as u32;
    let prod = i64::from(x) * i64::from(multiplier);
    let rounded = (prod + (1i64 << (right - 1))) >> right;
    rounded.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// The `(multiplier, shift)` pair of row `row` in stored pairs (two words a
/// row, the shift in the low byte of the second).
///
/// # Panics
/// If `pairs` has no row `row`.
#[inline]
pub fn pair(pairs: &[i32], row: usize) -> (i32, i8) {
    (pairs[2 * row], pairs[2 * row + 1] as i8)
}

/// Saturates to int16.
#[inline]
pub fn clamp_i16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// A level as the int8 image value `round(127 · level / (K − 1))`.
#[inline]
pub fn quantize_level(level: u8, levels: usize) -> i8 {
    let k1 = (levels - 1) as u32;
    ((u32::from(level) * UNIT_SCALE as u32 + k1 / 2) / k1) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_match_libm_within_one_unit() {
        for (i, (&t, &s)) in tables::TANH.iter().zip(&tables::SIGMOID).enumerate() {
            let x = (i as f64 + f64::from(PRE_MIN)) / f64::from(PRE_SCALE);
            assert!((f64::from(t) - 127.0 * libm::tanh(x)).abs() <= 0.5 + 1e-9, "tanh {i}");
            let sig = 256.0 / (1.0 + libm::exp(-x));
            assert!((f64::from(s) - sig).abs() <= 0.5 + 1e-9, "sigmoid {i}");
        }
        for (n, &e) in tables::EXP_HI.iter().enumerate() {
            assert!((f64::from(e) - 2f64.powi(30) * libm::exp(-(n as f64))).abs() <= 0.5 + 1e-6);
        }
        for (m, &e) in tables::EXP_LO.iter().enumerate() {
            let want = 2f64.powi(30) * libm::exp(-(m as f64) / 256.0);
            assert!((f64::from(e) - want).abs() <= 0.5 + 1e-6, "exp_lo {m}");
        }
    }

    #[test]
    fn multiplier_round_trips_and_rounds_half_up() {
        for real in [1e-9, 0.0001234, 0.25, 0.5, 0.999_999_9, 1.0, 3.75, 1000.0, 1e8] {
            let q = QuantMultiplier::from_real(real).unwrap();
            assert!((q.to_real() - real).abs() <= real * 1e-9, "{real}");
            assert!(q.multiplier >= 1 << 30, "{real}: {q:?}");
        }
        let half = QuantMultiplier::from_real(0.5).unwrap();
        assert_eq!([half.apply(3), half.apply(-3), half.apply(5)], [2, -1, 3]);
        assert_eq!(QuantMultiplier::from_real(1e12), None);
        assert_eq!(QuantMultiplier::from_real(-1.0), None);
        assert_eq!(QuantMultiplier::from_real(1e-12), Some(QuantMultiplier::ZERO));
    }

    #[test]
    fn multiplier_saturates_instead_of_overflowing() {
        let big = QuantMultiplier::from_real(1e9).unwrap();
        assert_eq!(big.apply(i32::MAX), i32::MAX);
        assert_eq!(big.apply(i32::MIN), i32::MIN);
        // Any stored pair is safe to apply, valid or not.
        let odd = QuantMultiplier { multiplier: i32::MAX, shift: i8::MIN };
        let _ = odd.apply(i32::MIN);
    }

    #[test]
    fn gate_follows_tanh_times_sigmoid() {
        for a in (-600..600).step_by(37) {
            for b in (-600..600).step_by(41) {
                let (x, y) = (a as f32 / PRE_SCALE, b as f32 / PRE_SCALE);
                let want =
                    libm::tanhf(x.clamp(-8.0, 7.99)) / (1.0 + libm::expf(-y.clamp(-8.0, 7.99)));
                let got = f32::from(gate_i8(a, b)) / UNIT_SCALE;
                assert!((got - want).abs() < 1.5 / UNIT_SCALE, "{a} {b}: {got} vs {want}");
            }
        }
    }
}
