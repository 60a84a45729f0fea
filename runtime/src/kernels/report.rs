//! Which code runs for each operation: the choices the `impl Resolved`
//! blocks make, read back from the same predicates they branch on, for
//! `pixelcnn inspect --kernels` and benchmark reports.

use super::{FloatKernel, Gate, Int8Kernel, Resolved};

/// One operation and the code that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The operation, as the executors call it (a method of [`Resolved`]).
    pub name: &'static str,
    /// The implementation: a kernel module, or how the operation is
    /// composed from others.
    pub runs: &'static str,
}

impl Resolved {
    /// What runs for each int8 operation with this kernel on this CPU.
    pub fn operations(self) -> [Operation; 8] {
        let op = |name, runs| Operation { name, runs };
        [
            op("matvec_i8 (one input)", self.matvec_impl()),
            op("matmul (several inputs, one weight load)", self.matmul_impl()),
            op("requant_i8 / requant_i16 / requant_residual_i8", self.requant_impl()),
            op("gate_i8 (tanh · sigmoid tables)", self.gate_impl()),
            op("requant_gate_i8", self.requant_gate_impl()),
            op("matmul_requant (a row's product and epilogue)", self.matmul_requant_impl()),
            op("gated_step (one pixel's layer)", self.gated_step_impl()),
            op("head (one pixel's logits)", self.head_impl()),
        ]
    }

    fn matvec_impl(self) -> &'static str {
        match self.0 {
            Int8Kernel::Generic => "generic",
            Int8Kernel::ArmDsp => "arm::matvec_i8_dsp (SMLAD)",
            Int8Kernel::Avx2 => "x86_64::matvec_i8_avx2",
            Int8Kernel::AvxVnni => "x86_64::matvec_i8_avxvnni",
            Int8Kernel::Avx512Vnni256 => "x86_64::matvec_i8_avx512vnni (256-bit)",
            Int8Kernel::Avx512Vnni => "x86_64::matvec_i8_avx512vnni (512-bit)",
            #[cfg(target_arch = "x86_64")]
            Int8Kernel::Amx => "x86_64::matvec_i8_avx512vnni (512-bit; one input is below a tile)",
            Int8Kernel::Neon => "aarch64::matvec_i8_neon",
            Int8Kernel::NeonDotprod => "aarch64::matvec_i8_neondotprod (sdot)",
        }
    }

    fn matmul_impl(self) -> &'static str {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.tiles() {
            return "x86_64::matmul_tiles_amx for 16 or more inputs, else x86_64::matmul_packed_avx512vnni";
        }
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.vnni512() {
            return "x86_64::matmul_packed_avx512vnni (weights packed at load)";
        }
        #[cfg(target_arch = "x86_64")]
        if self.0 == Int8Kernel::Avx512Vnni {
            return "x86_64::matvec_i8_avx512vnni (four inputs per weight load)";
        }
        "one matvec_i8 per input"
    }

    fn requant_impl(self) -> &'static str {
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512_epilogues() {
            return "x86_64::requant_avx512";
        }
        "generic"
    }

    fn gate_impl(self) -> &'static str {
        match self.1 {
            Gate::Scalar => "generic (int8::gate_i8_slice)",
            #[cfg(target_arch = "x86_64")]
            Gate::Gather => "x86_64::gate_avx512 (vpgatherdd)",
            #[cfg(target_arch = "x86_64")]
            Gate::Permute => "x86_64::gate_avx512vbmi (vpermi2b)",
        }
    }

    fn requant_gate_impl(self) -> &'static str {
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512_epilogues() {
            return "x86_64::requant_avx512 into the gate above";
        }
        "generic requantization, then the gate above"
    }

    fn matmul_requant_impl(self) -> &'static str {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.tiles() {
            return "in registers: x86_64::matmul_tiles_amx + x86_64::matmul_epilogue_avx512 \
                    (packed weights, 2 or more inputs)";
        }
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.vnni512() {
            return "in registers: x86_64::matmul_packed_avx512vnni + x86_64::matmul_epilogue_avx512 \
                    (packed weights, 2 or more inputs)";
        }
        "matmul, then the requantization above"
    }

    fn gated_step_impl(self) -> &'static str {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.vnni512() && self.1 == Gate::Permute {
            return "fused: x86_64::gated_step_avx512vnni";
        }
        "matmul, requant_gate_i8, matmul, requant_residual_i8"
    }

    fn head_impl(self) -> &'static str {
        if self.fuses_head() {
            "fused: x86_64::head_avx512vnni"
        } else {
            "matmul, requant_i8, matmul"
        }
    }
}

impl FloatKernel {
    /// What runs for each float operation with this kernel.
    pub fn operations(self) -> [Operation; 3] {
        let (f32_dot, f16_dot) = match self {
            FloatKernel::Portable => ("generic", "generic (f16 widened to f32)"),
            FloatKernel::Avx => ("x86_64::dot_avx", "x86_64::dot_avx (F16C widening)"),
            FloatKernel::Neon => ("aarch64::dot_neon", "aarch64::dot_neon (widening)"),
            FloatKernel::NeonFp16 => {
                ("aarch64::dot_neon", "aarch64::dot_f16_neonfp16 (f16 arithmetic)")
            }
        };
        let axpy = match self {
            FloatKernel::Avx => "x86_64::dot_avx",
            _ => "generic (vectorized by the compiler)",
        };
        [
            Operation { name: "dot_f32 (f32 weights)", runs: f32_dot },
            Operation { name: "dot_f16 (f16 weights)", runs: f16_dot },
            Operation { name: "gemv_f32, axpy_f16 (compiled graphs' convolutions)", runs: axpy },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_available_kernel_reports_every_operation() {
        for kernel in Int8Kernel::available() {
            let ops = kernel.resolve().unwrap().operations();
            assert!(ops.iter().all(|o| !o.runs.is_empty()), "{kernel:?}");
        }
        let generic = Int8Kernel::Generic.resolve().unwrap().operations();
        assert_eq!(generic[0].runs, "generic");
        assert_eq!(generic[6].runs, "matmul, requant_gate_i8, matmul, requant_residual_i8");
        for kernel in FloatKernel::available() {
            assert_eq!(kernel.operations().len(), 3);
            assert!(kernel.operations().iter().all(|o| !o.runs.is_empty()), "{kernel:?}");
        }
    }
}
