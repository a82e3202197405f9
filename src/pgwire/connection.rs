//! One client connection from accept to close: TLS negotiation, then the
//! message loop. pgwire decodes messages and dispatches them to our
//! handlers; this loop owns what pgwire leaves to the server: a message
//! larger than the limit or malformed ends the connection with a FATAL
//! error, a FATAL error really closes it, a client that goes away stops
//! its running statement, and an idle transaction can time out.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::panic::AssertUnwindSafe;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, PgWireConnectionState, PgWireServerHandlers};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::response::NotificationResponse;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message, MaybeTls};
use pgwire::tokio::TlsAcceptor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::coalesce::Coalesce;
use super::handler::ConnectionHandlers;

/// How long a client may take from connecting to being logged in
/// (PostgreSQL's authentication_timeout).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a running statement checks that its client is still there.
const CLIENT_CHECK_INTERVAL: Duration = Duration::from_millis(250);

/// Serves one accepted socket until the client leaves or breaks the
/// protocol.
pub async fn serve_connection(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    handlers: ConnectionHandlers,
    max_message_size: usize,
) -> io::Result<()> {
    let fd = tcp.as_raw_fd();
    let startup_deadline = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_deadline);
    let negotiated = tokio::select! {
        _ = &mut startup_deadline => return Ok(()),
        negotiated = negotiate_tls(tcp, tls) => negotiated?,
    };
    // A client that asked for TLS by direct negotiation when we have none.
    let Some(socket) = negotiated else {
        return Ok(());
    };
    let mut socket = guard_frames(socket, max_message_size);

    let startup = handlers.startup_handler();
    let simple = handlers.simple_query_handler();
    let extended = handlers.extended_query_handler();
    let copy = handlers.copy_handler();
    let cancel = handlers.cancel_handler();
    // Messages decoded so far, counted as the frame guard counts them.
    let mut decoded: u64 = 0;
    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let idle_timeout = if logging_in {
            None
        } else {
            handlers.idle_in_transaction_timeout().await
        };
        // Notifications go out between transactions, as in PostgreSQL
        // (not in the middle of a COPY).
        let deliver = matches!(socket.state(), PgWireConnectionState::ReadyForQuery)
            && !handlers.in_block().await;
        let next = tokio::select! {
            _ = &mut startup_deadline, if logging_in => {
                let error = fatal("08006", "timeout expired while logging in");
                return end_with(&mut socket, error).await;
            }
            _ = handlers.terminated() => {
                return end_with(&mut socket, terminated()).await;
            }
            notification = handlers.notification(), if deliver => {
                let message = NotificationResponse::new(
                    notification.pid,
                    notification.channel,
                    notification.payload,
                );
                socket
                    .send(PgWireBackendMessage::NotificationResponse(message))
                    .await?;
                continue;
            }
            _ = sleep_or_forever(idle_timeout) => {
                let error = fatal(
                    "25P03",
                    "terminating connection due to idle-in-transaction timeout",
                );
                return end_with(&mut socket, error).await;
            }
            // pgwire's decoders panic on some malformed messages: that
            // ends this connection, with an error, and nothing else.
            next = AssertUnwindSafe(socket.next()).catch_unwind() => match next {
                Ok(next) => next,
                Err(_) => {
                    let error = fatal("08P01", "invalid frontend message: malformed contents");
                    return end_with(&mut socket, error).await;
                }
            },
        };
        let message = match next {
            None => return Ok(()),
            Some(Ok(message)) => {
                decoded += 1;
                message
            }
            Some(Err(e)) => {
                let guard = socket.get_ref();
                let error = match guard.oversized {
                    Some(len) if len < 4 => fatal("08P01", &format!("invalid message length {len}")),
                    Some(len) => fatal(
                        "08P01",
                        &format!(
                            "message of {len} bytes exceeds the maximum message size of {max_message_size} bytes"
                        ),
                    ),
                    None if guard.malformed => fatal(
                        "08P01",
                        "invalid message format: a string does not end where its message ends",
                    ),
                    None => protocol_violation(e),
                };
                return end_with(&mut socket, error).await;
            }
        };
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        if handlers.is_replication() {
            socket.get_mut().inner.send_eagerly();
            let flow = match message {
                PgWireFrontendMessage::Query(query) => {
                    super::replication::command(&mut socket, &handlers, &query.query).await?
                }
                _ => {
                    let error = fatal(
                        "08P01",
                        "a replication connection takes replication commands as simple queries only",
                    );
                    return end_with(&mut socket, error).await;
                }
            };
            match flow {
                super::replication::Flow::Continue => continue,
                super::replication::Flow::Close => {
                    let _ = socket.close().await;
                    return Ok(());
                }
            }
        }
        if invalid_utf8(&mut socket, decoded, &message) {
            handlers.note_failure().await;
            let error = ErrorInfo::new(
                "ERROR".into(),
                "22021".into(),
                "invalid byte sequence for encoding \"UTF8\"".into(),
            );
            let is_extended = message.is_extended_query();
            process_error(
                &mut socket,
                PgWireError::UserError(Box::new(error)),
                is_extended,
            )
            .await?;
            continue;
        }
        let is_extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        let is_flush = matches!(message, PgWireFrontendMessage::Flush(_));
        let outcome = {
            let work = process_message(
                message,
                &mut socket,
                startup.clone(),
                simple.clone(),
                extended.clone(),
                copy.clone(),
                cancel.clone(),
            );
            tokio::select! {
                outcome = AssertUnwindSafe(work).catch_unwind() => match outcome {
                    Ok(outcome) => outcome,
                    Err(_) if logging_in => {
                        let error = fatal("08P01", "invalid authentication message");
                        return end_with(&mut socket, error).await;
                    }
                    Err(_) => {
                        tracing::error!("a statement panicked; closing its connection");
                        let error = fatal("XX000", "internal error: the statement failed unexpectedly; the connection is closed");
                        return end_with(&mut socket, error).await;
                    }
                },
                _ = handlers.terminated() => {
                    return end_with(&mut socket, terminated()).await;
                }
                // Dropping the statement's future stops its work, as a
                // CancelRequest or statement_timeout does.
                _ = client_gone(fd) => {
                    tracing::debug!("client went away during a statement; cancelled it");
                    return Ok(());
                }
            }
        };
        if is_cancel {
            return Ok(());
        }
        if is_flush {
            // Everything so far, whatever pgwire did with the message
            // (it skips it after an error, until Sync).
            socket.get_mut().inner.force_next_flush();
            socket.flush().await?;
        }
        if let Err(e) = outcome {
            let mut info = ErrorInfo::from(e);
            // Any error before the login completes ends the connection:
            // pgwire would otherwise mark it ready for queries.
            if logging_in {
                info.severity = "FATAL".into();
                info.severity_nonlocalized = Some("FATAL".into());
            }
            // A FATAL error ends the connection, with no ReadyForQuery
            // after it (pgwire would send one, and go on reading; a login
            // that failed must never reach the query handlers).
            if info.is_fatal() {
                return end_with(&mut socket, info).await;
            }
            process_error(
                &mut socket,
                PgWireError::UserError(Box::new(info)),
                is_extended,
            )
            .await?;
        }
    }
}

type Socket<S> =
    Framed<FrameGuard<Coalesce<MaybeTls>>, pgwire::tokio::server::PgWireMessageServerCodec<S>>;

/// Puts the frame guard under the negotiated stream; bytes the negotiation
/// already read are checked first.
fn guard_frames<S>(
    socket: Framed<MaybeTls, pgwire::tokio::server::PgWireMessageServerCodec<S>>,
    max_message_size: usize,
) -> Socket<S> {
    let old = socket.into_parts();
    let mut guard = FrameGuard::new(Coalesce::new(old.io), max_message_size);
    guard.inspect(&old.read_buf);
    let mut parts = FramedParts::new(guard, old.codec);
    parts.read_buf = old.read_buf;
    parts.write_buf = old.write_buf;
    Framed::from_parts(parts)
}

/// Whether `message`, the `number`th, is a Query or Parse whose SQL was not
/// valid UTF-8 on the wire (pgwire has replaced the bad bytes with U+FFFD).
fn invalid_utf8<S>(socket: &mut Socket<S>, number: u64, message: &PgWireFrontendMessage) -> bool {
    let queue = &mut socket.get_mut().invalid_utf8;
    while queue.front().is_some_and(|&n| n < number) {
        queue.pop_front();
    }
    if queue.front() != Some(&number) {
        return false;
    }
    queue.pop_front();
    match message {
        PgWireFrontendMessage::Query(q) => q.query.contains('\u{FFFD}'),
        PgWireFrontendMessage::Parse(p) => p.query.contains('\u{FFFD}'),
        _ => false,
    }
}

fn fatal(code: &str, message: &str) -> ErrorInfo {
    ErrorInfo::new("FATAL".into(), code.into(), message.into())
}

/// pg_terminate_backend ended this session.
fn terminated() -> ErrorInfo {
    fatal(
        "57P01",
        "terminating connection due to administrator command",
    )
}

fn protocol_violation(e: PgWireError) -> ErrorInfo {
    let detail = match e {
        PgWireError::IoError(e) => format!("could not read the message: {e}"),
        other => other.to_string(),
    };
    fatal("08P01", &format!("invalid frontend message: {detail}"))
}

/// Sends a FATAL error, if the socket still takes it, and closes.
async fn end_with<S>(socket: &mut Socket<S>, error: ErrorInfo) -> io::Result<()> {
    tracing::debug!("closing the connection: {}", error.message);
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(error.into()))
        .await;
    let _ = socket.close().await;
    Ok(())
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// Completes when the peer has closed or reset the connection. Checks the
/// socket without reading from it, so pipelined messages stay queued.
async fn client_gone(fd: RawFd) {
    loop {
        tokio::time::sleep(CLIENT_CHECK_INTERVAL).await;
        if peer_closed(fd) {
            return;
        }
    }
}

fn peer_closed(fd: RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLRDHUP,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout; `fd` stays open while the
    // connection's statement runs, since the socket owns it.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLRDHUP | libc::POLLHUP | libc::POLLERR) != 0
}

/// Follows message boundaries in the bytes a client sends and fails the
/// read when a message declares a length over the limit (or under the
/// minimum), before any of it is buffered.
pub struct FrameGuard<T> {
    inner: T,
    max: usize,
    /// The start-up packet has no type byte; every later message has one.
    typed: bool,
    header: [u8; 5],
    header_len: usize,
    /// Body bytes of the current message still to come.
    body_left: usize,
    /// The type byte of the current message.
    kind: u8,
    /// Body bytes of the current message seen so far.
    body_seen: usize,
    /// Whether a NUL came before the last byte of a one-string message.
    early_nul: bool,
    /// The declared length of the message that broke the limit.
    pub oversized: Option<usize>,
    /// A message whose one string is not NUL-terminated at its end
    /// (pgwire would read the string on into the next message).
    pub malformed: bool,
    /// Messages whose headers were read (the start-up packet is the first).
    messages: u64,
    /// SQL text (of a Query, or a Parse up to its statement's NUL) read so
    /// far is valid UTF-8, save a sequence cut between two reads (`carry`).
    text: Utf8Check,
    /// Numbers (counted as `messages` counts) of the Query and Parse
    /// messages whose SQL is not valid UTF-8: pgwire decodes it lossily,
    /// PostgreSQL refuses it with 22021.
    pub invalid_utf8: std::collections::VecDeque<u64>,
}

/// UTF-8 validation of a string that arrives in pieces.
#[derive(Default)]
struct Utf8Check {
    /// Whether the current message's text is checked at all.
    active: bool,
    /// NULs seen in the current message (a Parse's text ends at its second).
    nuls: u8,
    /// The start of a sequence that the last piece cut (at most 3 bytes).
    carry: Vec<u8>,
    invalid: bool,
}

impl Utf8Check {
    fn start(kind: u8) -> Utf8Check {
        Utf8Check {
            active: matches!(kind, b'Q' | b'P'),
            ..Utf8Check::default()
        }
    }

    /// Checks the next piece of a message of `kind`.
    fn feed(&mut self, kind: u8, mut chunk: &[u8]) {
        if !self.active || self.invalid {
            return;
        }
        if kind == b'P' {
            // Statement name and SQL; the parameter types after the
            // second NUL are binary.
            let mut end = chunk.len();
            for (i, byte) in chunk.iter().enumerate() {
                if *byte == 0 {
                    self.nuls += 1;
                    if self.nuls == 2 {
                        end = i;
                        self.active = false;
                        break;
                    }
                }
            }
            chunk = &chunk[..end];
        }
        if !self.carry.is_empty() {
            // Complete the sequence the last piece cut (a sequence is at
            // most 4 bytes), without copying the rest of this piece.
            let mut head = std::mem::take(&mut self.carry);
            let cut = head.len();
            let taken = chunk.len().min(4 - cut);
            head.extend_from_slice(&chunk[..taken]);
            match std::str::from_utf8(&head) {
                Ok(_) => chunk = &chunk[taken..],
                Err(e) if e.error_len().is_some() => {
                    self.invalid = true;
                    return;
                }
                Err(e) if e.valid_up_to() < cut => {
                    // Still cut: this piece was shorter than the sequence.
                    self.carry = head;
                    return;
                }
                Err(e) => chunk = &chunk[e.valid_up_to() - cut..],
            }
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => {}
            Err(e) if e.error_len().is_none() => self.carry = chunk[e.valid_up_to()..].to_vec(),
            Err(_) => self.invalid = true,
        }
    }

    /// Whether the whole text was valid UTF-8.
    fn valid(&self) -> bool {
        !self.invalid && self.carry.is_empty()
    }
}

/// Where the one string of a message starts, for messages that are one
/// string (after a type byte for Describe and Close).
fn string_start(kind: u8) -> Option<usize> {
    match kind {
        b'Q' | b'f' => Some(0),
        b'D' | b'C' => Some(1),
        _ => None,
    }
}

impl<T> FrameGuard<T> {
    pub fn new(inner: T, max: usize) -> Self {
        FrameGuard {
            inner,
            max,
            typed: false,
            header: [0; 5],
            header_len: 0,
            body_left: 0,
            kind: 0,
            body_seen: 0,
            early_nul: false,
            oversized: None,
            malformed: false,
            messages: 0,
            text: Utf8Check::default(),
            invalid_utf8: std::collections::VecDeque::new(),
        }
    }

    /// Follows `bytes`; false once a message broke the limit.
    pub fn inspect(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() && self.oversized.is_none() && !self.malformed {
            if self.body_left > 0 {
                let n = self.body_left.min(bytes.len());
                self.check_string(&bytes[..n]);
                self.text.feed(self.kind, &bytes[..n]);
                self.body_left -= n;
                bytes = &bytes[n..];
                if self.body_left == 0 && !self.text.valid() {
                    self.invalid_utf8.push_back(self.messages);
                }
                continue;
            }
            let wanted = if self.typed { 5 } else { 4 };
            let n = (wanted - self.header_len).min(bytes.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&bytes[..n]);
            self.header_len += n;
            bytes = &bytes[n..];
            if self.header_len < wanted {
                break;
            }
            let length_at = wanted - 4;
            let length = i32::from_be_bytes(
                self.header[length_at..wanted]
                    .try_into()
                    .expect("four bytes"),
            );
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if !(4..=self.max).contains(&length) {
                self.oversized = Some(length.min(u32::MAX as usize));
                break;
            }
            self.body_left = length - 4;
            self.kind = if self.typed { self.header[0] } else { 0 };
            self.messages += 1;
            self.text = Utf8Check::start(self.kind);
            self.body_seen = 0;
            self.early_nul = false;
            self.header_len = 0;
            self.typed = true;
            if self.body_left == 0 && string_start(self.kind).is_some() {
                self.malformed = true;
            }
        }
        self.oversized.is_none() && !self.malformed
    }

    /// Query ('Q'), Describe ('D'), Close ('C') and CopyFail ('f') carry
    /// one string that ends the message: it must end with its only NUL.
    fn check_string(&mut self, chunk: &[u8]) {
        let Some(start) = string_start(self.kind) else {
            return;
        };
        let last_at = self.body_seen + self.body_left - 1;
        for (i, byte) in chunk.iter().enumerate() {
            let at = self.body_seen + i;
            if at < start {
                continue;
            }
            if at == last_at {
                if *byte != 0 || self.early_nul {
                    self.malformed = true;
                }
            } else if *byte == 0 {
                self.early_nul = true;
            }
        }
        self.body_seen += chunk.len();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for FrameGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.oversized.is_some() || this.malformed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too large",
            )));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.inspect(&buf.filled()[before..]) {
                    Poll::Ready(Ok(()))
                } else {
                    buf.set_filled(before);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "message too large",
                    )))
                }
            }
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for FrameGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `text` passes the check fed in pieces of every size.
    fn utf8_valid_in_pieces(kind: u8, text: &[u8]) -> Vec<bool> {
        (1..=text.len().max(1))
            .map(|size| {
                let mut check = Utf8Check::start(kind);
                for piece in text.chunks(size) {
                    check.feed(kind, piece);
                }
                check.valid()
            })
            .collect()
    }

    #[test]
    fn utf8_is_checked_across_pieces() {
        let valid = "SELECT 'é€😀\u{FFFD}'\0".as_bytes();
        assert!(utf8_valid_in_pieces(b'Q', valid).iter().all(|v| *v));
        for bad in [
            &b"SELECT '\xff'\0"[..],
            &b"SELECT '\xc3'\0"[..],          // cut before its end
            &b"SELECT '\xe2\x82'\0"[..],      // cut three-byte sequence
            &b"SELECT '\xf0\x9f\x98('\0"[..], // bad fourth byte
        ] {
            assert!(
                utf8_valid_in_pieces(b'Q', bad).iter().all(|v| !*v),
                "{bad:?}"
            );
        }
        // A Parse is checked up to the end of its SQL; the parameter
        // types after it are binary.
        let parse = b"s1\0SELECT $1\0\0\x01\x00\x00\xff\xff";
        assert!(utf8_valid_in_pieces(b'P', parse).iter().all(|v| *v));
    }

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![kind];
        out.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        out.extend_from_slice(body);
        out
    }

    fn startup() -> Vec<u8> {
        let body = b"\x00\x03\x00\x00user\0u\0\0";
        let mut out = (body.len() as i32 + 4).to_be_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn follows_messages_split_anywhere() {
        let mut stream = startup();
        stream.extend(message(b'Q', b"SELECT 1\0"));
        stream.extend(message(b'S', b""));
        for split in 0..stream.len() {
            let mut guard = FrameGuard::new((), 64);
            assert!(guard.inspect(&stream[..split]));
            assert!(guard.inspect(&stream[split..]));
            assert_eq!((guard.header_len, guard.body_left), (0, 0), "split {split}");
        }
    }

    #[test]
    fn refuses_a_length_over_the_limit_or_under_four() {
        let mut guard = FrameGuard::new((), 64);
        let mut stream = startup();
        stream.push(b'Q');
        stream.extend_from_slice(&0x4000_0000i32.to_be_bytes());
        assert!(!guard.inspect(&stream));
        assert_eq!(guard.oversized, Some(0x4000_0000));

        let mut guard = FrameGuard::new((), 64);
        let mut stream = startup();
        stream.extend_from_slice(&[b'Q', 0, 0, 0, 2]);
        assert!(!guard.inspect(&stream));

        let mut guard = FrameGuard::new((), 64);
        assert!(!guard.inspect(&(-5i32).to_be_bytes()));
    }

    #[test]
    fn refuses_a_query_string_that_does_not_end_the_message() {
        for body in [&b"SELECT 1"[..], b"SELECT\x001\x00", b""] {
            let mut guard = FrameGuard::new((), 64);
            let mut stream = startup();
            stream.extend(message(b'Q', body));
            assert!(!guard.inspect(&stream), "{body:?}");
            assert!(guard.malformed);
        }
        let mut guard = FrameGuard::new((), 64);
        let mut stream = startup();
        stream.extend(message(b'D', b"Sname\0"));
        stream.extend(message(b'Q', b"SELECT 1\0"));
        assert!(guard.inspect(&stream));
    }
}
