//! The wire codec: flood packets and presence messages, byte-compatible with
//! the JavaScript `hyper-presence` 1.1.3 / `hyper-flood` 1.x encoders.
//!
//! The original schema numbers fields `0`, which protobuf compilers refuse, so
//! the codec works at the level of tags and varints ([`protobuf`]). Decoding
//! never panics: every input yields a value or a [`DecodeError`], and every
//! length or count read from the wire is checked against [`Limits`] before
//! anything is allocated for it.
//!
//! Our improvements travel in fields the original schema does not know
//! (numbers 8 and 9, see [`Message`] and [`StateEntry`]); its decoder skips
//! them, and because they sit inside the presence message (the flood
//! packet's opaque `data`), a JavaScript relay forwards them untouched.

mod batch;
mod entry;
mod have;
mod message;
mod packet;
pub mod protobuf;

pub use batch::EncodedEntries;
pub use entry::{EdgeIds, Signature, Stamp, StateEntry, StateEntryRef};
pub use have::Have;
pub use message::{EntryKey, Kind, Message};
pub use packet::FloodPacket;

/// Bounds on what a decoder accepts from the wire. Each bound exists so that a
/// remote peer cannot make us allocate or loop without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest flood packet accepted, in bytes. Default 1 MiB: far above what
    /// any honest peer sends (ours split bootstrap exchanges into packets of
    /// at most [`crate::proto::Config::max_send_bytes`]), small enough that a
    /// hostile peer cannot pin much memory per packet.
    pub max_packet_bytes: usize,
    /// Most entries in one bootstrap response. Default 100,000.
    pub max_bootstrap_entries: usize,
    /// Most peer ids in one edge list (a `State.connectedTo`, or our full
    /// edge list extension). Default 1,024: a peer with more direct links
    /// than this cannot be described, so such a list is refused.
    pub max_ids_per_entry: usize,
    /// Largest encoded peer data, in bytes. Default 16 KiB. Our own
    /// `set_data` refuses larger values with the same bound.
    pub max_data_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_packet_bytes: 1 << 20,
            max_bootstrap_entries: 100_000,
            max_ids_per_entry: 1024,
            max_data_bytes: 16 * 1024,
        }
    }
}

/// Why bytes from the wire are not a valid packet or message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("truncated input")]
    Truncated,
    /// A varint ran over 10 bytes or over 64 bits.
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    /// A tag carried a wire type protobuf does not define (3, 4, 6, 7: groups
    /// are refused too).
    #[error("unsupported wire type {0}")]
    BadWireType(u8),
    /// A known field came with a wire type other than its schema's.
    #[error("field {field} has wire type {got}, expected {expected}")]
    WrongWireType {
        /// Field number.
        field: u64,
        /// The wire type seen.
        got: u8,
        /// The wire type the schema gives.
        expected: u8,
    },
    /// A required field was absent.
    #[error("missing required field `{0}`")]
    Missing(&'static str),
    /// A number did not fit its field (for example a message number over 32 bits).
    #[error("field `{0}` out of range")]
    OutOfRange(&'static str),
    /// An id field did not hold 32 bytes.
    #[error("a peer id must be 32 bytes, got {0}")]
    BadId(usize),
    /// A signature field did not hold 64 bytes.
    #[error("a signature must be 64 bytes, got {0}")]
    BadSignature(usize),
    /// A bootstrap map key was not 64 lowercase or uppercase hex digits.
    #[error("bootstrap key is not a hex peer id")]
    BadKey,
    /// A field of fixed layout had bytes left after its last part.
    #[error("`{0}` has bytes past its end")]
    Trailing(&'static str),
    /// The input, or a field of it, exceeded a [`Limits`] bound.
    #[error("{what} exceeds the limit of {limit}")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// The bound in force.
        limit: usize,
    },
}
