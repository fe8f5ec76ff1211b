//! `hyper-presence join`: be a peer, and watch who is online.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::broadcast::error::RecvError;

#[cfg(feature = "dht")]
use hyper_presence::net::discovery::dht::DhtOptions;
use hyper_presence::net::{Identity, Node};
use hyper_presence::proto::{Event, PeerId};

/// Arguments of `join`.
#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Topic name; everyone using the same name meets (the key is derived from it).
    #[arg(long, required_unless_present = "key", conflicts_with = "key")]
    topic: Option<String>,
    /// Topic key as 64 hex digits: a hypercore's public key (`core.key` in
    /// JavaScript) to join the presence of that core's peers.
    #[arg(long, value_parser = parse_key)]
    key: Option<[u8; 32]>,
    /// Address to listen on (repeatable), e.g. 127.0.0.1:7000.
    #[arg(long)]
    listen: Vec<SocketAddr>,
    /// Address of a peer to dial, and redial after loss (repeatable).
    #[arg(long)]
    connect: Vec<SocketAddr>,
    /// The data to advertise, as JSON.
    #[arg(long, default_value = "{}", value_parser = parse_json)]
    data: Value,
    /// Print one JSON event per line instead of the live view.
    #[arg(long)]
    json: bool,
    /// Key file of this peer's identity (created on first use, mode 0600).
    /// Default: $XDG_CONFIG_HOME/hyper-presence/identity or ~/.config/hyper-presence/identity.
    #[arg(long, conflicts_with = "ephemeral")]
    identity: Option<PathBuf>,
    /// Use a fresh identity that is not saved.
    #[arg(long)]
    ephemeral: bool,
    /// Do not look for peers of the topic on the local network (mDNS). With
    /// mDNS on and no --listen, we listen on 0.0.0.0 at a free port.
    #[arg(long)]
    no_mdns: bool,
    /// Least milliseconds between two `online` events (0: one for every
    /// change, as the original). Each lists every online peer: without
    /// it, a peer joining thousands emits such a list for every packet
    /// that brings peers online.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    online_debounce: u64,
    /// Extension name presence packets travel under.
    #[arg(long, default_value = hyper_presence::proto::DEFAULT_EXTENSION)]
    extension: String,
    /// HyperDHT bootstrap node HOST:PORT (repeatable). Default: the public
    /// HyperDHT nodes.
    #[cfg(feature = "dht")]
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_dht")]
    bootstrap: Vec<String>,
    /// Do not announce or look up the topic on the HyperDHT (a build
    /// without the `dht` feature never does).
    #[arg(long)]
    no_dht: bool,
    /// UDP address the DHT binds (IPv4).
    #[cfg(feature = "dht")]
    #[arg(long, default_value = "0.0.0.0:0", conflicts_with = "no_dht")]
    dht_bind: SocketAddr,
}

fn unix_signal(kind: SignalKind) -> Result<Signal, String> {
    signal(kind).map_err(|e| format!("cannot listen for signals: {e}"))
}

fn parse_key(s: &str) -> Result<[u8; 32], String> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(s, &mut key).map_err(|_| "a key is 64 hex digits".to_string())?;
    Ok(key)
}

/// Peer data is a JSON object: the JavaScript original throws on anything
/// else it receives (its graph library only takes objects as node data).
fn parse_json(s: &str) -> Result<Value, String> {
    match serde_json::from_str(s) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(_) => Err("peer data must be a JSON object, e.g. {\"name\":\"ada\"}".into()),
        Err(e) => Err(format!("not JSON: {e}")),
    }
}

pub fn run(args: JoinArgs) -> Result<ExitCode, String> {
    let identity = if args.ephemeral {
        Identity::generate().map_err(|e| e.to_string())?
    } else {
        let path = match &args.identity {
            Some(p) => p.clone(),
            None => Identity::default_path()
                .ok_or("no home directory for the identity file; use --identity or --ephemeral")?,
        };
        Identity::load_or_create(&path).map_err(|e| e.to_string())?
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let result = runtime.block_on(join(args, identity));
    // The blocking thread reading stdin would otherwise keep the process
    // alive until the next line of input.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    result
}

async fn join(args: JoinArgs, identity: Identity) -> Result<ExitCode, String> {
    let mut builder = Node::builder()
        .identity(identity)
        .data(args.data.clone())
        .extension(&args.extension)
        .online_debounce(std::time::Duration::from_millis(args.online_debounce));
    builder = match (&args.topic, args.key) {
        (Some(name), _) => builder.topic(name),
        (None, Some(key)) => builder.key(key),
        (None, None) => return Err("give --topic or --key".into()),
    };
    for addr in &args.listen {
        builder = builder.listen(*addr);
    }
    if !args.no_mdns {
        builder = builder.mdns(true);
        if args.listen.is_empty() {
            builder = builder.listen(SocketAddr::from(([0, 0, 0, 0], 0)));
        }
    }
    for addr in &args.connect {
        builder = builder.connect(*addr);
    }
    #[cfg(not(feature = "dht"))]
    let _ = args.no_dht;
    #[cfg(feature = "dht")]
    if !args.no_dht {
        let mut options = DhtOptions {
            bind: args.dht_bind,
            ..DhtOptions::default()
        };
        for node in &args.bootstrap {
            let found = tokio::net::lookup_host(node.as_str())
                .await
                .map_err(|e| format!("--bootstrap {node}: {e}"))?;
            options.bootstrap.extend(found.filter(SocketAddr::is_ipv4));
        }
        if !args.bootstrap.is_empty() && options.bootstrap.is_empty() {
            return Err("--bootstrap: no IPv4 address (the DHT is IPv4 only)".into());
        }
        builder = builder.dht_options(options);
    }
    // One listener for the whole run: a fresh `ctrl_c()` per loop turn would
    // miss a signal that arrives while an event is being printed.
    let mut interrupt = unix_signal(SignalKind::interrupt())?;
    let mut terminate = unix_signal(SignalKind::terminate())?;
    let node = builder.spawn().await.map_err(|e| e.to_string())?;
    let mut events = node.subscribe();
    let mut view = View::new(args.json, std::io::stdout().is_terminal());
    view.ready(&node);
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
            event = events.recv() => match event {
                Ok(event) => view.event(&node, &event),
                Err(RecvError::Lagged(missed)) => view.lagged(&node, missed),
                Err(RecvError::Closed) => break,
            },
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => match parse_json(&line) {
                    Ok(data) => match node.set_data(data) {
                        Ok(()) => view.redraw(&node),
                        Err(e) => eprintln!("hyper-presence: {e}"),
                    },
                    Err(e) => eprintln!("hyper-presence: stdin line ignored: {e}"),
                },
                // End of input: keep running until Ctrl-C.
                Ok(None) | Err(_) => stdin_open = false,
            },
        }
    }
    node.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// What the terminal shows: a table redrawn in place, or JSON lines.
struct View {
    json: bool,
    terminal: bool,
    since: HashMap<PeerId, Instant>,
}

impl View {
    fn new(json: bool, terminal: bool) -> Self {
        View {
            json,
            terminal,
            since: HashMap::new(),
        }
    }

    fn ready(&mut self, node: &Node) {
        if self.json {
            line(json!({
                "event": "ready",
                "id": node.id(),
                "listen": node.listen_addrs().iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            }));
        } else {
            self.redraw(node);
        }
    }

    fn event(&mut self, node: &Node, event: &Event<Value>) {
        if self.json {
            line(event_json(event));
        } else if matches!(event, Event::Online(_) | Event::PeerData { .. }) {
            self.redraw(node);
        }
    }

    /// Events were dropped because we fell behind: the live view is
    /// redrawn from the node; JSON output says how many were missed and
    /// prints the whole current state, so its last line is always true.
    fn lagged(&mut self, node: &Node, missed: u64) {
        if !self.json {
            return self.redraw(node);
        }
        line(json!({"event": "lagged", "missed": missed, "time": unix_ms()}));
        let snapshot = node.snapshot();
        let online: Vec<PeerId> = snapshot.iter().map(|(id, _)| *id).collect();
        let data: serde_json::Map<String, Value> = snapshot
            .into_iter()
            .filter_map(|(id, data)| Some((id.to_string(), data?)))
            .collect();
        line(json!({"event": "snapshot", "online": online, "data": data, "time": unix_ms()}));
    }

    fn redraw(&mut self, node: &Node) {
        if self.json {
            return;
        }
        let online = node.online();
        let now = Instant::now();
        self.since.retain(|id, _| online.contains(id));
        let mut out = String::new();
        if self.terminal {
            out.push_str("\x1b[2J\x1b[H");
        }
        let listen: Vec<String> = node.listen_addrs().iter().map(|a| a.to_string()).collect();
        out.push_str(&format!(
            "hyper-presence: we are {} listening on {}; {} online (Ctrl-C leaves)\n",
            node.id().short(),
            if listen.is_empty() {
                "nothing".to_string()
            } else {
                listen.join(", ")
            },
            online.len()
        ));
        out.push_str(&format!("{:<10} {:>9}  {}\n", "peer", "online", "data"));
        for id in &online {
            let since = *self.since.entry(*id).or_insert(now);
            let data = node
                .peer_data(id)
                .map_or("?".to_string(), |d| d.to_string());
            let me = if *id == node.id() { " (us)" } else { "" };
            out.push_str(&format!(
                "{:<10} {:>8}s  {data}{me}\n",
                id.short(),
                now.duration_since(since).as_secs()
            ));
        }
        if !self.terminal {
            out.push('\n');
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(out.as_bytes());
        let _ = stdout.flush();
    }
}

fn line(value: Value) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}");
    let _ = stdout.flush();
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An event as one JSON object, named as the original names its events.
pub fn event_json(event: &Event<Value>) -> Value {
    let mut v = match event {
        Event::Bootstrapped => json!({"event": "bootstrapped"}),
        Event::Online(list) => json!({"event": "online", "peers": list}),
        Event::PeerData { id, data } => json!({"event": "peer-data", "id": id, "data": data}),
        Event::PeerAdd(id) => json!({"event": "peer-add", "id": id}),
        Event::PeerRemove(id) => json!({"event": "peer-remove", "id": id}),
        Event::PeerAddSeen { from, to } => {
            json!({"event": "peer-add-seen", "from": from, "to": to})
        }
        Event::PeerRemoveSeen { from, to } => {
            json!({"event": "peer-remove-seen", "from": from, "to": to})
        }
        Event::Malformed { from, error } => {
            json!({"event": "malformed", "from": from, "error": error.to_string()})
        }
        Event::BadPeerData { id, error } => {
            json!({"event": "bad-peer-data", "id": id, "error": error.to_string()})
        }
        Event::ViewFull { from, new_nodes } => {
            json!({"event": "view-full", "from": from, "new-nodes": new_nodes})
        }
        Event::BadSignature { from, origin } => {
            json!({"event": "bad-signature", "from": from, "origin": origin})
        }
    };
    v["time"] = json!(unix_ms());
    v
}
