//! What JavaScript links need after a restart or a partition: holes in the
//! view asked about, a second request once our view is on its way, a
//! register news only by its stamp tunnelled, a relinked peer's own entry
//! passed on, edge removals said again under fresh numbers.

use super::*;

/// A view entry with a stamped edge list (version 1) and data.
fn entry_at_v1(edges: Vec<PeerId>) -> StateEntry {
    StateEntry {
        connected_to: edges.into(),
        data: Some(Bytes::from_static(b"{}")),
        edges_stamp: Some(at(1, 1)),
        data_stamp: Some(at(1, 1)),
        edges_signature: None,
        data_signature: None,
    }
}

/// 3's view: 3 lists us and 8, 8 lists 3 and 9, of which it says nothing.
fn hole_view() -> Message {
    let mut view = Message::new(Kind::BootstrapResponse);
    view.bootstrap
        .push((id(3), entry_at_v1(vec![id(1), id(8)])));
    view.bootstrap
        .push((id(8), entry_at_v1(vec![id(3), id(9)])));
    view
}

/// Engine 1 of [`mixed`] (2 JavaScript, 3 ours, no window) holding a hole:
/// 3 lists 8, which lists 9, of which we know nothing else.
fn with_hole() -> Presence<Json> {
    let mut p = mixed(Duration::ZERO);
    p.receive(ms(20), id(3), packet(id(3), 2, &hole_view()));
    assert!(p.is_online(&id(8)) && !p.is_online(&id(9)));
    outputs(&mut p);
    p
}

/// Drives `p` by its own timer until `until`: when each request went, and
/// to whom.
fn requests_until(p: &mut Presence<Json>, until: Duration) -> Vec<(Duration, Destination)> {
    let mut asks = Vec::new();
    while let Some(due) = p.poll_timeout().filter(|t| *t <= until) {
        p.tick(due);
        for (to, _, m) in sent(&outputs(p)) {
            if m.kind == Kind::BootstrapRequest {
                asks.push((due, to));
            }
        }
    }
    asks
}

#[test]
fn a_hole_is_asked_about_at_javascript_peers_at_doubling_intervals() {
    let mut p = with_hole();
    let asks = requests_until(&mut p, ms(70_000));
    let at_ms: Vec<u128> = asks.iter().map(|(t, _)| t.as_millis()).collect();
    // A period (2 s) after the hole appeared, then 1, 2, 4, 8, 16, 32 periods on.
    assert_eq!(at_ms, vec![2_020, 4_020, 8_020, 16_020, 32_020, 64_020]);
    assert!(
        asks.iter().all(|(_, to)| *to == Destination::Peer(id(2))),
        "only the JavaScript peer is asked: {asks:?}"
    );
    // The view that fills it: no more asks, no more wake-ups for it.
    let view = unstamped_view(&[(9, vec![id(8)], br#"{"n":9}"#)]);
    p.receive(ms(70_000), id(2), packet(id(2), 50, &view));
    assert!(p.is_online(&id(9)));
    assert!(requests_until(&mut p, ms(400_000)).is_empty());
    assert_eq!(p.poll_timeout(), None);
}

#[test]
fn a_new_hole_is_asked_about_without_waiting_out_the_old_ones_backoff() {
    let mut p = with_hole();
    assert_eq!(requests_until(&mut p, ms(8_020)).len(), 3);
    // 8 now also lists 10: other holes, asked about at the next look.
    let mut view = Message::new(Kind::BootstrapResponse);
    let mut entry = entry_at_v1(vec![id(3), id(9), id(10)]);
    entry.edges_stamp = Some(at(1, 2));
    view.bootstrap.push((id(8), entry));
    p.receive(ms(9_000), id(3), packet(id(3), 3, &view));
    let asks = requests_until(&mut p, ms(16_000));
    let at_ms: Vec<u128> = asks.iter().map(|(t, _)| t.as_millis()).collect();
    assert_eq!(at_ms, vec![10_020, 12_020], "not 16,020");
}

#[test]
fn without_javascript_peers_holes_are_left_to_our_peers() {
    let mut p = engine(1);
    p.peer_connected(ms(0), id(3));
    p.receive(ms(0), id(3), packet(id(3), 1, &request(Message::BATCHES)));
    p.receive(ms(20), id(3), packet(id(3), 2, &hole_view()));
    outputs(&mut p);
    assert!(requests_until(&mut p, ms(100_000)).is_empty());
}

#[test]
fn a_javascript_peers_first_request_is_answered_then_asked_again_once() {
    let mut p = engine(1);
    p.peer_connected(ms(0), id(2));
    outputs(&mut p);
    p.receive(ms(1), id(2), packet(id(2), 1, &request(0)));
    let kinds: Vec<Kind> = sent(&outputs(&mut p))
        .into_iter()
        .map(|s| s.2.kind)
        .collect();
    let view = kinds.iter().position(|k| *k == Kind::BootstrapResponse);
    let again = kinds.iter().position(|k| *k == Kind::BootstrapRequest);
    assert!(
        matches!((view, again), (Some(v), Some(a)) if v < a),
        "our view, then our request: {kinds:?}"
    );
    // Its later requests (one for each link it opens) are only answered.
    p.receive(ms(2), id(2), packet(id(2), 2, &request(0)));
    assert!(sent_of_kind(&mut p, Kind::BootstrapRequest).is_empty());
}

#[test]
fn a_register_new_only_by_its_stamp_over_a_javascript_views_list_is_tunnelled() {
    let mut p = mixed(Duration::ZERO);
    // A JavaScript view shows 8 with list [3], without a stamp.
    p.receive(
        ms(10),
        id(2),
        packet(id(2), 5, &unstamped_view(&[(8, vec![id(3)], b"{}")])),
    );
    outputs(&mut p);
    // Then 8's own register comes: the same list, stamped.
    let register = stamped(Kind::Connected, 1, Some(id(3)), vec![id(3)]);
    p.receive(ms(11), id(3), flooded(id(8), &register));
    let out = sent(&outputs(&mut p));
    let tunnel = out
        .iter()
        .find(|s| s.0 == Destination::Peer(id(2)) && s.2.kind == Kind::Other(6))
        .expect("a tunnel to the JavaScript peer");
    let (who, entry) = &tunnel.2.bootstrap[0];
    assert_eq!((*who, entry.edges_stamp), (id(8), Some(at(1, 1))));
    // A newer register with the same list over a stamped one is no
    // business of the peers behind: nothing goes in a tunnel.
    let newer = stamped(Kind::Connected, 2, Some(id(3)), vec![id(3)]);
    p.receive(ms(12), id(3), flooded(id(8), &newer));
    let out = sent(&outputs(&mut p));
    assert!(out.iter().all(|s| s.2.kind != Kind::Other(6)), "{out:?}");
}

#[test]
fn a_relinked_javascript_peers_own_entry_goes_on_though_no_news() {
    let mut p = linked_to(&[2, 4]);
    let own = || unstamped_view(&[(2, vec![id(1)], br#"{"two":2}"#)]);
    p.receive(ms(10), id(2), packet(id(2), 2, &own()));
    outputs(&mut p);
    // 2 comes back (a restart, say) and shows the same entry.
    p.peer_disconnected(ms(20), id(2));
    p.peer_connected(ms(30), id(2));
    p.receive(ms(31), id(2), packet(id(2), 1, &request(0)));
    outputs(&mut p);
    p.receive(ms(32), id(2), packet(id(2), 3, &own()));
    let out = sent(&outputs(&mut p));
    let to_4: Vec<&Kind> = out
        .iter()
        .filter(|s| s.0 == Destination::Peer(id(4)))
        .filter(|s| s.2.bootstrap.iter().any(|(who, _)| *who == id(2)))
        .map(|s| &s.2.kind)
        .collect();
    assert_eq!(to_4, vec![&Kind::BootstrapResponse, &Kind::Other(6)]);
    // Once per link: its next view is news to nobody.
    p.receive(ms(40), id(2), packet(id(2), 4, &own()));
    let out = sent(&outputs(&mut p));
    assert!(
        out.iter().all(|s| s.0 != Destination::Peer(id(4))),
        "{out:?}"
    );
}

/// The DISCONNECTED packets from 8 about 9 that went to peer 2, by number.
fn removals_to_2(out: &[Output<serde_json::Value>]) -> Vec<u32> {
    sent(out)
        .iter()
        .filter(|(to, packet, m)| {
            *to == Destination::Peer(id(2))
                && packet.origin == id(8)
                && m.kind == Kind::Disconnected
                && m.id == Some(id(9))
        })
        .map(|(_, packet, _)| packet.number)
        .collect()
}

#[test]
fn an_edge_removal_goes_to_javascript_peers_again_under_a_fresh_number() {
    let change = |version| {
        crate::proto::flood::register_number(Kind::Disconnected, at(1, version), Some(&id(9)))
    };
    // From our peer 3: 8 lists 9, then no longer.
    let mut p = mixed(Duration::ZERO);
    p.receive(
        ms(10),
        id(3),
        packet(id(3), 2, &stamped_view(id(8), vec![id(3), id(9)], 1, 1)),
    );
    outputs(&mut p);
    p.receive(
        ms(11),
        id(3),
        packet(id(3), 3, &stamped_view(id(8), vec![id(3)], 2, 1)),
    );
    let numbers = removals_to_2(&outputs(&mut p));
    // The change's own number (one packet, by whatever path it comes), and
    // one no JavaScript peer has seen: a stale view may have put the edge
    // back after the first.
    assert_eq!(numbers.len(), 2, "{numbers:?}");
    assert_eq!(numbers[0], change(2));
    assert_ne!(numbers[1], change(2));

    // Through the JavaScript peer 2 itself (its flood, or a tunnel it
    // carried unread): it gets the fresh one, and each time another.
    let mut firsts = Vec::new();
    for (version, at_ms) in [(4, 20), (6, 30)] {
        let listed = stamped(
            Kind::Connected,
            version - 1,
            Some(id(9)),
            vec![id(3), id(9)],
        );
        p.receive(ms(at_ms), id(3), flooded(id(8), &listed));
        outputs(&mut p);
        let removal = stamped(Kind::Disconnected, version, Some(id(9)), vec![id(3)]);
        p.receive(ms(at_ms + 1), id(2), flooded(id(8), &removal));
        let numbers = removals_to_2(&outputs(&mut p));
        assert_eq!(numbers.len(), 1, "{numbers:?}");
        assert_ne!(numbers[0], change(version));
        firsts.push(numbers[0]);
    }
    assert_ne!(firsts[0], firsts[1]);

    // Past `forget_after` (60 s) since 2 last asked for our view, nothing
    // we gave it can be that old: the change's own packet alone, as the
    // original would send.
    let view =
        |number, edges, version| packet(id(3), number, &stamped_view(id(8), edges, version, 1));
    p.receive(ms(70_000), id(3), view(4, vec![id(3), id(9)], 7));
    outputs(&mut p);
    p.receive(ms(70_001), id(3), view(5, vec![id(3)], 8));
    assert_eq!(removals_to_2(&outputs(&mut p)), vec![change(8)]);
    // Until it asks again.
    p.receive(ms(70_002), id(2), packet(id(2), 9, &request(0)));
    outputs(&mut p);
    p.receive(ms(70_003), id(3), view(6, vec![id(3), id(9)], 9));
    outputs(&mut p);
    p.receive(ms(70_004), id(3), view(7, vec![id(3)], 10));
    assert_eq!(removals_to_2(&outputs(&mut p)).len(), 2);
}

/// A stamped view entry at version 1: list `edges`, data `data`.
fn entry_with(edges: Vec<PeerId>, data: &'static [u8]) -> StateEntry {
    StateEntry {
        data: Some(Bytes::from_static(data)),
        ..entry_at_v1(edges)
    }
}

#[test]
fn a_node_reached_after_its_data_came_goes_to_javascript_peers_in_a_view() {
    let mut p = mixed(Duration::ZERO);
    let one = |who: u8, entry: StateEntry| {
        let mut view = Message::new(Kind::BootstrapResponse);
        view.bootstrap.push((id(who), entry));
        view
    };
    // 8 speaks first, its data and all, but nothing we reach lists it: a
    // JavaScript neighbour that heard it too has dropped it.
    let data: &[u8] = br#"{"eight":8}"#;
    p.receive(
        ms(10),
        id(3),
        packet(id(3), 2, &one(8, entry_with(vec![id(3)], data))),
    );
    assert!(!p.is_online(&id(8)));
    outputs(&mut p);
    // Then 3 lists 8: reached, with data we held before.
    let three = one(3, entry_with(vec![id(1), id(8)], br#"{"three":3}"#));
    p.receive(ms(11), id(3), packet(id(3), 3, &three));
    assert!(p.is_online(&id(8)));
    let out = sent(&outputs(&mut p));
    let to_2: Vec<(Kind, Option<&[u8]>)> = out
        .iter()
        .filter(|s| s.0 == Destination::Peer(id(2)))
        .flat_map(|s| s.2.bootstrap.iter().map(move |e| (s.2.kind, e)))
        .filter(|(_, (who, _))| *who == id(8))
        .map(|(kind, (_, e))| (kind, e.data.as_deref()))
        .collect();
    assert_eq!(to_2, vec![(Kind::BootstrapResponse, Some(data))]);
    // Reached already, it goes no more.
    p.receive(ms(12), id(3), packet(id(3), 4, &three));
    let out = sent(&outputs(&mut p));
    assert!(
        out.iter()
            .all(|s| s.2.bootstrap.iter().all(|(who, _)| *who != id(8))),
        "{out:?}"
    );
}
