//! A product and its requantization in one call
//! ([`Resolved::matmul_requant`]): the accumulators of every column become
//! int16 and int8 outputs, placed by [`ColumnMap`]s (lanes of a lockstep
//! batch, positions of a row), in registers where the kernel can.

#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
use super::{x86_64::matmul_packed_avx512vnni, PreparedScales};
use super::{Columns, Matrix, Resolved, Scales};
use crate::int8::{PRE_MAX, PRE_MIN};

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

    /// The one distance between consecutive columns `c0 .. c0 + n`, if
    /// they are evenly spaced (one lane; or all in one position; or
    /// positions one whole batch of lanes apart): the stride of an AMX
    /// tile's rows.
    #[inline]
    pub fn stride_over(&self, c0: usize, n: usize) -> Option<usize> {
        if self.lanes <= 1 {
            Some(self.step)
        } else if c0 % self.lanes + n <= self.lanes || self.step == self.lanes * self.lane_stride {
            Some(self.lane_stride)
        } else {
            None
        }
    }

    /// Where columns `c0 .. c0 + C` start: [`ColumnMap::offset`] of each,
    /// with one division for all of them where they are evenly spaced.
    #[inline]
    pub fn offsets<const C: usize>(&self, c0: usize) -> [usize; C] {
        let first = self.offset(c0);
        match self.stride_over(c0, C) {
            Some(stride) => core::array::from_fn(|c| first + c * stride),
            None => core::array::from_fn(|c| self.offset(c0 + c)),
        }
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
/// product's registers; one goes through the separate epilogues. (Two:
/// a row's edge positions are one two-column product; from four, as
/// before, they cost the rows 2%.)
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
const FUSE_FROM: usize = 2;

/// The int16 output of [`Resolved::matmul_requant`]: column `c`'s rows at
/// `out[map.offset(c)..]`, `clamp(requant(a) + add, lo, hi)` as
/// [`super::generic::requant_i16`] computes it.
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
/// hi)` as [`super::generic::requant_i8`] computes it.
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
        return self.vnni512() && m.packed.is_some() && count >= FUSE_FROM;
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
        if let (true, Some(p), true) = (self.vnni512(), m.packed, x.count >= FUSE_FROM) {
            // The unsafe kernel's bounds, all checked here (the path below
            // indexes slices, which check themselves).
            assert!(x.in_bounds(), "matmul_requant: an input vector is out of bounds");
            assert!(p.rows() == rows && p.len() == x.len, "matmul_requant: packed shape");
            let (wide, narrow) = fused_outputs(rows, x.count, (bias, bias_map), wide, narrow);
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); every column of every buffer was
            // checked above, and the pointers come from live slices.
            return unsafe {
                matmul_packed_avx512vnni::matmul_requant(
                    p,
                    x.data,
                    x.stride,
                    x.count,
                    bias.as_ptr(),
                    bias_map,
                    wide,
                    narrow,
                    self.tiles(),
                )
            };
        }
        let acc = self.biased_product(
            acc,
            (bias, bias_map),
            (m, rows),
            x,
            "matmul_requant: scratch size",
        );
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

/// One piece of every input vector of [`Resolved::matmul_requant_pieces`]:
/// vector `c`'s `len` bytes at `data[map.offset(c)..]`.
#[derive(Clone, Copy, Debug)]
pub struct Piece<'a> {
    /// The bytes the pieces lie in.
    pub data: &'a [i8],
    /// Where column `c`'s piece starts.
    pub map: ColumnMap,
    /// Bytes per column.
    pub len: usize,
}

impl Piece<'_> {
    /// True when the first `count` columns' pieces lie inside `data`.
    fn in_bounds(&self, count: usize) -> bool {
        self.map.end(count, self.len).is_some_and(|e| e <= self.data.len())
    }

    /// Column `c`'s piece.
    fn get(&self, c: usize) -> &[i8] {
        &self.data[self.map.offset(c)..][..self.len]
    }
}

impl Resolved {
    /// [`Resolved::matmul_requant`] of `count` input vectors that each lie
    /// in two pieces: vector `c` is `pieces[0].get(c)` then
    /// `pieces[1].get(c)` (a vertical window over two rows of a ring, read
    /// where it lies). Where the product requantizes in registers it reads
    /// the pieces in place; otherwise it gathers each vector into `window`
    /// (at least `count` times the vector length) first. The same bits
    /// either way.
    ///
    /// # Panics
    /// As [`Resolved::matmul_requant`], and if a piece is out of bounds or
    /// `window` too short for the gathering path.
    #[inline]
    #[allow(unsafe_code)]
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_requant_pieces(
        self,
        m: Matrix<'_>,
        (pieces, count): ([Piece<'_>; 2], usize),
        (bias, bias_map): (&[i32], ColumnMap),
        wide: Option<Wide<'_>>,
        narrow: Option<Narrow<'_>>,
        (acc, window): (&mut [i32], &mut [i8]),
    ) {
        let n = pieces[0].len + pieces[1].len;
        if n == 0 || count == 0 {
            return;
        }
        assert!(
            pieces.iter().all(|p| p.in_bounds(count)),
            "matmul_requant_pieces: a piece is out of bounds"
        );
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if let (true, Some(p), true, true) =
            (self.vnni512(), m.packed, count >= FUSE_FROM, pieces[0].len.is_multiple_of(4))
        {
            assert!(m.w.len().is_multiple_of(n), "matmul_requant_pieces: not whole rows");
            let rows = m.w.len() / n;
            assert!(p.rows() == rows && p.len() == n, "matmul_requant_pieces: packed shape");
            let (wide, narrow) = fused_outputs(rows, count, (bias, bias_map), wide, narrow);
            let raw = pieces.map(|pc| matmul_packed_avx512vnni::Piece {
                data: pc.data.as_ptr(),
                map: pc.map,
                len: pc.len,
            });
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); every piece, bias and output of
            // every column was checked above; the first piece is whole
            // groups and the lengths add up to the packed rows'.
            return unsafe {
                matmul_packed_avx512vnni::matmul_requant_pieces(
                    p,
                    &raw,
                    count,
                    bias.as_ptr(),
                    bias_map,
                    wide,
                    narrow,
                    self.tiles(),
                )
            };
        }
        let x = gather_pieces(&pieces, count, window);
        self.matmul_requant(m, x, (bias, bias_map), wide, narrow, acc);
    }
}

/// The `count` vectors of `pieces` as [`Columns`]: in place where there is
/// one piece evenly spaced, else each vector's pieces copied one after the
/// other into `window`.
///
/// # Panics
/// If `window` is shorter than `count` vectors when they are copied.
fn gather_pieces<'a>(pieces: &[Piece<'a>], count: usize, window: &'a mut [i8]) -> Columns<'a> {
    let n: usize = pieces.iter().map(|p| p.len).sum();
    if let [one] = pieces {
        if one.map.lanes <= 1 {
            return Columns { data: one.data, stride: one.map.step, len: n, count };
        }
    }
    let window = &mut window[..count.checked_mul(n).expect("gather_pieces: window")];
    for (c, v) in window.chunks_exact_mut(n).enumerate() {
        let mut at = 0;
        for piece in pieces {
            v[at..at + piece.len].copy_from_slice(piece.get(c));
            at += piece.len;
        }
    }
    Columns { data: window, stride: n, len: n, count }
}

/// The gated output of [`Resolved::matmul_requant_gate`]: column `c`'s `p`
/// gates at `out[map.offset(c)..]`, from its rows `c` and `p + c`.
#[derive(Debug)]
pub struct Gated<'a> {
    /// The output.
    pub out: &'a mut [i8],
    /// Where its columns lie.
    pub map: ColumnMap,
    /// The gate inputs' requantization.
    pub scales: Scales<'a>,
    /// An int16 addend of the gate inputs (`2p` per column, at
    /// `add[map.offset(c)..]`: a lockstep batch's links), if any.
    pub add: Option<(&'a [i16], ColumnMap)>,
}

impl Resolved {
    /// A product of `2p` rows that ends in the gate, as the vertical stack
    /// does: for every input vector `c` (the concatenation of its pieces,
    /// one or two), `a = bias + m · x_c`, its gate inputs
    /// `clamp(requant(a), PRE_MIN, PRE_MAX)` (rows `o` and `p + o` the tanh
    /// and sigmoid inputs of gate `o`) gated into `gated`, and `a`
    /// requantized into `narrow` if any. Where the kernel can (AVX-512 VNNI
    /// and VBMI, packed weights, 16 or 32 gates, constants prepared) the
    /// gate inputs never leave the registers; otherwise they go through
    /// `pre` (`count · 2p` values) and [`Resolved::gate_i8`], two pieces
    /// gathered into `window` first. The same bits either way.
    ///
    /// # Panics
    /// As [`Resolved::matmul_requant_pieces`], if `m` has an odd number of
    /// rows, or if a column of `gated` is out of bounds.
    #[inline]
    #[allow(unsafe_code)]
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_requant_gate(
        self,
        m: Matrix<'_>,
        (pieces, count): (&[Piece<'_>], usize),
        (bias, bias_map): (&[i32], ColumnMap),
        gated: Gated<'_>,
        narrow: Option<Narrow<'_>>,
        (acc, window, pre): (&mut [i32], &mut [i8], &mut [i16]),
    ) {
        assert!(
            matches!(pieces.len(), 1 | 2) && pieces.iter().all(|p| p.in_bounds(count)),
            "matmul_requant_gate: one or two pieces, in bounds"
        );
        let n: usize = pieces.iter().map(|p| p.len).sum();
        if n == 0 || count == 0 {
            return;
        }
        assert!(m.w.len().is_multiple_of(n), "matmul_requant_gate: weights are not whole rows");
        let rows = m.w.len() / n;
        assert!(rows.is_multiple_of(2), "matmul_requant_gate: an odd number of gate inputs");
        let p = rows / 2;
        assert!(
            gated.map.end(count, p).is_some_and(|e| e <= gated.out.len()),
            "matmul_requant_gate: a gate output is out of bounds"
        );
        assert!(
            gated.add.is_none_or(|(a, map)| map.end(count, rows).is_some_and(|e| e <= a.len())),
            "matmul_requant_gate: an addend is out of bounds"
        );
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if let (true, super::Gate::Permute, Some(packed), Some(prepared)) =
            (self.vnni512(), self.1, m.packed, gated.scales.prepared.filter(|s| s.rows() == rows))
        {
            if count >= FUSE_FROM && (p == 16 || p == 32) && pieces[0].len.is_multiple_of(4) {
                assert!(
                    packed.rows() == rows && packed.len() == n,
                    "matmul_requant_gate: packed shape"
                );
                assert!(gated.scales.pairs.len() == 2 * rows, "matmul_requant_gate: requant");
                let (_, narrow) = fused_outputs(rows, count, (bias, bias_map), None, narrow);
                let gate = matmul_packed_avx512vnni::OutGate {
                    out: gated.out.as_mut_ptr(),
                    map: gated.map,
                    prepared,
                    add: gated.add.map(|(a, map)| (a.as_ptr(), map)),
                };
                let raw = |pc: &Piece<'_>| matmul_packed_avx512vnni::Piece {
                    data: pc.data.as_ptr(),
                    map: pc.map,
                    len: pc.len,
                };
                let bias = (bias.as_ptr(), bias_map);
                // Safety: resolved with this kernel and gate only where
                // AVX-512 F/BW/VL/VNNI/VBMI were detected (or enabled at
                // compile time); every piece, bias, gate and narrow output
                // of every column was checked above, the rows are 32 or 64,
                // the first piece is whole groups, and `prepared` covers
                // every row.
                unsafe {
                    match pieces {
                        [one] => matmul_packed_avx512vnni::matmul_requant_gate(
                            packed,
                            &[raw(one)],
                            count,
                            bias,
                            gate,
                            narrow,
                            self.tiles(),
                        ),
                        [first, second] => matmul_packed_avx512vnni::matmul_requant_gate(
                            packed,
                            &[raw(first), raw(second)],
                            count,
                            bias,
                            gate,
                            narrow,
                            self.tiles(),
                        ),
                        _ => unreachable!(),
                    }
                }
                return;
            }
        }
        let pre = &mut pre[..count.checked_mul(rows).expect("matmul_requant_gate: scratch size")];
        let wide = Some(Wide {
            out: pre,
            map: ColumnMap::contiguous(rows),
            scales: gated.scales,
            add: gated.add,
            lo: PRE_MIN as i16,
            hi: PRE_MAX as i16,
        });
        let x = gather_pieces(pieces, count, window);
        self.matmul_requant(m, x, (bias, bias_map), wide, narrow, acc);
        for c in 0..count {
            let out = &mut gated.out[gated.map.offset(c)..][..p];
            self.gate_i8(out, &pre[c * rows..][..rows]);
        }
    }
}

/// The output of [`Resolved::matmul_requant_residual`]: column `c`'s rows at
/// `out[map.offset(c)..]`, with its residual stream at
/// `stream[stream_map.offset(c)..]`.
#[derive(Debug)]
pub struct ResidualOut<'a> {
    /// The output.
    pub out: &'a mut [i8],
    /// Where its columns lie.
    pub map: ColumnMap,
    /// The rows' requantization.
    pub scales: Scales<'a>,
    /// The residual stream (one value per row) and where its columns lie.
    pub stream: (&'a [i8], ColumnMap),
    /// The stream's `(multiplier, shift)`.
    pub stream_pair: (i32, i8),
}

impl Resolved {
    /// The residual blocks of a batch as one product: for every column `c`
    /// of `x`, `a = bias + m · x_c`, then `clamp(requant(a) +
    /// requant(stream_c), −127, 127)` into `out`, as
    /// [`Resolved::requant_residual_i8`] computes it. In the product's
    /// registers where the kernel can (AVX-512 VNNI, packed, constants
    /// prepared); otherwise through `acc` (`count · rows` words).
    ///
    /// # Panics
    /// If a shape disagrees or a column of an input, bias, stream or
    /// output is out of bounds.
    #[inline]
    #[allow(unsafe_code)]
    pub fn matmul_requant_residual(
        self,
        m: Matrix<'_>,
        x: Columns<'_>,
        (bias, bias_map): (&[i32], ColumnMap),
        out: ResidualOut<'_>,
        acc: &mut [i32],
    ) {
        if x.len == 0 || x.count == 0 {
            return;
        }
        assert!(m.w.len().is_multiple_of(x.len), "matmul_requant_residual: not whole rows");
        let rows = m.w.len() / x.len;
        let fits = |map: &ColumnMap, len: usize| map.end(x.count, rows).is_some_and(|e| e <= len);
        assert!(
            x.in_bounds()
                && fits(&bias_map, bias.len())
                && fits(&out.map, out.out.len())
                && fits(&out.stream.1, out.stream.0.len())
                && out.scales.pairs.len() == 2 * rows,
            "matmul_requant_residual: a column is out of bounds or a shape disagrees"
        );
        #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
        if let (true, Some(p), Some(prepared), true) = (
            self.vnni512(),
            m.packed,
            out.scales.prepared.filter(|s| s.rows() == rows),
            x.count >= FUSE_FROM,
        ) {
            assert!(p.rows() == rows && p.len() == x.len, "matmul_requant_residual: packed");
            let raw = matmul_packed_avx512vnni::OutResidual {
                out: out.out.as_mut_ptr(),
                map: out.map,
                prepared,
                stream: (out.stream.0.as_ptr(), out.stream.1),
                stream_pair: out.stream_pair,
            };
            // Safety: resolved, so AVX-512 F/BW/VL/VNNI were detected (or
            // enabled at compile time); every column of every buffer was
            // checked above; `prepared` covers every row.
            return unsafe {
                matmul_packed_avx512vnni::matmul_requant_residual(
                    p,
                    x.data,
                    x.stride,
                    x.count,
                    bias.as_ptr(),
                    bias_map,
                    raw,
                    self.tiles(),
                )
            };
        }
        let acc = self.biased_product(
            acc,
            (bias, bias_map),
            (m, rows),
            x,
            "matmul_requant_residual: scratch",
        );
        for (c, a) in acc.chunks_exact(rows).enumerate() {
            let dst = &mut out.out[out.map.offset(c)..][..rows];
            let stream = &out.stream.0[out.stream.1.offset(c)..][..rows];
            self.requant_residual_i8(dst, a, out.scales.pairs, stream, out.stream_pair);
        }
    }
}

/// The packed kernel's outputs for `count` columns of `rows` rows, every
/// bias, output and addend checked to lie in bounds (it reads and writes
/// through pointers).
#[cfg(all(feature = "alloc", target_arch = "x86_64"))]
fn fused_outputs(
    rows: usize,
    count: usize,
    (bias, bias_map): (&[i32], ColumnMap),
    wide: Option<Wide<'_>>,
    narrow: Option<Narrow<'_>>,
) -> (Option<matmul_packed_avx512vnni::Out16>, Option<matmul_packed_avx512vnni::Out8>) {
    use super::x86_64::matmul_packed_avx512vnni::{Out16, Out8};
    let fits = |map: &ColumnMap, len: usize| map.end(count, rows).is_some_and(|e| e <= len);
    assert!(fits(&bias_map, bias.len()), "matmul_requant: a bias is out of bounds");
    if let Some(o) = &wide {
        assert!(fits(&o.map, o.out.len()), "matmul_requant: an output is out of bounds");
        assert!(o.scales.pairs.len() == 2 * rows && o.lo <= o.hi, "matmul_requant: requant");
        assert!(o.add.is_none_or(|(a, map)| fits(&map, a.len())), "matmul_requant: add");
    }
    if let Some(o) = &narrow {
        assert!(fits(&o.map, o.out.len()), "matmul_requant: an output is out of bounds");
        assert!(o.scales.pairs.len() == 2 * rows && o.lo <= o.hi, "matmul_requant: requant");
    }
    // Prepared constants only where they cover exactly these rows.
    let prepared =
        |s: Scales<'_>| s.prepared.filter(|p| p.rows() == rows).map(|p| p as *const PreparedScales);
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
    (wide, narrow)
}

impl Resolved {
    /// The fallback of the fused products: each column's `rows`
    /// accumulators set to its bias (`bias_map`), then the product added,
    /// in the first `x.count · rows` of `acc`, which it returns.
    ///
    /// # Panics
    /// With `short` if `acc` is shorter; as [`Resolved::matmul`].
    fn biased_product<'s>(
        self,
        acc: &'s mut [i32],
        (bias, bias_map): (&[i32], ColumnMap),
        (m, rows): (Matrix<'_>, usize),
        x: Columns<'_>,
        short: &str,
    ) -> &'s mut [i32] {
        let acc = &mut acc[..x.count.checked_mul(rows).expect(short)];
        for (c, a) in acc.chunks_exact_mut(rows).enumerate() {
            a.copy_from_slice(&bias[bias_map.offset(c)..][..rows]);
        }
        self.matmul(acc, rows, m, x);
        acc
    }
}

#[cfg(test)]
mod tests {
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    use super::super::tests::with_signed;
    use super::super::tests::{pair_from, prepared_if, scaled_down_if, xorshift};
    #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
    use super::super::PackedI8;
    use super::super::{generic, PreparedScales};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Where `stride_over` gives a stride, the columns' offsets are
        /// that far apart; one lane, or columns inside one position, always
        /// have one; `offsets` are the columns' offsets.
        #[test]
        fn a_column_stride_is_the_offsets_distance(
            lanes in 1usize..40,
            lane_stride in 0usize..500,
            step in 0usize..5000,
            c0 in 0usize..100,
            n in 1usize..20,
        ) {
            let map = ColumnMap { lanes, lane_stride, step };
            let four: [usize; 4] = map.offsets(c0);
            for (c, &at) in four.iter().enumerate() {
                prop_assert_eq!(at, map.offset(c0 + c));
            }
            match map.stride_over(c0, n) {
                Some(stride) => {
                    for m in 0..n {
                        prop_assert_eq!(map.offset(c0 + m), map.offset(c0) + m * stride);
                    }
                }
                None => prop_assert!(lanes > 1 && c0 % lanes + n > lanes),
            }
        }
    }

    per_int8_kernel! {
        proptest! {
            #[test]
            fn fused_requantization_equals_product_then_requant(
                // Whole 16-row blocks often (the executor's shapes, and the only
                // ones with prepared constants), then any.
                rows in prop_oneof![Just(64usize), Just(48), 1usize..70],
                n in prop_oneof![Just(64usize), Just(96), 1usize..100],
                // Up to 57 columns: 16 and more take AMX tiles where there are.
                lanes in prop_oneof![1usize..4, Just(16), Just(17)],
                positions in prop_oneof![1usize..4, 6usize..20],
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
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let (packed, signed) = (PackedI8::pack(&w, rows), with_signed(PackedI8::pack(&w, rows)));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let matrices = [
                    Matrix::row_major(&w),
                    Matrix { w: &w, packed: Some(&packed) },
                    Matrix { w: &w, packed: Some(&signed) },
                ];
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let matrices = [Matrix::row_major(&w)];
                // Constants prepared at load, or derived in the kernel.
                let (prepared16, prepared8) = (prepared_if(prepare, &pairs16), prepared_if(prepare, &pairs8));
                fn scales<'a>(pairs: &'a [i32], prepared: &'a Option<PreparedScales>) -> Scales<'a> {
                    Scales { pairs, prepared: prepared.as_ref() }
                }
                if let Some(kernel) = kernel() {
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

        proptest! {
            /// Inputs in two pieces (a ring's two rows, lanes and positions
            /// apart as the executor lays them) give the bits of the same
            /// vectors gathered into one buffer, on every kernel and both
            /// layouts of the weights.
            #[test]
            fn inputs_in_two_pieces_equal_the_gathered_inputs(
                rows in prop_oneof![Just(64usize), 1usize..70],
                // The first piece whole groups (the kernel's condition) or not
                // (then gathered), the second any length.
                first in prop_oneof![Just(96usize), (0usize..25).prop_map(|g| 4 * g), 1usize..50],
                second in prop_oneof![Just(96usize), 0usize..50],
                lanes in 1usize..4,
                positions in 1usize..9,
                step in 1usize..40,
                prepare in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let mut next = xorshift(seed);
                let n = first + second;
                let count = lanes * positions;
                let w: Vec<i8> = (0..rows * n).map(|_| next() as i8).collect();
                // Each piece's columns `step` apart (overlapping when step is
                // shorter than the piece, as a ring's windows are), lanes apart.
                let lane_stride = positions * step + first + second + 7;
                let rings: [Vec<i8>; 2] =
                    core::array::from_fn(|_| (0..lanes * lane_stride).map(|_| next() as i8).collect());
                let map = ColumnMap { lanes, lane_stride, step };
                let pieces = [
                    Piece { data: &rings[0][3..], map, len: first },
                    Piece { data: &rings[1], map, len: second },
                ];
                let gathered: Vec<i8> = (0..count)
                    .flat_map(|c| pieces[0].get(c).iter().chain(pieces[1].get(c)).copied().collect::<Vec<_>>())
                    .collect();
                let bias_map = ColumnMap { lanes, lane_stride: rows, step: 0 };
                let bias: Vec<i32> = (0..lanes * rows).map(|_| next() as i32 >> 12).collect();
                let pairs16: Vec<i32> = (0..rows).flat_map(|_| scaled_down_if(true, pair_from(next()))).collect();
                let pairs8: Vec<i32> = (0..rows).flat_map(|_| pair_from(next())).collect();
                let (prepared16, prepared8) = (prepared_if(prepare, &pairs16), prepared_if(prepare, &pairs8));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let packed = (n > 0).then(|| PackedI8::pack(&w, rows));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let signed = (n > 0).then(|| with_signed(PackedI8::pack(&w, rows)));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let matrices = [
                    Matrix::row_major(&w),
                    Matrix { w: &w, packed: packed.as_ref() },
                    Matrix { w: &w, packed: signed.as_ref() },
                ];
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let matrices = [Matrix::row_major(&w)];
                if let Some(kernel) = kernel() {
                    for m in &matrices {
                        let run = |pieced: bool| {
                            let (mut out16, mut out8) = (vec![7i16; count * rows], vec![7i8; count * rows]);
                            let wide = Some(Wide {
                                out: &mut out16,
                                map: ColumnMap::contiguous(rows),
                                scales: Scales { pairs: &pairs16, prepared: prepared16.as_ref() },
                                add: None,
                                lo: -4000,
                                hi: 4000,
                            });
                            let narrow = Some(Narrow {
                                out: &mut out8,
                                map: ColumnMap::contiguous(rows),
                                scales: Scales { pairs: &pairs8, prepared: prepared8.as_ref() },
                                lo: -127,
                                hi: 127,
                            });
                            let mut acc = vec![0i32; count * rows];
                            let mut window = vec![0i8; count * n];
                            if pieced {
                                let scratch = (&mut acc[..], &mut window[..]);
                                kernel.matmul_requant_pieces(*m, (pieces, count), (&bias, bias_map), wide, narrow, scratch);
                            } else {
                                let x = Columns { data: &gathered, stride: n, len: n, count };
                                kernel.matmul_requant(*m, x, (&bias, bias_map), wide, narrow, &mut acc);
                            }
                            (out16, out8)
                        };
                        let packed = m.packed.is_some();
                        prop_assert_eq!(run(true), run(false), "{:?} (packed {})", kernel, packed);
                    }
                }
            }
        }

        proptest! {
            /// The gated product (one or two pieces, lanes and positions as the
            /// executor's rows) against the generic product, requantization and
            /// gate in turn, on every kernel: fused where it applies (16 or 32
            /// gates, packed, constants prepared), the separate way otherwise.
            #[test]
            fn gated_product_equals_product_requant_then_gate(
                p in prop_oneof![Just(32usize), Just(16), 1usize..40],
                two_pieces in any::<bool>(),
                first in prop_oneof![Just(96usize), (1usize..25).prop_map(|g| 4 * g), 1usize..50],
                second in prop_oneof![Just(96usize), 1usize..50],
                lanes in 1usize..4,
                positions in 1usize..8,
                with_narrow in any::<bool>(),
                with_add in any::<bool>(),
                small in any::<bool>(),
                prepare in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let mut next = xorshift(seed);
                let rows = 2 * p;
                let n = if two_pieces { first + second } else { first };
                let count = lanes * positions;
                let shrink = if small { 3 } else { 0 };
                let w: Vec<i8> = (0..rows * n).map(|_| (next() as i8) >> shrink).collect();
                let step = 7;
                let lane_stride = positions * step + n + 5;
                let rings: [Vec<i8>; 2] =
                    core::array::from_fn(|_| (0..lanes * lane_stride).map(|_| next() as i8).collect());
                let map = ColumnMap { lanes, lane_stride, step };
                let all = [
                    Piece { data: &rings[0][1..], map, len: first },
                    Piece { data: &rings[1], map, len: second },
                ];
                let pieces = if two_pieces { &all[..] } else { &all[..1] };
                let bias_map = ColumnMap { lanes, lane_stride: rows, step: 0 };
                let bias: Vec<i32> = (0..lanes * rows).map(|_| next() as i32 >> if small { 14 } else { 4 }).collect();
                let pairs: Vec<i32> = (0..rows).flat_map(|_| scaled_down_if(true, pair_from(next()))).collect();
                let pairs8: Vec<i32> = (0..rows).flat_map(|_| pair_from(next())).collect();
                // The reference.
                let out_map = ColumnMap { lanes, lane_stride: positions * p + 3, step: p };
                // Addends per lane (shared by positions), as a batch's links.
                let add_map = ColumnMap { lanes, lane_stride: rows + 1, step: 0 };
                let add: Vec<i16> = (0..lanes * (rows + 1)).map(|_| next() as i16 >> 4).collect();
                let mut want = vec![5i8; lanes * out_map.lane_stride];
                let mut want8 = vec![5i8; count * rows];
                for c in 0..count {
                    let x: Vec<i8> = pieces.iter().flat_map(|pc| pc.get(c).to_vec()).collect();
                    let mut a = bias[bias_map.offset(c)..][..rows].to_vec();
                    generic::matvec_i8(&mut a, &w, &x);
                    let mut pre = vec![0i16; rows];
                    let addend = with_add.then(|| &add[add_map.offset(c)..][..rows]);
                    generic::requant_i16(&mut pre, &a, &pairs, addend, PRE_MIN as i16, PRE_MAX as i16);
                    crate::int8::gate_i8_slice(&mut want[out_map.offset(c)..][..p], &pre);
                    if with_narrow {
                        generic::requant_i8(&mut want8[c * rows..][..rows], &a, &pairs8, -127, 127);
                    }
                }
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let (packed, signed) = (PackedI8::pack(&w, rows), with_signed(PackedI8::pack(&w, rows)));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let matrices = [
                    Matrix::row_major(&w),
                    Matrix { w: &w, packed: Some(&packed) },
                    Matrix { w: &w, packed: Some(&signed) },
                ];
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let matrices = [Matrix::row_major(&w)];
                let (prepared, prepared8) = (prepared_if(prepare, &pairs), prepared_if(prepare, &pairs8));
                if let Some(kernel) = kernel() {
                    for m in &matrices {
                        let (mut got, mut got8) = (vec![5i8; want.len()], vec![5i8; want8.len()]);
                        let gated = Gated {
                            out: &mut got,
                            map: out_map,
                            scales: Scales { pairs: &pairs, prepared: prepared.as_ref() },
                            add: with_add.then_some((&add[..], add_map)),
                        };
                        let narrow = with_narrow.then_some(Narrow {
                            out: &mut got8,
                            map: ColumnMap::contiguous(rows),
                            scales: Scales { pairs: &pairs8, prepared: prepared8.as_ref() },
                            lo: -127,
                            hi: 127,
                        });
                        let (mut acc, mut window, mut pre) =
                            (vec![0i32; count * rows], vec![0i8; count * n], vec![0i16; count * rows]);
                        let scratch = (&mut acc[..], &mut window[..], &mut pre[..]);
                        kernel.matmul_requant_gate(*m, (pieces, count), (&bias, bias_map), gated, narrow, scratch);
                        let packed = m.packed.is_some();
                        prop_assert_eq!(&got, &want, "{:?} (packed {}) gates", kernel, packed);
                        prop_assert_eq!(&got8, &want8, "{:?} (packed {}) narrow", kernel, packed);
                    }
                }
            }
        }

        proptest! {
            /// A batch's residual blocks as one product against the generic
            /// product and residual epilogue, on every kernel, packed or not,
            /// constants prepared or not.
            #[test]
            fn residual_product_equals_product_then_residual(
                rows in prop_oneof![Just(32usize), Just(16), 1usize..40],
                n in prop_oneof![Just(32usize), 1usize..50],
                lanes in prop_oneof![1usize..12, 16usize..40],
                small in any::<bool>(),
                prepare in any::<bool>(),
                seed in any::<u64>(),
            ) {
                let mut next = xorshift(seed);
                let shrink = if small { 3 } else { 0 };
                let w: Vec<i8> = (0..rows * n).map(|_| (next() as i8) >> shrink).collect();
                let x: Vec<i8> = (0..lanes * n).map(|_| next() as i8).collect();
                let bias: Vec<i32> = (0..rows).map(|_| next() as i32 >> if small { 14 } else { 2 }).collect();
                let pairs: Vec<i32> = (0..rows).flat_map(|_| scaled_down_if(true, pair_from(next()))).collect();
                // Streams lanes apart, as windows in each lane's state.
                let stream_map = ColumnMap::contiguous(rows + 9);
                let stream: Vec<i8> = (0..lanes * (rows + 9)).map(|_| next() as i8).collect();
                let stream_pair = (next() as i32 | 1 << 30, (next() % 8) as i8 - 4);
                let out_map = ColumnMap::contiguous(rows + 1);
                let mut want = vec![3i8; lanes * (rows + 1)];
                for c in 0..lanes {
                    let mut a = bias.clone();
                    generic::matvec_i8(&mut a, &w, &x[c * n..][..n]);
                    let s = &stream[stream_map.offset(c)..][..rows];
                    generic::requant_residual_i8(&mut want[out_map.offset(c)..][..rows], &a, &pairs, s, stream_pair);
                }
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let (packed, signed) = (PackedI8::pack(&w, rows), with_signed(PackedI8::pack(&w, rows)));
                #[cfg(all(feature = "alloc", target_arch = "x86_64"))]
                let matrices = [
                    Matrix::row_major(&w),
                    Matrix { w: &w, packed: Some(&packed) },
                    Matrix { w: &w, packed: Some(&signed) },
                ];
                #[cfg(not(all(feature = "alloc", target_arch = "x86_64")))]
                let matrices = [Matrix::row_major(&w)];
                let prepared = prepared_if(prepare, &pairs);
                if let Some(kernel) = kernel() {
                    for m in &matrices {
                        let mut got = vec![3i8; want.len()];
                        let out = ResidualOut {
                            out: &mut got,
                            map: out_map,
                            scales: Scales { pairs: &pairs, prepared: prepared.as_ref() },
                            stream: (&stream, stream_map),
                            stream_pair,
                        };
                        let cols = Columns { data: &x, stride: n, len: n, count: lanes };
                        let mut acc = vec![0i32; lanes * rows];
                        kernel.matmul_requant_residual(*m, cols, (&bias, ColumnMap::contiguous(0)), out, &mut acc);
                        prop_assert_eq!(&got, &want, "{:?} (packed {})", kernel, m.packed.is_some());
                    }
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
