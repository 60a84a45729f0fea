//! Checks on an output path, made before any work: the extension says what
//! is written, no input is overwritten, and the folder it goes in exists
//! (created if missing, as for every command that writes a file).

use std::path::Path;

use anyhow::{bail, ensure};

/// Refuses `out` when it has an extension other than `.{extension}`, or is
/// one of `inputs`; creates the folder it goes in when that is missing.
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
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create the folder {}: {e}", dir.display()))?;
    }
    Ok(())
}
