//! Model files as the tool sees them: ONNX or `.pcnn`, converted to the
//! precision asked for on the way in. Whatever the source, the result is
//! `.pcnn` bytes read back through the device parser, so the tool runs
//! exactly what a device would.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use pixelcnn_runtime::format::{self, AlignedBytes};
use pixelcnn_runtime::graph::exec::{GraphExecutor, Weights as GraphWeights};
use pixelcnn_runtime::graph::plan::Plan;
use pixelcnn_runtime::graph::Graph;
use pixelcnn_runtime::quant::calibrate::{quantize, Calibration};
use pixelcnn_runtime::{f16, Arch, Executor, Model, PixelExecutor, Precision, Weights};

use crate::cli::{CalibrationArgs, ModelArgs};
use pixelcnn_runtime::graph::InputKind;

/// A foreign ONNX graph (a PixelCNN from PyTorch or Keras) compiled into an
/// incremental schedule.
#[derive(Debug)]
pub struct GraphModel {
    /// The graph.
    pub graph: Graph,
    /// Its schedule.
    pub plan: Plan,
    /// What the importer recognised and did, one line each.
    pub notes: Vec<String>,
    /// The file's inputs and output as tract runs them.
    #[cfg(feature = "onnx")]
    pub io: pixelcnn_runtime::onnx::Io,
    /// The convolutions' weights: f32, or rounded to f16.
    pub weights: GraphWeights,
}

/// A loaded model: `.pcnn` bytes in an aligned buffer, or a compiled
/// foreign graph.
#[derive(Debug)]
pub struct ModelFile {
    /// The `.pcnn` encoding (empty for a foreign graph).
    bytes: AlignedBytes,
    /// A foreign graph, when the file is one.
    pub graph: Option<Box<GraphModel>>,
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
    /// The parsed `.pcnn` model.
    ///
    /// # Errors
    /// For a foreign graph, which has no `.pcnn` form yet: the commands that
    /// need one (convert, compress, decompress, lockstep batches) say so.
    pub fn model(&self) -> anyhow::Result<Model<'_>> {
        if self.graph.is_some() {
            bail!(
                "{} is an ONNX graph from another trainer: it runs in f32 or f16 with `sample`, \
                 `complete`, `eval`, `bench` and `inspect`; this needs a .pcnn model, which \
                 foreign graphs do not have yet",
                self.path.display()
            );
        }
        Ok(format::parse(self.bytes.as_bytes())?)
    }

    /// The image geometry (height, width, levels, classes) as an [`Arch`];
    /// a foreign graph's layer fields are zero.
    pub fn geometry(&self) -> anyhow::Result<Arch> {
        match &self.graph {
            Some(g) => {
                Ok(GraphExecutor::new(&g.graph, &g.plan, (g.graph.classes > 0).then_some(0))?
                    .arch()
                    .to_owned())
            }
            None => Ok(*self.model()?.arch()),
        }
    }

    /// The precision the model runs in.
    pub fn precision(&self) -> anyhow::Result<Precision> {
        match &self.graph {
            Some(g) if g.weights == GraphWeights::F16 => Ok(Precision::F16),
            Some(_) => Ok(Precision::F32),
            None => Ok(self.model()?.precision()),
        }
    }

    /// Runs `f` on a new executor of this model at pixel 0 of an image of
    /// `class` (one per thread; the executor allocates only here).
    pub fn with_executor<R>(
        &self,
        class: Option<usize>,
        f: impl FnOnce(&mut dyn PixelExecutor) -> anyhow::Result<R>,
    ) -> anyhow::Result<R> {
        match &self.graph {
            Some(g) => f(&mut GraphExecutor::with_weights(&g.graph, &g.plan, class, g.weights)?),
            None => {
                let model = self.model()?;
                let mut state = vec![0u32; model.host_state_words()];
                f(&mut Executor::new(&model, &mut state, class)?)
            }
        }
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
    #[cfg(feature = "onnx")]
    if args.as_graph {
        let bytes = std::fs::read(&args.model)
            .with_context(|| format!("cannot read model {}", args.model.display()))?;
        anyhow::ensure!(
            !bytes.starts_with(&format::MAGIC),
            "--as-graph runs ONNX files; {} is a .pcnn",
            args.model.display()
        );
        return open_graph(&args.model, &bytes, bytes.len() as u64, args.precision, args.input);
    }
    #[cfg(not(feature = "onnx"))]
    if args.as_graph {
        bail!("--as-graph reads ONNX, and this pixelcnn was built without the `onnx` feature");
    }
    open(&args.model, args.precision, &args.calibration, args.input)
}

/// Opens a model file, converting it to `precision` when asked.
pub fn open(
    path: &Path,
    precision: Option<Precision>,
    calibration: &CalibrationArgs,
    input: Option<InputKind>,
) -> anyhow::Result<ModelFile> {
    let bytes = std::fs::read(path).with_context(|| {
        format!("cannot read model {} (train and export one with `trainer`)", path.display())
    })?;
    let file_len = bytes.len() as u64;
    let done = |bytes: &[u8], origin: String| -> anyhow::Result<ModelFile> {
        let aligned = AlignedBytes::new(bytes);
        let model = format::parse(aligned.as_bytes())?;
        let class_names = class_names_of(aligned.as_bytes(), model.arch().classes, path)?;
        Ok(ModelFile {
            bytes: aligned,
            graph: None,
            path: path.into(),
            file_len,
            origin,
            class_names,
        })
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
                graph: None,
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
        if !pixelcnn_runtime::onnx::is_native(&bytes) {
            return open_graph(path, &bytes, file_len, precision, input);
        }
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

/// A foreign ONNX graph: imported, compiled, and checked against tract's
/// full pass of the same file on a random image.
#[cfg(feature = "onnx")]
fn open_graph(
    path: &Path,
    bytes: &[u8],
    file_len: u64,
    precision: Option<Precision>,
    input: Option<InputKind>,
) -> anyhow::Result<ModelFile> {
    use pixelcnn_runtime::onnx::{import_graph, verify_graph_with_tract};
    let weights = match precision {
        None | Some(Precision::F32) => GraphWeights::F32,
        Some(Precision::F16) => GraphWeights::F16,
        Some(p) => bail!(
            "{} is an ONNX graph from another trainer: it runs in f32 or f16 (--precision {p} \
             comes with the .pcnn form of these graphs)",
            path.display()
        ),
    };
    let imported = import_graph(bytes, input)
        .with_context(|| format!("cannot run {} incrementally", path.display()))?;
    let plan = Plan::compile(&imported.graph)
        .with_context(|| format!("cannot run {} incrementally", path.display()))?;
    let worst = verify_graph_with_tract(bytes, &imported, &plan, 0x5eed)
        .with_context(|| format!("cannot check {} against tract", path.display()))?;
    // The schedule must compute what the file computes: refuse it when
    // not (an importer bug, to report), rather than sample from it.
    anyhow::ensure!(
        worst <= 1e-3,
        "{}: the compiled graph's logits differ from tract's full pass by {worst:.1e} (relative): \
         this is a bug of the importer; please report it with the file",
        path.display()
    );
    let mut notes = imported.notes;
    notes.push(format!(
        "checked at load: the schedule's logits at every pixel equal tract's full pass within {worst:.1e}"
    ));
    Ok(ModelFile {
        bytes: AlignedBytes::new(&[]),
        graph: Some(Box::new(GraphModel {
            graph: imported.graph,
            plan,
            notes,
            io: imported.io,
            weights,
        })),
        path: path.into(),
        file_len,
        origin: match weights {
            GraphWeights::F32 => "ONNX graph, compiled".into(),
            GraphWeights::F16 => "ONNX graph, compiled, f16 weights".into(),
        },
        class_names: Vec::new(),
    })
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
