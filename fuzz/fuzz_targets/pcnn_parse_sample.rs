//! `.pcnn` parse, then sample and score: [`pixelcnn_fuzz::pcnn_parse_sample`].
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| pixelcnn_fuzz::pcnn_parse_sample(data));
