//! LAN discovery over mDNS/DNS-SD (`mdns-sd`): each node registers one
//! `_hyper-presence._tcp` service and browses for others.
//!
//! The TXT record carries our id and a tag of the topic: a BLAKE2b hash of
//! the discovery key under a name of its own, so a listener on the LAN
//! learns neither the topic name nor its key nor the discovery key that
//! finds the topic on the DHT; only peers of the same topic recognise each
//! other. Records are parsed by [`parse_record`], which bounds every field
//! and never panics; a bad record costs a debug log line.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};

use mdns_sd::{ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::mpsc;

use super::{Discovery, Found};
use crate::net::transport::hash::{b256, discovery_key};
use crate::proto::PeerId;

/// The DNS-SD service type every hyper-presence node registers.
pub const SERVICE: &str = "_hyper-presence._tcp.local.";

/// Bytes of the topic tag in the TXT record (hex-encoded there).
const TAG_LEN: usize = 16;

/// Addresses taken from one record; more are ignored.
const MAX_ADDRS: usize = 8;

/// Records of other topics or malformed ones we remember by name, so that a
/// removal of one we never took is not mistaken for a peer's; beyond this
/// the oldest knowledge is simply dropped (a stray removal costs nothing).
const MAX_NAMES: usize = 1024;

/// The topic's tag as it appears in mDNS records: never the key, nor the
/// discovery key.
pub fn topic_tag(core_key: &[u8; 32]) -> [u8; TAG_LEN] {
    let hash = b256(&[b"hyper-presence mdns topic", &discovery_key(core_key)]);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&hash[..TAG_LEN]);
    tag
}

/// Why a record was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No `id`, or not 64 hex digits.
    #[error("record without a valid id")]
    BadId,
    /// No `t`, or not our topic.
    #[error("record of another topic")]
    OtherTopic,
    /// Our own record.
    #[error("our own record")]
    Own,
    /// No address we can dial.
    #[error("record without a usable address")]
    NoAddress,
}

/// One resolved address of a record, with the interface an IPv6 link-local
/// address needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordAddr {
    /// The address.
    pub ip: IpAddr,
    /// The interface index (for IPv6 link-local), 0 if none.
    pub scope: u32,
}

/// Reads a resolved record: its `id` and `t` TXT values, its addresses and
/// port. Addresses we cannot dial (unspecified, multicast, link-local IPv6
/// without an interface) are dropped; loopback ones go last (they reach a
/// peer on this host only); at most `MAX_ADDRS` are kept.
pub fn parse_record(
    us: &PeerId,
    tag: &[u8; TAG_LEN],
    id: Option<&str>,
    topic: Option<&str>,
    addrs: impl IntoIterator<Item = RecordAddr>,
    port: u16,
) -> Result<Found, RecordError> {
    let mut their_tag = [0u8; TAG_LEN];
    match topic {
        Some(t) if hex::decode_to_slice(t, &mut their_tag).is_ok() && their_tag == *tag => {}
        _ => return Err(RecordError::OtherTopic),
    }
    let mut bytes = [0u8; 32];
    let id = match id {
        Some(s) if hex::decode_to_slice(s, &mut bytes).is_ok() => PeerId::from_bytes(bytes),
        _ => return Err(RecordError::BadId),
    };
    if id == *us {
        return Err(RecordError::Own);
    }
    if port == 0 {
        return Err(RecordError::NoAddress);
    }
    let mut dialable: Vec<SocketAddr> = addrs
        .into_iter()
        .filter_map(|a| match a.ip {
            ip if ip.is_unspecified() || ip.is_multicast() => None,
            IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                (a.scope != 0).then(|| SocketAddr::V6(SocketAddrV6::new(v6, port, 0, a.scope)))
            }
            ip => Some(SocketAddr::new(ip, port)),
        })
        .take(MAX_ADDRS)
        .collect();
    dialable.sort_by_key(|a| (a.ip().is_loopback(), a.is_ipv6()));
    dialable.dedup();
    if dialable.is_empty() {
        return Err(RecordError::NoAddress);
    }
    Ok(Found {
        id,
        addrs: dialable,
    })
}

/// Our registration and browse on the LAN; unregistered (a goodbye record
/// goes out) and the daemon thread stopped when dropped.
pub struct Mdns {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Mdns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mdns")
            .field("fullname", &self.fullname)
            .finish()
    }
}

impl Mdns {
    /// Registers us (when we listen on `port`; every interface's addresses)
    /// and starts browsing; what is found for our topic goes to `found`.
    /// Call within a tokio runtime.
    pub fn start(
        us: PeerId,
        core_key: &[u8; 32],
        port: Option<u16>,
        found: mpsc::Sender<Discovery>,
    ) -> Result<Self, mdns_sd::Error> {
        let daemon = ServiceDaemon::new()?;
        let tag = topic_tag(core_key);
        let id_hex = hex::encode(us.as_bytes());
        // A DNS label holds 63 bytes: the instance name is the id's first
        // half; the whole id is in the TXT record.
        let instance = &id_hex[..32];
        let mut fullname = String::new();
        if let Some(port) = port {
            let host = format!("{instance}.local.");
            let properties = [("id", id_hex.as_str()), ("t", &hex::encode(tag))];
            let info = ServiceInfo::new(SERVICE, instance, &host, "", port, &properties[..])?
                .enable_addr_auto();
            fullname = info.get_fullname().to_owned();
            daemon.register(info)?;
        }
        let events = daemon.browse(SERVICE)?;
        tokio::spawn(browse(us, tag, events, found));
        Ok(Mdns { daemon, fullname })
    }
}

impl Mdns {
    /// Stops browsing and answering; with `goodbye`, first tells the LAN our
    /// record is gone (otherwise it lapses with its TTL, as after a crash).
    pub fn stop(mut self, goodbye: bool) {
        if !goodbye {
            self.fullname.clear();
        }
    }
}

impl Drop for Mdns {
    fn drop(&mut self) {
        if !self.fullname.is_empty() {
            let _ = self.daemon.unregister(&self.fullname);
        }
        let _ = self.daemon.shutdown();
    }
}

/// Turns the daemon's events into [`Discovery`] messages until either side
/// is gone.
async fn browse(
    us: PeerId,
    tag: [u8; TAG_LEN],
    events: mdns_sd::Receiver<ServiceEvent>,
    found: mpsc::Sender<Discovery>,
) {
    // Which peer each instance name stands for, to turn removals into ids.
    let mut names: HashMap<String, PeerId> = HashMap::new();
    while let Ok(event) = events.recv_async().await {
        let message = match event {
            ServiceEvent::ServiceResolved(service) => {
                let addrs = service.get_addresses().iter().map(|a| RecordAddr {
                    ip: a.to_ip_addr(),
                    scope: match a {
                        ScopedIp::V6(v6) => v6.scope_id().index,
                        _ => 0,
                    },
                });
                let parsed = parse_record(
                    &us,
                    &tag,
                    service.get_property_val_str("id"),
                    service.get_property_val_str("t"),
                    addrs,
                    service.get_port(),
                );
                match parsed {
                    Ok(peer) => {
                        if names.len() >= MAX_NAMES {
                            names.clear();
                        }
                        names.insert(service.get_fullname().to_owned(), peer.id);
                        Discovery::Found(peer)
                    }
                    Err(RecordError::Own | RecordError::OtherTopic) => continue,
                    Err(e) => {
                        tracing::debug!(name = service.get_fullname(), "mDNS record ignored: {e}");
                        continue;
                    }
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname) => match names.remove(&fullname) {
                Some(id) => Discovery::Lost(id),
                None => continue,
            },
            _ => continue,
        };
        // The node takes what it can; a flood of records waits in the
        // daemon's channel rather than ours.
        if found.send(message).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
