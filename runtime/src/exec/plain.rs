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
//! [`crate::host::reference::forward`] to float rounding.

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::exec::raster::{check_buffer, columns_inside, take, Network, Raster, Sealed};
use crate::kernels::relu_f32;
use crate::kernels::ResolvedFloat;
use crate::params::{Param, TensorKind, Weights};
use crate::state::PlainLayout;

/// The incremental executor of a plain PixelCNN, with f32 or f16 weights:
/// the one executor, [`Raster`], over [`PlainFloat`]. The same protocol as
/// [`crate::Incremental`]: `logits` for the current pixel, then `push` its
/// value.
pub type PlainIncremental<'m, 'b, T = f32> = Raster<PlainFloat<'m, 'b, T>>;

/// A plain PixelCNN's caches (a ring of input rows per layer) and float
/// arithmetic. See the module docs.
#[derive(Debug)]
pub struct PlainFloat<'m, 'b, T: Param> {
    weights: &'m Weights<'m, T>,
    rings: &'b mut [f32],
    biases: &'b mut [f32],
    current: &'b mut [f32],
    acc: &'b mut [f32],
    head: &'b mut [f32],
    logits: &'b mut [f32],
    /// The float kernel, resolved once for this executor.
    kernel: ResolvedFloat,
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
        check_buffer(layout.total(), buffer.len())?;
        let mut buf = buffer;
        let net = PlainFloat {
            weights,
            rings: take(&mut buf, layout.rings),
            biases: take(&mut buf, layout.biases),
            current: take(&mut buf, arch.channels),
            acc: take(&mut buf, arch.channels),
            head: take(&mut buf, arch.head),
            logits: take(&mut buf, arch.levels),
            kernel: ResolvedFloat::best(),
        };
        Raster::start(net, class)
    }
}

impl<T: Param> Sealed for PlainFloat<'_, '_, T> {}

impl<T: Param> Network for PlainFloat<'_, '_, T> {
    type Logit = f32;

    fn arch(&self) -> &Arch {
        self.weights.arch()
    }

    fn fold_class(&mut self, class: Option<usize>) {
        let arch = *self.weights.arch();
        let p = arch.channels;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let b = &mut self.biases[l * p..(l + 1) * p];
            T::copy_to(b, layer.get(TensorKind::Bias));
            T::add_to(b, layer.class_row(TensorKind::Class, class, p));
        }
    }

    /// Nothing is cached per row: each pixel computes its own column of
    /// every layer.
    fn row(&mut self, _i: usize) {}

    /// Every layer's output at pixel `(y, x)`; the last one in `current`.
    fn pixel(&mut self, y: usize, x: usize) {
        let arch = *self.weights.arch();
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
            let (lo, hi_above) = columns_inside(r, k, arch.width, x);
            let hi_left = left_width.min(arch.width + r - x);
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
                    *acc += T::dot_with(self.kernel, &above[w0..w0 + n], &ring[x0..x0 + n]);
                }
                let hi = hi_left;
                if lo < hi {
                    let w0 = (o * left_width + lo) * cin;
                    let x0 = ((y % rows) * arch.width + x + lo - r) * cin;
                    let n = (hi - lo) * cin;
                    *acc += T::dot_with(self.kernel, &left[w0..w0 + n], &ring[x0..x0 + n]);
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
    }

    fn head(&mut self) {
        let head = self.weights.head();
        // `current` is this pixel's last layer output; it is not read again
        // (the next layer up does not exist), so the ReLU can be in place.
        relu_f32(self.current);
        T::copy_to(self.head, head.get(TensorKind::Head1Bias));
        T::matvec_with(self.kernel, self.head, head.get(TensorKind::Head1Weight), self.current);
        relu_f32(self.head);
        T::copy_to(self.logits, head.get(TensorKind::Head2Bias));
        T::matvec_with(self.kernel, self.logits, head.get(TensorKind::Head2Weight), self.head);
    }

    fn logits(&self) -> &[f32] {
        self.logits
    }

    fn store(&mut self, i: usize, j: usize, level: u8) {
        let arch = *self.weights.arch();
        let slot = i % (arch.radius_of(0) + 1);
        self.rings[slot * arch.width + j] = f32::from(level) / (arch.levels - 1) as f32;
    }
}
