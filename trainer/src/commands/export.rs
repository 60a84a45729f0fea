//! `trainer export`: the run's checkpoint as ONNX.

use anyhow::Context;
use pixelcnn_runtime::{onnx, Weights};

use crate::checkpoint::Checkpoint;
use crate::cli::ExportArgs;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let ckpt = Checkpoint::load(&args.run)?;
    let weights = Weights::new(ckpt.arch, &ckpt.params)?;
    onnx::export(&weights, &args.out)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    let size = std::fs::metadata(&args.out)?.len();
    say!(
        "wrote {} ({} parameters, {} bytes, trained {} epochs / {} steps)",
        args.out.display(),
        ckpt.arch.param_count(),
        size,
        ckpt.progress.epoch,
        ckpt.progress.step
    );
    Ok(())
}
