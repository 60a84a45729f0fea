//! Forward and backward passes of one image through a Gated or plain
//! PixelCNN, over the runtime's parameter layout (`Arch::tensors`).
//!
//! Each convolution is im2col + one matrix product; the im2col rows of the
//! forward pass are kept for the weight gradients. Masks are structural:
//! the cropped kernels have no taps for masked positions. The vertical
//! stack's link reads its pre-activation one row up: as matrices over
//! pixel rows, that is rows `0..P−W` of `v_pre` against rows `W..P` of the
//! horizontal pre-activation.

use std::collections::HashMap;
use std::ops::Range;

use pixelcnn_runtime::params::TensorKind;
use pixelcnn_runtime::{Arch, Variant};

use super::activations::{
    cross_entropy, gate_backward, gate_forward, relu, relu_backward, relu_in_place,
};
use super::linalg::{add_column_sums, add_row_vector, matmul, Mat, Window};

/// Where each tensor lives in the flat parameter vector.
#[derive(Clone, Debug)]
pub struct ParamIndex {
    ranges: HashMap<(Option<usize>, TensorKind), Range<usize>>,
    tensors: Vec<Range<usize>>,
}

impl ParamIndex {
    /// The index of `arch`'s layout.
    pub fn new(arch: &Arch) -> Self {
        let mut ranges = HashMap::new();
        let mut tensors = Vec::new();
        let mut offset = 0;
        for spec in arch.tensors() {
            let range = offset..offset + spec.len();
            offset = range.end;
            ranges.insert((spec.layer, spec.kind), range.clone());
            tensors.push(range);
        }
        ParamIndex { ranges, tensors }
    }

    /// Every tensor's range, in layout order.
    pub fn tensors(&self) -> &[Range<usize>] {
        &self.tensors
    }

    fn range(&self, layer: Option<usize>, kind: TensorKind) -> Range<usize> {
        self.ranges.get(&(layer, kind)).cloned().unwrap_or(0..0)
    }
}

/// Activations of one layer kept for the backward pass. Plain layers use
/// `col_v` / `col_h` for the above / left windows and only `h_out`.
#[derive(Clone, Debug, Default)]
struct LayerCache {
    col_v: Vec<f32>,
    col_h: Vec<f32>,
    v_pre: Vec<f32>,
    v_act: Vec<f32>,
    v_out: Vec<f32>,
    h_act: Vec<f32>,
    g: Vec<f32>,
    h_out: Vec<f32>,
}

/// Buffers for one image: the caches of the forward pass and the scratch of
/// the backward pass, allocated once per worker.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    x: Vec<f32>,
    levels: Vec<u8>,
    label: Option<usize>,
    layers: Vec<LayerCache>,
    a0: Vec<f32>,
    a1: Vec<f32>,
    logits: Vec<f32>,
    pre: Vec<f32>,
    dpre: Vec<f32>,
    dv_pre: Vec<f32>,
    dcol: Vec<f32>,
    dg: Vec<f32>,
    dh: Vec<f32>,
    dv: Vec<f32>,
    da: Vec<f32>,
    sums: Vec<f32>,
}

/// The network: architecture, parameter index and convolution windows.
#[derive(Clone, Debug)]
pub struct Network {
    arch: Arch,
    index: ParamIndex,
}

/// The two windows of a layer: vertical / above, and horizontal / left.
fn windows(arch: &Arch, l: usize) -> (Window, Window) {
    let (r, k, c) = (arch.radius_of(l), arch.kernel_of(l), arch.input_channels_of(l));
    let (h, w) = (arch.height, arch.width);
    let left = if l == 0 { r } else { r + 1 };
    let up_rows = match arch.variant {
        Variant::Gated => r + 1,
        Variant::Plain => r,
    };
    let up = Window {
        height: h,
        width: w,
        channels: c,
        rows: up_rows,
        cols: k,
        top: -(r as isize),
        left: -(r as isize),
    };
    let row = Window {
        height: h,
        width: w,
        channels: c,
        rows: 1,
        cols: left,
        top: 0,
        left: -(r as isize),
    };
    (up, row)
}

/// `grads[range]`, `params[range]` of one tensor.
macro_rules! tensor {
    ($self:ident, $buf:expr, $layer:expr, $kind:ident) => {
        &$buf[$self.index.range($layer, TensorKind::$kind)]
    };
    (mut $self:ident, $buf:expr, $layer:expr, $kind:ident) => {
        &mut $buf[$self.index.range($layer, TensorKind::$kind)]
    };
}

/// Layer `l`'s cache and the one before it.
fn split(layers: &mut [LayerCache], l: usize) -> (Option<&LayerCache>, &mut LayerCache) {
    let (before, rest) = layers.split_at_mut(l);
    (before.last().map(|c| c as &LayerCache), &mut rest[0])
}

/// `sum += row` for the class row `label` of a `[classes, n]` table.
fn add_class_row(table: &mut [f32], label: Option<usize>, sums: &[f32]) {
    if let (Some(c), false) = (label, table.is_empty()) {
        for (t, s) in table[c * sums.len()..][..sums.len()].iter_mut().zip(sums) {
            *t += s;
        }
    }
}

impl Network {
    /// The network of `arch` (validated by the caller).
    pub fn new(arch: Arch) -> Self {
        Network { arch, index: ParamIndex::new(&arch) }
    }

    /// The parameter index.
    pub fn index(&self) -> &ParamIndex {
        &self.index
    }

    /// A workspace sized for this network.
    pub fn workspace(&self) -> Workspace {
        let a = &self.arch;
        let (px, p) = (a.pixels(), a.channels);
        let mut widest = 0;
        let layers = (0..a.layers())
            .map(|l| {
                let (up, row) = windows(a, l);
                widest = widest.max(up.patch()).max(row.patch());
                let mut c = LayerCache {
                    col_v: vec![0.0; px * up.patch()],
                    col_h: vec![0.0; px * row.patch()],
                    h_out: vec![0.0; px * p],
                    ..LayerCache::default()
                };
                if a.variant == Variant::Gated {
                    c.v_pre = vec![0.0; px * 2 * p];
                    c.v_act = vec![0.0; px * 2 * p];
                    c.v_out = vec![0.0; px * p];
                    c.h_act = vec![0.0; px * 2 * p];
                    c.g = vec![0.0; px * p];
                }
                c
            })
            .collect();
        Workspace {
            x: vec![0.0; px],
            levels: vec![0; px],
            label: None,
            layers,
            a0: vec![0.0; px * p],
            a1: vec![0.0; px * a.head],
            logits: vec![0.0; px * a.levels],
            pre: vec![0.0; px * 2 * p],
            dpre: vec![0.0; px * 2 * p],
            dv_pre: vec![0.0; px * 2 * p],
            dcol: vec![0.0; px * widest.max(a.head)],
            dg: vec![0.0; px * p],
            dh: vec![0.0; px * p],
            dv: vec![0.0; px * p],
            da: vec![0.0; px * a.head.max(p)],
            sums: vec![0.0; 2 * p],
        }
    }

    /// Runs image `levels` (checked by the caller) with `label` forward and
    /// returns its NLL in nats. The logits are left as their gradient of
    /// `scale · NLL`, ready for [`Network::backward`].
    pub fn forward(
        &self,
        params: &[f32],
        ws: &mut Workspace,
        levels: &[u8],
        label: Option<usize>,
        scale: f32,
    ) -> f64 {
        let a = self.arch;
        let to_unit = 1.0 / (a.levels - 1) as f32;
        for ((x, l), &v) in ws.x.iter_mut().zip(&mut ws.levels).zip(levels) {
            *x = f32::from(v) * to_unit;
            *l = v;
        }
        ws.label = if a.classes > 0 { label } else { None };
        match a.variant {
            Variant::Gated => self.gated_forward(params, ws),
            Variant::Plain => self.plain_forward(params, ws),
        }
        self.head_forward(params, ws, scale)
    }

    /// Adds the gradient of `scale · NLL` of the last [`Network::forward`]
    /// to `grads`.
    pub fn backward(&self, params: &[f32], ws: &mut Workspace, grads: &mut [f32]) {
        self.head_backward(params, ws, grads);
        match self.arch.variant {
            Variant::Gated => self.gated_backward(params, ws, grads),
            Variant::Plain => self.plain_backward(params, ws, grads),
        }
    }

    /// The layer bias plus the class row: the same at every position.
    fn bias(
        &self,
        params: &[f32],
        out: &mut [f32],
        parts: &[(Option<usize>, TensorKind)],
        label: Option<usize>,
    ) {
        out.fill(0.0);
        for &(layer, kind) in parts {
            let t = &params[self.index.range(layer, kind)];
            let row = if kind.is_class() {
                match label {
                    Some(c) if !t.is_empty() => &t[c * out.len()..][..out.len()],
                    _ => continue,
                }
            } else {
                t
            };
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
    }

    fn gated_forward(&self, params: &[f32], ws: &mut Workspace) {
        let a = self.arch;
        let (px, w, p, p2) = (a.pixels(), a.width, a.channels, 2 * a.channels);
        let Workspace { x, layers, pre, sums, label, .. } = ws;
        for l in 0..a.layers() {
            let (prev, cur) = split(layers, l);
            let (vin, hin) = match prev {
                None => (&x[..], &x[..]),
                Some(c) => (&c.v_out[..], &c.h_out[..]),
            };
            let (up, row) = windows(&a, l);
            let li = Some(l);
            up.im2col(vin, &mut cur.col_v);
            let wv = tensor!(self, params, li, VWeight);
            matmul(
                &mut cur.v_pre,
                Mat::dense(&cur.col_v, px, up.patch()),
                Mat::dense(wv, p2, up.patch()).t(),
                false,
            );
            self.bias(params, sums, &[(li, TensorKind::VBias), (li, TensorKind::VClass)], *label);
            add_row_vector(&mut cur.v_pre, sums);

            row.im2col(hin, &mut cur.col_h);
            let wh = tensor!(self, params, li, HWeight);
            matmul(
                pre,
                Mat::dense(&cur.col_h, px, row.patch()),
                Mat::dense(wh, p2, row.patch()).t(),
                false,
            );
            let parts =
                [(li, TensorKind::HBias), (li, TensorKind::LinkBias), (li, TensorKind::HClass)];
            self.bias(params, sums, &parts, *label);
            add_row_vector(pre, sums);
            let wl = tensor!(self, params, li, LinkWeight);
            let shifted = Mat::dense(&cur.v_pre[..(px - w) * p2], px - w, p2);
            matmul(&mut pre[w * p2..], shifted, Mat::dense(wl, p2, p2).t(), true);

            gate_forward(pre, &mut cur.h_act, &mut cur.g, p);
            if l == 0 {
                cur.h_out.copy_from_slice(&cur.g);
            } else {
                cur.h_out.copy_from_slice(hin);
                let wo = tensor!(self, params, li, OutWeight);
                matmul(&mut cur.h_out, Mat::dense(&cur.g, px, p), Mat::dense(wo, p, p).t(), true);
                add_row_vector(&mut cur.h_out, tensor!(self, params, li, OutBias));
            }
            if l + 1 < a.layers() {
                gate_forward(&cur.v_pre, &mut cur.v_act, &mut cur.v_out, p);
            }
        }
    }

    fn gated_backward(&self, params: &[f32], ws: &mut Workspace, grads: &mut [f32]) {
        let a = self.arch;
        let (px, w, p, p2) = (a.pixels(), a.width, a.channels, 2 * a.channels);
        let Workspace { layers, dpre, dv_pre, dcol, dg, dh, dv, sums, label, .. } = ws;
        for l in (0..a.layers()).rev() {
            let (_, cur) = split(layers, l);
            let (up, row) = windows(&a, l);
            let li = Some(l);
            if l > 0 {
                let gwo = tensor!(mut self, grads, li, OutWeight);
                matmul(gwo, Mat::dense(dh, px, p).t(), Mat::dense(&cur.g, px, p), true);
                add_column_sums(tensor!(mut self, grads, li, OutBias), dh);
                let wo = tensor!(self, params, li, OutWeight);
                matmul(dg, Mat::dense(dh, px, p), Mat::dense(wo, p, p), false);
                gate_backward(&cur.h_act, dg, dpre, p);
            } else {
                gate_backward(&cur.h_act, dh, dpre, p);
            }
            sums.fill(0.0);
            add_column_sums(sums, dpre);
            for kind in [TensorKind::HBias, TensorKind::LinkBias] {
                for (g, s) in grads[self.index.range(li, kind)].iter_mut().zip(sums.iter()) {
                    *g += s;
                }
            }
            add_class_row(tensor!(mut self, grads, li, HClass), *label, sums);
            let below = Mat::dense(&dpre[w * p2..], px - w, p2);
            let gwl = tensor!(mut self, grads, li, LinkWeight);
            matmul(gwl, below.t(), Mat::dense(&cur.v_pre[..(px - w) * p2], px - w, p2), true);

            if l + 1 < a.layers() {
                gate_backward(&cur.v_act, dv, dv_pre, p);
            } else {
                dv_pre.fill(0.0);
            }
            let wl = tensor!(self, params, li, LinkWeight);
            matmul(&mut dv_pre[..(px - w) * p2], below, Mat::dense(wl, p2, p2), true);
            sums.fill(0.0);
            add_column_sums(sums, dv_pre);
            for (g, s) in tensor!(mut self, grads, li, VBias).iter_mut().zip(sums.iter()) {
                *g += s;
            }
            add_class_row(tensor!(mut self, grads, li, VClass), *label, sums);

            let gwh = tensor!(mut self, grads, li, HWeight);
            matmul(
                gwh,
                Mat::dense(dpre, px, p2).t(),
                Mat::dense(&cur.col_h, px, row.patch()),
                true,
            );
            let gwv = tensor!(mut self, grads, li, VWeight);
            matmul(
                gwv,
                Mat::dense(dv_pre, px, p2).t(),
                Mat::dense(&cur.col_v, px, up.patch()),
                true,
            );
            if l > 0 {
                // The residual passes dh through; the convolutions add theirs.
                let dcol_h = &mut dcol[..px * row.patch()];
                let wh = tensor!(self, params, li, HWeight);
                matmul(dcol_h, Mat::dense(dpre, px, p2), Mat::dense(wh, p2, row.patch()), false);
                row.col2im_add(dcol_h, dh);
                let dcol_v = &mut dcol[..px * up.patch()];
                let wv = tensor!(self, params, li, VWeight);
                matmul(dcol_v, Mat::dense(dv_pre, px, p2), Mat::dense(wv, p2, up.patch()), false);
                dv.fill(0.0);
                up.col2im_add(dcol_v, dv);
            }
        }
    }

    fn plain_forward(&self, params: &[f32], ws: &mut Workspace) {
        let a = self.arch;
        let (px, p) = (a.pixels(), a.channels);
        let Workspace { x, layers, sums, label, da, .. } = ws;
        for l in 0..a.layers() {
            let (prev, cur) = split(layers, l);
            let input = match prev {
                None => &x[..],
                Some(c) => {
                    relu(&c.h_out, &mut da[..px * p]);
                    &da[..px * p]
                }
            };
            let (up, row) = windows(&a, l);
            let li = Some(l);
            up.im2col(input, &mut cur.col_v);
            row.im2col(input, &mut cur.col_h);
            match prev {
                None => cur.h_out.fill(0.0),
                Some(c) => cur.h_out.copy_from_slice(&c.h_out),
            }
            let wa = tensor!(self, params, li, AboveWeight);
            matmul(
                &mut cur.h_out,
                Mat::dense(&cur.col_v, px, up.patch()),
                Mat::dense(wa, p, up.patch()).t(),
                true,
            );
            let wl = tensor!(self, params, li, LeftWeight);
            matmul(
                &mut cur.h_out,
                Mat::dense(&cur.col_h, px, row.patch()),
                Mat::dense(wl, p, row.patch()).t(),
                true,
            );
            let bias = &mut sums[..p];
            self.bias(params, bias, &[(li, TensorKind::Bias), (li, TensorKind::Class)], *label);
            add_row_vector(&mut cur.h_out, bias);
        }
    }

    fn plain_backward(&self, params: &[f32], ws: &mut Workspace, grads: &mut [f32]) {
        let a = self.arch;
        let (px, p) = (a.pixels(), a.channels);
        let Workspace { layers, dcol, dh, dv, sums, label, .. } = ws;
        for l in (0..a.layers()).rev() {
            let (prev, cur) = split(layers, l);
            let (up, row) = windows(&a, l);
            let li = Some(l);
            let s = &mut sums[..p];
            s.fill(0.0);
            add_column_sums(s, dh);
            for (g, v) in tensor!(mut self, grads, li, Bias).iter_mut().zip(s.iter()) {
                *g += v;
            }
            add_class_row(tensor!(mut self, grads, li, Class), *label, s);
            let gwa = tensor!(mut self, grads, li, AboveWeight);
            matmul(gwa, Mat::dense(dh, px, p).t(), Mat::dense(&cur.col_v, px, up.patch()), true);
            let gwl = tensor!(mut self, grads, li, LeftWeight);
            matmul(gwl, Mat::dense(dh, px, p).t(), Mat::dense(&cur.col_h, px, row.patch()), true);
            let Some(prev) = prev else { continue };
            // Through the ReLU'd input: both windows scatter into dv.
            dv.fill(0.0);
            let dcol_a = &mut dcol[..px * up.patch()];
            matmul(
                dcol_a,
                Mat::dense(dh, px, p),
                Mat::dense(tensor!(self, params, li, AboveWeight), p, up.patch()),
                false,
            );
            up.col2im_add(dcol_a, dv);
            let dcol_l = &mut dcol[..px * row.patch()];
            matmul(
                dcol_l,
                Mat::dense(dh, px, p),
                Mat::dense(tensor!(self, params, li, LeftWeight), p, row.patch()),
                false,
            );
            row.col2im_add(dcol_l, dv);
            relu_backward(&prev.h_out, dv);
            for (d, v) in dh.iter_mut().zip(dv.iter()) {
                *d += v;
            }
        }
    }

    /// The logits of the last forward pass's layers: `[pixels][levels]`.
    fn head_logits(&self, params: &[f32], ws: &mut Workspace) {
        let a = self.arch;
        let (px, p, hd, k) = (a.pixels(), a.channels, a.head, a.levels);
        let hidden = &ws.layers[a.layers() - 1].h_out;
        relu(hidden, &mut ws.a0);
        let w1 = tensor!(self, params, None, Head1Weight);
        matmul(&mut ws.a1, Mat::dense(&ws.a0, px, p), Mat::dense(w1, hd, p).t(), false);
        add_row_vector(&mut ws.a1, tensor!(self, params, None, Head1Bias));
        relu_in_place(&mut ws.a1);
        let w2 = tensor!(self, params, None, Head2Weight);
        matmul(&mut ws.logits, Mat::dense(&ws.a1, px, hd), Mat::dense(w2, k, hd).t(), false);
        add_row_vector(&mut ws.logits, tensor!(self, params, None, Head2Bias));
    }

    fn head_forward(&self, params: &[f32], ws: &mut Workspace, scale: f32) -> f64 {
        self.head_logits(params, ws);
        let k = self.arch.levels;
        let mut nll = 0.0f64;
        for (logits, &level) in ws.logits.chunks_exact_mut(k).zip(&ws.levels) {
            nll += f64::from(cross_entropy(logits, usize::from(level), scale));
        }
        nll
    }

    /// The logits of one image, `[pixels][levels]` (for tests and samples).
    pub fn logits(
        &self,
        params: &[f32],
        ws: &mut Workspace,
        levels: &[u8],
        label: Option<usize>,
    ) -> Vec<f32> {
        self.forward(params, ws, levels, label, 1.0);
        self.head_logits(params, ws);
        ws.logits.clone()
    }

    fn head_backward(&self, params: &[f32], ws: &mut Workspace, grads: &mut [f32]) {
        let a = self.arch;
        let (px, p, hd, k) = (a.pixels(), a.channels, a.head, a.levels);
        let dlogits = &ws.logits;
        matmul(
            tensor!(mut self, grads, None, Head2Weight),
            Mat::dense(dlogits, px, k).t(),
            Mat::dense(&ws.a1, px, hd),
            true,
        );
        add_column_sums(tensor!(mut self, grads, None, Head2Bias), dlogits);
        let da1 = &mut ws.da[..px * hd];
        matmul(
            da1,
            Mat::dense(dlogits, px, k),
            Mat::dense(tensor!(self, params, None, Head2Weight), k, hd),
            false,
        );
        relu_backward(&ws.a1, da1);
        matmul(
            tensor!(mut self, grads, None, Head1Weight),
            Mat::dense(da1, px, hd).t(),
            Mat::dense(&ws.a0, px, p),
            true,
        );
        add_column_sums(tensor!(mut self, grads, None, Head1Bias), da1);
        matmul(
            &mut ws.dh,
            Mat::dense(da1, px, hd),
            Mat::dense(tensor!(self, params, None, Head1Weight), hd, p),
            false,
        );
        relu_backward(&ws.a0, &mut ws.dh);
        ws.dv.fill(0.0);
    }
}
