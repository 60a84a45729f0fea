//! A byte-oriented range coder (Schindler's carry-propagating scheme, as in
//! LZMA) with the shortest termination: the coded value ends in as many
//! zero bytes as its final interval allows, and those are not written,
//! because the decoder reads zeros past the end of its input.
//!
//! Written here rather than taken from a crate: `constriction`'s coders
//! emit whole 32-bit words and need `alloc` for their buffers, which costs
//! up to eight bytes at the end of every stream; a digit's whole stream is
//! about fifteen bytes, and the microcontroller decoder has no heap.
//!
//! Frequencies are integers with a total of at most [`MAX_TOTAL`]; every
//! step is integer arithmetic, so any two machines code the same bytes.

use crate::error::Error;

/// Largest total frequency a symbol may be coded against.
pub const MAX_TOTAL: u32 = 1 << 16;

/// Below this the range is renormalized (shifted out a byte at a time).
const TOP: u32 = 1 << 24;

/// Encodes symbols into a caller-provided buffer.
#[derive(Debug)]
pub struct Encoder<'a> {
    out: &'a mut [u8],
    len: usize,
    low: u64,
    range: u32,
    /// The byte below the pending 0xFFs, held back until no carry can
    /// change it; `None` before the first byte (LZMA writes a leading 0
    /// there, which carries no information and is left out).
    cache: Option<u8>,
    pending: usize,
}

impl<'a> Encoder<'a> {
    /// An encoder writing into `out`.
    pub fn new(out: &'a mut [u8]) -> Self {
        Encoder { out, len: 0, low: 0, range: u32::MAX, cache: None, pending: 0 }
    }

    fn put(&mut self, byte: u8) {
        if let Some(slot) = self.out.get_mut(self.len) {
            *slot = byte;
        }
        self.len += 1;
    }

    fn shift_low(&mut self) {
        if self.low < 0xFF00_0000 || self.low >= 1 << 32 {
            let carry = (self.low >> 32) as u8;
            if let Some(cache) = self.cache {
                self.put(cache.wrapping_add(carry));
            }
            for _ in 0..self.pending {
                self.put(0xFFu8.wrapping_add(carry));
            }
            self.pending = 0;
            self.cache = Some((self.low >> 24) as u8);
        } else {
            self.pending += 1;
        }
        self.low = (self.low & 0x00FF_FFFF) << 8;
    }

    /// Codes the symbol that owns `[cum, cum + freq)` of `total`.
    ///
    /// # Panics
    /// If `freq == 0`, `cum + freq > total` or `total > MAX_TOTAL`: the
    /// model's tables are built to satisfy this.
    pub fn encode(&mut self, cum: u32, freq: u32, total: u32) {
        assert!(freq > 0 && cum + freq <= total && total <= MAX_TOTAL, "range coder frequencies");
        let r = self.range / total;
        self.low += u64::from(r) * u64::from(cum);
        self.range = r * freq;
        while self.range < TOP {
            self.range <<= 8;
            self.shift_low();
        }
    }

    /// Ends the stream: the value with the most trailing zero bits inside
    /// the final interval, written without its trailing zero bytes.
    /// Returns the number of bytes.
    ///
    /// # Errors
    /// [`Error::OutputFull`] when `out` is shorter than the stream (the
    /// stream's length is in the error).
    pub fn finish(mut self) -> Result<usize, Error> {
        let end = self.low + u64::from(self.range);
        for bits in [32, 24, 16, 8, 0] {
            let mask = (1u64 << bits) - 1;
            let value = (self.low + mask) & !mask;
            if value < end {
                self.low = value;
                break;
            }
        }
        for _ in 0..5 {
            self.shift_low();
        }
        let mut len = self.len;
        while len > 0 && self.out.get(len - 1) == Some(&0) {
            len -= 1;
        }
        if self.len > self.out.len() {
            return Err(Error::OutputFull { needed: self.len, found: self.out.len() });
        }
        Ok(len)
    }
}

/// Decodes symbols from bytes that an [`Encoder`] wrote; reads zeros past
/// their end. Any bytes decode to some symbols without panicking: telling
/// a damaged stream from a good one is the container's job (a checksum).
#[derive(Debug)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    code: u32,
    range: u32,
    /// `range / total` of the last [`Decoder::target`].
    step: u32,
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        let mut d = Decoder { input, pos: 0, code: 0, range: u32::MAX, step: 1 };
        for _ in 0..4 {
            d.code = (d.code << 8) | u32::from(d.next());
        }
        d
    }

    fn next(&mut self) -> u8 {
        let byte = self.input.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        byte
    }

    /// The position of the next symbol among `total`: the symbol that owns
    /// it is the one to pass to [`Decoder::consume`]. Always below `total`.
    ///
    /// # Panics
    /// If `total` is 0 or above [`MAX_TOTAL`].
    pub fn target(&mut self, total: u32) -> u32 {
        assert!(total > 0 && total <= MAX_TOTAL, "range coder total");
        self.step = self.range / total;
        (self.code / self.step).min(total - 1)
    }

    /// Takes the symbol `[cum, cum + freq)` found from the last
    /// [`Decoder::target`] out of the stream.
    pub fn consume(&mut self, cum: u32, freq: u32) {
        self.code = self.code.wrapping_sub(self.step.wrapping_mul(cum));
        self.range = self.step.wrapping_mul(freq).max(1);
        while self.range < TOP {
            self.range <<= 8;
            self.code = (self.code << 8) | u32::from(self.next());
        }
    }

    /// Bytes read so far, zeros past the end included.
    pub fn bytes_read(&self) -> usize {
        self.pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (cum, freq, total) of symbol `s` in a table of frequencies.
    fn slot(freqs: &[u32], s: usize) -> (u32, u32, u32) {
        (freqs[..s].iter().sum(), freqs[s], freqs.iter().sum())
    }

    fn round_trip(freqs: &[Vec<u32>], symbols: &[usize]) -> Vec<u8> {
        let mut buf = vec![0u8; 16 + symbols.len() * 3];
        let mut enc = Encoder::new(&mut buf);
        for (t, &s) in freqs.iter().zip(symbols) {
            let (c, f, n) = slot(t, s);
            enc.encode(c, f, n);
        }
        let len = enc.finish().unwrap();
        let bytes = buf[..len].to_vec();
        let mut dec = Decoder::new(&bytes);
        for (t, &s) in freqs.iter().zip(symbols) {
            let (_, _, n) = slot(t, s);
            let target = dec.target(n);
            let mut got = 0;
            while slot(t, got).0 + t[got] <= target {
                got += 1;
            }
            assert_eq!(got, s, "symbol");
            let (c, f, _) = slot(t, got);
            dec.consume(c, f);
        }
        bytes
    }

    proptest! {
        #[test]
        fn every_stream_decodes_to_its_symbols(
            steps in proptest::collection::vec(
                (proptest::collection::vec(1u32..20_000, 2..5), any::<u32>()), 0..300),
        ) {
            let freqs: Vec<Vec<u32>> = steps.iter().map(|(f, _)| {
                let total: u32 = f.iter().sum();
                // Keep totals within the coder's limit.
                f.iter().map(|&x| (u64::from(x) * u64::from(MAX_TOTAL - 8) / u64::from(total)).max(1) as u32).collect()
            }).collect();
            let symbols: Vec<usize> = steps.iter().zip(&freqs).map(|((_, r), f)| *r as usize % f.len()).collect();
            round_trip(&freqs, &symbols);
        }
    }

    #[test]
    fn long_runs_of_certain_symbols_cost_almost_nothing() {
        // 784 symbols at probability 65535/65536: about 0.02 bits in all.
        let t = vec![vec![65_535u32, 1]; 784];
        let bytes = round_trip(&t, &[0; 784]);
        assert!(bytes.len() <= 1, "{} bytes", bytes.len());
        // One improbable symbol (16 bits) among them: two or three bytes.
        let mut symbols = vec![0; 784];
        symbols[400] = 1;
        let bytes = round_trip(&t, &symbols);
        assert!((2..=3).contains(&bytes.len()), "{} bytes", bytes.len());
    }

    #[test]
    fn carries_through_pending_bytes_are_kept() {
        // Always the top symbol of a skewed table: low climbs towards the
        // interval's top, so bytes of 0xFF wait for carries.
        let t = vec![vec![1u32, 65_000, 535]; 500];
        let symbols: Vec<usize> = (0..500).map(|i| if i % 7 == 0 { 2 } else { 1 }).collect();
        round_trip(&t, &symbols);
        let symbols: Vec<usize> = (0..500).map(|i| [2, 2, 1, 0][i % 4]).collect();
        round_trip(&t, &symbols);
    }

    #[test]
    fn a_short_buffer_is_an_error_with_the_length_needed() {
        let mut buf = [0u8; 2];
        let mut enc = Encoder::new(&mut buf);
        for i in 0..100 {
            enc.encode(i % 2, 1, 2);
        }
        assert!(matches!(enc.finish(), Err(Error::OutputFull { needed, found: 2 }) if needed > 2));
    }

    #[test]
    fn garbage_decodes_without_panicking() {
        for seed in 0..200u32 {
            let bytes: Vec<u8> =
                (0..40).map(|i| (seed.wrapping_mul(2_654_435_761) >> (i % 24)) as u8).collect();
            let mut dec = Decoder::new(&bytes);
            for k in 0..1000u32 {
                let total = 2 + k % 60_000;
                let t = dec.target(total);
                assert!(t < total);
                dec.consume(t, 1);
            }
        }
    }
}
