use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn id(byte: u8) -> PeerId {
    PeerId::from_bytes([byte; 32])
}

fn v4(a: [u8; 4]) -> RecordAddr {
    RecordAddr {
        ip: IpAddr::V4(Ipv4Addr::from(a)),
        scope: 0,
    }
}

fn record(
    us: u8,
    their_id: Option<&str>,
    topic: Option<&str>,
    addrs: Vec<RecordAddr>,
) -> Result<Found, RecordError> {
    let tag = topic_tag(&[7; 32]);
    parse_record(&id(us), &tag, their_id, topic, addrs, 4000)
}

#[test]
fn a_record_of_our_topic_gives_its_id_and_addresses_loopback_last() {
    let tag = hex::encode(topic_tag(&[7; 32]));
    let them = hex::encode([2u8; 32]);
    let found = record(
        1,
        Some(&them),
        Some(&tag),
        vec![v4([127, 0, 0, 1]), v4([10, 0, 0, 2]), v4([10, 0, 0, 2])],
    )
    .unwrap();
    assert_eq!(found.id, id(2));
    assert_eq!(
        found.addrs,
        vec![
            "10.0.0.2:4000".parse::<SocketAddr>().unwrap(),
            "127.0.0.1:4000".parse().unwrap()
        ]
    );
}

#[test]
fn the_tag_hides_the_key_and_the_discovery_key_and_differs_per_topic() {
    let key = [7u8; 32];
    let tag = topic_tag(&key);
    assert_ne!(tag[..], key[..16]);
    assert_ne!(tag[..], discovery_key(&key)[..16]);
    assert_ne!(tag, topic_tag(&[8; 32]));
}

#[test]
fn ours_other_topics_and_malformed_records_are_refused() {
    let tag = hex::encode(topic_tag(&[7; 32]));
    let other = hex::encode(topic_tag(&[8; 32]));
    let them = hex::encode([2u8; 32]);
    let me = hex::encode([1u8; 32]);
    let a = || vec![v4([10, 0, 0, 2])];
    assert_eq!(record(1, Some(&me), Some(&tag), a()), Err(RecordError::Own));
    assert_eq!(
        record(1, Some(&them), Some(&other), a()),
        Err(RecordError::OtherTopic)
    );
    assert_eq!(
        record(1, Some(&them), None, a()),
        Err(RecordError::OtherTopic)
    );
    assert_eq!(record(1, None, Some(&tag), a()), Err(RecordError::BadId));
    assert_eq!(
        record(1, Some(&them[..62]), Some(&tag), a()),
        Err(RecordError::BadId)
    );
    assert_eq!(
        record(1, Some("zz"), Some(&tag), a()),
        Err(RecordError::BadId)
    );
    assert_eq!(
        record(1, Some(&them), Some(&tag), vec![v4([0, 0, 0, 0])]),
        Err(RecordError::NoAddress)
    );
    let link_local = RecordAddr {
        ip: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
        scope: 0,
    };
    assert_eq!(
        record(1, Some(&them), Some(&tag), vec![link_local]),
        Err(RecordError::NoAddress)
    );
    let scoped = RecordAddr {
        scope: 3,
        ..link_local
    };
    let found = record(1, Some(&them), Some(&tag), vec![scoped]).unwrap();
    assert_eq!(found.addrs, vec!["[fe80::1%3]:4000".parse().unwrap()]);
}

#[test]
fn a_record_with_many_addresses_keeps_a_few() {
    let tag = hex::encode(topic_tag(&[7; 32]));
    let them = hex::encode([2u8; 32]);
    let many = (0..200u8).map(|i| v4([10, 0, 1, i])).collect();
    let found = record(1, Some(&them), Some(&tag), many).unwrap();
    assert_eq!(found.addrs.len(), MAX_ADDRS);
}

proptest::proptest! {
    #[test]
    fn any_record_is_parsed_or_refused_without_panicking(
        their_id in proptest::option::of(".{0,80}"),
        topic in proptest::option::of(".{0,40}"),
        ips in proptest::collection::vec(proptest::prelude::any::<[u8; 16]>(), 0..20),
        port in proptest::prelude::any::<u16>(),
    ) {
        let tag = topic_tag(&[7; 32]);
        let addrs = ips.into_iter().map(|b| RecordAddr { ip: IpAddr::V6(Ipv6Addr::from(b)), scope: b[0] as u32 });
        if let Ok(found) = parse_record(&id(1), &tag, their_id.as_deref(), topic.as_deref(), addrs, port) {
            proptest::prop_assert!(!found.addrs.is_empty() && found.addrs.len() <= MAX_ADDRS);
        }
    }
}
