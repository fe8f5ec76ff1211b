//! The hypercore replication transport, as the JavaScript stack speaks it,
//! in sans-IO layers: each is a value fed with bytes that hands back bytes
//! to write and events, and never sees a socket or a clock.
//!
//! From the bottom:
//!
//! - [`noise`]: Noise XX with the Ed25519 Diffie-Hellman of `noise-curve-ed`;
//!   our identity key is the static key in both roles.
//! - [`secret_stream`]: `@hyperswarm/secret-stream`: uint24-LE frames, the
//!   handshake, the stream-id/header exchange, libsodium's secretstream
//!   XChaCha20-Poly1305, keep-alive frames. Turns a byte stream into
//!   authenticated plaintext messages.
//! - [`protomux`]: channels opened and closed by protocol name and id, and
//!   batches, over any stream of plaintext messages (ours, or one that
//!   arrives already encrypted).
//! - [`channel`]: the `hypercore/alpha` channel: its open (discovery key and
//!   capability) and its extension message. Nothing else of hypercore
//!   replication is needed for presence.
//!
//! [`compact`] holds the compact-encoding primitives the upper two share;
//! [`hash`] the BLAKE2b derivations (namespaces, stream ids, capabilities).
//! The whole wire layout, with vectors captured from JavaScript, is in
//! `docs/TRANSPORT.md`.

pub mod channel;
pub mod compact;
pub mod hash;
pub mod noise;
pub mod protomux;
pub mod secret_stream;
#[cfg(test)]
mod vectors;
