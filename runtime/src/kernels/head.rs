//! One image's output head at one pixel ([`Resolved::head`]): the hidden
//! 1×1 layer with its ReLU, then the logits' product, as one call. It ends
//! every pixel's chain of dependent work, so where the kernel can it keeps
//! the hidden layer in registers.

#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
use super::x86_64::head_avx512vnni;
use super::{Columns, Head, Resolved};

impl Resolved {
    /// Whether [`Resolved::head`] has a fused version on this kernel (where
    /// it has not, the executor's batch path, which also serves one image,
    /// is the same work).
    #[inline]
    pub fn fuses_head(self) -> bool {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        return self.vnni512();
        #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
        false
    }

    /// The head of one image: `hidden = clamp(requant(hidden_bias +
    /// hidden_weights · top), 0, 127)`, then `logits = logit_bias +
    /// logit_weights · hidden` (wrapping int32, not yet requantized: the
    /// caller scales its few logits). The same bits as [`Resolved::matmul`]
    /// and [`Resolved::requant_i8`] in turn, which the kernels without a
    /// fused head run here (`acc`: `hidden` words of scratch).
    ///
    /// # Panics
    /// If a shape disagrees: `top` of `p`, `hidden` of the hidden layer's
    /// rows, `logits` of `k`.
    #[inline]
    #[allow(unsafe_code)]
    pub fn head(
        self,
        head: &Head<'_>,
        top: &[i8],
        hidden: &mut [i8],
        logits: &mut [i32],
        acc: &mut [i32],
    ) {
        let (p, h, k) = (top.len(), hidden.len(), logits.len());
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.vnni512() {
            // The fused head reads through pointers: every shape first (the
            // separate kernels below check their own).
            assert!(
                head.hidden_weights.w.len() == h * p
                    && head.hidden_bias.len() == h
                    && head.hidden_scales.pairs.len() == 2 * h
                    && head.logit_weights.w.len() == k * h
                    && head.logit_bias.len() == k,
                "head shapes"
            );
            // Safety: resolved with this kernel only where AVX-512
            // F/BW/VL/VNNI were detected or enabled at compile time; shapes
            // checked above (the fused head checks the packed ones).
            if unsafe { head_avx512vnni::head(head, top, hidden, logits) } {
                return;
            }
        }
        let acc = &mut acc[..h];
        acc.copy_from_slice(head.hidden_bias);
        self.matmul(
            acc,
            h,
            head.hidden_weights,
            Columns { data: top, stride: p, len: p, count: 1 },
        );
        self.requant_i8(hidden, acc, head.hidden_scales.pairs, 0, 127);
        logits.copy_from_slice(head.logit_bias);
        let hidden = Columns { data: hidden, stride: h, len: h, count: 1 };
        self.matmul(logits, k, head.logit_weights, hidden);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pair_from, prepared_if, scaled_down_if, xorshift};
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    use super::super::PackedI8;
    use super::super::{generic, Matrix, Scales};
    use super::*;
    use proptest::prelude::*;

    per_int8_kernel! {
        proptest! {
            /// Every kernel, packed or not, constants prepared or not: the
            /// executor's shapes (32 in, 32 hidden, 2 to 16 logits) and any.
            #[test]
            fn head_equals_generic(
                p in prop_oneof![Just(32usize), 1usize..40],
                h in prop_oneof![Just(32usize), 1usize..40],
                k in prop_oneof![Just(2usize), 1usize..20],
                scaled_down in any::<bool>(),
                small in any::<bool>(),
                packed in any::<bool>(),
                prepare in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let mut next = xorshift(seed);
                let shrink = if small { 3 } else { 0 };
                let mut bytes = |len: usize| -> Vec<i8> { (0..len).map(|_| (next() as i8) >> shrink).collect() };
                // The executor's top is after the ReLU.
                let (w1, w2, top) = (bytes(h * p), bytes(k * h), bytes(p));
                let top: Vec<i8> = top.iter().map(|&t| t.max(0)).collect();
                let mut next = xorshift(seed ^ 0x5eed);
                let b1: Vec<i32> = (0..h).map(|_| next() as i32 >> if small { 16 } else { 0 }).collect();
                let b2: Vec<i32> = (0..k).map(|_| next() as i32).collect();
                let pairs: Vec<i32> = (0..h).flat_map(|_| scaled_down_if(scaled_down, pair_from(next()))).collect();
                // The reference: the generic kernels in turn.
                let mut acc = b1.clone();
                generic::matvec_i8(&mut acc, &w1, &top);
                let mut want_hidden = vec![0i8; h];
                generic::requant_i8(&mut want_hidden, &acc, &pairs, 0, 127);
                let mut want = b2.clone();
                generic::matvec_i8(&mut want, &w2, &want_hidden);
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let packs = packed.then(|| (PackedI8::pack(&w1, h), PackedI8::pack(&w2, k)));
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let _ = packed;
                let prepared = prepared_if(prepare, &pairs);
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let matrices = match &packs {
                    Some((p1, p2)) => (Matrix { w: &w1, packed: Some(p1) }, Matrix { w: &w2, packed: Some(p2) }),
                    None => (Matrix::row_major(&w1), Matrix::row_major(&w2)),
                };
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let matrices = (Matrix::row_major(&w1), Matrix::row_major(&w2));
                let head = Head {
                    hidden_weights: matrices.0,
                    hidden_bias: &b1,
                    hidden_scales: Scales { pairs: &pairs, prepared: prepared.as_ref() },
                    logit_weights: matrices.1,
                    logit_bias: &b2,
                };
                if let Some(kernel) = kernel() {
                    let (mut hidden, mut logits, mut acc) = (vec![9i8; h], vec![9i32; k], vec![0i32; h]);
                    kernel.head(&head, &top, &mut hidden, &mut logits, &mut acc);
                    prop_assert_eq!(&hidden, &want_hidden, "{:?} hidden", kernel);
                    prop_assert_eq!(&logits, &want, "{:?} logits", kernel);
                }
            }
        }
    }
}
