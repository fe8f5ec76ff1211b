//! Payload throughput of one presence link over loopback TCP: two tasks each
//! drive a [`Link`] (Noise handshake, secret stream, protomux, the
//! `hypercore/alpha` channel), one sends `--count` packets of `--size` bytes
//! as extension messages, the other counts them.
//!
//! The sender takes packets from a bounded outbox and puts up to 64 into one
//! `send_packets` call, as the connection task does. Times and CPU cover the
//! transfer only (from the first packet queued to the last one counted), not
//! the handshake; CPU is the whole process's (both ends), from getrusage.
//!
//! Run with `cargo run --release --example link_throughput -- --size 1024 --count 200000`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use hyper_presence::net::link::{Link, LinkEvent, LinkSettings};
use hyper_presence::net::transport::secret_stream::DEFAULT_MAX_FRAME;
use hyper_presence::net::{topic_key, Identity};

/// Packets waiting for the sending link, as `connection::OUTBOX`.
const OUTBOX: usize = 1024;

/// Command-line arguments of the example.
#[derive(Debug, Parser)]
struct Args {
    /// Packets to send.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Bytes in each packet.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Packets given to one `send_packets` call at most.
    #[arg(long, default_value_t = 64)]
    batch: usize,
}

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// User and system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage only writes into the struct we hand it.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn settings() -> LinkSettings {
    LinkSettings {
        core_key: topic_key("link throughput"),
        extension: "hyper-presence".into(),
        max_frame: DEFAULT_MAX_FRAME,
    }
}

/// Writes whatever the link has produced.
async fn flush(link: &mut Link, socket: &mut TcpStream) -> Result<(), Failure> {
    if let Some(bytes) = link.transmit() {
        socket.write_all(&bytes).await?;
    }
    Ok(())
}

/// Reads and feeds the link until its channel is open.
async fn open(link: &mut Link, socket: &mut TcpStream, buf: &mut [u8]) -> Result<(), Failure> {
    loop {
        flush(link, socket).await?;
        while let Some(event) = link.poll_event() {
            if let LinkEvent::Ready(_) = event {
                return flush(link, socket).await;
            }
        }
        let n = socket.read(buf).await?;
        if n == 0 {
            return Err("peer closed during the handshake".into());
        }
        link.receive(&buf[..n])?;
    }
}

/// The dialling side: opens the link, then sends everything the outbox
/// holds, in batches, until the outbox closes; then waits for the peer to
/// close.
async fn sender(
    mut socket: TcpStream,
    mut outbox: mpsc::Receiver<Bytes>,
    ready: tokio::sync::oneshot::Sender<()>,
    batch_max: usize,
) -> Result<(), Failure> {
    socket.set_nodelay(true)?;
    let mut link = Link::new(true, &Identity::generate()?, settings())?;
    let mut buf = vec![0u8; 64 * 1024];
    open(&mut link, &mut socket, &mut buf).await?;
    let _ = ready.send(());
    let mut batch: Vec<Bytes> = Vec::with_capacity(batch_max);
    while let Some(first) = outbox.recv().await {
        batch.push(first);
        while batch.len() < batch_max {
            match outbox.try_recv() {
                Ok(packet) => batch.push(packet),
                Err(_) => break,
            }
        }
        link.send_packets(batch.iter().map(|p| &p[..]))?;
        batch.clear();
        flush(&mut link, &mut socket).await?;
    }
    // The receiver closes once it has counted everything.
    while socket.read(&mut buf).await? != 0 {}
    Ok(())
}

/// The accepting side: opens the link, then counts packets and their bytes
/// until `count` have arrived.
async fn receiver(mut socket: TcpStream, count: u64) -> Result<(u64, u64), Failure> {
    socket.set_nodelay(true)?;
    let mut link = Link::new(false, &Identity::generate()?, settings())?;
    let mut buf = vec![0u8; 64 * 1024];
    open(&mut link, &mut socket, &mut buf).await?;
    let (mut packets, mut bytes) = (0u64, 0u64);
    loop {
        // Packets may have come in the same read as the channel's opening.
        while let Some(event) = link.poll_event() {
            match event {
                LinkEvent::Packet(p) => {
                    packets += 1;
                    bytes += p.len() as u64;
                }
                other => return Err(format!("unexpected {other:?}").into()),
            }
        }
        if packets >= count {
            return Ok((packets, bytes));
        }
        flush(&mut link, &mut socket).await?;
        let n = socket.read(&mut buf).await?;
        if n == 0 {
            return Err(format!("peer closed after {packets} packets").into());
        }
        link.receive(&buf[..n])?;
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let args = Args::parse();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let handshake_began = Instant::now();
    let (dialled, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (dialled, (accepted, _)) = (dialled?, accepted?);

    let (outbox_tx, outbox) = mpsc::channel::<Bytes>(OUTBOX);
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let sending = tokio::spawn(sender(dialled, outbox, ready_tx, args.batch.max(1)));
    let count = args.count;
    let receiving = tokio::spawn(receiver(accepted, count));
    ready
        .await
        .map_err(|_| "the sender failed to open its link")?;
    let handshake = handshake_began.elapsed();

    let payload = Bytes::from(vec![0x5au8; args.size]);
    let cpu_began = cpu_time();
    let began = Instant::now();
    let producing = tokio::spawn(async move {
        for _ in 0..count {
            if outbox_tx.send(payload.clone()).await.is_err() {
                break;
            }
        }
    });
    let (packets, bytes) = receiving.await??;
    let elapsed = began.elapsed();
    let cpu = cpu_time() - cpu_began;
    producing.await?;
    sending.await??;

    if packets != count || bytes != count * args.size as u64 {
        return Err(format!("counted {packets} packets and {bytes} bytes").into());
    }
    let secs = elapsed.as_secs_f64();
    println!(
        "new link: {count} packets of {} B in {secs:.3} s (handshake and channel open {:.1} ms): \
         {:.0} packets/s, {:.1} MB/s payload, {:.2} µs CPU per packet ({:.3} s CPU)",
        args.size,
        handshake.as_secs_f64() * 1e3,
        count as f64 / secs,
        bytes as f64 / secs / 1e6,
        cpu.as_secs_f64() * 1e6 / count as f64,
        cpu.as_secs_f64(),
    );
    Ok(())
}
