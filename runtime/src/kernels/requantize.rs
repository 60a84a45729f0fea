//! Requantization ([`Resolved`]'s `requant_*`): after a product, its int32
//! accumulators become the next layer's int8 or int16 inputs or its
//! residual stream, each bit for bit as [`generic`]'s namesake computes
//! them (the rule is [`crate::int8::requantize`]). The AVX-512 kernels
//! vectorize them; every other kernel uses the generic ones.

#[cfg(target_arch = "x86_64")]
use super::x86_64::requant_avx512;
#[cfg(target_arch = "x86_64")]
use super::Int8Kernel;
use super::{generic, Resolved};

impl Resolved {
    #[cfg(target_arch = "x86_64")]
    #[inline]
    pub(super) fn has_avx512_epilogues(self) -> bool {
        matches!(self.0, Int8Kernel::Avx512Vnni | Int8Kernel::Amx | Int8Kernel::Avx512Vnni256)
    }

    /// [`generic::requant_i8`]: `out[o] = clamp(requant[o](acc[o]), lo, hi)`.
    ///
    /// # Panics
    /// If the lengths disagree (`pairs` holds two words per channel) or
    /// `lo > hi`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn requant_i8(self, out: &mut [i8], acc: &[i32], pairs: &[i32], lo: i8, hi: i8) {
        assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len(), "requant_i8 shapes");
        assert!(lo <= hi, "requant_i8 range");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512_epilogues() {
            // Safety: resolved, so AVX-512 F/BW/VL were detected (or enabled
            // at compile time); shapes checked above.
            return unsafe { requant_avx512::requant_i8(out, acc, pairs, lo, hi) };
        }
        generic::requant_i8(out, acc, pairs, lo, hi)
    }

    /// [`generic::requant_i16`]:
    /// `out[o] = clamp(requant[o](acc[o]) + add[o], lo, hi)`.
    ///
    /// # Panics
    /// If the lengths disagree or `lo > hi`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn requant_i16(
        self,
        out: &mut [i16],
        acc: &[i32],
        pairs: &[i32],
        add: Option<&[i16]>,
        lo: i16,
        hi: i16,
    ) {
        assert!(out.len() == acc.len() && pairs.len() == 2 * acc.len(), "requant_i16 shapes");
        assert!(add.is_none_or(|a| a.len() == acc.len()), "requant_i16 addend length");
        assert!(lo <= hi, "requant_i16 range");
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512_epilogues() {
            // Safety: as in `requant_i8`.
            return unsafe { requant_avx512::requant_i16(out, acc, pairs, add, lo, hi) };
        }
        generic::requant_i16(out, acc, pairs, add, lo, hi)
    }

    /// [`generic::requant_residual_i8`]: a residual block's output.
    ///
    /// # Panics
    /// If the lengths disagree.
    #[inline]
    #[allow(unsafe_code)]
    pub fn requant_residual_i8(
        self,
        out: &mut [i8],
        acc: &[i32],
        pairs: &[i32],
        res: &[i8],
        res_pair: (i32, i8),
    ) {
        assert!(
            out.len() == acc.len() && pairs.len() == 2 * acc.len() && res.len() == acc.len(),
            "requant_residual_i8 shapes"
        );
        #[cfg(target_arch = "x86_64")]
        if self.has_avx512_epilogues() {
            // Safety: as in `requant_i8`.
            return unsafe { requant_avx512::requant_residual_i8(out, acc, pairs, res, res_pair) };
        }
        generic::requant_residual_i8(out, acc, pairs, res, res_pair)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pair_from, scaled_down_if};
    use super::super::{requantize, Int8Kernel};
    use super::*;
    use proptest::prelude::*;

    per_int8_kernel! {
        proptest! {
            #[test]
            fn epilogue_equals_generic(
                n in 0usize..41,
                seeds in proptest::collection::vec(any::<u64>(), 40),
                acc in proptest::collection::vec(any::<i32>(), 40),
                add in proptest::collection::vec(any::<i16>(), 40),
                res in proptest::collection::vec(any::<i8>(), 40),
                (lo8, hi8) in (any::<i8>(), any::<i8>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
                (lo16, hi16) in (any::<i16>(), any::<i16>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
                res_seed in any::<u64>(),
                small in any::<bool>(),
                scaled_down in any::<bool>(),
            ) {
                // Small accumulators too, so results land inside the clamps.
                let acc: Vec<i32> = acc[..n].iter().map(|&a| if small { a >> 16 } else { a }).collect();
                // Scales below 1/4 in every row too: the int32 paths.
                let pairs: Vec<i32> =
                    seeds[..n].iter().flat_map(|&s| scaled_down_if(scaled_down, pair_from(s))).collect();
                let [rm, rs] = pair_from(res_seed);
                let res_pair = (rm, rs as i8);
                let g = Resolved::new(Int8Kernel::Generic);
                if let Some(kernel) = kernel() {
                    let (mut want, mut got) = (vec![0i8; n], vec![0i8; n]);
                    g.requant_i8(&mut want, &acc, &pairs, lo8, hi8);
                    kernel.requant_i8(&mut got, &acc, &pairs, lo8, hi8);
                    prop_assert_eq!(&got, &want, "{:?} requant_i8", kernel);
                    for addend in [None, Some(&add[..n])] {
                        let (mut want, mut got) = (vec![0i16; n], vec![0i16; n]);
                        g.requant_i16(&mut want, &acc, &pairs, addend, lo16, hi16);
                        kernel.requant_i16(&mut got, &acc, &pairs, addend, lo16, hi16);
                        prop_assert_eq!(&got, &want, "{:?} requant_i16", kernel);
                    }
                    let (mut want, mut got) = (vec![0i8; n], vec![0i8; n]);
                    g.requant_residual_i8(&mut want, &acc, &pairs, &res[..n], res_pair);
                    kernel.requant_residual_i8(&mut got, &acc, &pairs, &res[..n], res_pair);
                    prop_assert_eq!(&got, &want, "{:?} requant_residual_i8", kernel);
                }
            }
        }
    }

    #[test]
    fn requantize_rounds_half_up_and_saturates() {
        // multiplier 2^30 with shift 0 is one half: x / 2, halves rounded up.
        let half = 1 << 30;
        let got: Vec<i32> = [3, -3, 5, -5, 0, 1, -1].map(|x| requantize(x, half, 0)).to_vec();
        assert_eq!(got, [2, -1, 3, -2, 0, 1, 0]);
        // 2^30 · 2^30 ≫ 1: far above i32, saturated.
        assert_eq!(requantize(i32::MAX, i32::MAX, 30), i32::MAX);
        assert_eq!(requantize(i32::MIN, i32::MAX, 30), i32::MIN);
    }
}
