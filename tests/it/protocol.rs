//! The extended protocol message by message, as drivers use it: start-up
//! parameters, Parse/Describe/Bind/Execute with a row limit, text-format
//! parameters, Close, and error recovery at Sync.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::BytesMut;
use common::TestServer;
use postgres_protocol::message::frontend;

struct Conn {
    stream: TcpStream,
}

/// A backend message: its type byte and body.
#[derive(Debug)]
struct Msg {
    tag: u8,
    body: Vec<u8>,
}

impl Msg {
    fn cstr_fields(&self) -> Vec<String> {
        self.body
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect()
    }

    /// The values of a DataRow, in text.
    fn data_row(&self) -> Vec<Option<String>> {
        assert_eq!(self.tag, b'D');
        let count = i16::from_be_bytes([self.body[0], self.body[1]]) as usize;
        let mut rest = &self.body[2..];
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            let len = i32::from_be_bytes(rest[..4].try_into().unwrap());
            rest = &rest[4..];
            if len < 0 {
                values.push(None);
            } else {
                values.push(Some(
                    String::from_utf8_lossy(&rest[..len as usize]).into_owned(),
                ));
                rest = &rest[len as usize..];
            }
        }
        values
    }
}

impl Conn {
    fn connect(server: &TestServer) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        let mut conn = Conn { stream };
        let mut buf = BytesMut::new();
        frontend::startup_message([("user", "tester"), ("database", "quiver")], &mut buf).unwrap();
        conn.stream.write_all(&buf).unwrap();
        conn
    }

    fn send(&mut self, build: impl FnOnce(&mut BytesMut)) {
        let mut buf = BytesMut::new();
        build(&mut buf);
        self.stream.write_all(&buf).unwrap();
    }

    fn read(&mut self) -> Msg {
        let mut head = [0u8; 5];
        self.stream.read_exact(&mut head).unwrap();
        let len = u32::from_be_bytes(head[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        self.stream.read_exact(&mut body).unwrap();
        Msg { tag: head[0], body }
    }

    /// Messages up to and including ReadyForQuery.
    fn until_ready(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            let msg = self.read();
            let done = msg.tag == b'Z';
            out.push(msg);
            if done {
                return out;
            }
        }
    }
}

fn bind_without_parameters(portal: &str, statement: &str, buf: &mut BytesMut) {
    let values: [&str; 0] = [];
    frontend::bind(
        portal,
        statement,
        [0i16; 0],
        values,
        |v: &str, out: &mut BytesMut| {
            out.extend_from_slice(v.as_bytes());
            Ok(postgres_protocol::IsNull::No)
        },
        [0],
        buf,
    )
    .map_err(|_| ())
    .unwrap();
}

fn tags(messages: &[Msg]) -> String {
    messages.iter().map(|m| m.tag as char).collect()
}

#[test]
fn startup_sends_the_parameters_clients_need() {
    let server = TestServer::start();
    let mut conn = Conn::connect(&server);
    let messages = conn.until_ready();
    assert_eq!(messages[0].tag, b'R', "AuthenticationOk first");
    let params: Vec<(String, String)> = messages
        .iter()
        .filter(|m| m.tag == b'S')
        .map(|m| {
            let f = m.cstr_fields();
            (f[0].clone(), f.get(1).cloned().unwrap_or_default())
        })
        .collect();
    for name in [
        "server_version",
        "server_encoding",
        "client_encoding",
        "DateStyle",
        "TimeZone",
        "integer_datetimes",
        "standard_conforming_strings",
    ] {
        assert!(
            params.iter().any(|(n, _)| n == name),
            "missing {name} in {params:?}"
        );
    }
    let value = |name: &str| params.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(value("server_encoding"), "UTF8");
    assert_eq!(value("client_encoding"), "UTF8");
    assert_eq!(value("integer_datetimes"), "on");
    assert!(messages.iter().any(|m| m.tag == b'K'), "BackendKeyData");
    let ready = messages.last().unwrap();
    assert_eq!(ready.body, vec![b'I']);
}

#[test]
fn execute_with_a_row_limit_suspends_the_portal() {
    let server = TestServer::start();
    let mut conn = Conn::connect(&server);
    conn.until_ready();
    conn.send(|b| {
        frontend::parse(
            "s1",
            "SELECT x FROM generate_series(1, 5) AS t(x) ORDER BY x",
            [],
            b,
        )
        .unwrap();
        frontend::describe(b'S', "s1", b).unwrap();
        bind_without_parameters("p1", "s1", b);
        frontend::execute("p1", 2, b).unwrap();
        frontend::sync(b);
    });
    let first = conn.until_ready();
    // ParseComplete, ParameterDescription, RowDescription, BindComplete,
    // two rows, PortalSuspended, ReadyForQuery.
    assert_eq!(tags(&first), "1tT2DDsZ");
    assert_eq!(first[4].data_row(), vec![Some("1".to_string())]);

    conn.send(|b| {
        frontend::execute("p1", 2, b).unwrap();
        frontend::execute("p1", 0, b).unwrap();
        frontend::sync(b);
    });
    let rest = conn.until_ready();
    assert_eq!(tags(&rest), "DDsDCZ");
    let values: Vec<_> = rest
        .iter()
        .filter(|m| m.tag == b'D')
        .map(|m| m.data_row())
        .collect();
    assert_eq!(
        values,
        vec![
            vec![Some("3".into())],
            vec![Some("4".into())],
            vec![Some("5".into())]
        ]
    );

    // Close the statement; the name is free again.
    conn.send(|b| {
        frontend::close(b'S', "s1", b).unwrap();
        frontend::sync(b);
    });
    assert_eq!(tags(&conn.until_ready()), "3Z");
}

#[test]
fn text_parameters_are_cast_to_the_inferred_type() {
    let server = TestServer::start();
    let mut conn = Conn::connect(&server);
    conn.until_ready();
    conn.send(|b| {
        frontend::parse("", "SELECT $1::int + 1 AS answer", [], b).unwrap();
        frontend::bind(
            "",
            "",
            [0],
            ["41"],
            |v, buf| {
                buf.extend_from_slice(v.as_bytes());
                Ok(postgres_protocol::IsNull::No)
            },
            [0],
            b,
        )
        .map_err(|_| ())
        .unwrap();
        frontend::describe(b'P', "", b).unwrap();
        frontend::execute("", 0, b).unwrap();
        frontend::sync(b);
    });
    let messages = conn.until_ready();
    assert_eq!(tags(&messages), "12TDCZ");
    assert_eq!(messages[3].data_row(), vec![Some("42".to_string())]);
}

#[test]
fn an_error_skips_to_sync_and_the_connection_goes_on() {
    let server = TestServer::start();
    let mut conn = Conn::connect(&server);
    conn.until_ready();
    conn.send(|b| {
        frontend::parse("", "SELECT * FROM no_such_table", [], b).unwrap();
        bind_without_parameters("", "", b);
        frontend::execute("", 0, b).unwrap();
        frontend::sync(b);
    });
    let messages = conn.until_ready();
    assert_eq!(tags(&messages), "EZ");
    let fields = &messages[0].body;
    let code = fields
        .split(|b| *b == 0)
        .find(|f| f.first() == Some(&b'C'))
        .map(|f| String::from_utf8_lossy(&f[1..]).into_owned());
    assert_eq!(code.as_deref(), Some("42P01"));

    conn.send(|b| {
        frontend::parse("", "SELECT 7", [], b).unwrap();
        bind_without_parameters("", "", b);
        frontend::execute("", 0, b).unwrap();
        frontend::sync(b);
    });
    let messages = conn.until_ready();
    assert_eq!(tags(&messages), "12DCZ");
    assert_eq!(messages[2].data_row(), vec![Some("7".to_string())]);
}

/// The status byte of the last ReadyForQuery.
fn status_after(conn: &mut Conn, sql: &str) -> char {
    conn.send(|b| frontend::query(sql, b).unwrap());
    let messages = conn.until_ready();
    messages.last().unwrap().body[0] as char
}

#[test]
fn ready_for_query_reports_idle_in_transaction_and_failed() {
    let server = TestServer::start();
    let mut conn = Conn::connect(&server);
    conn.until_ready();
    assert_eq!(status_after(&mut conn, "CREATE TABLE t (x INT)"), 'I');
    assert_eq!(status_after(&mut conn, "BEGIN"), 'T');
    assert_eq!(status_after(&mut conn, "INSERT INTO t VALUES (1)"), 'T');
    assert_eq!(status_after(&mut conn, "SAVEPOINT a"), 'T');
    assert_eq!(status_after(&mut conn, "SELECT * FROM nope"), 'E');
    assert_eq!(status_after(&mut conn, "SELECT 1"), 'E');
    assert_eq!(status_after(&mut conn, "ROLLBACK TO SAVEPOINT a"), 'T');
    assert_eq!(status_after(&mut conn, "COMMIT"), 'I');
    assert_eq!(status_after(&mut conn, "SELECT * FROM nope"), 'I');

    // The extended protocol reports the same at Sync.
    conn.send(|b| {
        frontend::parse("", "BEGIN", [], b).unwrap();
        bind_without_parameters("", "", b);
        frontend::execute("", 0, b).unwrap();
        frontend::sync(b);
    });
    assert_eq!(conn.until_ready().last().unwrap().body[0], b'T');
    conn.send(|b| {
        frontend::parse("", "SELECT * FROM nope", [], b).unwrap();
        bind_without_parameters("", "", b);
        frontend::execute("", 0, b).unwrap();
        frontend::sync(b);
    });
    assert_eq!(conn.until_ready().last().unwrap().body[0], b'E');
    assert_eq!(status_after(&mut conn, "ROLLBACK"), 'I');
}
