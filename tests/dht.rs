//! Peers that find each other on the HyperDHT by topic alone, as real
//! processes: a local JavaScript testnet on 127.0.0.1 (`interop/js/testnet.js`,
//! @hyperswarm/testnet from the lockfile), `hyper-presence join` with no
//! address but `--bootstrap`, and `interop/js/swarm-peer.js` (the unmodified
//! npm package `hyper-presence` 1.1.3 on hypercore 10 over hyperswarm 4.17).
//! No traffic leaves loopback. Skipped, with a line saying so, when
//! `interop/js/node_modules` is missing (`npm ci --prefix interop/js`).
//! Built only with the `dht` feature (default on).
#![cfg(feature = "dht")]

mod peers;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use hyper_presence::net::Identity;
use peers::{js_dir, Lines};
use serde_json::{json, Value};

/// The tests start a dozen processes each on a 2-core machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn have_js() -> bool {
    peers::have_js(
        &["hyperswarm", "@hyperswarm/testnet"],
        "the testnet and the JavaScript peer",
    )
}

/// A local HyperDHT testnet of three JavaScript nodes.
struct Testnet {
    child: Child,
    /// Bootstrap addresses: the second and third nodes (the first is
    /// ephemeral and answers a lookup from a client that knows only it with
    /// an error).
    bootstrap: Vec<String>,
}

impl Testnet {
    fn start() -> Testnet {
        let mut child = Command::new("node")
            .arg(js_dir().join("testnet.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs testnet.js");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).expect("testnet ready line");
        let nodes: Vec<String> = ready["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect();
        assert!(nodes.iter().all(|n| n.starts_with("127.0.0.1:")));
        Testnet {
            child,
            bootstrap: nodes[1..].to_vec(),
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rust,
    Js,
}

#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    seed: [u8; 32],
    data: Value,
    /// Fixed UDP port of a Rust peer's DHT node (0: any).
    dht_port: u16,
}

struct Peer {
    spec: Spec,
    stdin: ChildStdin,
}

struct Net {
    /// First, so that the peers stop before the testnet under them.
    lines: Lines,
    testnet: Testnet,
    /// The writer seed of the core: its public key is the topic key.
    writer: [u8; 32],
    key: String,
    peers: Vec<Peer>,
}

impl Net {
    fn new(name: &str) -> Net {
        let writer = [0xAB; 32];
        Net {
            testnet: Testnet::start(),
            writer,
            key: Identity::from_seed(writer).id().to_hex(),
            peers: Vec::new(),
            lines: Lines::new(&format!("dht-{name}")),
        }
    }

    fn start(&mut self, spec: Spec, slot: Option<usize>) -> usize {
        let index = slot.unwrap_or(self.peers.len());
        let mut cmd = match spec.kind {
            Kind::Rust => {
                let identity = self.lines.dir.join(format!("peer{index}.key"));
                std::fs::write(&identity, hex::encode(spec.seed)).unwrap();
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-presence"));
                cmd.env("RUST_LOG", "hyper_presence=info")
                    .args(["join", "--no-mdns", "--json", "--key", &self.key])
                    .arg("--identity")
                    .arg(identity)
                    .args(["--dht-bind", &format!("127.0.0.1:{}", spec.dht_port)]);
                for node in &self.testnet.bootstrap {
                    cmd.args(["--bootstrap", node]);
                }
                cmd
            }
            Kind::Js => {
                let mut cmd = Command::new("node");
                cmd.arg(js_dir().join("swarm-peer.js"))
                    .args(["--seed", &hex::encode(spec.seed)])
                    .args(["--writer-seed", &hex::encode(self.writer)]);
                for node in &self.testnet.bootstrap {
                    cmd.args(["--bootstrap", node]);
                }
                cmd
            }
        };
        cmd.args(["--data", &spec.data.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("peer starts");
        let stdin = child.stdin.take().unwrap();
        let label = format!("{:?}", spec.kind);
        let (index, life) = self.lines.attach(slot, child, label, spec.data.clone());
        self.lines.ready(index, life);
        let peer = Peer { spec, stdin };
        if slot.is_some() {
            self.peers[index] = peer;
        } else {
            self.peers.push(peer);
        }
        index
    }

    /// Waits, line by line, until `done` holds for the views; in a quiet
    /// spell the JavaScript peers are asked for their whole view.
    fn until(&mut self, what: &str, done: impl Fn(&Lines) -> bool) {
        let peers = &mut self.peers;
        self.lines
            .until(what, done, Duration::from_millis(500), || {
                for peer in peers.iter_mut().filter(|p| p.spec.kind == Kind::Js) {
                    let _ = writeln!(peer.stdin, "snapshot").and_then(|()| peer.stdin.flush());
                }
            });
    }

    fn kill(&mut self, index: usize) {
        self.lines.kill(index);
    }

    fn restart(&mut self, index: usize) {
        let spec = self.peers[index].spec.clone();
        let id = self.lines.ids[index].clone();
        self.start(spec, Some(index));
        assert_eq!(self.lines.ids[index], id, "a restarted peer keeps its id");
    }
}

fn spec(kind: Kind, n: u8) -> Spec {
    Spec {
        kind,
        seed: [n; 32],
        data: json!({"name": format!("{kind:?}{n}")}),
        dht_port: 0,
    }
}

#[test]
fn javascript_and_rust_peers_meet_by_topic_alone_and_survive_restarts() {
    if !have_js() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut net = Net::new("mixed");
    let rust: Vec<usize> = (1..=3)
        .map(|n| net.start(spec(Kind::Rust, n), None))
        .collect();
    // A hyperswarm client dials the announcements it finds: the JavaScript
    // peer joins last and dials ours (see docs/DISCOVERY.md).
    let js = net.start(spec(Kind::Js, 9), None);
    let all = [rust[0], rust[1], rust[2], js];
    net.until("everyone sees everyone", |n| n.agree(&all));

    // A killed Rust peer: everyone else drops it, and takes it back after a
    // restart (the JavaScript peer keeps its links to the other two: its
    // MTU probes no longer break them, see docs/DISCOVERY.md).
    let left = [rust[1], rust[2], js];
    net.kill(rust[0]);
    net.until("a killed Rust peer is gone", |n| n.agree(&left));
    net.restart(rust[0]);
    net.until("a restarted Rust peer is back", |n| n.agree(&all));

    // A killed JavaScript peer is dropped; restarted, it looks up again,
    // dials all three and everyone agrees, data included.
    net.kill(js);
    net.until("a killed JavaScript peer is gone", |n| n.agree(&rust));
    net.restart(js);
    net.until("a restarted JavaScript peer is back", |n| n.agree(&all));
    net.lines.assert_no_ghosts();
}

#[test]
fn rust_peers_meet_by_dht_alone() {
    if !have_js() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut net = Net::new("rust");
    let all: Vec<usize> = (1..=3)
        .map(|n| net.start(spec(Kind::Rust, n), None))
        .collect();
    net.until("three Rust peers meet", |n| n.agree(&all));
    net.lines.assert_no_ghosts();
}

#[test]
fn a_dht_request_that_panics_the_crate_leaves_the_node_online() {
    if !have_js() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let mut net = Net::new("panic");
    let port = peers::reserved_port();
    let a = net.start(
        Spec {
            dht_port: port,
            ..spec(Kind::Rust, 1)
        },
        None,
    );
    let b = net.start(spec(Kind::Rust, 2), None);
    net.until("two Rust peers meet", |n| n.agree(&[a, b]));
    let panicked = |n: &Lines| n.logs[a].iter().any(|l| l.contains("dht task panicked"));
    // IMMUTABLE_GET (9): hyperdht 0.1.1 has `todo!()` for it.
    for _ in 0..10 {
        let status = Command::new("node")
            .arg(js_dir().join("dht-poke.js"))
            .args(["--bootstrap", &net.testnet.bootstrap[0]])
            .args(["--to", &format!("127.0.0.1:{port}")])
            .args(["--command", "9"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        net.lines.drain();
        if panicked(&net.lines) {
            break;
        }
    }
    net.until("the DHT of a panics and is started again", |n| {
        panicked(n)
            && n.logs[a]
                .iter()
                .filter(|l| l.contains("dht started"))
                .count()
                >= 2
    });
    assert!(
        net.lines.agree(&[a, b]),
        "the node stayed online to its peer: {}",
        net.lines.explain()
    );
    assert!(
        net.lines.children[a].try_wait().unwrap().is_none(),
        "the process lives"
    );
    // The restarted DHT still finds and is found.
    let c = net.start(spec(Kind::Rust, 3), None);
    net.until("a newcomer meets both", |n| n.agree(&[a, b, c]));
    net.lines.assert_no_ghosts();
}
