//! Model files as the tool sees them: ONNX or `.pcnn`, converted to the
//! precision asked for on the way in. Whatever the source, the result is
//! `.pcnn` bytes read back through the device parser, so the tool runs
//! exactly what a device would.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
use pixelcnn_runtime::{f16, Arch, Model, Precision, Weights};

use crate::cli::{CalibrationArgs, ModelArgs};

/// A loaded model: `.pcnn` bytes in an aligned buffer.
#[derive(Debug)]
pub struct ModelFile {
    bytes: AlignedBytes,
    /// Where it came from.
    pub path: PathBuf,
    /// Bytes of the file on disk.
    pub file_len: u64,
    /// How it was obtained, for reports ("read", "converted from ONNX …").
    pub origin: String,
    /// The classes' names, in label order (empty: numbered classes).
    pub class_names: Vec<String>,
}

impl ModelFile {
    /// The parsed model.
    pub fn model(&self) -> anyhow::Result<Model<'_>> {
        Ok(format::parse(self.bytes.as_bytes())?)
    }

    /// The `.pcnn` encoding (what `convert` writes).
    pub fn pcnn_bytes(&self) -> &[u8] {
        self.bytes.as_bytes()
    }

    /// "3" or "3 (Dress)".
    pub fn describe_class(&self, class: usize) -> String {
        match self.class_names.get(class) {
            Some(name) => format!("{class} ({name})"),
            None => class.to_string(),
        }
    }

    /// The class `--class` names: a number, or one of the model's class
    /// names.
    ///
    /// # Errors
    /// When it is neither, or the model is unconditional or has no such
    /// class (the message lists the classes).
    pub fn class(&self, given: &str, classes: usize) -> anyhow::Result<usize> {
        let listed = || {
            if self.class_names.is_empty() {
                format!("0 to {}", classes.saturating_sub(1))
            } else {
                let named: Vec<String> = (0..classes).map(|i| self.describe_class(i)).collect();
                named.join(", ")
            }
        };
        if classes == 0 {
            bail!("--class {given}: {} is unconditional (it has no classes)", self.path.display());
        }
        let found = match given.parse::<usize>() {
            Ok(n) => Some(n).filter(|&n| n < classes),
            Err(_) => self.class_names.iter().position(|n| n.eq_ignore_ascii_case(given)),
        };
        found.ok_or_else(|| {
            anyhow::anyhow!("--class {given}: {} has the classes {}", self.path.display(), listed())
        })
    }
}

/// The class names in a `.pcnn` file's notes, checked.
fn class_names_of(bytes: &[u8], classes: usize, path: &Path) -> anyhow::Result<Vec<String>> {
    let lines: Vec<(Option<usize>, &str)> =
        format::notes(bytes).map(|n| format::class_name_lines(n).collect()).unwrap_or_default();
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let in_order = lines.iter().enumerate().all(|(i, (n, _))| *n == Some(i));
    let names: Vec<String> = lines.iter().map(|(_, name)| name.to_string()).collect();
    format::check_class_names(&names, classes)
        .map_err(anyhow::Error::msg)
        .and_then(|()| {
            anyhow::ensure!(in_order, "class names out of order");
            Ok(())
        })
        .with_context(|| format!("cannot load model {}: its notes' class names", path.display()))?;
    Ok(names)
}

/// The notes lines of `names`.
fn class_name_notes(names: &[String]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| format!("{}{i}={name}\n", format::CLASS_NAME_KEY))
        .collect()
}

/// Loads `--model` in `--precision`.
pub fn load(args: &ModelArgs) -> anyhow::Result<ModelFile> {
    open(&args.model, args.precision, &args.calibration)
}

/// Opens a model file, converting it to `precision` when asked.
pub fn open(
    path: &Path,
    precision: Option<Precision>,
    calibration: &CalibrationArgs,
) -> anyhow::Result<ModelFile> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read model {} (train and export one with `trainer`)", path.display())
    })?;
    let file_len = bytes.len() as u64;
    let done = |bytes: &[u8], origin: String| -> anyhow::Result<ModelFile> {
        let aligned = AlignedBytes::new(bytes);
        let model = format::parse(aligned.as_bytes())?;
        let class_names = class_names_of(aligned.as_bytes(), model.arch().classes, path)?;
        Ok(ModelFile { bytes: aligned, path: path.into(), file_len, origin, class_names })
    };
    if bytes.starts_with(&format::MAGIC) {
        let aligned = AlignedBytes::new(&bytes);
        let model = format::parse(aligned.as_bytes())
            .with_context(|| format!("cannot load model {}", path.display()))?;
        let have = model.precision();
        let names = class_names_of(aligned.as_bytes(), model.arch().classes, path)?;
        let converted = match (have, precision) {
            (_, None) => None,
            (have, Some(want)) if have == want => None,
            (Precision::F32, Some(want)) => {
                let Model::F32(w) = &model else { unreachable!("precision is f32") };
                let params = w.as_slice();
                Some((convert(w.arch(), params, want, calibration, None, &names, path)?, want))
            }
            (have, Some(want)) => bail!(
                "{} is stored in {have}; {want} needs the float model (the ONNX file or an f32 .pcnn)",
                path.display()
            ),
        };
        return match converted {
            // Already parsed above: keep this aligned copy as it is.
            None => Ok(ModelFile {
                bytes: aligned,
                path: path.into(),
                file_len,
                origin: format!("{have} .pcnn"),
                class_names: names,
            }),
            Some((bytes, want)) => done(&bytes, format!("f32 .pcnn converted to {want}")),
        };
    }
    #[cfg(feature = "onnx")]
    {
        let imported = pixelcnn_runtime::onnx::import_bytes(&bytes).with_context(|| {
            format!(
                "cannot load model {}: neither a .pcnn file nor a usable ONNX file",
                path.display()
            )
        })?;
        let want = precision.unwrap_or(Precision::F32);
        let stored = imported.calibration.as_ref();
        let converted = convert(
            &imported.arch,
            &imported.params,
            want,
            calibration,
            stored,
            &imported.class_names,
            path,
        )?;
        done(&converted, format!("ONNX converted to {want}"))
    }
    #[cfg(not(feature = "onnx"))]
    {
        bail!(
            "cannot load model {}: it is not a .pcnn file, and this pixelcnn was built without \
             ONNX support; convert it on a host (`pixelcnn convert MODEL.onnx -o MODEL.pcnn`) \
             or rebuild with the default features",
            path.display()
        )
    }
}

/// Encodes float parameters as a `.pcnn` file in `precision`. `stored` is
/// the calibration an ONNX file carries; int8 uses it unless the arguments
/// ask for another.
pub fn convert(
    arch: &Arch,
    params: &[f32],
    precision: Precision,
    calibration: &CalibrationArgs,
    stored: Option<&Calibration>,
    class_names: &[String],
    source: &Path,
) -> anyhow::Result<Vec<u8>> {
    let weights = Weights::new(*arch, params)?;
    let name = source.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    // The notes are lines: a file name with a line break would add a line.
    let name = name.replace(|c: char| c.is_control(), "?");
    let classes = class_name_notes(class_names);
    Ok(match precision {
        Precision::F32 => format::to_bytes(
            &Model::F32(weights),
            &format!("source={name}\nprecision=f32\n{classes}"),
        ),
        Precision::F16 => {
            let halves: Vec<f16> = params.iter().map(|&w| f16::from_f32(w)).collect();
            let model =
                Model::F16(Weights::new(*arch, &halves).context(
                    "a weight is too large for f16 (above 65504); keep this model in f32",
                )?);
            format::to_bytes(&model, &format!("source={name}\nprecision=f16\n{classes}"))
        }
        Precision::Int8 => {
            if arch.variant != pixelcnn_runtime::Variant::Gated {
                bail!("int8 needs a Gated PixelCNN; this is a plain PixelCNN (use f32 or f16)");
            }
            let cal = match stored {
                Some(c) if calibration.calib.is_none() && calibration.calib_images.is_none() => {
                    c.clone()
                }
                _ => crate::calibration::calibrate(
                    &weights,
                    calibration.calib.as_deref(),
                    calibration.count(),
                )?,
            };
            let quant = quantize(&weights, &cal)?;
            let notes = format!(
                "source={name}\nprecision=int8\ncalibration={}\nlayer_out_max={:?}\nvertical_pre_max={:?}\nhead_hidden_max={}\n{classes}",
                cal.source, cal.layer_out, cal.vertical_pre, cal.head_hidden
            );
            format::to_bytes(&Model::Int8(quant.view()?), &notes)
        }
    })
}
