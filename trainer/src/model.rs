//! The trainable network in burn, over the runtime's parameter layout.
//!
//! Every tensor of [`Arch::tensors`] is one `Param<Tensor<4>>` with the
//! runtime's shape and the runtime's element order, and `ParamId` = its index
//! in that order. So the flat parameter vector the runtime runs is a plain
//! concatenation, and optimizer state saved under those ids re-attaches to
//! the same tensors after a restart.
//!
//! Masks are structural, as in the runtime: cropped kernels with asymmetric
//! padding, so masked taps cost no work.

use std::collections::HashMap;

use burn::module::{Module, Param, ParamId};
use burn::tensor::activation::{log_softmax, relu, sigmoid, tanh};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Int, Tensor, TensorData};
use pixelcnn_runtime::params::TensorKind;
use pixelcnn_runtime::{Arch, Variant};

/// The parameters, in runtime order.
#[derive(Module, Debug)]
pub struct Net {
    params: Vec<Param<Tensor<4>>>,
}

/// Where each (layer, kind) lives in [`Net`]'s parameter list.
#[derive(Clone, Debug)]
pub struct Layout {
    arch: Arch,
    index: HashMap<(Option<usize>, TensorKind), usize>,
}

impl Layout {
    /// The layout of `arch`.
    pub fn new(arch: Arch) -> Self {
        let index = arch.tensors().enumerate().map(|(i, s)| ((s.layer, s.kind), i)).collect();
        Layout { arch, index }
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    fn get(&self, net: &Net, layer: Option<usize>, kind: TensorKind) -> Tensor<4> {
        net.params[self.index[&(layer, kind)]].val()
    }

    fn has(&self, layer: Option<usize>, kind: TensorKind) -> bool {
        self.index.contains_key(&(layer, kind))
    }
}

impl Net {
    /// A network holding `flat` (runtime layout) on `device`; trainable when
    /// the device is an autodiff device.
    ///
    /// # Panics
    /// If `flat` does not hold `arch.param_count()` values.
    pub fn from_flat(arch: &Arch, flat: &[f32], device: &Device) -> Net {
        assert_eq!(flat.len(), arch.param_count(), "parameter count");
        let mut offset = 0;
        let params = arch
            .tensors()
            .enumerate()
            .map(|(i, spec)| {
                let len = spec.len();
                let data = TensorData::new(flat[offset..offset + len].to_vec(), spec.shape);
                offset += len;
                let mut t = Tensor::<4>::from_data(data, device);
                if device.is_autodiff() {
                    t = t.require_grad();
                }
                Param::initialized(ParamId::from(i as u64), t)
            })
            .collect();
        Net { params }
    }

    /// The gradient of every parameter, in runtime layout (zeros where a
    /// parameter took no part in the loss).
    pub fn grads_to_flat(&self, grads: &burn::tensor::Gradients) -> Vec<f32> {
        let mut out = Vec::new();
        for p in &self.params {
            let value = p.val();
            match value.grad(grads) {
                Some(g) => out.extend(g.try_into_vec_as::<f32>().expect("f32 gradients")),
                None => out.extend(std::iter::repeat_n(0.0, value.shape().num_elements())),
            }
        }
        out
    }

    /// The parameters as one vector in runtime layout.
    pub fn to_flat(&self) -> Vec<f32> {
        let mut out = Vec::new();
        for p in &self.params {
            out.extend(p.val().try_into_vec_as::<f32>().expect("f32 parameters"));
        }
        out
    }
}

/// Runtime conv weight `[out, kh, kw, in]` as burn's `[out, in, kh, kw]`.
fn oihw(w: Tensor<4>) -> Tensor<4> {
    w.permute([0, 3, 1, 2])
}

/// A `[1, 1, 1, n]` bias as `[n]`.
fn vector(b: Tensor<4>) -> Tensor<1> {
    let n = b.dims()[3];
    b.reshape([n])
}

/// A `[1, 1, out, in]` matrix as a 1×1 convolution weight.
fn pointwise_weight(w: Tensor<4>) -> Tensor<4> {
    let [_, _, out, cin] = w.dims();
    w.reshape([out, cin, 1, 1])
}

fn pad(top: usize, bottom: usize, left: usize, right: usize) -> ConvOptions<2> {
    ConvOptions::new_with_padding([1, 1], [(top, bottom), (left, right)], [1, 1], 1)
}

fn gate(x: Tensor<4>, p: usize) -> Tensor<4> {
    tanh(x.clone().narrow(1, 0, p)) * sigmoid(x.narrow(1, p, p))
}

/// Logits `[B, K, H, W]` of images `x` (`[B, 1, H, W]`, `level / (K − 1)`)
/// with labels `[B]` for conditional models.
pub fn forward(
    layout: &Layout,
    net: &Net,
    x: Tensor<4>,
    labels: Option<Tensor<1, Int>>,
) -> Tensor<4> {
    let arch = *layout.arch();
    let hidden = match arch.variant {
        Variant::Gated => gated(layout, net, x, labels.as_ref()),
        Variant::Plain => plain(layout, net, x, labels.as_ref()),
    };
    let head = |kind| layout.get(net, None, kind);
    let a = relu(hidden);
    let a = conv2d(
        a,
        pointwise_weight(head(TensorKind::Head1Weight)),
        Some(vector(head(TensorKind::Head1Bias))),
        pad(0, 0, 0, 0),
    );
    let a = relu(a);
    conv2d(
        a,
        pointwise_weight(head(TensorKind::Head2Weight)),
        Some(vector(head(TensorKind::Head2Bias))),
        pad(0, 0, 0, 0),
    )
}

/// The per-class bias rows `[B, n, 1, 1]` of a `[1, 1, classes, n]` table.
fn class_bias(table: Tensor<4>, labels: &Tensor<1, Int>) -> Tensor<4> {
    let [_, _, classes, n] = table.dims();
    let b = labels.dims()[0];
    table.reshape([classes, n]).select(0, labels.clone()).reshape([b, n, 1, 1])
}

fn gated(layout: &Layout, net: &Net, x: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> Tensor<4> {
    let arch = *layout.arch();
    let [_, _, height, width] = x.dims();
    let p = arch.channels;
    let mut v = x.clone();
    let mut h = x;
    for l in 0..arch.layers() {
        let get = |kind| layout.get(net, Some(l), kind);
        let r = arch.radius_of(l);
        let mut v_pre = conv2d(
            v,
            oihw(get(TensorKind::VWeight)),
            Some(vector(get(TensorKind::VBias))),
            pad(r, 0, r, r),
        );
        let mut h_pre = if l == 0 {
            // Mask A: r taps strictly left; the crop leaves one extra column.
            conv2d(
                h.clone(),
                oihw(get(TensorKind::HWeight)),
                Some(vector(get(TensorKind::HBias))),
                pad(0, 0, r, 0),
            )
            .narrow(3, 0, width)
        } else {
            conv2d(
                h.clone(),
                oihw(get(TensorKind::HWeight)),
                Some(vector(get(TensorKind::HBias))),
                pad(0, 0, r, 0),
            )
        };
        if let (Some(labels), true) = (labels, layout.has(Some(l), TensorKind::VClass)) {
            v_pre = v_pre + class_bias(get(TensorKind::VClass), labels);
            h_pre = h_pre + class_bias(get(TensorKind::HClass), labels);
        }
        // The link reads the vertical pre-activation one row up.
        let shifted = v_pre.clone().pad([(1, 0), (0, 0)], 0.0).narrow(2, 0, height);
        let link = conv2d(
            shifted,
            pointwise_weight(get(TensorKind::LinkWeight)),
            Some(vector(get(TensorKind::LinkBias))),
            pad(0, 0, 0, 0),
        );
        let gated_h = gate(h_pre + link, p);
        h = if l == 0 {
            gated_h
        } else {
            h + conv2d(
                gated_h,
                pointwise_weight(get(TensorKind::OutWeight)),
                Some(vector(get(TensorKind::OutBias))),
                pad(0, 0, 0, 0),
            )
        };
        v = if l + 1 < arch.layers() { gate(v_pre, p) } else { v_pre };
    }
    h
}

fn plain(layout: &Layout, net: &Net, x: Tensor<4>, labels: Option<&Tensor<1, Int>>) -> Tensor<4> {
    let arch = *layout.arch();
    let [_, _, height, width] = x.dims();
    let mut h = x;
    for l in 0..arch.layers() {
        let get = |kind| layout.get(net, Some(l), kind);
        let r = arch.radius_of(l);
        let input = if l == 0 { h.clone() } else { relu(h.clone()) };
        // Rows strictly above: the crop leaves one extra row at the bottom.
        let above =
            conv2d(input.clone(), oihw(get(TensorKind::AboveWeight)), None, pad(r, 0, r, r))
                .narrow(2, 0, height);
        let left = conv2d(
            input,
            oihw(get(TensorKind::LeftWeight)),
            Some(vector(get(TensorKind::Bias))),
            pad(0, 0, r, 0),
        );
        let left = if l == 0 { left.narrow(3, 0, width) } else { left };
        let mut out = above + left;
        if let (Some(labels), true) = (labels, layout.has(Some(l), TensorKind::Class)) {
            out = out + class_bias(get(TensorKind::Class), labels);
        }
        h = if l == 0 { out } else { h + out };
    }
    h
}

/// Negative log-likelihood in nats, summed over pixels and averaged over the
/// batch. `levels` is `[B, 1, H, W]` of level indices.
pub fn nats_per_image(logits: Tensor<4>, levels: Tensor<4, Int>) -> Tensor<1> {
    let batch = logits.dims()[0] as f32;
    log_softmax(logits, 1).gather(1, levels).sum().neg().div_scalar(batch)
}

/// A batch of images as tensors: inputs `[B, 1, H, W]`, targets, labels.
pub struct Batch {
    /// `level / (K − 1)`.
    pub x: Tensor<4>,
    /// Level indices.
    pub levels: Tensor<4, Int>,
    /// Class labels, for conditional models.
    pub labels: Option<Tensor<1, Int>>,
}

impl Batch {
    /// Builds a batch from images (levels) and optional labels.
    pub fn new(arch: &Arch, images: &[&[u8]], labels: Option<Vec<i64>>, device: &Device) -> Batch {
        let (b, h, w) = (images.len(), arch.height, arch.width);
        let scale = 1.0 / (arch.levels - 1) as f32;
        let flat: Vec<u8> = images.iter().flat_map(|i| i.iter().copied()).collect();
        let x = flat.iter().map(|&l| f32::from(l) * scale).collect::<Vec<f32>>();
        let levels = flat.iter().map(|&l| i64::from(l)).collect::<Vec<i64>>();
        Batch {
            x: Tensor::from_data(TensorData::new(x, [b, 1, h, w]), device),
            levels: Tensor::from_data(TensorData::new(levels, [b, 1, h, w]), device),
            labels: labels.map(|l| Tensor::from_data(TensorData::new(l, [b]), device)),
        }
    }
}
