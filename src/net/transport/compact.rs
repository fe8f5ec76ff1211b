//! compact-encoding primitives as protomux and hypercore write them:
//! `uint` (1, 3, 5 or 9 bytes, not LEB128), length-prefixed strings and
//! buffers. Reading is bounded by the input: a length never allocates
//! more than the bytes that are there.
//!
//! SKELETON: to be implemented (docs/TRANSPORT.md section 0).

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

    /// A compact-encoding `uint`.
    pub fn uint(&mut self) -> Result<u64, DecodeError> {
        unimplemented!()
    }

    /// `uint(length) || bytes`.
    pub fn buffer(&mut self) -> Result<&'a [u8], DecodeError> {
        unimplemented!()
    }

    /// `uint(length) || UTF-8`.
    pub fn string(&mut self) -> Result<&'a str, DecodeError> {
        unimplemented!()
    }

    /// `00` for none, else a buffer.
    pub fn optional_buffer(&mut self) -> Result<Option<&'a [u8]>, DecodeError> {
        unimplemented!()
    }

    /// Exactly 32 bytes.
    pub fn fixed32(&mut self) -> Result<[u8; 32], DecodeError> {
        unimplemented!()
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

/// Appends a compact-encoding `uint`.
pub fn put_uint(out: &mut Vec<u8>, value: u64) {
    let _ = (out, value);
    unimplemented!()
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
