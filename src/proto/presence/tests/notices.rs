//! `Have` notices: who gets them, when, and what receiving one strikes off.

use super::*;
use crate::proto::wire::Have;

const BOTH: u64 = Message::BATCHES | Message::HAVE;

/// Engine 1 with a 10 ms window and batches of `max_send_bytes`, linked to
/// 3 and 4 whose requests carry `features`, outputs discarded.
fn paced(max_send_bytes: usize, features: u64) -> Presence<Json> {
    let mut config = Config::new(id(1));
    config.incarnation = 100;
    config.gossip_window = ms(10);
    config.max_send_bytes = max_send_bytes;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    for n in [3, 4] {
        p.peer_connected(ms(0), id(n));
        p.receive(ms(0), id(n), packet(id(n), 1, &request(features)));
    }
    p.tick(ms(10));
    outputs(&mut p);
    p
}

fn have(n: u8, edges_v: u64, data_v: u64) -> Have {
    let stamp = |version| Stamp {
        incarnation: 1,
        version,
    };
    Have {
        id: id(n),
        edges: stamp(edges_v),
        data: stamp(data_v),
    }
}

fn notices(n: &[Have]) -> Message {
    let mut m = Message::new(Kind::BootstrapResponse);
    m.have = n.to_vec();
    m
}

/// 3 tells us of nodes 10..10+count, in separate packets.
fn news_from_3(p: &mut Presence<Json>, at: u64, count: u8) {
    for n in 10..10 + count {
        let view = stamped_view(id(n), vec![], 1, 1);
        p.receive(ms(at), id(3), packet(id(3), n.into(), &view));
    }
}

/// The batches sent to `to` at the next tick, decoded.
fn batch_to(p: &mut Presence<Json>, at: u64, to: u8) -> Vec<Message> {
    p.tick(ms(at));
    sent(&outputs(p))
        .into_iter()
        .filter(|s| s.0 == Destination::Peer(id(to)))
        .map(|s| s.2)
        .collect()
}

/// News waits behind the pace, but its notices go in the next batch, all
/// of them; a node whose entry goes is not noticed as well, and the one
/// who told us hears nothing.
#[test]
fn notices_go_ahead_of_paced_entries() {
    let mut p = paced(600, BOTH);
    news_from_3(&mut p, 11, 8);
    let to_4 = batch_to(&mut p, 21, 4);
    let entries: Vec<PeerId> = to_4
        .iter()
        .flat_map(|m| m.bootstrap.iter().map(|e| e.0))
        .collect();
    let noticed: Vec<PeerId> = to_4
        .iter()
        .flat_map(|m| m.have.iter().map(|h| h.id))
        .collect();
    assert!(
        !entries.is_empty() && entries.len() < 8,
        "paced: {entries:?}"
    );
    assert_eq!(
        entries.len() + noticed.len(),
        8,
        "each node once: {entries:?} {noticed:?}"
    );
    assert!(noticed.iter().all(|n| !entries.contains(n)));
    assert_eq!(
        to_4.iter().flat_map(|m| &m.have).next(),
        Some(&have(10 + entries.len() as u8, 1, 1))
    );
    let mut p2 = paced(600, BOTH);
    news_from_3(&mut p2, 11, 8);
    assert!(batch_to(&mut p2, 21, 3).is_empty(), "3 told us");
}

/// A node that changed again before the flush is noticed once, with the
/// stamps we hold at the flush.
#[test]
fn a_node_changed_twice_in_a_window_is_noticed_once_at_its_latest() {
    let mut p = paced(600, BOTH);
    news_from_3(&mut p, 11, 8);
    let newer = stamped_view(id(17), vec![], 2, 3);
    p.receive(ms(12), id(3), packet(id(3), 90, &newer));
    let to_4 = batch_to(&mut p, 21, 4);
    let of_17: Vec<&Have> = to_4
        .iter()
        .flat_map(|m| &m.have)
        .filter(|h| h.id == id(17))
        .collect();
    assert_eq!(of_17, [&have(17, 2, 3)]);
}

/// A notice at stamps as new as ours strikes the node off what the
/// neighbour is owed; older stamps, unknown nodes, the neighbour's own
/// node and ours change nothing, and a packet of notices alone is no view.
#[test]
fn a_notice_strikes_off_only_what_the_neighbour_has() {
    let mut fresh = paced(100_000, BOTH);
    fresh.receive(
        ms(11),
        id(4),
        packet(id(4), 50, &notices(&[have(10, 1, 1)])),
    );
    assert!(!fresh.is_bootstrapped(), "notices alone are not a view");

    let mut p = paced(100_000, BOTH);
    news_from_3(&mut p, 11, 4);
    let older = have(11, 0, 1);
    let own = have(4, 9, 9);
    p.receive(
        ms(12),
        id(4),
        packet(
            id(4),
            50,
            &notices(&[have(10, 1, 1), older, have(12, 2, 1), have(99, 1, 1), own]),
        ),
    );
    assert!(p.graph.slot(&id(99)).is_none(), "a notice adds no node");
    assert_eq!(p.stats().notices_received, 5);
    let to_4 = batch_to(&mut p, 21, 4);
    let entries: Vec<PeerId> = to_4
        .iter()
        .flat_map(|m| m.bootstrap.iter().map(|e| e.0))
        .collect();
    assert_eq!(entries, vec![id(11), id(13)], "10 and 12 struck off");
}

/// A neighbour whose request does not ask for notices gets none, and a
/// new connection asks again.
#[test]
fn only_peers_that_ask_get_notices() {
    let mut p = paced(600, Message::BATCHES);
    news_from_3(&mut p, 11, 8);
    let to_4 = batch_to(&mut p, 21, 4);
    assert!(!to_4.is_empty() && to_4.iter().all(|m| m.have.is_empty()));

    let mut p = paced(600, BOTH);
    p.peer_disconnected(ms(11), id(4));
    p.peer_connected(ms(12), id(4));
    outputs(&mut p);
    news_from_3(&mut p, 13, 8);
    let to_4 = batch_to(&mut p, 21, 4);
    assert!(
        to_4.iter().all(|m| m.have.is_empty()),
        "not asked yet on the new link"
    );
}

/// With `have_notices` off our requests do not ask for notices, so our
/// neighbours send none.
#[test]
fn have_notices_off_asks_for_none() {
    let mut config = Config::new(id(1));
    config.have_notices = false;
    let mut p = Presence::new(config, Duration::ZERO).unwrap();
    p.peer_connected(ms(0), id(2));
    let requests = sent_of_kind(&mut p, Kind::BootstrapRequest);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].features, Message::BATCHES | Message::RAW_IDS);
}
