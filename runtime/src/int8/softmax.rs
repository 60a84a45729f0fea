//! The sampling distribution in integers: `softmax(logits / T)` from int32
//! logits (units of 1/256 nat) through the exponential tables, so a seed
//! draws the same level on every platform.

use super::tables::{EXP_HI, EXP_LO};
use crate::error::Error;
use crate::rng::Rng;
use rand_core::RngCore;

/// Differences beyond 32 nats get the smallest weight.
const MAX_DIFF: u64 = 32 * 256;

/// Temperature as a Q16 reciprocal: logit differences are multiplied by it.
///
/// # Errors
/// [`Error::InvalidTemperature`] unless `temperature` is finite and above 0.
pub fn inverse_temperature(temperature: f32) -> Result<u64, Error> {
    if !(temperature.is_finite() && temperature > 0.0) {
        return Err(Error::InvalidTemperature);
    }
    // Correctly rounded IEEE operations: the same integer everywhere.
    let q = libm::round(65536.0 / f64::from(temperature));
    Ok(q.clamp(1.0, (1u64 << 40) as f64) as u64)
}

/// The weight of a level `diff` (≥ 0, units of 1/256 nat) below the best:
/// `round(2^30 e^(-diff / 256))`, at least 1 so that no level is impossible.
#[inline]
pub fn weight(diff: u64, inv_temperature: u64) -> u32 {
    let d = diff.saturating_mul(inv_temperature) >> 16;
    if d >= MAX_DIFF {
        return 1;
    }
    let w = (u64::from(EXP_HI[(d >> 8) as usize]) * u64::from(EXP_LO[(d & 255) as usize])) >> 30;
    (w as u32).max(1)
}

fn best(logits: &[i32]) -> i64 {
    logits.iter().copied().max().map_or(0, i64::from)
}

/// Sum of the weights of all levels.
pub fn total_weight(logits: &[i32], inv_temperature: u64) -> u64 {
    let max = best(logits);
    logits.iter().map(|&l| u64::from(weight((max - i64::from(l)) as u64, inv_temperature))).sum()
}

/// Draws a level; one number from `rng`.
pub fn sample(logits: &[i32], inv_temperature: u64, rng: &mut Rng) -> u8 {
    let max = best(logits);
    let total = total_weight(logits, inv_temperature);
    // target = floor(u · total / 2^32) < total: uniform over the weights.
    let target = ((u128::from(rng.next_u32()) * u128::from(total)) >> 32) as u64;
    let mut cumulative = 0u64;
    for (level, &l) in logits.iter().enumerate() {
        cumulative += u64::from(weight((max - i64::from(l)) as u64, inv_temperature));
        if target < cumulative {
            return level as u8;
        }
    }
    (logits.len().saturating_sub(1)) as u8
}

/// `log p(level)` in nats under the integer distribution at temperature 1.
pub fn log_probability(logits: &[i32], level: usize) -> f64 {
    let max = best(logits);
    let w = weight((max - i64::from(logits[level])) as u64, 1 << 16);
    libm::log(f64::from(w)) - libm::log(total_weight(logits, 1 << 16) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::from_seed;

    #[test]
    fn probabilities_match_float_softmax() {
        let logits_f = [0.3f64, -1.2, 2.0, 0.0, -9.5];
        let logits: [i32; 5] = core::array::from_fn(|i| (logits_f[i] * 256.0).round() as i32);
        let z: f64 = logits_f.iter().map(|l| l.exp()).sum();
        for (k, l) in logits_f.iter().enumerate() {
            let want = l - z.ln();
            assert!((log_probability(&logits, k) - want).abs() < 1e-3, "level {k}");
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0, 256, -256];
        let mut rng = from_seed(9);
        let mut counts = [0usize; 3];
        let n = 30_000;
        for _ in 0..n {
            counts[usize::from(sample(&logits, 1 << 16, &mut rng))] += 1;
        }
        let z: f64 = [0.0f64, 1.0, -1.0].iter().map(|l| l.exp()).sum();
        for (k, l) in [0.0f64, 1.0, -1.0].iter().enumerate() {
            let p = l.exp() / z;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((counts[k] as f64 / n as f64 - p).abs() < 5.0 * sd, "level {k}");
        }
    }

    #[test]
    fn temperature_sharpens_and_flattens() {
        let logits = [0, 100];
        let cold = inverse_temperature(0.01).unwrap();
        let hot = inverse_temperature(100.0).unwrap();
        assert_eq!(weight(100, cold), 1);
        assert!(weight(100, hot) > (1 << 30) - (1 << 22));
        let mut rng = from_seed(1);
        assert!((0..1000).all(|_| sample(&logits, cold, &mut rng) == 1));
        for t in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(inverse_temperature(t), Err(Error::InvalidTemperature));
        }
    }

    #[test]
    fn extreme_logits_do_not_overflow() {
        let logits = [i32::MIN, i32::MAX, 0];
        let mut rng = from_seed(2);
        assert_eq!(sample(&logits, inverse_temperature(1e-30).unwrap(), &mut rng), 1);
        assert!(log_probability(&logits, 0).is_finite());
    }
}
