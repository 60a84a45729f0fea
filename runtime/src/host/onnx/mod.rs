//! ONNX: export of a model and import of an exported model (host only).
//!
//! The contract tools rely on:
//! - input `pixels`: float32 `[N, 1, H, W]`, holding `level / (K − 1)`;
//! - input `label`: int64 `[N]`, only in class-conditional models;
//! - output `logits`: float32 `[N, K, H, W]`;
//! - `metadata_props["pixelcnn"]`: the architecture as JSON
//!   ([`crate::Arch::to_json`]);
//! - `metadata_props["pixelcnn.int8_calibration"]`, optional: the activation
//!   ranges int8 quantization needs, measured at export on training images,
//!   so converting to int8 at load is a pure weight transform;
//! - `metadata_props["pixelcnn.class_names"]`, optional: the classes' names
//!   in label order, a JSON array of strings (PNG class folders,
//!   Fashion-MNIST's garments).
//!
//! Masks are baked into the weights: cropped kernels with asymmetric padding
//! where the crop is a rectangle, explicit zeros where it is not (the centre
//! tap of mask A, the current row of the plain network's kernels). The v→h
//! link's down-shift is a 2×1 convolution whose lower tap is zero, padded one
//! row on top, so row 0 gets the link's bias alone, as in the runtime.
//!
//! Initializers are named after the layer and tensor (`layer3.v.weight`,
//! `layer0.h.class`, `head2.bias`) and stored in ONNX's `[out, in, kh, kw]`
//! order; the importer reads them back into the runtime layout and refuses a
//! file whose masked taps are not zero (such a model would see the future).

mod calibration;
mod export;
mod foreign;
mod import;

pub use export::{export, to_onnx_bytes, to_onnx_bytes_calibrated, to_onnx_bytes_with};
pub use foreign::{
    import_graph, verify_graph_with_tract, ForeignGraph, ForeignTract, Io, OutputFn, Role, REMASK,
};
pub use import::{
    import, import_bytes, is_native, verify_with_tract, ImportError, Imported, TractRunner,
};

/// The metadata key of the int8 calibration.
pub const CALIBRATION_KEY: &str = "pixelcnn.int8_calibration";

/// The metadata key of the classes' names.
pub const CLASS_NAMES_KEY: &str = "pixelcnn.class_names";

/// ONNX opset the graph is written for.
pub const OPSET: i64 = 13;
