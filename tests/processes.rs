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
