//! An int8 model's weight matrices repacked once, at load
//! ([`super::QuantWeights`] builds them), in the order a kernel reads them: on x86_64 hosts with AVX-512 VNNI, the 16-row blocks
//! of [`crate::kernels::avx512vnni_packed_i8`] (one more copy of the
//! weights on the heap). Other builds (MCUs, aarch64, no heap) have no
//! packed form, and the kernels read the model's row-major bytes in place.

use crate::kernels::PackedI8;
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

/// One layer's (or the head's) packed matrices.
#[derive(Clone, Debug, Default)]
pub struct PackedLayer {
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    matrices: alloc::vec::Vec<(TensorKind, PackedI8)>,
}

impl PackedLayer {
    /// The packed form of weight tensor `kind`, if packed.
    pub fn get(&self, kind: TensorKind) -> Option<&PackedI8> {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        return self.matrices.iter().find(|(k, _)| *k == kind).map(|(_, m)| m);
        #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
        {
            let _ = kind;
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
    /// `bias_len(kind)` long.
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    pub(crate) fn pack<'a>(
        weight: impl Fn(TensorKind) -> &'a [i8],
        bias_len: impl Fn(TensorKind) -> usize,
    ) -> PackedLayer {
        let matrices = MATRICES
            .iter()
            .filter_map(|&(w, b)| {
                let (weights, rows) = (weight(w), bias_len(b));
                (rows > 0 && !weights.is_empty()).then(|| (w, PackedI8::pack(weights, rows)))
            })
            .collect();
        PackedLayer { matrices }
    }
}

/// Every layer's packed matrices, then the head's.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub(crate) fn collect(layers: impl Iterator<Item = PackedLayer>) -> Packed {
    Some(layers.collect())
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
