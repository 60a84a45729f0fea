//! The gate of a gated layer: `tanh(a) · σ(b)` through the tables of
//! [`crate::int8::gate`], and the requantization that feeds it, each bit for
//! bit as the generic kernels compute them. AVX-512 reads the tables with
//! `vpgatherdd` or, with VBMI, from registers with `vpermi2b`.

#[cfg(target_arch = "x86_64")]
use super::x86_64::{gate_avx512, gate_avx512vbmi};
use super::{Gate, Resolved};

impl Resolved {
    /// [`crate::int8::gate_i8_slice`]: `out[c] = gate(pre[c],
    /// pre[p + c])`.
    ///
    /// # Panics
    /// If `pre.len() != 2 * out.len()`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn gate_i8(self, out: &mut [i8], pre: &[i16]) {
        assert_eq!(pre.len(), 2 * out.len(), "gate_i8 shapes");
        match self.1 {
            // Safety: resolved with this gate only where AVX-512 F/BW/VL
            // (and VBMI) were detected or enabled at compile time.
            #[cfg(target_arch = "x86_64")]
            Gate::Gather => unsafe { gate_avx512::gate_i8(out, pre) },
            // Safety: as above.
            #[cfg(target_arch = "x86_64")]
            Gate::Permute => unsafe { gate_avx512vbmi::gate_i8(out, pre) },
            Gate::Scalar => crate::int8::gate_i8_slice(out, pre),
        }
    }

    /// A gated layer's output from its accumulators: [`Resolved::requant_i16`]
    /// of the gate inputs (`add` added, clamped to the gate tables' range)
    /// followed by [`Resolved::gate_i8`]. Channels `c` and `p + c` of `acc`
    /// make output `c`, `p = out.len()`. `pre` is scratch for the kernels
    /// that store the gate inputs between the two steps; the AVX-512 VBMI
    /// one keeps them in registers.
    ///
    /// # Panics
    /// If `acc`, `add` and `pre` do not hold `2p` values and `pairs` `4p`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn requant_gate_i8(
        self,
        out: &mut [i8],
        acc: &[i32],
        pairs: &[i32],
        add: &[i16],
        pre: &mut [i16],
    ) {
        let p2 = 2 * out.len();
        assert!(
            acc.len() == p2 && add.len() == p2 && pre.len() == p2 && pairs.len() == 2 * p2,
            "requant_gate_i8 shapes"
        );
        #[cfg(target_arch = "x86_64")]
        if self.1 == Gate::Permute {
            // Safety: resolved with this gate only where AVX-512 F/BW/VL/VBMI
            // were detected or enabled at compile time; shapes checked.
            return unsafe { gate_avx512vbmi::requant_gate_i8(out, acc, pairs, add) };
        }
        let (lo, hi) = (crate::int8::PRE_MIN as i16, crate::int8::PRE_MAX as i16);
        self.requant_i16(pre, acc, pairs, Some(add), lo, hi);
        self.gate_i8(out, pre);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pair_from, scaled_down_if};
    use super::super::Int8Kernel;
    use super::*;
    use proptest::prelude::*;

    per_int8_kernel! {
        proptest! {
            #[test]
            fn gate_equals_generic(
                pre in proptest::collection::vec(any::<i16>(), 0..80),
                narrow in any::<bool>(),
            ) {
                // Inside the tables' range too, not only clamped extremes.
                let pre: Vec<i16> = pre.iter().map(|&v| if narrow { v % 600 } else { v }).collect();
                let pre = &pre[..pre.len() / 2 * 2];
                let mut want = vec![0i8; pre.len() / 2];
                crate::int8::gate_i8_slice(&mut want, pre);
                if let Some(kernel) = kernel() {
                    let mut got = vec![0i8; pre.len() / 2];
                    kernel.gate_i8(&mut got, pre);
                    prop_assert_eq!(&got, &want, "{:?}", kernel);
                }
            }
        }

        proptest! {
            #[test]
            fn requant_and_gate_equals_generic(
                p in 0usize..70,
                seeds in proptest::collection::vec(any::<u64>(), 140),
                acc in proptest::collection::vec(any::<i32>(), 140),
                add in proptest::collection::vec(-2000i16..2000, 140),
                small in any::<bool>(),
                scaled_down in any::<bool>(),
            ) {
                // Small accumulators too, so the gate inputs land inside the
                // tables and not only at their clamped ends.
                let acc: Vec<i32> =
                    acc[..2 * p].iter().map(|&a| if small { a >> 20 } else { a }).collect();
                // Scales below 1/4 everywhere too, as trained models have: the
                // int32 fast path.
                let pairs: Vec<i32> = seeds[..2 * p]
                    .iter()
                    .flat_map(|&s| scaled_down_if(scaled_down, pair_from(s)))
                    .collect();
                let (lo, hi) = (crate::int8::PRE_MIN as i16, crate::int8::PRE_MAX as i16);
                let g = Resolved::new(Int8Kernel::Generic);
                let mut pre = vec![0i16; 2 * p];
                let mut want = vec![0i8; p];
                g.requant_i16(&mut pre, &acc, &pairs, Some(&add[..2 * p]), lo, hi);
                crate::int8::gate_i8_slice(&mut want, &pre);
                if let Some(kernel) = kernel() {
                    let mut got = vec![0i8; p];
                    kernel.requant_gate_i8(&mut got, &acc, &pairs, &add[..2 * p], &mut pre);
                    prop_assert_eq!(&got, &want, "{:?}", kernel);
                }
            }
        }
    }
}
