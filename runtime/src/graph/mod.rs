//! Causal convolutional networks as a graph, compiled into an incremental
//! schedule: the runtime's way to run PixelCNNs it did not train.
//!
//! A [`Graph`] is a small dataflow of the operations PixelCNNs are built
//! from, on feature maps of `channels × height × width`: stride-1
//! convolutions given by their non-zero taps, elementwise arithmetic and
//! activations, channel slices and concatenations, spatial shifts (the pads
//! and crops that move a map by whole rows or columns), per-class vectors.
//! Importers (ONNX: [`crate::onnx`]) build one from a file; nothing in it
//! knows which implementation the file came from.
//!
//! [`plan::Plan::compile`] then works out, element by element, the first
//! moment each value can be computed in raster order: after which pixel
//! every image pixel it depends on is known. That proves causality (the
//! logits of a pixel must be computable before the pixel itself; when not,
//! the error names the path through the graph), gives every node its mode
//! (a whole row at once when its rows depend only on rows above, else one
//! position at a time), its ring of cached rows (how many rows are alive at
//! once) and the list of work to do after each pixel. Each value is computed
//! once per image, so a pixel costs about one full forward pass divided by
//! the number of pixels. [`exec::GraphExecutor`] runs the plan.
//!
//! The idea of caching a causal network's activations is Fast PixelCNN++
//! (Ramachandran et al. 2017, arXiv 1704.06001), which rewrote each model by
//! hand; here the caches are derived from the graph.

pub mod exec;
pub mod naive;
pub mod plan;

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A node's index in [`Graph::nodes`]; nodes only read earlier nodes.
pub type NodeId = usize;

/// How many values a node holds at each position, and over which grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Values per position.
    pub channels: usize,
    /// Rows of the grid.
    pub height: usize,
    /// Columns of the grid.
    pub width: usize,
}

impl Shape {
    /// Positions of the grid.
    pub fn positions(&self) -> usize {
        self.height * self.width
    }

    /// Whether `(y, x)` (possibly negative or past the end) is on the grid.
    pub fn contains(&self, y: isize, x: isize) -> bool {
        y >= 0 && x >= 0 && (y as usize) < self.height && (x as usize) < self.width
    }
}

/// How a pixel's level becomes the values of the image node.
#[derive(Clone, Debug, PartialEq)]
pub enum Encoding {
    /// `level / (K − 1)`, one channel.
    Unit,
    /// `2 · level / (K − 1) − 1`, one channel.
    Signed,
    /// The level as a number, one channel.
    Level,
    /// Row `level` of a `K × channels` table (an embedding of the level).
    Embedding {
        /// `K × channels` values, row-major.
        table: Vec<f32>,
        /// Width of a row.
        channels: usize,
    },
}

impl Encoding {
    /// Values per pixel.
    pub fn channels(&self) -> usize {
        match self {
            Encoding::Embedding { channels, .. } => *channels,
            _ => 1,
        }
    }

    /// Writes the values of `level` (of `levels`) into `out`.
    pub fn encode(&self, level: u8, levels: usize, out: &mut [f32]) {
        let top = levels.saturating_sub(1).max(1) as f32;
        match self {
            Encoding::Unit => out[0] = f32::from(level) / top,
            Encoding::Signed => out[0] = 2.0 * f32::from(level) / top - 1.0,
            Encoding::Level => out[0] = f32::from(level),
            Encoding::Embedding { table, channels } => {
                let row = usize::from(level) * channels;
                out.copy_from_slice(&table[row..row + channels]);
            }
        }
    }

    /// The name `--input` gives it.
    pub fn name(&self) -> &'static str {
        match self {
            Encoding::Unit => "unit",
            Encoding::Signed => "signed",
            Encoding::Level => "levels",
            Encoding::Embedding { .. } => "index",
        }
    }
}

/// How a level becomes the value of a graph's float image input, when the
/// file does not say (`--input`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum InputKind {
    /// `level / (K − 1)`.
    Unit,
    /// `2 · level / (K − 1) − 1`.
    Signed,
    /// The level as a number.
    Levels,
    /// The integer level (an int64 input, or an index into an embedding).
    Index,
}

/// A kernel tap: where a convolution reads its input, relative to the
/// output position, in input coordinates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tap {
    /// Row offset.
    pub dy: isize,
    /// Column offset.
    pub dx: isize,
}

/// An elementwise function of one value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// `tanh x`.
    Tanh,
    /// `1 / (1 + e^−x)`.
    Sigmoid,
    /// `max(x, 0)`.
    Relu,
    /// `x` above 0, else `alpha · (e^x − 1)`.
    Elu(f32),
    /// `x` above 0, else `alpha · x`.
    LeakyRelu(f32),
}

impl Activation {
    /// The function at `x`.
    #[inline]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Tanh => libm::tanhf(x),
            Activation::Sigmoid => 1.0 / (1.0 + libm::expf(-x)),
            Activation::Relu => x.max(0.0),
            Activation::Elu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * (libm::expf(x) - 1.0)
                }
            }
            Activation::LeakyRelu(a) => {
                if x > 0.0 {
                    x
                } else {
                    a * x
                }
            }
        }
    }
}

/// An elementwise operation of two values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arith {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b`.
    Div,
}

impl Arith {
    /// The operation on `a` and `b`.
    #[inline]
    pub fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            Arith::Add => a + b,
            Arith::Sub => a - b,
            Arith::Mul => a * b,
            Arith::Div => a / b,
        }
    }
}

/// What a node computes.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// The image, each pixel through the graph's [`Encoding`]. Node 0, and
    /// only there.
    Image,
    /// A stride-1 convolution: `out[co] = bias[co] + Σ_t Σ_ci w[t][co][ci] ·
    /// in(y + dy_t, x + dx_t)[ci]`, reading zero outside the input's grid.
    /// Only taps with a non-zero weight are listed.
    Conv {
        /// The input node.
        input: NodeId,
        /// The taps.
        taps: Vec<Tap>,
        /// `taps × out × in` weights.
        weights: Vec<f32>,
        /// One per output channel.
        bias: Vec<f32>,
    },
    /// Two nodes of the same shape, value by value.
    Binary {
        /// Left operand.
        a: NodeId,
        /// Right operand.
        b: NodeId,
        /// The operation.
        op: Arith,
    },
    /// `x · scale[c] + shift[c]` per channel (one entry: every channel).
    Affine {
        /// The input node.
        input: NodeId,
        /// Multipliers.
        scale: Vec<f32>,
        /// Addends.
        shift: Vec<f32>,
    },
    /// An activation, value by value.
    Unary {
        /// The input node.
        input: NodeId,
        /// The function.
        f: Activation,
    },
    /// Channels `start .. start + node channels` of the input.
    Channels {
        /// The input node.
        input: NodeId,
        /// First channel.
        start: usize,
    },
    /// The inputs' channels one after the other.
    Concat {
        /// The input nodes, all on the same grid.
        inputs: Vec<NodeId>,
    },
    /// `out(y, x) = in(y + dy, x + dx)`, zero off the input's grid: pads,
    /// crops and the shifts they make.
    Shift {
        /// The input node.
        input: NodeId,
        /// Row offset.
        dy: isize,
        /// Column offset.
        dx: isize,
    },
    /// The input plus row `class` of a `classes × channels` table at every
    /// position (class conditioning).
    AddClass {
        /// The input node.
        input: NodeId,
        /// `classes × channels` values.
        table: Vec<f32>,
    },
}

impl Op {
    /// The nodes this one reads.
    pub fn inputs(&self) -> Vec<NodeId> {
        match self {
            Op::Image => Vec::new(),
            Op::Conv { input, .. }
            | Op::Affine { input, .. }
            | Op::Unary { input, .. }
            | Op::Channels { input, .. }
            | Op::Shift { input, .. }
            | Op::AddClass { input, .. } => alloc::vec![*input],
            Op::Binary { a, b, .. } => alloc::vec![*a, *b],
            Op::Concat { inputs } => inputs.clone(),
        }
    }

    /// A short name of the kind of operation.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Image => "image",
            Op::Conv { .. } => "conv",
            Op::Binary { op: Arith::Add, .. } => "add",
            Op::Binary { op: Arith::Sub, .. } => "sub",
            Op::Binary { op: Arith::Mul, .. } => "mul",
            Op::Binary { op: Arith::Div, .. } => "div",
            Op::Affine { .. } => "affine",
            Op::Unary { f: Activation::Tanh, .. } => "tanh",
            Op::Unary { f: Activation::Sigmoid, .. } => "sigmoid",
            Op::Unary { f: Activation::Relu, .. } => "relu",
            Op::Unary { f: Activation::Elu(_), .. } => "elu",
            Op::Unary { f: Activation::LeakyRelu(_), .. } => "leaky-relu",
            Op::Channels { .. } => "channels",
            Op::Concat { .. } => "concat",
            Op::Shift { .. } => "shift",
            Op::AddClass { .. } => "class",
        }
    }

    /// Multiply-accumulates per output position.
    pub fn macs(&self, shape: &Shape) -> usize {
        match self {
            Op::Conv { weights, .. } => weights.len(),
            Op::Image | Op::Channels { .. } | Op::Concat { .. } | Op::Shift { .. } => 0,
            _ => shape.channels,
        }
    }
}

/// A node: an operation, the shape of its result, and a name (the source
/// file's, for messages).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Name in the source graph.
    pub name: String,
    /// The operation.
    pub op: Op,
    /// The result's shape.
    pub shape: Shape,
}

/// What the output node's channels are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// K logits of a softmax over the levels.
    Logits,
    /// One logit of level 1 of a binary image (a Bernoulli).
    Bernoulli,
}

/// A causal convolutional network. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Graph {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Levels per pixel, K.
    pub levels: usize,
    /// Classes of the label input (0: unconditional).
    pub classes: usize,
    /// How a level becomes the image node's values.
    pub encoding: Encoding,
    /// The nodes, each reading only earlier ones; node 0 is the image.
    pub nodes: Vec<Node>,
    /// The node holding the logits, on the image's grid.
    pub output: NodeId,
    /// What its channels mean.
    pub output_kind: Output,
}

/// What is wrong with a graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GraphError {
    /// Its shapes or indices do not fit together (an importer's bug or a
    /// corrupt file), said in words.
    Malformed(String),
    /// The logits of a pixel depend on that pixel or a later one.
    NotCausal(String),
    /// Too large to schedule.
    TooLarge(String),
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GraphError::Malformed(s) => write!(f, "malformed graph: {s}"),
            GraphError::NotCausal(s) => write!(f, "not causal: {s}"),
            GraphError::TooLarge(s) => write!(f, "too large: {s}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for GraphError {}

/// Largest image side and channel count a graph may have.
pub const MAX_SIDE: usize = 1024;
/// Largest channel count of one node.
pub const MAX_CHANNELS: usize = 1 << 16;
/// Largest number of nodes.
pub const MAX_NODES: usize = 4096;

impl Graph {
    /// The image's pixels.
    pub fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// The logits per pixel the output gives (K, or 1 for a Bernoulli).
    pub fn output_channels(&self) -> usize {
        match self.output_kind {
            Output::Logits => self.levels,
            Output::Bernoulli => 1,
        }
    }

    /// Multiply-accumulates of one full pass, divided by the pixels: what
    /// one incremental pixel costs.
    pub fn macs_per_pixel(&self) -> usize {
        self.nodes.iter().map(|n| n.op.macs(&n.shape) * n.shape.positions()).sum::<usize>()
            / self.pixels().max(1)
    }

    /// Checks that every shape, index and length fits: node 0 is the image
    /// on the image grid, nodes read only earlier ones, each operation's
    /// operands fit its shape, numbers are finite.
    ///
    /// # Errors
    /// [`GraphError::Malformed`] or [`GraphError::TooLarge`], in words.
    pub fn validate(&self) -> Result<(), GraphError> {
        use alloc::format;
        let bad = |s: String| Err(GraphError::Malformed(s));
        if self.height == 0 || self.width == 0 || self.height > MAX_SIDE || self.width > MAX_SIDE {
            return Err(GraphError::TooLarge(format!(
                "a {}x{} image (1 to {MAX_SIDE} a side)",
                self.width, self.height
            )));
        }
        if !(2..=256).contains(&self.levels) {
            return bad(format!("{} levels (2 to 256)", self.levels));
        }
        if self.nodes.len() > MAX_NODES {
            return Err(GraphError::TooLarge(format!("{} nodes", self.nodes.len())));
        }
        let image =
            Shape { channels: self.encoding.channels(), height: self.height, width: self.width };
        match self.nodes.first() {
            Some(n) if n.op == Op::Image && n.shape == image => {}
            _ => return bad("node 0 must be the image".into()),
        }
        if let Encoding::Embedding { table, channels } = &self.encoding {
            if *channels == 0 || table.len() != self.levels * channels {
                return bad(format!("the level embedding has {} values", table.len()));
            }
        }
        for (id, node) in self.nodes.iter().enumerate().skip(1) {
            let s = node.shape;
            let name = &node.name;
            if s.channels == 0
                || s.channels > MAX_CHANNELS
                || s.height > 4 * MAX_SIDE
                || s.width > 4 * MAX_SIDE
            {
                return Err(GraphError::TooLarge(format!("node `{name}` has shape {s:?}")));
            }
            let inputs = node.op.inputs();
            if inputs.iter().any(|&i| i >= id) {
                return bad(format!("node `{name}` reads a later node"));
            }
            let shape_of = |i: NodeId| self.nodes[i].shape;
            let same_grid = |i: NodeId| {
                let t = shape_of(i);
                t.height == s.height && t.width == s.width
            };
            let ok = match &node.op {
                Op::Image => false,
                Op::Conv { input, taps, weights, bias } => {
                    let cin = shape_of(*input).channels;
                    !taps.is_empty()
                        && weights.len() == taps.len() * s.channels * cin
                        && bias.len() == s.channels
                        && taps.iter().all(|t| {
                            t.dy.unsigned_abs() <= 4 * MAX_SIDE
                                && t.dx.unsigned_abs() <= 4 * MAX_SIDE
                        })
                }
                Op::Binary { a, b, .. } => shape_of(*a) == s && shape_of(*b) == s,
                Op::Affine { input, scale, shift } => {
                    shape_of(*input) == s
                        && (scale.len() == s.channels || scale.len() == 1)
                        && (shift.len() == s.channels || shift.len() == 1)
                }
                Op::Unary { input, .. } => shape_of(*input) == s,
                Op::Channels { input, start } => {
                    same_grid(*input) && start + s.channels <= shape_of(*input).channels
                }
                Op::Concat { inputs } => {
                    !inputs.is_empty()
                        && inputs.iter().all(|&i| same_grid(i))
                        && inputs.iter().map(|&i| shape_of(i).channels).sum::<usize>() == s.channels
                }
                Op::Shift { input, dy, dx } => {
                    shape_of(*input).channels == s.channels
                        && dy.unsigned_abs() <= 4 * MAX_SIDE
                        && dx.unsigned_abs() <= 4 * MAX_SIDE
                }
                Op::AddClass { input, table } => {
                    shape_of(*input) == s
                        && self.classes > 0
                        && table.len() == self.classes * s.channels
                }
            };
            if !ok {
                return bad(format!(
                    "node `{name}` ({}) does not fit its inputs or its shape {s:?}",
                    node.op.kind()
                ));
            }
            let finite = |v: &[f32]| v.iter().all(|x| x.is_finite());
            let values_ok = match &node.op {
                Op::Conv { weights, bias, .. } => finite(weights) && finite(bias),
                Op::Affine { scale, shift, .. } => finite(scale) && finite(shift),
                Op::AddClass { table, .. } => finite(table),
                Op::Unary { f: Activation::Elu(a) | Activation::LeakyRelu(a), .. } => a.is_finite(),
                _ => true,
            };
            if !values_ok {
                return bad(format!("node `{name}` has a weight that is not a finite number"));
            }
        }
        let out = self.nodes.get(self.output).map(|n| n.shape);
        let want =
            Shape { channels: self.output_channels(), height: self.height, width: self.width };
        if out != Some(want) {
            return bad(format!("the output is {out:?}, expected {want:?}"));
        }
        Ok(())
    }
}
