//! x86_64 AVX-512 VNNI int8 matrix products over weights packed in the
//! order the kernel reads them; per input, bit-identical to
//! [`super::generic::matvec_i8`].
//!
//! The row-major kernels ([`super::avx512vnni_matvec_i8`]) hold one row per
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

use super::avxvnni_matvec_i8::bias_correction;

/// One 64-byte block of packed weights: 16 rows by 4 inputs.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Block([u8; 64]);

/// Most inputs one register tile holds.
const TILE_COLS: usize = 6;
/// Most row blocks one register tile holds.
const TILE_BLOCKS: usize = 4;

/// An int8 weight matrix packed for [`matmul`]: `rows` rows of `len`
/// inputs, in 16-row by 4-input blocks, block-row major.
#[derive(Clone)]
pub struct PackedI8 {
    rows: usize,
    len: usize,
    groups: usize,
    blocks: Vec<Block>,
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
        PackedI8 { rows, len, groups, blocks }
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
}

/// `out[c · out_stride + o] += w[o] · x[c · x_stride ..][..len]` (wrapping
/// int32) for every row `o` of `p` and column `c < cols`.
///
/// # Safety
/// The CPU must support AVX-512F, AVX-512BW and AVX-512 VNNI; for every
/// `c < cols`, `x[c · x_stride ..][..p.len()]` and
/// `out[c · out_stride ..][..p.rows()]` must be in bounds.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
pub unsafe fn matmul(
    out: &mut [i32],
    out_stride: usize,
    p: &PackedI8,
    x: &[i8],
    x_stride: usize,
    cols: usize,
) {
    let mut c = 0;
    while c < cols {
        let t = (cols - c).min(TILE_COLS);
        // Safety (each arm): the caller's features and bounds, for columns
        // c..c + t.
        unsafe {
            match t {
                6 => columns::<6, 1>(out, out_stride, p, x, x_stride, c),
                5 => columns::<5, 1>(out, out_stride, p, x, x_stride, c),
                4 => columns::<4, 1>(out, out_stride, p, x, x_stride, c),
                3 => columns::<3, 1>(out, out_stride, p, x, x_stride, c),
                2 => columns::<2, 2>(out, out_stride, p, x, x_stride, c),
                _ => columns::<1, 3>(out, out_stride, p, x, x_stride, c),
            }
        }
        c += t;
    }
}

/// Columns `c0 .. c0 + C` through every row block, tiles of up to
/// [`TILE_BLOCKS`] blocks; `KS` accumulator sets per tile.
///
/// # Safety
/// As [`matmul`], for columns `c0 .. c0 + C`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn columns<const C: usize, const KS: usize>(
    out: &mut [i32],
    out_stride: usize,
    p: &PackedI8,
    x: &[i8],
    x_stride: usize,
    c0: usize,
) {
    let n = p.len;
    let full = n / 4;
    let inputs: [&[i8]; C] = core::array::from_fn(|k| &x[(c0 + k) * x_stride..][..n]);
    let mut corr = [_mm512_setzero_si512(); C];
    for (v, input) in corr.iter_mut().zip(inputs) {
        *v = _mm512_set1_epi32(bias_correction(input));
    }
    // The last partial group of each input, zero-padded.
    let tails: [i32; C] = core::array::from_fn(|k| {
        let mut word = [0u8; 4];
        for (d, s) in word.iter_mut().zip(&inputs[k][4 * full..]) {
            *d = *s as u8;
        }
        i32::from_le_bytes(word)
    });
    let xs: [*const i8; C] = core::array::from_fn(|k| inputs[k].as_ptr());
    let tile = Tile { groups: p.groups, full, has_tail: n % 4 != 0, xs, tails };
    let row_blocks = p.rows.div_ceil(16);
    let mut b = 0;
    while b < row_blocks {
        let left = row_blocks - b;
        // Safety: blocks b.. of the matrix exist; the tile reads `full`
        // whole groups of each input (inside it) and the tail words.
        let base = unsafe { p.blocks.as_ptr().add(b * p.groups) };
        if left >= TILE_BLOCKS {
            let acc = unsafe { tile.run::<TILE_BLOCKS, KS>(base) };
            // Safety: the caller's bounds on `out`; the mask stops at `rows`.
            unsafe { store(out, out_stride, c0, b, p.rows, &acc, &corr) };
            b += TILE_BLOCKS;
        } else if left >= 2 {
            let acc = unsafe { tile.run::<2, KS>(base) };
            // Safety: as above.
            unsafe { store(out, out_stride, c0, b, p.rows, &acc, &corr) };
            b += 2;
        } else {
            let acc = unsafe { tile.run::<1, KS>(base) };
            // Safety: as above.
            unsafe { store(out, out_stride, c0, b, p.rows, &acc, &corr) };
            b += 1;
        }
    }
}

/// What one register tile reads: `C` inputs' pointers and tail words.
struct Tile<const C: usize> {
    groups: usize,
    full: usize,
    has_tail: bool,
    xs: [*const i8; C],
    tails: [i32; C],
}

impl<const C: usize> Tile<C> {
    /// The four bytes of group `g` of each input, as one word.
    ///
    /// # Safety
    /// `g < full`.
    #[inline]
    unsafe fn words(&self, g: usize) -> [i32; C] {
        // Safety: group g < full lies inside every input.
        core::array::from_fn(|c| unsafe { self.xs[c].add(4 * g).cast::<i32>().read_unaligned() })
    }

    /// The biased sums (without the correction) of `RB` consecutive row
    /// blocks at `base` with the `C` inputs: `acc[r][c]` holds rows
    /// `16r .. 16r + 16` of the tile for input `c`.
    ///
    /// # Safety
    /// AVX-512F/BW/VNNI; `RB` row blocks of `groups` blocks at `base`; every
    /// input has `4 · full` readable bytes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn run<const RB: usize, const KS: usize>(
        &self,
        base: *const Block,
    ) -> [[__m512i; C]; RB] {
        let mut acc = [[[_mm512_setzero_si512(); C]; RB]; KS];
        let mut g = 0;
        while g + KS <= self.full {
            for (s, set) in acc.iter_mut().enumerate() {
                // Safety: group g + s < full lies inside every input, and
                // inside the tile's blocks.
                unsafe { step(set, base, self.groups, g + s, self.words(g + s)) };
            }
            g += KS;
        }
        while g < self.full {
            // Safety: as above, for group g.
            unsafe { step(&mut acc[0], base, self.groups, g, self.words(g)) };
            g += 1;
        }
        if self.has_tail {
            // Safety: the tail group's blocks exist; its words are copies.
            unsafe { step(&mut acc[0], base, self.groups, self.full, self.tails) };
        }
        let mut sums = acc[0];
        for set in &acc[1..] {
            for r in 0..RB {
                for c in 0..C {
                    sums[r][c] = _mm512_add_epi32(sums[r][c], set[r][c]);
                }
            }
        }
        sums
    }
}

/// One group: `acc[r][c] += block (r, g) · broadcast(words[c])`.
///
/// # Safety
/// AVX-512F/BW/VNNI; block `(r, g)` at `base + r · groups + g` exists for
/// every `r < RB`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn step<const RB: usize, const C: usize>(
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

/// Adds tile `acc` (row blocks `b ..`, columns `c0 ..`) minus each column's
/// correction to `out`, masked at `rows`.
///
/// # Safety
/// AVX-512F; `out[(c0 + c) · out_stride ..][..rows]` in bounds for every
/// column of the tile.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn store<const RB: usize, const C: usize>(
    out: &mut [i32],
    out_stride: usize,
    c0: usize,
    b: usize,
    rows: usize,
    acc: &[[__m512i; C]; RB],
    corr: &[__m512i; C],
) {
    for (r, row) in acc.iter().enumerate() {
        let first = (b + r) * 16;
        let valid = (rows - first).min(16);
        let mask: __mmask16 = if valid == 16 { u16::MAX } else { (1u16 << valid) - 1 };
        for (c, sum) in row.iter().enumerate() {
            // Safety: lanes under the mask are rows first..first + valid of
            // column c0 + c, inside `out`; masked lanes are not touched.
            unsafe {
                let dst = out.as_mut_ptr().add((c0 + c) * out_stride + first);
                let old = _mm512_maskz_loadu_epi32(mask, dst);
                let new = _mm512_add_epi32(old, _mm512_sub_epi32(*sum, corr[c]));
                _mm512_mask_storeu_epi32(dst, mask, new);
            }
        }
    }
}
