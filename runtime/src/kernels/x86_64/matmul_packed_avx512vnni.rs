//! x86_64 AVX-512 VNNI int8 matrix products over weights packed in the
//! order the kernel reads them; per input, bit-identical to
//! [`crate::kernels::generic::matvec_i8`].
//!
//! The row-major kernels ([`super::matvec_i8_avx512vnni`]) hold one row per
//! accumulator and end every sixteen rows with a 15-step horizontal
//! reduction. Here an accumulator holds sixteen *rows* in its lanes: the
//! weights of rows `16b .. 16b + 16` and inputs `4g .. 4g + 4` are one
//! 64-byte block (byte `4r + i` is row `16b + r`, input `4g + i`), and one
//! `vpdpbusd` with the input's four bytes broadcast to every lane adds four
//! products to sixteen rows. Nothing is reduced; the sums leave the
//! register in row order.
//!
//! A register tile of up to four blocks (64 rows) by six inputs shares each
//! weight load among six inputs and each broadcast among 64 rows, so a
//! batch of inputs (a row's positions, a lockstep batch) runs near the
//! core's `vpdpbusd` throughput. One input alone has too few independent
//! accumulators to hide `vpdpbusd`'s latency, so its groups are split over
//! three accumulator sets.
//!
//! Arithmetic: weights are stored as unsigned `w + 128` (sign bit flipped),
//! the input is the signed operand, so a sum is `w · x + 128 · Σx`; the
//! correction depends on the input only and is subtracted once per input.
//! Every step wraps modulo 2^32 (`vpdpbusd`'s four products fit in int32
//! before they are added), as the scalar kernel does. Rows past the last
//! are padded with `w = 0` and never stored; inputs past the last whole
//! group are copied into a zeroed word, so no byte outside `x` is read.
#![allow(unsafe_code)]

use alloc::vec::Vec;
use core::arch::x86_64::*;

use super::matmul_epilogue_avx512::{
    Accumulate, Epilogue, GateRequant, Requant, ResidualRequant, Targets,
};
pub use super::matmul_epilogue_avx512::{Out16, Out8, OutGate, OutResidual};
use super::matmul_tiles_amx;
use super::matvec_i8_avxvnni::bias_correction;
use super::requant_avx512::StreamTerm;
use crate::kernels::ColumnMap;

/// One 64-byte block of packed weights: 16 rows by 4 inputs.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Block([u8; 64]);

/// Most inputs one register tile holds.
const TILE_COLS: usize = 6;
/// Most row blocks one register tile holds.
pub(crate) const TILE_BLOCKS: usize = 4;

/// An int8 weight matrix packed for [`matmul`]: `rows` rows of `len`
/// inputs, in 16-row by 4-input blocks, block-row major.
#[derive(Clone)]
pub struct PackedI8 {
    rows: usize,
    len: usize,
    groups: usize,
    blocks: Vec<Block>,
    /// The same blocks as signed bytes (`w` itself), where AMX tiles can
    /// run the products ([`PackedI8::add_signed`]): `tdpbssd` then gives
    /// `w · x`, and each column's `128 · Σx` correction is neither computed
    /// nor subtracted (a row's gate product 0.84×, its link product 0.81×
    /// in `benches/peak.rs`, `row_epilogues`). Empty elsewhere.
    signed: Vec<Block>,
}

impl core::fmt::Debug for PackedI8 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PackedI8").field("rows", &self.rows).field("len", &self.len).finish()
    }
}

impl PackedI8 {
    /// Packs the row-major `rows × (w.len() / rows)` matrix `w`.
    ///
    /// # Panics
    /// If `rows` is 0 or does not divide `w.len()`.
    pub fn pack(w: &[i8], rows: usize) -> PackedI8 {
        assert!(rows > 0 && w.len().is_multiple_of(rows), "PackedI8::pack: not whole rows");
        let len = w.len() / rows;
        let groups = len.div_ceil(4);
        let row_blocks = rows.div_ceil(16);
        // Padding holds `w = 0`, stored as 0 + 128.
        let mut blocks = alloc::vec![Block([0x80; 64]); row_blocks * groups];
        for (o, row) in w.chunks_exact(len).enumerate() {
            for (k, &v) in row.iter().enumerate() {
                let block = &mut blocks[(o / 16) * groups + k / 4];
                block.0[4 * (o % 16) + k % 4] = (v as u8) ^ 0x80;
            }
        }
        PackedI8 { rows, len, groups, blocks, signed: Vec::new() }
    }

    /// Adds the signed copy of the blocks that AMX tiles read, where they
    /// are usable. Apart from [`PackedI8::pack`] so that a model's copies
    /// can be made after all its matrices: allocated beside each matrix,
    /// they spread the ones a pixel reads (which are not copied) over
    /// twice the memory, and pixels were 2–4% slower.
    pub fn add_signed(&mut self) {
        if matmul_tiles_amx::available() && self.signed.is_empty() {
            self.signed = self.blocks.iter().map(|b| Block(b.0.map(|u| u ^ 0x80))).collect();
        }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Length of each row (and of each input).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for rows of no inputs.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first block and the number of 4-input groups per row block:
    /// block `(r, g)` is at `first + r · groups + g`.
    pub(crate) fn blocks(&self) -> (*const Block, usize) {
        (self.blocks.as_ptr(), self.groups)
    }
}

/// `out[c · out_stride + o] += w[o] · x[c · x_stride ..][..len]` (wrapping
/// int32) for every row `o` of `p` and column `c < cols`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW, AVX-512VL and AVX-512 VNNI; for every
/// `c < cols`, `x[c · x_stride ..][..p.len()]` and
/// `out[c · out_stride ..][..p.rows()]` must be in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub unsafe fn matmul(
    out: &mut [i32],
    out_stride: usize,
    p: &PackedI8,
    x: &[i8],
    x_stride: usize,
    cols: usize,
    tiles: bool,
) {
    let mut epilogue = Accumulate { out: out.as_mut_ptr(), stride: out_stride };
    // Safety: the caller's features and bounds.
    unsafe { product(p, &Piece::whole(x, x_stride, p.len), cols, &mut epilogue, tiles) }
}

/// The product with its epilogue fused: for every column `c < cols`,
/// `a = bias_c + w · x_c` (wrapping int32, `bias_c` at
/// `bias + bias_map.offset(c)`), requantized into `wide` and `narrow`
/// while the sums are still in registers. Each output equals
/// [`crate::kernels::generic::requant_i16`] / [`crate::kernels::generic::requant_i8`] of the
/// accumulator, bit for bit.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; every column's input, bias, addend and outputs in
/// bounds for `p.rows()` rows (`p.len()` inputs), pairs `2 · p.rows()`
/// words, `lo <= hi`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_requant(
    p: &PackedI8,
    x: &[i8],
    x_stride: usize,
    cols: usize,
    bias: *const i32,
    bias_map: ColumnMap,
    wide: Option<Out16>,
    narrow: Option<Out8>,
    tiles: bool,
) {
    let mut epilogue = Requant { bias, bias_map, wide, narrow };
    // Safety: the caller's features and bounds.
    unsafe { product(p, &Piece::whole(x, x_stride, p.len), cols, &mut epilogue, tiles) }
}

/// One piece of every input column: column `c`'s `len` bytes at
/// `data + map.offset(c)`.
#[derive(Clone, Copy, Debug)]
pub struct Piece {
    /// Where column 0's bytes start.
    pub data: *const i8,
    /// Where the other columns' start.
    pub map: ColumnMap,
    /// Bytes per column.
    pub len: usize,
}

impl Piece {
    /// Inputs of `len` bytes, `stride` apart, as a single piece.
    fn whole(x: &[i8], stride: usize, len: usize) -> [Piece; 1] {
        [Piece { data: x.as_ptr(), map: ColumnMap::contiguous(stride), len }]
    }
}

/// [`matmul_requant`] over inputs that lie in two places: column `c` is
/// `pieces[0]`'s bytes of column `c`, then `pieces[1]`'s (a row's window
/// over two rows of a ring, read where it lies instead of gathered).
///
/// # Safety
/// As [`matmul_requant`], and `pieces[0].len` a multiple of 4, the two
/// lengths adding up to `p.len()`, every piece of every column readable.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_requant_pieces(
    p: &PackedI8,
    pieces: &[Piece; 2],
    cols: usize,
    bias: *const i32,
    bias_map: ColumnMap,
    wide: Option<Out16>,
    narrow: Option<Out8>,
    tiles: bool,
) {
    debug_assert!(pieces[0].len.is_multiple_of(4) && pieces[0].len + pieces[1].len == p.len);
    let mut epilogue = Requant { bias, bias_map, wide, narrow };
    // Safety: the caller's features and bounds.
    unsafe { product(p, pieces, cols, &mut epilogue, tiles) }
}

/// [`matmul_requant_pieces`] (or one piece) whose `2p` rows, `p` 16 or 32,
/// end in the gate: each column's gate inputs are requantized, clamped and
/// gated in registers and only the `p` gates are stored, with the rows'
/// `narrow` output beside them if any.
///
/// # Safety
/// As [`matmul_requant_pieces`], with AVX-512 VBMI too; `p.rows()` 32 or
/// 64; `gate.prepared` live constants of every row; every column's `p`
/// gates in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")]
pub unsafe fn matmul_requant_gate<const S: usize>(
    p: &PackedI8,
    pieces: &[Piece; S],
    cols: usize,
    (bias, bias_map): (*const i32, ColumnMap),
    gate: OutGate,
    narrow: Option<Out8>,
    tiles: bool,
) {
    debug_assert!(p.rows == 32 || p.rows == 64);
    let mut epilogue = GateRequant { bias, bias_map, gate, narrow };
    // Safety: the caller's features and bounds.
    unsafe { product(p, pieces, cols, &mut epilogue, tiles) }
}

/// [`matmul_requant`] ending in the residual block's output, the stream's
/// term added in registers: a lockstep batch's residual blocks as one
/// product.
///
/// # Safety
/// As [`matmul_requant`]; `out.prepared` live constants of every row;
/// every column's output and stream rows in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul_requant_residual(
    p: &PackedI8,
    x: &[i8],
    x_stride: usize,
    cols: usize,
    bias: *const i32,
    bias_map: ColumnMap,
    out: OutResidual,
    tiles: bool,
) {
    let term = StreamTerm::of(out.stream_pair);
    let mut epilogue = ResidualRequant { bias, bias_map, out, term };
    // Safety: the caller's features and bounds.
    unsafe { product(p, &Piece::whole(x, x_stride, p.len), cols, &mut epilogue, tiles) }
}

/// Every column through every row block, tiles of up to [`TILE_COLS`]
/// columns by [`TILE_BLOCKS`] blocks, each tile's sums handed to
/// `epilogue`; with `tiles` (AMX usable, [`crate::kernels::Int8Kernel::Amx`]),
/// runs of 16 columns as tile products.
///
/// # Safety
/// As [`matmul`] and [`matmul_requant`]: features, and every column's
/// input and outputs in bounds; `tiles` only where
/// [`matmul_tiles_amx::available`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn product<E: Epilogue, const S: usize>(
    p: &PackedI8,
    pieces: &[Piece; S],
    cols: usize,
    epilogue: &mut E,
    tiles: bool,
) {
    let mut c = 0;
    if tiles && cols >= matmul_tiles_amx::COLS {
        // Safety: the caller's features, bounds and AMX.
        c = unsafe { tile_columns(p, pieces, cols, epilogue) };
    }
    while c < cols {
        let t = (cols - c).min(TILE_COLS);
        // Safety (each arm): the caller's features and bounds, for columns
        // c..c + t.
        unsafe {
            match t {
                6 => columns::<E, S, 6, 1>(p, pieces, c, epilogue),
                5 => columns::<E, S, 5, 1>(p, pieces, c, epilogue),
                4 => columns::<E, S, 4, 1>(p, pieces, c, epilogue),
                3 => columns::<E, S, 3, 1>(p, pieces, c, epilogue),
                2 => columns::<E, S, 2, 2>(p, pieces, c, epilogue),
                _ => columns::<E, S, 1, 3>(p, pieces, c, epilogue),
            }
        }
        c += t;
    }
}

/// The columns `product` runs on AMX tiles: A tiles of 16 columns from
/// column 0, two per pass, the last moved back to end at `cols` (its first
/// columns computed twice, handed to the epilogue once), while each
/// piece's 16 columns lie at one stride and its length is whole 32-byte
/// tile rows. Returns how many columns from 0 it did.
///
/// # Safety
/// As [`product`], with AMX usable and `cols ≥ 16`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_columns<E: Epilogue, const S: usize>(
    p: &PackedI8,
    pieces: &[Piece; S],
    cols: usize,
    epilogue: &mut E,
) -> usize {
    use matmul_tiles_amx::{TilePiece, COLS};
    if pieces.iter().any(|pc| !pc.len.is_multiple_of(32) || pc.len == 0) {
        return 0;
    }
    // Where A tile `t` of a pass starts, if its 16 columns of every piece
    // lie at one stride (the piece's address and stride).
    let tile_at = |c0: usize| -> Option<[(*const i8, usize); S]> {
        let mut at = [(core::ptr::null(), 0); S];
        for (a, pc) in at.iter_mut().zip(pieces) {
            let stride = pc.map.stride_over(c0, COLS)?;
            // Safety: inside the caller's bounds (column c0's piece).
            *a = (unsafe { pc.data.add(pc.map.offset(c0)) }, stride);
        }
        Some(at)
    };
    // Written by the tile stores before any of it is read (8 KB: not
    // zeroed for every product).
    let mut sums = core::mem::MaybeUninit::<matmul_tiles_amx::Sums>::uninit();
    // Every loaded model's matrices have the signed copy (`packed::collect`
    // adds it); a matrix packed alone, as some tests do, has not.
    let signed = !p.signed.is_empty();
    let row_blocks = p.rows.div_ceil(16);
    // Safety: the caller's AMX.
    unsafe { matmul_tiles_amx::configure() };
    let mut done = 0;
    while done < cols {
        // One or two A tiles: columns starts[t] .. starts[t] + 16.
        let first = done.min(cols - COLS);
        let two = cols - done > COLS;
        let starts = [first, if two { (first + COLS).min(cols - COLS) } else { first }];
        let (Some(a0), Some(a1)) = (tile_at(starts[0]), tile_at(starts[1])) else { break };
        let tile_pieces: [TilePiece; S] = core::array::from_fn(|s| TilePiece {
            at: [a0[s].0, a1[s].0],
            stride: a0[s].1,
            len: pieces[s].len,
        });
        if two && (0..S).any(|s| a1[s].1 != a0[s].1) {
            break;
        }
        // Each tile's first column not done before, and the corrections.
        let fresh = [done - starts[0], (done.max(starts[0] + COLS)) - starts[1]];
        let mut corr = [[0i32; COLS]; 2];
        for t in (0..1 + usize::from(two)).filter(|_| !signed) {
            for (m, c) in corr[t].iter_mut().enumerate().skip(fresh[t]) {
                for tp in &tile_pieces {
                    // Safety: column starts[t] + m's piece, in the
                    // caller's bounds; its length a multiple of 32.
                    *c = c.wrapping_add(unsafe { correction(tp.at[t].add(m * tp.stride), tp.len) });
                }
            }
        }
        let mut b = 0;
        while b < row_blocks {
            let nb = match row_blocks - b {
                left if left >= 4 => 4,
                left if left >= 2 => 2,
                _ => 1,
            };
            // Safety: configured; blocks b .. b + nb of `p` exist, each
            // piece's groups inside its rows; every column's pieces
            // readable (the caller's).
            unsafe {
                if signed {
                    let w = p.signed.as_ptr().cast();
                    matmul_tiles_amx::signed_sums(
                        w,
                        p.groups,
                        (b, nb),
                        &tile_pieces,
                        two,
                        &mut sums,
                    );
                } else {
                    let w = p.blocks.as_ptr().cast();
                    matmul_tiles_amx::sums(w, p.groups, (b, nb), &tile_pieces, two, &mut sums);
                }
            }
            for t in 0..1 + usize::from(two) {
                // Eight, then four columns per epilogue call (its constants
                // loaded once for them: lockstep 1.02× over four alone),
                // the leftovers one by one.
                let mut m = fresh[t];
                while m < COLS {
                    let at = (t, starts[t], m);
                    // Safety: configured above; the caller's bounds for
                    // these columns.
                    m += unsafe {
                        matmul_tiles_amx::keep_awake();
                        match COLS - m {
                            8.. => tile_epilogue::<E, 8>(
                                epilogue,
                                &sums,
                                &corr[t],
                                at,
                                (b, nb),
                                p.rows,
                            ),
                            4.. => tile_epilogue::<E, 4>(
                                epilogue,
                                &sums,
                                &corr[t],
                                at,
                                (b, nb),
                                p.rows,
                            ),
                            _ => tile_epilogue::<E, 1>(
                                epilogue,
                                &sums,
                                &corr[t],
                                at,
                                (b, nb),
                                p.rows,
                            ),
                        }
                    };
                }
            }
            b += nb;
        }
        done = starts[1] + COLS;
    }
    done
}

/// Columns `m .. m + C` of A tile `t` (starting at column `c0`) of the
/// tile sums, corrected, through the epilogue for row blocks `b .. b +
/// nb` (`nb` of 1, 2 or 4); returns `C`, the columns done.
///
/// # Safety
/// AVX-512F/BW/VL; the epilogue's bounds for those columns.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile_epilogue<E: Epilogue, const C: usize>(
    epilogue: &mut E,
    sums: &core::mem::MaybeUninit<matmul_tiles_amx::Sums>,
    corr: &[i32; matmul_tiles_amx::COLS],
    (t, c0, m): (usize, usize, usize),
    (b, nb): (usize, usize),
    rows: usize,
) -> usize {
    let targets = epilogue.targets::<C>(c0 + m);
    let block = |r: usize| -> [__m512i; C] {
        core::array::from_fn(|c| {
            // Safety: 16 int32, stored by `matmul_tiles_amx::sums` for row
            // block r < nb and tile t.
            let v = unsafe {
                _mm512_loadu_si512(core::ptr::addr_of!((*sums.as_ptr())[r][t][m + c]).cast())
            };
            _mm512_sub_epi32(v, _mm512_set1_epi32(corr[m + c]))
        })
    };
    // Safety: the caller's bounds.
    unsafe {
        match nb {
            4 => epilogue.tile(&targets, b, rows, &[block(0), block(1), block(2), block(3)]),
            2 => epilogue.tile(&targets, b, rows, &[block(0), block(1)]),
            _ => epilogue.tile(&targets, b, rows, &[block(0)]),
        }
    }
    C
}

/// `128 · Σx` (wrapping) of the `len` bytes at `x`, `len` a multiple of 32:
/// [`bias_correction`] in 32-byte steps.
///
/// # Safety
/// AVX-512F/BW/VL; `len` readable bytes at `x`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn correction(x: *const i8, len: usize) -> i32 {
    let (flip, zero) = (_mm256_set1_epi8(-128), _mm256_setzero_si256());
    let mut total = _mm256_setzero_si256();
    let mut k = 0;
    while k < len {
        // Safety: bytes k .. k + 32 of the caller's.
        let v = unsafe { _mm256_loadu_si256(x.add(k).cast()) };
        total = _mm256_add_epi64(total, _mm256_sad_epu8(_mm256_xor_si256(v, flip), zero));
        k += 32;
    }
    let s = _mm_add_epi64(_mm256_castsi256_si128(total), _mm256_extracti128_si256::<1>(total));
    let sum = _mm_cvtsi128_si64(_mm_add_epi64(s, _mm_unpackhi_epi64(s, s))) - 128 * len as i64;
    (sum as i32).wrapping_mul(128)
}

/// Columns `c0 .. c0 + C` through every row block, tiles of up to
/// [`TILE_BLOCKS`] blocks; `KS` accumulator sets per tile. Every piece but
/// the last is whole groups.
///
/// # Safety
/// As [`product`], for columns `c0 .. c0 + C`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn columns<E: Epilogue, const S: usize, const C: usize, const KS: usize>(
    p: &PackedI8,
    pieces: &[Piece; S],
    c0: usize,
    epilogue: &mut E,
) {
    let mut xs = [[core::ptr::null::<i8>(); C]; S];
    let mut corr = [0i32; C];
    let mut tails = [0i32; C];
    for (s, piece) in pieces.iter().enumerate() {
        for k in 0..C {
            // Safety: the caller's bounds: every piece of every column is
            // readable.
            let bytes = unsafe {
                core::slice::from_raw_parts(piece.data.add(piece.map.offset(c0 + k)), piece.len)
            };
            xs[s][k] = bytes.as_ptr();
            corr[k] = corr[k].wrapping_add(bias_correction(bytes));
            if s == S - 1 {
                // The last partial group, zero-padded.
                let mut word = [0u8; 4];
                for (d, v) in word.iter_mut().zip(&bytes[4 * (piece.len / 4)..]) {
                    *d = *v as u8;
                }
                tails[k] = i32::from_le_bytes(word);
            }
        }
    }
    let fulls: [usize; S] = core::array::from_fn(|s| pieces[s].len / 4);
    let corr = corr.map(|v| _mm512_set1_epi32(v));
    let last = &pieces[S - 1];
    let tile = Tile {
        groups: p.groups,
        fulls,
        has_tail: !last.len.is_multiple_of(4),
        xs,
        tails,
        corr,
        targets: epilogue.targets::<C>(c0),
    };
    let row_blocks = p.rows.div_ceil(16);
    let mut b = 0;
    while b < row_blocks {
        let left = row_blocks - b;
        // Safety: blocks b.. of the matrix exist; the tile reads `fulls`
        // whole groups of each piece (inside it) and the tail words; the
        // epilogue's bounds are the caller's, its masks stop at `rows`.
        unsafe {
            if left >= TILE_BLOCKS {
                tile.run::<E, TILE_BLOCKS, KS>(p, b, epilogue);
                b += TILE_BLOCKS;
            } else if left >= 2 {
                tile.run::<E, 2, KS>(p, b, epilogue);
                b += 2;
            } else {
                tile.run::<E, 1, KS>(p, b, epilogue);
                b += 1;
            }
        }
    }
}

/// What one register tile reads: the `C` inputs' pointers into each of
/// `S` pieces, their whole groups, the last piece's tail words, the
/// corrections, and where its columns go.
struct Tile<const S: usize, const C: usize> {
    groups: usize,
    fulls: [usize; S],
    has_tail: bool,
    xs: [[*const i8; C]; S],
    tails: [i32; C],
    corr: [__m512i; C],
    targets: Targets<C>,
}

impl<const S: usize, const C: usize> Tile<S, C> {
    /// Row blocks `b .. b + RB` of `p` with the `C` inputs, `KS`
    /// accumulator sets, each block's sums (corrected) handed to the
    /// epilogue. The accumulators live in this one function, in registers.
    ///
    /// # Safety
    /// AVX-512F/BW/VL/VNNI; blocks `b .. b + RB` exist; every input has
    /// `4 · full` readable bytes; the epilogue's bounds hold.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
    unsafe fn run<E: Epilogue, const RB: usize, const KS: usize>(
        &self,
        p: &PackedI8,
        b: usize,
        epilogue: &mut E,
    ) {
        // Safety: blocks b.. exist (the caller's).
        let base = unsafe { p.blocks.as_ptr().add(b * self.groups) };
        let mut acc = [[[_mm512_setzero_si512(); C]; RB]; KS];
        // `gw` counts the weights' groups across the pieces, `g` the
        // piece's own.
        let mut gw = 0;
        for (xs, &full) in self.xs.iter().zip(&self.fulls) {
            let mut g = 0;
            while g + KS <= full {
                for (s, set) in acc.iter_mut().enumerate() {
                    // Safety: group g + s < full lies inside every input's
                    // piece, and inside the tile's blocks.
                    unsafe { step_from(set, base, self.groups, gw + g + s, xs, g + s) };
                }
                g += KS;
            }
            while g < full {
                // Safety: as above, for group g.
                unsafe { step_from(&mut acc[0], base, self.groups, gw + g, xs, g) };
                g += 1;
            }
            gw += full;
        }
        if self.has_tail {
            // Safety: the tail group's blocks exist; its words are copies.
            unsafe { step(&mut acc[0], base, self.groups, gw, self.tails) };
        }
        let mut all = [[_mm512_setzero_si512(); C]; RB];
        for (r, sums) in all.iter_mut().enumerate() {
            *sums = acc[0][r];
            for c in 0..C {
                for set in &acc[1..] {
                    sums[c] = _mm512_add_epi32(sums[c], set[r][c]);
                }
                sums[c] = _mm512_sub_epi32(sums[c], self.corr[c]);
            }
        }
        // Safety: the caller's bounds.
        unsafe { epilogue.tile(&self.targets, b, p.rows, &all) };
    }
}

/// One group: `acc[r][c] += block (r, g) · broadcast(words[c])`.
///
/// # Safety
/// AVX-512F/BW/VL/VNNI; block `(r, g)` at `base + r · groups + g` exists for
/// every `r < RB`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
pub(crate) unsafe fn step<const RB: usize, const C: usize>(
    acc: &mut [[__m512i; C]; RB],
    base: *const Block,
    groups: usize,
    g: usize,
    words: [i32; C],
) {
    let mut xb = [_mm512_setzero_si512(); C];
    for (x, w) in xb.iter_mut().zip(words) {
        *x = _mm512_set1_epi32(w);
    }
    for (r, row) in acc.iter_mut().enumerate() {
        // Safety: the caller's bounds; blocks are 64-byte aligned.
        let wv = unsafe { _mm512_load_si512(base.add(r * groups + g).cast()) };
        for (a, x) in row.iter_mut().zip(&xb) {
            *a = _mm512_dpbusd_epi32(*a, wv, *x);
        }
    }
}

/// [`step`] for the weights' group `g` with group `gx` of each input
/// broadcast straight from memory (a load-port broadcast, not a word
/// copied through a register).
///
/// # Safety
/// As [`step`]; group `gx` lies inside every input of `xs`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn step_from<const RB: usize, const C: usize>(
    acc: &mut [[__m512i; C]; RB],
    base: *const Block,
    groups: usize,
    g: usize,
    xs: &[*const i8; C],
    gx: usize,
) {
    let mut xb = [_mm512_setzero_si512(); C];
    for (x, p) in xb.iter_mut().zip(xs) {
        // Safety: the caller's bounds.
        *x = _mm512_set1_epi32(unsafe { p.add(4 * gx).cast::<i32>().read_unaligned() });
    }
    for (r, row) in acc.iter_mut().enumerate() {
        // Safety: the caller's bounds; blocks are 64-byte aligned.
        let wv = unsafe { _mm512_load_si512(base.add(r * groups + g).cast()) };
        for (a, x) in row.iter_mut().zip(&xb) {
            *a = _mm512_dpbusd_epi32(*a, wv, *x);
        }
    }
}
