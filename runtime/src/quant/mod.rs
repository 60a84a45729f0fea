//! Integer-only int8 inference: the int8 weights of a model, its
//! calibration, and the executors that run it (one image incrementally, a
//! lockstep batch, and the full-pass oracle). The arithmetic they share, and
//! its number formats, is the spec in [`crate::int8`]; its items are
//! re-exported here under their earlier paths.

pub mod incremental;
pub mod lockstep;
pub mod packed;
pub mod weights;

#[cfg(feature = "alloc")]
pub mod calibrate;
#[cfg(feature = "alloc")]
pub mod reference;

pub use crate::int8::{
    clamp_i8, clamp_pre, gate_i8, QuantMultiplier, LOGIT_SCALE, PRE_MAX, PRE_MIN, PRE_SCALE,
    UNIT_SCALE,
};
pub use crate::int8::{gate, softmax, tables};
pub use crate::state::QuantStateLayout;
pub use incremental::{GatedInt8, IncrementalI8};
pub use lockstep::LockstepI8;
pub use weights::{QuantLayer, QuantWeights, Requant, RequantPoint};
