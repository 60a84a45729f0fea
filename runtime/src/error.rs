//! The runtime's error type: small, `Copy`, and carrying the numbers a reader
//! needs to fix the call.

use crate::arch::ArchError;
use core::fmt;

/// Everything the runtime can refuse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The architecture description is invalid.
    Arch(ArchError),
    /// The parameter slice has the wrong number of values.
    ParamCount {
        /// Values the architecture needs.
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// A parameter is NaN or infinite.
    NonFinite {
        /// Index of the first such value in the parameter slice.
        index: usize,
    },
    /// A caller-provided buffer is too small.
    BufferTooSmall {
        /// Elements needed.
        needed: usize,
        /// Elements given.
        found: usize,
    },
    /// An image (or mask) has the wrong number of pixels.
    ImageSize {
        /// Pixels expected: height × width.
        expected: usize,
        /// Pixels given.
        found: usize,
    },
    /// A pixel level is not below the model's number of levels.
    LevelOutOfRange {
        /// Raster index of the pixel.
        pixel: usize,
        /// The level found.
        level: u8,
        /// The model's number of levels.
        levels: usize,
    },
    /// A class label is not below the model's number of classes.
    LabelOutOfRange {
        /// The label given.
        label: usize,
        /// The model's number of classes.
        classes: usize,
    },
    /// A class-conditional model was used without a label.
    MissingLabel {
        /// The model's number of classes.
        classes: usize,
    },
    /// A label was given to an unconditional model.
    UnconditionalModel,
    /// The temperature is not a finite number above zero.
    InvalidTemperature,
    /// Every pixel has been produced already.
    ImageComplete,
    /// The operation needs a Gated PixelCNN; the model is a plain PixelCNN.
    NeedsGated,
    /// The plain PixelCNN's executor was given a Gated PixelCNN.
    NeedsPlain,
    /// An int8 requantization multiplier is out of range.
    InvalidRequant {
        /// Index of the `(multiplier, shift)` pair.
        index: usize,
    },
    /// An int8 dot product could overflow its int32 accumulator.
    RowTooLong {
        /// Longest row accepted.
        max: usize,
    },
    /// An output buffer is too short.
    OutputFull {
        /// Bytes the output needs.
        needed: usize,
        /// Bytes the buffer has.
        found: usize,
    },
    /// Compressed data is damaged: its stream does not decode to an image
    /// (it reads past its own end, or names a class the model lacks).
    CorruptStream,
    /// A lockstep batch was given per-image values (classes, levels, random
    /// streams, images) for a different number of images than it runs.
    LaneCount {
        /// Images the batch runs.
        expected: usize,
        /// Values given.
        found: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Arch(e) => write!(f, "invalid architecture: {e}"),
            Error::ParamCount { expected, found } => {
                write!(f, "the architecture needs {expected} parameters, found {found}")
            }
            Error::NonFinite { index } => {
                write!(f, "parameter {index} is NaN or infinite")
            }
            Error::BufferTooSmall { needed, found } => {
                write!(f, "buffer too small: needs {needed} elements, found {found}")
            }
            Error::ImageSize { expected, found } => {
                write!(f, "image has {found} pixels, the model expects {expected}")
            }
            Error::LevelOutOfRange { pixel, level, levels } => write!(
                f,
                "pixel {pixel} has level {level}, the model has {levels} levels (0 to {})",
                levels - 1
            ),
            Error::LabelOutOfRange { label, classes } => write!(
                f,
                "class label {label} out of range: the model has {classes} classes (0 to {})",
                classes.saturating_sub(1)
            ),
            Error::MissingLabel { classes } => {
                write!(f, "the model is class-conditional: give a label from 0 to {}", classes - 1)
            }
            Error::UnconditionalModel => {
                f.write_str("the model is unconditional: it takes no class label")
            }
            Error::InvalidTemperature => {
                f.write_str("temperature must be a finite number above zero")
            }
            Error::ImageComplete => f.write_str("every pixel of the image is already produced"),
            Error::NeedsGated => {
                f.write_str("this needs a Gated PixelCNN; the model is a plain PixelCNN")
            }
            Error::NeedsPlain => {
                f.write_str("this executor runs a plain PixelCNN; the model is a Gated PixelCNN")
            }
            Error::InvalidRequant { index } => write!(
                f,
                "int8 requantization multiplier {index} is out of range (mantissa must be >= 0, \
                 shift -31 to 30): the .pcnn file is damaged or not from `pixelcnn convert`; \
                 convert the model again"
            ),
            Error::RowTooLong { max } => write!(
                f,
                "a layer's dot product is longer than {max} terms, too long for int8 inference"
            ),
            Error::OutputFull { needed, found } => {
                write!(f, "the output needs {needed} bytes, the buffer has {found}")
            }
            Error::CorruptStream => f.write_str(
                "the compressed image is damaged: its stream does not decode to an image",
            ),
            Error::LaneCount { expected: 0, .. } => {
                f.write_str("a lockstep batch needs at least one image")
            }
            Error::LaneCount { expected, found } => write!(
                f,
                "the lockstep batch runs {expected} images, but {found} per-image values were given"
            ),
        }
    }
}

impl core::error::Error for Error {}

impl From<ArchError> for Error {
    fn from(e: ArchError) -> Self {
        Error::Arch(e)
    }
}
