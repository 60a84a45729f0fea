//! Cortex-M4F link check: the runtime without std or an allocator samples one
//! digit with the bundled int8 model into a static buffer.
//!
//! The image is exported (`PCNN_IMAGE`) and its FNV-1a hash is written to
//! `PCNN_IMAGE_HASH` with a volatile store, so the sampling cannot be
//! optimised away and the ELF's sizes are those of a real firmware. For the
//! int8 model, seed [`SEED`] and class [`CLASS`] the hash is the golden one
//! of `runtime/tests/golden_int8.rs`; with the `semihosting` feature the
//! image prints it under `qemu-system-arm -M netduinoplus2`. The vector
//! table and the start-up code are written here, with `link.x` for the
//! memory map; nothing else is linked but `core`.

#![no_std]
#![no_main]

use core::panic::PanicInfo;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use pixelcnn_runtime::{format, rng, sampler, Arch, Executor};

/// 16-byte aligned bytes, so the model parses in place from flash.
#[repr(C, align(16))]
struct Aligned<T: ?Sized>(T);

#[cfg(not(any(feature = "f16", feature = "f32")))]
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/gated-mnist-int8.pcnn"));
#[cfg(any(feature = "f16", feature = "f32"))]
static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!(env!("LINK_CHECK_MODEL")));

/// The architecture the buffers are sized for.
const ARCH: Arch = Arch::MNIST_DEFAULT;

/// Executor state words: integer state for int8, f32 state for float models.
#[cfg(not(any(feature = "f16", feature = "f32")))]
const STATE_WORDS: usize = ARCH.quant_state_words();
#[cfg(any(feature = "f16", feature = "f32"))]
const STATE_WORDS: usize = ARCH.state_len();

/// Pixels of one image.
const PIXELS: usize = ARCH.pixels();

/// Seed and class of the third golden int8 sample.
const SEED: u64 = 3;
/// See [`SEED`].
const CLASS: usize = 7;

static mut STATE: [u32; STATE_WORDS] = [0; STATE_WORDS];

/// The sampled image, one level per pixel in raster order.
#[no_mangle]
static mut PCNN_IMAGE: [u8; PIXELS] = [0; PIXELS];

/// FNV-1a (64 bits) of [`PCNN_IMAGE`] once sampled; 0 if sampling failed.
#[no_mangle]
static mut PCNN_IMAGE_HASH: u64 = u64::MAX;

/// With the `codec` feature: the sampled image compressed, then
/// decompressed into [`DECODED`].
#[cfg(feature = "codec")]
static mut STREAM: [u8; 256] = [0; 256];
#[cfg(feature = "codec")]
static mut DECODED: [u8; PIXELS] = [0; PIXELS];

/// Compresses `image` with the int8 model and decompresses it again; the
/// stream's length when the round trip gives the image back.
#[cfg(feature = "codec")]
fn round_trip(state: &mut [u32], image: &[u8]) -> Option<usize> {
    use pixelcnn_runtime::{codec, IncrementalI8, Model};
    let model = format::parse(&MODEL.0).ok()?;
    let Model::Int8(q) = &model else { return None };
    let words: &mut [i32] = bytemuck_words(state);
    let mut exec = IncrementalI8::new(q, words, Some(CLASS)).ok()?;
    // Safety: `main` alone touches these statics, once.
    let (stream, decoded) = unsafe { (&mut *addr_of_mut!(STREAM), &mut *addr_of_mut!(DECODED)) };
    let len = codec::encode(&mut exec, Some(CLASS), image, stream).ok()?;
    let class = codec::decode(&mut exec, &stream[..len], decoded).ok()?;
    (class == Some(CLASS) && decoded[..] == image[..]).then_some(len)
}

/// The state words as i32 (same size and alignment).
#[cfg(feature = "codec")]
fn bytemuck_words(state: &mut [u32]) -> &mut [i32] {
    // Safety: u32 and i32 have the same size, alignment and valid bit
    // patterns; the slice is borrowed mutably for the result's lifetime.
    unsafe { core::slice::from_raw_parts_mut(state.as_mut_ptr().cast(), state.len()) }
}

/// Parses the model in place and samples one image; `None` on any error.
fn sample(state: &mut [u32], image: &mut [u8]) -> Option<()> {
    #[cfg(feature = "generic-kernel")]
    pixelcnn_runtime::kernels::Int8Kernel::Generic.prefer();
    let model = format::parse(&MODEL.0).ok()?;
    let mut exec = Executor::new(&model, state, Some(CLASS)).ok()?;
    sampler::generate(&mut exec, Some(CLASS), 1.0, &mut rng::from_seed(SEED), image).ok()
}

fn main() -> ! {
    // Safety: `main` runs once, after start-up, and nothing else touches these
    // statics (the one interrupt handler, SysTick's, touches its own counter).
    let (state, image) = unsafe { (&mut *addr_of_mut!(STATE), &mut *addr_of_mut!(PCNN_IMAGE)) };
    #[cfg(feature = "semihosting")]
    systick::start();
    let sampled = sample(state, image);
    #[cfg(feature = "semihosting")]
    let ticks = systick::elapsed();
    #[cfg(feature = "codec")]
    let coded = sampled.and_then(|()| round_trip(state, image));
    let hash = match sampled {
        Some(()) => (0..PIXELS).fold(0xcbf2_9ce4_8422_2325_u64, |h, i| {
            // Safety: `i` is in bounds of the static image.
            let level = unsafe { read_volatile(addr_of!(PCNN_IMAGE).cast::<u8>().add(i)) };
            (h ^ u64::from(level)).wrapping_mul(0x100_0000_01b3)
        }),
        None => 0,
    };
    // Safety: a plain store to a static that only this function writes.
    unsafe { write_volatile(addr_of_mut!(PCNN_IMAGE_HASH), hash) };
    #[cfg(all(feature = "semihosting", not(feature = "codec")))]
    semihosting::report(hash, ticks, None);
    #[cfg(all(feature = "semihosting", feature = "codec"))]
    semihosting::report(hash, ticks, Some(coded.unwrap_or(0)));
    #[cfg(not(feature = "semihosting"))]
    loop {
        core::hint::spin_loop();
    }
}

/// Reports the hash to the host and stops (qemu exits with status 0, or 1
/// if sampling failed).
#[cfg(feature = "semihosting")]
mod semihosting {
    const SYS_WRITE0: u32 = 0x04;
    const SYS_EXIT: u32 = 0x18;
    const APPLICATION_EXIT: u32 = 0x2_0026;
    const RUN_TIME_ERROR: u32 = 0x2_0023;

    /// One semihosting call: operation in r0, argument in r1.
    ///
    /// # Safety
    /// A debugger or qemu (`-semihosting`) must be attached, else the
    /// breakpoint faults; `arg` must be what `op` expects.
    unsafe fn call(op: u32, arg: usize) {
        // Safety: the caller's contract; the host reads only `arg`.
        unsafe { core::arch::asm!("bkpt 0xab", inout("r0") op => _, in("r1") arg) };
    }

    /// Writes `prefix`, `value` in decimal and a newline.
    fn decimal(prefix: &[u8], value: u64) {
        let mut line = [0u8; 48];
        line[..prefix.len()].copy_from_slice(prefix);
        let (mut digits, mut n, mut t) = ([0u8; 20], 0, value);
        loop {
            digits[19 - n] = b'0' + (t % 10) as u8;
            n += 1;
            t /= 10;
            if t == 0 {
                break;
            }
        }
        line[prefix.len()..prefix.len() + n].copy_from_slice(&digits[20 - n..]);
        line[prefix.len() + n] = b'\n';
        // Safety: `line` ends with a NUL (it is longer than what is written).
        unsafe { call(SYS_WRITE0, line.as_ptr() as usize) };
    }

    /// Prints `PCNN_IMAGE_HASH=0x…`, `PCNN_SYSTICKS=…` (SysTick ticks of
    /// the core clock spent sampling) and, with the codec, `PCNN_CODEC_BYTES=…`
    /// (0: the round trip failed), then exits.
    pub fn report(hash: u64, ticks: u64, codec_bytes: Option<usize>) -> ! {
        const PREFIX: &[u8] = b"PCNN_IMAGE_HASH=0x";
        let mut line = [0u8; PREFIX.len() + 16 + 2];
        line[..PREFIX.len()].copy_from_slice(PREFIX);
        for (i, digit) in line[PREFIX.len()..PREFIX.len() + 16].iter_mut().enumerate() {
            *digit = b"0123456789abcdef"[(hash >> (60 - 4 * i)) as usize & 0xf];
        }
        line[PREFIX.len() + 16] = b'\n';
        // Safety: `line` ends with a NUL; SYS_EXIT takes the reason itself.
        unsafe { call(SYS_WRITE0, line.as_ptr() as usize) };
        decimal(b"PCNN_SYSTICKS=", ticks);
        if let Some(bytes) = codec_bytes {
            decimal(b"PCNN_CODEC_BYTES=", bytes as u64);
        }
        let failed = hash == 0 || codec_bytes == Some(0);
        // Safety: SYS_EXIT takes the reason itself.
        unsafe {
            call(SYS_EXIT, if failed { RUN_TIME_ERROR } else { APPLICATION_EXIT } as usize);
        }
        loop {
            core::hint::spin_loop();
        }
    }
}

extern "C" {
    static mut __sbss: u32;
    static mut __ebss: u32;
    static mut __sdata: u32;
    static mut __edata: u32;
    static __sidata: u32;
}

/// The reset handler: zero `.bss`, copy `.data` from flash, enable the FPU,
/// run [`main`].
///
/// # Safety
/// Only the processor calls it, once, out of reset.
#[no_mangle]
pub unsafe extern "C" fn reset() -> ! {
    // Safety: the bounds come from link.x, word aligned, and no Rust code has
    // read a static yet.
    unsafe {
        let mut bss = addr_of_mut!(__sbss);
        while bss < addr_of_mut!(__ebss) {
            write_volatile(bss, 0);
            bss = bss.add(1);
        }
        let (mut data, mut init) = (addr_of_mut!(__sdata), addr_of!(__sidata));
        while data < addr_of_mut!(__edata) {
            write_volatile(data, read_volatile(init));
            data = data.add(1);
            init = init.add(1);
        }
        // CPACR: full access to coprocessors 10 and 11 (the FPU) before any
        // floating-point instruction, as the eabihf target uses it.
        let cpacr = 0xE000_ED88 as *mut u32;
        write_volatile(cpacr, read_volatile(cpacr) | (0xF << 20));
        core::arch::asm!("dsb", "isb");
    }
    main()
}

/// Every exception other than reset and SysTick stops here.
unsafe extern "C" fn halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}

/// The core's SysTick timer as a 64-bit tick counter: the 24-bit down
/// counter at the processor clock, plus its wrap-arounds counted by the
/// exception. Under `qemu-system-arm -icount shift=0` one instruction is
/// one nanosecond of virtual time, so ticks give instruction counts
/// (`scripts/cross-test.sh`, `docs/cross.md`).
#[cfg(feature = "semihosting")]
mod systick {
    use core::ptr::{read_volatile, write_volatile};
    use core::sync::atomic::{AtomicU32, Ordering};

    const CSR: *mut u32 = 0xE000_E010 as *mut u32;
    const RVR: *mut u32 = 0xE000_E014 as *mut u32;
    const CVR: *mut u32 = 0xE000_E018 as *mut u32;
    const RELOAD: u32 = 0x00FF_FFFF;

    static WRAPS: AtomicU32 = AtomicU32::new(0);

    /// Counts from zero: reload value, cleared counter, then enable with the
    /// processor clock and the wrap exception.
    pub fn start() {
        // Safety: the architecturally defined SysTick registers of ARMv7-M.
        unsafe {
            write_volatile(RVR, RELOAD);
            write_volatile(CVR, 0);
            write_volatile(CSR, 0b111);
        }
    }

    /// Ticks since [`start`].
    pub fn elapsed() -> u64 {
        loop {
            let before = WRAPS.load(Ordering::Acquire);
            // Safety: as in `start`.
            let value = unsafe { read_volatile(CVR) } & RELOAD;
            if WRAPS.load(Ordering::Acquire) == before {
                return u64::from(before) * u64::from(RELOAD + 1) + u64::from(RELOAD - value);
            }
        }
    }

    /// The SysTick exception: one more wrap.
    pub unsafe extern "C" fn wrapped() {
        WRAPS.fetch_add(1, Ordering::AcqRel);
    }
}

/// One entry of the vector table: a handler that returns or one that never
/// does.
#[derive(Clone, Copy)]
union Vector {
    diverging: unsafe extern "C" fn() -> !,
    #[cfg_attr(not(feature = "semihosting"), allow(dead_code))]
    handler: unsafe extern "C" fn(),
}

/// Reset, then NMI to SysTick (entry 1 to 15; the initial stack pointer,
/// entry 0, is written by link.x).
#[link_section = ".vector_table"]
#[no_mangle]
#[used]
static VECTOR_TABLE: [Vector; 15] = {
    let mut table = [Vector { diverging: halt }; 15];
    table[0] = Vector { diverging: reset };
    #[cfg(feature = "semihosting")]
    {
        table[14] = Vector { handler: systick::wrapped };
    }
    table
};

#[panic_handler]
fn panic(_: &PanicInfo) -> ! {
    loop {
        core::hint::spin_loop();
    }
}
