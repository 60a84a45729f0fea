//! An int8 model's weight matrices repacked once, at load, in the order a
//! kernel reads them: on x86_64 hosts with AVX-512 VNNI, the 16-row blocks
//! of [`crate::kernels::avx512vnni_packed_i8`] (one more copy of the
//! weights on the heap). Other builds (MCUs, aarch64, no heap) have no
//! packed form, and the kernels read the model's row-major bytes in place.

use super::weights::QuantLayer;
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

/// Packs `layers` (every layer's tensors, then the head's) when this CPU
/// runs the AVX-512 VNNI kernel; the first layer's horizontal weights stay
/// row-major (a pixel reads only the columns left of it).
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub(crate) fn pack<'a>(layers: impl Iterator<Item = (Option<usize>, QuantLayer<'a>)>) -> Packed {
    if !crate::kernels::Int8Kernel::Avx512Vnni.is_available() {
        return None;
    }
    let packed = layers.map(|(index, layer)| {
        let matrices = MATRICES
            .iter()
            .filter(|(w, _)| !(index == Some(0) && *w == TensorKind::HWeight))
            .filter_map(|&(w, b)| {
                let (weights, rows) = (layer.weight(w), layer.bias(b).len());
                (rows > 0 && !weights.is_empty()).then(|| (w, PackedI8::pack(weights, rows)))
            })
            .collect();
        PackedLayer { matrices }
    });
    Some(packed.collect())
}

/// Nothing to pack in this build.
#[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
pub(crate) fn pack<'a>(_: impl Iterator<Item = (Option<usize>, QuantLayer<'a>)>) -> Packed {}

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
