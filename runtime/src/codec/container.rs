//! The `.pcnz` container: compressed images with what it takes to decode
//! them safely (the format is specified in `docs/compression.md`).
//!
//! ```text
//! offset  size  field
//!      0     4  magic "PCNZ"
//!      4     1  version (1)
//!      5     1  levels K
//!      6     2  width (u16, little-endian, as every field)
//!      8     2  height
//!     10     2  classes (0: unconditional)
//!     12     8  model id: FNV-1a (64 bits) of the .pcnn bytes
//!     20     4  count of images N
//!     24     …  N stream lengths, LEB128 varints
//!      …     …  the N streams, back to back
//!  end-4     4  CRC-32 (ISO-HDLC) of every byte before it
//! ```
//!
//! Parsing checks everything before a stream is decoded: the magic, the
//! version, the checksum, that the lengths are well-formed and that the
//! streams cover the rest of the file exactly. One image can be decoded
//! without decoding the others (its offset is the sum of the lengths
//! before it). The caller compares the model id and the geometry with its
//! model ([`Header::check_model`]).

use core::fmt;

/// The file's first bytes.
pub const MAGIC: [u8; 4] = *b"PCNZ";
/// The version this parser reads.
pub const VERSION: u8 = 1;
/// Bytes before the lengths.
pub const HEADER_LEN: usize = 24;

const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// FNV-1a (64 bits) of a model's `.pcnn` bytes: the id a container records,
/// so that a file is never decoded with another model.
pub fn model_id(pcnn: &[u8]) -> u64 {
    pcnn.iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

/// What the header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Levels per pixel.
    pub levels: u8,
    /// Image width.
    pub width: u16,
    /// Image height.
    pub height: u16,
    /// Classes of the model (0: unconditional).
    pub classes: u16,
    /// [`model_id`] of the model that coded the images.
    pub model_id: u64,
    /// Number of images.
    pub count: u32,
}

/// Why a container was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContainerError {
    /// Shorter than a header and a checksum.
    TooShort {
        /// Bytes found.
        found: usize,
    },
    /// Not a `.pcnz` file.
    BadMagic,
    /// A version this parser does not read.
    UnsupportedVersion {
        /// The file's version.
        found: u8,
    },
    /// The checksum does not match: the file is damaged or truncated.
    Checksum {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// The stream lengths are malformed or do not cover the file.
    Lengths,
    /// The file was made with another model.
    WrongModel {
        /// Id of the model given.
        expected: u64,
        /// Id the file records.
        found: u64,
    },
    /// The file's image geometry or class count is not the model's.
    WrongGeometry,
}

impl fmt::Display for ContainerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ContainerError::TooShort { found } => write!(
                f,
                "{found} bytes is too short for a .pcnz file (at least {} bytes)",
                HEADER_LEN + 4
            ),
            ContainerError::BadMagic => f.write_str("not a .pcnz file (no PCNZ magic)"),
            ContainerError::UnsupportedVersion { found } => {
                write!(f, ".pcnz version {found}; this tool reads version {VERSION}")
            }
            ContainerError::Checksum { stored, computed } => write!(
                f,
                "the file is damaged or truncated: checksum {computed:#010x}, stored {stored:#010x}"
            ),
            ContainerError::Lengths => {
                f.write_str("the file is damaged: its stream lengths do not cover it")
            }
            ContainerError::WrongModel { expected, found } => write!(
                f,
                "the file was compressed with another model (id {found:#018x}); this model's id \
                 is {expected:#018x}: give the model it was made with"
            ),
            ContainerError::WrongGeometry => {
                f.write_str("the file's image size, levels or classes are not the model's")
            }
        }
    }
}

impl core::error::Error for ContainerError {}

impl Header {
    /// Checks that a model with `arch` and `.pcnn` id `id` made this file.
    ///
    /// # Errors
    /// [`ContainerError::WrongModel`], [`ContainerError::WrongGeometry`].
    pub fn check_model(&self, arch: &crate::Arch, id: u64) -> Result<(), ContainerError> {
        if self.model_id != id {
            return Err(ContainerError::WrongModel { expected: id, found: self.model_id });
        }
        let geometry = (
            usize::from(self.levels),
            usize::from(self.width),
            usize::from(self.height),
            usize::from(self.classes),
        );
        if geometry != (arch.levels, arch.width, arch.height, arch.classes) {
            return Err(ContainerError::WrongGeometry);
        }
        Ok(())
    }

    /// The header of a file for `arch`'s images coded by the model `id`.
    pub fn for_model(arch: &crate::Arch, id: u64, count: u32) -> Header {
        Header {
            levels: arch.levels as u8,
            width: arch.width as u16,
            height: arch.height as u16,
            classes: arch.classes as u16,
            model_id: id,
            count,
        }
    }
}

/// A parsed container: its header and its streams, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Container<'a> {
    /// The header.
    pub header: Header,
    lengths: &'a [u8],
    streams: &'a [u8],
}

/// Reads one LEB128 varint of at most 32 bits from `bytes`: the value and
/// the bytes it took.
fn varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value = 0u32;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        let part = u32::from(b & 0x7f);
        if i == 4 && part > 0x0f {
            return None;
        }
        value |= part << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Parses a container.
///
/// # Errors
/// Any [`ContainerError`] but the model checks.
pub fn parse(bytes: &[u8]) -> Result<Container<'_>, ContainerError> {
    if bytes.len() < HEADER_LEN + 4 {
        return Err(ContainerError::TooShort { found: bytes.len() });
    }
    if bytes[..4] != MAGIC {
        return Err(ContainerError::BadMagic);
    }
    if bytes[4] != VERSION {
        return Err(ContainerError::UnsupportedVersion { found: bytes[4] });
    }
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let computed = CRC.checksum(body);
    if stored != computed {
        return Err(ContainerError::Checksum { stored, computed });
    }
    let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&body[12..20]);
    let header = Header {
        levels: body[5],
        width: u16_at(6),
        height: u16_at(8),
        classes: u16_at(10),
        model_id: u64::from_le_bytes(id),
        count: u32::from_le_bytes([body[20], body[21], body[22], body[23]]),
    };
    // Walk the lengths: well-formed, and summing to what follows them.
    let rest = &body[HEADER_LEN..];
    let (mut at, mut total) = (0usize, 0usize);
    for _ in 0..header.count {
        let (len, used) = varint(&rest[at..]).ok_or(ContainerError::Lengths)?;
        at += used;
        total = total.checked_add(len as usize).ok_or(ContainerError::Lengths)?;
    }
    let (lengths, streams) = rest.split_at(at);
    if total != streams.len() {
        return Err(ContainerError::Lengths);
    }
    Ok(Container { header, lengths, streams })
}

impl<'a> Container<'a> {
    /// The streams in order.
    pub fn streams(&self) -> Streams<'a> {
        Streams { lengths: self.lengths, streams: self.streams }
    }

    /// Stream `i`, without decoding the others; `None` past the last.
    pub fn stream(&self, i: usize) -> Option<&'a [u8]> {
        self.streams().nth(i)
    }
}

/// The streams of a [`Container`], in order.
#[derive(Clone, Debug)]
pub struct Streams<'a> {
    lengths: &'a [u8],
    streams: &'a [u8],
}

impl<'a> Iterator for Streams<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // Parsing checked every length and that they cover the streams.
        let (len, used) = varint(self.lengths)?;
        self.lengths = &self.lengths[used..];
        let (stream, rest) = self.streams.split_at(len as usize);
        self.streams = rest;
        Some(stream)
    }
}

/// Writes a container of `streams` under `header` (whose `count` must be
/// `streams.len()`).
#[cfg(feature = "alloc")]
pub fn to_bytes(header: &Header, streams: &[&[u8]]) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec::Vec::new();
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(header.levels);
    out.extend_from_slice(&header.width.to_le_bytes());
    out.extend_from_slice(&header.height.to_le_bytes());
    out.extend_from_slice(&header.classes.to_le_bytes());
    out.extend_from_slice(&header.model_id.to_le_bytes());
    out.extend_from_slice(&(streams.len() as u32).to_le_bytes());
    for s in streams {
        let mut v = s.len() as u32;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    for s in streams {
        out.extend_from_slice(s);
    }
    let crc = CRC.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn sample() -> Vec<u8> {
        let header =
            Header { levels: 2, width: 28, height: 28, classes: 10, model_id: 7, count: 3 };
        let streams: Vec<Vec<u8>> = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        let refs: Vec<&[u8]> = streams.iter().map(Vec::as_slice).collect();
        to_bytes(&header, &refs)
    }

    #[test]
    fn written_containers_parse_back() {
        let bytes = sample();
        let c = parse(&bytes).unwrap();
        assert_eq!(c.header.count, 3);
        let got: Vec<&[u8]> = c.streams().collect();
        assert_eq!(got, [&[1u8, 2, 3][..], &[][..], &[9u8; 300][..]]);
        assert_eq!(c.stream(2).map(<[u8]>::len), Some(300));
        assert_eq!(c.stream(3), None);
    }

    #[test]
    fn each_damage_has_its_error() {
        let good = sample();
        assert_eq!(parse(&good[..10]).unwrap_err(), ContainerError::TooShort { found: 10 });
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(parse(&bad).unwrap_err(), ContainerError::BadMagic);
        let mut bad = good.clone();
        bad[4] = 2;
        assert_eq!(parse(&bad).unwrap_err(), ContainerError::UnsupportedVersion { found: 2 });
        let mut bad = good.clone();
        bad[40] ^= 1;
        assert!(matches!(parse(&bad).unwrap_err(), ContainerError::Checksum { .. }));
        assert!(matches!(
            parse(&good[..good.len() - 1]).unwrap_err(),
            ContainerError::Checksum { .. }
        ));
        // Lengths that overrun the file, with a valid checksum.
        let mut bad = good[..good.len() - 4].to_vec();
        bad[24] = 0x7f;
        let crc = CRC.checksum(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(parse(&bad).unwrap_err(), ContainerError::Lengths);
        // A count far beyond the file.
        let mut bad = good[..good.len() - 4].to_vec();
        bad[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = CRC.checksum(&bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(parse(&bad).unwrap_err(), ContainerError::Lengths);
    }

    #[test]
    fn varints_reject_overlong_values() {
        assert_eq!(varint(&[0x7f]), Some((127, 1)));
        assert_eq!(varint(&[0x80, 0x01]), Some((128, 2)));
        assert_eq!(varint(&[0xff, 0xff, 0xff, 0xff, 0x0f]), Some((u32::MAX, 5)));
        assert_eq!(varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        assert_eq!(varint(&[0x80, 0x80]), None);
    }
}
