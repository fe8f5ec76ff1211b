//! Unit tests of the engine alone: each feeds inputs by hand and checks the
//! exact outputs.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::proto::wire::{FloodPacket, Message, StateEntry};
use crate::proto::{Config, Json};

mod notices;
mod relinks;

fn id(n: u8) -> PeerId {
    PeerId::from_bytes([n; 32])
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Engine `n`, passing news on at the end of each input (no gossip window)
/// so that each test sees every consequence of an input at once.
fn engine(n: u8) -> Presence<Json> {
    let mut config = Config::new(id(n));
    config.incarnation = 100;
    config.gossip_window = Duration::ZERO;
    Presence::new(config, Duration::ZERO).unwrap()
}

/// Engine 1 with links to the given peers at time 0, each of which asked
/// for our view as a JavaScript peer does (so they get flood packets),
/// outputs so far discarded.
fn linked_to(peers: &[u8]) -> Presence<Json> {
    let mut p = engine(1);
    for n in peers {
        p.peer_connected(ms(0), id(*n));
        p.receive(ms(0), id(*n), packet(id(*n), 1_000, &request(0)));
    }
    outputs(&mut p);
    p
}

fn outputs(p: &mut Presence<Json>) -> Vec<Output<serde_json::Value>> {
    p.drain_outputs().collect()
}

fn events(out: &[Output<serde_json::Value>]) -> Vec<Event<serde_json::Value>> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// Every packet sent, decoded, with where it goes.
fn sent(out: &[Output<serde_json::Value>]) -> Vec<(Destination, FloodPacket, Message)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Send { to, packet } => {
                let p = FloodPacket::decode(packet, &Limits::default()).unwrap();
                let m = Message::decode(&p.data, &Limits::default()).unwrap();
                Some((to.clone(), p, m))
            }
            _ => None,
        })
        .collect()
}

fn packet(origin: PeerId, number: u32, message: &Message) -> Bytes {
    FloodPacket {
        origin,
        number,
        ttl: 255,
        data: message.encode(),
    }
    .encode()
}

/// A stamped message in the packet its origin floods: numbered by the
/// news, as every peer of ours numbers it.
fn flooded(origin: PeerId, message: &Message) -> Bytes {
    let stamp = message.stamp.expect("stamped");
    let number = crate::proto::flood::register_number(message.kind, stamp, message.id.as_ref());
    packet(origin, number, message)
}

fn stamped(kind: Kind, version: u64, id_field: Option<PeerId>, edges: Vec<PeerId>) -> Message {
    let mut m = Message::new(kind);
    m.id = id_field;
    m.stamp = Some(Stamp {
        incarnation: 1,
        version,
    });
    m.edges = edges;
    m
}

fn state(version: u64, value: serde_json::Value) -> Message {
    let mut m = Message::new(Kind::State);
    m.data = Some(Bytes::from(serde_json::to_vec(&value).unwrap()));
    m.stamp = Some(Stamp {
        incarnation: 1,
        version,
    });
    m
}

#[test]
fn a_new_engine_is_alone_and_quiet() {
    let mut p = engine(1);
    assert_eq!(p.online(), vec![id(1)]);
    assert_eq!(p.data(), &json!({}));
    assert_eq!(p.peer_data(&id(1)), Some(json!({})));
    assert_eq!(p.peer_data(&id(2)), None);
    assert!(!p.is_bootstrapped());
    assert!(outputs(&mut p).is_empty());
    assert_eq!(p.extension(), "hyper-presence");
}

/// A new peer is taken to be one of ours until its request says otherwise:
/// it is asked for its view and gets our entry (edges, data, stamps) in its
/// outbox, not as flood packets.
#[test]
fn connecting_asks_for_a_view_and_sends_our_entry() {
    let mut p = engine(1);
    p.peer_connected(ms(1), id(2));
    let out = outputs(&mut p);
    assert_eq!(
        events(&out),
        vec![Event::PeerAdd(id(2)), Event::Online(vec![id(1), id(2)])]
    );
    let sent = sent(&out);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let (to, pkt, msg) = &sent[0];
    assert_eq!(*to, Destination::Peer(id(2)));
    assert_eq!((msg.kind, pkt.ttl), (Kind::BootstrapRequest, 0));
    let (to, pkt, msg) = &sent[1];
    assert_eq!(*to, Destination::Peer(id(2)));
    assert_eq!((msg.kind, pkt.ttl), (Kind::BootstrapResponse, 0));
    let (who, entry) = &msg.bootstrap[0];
    assert_eq!(*who, id(1));
    assert_eq!(entry.connected_to.to_vec(), vec![id(2)]);
    assert_eq!(entry.data.as_deref(), Some(&b"{}"[..]));
    assert_eq!(entry.edges_stamp.unwrap().incarnation, 100);
    assert!(entry.data_stamp.is_some());
}

/// A JavaScript peer (its request has no feature bits) gets our links and
/// data as the original's flood packets, which it carries on to the
/// JavaScript part of the network, then our view.
#[test]
fn a_javascript_peer_gets_our_links_and_data_as_flood_packets() {
    let mut p = engine(1);
    p.peer_connected(ms(1), id(2));
    p.peer_connected(ms(1), id(3));
    outputs(&mut p);
    p.receive(ms(2), id(2), packet(id(2), 1, &request(0)));
    let sent = sent(&outputs(&mut p));
    let floods: Vec<&(Destination, FloodPacket, Message)> =
        sent.iter().filter(|s| s.1.ttl == 255).collect();
    assert_eq!(floods.len(), 3, "{sent:?}");
    for (to, _, _) in &floods {
        assert_eq!(*to, Destination::Peer(id(2)));
    }
    let connected: Vec<Option<PeerId>> = floods
        .iter()
        .filter(|s| s.2.kind == Kind::Connected)
        .map(|s| s.2.id)
        .collect();
    assert_eq!(connected, vec![Some(id(2)), Some(id(3))]);
    for (_, _, msg) in floods.iter().filter(|s| s.2.kind == Kind::Connected) {
        assert_eq!(msg.edges, vec![id(2), id(3)], "the whole edge list");
    }
    let state = floods.iter().find(|s| s.2.kind == Kind::State).unwrap();
    assert_eq!(state.2.data.as_deref(), Some(&b"{}"[..]));
    assert!(sent
        .iter()
        .any(|s| s.2.kind == Kind::BootstrapResponse && s.0 == Destination::Peer(id(2))));
    // From now on it gets our changes as floods at once.
    p.set_data(ms(3), json!(7)).unwrap();
    let states = sent_of_kind(&mut p, Kind::State);
    assert_eq!(states.len(), 1);
}

#[test]
fn our_data_is_not_reflooded_on_every_new_link() {
    let mut p = linked_to(&[2]);
    p.peer_connected(ms(2), id(3));
    let sent = sent(&outputs(&mut p));
    let kinds: Vec<(Destination, Kind)> = sent.iter().map(|s| (s.0.clone(), s.2.kind)).collect();
    assert_eq!(
        kinds,
        vec![
            (Destination::Peer(id(2)), Kind::Connected),
            (Destination::Peer(id(3)), Kind::BootstrapRequest),
            (Destination::Peer(id(3)), Kind::BootstrapResponse),
        ]
    );
}

#[test]
fn data_set_while_alone_is_announced_on_the_first_link() {
    let mut p = engine(1);
    p.set_data(ms(1), json!({"x": 1})).unwrap();
    assert!(sent(&outputs(&mut p)).is_empty(), "nobody to tell yet");
    p.peer_connected(ms(2), id(2));
    let views = sent_of_kind(&mut p, Kind::BootstrapResponse);
    assert_eq!(views.len(), 1);
    assert_eq!(
        views[0].bootstrap[0].1.data.as_deref(),
        Some(&br#"{"x":1}"#[..])
    );
}

#[test]
fn two_connections_to_one_peer_are_one_link() {
    let mut p = engine(1);
    p.peer_connected(ms(1), id(2));
    outputs(&mut p);
    p.peer_connected(ms(2), id(2));
    assert!(outputs(&mut p).is_empty());
    p.peer_disconnected(ms(3), id(2));
    assert!(outputs(&mut p).is_empty());
    assert_eq!(p.poll_timeout(), None, "one connection still lives");
    assert_eq!(p.online(), vec![id(1), id(2)]);
}

#[test]
fn a_lost_peer_is_announced_after_the_grace_with_its_id() {
    let mut p = linked_to(&[2, 3]);
    p.peer_disconnected(ms(10), id(2));
    assert!(outputs(&mut p).is_empty());
    assert_eq!(p.poll_timeout(), Some(ms(510)));
    p.tick(ms(509));
    assert!(outputs(&mut p).is_empty());
    p.tick(ms(510));
    let out = outputs(&mut p);
    assert_eq!(
        events(&out),
        vec![Event::PeerRemove(id(2)), Event::Online(vec![id(1), id(3)])]
    );
    let sent = sent(&out);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].2.kind, Kind::Disconnected);
    assert_eq!(sent[0].2.id, Some(id(2)));
    assert_eq!(sent[0].2.edges, vec![id(3)]);
}

#[test]
fn a_reconnection_within_the_grace_is_no_event_but_resyncs() {
    let mut p = linked_to(&[2]);
    p.peer_disconnected(ms(10), id(2));
    p.peer_connected(ms(100), id(2));
    let out = outputs(&mut p);
    assert!(events(&out).is_empty());
    let kinds: Vec<Kind> = sent(&out).iter().map(|s| s.2.kind).collect();
    assert_eq!(kinds, vec![Kind::BootstrapRequest]);
    p.tick(ms(1000));
    assert!(outputs(&mut p).is_empty());
    assert_eq!(p.online(), vec![id(1), id(2)]);
}

#[test]
fn zero_grace_announces_at_once() {
    let mut config = Config::new(id(1));
    config.disconnect_grace = Duration::ZERO;
    let mut p = Presence::new(config, ms(0)).unwrap();
    p.peer_connected(ms(0), id(2));
    outputs(&mut p);
    p.peer_disconnected(ms(1), id(2));
    assert!(events(&outputs(&mut p)).contains(&Event::PeerRemove(id(2))));
}

#[test]
fn garbage_is_reported_and_changes_nothing() {
    let mut p = linked_to(&[2]);
    for junk in [&b""[..], &[0xff; 40][..], &[0x0a, 0x05, 1][..]] {
        p.receive(ms(1), id(2), Bytes::copy_from_slice(junk));
        let out = outputs(&mut p);
        assert_eq!(out.len(), 1);
        assert!(matches!(&out[0], Output::Event(Event::Malformed { from, .. }) if *from == id(2)));
    }
    // A valid packet whose inner message is broken.
    let bad = FloodPacket {
        origin: id(3),
        number: 1,
        ttl: 3,
        data: Bytes::from_static(&[0x1a, 0x02, 1, 2]),
    }
    .encode();
    p.receive(ms(2), id(2), bad);
    assert!(matches!(
        &outputs(&mut p)[..],
        [Output::Event(Event::Malformed { .. })]
    ));
    assert_eq!(p.online(), vec![id(1), id(2)]);
}

#[test]
fn a_bootstrap_request_is_answered_to_the_asker_alone() {
    let mut p = linked_to(&[2, 3]);
    let ask = packet(id(2), 9, &Message::new(Kind::BootstrapRequest));
    p.receive(ms(1), id(2), ask);
    let sent = sent(&outputs(&mut p));
    assert_eq!(sent.len(), 1);
    let (to, pkt, msg) = &sent[0];
    assert_eq!(*to, Destination::Peer(id(2)));
    assert_eq!((msg.kind, pkt.ttl), (Kind::BootstrapResponse, 0));
    let (key, entry) = &msg.bootstrap[0];
    assert_eq!(*key, id(1));
    assert_eq!(entry.connected_to.to_vec(), vec![id(2), id(3)]);
    assert_eq!(entry.data.as_deref(), Some(&b"{}"[..]));
    assert!(entry.edges_stamp.is_some() && entry.data_stamp.is_some());
}

#[test]
fn the_first_view_makes_us_bootstrapped_once() {
    let mut p = linked_to(&[2]);
    let mut view = Message::new(Kind::BootstrapResponse);
    view.bootstrap.push((
        id(2),
        StateEntry {
            edges_signature: None,
            data_signature: None,
            connected_to: vec![id(1), id(3)].into(),
            data: Some(Bytes::from_static(b"{\"n\":2}")),
            edges_stamp: Some(Stamp {
                incarnation: 1,
                version: 3,
            }),
            data_stamp: Some(Stamp {
                incarnation: 1,
                version: 2,
            }),
        },
    ));
    p.receive(ms(1), id(2), packet(id(2), 1, &view));
    let evs = events(&outputs(&mut p));
    assert_eq!(evs[0], Event::Bootstrapped);
    assert!(evs.contains(&Event::PeerData {
        id: id(2),
        data: json!({"n": 2})
    }));
    assert!(evs.contains(&Event::PeerAddSeen {
        from: id(2),
        to: id(3)
    }));
    assert!(p.is_bootstrapped());
    // 3 has said nothing of itself yet: 2's edge alone does not count.
    assert_eq!(p.online(), vec![id(1), id(2)]);
    p.receive(ms(2), id(2), packet(id(2), 2, &view));
    assert!(!events(&outputs(&mut p)).contains(&Event::Bootstrapped));
}

#[test]
fn view_news_is_passed_on_to_other_neighbours_only() {
    let mut p = linked_to(&[2, 3]);
    let mut view = Message::new(Kind::BootstrapResponse);
    view.bootstrap.push((
        id(9),
        StateEntry {
            edges_signature: None,
            data_signature: None,
            connected_to: vec![id(2)].into(),
            data: None,
            edges_stamp: Some(Stamp {
                incarnation: 1,
                version: 1,
            }),
            data_stamp: None,
        },
    ));
    p.receive(ms(1), id(2), packet(id(2), 1, &view));
    let sent = sent(&outputs(&mut p));
    // 3 is a JavaScript peer: the news goes to it as the flood packet of
    // the change too (it relays those, not views).
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent.iter().all(|s| s.0 == Destination::Peer(id(3))));
    let flood = sent.iter().find(|s| s.2.kind == Kind::Connected).unwrap();
    assert_eq!((flood.1.origin, flood.2.id), (id(9), Some(id(2))));
    let pushed = sent.iter().find(|s| s.2.kind == Kind::BootstrapResponse);
    assert_eq!(pushed.unwrap().2.bootstrap[0].0, id(9));
    // Nothing new the second time: nothing passed on.
    p.receive(ms(2), id(2), packet(id(2), 2, &view));
    assert!(sent_of_kind(&mut p, Kind::BootstrapResponse).is_empty());
}

fn sent_of_kind(p: &mut Presence<Json>, kind: Kind) -> Vec<Message> {
    sent(&outputs(p))
        .into_iter()
        .map(|s| s.2)
        .filter(|m| m.kind == kind)
        .collect()
}

#[test]
fn an_older_connected_never_undoes_a_newer_disconnected() {
    let mut p = linked_to(&[2]);
    // id(2) connected to 3 (v1), then disconnected (v2); v2 arrives first.
    let newer = stamped(Kind::Disconnected, 2, Some(id(3)), vec![id(1)]);
    let older = stamped(Kind::Connected, 1, Some(id(3)), vec![id(1), id(3)]);
    p.receive(ms(1), id(2), packet(id(2), 2, &newer));
    p.receive(ms(2), id(2), packet(id(2), 1, &older));
    assert_eq!(p.peer_edges(&id(2)), Some(vec![id(1)]));
    assert!(!p.is_online(&id(3)));
}

#[test]
fn an_older_state_never_overwrites_newer_data() {
    let mut p = linked_to(&[2]);
    p.receive(ms(1), id(2), packet(id(2), 5, &state(5, json!("new"))));
    p.receive(ms(2), id(2), packet(id(2), 4, &state(4, json!("old"))));
    assert_eq!(p.peer_data(&id(2)), Some(json!("new")));
}

#[test]
fn stamped_news_is_relayed_once_and_never_back_to_its_sender() {
    let mut p = linked_to(&[2, 3]);
    let msg = state(5, json!("x"));
    p.receive(ms(1), id(2), flooded(id(9), &msg));
    let relayed = sent(&outputs(&mut p));
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].0, Destination::Peer(id(3)));
    assert_eq!((relayed[0].1.origin, relayed[0].1.ttl), (id(9), 254));
    // The same packet by another path: applied already, not relayed again.
    p.receive(ms(2), id(3), flooded(id(9), &msg));
    assert!(sent(&outputs(&mut p)).is_empty());
}

#[test]
fn a_javascript_peers_unstamped_messages_apply_like_the_original() {
    let mut p = engine(1);
    p.peer_connected(ms(0), id(0xaa));
    outputs(&mut p);
    // PROTOCOL.md's vectors: STATE {"name":"alice"} and CONNECTED(0x11…).
    let state = hex::decode("000512107b226e616d65223a22616c696365227d").unwrap();
    let connected =
        hex::decode("00031a201111111111111111111111111111111111111111111111111111111111111111")
            .unwrap();
    let wrap = |number, data: Vec<u8>| {
        FloodPacket {
            origin: id(0xaa),
            number,
            ttl: 255,
            data: Bytes::from(data),
        }
        .encode()
    };
    p.receive(ms(1), id(0xaa), wrap(7, state.clone()));
    p.receive(ms(2), id(0xaa), wrap(8, connected));
    let evs = events(&outputs(&mut p));
    assert!(evs.contains(&Event::PeerData {
        id: id(0xaa),
        data: json!({"name": "alice"})
    }));
    assert!(evs.contains(&Event::PeerAddSeen {
        from: id(0xaa),
        to: id(0x11)
    }));
    // 0x11 is online once it says something itself (a JavaScript peer
    // floods its own CONNECTED on every link): a peer known only as the
    // target of someone's edge may be made up.
    assert!(!p.is_online(&id(0x11)));
    let state_of_11 = FloodPacket {
        origin: id(0x11),
        number: 1,
        ttl: 255,
        data: Bytes::from(state.clone()),
    }
    .encode();
    p.receive(ms(2), id(0xaa), state_of_11);
    assert!(p.is_online(&id(0x11)));
    outputs(&mut p);
    // The same (origin, number) again is a duplicate: dropped, not relayed.
    p.receive(ms(3), id(0xaa), wrap(7, state));
    assert!(outputs(&mut p).is_empty());
}

#[test]
fn ttl_zero_unstamped_packets_are_not_relayed() {
    let mut p = linked_to(&[2, 3]);
    let mut m = Message::new(Kind::State);
    m.data = Some(Bytes::from_static(b"1"));
    let pkt = FloodPacket {
        origin: id(9),
        number: 1,
        ttl: 0,
        data: m.encode(),
    };
    p.receive(ms(1), id(2), pkt.encode());
    assert!(sent(&outputs(&mut p)).is_empty());
    assert_eq!(p.peer_data(&id(9)), Some(json!(1)));
}

#[test]
fn undecodable_peer_data_is_reported_and_not_kept() {
    let mut p = linked_to(&[2]);
    let mut m = state(3, json!(1));
    m.data = Some(Bytes::from_static(b"{not json"));
    p.receive(ms(1), id(2), packet(id(2), 3, &m));
    let evs = events(&outputs(&mut p));
    assert!(matches!(&evs[..], [Event::BadPeerData { id: who, .. }] if *who == id(2)));
    assert_eq!(p.peer_data(&id(2)), None);
}

#[test]
fn our_own_packets_coming_back_are_ignored() {
    let mut p = engine(1);
    p.peer_connected(ms(0), id(2));
    let out = outputs(&mut p);
    let Output::Send { packet, .. } = &out[2] else {
        panic!("expected the CONNECTED packet");
    };
    p.receive(ms(1), id(2), packet.clone());
    assert!(outputs(&mut p).is_empty());
}

#[test]
fn hearing_of_a_newer_previous_life_moves_past_it() {
    let mut p = linked_to(&[2]); // incarnation 100, a JavaScript neighbour
                                 // A copy of us from a life that reached (100, 50).
    let mut ghost = Message::new(Kind::State);
    ghost.data = Some(Bytes::from_static(b"\"old\""));
    ghost.stamp = Some(Stamp {
        incarnation: 100,
        version: 50,
    });
    p.receive(ms(1), id(2), packet(id(1), 3, &ghost));
    assert_eq!(p.incarnation(), 101);
    let kinds: Vec<(Kind, u64)> = sent(&outputs(&mut p))
        .iter()
        .map(|s| (s.2.kind, s.2.stamp.unwrap().incarnation))
        .collect();
    assert_eq!(kinds, vec![(Kind::Connected, 101), (Kind::State, 101)]);
}

#[test]
fn an_equal_stamp_with_other_contents_is_a_previous_life_too() {
    let mut p = engine(1);
    p.peer_connected(ms(0), id(2));
    let view = sent_of_kind(&mut p, Kind::BootstrapResponse);
    let data_stamp = view[0].bootstrap[0].1.data_stamp.unwrap();
    let mut ghost = Message::new(Kind::State);
    ghost.data = Some(Bytes::from_static(b"\"other\""));
    ghost.stamp = Some(data_stamp);
    p.receive(ms(1), id(2), packet(id(1), 3, &ghost));
    assert_eq!(p.incarnation(), 101);
}

#[test]
fn too_large_data_is_refused() {
    let mut p = engine(1);
    let big = json!("x".repeat(20_000));
    assert!(matches!(
        p.set_data(ms(1), big),
        Err(SetDataError::TooLarge { limit: 16384, .. })
    ));
    assert_eq!(p.data(), &json!({}));
}

#[test]
fn large_views_are_split_into_packets_that_fit() {
    let mut config = Config::new(id(1));
    config.max_send_bytes = 1000;
    config.gossip_window = Duration::ZERO;
    let mut p = Presence::new(config, ms(0)).unwrap();
    p.peer_connected(ms(0), id(2));
    outputs(&mut p);
    let mut view = Message::new(Kind::BootstrapResponse);
    for n in 10..60u8 {
        view.bootstrap.push((
            id(n),
            StateEntry {
                edges_signature: None,
                data_signature: None,
                connected_to: vec![id(n + 1)].into(),
                data: Some(Bytes::from_static(b"{\"pad\":\"................\"}")),
                edges_stamp: Some(Stamp {
                    incarnation: 1,
                    version: 1,
                }),
                data_stamp: Some(Stamp {
                    incarnation: 1,
                    version: 1,
                }),
            },
        ));
    }
    p.receive(ms(1), id(2), packet(id(2), 1, &view));
    outputs(&mut p);
    p.receive(
        ms(2),
        id(2),
        packet(id(2), 2, &Message::new(Kind::BootstrapRequest)),
    );
    let out = outputs(&mut p);
    let mut entries = 0;
    for o in &out {
        if let Output::Send { packet, .. } = o {
            assert!(packet.len() <= 1000, "a packet of {} bytes", packet.len());
            entries += sent(std::slice::from_ref(o))[0].2.bootstrap.len();
        }
    }
    assert!(out.len() > 3);
    assert_eq!(entries, 51, "every entry (50 learned and ours) sent once");
}

#[test]
fn online_events_are_debounced_when_asked() {
    let mut config = Config::new(id(1));
    config.online_debounce = ms(100);
    let mut p = Presence::new(config, ms(0)).unwrap();
    p.peer_connected(ms(0), id(2));
    assert!(events(&outputs(&mut p)).contains(&Event::Online(vec![id(1), id(2)])));
    p.peer_connected(ms(10), id(3));
    assert!(!events(&outputs(&mut p))
        .iter()
        .any(|e| matches!(e, Event::Online(_))));
    assert_eq!(p.poll_timeout(), Some(ms(100)));
    p.tick(ms(100));
    assert_eq!(
        events(&outputs(&mut p)),
        vec![Event::Online(vec![id(1), id(2), id(3)])]
    );
}

#[test]
fn unreachable_nodes_are_kept_for_a_while_then_forgotten() {
    let mut p = linked_to(&[2]);
    // News of a node no path reaches yet: kept, not online.
    p.receive(ms(0), id(2), packet(id(7), 1, &state(1, json!("seven"))));
    assert!(!p.is_online(&id(7)));
    assert_eq!(p.peer_data(&id(7)), Some(json!("seven")));
    let sweep = p.poll_timeout().expect("a sweep is scheduled");
    assert_eq!(sweep, ms(15_000));
    let mut now = sweep;
    loop {
        p.tick(now);
        if p.peer_data(&id(7)).is_none() {
            break;
        }
        now = p
            .poll_timeout()
            .expect("sweeps continue while something is unreachable");
        assert!(now <= ms(75_000), "forgotten by 1.25 periods");
    }
    assert!(now >= ms(60_000), "kept for a whole period");
    assert_eq!(p.known_count(), 2);
    assert_eq!(
        p.poll_timeout(),
        None,
        "no more sweeps once all is reachable"
    );
}

#[test]
fn the_path_arriving_after_the_news_makes_the_node_online_with_its_data() {
    let mut p = linked_to(&[2]);
    p.receive(ms(1), id(2), packet(id(3), 1, &state(1, json!("three"))));
    assert!(!p.is_online(&id(3)));
    let edge = stamped(Kind::Connected, 2, Some(id(3)), vec![id(1), id(3)]);
    p.receive(ms(2), id(2), packet(id(2), 2, &edge));
    assert!(p.is_online(&id(3)));
    assert_eq!(p.peer_data(&id(3)), Some(json!("three")));
}

#[test]
fn time_going_backwards_is_treated_as_no_time_passing() {
    let mut p = engine(1);
    p.peer_connected(ms(1000), id(2));
    p.peer_connected(ms(1000), id(3));
    outputs(&mut p);
    p.peer_disconnected(ms(10), id(2));
    assert_eq!(p.poll_timeout(), Some(ms(1500)));
    p.tick(ms(5));
    assert!(outputs(&mut p).is_empty());
    assert!(p.is_online(&id(2)));
}

#[test]
fn a_peer_that_says_goodbye_is_removed_without_the_grace() {
    let mut p = linked_to(&[2, 3]);
    p.peer_left(ms(10), id(2));
    let out = outputs(&mut p);
    assert!(events(&out).contains(&Event::PeerRemove(id(2))));
    assert_eq!(p.online(), vec![id(1), id(3)]);
}

#[test]
fn links_opened_within_the_announce_window_go_out_as_one_announcement() {
    let mut config = Config::new(id(1));
    config.incarnation = 100;
    config.announce_window = ms(5);
    config.gossip_window = Duration::ZERO;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    p.peer_connected(ms(0), id(2));
    p.peer_connected(ms(1), id(3));
    let early = sent(&outputs(&mut p));
    assert!(early.iter().all(|s| s.2.kind != Kind::Connected));
    // Our register already changed, under a new stamp each time: a view
    // asked for now must not show new edges under an old stamp.
    p.receive(
        ms(2),
        id(2),
        packet(id(2), 1, &Message::new(Kind::BootstrapRequest)),
    );
    let view = sent_of_kind(&mut p, Kind::BootstrapResponse);
    let own = &view[0]
        .bootstrap
        .iter()
        .find(|(i, _)| *i == id(1))
        .unwrap()
        .1;
    assert_eq!(own.connected_to.to_vec(), vec![id(2), id(3)]);
    assert_eq!(p.poll_timeout(), Some(ms(5)));
    p.tick(ms(5));
    let connected = sent_of_kind(&mut p, Kind::Connected);
    assert_eq!(connected.len(), 1);
    assert_eq!(connected[0].edges, vec![id(2), id(3)]);
    assert_eq!(connected[0].id, Some(id(3)));
    assert_eq!(connected[0].stamp, own.edges_stamp);
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn news_pushed_from_a_view_is_not_relayed_again_when_its_flood_comes() {
    let mut p = linked_to(&[2, 3]);
    let mut view = Message::new(Kind::BootstrapResponse);
    let stamp = Stamp {
        incarnation: 1,
        version: 4,
    };
    view.bootstrap.push((
        id(9),
        StateEntry {
            edges_signature: None,
            data_signature: None,
            connected_to: vec![id(2)].into(),
            data: None,
            edges_stamp: Some(stamp),
            data_stamp: None,
        },
    ));
    p.receive(ms(1), id(2), packet(id(2), 1, &view));
    assert_eq!(sent_of_kind(&mut p, Kind::BootstrapResponse).len(), 1);
    let flood = stamped(Kind::Connected, 4, Some(id(2)), vec![id(2)]);
    p.receive(ms(2), id(3), flooded(id(9), &flood));
    assert!(sent(&outputs(&mut p)).is_empty());
    // A newer flood is still news and still relayed.
    let newer = stamped(Kind::Connected, 5, Some(id(3)), vec![id(2), id(3)]);
    p.receive(ms(3), id(3), flooded(id(9), &newer));
    assert_eq!(sent(&outputs(&mut p)).len(), 1);
}

fn view_of(entries: &[(u8, &[u8])]) -> Message {
    let mut view = Message::new(Kind::BootstrapResponse);
    for (n, edges) in entries {
        view.bootstrap.push((
            id(*n),
            StateEntry {
                edges_signature: None,
                data_signature: None,
                connected_to: edges.iter().map(|e| id(*e)).collect(),
                data: None,
                edges_stamp: Some(Stamp {
                    incarnation: 1,
                    version: 1,
                }),
                data_stamp: None,
            },
        ));
    }
    view
}

#[test]
fn news_past_max_known_peers_is_dropped_and_reported() {
    let mut config = Config::new(id(1));
    config.max_known_peers = 5;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    p.peer_connected(ms(0), id(2));
    outputs(&mut p);
    // 1 and 2 known; 2 -> 3 -> 4 -> 5 fits exactly, all but 5 online (5
    // said nothing of itself).
    let view = view_of(&[(2, &[1, 3]), (3, &[4]), (4, &[5])]);
    p.receive(ms(1), id(2), packet(id(2), 1, &view));
    assert_eq!((p.known_count(), p.online_count()), (5, 4));
    outputs(&mut p);
    // Invented ids past the bound: nothing of the message is taken.
    let flood = view_of(&[(5, &[6, 7, 8])]);
    p.receive(ms(2), id(2), packet(id(2), 2, &flood));
    let out = outputs(&mut p);
    assert_eq!(
        events(&out),
        vec![Event::ViewFull {
            from: id(2),
            new_nodes: 3
        }]
    );
    assert!(sent(&out).is_empty());
    assert_eq!(p.known_count(), 5);
    assert_eq!(p.peer_edges(&id(5)), Some(vec![]));
}

#[test]
fn unreachable_nodes_are_forgotten_early_to_make_room() {
    let mut config = Config::new(id(1));
    config.max_known_peers = 4;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    p.peer_connected(ms(0), id(2));
    // 8 -> 9 is known but reached by nothing: it may go before its time.
    p.receive(ms(1), id(2), packet(id(2), 1, &view_of(&[(8, &[9])])));
    assert_eq!((p.known_count(), p.online_count()), (4, 2));
    let view = view_of(&[(2, &[1, 3]), (3, &[2])]);
    p.receive(ms(2), id(2), packet(id(2), 2, &view));
    assert!(p.is_online(&id(3)));
    assert_eq!(p.known_count(), 3);
    assert!(!events(&outputs(&mut p))
        .iter()
        .any(|e| matches!(e, Event::ViewFull { .. })));
}

// ----- batches ----------------------------------------------------------

fn request(features: u64) -> Message {
    let mut m = Message::new(Kind::BootstrapRequest);
    m.features = features;
    m
}

fn stamped_view(id_: PeerId, edges: Vec<PeerId>, edges_v: u64, data_v: u64) -> Message {
    let stamp = |version| Stamp {
        incarnation: 1,
        version,
    };
    let mut view = Message::new(Kind::BootstrapResponse);
    view.bootstrap.push((
        id_,
        StateEntry {
            edges_signature: None,
            data_signature: None,
            connected_to: edges.into(),
            data: Some(Bytes::from_static(b"{}")),
            edges_stamp: Some(stamp(edges_v)),
            data_stamp: Some(stamp(data_v)),
        },
    ));
    view
}

/// Engine 1 linked to 2 (JavaScript: it never says it takes batches) and 3
/// (ours: its request says so), with `window`, outputs discarded.
fn mixed(window: Duration) -> Presence<Json> {
    let mut config = Config::new(id(1));
    config.incarnation = 100;
    config.gossip_window = window;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    p.peer_connected(ms(0), id(2));
    p.peer_connected(ms(0), id(3));
    p.receive(ms(0), id(2), packet(id(2), 1, &request(0)));
    p.receive(ms(0), id(3), packet(id(3), 1, &request(Message::BATCHES)));
    p.tick(ms(0) + window);
    outputs(&mut p);
    p
}

#[test]
fn our_requests_say_we_take_batches() {
    let mut p = engine(1);
    p.peer_connected(ms(0), id(2));
    let requests = sent_of_kind(&mut p, Kind::BootstrapRequest);
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].features,
        Message::BATCHES | Message::HAVE | Message::RAW_IDS
    );
}

/// A stamped flood is relayed as a packet to the JavaScript peer only; the
/// peer that takes batches gets the origin's state in its next batch.
#[test]
fn flood_news_goes_to_batch_takers_as_entries_and_to_others_as_packets() {
    let mut p = mixed(ms(10));
    let news = stamped(Kind::Connected, 1, Some(id(1)), vec![id(1)]);
    p.receive(ms(20), id(3), flooded(id(9), &news));
    let now = sent(&outputs(&mut p));
    assert_eq!(now.len(), 1, "{now:?}");
    assert_eq!(now[0].0, Destination::Peer(id(2)));
    assert_eq!((now[0].1.origin, now[0].2.kind), (id(9), Kind::Connected));
    // Nothing goes back to 3, which told us: no flush is due (only the
    // sweep of unreachable nodes, seconds away).
    assert!(p.poll_timeout().is_none_or(|t| t > ms(1000)));

    let view = stamped_view(id(8), vec![id(3)], 1, 1);
    p.receive(ms(21), id(2), packet(id(2), 2, &view));
    assert!(sent(&outputs(&mut p)).is_empty(), "waits for the window");
    assert_eq!(p.poll_timeout(), Some(ms(31)));
    p.tick(ms(31));
    let batch = sent(&outputs(&mut p));
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].0, Destination::Peer(id(3)));
    assert_eq!(batch[0].1.ttl, 0);
    let ids: Vec<PeerId> = batch[0].2.bootstrap.iter().map(|(i, _)| *i).collect();
    assert_eq!(ids, vec![id(8)]);
}

/// Several changes of one node within a window cost one entry, with the
/// latest state; what the neighbour itself told us is not sent back.
/// Peer 1 with a 10 ms gossip window, linked to each of `neighbours`
/// whose request says what it reads; at 10 ms, with the greetings drained.
fn batching_engine(neighbours: &[(u8, u64)]) -> Presence<Json> {
    let mut config = Config::new(id(1));
    config.gossip_window = ms(10);
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    for &(n, features) in neighbours {
        p.peer_connected(ms(0), id(n));
        p.receive(ms(0), id(n), packet(id(n), 1, &request(features)));
    }
    p.tick(ms(10));
    outputs(&mut p);
    p
}

#[test]
fn a_window_sends_each_node_once_and_not_what_the_neighbour_knows() {
    let mut p = batching_engine(&[(3, Message::BATCHES), (4, Message::BATCHES)]);
    p.receive(
        ms(11),
        id(3),
        packet(id(3), 2, &stamped_view(id(9), vec![], 1, 1)),
    );
    p.receive(
        ms(12),
        id(3),
        packet(id(3), 3, &stamped_view(id(9), vec![], 2, 2)),
    );
    // 4 tells us of 9 as we know it: it need not hear of 9 from us.
    p.receive(
        ms(13),
        id(4),
        packet(id(4), 2, &stamped_view(id(9), vec![], 2, 2)),
    );
    p.receive(
        ms(14),
        id(3),
        packet(id(3), 4, &stamped_view(id(7), vec![], 1, 1)),
    );
    assert_eq!(p.poll_timeout(), Some(ms(21)));
    p.tick(ms(21));
    let batches = sent(&outputs(&mut p));
    assert_eq!(batches.len(), 1, "{batches:?}");
    assert_eq!(batches[0].0, Destination::Peer(id(4)));
    let entries = &batches[0].2.bootstrap;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].0, id(7));
}

/// A neighbour whose request says it reads raw ids gets entries keyed by
/// the 32-byte id; one that does not, the original's 64 hex digits; both
/// read the same entries.
#[test]
fn raw_ids_go_only_to_neighbours_that_read_them() {
    let mut p = batching_engine(&[
        (3, Message::BATCHES | Message::RAW_IDS),
        (4, Message::BATCHES),
        (5, Message::BATCHES | Message::RAW_IDS),
    ]);
    p.receive(
        ms(11),
        id(5),
        packet(id(5), 2, &stamped_view(id(7), vec![], 1, 1)),
    );
    p.tick(ms(21));
    let batches = sent(&outputs(&mut p));
    let to = |n: u8| {
        batches
            .iter()
            .find(|(d, _, _)| *d == Destination::Peer(id(n)))
            .unwrap_or_else(|| panic!("a batch to {n}: {batches:?}"))
    };
    let (raw, hex) = (to(3), to(4));
    let hex_key = hex::encode(id(7).as_bytes());
    let holds = |data: &[u8], part: &[u8]| data.windows(part.len()).any(|w| w == part);
    assert!(holds(&raw.1.data, id(7).as_bytes()));
    assert!(!holds(&raw.1.data, hex_key.as_bytes()));
    assert!(holds(&hex.1.data, hex_key.as_bytes()));
    assert_eq!(raw.2, hex.2, "the same entries either way");
    assert_eq!(hex.1.data.len() - raw.1.data.len(), 32);
}

/// Our own changes reach batch takers in their batch and JavaScript peers
/// as the original's flood packets.
#[test]
fn our_own_news_is_flooded_to_javascript_peers_and_batched_to_ours() {
    let mut p = mixed(ms(10));
    p.set_data(ms(20), json!({"v": 2})).unwrap();
    let now = sent(&outputs(&mut p));
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].0, Destination::Peer(id(2)));
    assert_eq!(now[0].2.kind, Kind::State);
    p.tick(ms(30));
    let batch = sent(&outputs(&mut p));
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].0, Destination::Peer(id(3)));
    let (who, entry) = &batch[0].2.bootstrap[0];
    assert_eq!(*who, id(1));
    assert_eq!(entry.data.as_deref(), Some(&b"{\"v\":2}"[..]));
    assert_eq!(entry.connected_to.to_vec(), vec![id(2), id(3)]);
}

/// With a window, a neighbour gets at most one packet per window: a large
/// view answer is paced, and every entry still goes exactly once.
#[test]
fn a_large_answer_is_paced_one_packet_per_window() {
    let mut config = Config::new(id(1));
    config.max_send_bytes = 1000;
    config.gossip_window = ms(10);
    let mut p = Presence::new(config, ms(0)).unwrap();
    p.peer_connected(ms(0), id(2));
    for n in 10..60u8 {
        let view = stamped_view(id(n), vec![id(n + 1)], 1, 1);
        p.receive(ms(1), id(2), packet(id(2), n.into(), &view));
    }
    p.tick(ms(10));
    outputs(&mut p);
    p.receive(ms(11), id(2), packet(id(2), 99, &request(Message::BATCHES)));
    let mut entries = Vec::new();
    let mut t = 11;
    // Until the next timer is the sweep of unreachable nodes, seconds away.
    while let Some(due) = p.poll_timeout().filter(|d| *d < ms(1000)) {
        assert_eq!(due, ms(t + 10), "one window after the last");
        t += 10;
        p.tick(due);
        let out = sent(&outputs(&mut p));
        assert_eq!(out.len(), 1, "one packet per window");
        entries.extend(out[0].2.bootstrap.iter().map(|(i, _)| *i));
    }
    assert!(t > 41, "the answer took several windows");
    let mut unique = entries.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), entries.len(), "no entry twice");
    assert_eq!(entries.len(), 51, "50 learned and ours");
}

/// A link that drops forgets its outbox and what it said it takes: the new
/// connection starts again with a whole-view exchange.
#[test]
fn a_dropped_link_forgets_its_outbox() {
    let mut p = mixed(ms(10));
    p.receive(
        ms(20),
        id(2),
        packet(id(2), 2, &stamped_view(id(8), vec![], 1, 1)),
    );
    p.peer_disconnected(ms(21), id(3));
    p.peer_connected(ms(22), id(3));
    let out = sent(&outputs(&mut p));
    assert_eq!(out.len(), 1, "only our request: {out:?}");
    p.tick(ms(30));
    let out = sent(&outputs(&mut p));
    assert!(
        out.is_empty(),
        "what waited for the old connection is gone: {out:?}"
    );
}

/// A request from a peer whose connection is already closed (a packet that
/// was on its way) is not answered: there is no link to send the view on.
#[test]
fn a_request_after_the_connection_closed_is_not_answered() {
    let mut p = mixed(ms(10));
    p.peer_disconnected(ms(20), id(3));
    outputs(&mut p);
    p.receive(ms(21), id(3), packet(id(3), 5, &request(Message::BATCHES)));
    assert!(sent(&outputs(&mut p)).is_empty());
    assert!(
        p.poll_timeout() > Some(ms(100)),
        "no flush scheduled, only the grace and later timers"
    );
}

// ----- what JavaScript neighbours get ----------------------------------------

fn unstamped_view(entries: &[(u8, Vec<PeerId>, &'static [u8])]) -> Message {
    let mut view = Message::new(Kind::BootstrapResponse);
    for (n, edges, data) in entries {
        view.bootstrap.push((
            id(*n),
            StateEntry {
                connected_to: edges.clone().into(),
                data: Some(Bytes::from_static(data)),
                edges_stamp: None,
                data_stamp: None,
                edges_signature: None,
                data_signature: None,
            },
        ));
    }
    view
}

/// News that reaches us in a batch goes to a JavaScript peer as the flood
/// packets of its changes (edges before data), numbered as the origin
/// numbers its own flood of them, so that copy is then not sent again.
#[test]
fn a_batch_reaches_javascript_peers_as_the_floods_of_its_changes() {
    let mut p = mixed(ms(10));
    let first = stamped_view(id(9), vec![id(3), id(8)], 2, 2);
    p.receive(ms(20), id(3), packet(id(3), 7, &first));
    let out = sent(&outputs(&mut p));
    let floods: Vec<(Kind, Option<PeerId>)> = out
        .iter()
        .filter(|s| s.0 == Destination::Peer(id(2)) && s.1.origin == id(9))
        .map(|s| (s.2.kind, s.2.id))
        .collect();
    assert_eq!(
        floods,
        vec![
            (Kind::Connected, Some(id(3))),
            (Kind::Connected, Some(id(8))),
            (Kind::State, None)
        ]
    );
    let second = stamped_view(id(9), vec![id(8)], 3, 2);
    p.receive(ms(21), id(3), packet(id(3), 8, &second));
    let out = sent(&outputs(&mut p));
    let floods: Vec<(u32, &Message)> = out
        .iter()
        .filter(|s| s.1.origin == id(9))
        .map(|s| (s.1.number, &s.2))
        .collect();
    // The change's packet, then the same under a correction number: 2
    // asked for our view lately (see `relinks.rs`).
    let own_number =
        crate::proto::flood::register_number(Kind::Disconnected, at(1, 3), Some(&id(3)));
    let numbers: Vec<u32> = floods.iter().map(|(n, _)| *n).collect();
    assert_eq!(numbers.len(), 2);
    assert_eq!(numbers[0], own_number);
    assert_ne!(numbers[1], own_number);
    for (_, flood) in floods {
        assert_eq!((flood.kind, flood.id), (Kind::Disconnected, Some(id(3))));
        assert_eq!(flood.edges, vec![id(8)]);
    }
    // The origin's own packet of that change, coming later: sent already.
    let own = stamped(Kind::Disconnected, 3, Some(id(3)), vec![id(8)]);
    p.receive(ms(22), id(3), flooded(id(9), &own));
    assert!(sent(&outputs(&mut p)).is_empty());
}

/// A packet that is not news to us still goes to JavaScript peers once
/// per (origin, number), as the original relays (it reads one `id` from
/// each CONNECTED), unless our register says otherwise.
#[test]
fn javascript_peers_get_each_packet_that_agrees_with_what_we_know() {
    let mut p = linked_to(&[2, 3]);
    let news = stamped(Kind::Connected, 4, Some(id(2)), vec![id(2), id(5)]);
    p.receive(ms(1), id(2), flooded(id(9), &news));
    outputs(&mut p);
    let same_stamp = stamped(Kind::Connected, 4, Some(id(5)), vec![id(2), id(5)]);
    p.receive(ms(2), id(2), packet(id(9), 777, &same_stamp));
    let out = sent(&outputs(&mut p));
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(
        (out[0].0.clone(), out[0].1.number),
        (Destination::Peer(id(3)), 777)
    );
    // Again: once per (origin, number).
    p.receive(ms(3), id(2), packet(id(9), 777, &same_stamp));
    assert!(sent(&outputs(&mut p)).is_empty());
    // An edge our register does not list: a stale copy, not passed on.
    let stale = stamped(Kind::Connected, 3, Some(id(6)), vec![id(6)]);
    p.receive(ms(4), id(2), packet(id(9), 778, &stale));
    assert!(sent(&outputs(&mut p)).is_empty());
}

/// A JavaScript origin's packet is relayed only after what our peers are
/// owed has gone, so that the edge that reaches the origin comes first.
#[test]
fn a_javascript_origins_packet_follows_what_waits_for_our_peers() {
    let mut p = mixed(ms(10));
    p.peer_connected(ms(20), id(4));
    outputs(&mut p);
    let mut connected = Message::new(Kind::Connected);
    connected.id = Some(id(1));
    p.receive(ms(21), id(4), packet(id(4), 50, &connected));
    let out = sent(&outputs(&mut p));
    let kinds: Vec<(Destination, Kind)> = out.iter().map(|s| (s.0.clone(), s.2.kind)).collect();
    assert_eq!(
        kinds[0],
        (Destination::Peer(id(3)), Kind::BootstrapResponse)
    );
    assert_eq!(
        out[0].2.bootstrap[0].1.connected_to.to_vec(),
        vec![id(2), id(3), id(4)]
    );
    // Then the rest of what waited (4's own outbox), then the relay.
    assert_eq!(
        kinds.last(),
        Some(&(
            Destination::Broadcast {
                except: Some(id(4))
            },
            Kind::Connected
        ))
    );
    assert!(kinds[..kinds.len() - 1]
        .iter()
        .all(|k| k.1 == Kind::BootstrapResponse));
}

/// The original's `{}` for a node it knows only by an edge never replaces
/// data; better data replaces it; and a JavaScript view showing it gets
/// our entry back, in a view for that peer and a tunnel for ours behind it.
#[test]
fn the_placeholder_never_replaces_data_and_is_corrected() {
    let mut p = mixed(ms(10));
    let placeholder = unstamped_view(&[(8, vec![], b"{}")]);
    p.receive(ms(20), id(2), packet(id(2), 10, &placeholder));
    assert_eq!(p.peer_data(&id(8)), Some(json!({})), "taken over nothing");
    let real = unstamped_view(&[(8, vec![], br#"{"a":1}"#)]);
    p.receive(ms(21), id(2), packet(id(2), 11, &real));
    assert_eq!(
        p.peer_data(&id(8)),
        Some(json!({"a": 1})),
        "taken over {{}}"
    );
    outputs(&mut p);
    p.receive(ms(22), id(2), packet(id(2), 12, &placeholder));
    assert_eq!(p.peer_data(&id(8)), Some(json!({"a": 1})));
    let out = sent(&outputs(&mut p));
    let to_2: Vec<&(Destination, FloodPacket, Message)> = out
        .iter()
        .filter(|s| s.0 == Destination::Peer(id(2)))
        .collect();
    let view = to_2
        .iter()
        .find(|s| s.2.kind == Kind::BootstrapResponse)
        .unwrap();
    assert_eq!(
        view.2.bootstrap[0].1.data.as_deref(),
        Some(&br#"{"a":1}"#[..])
    );
    let tunnel = to_2.iter().find(|s| s.2.kind == Kind::Other(6)).unwrap();
    assert_eq!((tunnel.1.origin, tunnel.1.ttl), (id(1), 255));
    assert_eq!(tunnel.2.bootstrap[0].0, id(8));
}

/// A tunnel (our peer's entries, carried by a JavaScript peer) is merged as
/// a view of ours and not relayed as a packet: its news goes on as news.
#[test]
fn a_tunnel_is_merged_and_its_news_passed_on_not_the_packet() {
    let mut p = mixed(ms(10));
    let mut tunnel = stamped_view(id(8), vec![id(7)], 1, 1);
    tunnel.kind = Kind::Other(6);
    p.receive(ms(20), id(2), packet(id(7), 5, &tunnel));
    assert_eq!(p.peer_edges(&id(8)), Some(vec![id(7)]));
    p.tick(ms(30));
    let out = sent(&outputs(&mut p));
    assert!(out.iter().all(|s| s.1.origin != id(7)), "{out:?}");
    assert!(out
        .iter()
        .any(|s| s.0 == Destination::Peer(id(3)) && s.2.kind == Kind::BootstrapResponse));
}

// ----- signatures -------------------------------------------------------

fn signed_engine(seed: u8) -> Presence<Json> {
    let mut config = Config::signed(crate::proto::Signer::from_seed([seed; 32]));
    config.incarnation = 100;
    config.gossip_window = Duration::ZERO;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    p.peer_connected(ms(0), id(2));
    p.receive(ms(0), id(2), packet(id(2), 1_000, &request(0)));
    outputs(&mut p);
    p
}

fn signed_state(key: &crate::proto::Signer, stamp: Stamp, data: &[u8]) -> Message {
    let mut m = Message::new(Kind::State);
    m.data = Some(Bytes::copy_from_slice(data));
    m.stamp = Some(stamp);
    m.signature = Some(key.sign_data(stamp, Some(data)));
    m
}

fn at(incarnation: u64, version: u64) -> Stamp {
    Stamp {
        incarnation,
        version,
    }
}

#[test]
fn a_signer_of_another_id_is_refused() {
    let mut config = Config::new(id(1));
    config.signer = Some(crate::proto::Signer::from_seed([1; 32]));
    assert_eq!(
        Presence::new(config, Duration::ZERO).err(),
        Some(SetDataError::ForeignKey)
    );
}

#[test]
fn a_forged_stamp_for_us_is_dropped_and_a_previous_life_of_ours_refuted() {
    let key = crate::proto::Signer::from_seed([1; 32]);
    let mut p = signed_engine(1);
    let me = p.id();
    let top = at(u64::MAX, u64::MAX);
    // Unsigned: dropped without a word. Badly signed: dropped and reported.
    let mut forged = state(1, json!("evil"));
    forged.stamp = Some(top);
    p.receive(ms(1), id(2), packet(me, 1, &forged));
    assert!(outputs(&mut p).is_empty());
    forged.signature = Some([3; 64]);
    p.receive(ms(2), id(2), packet(me, 2, &forged));
    assert_eq!(
        events(&outputs(&mut p)),
        vec![Event::BadSignature {
            from: id(2),
            origin: me
        }]
    );
    assert_eq!((p.incarnation(), p.bad_signatures()), (100, 1));
    // Our own signature on a stamp above ours: a life we did not outgrow.
    let old = signed_state(&key, at(150, 3), b"\"old\"");
    p.receive(ms(3), id(2), packet(me, 3, &old));
    assert_eq!(p.incarnation(), 151);
    let floods = sent_of_kind(&mut p, Kind::State);
    let stamp = floods[0].stamp.unwrap();
    assert!(stamp > at(150, 3));
    assert_eq!(floods[0].signature, Some(key.sign_data(stamp, Some(b"{}"))));
}

#[test]
fn a_previous_life_at_the_top_of_the_range_is_outgrown_without_wrapping() {
    let key = crate::proto::Signer::from_seed([1; 32]);
    let mut p = signed_engine(1);
    let me = p.id();
    p.receive(
        ms(1),
        id(2),
        packet(me, 1, &signed_state(&key, at(u64::MAX, 5), b"1")),
    );
    assert_eq!(p.incarnation(), u64::MAX);
    let own = p.entry(&me).unwrap();
    assert!(own.data_stamp.unwrap() > at(u64::MAX, 5));
    assert!(own.edges_stamp.unwrap() > at(u64::MAX, 5));
    // Nothing is above the very top: it stays put, and nothing panics.
    let before = p.entry(&me).unwrap();
    let top = at(u64::MAX, u64::MAX);
    p.receive(ms(2), id(2), packet(me, 2, &signed_state(&key, top, b"2")));
    assert_eq!(p.entry(&me).unwrap(), before);
}

#[test]
fn a_signed_register_beats_an_unsigned_one_and_then_only_signed_ones_count() {
    let mut p = signed_engine(1);
    let key = crate::proto::Signer::from_seed([3; 32]);
    let origin = key.id();
    // Unsigned at the top first: taken, the origin is not known to sign.
    let mut unsigned = state(1, json!("a"));
    unsigned.stamp = Some(at(u64::MAX, u64::MAX));
    p.receive(ms(1), id(2), packet(origin, 1, &unsigned));
    assert_eq!(p.peer_data(&origin), Some(json!("a")));
    assert!(!p.signs(&origin));
    // Signed, far lower: beats it.
    p.receive(
        ms(2),
        id(2),
        packet(origin, 2, &signed_state(&key, at(1, 1), b"\"b\"")),
    );
    assert_eq!(p.peer_data(&origin), Some(json!("b")));
    assert!(p.signs(&origin));
    outputs(&mut p);
    // From now on unsigned news of it is no news, stamped or not.
    p.receive(ms(3), id(2), packet(origin, 3, &unsigned));
    let mut js = Message::new(Kind::State);
    js.data = Some(Bytes::from_static(b"\"c\""));
    p.receive(ms(4), id(2), packet(origin, 4, &js));
    let mut connected = Message::new(Kind::Connected);
    connected.id = Some(id(9));
    p.receive(ms(5), id(2), packet(origin, 5, &connected));
    assert!(sent(&outputs(&mut p)).is_empty(), "nothing relayed");
    assert_eq!(p.peer_data(&origin), Some(json!("b")));
    assert_eq!(p.peer_edges(&origin), Some(vec![]));
    // An older signed copy is no news either; a newer one is.
    p.receive(
        ms(6),
        id(2),
        packet(origin, 6, &signed_state(&key, at(1, 0), b"\"d\"")),
    );
    assert_eq!(p.peer_data(&origin), Some(json!("b")));
    p.receive(
        ms(7),
        id(2),
        packet(origin, 7, &signed_state(&key, at(1, 2), b"\"e\"")),
    );
    assert_eq!(p.peer_data(&origin), Some(json!("e")));
}

#[test]
fn what_we_sign_is_what_a_view_of_ours_carries() {
    let key = crate::proto::Signer::from_seed([1; 32]);
    let mut p = signed_engine(1);
    let me = p.id();
    p.set_data(ms(1), json!({"x": 1})).unwrap();
    let own = p.entry(&me).unwrap();
    let claim = crate::proto::sign::Claim {
        origin: me,
        message: crate::proto::sign::data_message(
            &me,
            own.data_stamp.unwrap(),
            own.data.as_deref(),
        ),
        signature: own.data_signature.unwrap(),
    };
    assert!(crate::proto::sign::verify(&claim));
    assert_eq!(
        own.edges_signature,
        Some(key.sign_edges(own.edges_stamp.unwrap(), &[id(2)]))
    );
}

/// A signing origin's entry, signed by `key`.
fn signed_entry(key: &crate::proto::Signer, edges: Vec<PeerId>, data: &'static [u8]) -> StateEntry {
    let (edges_stamp, data_stamp) = (at(1, 2), at(1, 3));
    StateEntry {
        edges_signature: Some(key.sign_edges(edges_stamp, &edges)),
        data_signature: Some(key.sign_data(data_stamp, Some(data))),
        connected_to: edges.into(),
        data: Some(Bytes::from_static(data)),
        edges_stamp: Some(edges_stamp),
        data_stamp: Some(data_stamp),
    }
}

/// What we make for JavaScript peers of another origin's change carries
/// that origin's signature, so our peers behind them take it.
#[test]
fn packets_made_for_javascript_peers_carry_the_origins_signature() {
    let mut p = mixed(ms(10));
    let key = crate::proto::Signer::from_seed([9; 32]);
    let origin = key.id();
    let entry = signed_entry(&key, vec![id(3)], b"\"x\"");
    let mut view = Message::new(Kind::BootstrapResponse);
    view.bootstrap.push((origin, entry.clone()));
    p.receive(ms(20), id(3), packet(id(3), 7, &view));
    let out = sent(&outputs(&mut p));
    let made: Vec<&Message> = out
        .iter()
        .filter(|s| s.0 == Destination::Peer(id(2)) && s.1.origin == origin)
        .map(|s| &s.2)
        .collect();
    assert_eq!(made.len(), 2, "{out:?}");
    assert_eq!(
        (made[0].kind, made[0].signature),
        (Kind::Connected, entry.edges_signature)
    );
    assert_eq!(
        (made[1].kind, made[1].signature),
        (Kind::State, entry.data_signature)
    );
    // A peer of ours behind the JavaScript one takes both as they come.
    let mut behind = signed_engine(5);
    for (n, m) in made.iter().enumerate() {
        behind.receive(ms(30), id(2), flooded(origin, m));
        assert_eq!(behind.bad_signatures(), 0, "packet {n}");
    }
    assert!(behind.signs(&origin));
    assert_eq!(behind.peer_data(&origin), Some(json!("x")));
}

/// A JavaScript view shows a node we hold signed without its signatures
/// (the original drops our fields): our signed entry goes behind it in a
/// tunnel, so our peers there do not keep the unsigned copy.
#[test]
fn a_javascript_view_without_signatures_is_followed_by_a_tunnel() {
    let mut p = mixed(ms(10));
    let key = crate::proto::Signer::from_seed([9; 32]);
    let origin = key.id();
    let mut view = Message::new(Kind::BootstrapResponse);
    view.bootstrap
        .push((origin, signed_entry(&key, vec![id(3)], b"\"x\"")));
    p.receive(ms(20), id(3), packet(id(3), 7, &view));
    outputs(&mut p);
    let mut js_view = unstamped_view(&[(2, vec![id(1)], b"{}")]);
    js_view.bootstrap.push((
        origin,
        StateEntry {
            connected_to: vec![id(3)].into(),
            data: Some(Bytes::from_static(b"\"x\"")),
            edges_stamp: None,
            data_stamp: None,
            edges_signature: None,
            data_signature: None,
        },
    ));
    p.receive(ms(21), id(2), packet(id(2), 8, &js_view));
    let out = sent(&outputs(&mut p));
    let tunnel = out
        .iter()
        .find(|s| s.0 == Destination::Peer(id(2)) && s.2.kind == Kind::Other(6))
        .expect("a tunnel");
    let entry = tunnel
        .2
        .bootstrap
        .iter()
        .find(|(who, _)| *who == origin)
        .map(|(_, entry)| entry)
        .expect("the signed node in it");
    assert!(entry.edges_signature.is_some() && entry.data_signature.is_some());
}
