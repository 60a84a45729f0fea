//! The incremental schedule of a [`Graph`], derived from its dependencies.
//!
//! Time is counted in pixels: step `s` is the moment pixel `s` (raster
//! index) has been pushed; step −1 is before the first pixel, when the class
//! is known. For every value the graph computes, [`Plan::compile`] finds the
//! first step at which everything it reads is known — the image pixels
//! through every tap, pad and crop on the way, each read only where it lies
//! on its grid (outside, a convolution reads zero and depends on nothing).
//! From these steps:
//!
//! - **causality**: the logits of pixel `p` must be known at step `p − 1`;
//!   when not, the error follows the latest dependency back to the image and
//!   names every node on the path;
//! - **modes**: a node whose rows can each be computed at one step without
//!   delaying the logits computes a whole row at once (a vertical stack, at
//!   the start of each image row); the others compute each position at its
//!   own step (a horizontal stack, one per pixel);
//! - **rings**: a value is alive from the step it is computed to the last
//!   step a reader needs it; a node keeps as many rows as are ever alive at
//!   once, in a ring;
//! - **work lists**: what to compute after each pixel, in node order.
//!
//! Values no output depends on (rows a crop throws away) are never computed.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use super::{Graph, GraphError, NodeId, Op};

/// How a node's values are computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A whole row of the node at one step.
    Row,
    /// Each position at its own step.
    Position,
}

/// One node's part of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePlan {
    /// Row or position at a time.
    pub mode: Mode,
    /// Rows kept (a ring): row `y` lives in slot `y % ring_rows`.
    pub ring_rows: usize,
    /// Where the ring starts in the executor's state, in f32 values.
    pub offset: usize,
}

/// Work: positions `x0..x1` of row `y` of `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    /// The node.
    pub node: u32,
    /// The row.
    pub y: u32,
    /// First column.
    pub x0: u32,
    /// One past the last column.
    pub x1: u32,
}

/// The compiled schedule of a graph. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Per node.
    pub nodes: Vec<NodePlan>,
    /// Work of all steps, in order.
    items: Vec<Item>,
    /// Step `s` runs `items[starts[s + 1]..starts[s + 2]]`.
    starts: Vec<usize>,
    /// f32 values of state the executor needs (all rings).
    pub state_len: usize,
}

/// Steps of every position of every node: `None` where no output needs it.
type Steps = Vec<Vec<Option<i64>>>;

/// Where a position of a node reads its inputs: `(node, y, x)` on the
/// input's grid (positions off the grid are left out: they read zero).
fn reads(graph: &Graph, id: NodeId, y: usize, x: usize, mut f: impl FnMut(NodeId, usize, usize)) {
    let (yi, xi) = (y as isize, x as isize);
    let mut at = |i: NodeId, yy: isize, xx: isize| {
        if graph.nodes[i].shape.contains(yy, xx) {
            f(i, yy as usize, xx as usize);
        }
    };
    match &graph.nodes[id].op {
        Op::Image => {}
        Op::Conv { input, taps, .. } => {
            for t in taps {
                at(*input, yi + t.dy, xi + t.dx);
            }
        }
        Op::Shift { input, dy, dx } => at(*input, yi + dy, xi + dx),
        op => {
            for i in op.inputs() {
                at(i, yi, xi);
            }
        }
    }
}

impl Plan {
    /// Compiles `graph` (see the module docs).
    ///
    /// # Errors
    /// [`GraphError::NotCausal`] naming the path from the image to a logit
    /// that sees its own pixel or a later one; the errors of
    /// [`Graph::validate`].
    pub fn compile(graph: &Graph) -> Result<Plan, GraphError> {
        graph.validate()?;
        let needed = needed(graph);
        let mut modes = vec![Mode::Position; graph.nodes.len()];
        let steps = steps(graph, &modes, &needed);
        check_causal(graph, &steps)?;
        // Whole rows wherever that keeps every logit in time, in node order
        // (a node's mode changes the steps of the nodes after it only).
        let mut steps = steps;
        for id in 1..graph.nodes.len() {
            modes[id] = Mode::Row;
            let trial = steps_from(graph, &modes, &needed, steps.clone(), id);
            if causal(graph, &trial) {
                steps = trial;
            } else {
                modes[id] = Mode::Position;
            }
        }
        // Each value as late as its readers allow: nothing is computed long
        // before it is read (which would keep it alive), and a logit just
        // before its pixel.
        let steps = as_late_as_possible(graph, &modes, &steps);
        let rings = rings(graph, &steps);
        let mut nodes = Vec::with_capacity(graph.nodes.len());
        let mut offset = 0usize;
        for (id, node) in graph.nodes.iter().enumerate() {
            let ring_rows = rings[id];
            nodes.push(NodePlan { mode: modes[id], ring_rows, offset });
            offset = ring_rows
                .checked_mul(node.shape.width * node.shape.channels)
                .and_then(|n| offset.checked_add(n))
                .ok_or_else(|| GraphError::TooLarge("the caches' size overflows".into()))?;
        }
        let (items, starts) = work_lists(graph, &steps);
        Ok(Plan { nodes, items, starts, state_len: offset })
    }

    /// The work after pixel `step` (−1: at the start of an image).
    pub fn work(&self, step: i64) -> &[Item] {
        let s = (step + 1) as usize;
        match (self.starts.get(s), self.starts.get(s + 1)) {
            (Some(&a), Some(&b)) => &self.items[a..b],
            _ => &[],
        }
    }

    /// Work items in all.
    pub fn item_count(&self) -> usize {
        self.items.len()
    }
}

/// The positions some output value depends on, per node.
fn needed(graph: &Graph) -> Vec<Vec<bool>> {
    let mut needed: Vec<Vec<bool>> =
        graph.nodes.iter().map(|n| vec![false; n.shape.positions()]).collect();
    needed[graph.output].fill(true);
    for id in (1..graph.nodes.len()).rev() {
        let w = graph.nodes[id].shape.width;
        for p in 0..needed[id].len() {
            if needed[id][p] {
                reads(graph, id, p / w, p % w, |i, y, x| {
                    let wi = graph.nodes[i].shape.width;
                    needed[i][y * wi + x] = true;
                });
            }
        }
    }
    // Every pixel is pushed, whatever reads it.
    needed[0].fill(true);
    needed
}

/// The step of every needed position, for `modes`.
fn steps(graph: &Graph, modes: &[Mode], needed: &[Vec<bool>]) -> Steps {
    let image: Vec<Option<i64>> = (0..graph.pixels()).map(|p| Some(p as i64)).collect();
    let mut steps = Vec::with_capacity(graph.nodes.len());
    steps.push(image);
    steps.extend(graph.nodes.iter().skip(1).map(|n| vec![None; n.shape.positions()]));
    steps_from(graph, modes, needed, steps, 1)
}

/// [`steps`], recomputed for nodes `from..` (the earlier ones unchanged).
fn steps_from(
    graph: &Graph,
    modes: &[Mode],
    needed: &[Vec<bool>],
    mut steps: Steps,
    from: NodeId,
) -> Steps {
    for id in from..graph.nodes.len() {
        let s = graph.nodes[id].shape;
        let mut own = vec![None; s.positions()];
        for (p, slot) in own.iter_mut().enumerate() {
            if needed[id][p] {
                let mut step = -1i64;
                reads(graph, id, p / s.width, p % s.width, |i, y, x| {
                    let read =
                        steps[i][y * graph.nodes[i].shape.width + x].expect("inputs are needed");
                    step = step.max(read);
                });
                *slot = Some(step);
            }
        }
        if modes[id] == Mode::Row {
            for row in own.chunks_mut(s.width) {
                if let Some(last) = row.iter().flatten().copied().max() {
                    row.iter_mut().flatten().for_each(|v| *v = last);
                }
            }
        }
        steps[id] = own;
    }
    steps
}

/// The latest step of every needed value that is still before all its
/// readers (the logits: before their pixel), never before `earliest`; a
/// row-mode node keeps one step per row.
fn as_late_as_possible(graph: &Graph, modes: &[Mode], earliest: &Steps) -> Steps {
    let mut late: Steps = earliest.iter().map(|n| vec![None; n.len()]).collect();
    late[0] = earliest[0].clone();
    for (p, slot) in late[graph.output].iter_mut().enumerate() {
        *slot = Some(p as i64 - 1);
    }
    for id in (1..graph.nodes.len()).rev() {
        let w = graph.nodes[id].shape.width;
        // Readers have all been settled: settle this node's rows.
        if modes[id] == Mode::Row {
            for row in late[id].chunks_mut(w) {
                if let Some(first) = row.iter().flatten().copied().min() {
                    row.iter_mut().flatten().for_each(|v| *v = first);
                }
            }
        }
        // Positions nobody reads but that are needed (the output).
        for (slot, e) in late[id].iter_mut().zip(&earliest[id]) {
            if slot.is_none() {
                *slot = *e;
            }
        }
        let own = late[id].clone();
        for (p, s) in own.iter().enumerate() {
            if let Some(s) = *s {
                reads(graph, id, p / w, p % w, |i, y, x| {
                    if i != 0 {
                        let slot = &mut late[i][y * graph.nodes[i].shape.width + x];
                        *slot = Some(slot.map_or(s, |l| l.min(s)));
                    }
                });
            }
        }
    }
    late
}

/// Whether every logit is known before its pixel.
fn causal(graph: &Graph, steps: &Steps) -> bool {
    steps[graph.output].iter().enumerate().all(|(p, s)| s.is_some_and(|s| s < p as i64))
}

/// [`causal`], or the path that breaks it.
fn check_causal(graph: &Graph, steps: &Steps) -> Result<(), GraphError> {
    let width = graph.width;
    let Some((p, _)) =
        steps[graph.output].iter().enumerate().find(|(p, s)| s.is_none_or(|s| s >= *p as i64))
    else {
        return Ok(());
    };
    // Follow the latest dependency from the logit back to an image pixel.
    let mut path: Vec<String> = Vec::new();
    let (mut id, mut y, mut x) = (graph.output, p / width, p % width);
    let latest = steps[id][y * graph.nodes[id].shape.width + x].unwrap_or(i64::MAX);
    while id != 0 {
        let node = &graph.nodes[id];
        path.push(format!("{} `{}` at ({y}, {x})", node.op.kind(), node.name));
        let mut next = None;
        reads(graph, id, y, x, |i, yy, xx| {
            let s = steps[i][yy * graph.nodes[i].shape.width + xx];
            if next.is_none() && s == Some(latest) {
                next = Some((i, yy, xx));
            }
        });
        match next {
            Some((i, yy, xx)) => (id, y, x) = (i, yy, xx),
            None => break,
        }
    }
    path.reverse();
    let pixel = latest.max(0) as usize;
    Err(GraphError::NotCausal(
        format!(
            "the logits of pixel ({}, {}) depend on pixel ({}, {}){}: image -> {}",
            p / width,
            p % width,
            pixel / width,
            pixel % width,
            if pixel == p { ", itself" } else { ", which comes later" },
            path.join(" -> ")
        ) + "; a PixelCNN's first layer must not read the current pixel (mask A), and a vertical \
         stack that sees the current row must reach the horizontal stack shifted down one row",
    ))
}

/// Rows each node keeps: the most rows alive at one step.
fn rings(graph: &Graph, steps: &Steps) -> Vec<usize> {
    // The last step each value is read.
    let mut last: Vec<Vec<Option<i64>>> =
        graph.nodes.iter().map(|n| vec![None; n.shape.positions()]).collect();
    for (id, own) in steps.iter().enumerate().skip(1) {
        let w = graph.nodes[id].shape.width;
        for (p, s) in own.iter().enumerate() {
            if let Some(s) = *s {
                reads(graph, id, p / w, p % w, |i, y, x| {
                    let slot = &mut last[i][y * graph.nodes[i].shape.width + x];
                    *slot = Some(slot.map_or(s, |l| l.max(s)));
                });
            }
        }
    }
    // The logits of pixel p are read after step p − 1.
    for (p, slot) in last[graph.output].iter_mut().enumerate() {
        *slot = Some(slot.map_or(p as i64 - 1, |l| l.max(p as i64 - 1)));
    }
    graph
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| {
            let w = node.shape.width;
            // Per row: written from `first`, read until `until`.
            let rows: Vec<Option<(i64, i64)>> = (0..node.shape.height)
                .map(|y| {
                    let written = steps[id][y * w..(y + 1) * w].iter().flatten().copied().min()?;
                    let until = last[id][y * w..(y + 1) * w].iter().flatten().copied().max();
                    Some((written, until.unwrap_or(written).max(written)))
                })
                .collect();
            let mut most = 1;
            for (y2, r2) in rows.iter().enumerate() {
                let Some((first2, _)) = r2 else { continue };
                if let Some(y1) =
                    (0..=y2).find(|&y1| rows[y1].is_some_and(|(_, until)| until >= *first2))
                {
                    most = most.max(y2 - y1 + 1);
                }
            }
            most
        })
        .collect()
}

/// The items of every step, in node order, runs of adjacent columns merged.
fn work_lists(graph: &Graph, steps: &Steps) -> (Vec<Item>, Vec<usize>) {
    let mut all: Vec<(i64, u32, u32, u32)> = Vec::new();
    for (id, node) in graph.nodes.iter().enumerate().skip(1) {
        let w = node.shape.width;
        for (p, s) in steps[id].iter().enumerate() {
            if let Some(s) = *s {
                all.push((s, id as u32, (p / w) as u32, (p % w) as u32));
            }
        }
    }
    all.sort_unstable();
    let mut items: Vec<Item> = Vec::new();
    let mut starts = vec![0usize; graph.pixels() + 2];
    let mut step_of_item: Vec<i64> = Vec::new();
    for &(s, node, y, x) in &all {
        match items.last_mut() {
            Some(it)
                if *step_of_item.last().expect("same length") == s
                    && it.node == node
                    && it.y == y
                    && it.x1 == x =>
            {
                it.x1 = x + 1;
            }
            _ => {
                items.push(Item { node, y, x0: x, x1: x + 1 });
                step_of_item.push(s);
            }
        }
    }
    // starts[s + 1] = first item of step s.
    let mut k = 0;
    for (slot, start) in starts.iter_mut().enumerate() {
        let step = slot as i64 - 1;
        while k < items.len() && step_of_item[k] < step {
            k += 1;
        }
        *start = k;
    }
    (items, starts)
}
