//! x86_64 AMX-INT8: the packed products' sums of 16 columns at a time as
//! tile products (`tdpbsud`), for [`crate::kernels::Int8Kernel::Amx`].
//!
//! One `tdpbsud` multiplies a 16 × 64 tile of signed bytes by a 64 × 16
//! tile of unsigned bytes into 16 × 16 int32: 16,384 MACs, where one
//! 512-bit `vpdpbusd` does 64 (`benches/peak.rs`, `int8_peak`: 2.75 TMAC/s
//! against 0.38 on this project's Xeon). It needs 16 columns that share
//! the weights, so a row's positions and lockstep lanes use it, and one
//! image's pixel chain (one column) does not.
//!
//! The operands are the packed product's own: a column's input bytes are a
//! row of the A tile (16 columns at a constant stride: a row's positions,
//! or the lanes of one position), and the weights' blocks `(r, g .. g +
//! 16)` of row block `r`, 64 contiguous bytes each, are the rows of the B
//! tile, unsigned (`w + 128`). So `C[m][n]` is row `16r + n` of column
//! `m`: the same uncorrected sum `w · x + 128 · Σx` the VNNI tile leaves
//! in lane `n` of its column's register, and C's row `m` is that register.
//! Sums are exact int32, as the VNNI kernel's are.
//!
//! Linux hands a process the tile state only on request
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), made once in
//! [`available`].
#![allow(unsafe_code)]

use core::arch::asm;
use core::sync::atomic::{AtomicU8, Ordering};

/// Columns of one tile product.
pub(crate) const COLS: usize = 16;
/// Row blocks (of 16 rows) one pass accumulates: tiles `tmm0 ..= tmm3`.
pub(crate) const BLOCKS: usize = 4;

/// 0 unknown, 1 usable, 2 not.
static STATE: AtomicU8 = AtomicU8::new(0);

/// Whether this CPU has AMX-TILE and AMX-INT8 and the OS lets this process
/// use them (asked once).
pub(crate) fn available() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = detect();
            STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Elsewhere than on Linux the tiles are not asked for (each OS has its
/// own way), so they are never used there; the kernels that do not need
/// them run as everywhere.
#[cfg(not(target_os = "linux"))]
fn detect() -> bool {
    false
}

#[cfg(target_os = "linux")]
fn detect() -> bool {
    // CPUID.(EAX=7, ECX=0): EDX bit 24 AMX-TILE, bit 25 AMX-INT8.
    let edx = core::arch::x86_64::__cpuid_count(7, 0).edx;
    if edx & (3 << 24) != 3 << 24 {
        return false;
    }
    let (arch_prctl, req_xcomp_perm, xtiledata) = (158usize, 0x1023usize, 18usize);
    let ret: isize;
    // Safety: a plain system call; it changes only whether this process
    // may use the tile state.
    unsafe {
        asm!("syscall", inlateout("rax") arch_prctl => ret, in("rdi") req_xcomp_perm,
             in("rsi") xtiledata, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret == 0
}

/// The tile configuration (palette 1): `tmm0 ..= tmm3` accumulators (16
/// rows of 16 int32), `tmm4`, `tmm5` A tiles of 16 columns by 32 inputs,
/// `tmm6`, `tmm7` B tiles of 32 inputs (8 rows of four) by 16 rows: a 2 × 2
/// blocking, each A and B tile read by two products, so a load into a tile
/// (tiles are not renamed) waits on products issued four before it.
/// Inputs go 32 at a time because a row's pieces are 96 bytes; inside a
/// product the time follows the MACs either way (a 64 × 192 × 32 product
/// in this blocking: 296 ns with 32-byte A rows, 309 ns with 64-byte
/// ones, `docs/performance-log.md`, eighth session).
#[repr(C, align(64))]
struct Config([u8; 64]);

const CONFIG: Config = {
    let mut c = [0u8; 64];
    c[0] = 1;
    // (bytes per row, rows) of tmm0 ..= tmm7.
    let shapes = [(64, 16), (64, 16), (64, 16), (64, 16), (32, 16), (32, 16), (64, 8), (64, 8)];
    let mut t = 0;
    while t < 8 {
        c[16 + 2 * t] = shapes[t].0;
        c[48 + t] = shapes[t].1;
        t += 1;
    }
    Config(c)
};

/// One piece of one or two A tiles' inputs: column `m` of tile `t` has
/// `len` bytes at `at[t] + m · stride`; `len` a multiple of 32.
#[derive(Clone, Copy)]
pub(crate) struct TilePiece {
    pub at: [*const i8; 2],
    pub stride: usize,
    pub len: usize,
}

/// Makes this thread's tile configuration [`CONFIG`], which the products
/// below need. `ldtilecfg` costs ~52 ns here (`sttilecfg` ~5), more than a
/// lockstep layer's product takes on the tiles, so the configuration is
/// only loaded when this thread's differs, and is left in place after
/// (not released: the OS then saves the tiles' 8 KB on a context switch).
///
/// # Safety
/// [`available`] returned true.
#[inline]
pub(crate) unsafe fn configure() {
    let mut now = Config([0; 64]);
    // Safety: the caller's AMX; 64 writable (then readable) aligned bytes.
    unsafe {
        asm!("sttilecfg [{}]", in(reg) now.0.as_mut_ptr(), options(nostack));
        if now.0 != CONFIG.0 {
            asm!("ldtilecfg [{}]", in(reg) CONFIG.0.as_ptr(), options(nostack, readonly));
        }
    }
}

/// Keeps the tile unit awake between products: one throwaway `tdpbssd`
/// into `tmm0`, which every pass zeroes before its products. Left idle
/// for the length of an epilogue (a few hundred nanoseconds), the unit
/// took 0.28–0.32 µs longer over the next product than over the same one
/// right after another (`rdtsc` between `lfence`s in the executor; a
/// product issued just before it took that wait away, a `tilezero` did
/// not): `docs/performance-log.md`, ninth session. Issued before each
/// epilogue call, it keeps the unit up through the epilogue, and the
/// next product starts at once.
///
/// # Safety
/// Configured ([`configure`]) on this thread.
#[inline(always)]
pub(crate) unsafe fn keep_awake() {
    // Safety: the caller's configuration; tmm0 holds nothing needed (each
    // pass zeroes it), tmm4 and tmm6 are read as they are.
    unsafe { asm!("tdpbssd tmm0, tmm4, tmm6", options(nostack, nomem)) };
}

/// The sums of one or two A tiles (16 columns each) by row blocks.
pub(crate) type Sums = [[[[i32; 16]; COLS]; 2]; BLOCKS];

/// Defines a tile-sums function over one tile product instruction.
macro_rules! tile_sums {
    ($(#[$doc:meta])* $name:ident, $op:literal) => {
        /// `sums[r][t][m]` (written, not read): the sums of rows `16 (b + r) ..` of column
        /// `m` of A tile `t` (`t < 2` with `two`, else `t = 0`), for `r < blocks`
        /// (at most 4), over the inputs in `pieces` (their groups one after
        /// another in the weights).
        ///
        /// # Safety
        /// Configured ([`configure`]); `weights` points at block `(0, 0)` of a
        /// packed matrix of `groups` groups per row block with row blocks `b .. b +
        /// blocks` and at least the pieces' groups; every piece's columns of each
        /// tile used readable; each `len` a multiple of 32.
        $(#[$doc])*
        pub(crate) unsafe fn $name(
            weights: *const u8,
            groups: usize,
            (b, blocks): (usize, usize),
            pieces: &[TilePiece],
            two: bool,
            sums: &mut core::mem::MaybeUninit<Sums>,
        ) {
            let block = |r: usize, g: usize| {
                // Safety: the caller's bounds.
                unsafe { weights.add(((b + r) * groups + g) * 64) }
            };
            let mut pass = 0;
            while pass < blocks {
                let pair = blocks - pass >= 2;
                // Safety (this loop): the caller's configuration and bounds; the
                // B tiles are 8 blocks of 64 bytes from block (b + pass (+ 1), g).
                unsafe {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    );
                    let mut gw = 0;
                    for piece in pieces {
                        let mut k = 0;
                        while k < piece.len {
                            let g = gw + k / 4;
                            asm!("tileloadd tmm4, [{x} + {s}*1]", "tileloadd tmm6, [{w} + {v}*1]",
                                 concat!($op, " tmm0, tmm4, tmm6"),
                                 x = in(reg) piece.at[0].add(k), s = in(reg) piece.stride,
                                 w = in(reg) block(pass, g), v = in(reg) 64usize,
                                 options(nostack, readonly));
                            if two {
                                asm!("tileloadd tmm5, [{x} + {s}*1]", concat!($op, " tmm2, tmm5, tmm6"),
                                     x = in(reg) piece.at[1].add(k), s = in(reg) piece.stride,
                                     options(nostack, readonly));
                            }
                            if pair {
                                asm!("tileloadd tmm7, [{w} + {v}*1]", concat!($op, " tmm1, tmm4, tmm7"),
                                     w = in(reg) block(pass + 1, g), v = in(reg) 64usize,
                                     options(nostack, readonly));
                                if two {
                                    asm!(concat!($op, " tmm3, tmm5, tmm7"), options(nostack, nomem));
                                }
                            }
                            k += 32;
                        }
                        gw += piece.len / 4;
                    }
                    let out = sums.as_mut_ptr();
                    let store =
                        |r: usize, t: usize| core::ptr::addr_of_mut!((*out)[pass + r][t]).cast::<u8>();
                    asm!("tilestored [{o} + {s}*1], tmm0", o = in(reg) store(0, 0), s = in(reg) 64usize,
                         options(nostack));
                    if two {
                        asm!("tilestored [{o} + {s}*1], tmm2", o = in(reg) store(0, 1),
                             s = in(reg) 64usize, options(nostack));
                    }
                    if pair {
                        asm!("tilestored [{o} + {s}*1], tmm1", o = in(reg) store(1, 0),
                             s = in(reg) 64usize, options(nostack));
                        if two {
                            asm!("tilestored [{o} + {s}*1], tmm3", o = in(reg) store(1, 1),
                                 s = in(reg) 64usize, options(nostack));
                        }
                    }
                }
                pass += 2;
            }
        }
    };
}

tile_sums!(
    /// With the VNNI kernel's biased weights (`w + 128`, `tdpbsud`): the
    /// uncorrected sums `w · x + 128 · Σx`.
    sums,
    "tdpbsud"
);
tile_sums!(
    /// With the signed weights ([`super::matmul_packed_avx512vnni::PackedI8`]'s
    /// copy for the tiles, `tdpbssd`): the sums `w · x` themselves, no
    /// correction to compute or subtract.
    signed_sums,
    "tdpbssd"
);
