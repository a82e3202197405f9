//! The shell's connection to a running server (`quiver repl
//! postgres://user@host:port/db`): the simple query protocol, spoken with
//! `postgres-protocol`'s message codecs, so the shell sees what psql sees —
//! command tags, column types, notices, errors with their SQLSTATE.

use std::str::FromStr;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend::Message, frontend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::format::{ColumnKind, ResultSet};
use super::Output;

/// A logged-in connection.
pub struct Remote {
    stream: TcpStream,
    read: BytesMut,
    host: String,
    port: u16,
    /// For CancelRequest: (process id, secret key).
    key: Option<(i32, i32)>,
    /// "user@host:port/db", for the banner.
    pub describe: String,
}

/// A connection failure or a protocol error, as text for the user.
pub type Error = String;

impl Remote {
    /// Connects and logs in. The password comes from the URL, PGPASSWORD,
    /// or `ask` (the terminal) when the server asks for one.
    pub async fn connect(url: &str, ask: impl Fn(&str) -> Option<String>) -> Result<Remote, Error> {
        let config = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("invalid connection URL: {e}"))?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(
                "the shell connects without TLS; drop sslmode=require, or use psql for TLS".into(),
            );
        }
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(_) => return Err("the shell connects over TCP only (no Unix sockets)".into()),
            None => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = match config.get_user() {
            Some(user) => user.to_string(),
            None => std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".into()),
        };
        let dbname = config.get_dbname().unwrap_or(&user).to_string();
        let stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("could not connect to {host}:{port}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let mut remote = Remote {
            stream,
            read: BytesMut::with_capacity(64 * 1024),
            describe: format!("{user}@{host}:{port}/{dbname}"),
            host,
            port,
            key: None,
        };
        let mut buf = BytesMut::new();
        let params = [
            ("user", user.as_str()),
            ("database", dbname.as_str()),
            ("application_name", "quiver"),
            ("client_encoding", "UTF8"),
        ];
        frontend::startup_message(params.iter().copied(), &mut buf).map_err(io)?;
        remote.send(&buf).await?;
        let password = || -> Result<Vec<u8>, Error> {
            if let Some(p) = config.get_password() {
                return Ok(p.to_vec());
            }
            if let Ok(p) = std::env::var("PGPASSWORD") {
                return Ok(p.into_bytes());
            }
            ask(&format!("Password for user {user}: "))
                .map(String::into_bytes)
                .ok_or_else(|| format!("the server asks a password for user \"{user}\""))
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            match remote.receive().await? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let mut buf = BytesMut::new();
                    frontend::password_message(&password()?, &mut buf).map_err(io)?;
                    remote.send(&buf).await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        &password()?,
                        body.salt(),
                    );
                    let mut buf = BytesMut::new();
                    frontend::password_message(hash.as_bytes(), &mut buf).map_err(io)?;
                    remote.send(&buf).await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut offered = false;
                    while let Some(m) = mechanisms.next().map_err(io)? {
                        offered |= m == "SCRAM-SHA-256";
                    }
                    if !offered {
                        return Err("the server offers no SASL mechanism the shell speaks".into());
                    }
                    let exchange = ScramSha256::new(&password()?, ChannelBinding::unsupported());
                    let mut buf = BytesMut::new();
                    frontend::sasl_initial_response("SCRAM-SHA-256", exchange.message(), &mut buf)
                        .map_err(io)?;
                    remote.send(&buf).await?;
                    scram = Some(exchange);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let exchange = scram.as_mut().ok_or("unexpected SASL message")?;
                    exchange.update(body.data()).map_err(io)?;
                    let mut buf = BytesMut::new();
                    frontend::sasl_response(exchange.message(), &mut buf).map_err(io)?;
                    remote.send(&buf).await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let exchange = scram.as_mut().ok_or("unexpected SASL message")?;
                    exchange
                        .finish(body.data())
                        .map_err(|e| format!("the server's SCRAM proof is wrong: {e}"))?;
                }
                Message::BackendKeyData(body) => {
                    remote.key = Some((body.process_id(), body.secret_key()));
                }
                Message::ParameterStatus(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => return Ok(remote),
                Message::ErrorResponse(body) => return Err(error_text(body.fields())),
                _ => return Err("unexpected message while logging in".into()),
            }
        }
    }

    /// Runs a query string (one or more statements) and collects what the
    /// server answers, up to ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Output>, Error> {
        let mut buf = BytesMut::new();
        frontend::query(sql, &mut buf).map_err(io)?;
        self.send(&buf).await?;
        let mut outputs = Vec::new();
        let mut rows: Option<ResultSet> = None;
        let mut copied = String::new();
        loop {
            match self.receive().await? {
                Message::RowDescription(body) => {
                    let mut set = ResultSet::default();
                    let mut fields = body.fields();
                    while let Some(field) = fields.next().map_err(io)? {
                        set.columns.push(field.name().to_string());
                        set.kinds.push(ColumnKind::of_oid(field.type_oid()));
                    }
                    rows = Some(set);
                }
                Message::DataRow(body) => {
                    let set = rows.as_mut().ok_or("a row before its description")?;
                    let data = body.buffer();
                    let mut ranges = body.ranges();
                    let mut row = Vec::with_capacity(set.columns.len());
                    while let Some(range) = ranges.next().map_err(io)? {
                        row.push(range.map(|r| String::from_utf8_lossy(&data[r]).into_owned()));
                    }
                    set.rows.push(row);
                }
                Message::CommandComplete(body) => {
                    let tag = body.tag().map_err(io)?.to_string();
                    match rows.take() {
                        Some(set) => outputs.push(Output::Rows(set)),
                        None if !copied.is_empty() => {
                            outputs.push(Output::Text(std::mem::take(&mut copied)));
                            outputs.push(Output::Command(tag));
                        }
                        None => outputs.push(Output::Command(tag)),
                    }
                }
                Message::EmptyQueryResponse => {}
                Message::NoticeResponse(body) => {
                    outputs.push(Output::Notice(error_text(body.fields())))
                }
                Message::ErrorResponse(body) => {
                    rows = None;
                    outputs.push(Output::Error(error_text(body.fields())));
                }
                Message::CopyInResponse(_) => {
                    let mut buf = BytesMut::new();
                    frontend::copy_fail(
                        "the quiver shell sends no COPY data; use psql's \\copy or a server file",
                        &mut buf,
                    )
                    .map_err(io)?;
                    self.send(&buf).await?;
                }
                Message::CopyOutResponse(_) | Message::CopyDone => {}
                Message::CopyData(body) => {
                    copied.push_str(&String::from_utf8_lossy(body.data()));
                }
                Message::ReadyForQuery(_) => return Ok(outputs),
                Message::ParameterStatus(_) | Message::NotificationResponse(_) => {}
                _ => return Err("unexpected message from the server".into()),
            }
        }
    }

    /// What Ctrl-C needs to cancel the running statement.
    pub fn cancel_handle(&self) -> CancelHandle {
        CancelHandle {
            host: self.host.clone(),
            port: self.port,
            key: self.key,
        }
    }

    async fn send(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.stream.write_all(buf).await.map_err(lost)
    }

    async fn receive(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = Message::parse(&mut self.read).map_err(io)? {
                return Ok(message);
            }
            if self.stream.read_buf(&mut self.read).await.map_err(lost)? == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }
}

fn io(e: std::io::Error) -> Error {
    format!("protocol error: {e}")
}

fn lost(e: std::io::Error) -> Error {
    format!("connection to the server lost: {e}")
}

/// "SEVERITY:  message" with DETAIL and HINT lines, as psql prints them.
fn error_text(mut fields: postgres_protocol::message::backend::ErrorFields<'_>) -> String {
    let (mut severity, mut message, mut detail, mut hint) =
        (String::from("ERROR"), String::new(), None, None);
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'V' => severity = value,
            b'M' => message = value,
            b'D' => detail = Some(value),
            b'H' => hint = Some(value),
            _ => {}
        }
    }
    let mut text = format!("{severity}:  {message}");
    if let Some(detail) = detail {
        text.push_str(&format!("\nDETAIL:  {detail}"));
    }
    if let Some(hint) = hint {
        text.push_str(&format!("\nHINT:  {hint}"));
    }
    text
}

/// Cancels a running statement: a CancelRequest on a new connection, as
/// psql's Ctrl-C sends.
pub struct CancelHandle {
    host: String,
    port: u16,
    key: Option<(i32, i32)>,
}

impl CancelHandle {
    pub async fn send(&self) {
        let Some((pid, secret)) = self.key else {
            return;
        };
        let mut buf = BytesMut::new();
        frontend::cancel_request(pid, secret, &mut buf);
        if let Ok(mut stream) = TcpStream::connect((self.host.as_str(), self.port)).await {
            let _ = stream.write_all(&buf).await;
            let _ = stream.shutdown().await;
        }
    }
}
