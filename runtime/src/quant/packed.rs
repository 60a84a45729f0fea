//! An int8 model's weight matrices repacked once, at load
//! ([`super::QuantWeights`] builds them), in the order a kernel reads them: on x86_64 hosts with AVX-512 VNNI, the 16-row blocks
//! of [`crate::kernels::x86_64::matmul_packed_avx512vnni`] (one more copy of the
//! weights on the heap). Other builds (MCUs, aarch64, no heap) have no
//! packed form, and the kernels read the model's row-major bytes in place.

use crate::kernels::{PackedI8, PreparedScales};
use crate::params::TensorKind;

/// The weight matrices the executor multiplies, with the bias that gives
/// each its number of rows.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
const MATRICES: [(TensorKind, TensorKind); 6] = [
    (TensorKind::VWeight, TensorKind::VBias),
    (TensorKind::LinkWeight, TensorKind::LinkBias),
    (TensorKind::HWeight, TensorKind::HBias),
    (TensorKind::OutWeight, TensorKind::OutBias),
    (TensorKind::Head1Weight, TensorKind::Head1Bias),
    (TensorKind::Head2Weight, TensorKind::Head2Bias),
];

/// One layer's (or the head's) packed matrices, and its requantization
/// points' prepared constants.
#[derive(Clone, Debug, Default)]
pub struct PackedLayer {
    /// Indexed by kind (`kind as usize`), the points below by number: looked
    /// up per layer and pixel, so no search.
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    matrices: [Option<PackedI8>; TensorKind::COUNT],
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    scales: alloc::vec::Vec<Option<PreparedScales>>,
}

impl PackedLayer {
    /// The packed form of weight tensor `kind`, if packed.
    pub fn get(&self, kind: TensorKind) -> Option<&PackedI8> {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        return self.matrices[kind as usize].as_ref();
        #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
        {
            let _ = kind;
            None
        }
    }

    /// The prepared constants of the layer's requantization point number
    /// `point` (in the order `pack` was given them), if any.
    pub fn scales(&self, point: usize) -> Option<&PreparedScales> {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        return self.scales.get(point).and_then(Option::as_ref);
        #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
        {
            let _ = point;
            None
        }
    }
}

/// Every layer's packed matrices, then the head's; `None` where nothing
/// is packed.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub(crate) type Packed = Option<alloc::sync::Arc<[PackedLayer]>>;
/// Nothing is packed in this build.
#[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
pub(crate) type Packed = ();

/// Whether this CPU runs the kernel the weights would be packed for.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub(crate) fn wanted() -> bool {
    crate::kernels::Int8Kernel::Avx512Vnni.is_available()
}

impl PackedLayer {
    /// The packed matrices of a layer (or the head) whose weight tensor of
    /// a kind is `weight(kind)` and whose bias of a kind is
    /// `bias_len(kind)` long, and the prepared constants of its
    /// requantization points, whose pairs `points` gives in order.
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    pub(crate) fn pack<'a>(
        weight: impl Fn(TensorKind) -> &'a [i8],
        bias_len: impl Fn(TensorKind) -> usize,
        points: impl Iterator<Item = &'a [i32]>,
    ) -> PackedLayer {
        let mut matrices: [Option<PackedI8>; TensorKind::COUNT] = Default::default();
        for (w, b) in MATRICES {
            let (weights, rows) = (weight(w), bias_len(b));
            if rows > 0 && !weights.is_empty() {
                matrices[w as usize] = Some(PackedI8::pack(weights, rows));
            }
        }
        let scales = points.map(PreparedScales::prepare).collect();
        PackedLayer { matrices, scales }
    }
}

/// Every layer's packed matrices, then the head's.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub(crate) fn collect(layers: impl Iterator<Item = PackedLayer>) -> Packed {
    let mut layers: alloc::vec::Vec<PackedLayer> = layers.collect();
    // The tiles' signed copies after every matrix (see `add_signed`).
    for m in layers.iter_mut().flat_map(|l| l.matrices.iter_mut().flatten()) {
        m.add_signed();
    }
    Some(layers.into())
}

/// Layer `index`'s packed matrices (`layers` for the head).
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub(crate) fn layer(packed: &Packed, index: usize) -> Option<&PackedLayer> {
    packed.as_ref().and_then(|p| p.get(index))
}

/// Nothing is packed in this build.
#[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
pub(crate) fn layer(_: &Packed, _: usize) -> Option<&PackedLayer> {
    None
}
