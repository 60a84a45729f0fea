//! A validated, zero-copy view of an int8 model: int8 weights, int32 biases
//! and the requantization multipliers, each one flat slice.
//!
//! Weights and biases keep the float layout's tensor order
//! ([`Arch::tensors`]), filtered by kind: the int8 slice holds the weight
//! tensors, the int32 slice the biases and per-class bias tables. The
//! multipliers are `(multiplier, shift)` pairs, per layer in the order of
//! [`RequantPoint`], then the head's.
//!
//! On x86_64 hosts that run the AVX-512 VNNI kernel, the view also owns a
//! copy of the weight matrices packed in that kernel's order, made once
//! when it is built ([`super::packed`]); everywhere else it copies nothing.

use crate::arch::{Arch, Variant};
use crate::error::Error;
use crate::kernels::{Matrix, PreparedScales, Scales};
use crate::params::{LayerOffsets, TensorKind};
use crate::quant::packed::{self, PackedLayer};
use crate::quant::QuantMultiplier;

/// Longest dot product the int32 accumulator holds exactly: 2^31 / 128².
pub const MAX_ROW: usize = 131_072;

/// A rescaling point of a layer, with what it converts from and to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequantPoint {
    /// Vertical accumulator → gate input (1/64), per pre-activation channel.
    VGate,
    /// Vertical accumulator → the link's int8 input, per channel.
    VLink,
    /// Horizontal accumulator → gate input, per channel.
    Horizontal,
    /// Link accumulator → gate input, per channel.
    Link,
    /// `out` 1×1 accumulator → residual stream, per channel (layers ≥ 1).
    Out,
    /// Previous residual stream → this layer's scale, one value (layers ≥ 1).
    Residual,
    /// Head's first 1×1 → hidden int8, per channel.
    Head1,
    /// Head's second 1×1 → logits (1/256 nat), per level.
    Head2,
}

impl RequantPoint {
    /// Entries of each point of `layer` (`None`: the head), by point
    /// number; 0 where the layer does not have it.
    fn lens(arch: &Arch, layer: Option<usize>) -> [usize; 8] {
        let p = arch.channels;
        match layer {
            Some(0) => [2 * p, 2 * p, 2 * p, 2 * p, 0, 0, 0, 0],
            Some(_) => [2 * p, 2 * p, 2 * p, 2 * p, p, 1, 0, 0],
            None => [0, 0, 0, 0, 0, 0, arch.head, arch.levels],
        }
    }

    #[cfg(any(test, all(feature = "alloc", target_arch = "x86_64")))]
    const ALL: [RequantPoint; 8] = [
        Self::VGate,
        Self::VLink,
        Self::Horizontal,
        Self::Link,
        Self::Out,
        Self::Residual,
        Self::Head1,
        Self::Head2,
    ];

    /// Each point's (offset, entries) inside the block of `layer`, by
    /// point number, and the block's length: the one walk over the
    /// points that orders the table.
    fn block(arch: &Arch, layer: Option<usize>) -> ([(usize, usize); 8], usize) {
        let mut points = [(0, 0); 8];
        let mut offset = 0;
        for (at, len) in points.iter_mut().zip(Self::lens(arch, layer)) {
            *at = (offset, len);
            offset += len;
        }
        (points, offset)
    }
}

/// Number of `(multiplier, shift)` entries of an architecture.
pub fn requant_entries(arch: &Arch) -> usize {
    let first = RequantPoint::block(arch, Some(0)).1;
    let block = RequantPoint::block(arch, Some(1)).1;
    let head = RequantPoint::block(arch, None).1;
    first + arch.blocks * block + head
}

/// Entries of `point` of `layer` (`None`: the head) in an int8 model's flat
/// table of `(multiplier, shift)` pairs. The one place that orders the
/// table: the quantizer writes through it and [`QuantLayer::requant`] reads
/// the same order (`RequantPoint::block`).
pub fn requant_range(
    arch: &Arch,
    layer: Option<usize>,
    point: RequantPoint,
) -> core::ops::Range<usize> {
    let first = RequantPoint::block(arch, Some(0)).1;
    let block = RequantPoint::block(arch, Some(1)).1;
    let start = match layer {
        Some(0) => 0,
        Some(l) => first + (l - 1) * block,
        None => first + arch.blocks * block,
    };
    let (offset, len) = RequantPoint::block(arch, layer).0[point as usize];
    start + offset..start + offset + len
}

/// Number of int8 weights of an architecture.
pub fn weight_count(arch: &Arch) -> usize {
    elements(arch, true)
}

/// Number of int32 biases (including class tables) of an architecture.
pub fn bias_count(arch: &Arch) -> usize {
    elements(arch, false)
}

/// Elements of the weight tensors (`weights`) or of the others: one loop
/// for both counts, so an MCU's flash holds it once.
fn elements(arch: &Arch, weights: bool) -> usize {
    let mut n = 0;
    for spec in arch.tensors() {
        if spec.kind.is_weight() == weights {
            n += spec.len();
        }
    }
    n
}

/// The multipliers of one [`RequantPoint`] of one layer.
#[derive(Clone, Copy, Debug)]
pub struct Requant<'a> {
    pairs: &'a [i32],
    prepared: Option<&'a PreparedScales>,
}

impl<'a> Requant<'a> {
    /// The multiplier of entry `i`.
    #[inline]
    pub fn get(&self, i: usize) -> QuantMultiplier {
        let (m, s) = (self.pairs[2 * i], self.pairs[2 * i + 1]);
        // Validated at load; `apply` is safe for any pair regardless.
        QuantMultiplier { multiplier: m, shift: s as i8 }
    }

    /// The stored `(multiplier, shift)` words, two per entry, as the
    /// requantization kernels read them.
    pub fn pairs(&self) -> &'a [i32] {
        self.pairs
    }

    /// The pairs with their constants prepared for this CPU's epilogues,
    /// if the model was loaded on a host that prepares them.
    pub fn scales(&self) -> Scales<'a> {
        Scales { pairs: self.pairs, prepared: self.prepared }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.pairs.len() / 2
    }

    /// True when the point does not exist in this layer.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// One layer's (or the head's) tensors of an int8 model.
#[derive(Clone, Copy, Debug)]
pub struct QuantLayer<'a> {
    weights: &'a [i8],
    w_offsets: &'a LayerOffsets,
    biases: &'a [i32],
    b_offsets: &'a LayerOffsets,
    requant: &'a [i32],
    /// Each point's (start, entries) in `requant`, by point number.
    points: &'a [(usize, usize); 8],
    packed: Option<&'a PackedLayer>,
}

impl<'a> QuantLayer<'a> {
    /// An int8 weight tensor; empty when absent.
    pub fn weight(&self, kind: TensorKind) -> &'a [i8] {
        &self.weights[self.w_offsets.ranges[kind as usize].clone()]
    }

    /// Weight tensor `kind` as the products take it, with its packed form
    /// if the model was packed for this CPU's kernel.
    pub fn matrix(&self, kind: TensorKind) -> Matrix<'a> {
        Matrix { w: self.weight(kind), packed: self.packed.and_then(|p| p.get(kind)) }
    }

    /// An int32 bias tensor; empty when absent.
    pub fn bias(&self, kind: TensorKind) -> &'a [i32] {
        &self.biases[self.b_offsets.ranges[kind as usize].clone()]
    }

    /// Row `class` of a per-class bias table; empty when absent.
    pub fn class_row(&self, kind: TensorKind, class: Option<usize>, n: usize) -> &'a [i32] {
        let t = self.bias(kind);
        match class {
            Some(c) if !t.is_empty() => &t[c * n..(c + 1) * n],
            _ => &[],
        }
    }

    /// The multipliers of `point`.
    pub fn requant(&self, point: RequantPoint) -> Requant<'a> {
        // `RequantPoint::ALL` is in declaration order: the point's number.
        let (start, len) = self.points[point as usize];
        let prepared = self.packed.and_then(|p| p.scales(point as usize));
        Requant { pairs: &self.requant[2 * start..2 * (start + len)], prepared }
    }
}

#[derive(Clone, Debug)]
struct Offsets {
    weights: LayerOffsets,
    biases: LayerOffsets,
    requant: usize,
    /// [`RequantPoint::block`], found once: the executors ask for points
    /// at every pixel.
    points: [(usize, usize); 8],
}

impl Offsets {
    fn of(arch: &Arch, layer: Option<usize>) -> Self {
        let (points, requant) = RequantPoint::block(arch, layer);
        Offsets {
            weights: LayerOffsets::of_kinds(arch, layer, TensorKind::is_weight),
            biases: LayerOffsets::of_kinds(arch, layer, |k| !k.is_weight()),
            requant,
            points,
        }
    }
}

/// A validated int8 Gated PixelCNN, borrowed from three slices (and, on
/// hosts with AVX-512 VNNI, its weights packed for that kernel).
#[derive(Clone, Debug)]
pub struct QuantWeights<'a> {
    arch: Arch,
    weights: &'a [i8],
    biases: &'a [i32],
    requant: &'a [i32],
    first: Offsets,
    block: Offsets,
    head: Offsets,
    /// The weights again in the kernel's order, where the kernel has one.
    packed: packed::Packed,
}

impl<'a> QuantWeights<'a> {
    /// Wraps the slices of an int8 model of `arch`.
    ///
    /// # Errors
    /// [`Error::NeedsGated`] for a plain PixelCNN, [`Error::Arch`],
    /// [`Error::ParamCount`] when a slice has the wrong length,
    /// [`Error::InvalidRequant`] for a multiplier out of range,
    /// [`Error::RowTooLong`] when a dot product could overflow int32.
    pub fn new(
        arch: Arch,
        weights: &'a [i8],
        biases: &'a [i32],
        requant: &'a [i32],
    ) -> Result<Self, Error> {
        if arch.variant != Variant::Gated {
            return Err(Error::NeedsGated);
        }
        arch.validate()?;
        let longest = [
            (arch.radius_of(0) + 1) * arch.first_kernel,
            (arch.radius_of(1) + 1) * arch.kernel * arch.channels,
            2 * arch.channels,
            arch.head,
        ];
        if longest.iter().any(|&n| n > MAX_ROW) {
            return Err(Error::RowTooLong { max: MAX_ROW });
        }
        for (expected, found) in [
            (weight_count(&arch), weights.len()),
            (bias_count(&arch), biases.len()),
            (2 * requant_entries(&arch), requant.len()),
        ] {
            if expected != found {
                return Err(Error::ParamCount { expected, found });
            }
        }
        for (index, pair) in requant.chunks_exact(2).enumerate() {
            if QuantMultiplier::from_parts(pair[0], pair[1]).is_none() {
                return Err(Error::InvalidRequant { index });
            }
        }
        let mut model = QuantWeights {
            arch,
            weights,
            biases,
            requant,
            first: Offsets::of(&arch, Some(0)),
            block: Offsets::of(&arch, Some(1)),
            head: Offsets::of(&arch, None),
            packed: Default::default(),
        };
        model.packed = model.pack();
        Ok(model)
    }

    /// Every layer's weight matrices and the head's, packed for this CPU's
    /// kernel where it has its own order.
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    fn pack(&self) -> packed::Packed {
        if !packed::wanted() {
            return None;
        }
        let layers = (0..self.arch.layers()).map(|l| self.layer(l)).chain([self.head()]);
        let layers = layers.map(|layer| {
            let points = RequantPoint::ALL.into_iter().map(|p| layer.requant(p).pairs());
            PackedLayer::pack(|k| layer.weight(k), |k| layer.bias(k).len(), points)
        });
        packed::collect(layers)
    }

    /// Nothing to pack in this build.
    #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
    fn pack(&self) -> packed::Packed {}

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// The three slices: int8 weights, int32 biases, multiplier pairs.
    pub fn as_slices(&self) -> (&'a [i8], &'a [i32], &'a [i32]) {
        (self.weights, self.biases, self.requant)
    }

    /// The tensors of `layer` (`0..arch.layers()`).
    ///
    /// # Panics
    /// If `layer >= arch.layers()`.
    pub fn layer(&self, layer: usize) -> QuantLayer<'_> {
        assert!(layer < self.arch.layers(), "layer {layer} out of range");
        let (w0, b0, q0, offsets) = if layer == 0 {
            (0, 0, 0, &self.first)
        } else {
            let n = layer - 1;
            (
                self.first.weights.len + n * self.block.weights.len,
                self.first.biases.len + n * self.block.biases.len,
                self.first.requant + n * self.block.requant,
                &self.block,
            )
        };
        let packed = packed::layer(&self.packed, layer);
        self.view(w0, b0, q0, offsets, packed)
    }

    /// The head's tensors.
    pub fn head(&self) -> QuantLayer<'_> {
        let h = &self.head;
        let w0 = self.weights.len() - h.weights.len;
        let b0 = self.biases.len() - h.biases.len;
        let q0 = self.requant.len() / 2 - h.requant;
        self.view(w0, b0, q0, h, packed::layer(&self.packed, self.arch.layers()))
    }

    fn view<'s>(
        &'s self,
        w0: usize,
        b0: usize,
        q0: usize,
        offsets: &'s Offsets,
        packed: Option<&'s PackedLayer>,
    ) -> QuantLayer<'s> {
        QuantLayer {
            weights: &self.weights[w0..w0 + offsets.weights.len],
            w_offsets: &offsets.weights,
            biases: &self.biases[b0..b0 + offsets.biases.len],
            b_offsets: &offsets.biases,
            requant: &self.requant[2 * q0..2 * (q0 + offsets.requant)],
            points: &offsets.points,
            packed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RequantPoint;

    #[test]
    fn points_are_listed_in_declaration_order() {
        // A packed layer's prepared constants are found by `point as usize`.
        for (i, point) in RequantPoint::ALL.into_iter().enumerate() {
            assert_eq!(point as usize, i, "{point:?}");
        }
    }
}
