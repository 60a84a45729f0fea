//! `.pcnz` parse, then decode with the shipped model: [`pixelcnn_fuzz::codec_decode`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelcnn_fuzz::codec_decode(data));
