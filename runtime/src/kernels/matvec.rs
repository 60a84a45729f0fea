//! The int8 matrix-vector product and its several-input form (matmul):
//! `out += w · x` in wrapping int32, dispatched to the chosen kernel.

#[cfg(target_arch = "aarch64")]
use super::aarch64;
#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
use super::arm;
#[cfg(target_arch = "x86_64")]
use super::x86_64;
use super::{generic, Int8Kernel, Matrix, Resolved};

impl Resolved {
    /// `out[o] += w[o] · x` (wrapping int32).
    ///
    /// # Panics
    /// If `w.len() != out.len() * x.len()`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn matvec_i8(self, out: &mut [i32], w: &[i8], x: &[i8]) {
        assert_eq!(w.len(), out.len() * x.len(), "matvec_i8 shape mismatch");
        match self.0 {
            // Safety: a `Resolved` is only made for an available kernel
            // (AVX2 detected or enabled at compile time); shape checked above.
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx2 => unsafe { x86_64::matvec_i8_avx2::matvec_i8(out, w, x) },
            // Safety: resolved, so AVX2 and AVX-VNNI were detected (or enabled
            // at compile time); shape checked above.
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::AvxVnni => unsafe { x86_64::matvec_i8_avxvnni::matvec_i8(out, w, x) },
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); shape checked above.
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx512Vnni256 => unsafe {
                x86_64::matvec_i8_avx512vnni::matvec_i8_256(out, w, x)
            },
            // Safety: as above.
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx512Vnni | Int8Kernel::Amx => unsafe {
                x86_64::matvec_i8_avx512vnni::matvec_i8_512(out, w, x)
            },
            // Safety: NEON is part of every aarch64 CPU; shape checked above.
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::Neon => unsafe { aarch64::matvec_i8_neon::matvec_i8(out, w, x) },
            // Safety: resolved, so dotprod was detected (or enabled at compile
            // time); shape checked above.
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::NeonDotprod => unsafe {
                aarch64::matvec_i8_neondotprod::matvec_i8(out, w, x)
            },
            // Safety: compiled only where the target has the DSP extension;
            // shape checked above.
            #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
            Int8Kernel::ArmDsp => unsafe { arm::matvec_i8_dsp::matvec_i8(out, w, x) },
            _ => generic::matvec_i8(out, w, x),
        }
    }
}

/// `count` int8 vectors of `len` bytes each, vector `c` at
/// `data[c · stride ..][..len]`: the inputs of [`Resolved::matmul_i8`] (one
/// per image of a lockstep batch, in each image's own part of a buffer).
#[derive(Clone, Copy, Debug)]
pub struct Columns<'a> {
    /// The bytes the vectors lie in.
    pub data: &'a [i8],
    /// Distance between the starts of consecutive vectors.
    pub stride: usize,
    /// Length of each vector.
    pub len: usize,
    /// Number of vectors.
    pub count: usize,
}

impl Columns<'_> {
    /// True when every vector lies inside `data`.
    pub(super) fn in_bounds(&self) -> bool {
        self.count == 0
            || (self.count - 1)
                .checked_mul(self.stride)
                .and_then(|s| s.checked_add(self.len))
                .is_some_and(|end| end <= self.data.len())
    }

    /// Vector `c`.
    pub(super) fn get(&self, c: usize) -> &[i8] {
        &self.data[c * self.stride..][..self.len]
    }
}

impl Resolved {
    /// Several inputs through the same weight rows, as one product:
    /// `out[c · out_stride + o] += w[o] · x_c` (wrapping int32) for every row
    /// `o` of `w` (`x.len` bytes each) and every vector `x_c` of `x`. The
    /// AVX-512 VNNI kernel shares each weight load among four inputs; the
    /// others run one matrix-vector product per input. Equal to `x.count`
    /// calls of [`Resolved::matvec_i8`], bit for bit.
    ///
    /// # Panics
    /// If `w.len()` is not a multiple of `x.len`, or a vector of `x` or of
    /// `out` is out of bounds.
    #[inline]
    #[allow(unsafe_code)]
    pub fn matmul_i8(self, out: &mut [i32], out_stride: usize, w: &[i8], x: Columns<'_>) {
        if x.len == 0 || x.count == 0 {
            return;
        }
        let rows = check_matmul(out.len(), out_stride, w.len(), x);
        match self.0 {
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); every vector's bounds checked above.
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx512Vnni | Int8Kernel::Amx => unsafe {
                x86_64::matvec_i8_avx512vnni::matmul_i8_512(
                    out, out_stride, w, rows, x.data, x.stride, x.count,
                )
            },
            _ => {
                for c in 0..x.count {
                    self.matvec_i8(&mut out[c * out_stride..][..rows], w, x.get(c));
                }
            }
        }
    }
}

impl Resolved {
    /// [`Resolved::matmul_i8`] over `m`: from its packed form when this is
    /// the kernel it was packed for (AVX-512 VNNI), else from its row-major
    /// bytes. Equal to `x.count` calls of [`Resolved::matvec_i8`], bit for
    /// bit, either way.
    ///
    /// # Panics
    /// As [`Resolved::matmul_i8`], and if the packed form's shape is not
    /// the row-major one's.
    #[inline]
    #[allow(unsafe_code)]
    pub fn matmul(self, out: &mut [i32], out_stride: usize, m: Matrix<'_>, x: Columns<'_>) {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if let (true, Some(p)) = (self.vnni512(), m.packed) {
            if x.len == 0 || x.count == 0 {
                return;
            }
            let rows = check_matmul(out.len(), out_stride, m.w.len(), x);
            assert!(p.rows() == rows && p.len() == x.len, "matmul: packed shape mismatch");
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); every vector's bounds checked above.
            return unsafe {
                x86_64::matmul_packed_avx512vnni::matmul(
                    out,
                    out_stride,
                    p,
                    x.data,
                    x.stride,
                    x.count,
                    self.tiles(),
                )
            };
        }
        self.matmul_i8(out, out_stride, m.w, x)
    }
}

/// Checks the shapes of a product of `w_len` weights with `x` into `out`
/// and returns its number of rows.
///
/// # Panics
/// If `w_len` is not a multiple of `x.len`, or a vector of `x` or of `out`
/// is out of bounds.
pub(super) fn check_matmul(
    out_len: usize,
    out_stride: usize,
    w_len: usize,
    x: Columns<'_>,
) -> usize {
    assert!(w_len.is_multiple_of(x.len), "matmul_i8: weights are not whole rows");
    let rows = w_len / x.len;
    let out_end = (x.count - 1).checked_mul(out_stride).and_then(|s| s.checked_add(rows));
    assert!(x.in_bounds(), "matmul_i8: an input vector is out of bounds");
    assert!(out_end.is_some_and(|e| e <= out_len), "matmul_i8: an output is out of bounds");
    rows
}

/// `out[o] += w[o] · x` with the fastest kernel available.
///
/// # Panics
/// If `w.len() != out.len() * x.len()`.
#[inline]
pub fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    Resolved::best().matvec_i8(out, w, x);
}
