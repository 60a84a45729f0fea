//! The int8 incremental executor: the same caches as the float
//! [`crate::Incremental`] (vertical rings per row, links from the
//! down-shifted vertical pre-activation, left windows per pixel), in
//! integers only.
//!
//! State is one caller-provided `&mut [i32]` of [`Arch::quant_state_words`]
//! words, cut into int8, int16 and int32 parts. The same network runs
//! several images in lockstep ([`crate::quant::LockstepI8`]): every part then
//! holds one copy per image ("lane"), side by side, and each weight row is
//! applied to every lane's input in one [`Resolved::matmul_i8`]. One lane
//! is the executor [`IncrementalI8`].

use crate::arch::Arch;
use crate::error::Error;
use crate::exec::raster::{
    check_buffer, columns_inside, shift_window, take, Network, Raster, Sealed,
};
use crate::int8::{clamp_i16, quantize_level, PRE_MAX, PRE_MIN};
use crate::kernels::{
    ColumnMap, Columns, Gated, GatedStep, Head, Matrix, Narrow, Piece, Residual, ResidualOut,
    Resolved, Scales, StepScratch, Wide,
};
use crate::params::TensorKind;
use crate::quant::weights::{QuantWeights, RequantPoint};
use crate::state::{acc_len, gather_len, QuantStateLayout};

/// The int8 incremental executor: the one executor, [`Raster`], over
/// [`GatedInt8`]. Same interface as [`crate::Incremental`]; logits are int32
/// in units of 1/256 nat.
pub type IncrementalI8<'m, 'b> = Raster<GatedInt8<'m, 'b>>;

/// A Gated PixelCNN's caches and integer-only arithmetic, for one image or
/// for several in lockstep (lane `b`'s part of each buffer is the `b`-th of
/// its per-image length, but for the links, which lie lane by lane within
/// each layer and position, see `link_at`).
#[derive(Debug)]
pub struct GatedInt8<'m, 'b> {
    weights: &'m QuantWeights<'m>,
    lanes: usize,
    image_rows: &'b mut [i8],
    vertical_rings: &'b mut [i8],
    links: &'b mut [i16],
    left_windows: &'b mut [i8],
    biases: &'b mut [i32],
    acc: &'b mut [i32],
    pre: &'b mut [i16],
    link_in: &'b mut [i8],
    gated: &'b mut [i8],
    top: &'b mut [i8],
    head: &'b mut [i8],
    logits: &'b mut [i32],
    window: &'b mut [i8],
    /// Positions of a row whose vertical stack is one product.
    row_tile: usize,
    /// One lane's parts' lengths ([`QuantStateLayout::with_row_tile`]),
    /// kept: the executor reads them at every layer of every pixel.
    layout: QuantStateLayout,
    /// The int8 kernel, resolved once for this executor.
    kernel: Resolved,
    /// The first layers' step operands, found once (hosts only: the array
    /// would be MCU stack).
    #[cfg(feature = "alloc")]
    steps: [Option<StepWeights<'m>>; PLANNED_LAYERS],
}

/// Layers whose step operands an executor finds once; those of a deeper
/// model's other layers are found at each pixel.
#[cfg(feature = "alloc")]
const PLANNED_LAYERS: usize = 16;

/// A layer's step operands that are the same at every pixel: the left
/// kernel and its requantization, the residual block's weights. Found per
/// pixel and layer they were ~5% of a digit.
#[derive(Clone, Copy, Debug)]
struct StepWeights<'m> {
    weights: Matrix<'m>,
    scales: Scales<'m>,
    /// The residual block (layers ≥ 1).
    residual: Option<ResidualWeights<'m>>,
}

/// The residual block's weights, bias, requantization and the stream's
/// `(multiplier, shift)`.
type ResidualWeights<'m> = (Matrix<'m>, &'m [i32], Scales<'m>, (i32, i8));

impl<'m> StepWeights<'m> {
    fn of(weights: &'m QuantWeights<'m>, l: usize) -> Self {
        let layer = weights.layer(l);
        let residual = (l > 0).then(|| {
            let res = layer.requant(RequantPoint::Residual).get(0);
            (
                layer.matrix(TensorKind::OutWeight),
                layer.bias(TensorKind::OutBias),
                layer.requant(RequantPoint::Out).scales(),
                (res.multiplier, res.shift),
            )
        });
        StepWeights {
            weights: layer.matrix(TensorKind::HWeight),
            scales: layer.requant(RequantPoint::Horizontal).scales(),
            residual,
        }
    }
}

impl<'m, 'b> IncrementalI8<'m, 'b> {
    /// An executor at pixel 0 of a new image of class `class`.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `buffer` is shorter than
    /// [`Arch::quant_state_words`]; label errors.
    pub fn new(
        weights: &'m QuantWeights<'m>,
        buffer: &'b mut [i32],
        class: Option<usize>,
    ) -> Result<Self, Error> {
        Raster::start(GatedInt8::with_lanes(weights, buffer, 1)?, class)
    }
}

impl<'m, 'b> GatedInt8<'m, 'b> {
    /// The caches of `lanes` images (at least one) in `buffer`, which must
    /// hold `lanes` times [`Arch::quant_state_words`] words. With `lanes`
    /// times [`Arch::quant_state_words_whole_rows`] or more, the vertical
    /// stack computes whole rows at once.
    pub(crate) fn with_lanes(
        weights: &'m QuantWeights<'m>,
        buffer: &'b mut [i32],
        lanes: usize,
    ) -> Result<Self, Error> {
        let arch = *weights.arch();
        let whole_rows = QuantStateLayout::with_row_tile(&arch, arch.width);
        let row_tile =
            if whole_rows.words().saturating_mul(lanes) <= buffer.len() { arch.width } else { 1 };
        let layout = QuantStateLayout::with_row_tile(&arch, row_tile);
        let needed = layout.words().saturating_mul(lanes);
        check_buffer(needed, buffer.len())?;
        let p = arch.channels;
        let mut buf = buffer;
        let part = |n: usize| n * lanes;
        let scratch = |n: usize| n * lanes * row_tile;
        Ok(GatedInt8 {
            weights,
            lanes,
            image_rows: take(&mut buf, part(layout.image_rows)),
            // Zeroed: the rows' padding is never written.
            vertical_rings: zeroed(take(&mut buf, part(layout.vertical_rings))),
            links: take(&mut buf, part(layout.links)),
            left_windows: take(&mut buf, part(layout.left_windows)),
            biases: take(&mut buf, part(layout.biases)),
            acc: take(&mut buf, scratch(acc_len(&arch))),
            pre: take(&mut buf, scratch(2 * p)),
            link_in: take(&mut buf, scratch(2 * p)),
            gated: take(&mut buf, part(p)),
            top: take(&mut buf, part(p)),
            head: take(&mut buf, part(arch.head)),
            logits: take(&mut buf, part(arch.levels)),
            window: take(&mut buf, scratch(gather_len(&arch))),
            row_tile,
            layout,
            kernel: Resolved::best(),
            #[cfg(feature = "alloc")]
            steps: core::array::from_fn(|l| {
                (l < arch.layers()).then(|| StepWeights::of(weights, l))
            }),
        })
    }

    /// Number of images the caches hold.
    pub(crate) fn lanes(&self) -> usize {
        self.lanes
    }

    /// Folds `class` into lane `b`'s biases.
    pub(crate) fn fold_class_of(&mut self, b: usize, class: Option<usize>) {
        let arch = *self.weights.arch();
        let p2 = 2 * arch.channels;
        let biases = &mut self.biases[b * self.layout.biases..];
        for l in 0..arch.layers() {
            let layer = self.weights.layer(l);
            let (bv, bh) = biases[l * 2 * p2..(l + 1) * 2 * p2].split_at_mut(p2);
            bv.copy_from_slice(layer.bias(TensorKind::VBias));
            bh.copy_from_slice(layer.bias(TensorKind::HBias));
            for (b, c) in bv.iter_mut().zip(layer.class_row(TensorKind::VClass, class, p2)) {
                *b = b.saturating_add(*c);
            }
            for (b, c) in bh.iter_mut().zip(layer.class_row(TensorKind::HClass, class, p2)) {
                *b = b.saturating_add(*c);
            }
        }
    }

    /// Lane `b`'s logits from the last [`Network::head`].
    pub(crate) fn logits_of(&self, b: usize) -> &[i32] {
        let k = self.weights.arch().levels;
        &self.logits[b * k..][..k]
    }

    /// Where lane `b`'s links of layer `l` at position `x` start. Lanes
    /// are side by side within a position, not each in a part of its
    /// own: a lockstep layer reads every lane's links at one position,
    /// and whole parts apart (a multiple of 4 KB) they fell into one set
    /// of the L1 cache.
    #[inline]
    fn link_at(&self, b: usize, l: usize, x: usize) -> usize {
        let arch = self.weights.arch();
        ((l * arch.width + x) * self.lanes + b) * 2 * arch.channels
    }

    /// Stores `level` as pixel `(i, j)` of lane `b`'s image.
    pub(crate) fn store_of(&mut self, b: usize, i: usize, j: usize, level: u8) {
        let arch = *self.weights.arch();
        let rows = self.layout.image_rows;
        let slot = i % (arch.radius_of(0) + 2);
        self.image_rows[b * rows + slot * arch.width + j] = quantize_level(level, arch.levels);
    }
}

impl GatedInt8<'_, '_> {
    /// Layer `l`'s gate at pixel `(i, j)` for a batch whose product
    /// requantizes in registers ([`Resolved::fuses_requant`]): one product
    /// for every lane, each lane's gate inputs (its links added) gated in
    /// the epilogue. Out of line: one image never comes here.
    #[inline(never)]
    fn gate_batch(&mut self, l: usize, i: usize, j: usize) {
        let arch = *self.weights.arch();
        let (p, p2) = (arch.channels, 2 * arch.channels);
        let layout = self.layout;
        let layer = self.weights.layer(l);
        let lane = |stride| ColumnMap { lanes: self.lanes, lane_stride: stride, step: 0 };
        let (links, biases) = (lane(p2), lane(layout.biases));
        let links_at = self.link_at(0, l, j);
        let gated = Gated {
            out: &mut *self.gated,
            map: ColumnMap::contiguous(p),
            scales: layer.requant(RequantPoint::Horizontal).scales(),
            add: Some((&self.links[links_at..], links)),
        };
        let bias = (&self.biases[l * 2 * p2 + p2..], biases);
        let hw = layer.matrix(TensorKind::HWeight);
        let (state, lanes) = ((&*self.left_windows, &*self.image_rows), self.lanes);
        let x = left_input((&arch, &layout), state, lanes, (l, i, j));
        let input = [Piece { data: x.data, map: ColumnMap::contiguous(x.stride), len: x.len }];
        let scratch = (&mut *self.acc, &mut [][..], &mut *self.pre);
        self.kernel.matmul_requant_gate(hw, (&input, lanes), bias, gated, None, scratch);
    }
}

impl GatedInt8<'_, '_> {
    /// Lane `b`'s layer `l` at pixel `(i, j)` into its `top`: one
    /// [`Resolved::gated_step`].
    #[inline]
    fn gated_step_of(&mut self, b: usize, l: usize, i: usize, j: usize) {
        let arch = *self.weights.arch();
        let (p, w) = (arch.channels, arch.width);
        let p2 = 2 * p;
        let layout = self.layout;
        let r0 = arch.radius_of(0);
        let input: &[i8] = if l == 0 && j < r0 {
            // The first pixels of a row: the left kernel's columns outside
            // the image read zeros, from a padded copy in the scratch.
            let row = &self.image_rows[b * layout.image_rows + (i % (r0 + 2)) * w..][..w];
            let padded = &mut self.window[..r0];
            padded[..r0 - j].fill(0);
            padded[r0 - j..].copy_from_slice(&row[..j]);
            &self.window[..r0]
        } else {
            let state = (&*self.left_windows, &*self.image_rows);
            let lanes = left_input((&arch, &layout), state, b + 1, (l, i, j));
            &lanes.data[b * lanes.stride..][..lanes.len]
        };
        // Read where the plan keeps them, not copied out first: the copy's
        // stores and the step's wider loads of them missed store
        // forwarding (65% of the executor's own time at one pixel).
        let found;
        #[cfg(feature = "alloc")]
        let planned = self.steps.get(l).and_then(Option::as_ref);
        #[cfg(not(feature = "alloc"))]
        let planned = None;
        let sw = match planned {
            Some(sw) => sw,
            None => {
                found = StepWeights::of(self.weights, l);
                &found
            }
        };
        let residual = sw.residual.map(|(weights, bias, scales, stream_pair)| Residual {
            weights,
            bias,
            scales,
            stream: &input[input.len() - p..],
            stream_pair,
        });
        let step = GatedStep {
            weights: sw.weights,
            input,
            bias: &self.biases[b * layout.biases + l * 2 * p2 + p2..][..p2],
            scales: sw.scales,
            links: &self.links[self.link_at(b, l, j)..][..p2],
            residual,
        };
        let acc_n = acc_len(&arch);
        let scratch = StepScratch {
            acc: &mut self.acc[b * acc_n..][..acc_n],
            pre: &mut self.pre[b * p2..][..p2],
            gated: &mut self.gated[b * p..][..p],
        };
        self.kernel.gated_step(&step, &mut self.top[b * p..][..p], scratch);
    }

    /// Layer `l`'s residual block for every lane of a batch, from the
    /// lanes' gates: one product for all lanes, each lane's residual
    /// stream added in its epilogue.
    fn residual_batch(&mut self, l: usize) {
        let arch = *self.weights.arch();
        let p = arch.channels;
        let layout = self.layout;
        let window_len = (arch.radius_of(1) + 1) * p;
        let layer = self.weights.layer(l);
        let (ow, ob) = (layer.matrix(TensorKind::OutWeight), layer.bias(TensorKind::OutBias));
        let res = layer.requant(RequantPoint::Residual).get(0);
        // Lane b's stream: the newest position of its window of layer l - 1.
        let stream = &self.left_windows[(l - 1) * window_len + window_len - p..];
        let out = ResidualOut {
            out: &mut *self.top,
            map: ColumnMap::contiguous(p),
            scales: layer.requant(RequantPoint::Out).scales(),
            stream: (stream, ColumnMap::contiguous(layout.left_windows)),
            stream_pair: (res.multiplier, res.shift),
        };
        let gated = Columns { data: self.gated, stride: p, len: p, count: self.lanes };
        let bias = (ob, ColumnMap::contiguous(0));
        self.kernel.matmul_requant_residual(ow, gated, bias, out, self.acc);
    }
}

impl GatedInt8<'_, '_> {
    /// Layer `l`'s vertical stack at image row `row` over `spans` of
    /// positions, every lane: one product per weight matrix and span;
    /// column `q · lanes + b` is the span's position `x0 + q · dx` of lane
    /// `b`. (The layer's views are made once, not per span: on an MCU a
    /// span is one position.)
    fn vertical_stack(&mut self, l: usize, row: usize, spans: impl Iterator<Item = Span>) {
        let arch = *self.weights.arch();
        let (w, p) = (arch.width, arch.channels);
        let p2 = 2 * p;
        let (lanes, layout) = (self.lanes, self.layout);
        let gather_n = gather_len(&arch);
        let ring_rows = arch.radius_of(1) + 1;
        // A ring row: `pad` zero positions, the row's `w`, `pad` zeros.
        let (pad, ring_w) = (layout.ring_pad, w + 2 * layout.ring_pad);
        let ring_len = ring_rows * ring_w * p;
        let layer = self.weights.layer(l);
        let (r, k, cin) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
        let vw = layer.matrix(TensorKind::VWeight);
        let (gate_mult, link_mult) =
            (layer.requant(RequantPoint::VGate), layer.requant(RequantPoint::VLink));
        let (lw, lb, lmult) = (
            layer.matrix(TensorKind::LinkWeight),
            layer.bias(TensorKind::LinkBias),
            layer.requant(RequantPoint::Link),
        );
        let n = (r + 1) * k * cin;
        for span in spans {
            let cols = span.count * lanes;
            let Span { x0, dx, .. } = span;
            // Biases per lane; gate inputs and link inputs per column.
            let bias_map = ColumnMap { lanes, lane_stride: layout.biases, step: 0 };
            let bias = (&self.biases[l * 2 * p2..], bias_map);
            let narrow = Some(Narrow {
                out: self.link_in,
                map: ColumnMap::contiguous(p2),
                scales: link_mult.scales(),
                lo: -127,
                hi: 127,
            });
            // Ring l - 1 of every lane (the input) lies before ring l of
            // every lane (the output): rings are layer-major, lanes inside.
            let rings = lanes * ring_len;
            let (inputs, outputs) = self.vertical_rings.split_at_mut(l * rings);
            // The gates, into ring l at this row's slot (the last layer has
            // no ring to gate into). Where the product requantizes in
            // registers the gate inputs stay there too; the other kernels
            // (the MCU's) keep their separate gate calls below, and their
            // code size.
            let slot = row % ring_rows;
            let fuse_gate = l + 1 < arch.layers() && self.kernel.fuses_requant(vw, cols);
            let gated = fuse_gate.then(|| Gated {
                out: &mut outputs[(slot * ring_w + pad + x0) * p..],
                map: ColumnMap { lanes, lane_stride: ring_len, step: dx * p },
                scales: gate_mult.scales(),
                add: None,
            });
            let wide = (l + 1 < arch.layers() && !fuse_gate).then(|| Wide {
                out: &mut *self.pre,
                map: ColumnMap::contiguous(p2),
                scales: gate_mult.scales(),
                add: None,
                lo: PRE_LO,
                hi: PRE_HI,
            });
            if span.in_place {
                // Rows row - 1 and row of ring l - 1 (layers past the first
                // have radius 1), from position x0 - 1 on (the padding's
                // zeros left of the image): lanes ring_len apart, positions
                // cin bytes apart.
                debug_assert!(r == 1 && row >= 1 && pad + x0 >= r);
                let ring = &inputs[(l - 1) * rings..];
                let map = ColumnMap { lanes, lane_stride: ring_len, step: dx * cin };
                let at = |y: usize| ((y % ring_rows) * ring_w + pad + x0 - r) * cin;
                let pieces =
                    [row - 1, row].map(|y| Piece { data: &ring[at(y)..], map, len: k * cin });
                match gated {
                    Some(gated) => {
                        let scratch = (&mut *self.acc, &mut *self.window, &mut *self.pre);
                        let x = (&pieces[..], cols);
                        self.kernel.matmul_requant_gate(vw, x, bias, gated, narrow, scratch);
                    }
                    None => {
                        let scratch = (&mut *self.acc, &mut *self.window);
                        let x = (pieces, cols);
                        self.kernel.matmul_requant_pieces(vw, x, bias, wide, narrow, scratch);
                    }
                }
            } else {
                for (c, (x, b)) in span.columns(lanes).enumerate() {
                    // Layer l reads ring l - 1 (or the image's rows).
                    let (input, input_rows, rows_at) = if l == 0 {
                        let rows = &self.image_rows[b * layout.image_rows..][..layout.image_rows];
                        (rows, r + 2, (w, 0))
                    } else {
                        let ring = &inputs[(l - 1) * rings + b * ring_len..][..ring_len];
                        (ring, ring_rows, (ring_w * cin, pad * cin))
                    };
                    let window = &mut self.window[c * gather_n..][..n];
                    gather(window, (input, input_rows, rows_at), (r, k, cin), w, x, row);
                }
                match gated {
                    Some(gated) => {
                        let map = ColumnMap::contiguous(gather_n);
                        let one = [Piece { data: self.window, map, len: n }];
                        let scratch = (&mut *self.acc, &mut [][..], &mut *self.pre);
                        let x = (&one[..], cols);
                        self.kernel.matmul_requant_gate(vw, x, bias, gated, narrow, scratch);
                    }
                    None => {
                        let x =
                            Columns { data: self.window, stride: gather_n, len: n, count: cols };
                        self.kernel.matmul_requant(vw, x, bias, wide, narrow, self.acc);
                    }
                }
            }
            // The links, into each lane's cache at positions x0, x0 + dx, ...
            let links_at = self.link_at(0, l, x0);
            let inputs = Columns { data: self.link_in, stride: p2, len: p2, count: cols };
            self.kernel.matmul_requant(
                lw,
                inputs,
                (lb, ColumnMap::contiguous(0)),
                Some(Wide {
                    out: &mut self.links[links_at..],
                    map: ColumnMap { lanes, lane_stride: p2, step: dx * lanes * p2 },
                    scales: lmult.scales(),
                    add: None,
                    lo: i16::MIN,
                    hi: i16::MAX,
                }),
                None,
                self.acc,
            );
            if l + 1 < arch.layers() && !fuse_gate {
                let ring = &mut self.vertical_rings[l * rings..];
                for (c, (x, b)) in span.columns(lanes).enumerate() {
                    let pre = &self.pre[c * p2..][..p2];
                    let out = &mut ring[b * ring_len + (slot * ring_w + pad + x) * p..][..p];
                    self.kernel.gate_i8(out, pre);
                }
            }
        }
    }
}

/// Positions `x0, x0 + dx, …` (`count` of them) of a row whose vertical
/// stack is one product, their windows read in place or gathered.
#[derive(Clone, Copy, Debug)]
struct Span {
    x0: usize,
    count: usize,
    dx: usize,
    in_place: bool,
}

impl Span {
    /// The (position, lane) of each column, column `q · lanes + b` being
    /// position `x0 + q · dx` of lane `b`.
    fn columns(self, lanes: usize) -> impl Iterator<Item = (usize, usize)> {
        (0..self.count).flat_map(move |q| (0..lanes).map(move |b| (self.x0 + q * self.dx, b)))
    }
}

impl Sealed for GatedInt8<'_, '_> {}

/// As a [`Network`] for [`Raster`] the caches have one lane: class, logits
/// and pixels are lane 0's.
impl Network for GatedInt8<'_, '_> {
    type Logit = i32;

    fn arch(&self) -> &Arch {
        self.weights.arch()
    }

    fn fold_class(&mut self, class: Option<usize>) {
        self.fold_class_of(0, class);
    }

    fn row(&mut self, i: usize) {
        let arch = *self.arch();
        let (w, p) = (arch.width, arch.channels);
        let p2 = 2 * p;
        let lanes = self.lanes;
        if i == 0 {
            // Above the image the links see no vertical stack: each is its
            // bias requantized, the same at every position and lane, so it
            // is computed once per channel and stored everywhere.
            for l in 0..arch.layers() {
                let layer = self.weights.layer(l);
                let (bias, mult) =
                    (layer.bias(TensorKind::LinkBias), layer.requant(RequantPoint::Link));
                let at = self.link_at(0, l, 0);
                let row = &mut self.links[at..][..w * lanes * p2];
                for (o, &bias) in bias.iter().enumerate() {
                    let link = clamp_i16(mult.get(o).apply(bias));
                    for x in row[o..].iter_mut().step_by(p2) {
                        *x = link;
                    }
                }
            }
            return;
        }
        let row = i - 1;
        for l in 0..arch.layers() {
            let r = arch.radius_of(l);
            // Past the first layer and row, with whole rows, a 3-wide window
            // (two rows) is two runs of the ring (the edges' reach into the
            // rows' zero padding), which a kernel that requantizes in
            // registers reads in place: the row is one product. Every
            // other window (and every window for the other kernels, which
            // would only gather them themselves) is gathered with its zeros.
            let vw = self.weights.layer(l).matrix(TensorKind::VWeight);
            let in_place = l > 0
                && r == 1
                && row >= 1
                && self.row_tile == w
                && w > 2
                && self.kernel.fuses_requant(vw, (w - 2) * self.lanes);
            if in_place {
                // (Whole rows always have the padding.)
                debug_assert!(self.layout.ring_pad >= r);
                let all = Span { x0: 0, count: w, dx: 1, in_place: true };
                self.vertical_stack(l, row, [all].into_iter());
            } else {
                let tile = self.row_tile;
                let tiles = (0..w).step_by(tile).map(|x0| Span {
                    x0,
                    count: tile.min(w - x0),
                    dx: 1,
                    in_place: false,
                });
                self.vertical_stack(l, row, tiles);
            }
        }
    }

    fn pixel(&mut self, i: usize, j: usize) {
        let arch = *self.arch();
        let p = arch.channels;
        let lanes = self.lanes;
        let layout = self.layout;
        let window_len = (arch.radius_of(1) + 1) * p;
        for l in 0..arch.layers() {
            let inside = l > 0 || j >= arch.radius_of(0);
            // (One image never builds the layer's view for this test.)
            let batch = inside
                && lanes > 1
                && self
                    .kernel
                    .fuses_requant(self.weights.layer(l).matrix(TensorKind::HWeight), lanes);
            if batch {
                self.gate_batch(l, i, j);
                if l == 0 {
                    self.top.copy_from_slice(self.gated);
                } else {
                    self.residual_batch(l);
                }
            } else {
                for b in 0..lanes {
                    self.gated_step_of(b, l, i, j);
                }
            }
            if l + 1 < arch.layers() {
                for b in 0..lanes {
                    let window = &mut self.left_windows[b * layout.left_windows + l * window_len..]
                        [..window_len];
                    shift_window(window, &self.top[b * p..][..p], j);
                }
            }
        }
    }

    fn head(&mut self) {
        let arch = *self.weights.arch();
        let (p, hidden, k) = (arch.channels, arch.head, arch.levels);
        let lanes = self.lanes;
        let acc_n = acc_len(&arch);
        let head = self.weights.head();
        for t in self.top.iter_mut() {
            *t = (*t).max(0);
        }
        let (w1, b1, m1) = (
            head.matrix(TensorKind::Head1Weight),
            head.bias(TensorKind::Head1Bias),
            head.requant(RequantPoint::Head1),
        );
        let (w2, b2, m2) = (
            head.matrix(TensorKind::Head2Weight),
            head.bias(TensorKind::Head2Bias),
            head.requant(RequantPoint::Head2),
        );
        if lanes == 1 && self.kernel.fuses_head() {
            // One image: one call, the hidden layer kept in registers.
            let one = Head {
                hidden_weights: w1,
                hidden_bias: b1,
                hidden_scales: m1.scales(),
                logit_weights: w2,
                logit_bias: b2,
            };
            let acc = &mut self.acc[..hidden];
            self.kernel.head(&one, self.top, self.head, self.logits, acc);
            for (o, logit) in self.logits.iter_mut().enumerate() {
                *logit = m2.get(o).apply(*logit);
            }
            return;
        }
        for b in 0..lanes {
            self.acc[b * acc_n..][..hidden].copy_from_slice(b1);
        }
        let tops = Columns { data: self.top, stride: p, len: p, count: lanes };
        self.kernel.matmul(self.acc, acc_n, w1, tops);
        for b in 0..lanes {
            // The hidden layer's ReLU is the clamp's lower bound.
            let (h, a1) =
                (&mut self.head[b * hidden..][..hidden], &self.acc[b * acc_n..][..hidden]);
            self.kernel.requant_i8(h, a1, m1.pairs(), 0, 127);
        }
        for b in 0..lanes {
            self.logits[b * k..][..k].copy_from_slice(b2);
        }
        let hiddens = Columns { data: self.head, stride: hidden, len: hidden, count: lanes };
        self.kernel.matmul(self.logits, k, w2, hiddens);
        for (o, logit) in self.logits.iter_mut().enumerate() {
            *logit = m2.get(o % k).apply(*logit);
        }
    }

    fn logits(&self) -> &[i32] {
        self.logits_of(0)
    }

    fn store(&mut self, i: usize, j: usize, level: u8) {
        self.store_of(0, i, j, level);
    }
}

/// Every lane's input of layer `l`'s left kernel at pixel `(i, j)`: the
/// previous layer's window, or (layer 0, `j` at least its radius) the image
/// row's pixels left of it.
#[inline]
fn left_input<'a>(
    (arch, layout): (&Arch, &QuantStateLayout),
    (left_windows, image_rows): (&'a [i8], &'a [i8]),
    count: usize,
    (l, i, j): (usize, usize, usize),
) -> Columns<'a> {
    if l > 0 {
        let len = (arch.radius_of(1) + 1) * arch.channels;
        let data = &left_windows[(l - 1) * len..];
        Columns { data, stride: layout.left_windows, len, count }
    } else {
        let r = arch.radius_of(0);
        let data = &image_rows[(i % (r + 2)) * arch.width + j - r..];
        Columns { data, stride: layout.image_rows, len: r, count }
    }
}

/// Gathers rows `row - r ..= row`, columns `x - r ..= x + r` of the `k`-wide
/// kernel over `cin` channels from `input` (a ring of `input_rows` rows, a
/// row's `width` positions starting `first` bytes into its `row_len`)
/// into one contiguous window, zeros outside the image, so that each
/// output is a single dot product with its weight row.
fn gather(
    window: &mut [i8],
    (input, input_rows, (row_len, first)): (&[i8], usize, (usize, usize)),
    (r, k, cin): (usize, usize, usize),
    width: usize,
    x: usize,
    row: usize,
) {
    for ky in 0..=r {
        let dst = &mut window[ky * k * cin..][..k * cin];
        match (row + ky).checked_sub(r) {
            None => dst.fill(0),
            Some(y) => {
                let (kx0, kx1) = columns_inside(r, k, width, x);
                dst[..kx0 * cin].fill(0);
                dst[kx1 * cin..].fill(0);
                let src = &input[(y % input_rows) * row_len + first..][..width * cin];
                dst[kx0 * cin..kx1 * cin]
                    .copy_from_slice(&src[(x + kx0 - r) * cin..(x + kx1 - r) * cin]);
            }
        }
    }
}

/// The gate inputs' clamp, as int16.
const PRE_LO: i16 = PRE_MIN as i16;
const PRE_HI: i16 = PRE_MAX as i16;

/// `part`, zeroed.
fn zeroed(part: &mut [i8]) -> &mut [i8] {
    part.fill(0);
    part
}

impl crate::exec::raster::Sealed for i32 {}

/// int8 logits, in units of 1/256 nat, sampled and scored by the integer
/// softmax of the spec ([`crate::int8::softmax`]).
impl crate::exec::raster::Logit for i32 {
    fn sample(logits: &[i32], temperature: f32, rng: &mut crate::rng::Rng) -> Result<u8, Error> {
        let inverse = crate::int8::softmax::inverse_temperature(temperature)?;
        Ok(crate::int8::softmax::sample(logits, inverse, rng))
    }
    fn log_probability(logits: &[i32], level: usize) -> f64 {
        crate::int8::softmax::log_probability(logits, level)
    }
}
