//! compact-encoding primitives as protomux and hypercore write them:
//! `uint` (1, 3, 5 or 9 bytes, not LEB128), length-prefixed strings and
//! buffers. Reading is bounded by the input: a length never allocates
//! more than the bytes that are there.
//!
//! Layouts: `docs/TRANSPORT.md` section 0. Like JavaScript's decoder, a
//! `uint` written wider than needed (`fd 01 00`) still reads as its value.

/// Why bytes do not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A string that is not UTF-8.
    #[error("string is not UTF-8")]
    Utf8,
}

/// A cursor over one message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    /// Takes the next `n` bytes, or fails naming `what` without consuming.
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.bytes.len() {
            return Err(DecodeError::Truncated(what));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    /// Takes exactly `N` bytes.
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// A compact-encoding `uint`.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        const WHAT: &str = "uint";
        let [first] = self.array::<1>(WHAT)?;
        // On a truncated wide form the prefix byte stays consumed; the whole
        // message is refused anyway.
        Ok(match first {
            0xfd => u16::from_le_bytes(self.array(WHAT)?).into(),
            0xfe => u32::from_le_bytes(self.array(WHAT)?).into(),
            0xff => u64::from_le_bytes(self.array(WHAT)?),
            small => small.into(),
        })
    }

    /// A `uint` length followed by that many bytes; the length is checked
    /// against the input before anything is taken.
    fn sized(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let len = self.uint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Truncated(what))?;
        self.take(len, what)
    }

    /// `uint(length) || bytes`.
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        self.sized("buffer")
    }

    /// `uint(length) || UTF-8`.
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.sized("string")?).map_err(|_| DecodeError::Utf8)
    }

    /// `uint(length) || bytes` read as text the way JavaScript does:
    /// invalid UTF-8 becomes U+FFFD instead of an error.
    pub fn string_lossy(&mut self) -> Result<std::borrow::Cow<'a, str>, DecodeError> {
        Ok(String::from_utf8_lossy(self.sized("string")?))
    }

    /// `00` for none, else a buffer.
    pub fn optional_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        let bytes = self.sized("optional buffer")?;
        Ok(if bytes.is_empty() { None } else { Some(bytes) })
    }

    /// Exactly 32 bytes.
    pub fn fixed32(&mut self) -> Result<[u8; 32], DecodeError> {
        self.array("fixed32")
    }

    /// What is left (a `raw` value).
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.bytes.len()
    }
}

/// How many bytes [`put_uint`] writes for `value`.
pub fn uint_len(value: u64) -> usize {
    match value {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends a compact-encoding `uint`.
pub fn put_uint(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xfc => out.push(value as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(value as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// Appends `uint(length) || bytes`.
pub fn put_buffer(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends `uint(length) || UTF-8`.
pub fn put_string(out: &mut Vec<u8>, s: &str) {
    put_buffer(out, s.as_bytes());
}

/// Appends an `optionalBuffer`: `00` for none. An empty buffer is written
/// the same way, and so reads back as none (as in JavaScript).
pub fn put_optional_buffer(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    put_buffer(out, bytes.unwrap_or_default());
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn uint_bytes(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_uint(&mut out, value);
        out
    }

    #[test]
    fn uint_widths_and_little_endian() {
        assert_eq!(uint_bytes(0), [0x00]);
        assert_eq!(uint_bytes(0xfc), [0xfc]);
        assert_eq!(uint_bytes(0xfd), [0xfd, 0xfd, 0x00]);
        // 287, the batch length of docs/TRANSPORT.md 8.4 g.
        assert_eq!(uint_bytes(287), [0xfd, 0x1f, 0x01]);
        assert_eq!(uint_bytes(0xffff), [0xfd, 0xff, 0xff]);
        assert_eq!(uint_bytes(0x1_0000), [0xfe, 0x00, 0x00, 0x01, 0x00]);
        assert_eq!(uint_bytes(0xffff_ffff), [0xfe, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(uint_bytes(0x1_0000_0000), [0xff, 0, 0, 0, 0, 1, 0, 0, 0]);
        assert_eq!(uint_bytes(u64::MAX), [0xff; 9]);
    }

    #[test]
    fn wide_uint_forms_read_as_their_value() {
        assert_eq!(Reader::new(&[0xfd, 0x01, 0x00]).uint(), Ok(1));
        assert_eq!(Reader::new(&[0xfe, 0x05, 0, 0, 0]).uint(), Ok(5));
    }

    #[test]
    fn truncated_values_are_refused() {
        assert_eq!(Reader::new(&[]).uint(), Err(DecodeError::Truncated("uint")));
        assert_eq!(
            Reader::new(&[0xfd, 0x01]).uint(),
            Err(DecodeError::Truncated("uint"))
        );
        assert_eq!(
            Reader::new(&[0xff, 1, 2, 3, 4, 5, 6, 7]).uint(),
            Err(DecodeError::Truncated("uint"))
        );
        assert_eq!(
            Reader::new(&[0x03, b'a', b'b']).buffer(),
            Err(DecodeError::Truncated("buffer"))
        );
        // A length far beyond the input (and beyond usize on 32-bit).
        assert_eq!(
            Reader::new(&[0xff; 9]).string(),
            Err(DecodeError::Truncated("string"))
        );
        assert_eq!(
            Reader::new(&[0u8; 31]).fixed32(),
            Err(DecodeError::Truncated("fixed32"))
        );
    }

    #[test]
    fn strings_must_be_utf8() {
        assert_eq!(Reader::new(&[0x02, 0xc3, 0xa9]).string(), Ok("é"));
        assert_eq!(Reader::new(&[0x01, 0xff]).string(), Err(DecodeError::Utf8));
        assert_eq!(
            Reader::new(&[0x02, b'a', 0xff]).string_lossy().as_deref(),
            Ok("a\u{fffd}")
        );
        assert_eq!(
            Reader::new(&[0x02, b'a']).string_lossy(),
            Err(DecodeError::Truncated("string"))
        );
    }

    #[test]
    fn optional_buffer_zero_is_none() {
        let mut out = Vec::new();
        put_optional_buffer(&mut out, None);
        put_optional_buffer(&mut out, Some(&[]));
        put_optional_buffer(&mut out, Some(&[7, 8]));
        assert_eq!(out, [0x00, 0x00, 0x02, 7, 8]);
        let mut reader = Reader::new(&out);
        assert_eq!(reader.optional_buffer(), Ok(None));
        assert_eq!(reader.optional_buffer(), Ok(None));
        assert_eq!(reader.optional_buffer(), Ok(Some(&[7u8, 8][..])));
        assert_eq!(reader.remaining(), 0);
    }

    #[test]
    fn fields_read_in_sequence_and_rest_takes_the_tail() {
        let mut out = Vec::new();
        put_uint(&mut out, 300);
        put_string(&mut out, "hypercore/alpha");
        out.extend_from_slice(&[9u8; 32]);
        out.extend_from_slice(b"tail");
        let mut reader = Reader::new(&out);
        assert_eq!(reader.uint(), Ok(300));
        assert_eq!(reader.string(), Ok("hypercore/alpha"));
        assert_eq!(reader.fixed32(), Ok([9u8; 32]));
        assert_eq!(reader.rest(), b"tail");
        assert_eq!(reader.remaining(), 0);
        assert_eq!(reader.rest(), b"");
    }

    proptest! {
        #[test]
        fn uint_round_trips(value: u64) {
            let bytes = uint_bytes(value);
            prop_assert_eq!(bytes.len(), uint_len(value));
            let mut reader = Reader::new(&bytes);
            prop_assert_eq!(reader.uint(), Ok(value));
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn buffer_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let mut out = Vec::new();
            put_buffer(&mut out, &bytes);
            out.push(0xaa);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.buffer(), Ok(&bytes[..]));
            prop_assert_eq!(reader.rest(), &[0xaa][..]);
        }

        #[test]
        fn string_round_trips(s in ".{0,300}") {
            let mut out = Vec::new();
            put_string(&mut out, &s);
            let mut reader = Reader::new(&out);
            prop_assert_eq!(reader.string(), Ok(s.as_str()));
            prop_assert_eq!(reader.remaining(), 0);
        }

        #[test]
        fn any_input_never_panics_and_never_overreads(
            input in proptest::collection::vec(any::<u8>(), 0..64),
            ops in proptest::collection::vec(0u8..6, 0..12),
        ) {
            let mut reader = Reader::new(&input);
            for op in ops {
                let before = reader.remaining();
                let consumed = match op {
                    0 => reader.uint().is_ok(),
                    1 => reader.buffer().is_ok(),
                    2 => reader.string().is_ok(),
                    3 => reader.optional_buffer().is_ok(),
                    4 => reader.fixed32().is_ok(),
                    _ => { reader.rest(); true }
                };
                prop_assert!(reader.remaining() <= before);
                if !consumed {
                    break;
                }
            }
        }
    }
}
