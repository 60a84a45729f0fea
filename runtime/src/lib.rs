#![doc = include_str!("../README.md")]
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(missing_docs, missing_debug_implementations)]
// Unsafe code is confined to the SIMD kernels, each call with a `// Safety:`
// comment, each kernel tested bit for bit against the portable one.
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

pub mod arch;
#[cfg(feature = "json")]
pub mod arch_json;
pub mod codec;
#[cfg(feature = "data")]
pub mod data;
pub mod error;
pub mod format;
pub mod incremental;
pub mod int8;
pub mod kernels;
pub mod model;
pub mod params;
pub mod plain;
pub mod quant;
pub mod raster;
pub mod rng;
pub mod sampler;
pub mod state;

#[cfg(feature = "onnx")]
pub mod onnx;
#[cfg(feature = "alloc")]
pub mod random_weights;
#[cfg(feature = "alloc")]
pub mod receptive_field;
#[cfg(feature = "alloc")]
pub mod reference;

pub use arch::{Arch, ArchError, Variant};
pub use error::Error;
pub use half::f16;
pub use incremental::Incremental;
pub use model::{Executor, Model, Precision};
pub use params::{Param, TensorKind, TensorSpec, Weights};
pub use plain::PlainIncremental;
pub use quant::{IncrementalI8, QuantWeights};
pub use raster::{Logit, Network, Raster};
pub use sampler::PixelExecutor;
pub use state::{PlainLayout, QuantStateLayout, StateLayout};
