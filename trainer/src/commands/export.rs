//! `trainer export`: the run's checkpoint as ONNX.

use pixelcnn_runtime::Weights;

use crate::checkpoint::Checkpoint;
use crate::cli::ExportArgs;
use crate::onnx;

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let ckpt = Checkpoint::load(&args.run)?;
    let weights = Weights::new(ckpt.arch, &ckpt.params)?;
    onnx::export(&weights, &args.out)?;
    let size = std::fs::metadata(&args.out)?.len();
    println!(
        "wrote {} ({} parameters, {} bytes, trained {} epochs / {} steps)",
        args.out.display(),
        ckpt.arch.param_count(),
        size,
        ckpt.progress.epoch,
        ckpt.progress.step
    );
    Ok(())
}
