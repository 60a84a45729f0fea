//! int8 calibration as both host tools run it: activation ranges measured on
//! training images from a folder, or on samples of the float model, with
//! progress on stderr. Shared by `pixelcnn` (convert at load) and `trainer`
//! (export), so both store the same ranges for the same images.

use std::path::Path;

use anyhow::ensure;
use pixelcnn_runtime::data::{self, Split};
use pixelcnn_runtime::quant::calibrate::{model_samples, Calibration};
use pixelcnn_runtime::Weights;

use crate::progress;

/// Ranges over the first `n` training images in `dir`, or over `n` samples
/// of the model when no folder is given.
pub fn calibrate(
    weights: &Weights<'_>,
    dir: Option<&Path>,
    n: usize,
) -> anyhow::Result<Calibration> {
    let arch = *weights.arch();
    ensure!(n > 0, "--calib-images must be at least 1");
    let (images, source) = match dir {
        Some(dir) => {
            let kind = data::detect(dir)?;
            let images = data::load(dir, kind, Split::Train, arch.levels)?;
            images.check_fits(&arch)?;
            let pairs = images.first_labelled(n, &arch);
            // The model file records the data, not this machine's path to it.
            let folder = dir.file_name().map_or_else(|| ".".into(), |n| n.to_string_lossy());
            let what = match kind {
                data::DatasetKind::PngDir => "PNGs",
                _ => "IDX images",
            };
            let source = format!("{} training {what} from a folder named {folder}", pairs.len());
            (pairs, source)
        }
        None => {
            let bar = progress::bar(n as u64, "sampling calibration images");
            let pairs = model_samples(weights, n, || bar.inc(1))?;
            bar.finish_and_clear();
            (pairs, format!("{n} samples of the float model"))
        }
    };
    let bar = progress::bar(images.len() as u64, "calibrating int8");
    let cal = Calibration::measure(weights, &images, source, || bar.inc(1))?;
    bar.finish_and_clear();
    Ok(cal)
}
