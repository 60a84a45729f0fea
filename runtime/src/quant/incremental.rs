//! The int8 incremental executor: the same caches as the float
//! [`crate::Incremental`] (vertical rings per row, links from the
//! down-shifted vertical pre-activation, left windows per pixel), in
//! integers only.
//!
//! State is one caller-provided `&mut [i32]` of [`Arch::quant_state_words`]
//! words, cut into int8, int16 and int32 parts.

use super::weights::{QuantWeights, RequantPoint};
use super::{PRE_MAX, PRE_MIN, UNIT_SCALE};
use crate::arch::Arch;
use crate::error::Error;
use crate::kernels::{dot_i8, Resolved};
use crate::params::TensorKind;
use crate::raster::{check_buffer, columns_inside, shift_window, take, Network, Raster, Sealed};
use crate::state::{acc_len, gather_len, QuantStateLayout};

/// The int8 incremental executor: the one executor, [`Raster`], over
/// [`GatedInt8`]. Same interface as [`crate::Incremental`]; logits are int32
/// in units of 1/256 nat.
pub type IncrementalI8<'m, 'b> = Raster<GatedInt8<'m, 'b>>;

/// A Gated PixelCNN's caches and integer-only arithmetic.
#[derive(Debug)]
pub struct GatedInt8<'m, 'b> {
    weights: &'m QuantWeights<'m>,
    image_rows: &'b mut [i8],
    vertical_rings: &'b mut [i8],
    links: &'b mut [i16],
    left_windows: &'b mut [i8],
    biases: &'b mut [i32],
    acc: &'b mut [i32],
    pre: &'b mut [i16],
    link_in: &'b mut [i8],
    gated: &'b mut [i8],
    top: &'b mut [i8],
    head: &'b mut [i8],
    logits: &'b mut [i32],
    window: &'b mut [i8],
    /// The int8 kernel, resolved once for this executor.
    kernel: Resolved,
}

impl<'m, 'b> IncrementalI8<'m, 'b> {
    /// An executor at pixel 0 of a new image of class `class`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buffer` is shorter than
    /// [`Arch::quant_state_words`]; label errors.
    pub fn new(
        weights: &'m QuantWeights<'m>,
        buffer: &'b mut [i32],
        class: Option<usize>,
    ) -> Result<Self, Error> {
        let arch = *weights.arch();
        let layout = QuantStateLayout::of(&arch);
        check_buffer(layout.words(), buffer.len())?;
        let p = arch.channels;
        let mut buf = buffer;
        let net = GatedInt8 {
            weights,
            image_rows: take(&mut buf, layout.image_rows),
            vertical_rings: take(&mut buf, layout.vertical_rings),
            links: take(&mut buf, layout.links),
            left_windows: take(&mut buf, layout.left_windows),
            biases: take(&mut buf, layout.biases),
            acc: take(&mut buf, acc_len(&arch)),
            pre: take(&mut buf, 2 * p),
            link_in: take(&mut buf, 2 * p),
            gated: take(&mut buf, p),
            top: take(&mut buf, p),
            head: take(&mut buf, arch.head),
            logits: take(&mut buf, arch.levels),
            window: take(&mut buf, gather_len(&arch)),
            kernel: Resolved::best(),
        };
        Raster::start(net, class)
    }
}

impl Sealed for GatedInt8<'_, '_> {}

impl Network for GatedInt8<'_, '_> {
    type Logit = i32;

    fn arch(&self) -> &Arch {
        self.weights.arch()
    }

    fn fold_class(&mut self, class: Option<usize>) {
        let arch = *self.weights.arch();
        let p2 = 2 * arch.channels;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let (bv, bh) = self.biases[l * 2 * p2..(l + 1) * 2 * p2].split_at_mut(p2);
            bv.copy_from_slice(layer.bias(TensorKind::VBias));
            bh.copy_from_slice(layer.bias(TensorKind::HBias));
            for (b, c) in bv.iter_mut().zip(layer.class_row(TensorKind::VClass, class, p2)) {
                *b = b.saturating_add(*c);
            }
            for (b, c) in bh.iter_mut().zip(layer.class_row(TensorKind::HClass, class, p2)) {
                *b = b.saturating_add(*c);
            }
        }
    }

    fn row(&mut self, i: usize) {
        let arch = *self.arch();
        let (w, p) = (arch.width, arch.channels);
        let p2 = 2 * p;
        if i == 0 {
            for l in 0..arch.layers() {
                let layer = self.weights.layer(l);
                let (bias, mult) =
                    (layer.bias(TensorKind::LinkBias), layer.requant(RequantPoint::Link));
                for x in 0..w {
                    for (o, link) in self.links[(l * w + x) * p2..][..p2].iter_mut().enumerate() {
                        *link = clamp_i16(mult.get(o).apply(bias[o]));
                    }
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
            let vw = layer.weight(TensorKind::VWeight);
            let (gate_mult, link_mult) =
                (layer.requant(RequantPoint::VGate), layer.requant(RequantPoint::VLink));
            let (lw, lb, lmult) = (
                layer.weight(TensorKind::LinkWeight),
                layer.bias(TensorKind::LinkBias),
                layer.requant(RequantPoint::Link),
            );
            let bias = &self.biases[l * 2 * p2..][..p2];
            // Layer l reads ring l - 1 and writes ring l.
            let (done, ahead) = self.vertical_rings.split_at_mut(l * ring_len);
            let (input, input_rows) = if l == 0 {
                (&*self.image_rows, r + 2)
            } else {
                (&done[(l - 1) * ring_len..], ring_rows)
            };
            let window = &mut self.window[..(r + 1) * k * cin];
            for x in 0..w {
                // Gather rows row - r ..= row, columns x - r ..= x + r into
                // one contiguous window, zeros outside the image, so that
                // each output is a single dot product with its weight row.
                for ky in 0..=r {
                    let dst = &mut window[ky * k * cin..][..k * cin];
                    match (row + ky).checked_sub(r) {
                        None => dst.fill(0),
                        Some(y) => {
                            let (kx0, kx1) = columns_inside(r, k, w, x);
                            dst[..kx0 * cin].fill(0);
                            dst[kx1 * cin..].fill(0);
                            let src = &input[(y % input_rows) * w * cin..][..w * cin];
                            dst[kx0 * cin..kx1 * cin]
                                .copy_from_slice(&src[(x + kx0 - r) * cin..(x + kx1 - r) * cin]);
                        }
                    }
                }
                self.acc[..p2].copy_from_slice(bias);
                self.kernel.matvec_i8(&mut self.acc[..p2], vw, window);
                let acc = &self.acc[..p2];
                self.kernel.requant_i16(self.pre, acc, gate_mult.pairs(), None, PRE_LO, PRE_HI);
                self.kernel.requant_i8(self.link_in, acc, link_mult.pairs(), -127, 127);
                self.acc[..p2].copy_from_slice(lb);
                self.kernel.matvec_i8(&mut self.acc[..p2], lw, self.link_in);
                let link = &mut self.links[(l * w + x) * p2..][..p2];
                self.kernel.requant_i16(
                    link,
                    &self.acc[..p2],
                    lmult.pairs(),
                    None,
                    i16::MIN,
                    i16::MAX,
                );
                if l + 1 < arch.layers() {
                    let ring = &mut ahead[..ring_len];
                    let slot = row % ring_rows;
                    self.kernel.gate_i8(&mut ring[(slot * w + x) * p..][..p], self.pre);
                }
            }
        }
    }

    fn pixel(&mut self, i: usize, j: usize) {
        let arch = *self.arch();
        let (w, p) = (arch.width, arch.channels);
        let p2 = 2 * p;
        let window_len = (arch.radius_of(1) + 1) * p;
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let hw = layer.weight(TensorKind::HWeight);
            self.acc[..p2].copy_from_slice(&self.biases[l * 2 * p2 + p2..][..p2]);
            if l == 0 {
                let r = arch.radius_of(0);
                let kx0 = r.saturating_sub(j);
                let row = &self.image_rows[(i % (r + 2)) * w..][..w];
                let src = &row[j + kx0 - r..j];
                for (o, acc) in self.acc[..p2].iter_mut().enumerate() {
                    *acc = acc.wrapping_add(dot_i8(&hw[o * r + kx0..(o + 1) * r], src));
                }
            } else {
                let window = &self.left_windows[(l - 1) * window_len..][..window_len];
                self.kernel.matvec_i8(&mut self.acc[..p2], hw, window);
            }
            let mult = layer.requant(RequantPoint::Horizontal);
            let links = &self.links[(l * w + j) * p2..][..p2];
            self.kernel.requant_i16(
                self.pre,
                &self.acc[..p2],
                mult.pairs(),
                Some(links),
                PRE_LO,
                PRE_HI,
            );
            self.kernel.gate_i8(self.gated, self.pre);
            if l == 0 {
                self.top.copy_from_slice(self.gated);
            } else {
                let window = &self.left_windows[(l - 1) * window_len..][..window_len];
                let residual = &window[window_len - p..];
                let (ow, ob) =
                    (layer.weight(TensorKind::OutWeight), layer.bias(TensorKind::OutBias));
                let out_mult = layer.requant(RequantPoint::Out);
                let res = layer.requant(RequantPoint::Residual).get(0);
                let out = &mut self.acc[..p];
                out.copy_from_slice(ob);
                self.kernel.matvec_i8(out, ow, self.gated);
                let res_pair = (res.multiplier, res.shift);
                self.kernel.requant_residual_i8(
                    self.top,
                    out,
                    out_mult.pairs(),
                    residual,
                    res_pair,
                );
            }
            if l + 1 < arch.layers() {
                let window = &mut self.left_windows[l * window_len..][..window_len];
                shift_window(window, self.top, j);
            }
        }
    }

    fn head(&mut self) {
        let head = self.weights.head();
        for t in self.top.iter_mut() {
            *t = (*t).max(0);
        }
        let (w1, b1, m1) = (
            head.weight(TensorKind::Head1Weight),
            head.bias(TensorKind::Head1Bias),
            head.requant(RequantPoint::Head1),
        );
        let a1 = &mut self.acc[..self.head.len()];
        a1.copy_from_slice(b1);
        self.kernel.matvec_i8(a1, w1, self.top);
        // The hidden layer's ReLU is the clamp's lower bound.
        self.kernel.requant_i8(self.head, a1, m1.pairs(), 0, 127);
        let (w2, b2, m2) = (
            head.weight(TensorKind::Head2Weight),
            head.bias(TensorKind::Head2Bias),
            head.requant(RequantPoint::Head2),
        );
        self.logits.copy_from_slice(b2);
        self.kernel.matvec_i8(self.logits, w2, self.head);
        for (o, logit) in self.logits.iter_mut().enumerate() {
            *logit = m2.get(o).apply(*logit);
        }
    }

    fn logits(&self) -> &[i32] {
        self.logits
    }

    fn store(&mut self, i: usize, j: usize, level: u8) {
        let arch = *self.weights.arch();
        let slot = i % (arch.radius_of(0) + 2);
        self.image_rows[slot * arch.width + j] = quantize_level(level, arch.levels);
    }
}

/// A level as the int8 image value `round(127 · level / (K − 1))`.
#[inline]
pub fn quantize_level(level: u8, levels: usize) -> i8 {
    let k1 = (levels - 1) as u32;
    ((u32::from(level) * UNIT_SCALE as u32 + k1 / 2) / k1) as i8
}

#[inline]
fn clamp_i16(x: i32) -> i16 {
    x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// The gate inputs' clamp, as int16.
const PRE_LO: i16 = PRE_MIN as i16;
const PRE_HI: i16 = PRE_MAX as i16;
