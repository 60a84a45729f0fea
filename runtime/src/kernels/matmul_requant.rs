//! A product and its requantization in one call
//! ([`Resolved::matmul_requant`]): the accumulators of every column become
//! int16 and int8 outputs, placed by [`ColumnMap`]s (lanes of a lockstep
//! batch, positions of a row), in registers where the kernel can.

#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
use super::{avx512vnni_packed_i8, Int8Kernel, PreparedScales};
use super::{Columns, Matrix, Resolved, Scales};

/// Where column `c` of a product's inputs or outputs lies in a buffer:
/// at `(c % lanes) · lane_stride + (c / lanes) · step`. Columns run over
/// the lanes of a lockstep batch first, then over positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnMap {
    /// Number of lanes (at least one).
    pub lanes: usize,
    /// Distance between lanes.
    pub lane_stride: usize,
    /// Distance between positions.
    pub step: usize,
}

impl ColumnMap {
    /// One lane, columns `step` apart.
    pub const fn contiguous(step: usize) -> ColumnMap {
        ColumnMap { lanes: 1, lane_stride: 0, step }
    }

    /// Where column `c` starts.
    #[inline]
    pub fn offset(&self, c: usize) -> usize {
        if self.lanes <= 1 {
            // One image: no division on the hot path.
            return c * self.step;
        }
        (c % self.lanes) * self.lane_stride + (c / self.lanes) * self.step
    }

    /// One past the last element of the first `count` columns of `len`
    /// elements each, or `None` on overflow.
    pub fn end(&self, count: usize, len: usize) -> Option<usize> {
        if count == 0 {
            return Some(0);
        }
        if self.lanes <= 1 {
            return (count - 1).checked_mul(self.step)?.checked_add(len);
        }
        let lanes = self.lanes;
        let offset = |c: usize| {
            (c % lanes)
                .checked_mul(self.lane_stride)?
                .checked_add((c / lanes).checked_mul(self.step)?)
        };
        // The last column, and the last lane of the position before it,
        // are the two candidates for the furthest start.
        let last = offset(count - 1)?;
        let before = match ((count - 1) / lanes * lanes).checked_sub(1) {
            Some(c) => offset(c)?,
            None => 0,
        };
        last.max(before).checked_add(len)
    }
}

/// Columns from which [`Resolved::matmul_requant`] requantizes in the
/// product's registers; fewer go through the separate epilogues.
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
const FUSE_FROM: usize = 4;

/// The int16 output of [`Resolved::matmul_requant`]: column `c`'s rows at
/// `out[map.offset(c)..]`, `clamp(requant(a) + add, lo, hi)` as
/// [`generic::requant_i16`] computes it.
#[derive(Debug)]
pub struct Wide<'a> {
    /// The output.
    pub out: &'a mut [i16],
    /// Where its columns lie.
    pub map: ColumnMap,
    /// The rows' requantization.
    pub scales: Scales<'a>,
    /// The addend and where its columns lie, if any.
    pub add: Option<(&'a [i16], ColumnMap)>,
    /// The clamp's lower bound.
    pub lo: i16,
    /// The clamp's upper bound.
    pub hi: i16,
}

/// The int8 output of [`Resolved::matmul_requant`]: `clamp(requant(a), lo,
/// hi)` as [`generic::requant_i8`] computes it.
#[derive(Debug)]
pub struct Narrow<'a> {
    /// The output.
    pub out: &'a mut [i8],
    /// Where its columns lie.
    pub map: ColumnMap,
    /// The rows' requantization.
    pub scales: Scales<'a>,
    /// The clamp's lower bound.
    pub lo: i8,
    /// The clamp's upper bound.
    pub hi: i8,
}

impl Resolved {
    /// Whether [`Resolved::matmul_requant`] requantizes `count` columns of
    /// `m` in the product's registers; otherwise it stores accumulators and
    /// runs the separate epilogues (always, on MCUs and aarch64).
    #[inline]
    pub fn fuses_requant(self, m: Matrix<'_>, count: usize) -> bool {
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        return self.0 == Int8Kernel::Avx512Vnni && m.packed.is_some() && count >= FUSE_FROM;
        #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
        {
            let _ = (m, count);
            false
        }
    }

    /// A product and its requantization: for every column `c` of `x`, the
    /// accumulator `a = bias[bias_map.offset(c)..][..rows] + m · x_c`
    /// (wrapping int32), requantized into `wide` and `narrow`. The
    /// AVX-512 VNNI kernel does it in registers from the packed weights;
    /// the others compute the accumulators in `acc` (at least
    /// `x.count · rows` words) and requantize them with
    /// [`Resolved::requant_i16`] and [`Resolved::requant_i8`]. The same
    /// bits either way.
    ///
    /// # Panics
    /// If a shape disagrees or a column of an input or output is out of
    /// bounds, or a clamp has `lo > hi` (the separate epilogues' checks).
    #[inline]
    #[allow(unsafe_code)]
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_requant(
        self,
        m: Matrix<'_>,
        x: Columns<'_>,
        (bias, bias_map): (&[i32], ColumnMap),
        mut wide: Option<Wide<'_>>,
        mut narrow: Option<Narrow<'_>>,
        acc: &mut [i32],
    ) {
        if x.len == 0 || x.count == 0 {
            return;
        }
        assert!(m.w.len().is_multiple_of(x.len), "matmul_requant: weights are not whole rows");
        let rows = m.w.len() / x.len;
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if let (Int8Kernel::Avx512Vnni, Some(p), true) = (self.0, m.packed, x.count >= FUSE_FROM) {
            // The unsafe kernel's bounds, all checked here (the path below
            // indexes slices, which check themselves).
            let fits =
                |map: &ColumnMap, len: usize| map.end(x.count, rows).is_some_and(|e| e <= len);
            assert!(x.in_bounds(), "matmul_requant: an input vector is out of bounds");
            assert!(fits(&bias_map, bias.len()), "matmul_requant: a bias is out of bounds");
            if let Some(o) = &wide {
                assert!(fits(&o.map, o.out.len()), "matmul_requant: an output is out of bounds");
                assert!(
                    o.scales.pairs.len() == 2 * rows && o.lo <= o.hi,
                    "matmul_requant: requant"
                );
                assert!(o.add.is_none_or(|(a, map)| fits(&map, a.len())), "matmul_requant: add");
            }
            if let Some(o) = &narrow {
                assert!(fits(&o.map, o.out.len()), "matmul_requant: an output is out of bounds");
                assert!(
                    o.scales.pairs.len() == 2 * rows && o.lo <= o.hi,
                    "matmul_requant: requant"
                );
            }
            assert!(p.rows() == rows && p.len() == x.len, "matmul_requant: packed shape");
            use avx512vnni_packed_i8::{Out16, Out8};
            // Prepared constants only where they cover exactly these rows.
            let prepared = |s: Scales<'_>| {
                s.prepared.filter(|p| p.rows() == rows).map(|p| p as *const PreparedScales)
            };
            let wide = wide.map(|o| Out16 {
                out: o.out.as_mut_ptr(),
                map: o.map,
                pairs: o.scales.pairs.as_ptr(),
                prepared: prepared(o.scales),
                add: o.add.map(|(a, map)| (a.as_ptr(), map)),
                lo: o.lo,
                hi: o.hi,
            });
            let narrow = narrow.map(|o| Out8 {
                out: o.out.as_mut_ptr(),
                map: o.map,
                pairs: o.scales.pairs.as_ptr(),
                prepared: prepared(o.scales),
                lo: o.lo,
                hi: o.hi,
            });
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); every column of every buffer was
            // checked above, and the pointers come from live slices.
            return unsafe {
                avx512vnni_packed_i8::matmul_requant(
                    p,
                    x.data,
                    x.stride,
                    x.count,
                    bias.as_ptr(),
                    bias_map,
                    wide,
                    narrow,
                )
            };
        }
        let acc = &mut acc[..x.count.checked_mul(rows).expect("matmul_requant: scratch size")];
        for (c, a) in acc.chunks_exact_mut(rows).enumerate() {
            a.copy_from_slice(&bias[bias_map.offset(c)..][..rows]);
        }
        self.matmul(acc, rows, m, x);
        for (c, a) in acc.chunks_exact(rows).enumerate() {
            if let Some(o) = wide.as_mut() {
                let add = o.add.map(|(v, map)| &v[map.offset(c)..][..rows]);
                let out = &mut o.out[o.map.offset(c)..][..rows];
                self.requant_i16(out, a, o.scales.pairs, add, o.lo, o.hi);
            }
            if let Some(o) = narrow.as_mut() {
                let out = &mut o.out[o.map.offset(c)..][..rows];
                self.requant_i8(out, a, o.scales.pairs, o.lo, o.hi);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{pair_from, prepared_if, scaled_down_if, xorshift};
    #[cfg(target_arch = "x86_64")]
    use super::super::PackedI8;
    use super::super::{generic, Int8Kernel, PreparedScales};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_fused_requantization_equals_product_then_requant(
            // Whole 16-row blocks often (the executor's shapes, and the only
            // ones with prepared constants), then any.
            rows in prop_oneof![Just(64usize), Just(48), 1usize..70],
            n in 1usize..100,
            lanes in 1usize..4,
            positions in 1usize..4,
            with_add in any::<bool>(),
            with_narrow in any::<bool>(),
            small in any::<bool>(),
            scaled_down in any::<bool>(),
            prepare in any::<bool>(),
            (lo16, hi16) in (any::<i16>(), any::<i16>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
            (lo8, hi8) in (any::<i8>(), any::<i8>()).prop_map(|(a, b)| (a.min(b), a.max(b))),
            seed in any::<u64>(),
        ) {
            let mut next = xorshift(seed);
            let count = lanes * positions;
            let w: Vec<i8> = (0..rows * n).map(|_| next() as i8).collect();
            let x: Vec<i8> = (0..count * n).map(|_| next() as i8).collect();
            // Biases per lane (shared by positions), as the executor's.
            let bias_map = ColumnMap { lanes, lane_stride: rows + 3, step: 0 };
            let bias: Vec<i32> = (0..lanes * (rows + 3))
                .map(|_| if small { next() as i32 >> 12 } else { next() as i32 })
                .collect();
            // Scales below 1/4 in every row too, as trained models have: the
            // epilogue's int32 path.
            let pair = |s| scaled_down_if(scaled_down, pair_from(s));
            let pairs16: Vec<i32> = (0..rows).flat_map(|_| pair(next())).collect();
            let pairs8: Vec<i32> = (0..rows).flat_map(|_| pair(next())).collect();
            // Outputs lane-major with a gap, as the links are.
            let out_map = ColumnMap { lanes, lane_stride: positions * rows + 5, step: rows };
            let add_map = ColumnMap { lanes, lane_stride: rows + 1, step: 0 };
            let add: Vec<i16> = (0..lanes * (rows + 1)).map(|_| next() as i16).collect();
            let narrow_map = ColumnMap::contiguous(rows + 2);
            let cols = Columns { data: &x, stride: n, len: n, count };
            // The reference: the generic product, then the generic epilogues.
            let mut want16 = vec![7i16; lanes * out_map.lane_stride];
            let mut want8 = vec![7i8; count * (rows + 2)];
            for c in 0..count {
                let mut a = bias[bias_map.offset(c)..][..rows].to_vec();
                generic::matvec_i8(&mut a, &w, &x[c * n..][..n]);
                let addend = with_add.then(|| &add[add_map.offset(c)..][..rows]);
                generic::requant_i16(&mut want16[out_map.offset(c)..][..rows], &a, &pairs16, addend, lo16, hi16);
                if with_narrow {
                    generic::requant_i8(&mut want8[narrow_map.offset(c)..][..rows], &a, &pairs8, lo8, hi8);
                }
            }
            #[cfg(target_arch = "x86_64")]
            let packed = PackedI8::pack(&w, rows);
            #[cfg(target_arch = "x86_64")]
            let matrices = [Matrix::row_major(&w), Matrix { w: &w, packed: Some(&packed) }];
            #[cfg(not(target_arch = "x86_64"))]
            let matrices = [Matrix::row_major(&w)];
            // Constants prepared at load, or derived in the kernel.
            let (prepared16, prepared8) = (prepared_if(prepare, &pairs16), prepared_if(prepare, &pairs8));
            fn scales<'a>(pairs: &'a [i32], prepared: &'a Option<PreparedScales>) -> Scales<'a> {
                Scales { pairs, prepared: prepared.as_ref() }
            }
            for kernel in Int8Kernel::available().filter_map(Int8Kernel::resolve) {
                for m in &matrices {
                    let (mut got16, mut got8) = (vec![7i16; want16.len()], vec![7i8; want8.len()]);
                    let mut acc = vec![0i32; count * rows];
                    let wide = Wide {
                        out: &mut got16,
                        map: out_map,
                        scales: scales(&pairs16, &prepared16),
                        add: with_add.then_some((&add[..], add_map)),
                        lo: lo16,
                        hi: hi16,
                    };
                    let narrow = with_narrow.then_some(Narrow {
                        out: &mut got8,
                        map: narrow_map,
                        scales: scales(&pairs8, &prepared8),
                        lo: lo8,
                        hi: hi8,
                    });
                    kernel.matmul_requant(*m, cols, (&bias, bias_map), Some(wide), narrow, &mut acc);
                    let packed = m.packed.is_some();
                    prop_assert_eq!(&got16, &want16, "{:?} (packed {}) int16", kernel, packed);
                    prop_assert_eq!(&got8, &want8, "{:?} (packed {}) int8", kernel, packed);
                }
            }
        }
    }

    #[test]
    fn column_maps_bound_their_furthest_column() {
        let map = ColumnMap { lanes: 3, lane_stride: 100, step: 10 };
        // Columns 0..4: lanes 0, 1, 2 of position 0, lane 0 of position 1.
        assert_eq!(map.offset(3), 10);
        assert_eq!(map.end(4, 5), Some(205));
        assert_eq!(map.end(6, 5), Some(215));
        assert_eq!(map.end(0, 5), Some(0));
        assert_eq!(ColumnMap::contiguous(8).end(3, 8), Some(24));
        assert_eq!(ColumnMap { lanes: 2, lane_stride: usize::MAX, step: 1 }.end(2, 1), None);
    }
}
