//! Graphs compiled into incremental schedules: at every pixel the schedule's
//! logits equal the full pass, on gated and plain networks written in the
//! three styles the public PixelCNNs use (masked full kernels, reduced kernels
//! with a crop, explicit shifts); acausal graphs are refused with their path.

use pixelcnn_runtime::graph::exec::GraphExecutor;
use pixelcnn_runtime::graph::naive;
use pixelcnn_runtime::graph::plan::{Mode, Plan};
use pixelcnn_runtime::graph::{
    Activation, Arith, Encoding, Graph, GraphError, Node, NodeId, Op, Output, Shape, Tap,
};
use pixelcnn_runtime::{rng, sampler, PixelExecutor};
use rand_core::RngCore;

/// Builds graphs node by node with random weights.
struct Builder {
    g: Graph,
    rng: pixelcnn_runtime::rng::Rng,
}

impl Builder {
    fn new(
        height: usize,
        width: usize,
        levels: usize,
        classes: usize,
        encoding: Encoding,
        seed: u64,
    ) -> Self {
        let shape = Shape { channels: encoding.channels(), height, width };
        Builder {
            g: Graph {
                height,
                width,
                levels,
                classes,
                encoding,
                nodes: vec![Node { name: "image".into(), op: Op::Image, shape }],
                output: 0,
                output_kind: Output::Logits,
            },
            rng: rng::from_seed(seed),
        }
    }

    fn uniform(&mut self) -> f32 {
        (self.rng.next_u32() as f32 / u32::MAX as f32) * 2.0 - 1.0
    }

    fn shape(&self, id: NodeId) -> Shape {
        self.g.nodes[id].shape
    }

    fn push(&mut self, op: Op, shape: Shape) -> NodeId {
        let name = format!("n{}", self.g.nodes.len());
        self.g.nodes.push(Node { name, op, shape });
        self.g.nodes.len() - 1
    }

    /// A convolution over `taps` with `out` channels on an `h × w` grid.
    fn conv_on(&mut self, input: NodeId, taps: Vec<Tap>, out: usize, h: usize, w: usize) -> NodeId {
        let cin = self.shape(input).channels;
        let scale = 1.0 / ((taps.len() * cin) as f32).sqrt();
        let weights = (0..taps.len() * out * cin).map(|_| self.uniform() * scale).collect();
        let bias = (0..out).map(|_| self.uniform() * 0.1).collect();
        self.push(
            Op::Conv { input, taps, weights, bias },
            Shape { channels: out, height: h, width: w },
        )
    }

    fn conv(&mut self, input: NodeId, taps: Vec<Tap>, out: usize) -> NodeId {
        let s = self.shape(input);
        self.conv_on(input, taps, out, s.height, s.width)
    }

    fn binary(&mut self, a: NodeId, b: NodeId, op: Arith) -> NodeId {
        let s = self.shape(a);
        self.push(Op::Binary { a, b, op }, s)
    }

    fn unary(&mut self, input: NodeId, f: Activation) -> NodeId {
        let s = self.shape(input);
        self.push(Op::Unary { input, f }, s)
    }

    fn channels(&mut self, input: NodeId, start: usize, n: usize) -> NodeId {
        let s = self.shape(input);
        self.push(Op::Channels { input, start }, Shape { channels: n, ..s })
    }

    /// `tanh(first half) · sigmoid(second half)`.
    fn gate(&mut self, input: NodeId) -> NodeId {
        let c = self.shape(input).channels / 2;
        let a = self.channels(input, 0, c);
        let b = self.channels(input, c, c);
        let t = self.unary(a, Activation::Tanh);
        let s = self.unary(b, Activation::Sigmoid);
        self.binary(t, s, Arith::Mul)
    }

    fn shift(&mut self, input: NodeId, dy: isize, dx: isize, h: usize, w: usize) -> NodeId {
        let c = self.shape(input).channels;
        self.push(Op::Shift { input, dy, dx }, Shape { channels: c, height: h, width: w })
    }

    fn add_class(&mut self, input: NodeId) -> NodeId {
        let s = self.shape(input);
        let table = (0..self.g.classes * s.channels).map(|_| self.uniform()).collect();
        self.push(Op::AddClass { input, table }, s)
    }

    fn finish(mut self, output: NodeId, kind: Output) -> Graph {
        self.g.output = output;
        self.g.output_kind = kind;
        self.g
    }
}

fn taps(dys: std::ops::RangeInclusive<isize>, dxs: std::ops::RangeInclusive<isize>) -> Vec<Tap> {
    dys.flat_map(|dy| dxs.clone().map(move |dx| Tap { dy, dx })).collect()
}

/// Masked full k×k kernels ("same" padding), masks V (rows up to the
/// centre row), A and B (centre row, left part), the vertical
/// pre-activation shifted down one row before the link, as the seed blog's
/// Keras code does. `classes > 0` adds a class vector in every layer.
fn masked_gated(
    h: usize,
    w: usize,
    levels: usize,
    classes: usize,
    layers: usize,
    seed: u64,
) -> Graph {
    let mut b = Builder::new(h, w, levels, classes, Encoding::Unit, seed);
    let c = 6;
    let (mut v, mut hs) = (0, 0);
    for l in 0..layers {
        let r = if l == 0 { 2 } else { 1 };
        let mut vp = b.conv(v, taps(-r..=0, -r..=r), 2 * c);
        if classes > 0 {
            vp = b.add_class(vp);
        }
        let link_in = b.shift(vp, -1, 0, h, w);
        let link = b.conv(link_in, taps(0..=0, 0..=0), 2 * c);
        let right = if l == 0 { -1 } else { 0 };
        let hc = b.conv(hs, taps(0..=0, -r..=right), 2 * c);
        let mut hp = b.binary(hc, link, Arith::Add);
        if classes > 0 {
            hp = b.add_class(hp);
        }
        v = b.gate(vp);
        let hg = b.gate(hp);
        let out = b.conv(hg, taps(0..=0, 0..=0), c);
        hs = if l == 0 { out } else { b.binary(out, hs, Arith::Add) };
    }
    let relu = b.unary(hs, Activation::Elu(1.0));
    let head = b.conv(relu, taps(0..=0, 0..=0), levels);
    b.finish(head, Output::Logits)
}

/// Reduced kernels with padding and a crop (pytorch-vqvae style): the
/// vertical `(r+1)×(2r+1)` conv runs on a grid `r` rows taller and is cropped
/// to the first `h` rows; the horizontal `1×(r+1)` likewise on a wider grid.
/// Level embedding input, one Bernoulli logit out, ReLU and skips summed.
fn reduced_crop(h: usize, w: usize, layers: usize, seed: u64) -> Graph {
    let table: Vec<f32> = (0..2 * 3).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut b = Builder::new(h, w, 2, 0, Encoding::Embedding { table, channels: 3 }, seed);
    let c = 4;
    let r = 1isize;
    let (mut v, mut hs) = (0, 0);
    let mut skips: Option<NodeId> = None;
    for l in 0..layers {
        // Padded by r on top (and r at the bottom): output row y reads input
        // rows y − r .. y; the grid is h + r rows; the crop keeps rows 0..h.
        let first = l == 0;
        let vtaps = taps(-r..=if first { -1 } else { 0 }, -r..=r);
        let vbig = b.conv_on(v, vtaps, 2 * c, h + r as usize, w);
        let vp = b.shift(vbig, 0, 0, h, w);
        // The down-shift: pad one row on top, drop the last.
        let down = b.shift(vp, -1, 0, h, w);
        let link = b.conv(down, taps(0..=0, 0..=0), 2 * c);
        let htaps = taps(0..=0, -r..=if first { -1 } else { 0 });
        let hbig = b.conv_on(hs, htaps, 2 * c, h, w + r as usize);
        let hc = b.shift(hbig, 0, 0, h, w);
        let hp = b.binary(hc, link, Arith::Add);
        v = b.gate(vp);
        let hg = b.gate(hp);
        let skip = b.conv(hg, taps(0..=0, 0..=0), c);
        skips = Some(match skips {
            None => skip,
            Some(s) => b.binary(s, skip, Arith::Add),
        });
        hs = hg;
    }
    let relu = b.unary(skips.expect("layers > 0"), Activation::Relu);
    let hidden = b.conv(relu, taps(0..=0, 0..=0), c);
    let relu2 = b.unary(hidden, Activation::Relu);
    let out = b.conv(relu2, taps(0..=0, 0..=0), 1);
    b.finish(out, Output::Bernoulli)
}

/// A plain masked PixelCNN (mask A then mask B, "same" padding) with a
/// per-channel affine (a BatchNorm) and 4 levels: it has a blind spot, and
/// is causal.
fn plain(h: usize, w: usize, seed: u64) -> Graph {
    let mut b = Builder::new(h, w, 4, 0, Encoding::Signed, seed);
    let mask = |r: isize, center: bool| -> Vec<Tap> {
        taps(-r..=r, -r..=r)
            .into_iter()
            .filter(|t| t.dy < 0 || (t.dy == 0 && (t.dx < 0 || (center && t.dx == 0))))
            .collect()
    };
    let a = b.conv(0, mask(2, false), 5);
    let s = b.shape(a);
    let bn =
        b.push(Op::Affine { input: a, scale: vec![0.9, 1.1, 1.0, 0.8, 1.2], shift: vec![0.1] }, s);
    let mut x = b.unary(bn, Activation::LeakyRelu(0.1));
    for _ in 0..2 {
        let y = b.conv(x, mask(1, true), 5);
        x = b.unary(y, Activation::Relu);
    }
    let out = b.conv(x, taps(0..=0, 0..=0), 4);
    b.finish(out, Output::Logits)
}

fn random_image(g: &Graph, seed: u64) -> Vec<u8> {
    let mut r = rng::from_seed(seed);
    (0..g.pixels()).map(|_| (r.next_u32() % g.levels as u32) as u8).collect()
}

/// Pushes `image` and compares the logits before every pixel with the full
/// pass's.
fn assert_schedule_equals_full_pass(g: &Graph, class: Option<usize>, seed: u64) -> Plan {
    let plan = Plan::compile(g).unwrap();
    let image = random_image(g, seed);
    let full = naive::logits(g, &image, class).unwrap();
    let k = g.output_channels();
    let mut exec = GraphExecutor::new(g, &plan, class).unwrap();
    for (p, &level) in image.iter().enumerate() {
        let logits = exec.logits().unwrap().to_vec();
        let want = &full[p * k..(p + 1) * k];
        let got = match g.output_kind {
            Output::Logits => &logits[..],
            Output::Bernoulli => &logits[1..],
        };
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "pixel {p}: {got:?} vs {want:?}");
        }
        exec.push(level).unwrap();
    }
    assert!(exec.logits().is_err(), "no logits after the last pixel");
    plan
}

#[test]
fn masked_gated_schedule_equals_the_full_pass() {
    for (seed, (h, w, layers)) in [(7, 9, 3), (5, 5, 2), (9, 6, 4)].into_iter().enumerate() {
        let g = masked_gated(h, w, 2, 0, layers, seed as u64);
        assert_schedule_equals_full_pass(&g, None, seed as u64);
        let g = masked_gated(h, w, 3, 4, layers, seed as u64 + 10);
        for class in 0..4 {
            assert_schedule_equals_full_pass(&g, Some(class), class as u64);
        }
    }
}

#[test]
fn reduced_kernels_with_crops_equal_the_full_pass_and_skip_the_cropped_rows() {
    let g = reduced_crop(8, 7, 3, 5);
    let plan = assert_schedule_equals_full_pass(&g, None, 3);
    // The rows and columns the crops drop are never computed.
    for it in (-1..g.pixels() as i64).flat_map(|s| plan.work(s).iter().copied()) {
        assert!(
            (it.y as usize) < g.height && (it.x1 as usize) <= g.width,
            "node {} computes {it:?}, outside the crop",
            it.node
        );
    }
}

#[test]
fn plain_pixelcnn_with_an_affine_equals_the_full_pass() {
    let g = plain(8, 8, 9);
    assert_schedule_equals_full_pass(&g, None, 1);
}

#[test]
fn vertical_stacks_run_a_row_at_a_time_and_keep_a_few_rows() {
    let (h, w) = (10, 12);
    let g = masked_gated(h, w, 2, 0, 3, 7);
    let plan = Plan::compile(&g).unwrap();
    // Vertical pre-activations (the convs with taps above the centre row)
    // are rows; the horizontal convs are positions.
    for (id, node) in g.nodes.iter().enumerate() {
        if let Op::Conv { taps, .. } = &node.op {
            let vertical = taps.iter().any(|t| t.dy < 0);
            let horizontal = taps.iter().all(|t| t.dy == 0) && taps.len() > 1;
            if vertical {
                assert_eq!(plan.nodes[id].mode, Mode::Row, "node {id}");
            }
            if horizontal {
                assert_eq!(plan.nodes[id].mode, Mode::Position, "node {id}");
            }
        }
        assert!(plan.nodes[id].ring_rows <= 4, "node {id} keeps {} rows", plan.nodes[id].ring_rows);
    }
    // The state is a few rows per node, not whole images.
    let full: usize = g.nodes.iter().map(|n| n.shape.positions() * n.shape.channels).sum();
    assert!(plan.state_len * 2 < full, "{} of {full}", plan.state_len);
}

#[test]
fn sampling_and_scoring_run_through_the_pixel_executor() {
    let g = masked_gated(6, 7, 3, 2, 2, 4);
    let plan = Plan::compile(&g).unwrap();
    let mut exec = GraphExecutor::new(&g, &plan, Some(1)).unwrap();
    let mut image = vec![0u8; g.pixels()];
    sampler::generate(&mut exec, Some(1), 1.0, &mut rng::from_seed(3), &mut image).unwrap();
    assert!(image.iter().all(|&l| l < 3));
    // The log-likelihood equals the full pass's log-softmax sum.
    let nll = -sampler::log_likelihood(&mut exec, Some(1), &image).unwrap();
    let full = naive::logits(&g, &image, Some(1)).unwrap();
    let want: f64 = image
        .iter()
        .enumerate()
        .map(|(p, &l)| -sampler::log_probability(&full[p * 3..(p + 1) * 3], usize::from(l)))
        .sum();
    assert!((nll - want).abs() < 1e-3 * want.abs().max(1.0), "{nll} vs {want}");
    assert!(GraphExecutor::new(&g, &plan, None).is_err(), "a conditional graph needs a class");
    assert!(exec.push(3).is_err(), "level out of range");
}

#[test]
fn a_graph_that_sees_its_own_pixel_is_refused_with_the_path() {
    // The first horizontal conv includes the centre tap (mask B where A
    // belongs): each logit sees its own pixel.
    let mut b = Builder::new(5, 5, 2, 0, Encoding::Unit, 1);
    let hc = b.conv(0, taps(0..=0, -1..=0), 4);
    let relu = b.unary(hc, Activation::Relu);
    let out = b.conv(relu, taps(0..=0, 0..=0), 2);
    let g = b.finish(out, Output::Logits);
    let err = Plan::compile(&g).unwrap_err();
    let GraphError::NotCausal(msg) = &err else { panic!("{err}") };
    assert!(msg.contains("pixel (0, 0) depend on pixel (0, 0), itself"), "{msg}");
    assert!(
        msg.contains("image -> conv `n1` at (0, 0) -> relu `n2` at (0, 0) -> conv `n3`"),
        "{msg}"
    );

    // A vertical stack whose link is not shifted down sees the row's later
    // pixels.
    let mut b = Builder::new(5, 5, 2, 0, Encoding::Unit, 1);
    let vp = b.conv(0, taps(-1..=0, -1..=1), 4);
    let out = b.conv(vp, taps(0..=0, 0..=0), 2);
    let g = b.finish(out, Output::Logits);
    let msg = Plan::compile(&g).unwrap_err().to_string();
    assert!(msg.contains("depend on pixel (0, 1), which comes later"), "{msg}");
}

#[test]
fn malformed_graphs_are_refused() {
    let mut g = masked_gated(5, 5, 2, 0, 1, 1);
    g.output = 3;
    assert!(matches!(Plan::compile(&g), Err(GraphError::Malformed(_))));
    let mut g = masked_gated(5, 5, 2, 0, 1, 1);
    if let Op::Conv { weights, .. } = &mut g.nodes[1].op {
        weights[0] = f32::NAN;
    }
    assert!(Plan::compile(&g).unwrap_err().to_string().contains("not a finite number"));
    let mut g = masked_gated(5, 5, 2, 0, 1, 1);
    if let Op::Conv { input, .. } = &mut g.nodes[1].op {
        *input = 5;
    }
    assert!(matches!(Plan::compile(&g), Err(GraphError::Malformed(_))));
}
