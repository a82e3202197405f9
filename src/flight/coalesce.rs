//! Fewer, larger writes for the Flight endpoint's connections.
//!
//! HTTP/2 (h2) writes each DATA frame with its own `writev` and flushes
//! after it; a client's frames are 16 KiB (gRPC clients announce no
//! larger), so a fetch of a GB made 64 thousand system calls, each waking
//! the client. [`Coalescing`] gathers the frames written in one turn of
//! the connection's task and writes them together: a flush right after a
//! whole frame keeps it and asks for the task to run again; a flush with
//! nothing new since the last one, or after a smaller write (the end of a
//! message, a control frame), sends everything, as does a full buffer.
//! h2 flushes each time its task runs, so nothing waits on a timer: data
//! is held at most until the task runs again.
//!
//! Only plaintext connections gather: a TLS handshake may write a large
//! record, flush once and wait for the client, which would then wait for
//! it. (Over TLS each record is a write of its own, as before.)

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

/// Writes larger than this go to the socket; smaller ones are gathered.
const CAPACITY: usize = 256 << 10;

/// A flush right after a write this large (a whole 16 KiB DATA frame and
/// its 9-byte head) may be held.
const WHOLE_FRAME: usize = 16 << 10;

pub struct Coalescing<T> {
    inner: T,
    buffer: Vec<u8>,
    /// The part of `buffer` already written.
    written: usize,
    /// Whether a whole frame was the last thing written since the last
    /// flush.
    held: bool,
    gather: bool,
}

impl<T> Coalescing<T> {
    /// `gather`: false passes every write and flush straight through.
    pub fn new(inner: T, gather: bool) -> Self {
        Coalescing {
            inner,
            buffer: Vec::new(),
            written: 0,
            held: false,
            gather,
        }
    }
}

impl<T: AsyncWrite + Unpin> Coalescing<T> {
    /// Writes out everything gathered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buffer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffer[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buffer.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    fn poll_gather(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len: usize = bufs.iter().map(|b| b.len()).sum();
        if !self.gather {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        if self.buffer.len() + len > CAPACITY {
            ready!(self.poll_drain(cx))?;
            if len > CAPACITY {
                return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
            }
        }
        if self.buffer.capacity() == 0 {
            self.buffer.reserve(CAPACITY);
        }
        for b in bufs {
            self.buffer.extend_from_slice(b);
        }
        self.held = len >= WHOLE_FRAME;
        Poll::Ready(Ok(len))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Coalescing<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_gather(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().poll_gather(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.gather || self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.held && this.buffer.len() < CAPACITY {
            // More frames may follow in this turn: keep them, and have the
            // task run again, when a flush with nothing new sends them.
            this.held = false;
            cx.waker().wake_by_ref();
            return Poll::Ready(Ok(()));
        }
        this.held = false;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Coalescing<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: Connected> Connected for Coalescing<T> {
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_gather_until_a_flush_with_nothing_new() {
        let (client, mut server) = tokio::io::duplex(4 << 20);
        let mut out = Coalescing::new(client, true);
        let frame = vec![7u8; 16 << 10];
        out.write_all(&frame).await.unwrap();
        out.flush().await.unwrap();
        out.write_all(&frame).await.unwrap();
        out.flush().await.unwrap();
        // Both frames are held: nothing reached the other end yet.
        let mut probe = [0u8; 1];
        let read = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            server.read(&mut probe),
        )
        .await;
        assert!(read.is_err(), "nothing is written before the second flush");
        // The flush with nothing new sends both at once.
        out.flush().await.unwrap();
        let mut got = vec![0u8; 2 * frame.len()];
        server.read_exact(&mut got).await.unwrap();
        assert!(got.iter().all(|&b| b == 7));
    }

    #[tokio::test]
    async fn a_small_write_and_a_plain_connection_are_sent_at_flush() {
        for gather in [true, false] {
            let (client, mut server) = tokio::io::duplex(4 << 20);
            let mut out = Coalescing::new(client, gather);
            out.write_all(&[1, 2, 3]).await.unwrap();
            out.flush().await.unwrap();
            let mut got = [0u8; 3];
            server.read_exact(&mut got).await.unwrap();
            assert_eq!(got, [1, 2, 3]);
            if !gather {
                out.write_all(&vec![4u8; 16 << 10]).await.unwrap();
                out.flush().await.unwrap();
                let mut got = vec![0u8; 16 << 10];
                server.read_exact(&mut got).await.unwrap();
            }
        }
    }

    #[tokio::test]
    async fn a_full_buffer_and_a_large_write_go_out_at_once() {
        let (client, mut server) = tokio::io::duplex(4 << 20);
        let mut out = Coalescing::new(client, true);
        let big = vec![1u8; CAPACITY + 10];
        out.write_all(&big).await.unwrap();
        let mut got = vec![0u8; big.len()];
        server.read_exact(&mut got).await.unwrap();
        let frame = vec![2u8; 100 << 10];
        for _ in 0..3 {
            out.write_all(&frame).await.unwrap();
        }
        // The third write did not fit: the first two went out before it.
        let mut got = vec![0u8; 2 * frame.len()];
        server.read_exact(&mut got).await.unwrap();
        out.shutdown().await.unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest.len(), frame.len());
    }
}
