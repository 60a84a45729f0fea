//! The architecture description: image size, levels, classes and layer sizes.
//!
//! One [`Arch`] value fixes every tensor shape (see [`crate::params`]) and
//! every buffer length (see [`crate::state`]), so firmware
//! can size its static buffers from it.

use core::fmt;

/// Largest image side accepted, in pixels.
pub const MAX_SIDE: usize = 4096;
/// Largest channel count (gated width, head width) accepted.
pub const MAX_CHANNELS: usize = 4096;
/// Largest number of gated blocks or masked layers after the first layer.
pub const MAX_BLOCKS: usize = 256;
/// Largest kernel size accepted.
pub const MAX_KERNEL: usize = 63;
/// Largest number of classes accepted.
pub const MAX_CLASSES: usize = 65_535;

/// Which network the parameters describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// Gated PixelCNN (van den Oord et al. 2016): vertical and horizontal
    /// stacks, no blind spot.
    Gated,
    /// Plain masked-convolution PixelCNN: a `first_kernel`² mask-A layer, then
    /// `blocks` residual `kernel`² mask-B layers. It has a blind spot.
    Plain,
}

/// A PixelCNN architecture.
///
/// Gated layers (layer 0 is the mask-A layer, layers `1..=blocks` the gated
/// blocks) work on `channels` gated maps, from `2 * channels` pre-activations
/// split as `[tanh half, sigmoid half]`. The head is
/// `ReLU → 1×1 (channels→head) → ReLU → 1×1 (head→levels)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Arch {
    /// Network kind.
    pub variant: Variant,
    /// Image height in pixels.
    pub height: usize,
    /// Image width in pixels.
    pub width: usize,
    /// Number of intensity levels K, 2 (binary) to 256. Inputs are fed as
    /// `level / (K - 1)`; the network outputs K logits per pixel.
    pub levels: usize,
    /// Number of classes for class-conditional models; 0 means unconditional.
    pub classes: usize,
    /// Gated width p (plain: feature maps per layer).
    pub channels: usize,
    /// Number of blocks after the first layer.
    pub blocks: usize,
    /// Kernel size of the first (mask A) layer: odd, at least 3.
    pub first_kernel: usize,
    /// Kernel size of later layers: odd, at least 1 (plain: at least 3).
    pub kernel: usize,
    /// Width of the hidden 1×1 layer of the output head.
    pub head: usize,
}

/// Why an [`Arch`] is not acceptable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArchError {
    /// A size is zero or above its limit.
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: usize,
        /// Smallest accepted value.
        min: usize,
        /// Largest accepted value.
        max: usize,
    },
    /// A kernel size is even; masks need a centre tap.
    EvenKernel {
        /// Which field.
        field: &'static str,
        /// The value given.
        value: usize,
    },
    /// A derived size (parameters, state buffer) overflows `usize`.
    TooLarge,
}

impl fmt::Display for ArchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArchError::OutOfRange { field, value, min, max } => {
                write!(f, "{field} is {value}, expected {min} to {max}")
            }
            ArchError::EvenKernel { field, value } => {
                write!(f, "{field} is {value}, expected an odd kernel size")
            }
            ArchError::TooLarge => f.write_str("the architecture's sizes overflow"),
        }
    }
}

impl core::error::Error for ArchError {}

impl Arch {
    /// A small class-conditional gated model for binarized 28×28 MNIST.
    pub const MNIST_GATED: Arch = Arch {
        variant: Variant::Gated,
        height: 28,
        width: 28,
        levels: 2,
        classes: 10,
        channels: 32,
        blocks: 5,
        first_kernel: 7,
        kernel: 3,
        head: 32,
    };

    /// The shipped default model's architecture (`models/gated-mnist.onnx`):
    /// [`Arch::MNIST_GATED`] with 8 gated blocks (192,738 parameters).
    pub const MNIST_DEFAULT: Arch = Arch { blocks: 8, ..Arch::MNIST_GATED };

    /// Checks every field against its range and that derived sizes fit.
    ///
    /// # Errors
    /// [`ArchError`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), ArchError> {
        let range = |field, value: usize, min, max| {
            if value < min || value > max {
                Err(ArchError::OutOfRange { field, value, min, max })
            } else {
                Ok(())
            }
        };
        range("height", self.height, 1, MAX_SIDE)?;
        range("width", self.width, 1, MAX_SIDE)?;
        range("levels", self.levels, 2, 256)?;
        range("classes", self.classes, 0, MAX_CLASSES)?;
        range("channels", self.channels, 1, MAX_CHANNELS)?;
        range("blocks", self.blocks, 0, MAX_BLOCKS)?;
        range("head", self.head, 1, MAX_CHANNELS)?;
        range("first_kernel", self.first_kernel, 3, MAX_KERNEL)?;
        let min_kernel = match self.variant {
            Variant::Gated => 1,
            Variant::Plain => 3,
        };
        range("kernel", self.kernel, min_kernel, MAX_KERNEL)?;
        if self.first_kernel.is_multiple_of(2) {
            return Err(ArchError::EvenKernel { field: "first_kernel", value: self.first_kernel });
        }
        if self.kernel.is_multiple_of(2) {
            return Err(ArchError::EvenKernel { field: "kernel", value: self.kernel });
        }
        self.checked_param_count().ok_or(ArchError::TooLarge)?;
        Ok(())
    }

    /// Number of layers: the first layer plus the blocks.
    pub const fn layers(&self) -> usize {
        1 + self.blocks
    }

    /// Kernel size of `layer`.
    pub const fn kernel_of(&self, layer: usize) -> usize {
        if layer == 0 {
            self.first_kernel
        } else {
            self.kernel
        }
    }

    /// Half-width of `layer`'s kernel: how far it reaches up, left and right.
    pub const fn radius_of(&self, layer: usize) -> usize {
        self.kernel_of(layer) / 2
    }

    /// Input channels of `layer`: the image for layer 0, the hidden maps later.
    pub const fn input_channels_of(&self, layer: usize) -> usize {
        if layer == 0 {
            1
        } else {
            self.channels
        }
    }

    /// Number of pixels.
    pub const fn pixels(&self) -> usize {
        self.height * self.width
    }

    /// Total number of f32 parameters, or `None` on overflow.
    pub fn checked_param_count(&self) -> Option<usize> {
        let mut total = 0usize;
        for spec in self.tensors() {
            total = total.checked_add(spec.checked_len()?)?;
        }
        Some(total)
    }

    /// Total number of parameters. Call [`Arch::validate`] first.
    pub fn param_count(&self) -> usize {
        self.checked_param_count().unwrap_or(usize::MAX)
    }

    /// How far the receptive field of a pixel reaches left and right:
    /// `first_kernel / 2 + blocks * (kernel / 2)`.
    pub const fn reach(&self) -> usize {
        self.radius_of(0) + self.blocks * self.radius_of(1)
    }

    /// Multiply-accumulates per pixel of incremental sampling (gated) or of
    /// one full forward pass divided by the pixels (plain), counting every
    /// kernel tap: the vertical stack's row work spread over the row's
    /// pixels, plus the horizontal stack, the links and the head.
    pub fn macs_per_pixel(&self) -> u64 {
        let (w, p) = (self.width as u64, self.channels as u64);
        let mut per_pixel = 0u64;
        let mut per_row = 0u64;
        for l in 0..self.layers() {
            let (r, k, cin) = (
                self.radius_of(l) as u64,
                self.kernel_of(l) as u64,
                self.input_channels_of(l) as u64,
            );
            let left = if l == 0 { r } else { r + 1 };
            match self.variant {
                Variant::Gated => {
                    per_row += w * 2 * p * ((r + 1) * k * cin + 2 * p);
                    per_pixel += 2 * p * left * cin + if l > 0 { p * p } else { 0 };
                }
                Variant::Plain => per_pixel += p * (r * k + left) * cin,
            }
        }
        per_pixel += p * self.head as u64 + self.head as u64 * self.levels as u64;
        per_pixel + per_row / w.max(1)
    }

    /// How many rows above a pixel its receptive field reaches: [`Arch::reach`]
    /// for the plain network; one more for the gated one, whose vertical
    /// kernels include their own row and whose link reads the row above.
    pub const fn reach_up(&self) -> usize {
        match self.variant {
            Variant::Gated => self.reach() + 1,
            Variant::Plain => self.reach(),
        }
    }
}
