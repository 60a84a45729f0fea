//! What firmware keeps in flash: the bundled int8 model, and the buffer
//! sizes it was built for.

use pixelcnn_runtime::Arch;

/// Bytes at a 16-byte aligned address, so a model parses in place
/// (`include_bytes!` alone guarantees no alignment).
#[repr(C, align(16))]
#[derive(Debug)]
pub struct Aligned<T: ?Sized>(pub T);

/// The default model: the class-conditional Gated PixelCNN on binarized
/// MNIST, converted to integer-only int8 (`models/gated-mnist-int8.pcnn`).
pub static DEFAULT_MODEL: &Aligned<[u8]> =
    &Aligned(*include_bytes!("../../models/gated-mnist-int8.pcnn"));

/// The architecture the buffers are sized for.
pub const BUILT_FOR: Arch = Arch::MNIST_DEFAULT;

/// State words for [`BUILT_FOR`] in any precision (f32 needs the most).
pub const STATE_WORDS: usize = {
    let (float, int8) = (BUILT_FOR.state_len(), BUILT_FOR.quant_state_words());
    if float > int8 {
        float
    } else {
        int8
    }
};

/// State words of the int8 executor for [`BUILT_FOR`].
pub const INT8_STATE_WORDS: usize = BUILT_FOR.quant_state_words();

/// Largest image (pixels) the firmware's image buffer holds.
pub const MAX_PIXELS: usize = 64 * 64;
