//! The executor of a compiled [`Plan`]: the graph's values in rings of rows,
//! filled step by step as pixels are pushed.
//!
//! All state is allocated when the executor is made; restarting, pushing,
//! scoring and sampling allocate nothing.

use alloc::vec;
use alloc::vec::Vec;

use super::plan::{Item, Plan};
use super::{Graph, NodeId, Op, Output};
use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::kernels::ResolvedFloat;
use crate::rng::Rng;
use crate::sampler::PixelExecutor;

/// Runs a [`Graph`] pixel by pixel along its [`Plan`].
#[derive(Debug)]
pub struct GraphExecutor<'g> {
    graph: &'g Graph,
    plan: &'g Plan,
    /// The image's geometry as an [`Arch`] (for [`PixelExecutor::arch`]):
    /// height, width, levels and classes; the layer fields are zero.
    arch: Arch,
    state: Vec<f32>,
    /// The logits of the current pixel (two for a Bernoulli output).
    logits: Vec<f32>,
    class: Option<usize>,
    pos: usize,
    kernel: ResolvedFloat,
    /// Per node: a convolution's weights as `taps × in × out`, so each input
    /// value scales a contiguous row of outputs (empty for other nodes).
    packed: Vec<Packed>,
    /// A convolution's inputs gathered over its taps (zero off the grid).
    gathered: Vec<f32>,
}

/// A convolution's packed weights, in the executor's precision.
#[derive(Debug)]
enum Packed {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

/// The precision of a graph executor's weights (arithmetic is f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weights {
    /// As in the graph.
    F32,
    /// Rounded to f16 (half the memory; widened exactly when used).
    F16,
}

impl<'g> GraphExecutor<'g> {
    /// An executor at pixel 0 of a new image of class `class`.
    ///
    /// # Errors
    /// Label errors, as [`PixelExecutor::restart`].
    pub fn new(graph: &'g Graph, plan: &'g Plan, class: Option<usize>) -> Result<Self, Error> {
        Self::with_weights(graph, plan, class, Weights::F32)
    }

    /// [`GraphExecutor::new`] with the convolutions' weights in `weights`.
    ///
    /// # Errors
    /// Label errors; [`Error::NonFinite`] when a weight is too large for
    /// f16.
    pub fn with_weights(
        graph: &'g Graph,
        plan: &'g Plan,
        class: Option<usize>,
        weights: Weights,
    ) -> Result<Self, Error> {
        let arch = Arch {
            variant: Variant::Gated,
            height: graph.height,
            width: graph.width,
            levels: graph.levels,
            classes: graph.classes,
            channels: 0,
            blocks: 0,
            first_kernel: 0,
            kernel: 0,
            head: 0,
        };
        let mut exec = GraphExecutor {
            graph,
            plan,
            arch,
            state: vec![0.0; plan.state_len],
            logits: vec![0.0; graph.levels.max(2)],
            class: None,
            pos: 0,
            kernel: ResolvedFloat::best(),
            packed: graph
                .nodes
                .iter()
                .map(|n| {
                    let p = pack(graph, &n.op, n.shape.channels);
                    match weights {
                        Weights::F32 => Ok(Packed::F32(p)),
                        Weights::F16 => {
                            let h: Vec<half::f16> =
                                p.iter().map(|&v| half::f16::from_f32(v)).collect();
                            match h.iter().position(|v| !v.is_finite()) {
                                Some(index) => Err(Error::NonFinite { index }),
                                None => Ok(Packed::F16(h)),
                            }
                        }
                    }
                })
                .collect::<Result<_, _>>()?,
            gathered: vec![
                0.0;
                graph
                    .nodes
                    .iter()
                    .map(|n| match &n.op {
                        Op::Conv { input, taps, .. } =>
                            taps.len() * graph.nodes[*input].shape.channels,
                        _ => 0,
                    })
                    .max()
                    .unwrap_or(0)
            ],
        };
        exec.restart(class)?;
        Ok(exec)
    }

    /// The logits of the current pixel: K of them (two, `[0, l]`, for a
    /// Bernoulli output of logit `l`).
    ///
    /// # Errors
    /// [`Error::ImageComplete`] after the last pixel.
    pub fn logits(&mut self) -> Result<&[f32], Error> {
        if self.pos >= self.graph.pixels() {
            return Err(Error::ImageComplete);
        }
        let k = self.graph.output_channels();
        let (y, x) = (self.pos / self.graph.width, self.pos % self.graph.width);
        let at = self.at(self.graph.output, y, x);
        match self.graph.output_kind {
            Output::Logits => self.logits[..k].copy_from_slice(&self.state[at..at + k]),
            Output::Bernoulli => {
                self.logits[0] = 0.0;
                self.logits[1] = self.state[at];
            }
        }
        Ok(&self.logits[..self.graph.levels])
    }

    /// Index in the state of position `(y, x)` of node `id`.
    #[inline]
    fn at(&self, id: NodeId, y: usize, x: usize) -> usize {
        let s = self.graph.nodes[id].shape;
        let p = &self.plan.nodes[id];
        p.offset + ((y % p.ring_rows) * s.width + x) * s.channels
    }

    /// Runs the work of `step`.
    fn run(&mut self, step: i64) {
        let plan = self.plan;
        for item in plan.work(step) {
            self.item(*item);
        }
    }

    fn item(&mut self, item: Item) {
        let graph = self.graph;
        let id = item.node as usize;
        let node = &graph.nodes[id];
        let s = node.shape;
        let y = item.y as usize;
        for x in item.x0 as usize..item.x1 as usize {
            let dst = self.at(id, y, x);
            // Where an input position lives, if it is on the input's grid.
            let src = |this: &Self, i: NodeId, yy: isize, xx: isize| -> Option<usize> {
                graph.nodes[i].shape.contains(yy, xx).then(|| this.at(i, yy as usize, xx as usize))
            };
            let (yi, xi) = (y as isize, x as isize);
            let c = s.channels;
            match &node.op {
                Op::Image => {}
                Op::Conv { input, taps, bias, .. } => {
                    let cin = graph.nodes[*input].shape.channels;
                    let w = &self.packed[id];
                    let (before, rest) = self.state.split_at_mut(dst);
                    let out = &mut rest[..c];
                    out.copy_from_slice(bias);
                    // The input ring comes before this node's in the state.
                    let s_in = &graph.nodes[*input].shape;
                    let p = &self.plan.nodes[*input];
                    let k = taps.len() * cin;
                    let x_all = &mut self.gathered[..k];
                    for (tap, x) in taps.iter().zip(x_all.chunks_exact_mut(cin)) {
                        if !s_in.contains(yi + tap.dy, xi + tap.dx) {
                            x.fill(0.0);
                            continue;
                        }
                        let at = p.offset
                            + (((yi + tap.dy) as usize % p.ring_rows) * s_in.width
                                + (xi + tap.dx) as usize)
                                * cin;
                        x.copy_from_slice(&before[at..at + cin]);
                    }
                    // Each input value scales a row of weights into the
                    // outputs; zeros (binary pixels, ReLUs, off the grid)
                    // add nothing.
                    match w {
                        Packed::F32(w) => self.kernel.gemv_f32(out, x_all, w),
                        Packed::F16(w) => {
                            for (&x, row) in x_all.iter().zip(w.chunks_exact(c)) {
                                if x != 0.0 {
                                    self.kernel.axpy_f16(out, x, row);
                                }
                            }
                        }
                    }
                }
                Op::Binary { a, b, op } => {
                    let (pa, pb) = (self.at(*a, y, x), self.at(*b, y, x));
                    for k in 0..c {
                        self.state[dst + k] = op.apply(self.state[pa + k], self.state[pb + k]);
                    }
                }
                Op::Affine { input, scale, shift } => {
                    let pi = self.at(*input, y, x);
                    for k in 0..c {
                        let m = scale[k.min(scale.len() - 1)];
                        let a = shift[k.min(shift.len() - 1)];
                        self.state[dst + k] = self.state[pi + k] * m + a;
                    }
                }
                Op::Unary { input, f } => {
                    let pi = self.at(*input, y, x);
                    for k in 0..c {
                        self.state[dst + k] = f.apply(self.state[pi + k]);
                    }
                }
                Op::Channels { input, start } => {
                    let pi = self.at(*input, y, x) + start;
                    self.state.copy_within(pi..pi + c, dst);
                }
                Op::Concat { inputs } => {
                    let mut k = 0;
                    for &i in inputs {
                        let n = graph.nodes[i].shape.channels;
                        let pi = self.at(i, y, x);
                        self.state.copy_within(pi..pi + n, dst + k);
                        k += n;
                    }
                }
                Op::Shift { input, dy, dx } => match src(self, *input, yi + dy, xi + dx) {
                    Some(pi) => self.state.copy_within(pi..pi + c, dst),
                    None => self.state[dst..dst + c].fill(0.0),
                },
                Op::AddClass { input, table } => {
                    let pi = self.at(*input, y, x);
                    let class = self.class.unwrap_or(0);
                    let row = &table[class * c..(class + 1) * c];
                    for (k, &b) in row.iter().enumerate() {
                        self.state[dst + k] = self.state[pi + k] + b;
                    }
                }
            }
        }
    }
}

/// A convolution's weights (`taps × out × in`) as `taps × in × out`.
fn pack(graph: &Graph, op: &Op, cout: usize) -> Vec<f32> {
    let Op::Conv { input, taps, weights, .. } = op else { return Vec::new() };
    let cin = graph.nodes[*input].shape.channels;
    let mut packed = vec![0.0; weights.len()];
    for t in 0..taps.len() {
        for co in 0..cout {
            for ci in 0..cin {
                packed[(t * cin + ci) * cout + co] = weights[(t * cout + co) * cin + ci];
            }
        }
    }
    packed
}

impl PixelExecutor for GraphExecutor<'_> {
    fn arch(&self) -> &Arch {
        &self.arch
    }

    fn restart(&mut self, class: Option<usize>) -> Result<(), Error> {
        crate::state::check_class(&self.arch, class)?;
        self.class = class;
        self.pos = 0;
        self.run(-1);
        Ok(())
    }

    fn position(&self) -> usize {
        self.pos
    }

    fn push(&mut self, level: u8) -> Result<(), Error> {
        let graph = self.graph;
        if self.pos >= graph.pixels() {
            return Err(Error::ImageComplete);
        }
        if usize::from(level) >= graph.levels {
            return Err(Error::LevelOutOfRange { pixel: self.pos, level, levels: graph.levels });
        }
        let (y, x) = (self.pos / graph.width, self.pos % graph.width);
        let at = self.at(0, y, x);
        let e = graph.encoding.channels();
        graph.encoding.encode(level, graph.levels, &mut self.state[at..at + e]);
        self.run(self.pos as i64);
        self.pos += 1;
        Ok(())
    }

    fn sample(&mut self, temperature: f32, rng: &mut Rng) -> Result<u8, Error> {
        let logits = self.logits()?;
        crate::sampler::sample_level(logits, temperature, rng)
    }

    fn log_probability(&mut self, level: u8) -> Result<f64, Error> {
        if usize::from(level) >= self.graph.levels {
            return Err(Error::LevelOutOfRange {
                pixel: self.pos,
                level,
                levels: self.graph.levels,
            });
        }
        let logits = self.logits()?;
        Ok(crate::sampler::log_probability(logits, usize::from(level)))
    }
}
