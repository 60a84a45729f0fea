//! The one incremental executor: the raster-order protocol every network
//! follows, whatever its variant and precision.
//!
//! [`Raster`] owns what is the same for all of them: the class, the position,
//! how far the current pixel is computed (`Stage`), when the per-row caches
//! are refreshed (at the first pixel of a row), that a pixel's hidden state
//! is computed before it is pushed (later pixels read it), that logits are
//! computed once per pixel, and the checks on labels, levels and the end of
//! the image. A [`Network`] is the rest: its caches and the arithmetic that
//! fills them. Three implement it, the only three there are (the trait is
//! sealed):
//!
//! | network | name of the executor | logits |
//! |---|---|---|
//! | [`crate::exec::gated::GatedFloat`] (f32 or f16 weights) | [`crate::Incremental`] | f32 |
//! | [`crate::quant::GatedInt8`] (integer only) | [`crate::IncrementalI8`] | i32, 1/256 nat |
//! | [`crate::exec::plain::PlainFloat`] (f32 or f16 weights) | [`crate::PlainIncremental`] | f32 |
//!
//! Like heapless's `Vec` over one `VecInner`, the executors are names for
//! `Raster<N>`; the protocol, and the [`PixelExecutor`] implementation that
//! sampling, completion and scoring use, exist once.

use crate::arch::Arch;
use crate::error::Error;
use crate::rng::Rng;
use crate::sampler::PixelExecutor;
use crate::state::check_class;

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A network in one precision, as [`Raster`] drives it: the caches and the
/// arithmetic of one pixel. Sealed: the runtime's three networks are the only
/// ones (see the module docs).
pub trait Network: Sealed {
    /// One logit.
    type Logit: Logit;
    /// The architecture.
    fn arch(&self) -> &Arch;
    /// Folds the class (already checked against the model) into the biases.
    fn fold_class(&mut self, class: Option<usize>);
    /// At the first pixel of row `i`, before [`Network::pixel`]: the caches
    /// computed once per row (the vertical stack of row `i - 1`).
    fn row(&mut self, i: usize);
    /// The hidden state of pixel `(i, j)`, from the caches and the pixels
    /// stored so far.
    fn pixel(&mut self, i: usize, j: usize);
    /// The head over the current pixel's hidden state; fills the logits.
    fn head(&mut self);
    /// The logits the last [`Network::head`] computed.
    fn logits(&self) -> &[Self::Logit];
    /// Stores `level` as the value of pixel `(i, j)`.
    fn store(&mut self, i: usize, j: usize, level: u8);
}

/// A logit type, and the softmax that samples and scores it: f32 for the
/// float networks, i32 in units of 1/256 nat for int8. Sealed.
pub trait Logit: Copy + Sealed {
    /// Draws a level from `softmax(logits / temperature)`, taking one number
    /// from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidTemperature`].
    fn sample(logits: &[Self], temperature: f32, rng: &mut Rng) -> Result<u8, Error>;
    /// `log softmax(logits)[level]`, in nats.
    fn log_probability(logits: &[Self], level: usize) -> f64;
}

impl Sealed for f32 {}

impl Logit for f32 {
    fn sample(logits: &[f32], temperature: f32, rng: &mut Rng) -> Result<u8, Error> {
        crate::sampler::sample_level(logits, temperature, rng)
    }
    fn log_probability(logits: &[f32], level: usize) -> f64 {
        crate::sampler::log_probability(logits, level)
    }
}

// i32 logits (int8, 1/256 nat) implement it in `int8::softmax`.

/// How far the current pixel has been computed (here and in
/// [`crate::quant::LockstepI8`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Nothing for the current pixel yet.
    Pending,
    /// The hidden state of the current pixel (enough to move on).
    Hidden,
    /// The hidden state and the logits.
    Logits,
}

/// The incremental executor over network `N`: one pixel at a time in raster
/// order, each activation computed once. See the module docs.
#[derive(Debug)]
pub struct Raster<N> {
    net: N,
    class: Option<usize>,
    pos: usize,
    stage: Stage,
}

impl<N: Network> Raster<N> {
    /// An executor over `net` at pixel 0 of a new image of class `class`.
    pub(crate) fn start(net: N, class: Option<usize>) -> Result<Self, Error> {
        let mut raster = Raster { net, class: None, pos: 0, stage: Stage::Pending };
        raster.restart(class)?;
        Ok(raster)
    }

    /// Starts a new image of class `class`, folding the class into the biases.
    ///
    /// # Errors
    /// [`Error::MissingLabel`], [`Error::LabelOutOfRange`] or
    /// [`Error::UnconditionalModel`] when the label does not fit the model.
    pub fn restart(&mut self, class: Option<usize>) -> Result<(), Error> {
        check_class(self.net.arch(), class)?;
        self.net.fold_class(class);
        self.class = class;
        self.pos = 0;
        self.stage = Stage::Pending;
        Ok(())
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        self.net.arch()
    }

    /// The class label of the current image.
    pub fn class(&self) -> Option<usize> {
        self.class
    }

    /// Raster index of the next pixel to produce.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every pixel has been pushed.
    pub fn is_complete(&self) -> bool {
        self.pos >= self.arch().pixels()
    }

    /// Logits over the K levels for the current pixel, given every pixel
    /// pushed so far. Computed once per pixel; later calls return the cache.
    ///
    /// # Errors
    /// [`Error::ImageComplete`] after the last pixel.
    pub fn logits(&mut self) -> Result<&[N::Logit], Error> {
        compute(&mut self.net, self.pos, &mut self.stage, Stage::Logits)?;
        Ok(self.net.logits())
    }

    /// Sets the current pixel to `level` and moves to the next one.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`] when `level >= K`; [`Error::ImageComplete`]
    /// after the last pixel.
    pub fn push(&mut self, level: u8) -> Result<(), Error> {
        let arch = *self.arch();
        if usize::from(level) >= arch.levels {
            return Err(Error::LevelOutOfRange { pixel: self.pos, level, levels: arch.levels });
        }
        // Later pixels read this pixel's hidden state from the caches,
        // whether or not anybody asked for its logits.
        self.hidden()?;
        self.net.store(self.pos / arch.width, self.pos % arch.width, level);
        self.pos += 1;
        self.stage = Stage::Pending;
        Ok(())
    }

    fn hidden(&mut self) -> Result<(), Error> {
        compute(&mut self.net, self.pos, &mut self.stage, Stage::Hidden)
    }
}

/// Brings the pixel at raster index `pos` of `net` from `stage` up to
/// `goal` (the hidden state, or the logits too): the per-row step at a
/// row's first pixel, then the pixel, then the head; what is done is not
/// redone. Shared by [`Raster`] and [`crate::quant::LockstepI8`].
///
/// # Errors
/// [`Error::ImageComplete`] past the last pixel.
pub(crate) fn compute<N: Network>(
    net: &mut N,
    pos: usize,
    stage: &mut Stage,
    goal: Stage,
) -> Result<(), Error> {
    let arch = *net.arch();
    if pos >= arch.pixels() {
        return Err(Error::ImageComplete);
    }
    if *stage == Stage::Pending {
        let (i, j) = (pos / arch.width, pos % arch.width);
        if j == 0 {
            net.row(i);
        }
        net.pixel(i, j);
        *stage = Stage::Hidden;
    }
    if goal == Stage::Logits && *stage != Stage::Logits {
        net.head();
        *stage = Stage::Logits;
    }
    Ok(())
}

impl<N: Network> PixelExecutor for Raster<N> {
    fn arch(&self) -> &Arch {
        Raster::arch(self)
    }
    fn restart(&mut self, class: Option<usize>) -> Result<(), Error> {
        Raster::restart(self, class)
    }
    fn position(&self) -> usize {
        Raster::position(self)
    }
    fn push(&mut self, level: u8) -> Result<(), Error> {
        Raster::push(self, level)
    }
    fn sample(&mut self, temperature: f32, rng: &mut Rng) -> Result<u8, Error> {
        N::Logit::sample(self.logits()?, temperature, rng)
    }
    fn log_probability(&mut self, level: u8) -> Result<f64, Error> {
        Ok(N::Logit::log_probability(self.logits()?, usize::from(level)))
    }
}

/// Checks that a state buffer holds `needed` words.
pub(crate) fn check_buffer(needed: usize, found: usize) -> Result<(), Error> {
    if found < needed {
        return Err(Error::BufferTooSmall { needed, found });
    }
    Ok(())
}

/// Cuts `n` elements of `T` off the front of a state buffer of 32-bit words
/// (a whole number of words; the executors' layouts count them this way).
pub(crate) fn take<'b, T: bytemuck::Pod, W: bytemuck::Pod>(
    buf: &mut &'b mut [W],
    n: usize,
) -> &'b mut [T] {
    let words = (n * core::mem::size_of::<T>()).div_ceil(core::mem::size_of::<W>());
    let (head, rest) = core::mem::take(buf).split_at_mut(words);
    *buf = rest;
    &mut bytemuck::cast_slice_mut::<W, T>(head)[..n]
}

/// The kernel columns `kx0..kx1` of a `k`-wide kernel of radius `r` centred
/// on column `x` that land inside an image `width` wide.
#[inline]
pub(crate) fn columns_inside(r: usize, k: usize, width: usize, x: usize) -> (usize, usize) {
    (r.saturating_sub(x), k.min(width + r - x))
}

/// [`shift_window`] for a window of exactly two positions of `N` channels;
/// `false` (nothing done) for any other shape.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline]
fn shift_pair<T: Copy + Default, const N: usize>(
    window: &mut [T],
    newest: &[T],
    column: usize,
) -> bool {
    let (Some((old, new)), Ok(newest)) =
        (window.split_at_mut_checked(N), <&[T; N]>::try_from(newest))
    else {
        return false;
    };
    let (Ok(old), Ok(new)) = (<&mut [T; N]>::try_from(old), <&mut [T; N]>::try_from(new)) else {
        return false;
    };
    *old = if column == 0 { [T::default(); N] } else { *new };
    *new = *newest;
    true
}

/// Moves a horizontal left window one pixel on: `newest` (one position's
/// channels) enters on the right. At column 0 the window starts over with
/// zeros, which stand for the positions left of the image.
#[inline]
pub(crate) fn shift_window<T: Copy + Default>(window: &mut [T], newest: &[T], column: usize) {
    // Windows of two positions of 16, 32 or 64 channels (the 3-wide
    // layers' left kernels) as whole arrays: vector moves the compiler
    // inlines, not two library calls per layer and pixel (1.6% of a digit
    // on x86_64). Not on MCUs, whose inlined moves are longer than the
    // library's (+0.26% instructions, +1 KB of flash on the Cortex-M4).
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    if shift_pair::<T, 16>(window, newest, column)
        || shift_pair::<T, 32>(window, newest, column)
        || shift_pair::<T, 64>(window, newest, column)
    {
        return;
    }
    let channels = newest.len();
    if column == 0 {
        window.fill(T::default());
    } else {
        window.copy_within(channels.., 0);
    }
    let len = window.len();
    window[len - channels..].copy_from_slice(newest);
}
