//! What an executor needs before it runs: the length of its state buffer
//! (per variant and precision) and the checks of its class label and
//! temperature. Depends only on the architecture, so every executor, the
//! file format and firmware can size and check things from here.

use crate::arch::{Arch, Variant};
use crate::error::Error;

/// Lengths (in f32 elements) of the parts of the incremental state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLayout {
    /// The image rows the first vertical layer reads, plus the current row.
    pub image_rows: usize,
    /// Vertical rings of layers `1..layers`: `(r + 1) × width × channels` each.
    pub vertical_rings: usize,
    /// Per-layer v→h link of the row above: `width × 2 channels` each.
    pub links: usize,
    /// Left windows of layers `1..layers`: `(r + 1) × channels` each.
    pub left_windows: usize,
    /// Per-layer vertical and horizontal biases with the class folded in.
    pub biases: usize,
    /// Scratch: one row of vertical pre-activations, one pixel's horizontal
    /// pre-activation, gate output, top hidden state, head and logits.
    pub scratch: usize,
}

const fn add(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => a.checked_add(b),
        _ => None,
    }
}

const fn mul(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    match (a, b) {
        (Some(a), Some(b)) => a.checked_mul(b),
        _ => None,
    }
}

impl StateLayout {
    /// The layout for `arch`, or `None` when a size overflows.
    pub const fn checked(arch: &Arch) -> Option<StateLayout> {
        let w = Some(arch.width);
        let p = Some(arch.channels);
        let p2 = mul(Some(2), p);
        let blocks = Some(arch.blocks);
        let layers = add(blocks, Some(1));
        let r = arch.radius_of(1);
        let image_rows = mul(Some(arch.radius_of(0) + 2), w);
        let vertical_rings = mul(blocks, mul(Some(r + 1), mul(w, p)));
        let links = mul(layers, mul(w, p2));
        let left_windows = mul(blocks, mul(Some(r + 1), p));
        let biases = mul(layers, mul(Some(2), p2));
        let scratch =
            add(add(mul(w, p2), add(p2, mul(Some(2), p))), add(Some(arch.head), Some(arch.levels)));
        match (image_rows, vertical_rings, links, left_windows, biases, scratch) {
            (
                Some(image_rows),
                Some(vertical_rings),
                Some(links),
                Some(left_windows),
                Some(biases),
                Some(scratch),
            ) => {
                let layout = StateLayout {
                    image_rows,
                    vertical_rings,
                    links,
                    left_windows,
                    biases,
                    scratch,
                };
                match layout.checked_total() {
                    Some(_) => Some(layout),
                    None => None,
                }
            }
            _ => None,
        }
    }

    const fn checked_total(&self) -> Option<usize> {
        add(
            add(add(Some(self.image_rows), Some(self.vertical_rings)), Some(self.links)),
            add(add(Some(self.left_windows), Some(self.biases)), Some(self.scratch)),
        )
    }

    /// Total f32 elements.
    pub const fn total(&self) -> usize {
        match self.checked_total() {
            Some(t) => t,
            None => usize::MAX,
        }
    }
}

impl Arch {
    /// f32 elements of state the incremental executor needs; `const`, so
    /// firmware can declare `static mut STATE: [f32; ARCH.state_len()]`.
    ///
    /// Returns `usize::MAX` for an architecture whose sizes overflow (which
    /// [`Arch::validate`] rejects).
    pub const fn state_len(&self) -> usize {
        match StateLayout::checked(self) {
            Some(layout) => layout.total(),
            None => usize::MAX,
        }
    }

    /// f32 elements of state the executor of this variant needs: the gated
    /// executor's [`Arch::state_len`], or the plain executor's.
    ///
    /// Returns `usize::MAX` for an architecture whose sizes overflow.
    pub fn executor_state_len(&self) -> usize {
        match self.variant {
            Variant::Gated => self.state_len(),
            Variant::Plain => PlainLayout::checked(self).map_or(usize::MAX, |l| l.total()),
        }
    }
}

/// Lengths (in f32 elements) of the parts of the plain executor's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainLayout {
    /// Per layer, the input rows its kernel reads: `(r + 1) × width × in`.
    pub rings: usize,
    /// Per layer, the bias with the class folded in: `channels` each.
    pub biases: usize,
    /// The current pixel's layer output and accumulator (`2 × channels`),
    /// the head's hidden layer and the logits.
    pub scratch: usize,
}

impl PlainLayout {
    /// The layout for `arch`, or `None` when a size overflows.
    pub fn checked(arch: &Arch) -> Option<PlainLayout> {
        let mut rings = 0usize;
        for l in 0..arch.layers() {
            let ring = (arch.radius_of(l) + 1)
                .checked_mul(arch.width)?
                .checked_mul(arch.input_channels_of(l))?;
            rings = rings.checked_add(ring)?;
        }
        let biases = arch.layers().checked_mul(arch.channels)?;
        let scratch =
            arch.channels.checked_mul(2)?.checked_add(arch.head)?.checked_add(arch.levels)?;
        rings.checked_add(biases)?.checked_add(scratch)?;
        Some(PlainLayout { rings, biases, scratch })
    }

    /// Total f32 elements.
    pub fn total(&self) -> usize {
        self.rings + self.biases + self.scratch
    }
}

/// Element counts of the parts of the int8 state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuantStateLayout {
    /// int8: image rows read by the first vertical layer, and the current row.
    pub image_rows: usize,
    /// int8: vertical rings of layers `1..layers` (gate outputs).
    pub vertical_rings: usize,
    /// Zero positions on each side of every ring row: the kernel's radius
    /// with whole rows (so every position's window lies in the ring, and a
    /// row is one product read in place), else none.
    pub ring_pad: usize,
    /// int16: links of the row above, in gate-input units.
    pub links: usize,
    /// int8: left windows of layers `1..layers` (residual stream).
    pub left_windows: usize,
    /// int32: per-layer vertical and horizontal biases with the class folded in.
    pub biases: usize,
    /// int32 words of scratch: accumulators, gate inputs, the link input,
    /// gate output, residual, head, logits, and one vertical kernel window
    /// gathered contiguously (so each output is one dot product).
    pub scratch_words: usize,
}

const fn words(bytes: usize) -> usize {
    bytes.div_ceil(4)
}

/// Accumulators: the widest layer output, `2p` or the head's width.
pub(crate) const fn acc_len(arch: &Arch) -> usize {
    if arch.head > 2 * arch.channels {
        arch.head
    } else {
        2 * arch.channels
    }
}

/// Longest vertical kernel window, `(r + 1) · k · cin`, over the layers.
pub(crate) const fn gather_len(arch: &Arch) -> usize {
    let first = (arch.radius_of(0) + 1) * arch.first_kernel;
    let block = (arch.radius_of(1) + 1) * arch.kernel * arch.channels;
    if arch.blocks > 0 && block > first {
        block
    } else {
        first
    }
}

impl QuantStateLayout {
    /// The layout of `arch`, the smallest: the vertical stack computes one
    /// position of a row at a time. Call [`Arch::validate`] first: sizes
    /// saturate.
    pub const fn of(arch: &Arch) -> QuantStateLayout {
        QuantStateLayout::with_row_tile(arch, 1)
    }

    /// The layout of `arch` when the vertical stack computes `tile`
    /// positions of a row at once (one matrix product over them, so each
    /// weight load serves `tile` positions): the scratch of one position's
    /// accumulators, gate inputs, link input and kernel window, `tile`
    /// times. A tile of 0 counts as 1.
    pub const fn with_row_tile(arch: &Arch, tile: usize) -> QuantStateLayout {
        let (w, p, r) = (arch.width, arch.channels, arch.radius_of(1));
        let t = if tile == 0 { 1 } else { tile };
        let pad = if t >= w { r } else { 0 };
        let per_position = acc_len(arch)     // accumulators (i32)
            + words(4 * p)                   // gate inputs (i16)
            + words(2 * p)                   // link input (i8)
            + words(gather_len(arch)); // vertical window (i8)
        QuantStateLayout {
            image_rows: (arch.radius_of(0) + 2).saturating_mul(w),
            vertical_rings: arch
                .blocks
                .saturating_mul(r + 1)
                .saturating_mul(w.saturating_add(2 * pad))
                .saturating_mul(p),
            ring_pad: pad,
            links: (arch.blocks + 1).saturating_mul(w).saturating_mul(2 * p),
            left_windows: arch.blocks.saturating_mul(r + 1).saturating_mul(p),
            biases: (arch.blocks + 1).saturating_mul(4 * p),
            scratch_words: per_position.saturating_mul(t)
                + words(p) * 2            // gate output, residual (i8)
                + words(arch.head)        // head hidden (i8)
                + arch.levels, // logits (i32)
        }
    }

    /// Total i32 words.
    pub const fn words(&self) -> usize {
        words(self.image_rows)
            .saturating_add(words(self.vertical_rings))
            .saturating_add(words(self.links.saturating_mul(2)))
            .saturating_add(words(self.left_windows))
            .saturating_add(self.biases)
            .saturating_add(self.scratch_words)
    }
}

impl Arch {
    /// i32 words of state the int8 executor needs; `const`, for static
    /// buffers. The smallest state, what an MCU allocates.
    pub const fn quant_state_words(&self) -> usize {
        QuantStateLayout::of(self).words()
    }

    /// i32 words of state with which the int8 executor computes each row's
    /// vertical stack as one matrix product over all of the row's positions
    /// instead of one position at a time: faster where memory is not
    /// scarce (hosts), the same results bit for bit. An executor given at
    /// least this many words per image uses it.
    pub const fn quant_state_words_whole_rows(&self) -> usize {
        QuantStateLayout::with_row_tile(self, self.width).words()
    }
}

/// Checks a class label against the architecture: a label below
/// `classes` for a conditional model, none for an unconditional one.
///
/// # Errors
/// [`Error::MissingLabel`], [`Error::LabelOutOfRange`],
/// [`Error::UnconditionalModel`].
pub fn check_class(arch: &Arch, class: Option<usize>) -> Result<(), Error> {
    match (arch.classes, class) {
        (0, None) => Ok(()),
        (0, Some(_)) => Err(Error::UnconditionalModel),
        (classes, None) => Err(Error::MissingLabel { classes }),
        (classes, Some(label)) if label >= classes => {
            Err(Error::LabelOutOfRange { label, classes })
        }
        _ => Ok(()),
    }
}

/// Checks that a temperature is finite and above zero.
///
/// # Errors
/// [`Error::InvalidTemperature`] otherwise.
pub fn check_temperature(temperature: f32) -> Result<(), Error> {
    if temperature.is_finite() && temperature > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidTemperature)
    }
}
