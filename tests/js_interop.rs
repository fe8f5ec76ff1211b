//! Rust and JavaScript peers in one presence network, as real processes over
//! loopback TCP: `hyper-presence join` and `interop/js/peer.js` (the
//! unmodified npm package `hyper-presence` 1.1.3 on real hypercore 10.38.2
//! and 11.39.5). A JavaScript writer creates the core; everyone joins its
//! key. Skipped, with a line saying so, when `interop/js/node_modules` is
//! missing (`npm ci --prefix interop/js` installs it; CI does).

mod peers;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::time::Duration;

use peers::{js_dir, Lines};
use serde_json::{json, Value};

fn have_js() -> bool {
    peers::have_js(&["hypercore10", "hypercore11"], "the JavaScript peers")
}

/// Which implementation a peer runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rust,
    /// JavaScript on this hypercore major version.
    Js(u8),
}

/// How to (re)start one peer.
#[derive(Debug, Clone)]
struct Spec {
    kind: Kind,
    /// 32-byte identity seed.
    seed: [u8; 32],
    /// `Some` for the JavaScript writer of the core.
    writer_seed: Option<[u8; 32]>,
    port: u16,
    connect: Vec<u16>,
    data: Value,
}

struct Peer {
    spec: Spec,
    stdin: ChildStdin,
    key: String,
}

/// A set of peer processes and what each believes.
struct Net {
    key: Option<String>,
    peers: Vec<Peer>,
    lines: Lines,
}

impl Net {
    fn new(name: &str) -> Net {
        Net {
            key: None,
            peers: Vec::new(),
            lines: Lines::new(&format!("js-{name}")),
        }
    }

    /// Starts a peer in a new slot (or `slot` again after a kill) and waits
    /// for its ready line.
    fn start(&mut self, spec: Spec, slot: Option<usize>) -> usize {
        let index = slot.unwrap_or(self.peers.len());
        let mut cmd = match spec.kind {
            Kind::Rust => {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-presence"));
                let identity = self.lines.dir.join(format!("peer{index}.key"));
                if !identity.exists() {
                    std::fs::write(&identity, hex::encode(spec.seed)).unwrap();
                }
                cmd.args(["join", "--no-mdns", "--no-dht", "--json", "--key"])
                    .arg(
                        self.key
                            .as_deref()
                            .expect("a JavaScript writer starts first"),
                    )
                    .arg("--identity")
                    .arg(identity)
                    .args(["--listen", &format!("127.0.0.1:{}", spec.port)]);
                for port in &spec.connect {
                    cmd.args(["--connect", &format!("127.0.0.1:{port}")]);
                }
                cmd
            }
            Kind::Js(version) => {
                let mut cmd = Command::new("node");
                cmd.arg(js_dir().join("peer.js"))
                    .args(["--hypercore", &version.to_string()])
                    .args(["--seed", &hex::encode(spec.seed)])
                    .args(["--listen", &spec.port.to_string()]);
                match (spec.writer_seed, &self.key) {
                    (Some(writer), _) => cmd.args(["--writer-seed", &hex::encode(writer)]),
                    (None, Some(key)) => cmd.args(["--key", key]),
                    (None, None) => panic!("a JavaScript writer starts first"),
                };
                for port in &spec.connect {
                    cmd.args(["--connect", &format!("127.0.0.1:{port}")]);
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
        let ready = self.lines.ready(index, life);
        let key = ready["key"].as_str().map(str::to_owned);
        let port = match spec.kind {
            Kind::Rust => ready["listen"][0]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap(),
            Kind::Js(_) => ready["port"].as_u64().unwrap() as u16,
        };
        if self.key.is_none() {
            self.key = key.clone();
        }
        let spec = Spec { port, ..spec };
        let peer = Peer {
            spec,
            stdin,
            key: key.unwrap_or_default(),
        };
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
            .until(what, done, Duration::from_millis(300), || {
                for peer in peers.iter_mut() {
                    if matches!(peer.spec.kind, Kind::Js(_)) {
                        // A killed peer's pipe is closed: nothing to ask.
                        let _ = writeln!(peer.stdin, "snapshot").and_then(|()| peer.stdin.flush());
                    }
                }
            });
    }

    /// Changes one key of a peer's data. Keys are changed, never removed:
    /// the original merges received data key by key into what it had, so a
    /// removed key lives on at JavaScript peers (all-JavaScript networks
    /// too), and at our peers that learn the value only from their views.
    fn change(&mut self, index: usize, key: &str, value: Value) {
        let data = &mut self.lines.data[index];
        data[key] = value;
        writeln!(self.peers[index].stdin, "{data}").unwrap();
        self.peers[index].stdin.flush().unwrap();
    }

    fn kill(&mut self, index: usize) {
        self.lines.kill(index);
    }

    /// Starts the peer of `index` again, with its current data.
    fn restart(&mut self, index: usize) {
        let spec = Spec {
            data: self.lines.data[index].clone(),
            ..self.peers[index].spec.clone()
        };
        let id = self.lines.ids[index].clone();
        self.start(spec, Some(index));
        assert_eq!(self.lines.ids[index], id, "a restarted peer keeps its id");
    }
}

fn seed(n: u8) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[31] = n;
    s[0] = 0x5e;
    s
}

fn spec(kind: Kind, n: u8, connect: Vec<u16>) -> Spec {
    Spec {
        kind,
        seed: seed(n),
        writer_seed: None,
        port: 0,
        connect,
        data: json!({ "peer": n, "lang": if kind == Kind::Rust { "rust" } else { "js" } }),
    }
}

/// Starts a line of peers of the given kinds, each dialling the one before;
/// the first is a JavaScript writer of the core.
fn line(net: &mut Net, kinds: &[Kind], first_seed: u8) -> Vec<usize> {
    let mut slots = Vec::new();
    for (n, kind) in kinds.iter().enumerate() {
        let connect = slots
            .last()
            .map(|&s: &usize| vec![net.peers[s].spec.port])
            .unwrap_or_default();
        let mut s = spec(*kind, first_seed + n as u8, connect);
        if net.key.is_none() {
            assert!(
                matches!(kind, Kind::Js(_)),
                "the writer is a JavaScript peer"
            );
            s.writer_seed = Some(seed(200));
        }
        slots.push(net.start(s, None));
    }
    slots
}

fn lines_both_ways(version: u8) {
    if !have_js() {
        return;
    }
    let js = Kind::Js(version);
    // JS - Rust - JS: the JavaScript ends meet only through us.
    let mut net = Net::new(&format!("jrj{version}"));
    let all = line(&mut net, &[js, Kind::Rust, js], 1);
    net.until("JS-Rust-JS agree", |n| n.agree(&all));
    net.change(1, "changed", json!("by rust"));
    net.change(0, "changed", json!("by js"));
    net.until("data changes reach everyone", |n| n.agree(&all));
    drop(net);

    // Rust - JS - Rust: we meet only through a JavaScript relay.
    let mut net = Net::new(&format!("rjr{version}"));
    let writer = line(&mut net, &[js], 10)[0];
    let a = net.start(
        spec(Kind::Rust, 11, vec![net.peers[writer].spec.port]),
        None,
    );
    let b = net.start(
        spec(Kind::Rust, 12, vec![net.peers[writer].spec.port]),
        None,
    );
    let all = [writer, a, b];
    net.until("Rust-JS-Rust agree", |n| n.agree(&all));
    net.change(a, "lang", json!("rust, changed"));
    net.until("data through a JavaScript relay", |n| n.agree(&all));
}

#[test]
fn lines_of_rust_and_javascript_peers_agree_on_hypercore_10() {
    lines_both_ways(10);
}

#[test]
fn lines_of_rust_and_javascript_peers_agree_on_hypercore_11() {
    lines_both_ways(11);
}

/// Starts six peers in a ring, JavaScript and Rust by turns, seeded from
/// `first_seed` on, the first a JavaScript writer of a core seeded by
/// `writer`; returns once every view is right.
fn ring(net: &mut Net, js: Kind, first_seed: u8, writer: u8) -> Vec<usize> {
    let kinds = [js, Kind::Rust, js, Kind::Rust, js, Kind::Rust];
    // Ports chosen up front, so that the first can dial the last: both
    // sides redial until the other is up.
    let ports: Vec<u16> = (0..6).map(|_| peers::reserved_port()).collect();
    let mut all = Vec::new();
    for (n, kind) in kinds.iter().enumerate() {
        let mut s = spec(*kind, first_seed + n as u8, vec![ports[(n + 5) % 6]]);
        s.port = ports[n];
        if n == 0 {
            s.writer_seed = Some(seed(writer));
        }
        all.push(net.start(s, None));
    }
    net.until("the ring agrees", |n| n.agree(&all));
    all
}

/// A ring of six alternating JavaScript and Rust peers: agreement, data
/// from both sides, a JavaScript and a Rust peer killed (SIGKILL) and
/// restarted (twice, in both orders), strangers with another key; no id
/// other than the six ever appears anywhere.
fn ring_of_six(version: u8) {
    if !have_js() {
        return;
    }
    let js = Kind::Js(version);
    let mut net = Net::new(&format!("ring{version}"));
    let all = ring(&mut net, js, 20, 200);

    // Strangers: another core key, one of each kind, dialling into the ring.
    let mut strangers = Net::new(&format!("strangers{version}"));
    let sw = strangers.start(
        Spec {
            writer_seed: Some(seed(201)),
            ..spec(js, 40, vec![net.peers[1].spec.port])
        },
        None,
    );
    let sr = strangers.start(spec(Kind::Rust, 41, vec![net.peers[0].spec.port]), None);
    assert_ne!(strangers.peers[sw].key, net.peers[0].key);

    net.change(2, "n", json!(2));
    net.change(3, "n", json!(3));
    net.until("data from both sides", |n| n.agree(&all));

    // Kill a JavaScript peer and a Rust peer that are not neighbours: the
    // ring becomes two lines of two. Both come back, in either order: the
    // JavaScript peer first (its first packets, numbered as in its previous
    // life, are dropped as duplicates by the original), or the Rust peer
    // first, so that it joins behind JavaScript peers while the other is
    // away and must learn of its return through them.
    for (first, second) in [(2, 5), (5, 2)] {
        net.kill(2);
        net.kill(5);
        let (left, right) = ([0, 1], [3, 4]);
        net.until("the kills are noticed", |n| {
            n.agree(&left) && n.agree(&right)
        });
        net.restart(first);
        net.restart(second);
        net.until("the ring agrees again", |n| n.agree(&all));
    }

    net.lines.assert_no_ghosts();
    let six: BTreeSet<String> = net.lines.ids.iter().cloned().collect();
    for (i, stranger) in strangers.lines.ids.iter().enumerate() {
        assert!(!six.contains(stranger));
        assert!(
            strangers.lines.views[i].ever.is_disjoint(&six),
            "stranger {i} saw the ring: {:?}",
            strangers.lines.views[i].ever
        );
    }
    assert_eq!(strangers.peers[sr].spec.kind, Kind::Rust);
    drop(strangers);
}

#[test]
fn a_ring_of_six_alternating_peers_survives_kills_on_hypercore_10() {
    ring_of_six(10);
}

#[test]
fn a_ring_of_six_alternating_peers_survives_kills_on_hypercore_11() {
    ring_of_six(11);
}

#[test]
fn reserved_ports_are_distinct_and_never_ones_the_kernel_hands_out() {
    let ports: Vec<u16> = (0..20).map(|_| peers::reserved_port()).collect();
    let distinct: std::collections::BTreeSet<u16> = ports.iter().copied().collect();
    assert_eq!(distinct.len(), ports.len());
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    assert!(
        ports.iter().all(|&p| (20_000..ephemeral).contains(&p)),
        "{ports:?}"
    );
}

/// A Rust peer that comes back behind JavaScript peers while another peer
/// is still away: every peer that is up must agree that the absent peer
/// is gone, JavaScript peers included.
fn rejoin_while_another_is_away(version: u8) {
    if !have_js() {
        return;
    }
    let mut net = Net::new(&format!("away{version}"));
    let all = ring(&mut net, Kind::Js(version), 50, 202);
    net.kill(2);
    net.kill(5);
    net.until("the kills are noticed", |n| {
        n.agree(&[0, 1]) && n.agree(&[3, 4])
    });
    net.restart(5);
    net.until("the peers that are up agree without 2", |n| {
        n.agree(&[0, 1, 3, 4, 5])
    });
    net.restart(2);
    net.until("the ring agrees again", |n| n.agree(&all));
    net.lines.assert_no_ghosts();
}

#[test]
fn a_rust_peer_rejoining_while_another_is_away_leaves_no_ghost_on_hypercore_10() {
    rejoin_while_another_is_away(10);
}

#[test]
fn a_rust_peer_rejoining_while_another_is_away_leaves_no_ghost_on_hypercore_11() {
    rejoin_while_another_is_away(11);
}
