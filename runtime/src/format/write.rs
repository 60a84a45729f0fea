//! Writing `.pcnn` files, and an aligned home for their bytes on a host.

use alloc::vec;
use alloc::vec::Vec;

use super::{checksum, section, ALIGN, CRC_OFFSET, ENTRY_LEN, HEADER_LEN, MAGIC, VERSION};
use crate::arch::Variant;
use crate::model::{Model, Precision};

/// Encodes `model` (and optional `notes`) as a `.pcnn` file.
pub fn to_bytes(model: &Model<'_>, notes: &str) -> Vec<u8> {
    let arch = model.arch();
    let mut sections: Vec<(u32, Vec<u8>)> = match model {
        Model::F32(w) => vec![(section::PARAMS_F32, bytemuck::cast_slice(w.as_slice()).to_vec())],
        Model::F16(w) => vec![(section::PARAMS_F16, bytemuck::cast_slice(w.as_slice()).to_vec())],
        Model::Int8(w) => {
            let (a, b, c) = w.as_slices();
            vec![
                (section::WEIGHTS_I8, bytemuck::cast_slice(a).to_vec()),
                (section::BIASES_I32, bytemuck::cast_slice(b).to_vec()),
                (section::REQUANT_I32, bytemuck::cast_slice(c).to_vec()),
            ]
        }
    };
    if !notes.is_empty() {
        sections.push((section::NOTES, notes.as_bytes().to_vec()));
    }
    let mut out = vec![0u8; HEADER_LEN + sections.len() * ENTRY_LEN];
    out[..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&VERSION.to_le_bytes());
    out[10] = match model.precision() {
        Precision::F32 => 0,
        Precision::F16 => 1,
        Precision::Int8 => 2,
    };
    out[11] = match arch.variant {
        Variant::Gated => 0,
        Variant::Plain => 1,
    };
    out[12..16].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    let fields = [
        arch.height,
        arch.width,
        arch.levels,
        arch.classes,
        arch.channels,
        arch.blocks,
        arch.first_kernel,
        arch.kernel,
        arch.head,
    ];
    for (i, v) in fields.iter().enumerate() {
        out[24 + 4 * i..28 + 4 * i].copy_from_slice(&(*v as u32).to_le_bytes());
    }
    for (i, (id, data)) in sections.iter().enumerate() {
        out.resize(out.len().next_multiple_of(ALIGN), 0);
        let entry = HEADER_LEN + i * ENTRY_LEN;
        out[entry..entry + 4].copy_from_slice(&id.to_le_bytes());
        let offset = out.len() as u32;
        out[entry + 4..entry + 8].copy_from_slice(&offset.to_le_bytes());
        out[entry + 8..entry + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    let len = out.len() as u32;
    out[16..20].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(&out);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Bytes in an 8-byte aligned buffer, so that [`super::parse`] can read them
/// in place (a `Vec<u8>` promises no alignment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes`.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        bytemuck::cast_slice_mut::<u64, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        AlignedBytes { words, len: bytes.len() }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.words)[..self.len]
    }
}
