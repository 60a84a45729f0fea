//! `--kernel NAME`: run an int8 or float kernel other than the default
//! (to compare them, or to ask for the inexact `neon-fp16`).

use anyhow::bail;
use pixelcnn_runtime::kernels::{FloatKernel, Int8Kernel};
use pixelcnn_runtime::Precision;

/// Makes executors built from now on use the kernel called `name`, which
/// must be of the model's kind: an int8 kernel for an int8 model, a float
/// one for f32 and f16.
///
/// # Errors
/// When no kernel of that name can run on this CPU, or it is of the other
/// kind (the message lists those that can run the model).
pub fn prefer(name: &str, precision: Precision) -> anyhow::Result<()> {
    let int8 = || Int8Kernel::available().map(|k| k.name()).collect::<Vec<_>>().join(", ");
    let float = || FloatKernel::available().map(|k| k.name()).collect::<Vec<_>>().join(", ");
    let int8_kernel = Int8Kernel::available().find(|k| k.name() == name);
    let float_kernel = FloatKernel::available().find(|k| k.name() == name);
    match (precision, int8_kernel, float_kernel) {
        // Found among the available ones: preferring it succeeds.
        (Precision::Int8, Some(kernel), _) => _ = kernel.prefer(),
        (Precision::F32 | Precision::F16, _, Some(kernel)) => _ = kernel.prefer(),
        (Precision::Int8, None, Some(_)) => bail!(
            "kernel {name} is a float kernel, and this model runs in int8: choose an int8 \
             kernel ({}) or run the model in float (--precision f32)",
            int8()
        ),
        (_, Some(_), None) => bail!(
            "kernel {name} is an int8 kernel, and this model runs in {precision}: choose a float \
             kernel ({}) or run the model in int8 (--precision int8)",
            float()
        ),
        _ => bail!(
            "kernel {name} cannot run here; int8 kernels: {}; float kernels: {}",
            int8(),
            float()
        ),
    }
    Ok(())
}

/// As [`prefer`], for a kernel of either kind (`inspect --kernels`, which
/// runs no model).
///
/// # Errors
/// When no kernel of that name can run on this CPU.
pub fn prefer_any(name: &str) -> anyhow::Result<()> {
    if Int8Kernel::available().any(|k| k.name() == name) {
        prefer(name, Precision::Int8)
    } else {
        prefer(name, Precision::F32)
    }
}
