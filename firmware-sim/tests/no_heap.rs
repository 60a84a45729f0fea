//! After init, the firmware loop never touches the heap: a counting global
//! allocator sees zero allocations over a whole generation.
//!
//! Only the test thread's own allocations count: libtest's other threads
//! (output capture, the slow-test timer) may allocate while the loop runs.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics_simulator::SimulatorDisplay;
use pixelcnn_firmware_sim::{flash, App, Clock, Config, Step};
use pixelcnn_runtime::format;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` initialisation: reading the flag never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // Safety: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Safety: `ptr` came from `alloc` above, with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // Safety: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A clock that needs no system call.
struct Ticks(std::cell::Cell<u64>);

impl Clock for Ticks {
    fn now_us(&self) -> u64 {
        self.0.set(self.0.get() + 3);
        self.0.get()
    }
}

#[test]
fn the_loop_never_allocates() {
    // Init: the display and model come first, the state on the stack.
    let mut display = SimulatorDisplay::<BinaryColor>::new(Size::new(128, 64));
    let model = format::parse(&flash::DEFAULT_MODEL.0).unwrap();
    let mut state = [0u32; flash::INT8_STATE_WORDS];
    let config = Config { count: 3, ..Config::default() };
    let mut app = App::new(&model, &mut state, Size::new(128, 64), config).unwrap();
    let clock = Ticks(std::cell::Cell::new(0));
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let Ok(()) = app.start(&mut display);
    let mut pixels = 0;
    while let Step::Pixel { .. } = app.step(&mut display, &clock).unwrap() {
        pixels += 1;
    }
    COUNTING.with(|c| c.set(false));
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    assert_eq!(pixels, 3 * 784);
    assert_eq!(after - before, 0, "the loop allocated {} times", after - before);
}
