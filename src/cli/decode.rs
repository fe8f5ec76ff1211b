//! `hyper-presence decode`: look inside a packet.

use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use serde_json::{json, Value};

use hyper_presence::proto::wire::{FloodPacket, Limits, Message, Signature, Stamp};

use super::out;

/// Arguments of `decode`.
#[derive(Debug, Args)]
pub struct DecodeArgs {
    /// The packet as hex (a flood packet; with --message, a bare presence message).
    hex: String,
    /// The hex is a presence message, not a flood packet around one.
    #[arg(long)]
    message: bool,
}

pub fn run(args: DecodeArgs) -> Result<ExitCode, String> {
    let raw = hex::decode(args.hex.trim()).map_err(|e| format!("not hex: {e}"))?;
    let bytes = Bytes::from(raw);
    let limits = Limits::default();
    let value = if args.message {
        message_json(&bytes, &limits)?
    } else {
        let packet =
            FloodPacket::decode(&bytes, &limits).map_err(|e| format!("not a flood packet: {e}"))?;
        json!({
            "origin": packet.origin,
            "number": packet.number,
            "ttl": packet.ttl,
            "message": message_json(&packet.data, &limits)?,
        })
    };
    out(&serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
    Ok(ExitCode::SUCCESS)
}

fn message_json(bytes: &Bytes, limits: &Limits) -> Result<Value, String> {
    let m = Message::decode(bytes, limits).map_err(|e| format!("not a presence message: {e}"))?;
    let bootstrap: serde_json::Map<String, Value> = m
        .bootstrap
        .iter()
        .map(|(id, e)| {
            let entry = json!({
                "connectedTo": &e.connected_to[..],
                "data": e.data.as_deref().map(text),
                "edgesStamp": e.edges_stamp.map(stamp),
                "dataStamp": e.data_stamp.map(stamp),
                "edgesSignature": e.edges_signature.as_ref().map(signature),
                "dataSignature": e.data_signature.as_ref().map(signature),
            });
            (id.to_string(), entry)
        })
        .collect();
    Ok(json!({
        "type": format!("{:?}", m.kind),
        "bootstrap": bootstrap,
        "data": m.data.as_deref().map(text),
        "id": m.id,
        "stamp": m.stamp.map(stamp),
        "edges": m.edges,
        "signature": m.signature.as_ref().map(signature),
        "features": features(m.features),
        "have": m.have.iter().map(|h| json!({
            "id": h.id,
            "edgesStamp": stamp(h.edges),
            "dataStamp": stamp(h.data),
        })).collect::<Vec<_>>(),
    }))
}

/// The feature bits of a request by name; bits this build does not know
/// as their numbers, so that a newer peer's request still shows whole.
fn features(bits: u64) -> Vec<Value> {
    const NAMES: [(u64, &str); 3] = [
        (Message::BATCHES, "batches"),
        (Message::HAVE, "have"),
        (Message::RAW_IDS, "rawIds"),
    ];
    let mut shown: Vec<Value> = NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| json!(name))
        .collect();
    let known = NAMES.iter().fold(0, |all, (bit, _)| all | bit);
    let mut rest = bits & !known;
    while rest != 0 {
        let bit = rest & rest.wrapping_neg();
        shown.push(json!(bit));
        rest &= !bit;
    }
    shown
}

fn signature(s: &Signature) -> String {
    hex::encode(s)
}

/// Data as text when it is UTF-8 (JSON peers), else as hex.
fn text(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => format!("hex:{}", hex::encode(bytes)),
    }
}

fn stamp(s: Stamp) -> Value {
    json!({"incarnation": s.incarnation, "version": s.version})
}
