//! Frames on a TCP stream (uint24 little-endian length prefixes, as
//! hypercore's secret stream uses), shaped for `hypercore_handshake`'s cipher.
//!
//! We do not use `uint24le_framing` 0.2: it turns end-of-stream into an
//! endless "pending" (a closed peer is never noticed) and freezes on a frame
//! over 64 KiB. And the cipher above it turns EOF and reset into "pending"
//! too, and panics (`todo!`) on any other read error. So this adapter never
//! hands the cipher an error: the first error or end of stream is recorded
//! in a [`Closed`] signal the connection task watches, and the cipher only
//! ever sees "pending" after that.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Largest frame accepted from a peer. Ours stay under 64 KiB; the bound only
/// stops a peer from making us buffer without limit.
pub const MAX_FRAME: usize = 4 << 20;

/// Why a connection's byte stream ended, once it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed the stream.
    Eof,
    /// Reading or writing failed (reset, timeout, oversized frame, …).
    Error(String),
}

/// Resolves when the framed stream under a connection has ended.
#[derive(Debug, Clone)]
pub struct Closed(watch::Receiver<Option<CloseReason>>);

impl Closed {
    /// Waits for the end of the stream and says why it ended.
    pub async fn wait(&mut self) -> CloseReason {
        loop {
            if let Some(reason) = self.0.borrow().clone() {
                return reason;
            }
            if self.0.changed().await.is_err() {
                return CloseReason::Error("framing dropped".into());
            }
        }
    }
}

/// uint24-LE framed TCP that reports its end on the side instead of to the
/// cipher.
pub struct Frames {
    inner: Framed<TcpStream, LengthDelimitedCodec>,
    closed: Arc<watch::Sender<Option<CloseReason>>>,
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").finish_non_exhaustive()
    }
}

impl Frames {
    /// Frames `stream` and returns the signal that tells when it ends.
    pub fn new(stream: TcpStream) -> (Self, Closed) {
        let codec = LengthDelimitedCodec::builder()
            .length_field_length(3)
            .little_endian()
            .max_frame_length(MAX_FRAME)
            .new_codec();
        let (tx, rx) = watch::channel(None);
        (
            Frames {
                inner: Framed::new(stream, codec),
                closed: Arc::new(tx),
            },
            Closed(rx),
        )
    }

    fn close(&self, reason: CloseReason) {
        self.closed.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        });
    }

    fn is_closed(&self) -> bool {
        self.closed.borrow().is_some()
    }
}

impl Stream for Frames {
    type Item = Result<Vec<u8>, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.is_closed() {
            return Poll::Pending;
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame.to_vec()))),
            Poll::Ready(Some(Err(e))) => {
                self.close(CloseReason::Error(e.to_string()));
                Poll::Pending
            }
            Poll::Ready(None) => {
                self.close(CloseReason::Eof);
                Poll::Pending
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Sink<Vec<u8>> for Frames {
    type Error = io::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        let result = Sink::<Bytes>::poll_ready(Pin::new(&mut self.inner), cx);
        self.note(result)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Vec<u8>) -> Result<(), io::Error> {
        let result = Sink::<Bytes>::start_send(Pin::new(&mut self.inner), Bytes::from(item));
        if let Err(e) = &result {
            self.close(CloseReason::Error(e.to_string()));
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        let result = Sink::<Bytes>::poll_flush(Pin::new(&mut self.inner), cx);
        self.note(result)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        let result = Sink::<Bytes>::poll_close(Pin::new(&mut self.inner), cx);
        self.note(result)
    }
}

impl Frames {
    /// Write errors reach the cipher as errors (it handles those without
    /// panicking) and also end the connection.
    fn note(&self, result: Poll<Result<(), io::Error>>) -> Poll<Result<(), io::Error>> {
        if let Poll::Ready(Err(e)) = &result {
            self.close(CloseReason::Error(e.to_string()));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    /// `uint24le_framing` 0.2 froze on frames over 64 KiB.
    #[tokio::test]
    async fn frames_larger_than_64_kib_pass() {
        let (a, b) = pair().await;
        let (mut a, _) = Frames::new(a);
        let (mut b, _) = Frames::new(b);
        let big = vec![7u8; 200 * 1024];
        a.send(big.clone()).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), b.next())
            .await
            .unwrap();
        assert_eq!(got.unwrap().unwrap(), big);
    }

    /// The framing and the cipher above it never reported a closed peer.
    #[tokio::test]
    async fn a_closed_peer_is_reported_as_eof() {
        let (a, b) = pair().await;
        let (mut frames, mut closed) = Frames::new(a);
        drop(b);
        // Reading is what discovers the end; the stream then only pends.
        let poll = tokio::time::timeout(Duration::from_millis(200), frames.next()).await;
        assert!(poll.is_err(), "the cipher must never see the error itself");
        let reason = tokio::time::timeout(Duration::from_secs(5), closed.wait())
            .await
            .unwrap();
        assert_eq!(reason, CloseReason::Eof);
    }

    #[tokio::test]
    async fn oversized_length_prefixes_end_the_connection() {
        let (a, mut b) = pair().await;
        let (mut frames, mut closed) = Frames::new(a);
        // 0xffffff bytes announced: over MAX_FRAME.
        b.write_all(&[0xff, 0xff, 0xff, 1, 2, 3]).await.unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(200), frames.next()).await;
        let reason = tokio::time::timeout(Duration::from_secs(5), closed.wait())
            .await
            .unwrap();
        assert!(matches!(reason, CloseReason::Error(_)), "{reason:?}");
    }
}
