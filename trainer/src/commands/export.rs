//! `trainer export`: the run's checkpoint as ONNX, with the int8 activation
//! ranges measured on training images (or samples) in its metadata.

use anyhow::Context;
use pixelcnn_runtime::{onnx, Variant, Weights};

use crate::calibration;
use crate::checkpoint::Checkpoint;
use crate::cli::ExportArgs;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    // Before any work: an ONNX file gets the .onnx extension (so it cannot
    // land on a .pcnn model), and no checkpoint is written over.
    let ckpt_path = crate::checkpoint::path(&args.run);
    crate::output::check(&args.out, "onnx", &[&ckpt_path])?;
    let ckpt = Checkpoint::load(&args.run)?;
    let (params, which) = ckpt.inference_params(args.raw_weights);
    let weights = Weights::new(ckpt.arch, params)?;
    // int8 serves Gated PixelCNNs only: a plain model carries no ranges.
    anyhow::ensure!(
        ckpt.arch.variant == Variant::Gated || args.calib.is_none(),
        "--calib measures the int8 activation ranges, and int8 runs Gated PixelCNNs only: \
         leave it out for this plain PixelCNN"
    );
    let calibration = match ckpt.arch.variant {
        Variant::Gated => {
            Some(calibration::calibrate(&weights, args.calib.as_deref(), args.calib_images)?)
        }
        Variant::Plain => None,
    };
    onnx::export(&weights, calibration.as_ref(), &ckpt.settings.class_names, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out)?.len();
    say!(
        "wrote {} ({} parameters: {which}, {} bytes, trained {} epochs / {} steps{})",
        args.out.display(),
        ckpt.arch.param_count(),
        size,
        ckpt.progress.epoch,
        ckpt.progress.step,
        calibration.map_or_else(String::new, |c| format!("; int8 ranges from {}", c.source))
    );
    Ok(())
}
