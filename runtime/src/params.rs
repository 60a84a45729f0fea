//! Parameter layout: which tensors an [`Arch`] has, their shapes and order.
//!
//! All parameters live in one `&[f32]`, tensor after tensor in the order of
//! [`Arch::tensors`]. Convolution weights are stored `[out][kh][kw][in]` with
//! the masks applied by cropping: only the taps a mask keeps are stored, so a
//! masked tap can neither cost work nor leak a future pixel. For one output,
//! a kernel row is then a contiguous `kw * in` run that lines up with a
//! contiguous run of an HWC activation row: one dot product per kernel row.
//!
//! Gated layer `l` (radius `r`, kernel `k`, `cin` inputs, `p = channels`):
//!
//! | tensor | shape | note |
//! |---|---|---|
//! | `v.weight` | `[2p, r+1, k, cin]` | vertical stack: rows above and the centre row |
//! | `v.bias` | `[2p]` | |
//! | `h.weight` | `[2p, 1, r or r+1, cin]` | horizontal stack: left taps, plus the centre after layer 0 |
//! | `h.bias` | `[2p]` | |
//! | `link.weight` | `[2p, 2p]` | 1×1 on the down-shifted vertical pre-activation |
//! | `link.bias` | `[2p]` | |
//! | `out.weight` | `[p, p]` | layers ≥ 1: 1×1 before the residual add |
//! | `out.bias` | `[p]` | layers ≥ 1 |
//! | `v.class`, `h.class` | `[classes, 2p]` | conditional models: per-class biases |
//!
//! Plain layer `l`: `above.weight [p, r, k, cin]` (rows strictly above),
//! `left.weight [p, 1, r or r+1, cin]`, `bias [p]`, `class [classes, p]`.
//! Head: `head1.weight [head, p]`, `head1.bias`, `head2.weight [levels, head]`,
//! `head2.bias`.

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::kernels::{self, ResolvedFloat};
use core::fmt::Debug;
use core::ops::Range;
use half::f16;

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
}

/// A stored parameter type of the float executors: `f32`, or `f16` (half the
/// flash; the executor still accumulates in f32).
pub trait Param: Copy + Default + Debug + PartialEq + bytemuck::Pod + sealed::Sealed {
    /// Short name, as in `--precision`.
    const NAME: &'static str;
    /// The value as f32 (exact for both types).
    fn to_f32(self) -> f32;
    /// `dot(w, x)` accumulated in f32.
    fn dot(w: &[Self], x: &[f32]) -> f32;
    /// `dst[i] = src[i]`.
    fn copy_to(dst: &mut [f32], src: &[Self]);
    /// `dst[i] += src[i]`.
    fn add_to(dst: &mut [f32], src: &[Self]);
    /// [`Param::dot`] with `kernel`: the same bits, faster instructions.
    fn dot_with(kernel: ResolvedFloat, w: &[Self], x: &[f32]) -> f32;
    /// [`Param::matvec`] with `kernel`: the same bits.
    fn matvec_with(kernel: ResolvedFloat, out: &mut [f32], w: &[Self], x: &[f32]) {
        let n = x.len();
        assert_eq!(w.len(), out.len() * n, "matvec shape mismatch");
        if n == 0 {
            return;
        }
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            *o += Self::dot_with(kernel, row, x);
        }
    }
    /// `out[o] += dot(w[o*n..(o+1)*n], x)`, `n = x.len()`.
    fn matvec(out: &mut [f32], w: &[Self], x: &[f32]) {
        let n = x.len();
        assert_eq!(w.len(), out.len() * n, "matvec shape mismatch");
        if n == 0 {
            return;
        }
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            *o += Self::dot(row, x);
        }
    }
}

impl Param for f32 {
    const NAME: &'static str = "f32";
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn dot(w: &[f32], x: &[f32]) -> f32 {
        kernels::dot_f32(w, x)
    }
    #[inline]
    fn dot_with(kernel: ResolvedFloat, w: &[f32], x: &[f32]) -> f32 {
        kernel.dot_f32(w, x)
    }
    #[inline]
    fn copy_to(dst: &mut [f32], src: &[f32]) {
        dst.copy_from_slice(src);
    }
    #[inline]
    fn add_to(dst: &mut [f32], src: &[f32]) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
    #[inline]
    fn matvec(out: &mut [f32], w: &[f32], x: &[f32]) {
        kernels::matvec_f32(out, w, x);
    }
}

impl Param for f16 {
    const NAME: &'static str = "f16";
    #[inline]
    fn to_f32(self) -> f32 {
        kernels::generic::f16_to_f32(self)
    }
    #[inline]
    fn dot(w: &[f16], x: &[f32]) -> f32 {
        kernels::dot_f16(w, x)
    }
    #[inline]
    fn dot_with(kernel: ResolvedFloat, w: &[f16], x: &[f32]) -> f32 {
        kernel.dot_f16(w, x)
    }
    #[inline]
    fn matvec_with(kernel: ResolvedFloat, out: &mut [f32], w: &[f16], x: &[f32]) {
        kernel.matvec_f16(out, w, x);
    }
    #[inline]
    fn copy_to(dst: &mut [f32], src: &[f16]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = kernels::generic::finite_f16_to_f32(s);
        }
    }
    #[inline]
    fn add_to(dst: &mut [f32], src: &[f16]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += kernels::generic::finite_f16_to_f32(s);
        }
    }
}

/// What a tensor is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum TensorKind {
    VWeight,
    VBias,
    HWeight,
    HBias,
    LinkWeight,
    LinkBias,
    OutWeight,
    OutBias,
    VClass,
    HClass,
    AboveWeight,
    LeftWeight,
    Bias,
    Class,
    Head1Weight,
    Head1Bias,
    Head2Weight,
    Head2Bias,
}

impl TensorKind {
    /// Number of kinds (`kind as usize` is below it).
    pub(crate) const COUNT: usize = TensorKind::Head2Bias as usize + 1;
}

impl TensorKind {
    /// True for per-channel biases (not the per-class tables).
    pub const fn is_bias(self) -> bool {
        matches!(
            self,
            TensorKind::VBias
                | TensorKind::HBias
                | TensorKind::LinkBias
                | TensorKind::OutBias
                | TensorKind::Bias
                | TensorKind::Head1Bias
                | TensorKind::Head2Bias
        )
    }

    /// True for per-class bias tables.
    pub const fn is_class(self) -> bool {
        matches!(self, TensorKind::VClass | TensorKind::HClass | TensorKind::Class)
    }

    /// True for convolution and matrix weights.
    pub const fn is_weight(self) -> bool {
        !self.is_bias() && !self.is_class()
    }

    /// The tensor's name inside its layer, such as `v.weight`.
    pub const fn name(self) -> &'static str {
        match self {
            TensorKind::VWeight => "v.weight",
            TensorKind::VBias => "v.bias",
            TensorKind::HWeight => "h.weight",
            TensorKind::HBias => "h.bias",
            TensorKind::LinkWeight => "link.weight",
            TensorKind::LinkBias => "link.bias",
            TensorKind::OutWeight => "out.weight",
            TensorKind::OutBias => "out.bias",
            TensorKind::VClass => "v.class",
            TensorKind::HClass => "h.class",
            TensorKind::AboveWeight => "above.weight",
            TensorKind::LeftWeight => "left.weight",
            TensorKind::Bias => "bias",
            TensorKind::Class => "class",
            TensorKind::Head1Weight => "head1.weight",
            TensorKind::Head1Bias => "head1.bias",
            TensorKind::Head2Weight => "head2.weight",
            TensorKind::Head2Bias => "head2.bias",
        }
    }
}

/// One tensor of the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Layer index, or `None` for the head.
    pub layer: Option<usize>,
    /// What the tensor is.
    pub kind: TensorKind,
    /// Shape, padded with leading ones to four dimensions.
    pub shape: [usize; 4],
}

impl TensorSpec {
    /// Number of elements, or `None` on overflow.
    pub fn checked_len(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.checked_len().unwrap_or(usize::MAX)
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const MAX_TENSORS_PER_LAYER: usize = 10;

/// The tensors of one layer (or of the head), in storage order.
#[derive(Clone, Copy, Debug)]
struct LayerTensors {
    specs: [Option<TensorSpec>; MAX_TENSORS_PER_LAYER],
}

impl Arch {
    fn layer_tensors(&self, layer: Option<usize>) -> LayerTensors {
        let mut specs = [None; MAX_TENSORS_PER_LAYER];
        let mut n = 0;
        let mut push = |kind, shape| {
            specs[n] = Some(TensorSpec { layer, kind, shape });
            n += 1;
        };
        let p = self.channels;
        match layer {
            None => {
                push(TensorKind::Head1Weight, [1, 1, self.head, p]);
                push(TensorKind::Head1Bias, [1, 1, 1, self.head]);
                push(TensorKind::Head2Weight, [1, 1, self.levels, self.head]);
                push(TensorKind::Head2Bias, [1, 1, 1, self.levels]);
            }
            Some(l) => {
                let r = self.radius_of(l);
                let k = self.kernel_of(l);
                let cin = self.input_channels_of(l);
                let left = if l == 0 { r } else { r + 1 };
                match self.variant {
                    Variant::Gated => {
                        push(TensorKind::VWeight, [2 * p, r + 1, k, cin]);
                        push(TensorKind::VBias, [1, 1, 1, 2 * p]);
                        push(TensorKind::HWeight, [2 * p, 1, left, cin]);
                        push(TensorKind::HBias, [1, 1, 1, 2 * p]);
                        push(TensorKind::LinkWeight, [1, 1, 2 * p, 2 * p]);
                        push(TensorKind::LinkBias, [1, 1, 1, 2 * p]);
                        if l > 0 {
                            push(TensorKind::OutWeight, [1, 1, p, p]);
                            push(TensorKind::OutBias, [1, 1, 1, p]);
                        }
                        if self.classes > 0 {
                            push(TensorKind::VClass, [1, 1, self.classes, 2 * p]);
                            push(TensorKind::HClass, [1, 1, self.classes, 2 * p]);
                        }
                    }
                    Variant::Plain => {
                        push(TensorKind::AboveWeight, [p, r, k, cin]);
                        push(TensorKind::LeftWeight, [p, 1, left, cin]);
                        push(TensorKind::Bias, [1, 1, 1, p]);
                        if self.classes > 0 {
                            push(TensorKind::Class, [1, 1, self.classes, p]);
                        }
                    }
                }
            }
        }
        LayerTensors { specs }
    }

    /// All tensors in storage order: layer 0, layer 1, …, then the head.
    pub fn tensors(&self) -> impl Iterator<Item = TensorSpec> + '_ {
        (0..=self.layers()).flat_map(move |i| {
            let layer = if i < self.layers() { Some(i) } else { None };
            self.layer_tensors(layer).specs.into_iter().flatten()
        })
    }
}

/// Offsets of a layer's tensors inside the parameter slice, relative to the
/// layer's start. Absent tensors are empty ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LayerOffsets {
    pub(crate) len: usize,
    pub(crate) ranges: [Range<usize>; TensorKind::COUNT],
}

impl LayerOffsets {
    fn of(arch: &Arch, layer: Option<usize>) -> Self {
        Self::of_kinds(arch, layer, |_| true)
    }

    /// Offsets of only the tensors whose kind passes `keep`, packed in
    /// layout order (the int8 format stores weights and biases apart).
    pub(crate) fn of_kinds(
        arch: &Arch,
        layer: Option<usize>,
        keep: fn(TensorKind) -> bool,
    ) -> Self {
        let mut offsets = LayerOffsets::default();
        for spec in arch.layer_tensors(layer).specs.into_iter().flatten().filter(|s| keep(s.kind)) {
            let len = spec.len();
            offsets.ranges[spec.kind as usize] = offsets.len..offsets.len + len;
            offsets.len += len;
        }
        offsets
    }
}

/// A validated, read-only view of a model's parameters.
///
/// Layers after the first all have the same layout, so a layer's tensors are
/// found in O(1) without a table that grows with depth.
#[derive(Clone, Debug)]
pub struct Weights<'a, T: Param = f32> {
    arch: Arch,
    data: &'a [T],
    first: LayerOffsets,
    block: LayerOffsets,
    head: LayerOffsets,
}

/// The tensors of one layer, as slices.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a, T: Param = f32> {
    /// Layer index.
    pub index: usize,
    data: &'a [T],
    offsets: &'a LayerOffsets,
}

impl<'a, T: Param> Layer<'a, T> {
    /// The tensor of `kind`; empty when this layer has none.
    pub fn get(&self, kind: TensorKind) -> &'a [T] {
        &self.data[self.offsets.ranges[kind as usize].clone()]
    }

    /// Row `class` of a `[classes, n]` class-bias tensor; empty when absent.
    pub fn class_row(&self, kind: TensorKind, class: Option<usize>, n: usize) -> &'a [T] {
        match class {
            Some(c) => {
                let t = self.get(kind);
                if t.is_empty() {
                    t
                } else {
                    &t[c * n..(c + 1) * n]
                }
            }
            None => &[],
        }
    }
}

impl<'a, T: Param> Weights<'a, T> {
    /// Wraps `data` as the parameters of `arch`.
    ///
    /// # Errors
    /// [`Error::Arch`] for an invalid architecture, [`Error::ParamCount`] when
    /// `data` has the wrong length, [`Error::NonFinite`] for a NaN or infinite
    /// weight (it would poison every later pixel).
    pub fn new(arch: Arch, data: &'a [T]) -> Result<Self, Error> {
        arch.validate()?;
        let expected = arch.param_count();
        if data.len() != expected {
            return Err(Error::ParamCount { expected, found: data.len() });
        }
        if let Some(index) = data.iter().position(|w| !w.to_f32().is_finite()) {
            return Err(Error::NonFinite { index });
        }
        Ok(Weights {
            arch,
            data,
            first: LayerOffsets::of(&arch, Some(0)),
            block: LayerOffsets::of(&arch, Some(1)),
            head: LayerOffsets::of(&arch, None),
        })
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// All parameters, in layout order.
    pub fn as_slice(&self) -> &'a [T] {
        self.data
    }

    /// The tensors of `layer` (`0..arch.layers()`).
    ///
    /// # Panics
    /// If `layer >= arch.layers()`.
    pub fn layer(&self, layer: usize) -> Layer<'_, T> {
        assert!(layer < self.arch.layers(), "layer {layer} out of range");
        let (start, offsets) = if layer == 0 {
            (0, &self.first)
        } else {
            (self.first.len + (layer - 1) * self.block.len, &self.block)
        };
        Layer { index: layer, data: &self.data[start..start + offsets.len], offsets }
    }

    /// The head's tensors.
    pub fn head(&self) -> Layer<'_, T> {
        let start = self.data.len() - self.head.len;
        Layer { index: self.arch.layers(), data: &self.data[start..], offsets: &self.head }
    }
}
