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
        let file =
            ModelFile { bytes: AlignedBytes::new(bytes), path: path.into(), file_len, origin };
        file.model()?;
        Ok(file)
    };
    if bytes.starts_with(&format::MAGIC) {
        let aligned = AlignedBytes::new(&bytes);
        let model = format::parse(aligned.as_bytes())
            .with_context(|| format!("cannot load model {}", path.display()))?;
        let have = model.precision();
        let converted = match (have, precision) {
            (_, None) => None,
            (have, Some(want)) if have == want => None,
            (Precision::F32, Some(want)) => {
                let Model::F32(w) = &model else { unreachable!("precision is f32") };
                Some((convert(w.arch(), w.as_slice(), want, calibration, None, path)?, want))
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
        let converted = convert(&imported.arch, &imported.params, want, calibration, stored, path)?;
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
    source: &Path,
) -> anyhow::Result<Vec<u8>> {
    let weights = Weights::new(*arch, params)?;
    let name = source.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    Ok(match precision {
        Precision::F32 => {
            format::to_bytes(&Model::F32(weights), &format!("source={name}\nprecision=f32\n"))
        }
        Precision::F16 => {
            let halves: Vec<f16> = params.iter().map(|&w| f16::from_f32(w)).collect();
            let model =
                Model::F16(Weights::new(*arch, &halves).context(
                    "a weight is too large for f16 (above 65504); keep this model in f32",
                )?);
            format::to_bytes(&model, &format!("source={name}\nprecision=f16\n"))
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
                "source={name}\nprecision=int8\ncalibration={}\nlayer_out_max={:?}\nvertical_pre_max={:?}\nhead_hidden_max={}\n",
                cal.source, cal.layer_out, cal.vertical_pre, cal.head_hidden
            );
            format::to_bytes(&Model::Int8(quant.view()?), &notes)
        }
    })
}
