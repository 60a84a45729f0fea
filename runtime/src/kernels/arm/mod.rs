//! The 32-bit Arm backend: the DSP extension's `SMLAD` (two 16-bit
//! products a cycle) on Cortex-M4, M7 and M33 and ARMv7-A. Chosen at compile
//! time, when the target has `dsp`; otherwise the generic kernel runs.

#[cfg(target_feature = "dsp")]
pub mod matvec_i8_dsp;
