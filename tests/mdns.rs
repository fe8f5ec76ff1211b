//! LAN discovery between real processes on two "hosts": two network
//! namespaces joined by a veth pair, each running `hyper-presence join
//! --topic T` with no address given. They must find each other by mDNS and
//! see each other's data; a third peer on another topic must stay apart; a
//! peer killed and replaced on one host is found again.
//! Needs root (CI runs as root); elsewhere the test says so and passes
//! without running. Namespaces are removed at the end, even on failure.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(20);

/// Two namespaces and the veth pair between them, removed when dropped.
struct Lan {
    names: [String; 2],
}

/// Runs `ip` with these steps; false (with a line on stderr) if one fails.
fn ip(steps: Vec<Vec<&str>>) -> bool {
    for step in steps {
        let ok = Command::new("ip")
            .args(&step)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "cannot set up network namespaces (`ip {}`): not root?",
                step.join(" ")
            );
            return false;
        }
    }
    true
}

impl Lan {
    /// Two hosts on one link.
    fn create() -> Option<Lan> {
        let tag = std::process::id() % 100_000;
        let names = [format!("hp-mdns-a{tag}"), format!("hp-mdns-b{tag}")];
        let lan = Lan { names };
        let [a, b] = &lan.names;
        let (va, vb) = (format!("hpa{tag}"), format!("hpb{tag}"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", a],
            vec!["link", "set", &vb, "netns", b],
            vec!["-n", a, "addr", "add", "10.77.0.1/24", "dev", &va],
            vec!["-n", b, "addr", "add", "10.77.0.2/24", "dev", &vb],
            vec!["-n", a, "link", "set", "lo", "up"],
            vec!["-n", b, "link", "set", "lo", "up"],
            vec!["-n", a, "link", "set", &va, "up"],
            vec!["-n", b, "link", "set", &vb, "up"],
        ];
        ip(steps).then_some(lan)
    }

    /// One host with no network but its loopback interface (the second
    /// name is an empty namespace, for symmetry of cleanup).
    fn offline() -> Option<Lan> {
        let tag = std::process::id() % 100_000;
        let names = [format!("hp-mdns-lo{tag}"), format!("hp-mdns-lo2{tag}")];
        let lan = Lan { names };
        let [a, b] = &lan.names;
        let steps = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec!["-n", a, "link", "set", "lo", "up"],
        ];
        ip(steps).then_some(lan)
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth pair, and so the pair.
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// A `join` process in a namespace; killed when dropped.
struct Peer {
    child: Child,
    id: String,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(netns: &str, topic: &str, name: &str, lines: &mpsc::Sender<(String, Value)>) -> Peer {
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, env!("CARGO_BIN_EXE_hyper-presence")])
        .args([
            "join",
            "--no-dht",
            "--json",
            "--ephemeral",
            "--topic",
            topic,
        ])
        .args(["--data", &format!("{{\"name\":\"{name}\"}}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = mpsc::channel();
    let lines = lines.clone();
    let name = name.to_owned();
    std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(value) = line.map(|l| serde_json::from_str::<Value>(&l)) else {
                break;
            };
            let Ok(value) = value else { continue };
            if value["event"] == "ready" {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(value["id"].as_str().unwrap_or_default().to_owned());
                }
            } else if lines.send((name.clone(), value)).is_err() {
                break;
            }
        }
    });
    let id = ready_rx.recv_timeout(PATIENCE).expect("peer reports ready");
    Peer { child, id }
}

#[test]
fn two_hosts_find_each_other_by_mdns_with_no_address_given() {
    let Some(lan) = Lan::create() else { return };
    let (tx, rx) = mpsc::channel();
    let began = Instant::now();
    let a = start(&lan.names[0], "mdns-test", "a", &tx);
    let b = start(&lan.names[1], "mdns-test", "b", &tx);
    // Another topic on the same LAN: found by nobody, finds nobody.
    let stranger = start(&lan.names[1], "another-topic", "stranger", &tx);

    let (mut a_sees_b, mut b_sees_a) = (false, false);
    let deadline = Instant::now() + PATIENCE;
    while !(a_sees_b && b_sees_a) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (who, event) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no agreement within {PATIENCE:?}"));
        let online = |e: &Value| -> Vec<String> {
            e["peers"]
                .as_array()
                .map(|p| {
                    p.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        if event["event"] == "online" {
            let peers = online(&event);
            assert!(!peers.contains(&stranger.id), "{who} sees the stranger");
            if who == "stranger" {
                assert_eq!(peers, vec![stranger.id.clone()], "the stranger sees others");
            }
        }
        if event["event"] == "peer-data" {
            match (who.as_str(), event["id"].as_str(), &event["data"]["name"]) {
                ("a", Some(p), n) if p == b.id && n == "b" => a_sees_b = true,
                ("b", Some(p), n) if p == a.id && n == "a" => b_sees_a = true,
                _ => {}
            }
        }
    }
    eprintln!(
        "mDNS across namespaces: both see each other's data {:?} after start",
        began.elapsed()
    );
}

#[test]
fn two_peers_on_a_host_with_only_loopback_find_each_other() {
    let Some(lan) = Lan::offline() else { return };
    let (tx, rx) = mpsc::channel();
    let a = start(&lan.names[0], "mdns-offline", "a", &tx);
    let b = start(&lan.names[0], "mdns-offline", "b", &tx);
    let deadline = Instant::now() + PATIENCE;
    let mut seen = (false, false);
    while seen != (true, true) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (who, event) = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no agreement within {PATIENCE:?}: {seen:?}"));
        if event["event"] == "peer-data" {
            seen.0 |= who == "a" && event["id"] == b.id.as_str();
            seen.1 |= who == "b" && event["id"] == a.id.as_str();
        }
    }
}
