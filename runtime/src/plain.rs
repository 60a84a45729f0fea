//! Incremental execution of the plain (masked-convolution) PixelCNN.
//!
//! A masked convolution only reads rows above and pixels to the left (mask
//! A) or to the left and the centre (mask B), so each layer's output at a
//! pixel can be computed once, when that pixel is reached, from outputs
//! already computed. The executor keeps, per layer, a ring of the last
//! `r + 1` rows of that layer's *input* (the image for layer 0, ReLU of the
//! previous layer after that) and computes one column of the whole network
//! per pixel: O(1) work per pixel, the same as one pixel of a full pass.
//! This is the per-layer caching of Fast PixelCNN++ (Ramachandran et al.,
//! 2017) applied to the plain stack; results equal
//! [`crate::reference::forward`] to float rounding.

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::incremental::Stage;
use crate::kernels::relu_f32;
use crate::params::{Param, TensorKind, Weights};
use crate::state::{check_class, PlainLayout};

/// The incremental executor of a plain PixelCNN, with f32 or f16 weights.
///
/// The same protocol as [`crate::Incremental`]: [`PlainIncremental::logits`]
/// for the current pixel, then [`PlainIncremental::push`] its value.
#[derive(Debug)]
pub struct PlainIncremental<'m, 'b, T: Param = f32> {
    weights: &'m Weights<'m, T>,
    class: Option<usize>,
    pos: usize,
    stage: Stage,
    rings: &'b mut [f32],
    biases: &'b mut [f32],
    current: &'b mut [f32],
    acc: &'b mut [f32],
    head: &'b mut [f32],
    logits: &'b mut [f32],
}

impl<'m, 'b, T: Param> PlainIncremental<'m, 'b, T> {
    /// An executor at pixel 0 of a new image of class `class`, with its
    /// state in `buffer` ([`Arch::state_len`] elements).
    ///
    /// # Errors
    /// [`Error::NeedsPlain`] for a Gated PixelCNN, [`Error::BufferTooSmall`],
    /// label errors.
    pub fn new(
        weights: &'m Weights<'m, T>,
        buffer: &'b mut [f32],
        class: Option<usize>,
    ) -> Result<Self, Error> {
        let arch = *weights.arch();
        if arch.variant != Variant::Plain {
            return Err(Error::NeedsPlain);
        }
        let layout = PlainLayout::checked(&arch).ok_or(crate::ArchError::TooLarge)?;
        let needed = layout.total();
        if buffer.len() < needed {
            return Err(Error::BufferTooSmall { needed, found: buffer.len() });
        }
        let (rings, rest) = buffer.split_at_mut(layout.rings);
        let (biases, rest) = rest.split_at_mut(layout.biases);
        let (current, rest) = rest.split_at_mut(arch.channels);
        let (acc, rest) = rest.split_at_mut(arch.channels);
        let (head, rest) = rest.split_at_mut(arch.head);
        let (logits, _) = rest.split_at_mut(arch.levels);
        let mut inc = PlainIncremental {
            weights,
            class: None,
            pos: 0,
            stage: Stage::Pending,
            rings,
            biases,
            current,
            acc,
            head,
            logits,
        };
        inc.restart(class)?;
        Ok(inc)
    }

    /// Starts a new image of class `class`, folding the class into the biases.
    ///
    /// # Errors
    /// Label errors, as [`crate::Incremental::restart`].
    pub fn restart(&mut self, class: Option<usize>) -> Result<(), Error> {
        let arch = *self.weights.arch();
        check_class(&arch, class)?;
        let p = arch.channels;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let b = &mut self.biases[l * p..(l + 1) * p];
            T::copy_to(b, layer.get(TensorKind::Bias));
            T::add_to(b, layer.class_row(TensorKind::Class, class, p));
        }
        self.class = class;
        self.pos = 0;
        self.stage = Stage::Pending;
        Ok(())
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        self.weights.arch()
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

    /// Logits over the K levels for the current pixel.
    ///
    /// # Errors
    /// [`Error::ImageComplete`] after the last pixel.
    pub fn logits(&mut self) -> Result<&[f32], Error> {
        if self.stage != Stage::Logits {
            self.hidden()?;
            self.compute_head();
            self.stage = Stage::Logits;
        }
        Ok(self.logits)
    }

    /// Sets the current pixel to `level` and moves to the next one.
    ///
    /// # Errors
    /// [`Error::LevelOutOfRange`], [`Error::ImageComplete`].
    pub fn push(&mut self, level: u8) -> Result<(), Error> {
        let arch = *self.arch();
        if usize::from(level) >= arch.levels {
            return Err(Error::LevelOutOfRange { pixel: self.pos, level, levels: arch.levels });
        }
        // Later pixels read this pixel's layer outputs from the rings.
        self.hidden()?;
        let (y, x) = (self.pos / arch.width, self.pos % arch.width);
        let slot = y % (arch.radius_of(0) + 1);
        self.rings[slot * arch.width + x] = f32::from(level) / (arch.levels - 1) as f32;
        self.pos += 1;
        self.stage = Stage::Pending;
        Ok(())
    }

    /// Every layer's output at the current pixel; the last one in `current`.
    fn hidden(&mut self) -> Result<(), Error> {
        if self.is_complete() {
            return Err(Error::ImageComplete);
        }
        if self.stage != Stage::Pending {
            return Ok(());
        }
        let arch = *self.arch();
        let (y, x) = (self.pos / arch.width, self.pos % arch.width);
        let p = arch.channels;
        let mut start = 0;
        for l in 0..arch.layers() {
            let (r, k, cin) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
            let rows = r + 1;
            let ring_len = rows * arch.width * cin;
            let ring = &mut self.rings[start..start + ring_len];
            if l > 0 {
                // This layer's input at the centre: ReLU of the layer below.
                let at = ((y % rows) * arch.width + x) * cin;
                ring[at..at + cin].copy_from_slice(self.current);
                relu_f32(&mut ring[at..at + cin]);
            }
            let layer = self.weights.layer(l);
            self.acc.copy_from_slice(&self.biases[l * p..(l + 1) * p]);
            let above = layer.get(TensorKind::AboveWeight);
            let left = layer.get(TensorKind::LeftWeight);
            // Mask A (layer 0) stops left of the centre, mask B includes it.
            let left_width = if l == 0 { r } else { r + 1 };
            // Kernel columns kx whose image column x - r + kx is inside the
            // image: the same for every output and row of this pixel.
            let lo = r.saturating_sub(x);
            let (hi_above, hi_left) =
                (k.min(arch.width + r - x), left_width.min(arch.width + r - x));
            for (o, acc) in self.acc.iter_mut().enumerate() {
                for ky in 0..r {
                    let Some(iy) = (y + ky).checked_sub(r) else { continue };
                    let hi = hi_above;
                    if lo >= hi {
                        continue;
                    }
                    let w0 = ((o * r + ky) * k + lo) * cin;
                    let x0 = ((iy % rows) * arch.width + x + lo - r) * cin;
                    let n = (hi - lo) * cin;
                    *acc += T::dot(&above[w0..w0 + n], &ring[x0..x0 + n]);
                }
                let hi = hi_left;
                if lo < hi {
                    let w0 = (o * left_width + lo) * cin;
                    let x0 = ((y % rows) * arch.width + x + lo - r) * cin;
                    let n = (hi - lo) * cin;
                    *acc += T::dot(&left[w0..w0 + n], &ring[x0..x0 + n]);
                }
            }
            if l == 0 {
                self.current.copy_from_slice(self.acc);
            } else {
                // The residual connection.
                for (c, a) in self.current.iter_mut().zip(self.acc.iter()) {
                    *c += a;
                }
            }
            start += ring_len;
        }
        self.stage = Stage::Hidden;
        Ok(())
    }

    fn compute_head(&mut self) {
        let head = self.weights.head();
        // `current` is this pixel's last layer output; it is not read again
        // (the next layer up does not exist), so the ReLU can be in place.
        relu_f32(self.current);
        T::copy_to(self.head, head.get(TensorKind::Head1Bias));
        T::matvec(self.head, head.get(TensorKind::Head1Weight), self.current);
        relu_f32(self.head);
        T::copy_to(self.logits, head.get(TensorKind::Head2Bias));
        T::matvec(self.logits, head.get(TensorKind::Head2Weight), self.head);
    }
}
