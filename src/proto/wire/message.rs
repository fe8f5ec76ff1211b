//! The presence message and the State entry of a bootstrap response.

use bytes::Bytes;

use super::entry::{read_data, read_id, read_signature, room_for_id, signature_len};
use super::protobuf::{self as pb, Reader, LEN, VARINT};
use super::{DecodeError, Have, Limits, Signature, Stamp, StateEntry, StateEntryRef};
use crate::proto::PeerId;

/// Field numbers, shared by encoder and decoder.
pub(super) mod field {
    pub const TYPE: u64 = 0;
    pub const BOOTSTRAP: u64 = 1;
    pub const DATA: u64 = 2;
    pub const ID: u64 = 3;
    pub const STAMP: u64 = 8;
    pub const EDGES: u64 = 9;
    pub const FEATURES: u64 = 10;
    pub const SIGNATURE: u64 = 11;
    pub const HAVE: u64 = 12;

    pub const ENTRY_KEY: u64 = 1;
    pub const ENTRY_VALUE: u64 = 2;
    /// Extension: the key as the raw 32-byte id instead of 64 hex digits.
    pub const ENTRY_ID: u64 = 3;

    pub const STATE_CONNECTED_TO: u64 = 0;
    pub const STATE_DATA: u64 = 1;
    pub const STATE_EDGES_STAMP: u64 = 8;
    pub const STATE_DATA_STAMP: u64 = 9;
    pub const STATE_EDGES_SIGNATURE: u64 = 10;
    pub const STATE_DATA_SIGNATURE: u64 = 11;

    pub const STAMP_INCARNATION: u64 = 1;
    pub const STAMP_VERSION: u64 = 2;
}

/// Bytes of a map key: the id as 64 hex digits.
const KEY_LEN: usize = 2 * PeerId::LEN;
/// The fewest bytes a bootstrap entry takes that has its key: the key field
/// (tag, length, the 32-byte id in its shorter form) inside the entry's own
/// tag and length.
const MIN_ENTRY_LEN: usize = 2 + 2 + PeerId::LEN;

/// How a bootstrap entry names its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKey {
    /// The original's map key: the id as 64 lowercase hex digits (field 1
    /// of the map entry). What JavaScript peers read.
    Hex,
    /// The raw 32-byte id (field 3 of the map entry), 32 bytes shorter:
    /// for peers whose request set [`Message::RAW_IDS`].
    Raw,
}

/// What a presence message says (the original's `type` enum, field 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// 1: "send me your whole view".
    BootstrapRequest,
    /// 2: a whole view, or part of one.
    BootstrapResponse,
    /// 3: the origin connected to `id`.
    Connected,
    /// 4: the origin disconnected from `id`.
    Disconnected,
    /// 5: the origin's data is `data`.
    State,
    /// Any other number: relayed by the flood layer, otherwise ignored.
    Other(u64),
}

impl Kind {
    /// The wire number of this kind.
    pub fn to_u64(self) -> u64 {
        match self {
            Kind::BootstrapRequest => 1,
            Kind::BootstrapResponse => 2,
            Kind::Connected => 3,
            Kind::Disconnected => 4,
            Kind::State => 5,
            Kind::Other(n) => n,
        }
    }

    /// The kind a wire number stands for.
    pub fn from_u64(n: u64) -> Self {
        match n {
            1 => Kind::BootstrapRequest,
            2 => Kind::BootstrapResponse,
            3 => Kind::Connected,
            4 => Kind::Disconnected,
            5 => Kind::State,
            n => Kind::Other(n),
        }
    }
}

/// A presence message (the original's `Message`), with our extension fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Field 0 (varint enum): what the message says.
    pub kind: Kind,
    /// Field 1 (map<string, State>, key = lowercase hex id): BOOTSTRAP_RESPONSE
    /// entries, in wire order.
    pub bootstrap: Vec<(PeerId, StateEntry)>,
    /// Field 2 (bytes): STATE's encoded data.
    pub data: Option<Bytes>,
    /// Field 3 (bytes): CONNECTED/DISCONNECTED's peer.
    pub id: Option<PeerId>,
    /// Field 8 (extension, embedded [`Stamp`]): how new the origin's state in
    /// this message is (its edge list for CONNECTED/DISCONNECTED, its data for
    /// STATE). Absent from JavaScript peers' messages.
    pub stamp: Option<Stamp>,
    /// Field 9 (extension, repeated bytes): with a stamp on CONNECTED or
    /// DISCONNECTED, the origin's *whole* outgoing edge list after the change,
    /// so that the message replaces rather than patches what a receiver knows.
    pub edges: Vec<PeerId>,
    /// Field 10 (extension, varint bit set): on BOOTSTRAP_REQUEST, what the
    /// sender understands beyond the original protocol ([`Message::BATCHES`],
    /// [`Message::HAVE`], [`Message::RAW_IDS`]).
    /// Zero (not written) from JavaScript peers.
    pub features: u64,
    /// Field 11 (extension, 64 bytes): with a stamp, the origin's signature
    /// of the register this message sets (its edge list for CONNECTED /
    /// DISCONNECTED, its data for STATE) under that stamp.
    pub signature: Option<Signature>,
    /// Field 12 (extension, repeated bytes): on BOOTSTRAP_RESPONSE to a
    /// peer that asked for them ([`Message::HAVE`]), nodes the sender now
    /// holds, as [`Have`] notices.
    pub have: Vec<Have>,
}

impl Message {
    /// Feature bit: the sender takes news of other peers as batches of
    /// stamped view entries instead of relayed flood packets.
    pub const BATCHES: u64 = 1;

    /// Feature bit: the sender takes [`Have`] notices (field 12) and
    /// strikes what they name off what it owes us.
    pub const HAVE: u64 = 2;

    /// Feature bit: the sender reads bootstrap entries keyed by the raw id
    /// ([`EntryKey::Raw`]) as well as by hex.
    pub const RAW_IDS: u64 = 4;

    /// A message of `kind` with every other field empty.
    pub fn new(kind: Kind) -> Self {
        Message {
            kind,
            bootstrap: Vec::new(),
            data: None,
            id: None,
            stamp: None,
            edges: Vec::new(),
            features: 0,
            signature: None,
            have: Vec::new(),
        }
    }

    /// Encodes the message; without extension fields the bytes equal the
    /// JavaScript encoder's (fields in number order, map entries in order).
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len());
        pb::put_varint_field(&mut out, field::TYPE, self.kind.to_u64());
        for (id, entry) in &self.bootstrap {
            Message::encode_bootstrap_entry(&mut out, id, entry.as_ref(), EntryKey::Hex);
        }
        if let Some(data) = &self.data {
            pb::put_len_delimited(&mut out, field::DATA, data);
        }
        if let Some(id) = &self.id {
            pb::put_len_delimited(&mut out, field::ID, id.as_bytes());
        }
        if let Some(stamp) = &self.stamp {
            stamp.encode_field(&mut out, field::STAMP);
        }
        for id in &self.edges {
            pb::put_len_delimited(&mut out, field::EDGES, id.as_bytes());
        }
        if self.features != 0 {
            pb::put_varint_field(&mut out, field::FEATURES, self.features);
        }
        if let Some(signature) = &self.signature {
            pb::put_len_delimited(&mut out, field::SIGNATURE, signature);
        }
        for have in &self.have {
            have.encode_field(&mut out, field::HAVE);
        }
        Bytes::from(out)
    }

    /// Length of [`Message::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        pb::varint_field_len(field::TYPE, self.kind.to_u64())
            + self
                .bootstrap
                .iter()
                .map(|(id, entry)| Message::bootstrap_entry_len(id, entry))
                .sum::<usize>()
            + self
                .data
                .as_ref()
                .map_or(0, |d| pb::len_delimited_len(field::DATA, d.len()))
            + self
                .id
                .map_or(0, |_| pb::len_delimited_len(field::ID, PeerId::LEN))
            + self
                .stamp
                .map_or(0, |s| pb::len_delimited_len(field::STAMP, s.encoded_len()))
            + self.edges.len() * pb::len_delimited_len(field::EDGES, PeerId::LEN)
            + if self.features != 0 {
                pb::varint_field_len(field::FEATURES, self.features)
            } else {
                0
            }
            + signature_len(field::SIGNATURE, &self.signature)
            + self
                .have
                .iter()
                .map(|h| h.field_len(field::HAVE))
                .sum::<usize>()
    }

    /// How many bytes one bootstrap entry adds to an encoded message
    /// (tag, length prefix, key and value): what a sender splitting a large
    /// response into packets needs to know.
    pub fn bootstrap_entry_len(id: &PeerId, entry: &StateEntry) -> usize {
        let _ = id; // every key is 64 hex digits
        pb::len_delimited_len(field::BOOTSTRAP, entry_body_len(entry.as_ref()))
    }

    /// The start of an encoded message of `kind` that carries bootstrap
    /// entries only: its type field. Entries appended to it with
    /// [`Message::encode_bootstrap_entry`] make the same bytes as
    /// [`Message::encode`] of the message holding them, so a sender can
    /// encode each entry once and copy it into several packets.
    pub fn encode_entries_start(kind: Kind, out: &mut Vec<u8>) {
        pb::put_varint_field(out, field::TYPE, kind.to_u64());
    }

    /// Appends a [`Have`] notice to an encoded message started with
    /// [`Message::encode_entries_start`], after its entries (as
    /// [`Message::encode`] orders them); returns the bytes it added.
    pub fn encode_have(out: &mut Vec<u8>, have: &Have) -> usize {
        let before = out.len();
        have.encode_field(out, field::HAVE);
        out.len() - before
    }

    /// Bytes a [`Have`] notice adds to a message.
    pub fn have_len(have: &Have) -> usize {
        have.field_len(field::HAVE)
    }

    /// Appends one bootstrap entry (tag, length, key and value) to an
    /// encoded message: with [`EntryKey::Hex`], the
    /// [`Message::bootstrap_entry_len`] bytes; with [`EntryKey::Raw`], 32
    /// fewer (33 when the entry's length prefix shrinks too).
    pub fn encode_bootstrap_entry(
        out: &mut Vec<u8>,
        id: &PeerId,
        entry: StateEntryRef<'_>,
        key: EntryKey,
    ) {
        let value_len = entry.encoded_len();
        let key_len = match key {
            EntryKey::Hex => pb::len_delimited_len(field::ENTRY_KEY, KEY_LEN),
            EntryKey::Raw => pb::len_delimited_len(field::ENTRY_ID, PeerId::LEN),
        };
        pb::put_tag(out, field::BOOTSTRAP, LEN);
        pb::put_varint(
            out,
            (key_len + pb::len_delimited_len(field::ENTRY_VALUE, value_len)) as u64,
        );
        match key {
            EntryKey::Hex => pb::put_len_delimited(out, field::ENTRY_KEY, &id.hex_bytes()),
            EntryKey::Raw => pb::put_len_delimited(out, field::ENTRY_ID, id.as_bytes()),
        }
        pb::put_tag(out, field::ENTRY_VALUE, LEN);
        pb::put_varint(out, value_len as u64);
        entry.encode_to(out);
    }

    /// Decodes a message; `data` fields are zero-copy slices of `bytes`.
    pub fn decode(bytes: &Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_packet_bytes {
            return Err(DecodeError::TooLarge {
                what: "message",
                limit: limits.max_packet_bytes,
            });
        }
        let mut kind = None;
        let mut message = Message::new(Kind::Other(0));
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let (number, wire_type) = r.read_tag()?;
            match number {
                field::TYPE => {
                    pb::expect_wire_type(number, wire_type, VARINT)?;
                    kind = Some(Kind::from_u64(r.read_varint()?));
                }
                field::BOOTSTRAP => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    if message.bootstrap.len() >= limits.max_bootstrap_entries {
                        return Err(DecodeError::TooLarge {
                            what: "bootstrap entries",
                            limit: limits.max_bootstrap_entries,
                        });
                    }
                    if message.bootstrap.capacity() == 0 {
                        // Room for as many entries as the rest could hold
                        // (an entry has at least its key), so the list of
                        // 270-byte entries is not grown and copied by
                        // doubling: cheap, as untouched capacity is.
                        let most = r.remaining() / MIN_ENTRY_LEN + 1;
                        message
                            .bootstrap
                            .reserve_exact(most.min(limits.max_bootstrap_entries));
                    }
                    // Decoded where it is kept: an entry is a few hundred
                    // bytes, and returned by value it was copied at every
                    // step out (four copies an entry).
                    message
                        .bootstrap
                        .push((PeerId::from_bytes([0; 32]), StateEntry::default()));
                    let last = message.bootstrap.last_mut().expect("just pushed");
                    decode_entry_into(r.read_nested()?, limits, last)?;
                }
                field::DATA => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    message.data = Some(read_data(&mut r, limits)?);
                }
                field::ID => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    message.id = Some(read_id(&mut r)?);
                }
                field::STAMP => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    message.stamp = Some(Stamp::decode(r.read_nested()?)?);
                }
                field::EDGES => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    let id = read_id(&mut r)?;
                    room_for_id(message.edges.len(), limits)?;
                    message.edges.push(id);
                }
                field::FEATURES => {
                    pb::expect_wire_type(number, wire_type, VARINT)?;
                    message.features = r.read_varint()?;
                }
                field::SIGNATURE => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    message.signature = Some(read_signature(&mut r)?);
                }
                field::HAVE => {
                    pb::expect_wire_type(number, wire_type, LEN)?;
                    // Counted with the entries: a notice is a small entry.
                    if message.have.len() >= limits.max_bootstrap_entries {
                        return Err(DecodeError::TooLarge {
                            what: "have notices",
                            limit: limits.max_bootstrap_entries,
                        });
                    }
                    message.have.push(Have::decode(r.read_nested()?)?);
                }
                _ => r.skip(wire_type)?,
            }
        }
        message.kind = kind.ok_or(DecodeError::Missing("type"))?;
        Ok(message)
    }
}

/// Length of a map entry's contents: key field and value field.
fn entry_body_len(entry: StateEntryRef<'_>) -> usize {
    pb::len_delimited_len(field::ENTRY_KEY, KEY_LEN)
        + pb::len_delimited_len(field::ENTRY_VALUE, entry.encoded_len())
}

/// Decodes a map entry into `slot`, in place.
fn decode_entry_into(
    mut r: Reader<'_>,
    limits: &Limits,
    slot: &mut (PeerId, StateEntry),
) -> Result<(), DecodeError> {
    let mut key = false;
    while !r.is_empty() {
        let (number, wire_type) = r.read_tag()?;
        match number {
            field::ENTRY_KEY => {
                pb::expect_wire_type(number, wire_type, LEN)?;
                slot.0 = PeerId::from_hex_bytes(r.read_slice()?).ok_or(DecodeError::BadKey)?;
                key = true;
            }
            field::ENTRY_ID => {
                pb::expect_wire_type(number, wire_type, LEN)?;
                slot.0 = read_id(&mut r)?;
                key = true;
            }
            field::ENTRY_VALUE => {
                pb::expect_wire_type(number, wire_type, LEN)?;
                // A repeated value replaces the one before, as protobuf
                // reads a repeated singular field.
                slot.1 = StateEntry::default();
                slot.1.decode_into(r.read_nested()?, limits)?;
            }
            _ => r.skip(wire_type)?,
        }
    }
    if key {
        Ok(())
    } else {
        Err(DecodeError::Missing("bootstrap key"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bytes(hex_text: &str) -> Bytes {
        Bytes::from(hex::decode(hex_text).unwrap())
    }

    fn decode(hex_text: &str) -> Result<Message, DecodeError> {
        Message::decode(&bytes(hex_text), &Limits::default())
    }

    /// PROTOCOL.md's vectors, produced by the original JavaScript encoders.
    const STATE: &str = "000512107b226e616d65223a22616c696365227d";
    const CONNECTED: &str =
        "00031a201111111111111111111111111111111111111111111111111111111111111111";
    const DISCONNECTED: &str =
        "00041a202222222222222222222222222222222222222222222222222222222222222222";
    const BOOTSTRAP_REQUEST: &str = "0001";
    const BOOTSTRAP_RESPONSE: &str = "00020a6f0a4061616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161122b0220bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb0a077b2261223a317d";

    fn vectors() -> Vec<(&'static str, Message)> {
        let mut state = Message::new(Kind::State);
        state.data = Some(Bytes::from_static(br#"{"name":"alice"}"#));
        let mut connected = Message::new(Kind::Connected);
        connected.id = Some(PeerId::from_bytes([0x11; 32]));
        let mut disconnected = Message::new(Kind::Disconnected);
        disconnected.id = Some(PeerId::from_bytes([0x22; 32]));
        let mut response = Message::new(Kind::BootstrapResponse);
        response.bootstrap.push((
            PeerId::from_bytes([0xaa; 32]),
            StateEntry {
                connected_to: vec![PeerId::from_bytes([0xbb; 32])].into(),
                data: Some(Bytes::from_static(br#"{"a":1}"#)),
                edges_stamp: None,
                data_stamp: None,
                edges_signature: None,
                data_signature: None,
            },
        ));
        vec![
            (STATE, state),
            (CONNECTED, connected),
            (DISCONNECTED, disconnected),
            (BOOTSTRAP_REQUEST, Message::new(Kind::BootstrapRequest)),
            (BOOTSTRAP_RESPONSE, response),
        ]
    }

    #[test]
    fn every_javascript_vector_encodes_byte_for_byte() {
        for (expected, message) in vectors() {
            assert_eq!(
                hex::encode(message.encode()),
                expected,
                "{:?}",
                message.kind
            );
            assert_eq!(message.encoded_len(), expected.len() / 2);
        }
    }

    #[test]
    fn every_javascript_vector_decodes() {
        for (hex_text, message) in vectors() {
            assert_eq!(decode(hex_text), Ok(message));
        }
    }

    #[test]
    fn every_truncation_of_every_vector_is_an_error_or_a_shorter_message() {
        // A protobuf prefix that ends on a field boundary is itself valid
        // (e.g. STATE without its data); a cut inside a field must fail.
        for (hex_text, _) in vectors() {
            let full = hex::decode(hex_text).unwrap();
            for len in 0..full.len() {
                let prefix = Bytes::copy_from_slice(&full[..len]);
                if let Ok(m) = Message::decode(&prefix, &Limits::default()) {
                    assert!(m.encoded_len() <= len, "prefix {len} of {hex_text}");
                }
            }
        }
    }

    #[test]
    fn a_message_without_type_is_refused() {
        assert_eq!(decode("1a00"), Err(DecodeError::BadId(0)));
        assert_eq!(decode(""), Err(DecodeError::Missing("type")));
        assert_eq!(decode("12017b"), Err(DecodeError::Missing("type")));
    }

    #[test]
    fn unknown_types_are_kept_as_other() {
        assert_eq!(decode("0009").unwrap().kind, Kind::Other(9));
        assert_eq!(decode("0000").unwrap().kind, Kind::Other(0));
    }

    #[test]
    fn extension_fields_round_trip_and_the_javascript_part_stays_first() {
        let mut m = Message::new(Kind::Connected);
        m.id = Some(PeerId::from_bytes([0x11; 32]));
        m.stamp = Some(Stamp {
            incarnation: 1_700_000_000_000,
            version: 3,
        });
        m.edges = vec![
            PeerId::from_bytes([0x11; 32]),
            PeerId::from_bytes([0x33; 32]),
        ];
        let encoded = m.encode();
        // What a JavaScript peer reads first is exactly the original CONNECTED.
        assert!(hex::encode(&encoded).starts_with(CONNECTED));
        assert_eq!(Message::decode(&encoded, &Limits::default()), Ok(m));
    }

    #[test]
    fn unknown_fields_are_skipped_everywhere() {
        let mut raw = hex::decode(BOOTSTRAP_RESPONSE).unwrap();
        pb::put_varint_field(&mut raw, 4, 7);
        pb::put_tag(&mut raw, 5, pb::FIXED32);
        raw.extend_from_slice(&[0; 4]);
        pb::put_len_delimited(&mut raw, 15, b"later");
        pb::put_tag(&mut raw, 123_456, pb::FIXED64);
        raw.extend_from_slice(&[0; 8]);
        let m = Message::decode(&Bytes::from(raw), &Limits::default()).unwrap();
        assert_eq!(m, vectors()[4].1);
        // Inside a State too.
        let mut entry = StateEntry::default();
        entry.connected_to.push(PeerId::from_bytes([1; 32]));
        let mut state = Vec::new();
        entry.as_ref().encode_to(&mut state);
        pb::put_varint_field(&mut state, 7, 1);
        assert_eq!(
            StateEntry::decode(Reader::new(&Bytes::from(state)), &Limits::default()),
            Ok(entry)
        );
    }

    #[test]
    fn a_known_field_with_another_wire_type_is_refused() {
        let wrong = |field: u64, wire_type: u8, expected: u8| {
            (
                field,
                wire_type,
                DecodeError::WrongWireType {
                    field,
                    got: wire_type,
                    expected,
                },
            )
        };
        for (field, wire_type, error) in [
            wrong(0, LEN, VARINT),
            wrong(1, VARINT, LEN),
            wrong(2, pb::FIXED32, LEN),
            wrong(3, pb::FIXED64, LEN),
            wrong(8, VARINT, LEN),
            wrong(9, VARINT, LEN),
            wrong(11, VARINT, LEN),
        ] {
            let mut m = Vec::new();
            pb::put_tag(&mut m, field, wire_type);
            m.extend_from_slice(&[0; 8]);
            assert_eq!(
                Message::decode(&Bytes::from(m), &Limits::default()),
                Err(error),
                "field {field}"
            );
        }
        // Inside a State: connectedTo (field 0) as a varint.
        let mut state = Vec::new();
        pb::put_varint_field(&mut state, 0, 1);
        assert_eq!(
            StateEntry::decode(Reader::new(&Bytes::from(state)), &Limits::default()),
            Err(DecodeError::WrongWireType {
                field: 0,
                got: VARINT,
                expected: LEN
            })
        );
    }

    #[test]
    fn a_stamp_without_its_numbers_reads_as_zero_and_is_written_in_full() {
        let mut raw = hex::decode(BOOTSTRAP_REQUEST).unwrap();
        pb::put_len_delimited(&mut raw, field::STAMP, &[]);
        let m = Message::decode(&Bytes::from(raw), &Limits::default()).unwrap();
        assert_eq!(m.stamp, Some(Stamp::default()));
        // Both sub-fields, even when zero: tag 0x42, length 4, 08 00 10 00.
        assert_eq!(hex::encode(m.encode()), "0001420408001000");
    }

    /// The feature bits ride after every original field, so the request
    /// starts with the original's bytes and a JavaScript decoder skips them.
    #[test]
    fn a_request_with_features_extends_the_original_bytes() {
        let mut m = Message::new(Kind::BootstrapRequest);
        assert_eq!(hex::encode(m.encode()), BOOTSTRAP_REQUEST);
        m.features = Message::BATCHES;
        assert_eq!(hex::encode(m.encode()), "00015001");
        assert_eq!(
            Message::decode(&m.encode(), &Limits::default())
                .unwrap()
                .features,
            Message::BATCHES
        );
    }

    #[test]
    fn bootstrap_keys_are_written_in_lowercase_hex() {
        let mut m = Message::new(Kind::BootstrapResponse);
        m.bootstrap
            .push((PeerId::from_bytes([0xab; 32]), StateEntry::default()));
        let encoded = m.encode();
        let key = "ab".repeat(32);
        assert!(hex::encode(&encoded).contains(&hex::encode(key.as_bytes())));
        assert_eq!(
            Message::bootstrap_entry_len(&m.bootstrap[0].0, &m.bootstrap[0].1),
            encoded.len() - 2
        );
    }

    #[test]
    fn bad_keys_and_ids_are_refused() {
        let entry = |key: &[u8]| {
            let mut body = Vec::new();
            pb::put_len_delimited(&mut body, 1, key);
            let mut m = Vec::new();
            pb::put_varint_field(&mut m, 0, 2);
            pb::put_len_delimited(&mut m, 1, &body);
            Message::decode(&Bytes::from(m), &Limits::default())
        };
        assert_eq!(entry(b"abc"), Err(DecodeError::BadKey));
        assert_eq!(entry(&[b'z'; 64]), Err(DecodeError::BadKey));
        assert_eq!(entry(&[0xff; 64]), Err(DecodeError::BadKey));
        // A `0x` prefix (which a general hex decoder strips) is no key, in
        // 64 bytes or in 66.
        for digits in [31, 32] {
            let key = format!("0x{}", "ab".repeat(digits));
            assert_eq!(entry(key.as_bytes()), Err(DecodeError::BadKey));
        }
        // An entry without a value is an empty State; without a key, an error.
        let ok = entry("AB".repeat(32).as_bytes()).unwrap();
        assert_eq!(
            ok.bootstrap,
            vec![(PeerId::from_bytes([0xab; 32]), StateEntry::default())]
        );
        let mut m = Vec::new();
        pb::put_varint_field(&mut m, 0, 2);
        pb::put_len_delimited(&mut m, 1, &[]);
        assert_eq!(
            Message::decode(&Bytes::from(m), &Limits::default()),
            Err(DecodeError::Missing("bootstrap key"))
        );
        assert_eq!(decode("00031a0411111111"), Err(DecodeError::BadId(4)));
        // A raw key (field 3 of the entry) is 32 bytes, no fewer or more.
        let raw = |key: &[u8]| {
            let mut body = Vec::new();
            pb::put_len_delimited(&mut body, 3, key);
            let mut m = Vec::new();
            pb::put_varint_field(&mut m, 0, 2);
            pb::put_len_delimited(&mut m, 1, &body);
            Message::decode(&Bytes::from(m), &Limits::default())
        };
        assert_eq!(raw(&[0xab; 31]), Err(DecodeError::BadId(31)));
        assert_eq!(raw(&[0xab; 64]), Err(DecodeError::BadId(64)));
        assert_eq!(raw(&[0xab; 32]).unwrap().bootstrap, ok.bootstrap);
    }

    #[test]
    fn edge_ids_between_other_fields_and_of_bad_lengths_read_as_the_schema_says() {
        // Edge ids have a path of their own for the usual layout; ids
        // between other fields, or of the wrong length, take the general
        // one, with the same outcome.
        let id = |n: u8| PeerId::from_bytes([n; 32]);
        let mut v = Vec::new();
        pb::put_len_delimited(&mut v, field::STATE_CONNECTED_TO, id(1).as_bytes());
        pb::put_len_delimited(&mut v, field::STATE_DATA, b"{}");
        pb::put_len_delimited(&mut v, field::STATE_CONNECTED_TO, id(2).as_bytes());
        Stamp {
            incarnation: 1,
            version: 2,
        }
        .encode_field(&mut v, field::STATE_EDGES_STAMP);
        pb::put_len_delimited(&mut v, field::STATE_CONNECTED_TO, id(3).as_bytes());
        let got = StateEntry::decode(Reader::new(&Bytes::from(v.clone())), &Limits::default());
        let expected = StateEntry {
            connected_to: [id(1), id(2), id(3)].into_iter().collect(),
            data: Some(Bytes::from_static(b"{}")),
            edges_stamp: Some(Stamp {
                incarnation: 1,
                version: 2,
            }),
            ..StateEntry::default()
        };
        assert_eq!(got, Ok(expected));
        for bad in [31, 33] {
            let mut w = v.clone();
            pb::put_len_delimited(&mut w, field::STATE_CONNECTED_TO, &vec![7; bad]);
            let got = StateEntry::decode(Reader::new(&Bytes::from(w)), &Limits::default());
            assert_eq!(got, Err(DecodeError::BadId(bad)));
        }
        let limits = Limits {
            max_ids_per_entry: 2,
            ..Limits::default()
        };
        assert_eq!(
            StateEntry::decode(Reader::new(&Bytes::from(v)), &limits),
            Err(DecodeError::TooLarge {
                what: "ids per entry",
                limit: 2
            })
        );
    }

    #[test]
    fn a_repeated_entry_value_replaces_the_one_before_it() {
        // Protobuf reads the last of a repeated singular field; entries are
        // decoded in place, so the first value's parts must not linger.
        let state = |edge: u8, data: Option<&[u8]>| {
            let mut v = Vec::new();
            pb::put_len_delimited(&mut v, field::STATE_CONNECTED_TO, &[edge; 32]);
            if let Some(data) = data {
                pb::put_len_delimited(&mut v, field::STATE_DATA, data);
            }
            v
        };
        let mut body = Vec::new();
        pb::put_len_delimited(&mut body, field::ENTRY_VALUE, &state(1, Some(b"{}")));
        pb::put_len_delimited(&mut body, field::ENTRY_KEY, "cd".repeat(32).as_bytes());
        pb::put_len_delimited(&mut body, field::ENTRY_VALUE, &state(2, None));
        let mut m = Vec::new();
        pb::put_varint_field(&mut m, field::TYPE, 2);
        pb::put_len_delimited(&mut m, field::BOOTSTRAP, &body);
        let got = Message::decode(&Bytes::from(m), &Limits::default()).unwrap();
        let expected = StateEntry {
            connected_to: [PeerId::from_bytes([2; 32])].into_iter().collect(),
            ..StateEntry::default()
        };
        assert_eq!(
            got.bootstrap,
            vec![(PeerId::from_bytes([0xcd; 32]), expected)]
        );
    }

    #[test]
    fn every_limit_trips_with_its_own_error() {
        let limits = Limits {
            max_packet_bytes: 1000,
            max_bootstrap_entries: 2,
            max_ids_per_entry: 3,
            max_data_bytes: 4,
        };
        let too_large = |what, limit| Err(DecodeError::TooLarge { what, limit });
        let mut m = Message::new(Kind::BootstrapResponse);
        m.bootstrap = (0..3u8)
            .map(|n| (PeerId::from_bytes([n; 32]), StateEntry::default()))
            .collect();
        assert_eq!(
            Message::decode(&m.encode(), &limits),
            too_large("bootstrap entries", 2)
        );

        let mut m = Message::new(Kind::Connected);
        m.edges = (0..4u8).map(|n| PeerId::from_bytes([n; 32])).collect();
        assert_eq!(
            Message::decode(&m.encode(), &limits),
            too_large("ids per entry", 3)
        );

        let mut m = Message::new(Kind::BootstrapResponse);
        let entry = StateEntry {
            connected_to: (0..4u8).map(|n| PeerId::from_bytes([n; 32])).collect(),
            ..StateEntry::default()
        };
        m.bootstrap.push((PeerId::from_bytes([9; 32]), entry));
        assert_eq!(
            Message::decode(&m.encode(), &limits),
            too_large("ids per entry", 3)
        );

        let mut m = Message::new(Kind::State);
        m.data = Some(Bytes::from_static(b"12345"));
        assert_eq!(Message::decode(&m.encode(), &limits), too_large("data", 4));

        let mut m = Message::new(Kind::BootstrapResponse);
        let entry = StateEntry {
            data: Some(Bytes::from_static(b"12345")),
            ..StateEntry::default()
        };
        m.bootstrap.push((PeerId::from_bytes([9; 32]), entry));
        assert_eq!(Message::decode(&m.encode(), &limits), too_large("data", 4));

        let big = Bytes::from(vec![0u8; 1001]);
        assert_eq!(Message::decode(&big, &limits), too_large("message", 1000));
    }

    /// The entry list is sized once from the bytes left, so it is never
    /// grown by copying, and never larger than those bytes can fill (nor
    /// than the limit allows): a sender cannot make us reserve more than a
    /// few times its packet.
    #[test]
    fn the_entry_list_is_sized_once_by_the_bytes_it_is_read_from() {
        let mut m = Message::new(Kind::BootstrapResponse);
        for n in 0..40u8 {
            m.bootstrap
                .push((PeerId::from_bytes([n; 32]), StateEntry::default()));
        }
        let bytes = m.encode();
        let got = Message::decode(&bytes, &Limits::default()).unwrap();
        assert_eq!(got.bootstrap.len(), 40);
        // Entries of a key and an empty value (70 bytes) are near the
        // smallest there are (68, without the value): room for all, and
        // little more.
        assert_eq!(got.bootstrap.capacity(), (40 * 70 - 1) / MIN_ENTRY_LEN + 1);

        let limits = Limits {
            max_bootstrap_entries: 50,
            ..Limits::default()
        };
        // One entry, then 10,000 bytes of an unknown field (field 15): room
        // for the entries those bytes could have been, up to the limit.
        let mut m = Message::new(Kind::BootstrapResponse);
        m.bootstrap
            .push((PeerId::from_bytes([1; 32]), StateEntry::default()));
        let mut raw = m.encode().to_vec();
        raw.extend_from_slice(&[0x7a, 0x90, 0x4e]);
        raw.extend_from_slice(&[0u8; 10_000]);
        let got = Message::decode(&Bytes::from(raw.clone()), &limits).unwrap();
        assert_eq!(got.bootstrap.len(), 1);
        assert_eq!(got.bootstrap.capacity(), 50);
        let roomy = Limits::default();
        let got = Message::decode(&Bytes::from(raw), &roomy).unwrap();
        assert_eq!(got.bootstrap.capacity(), (67 + 10_003) / MIN_ENTRY_LEN + 1);
    }

    /// Signatures ride after every original field (and after our stamps),
    /// so what a JavaScript decoder reads first is the original message.
    #[test]
    fn signatures_extend_the_original_bytes_and_must_be_64_bytes() {
        let mut m = Message::new(Kind::State);
        m.data = Some(Bytes::from_static(br#"{"name":"alice"}"#));
        m.stamp = Some(Stamp {
            incarnation: 1,
            version: 2,
        });
        m.signature = Some([7; 64]);
        let encoded = m.encode();
        assert!(hex::encode(&encoded).starts_with(STATE));
        assert!(hex::encode(&encoded).ends_with(&format!("5a40{}", "07".repeat(64))));
        assert_eq!(Message::decode(&encoded, &Limits::default()), Ok(m));

        let mut short = hex::decode(STATE).unwrap();
        pb::put_len_delimited(&mut short, field::SIGNATURE, &[1; 63]);
        assert_eq!(
            Message::decode(&Bytes::from(short), &Limits::default()),
            Err(DecodeError::BadSignature(63))
        );
        let mut entry = Vec::new();
        pb::put_len_delimited(&mut entry, field::STATE_DATA_SIGNATURE, &[1; 65]);
        assert_eq!(
            StateEntry::decode(Reader::new(&Bytes::from(entry)), &Limits::default()),
            Err(DecodeError::BadSignature(65))
        );
        let signed = StateEntry {
            edges_signature: Some([1; 64]),
            data_signature: Some([2; 64]),
            ..StateEntry::default()
        };
        let mut raw = Vec::new();
        signed.as_ref().encode_to(&mut raw);
        assert_eq!(raw.len(), signed.as_ref().encoded_len());
        assert_eq!(
            StateEntry::decode(Reader::new(&Bytes::from(raw)), &Limits::default()),
            Ok(signed)
        );
    }

    fn id() -> impl Strategy<Value = PeerId> {
        any::<[u8; 32]>().prop_map(PeerId::from_bytes)
    }

    fn stamp() -> impl Strategy<Value = Stamp> {
        (any::<u64>(), any::<u64>()).prop_map(|(incarnation, version)| Stamp {
            incarnation,
            version,
        })
    }

    fn data() -> impl Strategy<Value = Bytes> {
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
    }

    fn signature() -> impl Strategy<Value = Signature> {
        (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(a, b)| {
            let mut s = [0; 64];
            s[..32].copy_from_slice(&a);
            s[32..].copy_from_slice(&b);
            s
        })
    }

    fn entry() -> impl Strategy<Value = StateEntry> {
        (
            prop::collection::vec(id(), 0..4),
            prop::option::of(data()),
            prop::option::of(stamp()),
            prop::option::of(stamp()),
            prop::option::of(signature()),
            prop::option::of(signature()),
        )
            .prop_map(
                |(connected_to, data, edges_stamp, data_stamp, edges_signature, data_signature)| {
                    StateEntry {
                        connected_to: connected_to.into(),
                        data,
                        edges_stamp,
                        data_stamp,
                        edges_signature,
                        data_signature,
                    }
                },
            )
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            prop_oneof![(1u64..=5), any::<u64>()].prop_map(Kind::from_u64),
            prop::collection::vec((id(), entry()), 0..8),
            prop::option::of(data()),
            prop::option::of(id()),
            prop::option::of(stamp()),
            prop::collection::vec(id(), 0..5),
            prop_oneof![Just(0u64), any::<u64>()],
            prop::option::of(signature()),
            prop::collection::vec(have(), 0..4),
        )
            .prop_map(
                |(kind, bootstrap, data, id, stamp, edges, features, signature, have)| Message {
                    kind,
                    bootstrap,
                    data,
                    id,
                    stamp,
                    edges,
                    features,
                    signature,
                    have,
                },
            )
    }

    fn have() -> impl Strategy<Value = Have> {
        (id(), stamp(), stamp()).prop_map(|(id, edges, data)| Have { id, edges, data })
    }

    /// `m`'s bootstrap entries and notices alone, in a message of its kind.
    fn entries_of(m: &Message) -> Message {
        let mut only = Message::new(m.kind);
        only.bootstrap = m.bootstrap.clone();
        only.have = m.have.clone();
        only
    }

    proptest! {
        #[test]
        fn messages_round_trip(m in message()) {
            let encoded = m.encode();
            prop_assert_eq!(encoded.len(), m.encoded_len());
            prop_assert_eq!(Message::decode(&encoded, &Limits::default()), Ok(m));
        }

        #[test]
        fn entry_lengths_add_up(m in message()) {
            let mut bare = m.clone();
            bare.bootstrap.clear();
            let entries: usize = m.bootstrap.iter().map(|(id, e)| Message::bootstrap_entry_len(id, e)).sum();
            prop_assert_eq!(bare.encode().len() + entries, m.encode().len());
        }

        /// Map keys decode exactly when they are 64 hex digits (either
        /// case), to the bytes a digit-by-digit reading gives; a `0x`
        /// prefix, which the vectorised decoder would strip, is refused.
        #[test]
        fn keys_decode_exactly_when_they_are_64_hex_digits(
            raw in prop::collection::vec(prop::sample::select(b"0123456789abcdefABCDEFgx/:@`G ".to_vec()), 60..68),
            prefixed in any::<bool>(),
        ) {
            let mut raw = raw;
            if prefixed {
                raw.splice(0..0, *b"0x");
            }
            let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
            let expected = (raw.len() == KEY_LEN)
                .then(|| raw.chunks_exact(2).map(|p| Some(digit(p[0])? << 4 | digit(p[1])?)).collect::<Option<Vec<u8>>>())
                .flatten()
                .map(|bytes| PeerId::from_slice(&bytes).unwrap());
            prop_assert_eq!(PeerId::from_hex_bytes(&raw), expected);
        }

        /// Keys are written in lowercase and read back.
        #[test]
        fn keys_are_lowercase_and_read_back(id in id()) {
            let key = id.hex_bytes();
            prop_assert!(key.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)));
            prop_assert_eq!(PeerId::from_hex_bytes(&key), Some(id));
        }

        /// Entries encoded one by one after the type field, as a sender
        /// copying each entry into several packets builds them, make the
        /// same bytes as the whole message encoded at once.
        #[test]
        fn entries_encoded_one_by_one_match_the_message(m in message()) {
            let only_entries = entries_of(&m);
            let mut raw = Vec::new();
            Message::encode_entries_start(m.kind, &mut raw);
            for (id, entry) in &m.bootstrap {
                let before = raw.len();
                Message::encode_bootstrap_entry(&mut raw, id, entry.as_ref(), EntryKey::Hex);
                prop_assert_eq!(raw.len() - before, Message::bootstrap_entry_len(id, entry));
            }
            for have in &m.have {
                prop_assert_eq!(Message::encode_have(&mut raw, have), Message::have_len(have));
            }
            prop_assert_eq!(&raw[..], &only_entries.encode()[..]);
        }

        /// Entries keyed by the raw id decode to the same message as the
        /// original's hex keys, 32 or 33 bytes shorter each.
        #[test]
        fn raw_keys_read_back_as_hex_keys_do(m in message()) {
            let only_entries = entries_of(&m);
            let mut raw = Vec::new();
            Message::encode_entries_start(m.kind, &mut raw);
            for (id, entry) in &m.bootstrap {
                let before = raw.len();
                Message::encode_bootstrap_entry(&mut raw, id, entry.as_ref(), EntryKey::Raw);
                // 33 fewer when the entry's length prefix shrinks too.
                let shorter = Message::bootstrap_entry_len(id, entry) - (raw.len() - before);
                prop_assert!(shorter == 32 || shorter == 33, "{} bytes shorter", shorter);
            }
            for have in &m.have {
                Message::encode_have(&mut raw, have);
            }
            let got = Message::decode(&Bytes::from(raw), &Limits::default()).unwrap();
            prop_assert_eq!(got, only_entries);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(raw in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = Message::decode(&Bytes::from(raw), &Limits::default());
        }

        /// Arbitrary bytes after a valid prefix: the decoder must not panic
        /// deeper inside nested fields either.
        #[test]
        fn decoding_mutated_vectors_never_panics(
            which in 0usize..5,
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut raw = hex::decode(vectors()[which].0).unwrap();
            let i = at.index(raw.len());
            raw[i] = byte;
            let _ = Message::decode(&Bytes::from(raw), &Limits::default());
        }
    }
}
