//! One connection's task: the tokio glue around a [`Link`]. It reads the
//! socket into the link, hands the link's events to the node, writes what the
//! link produces through a writer task of its own (so a peer that stops
//! reading never stops us reading), and keeps the clocks: keep-alives when
//! we are idle, the silence timeout, the handshake deadline.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit};
use tokio::task::JoinHandle;
use tokio::time::{interval, Instant, MissedTickBehavior};

use super::identity::Identity;
use super::link::{Link, LinkError, LinkEvent, LinkSettings};
use crate::proto::PeerId;

/// The default [`Settings::outbox_packets`].
pub const OUTBOX: usize = 1024;

/// Packets taken from the outbox into one frame at most.
const BATCH: usize = 64;

/// What every connection of a node shares.
#[derive(Debug)]
pub struct Settings {
    /// Our identity: the Noise static key in both roles.
    pub identity: Identity,
    /// The topic's core key: only peers that know it get a channel.
    pub key: [u8; 32],
    /// Extension name of presence packets.
    pub extension: String,
    /// A connection on which no byte arrives for this long is closed.
    pub silence_timeout: Duration,
    /// We send a keep-alive after this long without writing.
    pub keep_alive: Duration,
    /// A connection whose handshake and channel are not done by then is
    /// closed.
    pub handshake_timeout: Duration,
    /// Largest frame accepted from a peer.
    pub max_frame: usize,
    /// A peer that leaves more than this many bytes unread in our write
    /// queue is cut off.
    pub max_queued_bytes: usize,
    /// Packets waiting for one connection between the engine and its
    /// writer. A peer that lets this many pile up is too slow to keep: its
    /// connection is closed, and the view exchange on reconnection makes
    /// up for what it missed.
    pub outbox_packets: usize,
}

/// What a connection tells the node.
pub trait Hub: Send + Sync + 'static {
    /// The peer proved it is `peer` and knows the topic; send its packets
    /// into `outbox`. `initiator` when we dialled.
    fn up(&self, conn: u64, peer: PeerId, initiator: bool, outbox: mpsc::Sender<Bytes>);
    /// A presence packet arrived on `conn`.
    fn packet(&self, conn: u64, packet: Bytes);
    /// `conn` ended; `goodbye` when the peer said it was leaving.
    fn down(&self, conn: u64, goodbye: bool);
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The peer closed the byte stream.
    Eof,
    /// Reading or writing failed (reset and the like).
    Io(String),
    /// The peer closed the presence channel: it is leaving.
    Goodbye,
    /// We were told to stop.
    Shutdown,
    /// Nothing arrived for the silence timeout.
    Silent,
    /// The handshake and channel were not done in time.
    Unproven,
    /// The peer left more than the byte bound unread.
    Slow,
    /// The transport failed: handshake, frame, decryption, channel.
    Protocol(LinkError),
    /// The node no longer wants this connection (its outbox overflowed).
    Dropped,
}

/// How a node stops, as its connections see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Running.
    No,
    /// Say goodbye, then close: peers announce our departure at once.
    Leave,
    /// Close without a word, as a crash would (for tests and the demo).
    Vanish,
}

/// How long a leaving connection waits for its goodbye to be written. Peers
/// that are leaving too may not read it; we do not wait on them longer.
const GOODBYE_FLUSH: Duration = Duration::from_millis(200);

/// Runs one connection to its end, and says how it ended and who was at the
/// other end (`None` when the peer never proved who it is). A change of
/// `stop` makes us close, saying goodbye first if asked to.
pub async fn run(
    stream: TcpStream,
    initiator: bool,
    conn: u64,
    settings: Arc<Settings>,
    hub: Arc<dyn Hub>,
    mut stop: watch::Receiver<Stop>,
    handshake_permit: Option<OwnedSemaphorePermit>,
) -> (Ending, Option<PeerId>) {
    // A connection accepted or dialled as the node stops would otherwise
    // miss the stop (a receiver subscribed after it sees no change) and
    // keep a stopped node linked.
    if *stop.borrow_and_update() != Stop::No {
        return (Ending::Shutdown, None);
    }
    let _ = stream.set_nodelay(true);
    let link_settings = LinkSettings {
        core_key: settings.key,
        extension: settings.extension.clone(),
        max_frame: settings.max_frame,
    };
    let link = match Link::new(initiator, &settings.identity, link_settings) {
        Ok(link) => link,
        Err(e) => return (Ending::Protocol(e), None),
    };
    let (read, write) = stream.into_split();
    let writer = Writer::spawn(write);
    let mut task = Task {
        conn,
        initiator,
        settings: &settings,
        hub: &hub,
        link,
        writer,
        up: None,
        handshake_permit,
    };
    let ending = task.drive(read, &mut stop).await;
    if ending == Ending::Shutdown && *stop.borrow() == Stop::Leave && task.link.is_ready() {
        task.link.goodbye();
        let _ = task.flush();
    }
    let up = task.up;
    task.writer.finish(GOODBYE_FLUSH).await;
    if up.is_some() {
        hub.down(conn, ending == Ending::Goodbye);
    }
    (ending, up)
}

struct Task<'a> {
    conn: u64,
    initiator: bool,
    settings: &'a Settings,
    hub: &'a Arc<dyn Hub>,
    link: Link,
    writer: Writer,
    /// The peer, once the node was told the connection is up.
    up: Option<PeerId>,
    /// Held while the handshake is under way (accepted connections only).
    handshake_permit: Option<OwnedSemaphorePermit>,
}

impl Task<'_> {
    async fn drive(
        &mut self,
        mut read: tokio::net::tcp::OwnedReadHalf,
        stop: &mut watch::Receiver<Stop>,
    ) -> Ending {
        let settings = self.settings;
        let (outbox_tx, mut outbox) = mpsc::channel::<Bytes>(settings.outbox_packets.max(1));
        let mut outbox_tx = Some(outbox_tx);
        let started = Instant::now();
        let mut last_heard = started;
        let check = [
            settings.keep_alive,
            settings.silence_timeout,
            settings.handshake_timeout,
        ]
        .into_iter()
        .min()
        .unwrap_or(Duration::from_secs(1))
            / 4;
        let mut clock = interval(check.clamp(Duration::from_millis(10), Duration::from_secs(1)));
        clock.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut buf = vec![0u8; 64 * 1024];
        let mut batch: Vec<Bytes> = Vec::with_capacity(BATCH);

        loop {
            if let Err(ending) = self.flush() {
                return ending;
            }
            tokio::select! {
                read = read.read(&mut buf) => match read {
                    Ok(0) => return Ending::Eof,
                    Ok(n) => {
                        // Every frame is a sign of life, keep-alives included.
                        last_heard = Instant::now();
                        if let Err(e) = self.link.receive(&buf[..n]) {
                            return Ending::Protocol(e);
                        }
                        while let Some(event) = self.link.poll_event() {
                            match event {
                                LinkEvent::Ready(peer) => {
                                    if let Some(tx) = outbox_tx.take() {
                                        self.handshake_permit = None;
                                        self.up = Some(peer);
                                        self.hub.up(self.conn, peer, self.initiator, tx);
                                    }
                                }
                                LinkEvent::Packet(packet) => {
                                    if self.up.is_some() {
                                        self.hub.packet(self.conn, packet);
                                    }
                                }
                                LinkEvent::Goodbye => return Ending::Goodbye,
                            }
                        }
                    }
                    Err(e) => return Ending::Io(e.to_string()),
                },
                first = outbox.recv(), if self.up.is_some() => {
                    let Some(first) = first else { return Ending::Dropped };
                    batch.push(first);
                    while batch.len() < BATCH {
                        match outbox.try_recv() {
                            Ok(packet) => batch.push(packet),
                            Err(_) => break,
                        }
                    }
                    let sent = self.link.send_packets(batch.iter().map(|p| &p[..]));
                    batch.clear();
                    if let Err(e) = sent {
                        return Ending::Protocol(e);
                    }
                }
                _ = clock.tick() => {
                    if self.up.is_none() && started.elapsed() > settings.handshake_timeout {
                        return Ending::Unproven;
                    }
                    if last_heard.elapsed() > settings.silence_timeout {
                        return Ending::Silent;
                    }
                    if self.writer.idle_for() >= settings.keep_alive {
                        self.link.keep_alive();
                    }
                }
                error = self.writer.failed() => return Ending::Io(error),
                _ = stop.changed() => return Ending::Shutdown,
            }
        }
    }

    /// Hands what the link produced to the writer; a peer that leaves too
    /// much unread is cut off.
    fn flush(&mut self) -> Result<(), Ending> {
        if let Some(bytes) = self.link.transmit() {
            self.writer.push(bytes);
        }
        if self.writer.queued() > self.settings.max_queued_bytes {
            tracing::debug!(
                conn = self.conn,
                queued = self.writer.queued(),
                "peer does not read; closing"
            );
            return Err(Ending::Slow);
        }
        Ok(())
    }
}

/// Writes a connection's bytes in a task of its own, counting what is
/// queued.
struct Writer {
    tx: Option<mpsc::UnboundedSender<Vec<u8>>>,
    queued: Arc<AtomicUsize>,
    /// When we last gave the socket something to write: keep-alives go
    /// out after a quiet spell of our own, as JavaScript's do.
    last_write: Instant,
    handle: JoinHandle<Result<(), String>>,
    done: bool,
}

impl Writer {
    fn spawn(mut write: OwnedWriteHalf) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let handle = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                let len = bytes.len();
                let result = write.write_all(&bytes).await;
                q.fetch_sub(len, Ordering::AcqRel);
                result.map_err(|e| e.to_string())?;
            }
            let _ = write.shutdown().await;
            Ok(())
        });
        Writer {
            tx: Some(tx),
            queued,
            last_write: Instant::now(),
            handle,
            done: false,
        }
    }

    fn push(&mut self, bytes: Vec<u8>) {
        if let Some(tx) = &self.tx {
            self.queued.fetch_add(bytes.len(), Ordering::AcqRel);
            // Only fails once the writer ended on an error, which
            // `failed` reports.
            let _ = tx.send(bytes);
            self.last_write = Instant::now();
        }
    }

    fn queued(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// How long since we last gave the socket something to write.
    fn idle_for(&self) -> Duration {
        self.last_write.elapsed()
    }

    /// Resolves when writing failed.
    async fn failed(&mut self) -> String {
        if self.done {
            return std::future::pending().await;
        }
        let result = (&mut self.handle).await;
        self.done = true;
        match result {
            Ok(Err(e)) => e,
            Ok(Ok(())) => "writer ended".into(),
            Err(e) => e.to_string(),
        }
    }

    /// Lets the writer finish what is queued, for at most `limit`, then
    /// stops it.
    async fn finish(mut self, limit: Duration) {
        self.tx = None;
        if !self.done && tokio::time::timeout(limit, &mut self.handle).await.is_err() {
            self.handle.abort();
        }
    }
}
