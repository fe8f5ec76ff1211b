//! Hostile clients over real loopback TCP against a node in this process
//! (and against the real `join` binary): links that stop reading while
//! asking for the view, strangers announcing huge frames, and a flood of
//! invented ids that must not leave `join --json` printing a stale state.
//! The hostile side is built on the library's own [`Link`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper_presence::net::link::{Link, LinkEvent};
use hyper_presence::net::{topic_key, Identity, Node};
use hyper_presence::proto::wire::{FloodPacket, Kind, Message, StateEntry};
use hyper_presence::proto::PeerId;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

mod common;
use common::*;

const MB: u64 = 1 << 20;

/// The tests measure the process's memory: one at a time, so one test's
/// attack does not show in another's figures.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Resident memory of this process, from /proc (0 where there is none).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Samples the RSS every 20 ms until dropped; `peak` holds the highest.
struct RssWatch {
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssWatch {
    fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss()));
        let p = peak.clone();
        let task = tokio::spawn(async move {
            loop {
                p.fetch_max(rss(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        RssWatch { peak, task }
    }

    fn peak(&self) -> u64 {
        self.peak.fetch_max(rss(), Ordering::Relaxed).max(rss())
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Dials `addr` and drives a client link until its channel is open.
async fn ready_client(addr: SocketAddr, key: [u8; 32], identity: &Identity) -> (TcpStream, Link) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut client = client_link(key, identity);
    let mut buf = vec![0u8; 64 * 1024];
    tokio::time::timeout(PATIENCE, async {
        loop {
            if let Some(bytes) = client.transmit() {
                stream.write_all(&bytes).await.unwrap();
            }
            while let Some(event) = client.poll_event() {
                if matches!(event, LinkEvent::Ready(_)) {
                    if let Some(bytes) = client.transmit() {
                        stream.write_all(&bytes).await.unwrap();
                    }
                    return;
                }
            }
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "the node closed during the handshake");
            client.receive(&buf[..n]).unwrap();
        }
    })
    .await
    .expect("the handshake completes");
    (stream, client)
}

fn flood(origin: PeerId, number: u32, message: &Message) -> Bytes {
    FloodPacket {
        origin,
        number,
        ttl: 0,
        data: message.encode(),
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_that_stop_reading_while_asking_for_the_view_are_cut_off() {
    let _serial = SERIAL.lock().await;
    const QUEUED: usize = 256 * 1024;
    const REQUESTS: u32 = 2_000;
    // Big data makes every view answer big: ~16 KiB per copy of it.
    let big = json!({"pad": "x".repeat(15_000)});
    let node = Node::builder()
        .topic("slow-readers")
        .listen(local())
        .data(big)
        .max_queued_bytes(QUEUED)
        .spawn()
        .await
        .unwrap();
    let addr = node.listen_addrs()[0];
    let honest = Node::builder()
        .topic("slow-readers")
        .data(json!({"round": 0}))
        .connect(addr)
        .spawn()
        .await
        .unwrap();
    let mut events = node.subscribe();
    let pair = sorted(vec![node.id(), honest.id()]);
    until(&mut events, "the node sees the honest peer", || {
        node.online() == pair
    })
    .await;

    let before = rss();
    let watch = RssWatch::start();
    let key = topic_key("slow-readers");
    let mut attackers = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..4u8 {
        let identity = Identity::from_seed([100 + i; 32]);
        let (stream, mut client) = ready_client(addr, key, &identity).await;
        let id = identity.id();
        attackers.push(id);
        let started = Instant::now();
        tasks.push(tokio::spawn(async move {
            // From here on the socket is never read: its kernel buffers
            // fill, and the node's queue for us grows.
            let mut stream = stream;
            // Without the batches feature, as a JavaScript peer asks:
            // every request is answered with the whole view at once.
            let request = Message::new(Kind::BootstrapRequest);
            for number in 1..=REQUESTS {
                let packet = flood(id, number, &request);
                client.send_packets([&packet[..]]).unwrap();
                let bytes = client.transmit().unwrap();
                let write = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&bytes));
                match write.await {
                    Ok(Ok(())) => {}
                    // Reset or closed by the node: cut off.
                    Ok(Err(_)) => return Some((number, started.elapsed())),
                    // The node stopped reading us: it would be a
                    // deadlock, not a cut-off.
                    Err(_) => return None,
                }
                if number % 10 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            // All sent and not cut yet: keep the link alive (still never
            // reading) until the node cuts it, or give up.
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                client.keep_alive();
                if let Some(bytes) = client.transmit() {
                    if stream.write_all(&bytes).await.is_err() {
                        return Some((REQUESTS, started.elapsed()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            None
        }));
    }

    // Meanwhile the honest peer's data changes go through.
    honest.set_data(json!({"round": 1})).unwrap();
    until(&mut events, "the honest change arrives", || {
        node.peer_data(&honest.id()) == Some(json!({"round": 1}))
    })
    .await;

    let mut cut = Vec::new();
    for task in tasks {
        cut.push(task.await.unwrap());
    }
    let peak = watch.peak();
    drop(watch);
    eprintln!(
        "slow readers: cut off after (requests, time) {cut:?}; rss {} MB before, peak {} MB",
        before / MB,
        peak / MB
    );
    assert!(
        cut.iter().all(Option::is_some),
        "every slow reader is cut off: {cut:?}"
    );
    until(&mut events, "the node drops the slow readers", || {
        let online = node.online();
        !attackers.iter().any(|a| online.contains(a))
    })
    .await;
    honest.set_data(json!({"round": 2})).unwrap();
    until(&mut events, "the honest peer is still served", || {
        node.peer_data(&honest.id()) == Some(json!({"round": 2}))
    })
    .await;
    assert!(honest.online().contains(&node.id()));
    assert!(
        peak < before + 200 * MB,
        "rss {} MB before, peak {} MB",
        before / MB,
        peak / MB
    );
    node.shutdown().await;
    honest.shutdown().await;
}

/// A 3-byte little-endian frame length, as every frame starts.
fn frame_header(len: usize) -> [u8; 3] {
    [len as u8, (len >> 8) as u8, (len >> 16) as u8]
}

/// One stranger: connects, says `hello`, then waits for the node to close
/// (EOF or reset); returns how long that took from connecting, or `None`
/// if the node kept it open for 10 s.
async fn stranger(addr: SocketAddr, hello: Vec<u8>) -> Option<Duration> {
    let began = Instant::now();
    let mut stream = TcpStream::connect(addr).await.ok()?;
    // The node may close before reading it all: a failed write is fine.
    let _ = stream.write_all(&hello).await;
    let mut buf = vec![0u8; 4096];
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return began.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_announcing_huge_frames_are_closed_and_do_not_lock_out_honest_peers() {
    let _serial = SERIAL.lock().await;
    const STRANGERS: usize = 300;
    const HUGE: usize = 4 << 20;
    let node = Node::builder()
        .topic("huge-frames")
        .listen(local())
        .spawn()
        .await
        .unwrap();
    let addr = node.listen_addrs()[0];
    let before = rss();
    let watch = RssWatch::start();
    let mut tasks = Vec::new();
    for i in 0..STRANGERS {
        // Half announce a huge first frame; half send a valid first
        // handshake message, then a huge frame.
        let mut hello = Vec::new();
        if i % 2 == 1 {
            let identity = Identity::from_seed([(i % 200) as u8; 32]);
            hello = client_link(topic_key("huge-frames"), &identity)
                .transmit()
                .unwrap();
        }
        hello.extend_from_slice(&frame_header(HUGE));
        hello.extend(std::iter::repeat_n(0x5a, 64 * 1024));
        tasks.push(tokio::spawn(stranger(addr, hello)));
    }
    // An honest peer arrives in the middle of the crowd.
    let began = Instant::now();
    let honest = Node::builder()
        .topic("huge-frames")
        .connect(addr)
        .spawn()
        .await
        .unwrap();
    let mut events = node.subscribe();
    let pair = sorted(vec![node.id(), honest.id()]);
    until(&mut events, "the honest peer gets through", || {
        node.online() == pair
    })
    .await;
    let honest_took = began.elapsed();
    let mut closed = Vec::new();
    for task in tasks {
        closed.push(task.await.unwrap());
    }
    let peak = watch.peak();
    drop(watch);
    let slowest = closed.iter().flatten().max().copied();
    eprintln!(
        "huge frames: {} of {STRANGERS} strangers closed, slowest after {slowest:?}; \
         honest peer online after {honest_took:?}; rss {} MB before, peak {} MB",
        closed.iter().flatten().count(),
        before / MB,
        peak / MB
    );
    assert!(
        closed.iter().all(Option::is_some),
        "every stranger is closed"
    );
    // Closed on the length alone, not by the 5 s handshake timeout.
    assert!(
        slowest < Some(Duration::from_secs(4)),
        "slowest close {slowest:?}"
    );
    assert!(honest_took < Duration::from_secs(5), "{honest_took:?}");
    assert!(
        peak < before + 200 * MB,
        "rss {} MB before, peak {} MB",
        before / MB,
        peak / MB
    );
    until(&mut events, "the honest peer stays", || {
        node.online() == pair
    })
    .await;
    assert_eq!(honest.online(), pair);
    node.shutdown().await;
    honest.shutdown().await;
}

/// An invented id, the same for the same number.
fn invented(n: u32) -> PeerId {
    let mut bytes = [0x1d; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    PeerId::from_bytes(bytes)
}

fn entry(connected_to: Vec<PeerId>, n: u32) -> StateEntry {
    StateEntry {
        connected_to: connected_to.into(),
        data: Some(Bytes::from(format!("{{\"n\":{n}}}"))),
        ..StateEntry::default()
    }
}

/// The state a `join --json` line says is true, if it says one: its online
/// list (an `online` event or a `snapshot`).
fn stated_online(line: &Value) -> Option<Vec<String>> {
    let list = match line["event"].as_str()? {
        "online" => &line["peers"],
        "snapshot" => &line["online"],
        _ => return None,
    };
    let mut ids: Vec<String> = list
        .as_array()?
        .iter()
        .filter_map(|v| Some(v.as_str()?.to_owned()))
        .collect();
    ids.sort();
    Some(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_json_says_when_it_lagged_and_its_last_line_is_true() {
    let _serial = SERIAL.lock().await;
    const HUBS: u32 = 20;
    const LEAVES_PER_HUB: u32 = 999;
    const PER_PACKET: usize = 4_000;
    let key = topic_key("join-lag");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hyper-presence"))
        .args([
            "join",
            "--no-mdns",
            "--no-dht",
            "--json",
            "--ephemeral",
            "--key",
        ])
        .arg(hex::encode(key))
        .args(["--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Read every line at once, so the pipe never slows `join` down more
    // than its own printing does.
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let value = serde_json::from_str(&line).expect("every line is JSON");
            if tx.send(value).is_err() {
                return;
            }
        }
    });
    let mut seen: Vec<Value> = Vec::new();
    let ready = tokio::time::timeout(PATIENCE, lines.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready["event"], "ready");
    let me = ready["id"].as_str().unwrap().to_owned();
    let addr: SocketAddr = ready["listen"][0].as_str().unwrap().parse().unwrap();
    seen.push(ready);

    // The hostile peer: it never signs, so it and its inventions are
    // unsigned origins, whose edges count from one end (as JavaScript's).
    let identity = Identity::from_seed([77; 32]);
    let hostile = identity.id();
    let (mut stream, mut client) = ready_client(addr, key, &identity).await;
    let hubs: Vec<PeerId> = (0..HUBS).map(invented).collect();
    let mut entries = vec![(hostile, entry(hubs.clone(), 0))];
    for (h, hub) in hubs.iter().enumerate() {
        let leaves: Vec<PeerId> = (0..LEAVES_PER_HUB)
            .map(|l| invented(HUBS + h as u32 * LEAVES_PER_HUB + l))
            .collect();
        let mut hub_edges = leaves.clone();
        hub_edges.push(hostile);
        entries.push((*hub, entry(hub_edges, h as u32)));
        for leaf in leaves {
            entries.push((leaf, entry(vec![*hub], 0)));
        }
    }
    let total = entries.len();
    let sent_at = Instant::now();
    for (number, chunk) in entries.chunks(PER_PACKET).enumerate() {
        let mut view = Message::new(Kind::BootstrapResponse);
        view.bootstrap = chunk.to_vec();
        let packet = flood(hostile, number as u32 + 1, &view);
        assert!(packet.len() < 1 << 20, "{} bytes", packet.len());
        client.send_packets([&packet[..]]).unwrap();
        stream.write_all(&client.transmit().unwrap()).await.unwrap();
    }

    // `join` falls behind: it says so, then prints the whole state.
    let mut lagged_at = None;
    let deadline = Instant::now() + PATIENCE;
    let snapshot = loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .expect("join says it lagged, then prints a snapshot")
            .expect("join is running");
        seen.push(line.clone());
        match line["event"].as_str() {
            Some("lagged") => lagged_at = Some(seen.len()),
            Some("snapshot") if lagged_at.is_some() => break line,
            _ => {}
        }
    };
    let lagged = &seen[lagged_at.unwrap() - 1];
    assert!(lagged["missed"].as_u64().unwrap() > 0, "{lagged}");
    assert!(snapshot["data"].is_object(), "{snapshot}");
    let in_snapshot = stated_online(&snapshot).unwrap().len();
    assert!(in_snapshot > 1, "the snapshot shows the invented peers");

    // The attacker leaves without a word; once the grace has passed, the
    // last word `join` says of who is online is just itself.
    drop(stream);
    let alone = vec![me.clone()];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.recv())
            .await
            .expect("join reports the attacker's inventions gone")
            .expect("join is running");
        seen.push(line.clone());
        if stated_online(&line) == Some(alone.clone()) {
            break;
        }
    }
    let settled_after = sent_at.elapsed();
    // Nothing later may contradict it (a lag then would print a snapshot).
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(1), lines.recv()).await {
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    let last = seen.iter().rev().find_map(stated_online);
    let lags = seen.iter().filter(|l| l["event"] == "lagged").count();
    eprintln!(
        "join --json: {total} invented ids; {} lines, {lags} lagged, {in_snapshot} online in the \
         first snapshot; alone again {settled_after:?} after the attack began",
        seen.len()
    );
    assert_eq!(last, Some(alone));
}
