//! The aarch64 backend: NEON (every ARMv8-A core, such as the Cortex-A72 of
//! a Raspberry Pi 4), NEON with `sdot` (ARMv8.2 dotprod, the Cortex-A76 of a
//! Raspberry Pi 5) and half-precision arithmetic (`fp16`).
//!
//! | file | what |
//! |---|---|
//! | `matvec_i8_neon`, `matvec_i8_neondotprod` | int8 matrix-vector products (`smlal`, `sdot`) |
//! | `dot_neon` | f32 dot products with f32 or f16 weights |
//! | `dot_f16_neonfp16` | f16 dot products in f16 arithmetic (not bit-identical; never the default) |

pub mod dot_f16_neonfp16;
pub mod dot_neon;
pub mod matvec_i8_neon;
pub mod matvec_i8_neondotprod;
