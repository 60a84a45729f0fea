//! A model in any precision, and an executor over it: what firmware and
//! tools hold after parsing a `.pcnn` file.

use half::f16;

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::exec::gated::Incremental;
use crate::exec::plain::PlainIncremental;
use crate::params::Weights;
use crate::quant::{IncrementalI8, QuantWeights};
use crate::rng::Rng;
use crate::sampler::PixelExecutor;

/// How weights are stored and computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Precision {
    /// 32-bit float weights and arithmetic.
    F32,
    /// 16-bit float weights, f32 arithmetic (f16 arithmetic with the
    /// `neon-fp16` kernel on aarch64 CPUs with FP16).
    F16,
    /// Integer-only: int8 weights and activations, int32 accumulators.
    Int8,
}

impl Precision {
    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Int8 => "int8",
        }
    }
}

impl core::fmt::Display for Precision {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Validated weights in one of the three precisions.
// The int8 variant's offset tables make it the largest; a model is made once
// and lives in a static or on the stack, and boxing needs an allocator.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Model<'a> {
    /// f32 weights.
    F32(Weights<'a, f32>),
    /// f16 weights.
    F16(Weights<'a, f16>),
    /// int8 weights, int32 biases, fixed-point multipliers.
    Int8(QuantWeights<'a>),
}

impl Model<'_> {
    /// The architecture.
    pub fn arch(&self) -> &Arch {
        match self {
            Model::F32(w) => w.arch(),
            Model::F16(w) => w.arch(),
            Model::Int8(w) => w.arch(),
        }
    }

    /// The precision.
    pub fn precision(&self) -> Precision {
        match self {
            Model::F32(_) => Precision::F32,
            Model::F16(_) => Precision::F16,
            Model::Int8(_) => Precision::Int8,
        }
    }

    /// 32-bit words of executor state ([`Executor::new`]'s buffer): the
    /// least it runs in, what a device allocates.
    pub fn state_words(&self) -> usize {
        match self {
            Model::F32(_) | Model::F16(_) => self.arch().executor_state_len(),
            Model::Int8(_) => self.arch().quant_state_words(),
        }
    }

    /// 32-bit words of the state it runs fastest in, for hosts: int8
    /// computes each row's vertical stack in one product over the row
    /// ([`Arch::quant_state_words_whole_rows`]); the float executors need
    /// no more than [`Model::state_words`]. Same results either way.
    pub fn host_state_words(&self) -> usize {
        match self {
            Model::F32(_) | Model::F16(_) => self.state_words(),
            Model::Int8(_) => self.arch().quant_state_words_whole_rows(),
        }
    }

    /// Bytes of the weights, biases and multipliers (the flash they take).
    pub fn weight_bytes(&self) -> usize {
        match self {
            Model::F32(w) => core::mem::size_of_val(w.as_slice()),
            Model::F16(w) => core::mem::size_of_val(w.as_slice()),
            Model::Int8(w) => {
                let (a, b, c) = w.as_slices();
                a.len() + 4 * (b.len() + c.len())
            }
        }
    }
}

/// The incremental executor of a [`Model`], whatever its variant and
/// precision: one [`crate::Raster`] over the model's network.
// The int8 variant carries its layers' step operands inline on hosts (~2
// KB): an executor is made once per sampling run and never moved per
// pixel, and boxing it would put a heap allocation on the sampling path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Executor<'m, 'b> {
    /// Float weights (f32).
    F32(Incremental<'m, 'b, f32>),
    /// Float weights (f16).
    F16(Incremental<'m, 'b, f16>),
    /// Integer-only.
    Int8(IncrementalI8<'m, 'b>),
    /// A plain PixelCNN, f32 weights.
    PlainF32(PlainIncremental<'m, 'b, f32>),
    /// A plain PixelCNN, f16 weights.
    PlainF16(PlainIncremental<'m, 'b, f16>),
}

impl<'m, 'b> Executor<'m, 'b> {
    /// An executor over `model` with state in `buffer`
    /// ([`Model::state_words`] words), at pixel 0 of an image of `class`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`], label errors.
    pub fn new(
        model: &'m Model<'m>,
        buffer: &'b mut [u32],
        class: Option<usize>,
    ) -> Result<Self, Error> {
        let plain = model.arch().variant == Variant::Plain;
        Ok(match model {
            Model::F32(w) if plain => Executor::PlainF32(PlainIncremental::new(
                w,
                bytemuck::cast_slice_mut(buffer),
                class,
            )?),
            Model::F16(w) if plain => Executor::PlainF16(PlainIncremental::new(
                w,
                bytemuck::cast_slice_mut(buffer),
                class,
            )?),
            Model::F32(w) => {
                Executor::F32(Incremental::new(w, bytemuck::cast_slice_mut(buffer), class)?)
            }
            Model::F16(w) => {
                Executor::F16(Incremental::new(w, bytemuck::cast_slice_mut(buffer), class)?)
            }
            Model::Int8(w) => {
                Executor::Int8(IncrementalI8::new(w, bytemuck::cast_slice_mut(buffer), class)?)
            }
        })
    }
}

/// Runs `$call` on whichever executor `$exec` holds, bound to `$e`.
macro_rules! each {
    ($exec:expr, $e:ident => $call:expr) => {
        match $exec {
            Executor::F32($e) => $call,
            Executor::F16($e) => $call,
            Executor::Int8($e) => $call,
            Executor::PlainF32($e) => $call,
            Executor::PlainF16($e) => $call,
        }
    };
}

impl PixelExecutor for Executor<'_, '_> {
    fn arch(&self) -> &Arch {
        each!(self, e => e.arch())
    }
    fn restart(&mut self, class: Option<usize>) -> Result<(), Error> {
        each!(self, e => e.restart(class))
    }
    fn position(&self) -> usize {
        each!(self, e => e.position())
    }
    fn push(&mut self, level: u8) -> Result<(), Error> {
        each!(self, e => e.push(level))
    }
    fn sample(&mut self, temperature: f32, rng: &mut Rng) -> Result<u8, Error> {
        each!(self, e => PixelExecutor::sample(e, temperature, rng))
    }
    fn log_probability(&mut self, level: u8) -> Result<f64, Error> {
        each!(self, e => PixelExecutor::log_probability(e, level))
    }
}
