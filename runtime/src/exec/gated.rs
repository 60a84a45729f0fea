//! The incremental executor: a Gated PixelCNN evaluated one pixel at a time,
//! each activation computed exactly once.
//!
//! How the caches follow the network (raster order, pixel `(i, j)`):
//! - When row `i - 1` of the image is complete (at the first pixel of row
//!   `i`), every layer's vertical pre-activation for row `i - 1` is computed
//!   once, across the whole row. Its gated output goes into the next layer's
//!   *vertical ring* (as many rows as that layer's kernel is tall). The v→h
//!   link of the row is computed from the same pre-activation and kept: that
//!   is the down-shift, since pixel `(i, j)` reads the link of row `i - 1`.
//!   On row 0 the down-shifted input is zero, so the link is its bias alone.
//! - Each layer's horizontal stack keeps a *left window* of its input: the
//!   last `r + 1` positions of the current row, zero left of the image. One
//!   new position per pixel.
//! - Class-conditional biases are added to the layer biases once per image.
//!
//! Per pixel the work is the horizontal stack, the links' lookup and the
//! head; per row, the vertical stack. Over an image that is exactly one full
//! forward pass, against one pass *per pixel* for the naive path.
//!
//! All state lives in a caller-provided `&mut [f32]` of
//! [`Arch::state_len`] elements, so firmware can place it statically.

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::exec::raster::{
    check_buffer, columns_inside, shift_window, take, Network, Raster, Sealed,
};
use crate::kernels::ResolvedFloat;
use crate::kernels::{gate_f32, relu_f32};
use crate::params::{Param, TensorKind, Weights};
use crate::state::StateLayout;

/// The incremental executor of a Gated PixelCNN with float weights (f32 or
/// f16; f32 arithmetic): the one executor, [`Raster`], over [`GatedFloat`].
///
/// # Examples
/// ```
/// use pixelcnn_runtime::{Arch, Incremental, Weights};
/// # fn main() -> Result<(), pixelcnn_runtime::Error> {
/// let arch = Arch { height: 4, width: 4, channels: 2, blocks: 1, head: 2, ..Arch::MNIST_GATED };
/// let params = vec![0.01f32; arch.param_count()];
/// let weights = Weights::new(arch, &params)?;
/// let mut state = vec![0.0f32; arch.state_len()];
/// let mut inc = Incremental::new(&weights, &mut state, Some(3))?;
/// while !inc.is_complete() {
///     let logits = inc.logits()?;
///     let level = if logits[1] > logits[0] { 1 } else { 0 };
///     inc.push(level)?;
/// }
/// # Ok(()) }
/// ```
pub type Incremental<'m, 'b, T = f32> = Raster<GatedFloat<'m, 'b, T>>;

/// A Gated PixelCNN's caches and float arithmetic. See the module docs.
#[derive(Debug)]
pub struct GatedFloat<'m, 'b, T: Param> {
    weights: &'m Weights<'m, T>,
    image_rows: &'b mut [f32],
    vertical_rings: &'b mut [f32],
    links: &'b mut [f32],
    left_windows: &'b mut [f32],
    biases: &'b mut [f32],
    vpre: &'b mut [f32],
    hpre: &'b mut [f32],
    gated: &'b mut [f32],
    top: &'b mut [f32],
    head: &'b mut [f32],
    logits: &'b mut [f32],
    /// The float kernel, resolved once for this executor.
    kernel: ResolvedFloat,
}

impl<'m, 'b, T: Param> Incremental<'m, 'b, T> {
    /// An executor at pixel 0 of a new image of class `class`.
    ///
    /// # Errors
    /// [`Error::NeedsGated`] for a plain PixelCNN; [`Error::BufferTooSmall`]
    /// when `buffer` is shorter than [`Arch::state_len`]; label errors from
    /// [`Raster::restart`].
    pub fn new(
        weights: &'m Weights<'m, T>,
        buffer: &'b mut [f32],
        class: Option<usize>,
    ) -> Result<Self, Error> {
        let arch = *weights.arch();
        if arch.variant != Variant::Gated {
            return Err(Error::NeedsGated);
        }
        let layout = StateLayout::checked(&arch).ok_or(crate::ArchError::TooLarge)?;
        check_buffer(layout.total(), buffer.len())?;
        let p = arch.channels;
        let mut buf = buffer;
        let net = GatedFloat {
            weights,
            image_rows: take(&mut buf, layout.image_rows),
            vertical_rings: take(&mut buf, layout.vertical_rings),
            links: take(&mut buf, layout.links),
            left_windows: take(&mut buf, layout.left_windows),
            biases: take(&mut buf, layout.biases),
            vpre: take(&mut buf, arch.width * 2 * p),
            hpre: take(&mut buf, 2 * p),
            gated: take(&mut buf, p),
            top: take(&mut buf, p),
            head: take(&mut buf, arch.head),
            logits: take(&mut buf, arch.levels),
            kernel: ResolvedFloat::best(),
        };
        Raster::start(net, class)
    }
}

impl<T: Param> Sealed for GatedFloat<'_, '_, T> {}

impl<T: Param> Network for GatedFloat<'_, '_, T> {
    type Logit = f32;

    fn arch(&self) -> &Arch {
        self.weights.arch()
    }

    fn fold_class(&mut self, class: Option<usize>) {
        let arch = *self.weights.arch();
        let p2 = 2 * arch.channels;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let b = &mut self.biases[l * 2 * p2..(l + 1) * 2 * p2];
            let (bv, bh) = b.split_at_mut(p2);
            T::copy_to(bv, layer.get(TensorKind::VBias));
            T::copy_to(bh, layer.get(TensorKind::HBias));
            T::add_to(bv, layer.class_row(TensorKind::VClass, class, p2));
            T::add_to(bh, layer.class_row(TensorKind::HClass, class, p2));
        }
    }

    /// Runs the vertical stack over image row `i - 1` and fills the links that
    /// row `i` reads.
    fn row(&mut self, i: usize) {
        let arch = *self.arch();
        let (w, p) = (arch.width, arch.channels);
        let p2 = 2 * p;
        if i == 0 {
            for l in 0..arch.layers() {
                let bias = self.weights.layer(l).get(TensorKind::LinkBias);
                for x in 0..w {
                    T::copy_to(&mut self.links[(l * w + x) * p2..][..p2], bias);
                }
            }
            return;
        }
        let row = i - 1;
        let ring_rows = arch.radius_of(1) + 1;
        let ring_len = ring_rows * w * p;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let (r, k, cin) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
            let vw = layer.get(TensorKind::VWeight);
            let bias = &self.biases[l * 2 * p2..][..p2];
            // The input rows of this layer's vertical convolution.
            let (input, input_rows) = if l == 0 {
                (&*self.image_rows, r + 2)
            } else {
                (&self.vertical_rings[(l - 1) * ring_len..][..ring_len], ring_rows)
            };
            for x in 0..w {
                let out = &mut self.vpre[x * p2..][..p2];
                out.copy_from_slice(bias);
                // Kernel columns that land inside the image.
                let (kx0, kx1) = columns_inside(r, k, w, x);
                let run = (kx1 - kx0) * cin;
                let col0 = (x + kx0 - r) * cin;
                for ky in 0..=r {
                    let Some(y) = (row + ky).checked_sub(r) else {
                        continue;
                    };
                    let src = &input[(y % input_rows) * w * cin + col0..][..run];
                    for (o, acc) in out.iter_mut().enumerate() {
                        let wrow = &vw[((o * (r + 1) + ky) * k + kx0) * cin..][..run];
                        *acc += T::dot_with(self.kernel, wrow, src);
                    }
                }
            }
            let link_w = layer.get(TensorKind::LinkWeight);
            let link_b = layer.get(TensorKind::LinkBias);
            for x in 0..w {
                let link = &mut self.links[(l * w + x) * p2..][..p2];
                T::copy_to(link, link_b);
                T::matvec_with(self.kernel, link, link_w, &self.vpre[x * p2..][..p2]);
            }
            if l + 1 < arch.layers() {
                let ring = &mut self.vertical_rings[l * ring_len..][..ring_len];
                let slot = row % ring_rows;
                for x in 0..w {
                    gate_f32(&mut ring[(slot * w + x) * p..][..p], &self.vpre[x * p2..][..p2]);
                }
            }
        }
    }

    /// Runs the horizontal stack at column `j` of the current row.
    fn pixel(&mut self, i: usize, j: usize) {
        let arch = *self.arch();
        let (w, p) = (arch.width, arch.channels);
        let p2 = 2 * p;
        let window_len = (arch.radius_of(1) + 1) * p;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let hw = layer.get(TensorKind::HWeight);
            self.hpre.copy_from_slice(&self.biases[l * 2 * p2 + p2..][..p2]);
            for (h, link) in self.hpre.iter_mut().zip(&self.links[(l * w + j) * p2..][..p2]) {
                *h += link;
            }
            if l == 0 {
                // Mask A: the r pixels strictly left of j, from the image row.
                let r = arch.radius_of(0);
                let kx0 = r.saturating_sub(j);
                let row = &self.image_rows[(i % (r + 2)) * w..][..w];
                let src = &row[j + kx0 - r..j];
                for (o, acc) in self.hpre.iter_mut().enumerate() {
                    *acc += T::dot_with(self.kernel, &hw[o * r + kx0..(o + 1) * r], src);
                }
                gate_f32(self.gated, self.hpre);
                self.top.copy_from_slice(self.gated);
            } else {
                // Mask B: the window holds columns j - r ..= j of the layer's
                // input (zeros left of the image); its newest slot is the
                // residual.
                let window = &self.left_windows[(l - 1) * window_len..][..window_len];
                T::matvec_with(self.kernel, self.hpre, hw, window);
                gate_f32(self.gated, self.hpre);
                self.top.copy_from_slice(&window[window_len - p..]);
                T::add_to(self.top, layer.get(TensorKind::OutBias));
                T::matvec_with(self.kernel, self.top, layer.get(TensorKind::OutWeight), self.gated);
            }
            // `top` now holds this layer's output at j; the next layer reads
            // it through its left window.
            if l + 1 < arch.layers() {
                let window = &mut self.left_windows[l * window_len..][..window_len];
                shift_window(window, self.top, j);
            }
        }
    }

    fn head(&mut self) {
        let head = self.weights.head();
        // `top` is not read again for this pixel, so the ReLU can be in place.
        relu_f32(self.top);
        T::copy_to(self.head, head.get(TensorKind::Head1Bias));
        T::matvec_with(self.kernel, self.head, head.get(TensorKind::Head1Weight), self.top);
        relu_f32(self.head);
        T::copy_to(self.logits, head.get(TensorKind::Head2Bias));
        T::matvec_with(self.kernel, self.logits, head.get(TensorKind::Head2Weight), self.head);
    }

    fn logits(&self) -> &[f32] {
        self.logits
    }

    fn store(&mut self, i: usize, j: usize, level: u8) {
        let arch = *self.weights.arch();
        let slot = i % (arch.radius_of(0) + 2);
        self.image_rows[slot * arch.width + j] = f32::from(level) / (arch.levels - 1) as f32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_len_follows_the_table() {
        // docs/runtime.md, for Arch::MNIST_GATED: r0 = 3, r = 1, W = 28,
        // p = 32, 5 blocks, 6 layers, head 32, K = 2.
        let (w, p) = (28, 32);
        let expected = 5 * w          // image rows
            + 5 * 2 * w * p           // vertical rings
            + 6 * w * 2 * p           // links
            + 5 * 2 * p               // left windows
            + 6 * 4 * p               // biases
            + 2 * p * w + 4 * p + 32 + 2; // scratch
        assert_eq!(Arch::MNIST_GATED.state_len(), expected);
        assert_eq!(expected, 22_894);
    }
}
