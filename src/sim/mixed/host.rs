//! The `node interop/js/mixed-host.js` process: JavaScript peers of a mixed
//! network, one command at a time over its stdin and stdout (the protocol is
//! in `interop/js/README.md`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::proto::PeerId;
use crate::sim::interop::{Harness, HarnessError, View};

/// Why the JavaScript host could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The harness is not installed, or `node` does not start.
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// Talking to the process failed (it died, most likely).
    #[error("mixed-host.js: {0}; stderr: {1}")]
    Io(std::io::Error, String),
    /// The process printed a line that is not part of its protocol.
    #[error("mixed-host.js printed {line:?}: {error}")]
    BadLine {
        /// The line.
        line: String,
        /// Why it does not parse.
        error: String,
    },
}

/// A packet a JavaScript instance put on one of its links.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The instance that sent it.
    pub index: usize,
    /// The peer at the other end of the link.
    pub to: PeerId,
    /// The flood packet's bytes.
    pub packet: Bytes,
}

/// Everything the host answered to one command.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// Packets sent while it ran, in order.
    pub sent: Vec<Sent>,
    /// When the host's earliest pending timer is due, on its clock.
    pub next_timer: Option<Duration>,
    /// Exceptions the package threw (or a command the host refused).
    pub errors: Vec<String>,
    /// For a snapshot: each live instance's index and view.
    pub views: Vec<(usize, View)>,
}

#[derive(Deserialize)]
struct SentLine {
    index: usize,
    to: String,
    packet: String,
}

#[derive(Deserialize)]
struct SnapshotView {
    index: usize,
    online: Vec<String>,
    data: std::collections::BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct Line {
    sent: Option<SentLine>,
    done: Option<Value>,
    #[serde(rename = "nextTimer")]
    next_timer: Option<f64>,
    #[serde(default)]
    errors: Vec<String>,
    #[serde(default)]
    views: Vec<SnapshotView>,
}

/// A running `mixed-host.js`; the process is killed when this is dropped.
#[derive(Debug)]
pub struct JsHost {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
}

/// Milliseconds as the host reads them, from a duration (microsecond
/// precision, which is the host clock's).
fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

impl JsHost {
    /// Starts `mixed-host.js` from the harness folder `interop/js` of this
    /// source tree.
    pub fn start() -> Result<Self, HostError> {
        let harness = Harness::in_source_tree();
        harness.check_installed()?;
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("interop/js/mixed-host.js");
        let mut child = Command::new("node")
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| HostError::Harness(HarnessError::Spawn(e)))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        // Drained on a thread so that a chatty stderr never blocks the host.
        let stderr = thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            buf
        });
        Ok(JsHost {
            child,
            stdin,
            stdout,
            stderr: Some(stderr),
        })
    }

    /// Creates (or, at an index already in use, restarts) instance `index`
    /// with `id` and `data`.
    pub fn create(&mut self, index: usize, id: PeerId, data: &Value) -> Result<Reply, HostError> {
        self.command(json!({"op": "create", "index": index, "id": id.to_hex(), "data": data}))
    }

    /// Instance `index` dies: it sends nothing from now on.
    pub fn destroy(&mut self, index: usize) -> Result<Reply, HostError> {
        self.command(json!({"op": "destroy", "index": index}))
    }

    /// Instance `index` gets a link to `peer`.
    pub fn connect(&mut self, index: usize, peer: PeerId) -> Result<Reply, HostError> {
        self.command(json!({"op": "connect", "index": index, "peer": peer.to_hex()}))
    }

    /// Instance `index` loses its link to `peer`.
    pub fn disconnect(&mut self, index: usize, peer: PeerId) -> Result<Reply, HostError> {
        self.command(json!({"op": "disconnect", "index": index, "peer": peer.to_hex()}))
    }

    /// A flood packet from `from` arrives at instance `index`.
    pub fn deliver(
        &mut self,
        index: usize,
        from: PeerId,
        packet: &[u8],
    ) -> Result<Reply, HostError> {
        self.command(json!({
            "op": "deliver", "index": index, "from": from.to_hex(), "packet": hex::encode(packet),
        }))
    }

    /// Instance `index` calls `setData(data)`.
    pub fn set_data(&mut self, index: usize, data: &Value) -> Result<Reply, HostError> {
        self.command(json!({"op": "setData", "index": index, "data": data}))
    }

    /// Moves the host's fake clock on by `by`, firing the timers due.
    pub fn advance(&mut self, by: Duration) -> Result<Reply, HostError> {
        self.command(json!({"op": "advance", "ms": millis(by)}))
    }

    /// Every live instance's view.
    pub fn snapshot(&mut self) -> Result<Reply, HostError> {
        self.command(json!({"op": "snapshot"}))
    }

    fn io_error(&mut self, e: std::io::Error) -> HostError {
        // The process is gone or going: whatever it said on stderr is why.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let stderr = self
            .stderr
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default();
        HostError::Io(e, String::from_utf8_lossy(&stderr).trim().to_owned())
    }

    fn command(&mut self, command: Value) -> Result<Reply, HostError> {
        let mut text = command.to_string();
        text.push('\n');
        if let Err(e) = self
            .stdin
            .write_all(text.as_bytes())
            .and_then(|()| self.stdin.flush())
        {
            return Err(self.io_error(e));
        }
        let mut reply = Reply::default();
        let mut line = String::new();
        loop {
            line.clear();
            match self.stdout.read_line(&mut line) {
                Ok(0) => {
                    let eof = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    return Err(self.io_error(eof));
                }
                Ok(_) => {}
                Err(e) => return Err(self.io_error(e)),
            }
            let bad = |error: String| HostError::BadLine {
                line: line.trim().to_owned(),
                error,
            };
            let parsed: Line = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            if let Some(sent) = parsed.sent {
                let to = sent.to.parse().map_err(|_| bad("bad id".into()))?;
                let packet = hex::decode(&sent.packet).map_err(|e| bad(e.to_string()))?;
                reply.sent.push(Sent {
                    index: sent.index,
                    to,
                    packet: Bytes::from(packet),
                });
                continue;
            }
            if parsed.done.is_none() {
                return Err(bad("neither sent nor done".into()));
            }
            reply.next_timer = parsed
                .next_timer
                .map(|ms| Duration::from_micros((ms * 1000.0).round().max(0.0) as u64));
            reply.errors = parsed.errors;
            reply.views = parsed
                .views
                .into_iter()
                .map(|v| {
                    let view = View {
                        online: v.online,
                        data: v.data,
                    };
                    (v.index, view)
                })
                .collect();
            return Ok(reply);
        }
    }
}

impl Drop for JsHost {
    fn drop(&mut self) {
        // Our own child, by its handle: it would otherwise outlive a failed
        // test waiting for commands that never come.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
