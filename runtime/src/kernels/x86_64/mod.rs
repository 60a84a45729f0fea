//! The x86_64 backend: AVX2, AVX-VNNI, AVX-512 (F/BW/VL with VNNI, and
//! VBMI for the gate) and AMX tiles. One backend: the AVX-512 files share
//! their loads, requantization and gate helpers with each other, never with
//! the safe operations above them. Every function here is `unsafe` and
//! `#[target_feature]`; the callers in [`crate::kernels`] check the features
//! once ([`crate::kernels::cpu`]) when a kernel is resolved.
//!
//! | file | what |
//! |---|---|
//! | `matvec_i8_avx2`, `matvec_i8_avxvnni`, `matvec_i8_avx512vnni` | int8 matrix-vector products (`vpmaddubsw`, `vpdpbusd`) |
//! | `requant_avx512` | requantization of int32 accumulators (16 lanes) |
//! | `gate_avx512`, `gate_avx512vbmi` | the gate's tables: `vpgatherdd`, or `vpermi2b` from registers |
//! | `matmul_packed_avx512vnni` | the packed weight matrix, its products and the AMX column driver |
//! | `matmul_epilogue_avx512` | what becomes of a packed product's sums: accumulate, requantize, gate, residual |
//! | `matmul_tiles_amx` | AMX-INT8 tile products (`tdpbssd`), Linux only |
//! | `gated_step_avx512vnni`, `head_avx512vnni` | one pixel's fused layer and head |
//! | `dot_avx` | f32 dot products with f32 or f16 (F16C) weights |

pub mod dot_avx;
pub mod gate_avx512;
pub mod gate_avx512vbmi;
#[cfg(feature = "alloc")]
pub(crate) mod gated_step_avx512vnni;
#[cfg(feature = "alloc")]
pub(crate) mod head_avx512vnni;
#[cfg(feature = "alloc")]
pub(crate) mod matmul_epilogue_avx512;
#[cfg(feature = "alloc")]
pub mod matmul_packed_avx512vnni;
#[cfg(feature = "alloc")]
pub(crate) mod matmul_tiles_amx;
pub mod matvec_i8_avx2;
pub mod matvec_i8_avx512vnni;
pub mod matvec_i8_avxvnni;
pub mod requant_avx512;
