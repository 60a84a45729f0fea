//! x86_64 AVX-512: what becomes of a packed product's int32 sums (the
//! epilogues of [`super::matmul_packed_avx512vnni`]'s register tiles and of
//! [`super::matmul_tiles_amx`]'s tile products): accumulated, requantized into
//! int16 and int8 outputs, gated, or ended in a residual block, each while
//! the sums are still in registers and bit for bit as the generic kernels
//! compute it. One type per kind of epilogue, so each product is compiled
//! with its own and nothing is dispatched per column.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

use super::gate_avx512vbmi::{gate32, gate_lanes, Tables};
use super::requant_avx512::{clamp, Fast, Params, PreparedScales, StreamTerm};
use crate::int8::{PRE_MAX, PRE_MIN};
use crate::kernels::ColumnMap;

/// One int16 output of [`matmul_requant`]: column `c`'s rows at
/// `out + map.offset(c)`, `clamp(requant(a) (+ add), lo, hi)`.
///
/// [`matmul_requant`]: super::matmul_packed_avx512vnni::matmul_requant
#[derive(Clone, Copy, Debug)]
pub struct Out16 {
    /// Where column 0 starts.
    pub out: *mut i16,
    /// Where the other columns start.
    pub map: ColumnMap,
    /// The rows' `(multiplier, shift)` pairs.
    pub pairs: *const i32,
    /// The same, prepared for every row, if they were.
    pub prepared: Option<*const PreparedScales>,
    /// An int16 addend of the same shape as the output (the saturated
    /// requantization plus the addend is clamped), if any.
    pub add: Option<(*const i16, ColumnMap)>,
    /// The clamp.
    pub lo: i16,
    /// The clamp.
    pub hi: i16,
}

/// One int8 output of [`matmul_requant`]: `clamp(requant(a), lo, hi)`.
///
/// [`matmul_requant`]: super::matmul_packed_avx512vnni::matmul_requant
#[derive(Clone, Copy, Debug)]
pub struct Out8 {
    /// Where column 0 starts.
    pub out: *mut i8,
    /// Where the other columns start.
    pub map: ColumnMap,
    /// The rows' `(multiplier, shift)` pairs.
    pub pairs: *const i32,
    /// The same, prepared for every row, if they were.
    pub prepared: Option<*const PreparedScales>,
    /// The clamp.
    pub lo: i8,
    /// The clamp.
    pub hi: i8,
}

/// The gated int8 output of [`matmul_requant_gate`]: column `c`'s `p`
/// gates at `out + map.offset(c)`, from its rows `c` (tanh) and `p + c`
/// (sigmoid) requantized and clamped to the gate's inputs.
///
/// [`matmul_requant_gate`]: super::matmul_packed_avx512vnni::matmul_requant_gate
#[derive(Clone, Copy, Debug)]
pub struct OutGate {
    /// Where column 0 starts.
    pub out: *mut i8,
    /// Where the other columns start.
    pub map: ColumnMap,
    /// The rows' constants, prepared (the fused gate needs every row's
    /// right shift at 33 or more, which preparing checked).
    pub prepared: *const PreparedScales,
    /// An int16 addend of every row (a lockstep batch's links), if any:
    /// added to the requantized value before the clamp.
    pub add: Option<(*const i16, ColumnMap)>,
}

/// The residual block's output of [`matmul_requant_residual`]: column `c`'s
/// rows at `out + map.offset(c)`, `clamp(requant(a) + requant(stream), −127,
/// 127)` as [`crate::kernels::generic::requant_residual_i8`] computes it.
///
/// [`matmul_requant_residual`]: super::matmul_packed_avx512vnni::matmul_requant_residual
#[derive(Clone, Copy, Debug)]
pub struct OutResidual {
    /// Where column 0 starts.
    pub out: *mut i8,
    /// Where the other columns start.
    pub map: ColumnMap,
    /// The rows' constants, prepared (every right shift 33 or more).
    pub prepared: *const PreparedScales,
    /// The residual stream (one int8 per row) and where its columns start.
    pub stream: (*const i8, ColumnMap),
    /// The stream's `(multiplier, shift)`.
    pub stream_pair: (i32, i8),
}

/// What happens to a tile's sums (the exact wrapping products): a type
/// per kind, so each product is compiled with its own, nothing dispatched.
pub(crate) trait Epilogue {
    /// Row blocks `b .. b + RB` (of a matrix of `rows` rows) of the columns
    /// of `targets`: by default each block in turn through
    /// [`Epilogue::block`].
    ///
    /// # Safety
    /// As [`Epilogue::block`], for every block.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn tile<const C: usize, const RB: usize>(
        &mut self,
        targets: &Targets<C>,
        b: usize,
        rows: usize,
        sums: &[[__m512i; C]; RB],
    ) {
        for (r, block) in sums.iter().enumerate() {
            let first = (b + r) * 16;
            let valid = (rows - first).min(16);
            let mask: __mmask16 = if valid == 16 { u16::MAX } else { (1u16 << valid) - 1 };
            // Safety: the caller's bounds.
            unsafe { self.block(targets, first, mask, block) };
        }
    }

    /// Where columns `c0 .. c0 + C` start in the epilogue's buffers.
    fn targets<const C: usize>(&self, c0: usize) -> Targets<C>;

    /// Rows `first .. first + 16` (the real ones under `mask`) of the
    /// columns of `targets`, whose sums are `sums`.
    ///
    /// # Safety
    /// AVX-512F/BW/VL; those rows of those columns in bounds of every buffer.
    unsafe fn block<const C: usize>(
        &mut self,
        targets: &Targets<C>,
        first: usize,
        mask: __mmask16,
        sums: &[__m512i; C],
    );
}

/// `out[c · stride + o] += sum`.
pub(crate) struct Accumulate {
    pub(crate) out: *mut i32,
    pub(crate) stride: usize,
}

/// `a = bias + sum`, requantized into one or two outputs.
pub(crate) struct Requant {
    pub(crate) bias: *const i32,
    pub(crate) bias_map: ColumnMap,
    pub(crate) wide: Option<Out16>,
    pub(crate) narrow: Option<Out8>,
}

/// Where a tile's columns start in each buffer of an epilogue, worked out
/// once per tile rather than once per row block.
pub(crate) struct Targets<const C: usize> {
    /// The output ([`Accumulate`]) or the bias ([`Requant`]).
    pub(crate) first: [usize; C],
    /// The int16 output, or the gated one ([`GateRequant`]).
    pub(crate) wide: [usize; C],
    /// The int16 output's addend.
    pub(crate) add: [usize; C],
    /// The int8 output.
    pub(crate) narrow: [usize; C],
}

impl Epilogue for Accumulate {
    #[inline]
    fn targets<const C: usize>(&self, c0: usize) -> Targets<C> {
        let none = [0; C];
        let first = core::array::from_fn(|c| (c0 + c) * self.stride);
        Targets { first, wide: none, add: none, narrow: none }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block<const C: usize>(
        &mut self,
        targets: &Targets<C>,
        first: usize,
        mask: __mmask16,
        sums: &[__m512i; C],
    ) {
        for (c, sum) in sums.iter().enumerate() {
            // Safety: lanes under the mask are rows of this column inside
            // `out`; masked lanes are not touched.
            unsafe {
                let dst = self.out.add(targets.first[c] + first);
                if mask == u16::MAX {
                    // Whole blocks unmasked: a later load of these sums
                    // can take them from the store buffer.
                    let old = _mm512_loadu_si512(dst.cast());
                    _mm512_storeu_si512(dst.cast(), _mm512_add_epi32(old, *sum));
                } else {
                    let old = _mm512_maskz_loadu_epi32(mask, dst);
                    _mm512_mask_storeu_epi32(dst, mask, _mm512_add_epi32(old, *sum));
                }
            }
        }
    }
}

impl Epilogue for Requant {
    #[inline]
    fn targets<const C: usize>(&self, c0: usize) -> Targets<C> {
        let at = |map: &ColumnMap| map.offsets::<C>(c0);
        let none = [0; C];
        Targets {
            first: at(&self.bias_map),
            wide: self.wide.map_or(none, |o| at(&o.map)),
            add: self.wide.and_then(|o| o.add).map_or(none, |(_, map)| at(&map)),
            narrow: self.narrow.map_or(none, |o| at(&o.map)),
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block<const C: usize>(
        &mut self,
        targets: &Targets<C>,
        first: usize,
        mask: __mmask16,
        sums: &[__m512i; C],
    ) {
        let halves = [mask as u8, (mask >> 8) as u8];
        // Safety (this block): the rows under the masks are in bounds of the
        // pairs, biases, addends and outputs.
        unsafe {
            // Each column's accumulator, `bias + sum`, once for both outputs.
            let mut acc = [_mm512_setzero_si512(); C];
            for ((a, sum), &at) in acc.iter_mut().zip(sums).zip(&targets.first) {
                *a = _mm512_add_epi32(
                    *sum,
                    _mm512_maskz_loadu_epi32(mask, self.bias.add(at + first)),
                );
            }
            if let Some(o) = self.wide {
                // The rows' constants, once for all C columns.
                if let Some(fast) = fast_rows(o.prepared, o.pairs, first, mask) {
                    let (lo, hi) = (_mm512_set1_epi32(o.lo.into()), _mm512_set1_epi32(o.hi.into()));
                    for (c, a) in acc.iter().enumerate() {
                        let mut r = fast.apply(*a);
                        if let Some((add, _)) = o.add {
                            // Within ±2^30 plus an int16: no wrap, and
                            // nothing to saturate before the addend.
                            let v = _mm256_maskz_loadu_epi16(mask, add.add(targets.add[c] + first));
                            r = _mm512_add_epi32(r, _mm512_cvtepi16_epi32(v));
                        }
                        let r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
                        let dst = o.out.add(targets.wide[c] + first);
                        _mm512_mask_cvtepi32_storeu_epi16(dst.cast(), mask, r);
                    }
                } else {
                    let params = Params::rows16(o.pairs, first, halves);
                    for (c, a) in acc.iter().enumerate() {
                        for (h, a64) in widen(*a).iter().enumerate() {
                            let row = first + 8 * h;
                            let mut r = params[h].apply(*a64);
                            if let Some((add, _)) = o.add {
                                // The scalar kernel saturates to int32, then
                                // adds, then clamps.
                                r = clamp(r, i64::from(i32::MIN), i64::from(i32::MAX));
                                let v =
                                    _mm_maskz_loadu_epi16(halves[h], add.add(targets.add[c] + row));
                                r = _mm512_add_epi64(r, _mm512_cvtepi16_epi64(v));
                            }
                            // Without an addend, clamping to [lo, hi] inside
                            // int32 is the same as saturating first.
                            let r = clamp(r, i64::from(o.lo), i64::from(o.hi));
                            let dst = o.out.add(targets.wide[c] + row);
                            _mm512_mask_cvtepi64_storeu_epi16(dst.cast(), halves[h], r);
                        }
                    }
                }
            }
            if let Some(o) = &self.narrow {
                narrow_block(o, &targets.narrow, first, mask, &acc);
            }
        }
    }
}

/// Rows `first .. first + 16` (the real ones under `mask`) of the columns
/// at `at` into the int8 output `o`: `clamp(requant(a), lo, hi)` of each
/// column's accumulators `acc`.
///
/// # Safety
/// AVX-512F/BW/VL; those rows of those columns in bounds of the output
/// and (two words each) of the pairs, the prepared constants if any live.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn narrow_block<const C: usize>(
    o: &Out8,
    at: &[usize; C],
    first: usize,
    mask: __mmask16,
    acc: &[__m512i; C],
) {
    // Safety (this function): the caller's bounds.
    unsafe {
        if let Some(fast) = fast_rows(o.prepared, o.pairs, first, mask) {
            let (lo, hi) = (_mm512_set1_epi32(o.lo.into()), _mm512_set1_epi32(o.hi.into()));
            for (c, a) in acc.iter().enumerate() {
                let r = _mm512_min_epi32(_mm512_max_epi32(fast.apply(*a), lo), hi);
                let dst = o.out.add(at[c] + first);
                _mm512_mask_cvtepi32_storeu_epi8(dst.cast(), mask, r);
            }
        } else {
            let halves = [mask as u8, (mask >> 8) as u8];
            let params = Params::rows16(o.pairs, first, halves);
            for (c, a) in acc.iter().enumerate() {
                for (h, a64) in widen(*a).iter().enumerate() {
                    let r = clamp(params[h].apply(*a64), i64::from(o.lo), i64::from(o.hi));
                    let dst = o.out.add(at[c] + first + 8 * h);
                    _mm512_mask_cvtepi64_storeu_epi8(dst.cast(), halves[h], r);
                }
            }
        }
    }
}

/// `a = bias + sum`, requantized, the residual stream's term added.
pub(crate) struct ResidualRequant {
    pub(crate) bias: *const i32,
    pub(crate) bias_map: ColumnMap,
    pub(crate) out: OutResidual,
    pub(crate) term: StreamTerm,
}

impl Epilogue for ResidualRequant {
    #[inline]
    fn targets<const C: usize>(&self, c0: usize) -> Targets<C> {
        let at = |map: &ColumnMap| map.offsets::<C>(c0);
        Targets {
            first: at(&self.bias_map),
            wide: at(&self.out.map),
            add: at(&self.out.stream.1),
            narrow: [0; C],
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block<const C: usize>(
        &mut self,
        targets: &Targets<C>,
        first: usize,
        mask: __mmask16,
        sums: &[__m512i; C],
    ) {
        // Safety (this block): the rows under the mask are in bounds of
        // the biases, the stream and the output; the prepared constants
        // cover every row.
        unsafe {
            let fast = (*self.out.prepared).block(first / 16);
            let (lo, hi) = (_mm512_set1_epi32(-127), _mm512_set1_epi32(127));
            for (c, sum) in sums.iter().enumerate() {
                let a = _mm512_maskz_loadu_epi32(mask, self.bias.add(targets.first[c] + first));
                let a = _mm512_add_epi32(*sum, a);
                let at = self.out.stream.0.add(targets.add[c] + first);
                let s = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(mask, at));
                let stream = self.term.apply(s);
                let y = _mm512_add_epi32(stream, fast.apply(a));
                let y = _mm512_min_epi32(_mm512_max_epi32(y, lo), hi);
                let dst = self.out.out.add(targets.wide[c] + first);
                _mm512_mask_cvtepi32_storeu_epi8(dst.cast(), mask, y);
            }
        }
    }
}

/// `a = bias + sum` of `2p` rows, gated into `p` int8 values per column
/// (and requantized into `narrow` if any). A tile holds the whole matrix
/// (`2p` is at most [`TILE_BLOCKS`] blocks), so a column's tanh and sigmoid
/// rows meet in one call.
///
/// [`TILE_BLOCKS`]: super::matmul_packed_avx512vnni::TILE_BLOCKS
pub(crate) struct GateRequant {
    pub(crate) bias: *const i32,
    pub(crate) bias_map: ColumnMap,
    pub(crate) gate: OutGate,
    pub(crate) narrow: Option<Out8>,
}

impl Epilogue for GateRequant {
    #[inline]
    fn targets<const C: usize>(&self, c0: usize) -> Targets<C> {
        let at = |map: &ColumnMap| map.offsets::<C>(c0);
        let none = [0; C];
        Targets {
            first: at(&self.bias_map),
            wide: at(&self.gate.map),
            add: self.gate.add.map_or(none, |(_, map)| at(&map)),
            narrow: self.narrow.map_or(none, |o| at(&o.map)),
        }
    }

    /// Not reached: [`GateRequant::tile`] takes the whole matrix at once.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl")]
    unsafe fn block<const C: usize>(
        &mut self,
        _: &Targets<C>,
        _: usize,
        _: __mmask16,
        _: &[__m512i; C],
    ) {
        unreachable!("GateRequant takes whole tiles")
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi")]
    unsafe fn tile<const C: usize, const RB: usize>(
        &mut self,
        targets: &Targets<C>,
        b: usize,
        rows: usize,
        sums: &[[__m512i; C]; RB],
    ) {
        debug_assert!(b == 0 && rows == 16 * RB && RB.is_multiple_of(2));
        let half = RB / 2;
        // Safety (this function): the caller's bounds for every row of
        // every column; `prepared` covers every row.
        unsafe {
            // Loops, not closures: see the fused step.
            let mut fast = [(*self.gate.prepared).block(0); RB];
            for (r, f) in fast.iter_mut().enumerate().skip(1) {
                *f = (*self.gate.prepared).block(r);
            }
            let tables = Tables::load();
            let (lo, hi) = (_mm512_set1_epi32(PRE_MIN), _mm512_set1_epi32(PRE_MAX));
            let gate_mask: __mmask32 = if half == 1 { 0xFFFF } else { u32::MAX };
            // Every block's accumulators, `bias + sum`, and the narrow
            // output block by block, as `Requant` does.
            let mut accs = [[_mm512_setzero_si512(); C]; RB];
            for (r, block) in accs.iter_mut().enumerate() {
                for (c, a) in block.iter_mut().enumerate() {
                    let bias = _mm512_loadu_si512(self.bias.add(targets.first[c] + 16 * r).cast());
                    *a = _mm512_add_epi32(sums[r][c], bias);
                }
                if let Some(o) = &self.narrow {
                    narrow_block(o, &targets.narrow, 16 * r, u16::MAX, block);
                }
            }
            // (Column c indexes every block's accumulators, the targets and
            // the outputs alike.)
            #[allow(clippy::needless_range_loop)]
            for c in 0..C {
                let mut pre = [_mm512_setzero_si512(); RB];
                for (r, v) in pre.iter_mut().enumerate() {
                    let mut y = fast[r].apply(accs[r][c]);
                    if let Some((add, _)) = self.gate.add {
                        // Within ±2^30 plus an int16: no wrap.
                        let at = add.add(targets.add[c] + 16 * r);
                        y = _mm512_add_epi32(
                            y,
                            _mm512_cvtepi16_epi32(_mm256_loadu_si256(at.cast())),
                        );
                    }
                    *v = _mm512_min_epi32(_mm512_max_epi32(y, lo), hi);
                }
                // Channels c (tanh) and p + c (sigmoid) meet in one int16 lane.
                let (a, b) = (gate_lanes(&pre, 0, half), gate_lanes(&pre, half, half));
                let gated = gate32(&tables, a, b);
                let dst = self.gate.out.add(targets.wide[c]);
                _mm512_mask_cvtepi16_storeu_epi8(dst.cast(), gate_mask, gated);
            }
        }
    }
}

/// The [`Fast`] constants of rows `first ..` (a multiple of 16) under
/// `mask`: prepared at load, or derived from the pairs.
///
/// # Safety
/// AVX-512F; `prepared`, if any, points at live constants of every row;
/// the pairs of the rows under the mask are readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn fast_rows(
    prepared: Option<*const PreparedScales>,
    pairs: *const i32,
    first: usize,
    mask: __mmask16,
) -> Option<Fast> {
    // Safety: the caller's.
    unsafe {
        match prepared {
            Some(p) => Some((*p).block(first / 16)),
            None => Fast::rows16(pairs, first, mask),
        }
    }
}

/// The two halves of sixteen int32 lanes as int64 lanes.
#[inline]
#[target_feature(enable = "avx512f,avx512vl")]
fn widen(a: __m512i) -> [__m512i; 2] {
    [
        _mm512_cvtepi32_epi64(_mm512_castsi512_si256(a)),
        _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(a)),
    ]
}
