//! The executors: what turns a model into pixels, one at a time, with the
//! caches of the vertical and horizontal stacks. [`raster`] holds the one
//! raster-order protocol (stages, row and pixel steps, checks), generic over
//! a sealed [`raster::Network`]; each network is a module:
//!
//! - [`gated`]: the Gated PixelCNN in f32 or f16 weights ([`gated::Incremental`]);
//! - [`gated_int8`]: the same network integer-only ([`gated_int8::IncrementalI8`]);
//! - [`lockstep`]: int8 images in lockstep, sharing each weight load;
//! - [`plain`]: the plain masked PixelCNN baseline.
//!
//! They compute with [`crate::kernels`] and keep their state in a caller's
//! buffer sized by [`crate::state`].

pub mod gated;
pub mod gated_int8;
pub mod lockstep;
pub mod plain;
pub mod raster;
