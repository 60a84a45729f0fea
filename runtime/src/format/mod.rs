//! The `.pcnn` device model format: versioned, little-endian, 64-byte
//! aligned sections, CRC-32 checked, parsed zero-copy from `&[u8]` (flash).
//!
//! The bytes are untrusted: every length and offset is checked before use,
//! and any corruption gives a [`FormatError`], never a panic. The layout is
//! specified in `docs/model-format.md`.

#[cfg(feature = "alloc")]
mod write;

#[cfg(feature = "alloc")]
pub use write::{to_bytes, AlignedBytes};

use core::fmt;

use crate::arch::{Arch, ArchError, Variant};
use crate::error::Error;
use crate::model::{Model, Precision};
use crate::params::Weights;
use crate::quant::QuantWeights;

/// First eight bytes of every file.
pub const MAGIC: [u8; 8] = *b"PCNNEDGE";
/// The format version this runtime reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Bytes of one section-table entry.
pub const ENTRY_LEN: usize = 16;
/// Alignment of every section's offset.
pub const ALIGN: usize = 64;
/// Most sections a file may list.
pub const MAX_SECTIONS: usize = 16;
/// Byte offset of the CRC-32 field (computed with the field zeroed).
pub const CRC_OFFSET: usize = 20;

/// Section identifiers.
pub mod section {
    /// All parameters as f32, in layout order.
    pub const PARAMS_F32: u32 = 1;
    /// All parameters as f16.
    pub const PARAMS_F16: u32 = 2;
    /// int8 weights.
    pub const WEIGHTS_I8: u32 = 3;
    /// int32 biases and class tables.
    pub const BIASES_I32: u32 = 4;
    /// int32 `(multiplier, shift)` pairs.
    pub const REQUANT_I32: u32 = 5;
    /// Optional UTF-8 notes (source, measured NLL); ignored by inference.
    pub const NOTES: u32 = 16;
}

/// CRC-32 (ISO-HDLC, as in zip and PNG).
pub(crate) const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Why bytes are not a usable `.pcnn` model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the header, or than the header's file length.
    Truncated {
        /// Bytes needed.
        needed: usize,
        /// Bytes present.
        found: usize,
    },
    /// The file does not start with [`MAGIC`].
    BadMagic,
    /// A version this runtime does not read.
    UnsupportedVersion {
        /// The file's version.
        found: u16,
    },
    /// The header's file length differs from the number of bytes.
    LengthMismatch {
        /// Length in the header.
        header: usize,
        /// Bytes present.
        found: usize,
    },
    /// The checksum does not match: the file is corrupt.
    Checksum {
        /// CRC-32 in the header.
        stored: u32,
        /// CRC-32 of the bytes.
        computed: u32,
    },
    /// An unknown precision or variant code.
    UnknownCode {
        /// Which field.
        field: &'static str,
        /// The code found.
        code: u32,
    },
    /// A section is outside the file, overlaps another or is misaligned.
    BadSection {
        /// The section's identifier.
        id: u32,
    },
    /// A section the precision needs is missing or listed twice.
    MissingSection {
        /// The section's identifier.
        id: u32,
    },
    /// A section's length does not match the architecture.
    SectionLength {
        /// The section's identifier.
        id: u32,
        /// Bytes the architecture needs.
        expected: usize,
        /// Bytes in the section.
        found: usize,
    },
    /// The bytes are not 4-byte aligned in memory, so they cannot be read
    /// in place; copy them into an aligned buffer ([`AlignedBytes`]).
    Misaligned,
    /// A big-endian machine: the format is little-endian.
    BigEndian,
    /// The sections parse but the model is invalid (architecture, NaN
    /// weights, multipliers out of range).
    Model(Error),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            FormatError::Truncated { needed, found } => {
                write!(f, "truncated model file: needs {needed} bytes, has {found}")
            }
            FormatError::BadMagic => {
                f.write_str("not a .pcnn model (bad magic); convert one with `pixelcnn convert`")
            }
            FormatError::UnsupportedVersion { found } => write!(
                f,
                "model format version {found} is not supported (this runtime reads version {VERSION}); reconvert it"
            ),
            FormatError::LengthMismatch { header, found } => {
                write!(f, "the header says {header} bytes but the file has {found}")
            }
            FormatError::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the model file is corrupt"
            ),
            FormatError::UnknownCode { field, code } => write!(f, "unknown {field} code {code}"),
            FormatError::BadSection { id } => {
                write!(f, "section {id} lies outside the file, overlaps another or is misaligned")
            }
            FormatError::MissingSection { id } => {
                write!(f, "section {id} is missing or listed twice")
            }
            FormatError::SectionLength { id, expected, found } => write!(
                f,
                "section {id} has {found} bytes, the architecture needs {expected}"
            ),
            FormatError::Misaligned => f.write_str(
                "model bytes are not 4-byte aligned in memory; place them in an aligned buffer",
            ),
            FormatError::BigEndian => f.write_str("the .pcnn format needs a little-endian machine"),
            FormatError::Model(e) => write!(f, "invalid model: {e}"),
        }
    }
}

impl core::error::Error for FormatError {}

impl From<Error> for FormatError {
    fn from(e: Error) -> Self {
        FormatError::Model(e)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The CRC-32 a file must carry: of every byte, with the checksum field
/// read as zero. (Tests use it to craft files that pass the checksum.)
///
/// # Panics
/// If `bytes` is shorter than the header.
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut digest = CRC.digest();
    digest.update(&bytes[..CRC_OFFSET]);
    digest.update(&[0; 4]);
    digest.update(&bytes[CRC_OFFSET + 4..]);
    digest.finalize()
}

/// The header fields and section table of a file, checked for consistency.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    /// Format version.
    pub version: u16,
    /// Precision of the weights.
    pub precision: Precision,
    /// Architecture.
    pub arch: Arch,
    /// Bytes of the file.
    pub file_len: usize,
    sections: [(u32, usize, usize); MAX_SECTIONS],
    count: usize,
}

impl Header {
    /// Bytes of section `id`, if listed.
    fn section<'a>(&self, bytes: &'a [u8], id: u32) -> Option<&'a [u8]> {
        self.sections[..self.count]
            .iter()
            .find(|s| s.0 == id)
            .map(|&(_, offset, len)| &bytes[offset..offset + len])
    }

    /// Identifier, offset and length of every section.
    pub fn sections(&self) -> impl Iterator<Item = (u32, usize, usize)> + '_ {
        self.sections[..self.count].iter().copied()
    }
}

/// Reads and checks the header and section table.
///
/// # Errors
/// [`FormatError`] for anything out of place.
pub fn read_header(bytes: &[u8]) -> Result<Header, FormatError> {
    if bytes.len() < HEADER_LEN {
        return Err(FormatError::Truncated { needed: HEADER_LEN, found: bytes.len() });
    }
    if bytes[..8] != MAGIC {
        return Err(FormatError::BadMagic);
    }
    let version = u16_at(bytes, 8);
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion { found: version });
    }
    let file_len = u32_at(bytes, 16) as usize;
    if file_len > bytes.len() {
        return Err(FormatError::Truncated { needed: file_len, found: bytes.len() });
    }
    if file_len != bytes.len() {
        return Err(FormatError::LengthMismatch { header: file_len, found: bytes.len() });
    }
    let stored = u32_at(bytes, CRC_OFFSET);
    let computed = checksum(bytes);
    if stored != computed {
        return Err(FormatError::Checksum { stored, computed });
    }
    let precision = match bytes[10] {
        0 => Precision::F32,
        1 => Precision::F16,
        2 => Precision::Int8,
        code => return Err(FormatError::UnknownCode { field: "precision", code: code.into() }),
    };
    let variant = match bytes[11] {
        0 => Variant::Gated,
        1 => Variant::Plain,
        code => return Err(FormatError::UnknownCode { field: "variant", code: code.into() }),
    };
    let field = |i: usize| u32_at(bytes, 24 + 4 * i) as usize;
    let arch = Arch {
        variant,
        height: field(0),
        width: field(1),
        levels: field(2),
        classes: field(3),
        channels: field(4),
        blocks: field(5),
        first_kernel: field(6),
        kernel: field(7),
        head: field(8),
    };
    arch.validate().map_err(|e| FormatError::Model(e.into()))?;
    let count = u32_at(bytes, 12) as usize;
    if count > MAX_SECTIONS {
        return Err(FormatError::UnknownCode { field: "section count", code: count as u32 });
    }
    let table_end = HEADER_LEN + count * ENTRY_LEN;
    if table_end > file_len {
        return Err(FormatError::Truncated { needed: table_end, found: file_len });
    }
    let mut sections = [(0u32, 0usize, 0usize); MAX_SECTIONS];
    let mut previous_end = table_end;
    for (i, entry) in sections.iter_mut().take(count).enumerate() {
        let at = HEADER_LEN + i * ENTRY_LEN;
        let (id, offset, len) =
            (u32_at(bytes, at), u32_at(bytes, at + 4) as usize, u32_at(bytes, at + 8) as usize);
        let end = offset.checked_add(len).ok_or(FormatError::BadSection { id })?;
        // Sections in increasing order, aligned, inside the file.
        if offset % ALIGN != 0 || offset < previous_end || end > file_len {
            return Err(FormatError::BadSection { id });
        }
        previous_end = end;
        *entry = (id, offset, len);
    }
    Ok(Header { version, precision, arch, file_len, sections, count })
}

/// One required section, exactly `expected` bytes.
fn required<'a>(
    header: &Header,
    bytes: &'a [u8],
    id: u32,
    expected: usize,
) -> Result<&'a [u8], FormatError> {
    if header.sections().filter(|s| s.0 == id).count() != 1 {
        return Err(FormatError::MissingSection { id });
    }
    let data = header.section(bytes, id).ok_or(FormatError::MissingSection { id })?;
    if data.len() != expected {
        return Err(FormatError::SectionLength { id, expected, found: data.len() });
    }
    Ok(data)
}

fn cast<T: bytemuck::Pod>(data: &[u8]) -> Result<&[T], FormatError> {
    bytemuck::try_cast_slice(data).map_err(|_| FormatError::Misaligned)
}

/// Parses a model in place. `bytes` must be 4-byte aligned in memory
/// (`include_bytes!` is not: wrap it in an aligned struct, see
/// `firmware-sim`).
///
/// # Errors
/// [`FormatError`] for anything out of place; the model's own checks
/// (NaN weights, multipliers) as [`FormatError::Model`].
pub fn parse(bytes: &[u8]) -> Result<Model<'_>, FormatError> {
    if cfg!(target_endian = "big") {
        return Err(FormatError::BigEndian);
    }
    let header = read_header(bytes)?;
    let arch = header.arch;
    if bytes.as_ptr().align_offset(4) != 0 {
        return Err(FormatError::Misaligned);
    }
    // Sizes of a valid architecture fit usize as element counts, but not
    // necessarily as byte counts on a 32-bit target.
    let bytes_of = |count: usize, size: usize| {
        count.checked_mul(size).ok_or(FormatError::Model(Error::Arch(ArchError::TooLarge)))
    };
    let params = arch.param_count();
    let model = match header.precision {
        Precision::F32 => {
            let data = required(&header, bytes, section::PARAMS_F32, bytes_of(params, 4)?)?;
            Model::F32(Weights::new(arch, cast(data)?)?)
        }
        Precision::F16 => {
            let data = required(&header, bytes, section::PARAMS_F16, bytes_of(params, 2)?)?;
            Model::F16(Weights::new(arch, cast(data)?)?)
        }
        Precision::Int8 => {
            use crate::quant::weights::{bias_count, requant_entries, weight_count};
            if arch.variant != Variant::Gated {
                return Err(FormatError::Model(Error::NeedsGated));
            }
            let w = required(&header, bytes, section::WEIGHTS_I8, weight_count(&arch))?;
            let b = required(&header, bytes, section::BIASES_I32, bytes_of(bias_count(&arch), 4)?)?;
            let q = required(
                &header,
                bytes,
                section::REQUANT_I32,
                bytes_of(requant_entries(&arch), 8)?,
            )?;
            Model::Int8(QuantWeights::new(arch, cast(w)?, cast(b)?, cast(q)?)?)
        }
    };
    // The executor's state must be addressable too (it saturates otherwise).
    let state_bytes = model.state_words().checked_mul(4);
    if state_bytes.is_none_or(|b| b > isize::MAX as usize) {
        return Err(FormatError::Model(Error::Arch(ArchError::TooLarge)));
    }
    Ok(model)
}

/// The optional notes section, when present and valid UTF-8.
pub fn notes(bytes: &[u8]) -> Option<&str> {
    let header = read_header(bytes).ok()?;
    core::str::from_utf8(header.section(bytes, section::NOTES)?).ok()
}

/// Longest class name a model file may carry, in bytes.
pub const MAX_CLASS_NAME: usize = 64;

/// The notes key of class `i`'s name: a line `class_name.I=NAME`.
pub const CLASS_NAME_KEY: &str = "class_name.";

/// The class names the notes carry, as `(class, name)` in the order of the
/// lines (unchecked: see [`check_class_names`]).
pub fn class_name_lines(notes: &str) -> impl Iterator<Item = (Option<usize>, &str)> {
    notes.lines().filter_map(|line| {
        let (key, name) = line.strip_prefix(CLASS_NAME_KEY)?.split_once('=')?;
        Some((key.parse().ok(), name))
    })
}

/// Checks class names read from an untrusted file: one per class, each 1
/// to [`MAX_CLASS_NAME`] bytes of printable text, no two alike.
///
/// # Errors
/// What is wrong, in words.
#[cfg(feature = "alloc")]
pub fn check_class_names<S: AsRef<str>>(
    names: &[S],
    classes: usize,
) -> Result<(), alloc::string::String> {
    use alloc::format;
    if names.len() != classes {
        return Err(format!("{} class names for {classes} classes", names.len()));
    }
    for (i, name) in names.iter().map(AsRef::as_ref).enumerate() {
        if name.is_empty() || name.len() > MAX_CLASS_NAME || name.chars().any(char::is_control) {
            return Err(format!(
                "class {i}'s name must be 1 to {MAX_CLASS_NAME} bytes of printable text"
            ));
        }
        if names[..i].iter().any(|n| n.as_ref() == name) {
            return Err(format!("two classes are named {name:?}"));
        }
    }
    Ok(())
}
