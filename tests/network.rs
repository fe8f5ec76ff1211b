//! Nodes over real loopback TCP, in one process: real sockets, real Noise,
//! real hypercore-protocol channels.

use std::net::SocketAddr;
use std::time::Duration;

use hyper_presence::net::{topic_key, Identity, Node};
use hyper_presence::proto::{Event, PeerId};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

const LOCAL: &str = "127.0.0.1:0";
const PATIENCE: Duration = Duration::from_secs(20);

fn local() -> SocketAddr {
    LOCAL.parse().unwrap()
}

async fn node(topic: &str, data: Value, connect: Option<SocketAddr>) -> Node {
    let mut b = Node::builder()
        .topic(topic)
        .listen(local())
        .data(data)
        .silence_timeout(Duration::from_secs(2))
        .hello_timeout(Duration::from_secs(1));
    if let Some(addr) = connect {
        b = b.connect(addr);
    }
    b.spawn().await.expect("node starts")
}

/// Waits, event by event, until `done` holds; fails after `PATIENCE`.
async fn until(
    events: &mut broadcast::Receiver<Event<Value>>,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("{what}: events closed"),
            Err(_) => panic!("{what}: not within {PATIENCE:?}"),
        }
    }
}

fn sorted(mut ids: Vec<PeerId>) -> Vec<PeerId> {
    ids.sort();
    ids
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
    // Longer than the stranger's hello timeout: its connection has been
    // tried and refused by then.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_hello_is_refused_and_the_node_keeps_serving() {
    use futures::StreamExt;
    use hyper_presence::net::{framing::Frames, hello};
    use hypercore_handshake::{Cipher, HandshakePattern};
    use hypercore_protocol::{schema::Extension, Event as ProtocolEvent, Message, Protocol};

    let a = node("forged", json!({}), None).await;
    // A real Noise and hypercore-protocol client with the right topic key,
    // whose hello claims someone else's id.
    let stream = tokio::net::TcpStream::connect(a.listen_addrs()[0])
        .await
        .unwrap();
    let (frames, mut closed) = Frames::new(stream);
    let cipher =
        Cipher::new_dht_init_with_pattern(Some(Box::new(frames)), HandshakePattern::XX, None, &[])
            .unwrap();
    let mut protocol = Protocol::new(Box::new(cipher));
    let claimed = Identity::from_seed([9; 32]);
    let mallory = Identity::from_seed([8; 32]);
    let mut sent_forgery = false;
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            tokio::select! {
                reason = closed.wait() => break reason,
                event = protocol.next() => match event {
                    Some(Ok(ProtocolEvent::Handshake(_))) => protocol.open(topic_key("forged")).await.unwrap(),
                    Some(Ok(ProtocolEvent::Channel(channel))) => {
                        let remote = protocol.remote_public_key().unwrap();
                        let mut forged = hello::make(&mallory, &protocol.public_key(), &remote);
                        forged[..32].copy_from_slice(claimed.id().as_bytes());
                        let message = Message::Extension(Extension { name: "hyper-presence/hello".into(), message: forged });
                        channel.send(message).await.unwrap();
                        sent_forgery = true;
                    }
                    Some(_) => {}
                    None => std::future::pending().await,
                },
            }
        }
    })
    .await;
    assert!(sent_forgery, "the client got as far as a channel");
    assert!(ended.is_ok(), "the node closed the forger's connection");
    assert_eq!(a.online(), vec![a.id()]);
    assert_ne!(a.online(), vec![claimed.id()]);
    // And it still serves honest peers.
    let b = node("forged", json!({"honest": true}), Some(a.listen_addrs()[0])).await;
    let mut events = a.subscribe();
    until(&mut events, "a sees b after the forgery", || {
        a.peer_data(&b.id()) == Some(json!({"honest": true}))
    })
    .await;
    a.shutdown().await;
    b.shutdown().await;
}
