//! What the tests that run Rust and JavaScript peers as processes share:
//! each process's JSON lines on one channel, what each peer believes from
//! them, and the truth (ids and data) to check it against. The tests say
//! how to start their peers (`tests/js_interop.rs` over TCP addresses,
//! `tests/dht.rs` through a DHT testnet).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long any one wait may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// Where the JavaScript peers and their lockfile live.
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/js")
}

/// Whether every package in `needed` is installed; says how to install
/// them when not (the tests that need them then pass without running).
pub fn have_js(needed: &[&str], what: &str) -> bool {
    let ok = needed
        .iter()
        .all(|p| js_dir().join("node_modules").join(p).exists());
    if !ok {
        eprintln!("skipped: run `npm ci --prefix interop/js` for {what}");
    }
    ok
}

/// A loopback port, free for both TCP and UDP when chosen, for a peer that
/// must listen where others were told to dial before it started.
///
/// Taken below Linux's ephemeral range (32768 and up by default): a port
/// the kernel handed out for `bind(0)` and then freed could be handed out
/// again, or taken as the local end of any outgoing connection, before the
/// peer binds it. The kernel never picks these on its own, and this
/// process never gives the same one twice.
pub fn reserved_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Apart per process, so that test binaries run one after another (or
    // at once, by hand) start from different places.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 100) as u16 * 100;
    loop {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(offset < 10_000, "no free port below the ephemeral range");
        let port = 20_000 + (start + offset) % 10_000;
        let tcp = std::net::TcpListener::bind(("127.0.0.1", port));
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port));
        if tcp.is_ok() && udp.is_ok() {
            return port;
        }
    }
}

/// What one peer believes, from its JSON lines.
#[derive(Debug, Default, Clone)]
pub struct View {
    pub online: BTreeSet<String>,
    pub data: BTreeMap<String, Value>,
    /// Every id that ever appeared in this peer's online lists.
    pub ever: BTreeSet<String>,
}

impl View {
    /// Takes in one line of a peer's output.
    fn apply(&mut self, value: &Value) {
        let ids = |v: &Value| -> BTreeSet<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        match value["event"].as_str() {
            // Rust: {"event":"online","peers":[..]}; JavaScript: "online":[..].
            Some("online") => {
                let list = if value.get("peers").is_some() {
                    ids(&value["peers"])
                } else {
                    ids(&value["online"])
                };
                self.ever.extend(list.iter().cloned());
                self.online = list;
            }
            // JavaScript peers emit no event for data they take from a
            // view answer: their snapshot is the whole truth.
            Some("snapshot") => {
                let list = ids(&value["online"]);
                self.ever.extend(list.iter().cloned());
                self.online = list;
                if let Some(data) = value["data"].as_object() {
                    self.data = data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                }
            }
            Some("peer-data") | Some("data") => {
                if let Some(id) = value["id"].as_str() {
                    self.data.insert(id.to_owned(), value["data"].clone());
                }
            }
            _ => {}
        }
    }
}

/// A line of output: (slot, life, JSON value).
type Line = (usize, u64, Value);

/// The peers' lines, by slot: what each believes, and what is true of it
/// (its id and its current data). A slot keeps its place across kills and
/// restarts; lines of an earlier life are ignored.
pub struct Lines {
    /// A scratch directory for the peers' files, removed with the lines
    /// unless the test fails: then it keeps every line each peer wrote
    /// (`slot<i>-life<l>.log`), and the failure says where.
    pub dir: PathBuf,
    pub views: Vec<View>,
    /// Lines a peer wrote to stderr (when it was started with them piped).
    pub logs: Vec<Vec<String>>,
    /// Each slot's id, once its ready line came.
    pub ids: Vec<String>,
    /// Each slot's data as last set.
    pub data: Vec<Value>,
    /// What kind of peer each slot is, for messages.
    pub labels: Vec<String>,
    /// Each slot's process in its current life.
    pub children: Vec<Child>,
    lives: Vec<u64>,
    tx: mpsc::Sender<Line>,
    rx: mpsc::Receiver<Line>,
}

impl Lines {
    /// No peers yet, and an empty scratch directory named for `name`.
    pub fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, rx) = mpsc::channel();
        Lines {
            dir,
            views: Vec::new(),
            logs: Vec::new(),
            ids: Vec::new(),
            data: Vec::new(),
            labels: Vec::new(),
            children: Vec::new(),
            lives: Vec::new(),
            tx,
            rx,
        }
    }

    /// A new life for `slot` (a new slot at the end when `None`) in
    /// `child`, which the slot now owns (killed with it): its index, life,
    /// and the child's stdout and stderr (when piped) read into the
    /// channel. `data` is what the peer starts with.
    pub fn attach(
        &mut self,
        slot: Option<usize>,
        mut child: Child,
        label: String,
        data: Value,
    ) -> (usize, u64) {
        let index = slot.unwrap_or(self.lives.len());
        if slot.is_none() {
            self.lives.push(0);
            self.views.push(View::default());
            self.logs.push(Vec::new());
            self.ids.push(String::new());
            self.data.push(Value::Null);
            self.labels.push(String::new());
        }
        self.lives[index] += 1;
        self.labels[index] = label;
        self.data[index] = data;
        let life = self.lives[index];
        let log_path = self.dir.join(format!("slot{index}-life{life}.log"));
        let forward = |reader: Box<dyn Read + Send>, tx: mpsc::Sender<Line>, err: bool| {
            // Both streams append to one file: whole lines, each with its stream.
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .ok();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines() {
                    let Ok(line) = line else { break };
                    if let Some(file) = log.as_mut() {
                        let stream = if err { "err" } else { "out" };
                        let ms = std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_millis());
                        let _ = writeln!(file, "{ms} {stream} {line}");
                    }
                    let value = if err {
                        json!({"event": "stderr", "line": line})
                    } else {
                        match serde_json::from_str::<Value>(&line) {
                            Ok(v) => v,
                            Err(_) => continue,
                        }
                    };
                    if tx.send((index, life, value)).is_err() {
                        break;
                    }
                }
            });
        };
        if let Some(out) = child.stdout.take() {
            forward(Box::new(out), self.tx.clone(), false);
        }
        if let Some(err) = child.stderr.take() {
            forward(Box::new(err), self.tx.clone(), true);
        }
        if slot.is_none() {
            self.children.push(child);
        } else {
            self.kill(index);
            self.children[index] = child;
        }
        (index, life)
    }

    /// Kills the process of `index` (SIGKILL) and waits for it.
    pub fn kill(&mut self, index: usize) {
        let _ = self.children[index].kill();
        let _ = self.children[index].wait();
    }

    /// Waits for the ready line of `index` in `life` (taking in the other
    /// lines meanwhile) and returns it; the slot's view starts empty, but
    /// for the ids it ever saw.
    pub fn ready(&mut self, index: usize, life: u64) -> Value {
        let deadline = Instant::now() + PATIENCE;
        let ready = loop {
            let (i, l, value) = self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .expect("peer reports ready");
            if i == index && l == life && value["event"] == "ready" {
                break value;
            }
            self.apply(i, l, value);
        };
        self.ids[index] = ready["id"].as_str().unwrap().to_owned();
        let ever = std::mem::take(&mut self.views[index].ever);
        self.views[index] = View {
            ever,
            ..View::default()
        };
        ready
    }

    fn apply(&mut self, index: usize, life: u64, value: Value) {
        if life != self.lives[index] {
            return;
        }
        if value["event"] == "stderr" {
            if let Some(line) = value["line"].as_str() {
                self.logs[index].push(line.to_owned());
            }
            return;
        }
        self.views[index].apply(&value);
    }

    /// Takes in every line that has already come.
    #[allow(dead_code)] // each test file uses its part of the harness
    pub fn drain(&mut self) {
        while let Ok((i, l, v)) = self.rx.try_recv() {
            self.apply(i, l, v);
        }
    }

    /// Waits, line by line, until `done` holds; `quiet` runs after each
    /// spell of `quiet_after` without a line (to ask the peers for their
    /// whole view). Fails after [`PATIENCE`], saying what each believes.
    pub fn until(
        &mut self,
        what: &str,
        done: impl Fn(&Lines) -> bool,
        quiet_after: Duration,
        mut quiet: impl FnMut(),
    ) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("{what}: not within {PATIENCE:?}; {}", self.explain());
            }
            match self.rx.recv_timeout(left.min(quiet_after)) {
                Ok((i, l, value)) => self.apply(i, l, value),
                Err(_) => quiet(),
            }
        }
    }

    /// Whether every peer in `members` sees exactly `members` online, each
    /// with its current data.
    pub fn agree(&self, members: &[usize]) -> bool {
        let want: BTreeSet<String> = members.iter().map(|&i| self.ids[i].clone()).collect();
        members.iter().all(|&i| {
            let view = &self.views[i];
            view.online == want
                && members
                    .iter()
                    .all(|&j| j == i || view.data.get(&self.ids[j]) == Some(&self.data[j]))
        })
    }

    /// What each peer believes that is wrong, and its last lines of log.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        for (i, view) in self.views.iter().enumerate() {
            let short = |id: &String| id.chars().take(8).collect::<String>();
            let online: Vec<String> = view.online.iter().map(short).collect();
            out += &format!(
                "\npeer {i} {} ({}) online {online:?}",
                short(&self.ids[i]),
                self.labels[i]
            );
            for (j, id) in self.ids.iter().enumerate() {
                let seen = view.data.get(id);
                if j != i && seen != Some(&self.data[j]) {
                    out += &format!("\n  sees {j}'s data {seen:?}, want {}", self.data[j]);
                }
            }
            for line in self.logs[i].iter().rev().take(8).rev() {
                out += &format!("\n    {line}");
            }
        }
        out
    }

    /// No view ever listed an id that is not one of the peers'.
    pub fn assert_no_ghosts(&self) {
        let real: BTreeSet<String> = self.ids.iter().cloned().collect();
        for (i, view) in self.views.iter().enumerate() {
            let ghosts: Vec<&String> = view.ever.difference(&real).collect();
            assert!(
                ghosts.is_empty(),
                "peer {i} ({}) listed ids of nobody: {ghosts:?}",
                self.labels[i]
            );
        }
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        for index in 0..self.children.len() {
            self.kill(index);
        }
        if std::thread::panicking() {
            eprintln!("the peers' lines are kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
