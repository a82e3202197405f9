//! Hostile and broken clients, over raw TCP against a real server process.
//!
//! Each test sends something a well-behaved driver never would: absurd or
//! negative message lengths, unknown message types, garbage instead of a
//! startup packet, unsupported protocol versions, stray cancel requests,
//! truncated messages, unterminated strings, messages over
//! `--max-message-size`, statements nested deep enough to exhaust a naive
//! recursive parser or planner, a client that walks away in the middle of a
//! long query, hundreds of short connections and a deterministic fuzz loop.
//!
//! What every test checks is the same: the bad input ends only its own
//! connection (with a FATAL ErrorResponse carrying SQLSTATE 08P01 where the
//! protocol has room for one), and the server goes on serving everyone else —
//! after each abusive case a fresh tokio-postgres client runs `SELECT 1::int`.
//!
//! Raw connections use `tokio::net::TcpStream`; every read is bounded by a
//! timeout so a misbehaving server fails the test instead of hanging it.
//!
//! Over 800 lines: one test per kind of hostile input, each independent.

use crate::common;

use std::fmt;
use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{sleep, timeout};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

/// How long any single step (a message, a connect, a query) may take.
const WAIT: Duration = Duration::from_secs(10);

/// Protocol 3.0, as the startup packet spells it.
const PROTOCOL_3_0: i32 = 196_608;

/// The request code of a CancelRequest packet.
const CANCEL_REQUEST_CODE: i32 = 80_877_102;

// ---------------------------------------------------------------------------
// Building frontend messages by hand
// ---------------------------------------------------------------------------

/// A message type byte and a length field, with no body.
fn header(tag: u8, length: i32) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend_from_slice(&length.to_be_bytes());
    out
}

/// A well-formed message: type byte, length (counting itself) and body.
fn message(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = header(tag, body.len() as i32 + 4);
    out.extend_from_slice(body);
    out
}

/// A simple-protocol Query message.
fn query_message(sql: &str) -> Vec<u8> {
    let mut body = sql.as_bytes().to_vec();
    body.push(0);
    message(b'Q', &body)
}

/// A startup packet for user "tester", database "quiver".
fn startup_packet(protocol: i32) -> Vec<u8> {
    let mut body = protocol.to_be_bytes().to_vec();
    for (name, value) in [("user", "tester"), ("database", "quiver")] {
        body.extend_from_slice(name.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut out = (body.len() as i32 + 4).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

// ---------------------------------------------------------------------------
// Reading backend messages
// ---------------------------------------------------------------------------

/// A backend message: its type byte and body.
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{:?}",
            self.tag as char,
            String::from_utf8_lossy(&self.body)
        )
    }
}

impl Msg {
    /// The fields of an ErrorResponse: (one-byte code, value) pairs.
    fn error_fields(&self) -> Vec<(u8, String)> {
        assert_eq!(self.tag, b'E', "not an ErrorResponse: {self:?}");
        let mut fields = Vec::new();
        let mut rest = &self.body[..];
        while let Some((&code, tail)) = rest.split_first() {
            if code == 0 {
                break;
            }
            let end = tail.iter().position(|b| *b == 0).unwrap_or(tail.len());
            fields.push((code, String::from_utf8_lossy(&tail[..end]).into_owned()));
            rest = tail.get(end + 1..).unwrap_or(&[]);
        }
        fields
    }

    fn error_field(&self, code: u8) -> String {
        self.error_fields()
            .into_iter()
            .find(|(c, _)| *c == code)
            .map(|(_, value)| value)
            .unwrap_or_default()
    }

    /// "FATAL", "ERROR", ...
    fn severity(&self) -> String {
        self.error_field(b'S')
    }

    fn sqlstate(&self) -> String {
        self.error_field(b'C')
    }
}

/// What the server did next on a raw connection.
#[derive(Debug)]
enum Next {
    Message(Msg),
    /// EOF or a reset: the server closed the connection.
    Closed,
    /// Nothing arrived within the wait.
    Silent,
}

/// One backend message; `None` when the connection ended first.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Msg>> {
    let mut tag = [0u8; 1];
    if stream.read(&mut tag).await? == 0 {
        return Ok(None);
    }
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).await?;
    let length = i32::from_be_bytes(length);
    assert!(
        (4..=64 * 1024 * 1024).contains(&length),
        "the server sent a message {:?} with length {length}",
        tag[0] as char
    );
    let mut body = vec![0u8; length as usize - 4];
    stream.read_exact(&mut body).await?;
    Ok(Some(Msg { tag: tag[0], body }))
}

async fn read_next(stream: &mut TcpStream, wait: Duration) -> Next {
    match timeout(wait, read_message(stream)).await {
        Err(_) => Next::Silent,
        Ok(Ok(Some(msg))) => Next::Message(msg),
        // A reset or an EOF inside a message both mean the server hung up.
        Ok(Ok(None)) | Ok(Err(_)) => Next::Closed,
    }
}

/// Messages up to ReadyForQuery (false) or up to the server closing the
/// connection (true). Panics if the server goes quiet for `WAIT`.
async fn read_until_ready_or_closed(stream: &mut TcpStream) -> (Vec<Msg>, bool) {
    let mut messages = Vec::new();
    loop {
        match read_next(stream, WAIT).await {
            Next::Message(msg) => {
                let ready = msg.tag == b'Z';
                messages.push(msg);
                if ready {
                    return (messages, false);
                }
            }
            Next::Closed => return (messages, true),
            Next::Silent => panic!("the server went quiet for {WAIT:?} after {messages:?}"),
        }
    }
}

/// Raw bytes until the server closes the connection (true) or `wait`
/// passes (false). For replies that may not be protocol 3 messages at all.
async fn drain(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let closed = timeout(wait, async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .is_ok();
    (received, closed)
}

/// Asserts the connection ends with a FATAL ErrorResponse carrying
/// `sqlstate`, followed by the server closing it.
async fn expect_fatal(stream: &mut TcpStream, sqlstate: &str, what: &str) {
    let (messages, closed) = read_until_ready_or_closed(stream).await;
    assert!(
        closed,
        "{what}: the server kept the connection: {messages:?}"
    );
    let last = messages
        .last()
        .unwrap_or_else(|| panic!("{what}: closed without an ErrorResponse"));
    assert_eq!(last.tag, b'E', "{what}: {messages:?}");
    assert_eq!(last.severity(), "FATAL", "{what}: {last:?}");
    assert_eq!(last.sqlstate(), sqlstate, "{what}: {last:?}");
}

// ---------------------------------------------------------------------------
// Connections
// ---------------------------------------------------------------------------

async fn raw_connect(server: &TestServer) -> TcpStream {
    timeout(WAIT, TcpStream::connect(("127.0.0.1", server.port)))
        .await
        .expect("TCP connect in time")
        .expect("TCP connect")
}

/// A raw connection past startup: AuthenticationOk ... ReadyForQuery.
async fn open_session(server: &TestServer) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", server.port))
        .await
        .map_err(|e| format!("TCP connect: {e}"))?;
    stream
        .write_all(&startup_packet(PROTOCOL_3_0))
        .await
        .map_err(|e| format!("send the startup packet: {e}"))?;
    let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
    if closed {
        return Err(format!("closed during startup: {messages:?}"));
    }
    match messages.first() {
        Some(first) if first.tag == b'R' && first.body == [0, 0, 0, 0] => Ok(stream),
        _ => Err(format!("expected AuthenticationOk first: {messages:?}")),
    }
}

async fn start_session(server: &TestServer) -> TcpStream {
    open_session(server)
        .await
        .unwrap_or_else(|e| panic!("startup: {e}"))
}

/// Writes bytes the server may refuse: a write error only means it has
/// already closed the connection, which the caller checks by reading.
async fn send_raw(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
}

async fn connect(server: &TestServer) -> Client {
    timeout(WAIT, server.connect())
        .await
        .expect("a tokio-postgres connection in time")
}

/// A fresh client runs `SELECT 1::int`: the server is still serving.
async fn assert_serves(server: &TestServer) {
    let client = connect(server).await;
    let row = timeout(WAIT, client.query_one("SELECT 1::int", &[]))
        .await
        .expect("SELECT 1 in time")
        .expect("SELECT 1");
    let one: i32 = row.get(0);
    assert_eq!(one, 1);
}

/// How many sessions pg_stat_activity lists, the asking one included.
const SESSION_COUNT: &str = "SELECT count(*) FROM pg_stat_activity";

/// The value of a `SELECT count(*) ...`.
async fn count(client: &Client, sql: &str) -> i64 {
    timeout(WAIT, client.query_one(sql, &[]))
        .await
        .unwrap_or_else(|_| panic!("{sql}: no answer in {WAIT:?}"))
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get(0)
}

/// Runs the count `sql` every 200 ms for up to 10 s until `done` holds;
/// returns the last value.
async fn poll_count(client: &Client, sql: &str, done: impl Fn(i64) -> bool) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let n = count(client, sql).await;
        if done(n) || Instant::now() >= deadline {
            return n;
        }
        sleep(Duration::from_millis(200)).await;
    }
}

/// The first column of the first row of a simple query's result.
fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

/// A tiny deterministic PRNG (xorshift64), so the fuzz input is the same
/// on every run.
struct XorShift(u64);

impl XorShift {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in 0..n.
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// ---------------------------------------------------------------------------
// Message framing
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_length_over_the_default_limit_is_fatal() {
    let server = TestServer::start();
    // Well past the default 64 MiB; only the header is sent.
    for length in [65 * 1024 * 1024, 0x4000_0000, i32::MAX] {
        let mut stream = start_session(&server).await;
        send_raw(&mut stream, &header(b'Q', length)).await;
        expect_fatal(&mut stream, "08P01", &format!("length {length}")).await;
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn a_length_over_a_configured_limit_is_fatal() {
    let server = TestServer::start_with(&["--memory", "--max-message-size", "1MB"]);
    for tag in [b'Q', b'P', b'd'] {
        let mut stream = start_session(&server).await;
        send_raw(&mut stream, &header(tag, 2 * 1024 * 1024)).await;
        expect_fatal(&mut stream, "08P01", &format!("{} of 2 MiB", tag as char)).await;
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn a_length_below_four_is_fatal() {
    let server = TestServer::start();
    for length in [0, 2, 3, -1] {
        let mut stream = start_session(&server).await;
        send_raw(&mut stream, &header(b'Q', length)).await;
        expect_fatal(&mut stream, "08P01", &format!("length {length}")).await;
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn an_unknown_message_type_is_fatal() {
    let server = TestServer::start();
    for tag in [b'!', b'~'] {
        let mut stream = start_session(&server).await;
        send_raw(&mut stream, &header(tag, 4)).await;
        expect_fatal(&mut stream, "08P01", &format!("type {:?}", tag as char)).await;
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn an_unterminated_query_string_is_an_error() {
    let server = TestServer::start();
    // A correctly framed Query whose string has no terminating NUL: alone,
    // and followed in the same write by a valid `SELECT 1`, which the
    // string must not run into.
    for pipelined in [false, true] {
        let what = if pipelined {
            "followed by SELECT 1"
        } else {
            "alone"
        };
        let mut stream = start_session(&server).await;
        let mut bytes = header(b'Q', 4 + 6);
        bytes.extend_from_slice(b"SELECT");
        if pipelined {
            bytes.extend_from_slice(&query_message("SELECT 1"));
        }
        send_raw(&mut stream, &bytes).await;
        let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
        let error = messages
            .iter()
            .find(|m| m.tag == b'E')
            .unwrap_or_else(|| panic!("{what}: no ErrorResponse: {messages:?}"));
        match error.severity().as_str() {
            "FATAL" => {
                assert_eq!(error.sqlstate(), "08P01", "{what}: {error:?}");
                assert!(closed, "{what}: FATAL but still open: {messages:?}");
            }
            "ERROR" => {
                // The session goes on, and SELECT 1 runs as itself.
                assert!(!closed, "{what}: ERROR but closed: {messages:?}");
                if !pipelined {
                    send_raw(&mut stream, &query_message("SELECT 1")).await;
                }
                let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
                assert!(!closed, "{what}: {messages:?}");
                let row = messages
                    .iter()
                    .find(|m| m.tag == b'D')
                    .unwrap_or_else(|| panic!("{what}: no row for SELECT 1: {messages:?}"));
                // One column, one byte long: "1".
                assert_eq!(row.body, [0, 1, 0, 0, 0, 1, b'1'], "{what}");
            }
            other => panic!("{what}: unexpected severity {other:?}: {error:?}"),
        }
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn a_client_vanishing_mid_message_leaves_no_session_behind() {
    let server = TestServer::start();

    // A Query that promises 100 bytes and delivers 8.
    let mut stream = start_session(&server).await;
    let mut partial = header(b'Q', 100);
    partial.extend_from_slice(b"SELECT 1");
    send_raw(&mut stream, &partial).await;
    drop(stream);
    assert_serves(&server).await;

    // Half a message header.
    let mut stream = start_session(&server).await;
    send_raw(&mut stream, &[b'Q', 0, 0]).await;
    drop(stream);
    assert_serves(&server).await;

    // The first 10 bytes of a startup packet.
    let mut stream = raw_connect(&server).await;
    send_raw(&mut stream, &startup_packet(PROTOCOL_3_0)[..10]).await;
    drop(stream);
    assert_serves(&server).await;

    // Only the observer itself is left in pg_stat_activity.
    let observer = connect(&server).await;
    let sessions = poll_count(&observer, SESSION_COUNT, |n| n == 1).await;
    assert_eq!(sessions, 1, "sessions of departed clients linger");
}

// ---------------------------------------------------------------------------
// Startup
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_absurd_startup_length_is_refused() {
    let server = TestServer::start();
    for length in [0x4000_0000, i32::MAX, -1, 4, 0] {
        let mut stream = raw_connect(&server).await;
        let mut packet = length.to_be_bytes().to_vec();
        packet.extend_from_slice(&PROTOCOL_3_0.to_be_bytes());
        send_raw(&mut stream, &packet).await;
        // Either a FATAL 08P01 and a close, or just a close.
        let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
        assert!(closed, "length {length}: the server answered {messages:?}");
        for msg in &messages {
            assert_eq!(msg.tag, b'E', "length {length}: {messages:?}");
            assert_eq!(msg.severity(), "FATAL", "length {length}: {msg:?}");
            assert_eq!(msg.sqlstate(), "08P01", "length {length}: {msg:?}");
        }
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn garbage_instead_of_a_startup_packet_is_refused() {
    let server = TestServer::start();
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("64 random bytes", rng.bytes(64)),
        (
            "an HTTP request",
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "the start of a TLS ClientHello",
            vec![
                0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03,
            ],
        ),
        ("64 zero bytes", vec![0; 64]),
        ("64 0xff bytes", vec![0xff; 64]),
    ];
    for (what, bytes) in cases {
        let mut stream = raw_connect(&server).await;
        send_raw(&mut stream, &bytes).await;
        // No more is coming: a server waiting for the rest must give up too.
        let _ = stream.shutdown().await;
        let (received, closed) = drain(&mut stream, WAIT).await;
        assert!(closed, "{what}: still open, after {received:?}");
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn an_unsupported_protocol_version_is_refused() {
    let server = TestServer::start();
    // 2.0, 1.0 and 32767.0; none of them is a special request code.
    for protocol in [131_072, 65_536, 0x7fff_0000] {
        let mut stream = raw_connect(&server).await;
        send_raw(&mut stream, &startup_packet(protocol)).await;
        // The reply, if any, may be in the old protocol's format: read bytes.
        let (received, closed) = drain(&mut stream, WAIT).await;
        assert!(closed, "protocol {protocol:#x}: the connection stayed open");
        if let Some(first) = received.first() {
            assert_eq!(
                *first,
                b'E',
                "protocol {protocol:#x}: expected an error, got {:?}",
                String::from_utf8_lossy(&received)
            );
        }
        assert_serves(&server).await;
    }
}

#[tokio::test]
async fn a_cancel_request_with_unknown_keys_changes_nothing() {
    let server = TestServer::start();
    let bystander = connect(&server).await;
    bystander
        .batch_execute("CREATE TABLE t(x int); INSERT INTO t VALUES (1)")
        .await
        .unwrap();

    let mut stream = raw_connect(&server).await;
    let mut packet = 16i32.to_be_bytes().to_vec();
    packet.extend_from_slice(&CANCEL_REQUEST_CODE.to_be_bytes());
    packet.extend_from_slice(&0x1234_5678i32.to_be_bytes());
    packet.extend_from_slice(&0x0bad_cafei32.to_be_bytes());
    send_raw(&mut stream, &packet).await;
    // A CancelRequest gets no reply; the server just closes.
    let (received, closed) = drain(&mut stream, WAIT).await;
    assert!(closed, "the cancel connection stayed open");
    assert!(
        received.is_empty(),
        "a reply to a CancelRequest: {received:?}"
    );

    // The other session did not notice.
    assert_eq!(count(&bystander, "SELECT count(*) FROM t").await, 1);
    assert_serves(&server).await;
}

// ---------------------------------------------------------------------------
// Sizes and shapes of statements
// ---------------------------------------------------------------------------

/// The error of a statement over the message size limit: either the
/// connection was closed under the client, or the server said why.
fn assert_refused_for_size(err: &tokio_postgres::Error) {
    if let Some(code) = err.code() {
        assert!(
            *code == SqlState::PROTOCOL_VIOLATION || *code == SqlState::PROGRAM_LIMIT_EXCEEDED,
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_query_over_the_configured_message_size_is_refused() {
    let server = TestServer::start_with(&["--memory", "--max-message-size", "1MB"]);
    let big = format!("SELECT '{}' AS s", "x".repeat(2 * 1024 * 1024));

    // Simple protocol: a 2 MiB Query message.
    let client = connect(&server).await;
    match timeout(WAIT, client.simple_query(&big))
        .await
        .expect("an answer in time")
    {
        Ok(rows) => panic!("a 2 MiB query ran: {} messages", rows.len()),
        Err(err) => assert_refused_for_size(&err),
    }
    let after = timeout(WAIT, client.simple_query("SELECT 1"))
        .await
        .expect("an answer in time");
    assert!(after.is_err(), "the connection should have been closed");
    assert_serves(&server).await;

    // Extended protocol: a 2 MiB Parse message.
    let client = connect(&server).await;
    match timeout(WAIT, client.query(big.as_str(), &[]))
        .await
        .expect("an answer in time")
    {
        Ok(rows) => panic!("a 2 MiB query ran: {} rows", rows.len()),
        Err(err) => assert_refused_for_size(&err),
    }
    assert_serves(&server).await;

    // Half a megabyte is under the limit.
    let client = connect(&server).await;
    let text = "x".repeat(512 * 1024);
    let rows = timeout(WAIT, client.simple_query(&format!("SELECT '{text}' AS s")))
        .await
        .expect("an answer in time")
        .expect("a 512 KiB query is under the limit");
    assert_eq!(first_value(&rows).map(|s| s.len()), Some(text.len()));
    let rows = timeout(
        WAIT,
        client.simple_query(&format!("SELECT length('{text}')")),
    )
    .await
    .expect("an answer in time")
    .expect("a 512 KiB query is under the limit");
    assert_eq!(first_value(&rows).as_deref(), Some("524288"));
}

#[tokio::test]
async fn deeply_nested_statements_are_errors_not_crashes() {
    let server = TestServer::start();
    let client = connect(&server).await;
    let cases: Vec<(&str, String)> = vec![
        (
            "10000 nested parentheses",
            format!("SELECT {}1{}", "(".repeat(10_000), ")".repeat(10_000)),
        ),
        (
            "200000 additions",
            format!("SELECT {}1", "1+".repeat(200_000)),
        ),
        (
            "200000 ANDs",
            format!("SELECT {}", vec!["true"; 200_000].join(" AND ")),
        ),
        // Two minus signs start a comment: this one is `SELECT` alone.
        (
            "10000 minus signs",
            format!("SELECT {}1", "-".repeat(10_000)),
        ),
        (
            "10000 unary minuses",
            format!("SELECT {}1", "- ".repeat(10_000)),
        ),
        (
            "10000 NOTs",
            format!("SELECT {}true", "NOT ".repeat(10_000)),
        ),
        (
            "10000 nested function calls",
            format!("SELECT {}1{}", "abs(".repeat(10_000), ")".repeat(10_000)),
        ),
        (
            "2000 nested subqueries",
            format!("SELECT {}1{}", "(SELECT ".repeat(2_000), ")".repeat(2_000)),
        ),
    ];
    let long_wait = Duration::from_secs(60);
    for (what, sql) in &cases {
        // Simple protocol. An error must be a reported one, with a SQLSTATE;
        // should the server manage to evaluate the statement, that is fine too.
        let outcome = timeout(long_wait, client.simple_query(sql))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer in {long_wait:?}"));
        if let Err(err) = &outcome {
            assert!(err.code().is_some(), "{what} (simple): {err:?}");
        }
        let rows = timeout(WAIT, client.simple_query("SELECT 1"))
            .await
            .unwrap_or_else(|_| panic!("{what}: SELECT 1 hung"))
            .unwrap_or_else(|e| panic!("{what}: the connection broke: {e:?}"));
        assert_eq!(first_value(&rows).as_deref(), Some("1"), "{what}");

        // Extended protocol: the same text as a Parse message.
        let outcome = timeout(long_wait, client.query(sql.as_str(), &[]))
            .await
            .unwrap_or_else(|_| panic!("{what}: no answer in {long_wait:?}"));
        if let Err(err) = &outcome {
            assert!(err.code().is_some(), "{what} (extended): {err:?}");
        }
        let one: i32 = timeout(WAIT, client.query_one("SELECT 1::int", &[]))
            .await
            .unwrap_or_else(|_| panic!("{what}: SELECT 1 hung"))
            .unwrap_or_else(|e| panic!("{what}: the connection broke: {e:?}"))
            .get(0);
        assert_eq!(one, 1, "{what}");
    }
    assert_serves(&server).await;
}

// ---------------------------------------------------------------------------
// Clients that leave, many clients, random clients
// ---------------------------------------------------------------------------

const LONG_QUERY: &str = "SELECT count(*) FROM generate_series(1, 5000000000)";

/// Counts other sessions running LONG_QUERY. The literal is split so that
/// this probe's own text does not match, and our own pid is excluded anyway.
const LONG_QUERY_RUNNING: &str = "SELECT count(*) FROM pg_stat_activity \
     WHERE state = 'active' AND pid <> pg_backend_pid() \
     AND query LIKE ('%' || 'generate_series(1, 50' || '00000000)%')";

#[tokio::test]
async fn a_query_is_cancelled_when_its_client_disconnects() {
    let server = TestServer::start();
    let observer = connect(&server).await;

    let mut stream = start_session(&server).await;
    send_raw(&mut stream, &query_message(LONG_QUERY)).await;
    let running = poll_count(&observer, LONG_QUERY_RUNNING, |n| n >= 1).await;
    assert_eq!(running, 1, "the long query never showed up as active");

    // Walk away without reading the answer or sending Terminate.
    drop(stream);
    let left = Instant::now();
    let running = poll_count(&observer, LONG_QUERY_RUNNING, |n| n == 0).await;
    assert_eq!(
        running,
        0,
        "the query of a departed client still ran after {:?}",
        left.elapsed()
    );

    // And the server answers promptly.
    let started = Instant::now();
    assert_serves(&server).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SELECT 1 took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn many_short_connections_leave_no_sessions_behind() {
    let server = TestServer::start();

    // 500 tokio-postgres clients, 10 at a time, each running SELECT 1.
    for round in 0..50 {
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let conn_string = server.conn_string();
            tasks.push(tokio::spawn(async move {
                let (client, connection) =
                    tokio_postgres::connect(&conn_string, tokio_postgres::NoTls)
                        .await
                        .expect("connect");
                let driver = tokio::spawn(async move {
                    let _ = connection.await;
                });
                let rows = client.simple_query("SELECT 1").await.expect("SELECT 1");
                assert_eq!(first_value(&rows).as_deref(), Some("1"));
                // Dropping the client sends Terminate and ends the driver.
                drop(client);
                let _ = driver.await;
            }));
        }
        for task in tasks {
            timeout(WAIT, task)
                .await
                .unwrap_or_else(|_| panic!("round {round}: a connection hung"))
                .expect("a connection task failed");
        }
    }

    // 100 more that send a query and vanish without reading or Terminate.
    for _ in 0..100 {
        let mut stream = start_session(&server).await;
        send_raw(&mut stream, &query_message("SELECT 1")).await;
        drop(stream);
    }

    let observer = connect(&server).await;
    let sessions = poll_count(&observer, SESSION_COUNT, |n| n < 20).await;
    assert!(sessions < 20, "{sessions} sessions still listed");
    assert_serves(&server).await;
}

/// Type bytes of real frontend messages, to get past the first check.
const FUZZ_TAGS: &[u8] = b"QPBEDSHCcdfX";

/// 1..200 random bytes, half the time behind a real type byte and a length
/// that may match the body, be small (maybe under 4) or be anything at all.
fn fuzz_input(rng: &mut XorShift) -> Vec<u8> {
    let n = 1 + rng.below(200) as usize;
    let body = rng.bytes(n);
    if rng.below(2) == 0 {
        return body;
    }
    let tag = FUZZ_TAGS[rng.below(FUZZ_TAGS.len() as u64) as usize];
    let length = match rng.below(3) {
        0 => body.len() as i32 + 4,
        1 => rng.below(300) as i32,
        _ => rng.next_u64() as u32 as i32,
    };
    let mut input = header(tag, length);
    input.extend_from_slice(&body);
    input
}

#[tokio::test]
async fn random_bytes_after_startup_do_not_hurt_the_server() {
    let server = TestServer::start();
    let setup = connect(&server).await;
    setup
        .batch_execute("CREATE TABLE keep(x int); INSERT INTO keep VALUES (1),(2)")
        .await
        .unwrap();

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut previous: Vec<u8> = Vec::new();
    for i in 0..300 {
        let mut stream = open_session(&server)
            .await
            .unwrap_or_else(|e| panic!("iteration {i}: {e}; the previous input was {previous:?}"));
        let input = fuzz_input(&mut rng);
        send_raw(&mut stream, &input).await;
        // Nothing more is coming, so a server waiting for the rest of a
        // message sees EOF instead of making each iteration wait 2 s.
        let _ = stream.shutdown().await;
        drain(&mut stream, Duration::from_secs(2)).await;
        drop(stream);
        previous = input;
        if i % 50 == 49 {
            assert_serves(&server).await;
        }
    }

    assert_serves(&server).await;
    let client = connect(&server).await;
    assert_eq!(count(&client, "SELECT count(*) FROM keep").await, 2);
}

/// Invalid UTF-8 in a query is refused with 22021, as PostgreSQL refuses
/// it, in a Query and in a Parse (also when a sequence is split across
/// writes); valid UTF-8, and a real U+FFFD, still run; the session goes on.
#[tokio::test]
async fn invalid_utf8_in_a_query_is_22021() {
    let server = TestServer::start();
    let mut stream = start_session(&server).await;
    let mut bad = b"SELECT '".to_vec();
    bad.extend_from_slice(&[0xff, 0xfe]);
    bad.extend_from_slice(b"'\0");
    send_raw(&mut stream, &message(b'Q', &bad)).await;
    let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
    assert!(!closed, "{messages:?}");
    let error = messages
        .iter()
        .find(|m| m.tag == b'E')
        .unwrap_or_else(|| panic!("no ErrorResponse: {messages:?}"));
    assert_eq!(error.sqlstate(), "22021", "{error:?}");

    // A Parse with invalid UTF-8, then Sync: an error, then ready again.
    let mut parse = b"\0SELECT '".to_vec();
    parse.extend_from_slice(&[0xc3]);
    parse.extend_from_slice(b"'\0\0\0");
    let mut bytes = message(b'P', &parse);
    bytes.extend_from_slice(&message(b'S', &[]));
    send_raw(&mut stream, &bytes).await;
    let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
    assert!(!closed, "{messages:?}");
    let error = messages
        .iter()
        .find(|m| m.tag == b'E')
        .unwrap_or_else(|| panic!("no ErrorResponse for Parse: {messages:?}"));
    assert_eq!(error.sqlstate(), "22021", "{error:?}");

    // Valid two-byte characters split across two writes, and a real
    // U+FFFD, run as themselves.
    let sql = "SELECT 'é\u{FFFD}'";
    let whole = query_message(sql);
    let cut = whole.len() - 5; // inside the 3-byte U+FFFD
    send_raw(&mut stream, &whole[..cut]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    send_raw(&mut stream, &whole[cut..]).await;
    let (messages, closed) = read_until_ready_or_closed(&mut stream).await;
    assert!(!closed, "{messages:?}");
    assert!(messages.iter().all(|m| m.tag != b'E'), "{messages:?}");
    let row = messages
        .iter()
        .find(|m| m.tag == b'D')
        .unwrap_or_else(|| panic!("no row: {messages:?}"));
    assert!(row.body.ends_with("é\u{FFFD}".as_bytes()), "{:?}", row.body);
    assert_serves(&server).await;
}
