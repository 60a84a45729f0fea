//! ONNX import, then a reference pass: [`pixelcnn_fuzz::onnx_import`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelcnn_fuzz::onnx_import(data));
