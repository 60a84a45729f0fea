//! Sampling, completion and scoring over any incremental executor.
//!
//! Nothing here allocates: the executor's state is the caller's buffer and the
//! image is the caller's slice.

use crate::arch::Arch;
use crate::error::Error;
use crate::rng::{uniform_f32, Rng};
use crate::state::check_temperature;

/// A network evaluated pixel by pixel in raster order: the one incremental
/// executor, [`crate::exec::raster::Raster`], over any network, and
/// [`crate::Executor`], which holds one of them.
pub trait PixelExecutor {
    /// The architecture.
    fn arch(&self) -> &Arch;
    /// Starts a new image of class `class`.
    ///
    /// # Errors
    /// Label errors.
    fn restart(&mut self, class: Option<usize>) -> Result<(), Error>;
    /// Raster index of the next pixel.
    fn position(&self) -> usize;
    /// Sets the current pixel to `level` and moves on.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`], [`Error::ImageComplete`].
    fn push(&mut self, level: u8) -> Result<(), Error>;
    /// Draws the current pixel from `softmax(logits / temperature)`, taking
    /// one number from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`], [`Error::ImageComplete`].
    fn sample(&mut self, temperature: f32, rng: &mut Rng) -> Result<u8, Error>;
    /// `log p(level)` of the current pixel, in nats.
    ///
    /// # Errors
    /// [`Error::ImageComplete`].
    fn log_probability(&mut self, level: u8) -> Result<f64, Error>;
}

/// Draws a level from `softmax(logits / temperature)`.
///
/// One uniform number is drawn per call, so a seed fixes the whole image.
/// Levels with zero probability after rounding are never returned.
///
/// # Errors
/// [`Error::InvalidTemperature`] unless `temperature` is finite and above 0.
pub fn sample_level(logits: &[f32], temperature: f32, rng: &mut Rng) -> Result<u8, Error> {
    check_temperature(temperature)?;
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weight = |l: f32| libm::expf((l - max) / temperature);
    let total: f32 = logits.iter().map(|&l| weight(l)).sum();
    let target = uniform_f32(rng) * total;
    let mut cumulative = 0.0f32;
    let mut last_possible = 0;
    for (level, &l) in logits.iter().enumerate() {
        let w = weight(l);
        if w > 0.0 {
            last_possible = level;
        }
        cumulative += w;
        if target < cumulative {
            return Ok(level as u8);
        }
    }
    // Rounding left `target` at or above the running sum.
    Ok(last_possible as u8)
}

/// `log softmax(logits)[level]`, in nats.
pub fn log_probability(logits: &[f32], level: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| libm::exp(f64::from(l - max))).sum();
    f64::from(logits[level] - max) - libm::log(sum)
}

/// Generates a whole image into `out` (levels, raster order), restarting
/// `inc` with `class`.
///
/// # Errors
/// [`Error::ImageSize`] when `out` does not hold one image, label and
/// temperature errors.
pub fn generate<E: PixelExecutor + ?Sized>(
    inc: &mut E,
    class: Option<usize>,
    temperature: f32,
    rng: &mut Rng,
    out: &mut [u8],
) -> Result<(), Error> {
    complete(inc, class, temperature, rng, out, &[])
}

/// Completes `image`: pixels whose `known` flag is set are kept, the others
/// are sampled. An empty `known` means nothing is known (plain generation).
///
/// # Errors
/// [`Error::ImageSize`] when `image` or a non-empty `known` is not one image,
/// [`Error::LevelOutOfRange`] for a known pixel, label and temperature errors.
pub fn complete<E: PixelExecutor + ?Sized>(
    inc: &mut E,
    class: Option<usize>,
    temperature: f32,
    rng: &mut Rng,
    image: &mut [u8],
    known: &[bool],
) -> Result<(), Error> {
    check_temperature(temperature)?;
    let pixels = inc.arch().pixels();
    for len in [image.len(), if known.is_empty() { pixels } else { known.len() }] {
        if len != pixels {
            return Err(Error::ImageSize { expected: pixels, found: len });
        }
    }
    inc.restart(class)?;
    for (pos, pixel) in image.iter_mut().enumerate() {
        if !known.get(pos).copied().unwrap_or(false) {
            *pixel = inc.sample(temperature, rng)?;
        }
        inc.push(*pixel)?;
    }
    Ok(())
}

/// Log-likelihood of `image` under the model, in nats (natural log), summed
/// over all pixels, in one incremental pass.
///
/// # Errors
/// [`Error::ImageSize`], [`Error::LevelOutOfRange`] and label errors.
pub fn log_likelihood<E: PixelExecutor + ?Sized>(
    inc: &mut E,
    class: Option<usize>,
    image: &[u8],
) -> Result<f64, Error> {
    let pixels = inc.arch().pixels();
    if image.len() != pixels {
        return Err(Error::ImageSize { expected: pixels, found: image.len() });
    }
    inc.restart(class)?;
    let mut total = 0.0f64;
    for &level in image {
        let levels = inc.arch().levels;
        if usize::from(level) >= levels {
            return Err(Error::LevelOutOfRange { pixel: inc.position(), level, levels });
        }
        total += inc.log_probability(level)?;
        inc.push(level)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::from_seed;

    #[test]
    fn sampling_follows_the_distribution() {
        let logits = [0.0f32, 1.0, -1.0];
        let mut rng = from_seed(1);
        let mut counts = [0usize; 3];
        let n = 30_000;
        for _ in 0..n {
            counts[usize::from(sample_level(&logits, 1.0, &mut rng).unwrap())] += 1;
        }
        let z: f64 = logits.iter().map(|&l| f64::from(l).exp()).sum();
        for (k, &c) in counts.iter().enumerate() {
            let p = f64::from(logits[k]).exp() / z;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((c as f64 / n as f64 - p).abs() < 5.0 * sd, "level {k}: {c}");
        }
    }

    #[test]
    fn low_temperature_picks_the_mode() {
        let mut rng = from_seed(2);
        for _ in 0..1000 {
            assert_eq!(sample_level(&[0.0, 0.5, 0.4], 0.01, &mut rng).unwrap(), 1);
        }
    }

    #[test]
    fn bad_temperatures_are_refused() {
        let mut rng = from_seed(3);
        for t in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert_eq!(sample_level(&[0.0, 1.0], t, &mut rng), Err(Error::InvalidTemperature));
        }
    }

    #[test]
    fn log_probability_normalises() {
        let logits = [0.3f32, -1.2, 2.0, 0.0];
        let total: f64 = (0..4).map(|k| log_probability(&logits, k).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
    }
}
