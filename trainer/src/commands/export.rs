//! `trainer export`: the run's checkpoint as ONNX, with the int8 activation
//! ranges measured on training images (or samples) in its metadata.

use anyhow::{ensure, Context};
use pixelcnn_runtime::data::{self, Split};
use pixelcnn_runtime::quant::calibrate::{model_samples, Calibration};
use pixelcnn_runtime::{onnx, Variant, Weights};

use crate::checkpoint::Checkpoint;
use crate::cli::ExportArgs;
use crate::progress;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let ckpt = Checkpoint::load(&args.run)?;
    let weights = Weights::new(ckpt.arch, &ckpt.params)?;
    // int8 serves Gated PixelCNNs only: a plain model carries no ranges.
    let calibration = match ckpt.arch.variant {
        Variant::Gated => Some(calibrate(&weights, args)?),
        Variant::Plain => None,
    };
    onnx::export(&weights, calibration.as_ref(), &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out)?.len();
    say!(
        "wrote {} ({} parameters, {} bytes, trained {} epochs / {} steps{})",
        args.out.display(),
        ckpt.arch.param_count(),
        size,
        ckpt.progress.epoch,
        ckpt.progress.step,
        calibration.map_or_else(String::new, |c| format!("; int8 ranges from {}", c.source))
    );
    Ok(())
}

/// The int8 activation ranges, on `--calib` images or the model's samples.
fn calibrate(weights: &Weights<'_>, args: &ExportArgs) -> anyhow::Result<Calibration> {
    let arch = *weights.arch();
    let n = args.calib_images;
    ensure!(n > 0, "--calib-images must be at least 1");
    let (images, source) = match &args.calib {
        Some(dir) => {
            let images = data::load(dir, data::detect(dir)?, Split::Train, arch.levels)?;
            images.check_fits(&arch)?;
            let pairs = images.first_labelled(n, &arch);
            let source = format!("{} training images from {}", pairs.len(), dir.display());
            (pairs, source)
        }
        None => {
            let bar = progress::bar(n as u64, "sampling calibration images");
            let pairs = model_samples(weights, n, || bar.inc(1))?;
            bar.finish_and_clear();
            (pairs, format!("{n} samples of the float model"))
        }
    };
    let bar = progress::bar(images.len() as u64, "measuring int8 ranges");
    let cal = Calibration::measure(weights, &images, source, || bar.inc(1))?;
    bar.finish_and_clear();
    Ok(cal)
}
