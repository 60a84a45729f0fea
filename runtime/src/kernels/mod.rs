//! Numeric kernels of the hot path.
//!
//! `generic` is the portable reference and always builds. SIMD versions of
//! the int8 matrix-vector product live one per file (`<isa>_<op>_<dtype>`)
//! and are chosen once per process: at run time under `std` (CPU feature
//! detection), at compile time otherwise (`-C target-feature`). Each one is
//! tested bit for bit against `generic` (tests below, and under qemu for
//! aarch64 in `scripts/cross-test.sh`).

pub mod generic;

#[cfg(target_arch = "x86_64")]
pub mod avx2_matvec_i8;
#[cfg(target_arch = "aarch64")]
pub mod neon_dotprod_matvec_i8;
#[cfg(target_arch = "aarch64")]
pub mod neon_matvec_i8;

use core::sync::atomic::{AtomicU8, Ordering};

pub use generic::{dot_f16, dot_f32, dot_i8, gate_f32, matvec_f32, relu_f32};

/// An implementation of the int8 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Int8Kernel {
    /// Portable scalar code, the reference.
    Generic,
    /// x86_64 AVX2.
    Avx2,
    /// aarch64 NEON (ARMv8-A, such as the Cortex-A72 of a Raspberry Pi 4).
    Neon,
    /// aarch64 NEON with `sdot` (ARMv8.2 dotprod, such as the Cortex-A76 of
    /// a Raspberry Pi 5).
    NeonDotprod,
}

/// The chosen kernel as an index into `ALL`; `u8::MAX` until first use.
static BEST: AtomicU8 = AtomicU8::new(u8::MAX);

const ALL: [Int8Kernel; 4] =
    [Int8Kernel::Generic, Int8Kernel::Avx2, Int8Kernel::Neon, Int8Kernel::NeonDotprod];

#[cfg(all(feature = "std", target_arch = "x86_64"))]
fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
}
#[cfg(all(not(feature = "std"), target_arch = "x86_64"))]
fn has_avx2() -> bool {
    cfg!(target_feature = "avx2")
}
#[cfg(all(feature = "std", target_arch = "aarch64"))]
fn has_dotprod() -> bool {
    std::arch::is_aarch64_feature_detected!("dotprod")
}
#[cfg(all(not(feature = "std"), target_arch = "aarch64"))]
fn has_dotprod() -> bool {
    cfg!(target_feature = "dotprod")
}

impl Int8Kernel {
    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Int8Kernel::Generic => "generic",
            Int8Kernel::Avx2 => "avx2",
            Int8Kernel::Neon => "neon",
            Int8Kernel::NeonDotprod => "neon-dotprod",
        }
    }

    /// True when this CPU (or, without `std`, this build) can run it.
    pub fn is_available(self) -> bool {
        match self {
            Int8Kernel::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx2 => has_avx2(),
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::Neon => true,
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::NeonDotprod => has_dotprod(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every implementation that can run here, the reference first.
    pub fn available() -> impl Iterator<Item = Int8Kernel> {
        ALL.into_iter().filter(|k| k.is_available())
    }

    /// The implementation [`matvec_i8`] uses: the fastest that can run
    /// here, unless [`Int8Kernel::prefer`] chose another.
    pub fn best() -> Int8Kernel {
        match BEST.load(Ordering::Relaxed) {
            u8::MAX => {
                let best = Self::available().last().unwrap_or(Int8Kernel::Generic);
                BEST.store(best as u8, Ordering::Relaxed);
                best
            }
            i => ALL[usize::from(i)],
        }
    }

    /// Makes [`matvec_i8`] use this implementation from now on (to compare
    /// kernels in benchmarks). Returns false, changing nothing, when it
    /// cannot run here.
    pub fn prefer(self) -> bool {
        if self.is_available() {
            BEST.store(self as u8, Ordering::Relaxed);
        }
        self.is_available()
    }

    /// This kernel, checked once to run here; `None` when it cannot.
    pub fn resolve(self) -> Option<Resolved> {
        self.is_available().then_some(Resolved(self))
    }

    /// `out[o] += w[o] · x` (wrapping int32) with this implementation; the
    /// generic one if this one cannot run here.
    ///
    /// # Panics
    /// If `w.len() != out.len() * x.len()`.
    pub fn matvec_i8(self, out: &mut [i32], w: &[i8], x: &[i8]) {
        self.resolve().unwrap_or(Resolved(Int8Kernel::Generic)).matvec_i8(out, w, x);
    }
}

/// An int8 kernel known to run on this CPU: the check is made once, when it
/// is resolved, so calls dispatch on a plain enum without detecting anything.
/// Executors resolve theirs when they are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved(Int8Kernel);

impl Resolved {
    /// [`Int8Kernel::best`], resolved.
    pub fn best() -> Resolved {
        // `best` only ever holds an available kernel.
        Resolved(Int8Kernel::best())
    }

    /// Which kernel it is.
    pub fn kernel(self) -> Int8Kernel {
        self.0
    }

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
            Int8Kernel::Avx2 => unsafe { avx2_matvec_i8::matvec_i8(out, w, x) },
            // Safety: NEON is part of every aarch64 CPU; shape checked above.
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::Neon => unsafe { neon_matvec_i8::matvec_i8(out, w, x) },
            // Safety: resolved, so dotprod was detected (or enabled at compile
            // time); shape checked above.
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::NeonDotprod => unsafe { neon_dotprod_matvec_i8::matvec_i8(out, w, x) },
            _ => generic::matvec_i8(out, w, x),
        }
    }
}

/// `out[o] += w[o] · x` with the fastest kernel available.
///
/// # Panics
/// If `w.len() != out.len() * x.len()`.
#[inline]
pub fn matvec_i8(out: &mut [i32], w: &[i8], x: &[i8]) {
    Resolved::best().matvec_i8(out, w, x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check_all(rows: usize, w: &[i8], x: &[i8], start: &[i32]) {
        let mut want = start[..rows].to_vec();
        generic::matvec_i8(&mut want, w, x);
        for kernel in Int8Kernel::available() {
            let mut got = start[..rows].to_vec();
            kernel.matvec_i8(&mut got, w, x);
            assert_eq!(got, want, "{kernel:?}, {rows} rows of {}", x.len());
        }
    }

    proptest! {
        #[test]
        fn every_kernel_equals_generic(
            rows in 0usize..11,
            n in 0usize..300,
            seed in any::<u64>(),
            start in proptest::collection::vec(any::<i32>(), 11),
        ) {
            let mut s = seed | 1;
            let mut next = || {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as i8
            };
            let w: Vec<i8> = (0..rows * n).map(|_| next()).collect();
            let x: Vec<i8> = (0..n).map(|_| next()).collect();
            check_all(rows, &w, &x, &start);
        }
    }

    #[test]
    fn extremes_wrap_like_the_reference() {
        // -128 · -128 everywhere, long enough to wrap int32, odd lengths.
        for n in [1usize, 15, 16, 17, 33, 140_001] {
            let w = vec![-128i8; 5 * n];
            let x = vec![-128i8; n];
            check_all(5, &w, &x, &[i32::MAX - 3, i32::MIN, 0, -1, 7]);
            let mixed: Vec<i8> = (0..n).map(|i| if i % 2 == 0 { 127 } else { -128 }).collect();
            check_all(1, &mixed, &x, &[0]);
        }
    }

    #[test]
    fn the_best_kernel_is_available() {
        assert!(Int8Kernel::best().is_available());
        assert_eq!(Int8Kernel::available().next(), Some(Int8Kernel::Generic));
    }
}
