//! What the fused per-pixel calls read ([`super::Resolved::gated_step`],
//! [`super::Resolved::head`]): shared by the calls, which choose a kernel,
//! and by the kernels, so that neither imports the other's module.

use super::{Matrix, Scales};

/// The residual block after a layer's gate: `out = clamp(requant(bias +
/// weights · gated) + requant(stream), −127, 127)`, as
/// [`super::generic::requant_residual_i8`] computes it.
#[derive(Clone, Copy, Debug)]
pub struct Residual<'a> {
    /// `p × p` weights.
    pub weights: Matrix<'a>,
    /// `p` biases.
    pub bias: &'a [i32],
    /// The output's requantization.
    pub scales: Scales<'a>,
    /// The residual stream at this pixel (`p` values: the layer's input).
    pub stream: &'a [i8],
    /// The stream's `(multiplier, shift)`.
    pub stream_pair: (i32, i8),
}

/// What one gated step reads, for `p` output channels.
#[derive(Clone, Copy, Debug)]
pub struct GatedStep<'a> {
    /// The left kernel: `2p` rows (tanh inputs, then sigmoid inputs).
    pub weights: Matrix<'a>,
    /// Its input (the left window).
    pub input: &'a [i8],
    /// `2p` biases.
    pub bias: &'a [i32],
    /// The gate inputs' requantization.
    pub scales: Scales<'a>,
    /// The vertical stack's link at this pixel, added to the gate inputs.
    pub links: &'a [i16],
    /// The residual block, after every layer but the first.
    pub residual: Option<Residual<'a>>,
}

/// Scratch for the kernels that store intermediates: `2p` accumulators,
/// `2p` gate inputs and `p` gate outputs.
#[derive(Debug)]
pub struct StepScratch<'a> {
    /// Accumulators.
    pub acc: &'a mut [i32],
    /// Gate inputs.
    pub pre: &'a mut [i16],
    /// Gate outputs.
    pub gated: &'a mut [i8],
}

/// What the head reads, for `p` channels in, `hidden` channels and `k`
/// logits.
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    /// The hidden layer's `hidden × p` weights.
    pub hidden_weights: Matrix<'a>,
    /// Its `hidden` biases.
    pub hidden_bias: &'a [i32],
    /// Its requantization (then clamped to `0 ..= 127`: the ReLU).
    pub hidden_scales: Scales<'a>,
    /// The logits' `k × hidden` weights.
    pub logit_weights: Matrix<'a>,
    /// Their `k` biases.
    pub logit_bias: &'a [i32],
}
