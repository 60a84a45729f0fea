//! Host side of int8: measure activation ranges on images, then quantize a
//! float model into the integer format of [`crate::quant::QuantWeights`].

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::host::reference;
use crate::int8::{QuantMultiplier, LOGIT_SCALE, PRE_SCALE, UNIT_SCALE};
use crate::params::{TensorKind, TensorSpec, Weights};
use crate::quant::weights::{requant_entries, requant_range, QuantWeights, RequantPoint};

/// Largest absolute activations seen on calibration images.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// Per layer: largest |vertical pre-activation| (the link's input).
    pub vertical_pre: Vec<f32>,
    /// Per layer: largest |residual stream| value.
    pub layer_out: Vec<f32>,
    /// Largest value of the head's hidden layer.
    pub head_hidden: f32,
    /// Images observed.
    pub images: usize,
    /// Where the images came from ("500 training images from …").
    pub source: String,
}

fn max_abs(values: &[f32]) -> f32 {
    values.iter().fold(0.0f32, |m, v| m.max(v.abs()))
}

impl Calibration {
    /// No observations yet.
    pub fn new(arch: &Arch) -> Self {
        Calibration {
            vertical_pre: vec![0.0; arch.layers()],
            layer_out: vec![0.0; arch.layers()],
            head_hidden: 0.0,
            images: 0,
            source: String::new(),
        }
    }

    /// The ranges over `images` (image, class) from `source`; `on_image` is
    /// called after each (for progress).
    ///
    /// # Errors
    /// As [`reference::trace`].
    pub fn measure(
        weights: &Weights<'_>,
        images: &[(Vec<u8>, Option<usize>)],
        source: String,
        mut on_image: impl FnMut(),
    ) -> Result<Self, Error> {
        let mut cal = Calibration::new(weights.arch());
        for (image, class) in images {
            cal.observe(weights, image, *class)?;
            on_image();
        }
        cal.source = source;
        Ok(cal)
    }

    /// Runs the float model on `image` and widens the ranges.
    ///
    /// # Errors
    /// As [`reference::trace`].
    pub fn observe(
        &mut self,
        weights: &Weights<'_>,
        image: &[u8],
        class: Option<usize>,
    ) -> Result<(), Error> {
        let (_, trace) = reference::trace(weights, image, class)?;
        for (m, v) in self.vertical_pre.iter_mut().zip(&trace.vertical_pre) {
            *m = m.max(max_abs(v));
        }
        for (m, v) in self.layer_out.iter_mut().zip(&trace.layer_out) {
            *m = m.max(max_abs(v));
        }
        self.head_hidden = self.head_hidden.max(max_abs(&trace.head_hidden));
        self.images += 1;
        Ok(())
    }
}

/// Images (levels, raster order) with their class labels.
pub type LabelledImages = Vec<(Vec<u8>, Option<usize>)>;

/// Seed of the calibration samples: fixed, so a model calibrated on its own
/// samples quantizes the same way everywhere.
pub const SAMPLE_SEED: u64 = 0xca11_b8a7e;

/// `n` images drawn from the float model itself, classes in turn: the
/// calibration images when no training images are at hand. `on_image` is
/// called after each (for progress).
///
/// # Errors
/// As [`crate::Incremental::new`] and [`crate::sampler::generate`].
pub fn model_samples(
    weights: &Weights<'_>,
    n: usize,
    mut on_image: impl FnMut(),
) -> Result<LabelledImages, Error> {
    let arch = *weights.arch();
    let mut state = vec![0.0f32; arch.state_len()];
    let first = (arch.classes > 0).then_some(0);
    let mut inc = crate::Incremental::new(weights, &mut state, first)?;
    let mut rng = crate::rng::from_seed(SAMPLE_SEED);
    let mut images = Vec::with_capacity(n);
    for i in 0..n {
        let class = (arch.classes > 0).then(|| i % arch.classes);
        let mut image = vec![0u8; arch.pixels()];
        crate::sampler::generate(&mut inc, class, 1.0, &mut rng, &mut image)?;
        images.push((image, class));
        on_image();
    }
    Ok(images)
}

/// An int8 model in owned buffers, ready to view or to write to a file.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantModel {
    /// The architecture.
    pub arch: Arch,
    /// int8 weights (weight tensors in layout order).
    pub weights: Vec<i8>,
    /// int32 biases and class tables in layout order.
    pub biases: Vec<i32>,
    /// `(multiplier, shift)` pairs.
    pub requant: Vec<i32>,
}

impl QuantModel {
    /// A validated view.
    ///
    /// # Errors
    /// As [`QuantWeights::new`].
    pub fn view(&self) -> Result<QuantWeights<'_>, Error> {
        QuantWeights::new(self.arch, &self.weights, &self.biases, &self.requant)
    }
}

/// Output channels of a weight tensor: convolutions are `[out, kh, kw, in]`,
/// 1×1 layers `[1, 1, out, in]`.
fn out_channels(spec: &TensorSpec) -> usize {
    match spec.kind {
        TensorKind::VWeight | TensorKind::HWeight => spec.shape[0],
        _ => spec.shape[2],
    }
}

fn tensor<'a>(weights: &'a Weights<'_>, spec: &TensorSpec) -> &'a [f32] {
    match spec.layer {
        Some(l) => weights.layer(l).get(spec.kind),
        None => weights.head().get(spec.kind),
    }
}

/// The activation scales (real value of one integer unit) of a layer.
struct LayerScales {
    /// Input of the horizontal convolution.
    h_in: f64,
    /// The link's int8 input.
    v_link: f64,
    /// This layer's residual stream.
    top: f64,
    /// The previous layer's residual stream.
    top_prev: f64,
}

/// The scale of a range: the largest value maps to 127. A range of zero
/// (a dead activation) keeps the unit scale.
fn scale_of(max: f32) -> f64 {
    if max > 0.0 && max.is_finite() {
        f64::from(max) / f64::from(UNIT_SCALE)
    } else {
        1.0 / f64::from(UNIT_SCALE)
    }
}

/// Quantizes a float Gated PixelCNN with the ranges in `calibration`.
///
/// # Errors
/// [`Error::NeedsGated`] for a plain PixelCNN, [`Error::InvalidRequant`]
/// when a scale ratio does not fit a multiplier.
pub fn quantize(weights: &Weights<'_>, calibration: &Calibration) -> Result<QuantModel, Error> {
    let arch = *weights.arch();
    if arch.variant != Variant::Gated {
        return Err(Error::NeedsGated);
    }
    let unit = 1.0 / f64::from(UNIT_SCALE);
    let layer_scales = |l: usize| {
        let top = |l: usize| if l == 0 { unit } else { scale_of(calibration.layer_out[l]) };
        LayerScales {
            h_in: if l == 0 { unit } else { top(l - 1) },
            v_link: scale_of(calibration.vertical_pre[l]),
            top: top(l),
            top_prev: if l == 0 { unit } else { top(l - 1) },
        }
    };
    let last_top = layer_scales(arch.layers() - 1).top;
    let hidden = scale_of(calibration.head_hidden);

    let mut q_weights = Vec::new();
    let mut q_biases = Vec::new();
    // Per-channel weight scales of every weight tensor: the biases and the
    // multipliers are expressed in them.
    let mut weight_scales: Vec<(Option<usize>, TensorKind, Vec<f64>)> = Vec::new();
    let scales_of = |all: &[(Option<usize>, TensorKind, Vec<f64>)], layer, kind| -> Vec<f64> {
        let found = all.iter().find(|(l, k, _)| *l == layer && *k == kind);
        found.expect("weight tensors come before their biases").2.clone()
    };
    for spec in arch.tensors() {
        let data = tensor(weights, &spec);
        if spec.kind.is_weight() {
            let out = out_channels(&spec);
            let row = data.len() / out.max(1);
            let mut scales = Vec::with_capacity(out);
            for chunk in data.chunks(row.max(1)) {
                let s = scale_of(max_abs(chunk));
                scales.push(s);
                q_weights.extend(
                    chunk.iter().map(|&w| libm::round(f64::from(w) / s).clamp(-127.0, 127.0) as i8),
                );
            }
            weight_scales.push((spec.layer, spec.kind, scales));
            continue;
        }
        // A bias is stored in the units of the accumulator it is added to.
        let (weight_kind, input_scale) = match (spec.kind, spec.layer) {
            (TensorKind::VBias | TensorKind::VClass, _) => (TensorKind::VWeight, unit),
            (TensorKind::HBias | TensorKind::HClass, Some(l)) => {
                (TensorKind::HWeight, layer_scales(l).h_in)
            }
            (TensorKind::LinkBias, Some(l)) => (TensorKind::LinkWeight, layer_scales(l).v_link),
            (TensorKind::OutBias, _) => (TensorKind::OutWeight, unit),
            (TensorKind::Head1Bias, None) => (TensorKind::Head1Weight, last_top),
            (TensorKind::Head2Bias, None) => (TensorKind::Head2Weight, hidden),
            _ => unreachable!("gated models have no {:?} tensor", spec.kind),
        };
        let scales = scales_of(&weight_scales, spec.layer, weight_kind);
        for (i, &b) in data.iter().enumerate() {
            let s = scales[i % scales.len()] * input_scale;
            q_biases.push(
                libm::round(f64::from(b) / s).clamp(f64::from(i32::MIN), f64::from(i32::MAX))
                    as i32,
            );
        }
    }

    // Each point's multipliers go where `requant_range` says: the reader
    // uses the same table, so no order is kept by hand here.
    let mut requant = vec![0i32; 2 * requant_entries(&arch)];
    let mut put = |layer: Option<usize>, point: RequantPoint, reals: &[f64]| {
        let range = requant_range(&arch, layer, point);
        assert_eq!(range.len(), reals.len(), "{point:?} of layer {layer:?}");
        for (index, &real) in range.zip(reals) {
            let m = QuantMultiplier::from_real(real).ok_or(Error::InvalidRequant { index })?;
            requant[2 * index] = m.multiplier;
            requant[2 * index + 1] = i32::from(m.shift);
        }
        Ok::<(), Error>(())
    };
    let pre = f64::from(PRE_SCALE);
    for l in 0..arch.layers() {
        let s = layer_scales(l);
        let layer = Some(l);
        let vw = scales_of(&weight_scales, layer, TensorKind::VWeight);
        let hw = scales_of(&weight_scales, layer, TensorKind::HWeight);
        let lw = scales_of(&weight_scales, layer, TensorKind::LinkWeight);
        let scaled = |w: &[f64], by: f64| -> Vec<f64> { w.iter().map(|w| w * by).collect() };
        put(layer, RequantPoint::VGate, &scaled(&vw, unit * pre))?;
        put(layer, RequantPoint::VLink, &scaled(&vw, unit / s.v_link))?;
        put(layer, RequantPoint::Horizontal, &scaled(&hw, s.h_in * pre))?;
        put(layer, RequantPoint::Link, &scaled(&lw, s.v_link * pre))?;
        if l > 0 {
            let ow = scales_of(&weight_scales, layer, TensorKind::OutWeight);
            put(layer, RequantPoint::Out, &scaled(&ow, unit / s.top))?;
            put(layer, RequantPoint::Residual, &[s.top_prev / s.top])?;
        }
    }
    let h1 = scales_of(&weight_scales, None, TensorKind::Head1Weight);
    let h2 = scales_of(&weight_scales, None, TensorKind::Head2Weight);
    let h1: Vec<f64> = h1.iter().map(|w| w * last_top / hidden).collect();
    let h2: Vec<f64> = h2.iter().map(|w| w * hidden * f64::from(LOGIT_SCALE)).collect();
    put(None, RequantPoint::Head1, &h1)?;
    put(None, RequantPoint::Head2, &h2)?;
    let model = QuantModel { arch, weights: q_weights, biases: q_biases, requant };
    model.view()?;
    Ok(model)
}
