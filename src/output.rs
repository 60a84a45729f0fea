//! Checks on an output path, made before any work: the extension says what
//! is written, and no input is overwritten.

use std::path::Path;

use anyhow::{bail, ensure};

/// Refuses `out` when it has an extension other than `.{extension}`, or is
/// one of `inputs`.
pub fn check(out: &Path, extension: &str, inputs: &[&Path]) -> anyhow::Result<()> {
    let matches = out.extension().is_none_or(|e| e.eq_ignore_ascii_case(extension));
    ensure!(
        matches,
        "{} would hold {} bytes: give it the .{extension} extension",
        out.display(),
        extension.to_uppercase()
    );
    for input in inputs {
        let same = match (out.canonicalize(), input.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        if same {
            bail!("refusing to write over the input {}: choose another output", input.display());
        }
    }
    Ok(())
}
