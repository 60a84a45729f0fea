//! `--kernel NAME`: run an int8 or float kernel other than the default
//! (to compare them, or to ask for the inexact `neon-fp16`).

use anyhow::bail;
use pixelcnn_runtime::kernels::{FloatKernel, Int8Kernel};

/// Makes executors built from now on use the kernel called `name`.
///
/// # Errors
/// When no kernel of that name can run on this CPU (the message lists
/// those that can).
pub fn prefer(name: &str) -> anyhow::Result<()> {
    if let Some(kernel) = Int8Kernel::available().find(|k| k.name() == name) {
        kernel.prefer();
    } else if let Some(kernel) = FloatKernel::available().find(|k| k.name() == name) {
        kernel.prefer();
    } else {
        let int8: Vec<_> = Int8Kernel::available().map(|k| k.name()).collect();
        let float: Vec<_> = FloatKernel::available().map(|k| k.name()).collect();
        bail!(
            "kernel {name} cannot run here; int8 kernels: {}; float kernels: {}",
            int8.join(", "),
            float.join(", ")
        );
    }
    Ok(())
}
