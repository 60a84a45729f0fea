//! Numeric kernels of the hot path.
//!
//! `generic` is the portable reference and always builds; SIMD kernels for
//! x86_64 and aarch64 will replace entries of it and run its tests.

pub mod generic;

pub use generic::{dot_f16, dot_f32, dot_i8, gate_f32, matvec_f32, relu_f32};
