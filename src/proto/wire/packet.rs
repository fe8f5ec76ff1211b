//! The hyper-flood packet: who originated a message, its number, its hop budget.

use bytes::Bytes;

use super::protobuf::{self as pb, Reader, LEN, VARINT};
use super::{DecodeError, Limits};
use crate::proto::PeerId;

/// One flood packet, the payload of every extension message (hyper-flood's
/// `Message`: originId = 1, messageNumber = 2, ttl = 3, data = 4, all required).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FloodPacket {
    /// The peer that first sent the message.
    pub origin: PeerId,
    /// Per-origin message counter.
    pub number: u32,
    /// Hops left; 0 means "do not relay" to a JavaScript peer.
    pub ttl: u32,
    /// The encoded presence [`Message`](super::Message), opaque at this layer.
    pub data: Bytes,
}

impl FloodPacket {
    /// Encodes the packet exactly as hyper-flood does (fields in number order).
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.encoded_len());
        pb::put_len_delimited(&mut out, 1, self.origin.as_bytes());
        pb::put_varint_field(&mut out, 2, u64::from(self.number));
        pb::put_varint_field(&mut out, 3, u64::from(self.ttl));
        pb::put_len_delimited(&mut out, 4, &self.data);
        Bytes::from(out)
    }

    /// Length of [`FloodPacket::encode`]'s output, without encoding.
    pub fn encoded_len(&self) -> usize {
        pb::len_delimited_len(1, PeerId::LEN)
            + pb::varint_field_len(2, u64::from(self.number))
            + pb::varint_field_len(3, u64::from(self.ttl))
            + pb::len_delimited_len(4, self.data.len())
    }

    /// Decodes a packet; `data` is a zero-copy slice of `bytes`.
    pub fn decode(bytes: &Bytes, limits: &Limits) -> Result<Self, DecodeError> {
        if bytes.len() > limits.max_packet_bytes {
            return Err(DecodeError::TooLarge {
                what: "packet",
                limit: limits.max_packet_bytes,
            });
        }
        let (mut origin, mut number, mut ttl, mut data) = (None, None, None, None);
        let mut r = Reader::new(bytes);
        while !r.is_empty() {
            let (field, wire_type) = r.read_tag()?;
            match field {
                1 => {
                    pb::expect_wire_type(field, wire_type, LEN)?;
                    let raw = r.read_len_delimited()?;
                    origin =
                        Some(PeerId::from_slice(&raw).map_err(|_| DecodeError::BadId(raw.len()))?);
                }
                2 => {
                    pb::expect_wire_type(field, wire_type, VARINT)?;
                    let n = r.read_varint()?;
                    number = Some(
                        u32::try_from(n).map_err(|_| DecodeError::OutOfRange("messageNumber"))?,
                    );
                }
                3 => {
                    pb::expect_wire_type(field, wire_type, VARINT)?;
                    let n = r.read_varint()?;
                    ttl = Some(u32::try_from(n).map_err(|_| DecodeError::OutOfRange("ttl"))?);
                }
                4 => {
                    pb::expect_wire_type(field, wire_type, LEN)?;
                    data = Some(r.read_len_delimited()?);
                }
                _ => r.skip(wire_type)?,
            }
        }
        Ok(FloodPacket {
            origin: origin.ok_or(DecodeError::Missing("originId"))?,
            number: number.ok_or(DecodeError::Missing("messageNumber"))?,
            ttl: ttl.ok_or(DecodeError::Missing("ttl"))?,
            data: data.ok_or(DecodeError::Missing("data"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// PROTOCOL.md: originId = 32 × 0xaa, messageNumber = 7, ttl = 255,
    /// data = the STATE {"name":"alice"} message.
    const VECTOR: &str = "0a20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa100718ff012214000512107b226e616d65223a22616c696365227d";

    fn vector_packet() -> FloodPacket {
        FloodPacket {
            origin: PeerId::from_bytes([0xaa; 32]),
            number: 7,
            ttl: 255,
            data: Bytes::from(hex::decode("000512107b226e616d65223a22616c696365227d").unwrap()),
        }
    }

    #[test]
    fn the_javascript_vector_encodes_byte_for_byte() {
        let packet = vector_packet();
        assert_eq!(hex::encode(packet.encode()), VECTOR);
        assert_eq!(packet.encoded_len(), VECTOR.len() / 2);
    }

    #[test]
    fn the_javascript_vector_decodes() {
        let bytes = Bytes::from(hex::decode(VECTOR).unwrap());
        assert_eq!(
            FloodPacket::decode(&bytes, &Limits::default()),
            Ok(vector_packet())
        );
    }

    #[test]
    fn every_truncation_of_the_vector_is_an_error() {
        let full = hex::decode(VECTOR).unwrap();
        for len in 0..full.len() {
            let bytes = Bytes::copy_from_slice(&full[..len]);
            assert!(
                FloodPacket::decode(&bytes, &Limits::default()).is_err(),
                "prefix of {len}"
            );
        }
    }

    #[test]
    fn missing_fields_are_named() {
        let mut p = vector_packet().encode().to_vec();
        p.truncate(34 + 2 + 3); // origin, number, ttl; no data
        let e = FloodPacket::decode(&Bytes::from(p), &Limits::default());
        assert_eq!(e, Err(DecodeError::Missing("data")));
    }

    #[test]
    fn unknown_fields_of_every_wire_type_are_skipped() {
        let mut p = vector_packet().encode().to_vec();
        pb::put_varint_field(&mut p, 5, 99);
        pb::put_tag(&mut p, 6, pb::FIXED64);
        p.extend_from_slice(&[1; 8]);
        pb::put_len_delimited(&mut p, 15, b"future");
        pb::put_tag(&mut p, 1000, pb::FIXED32);
        p.extend_from_slice(&[2; 4]);
        let decoded = FloodPacket::decode(&Bytes::from(p), &Limits::default());
        assert_eq!(decoded, Ok(vector_packet()));
    }

    #[test]
    fn a_repeated_field_keeps_its_last_value() {
        let mut p = vector_packet().encode().to_vec();
        pb::put_varint_field(&mut p, 2, 8);
        pb::put_varint_field(&mut p, 3, 0);
        let decoded = FloodPacket::decode(&Bytes::from(p), &Limits::default()).unwrap();
        assert_eq!((decoded.number, decoded.ttl), (8, 0));
    }

    #[test]
    fn field_zero_is_just_another_unknown_field_of_a_packet() {
        let mut p = Vec::new();
        pb::put_varint_field(&mut p, 0, 1);
        p.extend_from_slice(&vector_packet().encode());
        pb::put_len_delimited(&mut p, 0, b"x");
        pb::put_varint_field(&mut p, 7, u64::MAX);
        pb::put_len_delimited(&mut p, 4, b"last");
        let decoded = FloodPacket::decode(&Bytes::from(p), &Limits::default()).unwrap();
        assert_eq!(decoded.data, Bytes::from_static(b"last"));
    }

    #[test]
    fn a_ttl_over_32_bits_is_out_of_range() {
        let mut p = Vec::new();
        pb::put_varint_field(&mut p, 3, u64::MAX);
        assert_eq!(
            FloodPacket::decode(&Bytes::from(p), &Limits::default()),
            Err(DecodeError::OutOfRange("ttl"))
        );
    }

    #[test]
    fn bad_ids_numbers_and_wire_types_are_refused() {
        let limits = Limits::default();
        let mut short = Vec::new();
        pb::put_len_delimited(&mut short, 1, &[1; 31]);
        assert_eq!(
            FloodPacket::decode(&Bytes::from(short), &limits),
            Err(DecodeError::BadId(31))
        );
        let mut big = Vec::new();
        pb::put_varint_field(&mut big, 2, u64::from(u32::MAX) + 1);
        assert_eq!(
            FloodPacket::decode(&Bytes::from(big), &limits),
            Err(DecodeError::OutOfRange("messageNumber"))
        );
        let mut wrong = Vec::new();
        pb::put_varint_field(&mut wrong, 4, 1);
        assert_eq!(
            FloodPacket::decode(&Bytes::from(wrong), &limits),
            Err(DecodeError::WrongWireType {
                field: 4,
                got: 0,
                expected: 2
            })
        );
    }

    #[test]
    fn packets_over_the_limit_are_refused_before_parsing() {
        let limits = Limits {
            max_packet_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(
            FloodPacket::decode(&vector_packet().encode(), &limits),
            Err(DecodeError::TooLarge {
                what: "packet",
                limit: 10
            })
        );
    }

    fn packet() -> impl Strategy<Value = FloodPacket> {
        (
            any::<[u8; 32]>(),
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(|(origin, number, ttl, data)| FloodPacket {
                origin: PeerId::from_bytes(origin),
                number,
                ttl,
                data: Bytes::from(data),
            })
    }

    proptest! {
        #[test]
        fn packets_round_trip(p in packet()) {
            let bytes = p.encode();
            prop_assert_eq!(bytes.len(), p.encoded_len());
            prop_assert_eq!(FloodPacket::decode(&bytes, &Limits::default()), Ok(p));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = FloodPacket::decode(&Bytes::from(bytes), &Limits::default());
        }
    }
}
