//! ONNX PixelCNNs from other trainers (PyTorch, Keras) as a [`Graph`].
//!
//! tract-onnx parses the file, fixes the input shapes (batch 1, the image's
//! size), folds every constant subgraph (masks multiplied into kernels, the
//! `Shape → Gather → Concat` chains dynamic axes leave) and types every
//! tensor. This module then walks the typed graph and maps each node onto
//! the [`Graph`] operations, tracking which tensor axis is the batch, the
//! channels, the rows and the columns through transposes and reshapes
//! (NCHW, NHWC, `[N, K, C, H, W]`):
//!
//! - outlets that depend on no input are constants; outlets that depend on
//!   the label only are tabulated, one tract run per class, and become
//!   class vectors (an embedding of the label however it is written:
//!   `Gather`, a one-hot `MatMul`, in every layer);
//! - the pixel input becomes the image node: an int64 input is the level
//!   (or an index into an embedding table, through a `Gather`); a float
//!   input needs `--input` to say how a level becomes its value;
//! - convolutions keep only their non-zero taps, so masks (exact zeros after
//!   `torch.onnx.export`) disappear, and pads and crops become shifts.
//!
//! Nothing here knows a particular repository's layers: causality is proven
//! afterwards from the graph itself ([`crate::graph::plan::Plan::compile`]).

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_core::ops::array::{
    Gather, OneHot, Pad, PadMode, Slice, StridedSlice, TypedConcat,
};
use tract_onnx::tract_core::ops::binary::TypedBinOp;
use tract_onnx::tract_core::ops::cast::Cast;
use tract_onnx::tract_core::ops::change_axes::AxisOp;
use tract_onnx::tract_core::ops::cnn::{Conv, KernelFormat};
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::identity::Identity;
use tract_onnx::tract_core::ops::logic::{CompLT, Iff};
use tract_onnx::tract_core::ops::math::{Add, Div, Exp, Max, Mul, Sub, Tanh};
use tract_onnx::tract_core::ops::nn::{LeakyRelu, Sigmoid, Softmax};
use tract_onnx::tract_core::ops::source::TypedSource;
use tract_onnx::tract_core::optim::{Optimizer, OptimizerSession, TypedPass};

use super::ImportError;
use crate::graph::{
    Activation, Arith, Encoding, Graph, InputKind, Node, NodeId, Op, Output, Shape, Tap,
};

/// A foreign graph, imported.
#[derive(Clone, Debug)]
pub struct ForeignGraph {
    /// The graph.
    pub graph: Graph,
    /// What the importer recognised and did, one line each (for `inspect`).
    pub notes: Vec<String>,
    /// How to feed tract the same image (for the check at load).
    pub io: Io,
}

/// The file's inputs and output, as tract sees them.
#[derive(Clone, Debug)]
pub struct Io {
    /// The pixel input's shape (batch 1) and whether it holds int64 levels.
    pub pixels_shape: Vec<usize>,
    /// True for an int64 input (the level itself).
    pub pixels_int: bool,
    /// The index of the pixel input among the model's inputs.
    pub pixels_input: usize,
    /// The label input's index, when the model has one.
    pub label_input: Option<usize>,
    /// For each output axis: its role.
    pub output_roles: Vec<Role>,
    /// The output's shape.
    pub output_shape: Vec<usize>,
    /// A function the file applies to its logits that the graph leaves out.
    pub output_fn: OutputFn,
}

/// What the file's output is, relative to the graph's logits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFn {
    /// The logits themselves.
    Logits,
    /// Their sigmoid (a Bernoulli probability).
    Sigmoid,
    /// Their softmax over the levels.
    Softmax,
}

/// What a tensor axis is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The batch (size 1).
    Batch,
    /// Image rows.
    H,
    /// Image columns.
    W,
    /// A channel axis; several are flattened in the order of their numbers.
    Channel(u16),
    /// A size-1 axis with no meaning.
    Unit,
}

/// A typed outlet, as the importer sees it.
#[derive(Clone, Debug)]
enum Value {
    /// The pixel input itself, not yet encoded, with its axes' roles.
    Pixels(Vec<Role>),
    /// A node of the graph, with the role of each axis of the tensor.
    Spatial { node: NodeId, roles: Vec<Role> },
    /// Depends on the label only: one value per class (tabulated).
    PerClass(Vec<Arc<Tensor>>),
    /// Depends on no input.
    Const(Arc<Tensor>),
}

/// A declutter pass that rewrites only `StridedSlice`s into `Slice`s, so the
/// rest of the graph keeps the shape of the ONNX file (tract's full
/// declutter folds channel arithmetic into convolutions and moves layouts,
/// which an importer would have to undo).
#[derive(Clone, Debug)]
struct SlicesOnly(usize);

impl TypedPass for SlicesOnly {
    fn reset(&mut self) -> TractResult<()> {
        self.0 = 0;
        Ok(())
    }
    fn next(
        &mut self,
        session: &mut OptimizerSession,
        model: &TypedModel,
    ) -> TractResult<Option<TypedModelPatch>> {
        for node in &model.nodes[self.0.min(model.nodes.len())..] {
            if node.op_is::<StridedSlice>() {
                if let Some(p) = node.op.declutter_with_session(session, model, node)? {
                    self.0 = node.id + usize::from(p.dont_apply_twice.is_some());
                    return Ok(Some(p));
                }
            }
        }
        Ok(None)
    }
}

fn tract_err(e: TractError) -> ImportError {
    ImportError::Tract(format!("{e:#}"))
}

fn unsupported(node: &TypedNode, what: impl std::fmt::Display) -> ImportError {
    ImportError::Unsupported(format!("node `{}` ({}): {what}", node.name, node.op.name()))
}

/// Loads the file into tract with the pixel input at batch 1 and its own
/// spatial size, folds constants, and returns the typed model with the
/// input indices (pixels, label).
fn typed_model(bytes: &[u8]) -> Result<(TypedModel, usize, Option<usize>), ImportError> {
    let mut model = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .model_for_read(&mut &bytes[..])
        .map_err(tract_err)?;
    let proto = tract_onnx::pb::ModelProto::decode(bytes)
        .map_err(|e| ImportError::Decode(e.to_string()))?;
    let graph = proto
        .graph
        .as_ref()
        .ok_or_else(|| ImportError::NotPixelcnn("the file has no graph".into()))?;
    let initializers: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<&tract_onnx::pb::ValueInfoProto> =
        graph.input.iter().filter(|i| !initializers.contains(&i.name.as_str())).collect();
    let dims = |v: &tract_onnx::pb::ValueInfoProto| -> Option<(i32, Vec<i64>)> {
        use tract_onnx::pb::type_proto::Value as T;
        let Some(T::TensorType(t)) = v.r#type.as_ref()?.value.as_ref() else { return None };
        let shape = t.shape.as_ref()?;
        let d = shape
            .dim
            .iter()
            .map(|d| match &d.value {
                Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) => *v,
                _ => -1,
            })
            .collect();
        Some((t.elem_type, d))
    };
    let mut pixels = None;
    let mut label = None;
    for (ix, input) in inputs.iter().enumerate() {
        let (elem, d) = dims(input).ok_or_else(|| {
            ImportError::Unsupported(format!("input `{}` has no tensor type and shape", input.name))
        })?;
        // ONNX elem types: 1 = float, 7 = int64.
        let int = elem == 7;
        if !(elem == 1 || int) {
            return Err(ImportError::Unsupported(format!(
                "input `{}` has element type {elem}; a float or int64 input is expected",
                input.name
            )));
        }
        let spatial = d.iter().skip(1).filter(|&&v| v != 1).count();
        if d.len() <= 1 || spatial == 0 {
            if label.replace(ix).is_some() || !int {
                return Err(ImportError::Unsupported(format!(
                    "input `{}` of shape {d:?}: one int64 label input of shape [N] is expected",
                    input.name
                )));
            }
            model
                .set_input_fact(ix, InferenceFact::dt_shape(i64::datum_type(), tvec![1usize]))
                .map_err(tract_err)?;
        } else {
            if pixels.replace(ix).is_some() {
                return Err(ImportError::Unsupported(
                    "two image inputs; one image input (and an optional label) is expected".into(),
                ));
            }
            let shape: Vec<usize> = d
                .iter()
                .enumerate()
                .map(|(i, &v)| if i == 0 { Ok(1) } else if v > 0 { Ok(v as usize) } else {
                    Err(ImportError::Unsupported(format!(
                        "input `{}` has a dynamic size on axis {i}: export it with a fixed image size",
                        input.name
                    )))
                })
                .collect::<Result<_, _>>()?;
            let dt = if int { i64::datum_type() } else { f32::datum_type() };
            model.set_input_fact(ix, InferenceFact::dt_shape(dt, shape)).map_err(tract_err)?;
        }
    }
    let pixels =
        pixels.ok_or_else(|| ImportError::Unsupported("the file has no image input".into()))?;
    let mut typed = model.into_typed().map_err(tract_err)?;
    let mut opt = Optimizer::prop_consts();
    opt.add_pass(1, Box::new(SlicesOnly(0)));
    opt.optimize(&mut typed).map_err(tract_err)?;
    Ok((typed, pixels, label))
}

use prost::Message as _;

/// Reads an ONNX file from another trainer into a [`Graph`]. See the
/// module docs; `input` says how a level becomes a float input's value.
///
/// # Errors
/// [`ImportError::Unsupported`] naming the node and what to do; tract's
/// errors.
pub fn import_graph(bytes: &[u8], input: Option<InputKind>) -> Result<ForeignGraph, ImportError> {
    let (model, pixels_input, label_input) = typed_model(bytes)?;
    let exact = Importer::new(&model, pixels_input, label_input, input, 0.0)?.run()?;
    match crate::graph::plan::Plan::compile(&exact.graph) {
        Err(crate::graph::GraphError::NotCausal(why)) => {
            // Masks applied by assignment during training (Keras
            // `kernel.assign(kernel * mask)`) export taps that are only
            // nearly zero: drop those, and keep the result if that makes
            // the graph causal.
            let remasked =
                Importer::new(&model, pixels_input, label_input, input, REMASK)?.run()?;
            if crate::graph::plan::Plan::compile(&remasked.graph).is_ok() {
                Ok(remasked)
            } else {
                Err(crate::graph::GraphError::NotCausal(why).into())
            }
        }
        Err(e) => Err(e.into()),
        Ok(_) => Ok(exact),
    }
}

/// A tap counts as masked when its largest weight is below this fraction
/// of the convolution's largest, in a graph that is causal only without
/// such taps.
pub const REMASK: f32 = 1e-4;

struct Importer<'m> {
    model: &'m TypedModel,
    pixels_input: usize,
    label_input: Option<usize>,
    input: Option<InputKind>,
    values: HashMap<OutletId, Value>,
    nodes: Vec<Node>,
    encoding: Option<Encoding>,
    classes: usize,
    notes: Vec<String>,
    pixels_shape: Vec<usize>,
    pixels_int: bool,
    output_fn: OutputFn,
    /// Taps below this fraction of a convolution's largest weight are
    /// dropped (0: only exact zeros).
    remask: f32,
}

fn concrete(model: &TypedModel, o: OutletId) -> Result<Vec<usize>, ImportError> {
    let fact = model.outlet_fact(o).map_err(tract_err)?;
    fact.shape.as_concrete().map(<[usize]>::to_vec).ok_or_else(|| {
        ImportError::Unsupported(format!("outlet {o:?} has a symbolic shape {:?}", fact.shape))
    })
}

fn floats(t: &Tensor) -> Result<Vec<f32>, ImportError> {
    let t = t.cast_to::<f32>().map_err(tract_err)?;
    Ok(t.to_plain_array_view::<f32>().map_err(tract_err)?.iter().copied().collect())
}

impl<'m> Importer<'m> {
    fn new(
        model: &'m TypedModel,
        pixels_input: usize,
        label_input: Option<usize>,
        input: Option<InputKind>,
        remask: f32,
    ) -> Result<Self, ImportError> {
        let inputs = model.input_outlets().map_err(tract_err)?.to_vec();
        let pixels_shape = concrete(model, inputs[pixels_input])?;
        let pixels_int = model.outlet_fact(inputs[pixels_input]).map_err(tract_err)?.datum_type
            == i64::datum_type();
        Ok(Importer {
            model,
            pixels_input,
            label_input,
            input,
            values: HashMap::new(),
            nodes: Vec::new(),
            encoding: None,
            classes: 0,
            notes: Vec::new(),
            pixels_shape,
            pixels_int,
            output_fn: OutputFn::Logits,
            remask,
        })
    }

    /// Which inputs each outlet depends on: bit 0 the pixels, bit 1 the label.
    fn dependencies(&self) -> Result<HashMap<OutletId, u8>, ImportError> {
        let inputs = self.model.input_outlets().map_err(tract_err)?.to_vec();
        let mut deps = HashMap::new();
        for id in self.model.eval_order().map_err(tract_err)? {
            let node = self.model.node(id);
            let mask = if inputs[self.pixels_input].node == id {
                1
            } else if self.label_input.is_some_and(|l| inputs[l].node == id) {
                2
            } else {
                node.inputs.iter().map(|i| deps.get(i).copied().unwrap_or(0)).fold(0, |a, b| a | b)
            };
            for slot in 0..node.outputs.len() {
                deps.insert(OutletId::new(id, slot), mask);
            }
        }
        Ok(deps)
    }

    /// The number of classes: the first dimension of the table a label-only
    /// `Gather` reads, or a `OneHot`'s depth.
    fn count_classes(&self, deps: &HashMap<OutletId, u8>) -> Result<usize, ImportError> {
        for id in self.model.eval_order().map_err(tract_err)? {
            let node = self.model.node(id);
            let label_only = |o: &OutletId| deps.get(o) == Some(&2);
            if let Some(g) = node.op_as::<Gather>() {
                if node.inputs.len() == 2
                    && label_only(&node.inputs[1])
                    && !label_only(&node.inputs[0])
                {
                    return Ok(concrete(self.model, node.inputs[0])?[g.axis]);
                }
            }
            if let Some(o) = node.op_as::<OneHot>() {
                if node.inputs.first().is_some_and(label_only) {
                    return Ok(o.dim);
                }
            }
        }
        Err(ImportError::Unsupported(
            "the model has a label input, but no Gather (embedding) or OneHot reads it: cannot tell \
             the number of classes"
                .into(),
        ))
    }

    fn run(mut self) -> Result<ForeignGraph, ImportError> {
        let deps = self.dependencies()?;
        if self.label_input.is_some() {
            self.classes = self.count_classes(&deps)?;
        }
        let order = self.model.eval_order().map_err(tract_err)?;
        // Label-only outlets read by nodes that depend on the pixels: one
        // tract run per class gives their values.
        let mut frontier = Vec::new();
        for &id in &order {
            let node = self.model.node(id);
            if deps[&OutletId::new(id, 0)] & 1 != 0 {
                for &i in &node.inputs {
                    if deps[&i] == 2 && !frontier.contains(&i) {
                        frontier.push(i);
                    }
                }
            }
        }
        if !frontier.is_empty() {
            let tables = self.tabulate(&frontier)?;
            for (o, t) in frontier.iter().zip(tables) {
                self.values.insert(*o, Value::PerClass(t));
            }
        }
        let inputs = self.model.input_outlets().map_err(tract_err)?.to_vec();
        self.values.insert(inputs[self.pixels_input], Value::Pixels(self.pixel_roles()?));
        // The inner nodes of an ELU (tract writes it as a Where of a
        // comparison, an exponential and a subtraction): only the Where is
        // mapped.
        let mut inside_elu = std::collections::HashSet::new();
        for &id in &order {
            let node = self.model.node(id);
            if node.op_is::<Iff>() && match_elu(self.model, node).is_some() {
                inside_elu.extend(elu_inner(self.model, node));
            }
        }
        for &id in &order {
            let node = self.model.node(id);
            let out = OutletId::new(id, 0);
            if self.values.contains_key(&out) || inside_elu.contains(&id) {
                continue;
            }
            if deps[&out] & 1 == 0 {
                // Constants (and label-only values nobody spatial reads).
                for slot in 0..node.outputs.len() {
                    let o = OutletId::new(id, slot);
                    if let Some(k) = &self.model.outlet_fact(o).map_err(tract_err)?.konst {
                        self.values.insert(o, Value::Const(k.clone()));
                    }
                }
                continue;
            }
            if node.op_is::<TypedSource>() {
                continue;
            }
            if node.outputs.len() != 1 {
                return Err(unsupported(node, "an operation with several outputs"));
            }
            let value = self.node(node)?;
            self.values.insert(out, value);
        }
        let outputs = self.model.output_outlets().map_err(tract_err)?.to_vec();
        let out = *outputs.first().ok_or_else(|| ImportError::Unsupported("no output".into()))?;
        self.finish(out)
    }

    fn tabulate(&self, outlets: &[OutletId]) -> Result<Vec<Vec<Arc<Tensor>>>, ImportError> {
        let plan = self
            .model
            .clone()
            .with_output_outlets(outlets)
            .map_err(tract_err)?
            .into_runnable()
            .map_err(tract_err)?;
        let mut tables = vec![Vec::with_capacity(self.classes); outlets.len()];
        let zero = if self.pixels_int {
            Tensor::zero::<i64>(&self.pixels_shape).map_err(tract_err)?
        } else {
            Tensor::zero::<f32>(&self.pixels_shape).map_err(tract_err)?
        };
        for c in 0..self.classes {
            let mut inputs: Vec<TValue> = Vec::new();
            let label = Tensor::from_shape(&[1], &[c as i64]).map_err(tract_err)?;
            for ix in 0..2 {
                if ix == self.pixels_input {
                    inputs.push(zero.clone().into_tvalue());
                } else if Some(ix) == self.label_input {
                    inputs.push(label.clone().into_tvalue());
                }
            }
            let out = plan.run(inputs.into_iter().collect()).map_err(tract_err)?;
            for (k, v) in out.into_iter().enumerate() {
                tables[k].push(Arc::new(v.into_tensor()));
            }
        }
        Ok(tables)
    }

    fn push(&mut self, name: &str, op: Op, shape: Shape) -> NodeId {
        self.nodes.push(Node { name: name.to_string(), op, shape });
        self.nodes.len() - 1
    }

    fn value(&self, o: OutletId) -> Result<&Value, ImportError> {
        self.values.get(&o).ok_or_else(|| {
            ImportError::Unsupported(format!(
                "node `{}` depends on the image in a way the importer does not follow",
                self.model.node(o.node).name
            ))
        })
    }

    /// The image node, made on first use with the encoding `encoding`.
    fn image(&mut self, node: &TypedNode, encoding: Encoding) -> Result<NodeId, ImportError> {
        if let Some(e) = &self.encoding {
            if *e != encoding {
                return Err(unsupported(node, "the image input is used in two different ways"));
            }
            return Ok(0);
        }
        let (h, w) = self.image_size()?;
        let shape = Shape { channels: encoding.channels(), height: h, width: w };
        self.encoding = Some(encoding);
        // Every node reads the image, directly or not: it is the first.
        debug_assert!(self.nodes.is_empty());
        self.nodes.push(Node { name: "image".into(), op: Op::Image, shape });
        Ok(0)
    }

    /// The image's rows and columns from the pixel input's shape.
    fn image_size(&self) -> Result<(usize, usize), ImportError> {
        let roles = self.pixel_roles()?;
        let h = roles.iter().position(|r| *r == Role::H).map(|i| self.pixels_shape[i]);
        let w = roles.iter().position(|r| *r == Role::W).map(|i| self.pixels_shape[i]);
        h.zip(w).ok_or_else(|| {
            ImportError::Unsupported(format!(
                "cannot find rows and columns in the input shape {:?}",
                self.pixels_shape
            ))
        })
    }

    /// Roles of the pixel input's axes: `[N, H, W]`, `[N, 1, H, W]` or
    /// `[N, H, W, 1]`.
    fn pixel_roles(&self) -> Result<Vec<Role>, ImportError> {
        let s = &self.pixels_shape;
        Ok(match s.len() {
            3 => vec![Role::Batch, Role::H, Role::W],
            4 if s[1] == 1 => vec![Role::Batch, Role::Channel(0), Role::H, Role::W],
            4 if s[3] == 1 => vec![Role::Batch, Role::H, Role::W, Role::Channel(0)],
            _ => {
                return Err(ImportError::Unsupported(format!(
                    "an image input of shape {s:?}: one channel, [N, 1, H, W], [N, H, W, 1] or [N, H, W], is expected"
                )))
            }
        })
    }

    /// The encoding of a float pixel input, from `--input`.
    fn float_encoding(&self) -> Result<Encoding, ImportError> {
        if self.pixels_int {
            return Ok(Encoding::Level);
        }
        match self.input {
            Some(InputKind::Unit) => Ok(Encoding::Unit),
            Some(InputKind::Signed) => Ok(Encoding::Signed),
            Some(InputKind::Levels) | Some(InputKind::Index) => Ok(Encoding::Level),
            None => Err(ImportError::NeedsInput),
        }
    }

    /// A spatial operand: the node and its roles (the pixel input becomes
    /// the image node).
    fn spatial(
        &mut self,
        node: &TypedNode,
        o: OutletId,
    ) -> Result<(NodeId, Vec<Role>), ImportError> {
        match self.value(o)?.clone() {
            Value::Spatial { node: n, roles } => Ok((n, roles)),
            Value::Pixels(roles) => {
                let e = self.float_encoding()?;
                let id = self.image(node, e)?;
                Ok((id, roles))
            }
            _ => Err(unsupported(node, "expected an operand that depends on the image")),
        }
    }

    fn shape_of(&self, id: NodeId) -> Shape {
        self.nodes[id].shape
    }

    /// The node's output shape checked against the roles: channels flatten
    /// the channel axes.
    fn shape_from(&self, node: &TypedNode, roles: &[Role]) -> Result<Shape, ImportError> {
        let dims = concrete(self.model, OutletId::new(node.id, 0))?;
        shape_for(&dims, roles)
            .ok_or_else(|| unsupported(node, format!("cannot read shape {dims:?} as {roles:?}")))
    }

    fn node(&mut self, node: &TypedNode) -> Result<Value, ImportError> {
        let name = node.name.clone();
        let ins = node.inputs.clone();
        if node.op_is::<Identity>() {
            return self.value(ins[0]).cloned();
        }
        if let Some(cast) = node.op_as::<Cast>() {
            if cast.to != f32::datum_type() && cast.to != i64::datum_type() {
                return Err(unsupported(node, format!("a cast to {:?}", cast.to)));
            }
            return self.value(ins[0]).cloned();
        }
        if let Some(conv) = node.op_as::<Conv>() {
            return self.conv(node, conv);
        }
        if let Some(g) = node.op_as::<Gather>() {
            // An embedding of the levels: a constant table indexed by the
            // int64 pixels.
            let table = match (self.value(ins[0])?, self.value(ins[1])?) {
                (Value::Const(t), Value::Pixels(_)) if g.axis == 0 => t.clone(),
                _ => {
                    return Err(unsupported(
                        node,
                        "a Gather that is not an embedding of the levels",
                    ))
                }
            };
            let dims = table.shape().to_vec();
            if dims.len() != 2 {
                return Err(unsupported(node, format!("an embedding table of shape {dims:?}")));
            }
            let values = floats(&table)?;
            self.image(node, Encoding::Embedding { table: values, channels: dims[1] })?;
            let Value::Pixels(mut roles) = self.value(ins[1])?.clone() else {
                unreachable!("matched above")
            };
            if roles.len() == 4 {
                // [N, 1, H, W] indices: the embedding axis is appended.
                return Err(unsupported(
                    node,
                    "an embedding of [N, 1, H, W] indices; [N, H, W] is expected",
                ));
            }
            roles.push(Role::Channel(0));
            return Ok(Value::Spatial { node: 0, roles });
        }
        if let Some(ax) = node.op_as::<AxisOp>() {
            let (id, roles) = match self.value(ins[0])?.clone() {
                Value::Spatial { node, roles } => (Some(node), roles),
                Value::Pixels(roles) => (None, roles),
                _ => return Err(unsupported(node, "an axis change of a constant")),
            };
            let in_dims = concrete(self.model, ins[0])?;
            let roles = axis_roles(ax, &roles, &in_dims).ok_or_else(|| {
                let spatial = match ax {
                    AxisOp::Reshape(at, from, _) => {
                        roles[*at..*at + from.len()].iter().any(|r| matches!(r, Role::H | Role::W))
                    }
                    _ => false,
                };
                if spatial {
                    unsupported(
                        node,
                        "a reshape that merges or splits the image's rows and columns (positions \
                         flattened for attention or a dense layer): only convolutional networks \
                         run incrementally",
                    )
                } else {
                    unsupported(node, format!("{ax:?} on axes {roles:?}"))
                }
            })?;
            return Ok(match id {
                Some(node) => Value::Spatial { node, roles },
                None => Value::Pixels(roles),
            });
        }
        if let Some(bin) = node.op_as::<TypedBinOp>() {
            return self.binary(node, bin);
        }
        if let Some(ew) = node.op_as::<ElementWiseOp>() {
            let f = if ew.0.is::<Tanh>() {
                Activation::Tanh
            } else if ew.0.is::<Sigmoid>() {
                Activation::Sigmoid
            } else if let Some(l) = ew.0.downcast_ref::<LeakyRelu>() {
                Activation::LeakyRelu(l.alpha)
            } else {
                return Err(unsupported(
                    node,
                    "an element-wise function other than tanh, sigmoid, relu, elu or leaky relu",
                ));
            };
            let (id, roles) = self.spatial(node, ins[0])?;
            let shape = self.shape_of(id);
            let n = self.push(&name, Op::Unary { input: id, f }, shape);
            return Ok(Value::Spatial { node: n, roles });
        }
        if node.op_is::<Iff>() {
            let (x, alpha) = match_elu(self.model, node)
                .ok_or_else(|| unsupported(node, "a Where that is not an ELU"))?;
            let (id, roles) = self.spatial(node, x)?;
            let shape = self.shape_of(id);
            let n = self.push(&name, Op::Unary { input: id, f: Activation::Elu(alpha) }, shape);
            return Ok(Value::Spatial { node: n, roles });
        }
        if let Some(s) = node.op_as::<Slice>() {
            return self.slice(node, s);
        }
        if let Some(p) = node.op_as::<Pad>() {
            return self.pad(node, p);
        }
        if let Some(c) = node.op_as::<TypedConcat>() {
            return self.concat(node, c.axis);
        }
        if node.op_is::<Softmax>() {
            // A softmax over the levels: the logits are its input (the
            // sampler applies its own softmax).
            let v = self.value(ins[0])?.clone();
            self.notes
                .push(format!("the output softmax `{name}` is dropped: the logits are its input"));
            self.output_fn = OutputFn::Softmax;
            return Ok(v);
        }
        Err(unsupported(
            node,
            "not an operation of causal convolutional networks (strides, pooling, upsampling, \
             attention and reductions are not supported)",
        ))
    }

    fn conv(&mut self, node: &TypedNode, conv: &Conv) -> Result<Value, ImportError> {
        let name = node.name.clone();
        let ins = node.inputs.clone();
        let ps = &conv.pool_spec;
        if conv.q_params.is_some() {
            return Err(unsupported(node, "a quantized convolution"));
        }
        if conv.group != 1 {
            return Err(unsupported(
                node,
                format!("a grouped convolution ({} groups)", conv.group),
            ));
        }
        if ps.strides().iter().any(|&s| s != 1) {
            return Err(unsupported(
                node,
                format!("stride {:?}: only stride 1 keeps one output per pixel", ps.strides()),
            ));
        }
        if ps.kernel_shape.len() != 2 || conv.kernel_fmt != KernelFormat::OIHW {
            return Err(unsupported(node, "a convolution that is not 2-D with an OIHW kernel"));
        }
        let (input, mut roles) = self.spatial(node, ins[0])?;
        let in_dims = concrete(self.model, ins[0])?;
        let ds = ps.data_format.shape(in_dims.clone()).map_err(tract_err)?;
        let (c_axis, h_axis) = (ds.c_axis(), ds.h_axis());
        // A size-1 axis with no role yet is the one channel of a reshaped
        // single-channel image.
        if roles.get(c_axis) == Some(&Role::Unit)
            && !roles.iter().any(|r| matches!(r, Role::Channel(_)))
        {
            roles[c_axis] = Role::Channel(0);
        }
        if roles.get(h_axis) != Some(&Role::H)
            || roles.get(h_axis + 1) != Some(&Role::W)
            || !matches!(roles.get(c_axis), Some(Role::Channel(_)))
        {
            return Err(unsupported(
                node,
                format!("a convolution over axes {roles:?} in {:?}", ps.data_format),
            ));
        }
        let hw: Vec<usize> = ds.hw_dims().to_vec();
        let pad = ps.computed_padding(&hw);
        let (top, left) = (pad[0].pad_before as isize, pad[1].pad_before as isize);
        let (kh, kw) = (ps.kernel_shape[0], ps.kernel_shape[1]);
        let dil = ps.dilations();
        let kernel = match self.value(ins[1])? {
            Value::Const(k) => floats(k)?,
            _ => {
                return Err(unsupported(
                    node,
                    "a kernel that is not constant (weights computed from the inputs)",
                ))
            }
        };
        let cout = ps.output_channels;
        let cin = ps.input_channels;
        if kernel.len() != cout * cin * kh * kw || self.shape_of(input).channels != cin {
            return Err(unsupported(node, "a kernel whose size does not fit its channels"));
        }
        let mut class_bias = None;
        let bias = match ins.get(2).map(|&b| self.value(b)).transpose()? {
            None => vec![0.0; cout],
            Some(Value::Const(b)) => {
                let b = floats(b)?;
                match b.len() {
                    1 => vec![b[0]; cout],
                    n if n == cout => b,
                    n => {
                        return Err(unsupported(
                            node,
                            format!("a bias of {n} values for {cout} channels"),
                        ))
                    }
                }
            }
            Some(Value::PerClass(t)) => {
                class_bias = Some(t.clone());
                vec![0.0; cout]
            }
            Some(_) => return Err(unsupported(node, "a bias that depends on the image")),
        };
        let mut taps = Vec::new();
        let mut weights = Vec::new();
        let largest = kernel.iter().fold(0f32, |m, v| m.max(v.abs()));
        let floor = largest * self.remask;
        let mut remasked = (0usize, 0f32);
        for a in 0..kh {
            for b in 0..kw {
                // OIHW: w[o][i][a][b].
                let tap: Vec<f32> = (0..cout)
                    .flat_map(|o| (0..cin).map(move |i| (o, i)))
                    .map(|(o, i)| kernel[((o * cin + i) * kh + a) * kw + b])
                    .collect();
                if tap.iter().all(|&v| v == 0.0) {
                    continue;
                }
                let top_tap = tap.iter().fold(0f32, |m, v| m.max(v.abs()));
                if top_tap < floor {
                    remasked = (remasked.0 + 1, remasked.1.max(top_tap));
                    continue;
                }
                taps.push(Tap {
                    dy: (a * dil[0]) as isize - top,
                    dx: (b * dil[1]) as isize - left,
                });
                weights.extend(tap);
            }
        }
        let dropped = kh * kw - taps.len() - remasked.0;
        if dropped > 0 {
            self.notes.push(format!(
                "conv `{name}`: {kh}x{kw} kernel, {dropped} zero taps dropped (a mask)"
            ));
        }
        if remasked.0 > 0 {
            self.notes.push(format!(
                "conv `{name}`: {} nearly-zero taps (largest weight {:.1e}, the kernel's {largest:.1e}) \
                 masked again: the graph is causal only without them",
                remasked.0, remasked.1
            ));
        }
        let shape = self.shape_from(node, &roles)?;
        if taps.is_empty() {
            // A kernel of zeros: the output is its bias.
            taps.push(Tap { dy: 0, dx: 0 });
            weights.extend(std::iter::repeat_n(0.0, cout * cin));
        }
        let mut n = self.push(&name, Op::Conv { input, taps, weights, bias }, shape);
        if let Some(tables) = class_bias {
            let table = class_table(&tables, cout)
                .ok_or_else(|| unsupported(node, "a per-class bias of the wrong size"))?;
            n = self.push(&format!("{name}.class_bias"), Op::AddClass { input: n, table }, shape);
        }
        Ok(Value::Spatial { node: n, roles })
    }

    fn binary(&mut self, node: &TypedNode, bin: &TypedBinOp) -> Result<Value, ImportError> {
        let name = node.name.clone();
        let ins = node.inputs.clone();
        let op = &bin.0;
        let (a, b) = (self.value(ins[0])?.clone(), self.value(ins[1])?.clone());
        let arith = if op.is::<Add>() {
            Some(Arith::Add)
        } else if op.is::<Sub>() {
            Some(Arith::Sub)
        } else if op.is::<Mul>() {
            Some(Arith::Mul)
        } else if op.is::<Div>() {
            Some(Arith::Div)
        } else {
            None
        };
        let is_spatial = |v: &Value| matches!(v, Value::Spatial { .. } | Value::Pixels(_));
        match (arith, &a, &b) {
            // relu: max(x, 0)
            (None, x, Value::Const(c)) | (None, Value::Const(c), x)
                if op.is::<Max>() && is_spatial(x) && floats(c)?.iter().all(|&v| v == 0.0) =>
            {
                let o = if is_spatial(&a) { ins[0] } else { ins[1] };
                let (id, roles) = self.spatial(node, o)?;
                let shape = self.shape_of(id);
                let n = self.push(&name, Op::Unary { input: id, f: Activation::Relu }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            (Some(arith), x, y) if is_spatial(x) && is_spatial(y) => {
                let (ia, ra) = self.spatial(node, ins[0])?;
                let (ib, rb) = self.spatial(node, ins[1])?;
                if ra != rb || self.shape_of(ia) != self.shape_of(ib) {
                    return Err(unsupported(node, "two operands of different shapes or layouts"));
                }
                let shape = self.shape_of(ia);
                let n = self.push(&name, Op::Binary { a: ia, b: ib, op: arith }, shape);
                Ok(Value::Spatial { node: n, roles: ra })
            }
            (Some(arith), x, Value::Const(c)) | (Some(arith), Value::Const(c), x)
                if is_spatial(x) =>
            {
                let spatial_first = is_spatial(&a);
                let o = if spatial_first { ins[0] } else { ins[1] };
                let (id, roles) = self.spatial(node, o)?;
                let shape = self.shape_of(id);
                let per = per_channel(c, &roles, &concrete(self.model, o)?, shape.channels)
                    .ok_or_else(|| {
                        unsupported(
                            node,
                            format!(
                                "a constant of shape {:?} that is not one value per channel",
                                c.shape()
                            ),
                        )
                    })?;
                let ones = vec![1.0; per.len()];
                let zeros = vec![0.0; per.len()];
                let (scale, shift) = match (arith, spatial_first) {
                    (Arith::Add, _) => (ones, per),
                    (Arith::Mul, _) => (per, zeros),
                    (Arith::Sub, true) => (ones, per.iter().map(|v| -v).collect()),
                    (Arith::Sub, false) => (vec![-1.0; per.len()], per),
                    (Arith::Div, true) => (per.iter().map(|v| 1.0 / v).collect(), zeros),
                    (Arith::Div, false) => {
                        return Err(unsupported(
                            node,
                            "a constant divided by an image-dependent value",
                        ))
                    }
                };
                if scale.iter().chain(&shift).any(|v| !v.is_finite()) {
                    return Err(unsupported(node, "a division by zero"));
                }
                let n = self.push(&name, Op::Affine { input: id, scale, shift }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            (Some(Arith::Add), x, Value::PerClass(t))
            | (Some(Arith::Add), Value::PerClass(t), x)
                if is_spatial(x) =>
            {
                let o = if is_spatial(&a) { ins[0] } else { ins[1] };
                let (id, roles) = self.spatial(node, o)?;
                let shape = self.shape_of(id);
                let table = class_table(t, shape.channels).ok_or_else(|| {
                    unsupported(node, "a per-class value that is not one value per channel")
                })?;
                let n = self.push(&name, Op::AddClass { input: id, table }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            _ => Err(unsupported(node, "an operation between these operands")),
        }
    }

    fn slice(&mut self, node: &TypedNode, s: &Slice) -> Result<Value, ImportError> {
        let name = node.name.clone();
        let (id, roles) = self.spatial(node, node.inputs[0])?;
        let start = s.start.to_i64().map_err(|e| unsupported(node, e))? as isize;
        let shape = self.shape_from(node, &roles)?;
        match roles.get(s.axis) {
            Some(Role::H) => {
                let n = self.push(&name, Op::Shift { input: id, dy: start, dx: 0 }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            Some(Role::W) => {
                let n = self.push(&name, Op::Shift { input: id, dy: 0, dx: start }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            Some(Role::Channel(_))
                if roles.iter().filter(|r| matches!(r, Role::Channel(_))).count() == 1 =>
            {
                let n = self.push(&name, Op::Channels { input: id, start: start as usize }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            Some(Role::Batch | Role::Unit) if start == 0 => Ok(Value::Spatial { node: id, roles }),
            _ => Err(unsupported(node, format!("a slice of axis {} of {roles:?}", s.axis))),
        }
    }

    fn pad(&mut self, node: &TypedNode, p: &Pad) -> Result<Value, ImportError> {
        let name = node.name.clone();
        let (id, roles) = self.spatial(node, node.inputs[0])?;
        match &p.mode {
            PadMode::Constant(v) if floats(v)?.iter().all(|&x| x == 0.0) => {}
            _ => return Err(unsupported(node, "a pad that is not with zeros")),
        }
        let (mut dy, mut dx) = (0isize, 0isize);
        for (axis, &(before, after)) in p.pads.iter().enumerate() {
            if before == 0 && after == 0 {
                continue;
            }
            match roles.get(axis) {
                Some(Role::H) => dy = -(before as isize),
                Some(Role::W) => dx = -(before as isize),
                _ => {
                    return Err(unsupported(
                        node,
                        format!("a pad of axis {axis} ({:?})", roles.get(axis)),
                    ))
                }
            }
        }
        let shape = self.shape_from(node, &roles)?;
        let n = self.push(&name, Op::Shift { input: id, dy, dx }, shape);
        Ok(Value::Spatial { node: n, roles })
    }

    fn concat(&mut self, node: &TypedNode, axis: usize) -> Result<Value, ImportError> {
        let name = node.name.clone();
        let ins = node.inputs.clone();
        let values: Vec<Value> =
            ins.iter().map(|&o| self.value(o).cloned()).collect::<Result<_, _>>()?;
        let spatial: Vec<usize> =
            (0..ins.len()).filter(|&i| !matches!(values[i], Value::Const(_))).collect();
        let first =
            spatial.first().copied().ok_or_else(|| unsupported(node, "a concat of constants"))?;
        let (_, roles) = self.spatial(node, ins[first])?;
        let shape = self.shape_from(node, &roles)?;
        match roles.get(axis) {
            Some(Role::Channel(_)) => {
                let mut parts = Vec::new();
                for &o in &ins {
                    let (id, r) = self.spatial(node, o)?;
                    if r != roles {
                        return Err(unsupported(node, "a concat of different layouts"));
                    }
                    parts.push(id);
                }
                let n = self.push(&name, Op::Concat { inputs: parts }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            Some(Role::H | Role::W) if spatial.len() == 1 => {
                // Zeros concatenated before or after: a shift (PixelCNN++'s
                // down- and right-shifts are written this way).
                let mut before = 0usize;
                for (i, v) in values.iter().enumerate() {
                    if let Value::Const(c) = v {
                        if !floats(c)?.iter().all(|&x| x == 0.0) {
                            return Err(unsupported(
                                node,
                                "a concat of non-zero constants along rows or columns",
                            ));
                        }
                        if i < first {
                            before += c.shape()[axis];
                        }
                    }
                }
                let (id, _) = self.spatial(node, ins[first])?;
                let b = before as isize;
                let (dy, dx) = if roles[axis] == Role::H { (-b, 0) } else { (0, -b) };
                let n = self.push(&name, Op::Shift { input: id, dy, dx }, shape);
                Ok(Value::Spatial { node: n, roles })
            }
            _ => Err(unsupported(node, format!("a concat along axis {axis} ({roles:?})"))),
        }
    }

    fn finish(mut self, out: OutletId) -> Result<ForeignGraph, ImportError> {
        let out_node = self.model.node(out.node);
        let mut kind = Output::Logits;
        let mut value = self.value(out)?.clone();
        // A sigmoid probability of a binary image: its logit is the input.
        if let Value::Spatial { node, .. } = &value {
            if let Op::Unary { input, f: Activation::Sigmoid } = self.nodes[*node].op {
                if self.nodes[*node].shape.channels == 1 {
                    self.notes.push(
                        "the output sigmoid is dropped: its input is the Bernoulli logit".into(),
                    );
                    self.output_fn = OutputFn::Sigmoid;
                    let roles = match &value {
                        Value::Spatial { roles, .. } => roles.clone(),
                        _ => unreachable!(),
                    };
                    value = Value::Spatial { node: input, roles };
                }
            }
        }
        let Value::Spatial { node: output, roles } = value else {
            return Err(ImportError::Unsupported(format!(
                "the output `{}` does not depend on the image",
                out_node.name
            )));
        };
        let (h, w) = self.image_size()?;
        let shape = self.shape_of(output);
        if shape.height != h || shape.width != w {
            return Err(ImportError::Unsupported(format!(
                "the output `{}` is {}x{}, the image {}x{}",
                out_node.name, shape.width, shape.height, w, h
            )));
        }
        let levels = if shape.channels == 1 {
            kind = Output::Bernoulli;
            2
        } else {
            shape.channels
        };
        if levels > 256 {
            return Err(ImportError::Unsupported(format!(
                "{levels} levels per pixel (at most 256)"
            )));
        }
        let encoding = self
            .encoding
            .clone()
            .ok_or_else(|| ImportError::Unsupported("the output does not read the image".into()))?;
        let nodes = self.nodes;
        let graph = Graph {
            height: h,
            width: w,
            levels,
            classes: self.classes,
            encoding,
            nodes,
            output,
            output_kind: kind,
        };
        graph.validate().map_err(|e| ImportError::Unsupported(e.to_string()))?;
        let mut notes = vec![
            format!(
                "input: {}x{} image, {} levels, {} ({}), {}",
                w,
                h,
                levels,
                graph.encoding.name(),
                if self.pixels_int { "int64" } else { "float" },
                if self.classes > 0 {
                    format!("{} classes (label input)", self.classes)
                } else {
                    "unconditional".into()
                }
            ),
            format!(
                "output: {} `{}`, shape {:?}",
                match kind {
                    Output::Logits => "logits",
                    Output::Bernoulli => "one Bernoulli logit",
                },
                out_node.name,
                concrete(self.model, out)?
            ),
        ];
        notes.extend(self.notes);
        let output_shape = concrete(self.model, out)?;
        let output_roles = roles;
        Ok(ForeignGraph {
            graph,
            notes,
            io: Io {
                pixels_shape: self.pixels_shape,
                pixels_int: self.pixels_int,
                pixels_input: self.pixels_input,
                label_input: self.label_input,
                output_roles,
                output_shape,
                output_fn: self.output_fn,
            },
        })
    }
}

/// Values per channel of a constant operand broadcast against a tensor with
/// `roles` and `dims`: `None` unless every non-channel axis is 1.
fn per_channel(c: &Tensor, roles: &[Role], dims: &[usize], channels: usize) -> Option<Vec<f32>> {
    let v = floats(c).ok()?;
    if v.len() == 1 {
        return Some(v);
    }
    let cs = c.shape();
    // Align from the right (numpy broadcasting).
    let off = roles.len().checked_sub(cs.len())?;
    for (i, &d) in cs.iter().enumerate() {
        let role = roles[off + i];
        if d != 1 && !(matches!(role, Role::Channel(_)) && d == dims[off + i]) {
            return None;
        }
    }
    (v.len() == channels).then_some(v)
}

/// A `classes × channels` table from per-class tensors of one value per
/// channel (or one value).
fn class_table(tables: &[Arc<Tensor>], channels: usize) -> Option<Vec<f32>> {
    let mut out = Vec::with_capacity(tables.len() * channels);
    for t in tables {
        let v = floats(t).ok()?;
        match v.len() {
            1 => out.extend(std::iter::repeat_n(v[0], channels)),
            n if n == channels => out.extend(v),
            _ => return None,
        }
    }
    Some(out)
}

/// The shape of a tensor of `dims` with `roles`.
fn shape_for(dims: &[usize], roles: &[Role]) -> Option<Shape> {
    if dims.len() != roles.len() {
        return None;
    }
    let mut s = Shape { channels: 1, height: 0, width: 0 };
    for (&d, r) in dims.iter().zip(roles) {
        match r {
            Role::Batch | Role::Unit if d != 1 => return None,
            Role::Batch | Role::Unit => {}
            Role::H => s.height = d,
            Role::W => s.width = d,
            Role::Channel(_) => s.channels *= d,
        }
    }
    (s.height > 0 && s.width > 0).then_some(s)
}

/// The roles after an axis change; `None` when it mixes roles.
fn axis_roles(ax: &AxisOp, roles: &[Role], in_dims: &[usize]) -> Option<Vec<Role>> {
    let mut r = roles.to_vec();
    match ax {
        AxisOp::Move(from, to) => {
            let a = r.remove(*from);
            r.insert(*to, a);
        }
        AxisOp::Add(at) => r.insert(*at, Role::Unit),
        AxisOp::Rm(at) => {
            if matches!(r.get(*at), Some(Role::H | Role::W)) && in_dims.get(*at) != Some(&1) {
                return None;
            }
            r.remove(*at);
        }
        AxisOp::Reshape(at, from, to) => {
            let from: Vec<usize> =
                from.iter().map(|d| d.to_i64().ok().map(|v| v as usize)).collect::<Option<_>>()?;
            let to: Vec<usize> =
                to.iter().map(|d| d.to_i64().ok().map(|v| v as usize)).collect::<Option<_>>()?;
            let old = &r[*at..*at + from.len()];
            // Only channel axes (and unit axes) may be split or merged: the
            // flattened channel index is unchanged.
            let non_unit: Vec<Role> = old.iter().copied().filter(|x| *x != Role::Unit).collect();
            let new_roles: Vec<Role> =
                if non_unit.iter().all(|x| matches!(x, Role::Channel(_))) && !non_unit.is_empty() {
                    let base = match non_unit[0] {
                        Role::Channel(b) => b,
                        _ => 0,
                    };
                    to.iter()
                        .enumerate()
                        .map(
                            |(i, &d)| {
                                if d == 1 {
                                    Role::Unit
                                } else {
                                    Role::Channel(base * 8 + i as u16)
                                }
                            },
                        )
                        .collect()
                } else if non_unit.is_empty() {
                    to.iter().map(|_| Role::Unit).collect()
                } else {
                    // A reshape that only adds or removes unit axes around one
                    // spatial axis.
                    let kept: Vec<usize> = to.iter().copied().filter(|&d| d != 1).collect();
                    let had: Vec<usize> = from.iter().copied().filter(|&d| d != 1).collect();
                    if kept != had {
                        return None;
                    }
                    let mut it = non_unit.into_iter();
                    to.iter()
                        .map(|&d| if d == 1 { Role::Unit } else { it.next().unwrap_or(Role::Unit) })
                        .collect()
                };
            r.splice(*at..*at + from.len(), new_roles);
        }
    }
    // Channel numbers keep the flattening order only if they still increase.
    let chans: Vec<u16> =
        r.iter().filter_map(|x| if let Role::Channel(c) = x { Some(*c) } else { None }).collect();
    if chans.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    Some(r)
}

/// The nodes of a matched ELU other than its Where: the comparison, the
/// optional multiplication, the subtraction and the exponential.
fn elu_inner(m: &TypedModel, iff: &TypedNode) -> Vec<usize> {
    let mut out = vec![iff.inputs[0].node];
    let mut n = m.node(iff.inputs[2].node);
    if n.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Mul>()) {
        out.push(n.id);
        let var = if m.outlet_fact(n.inputs[0]).is_ok_and(|f| f.konst.is_none()) {
            n.inputs[0]
        } else {
            n.inputs[1]
        };
        n = m.node(var.node);
    }
    out.push(n.id);
    out.push(n.inputs[0].node);
    out
}

/// `Iff(CompLT(0, x), x, [Mul(_, alpha)] Sub(Exp(x), 1))` → `(x, alpha)`.
fn match_elu(m: &TypedModel, iff: &TypedNode) -> Option<(OutletId, f32)> {
    let &[cond, x, neg] = iff.inputs.as_slice() else { return None };
    let uni = |o: OutletId| -> Option<f32> {
        let f = m.outlet_fact(o).ok()?;
        let t = f.uniform.clone().or_else(|| f.konst.clone())?;
        let v = floats(&t).ok()?;
        v.iter().all(|&a| a == v[0]).then(|| v[0])
    };
    let c = m.node(cond.node);
    let cmp = c.op_as::<TypedBinOp>()?;
    if !cmp.0.is::<CompLT>() || c.inputs.get(1) != Some(&x) || uni(c.inputs[0]) != Some(0.0) {
        return None;
    }
    let mut n = m.node(neg.node);
    let mut alpha = 1.0;
    if n.op_as::<TypedBinOp>().is_some_and(|b| b.0.is::<Mul>()) {
        let (var, a) = match (uni(n.inputs[0]), uni(n.inputs[1])) {
            (_, Some(a)) => (n.inputs[0], a),
            (Some(a), _) => (n.inputs[1], a),
            _ => return None,
        };
        alpha = a;
        n = m.node(var.node);
    }
    let sub = n.op_as::<TypedBinOp>()?;
    if !sub.0.is::<Sub>() || uni(n.inputs[1]) != Some(1.0) {
        return None;
    }
    let e = m.node(n.inputs[0].node);
    if !e.op_as::<ElementWiseOp>().is_some_and(|w| w.0.is::<Exp>()) || e.inputs[0] != x {
        return None;
    }
    Some((x, alpha))
}

/// The file in tract-onnx, optimized for batch 1: the full pass the
/// compiled graph is checked against and benchmarked against.
#[derive(Debug)]
pub struct ForeignTract {
    runnable: Arc<TypedSimplePlan>,
    io: Io,
    encoding: Encoding,
    levels: usize,
}

impl ForeignTract {
    /// Loads `bytes`, whose import gave `io` and `graph`.
    ///
    /// # Errors
    /// tract's errors.
    pub fn new(bytes: &[u8], io: &Io, graph: &Graph) -> Result<Self, ImportError> {
        let (typed, _, _) = typed_model(bytes)?;
        let runnable =
            typed.into_optimized().map_err(tract_err)?.into_runnable().map_err(tract_err)?;
        Ok(ForeignTract {
            runnable,
            io: io.clone(),
            encoding: graph.encoding.clone(),
            levels: graph.levels,
        })
    }

    /// The `channels` output values of pixel `p` of an image `width` wide,
    /// from the file's output `out` in its own layout.
    ///
    /// # Errors
    /// When `out` is not an f32 tensor of the output's shape.
    pub fn pixel_outputs(
        &self,
        out: &Tensor,
        p: usize,
        channels: usize,
        width: usize,
    ) -> Result<Vec<f32>, ImportError> {
        let io = &self.io;
        let view = out.to_plain_array_view::<f32>().map_err(tract_err)?;
        let mut chan_axes: Vec<(u16, usize)> = io
            .output_roles
            .iter()
            .enumerate()
            .filter_map(|(i, r)| if let Role::Channel(c) = r { Some((*c, i)) } else { None })
            .collect();
        chan_axes.sort_unstable();
        let (y, x) = (p / width, p % width);
        let mut index = vec![0usize; io.output_roles.len()];
        let mut values = Vec::with_capacity(channels);
        for c in 0..channels {
            let mut rest = c;
            for &(_, axis) in chan_axes.iter().rev() {
                let d = io.output_shape[axis];
                index[axis] = rest % d;
                rest /= d;
            }
            for (i, r) in io.output_roles.iter().enumerate() {
                match r {
                    Role::H => index[i] = y,
                    Role::W => index[i] = x,
                    Role::Batch | Role::Unit => index[i] = 0,
                    Role::Channel(_) => {}
                }
            }
            values.push(*view.get(index.as_slice()).ok_or_else(|| {
                ImportError::Unsupported(format!("the output has no element {index:?}"))
            })?);
        }
        Ok(values)
    }

    /// One full pass over `image` (levels) with `class`: the file's output.
    ///
    /// # Errors
    /// tract's errors.
    pub fn run(&self, image: &[u8], class: Option<usize>) -> Result<Tensor, ImportError> {
        let io = &self.io;
        let pixels = if io.pixels_int {
            let v: Vec<i64> = image.iter().map(|&l| i64::from(l)).collect();
            Tensor::from_shape(&io.pixels_shape, &v).map_err(tract_err)?
        } else {
            let mut one = [0f32];
            let v: Vec<f32> = image
                .iter()
                .map(|&l| {
                    self.encoding.encode(l, self.levels, &mut one);
                    one[0]
                })
                .collect();
            Tensor::from_shape(&io.pixels_shape, &v).map_err(tract_err)?
        };
        let mut inputs: TVec<TValue> = tvec!();
        for ix in 0..2 {
            if ix == io.pixels_input {
                inputs.push(pixels.clone().into_tvalue());
            } else if Some(ix) == io.label_input {
                let label =
                    Tensor::from_shape(&[1], &[class.unwrap_or(0) as i64]).map_err(tract_err)?;
                inputs.push(label.into_tvalue());
            }
        }
        let out = self.runnable.run(inputs).map_err(tract_err)?;
        Ok(out[0].cast_to::<f32>().map_err(tract_err)?.into_owned())
    }
}

/// Runs the file in tract (a full pass) and the compiled graph pixel by
/// pixel on one random image (and the last class), and returns the largest
/// difference of their outputs, relative to the output's size (at least 1).
///
/// # Errors
/// tract's errors; the executor's.
pub fn verify_graph_with_tract(
    bytes: &[u8],
    imported: &ForeignGraph,
    plan: &crate::graph::plan::Plan,
    seed: u64,
) -> Result<f32, ImportError> {
    use crate::graph::exec::GraphExecutor;
    use crate::PixelExecutor;
    use rand_core::RngCore;
    let g = &imported.graph;
    let io = &imported.io;
    let mut rng = crate::rng::from_seed(seed);
    let image: Vec<u8> =
        (0..g.pixels()).map(|_| (rng.next_u32() % g.levels as u32) as u8).collect();
    let class = (g.classes > 0).then(|| g.classes - 1);
    let tract = ForeignTract::new(bytes, io, g)?;
    let out = tract.run(&image, class)?;
    let k = g.output_channels();
    let mut exec = GraphExecutor::new(g, plan, class)?;
    let mut worst = 0f32;
    for (p, &level) in image.iter().enumerate() {
        let ours = exec.logits()?.to_vec();
        let ours: Vec<f32> = match (g.output_kind, io.output_fn) {
            (Output::Bernoulli, OutputFn::Sigmoid) => vec![1.0 / (1.0 + (-ours[1]).exp())],
            (Output::Bernoulli, _) => vec![ours[1]],
            (Output::Logits, OutputFn::Softmax) => {
                let m = ours.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = ours.iter().map(|v| (v - m).exp()).collect();
                let s: f32 = e.iter().sum();
                e.iter().map(|v| v / s).collect()
            }
            (Output::Logits, _) => ours,
        };
        let theirs = tract.pixel_outputs(&out, p, k, g.width)?;
        for (o, t) in ours.iter().zip(&theirs) {
            worst = worst.max((o - t).abs() / t.abs().max(1.0));
        }
        exec.push(level)?;
    }
    Ok(worst)
}
