//! `hyper-presence decode`: look inside a packet.

use std::process::ExitCode;

use bytes::Bytes;
use clap::Args;
use serde_json::{json, Value};

use hyper_presence::proto::wire::{FloodPacket, Limits, Message, Stamp};

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
    println!(
        "{}",
        serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?
    );
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
    }))
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
