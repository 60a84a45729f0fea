//! An int8 model's weights: the layers, their requantization points, and
//! the packed forms the x86_64 kernels read. The arithmetic, and its number
//! formats, is the spec in [`crate::int8`]; the executors that run an int8
//! model are in [`crate::exec`] ([`crate::exec::gated_int8`],
//! [`crate::exec::lockstep`]), its calibration and full-pass oracle in
//! `crate::host`. All are re-exported here under their earlier paths.

pub mod packed;
pub mod weights;

// The executors and the host-only passes, at their earlier paths.
pub use crate::exec::{gated_int8 as incremental, lockstep};
#[cfg(feature = "alloc")]
pub use crate::host::{calibrate, reference_int8 as reference};

pub use crate::int8::{
    clamp_i8, clamp_pre, gate_i8, QuantMultiplier, LOGIT_SCALE, PRE_MAX, PRE_MIN, PRE_SCALE,
    UNIT_SCALE,
};
pub use crate::int8::{gate, softmax, tables};
pub use crate::state::QuantStateLayout;
pub use incremental::{GatedInt8, IncrementalI8};
pub use lockstep::LockstepI8;
pub use weights::{QuantLayer, QuantWeights, Requant, RequantPoint};
