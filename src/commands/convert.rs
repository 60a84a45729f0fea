//! `pixelcnn convert`: write the device format in a chosen precision.

use anyhow::Context;

use crate::cli::ConvertArgs;
use crate::{model_file, output};

pub fn run(args: &ConvertArgs) -> anyhow::Result<()> {
    let calib = args.calibration.calib.as_deref();
    let inputs: Vec<&std::path::Path> =
        [Some(args.input.as_path()), calib].into_iter().flatten().collect();
    output::check(&args.out, "pcnn", &inputs)?;
    let file = model_file::open(&args.input, Some(args.precision), &args.calibration, None)?;
    let model = file.model()?;
    std::fs::write(&args.out, file.pcnn_bytes())
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    say!(
        "wrote {} ({}, {} bytes: {} of weights; {} bytes of RAM to run)",
        args.out.display(),
        model.precision(),
        file.pcnn_bytes().len(),
        model.weight_bytes(),
        4 * model.state_words()
    )?;
    Ok(())
}
