//! Firmware-style generation on a virtual display. Lands with issue #7.
#![no_std]
#![deny(missing_docs)]

/// State bytes the simulator's default model will need on the device.
pub const DEFAULT_STATE_BYTES: usize = pixelcnn_runtime::Arch::MNIST_GATED.state_bytes();
