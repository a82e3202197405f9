//! Replies leave in one write, as PostgreSQL sends them.
//!
//! pgwire flushes after nearly every message it sends (ParseComplete,
//! BindComplete, CommandComplete, ...), so a prepared `SELECT 1` cost
//! three `send` system calls and as many wake-ups of the client. A client
//! waits only for ReadyForQuery, for what it asked with a Flush message,
//! or for a message that needs its answer (authentication, COPY, a
//! notification); errors and notices PostgreSQL sends at once (a client
//! that sent Parse and Flush waits for the error before it sends Sync).
//! PostgreSQL sends its output then, and so does this writer. Everything else is held until one of those comes, or until
//! enough has gathered to be worth sending (a large result streams).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes held before they are sent without waiting for a reason.
const HOLD_LIMIT: usize = 64 * 1024;

/// Message types a client does not wait for on their own: the parts of a
/// reply that a ReadyForQuery (or the client's Flush) always follows.
fn deferrable(kind: u8) -> bool {
    matches!(
        kind,
        b'1' // ParseComplete
            | b'2' // BindComplete
            | b'3' // CloseComplete
            | b'C' // CommandComplete
            | b'D' // DataRow
            | b'T' // RowDescription
            | b't' // ParameterDescription
            | b'n' // NoData
            | b's' // PortalSuspended
            | b'I' // EmptyQueryResponse
            | b'S' // ParameterStatus
            | b'd' // CopyData of COPY TO (no COPY BOTH here)
            | b'c' // CopyDone
    )
}

/// A writer that holds deferrable messages (see the module comment).
pub struct Coalesce<T> {
    inner: T,
    held: Vec<u8>,
    /// How much of `held` the socket has taken.
    sent: usize,
    /// A message that must go out now was written.
    urgent: bool,
    /// The client asked for everything so far (a Flush message).
    forced: bool,
    /// The first bytes of the message being written, while they are not
    /// all seen yet: its type and length.
    header: [u8; 5],
    header_len: usize,
    /// Bytes of the current message's body still to come.
    body_left: usize,
    /// Every flush sends (a replication connection: its stream is
    /// waited for as it comes).
    eager: bool,
}

impl<T> Coalesce<T> {
    pub fn new(inner: T) -> Self {
        Coalesce {
            inner,
            held: Vec::new(),
            sent: 0,
            urgent: false,
            forced: false,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
            eager: false,
        }
    }

    /// From now on every flush sends what was written.
    pub fn send_eagerly(&mut self) {
        self.eager = true;
    }

    #[cfg(test)]
    fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The next flush sends everything held (the client sent Flush).
    pub fn force_next_flush(&mut self) {
        self.forced = true;
    }

    /// Follows message boundaries in `bytes`, noting urgent messages.
    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.body_left -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (5 - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len < 5 {
                break;
            }
            self.header_len = 0;
            if !deferrable(self.header[0]) {
                self.urgent = true;
            }
            let length = u32::from_be_bytes(self.header[1..5].try_into().expect("four bytes"));
            self.body_left = (length as usize).saturating_sub(4);
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalesce<T> {
    /// Hands everything held to the socket.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalesce<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalesce<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() >= HOLD_LIMIT {
            ready!(this.poll_send_held(cx))?;
        }
        if this.held.is_empty() && buf.len() >= HOLD_LIMIT {
            // A large result: straight through, without a copy.
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
            this.scan(&buf[..n]);
            return Poll::Ready(Ok(n));
        }
        this.scan(buf);
        this.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !(this.urgent || this.forced || this.eager || this.held.len() >= HOLD_LIMIT) {
            return Poll::Ready(Ok(()));
        }
        ready!(this.poll_send_held(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.urgent = false;
        this.forced = false;
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A socket that records each write it is given.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<Vec<u8>>,
        flushes: usize,
    }

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.get_mut().writes.push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.get_mut().flushes += 1;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[tokio::test]
    async fn a_reply_goes_out_at_ready_for_query_in_one_write() {
        let mut w = Coalesce::new(Recorder::default());
        for m in [
            message(b'2', b""),
            message(b'D', b"\0\x01\0\0\0\x011"),
            message(b'C', b"SELECT 1\0"),
        ] {
            w.write_all(&m).await.unwrap();
            w.flush().await.unwrap();
        }
        assert!(w.get_ref().writes.is_empty(), "held until ReadyForQuery");
        w.write_all(&message(b'Z', b"I")).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 1);
        assert_eq!(w.get_ref().writes[0].len(), 5 + 12 + 14 + 6);
    }

    #[tokio::test]
    async fn a_flush_message_or_an_urgent_message_sends_at_once() {
        let mut w = Coalesce::new(Recorder::default());
        w.write_all(&message(b'1', b"")).await.unwrap();
        w.force_next_flush();
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 1);
        // A header split across writes is still read.
        let copy_in = message(b'G', b"\0\0\0");
        w.write_all(&copy_in[..2]).await.unwrap();
        w.write_all(&copy_in[2..]).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 2);
        // An error goes at once (after Parse and Flush, the client waits
        // for it before it sends Sync).
        w.write_all(&message(b'E', b"SERROR\0\0")).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 3);
        // Bodies are skipped: a 'Z' byte inside a row is no ReadyForQuery.
        w.write_all(&message(b'D', b"ZZZZZZZZ")).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 3);
        w.shutdown().await.unwrap();
        assert_eq!(w.get_ref().writes.len(), 4, "closing sends what is held");
    }

    #[tokio::test]
    async fn a_large_result_is_not_held() {
        let mut w = Coalesce::new(Recorder::default());
        let row = message(b'D', &[7; 1000]);
        for _ in 0..100 {
            w.write_all(&row).await.unwrap();
            w.flush().await.unwrap();
        }
        let sent: usize = w.get_ref().writes.iter().map(Vec::len).sum();
        assert!(sent >= 100 * row.len() - HOLD_LIMIT, "{sent} bytes sent");
    }
}
