//! One image's horizontal step of a gated layer at one pixel
//! ([`Resolved::gated_step`]): the left kernel's product, its
//! requantization with the vertical link, the gate and (after the first
//! layer) the residual block, as one call. This chain of dependent steps
//! is most of a pixel's latency, so where the kernel can, it keeps every
//! intermediate in registers.

#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
use super::{x86_64::gated_step_avx512vnni, Gate};
use super::{Columns, GatedStep, Resolved, StepScratch};

impl Resolved {
    /// One gated step into `out` (`p` values): `gate(clamp(requant(bias +
    /// weights · input) + links))`, then the residual block if any. The
    /// same bits as [`Resolved::matmul`], [`Resolved::requant_gate_i8`],
    /// [`Resolved::matmul`] and [`Resolved::requant_residual_i8`] one after
    /// the other, which is what kernels without a fused step run.
    ///
    /// # Panics
    /// If a shape disagrees with `p = out.len()` or the scratch is short.
    #[allow(unsafe_code)]
    pub fn gated_step(self, step: &GatedStep<'_>, out: &mut [i8], scratch: StepScratch<'_>) {
        let (p, n) = (out.len(), step.input.len());
        let p2 = 2 * p;
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if self.vnni512() && self.1 == Gate::Permute {
            // The fused step reads through pointers: every shape first. (The
            // separate kernels below check their own.)
            assert!(
                step.weights.w.len() == p2 * n
                    && step.bias.len() == p2
                    && step.scales.pairs.len() == 2 * p2
                    && step.links.len() == p2,
                "gated_step shapes"
            );
            if let Some(r) = &step.residual {
                assert!(
                    r.weights.w.len() == p * p
                        && r.bias.len() == p
                        && r.scales.pairs.len() == p2
                        && r.stream.len() == p,
                    "gated_step residual shapes"
                );
            }
            // Safety: resolved with this kernel and gate only where AVX-512
            // F/BW/VL/VNNI/VBMI were detected or enabled at compile time;
            // shapes checked above (the fused step checks the packed ones).
            if unsafe { gated_step_avx512vnni::gated_step(step, out) } {
                return;
            }
        }
        let StepScratch { acc, pre, gated } = scratch;
        let acc = &mut acc[..p2];
        acc.copy_from_slice(step.bias);
        let input = Columns { data: step.input, stride: n, len: n, count: 1 };
        self.matmul(acc, p2, step.weights, input);
        let Some(r) = step.residual else {
            return self.requant_gate_i8(out, acc, step.scales.pairs, step.links, &mut pre[..p2]);
        };
        let gated = &mut gated[..p];
        self.requant_gate_i8(gated, acc, step.scales.pairs, step.links, &mut pre[..p2]);
        let acc = &mut acc[..p];
        acc.copy_from_slice(r.bias);
        self.matmul(acc, p, r.weights, Columns { data: gated, stride: p, len: p, count: 1 });
        self.requant_residual_i8(out, acc, r.scales.pairs, r.stream, r.stream_pair);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pair_from, prepared_if, xorshift};
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    use super::super::PackedI8;
    use super::super::{generic, Matrix, Residual, Scales};
    use super::*;
    use crate::int8::gate_i8_slice;
    use crate::int8::{PRE_MAX, PRE_MIN};
    use proptest::prelude::*;

    /// The step from the generic kernels alone.
    fn reference(step: &GatedStep<'_>, p: usize) -> Vec<i8> {
        let mut acc = step.bias.to_vec();
        generic::matvec_i8(&mut acc, step.weights.w, step.input);
        let mut pre = vec![0i16; 2 * p];
        let (lo, hi) = (PRE_MIN as i16, PRE_MAX as i16);
        generic::requant_i16(&mut pre, &acc, step.scales.pairs, Some(step.links), lo, hi);
        let mut gated = vec![0i8; p];
        gate_i8_slice(&mut gated, &pre);
        let Some(r) = step.residual else { return gated };
        let mut acc = r.bias.to_vec();
        generic::matvec_i8(&mut acc, r.weights.w, &gated);
        let mut out = vec![0i8; p];
        generic::requant_residual_i8(&mut out, &acc, r.scales.pairs, r.stream, r.stream_pair);
        out
    }

    per_int8_kernel! {
        proptest! {
            #[test]
            fn gated_step_equals_generic(
                p in prop_oneof![Just(16usize), Just(32), 1usize..40],
                n_kind in 0usize..3,
                any_n in 0usize..80,
                residual in any::<bool>(),
                small in any::<bool>(),
                packed in any::<bool>(),
                prepare in any::<bool>(),
                seed in any::<u64>(),
            ) {
                // The executor's shapes (two positions of p channels; a few
                // pixels of the first layer), then any.
                let n = [2 * p, 1 + any_n % 4, any_n][n_kind];
                // `small`: a trained model's ranges (right shifts of 33 to 38,
                // small weights), where every value lands inside the clamps and
                // the gate's slopes; otherwise anything at all.
                let mut next = xorshift(seed);
                let shrink = if small { 3 } else { 0 };
                let mut bytes = |len: usize| -> Vec<i8> { (0..len).map(|_| (next() as i8) >> shrink).collect() };
                let (hw, input, ow, stream) = (bytes(2 * p * n), bytes(n), bytes(p * p), bytes(p << shrink));
                let stream = &stream[..p];
                let mut next = xorshift(seed ^ 0x5eed);
                let bias: Vec<i32> = (0..3 * p)
                    .map(|_| if small { (next() as i32) >> 20 } else { (next() as i32) >> (next() % 24) })
                    .collect();
                let links: Vec<i16> = (0..2 * p)
                    .map(|_| if small { (next() as i16) >> 7 } else { (next() as i16) >> (next() % 8) })
                    .collect();
                let mut pair = || {
                    let [m, shift] = pair_from(next());
                    if small { [m | 1 << 30, -2 - shift.rem_euclid(6)] } else { [m, shift] }
                };
                let pairs: Vec<i32> = (0..3 * p).flat_map(|_| pair()).collect();
                let stream_pair = pair();
                // (A packed matrix has at least one input.)
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let packs = (packed && n > 0).then(|| (PackedI8::pack(&hw, 2 * p), PackedI8::pack(&ow, p)));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let (hm, om) = match &packs {
                    Some((hp, op)) => (Matrix { w: &hw, packed: Some(hp) }, Matrix { w: &ow, packed: Some(op) }),
                    None => (Matrix::row_major(&hw), Matrix::row_major(&ow)),
                };
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let (hm, om) = {
                    let _ = packed;
                    (Matrix::row_major(&hw), Matrix::row_major(&ow))
                };
                // Constants prepared at load, or derived in the kernel.
                let prepared = (prepared_if(prepare, &pairs[..4 * p]), prepared_if(prepare, &pairs[4 * p..]));
                let step = GatedStep {
                    weights: hm,
                    input: &input,
                    bias: &bias[..2 * p],
                    scales: Scales { pairs: &pairs[..4 * p], prepared: prepared.0.as_ref() },
                    links: &links,
                    residual: residual.then(|| Residual {
                        weights: om,
                        bias: &bias[2 * p..],
                        scales: Scales { pairs: &pairs[4 * p..], prepared: prepared.1.as_ref() },
                        stream,
                        stream_pair: (stream_pair[0], stream_pair[1] as i8),
                    }),
                };
                let want = reference(&step, p);
                if let Some(kernel) = kernel() {
                    let (mut acc, mut pre, mut gated) = (vec![0; 2 * p], vec![0; 2 * p], vec![0; p]);
                    let mut out = vec![0i8; p + 3];
                    let scratch = StepScratch { acc: &mut acc, pre: &mut pre, gated: &mut gated };
                    kernel.gated_step(&step, &mut out[..p], scratch);
                    prop_assert_eq!(&out[..p], &want[..], "{:?}, p = {}, n = {}", kernel, p, n);
                    prop_assert_eq!(&out[p..], &[0i8; 3][..], "{:?} wrote past its output", kernel);
                }
            }
        }
    }
}
