//! Lockstep batches: several images advance pixel by pixel together, so
//! that each weight row the int8 kernels load serves every image of the
//! batch ([`crate::kernels::Resolved::matmul_i8`]) instead of one.
//!
//! Each image ("lane") keeps its own class and random stream, and its own
//! caches in its part of the state buffer, so an image comes out the same
//! bits whether it is drawn alone with [`crate::IncrementalI8`] or in any
//! lane of any batch. The raster-order protocol is that of
//! [`crate::Raster`], for every lane at once.

use super::gated_int8::GatedInt8;
use crate::arch::Arch;
use crate::error::Error;
use crate::exec::raster::{compute, Network, Stage};
use crate::int8::softmax::{inverse_temperature, sample};
use crate::quant::weights::QuantWeights;
use crate::rng::Rng;
use crate::state::check_class;

/// An int8 executor for a batch of images in lockstep, in a caller-provided
/// buffer of [`LockstepI8::state_words`] words; no heap.
///
/// # Examples
/// ```
/// # #[cfg(feature = "alloc")] {
/// use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
/// use pixelcnn_runtime::quant::{lockstep, LockstepI8};
/// use pixelcnn_runtime::random_weights::random_params;
/// use pixelcnn_runtime::{rng, Arch, Weights};
///
/// let arch = Arch { channels: 4, head: 4, blocks: 1, ..Arch::MNIST_GATED };
/// let params = random_params(&arch, 7);
/// let weights = Weights::new(arch, &params)?;
/// let images = [(vec![1u8; arch.pixels()], Some(0)), (vec![0u8; arch.pixels()], Some(1))];
/// let cal = Calibration::measure(&weights, &images, String::new(), || {})?;
/// let model = quantize(&weights, &cal)?;
/// let q = model.view()?;
/// // Three images at once, each with its own class and stream.
/// let classes = [Some(1), Some(2), Some(3)];
/// let mut state = vec![0i32; LockstepI8::state_words(&arch, classes.len())];
/// let mut batch = LockstepI8::new(&q, &mut state, &classes)?;
/// let mut rngs = [rng::from_seed(1), rng::from_seed(2), rng::from_seed(3)];
/// let mut out = vec![0u8; classes.len() * arch.pixels()];
/// lockstep::generate(&mut batch, &classes, 1.0, &mut rngs, &mut out)?;
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LockstepI8<'m, 'b> {
    net: GatedInt8<'m, 'b>,
    pos: usize,
    stage: Stage,
}

impl<'m, 'b> LockstepI8<'m, 'b> {
    /// i32 words of state for `lanes` images: `lanes` times
    /// [`Arch::quant_state_words`] (saturating).
    pub const fn state_words(arch: &Arch, lanes: usize) -> usize {
        arch.quant_state_words().saturating_mul(lanes)
    }

    /// i32 words of state for `lanes` images with whole-row vertical
    /// products ([`Arch::quant_state_words_whole_rows`], for hosts).
    pub const fn state_words_whole_rows(arch: &Arch, lanes: usize) -> usize {
        arch.quant_state_words_whole_rows().saturating_mul(lanes)
    }

    /// A batch of `classes.len()` images at pixel 0, image `b` of class
    /// `classes[b]`.
    ///
    /// # Errors
    /// [`Error::LaneCount`] for an empty batch, [`Error::BufferTooSmall`],
    /// label errors.
    pub fn new(
        weights: &'m QuantWeights<'m>,
        buffer: &'b mut [i32],
        classes: &[Option<usize>],
    ) -> Result<Self, Error> {
        if classes.is_empty() {
            return Err(Error::LaneCount { expected: 0, found: 0 });
        }
        let net = GatedInt8::with_lanes(weights, buffer, classes.len())?;
        let mut batch = LockstepI8 { net, pos: 0, stage: Stage::Pending };
        batch.restart(classes)?;
        Ok(batch)
    }

    /// Number of images in the batch.
    pub fn lanes(&self) -> usize {
        self.net.lanes()
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        self.net.arch()
    }

    /// Starts new images, image `b` of class `classes[b]`.
    ///
    /// # Errors
    /// [`Error::LaneCount`] unless there is one class per image; label
    /// errors (nothing is changed then).
    pub fn restart(&mut self, classes: &[Option<usize>]) -> Result<(), Error> {
        self.check_lanes(classes.len())?;
        for &class in classes {
            check_class(self.net.arch(), class)?;
        }
        for (b, &class) in classes.iter().enumerate() {
            self.net.fold_class_of(b, class);
        }
        self.pos = 0;
        self.stage = Stage::Pending;
        Ok(())
    }

    /// Raster index of the next pixel of every image.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every pixel has been pushed.
    pub fn is_complete(&self) -> bool {
        self.pos >= self.arch().pixels()
    }

    /// Image `lane`'s logits for the current pixel (int32, 1/256 nat). The
    /// first call at a pixel computes every image's; later calls read them.
    ///
    /// # Errors
    /// [`Error::LaneCount`] for a lane outside the batch;
    /// [`Error::ImageComplete`] after the last pixel.
    pub fn logits(&mut self, lane: usize) -> Result<&[i32], Error> {
        if lane >= self.lanes() {
            return Err(Error::LaneCount { expected: self.lanes(), found: lane + 1 });
        }
        self.compute_logits()?;
        Ok(self.net.logits_of(lane))
    }

    /// Sets the current pixel of image `b` to `levels[b]` and moves on.
    ///
    /// # Errors
    /// [`Error::LaneCount`], [`Error::LevelOutOfRange`] (nothing is changed
    /// then), [`Error::ImageComplete`].
    pub fn push(&mut self, levels: &[u8]) -> Result<(), Error> {
        self.check_lanes(levels.len())?;
        let k = self.arch().levels;
        if let Some(&level) = levels.iter().find(|&&l| usize::from(l) >= k) {
            return Err(Error::LevelOutOfRange { pixel: self.pos, level, levels: k });
        }
        self.advance(|b| levels[b])
    }

    /// Draws the current pixel of every image from its own stream and
    /// pushes it; image `b`'s level goes to `out[b]`. One number is taken
    /// from each stream, as [`crate::sampler::generate`] takes.
    ///
    /// # Errors
    /// [`Error::LaneCount`], [`Error::InvalidTemperature`],
    /// [`Error::ImageComplete`].
    pub fn sample(
        &mut self,
        temperature: f32,
        rngs: &mut [Rng],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.check_lanes(rngs.len())?;
        self.check_lanes(out.len())?;
        let inv = inverse_temperature(temperature)?;
        self.compute_logits()?;
        for (b, (rng, level)) in rngs.iter_mut().zip(out.iter_mut()).enumerate() {
            *level = sample(self.net.logits_of(b), inv, rng);
        }
        self.advance(|b| out[b])
    }

    fn check_lanes(&self, found: usize) -> Result<(), Error> {
        if found != self.lanes() {
            return Err(Error::LaneCount { expected: self.lanes(), found });
        }
        Ok(())
    }

    /// The current pixel's hidden state of every image; every later pixel
    /// reads it, logits or not.
    fn hidden(&mut self) -> Result<(), Error> {
        compute(&mut self.net, self.pos, &mut self.stage, Stage::Hidden)
    }

    fn compute_logits(&mut self) -> Result<(), Error> {
        compute(&mut self.net, self.pos, &mut self.stage, Stage::Logits)
    }

    /// Stores `level_of(b)` in every image `b` (levels already checked) and
    /// moves to the next pixel.
    fn advance(&mut self, level_of: impl Fn(usize) -> u8) -> Result<(), Error> {
        self.hidden()?;
        let width = self.arch().width;
        let (i, j) = (self.pos / width, self.pos % width);
        for b in 0..self.lanes() {
            self.net.store_of(b, i, j, level_of(b));
        }
        self.pos += 1;
        self.stage = Stage::Pending;
        Ok(())
    }
}

/// Samples one image per lane, image `b` of class `classes[b]` from stream
/// `rngs[b]`, into `images[b · pixels ..][..pixels]`: the same images as
/// [`crate::sampler::generate`] draws one at a time with the same classes
/// and streams.
///
/// # Errors
/// [`Error::LaneCount`] unless there is one class and one stream per image,
/// [`Error::ImageSize`] unless `images` holds one image per lane, label and
/// temperature errors.
pub fn generate(
    batch: &mut LockstepI8<'_, '_>,
    classes: &[Option<usize>],
    temperature: f32,
    rngs: &mut [Rng],
    images: &mut [u8],
) -> Result<(), Error> {
    let (lanes, pixels) = (batch.lanes(), batch.arch().pixels());
    batch.check_lanes(rngs.len())?;
    if images.len() != lanes * pixels {
        return Err(Error::ImageSize { expected: lanes * pixels, found: images.len() });
    }
    let inv = inverse_temperature(temperature)?;
    batch.restart(classes)?;
    for pos in 0..pixels {
        batch.compute_logits()?;
        for (b, rng) in rngs.iter_mut().enumerate() {
            images[b * pixels + pos] = sample(batch.net.logits_of(b), inv, rng);
        }
        batch.advance(|b| images[b * pixels + pos])?;
    }
    Ok(())
}
