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
pub mod error;
pub mod exec;
pub mod format;
#[cfg(feature = "alloc")]
pub mod graph;
#[cfg(feature = "alloc")]
pub mod host;
pub mod int8;
pub mod kernels;
pub mod model;
pub mod params;
pub mod quant;
pub mod rng;
pub mod sampler;
pub mod state;

// The modules' earlier paths, before the executors and the host-only parts
// had folders of their own.
pub use exec::{gated as incremental, plain, raster};
#[cfg(feature = "data")]
pub use host::data;
#[cfg(feature = "onnx")]
pub use host::onnx;
#[cfg(feature = "alloc")]
pub use host::{random_weights, receptive_field, reference};

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
