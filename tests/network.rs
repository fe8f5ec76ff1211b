//! Nodes over real loopback TCP, in one process: real sockets, real Noise,
//! real hypercore channels (our own transport).

use std::net::SocketAddr;
use std::time::Duration;

use hyper_presence::net::link::{Link, LinkEvent};
use hyper_presence::net::{topic_key, Identity, Node};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

mod common;
use common::*;

async fn node(topic: &str, data: Value, connect: Option<SocketAddr>) -> Node {
    let mut b = Node::builder()
        .topic(topic)
        .listen(local())
        .data(data)
        .silence_timeout(Duration::from_secs(2))
        .keep_alive(Duration::from_millis(500))
        .handshake_timeout(Duration::from_secs(1));
    if let Some(addr) = connect {
        b = b.connect(addr);
    }
    b.spawn().await.expect("node starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_in_a_line_agree_on_who_is_online_and_their_data() {
    let a = node("line", json!({"name": "a"}), None).await;
    let b = node("line", json!({"name": "b"}), Some(a.listen_addrs()[0])).await;
    let mut c_events;
    let c = {
        let c = node("line", json!({"name": "c"}), Some(b.listen_addrs()[0])).await;
        c_events = c.subscribe();
        c
    };
    let everyone = sorted(vec![a.id(), b.id(), c.id()]);
    let mut a_events = a.subscribe();
    until(&mut a_events, "a sees everyone", || a.online() == everyone).await;
    until(&mut c_events, "c sees everyone", || {
        c.online() == everyone && c.peer_data(&a.id()) == Some(json!({"name": "a"}))
    })
    .await;

    b.set_data(json!({"name": "b", "mood": "fine"})).unwrap();
    until(&mut a_events, "a sees b's new data", || {
        a.peer_data(&b.id()) == Some(json!({"name": "b", "mood": "fine"}))
    })
    .await;

    // c leaves cleanly: a hears at once through b.
    c.shutdown().await;
    let two = sorted(vec![a.id(), b.id()]);
    until(&mut a_events, "a sees c gone", || a.online() == two).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_another_topic_key_never_appears() {
    let a = node("right", json!({}), None).await;
    let b = node("right", json!({}), Some(a.listen_addrs()[0])).await;
    let stranger = node("wrong", json!({}), Some(a.listen_addrs()[0])).await;
    let mut events = a.subscribe();
    let pair = sorted(vec![a.id(), b.id()]);
    until(&mut events, "a sees b", || a.online() == pair).await;
    // Longer than the handshake timeout: the stranger's connections have
    // been tried and refused (its channel rejected) by then.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.online(), pair);
    assert_eq!(stranger.online(), vec![stranger.id()]);
    for n in [a, b, stranger] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_silent_connections_are_dropped_and_the_node_keeps_serving() {
    let a = node("robust", json!({}), None).await;
    let addr = a.listen_addrs()[0];
    // Garbage: not even a frame header that makes sense.
    let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
    junk.write_all(&[0xff; 4096]).await.unwrap();
    // Silent: connects and says nothing.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let b = node("robust", json!({"ok": true}), Some(addr)).await;
    let mut events = a.subscribe();
    until(&mut events, "a sees b despite the junk", || {
        a.peer_data(&b.id()) == Some(json!({"ok": true}))
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_is_the_identity_key_and_survives_restarts_of_the_node() {
    let identity = Identity::from_seed([7; 32]);
    let a = Node::builder()
        .key(topic_key("ids"))
        .identity(identity.clone())
        .listen(local())
        .spawn()
        .await
        .unwrap();
    assert_eq!(a.id(), identity.id());
    let b = node("ids", json!({}), Some(a.listen_addrs()[0])).await;
    let mut events = b.subscribe();
    let pair = sorted(vec![a.id(), b.id()]);
    until(&mut events, "b proves a's identity", || b.online() == pair).await;
    let addr = a.listen_addrs()[0];
    a.shutdown().await;
    until(&mut events, "b sees a leave", || b.online() == vec![b.id()]).await;
    // Same identity, same address: b's dialler finds it again.
    let again = Node::builder()
        .key(topic_key("ids"))
        .identity(identity)
        .listen(addr)
        .data(json!({"life": 2}))
        .spawn()
        .await
        .unwrap();
    until(&mut events, "b sees a's new life", || {
        b.online() == pair && b.peer_data(&again.id()) == Some(json!({"life": 2}))
    })
    .await;
    again.shutdown().await;
    b.shutdown().await;
}

/// A TCP relay between a client and `target` that can be frozen: it then
/// keeps both sockets open and passes nothing, like a host that vanished
/// without a FIN.
async fn freezable_relay(target: SocketAddr) -> (SocketAddr, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind(local()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (freeze, frozen) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(target).await.unwrap();
            let (mut cr, mut cw) = client.into_split();
            let (mut sr, mut sw) = server.into_split();
            let f1 = frozen.clone();
            let f2 = frozen.clone();
            tokio::spawn(async move { pump(&mut cr, &mut sw, f1).await });
            tokio::spawn(async move { pump(&mut sr, &mut cw, f2).await });
        }
    });
    (addr, freeze)
}

async fn pump(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    mut frozen: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::AsyncReadExt;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if *frozen.borrow() {
            // Hold the sockets open, pass nothing, forever.
            std::future::pending::<()>().await;
        }
        tokio::select! {
            n = from.read(&mut buf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if *frozen.borrow() {
                        continue;
                    }
                    if to.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            },
            _ = frozen.changed() => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_gone_silent_without_closing_is_noticed_by_the_heartbeat_timeout() {
    let a = node("silence", json!({}), None).await;
    let (relay, freeze) = freezable_relay(a.listen_addrs()[0]).await;
    let b = Node::builder()
        .topic("silence")
        .silence_timeout(Duration::from_secs(2))
        .keep_alive(Duration::from_millis(500))
        .redial_max(Duration::from_secs(60))
        .connect(relay)
        .spawn()
        .await
        .unwrap();
    let mut events = a.subscribe();
    let pair = sorted(vec![a.id(), b.id()]);
    until(&mut events, "a sees b through the relay", || {
        a.online() == pair
    })
    .await;
    freeze.send(true).unwrap();
    let frozen_at = tokio::time::Instant::now();
    until(&mut events, "a notices b went silent", || {
        a.online() == vec![a.id()]
    })
    .await;
    // Silence timeout (2 s) plus the disconnect grace (0.5 s), with slack
    // for a busy machine; never the minutes TCP itself would take.
    assert!(
        frozen_at.elapsed() < Duration::from_secs(10),
        "took {:?}",
        frozen_at.elapsed()
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Runs a hand-driven client [`Link`] over a real socket until the server
/// ends the connection; returns what the client saw.
async fn client_until_closed(addr: SocketAddr, client: &mut Link) -> Vec<LinkEvent> {
    use tokio::io::AsyncReadExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 65536];
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(bytes) = client.transmit() {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            // Idle spells get a keep-alive, so the node's silence timeout
            // is not what ends the connection.
            let read = tokio::time::timeout(Duration::from_millis(300), stream.read(&mut buf));
            match read.await {
                Err(_) => client.keep_alive(),
                Ok(Ok(0) | Err(_)) => return,
                Ok(Ok(n)) => {
                    if client.receive(&buf[..n]).is_err() {
                        return;
                    }
                    while let Some(event) = client.poll_event() {
                        seen.push(event);
                    }
                }
            }
        }
    })
    .await
    .expect("the node ends the connection");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_the_topic_key_is_refused_and_the_node_keeps_serving() {
    let a = node("secret", json!({}), None).await;
    let stranger = Identity::from_seed([9; 32]);
    // The handshake succeeds (anyone can do Noise), but its capability is
    // for another key: the node rejects the channel and closes.
    let seen = client_until_closed(
        a.listen_addrs()[0],
        &mut client_link(topic_key("other"), &stranger),
    )
    .await;
    assert!(
        !seen.iter().any(|e| matches!(e, LinkEvent::Ready(_))),
        "no channel for a stranger: {seen:?}"
    );
    assert_eq!(a.online(), vec![a.id()]);
    // A peer that knows the key and proves its identity is seen as that
    // identity, the static key of its handshake.
    let b = node("secret", json!({"honest": true}), Some(a.listen_addrs()[0])).await;
    let mut events = a.subscribe();
    until(&mut events, "a sees b after the stranger", || {
        a.peer_data(&b.id()) == Some(json!({"honest": true}))
    })
    .await;
    assert!(!a.online().contains(&stranger.id()));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_id_is_the_dialers_static_key_and_ourselves_is_refused() {
    let a = node("who", json!({}), None).await;
    // A client with a's own identity: the node must not take itself as a
    // peer.
    let same = Identity::from_seed([7; 32]);
    let a2 = Node::builder()
        .topic("who")
        .identity(same.clone())
        .listen(local())
        .spawn()
        .await
        .unwrap();
    let seen = client_until_closed(
        a2.listen_addrs()[0],
        &mut client_link(topic_key("who"), &same),
    )
    .await;
    assert!(!seen.iter().any(|e| matches!(e, LinkEvent::Ready(_))));
    assert_eq!(a2.online(), vec![a2.id()]);
    // A dialling client is known by its own key.
    let dialler = Identity::from_seed([6; 32]);
    let mut c = client_link(topic_key("who"), &dialler);
    let task = tokio::spawn({
        let addr = a.listen_addrs()[0];
        async move { client_until_closed(addr, &mut c).await }
    });
    let mut events = a.subscribe();
    until(&mut events, "a sees the dialler by its key", || {
        a.online().contains(&dialler.id())
    })
    .await;
    a.shutdown().await;
    let seen = task.await.unwrap();
    assert!(seen.contains(&LinkEvent::Ready(a.id())), "{seen:?}");
    assert!(
        seen.contains(&LinkEvent::Goodbye),
        "a said goodbye: {seen:?}"
    );
    a2.shutdown().await;
}

/// Waits, a bounded time, until `check` holds; connections closing raise no
/// event, so this polls.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_peers_that_dial_each_other_keep_one_link_and_never_flap() {
    let a = node("both-ways", json!({"n": "a"}), None).await;
    let b = node("both-ways", json!({"n": "b"}), Some(a.listen_addrs()[0])).await;
    // Twice more each way: the same address dialled by two loops, and the
    // other side dialling back.
    a.connect(b.listen_addrs()[0]);
    a.connect(b.listen_addrs()[0]);
    b.connect(a.listen_addrs()[0]);
    let mut a_events = a.subscribe();
    let pair = sorted(vec![a.id(), b.id()]);
    until(&mut a_events, "a sees b", || a.online() == pair).await;
    eventually("one link each", || {
        a.connection_count() == 1 && b.connection_count() == 1
    })
    .await;
    // Dial loops wait while their peer is linked: a second of redial
    // backoffs later, still one link, and b never went offline for a.
    let mut a_watch = a.subscribe();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((a.connection_count(), b.connection_count()), (1, 1));
    while let Ok(event) = a_watch.try_recv() {
        assert!(
            !matches!(event, hyper_presence::proto::Event::PeerRemove(_)),
            "{event:?}"
        );
    }
    // Losing the link: b's loops dial again and the peers meet again.
    a.vanish().await;
    // Its listener closes as its task sees the stop: bind until it has.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let a2 = loop {
        let started = Node::builder()
            .topic("both-ways")
            .listen(a.listen_addrs()[0])
            .silence_timeout(Duration::from_secs(2))
            .spawn()
            .await;
        match started {
            Ok(node) => break node,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("a comes back on its address: {e}"),
        }
    };
    let mut b_events = b.subscribe();
    until(&mut b_events, "b meets a again", || {
        b.online().contains(&a2.id())
    })
    .await;
    a2.shutdown().await;
    b.shutdown().await;
}

/// Takes what a connection tells the node, and remembers whether it came up.
struct Recorder(std::sync::atomic::AtomicBool);

impl hyper_presence::net::connection::Hub for Recorder {
    fn up(
        &self,
        _: u64,
        _: hyper_presence::proto::PeerId,
        _: bool,
        _: tokio::sync::mpsc::Sender<bytes::Bytes>,
    ) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    fn packet(&self, _: u64, _: bytes::Bytes) {}
    fn down(&self, _: u64, _: bool) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_starts_after_its_node_stopped_ends_at_once() {
    use hyper_presence::net::connection::{run, Ending, Settings, Stop};
    // A node that stops while its accept loop takes one more connection:
    // that connection's task subscribes to the stop after the change, and
    // used to run on, keeping the stopped node linked (a peer redialling a
    // restarted node's address met the old one instead).
    let listener = tokio::net::TcpListener::bind(local()).await.unwrap();
    let dial = tokio::net::TcpStream::connect(listener.local_addr().unwrap());
    let (accepted, dialled) = tokio::join!(listener.accept(), dial);
    let (stream, _) = accepted.unwrap();
    let _dialled = dialled.unwrap();
    let (stopper, _first) = tokio::sync::watch::channel(Stop::No);
    stopper.send(Stop::Leave).unwrap();
    // As the node's tasks do: subscribed after the stop, so it is no change.
    let stop = stopper.subscribe();
    let settings = std::sync::Arc::new(Settings {
        identity: Identity::generate().unwrap(),
        key: topic_key("late"),
        extension: "hyper-presence".into(),
        silence_timeout: Duration::from_secs(30),
        keep_alive: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(30),
        max_frame: 1 << 20,
        max_queued_bytes: 1 << 20,
        outbox_packets: 16,
    });
    let hub = std::sync::Arc::new(Recorder(Default::default()));
    let ended = tokio::time::timeout(
        Duration::from_secs(5),
        run(stream, false, 1, settings, hub.clone(), stop, None),
    )
    .await
    .expect("ends at once, not after a timeout");
    assert_eq!(ended, (Ending::Shutdown, None));
    assert!(!hub.0.load(std::sync::atomic::Ordering::SeqCst));
}

/// With a debounce, `Online` events come at least that far apart (a
/// change inside one waits for the next), and the last one holds
/// everyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_events_are_spaced_by_the_debounce() {
    let debounce = Duration::from_millis(800);
    let a = Node::builder()
        .topic("debounce")
        .listen(local())
        .online_debounce(debounce)
        .spawn()
        .await
        .expect("node starts");
    let mut events = a.subscribe();
    let b = node("debounce", json!({}), Some(a.listen_addrs()[0])).await;
    let c = node("debounce", json!({}), Some(a.listen_addrs()[0])).await;
    let everyone = sorted(vec![a.id(), b.id(), c.id()]);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(hyper_presence::proto::Event::Online(list))) => {
                seen.push((tokio::time::Instant::now(), list.len()));
                if list == everyone {
                    break;
                }
            }
            Ok(Ok(_)) => {}
            other => panic!("waiting for everyone online: {other:?}"),
        }
    }
    // b and c link within milliseconds of each other: without the
    // debounce, one event each, that close.
    assert!(seen.len() >= 2, "{seen:?}");
    for pair in seen.windows(2) {
        // Receipt times: the first may have been read a little late.
        assert!(pair[1].0 - pair[0].0 >= debounce * 3 / 4, "{seen:?}");
    }
    for n in [a, b, c] {
        n.shutdown().await;
    }
}
