//! The full pass of a [`Graph`]: every node over its whole grid, in node
//! order. The oracle the incremental schedule is tested against, and the
//! naive way to sample (one full pass per pixel).

use alloc::vec;
use alloc::vec::Vec;

use super::{Graph, GraphError, Op, Shape};

/// Every node's values, position-major (`(y · width + x) · channels + c`).
pub type Values = Vec<Vec<f32>>;

/// Runs the whole graph on `image` (levels, raster order) with `class`.
///
/// # Errors
/// [`GraphError::Malformed`] when the image has the wrong size, a level is
/// out of range, or the class does not fit the graph.
pub fn full_pass(graph: &Graph, image: &[u8], class: Option<usize>) -> Result<Values, GraphError> {
    use alloc::format;
    if image.len() != graph.pixels() {
        return Err(GraphError::Malformed(format!(
            "{} pixels given, the image has {}",
            image.len(),
            graph.pixels()
        )));
    }
    if let Some(&l) = image.iter().find(|&&l| usize::from(l) >= graph.levels) {
        return Err(GraphError::Malformed(format!("level {l} of {} levels", graph.levels)));
    }
    if graph.classes > 0 && class.is_none_or(|c| c >= graph.classes) {
        return Err(GraphError::Malformed(format!("class {class:?} of {}", graph.classes)));
    }
    let mut values: Values = Vec::with_capacity(graph.nodes.len());
    for node in &graph.nodes {
        let s = node.shape;
        let mut out = vec![0.0f32; s.positions() * s.channels];
        match &node.op {
            Op::Image => {
                for (p, &level) in image.iter().enumerate() {
                    graph.encoding.encode(
                        level,
                        graph.levels,
                        &mut out[p * s.channels..(p + 1) * s.channels],
                    );
                }
            }
            op => {
                for y in 0..s.height {
                    for x in 0..s.width {
                        let p = y * s.width + x;
                        let dst = &mut out[p * s.channels..(p + 1) * s.channels];
                        position(graph, op, &s, &values, class, y, x, dst);
                    }
                }
            }
        }
        values.push(out);
    }
    Ok(values)
}

/// One position of a (non-image) node, from its inputs' full values.
#[allow(clippy::too_many_arguments)]
fn position(
    graph: &Graph,
    op: &Op,
    s: &Shape,
    values: &Values,
    class: Option<usize>,
    y: usize,
    x: usize,
    dst: &mut [f32],
) {
    let at = |id: usize, yy: isize, xx: isize| -> Option<&[f32]> {
        let t = graph.nodes[id].shape;
        t.contains(yy, xx).then(|| {
            let p = yy as usize * t.width + xx as usize;
            &values[id][p * t.channels..(p + 1) * t.channels]
        })
    };
    let (yi, xi) = (y as isize, x as isize);
    match op {
        Op::Image => unreachable!("the image has no inputs"),
        Op::Conv { input, taps, weights, bias } => {
            let cin = graph.nodes[*input].shape.channels;
            dst.copy_from_slice(bias);
            for (t, tap) in taps.iter().enumerate() {
                if let Some(v) = at(*input, yi + tap.dy, xi + tap.dx) {
                    let w = &weights[t * s.channels * cin..(t + 1) * s.channels * cin];
                    for (co, d) in dst.iter_mut().enumerate() {
                        *d += w[co * cin..(co + 1) * cin]
                            .iter()
                            .zip(v)
                            .map(|(a, b)| a * b)
                            .sum::<f32>();
                    }
                }
            }
        }
        Op::Binary { a, b, op } => {
            let (va, vb) = (at(*a, yi, xi).expect("same grid"), at(*b, yi, xi).expect("same grid"));
            for ((d, &p), &q) in dst.iter_mut().zip(va).zip(vb) {
                *d = op.apply(p, q);
            }
        }
        Op::Affine { input, scale, shift } => {
            let v = at(*input, yi, xi).expect("same grid");
            for (c, (d, &p)) in dst.iter_mut().zip(v).enumerate() {
                *d = p * scale[c.min(scale.len() - 1)] + shift[c.min(shift.len() - 1)];
            }
        }
        Op::Unary { input, f } => {
            let v = at(*input, yi, xi).expect("same grid");
            for (d, &p) in dst.iter_mut().zip(v) {
                *d = f.apply(p);
            }
        }
        Op::Channels { input, start } => {
            let v = at(*input, yi, xi).expect("same grid");
            dst.copy_from_slice(&v[*start..*start + s.channels]);
        }
        Op::Concat { inputs } => {
            let mut c = 0;
            for &i in inputs {
                let v = at(i, yi, xi).expect("same grid");
                dst[c..c + v.len()].copy_from_slice(v);
                c += v.len();
            }
        }
        Op::Shift { input, dy, dx } => match at(*input, yi + dy, xi + dx) {
            Some(v) => dst.copy_from_slice(v),
            None => dst.fill(0.0),
        },
        Op::AddClass { input, table } => {
            let v = at(*input, yi, xi).expect("same grid");
            let c = class.expect("checked above");
            let row = &table[c * s.channels..(c + 1) * s.channels];
            for ((d, &p), &b) in dst.iter_mut().zip(v).zip(row) {
                *d = p + b;
            }
        }
    }
}

/// The output logits at every pixel: `pixels × output channels`.
///
/// # Errors
/// As [`full_pass`].
pub fn logits(graph: &Graph, image: &[u8], class: Option<usize>) -> Result<Vec<f32>, GraphError> {
    Ok(full_pass(graph, image, class)?.swap_remove(graph.output))
}
