//! Host-only parts (feature `alloc` and up): the full-image passes that
//! serve as oracles, calibration, ONNX, datasets, and the receptive-field
//! tool. Nothing on a device's sampling path uses them.
//!
//! - [`reference`](mod@reference): the float full forward pass of either network;
//! - [`reference_int8`]: the integer-only full pass, the int8 executors' oracle;
//! - [`calibrate`]: int8 activation ranges and quantization;
//! - `onnx` (feature `onnx`): export and import through tract-onnx;
//! - `data` (feature `data`): MNIST-style IDX files and PNG folders;
//! - [`receptive_field`], [`random_weights`].

pub mod calibrate;
#[cfg(feature = "data")]
pub mod data;
#[cfg(feature = "onnx")]
pub mod onnx;
pub mod random_weights;
pub mod receptive_field;
pub mod reference;
pub mod reference_int8;
