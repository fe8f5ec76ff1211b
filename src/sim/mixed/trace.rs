//! A readable line per packet, for following what a mixed run did.

use bytes::Bytes;

use crate::proto::wire::{FloodPacket, Kind, Limits, Message};
use crate::proto::PeerId;

/// A peer as traces print it: `#i` for simulated peer `i` (other ids by
/// their first 8 bytes as a number).
pub fn name(id: &PeerId) -> String {
    if let Some(i) = crate::sim::sim_index(id) {
        return format!("#{i}");
    }
    let mut first = [0u8; 8];
    first.copy_from_slice(&id.as_bytes()[..8]);
    format!("#{}", u64::from_be_bytes(first))
}

fn names(ids: &[PeerId]) -> String {
    ids.iter().map(name).collect::<Vec<_>>().join(",")
}

/// One flood packet in words: origin, number, ttl, and what the presence
/// message says (stamps and edge lists included when it carries them).
pub fn describe(packet: &Bytes) -> String {
    let limits = Limits::default();
    let flood = match FloodPacket::decode(packet, &limits) {
        Ok(flood) => flood,
        Err(e) => return format!("undecodable packet: {e}"),
    };
    let head = format!("{}/{} ttl {}", name(&flood.origin), flood.number, flood.ttl);
    let message = match Message::decode(&flood.data, &limits) {
        Ok(message) => message,
        Err(e) => return format!("{head} undecodable message: {e}"),
    };
    let stamp = message.stamp.map_or(String::new(), |s| {
        format!(" @{}.{}", s.incarnation, s.version)
    });
    let what = match message.kind {
        Kind::BootstrapRequest => format!("REQUEST features {}", message.features),
        Kind::BootstrapResponse | Kind::Other(_) if !message.bootstrap.is_empty() => {
            let entries: Vec<String> = message
                .bootstrap
                .iter()
                .map(|(id, e)| {
                    let data = e
                        .data
                        .as_ref()
                        .map_or(String::new(), |d| String::from_utf8_lossy(d).into_owned());
                    format!("{}->[{}]{data}", name(id), names(&e.connected_to))
                })
                .collect();
            let word = match message.kind {
                Kind::BootstrapResponse => "VIEW".to_owned(),
                other => format!("kind {} VIEW", other.to_u64()),
            };
            format!("{word} {}", entries.join(" "))
        }
        Kind::Connected | Kind::Disconnected => {
            let word = if message.kind == Kind::Connected {
                "CONNECTED"
            } else {
                "DISCONNECTED"
            };
            let id = message.id.as_ref().map_or("?".into(), name);
            let list = if message.stamp.is_some() {
                format!(" list [{}]", names(&message.edges))
            } else {
                String::new()
            };
            format!("{word} {id}{stamp}{list}")
        }
        Kind::State => {
            let data = message
                .data
                .as_ref()
                .map_or("none".into(), |d| String::from_utf8_lossy(d).into_owned());
            format!("STATE {data}{stamp}")
        }
        Kind::BootstrapResponse => "VIEW".to_owned(),
        Kind::Other(n) => format!("kind {n}"),
    };
    format!("{head} {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The flood packet vector of the wire reference (`PROTOCOL.md`).
    #[test]
    fn a_packet_reads_as_origin_number_ttl_and_message() {
        let packet = hex::decode(
            "0a20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa100718ff0122140005\
             12107b226e616d65223a22616c696365227d",
        )
        .unwrap();
        let origin = u64::from_be_bytes([0xaa; 8]);
        assert_eq!(
            describe(&Bytes::from(packet)),
            format!(r#"#{origin}/7 ttl 255 STATE {{"name":"alice"}}"#)
        );
        assert!(describe(&Bytes::from_static(b"\xff")).starts_with("undecodable"));
    }
}
