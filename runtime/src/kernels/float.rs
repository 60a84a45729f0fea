//! Which float dot-product kernel runs (f32 and f16 weights, accumulated in
//! f32): chosen once per process like [`super::Int8Kernel`], and resolved
//! once per float executor ([`ResolvedFloat`]). Every kernel but one gives
//! the portable kernels' bits; the exception, [`FloatKernel::NeonFp16`],
//! computes f16 models in f16 arithmetic and runs only when asked for.

use core::sync::atomic::{AtomicU8, Ordering};

#[cfg(target_arch = "aarch64")]
use super::aarch64::{dot_f16_neonfp16, dot_neon};
use super::generic;
#[cfg(target_arch = "x86_64")]
use super::x86_64::dot_avx;

/// An implementation of the float dot products (f32 and f16 weights,
/// accumulated in f32). Every one gives the same bits as the portable one:
/// only the instructions differ, not the order of the sums.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FloatKernel {
    /// Portable code the compiler vectorizes for the baseline target.
    Portable,
    /// x86_64 AVX on eight lanes, with F16C to widen f16 weights.
    Avx,
    /// aarch64 NEON on two vectors of four lanes, f16 weights widened by
    /// `FCVTL` (every ARMv8-A core).
    Neon,
    /// aarch64 with FP16 arithmetic (ARMv8.2-A, such as the Cortex-A76 of
    /// a Raspberry Pi 5): f16 models multiply and add in f16
    /// (`kernels::aarch64::dot_f16_neonfp16`, aarch64 only), f32 models run as [`FloatKernel::Neon`].
    /// Not bit-identical to the others (its rounding differs), so never the
    /// default: [`FloatKernel::prefer`] it.
    NeonFp16,
}

/// The chosen float kernel as an index into `FLOAT_ALL`; `u8::MAX` until
/// first use.
static BEST_FLOAT: AtomicU8 = AtomicU8::new(u8::MAX);

/// Every float kernel, in declaration order.
const FLOAT_ALL: [FloatKernel; 4] =
    [FloatKernel::Portable, FloatKernel::Avx, FloatKernel::Neon, FloatKernel::NeonFp16];

impl FloatKernel {
    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            FloatKernel::Portable => "portable",
            FloatKernel::Avx => "avx",
            FloatKernel::Neon => "neon-float",
            FloatKernel::NeonFp16 => "neon-fp16",
        }
    }

    /// What it needs of the CPU (or, without `std`, of the build), for
    /// reports of why it cannot run.
    pub const fn requires(self) -> &'static str {
        match self {
            FloatKernel::Portable => "nothing",
            FloatKernel::Avx => "x86_64 with AVX and F16C",
            FloatKernel::Neon => "aarch64",
            FloatKernel::NeonFp16 => "aarch64 with half-precision arithmetic (fp16)",
        }
    }

    /// True when this CPU (or, without `std`, this build) can run it.
    pub fn is_available(self) -> bool {
        match self {
            FloatKernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            FloatKernel::Avx => super::cpu::avx_f16c(),
            #[cfg(target_arch = "aarch64")]
            FloatKernel::Neon => true,
            #[cfg(target_arch = "aarch64")]
            FloatKernel::NeonFp16 => super::cpu::fp16(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every implementation that can run here, the portable one first.
    pub fn available() -> impl Iterator<Item = FloatKernel> {
        FLOAT_ALL.into_iter().filter(|k| k.is_available())
    }

    /// True when it gives the portable kernels' bits (all but
    /// [`FloatKernel::NeonFp16`]).
    pub const fn is_exact(self) -> bool {
        !matches!(self, FloatKernel::NeonFp16)
    }

    /// The implementation float executors resolve when they are built: the
    /// fastest exact one that can run here, unless [`FloatKernel::prefer`]
    /// chose another.
    pub fn best() -> FloatKernel {
        match BEST_FLOAT.load(Ordering::Relaxed) {
            u8::MAX => {
                let best = Self::available()
                    .filter(|k| k.is_exact())
                    .last()
                    .unwrap_or(FloatKernel::Portable);
                BEST_FLOAT.store(best as u8, Ordering::Relaxed);
                best
            }
            i => FLOAT_ALL[usize::from(i)],
        }
    }

    /// Makes executors built from now on use this implementation. Returns
    /// false, changing nothing, when it cannot run here.
    pub fn prefer(self) -> bool {
        if self.is_available() {
            BEST_FLOAT.store(self as u8, Ordering::Relaxed);
        }
        self.is_available()
    }

    /// This kernel, checked once to run here; `None` when it cannot.
    pub fn resolve(self) -> Option<ResolvedFloat> {
        self.is_available().then_some(ResolvedFloat(self))
    }
}

/// A float kernel known to run on this CPU (see [`super::Resolved`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedFloat(FloatKernel);

impl ResolvedFloat {
    /// [`FloatKernel::best`], resolved.
    pub fn best() -> ResolvedFloat {
        ResolvedFloat(FloatKernel::best())
    }

    /// Which kernel it is.
    pub fn kernel(self) -> FloatKernel {
        self.0
    }

    /// [`generic::dot_f32`].
    ///
    /// # Panics
    /// If the lengths differ.
    #[inline]
    #[allow(unsafe_code)]
    pub fn dot_f32(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot_f32 length mismatch");
        match self.0 {
            // Safety: resolved, so AVX was detected (or enabled at compile
            // time); lengths checked above.
            #[cfg(target_arch = "x86_64")]
            FloatKernel::Avx => unsafe { dot_avx::dot_f32(a, b) },
            // Safety: NEON is part of every aarch64 CPU; lengths checked.
            #[cfg(target_arch = "aarch64")]
            FloatKernel::Neon | FloatKernel::NeonFp16 => unsafe { dot_neon::dot_f32(a, b) },
            _ => generic::dot_f32(a, b),
        }
    }

    /// [`generic::axpy_f32`]: `out[i] += a · x[i]`.
    ///
    /// # Panics
    /// If the lengths differ.
    #[inline]
    #[allow(unsafe_code)]
    pub fn axpy_f32(self, out: &mut [f32], a: f32, x: &[f32]) {
        assert_eq!(out.len(), x.len(), "axpy_f32 length mismatch");
        match self.0 {
            // Safety: resolved, so AVX was detected (or enabled at compile
            // time); lengths checked above.
            #[cfg(target_arch = "x86_64")]
            FloatKernel::Avx => unsafe { dot_avx::axpy_f32(out, a, x) },
            _ => generic::axpy_f32(out, a, x),
        }
    }

    /// [`generic::gemv_f32`]: `out[n] += Σ_k x[k] · w[k · N + n]`.
    ///
    /// # Panics
    /// If `w.len() != x.len() · out.len()`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn gemv_f32(self, out: &mut [f32], x: &[f32], w: &[f32]) {
        assert_eq!(w.len(), x.len() * out.len(), "gemv_f32 shape mismatch");
        match self.0 {
            // Safety: resolved, so AVX was detected (or enabled at compile
            // time); the shape checked above.
            #[cfg(target_arch = "x86_64")]
            FloatKernel::Avx => unsafe { dot_avx::gemv_f32(out, x, w) },
            _ => generic::gemv_f32(out, x, w),
        }
    }

    /// [`generic::axpy_f16`]: `out[i] += a · w[i]`, f16 `w` widened; the
    /// weights must be finite.
    ///
    /// # Panics
    /// If the lengths differ.
    #[inline]
    #[allow(unsafe_code)]
    pub fn axpy_f16(self, out: &mut [f32], a: f32, w: &[half::f16]) {
        assert_eq!(out.len(), w.len(), "axpy_f16 length mismatch");
        match self.0 {
            // Safety: resolved, so AVX and F16C were detected (or enabled at
            // compile time); lengths checked above.
            #[cfg(target_arch = "x86_64")]
            FloatKernel::Avx => unsafe { dot_avx::axpy_f16(out, a, w) },
            _ => generic::axpy_f16(out, a, w),
        }
    }

    /// [`generic::dot_f16`]; the weights must be finite (a loaded model's
    /// are).
    ///
    /// # Panics
    /// If the lengths differ.
    #[inline]
    #[allow(unsafe_code)]
    pub fn dot_f16(self, w: &[half::f16], x: &[f32]) -> f32 {
        assert_eq!(w.len(), x.len(), "dot_f16 length mismatch");
        match self.0 {
            // Safety: resolved, so AVX and F16C were detected (or enabled at
            // compile time); lengths checked above.
            #[cfg(target_arch = "x86_64")]
            FloatKernel::Avx => unsafe { dot_avx::dot_f16(w, x) },
            // Safety: as for `dot_f32`.
            #[cfg(target_arch = "aarch64")]
            FloatKernel::Neon => unsafe { dot_neon::dot_f16(w, x) },
            // Safety: resolved, so FP16 arithmetic was detected (or enabled
            // at compile time); lengths checked above.
            #[cfg(target_arch = "aarch64")]
            FloatKernel::NeonFp16 => unsafe { dot_f16_neonfp16::dot_f16(w, x) },
            _ => generic::dot_f16(w, x),
        }
    }

    /// `out[o] += dot_f16(w[o · n ..][..n], x)` (`n = x.len()`) for every
    /// row: [`ResolvedFloat::dot_f16`] row by row, except that
    /// [`FloatKernel::NeonFp16`] rounds `x` to f16 once for all rows.
    ///
    /// # Panics
    /// If `w.len() != out.len() · x.len()`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn matvec_f16(self, out: &mut [f32], w: &[half::f16], x: &[f32]) {
        let n = x.len();
        assert_eq!(w.len(), out.len() * n, "matvec shape mismatch");
        if n == 0 {
            return;
        }
        #[cfg(target_arch = "aarch64")]
        if self.0 == FloatKernel::NeonFp16 {
            // Safety: resolved, so FP16 arithmetic was detected (or enabled
            // at compile time); the shape checked above.
            return unsafe { dot_f16_neonfp16::matvec_f16(out, w, x) };
        }
        for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
            *o += self.dot_f16(row, x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::xorshift;
    use super::*;
    use proptest::prelude::*;

    per_float_kernel! {
        proptest! {
            #[test]
            fn axpy_equals_portable(
                x in proptest::collection::vec(-1e3f32..1e3, 0..80),
                a in -10f32..10.0,
                seed in any::<u64>(),
            ) {
                let mut bits = xorshift(seed);
                let start: Vec<f32> = x.iter().map(|_| (bits() % 20_001) as f32 / 1000.0 - 10.0).collect();
                if let Some(kernel) = kernel() {
                    let portable = ResolvedFloat(FloatKernel::Portable);
                    let to_bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
                    let (mut got, mut want) = (start.clone(), start.clone());
                    kernel.axpy_f32(&mut got, a, &x);
                    portable.axpy_f32(&mut want, a, &x);
                    prop_assert_eq!(to_bits(&got), to_bits(&want), "{:?} f32", kernel);
                    // gemv: rows of 37 outputs (a 32-block, a tail), some x zero.
                    let n = 37;
                    let xs: Vec<f32> = x.iter().map(|&v| if v > 500.0 { 0.0 } else { v }).collect();
                    let w: Vec<f32> = (0..xs.len() * n).map(|_| (bits() % 2001) as f32 / 1000.0 - 1.0).collect();
                    let o0: Vec<f32> = (0..n).map(|i| i as f32 * 0.25).collect();
                    let (mut got, mut want) = (o0.clone(), o0);
                    kernel.gemv_f32(&mut got, &xs, &w);
                    portable.gemv_f32(&mut want, &xs, &w);
                    prop_assert_eq!(to_bits(&got), to_bits(&want), "{:?} gemv", kernel);
                    let halves: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
                    let (mut got, mut want) = (start.clone(), start);
                    kernel.axpy_f16(&mut got, a, &halves);
                    portable.axpy_f16(&mut want, a, &halves);
                    prop_assert_eq!(to_bits(&got), to_bits(&want), "{:?} f16", kernel);
                }
            }
        }

        proptest! {
            #[test]
            fn dot_equals_portable(
                a in proptest::collection::vec(-1e3f32..1e3, 0..80),
                seed in any::<u64>(),
            ) {
                let mut bits = xorshift(seed);
                let b: Vec<f32> = a.iter().map(|_| (bits() % 20_001) as f32 / 1000.0 - 10.0).collect();
                let halves: Vec<half::f16> = a.iter().map(|&v| half::f16::from_f32(v)).collect();
                let portable = ResolvedFloat(FloatKernel::Portable);
                if let Some(kernel) = kernel().filter(|k| k.0.is_exact()) {
                    // Bits, not closeness: the same sums in the same order.
                    prop_assert_eq!(
                        kernel.dot_f32(&a, &b).to_bits(),
                        portable.dot_f32(&a, &b).to_bits(),
                        "{:?} f32", kernel
                    );
                    prop_assert_eq!(
                        kernel.dot_f16(&halves, &b).to_bits(),
                        portable.dot_f16(&halves, &b).to_bits(),
                        "{:?} f16", kernel
                    );
                }
            }
        }

        proptest! {
            /// The f16-arithmetic kernel against the exact f16 dot product: the
            /// activations rounded to f16 (relative error 2^-11 each) and f16
            /// sums over runs of 32 bound its error by a few parts in a
            /// thousand of `Σ |w · x|`. Its matrix-vector product is its dot
            /// product row by row, bit for bit.
            #[test]
            fn the_fp16_kernel_tracks_the_exact_one(
                rows in 1usize..5,
                n in 0usize..600,
                seed in any::<u64>(),
            ) {
                let mut bits = xorshift(seed);
                let mut next = || (bits() % 20_001) as f32 / 10_000.0 - 1.0;
                let w: Vec<half::f16> = (0..rows * n).map(|_| half::f16::from_f32(next())).collect();
                let x: Vec<f32> = (0..n).map(|_| 4.0 * next()).collect();
                let exact = ResolvedFloat(FloatKernel::Portable);
                if let Some(kernel) = kernel().filter(|k| !k.0.is_exact()) {
                    let mut out = vec![0.5f32; rows];
                    kernel.matvec_f16(&mut out, &w, &x);
                    for o in 0..rows {
                        let row = &w[o * n..(o + 1) * n];
                        let got = kernel.dot_f16(row, &x);
                        let want = exact.dot_f16(row, &x);
                        let scale: f32 = row.iter().zip(&x).map(|(a, b)| (a.to_f32() * b).abs()).sum();
                        let tol = 4e-3 * scale + 1e-6;
                        prop_assert!((got - want).abs() <= tol, "{:?}: {} vs {} (scale {})", kernel, got, want, scale);
                        if n <= 256 {
                            prop_assert_eq!(out[o].to_bits(), (0.5f32 + got).to_bits(), "{:?} matvec row {}", kernel, o);
                        } else {
                            prop_assert!((out[o] - 0.5 - want).abs() <= tol + 1e-6, "{:?} matvec row {}", kernel, o);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn only_exact_kernels_are_chosen_by_default() {
        assert!(FloatKernel::best().is_exact());
        assert!(!FloatKernel::NeonFp16.is_exact());
    }

    #[test]
    fn kernels_are_listed_in_declaration_order() {
        // `BEST_FLOAT` stores a kernel as its discriminant and reads it back
        // as an index into `FLOAT_ALL`.
        for (i, k) in FLOAT_ALL.into_iter().enumerate() {
            assert_eq!(k as usize, i, "{k:?}");
        }
    }
}
