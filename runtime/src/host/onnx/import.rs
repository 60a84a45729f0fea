//! The importer: an ONNX file written by [`super::export`] back to the
//! runtime's architecture and parameters.

use std::collections::HashMap;
use std::path::Path;

use prost::Message;
use tract_onnx::pb;
use tract_onnx::prelude::*;

use crate::host::calibrate::Calibration;
use crate::params::TensorKind;
use crate::{reference, Arch, TensorSpec, Weights};

/// Why an ONNX file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImportError {
    /// The file cannot be read.
    #[error("cannot read the file")]
    Io(#[from] std::io::Error),
    /// The bytes are not an ONNX protobuf.
    #[error("not an ONNX file: {0}")]
    Decode(String),
    /// A valid ONNX file, but not a pixelcnn-edge model.
    #[error("not a pixelcnn-edge model: {0}; export one with `trainer export`")]
    NotPixelcnn(String),
    /// A weight tensor is missing or malformed.
    #[error("tensor `{name}`: {problem}")]
    Tensor {
        /// The initializer's name.
        name: String,
        /// What is wrong with it.
        problem: String,
    },
    /// tract-onnx cannot load or run the graph.
    #[error("tract-onnx rejects the graph: {0}")]
    Tract(String),
    /// The weights are invalid for the runtime (NaN, wrong count).
    #[error(transparent)]
    Runtime(#[from] crate::Error),
    /// A graph from another trainer with an operation or a shape the
    /// importer cannot map, named.
    #[error("{0}")]
    Unsupported(String),
    /// A float image input whose encoding the file does not say.
    #[error(
        "the image input is a float tensor, and the file does not say how a level becomes its \
         value: give --input unit (level/(K-1)), signed (2*level/(K-1)-1) or levels (the level \
         as a number)"
    )]
    NeedsInput,
    /// The graph's logits see their own pixel or a later one, or another
    /// check of the compiled graph failed.
    #[error(transparent)]
    Graph(#[from] crate::graph::GraphError),
}

/// Whether `bytes` is an ONNX file written by `trainer export` (it carries
/// the `pixelcnn` metadata entry); other ONNX files go through the generic
/// importer ([`super::import_graph`]).
pub fn is_native(bytes: &[u8]) -> bool {
    pb::ModelProto::decode(bytes)
        .is_ok_and(|m| m.metadata_props.iter().any(|p| p.key == "pixelcnn"))
}

/// A model read from ONNX: its architecture and runtime-layout parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The architecture, from the file's metadata.
    pub arch: Arch,
    /// Parameters in runtime layout.
    pub params: Vec<f32>,
    /// The int8 activation ranges measured at export, when the file has them.
    pub calibration: Option<Calibration>,
    /// The classes' names, in label order; empty when the file names none.
    pub class_names: Vec<String>,
}

/// Reads an ONNX file written by `trainer export` (or [`super::export`]).
///
/// # Errors
/// [`ImportError`] saying what is wrong: not ONNX, not a pixelcnn model, a
/// missing or misshapen tensor, a nonzero masked tap, NaN weights.
pub fn import(path: &Path) -> Result<Imported, ImportError> {
    import_bytes(&std::fs::read(path)?)
}

/// [`import`] from bytes in memory.
///
/// # Errors
/// As [`import`].
pub fn import_bytes(bytes: &[u8]) -> Result<Imported, ImportError> {
    let model = pb::ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    let meta =
        model.metadata_props.iter().find(|p| p.key == "pixelcnn").ok_or_else(|| {
            ImportError::NotPixelcnn("metadata_props has no `pixelcnn` entry".into())
        })?;
    let json: serde_json::Value = serde_json::from_str(&meta.value).map_err(|e| {
        ImportError::NotPixelcnn(format!("the `pixelcnn` metadata is not JSON: {e}"))
    })?;
    let arch = Arch::from_json(&json).map_err(ImportError::NotPixelcnn)?;
    let calibration = model
        .metadata_props
        .iter()
        .find(|p| p.key == super::CALIBRATION_KEY)
        .map(|p| super::calibration::from_json(&p.value, &arch))
        .transpose()
        .map_err(|e| ImportError::NotPixelcnn(format!("the int8 calibration: {e}")))?;
    let class_names = match model.metadata_props.iter().find(|p| p.key == super::CLASS_NAMES_KEY) {
        None => Vec::new(),
        Some(p) => {
            let names: Vec<String> = serde_json::from_str(&p.value).map_err(|e| {
                ImportError::NotPixelcnn(format!(
                    "the class names are not a JSON string array: {e}"
                ))
            })?;
            crate::format::check_class_names(&names, arch.classes)
                .map_err(|e| ImportError::NotPixelcnn(format!("the class names: {e}")))?;
            names
        }
    };
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ImportError::NotPixelcnn("the file has no graph".into()))?;
    let inputs: Vec<&str> = graph.input.iter().map(|i| i.name.as_str()).collect();
    let expected: &[&str] = if arch.classes > 0 { &["pixels", "label"] } else { &["pixels"] };
    if inputs != expected {
        return Err(ImportError::NotPixelcnn(format!(
            "inputs are {inputs:?}, expected {expected:?}"
        )));
    }
    let outputs: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    if outputs != ["logits"] {
        return Err(ImportError::NotPixelcnn(format!(
            "outputs are {outputs:?}, expected [\"logits\"]"
        )));
    }
    let tensors: HashMap<&str, &pb::TensorProto> =
        graph.initializer.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut params = Vec::with_capacity(arch.param_count());
    for spec in arch.tensors() {
        read_tensor(&arch, &spec, &tensors, &mut params)?;
    }
    let weights = Weights::new(arch, &params)?;
    check_graph(graph, &weights)?;
    // The graph itself must load in tract: a file whose weights we can read
    // but whose graph is broken would fail later, on the user's device.
    tract_onnx::onnx()
        .model_for_read(&mut &bytes[..])
        .map_err(|e| ImportError::Tract(format!("{e:#}")))?;
    Ok(Imported { arch, params, calibration, class_names })
}

/// The graph must be the one the export contract describes for `arch`: the
/// same nodes (operators, order, inputs, outputs, attributes) as
/// [`super::export`] writes. Weights alone do not make a model: a file whose
/// Tanh nodes became Relu would load and score as if nothing had changed.
fn check_graph(graph: &pb::GraphProto, weights: &Weights<'_>) -> Result<(), ImportError> {
    let expected = pb::ModelProto::decode(&super::export::to_onnx_bytes(weights)[..])
        .map_err(|e| ImportError::Decode(e.to_string()))?;
    let expected = &expected.graph.as_ref().expect("the exporter writes a graph").node;
    let describe = |n: &pb::NodeProto| format!("{} `{}`", n.op_type, n.name);
    for (i, (found, want)) in graph.node.iter().zip(expected).enumerate() {
        if found != want {
            let what = if found.op_type != want.op_type {
                "operators"
            } else if found.input != want.input || found.output != want.output {
                "inputs or outputs"
            } else {
                "attributes or names"
            };
            return Err(ImportError::NotPixelcnn(format!(
                "graph node {i} is {}, but the export contract has {} there (their {what} differ)",
                describe(found),
                describe(want)
            )));
        }
    }
    if graph.node.len() != expected.len() {
        return Err(ImportError::NotPixelcnn(format!(
            "the graph has {} nodes, the export contract {}",
            graph.node.len(),
            expected.len()
        )));
    }
    Ok(())
}

/// The ONNX initializer holding `spec`, its ONNX shape, and where each ONNX
/// element goes in the runtime tensor (`None`: a masked tap that must be 0).
struct Mapping {
    name: String,
    dims: Vec<usize>,
    /// For each ONNX element in order, the runtime index or `None`.
    target: Vec<Option<usize>>,
}

fn mapping(arch: &Arch, spec: &TensorSpec) -> Mapping {
    let [a, b, c, d] = spec.shape;
    let layer = spec.layer.map_or(String::new(), |l| format!("layer{l}."));
    let (stem, suffix) = match spec.kind {
        TensorKind::VWeight | TensorKind::VBias | TensorKind::VClass => ("v.", ""),
        TensorKind::HWeight | TensorKind::HBias | TensorKind::HClass => ("h.", ""),
        TensorKind::LinkWeight | TensorKind::LinkBias => ("link.", ""),
        TensorKind::OutWeight | TensorKind::OutBias => ("out.", ""),
        TensorKind::Head1Weight | TensorKind::Head1Bias => ("head1.", ""),
        TensorKind::Head2Weight | TensorKind::Head2Bias => ("head2.", ""),
        _ => ("", ""),
    };
    let leaf = if spec.kind.is_class() {
        "class"
    } else if spec.kind.is_bias() {
        "bias"
    } else {
        "weight"
    };
    let name = format!("{layer}{stem}{leaf}{suffix}");
    let identity = |dims: Vec<usize>| {
        let n = dims.iter().product();
        Mapping { name: name.clone(), dims, target: (0..n).map(Some).collect() }
    };
    match spec.kind {
        // [out, kh, kw, in] stored as [out, in, kh, kw].
        TensorKind::VWeight => {
            let mut target = Vec::with_capacity(spec.len());
            for o in 0..a {
                for i in 0..d {
                    for y in 0..b {
                        for x in 0..c {
                            target.push(Some(((o * b + y) * c + x) * d + i));
                        }
                    }
                }
            }
            Mapping { name, dims: vec![a, d, b, c], target }
        }
        // 1×taps stored as 1×(r+1); mask A's centre tap is zero.
        TensorKind::HWeight => {
            let r = arch.radius_of(spec.layer.unwrap_or(0));
            let mut target = Vec::new();
            for o in 0..a {
                for i in 0..d {
                    for x in 0..=r {
                        target.push((x < c).then_some((o * c + x) * d + i));
                    }
                }
            }
            Mapping { name, dims: vec![a, d, 1, r + 1], target }
        }
        // 1×1 on the row above, stored as 2×1 with a zero lower tap.
        TensorKind::LinkWeight => {
            let mut target = Vec::new();
            for o in 0..c {
                for i in 0..d {
                    target.push(Some(o * d + i));
                    target.push(None);
                }
            }
            Mapping { name, dims: vec![c, d, 2, 1], target }
        }
        TensorKind::OutWeight | TensorKind::Head1Weight | TensorKind::Head2Weight => {
            identity(vec![c, d, 1, 1])
        }
        // Plain: the above and left parts of one masked k×k kernel; the
        // mask's zeros are checked once, with the left part.
        TensorKind::AboveWeight | TensorKind::LeftWeight => {
            let l = spec.layer.unwrap_or(0);
            let (r, k) = (arch.radius_of(l), arch.kernel_of(l));
            let cin = arch.input_channels_of(l);
            let taps = if l == 0 { r } else { r + 1 };
            let above_len = arch.channels * r * k * cin;
            let mut target = Vec::new();
            for o in 0..arch.channels {
                for i in 0..cin {
                    for y in 0..k {
                        for x in 0..k {
                            target.push(if y < r {
                                Some(((o * r + y) * k + x) * cin + i)
                            } else if y == r && x < taps {
                                Some(above_len + (o * taps + x) * cin + i)
                            } else {
                                None
                            });
                        }
                    }
                }
            }
            Mapping { name, dims: vec![arch.channels, cin, k, k], target }
        }
        TensorKind::VClass | TensorKind::HClass | TensorKind::Class => identity(vec![c, d]),
        _ => identity(vec![d]),
    }
}

fn read_tensor(
    arch: &Arch,
    spec: &TensorSpec,
    tensors: &HashMap<&str, &pb::TensorProto>,
    params: &mut Vec<f32>,
) -> Result<(), ImportError> {
    // The plain network's above and left parts share one ONNX kernel.
    if spec.kind == TensorKind::LeftWeight {
        return Ok(());
    }
    let m = mapping(arch, spec);
    let problem = |p: String| ImportError::Tensor { name: m.name.clone(), problem: p };
    let t = tensors.get(m.name.as_str()).ok_or_else(|| problem("missing".into()))?;
    let dims: Vec<usize> =
        t.dims.iter().map(|&d| usize::try_from(d).unwrap_or(usize::MAX)).collect();
    if dims != m.dims {
        return Err(problem(format!("shape {dims:?}, expected {:?}", m.dims)));
    }
    if t.data_type != pb::tensor_proto::DataType::Float as i32 {
        return Err(problem(format!("data type {}, expected float32", t.data_type)));
    }
    let values: Vec<f32> = if !t.raw_data.is_empty() {
        if t.raw_data.len() != m.target.len() * 4 {
            return Err(problem(format!(
                "{} bytes of data, expected {}",
                t.raw_data.len(),
                m.target.len() * 4
            )));
        }
        t.raw_data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
    } else {
        t.float_data.clone()
    };
    if values.len() != m.target.len() {
        return Err(problem(format!("{} values, expected {}", values.len(), m.target.len())));
    }
    let len = if spec.kind == TensorKind::AboveWeight {
        let left =
            arch.tensors().find(|s| s.layer == spec.layer && s.kind == TensorKind::LeftWeight);
        spec.len() + left.map_or(0, |s| s.len())
    } else {
        spec.len()
    };
    let start = params.len();
    params.resize(start + len, 0.0);
    for (v, target) in values.iter().zip(&m.target) {
        match target {
            Some(i) => params[start + i] = *v,
            None if *v != 0.0 => {
                return Err(problem(
                    "a masked tap is not zero: the model would see pixels it must not (a mask lost at export?)".into(),
                ))
            }
            None => {}
        }
    }
    Ok(())
}

/// An exported model loaded into tract-onnx, optimized for batch 1: the
/// full-image forward pass a user of a general ONNX runtime would run once
/// per pixel.
#[derive(Debug)]
pub struct TractRunner {
    arch: Arch,
    runnable: std::sync::Arc<TypedSimplePlan>,
}

impl TractRunner {
    /// Loads and optimizes `bytes` for one `arch`-sized image.
    ///
    /// # Errors
    /// [`ImportError::Tract`] when tract cannot load the graph.
    pub fn new(bytes: &[u8], arch: &Arch) -> Result<Self, ImportError> {
        let (h, w) = (arch.height, arch.width);
        let tract = |e: TractError| ImportError::Tract(format!("{e:#}"));
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut &bytes[..])
            .map_err(tract)?
            .with_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), tvec!(1, 1, h, w)))
            .map_err(tract)?;
        if arch.classes > 0 {
            model = model
                .with_input_fact(1, InferenceFact::dt_shape(i64::datum_type(), tvec!(1)))
                .map_err(tract)?;
        }
        let runnable = model.into_optimized().map_err(tract)?.into_runnable().map_err(tract)?;
        Ok(TractRunner { arch: *arch, runnable })
    }

    /// Logits of every pixel of `image` (levels), pixel-major like
    /// [`reference::forward`].
    ///
    /// # Errors
    /// [`ImportError::Tract`] when the run fails.
    pub fn logits(&self, image: &[u8], class: Option<usize>) -> Result<Vec<f32>, ImportError> {
        let arch = self.arch;
        let (h, w, k) = (arch.height, arch.width, arch.levels);
        let tract = |e: TractError| ImportError::Tract(format!("{e:#}"));
        let scale = 1.0 / (k - 1) as f32;
        let pixels: Vec<f32> = image.iter().map(|&l| f32::from(l) * scale).collect();
        let mut inputs: TVec<TValue> =
            tvec!(Tensor::from_shape(&[1, 1, h, w], &pixels).map_err(tract)?.into());
        if let Some(c) = class {
            inputs.push(Tensor::from_shape(&[1], &[c as i64]).map_err(tract)?.into());
        }
        let out = self.runnable.run(inputs).map_err(tract)?;
        let got = out[0].to_plain_array_view::<f32>().map_err(tract)?;
        let n = arch.pixels();
        let mut logits = vec![0.0; n * k];
        for (idx, v) in got.iter().enumerate() {
            logits[(idx % n) * k + idx / n] = *v;
        }
        Ok(logits)
    }
}

/// Runs the ONNX graph in tract on a probe image and returns the largest
/// difference from the runtime's reference executor on `imported`.
///
/// # Errors
/// [`ImportError::Tract`] when tract cannot load or run the graph.
pub fn verify_with_tract(bytes: &[u8], imported: &Imported) -> Result<f32, ImportError> {
    let arch = imported.arch;
    let weights = Weights::new(arch, &imported.params)?;
    let k = arch.levels;
    let image: Vec<u8> =
        (0..arch.pixels()).map(|i| ((i * 2654435761) >> 7) as u8 % k as u8).collect();
    let class = (arch.classes > 0).then_some(arch.classes - 1);
    let got = TractRunner::new(bytes, &arch)?.logits(&image, class)?;
    let want = reference::forward(&weights, &image, class)?;
    Ok(got.iter().zip(&want).fold(0.0f32, |m, (g, w)| m.max((g - w).abs())))
}
