//! The CPU features the kernels need, in one table: each entry is detected
//! once at run time with `std` (`is_x86_feature_detected!`,
//! `is_aarch64_feature_detected!`) and read from the build's
//! `-C target-feature` without it. Both the int8 ([`super::Int8Kernel`]) and
//! the float ([`super::FloatKernel`]) kernels ask here, so a feature set is
//! written once.

/// Defines one `pub fn name() -> bool` per entry of the table: all the
/// listed features of its architecture, detected (with `std`) or compiled
/// in (without).
macro_rules! cpu_features {
    ($(
        $(#[$doc:meta])*
        $name:ident: $arch:tt [$($feature:tt),+];
    )*) => {$(
        $(#[$doc])*
        #[cfg(target_arch = $arch)]
        #[inline]
        pub fn $name() -> bool {
            cpu_features!(@detect $arch [$($feature),+])
        }
    )*};
    (@detect "x86_64" [$($feature:tt),+]) => {{
        #[cfg(feature = "std")]
        let on = $(std::is_x86_feature_detected!($feature))&&+;
        #[cfg(not(feature = "std"))]
        let on = cfg!(all($(target_feature = $feature),+));
        on
    }};
    (@detect "aarch64" [$($feature:tt),+]) => {{
        #[cfg(feature = "std")]
        let on = $(std::arch::is_aarch64_feature_detected!($feature))&&+;
        #[cfg(not(feature = "std"))]
        let on = cfg!(all($(target_feature = $feature),+));
        on
    }};
}

cpu_features! {
    /// AVX2: the 256-bit int8 matrix-vector kernel.
    avx2: "x86_64" ["avx2"];
    /// AVX-VNNI (256-bit `vpdpbusd` without AVX-512).
    avxvnni: "x86_64" ["avx2", "avxvnni"];
    /// AVX-512 with VNNI (F, BW, VL, VNNI): the 512- and 256-bit int8
    /// kernels, the packed products and the AVX-512 epilogues.
    avx512vnni: "x86_64" ["avx512f", "avx512bw", "avx512vl", "avx512vnni"];
    /// AVX-512 VBMI beside VNNI: the gate's tables read with `vpermi2b`, and
    /// the condition of the AMX kernel (whose tiles need the OS too).
    avx512vbmi: "x86_64" ["avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512vbmi"];
    /// AVX with F16C: the float kernels (f32 dot products, f16 weights).
    avx_f16c: "x86_64" ["avx", "f16c"];
    /// ARMv8.2 dot product (`sdot`): the aarch64 int8 kernel.
    dotprod: "aarch64" ["dotprod"];
    /// ARMv8.2 half-precision arithmetic: the aarch64 f16 kernel.
    fp16: "aarch64" ["fp16"];
}

/// A feature set's name and its check.
pub type Feature = (&'static str, fn() -> bool);

/// Every feature set of the table on this architecture, with its name and
/// whether this CPU (without `std`: this build) has it; for reports.
pub fn report() -> &'static [Feature] {
    &[
        #[cfg(target_arch = "x86_64")]
        ("avx2", avx2),
        #[cfg(target_arch = "x86_64")]
        ("avx-vnni", avxvnni),
        #[cfg(target_arch = "x86_64")]
        ("avx512-vnni", avx512vnni),
        #[cfg(target_arch = "x86_64")]
        ("avx512-vbmi", avx512vbmi),
        #[cfg(target_arch = "x86_64")]
        ("avx+f16c", avx_f16c),
        #[cfg(target_arch = "aarch64")]
        ("dotprod", dotprod),
        #[cfg(target_arch = "aarch64")]
        ("fp16", fp16),
    ]
}

#[cfg(test)]
mod tests {
    /// With `std` the table detects at run time; without, it reads the
    /// build's target features.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_table_agrees_with_the_detection_macros() {
        #[cfg(feature = "std")]
        let (avx2, avx_f16c) = (
            std::is_x86_feature_detected!("avx2"),
            std::is_x86_feature_detected!("avx") && std::is_x86_feature_detected!("f16c"),
        );
        #[cfg(not(feature = "std"))]
        let (avx2, avx_f16c) = (
            cfg!(target_feature = "avx2"),
            cfg!(all(target_feature = "avx", target_feature = "f16c")),
        );
        assert_eq!(super::avx2(), avx2);
        assert_eq!(super::avx_f16c(), avx_f16c);
        // A superset needs each of its features.
        assert!(!super::avx512vbmi() || super::avx512vnni());
        assert!(!super::avxvnni() || super::avx2());
    }
}
