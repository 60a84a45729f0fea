//! Numeric kernels of the hot path, laid out as tract's `linalg` is: the
//! safe operations and their selection here, the unsafe code of each
//! instruction set in a folder of its own.
//!
//! ```text
//! kernels/
//!   mod.rs            Int8Kernel and its selection (Resolved)
//!   matvec.rs         the int8 matrix-vector product, and matmul (several inputs)
//!   cpu.rs            the one table of CPU features, detected or compiled in
//!   report.rs         which code runs for each operation (`pixelcnn inspect --kernels`)
//!   generic.rs        the portable reference of every operation, always built
//!   float.rs          FloatKernel and the f32/f16 dot products
//!   requantize.rs     requantization of int32 accumulators (i8, i16, residual)
//!   gate.rs           the gate, and the requantization that feeds it
//!   matmul_requant.rs a product and its requantization, fused where it pays
//!   gated_step.rs     one pixel's gated layer
//!   head.rs           one pixel's logits
//!   operands.rs       the operands of a step and a head
//!   x86_64/           AVX2, AVX-VNNI, AVX-512 (VNNI, VBMI) and AMX: one backend
//!   aarch64/          NEON, NEON dotprod, NEON fp16
//!   arm/              32-bit Arm with the DSP extension (SMLAD): Cortex-M4/M7/M33
//! ```
//!
//! The folders' files are named operation first, then data type where it
//! is not the int8 default, then instruction set (XNNPACK's order):
//! `matvec_i8_avx2`, `gate_avx512vbmi`, `matmul_tiles_amx`. The arithmetic
//! they implement is the spec in [`crate::int8`].
//!
//! An [`Int8Kernel`] is chosen once per process: at run time under `std`
//! (the features of [`cpu`]), at compile time otherwise (`-C
//! target-feature`), and an executor resolves it once ([`Resolved`]); what
//! that makes each operation run, [`Resolved::operations`] says. Each
//! kernel is tested bit for bit against `generic` (the tests of each
//! operation's file, named after the kernel, and under qemu for aarch64 and
//! Arm in `scripts/cross-test.sh`).

/// Test suites generated per int8 kernel, as XNNPACK generates one per
/// microkernel: `per_int8_kernel! { proptest! { .. } }` puts the tests in
/// one module named after each kernel (`..::tests::on_avx512_vnni::..`), where
/// `kernel()` is that kernel, or `None` on a CPU that lacks it: then the
/// tests pass without checking anything and the kernel is reported
/// skipped, with the reason, on stderr (past libtest's capture).
#[cfg(test)]
macro_rules! per_int8_kernel {
    (@one $kmod:ident $kernel:ident { $($body:tt)* }) => {
        mod $kmod {
            #[allow(unused_imports)]
            use super::*;

            /// This module's kernel, or `None` (reported skipped).
            #[allow(dead_code)]
            fn kernel() -> Option<$crate::kernels::Resolved> {
                $crate::kernels::tests::kernel_or_skip(
                    $crate::kernels::Int8Kernel::$kernel,
                    module_path!(),
                )
            }

            $($body)*
        }
    };
    ($($body:tt)*) => {
        per_int8_kernel!(@one on_generic Generic { $($body)* });
        per_int8_kernel!(@one on_arm_dsp ArmDsp { $($body)* });
        per_int8_kernel!(@one on_avx2 Avx2 { $($body)* });
        per_int8_kernel!(@one on_avx_vnni AvxVnni { $($body)* });
        per_int8_kernel!(@one on_avx512_vnni_256 Avx512Vnni256 { $($body)* });
        per_int8_kernel!(@one on_avx512_vnni Avx512Vnni { $($body)* });
        per_int8_kernel!(@one on_neon Neon { $($body)* });
        per_int8_kernel!(@one on_neon_dotprod NeonDotprod { $($body)* });
        #[cfg(target_arch = "x86_64")]
        per_int8_kernel!(@one on_amx Amx { $($body)* });
    };
}

/// [`per_int8_kernel`]'s twin for the float kernels: one module per
/// [`FloatKernel`], `kernel()` its [`ResolvedFloat`] or `None` (skipped).
#[cfg(test)]
macro_rules! per_float_kernel {
    (@one $kmod:ident $kernel:ident { $($body:tt)* }) => {
        mod $kmod {
            #[allow(unused_imports)]
            use super::*;

            /// This module's kernel, or `None` (reported skipped).
            #[allow(dead_code)]
            fn kernel() -> Option<$crate::kernels::ResolvedFloat> {
                $crate::kernels::tests::float_kernel_or_skip(
                    $crate::kernels::FloatKernel::$kernel,
                    module_path!(),
                )
            }

            $($body)*
        }
    };
    ($($body:tt)*) => {
        per_float_kernel!(@one on_portable Portable { $($body)* });
        per_float_kernel!(@one on_avx Avx { $($body)* });
        per_float_kernel!(@one on_neon_float Neon { $($body)* });
        per_float_kernel!(@one on_neon_fp16 NeonFp16 { $($body)* });
    };
}

pub mod cpu;
pub mod generic;
pub mod report;

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "arm")]
pub mod arm;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

pub mod float;
mod gate;
mod gated_step;
mod head;
mod matmul_requant;
mod matvec;
mod operands;
mod requantize;

// The kernels' earlier paths (one flat folder), kept for users' code.
#[cfg(target_arch = "aarch64")]
pub use aarch64::{
    dot_f16_neonfp16 as neon_fp16_dot_f16, dot_neon as neon_dot_f32,
    matvec_i8_neon as neon_matvec_i8, matvec_i8_neondotprod as neon_dotprod_matvec_i8,
};
#[cfg(all(target_arch = "arm", target_feature = "dsp"))]
pub use arm::matvec_i8_dsp as arm_dsp_matvec_i8;
pub use report::Operation;
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub use x86_64::matmul_packed_avx512vnni as avx512vnni_packed_i8;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{
    dot_avx as avx_dot_f32, gate_avx512 as avx512_gate_s16_s8,
    gate_avx512vbmi as avx512vbmi_gate_s16_s8, matvec_i8_avx2 as avx2_matvec_i8,
    matvec_i8_avx512vnni as avx512vnni_matvec_i8, matvec_i8_avxvnni as avxvnni_matvec_i8,
    requant_avx512 as avx512_requant_s32,
};

use core::sync::atomic::{AtomicU8, Ordering};

pub use float::{FloatKernel, ResolvedFloat};
pub use matmul_requant::{ColumnMap, Gated, Narrow, Piece, ResidualOut, Wide};
pub use matvec::{matvec_i8, Columns};
pub use operands::{GatedStep, Head, Residual, StepScratch};

/// Weights packed in a kernel's own reading order: on x86_64 hosts, the
/// AVX-512 VNNI kernel's 16-row blocks.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub use x86_64::matmul_packed_avx512vnni::PackedI8;

/// A requantization point's constants, prepared at load for the AVX-512
/// epilogues.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
pub use x86_64::requant_avx512::PreparedScales;

/// No kernel of this build prepares requantization constants.
#[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
#[derive(Debug)]
pub enum PreparedScales {}

/// A requantization point's `(multiplier, shift)` pairs (two words per
/// row), with their constants prepared for this CPU's kernel when the
/// model's were ([`crate::quant::QuantWeights`] does on AVX-512 hosts).
#[derive(Clone, Copy, Debug)]
pub struct Scales<'a> {
    /// The stored pairs.
    pub pairs: &'a [i32],
    /// The same, prepared, if they were.
    pub prepared: Option<&'a PreparedScales>,
}

impl<'a> Scales<'a> {
    /// Pairs with nothing prepared.
    pub fn unprepared(pairs: &'a [i32]) -> Scales<'a> {
        Scales { pairs, prepared: None }
    }
}

/// No kernel of this build reads packed weights (no heap to pack into, or
/// no kernel that wants another order), so there is no packed matrix.
#[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
#[derive(Debug)]
pub enum PackedI8 {}

/// An int8 weight matrix as the products take it: the model's row-major
/// bytes, and the same matrix packed for this CPU's kernel when the model
/// was packed at load ([`crate::quant::QuantWeights`] does on hosts with
/// AVX-512 VNNI).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    /// Row-major weights.
    pub w: &'a [i8],
    /// The same weights in a kernel's order, if packed.
    pub packed: Option<&'a PackedI8>,
}

impl<'a> Matrix<'a> {
    /// A row-major matrix with no packed form.
    pub fn row_major(w: &'a [i8]) -> Matrix<'a> {
        Matrix { w, packed: None }
    }
}
pub use generic::{dot_f16, dot_f32, dot_i8, gate_f32, matvec_f32, relu_f32, requantize};

/// An implementation of the int8 kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Int8Kernel {
    /// Portable scalar code, the reference.
    Generic,
    /// 32-bit Arm with the DSP extension (`SMLAD`): Cortex-M4/M7/M33, and
    /// ARMv7-A such as a Raspberry Pi on a 32-bit OS. Chosen at compile
    /// time, when the target has `dsp` (a nightly or bootstrapped compiler
    /// reports it; a stable one builds the generic kernel instead).
    ArmDsp,
    /// x86_64 AVX2.
    Avx2,
    /// x86_64 AVX-VNNI: 256-bit `vpdpbusd` without AVX-512 (such as Alder
    /// Lake).
    AvxVnni,
    /// x86_64 AVX-512 VNNI on 256-bit vectors (EVEX `vpdpbusd`, masked
    /// tails).
    Avx512Vnni256,
    /// x86_64 AVX-512 VNNI on 512-bit vectors (such as Ice Lake, Sapphire
    /// Rapids, Zen 4).
    Avx512Vnni,
    /// aarch64 NEON (ARMv8-A, such as the Cortex-A72 of a Raspberry Pi 4).
    Neon,
    /// aarch64 NEON with `sdot` (ARMv8.2 dotprod, such as the Cortex-A76 of
    /// a Raspberry Pi 5).
    NeonDotprod,
    /// x86_64 AMX-INT8 tile products (Sapphire Rapids and later, on Linux)
    /// wherever 16 or more inputs share the weights (a row's positions,
    /// lockstep lanes), and `Avx512Vnni` for everything else. (Last, and
    /// only on x86_64, so that no other build carries it.)
    #[cfg(target_arch = "x86_64")]
    Amx,
}

/// The chosen kernel as an index into `ALL`; `u8::MAX` until first use.
static BEST: AtomicU8 = AtomicU8::new(u8::MAX);

/// Every kernel, in declaration order (`ALL[k as usize] == k`); on each
/// architecture the last available one is the fastest.
const ALL: &[Int8Kernel] = &[
    Int8Kernel::Generic,
    Int8Kernel::ArmDsp,
    Int8Kernel::Avx2,
    Int8Kernel::AvxVnni,
    Int8Kernel::Avx512Vnni256,
    Int8Kernel::Avx512Vnni,
    Int8Kernel::Neon,
    Int8Kernel::NeonDotprod,
    #[cfg(target_arch = "x86_64")]
    Int8Kernel::Amx,
];

impl Int8Kernel {
    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Int8Kernel::Generic => "generic",
            Int8Kernel::Avx2 => "avx2",
            Int8Kernel::AvxVnni => "avx-vnni",
            Int8Kernel::Avx512Vnni256 => "avx512-vnni-256",
            Int8Kernel::Avx512Vnni => "avx512-vnni",
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Amx => "amx",
            Int8Kernel::Neon => "neon",
            Int8Kernel::NeonDotprod => "neon-dotprod",
            Int8Kernel::ArmDsp => "arm-dsp",
        }
    }

    /// What it needs of the CPU (or, without `std`, of the build), for
    /// reports of why it cannot run.
    pub const fn requires(self) -> &'static str {
        match self {
            Int8Kernel::Generic => "nothing",
            Int8Kernel::Avx2 => "x86_64 with AVX2",
            Int8Kernel::AvxVnni => "x86_64 with AVX2 and AVX-VNNI",
            Int8Kernel::Avx512Vnni256 | Int8Kernel::Avx512Vnni => {
                "x86_64 with AVX-512 F, BW, VL and VNNI"
            }
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Amx => "x86_64 with AVX-512 VBMI and AMX-INT8 enabled by the OS (Linux)",
            Int8Kernel::Neon => "aarch64",
            Int8Kernel::NeonDotprod => "aarch64 with the dot product extension",
            Int8Kernel::ArmDsp => "32-bit Arm built with the DSP extension",
        }
    }

    /// True when this CPU (or, without `std`, this build) can run it.
    pub fn is_available(self) -> bool {
        match self {
            Int8Kernel::Generic => true,
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx2 => cpu::avx2(),
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::AvxVnni => cpu::avxvnni(),
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Avx512Vnni256 | Int8Kernel::Avx512Vnni => cpu::avx512vnni(),
            #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
            Int8Kernel::Amx => cpu::avx512vbmi() && x86_64::matmul_tiles_amx::available(),
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::Neon => true,
            #[cfg(target_arch = "aarch64")]
            Int8Kernel::NeonDotprod => cpu::dotprod(),
            #[cfg(all(target_arch = "arm", target_feature = "dsp"))]
            Int8Kernel::ArmDsp => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every implementation that can run here, the reference first.
    pub fn available() -> impl Iterator<Item = Int8Kernel> {
        ALL.iter().copied().filter(|k| k.is_available())
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
        self.is_available().then(|| Resolved::new(self))
    }

    /// `out[o] += w[o] · x` (wrapping int32) with this implementation; the
    /// generic one if this one cannot run here.
    ///
    /// # Panics
    /// If `w.len() != out.len() * x.len()`.
    pub fn matvec_i8(self, out: &mut [i32], w: &[i8], x: &[i8]) {
        self.resolve().unwrap_or(Resolved::new(Int8Kernel::Generic)).matvec_i8(out, w, x);
    }
}

/// An int8 kernel known to run on this CPU: the check is made once, when it
/// is resolved, so calls dispatch on a plain enum without detecting anything.
/// Executors resolve theirs when they are built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolved(Int8Kernel, Gate);

/// How the gate's tables are read, decided with the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gate {
    /// [`crate::int8::gate_i8_slice`].
    Scalar,
    /// [`x86_64::gate_avx512`]: `vpgatherdd` from memory.
    #[cfg(target_arch = "x86_64")]
    Gather,
    /// [`x86_64::gate_avx512vbmi`]: `vpermi2b` from registers.
    #[cfg(target_arch = "x86_64")]
    Permute,
}

impl Resolved {
    /// Whether the kernel is AVX-512 VNNI on 512-bit vectors (with AMX or
    /// not): the packed weights', fused steps' and epilogues' kernel.
    #[inline]
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    fn vnni512(self) -> bool {
        self.0 == Int8Kernel::Avx512Vnni || self.tiles()
    }

    /// Whether products of 16 or more columns run on AMX tiles.
    #[inline]
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    fn tiles(self) -> bool {
        self.0 == Int8Kernel::Amx
    }

    /// `kernel`, which must be available, with the fastest gate that goes
    /// with it.
    fn new(kernel: Int8Kernel) -> Resolved {
        #[cfg(target_arch = "x86_64")]
        if matches!(kernel, Int8Kernel::Avx512Vnni | Int8Kernel::Amx | Int8Kernel::Avx512Vnni256) {
            return Resolved(kernel, if cpu::avx512vbmi() { Gate::Permute } else { Gate::Gather });
        }
        Resolved(kernel, Gate::Scalar)
    }

    /// [`Int8Kernel::best`], resolved.
    pub fn best() -> Resolved {
        // `best` only ever holds an available kernel.
        Resolved::new(Int8Kernel::best())
    }

    /// Which kernel it is.
    pub fn kernel(self) -> Int8Kernel {
        self.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `kernel`, resolved, or `None` where this CPU cannot run it; then the
    /// suite `suite` is reported skipped once, on stderr past libtest's
    /// capture, so that a missing kernel is seen and not silently passed.
    pub(crate) fn kernel_or_skip(kernel: Int8Kernel, suite: &str) -> Option<Resolved> {
        let resolved = kernel.resolve();
        if resolved.is_none() {
            report_skipped(suite, kernel.name(), kernel.requires());
        }
        resolved
    }

    /// [`kernel_or_skip`] for the float kernels.
    pub(crate) fn float_kernel_or_skip(kernel: FloatKernel, suite: &str) -> Option<ResolvedFloat> {
        let resolved = kernel.resolve();
        if resolved.is_none() {
            report_skipped(suite, kernel.name(), kernel.requires());
        }
        resolved
    }

    /// Says once per suite, on stderr past libtest's capture, that it was
    /// skipped and why.
    fn report_skipped(suite: &str, kernel: &str, requires: &str) {
        use std::io::Write as _;
        static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut reported = REPORTED.lock().unwrap_or_else(|e| e.into_inner());
        if !reported.iter().any(|s| s == suite) {
            reported.push(suite.to_string());
            let _ = writeln!(std::io::stderr(), "skipped: {suite} ({kernel} needs {requires})");
        }
    }

    fn check_all(rows: usize, w: &[i8], x: &[i8], start: &[i32]) {
        for kernel in Int8Kernel::available() {
            check_matvec(kernel, rows, w, x, start);
        }
    }

    /// `kernel`'s matrix-vector product against the generic one.
    fn check_matvec(kernel: Int8Kernel, rows: usize, w: &[i8], x: &[i8], start: &[i32]) {
        let mut want = start[..rows].to_vec();
        generic::matvec_i8(&mut want, w, x);
        let mut got = start[..rows].to_vec();
        kernel.matvec_i8(&mut got, w, x);
        assert_eq!(got, want, "{kernel:?}, {rows} rows of {}", x.len());
    }

    /// The packed product of one input against the generic one, with every
    /// kernel (only AVX-512 VNNI reads the packed form).
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    fn check_packed(rows: usize, w: &[i8], x: &[i8], start: &[i32]) {
        let mut want = start[..rows].to_vec();
        generic::matvec_i8(&mut want, w, x);
        let (packed, signed) = (PackedI8::pack(w, rows), with_signed(PackedI8::pack(w, rows)));
        let cols = Columns { data: x, stride: x.len(), len: x.len(), count: 1 };
        let kernels = Int8Kernel::available().filter_map(Int8Kernel::resolve);
        for (kernel, m) in kernels.flat_map(|k| {
            [Matrix { w, packed: Some(&packed) }, Matrix { w, packed: Some(&signed) }]
                .map(|m| (k, m))
        }) {
            let mut got = start[..rows].to_vec();
            kernel.matmul(&mut got, rows, m, cols);
            assert_eq!(got, want, "{kernel:?} packed, {rows} rows of {}", x.len());
            // The same input as 17 columns (stride 0): AMX tiles, where the
            // length is whole 32-byte rows.
            let many = Columns { data: x, stride: 0, len: x.len(), count: 17 };
            let mut got: Vec<i32> = (0..17).flat_map(|_| start[..rows].iter().copied()).collect();
            kernel.matmul(&mut got, rows, m, many);
            for (c, got) in got.chunks_exact(rows).enumerate() {
                assert_eq!(
                    got,
                    &want[..],
                    "{kernel:?} packed, column {c} of 17, {rows} rows of {}",
                    x.len()
                );
            }
        }
    }

    per_int8_kernel! {
        proptest! {
            #[test]
            fn matvec_equals_generic(
                rows in 0usize..37,
                n in 0usize..300,
                seed in any::<u64>(),
                start in proptest::collection::vec(any::<i32>(), 37),
            ) {
                let mut bits = xorshift(seed);
                let mut next = || bits() as i8;
                let w: Vec<i8> = (0..rows * n).map(|_| next()).collect();
                let x: Vec<i8> = (0..n).map(|_| next()).collect();
                if let Some(kernel) = kernel() {
                    check_matvec(kernel.kernel(), rows, &w, &x, &start);
                }
            }
        }

        proptest! {
            #[test]
            fn matmul_equals_one_matvec_per_input(
                rows in 1usize..70,
                // Whole 32-byte tile rows often (AMX runs those, from 16
                // columns on), then any.
                n in prop_oneof![Just(32usize), Just(64), Just(96), Just(192), 1usize..200],
                cols in prop_oneof![0usize..14, 16usize..50],
                pad in 0usize..5,
                out_pad in 0usize..3,
                seed in any::<u64>(),
            ) {
                let mut next = xorshift(seed);
                let (stride, out_stride) = (n + pad, rows + out_pad);
                let w: Vec<i8> = (0..rows * n).map(|_| next() as i8).collect();
                let data: Vec<i8> = (0..cols * stride).map(|_| next() as i8).collect();
                let start: Vec<i32> = (0..cols * out_stride).map(|_| next() as i32).collect();
                let x = Columns { data: &data, stride, len: n, count: cols };
                let mut want = start.clone();
                for c in 0..cols {
                    generic::matvec_i8(&mut want[c * out_stride..][..rows], &w, x.get(c));
                }
                if let Some(kernel) = kernel() {
                    let mut got = start.clone();
                    kernel.matmul_i8(&mut got, out_stride, &w, x);
                    prop_assert_eq!(&got, &want, "{:?}, {} rows of {}, {} columns", kernel, rows, n, cols);
                    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                    {
                        let packed = PackedI8::pack(&w, rows);
                        let m = Matrix { w: &w, packed: Some(&packed) };
                        let mut got = start.clone();
                        kernel.matmul(&mut got, out_stride, m, x);
                        prop_assert_eq!(&got, &want, "{:?} packed, {} rows of {}, {} columns", kernel, rows, n, cols);
                    }
                }
            }
        }
    }

    /// Another user of the tiles in this thread (a library with its own
    /// shapes) leaves its configuration loaded: the AMX products must load
    /// theirs again, not multiply with the wrong tile shapes.
    #[cfg(all(feature = "alloc", target_arch = "x86_64", target_os = "linux"))]
    #[test]
    #[allow(unsafe_code)]
    fn amx_products_reload_a_configuration_another_user_changed() {
        let Some(amx) = Int8Kernel::Amx.resolve() else {
            eprintln!("no AMX here: nothing to check");
            return;
        };
        let (rows, n, cols) = (64, 96, 40);
        let mut next = xorshift(7);
        let w: Vec<i8> = (0..rows * n).map(|_| next() as i8).collect();
        let data: Vec<i8> = (0..cols * n).map(|_| next() as i8).collect();
        let x = Columns { data: &data, stride: n, len: n, count: cols };
        let mut want = vec![0i32; cols * rows];
        for c in 0..cols {
            generic::matvec_i8(&mut want[c * rows..][..rows], &w, x.get(c));
        }
        let packed = PackedI8::pack(&w, rows);
        let m = Matrix { w: &w, packed: Some(&packed) };
        for round in 0..3 {
            if round > 0 {
                // Palette 1, every tile 8 rows of 16 bytes.
                #[repr(C, align(64))]
                struct Config([u8; 64]);
                let mut other = Config([0; 64]);
                other.0[0] = 1;
                for t in 0..8 {
                    other.0[16 + 2 * t] = 16;
                    other.0[48 + t] = 8;
                }
                // Safety: AMX is usable (resolved); 64 readable aligned bytes.
                unsafe {
                    core::arch::asm!("ldtilecfg [{}]", in(reg) other.0.as_ptr(), options(nostack));
                }
            }
            let mut got = vec![0i32; cols * rows];
            amx.matmul(&mut got, rows, m, x);
            assert_eq!(got, want, "round {round}");
        }
    }

    #[test]
    fn extremes_wrap_like_the_reference() {
        // -128 · -128 everywhere, long enough to wrap int32, odd lengths.
        for n in [1usize, 15, 16, 17, 33, 140_001, 140_032] {
            // 21 rows: a 16-row block, a 4-row block and a single row.
            let w = vec![-128i8; 21 * n];
            let x = vec![-128i8; n];
            let start: Vec<i32> =
                (0..21).map(|r| [i32::MAX - 3, i32::MIN, 0, -1, 7][r % 5]).collect();
            check_all(21, &w, &x, &start);
            #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
            check_packed(21, &w, &x, &start);
            let mixed: Vec<i8> = (0..n).map(|i| if i % 2 == 0 { 127 } else { -128 }).collect();
            check_all(1, &mixed, &x, &[0]);
        }
    }

    /// `pair` with its shift moved to `-31 ..= -2` (right shifts of 33 and
    /// more, scales below 1/4) when `yes`.
    pub(super) fn scaled_down_if(yes: bool, [m, shift]: [i32; 2]) -> [i32; 2] {
        if yes {
            [m, -2 - (shift as i8 as i32).rem_euclid(30)]
        } else {
            [m, shift]
        }
    }

    /// `packed` with the signed copy AMX tiles read where they are usable
    /// (as a loaded model's matrices have it), so that the tests run both
    /// tile products.
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    pub(super) fn with_signed(mut packed: PackedI8) -> PackedI8 {
        packed.add_signed();
        packed
    }

    /// `pairs`' constants prepared as an AVX-512 host's model has them, when
    /// `yes` and this build prepares any; otherwise none, and the kernels
    /// derive them.
    pub(super) fn prepared_if(yes: bool, pairs: &[i32]) -> Option<PreparedScales> {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        return yes.then(|| PreparedScales::prepare(pairs)).flatten();
        #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
        {
            let _ = (yes, pairs);
            None
        }
    }

    /// A xorshift64 stream from `seed` (made odd, so never stuck at
    /// zero): the kernels' tests draw their weights and inputs from it.
    pub(super) fn xorshift(seed: u64) -> impl FnMut() -> u64 {
        let mut s = seed | 1;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    /// Pairs a model can hold: multipliers in `[2^30, 2^31)` or 0, shifts
    /// `-31..=30`; plus, to reach every branch, stored words whose low byte
    /// is any shift at all (`requantize` clamps the shift).
    pub(super) fn pair_from(seed: u64) -> [i32; 2] {
        let m = match seed % 7 {
            0 => 0,
            1 => i32::MAX,
            _ => (1 << 30) | (seed >> 8) as i32 & 0x3fff_ffff,
        };
        let shift = match seed % 5 {
            0 => (seed >> 40) as i32, // any word; its low byte is the shift
            _ => ((seed >> 40) % 62) as i32 - 31,
        };
        [m, shift]
    }

    #[test]
    fn kernels_are_listed_in_declaration_order() {
        // `BEST` and `prefer` store a kernel as its discriminant and read it
        // back as an index into `ALL`.
        for (i, &k) in ALL.iter().enumerate() {
            assert_eq!(k as usize, i, "{k:?}");
        }
    }

    #[test]
    fn the_best_kernel_is_available() {
        assert!(Int8Kernel::best().is_available());
        assert_eq!(Int8Kernel::available().next(), Some(Int8Kernel::Generic));
    }
}
