//! Real processes over real loopback TCP: five `hyper-presence join`
//! commands in a line; the middle one is killed with SIGKILL, and both
//! halves must notice; it restarts with the same identity and address, and
//! everyone must agree again.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(30);

struct Peer {
    child: Child,
    id: String,
    listen: String,
}

/// Starts one peer and waits for its `ready` line; its later JSON lines go
/// to `lines` tagged with `index`.
fn start(
    index: usize,
    identity: &PathBuf,
    listen: &str,
    connect: Option<&str>,
    lines: &mpsc::Sender<(usize, Value)>,
) -> Peer {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hyper-presence"));
    cmd.args([
        "join",
        "--no-mdns",
        "--no-dht",
        "--topic",
        "processes-test",
        "--json",
        "--listen",
        listen,
    ])
    .arg("--identity")
    .arg(identity)
    .args(["--data", &format!("{{\"peer\":{index}}}")])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null());
    if let Some(addr) = connect {
        cmd.args(["--connect", addr]);
    }
    let mut child = cmd.spawn().expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = mpsc::channel();
    let lines = lines.clone();
    std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Ok(value) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if value["event"] == "ready" {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(value);
                }
            } else if lines.send((index, value)).is_err() {
                break;
            }
        }
    });
    let ready = ready_rx.recv_timeout(PATIENCE).expect("peer reports ready");
    Peer {
        child,
        id: ready["id"].as_str().unwrap().to_owned(),
        listen: ready["listen"][0].as_str().unwrap().to_owned(),
    }
}

/// Waits until every listed peer's latest `online` event names exactly `want[i]`.
fn until_online(
    lines: &mpsc::Receiver<(usize, Value)>,
    online: &mut [BTreeSet<String>],
    want: &[(usize, BTreeSet<String>)],
    what: &str,
) {
    let deadline = Instant::now() + PATIENCE;
    while !want.iter().all(|(i, set)| online[*i] == *set) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, event) = lines
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}: not within {PATIENCE:?}; online now {online:?}"));
        if event["event"] == "online" {
            online[i] = event["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_owned())
                .collect();
        }
    }
}

#[test]
fn a_killed_middle_peer_splits_the_line_and_its_restart_joins_it_again() {
    let dir = std::env::temp_dir().join(format!("hp-processes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let identity = |i: usize| dir.join(format!("peer{i}.key"));
    let (tx, rx) = mpsc::channel();
    let mut peers: Vec<Peer> = Vec::new();
    for i in 0..5 {
        let connect = peers.last().map(|p: &Peer| p.listen.clone());
        peers.push(start(
            i,
            &identity(i),
            "127.0.0.1:0",
            connect.as_deref(),
            &tx,
        ));
    }
    let ids: Vec<String> = peers.iter().map(|p| p.id.clone()).collect();
    let set = |members: &[usize]| -> BTreeSet<String> {
        members.iter().map(|i| ids[*i].clone()).collect()
    };
    let mut online = vec![BTreeSet::new(); 5];
    let all = set(&[0, 1, 2, 3, 4]);
    until_online(
        &rx,
        &mut online,
        &(0..5).map(|i| (i, all.clone())).collect::<Vec<_>>(),
        "all five agree",
    );

    // SIGKILL: no goodbye, no FIN handshake of ours; the OS closes the sockets.
    peers[2].child.kill().unwrap();
    peers[2].child.wait().unwrap();
    let left = set(&[0, 1]);
    let right = set(&[3, 4]);
    until_online(
        &rx,
        &mut online,
        &[(0, left.clone()), (1, left), (3, right.clone()), (4, right)],
        "both halves notice the kill",
    );

    // Same identity, same address: peer 3 redials it, it dials peer 1.
    let listen = peers[2].listen.clone();
    let connect = peers[1].listen.clone();
    peers[2] = start(2, &identity(2), &listen, Some(&connect), &tx);
    assert_eq!(peers[2].id, ids[2], "the identity file keeps the id");
    until_online(
        &rx,
        &mut online,
        &(0..5).map(|i| (i, all.clone())).collect::<Vec<_>>(),
        "all five agree again",
    );

    for peer in &mut peers {
        let _ = peer.child.kill();
        let _ = peer.child.wait();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Ctrl-C ends `join` at once, even when every neighbour is leaving at the
/// same moment (shutdown must not wait on peers that no longer read). Once
/// this took a second SIGINT in a third of the runs; here a line of three
/// is interrupted all together, round after round.
#[test]
fn sigint_to_every_peer_of_a_line_at_once_ends_them_all_promptly() {
    let dir = std::env::temp_dir().join(format!("hp-sigint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut slowest = Duration::ZERO;
    for round in 0..6 {
        let (tx, rx) = mpsc::channel();
        let mut peers: Vec<Peer> = Vec::new();
        for i in 0..3 {
            let connect = peers.last().map(|p: &Peer| p.listen.clone());
            let identity = dir.join(format!("r{round}p{i}.key"));
            peers.push(start(i, &identity, "127.0.0.1:0", connect.as_deref(), &tx));
        }
        let all: BTreeSet<String> = peers.iter().map(|p| p.id.clone()).collect();
        let mut online = vec![BTreeSet::new(); 3];
        until_online(
            &rx,
            &mut online,
            &(0..3).map(|i| (i, all.clone())).collect::<Vec<_>>(),
            "the line agrees",
        );
        let pids: Vec<u32> = peers.iter().map(|p| p.child.id()).collect();
        assert!(
            send_signal(&pids, "INT"),
            "SIGINT sent to all three at once"
        );
        let sent = Instant::now();
        for (i, peer) in peers.iter_mut().enumerate() {
            let status = loop {
                if let Some(status) = peer.child.try_wait().unwrap() {
                    break status;
                }
                if sent.elapsed() > Duration::from_secs(5) {
                    let _ = peer.child.kill();
                    panic!("round {round}: peer {i} still running 5 s after SIGINT");
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(
                status.success(),
                "round {round}: peer {i} exited with {status}"
            );
        }
        slowest = slowest.max(sent.elapsed());
    }
    eprintln!("slowest round ended {slowest:?} after SIGINT");
    // Shutdown waits at most a second for goodbyes; with slack for a busy
    // machine, never the second SIGINT it once took.
    assert!(slowest < Duration::from_secs(3), "took {slowest:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Sends `signal` (a name such as `INT`) to every pid in one `kill(1)`
/// call: the crate forbids unsafe code, and libc's `kill` is unsafe.
fn send_signal(pids: &[u32], signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .args(pids.iter().map(u32::to_string))
        .status()
        .expect("kill runs")
        .success()
}
