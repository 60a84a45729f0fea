//! The fuzz targets' seed corpus and every crash the fuzzers found, replayed
//! through the targets' own functions (`fuzz/src/lib.rs`) in the ordinary
//! test run: a crash fixed once stays fixed, on every CI target.

use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

/// The files of `fuzz/corpus/<target>` and `fuzz/regressions/<target>`.
fn inputs(target: &str) -> Vec<PathBuf> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in [fuzz.join("corpus").join(target), fuzz.join("regressions").join(target)] {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        files.extend(entries.map(|e| e.expect("readable folder").path()));
    }
    files.sort();
    files
}

#[test]
fn the_pcnn_corpus_and_regressions_run_without_a_panic() {
    let files = inputs("pcnn_parse_sample");
    let mut valid = 0;
    for file in &files {
        let bytes = std::fs::read(file).expect("readable input");
        // A panic names the file that caused it.
        eprintln!("{}", file.display());
        targets::pcnn_parse_sample(&bytes);
        let aligned = pixelcnn_runtime::format::AlignedBytes::new(&bytes);
        valid += usize::from(pixelcnn_runtime::format::parse(aligned.as_bytes()).is_ok());
    }
    // The seeds are valid models, so the replay reaches the executors.
    assert!(valid >= 8, "{valid} of {} inputs parse: is the seed corpus committed?", files.len());
}

#[test]
fn the_codec_corpus_and_regressions_run_without_a_panic() {
    let files = inputs("codec_decode");
    let mut valid = 0;
    for file in &files {
        let bytes = std::fs::read(file).expect("readable input");
        eprintln!("{}", file.display());
        targets::codec_decode(&bytes);
        valid += usize::from(pixelcnn_runtime::codec::container::parse(&bytes).is_ok());
    }
    assert!(valid >= 2, "{valid} of {} inputs parse: is the seed corpus committed?", files.len());
}

#[cfg(feature = "onnx")]
#[test]
fn the_onnx_corpus_and_regressions_run_without_a_panic() {
    let files = inputs("onnx_import");
    assert!(files.len() >= 5, "the seed corpus is committed: {files:?}");
    for file in files {
        let bytes = std::fs::read(&file).expect("readable input");
        eprintln!("{}", file.display());
        targets::onnx_import(&bytes);
    }
}
