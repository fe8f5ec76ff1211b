//! Protobuf wire primitives: varints, tags, length-delimited fields.
//!
//! Hand-written rather than generated because the original schema numbers
//! fields 0, which protobuf compilers refuse; the bytes are still plain
//! protobuf. Reading is zero-copy over [`Bytes`] and bounded by the input:
//! no length read from the wire is trusted before it is checked against
//! what remains.

use bytes::Bytes;

use super::DecodeError;

/// Wire type of varint fields.
pub const VARINT: u8 = 0;
/// Wire type of 64-bit fixed fields.
pub const FIXED64: u8 = 1;
/// Wire type of length-delimited fields (bytes, strings, messages).
pub const LEN: u8 = 2;
/// Wire type of 32-bit fixed fields.
pub const FIXED32: u8 = 5;

/// A cursor over one encoded message: the whole of `buf`, or a nested
/// message inside it (a window ending at `end`). Nested messages and small
/// fields are read as windows and borrowed slices, so only fields kept past
/// decoding (peer data, a packet's payload) touch the buffer's reference
/// count.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a Bytes,
    /// `buf`'s bytes, held as a slice so that each read is one compare
    /// with registers, not a load of the `Bytes` and a re-slice.
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a Bytes) -> Self {
        Reader {
            buf,
            data: buf,
            pos: 0,
            end: buf.len(),
        }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.end.saturating_sub(self.pos)
    }

    /// Offset of the next byte to read, in the buffer the reader was made
    /// from (nested readers count from the same start).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pos >= self.end
    }

    /// Reads a varint of at most 10 bytes and 64 bits.
    #[inline]
    pub fn read_varint(&mut self) -> Result<u64, DecodeError> {
        // Tags, lengths under 128 and small stamps are one byte: most of
        // the varints a view packet holds.
        if self.pos < self.end {
            let byte = self.data[self.pos];
            if byte & 0x80 == 0 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        self.read_long_varint()
    }

    /// [`Reader::read_varint`] for a varint of more than one byte (or none
    /// left).
    fn read_long_varint(&mut self) -> Result<u64, DecodeError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self.data[..self.end]
                .get(self.pos)
                .ok_or(DecodeError::Truncated)?;
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            // The tenth byte may only carry the 64th bit.
            if i == 9 && bits > 1 {
                return Err(DecodeError::VarintOverflow);
            }
            value |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintOverflow)
    }

    /// Reads a tag: (field number, wire type). Groups (3, 4) and undefined
    /// wire types are refused.
    #[inline]
    pub fn read_tag(&mut self) -> Result<(u64, u8), DecodeError> {
        let tag = self.read_varint()?;
        let wire_type = (tag & 7) as u8;
        match wire_type {
            VARINT | FIXED64 | LEN | FIXED32 => Ok((tag >> 3, wire_type)),
            other => Err(DecodeError::BadWireType(other)),
        }
    }

    /// Reads a length-delimited field's contents as a slice of the input
    /// that can outlive the reader.
    #[inline]
    pub fn read_len_delimited(&mut self) -> Result<Bytes, DecodeError> {
        let (start, end) = self.read_len()?;
        Ok(self.buf.slice(start..end))
    }

    /// Reads a length-delimited field's contents as a borrowed slice.
    #[inline]
    pub fn read_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let (start, end) = self.read_len()?;
        Ok(&self.data[start..end])
    }

    /// Reads exactly `n` raw bytes (no length prefix) as a borrowed slice.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        self.advance(n)?;
        Ok(&self.data[start..self.pos])
    }

    /// The contents of the next field when it is exactly the one-byte
    /// `tag`, then the one-byte length `len`, then `len` bytes; `None`
    /// (nothing read) otherwise. For fields of a fixed size that come many
    /// to a message, read without the general field loop.
    #[inline]
    pub fn read_fixed_field(&mut self, tag: u8, len: u8) -> Option<&'a [u8]> {
        debug_assert!(tag < 0x80 && len < 0x80, "one-byte varints");
        let start = self.pos + 2;
        let end = start + usize::from(len);
        if end > self.end || self.data[self.pos] != tag || self.data[self.pos + 1] != len {
            return None;
        }
        self.pos = end;
        Some(&self.data[start..end])
    }

    /// Reads a length-delimited field as a nested message.
    #[inline]
    pub fn read_nested(&mut self) -> Result<Reader<'a>, DecodeError> {
        let (start, end) = self.read_len()?;
        Ok(Reader {
            buf: self.buf,
            data: self.data,
            pos: start,
            end,
        })
    }

    /// Reads a length prefix, checks it against what remains and steps
    /// over the contents: their start and end.
    #[inline]
    fn read_len(&mut self) -> Result<(usize, usize), DecodeError> {
        let len = self.read_varint()?;
        let remaining = self.end - self.pos;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated)?;
        if len > remaining {
            return Err(DecodeError::Truncated);
        }
        let start = self.pos;
        self.pos += len;
        Ok((start, self.pos))
    }

    /// Skips one field's value of the given wire type.
    pub fn skip(&mut self, wire_type: u8) -> Result<(), DecodeError> {
        match wire_type {
            VARINT => self.read_varint().map(drop),
            FIXED64 => self.advance(8),
            LEN => self.read_len().map(drop),
            FIXED32 => self.advance(4),
            other => Err(DecodeError::BadWireType(other)),
        }
    }

    fn advance(&mut self, n: usize) -> Result<(), DecodeError> {
        if self.end - self.pos < n {
            return Err(DecodeError::Truncated);
        }
        self.pos += n;
        Ok(())
    }
}

/// Checks that a known field came with its schema's wire type.
#[inline]
pub fn expect_wire_type(field: u64, got: u8, expected: u8) -> Result<(), DecodeError> {
    if got == expected {
        Ok(())
    } else {
        Err(DecodeError::WrongWireType {
            field,
            got,
            expected,
        })
    }
}

/// Bytes a varint of `value` takes.
pub fn varint_len(value: u64) -> usize {
    // 7 bits per byte; 0 still takes one byte.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a varint.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends a tag.
pub fn put_tag(out: &mut Vec<u8>, field: u64, wire_type: u8) {
    put_varint(out, (field << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field: tag, length, contents.
pub fn put_len_delimited(out: &mut Vec<u8>, field: u64, contents: &[u8]) {
    put_tag(out, field, LEN);
    put_varint(out, contents.len() as u64);
    out.extend_from_slice(contents);
}

/// Appends a varint field: tag, value.
pub fn put_varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    put_tag(out, field, VARINT);
    put_varint(out, value);
}

/// Encoded size of a length-delimited field whose contents take `len` bytes.
pub fn len_delimited_len(field: u64, len: usize) -> usize {
    varint_len(field << 3) + varint_len(len as u64) + len
}

/// Encoded size of a varint field.
pub fn varint_field_len(field: u64, value: u64) -> usize {
    varint_len(field << 3) + varint_len(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varints_match_protobuf() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (u32::MAX as u64, 5),
            (u64::MAX, 10),
        ] {
            assert_eq!(varint_len(v), len, "{v}");
        }
    }

    #[test]
    fn overlong_and_overflowing_varints_are_refused() {
        let eleven = Bytes::from(vec![0x80; 10].into_iter().chain([0]).collect::<Vec<u8>>());
        assert_eq!(
            Reader::new(&eleven).read_varint(),
            Err(DecodeError::VarintOverflow)
        );
        let mut too_big = vec![0xff; 9];
        too_big.push(0x02);
        assert_eq!(
            Reader::new(&Bytes::from(too_big)).read_varint(),
            Err(DecodeError::VarintOverflow)
        );
        let max = Bytes::from(vec![
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        assert_eq!(Reader::new(&max).read_varint(), Ok(u64::MAX));
        assert_eq!(
            Reader::new(&Bytes::from_static(&[0x80])).read_varint(),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn lengths_beyond_the_input_are_truncation_not_allocation() {
        // Claims 2^62 bytes follow.
        let buf = Bytes::from_static(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
        assert_eq!(
            Reader::new(&buf).read_len_delimited(),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn group_wire_types_are_refused() {
        for tag in [0x03u8, 0x04, 0x06, 0x07] {
            let buf = Bytes::copy_from_slice(&[tag]);
            assert_eq!(
                Reader::new(&buf).read_tag(),
                Err(DecodeError::BadWireType(tag & 7))
            );
        }
    }

    #[test]
    fn field_zero_is_a_legal_tag() {
        let buf = Bytes::from_static(&[0x00, 0x02]);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_tag(), Ok((0, VARINT)));
        assert_eq!(r.read_tag(), Ok((0, LEN)));
        assert!(r.is_empty());
    }

    #[test]
    fn skip_passes_over_each_wire_type_and_notices_truncation() {
        let mut out = Vec::new();
        put_varint(&mut out, u64::MAX);
        out.extend_from_slice(&[1; 8]);
        put_varint(&mut out, 3);
        out.extend_from_slice(b"abc");
        out.extend_from_slice(&[2; 4]);
        let buf = Bytes::from(out);
        let mut r = Reader::new(&buf);
        for wire_type in [VARINT, FIXED64, LEN, FIXED32] {
            assert_eq!(r.skip(wire_type), Ok(()));
        }
        assert!(r.is_empty());
        for wire_type in [VARINT, FIXED64, LEN, FIXED32] {
            assert_eq!(r.skip(wire_type), Err(DecodeError::Truncated));
        }
        assert_eq!(r.skip(3), Err(DecodeError::BadWireType(3)));
    }

    #[test]
    fn length_delimited_reads_share_the_input() {
        let mut out = Vec::new();
        put_len_delimited(&mut out, 1, b"hello");
        let buf = Bytes::from(out);
        let mut r = Reader::new(&buf);
        assert_eq!(r.read_tag(), Ok((1, LEN)));
        let slice = r.read_len_delimited().unwrap();
        assert_eq!(&slice[..], b"hello");
        assert_eq!(slice.as_ptr(), buf[2..].as_ptr());
        assert_eq!(len_delimited_len(1, 5), buf.len());
    }

    proptest! {
        #[test]
        fn varints_round_trip(v in any::<u64>()) {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            prop_assert_eq!(out.len(), varint_len(v));
            let buf = Bytes::from(out);
            let mut r = Reader::new(&buf);
            prop_assert_eq!(r.read_varint(), Ok(v));
            prop_assert!(r.is_empty());
        }
    }
}
