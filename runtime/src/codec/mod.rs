//! Lossless compression of images with the int8 model as the entropy model:
//! each pixel is coded with the probabilities the integer-only executor
//! gives it ([`frequencies`], from the same exponential tables sampling
//! uses), by the range coder of [`range`]. Encoding is one scoring pass,
//! decoding one sampling pass that reads the coder instead of a random
//! stream. The int8 path computes the same integers on every target, so an
//! image coded on one machine decodes on any other. No heap.
//!
//! A stream is: the class (for a class-conditional model), coded as one of
//! `classes` equally likely symbols, then the pixels in raster order.

pub mod container;
pub mod range;

use crate::error::Error;
use crate::int8::softmax::weight;
use crate::quant::IncrementalI8;
use range::{Decoder, Encoder, MAX_TOTAL};

/// Most levels a model may have (`u8` pixels).
const MAX_LEVELS: usize = 256;

/// The coder's frequencies of the levels for int8 `logits`: the integer
/// softmax weights at temperature 1 ([`crate::int8::softmax::weight`]),
/// scaled to a total of at most [`range::MAX_TOTAL`], each at least 1 so
/// that every level can be coded. Returns the total.
///
/// # Panics
/// If `freqs` is shorter than `logits`, or there are more than 256 levels.
pub fn frequencies(logits: &[i32], freqs: &mut [u32]) -> u32 {
    assert!(logits.len() <= MAX_LEVELS && freqs.len() >= logits.len(), "codec frequencies");
    let max = logits.iter().copied().max().map_or(0, i64::from);
    let unit = 1u64 << 16;
    let w = |l: i32| u64::from(weight((max - i64::from(l)) as u64, unit));
    let sum: u64 = logits.iter().map(|&l| w(l)).sum();
    // One for every level, the rest shared in proportion: the total stays
    // within MAX_TOTAL whatever the rounding.
    let spare = u64::from(MAX_TOTAL) - logits.len() as u64;
    let mut total = 0;
    for (f, &l) in freqs.iter_mut().zip(logits) {
        *f = 1 + (w(l) * spare / sum) as u32;
        total += *f;
    }
    total
}

/// Cumulative frequency of the levels below `level`.
fn cumulative(freqs: &[u32], level: usize) -> u32 {
    freqs[..level].iter().sum()
}

/// Compresses `image` (levels in raster order) of class `class` into `out`;
/// returns the stream's length in bytes.
///
/// # Errors
/// [`Error::ImageSize`], [`Error::LevelOutOfRange`], label errors,
/// [`Error::OutputFull`].
pub fn encode(
    exec: &mut IncrementalI8<'_, '_>,
    class: Option<usize>,
    image: &[u8],
    out: &mut [u8],
) -> Result<usize, Error> {
    encode_scored(exec, class, image, out, None)
}

/// [`encode`], also adding the image's negative log-likelihood under the
/// model (nats, as [`crate::sampler::log_likelihood`] scores it) to `nll`.
///
/// # Errors
/// As [`encode`].
pub fn encode_scored(
    exec: &mut IncrementalI8<'_, '_>,
    class: Option<usize>,
    image: &[u8],
    out: &mut [u8],
    mut nll: Option<&mut f64>,
) -> Result<usize, Error> {
    let arch = *exec.arch();
    if image.len() != arch.pixels() {
        return Err(Error::ImageSize { expected: arch.pixels(), found: image.len() });
    }
    exec.restart(class)?;
    let mut enc = Encoder::new(out);
    if let Some(c) = class {
        enc.encode(c as u32, 1, arch.classes as u32);
    }
    let mut freqs = [0u32; MAX_LEVELS];
    for (pixel, &level) in image.iter().enumerate() {
        let k = usize::from(level);
        if k >= arch.levels {
            return Err(Error::LevelOutOfRange { pixel, level, levels: arch.levels });
        }
        let logits = exec.logits()?;
        if let Some(nll) = nll.as_deref_mut() {
            *nll -= crate::int8::softmax::log_probability(logits, k);
        }
        let total = frequencies(logits, &mut freqs);
        enc.encode(cumulative(&freqs, k), freqs[k], total);
        exec.push(level)?;
    }
    enc.finish()
}

/// Compresses `image` under the class that gives the shortest stream (every
/// class is tried; an unconditional model has none). Returns the length and
/// the class.
///
/// # Errors
/// As [`encode`].
pub fn encode_best_class(
    exec: &mut IncrementalI8<'_, '_>,
    image: &[u8],
    out: &mut [u8],
) -> Result<(usize, Option<usize>), Error> {
    let classes = exec.arch().classes;
    if classes == 0 {
        return Ok((encode(exec, None, image, out)?, None));
    }
    let mut best: Option<(usize, usize)> = None;
    for c in 0..classes {
        let len = match encode(exec, Some(c), image, out) {
            Ok(len) => len,
            Err(Error::OutputFull { needed, .. }) => needed,
            Err(e) => return Err(e),
        };
        if best.is_none_or(|(l, _)| len < l) {
            best = Some((len, c));
        }
    }
    let class = best.map(|(_, c)| c);
    Ok((encode(exec, class, image, out)?, class))
}

/// Decompresses one stream into `image`; returns its class.
///
/// Any bytes decode to some image of the model's size (a range decoder
/// cannot tell a damaged stream): check the container's checksum before
/// trusting one, as [`crate::codec`]'s container format does.
///
/// # Errors
/// [`Error::ImageSize`].
pub fn decode(
    exec: &mut IncrementalI8<'_, '_>,
    bytes: &[u8],
    image: &mut [u8],
) -> Result<Option<usize>, Error> {
    let arch = *exec.arch();
    if image.len() != arch.pixels() {
        return Err(Error::ImageSize { expected: arch.pixels(), found: image.len() });
    }
    let mut dec = Decoder::new(bytes);
    let class = match arch.classes {
        0 => None,
        n => {
            let c = dec.target(n as u32);
            dec.consume(c, 1);
            Some(c as usize)
        }
    };
    exec.restart(class)?;
    let mut freqs = [0u32; MAX_LEVELS];
    for pixel in image.iter_mut() {
        let total = frequencies(exec.logits()?, &mut freqs);
        let target = dec.target(total);
        let (mut level, mut cum) = (0usize, 0u32);
        while cum + freqs[level] <= target {
            cum += freqs[level];
            level += 1;
        }
        dec.consume(cum, freqs[level]);
        *pixel = level as u8;
        exec.push(*pixel)?;
    }
    Ok(class)
}
