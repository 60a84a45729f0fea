//! The reference executor: the full-image forward pass, written for clarity.
//!
//! It is the oracle that the incremental executor is tested against, and the
//! naive path (one full pass per pixel) of the benchmarks. It shares no code
//! with the incremental executor beyond the parameter layout: whole feature
//! maps, explicit zero padding, an explicit down-shift.

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::kernels::generic::sigmoid_f32;
use crate::params::{Layer, TensorKind, Weights};
use crate::state::check_class;
use alloc::vec;
use alloc::vec::Vec;

/// A stack of feature maps, channel-major: `data[(c * height + y) * width + x]`.
#[derive(Clone, Debug, PartialEq)]
struct Maps {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Maps {
    fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Maps { channels, height, width, data: vec![0.0; channels * height * width] }
    }

    fn at(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    fn at_mut(&mut self, c: usize, y: usize, x: usize) -> &mut f32 {
        &mut self.data[(c * self.height + y) * self.width + x]
    }

    /// Value at a signed position; zero outside the maps (zero padding).
    fn padded(&self, c: usize, y: isize, x: isize) -> f32 {
        if y < 0 || x < 0 || y >= self.height as isize || x >= self.width as isize {
            0.0
        } else {
            self.at(c, y as usize, x as usize)
        }
    }

    /// Adds `bias[c]` to every position of map `c`.
    fn add_channel_bias(&mut self, bias: &[f32]) {
        for (c, b) in bias.iter().enumerate() {
            for v in &mut self.data[c * self.height * self.width..][..self.height * self.width] {
                *v += b;
            }
        }
    }

    fn add(&mut self, other: &Maps) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += b;
        }
    }

    fn relu(&mut self) {
        for v in &mut self.data {
            *v = v.max(0.0);
        }
    }

    /// Moves every map down by one row; the top row becomes zero.
    fn shift_down(&self) -> Maps {
        let mut out = Maps::zeros(self.channels, self.height, self.width);
        for c in 0..self.channels {
            for y in 1..self.height {
                for x in 0..self.width {
                    *out.at_mut(c, y, x) = self.at(c, y - 1, x);
                }
            }
        }
        out
    }

    /// `tanh(first half) * sigmoid(second half)`.
    fn gate(&self) -> Maps {
        let p = self.channels / 2;
        let mut out = Maps::zeros(p, self.height, self.width);
        for c in 0..p {
            for y in 0..self.height {
                for x in 0..self.width {
                    *out.at_mut(c, y, x) =
                        libm::tanhf(self.at(c, y, x)) * sigmoid_f32(self.at(p + c, y, x));
                }
            }
        }
        out
    }
}

/// A cropped convolution: weights `[out][kh][kw][in]`, where tap `(ky, kx)`
/// reads the input at `(y + top + ky, x + left + kx)` with zero padding.
/// Masks are expressed by the crop: `top`/`left` are negative offsets and the
/// kernel simply has no taps where the mask would be zero.
struct Conv<'a> {
    weight: &'a [f32],
    out: usize,
    kh: usize,
    kw: usize,
    top: isize,
    left: isize,
}

impl Conv<'_> {
    fn apply(&self, input: &Maps) -> Maps {
        let cin = input.channels;
        assert_eq!(self.weight.len(), self.out * self.kh * self.kw * cin);
        let mut out = Maps::zeros(self.out, input.height, input.width);
        for o in 0..self.out {
            for y in 0..input.height {
                for x in 0..input.width {
                    let mut acc = 0.0f32;
                    for ky in 0..self.kh {
                        for kx in 0..self.kw {
                            let iy = y as isize + self.top + ky as isize;
                            let ix = x as isize + self.left + kx as isize;
                            for c in 0..cin {
                                let w = self.weight[((o * self.kh + ky) * self.kw + kx) * cin + c];
                                acc += w * input.padded(c, iy, ix);
                            }
                        }
                    }
                    *out.at_mut(o, y, x) = acc;
                }
            }
        }
        out
    }
}

/// A 1×1 convolution with bias: `weight` is `[out][in]`.
fn pointwise(input: &Maps, weight: &[f32], bias: &[f32]) -> Maps {
    let conv = Conv { weight, out: bias.len(), kh: 1, kw: 1, top: 0, left: 0 };
    let mut out = conv.apply(input);
    out.add_channel_bias(bias);
    out
}

/// Logits of every pixel of `image` in one full forward pass, pixel-major:
/// `logits[pos * K + k]`. Works for both variants.
///
/// `image` holds levels `0..K` in raster order; the network sees
/// `level / (K - 1)`.
///
/// # Errors
/// [`Error::ImageSize`], [`Error::LevelOutOfRange`] and label errors.
pub fn forward(
    weights: &Weights<'_>,
    image: &[u8],
    class: Option<usize>,
) -> Result<Vec<f32>, Error> {
    let arch = *weights.arch();
    check_image(&arch, image)?;
    check_class(&arch, class)?;
    let mut x = Maps::zeros(1, arch.height, arch.width);
    for (v, &level) in x.data.iter_mut().zip(image) {
        *v = f32::from(level) / (arch.levels - 1) as f32;
    }
    let hidden = match arch.variant {
        Variant::Gated => gated_stacks(weights, &x, class, None),
        Variant::Plain => plain_stack(weights, &x, class),
    };
    Ok(head(weights, hidden, None))
}

/// Intermediate activations of a gated forward pass, each channel-major
/// (`[c][y][x]`): what int8 calibration measures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Per layer: the vertical pre-activation (`2p` maps, class included).
    pub vertical_pre: Vec<Vec<f32>>,
    /// Per layer: the horizontal stack's output (`p` maps, the residual stream).
    pub layer_out: Vec<Vec<f32>>,
    /// The head's hidden layer after its ReLU (`head` maps).
    pub head_hidden: Vec<f32>,
}

/// [`forward`] of a Gated PixelCNN that also returns its intermediate
/// activations.
///
/// # Errors
/// As [`forward`], and [`Error::NeedsGated`] for a plain PixelCNN.
pub fn trace(
    weights: &Weights<'_>,
    image: &[u8],
    class: Option<usize>,
) -> Result<(Vec<f32>, Trace), Error> {
    let arch = *weights.arch();
    if arch.variant != Variant::Gated {
        return Err(Error::NeedsGated);
    }
    check_image(&arch, image)?;
    check_class(&arch, class)?;
    let mut x = Maps::zeros(1, arch.height, arch.width);
    for (v, &level) in x.data.iter_mut().zip(image) {
        *v = f32::from(level) / (arch.levels - 1) as f32;
    }
    let mut trace = Trace::default();
    let hidden = gated_stacks(weights, &x, class, Some(&mut trace));
    let logits = head(weights, hidden, Some(&mut trace));
    Ok((logits, trace))
}

/// Checks size and levels of an image for `arch`.
pub(crate) fn check_image(arch: &Arch, image: &[u8]) -> Result<(), Error> {
    if image.len() != arch.pixels() {
        return Err(Error::ImageSize { expected: arch.pixels(), found: image.len() });
    }
    if let Some(pixel) = image.iter().position(|&l| usize::from(l) >= arch.levels) {
        return Err(Error::LevelOutOfRange { pixel, level: image[pixel], levels: arch.levels });
    }
    Ok(())
}

fn class_bias<'a>(
    layer: &Layer<'a>,
    kind: TensorKind,
    class: Option<usize>,
    n: usize,
) -> &'a [f32] {
    layer.class_row(kind, class, n)
}

fn gated_stacks(
    weights: &Weights<'_>,
    x: &Maps,
    class: Option<usize>,
    mut trace: Option<&mut Trace>,
) -> Maps {
    let arch = weights.arch();
    let (p, p2) = (arch.channels, 2 * arch.channels);
    let mut v = x.clone();
    let mut h = x.clone();
    for l in 0..arch.layers() {
        let layer = weights.layer(l);
        let (r, k) = (arch.radius_of(l), arch.kernel_of(l));
        // Vertical: rows y - r ..= y, columns x - r ..= x + r.
        let v_conv = Conv {
            weight: layer.get(TensorKind::VWeight),
            out: p2,
            kh: r + 1,
            kw: k,
            top: -(r as isize),
            left: -(r as isize),
        };
        let mut v_pre = v_conv.apply(&v);
        v_pre.add_channel_bias(layer.get(TensorKind::VBias));
        v_pre.add_channel_bias(class_bias(&layer, TensorKind::VClass, class, p2));
        // Horizontal: mask A sees x - r .. x, mask B x - r ..= x.
        let h_conv = Conv {
            weight: layer.get(TensorKind::HWeight),
            out: p2,
            kh: 1,
            kw: if l == 0 { r } else { r + 1 },
            top: 0,
            left: -(r as isize),
        };
        let mut h_pre = h_conv.apply(&h);
        h_pre.add_channel_bias(layer.get(TensorKind::HBias));
        h_pre.add_channel_bias(class_bias(&layer, TensorKind::HClass, class, p2));
        // The link reads the vertical pre-activation one row up, so the
        // horizontal stack never sees its own row through it.
        let link = pointwise(
            &v_pre.shift_down(),
            layer.get(TensorKind::LinkWeight),
            layer.get(TensorKind::LinkBias),
        );
        h_pre.add(&link);
        let gated = h_pre.gate();
        h = if l == 0 {
            gated
        } else {
            let mut out =
                pointwise(&gated, layer.get(TensorKind::OutWeight), layer.get(TensorKind::OutBias));
            out.add(&h);
            out
        };
        v = v_pre.gate();
        if let Some(t) = trace.as_deref_mut() {
            t.vertical_pre.push(v_pre.data.clone());
            t.layer_out.push(h.data.clone());
        }
        debug_assert_eq!(h.channels, p);
    }
    h
}

fn plain_stack(weights: &Weights<'_>, x: &Maps, class: Option<usize>) -> Maps {
    let arch = weights.arch();
    let p = arch.channels;
    let mut h = x.clone();
    for l in 0..arch.layers() {
        let layer = weights.layer(l);
        let (r, k) = (arch.radius_of(l), arch.kernel_of(l));
        let input = if l == 0 {
            h.clone()
        } else {
            let mut a = h.clone();
            a.relu();
            a
        };
        // A masked k×k convolution is the rows strictly above plus the
        // current row's left part (mask A) or left part and centre (mask B).
        let above = Conv {
            weight: layer.get(TensorKind::AboveWeight),
            out: p,
            kh: r,
            kw: k,
            top: -(r as isize),
            left: -(r as isize),
        };
        let left = Conv {
            weight: layer.get(TensorKind::LeftWeight),
            out: p,
            kh: 1,
            kw: if l == 0 { r } else { r + 1 },
            top: 0,
            left: -(r as isize),
        };
        let mut out = above.apply(&input);
        out.add(&left.apply(&input));
        out.add_channel_bias(layer.get(TensorKind::Bias));
        out.add_channel_bias(class_bias(&layer, TensorKind::Class, class, p));
        h = if l == 0 {
            out
        } else {
            out.add(&h);
            out
        };
    }
    h
}

fn head(weights: &Weights<'_>, mut hidden: Maps, trace: Option<&mut Trace>) -> Vec<f32> {
    let arch = weights.arch();
    let head = weights.head();
    hidden.relu();
    let mut a =
        pointwise(&hidden, head.get(TensorKind::Head1Weight), head.get(TensorKind::Head1Bias));
    a.relu();
    if let Some(t) = trace {
        t.head_hidden = a.data.clone();
    }
    let logits = pointwise(&a, head.get(TensorKind::Head2Weight), head.get(TensorKind::Head2Bias));
    let k = arch.levels;
    let mut out = vec![0.0; arch.pixels() * k];
    for level in 0..k {
        for y in 0..arch.height {
            for x in 0..arch.width {
                out[(y * arch.width + x) * k + level] = logits.at(level, y, x);
            }
        }
    }
    out
}
