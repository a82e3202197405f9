//! A small PostgreSQL wire client, spoken with `postgres-protocol`'s
//! message codecs: log in (trust, cleartext, MD5, SCRAM-SHA-256), then
//! send and receive raw messages. The shell's remote mode and a replica's
//! connection to its primary (which needs the COPY BOTH mode no Rust
//! driver offers) are built on it. TLS as libpq negotiates it: see
//! [`tls`].

mod tls;

use std::str::FromStr;

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::{backend::Message, frontend};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use tls::{SslMode, TlsOptions};

/// A connection failure or a protocol error, as text for a person.
pub type Error = String;

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where a connection string points, and how it logs in.
pub struct Target {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    password: Option<Vec<u8>>,
    pub tls: TlsOptions,
}

impl Target {
    /// Parses a `postgres://user:password@host:port/db?sslmode=...` URL or
    /// a `key=value` string, with libpq's defaults and environment.
    pub fn parse(url: &str) -> Result<Target, Error> {
        let (url, tls) = tls::split_options(url)?;
        let config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| format!("invalid connection URL: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
            Some(_) => return Err("connections are made over TCP only (no Unix sockets)".into()),
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
        Ok(Target {
            host,
            port,
            user,
            dbname,
            password: config.get_password().map(<[u8]>::to_vec),
            tls,
        })
    }
}

/// A logged-in connection.
pub struct Connection {
    stream: Box<dyn Io>,
    read: BytesMut,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub dbname: String,
    /// The TLS protocol and cipher suite, when the connection is
    /// encrypted.
    pub tls: Option<String>,
    /// For CancelRequest: (process id, secret key).
    pub key: Option<(i32, i32)>,
}

impl Connection {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and logs
    /// in, sending `extra` start-up parameters. The password comes from
    /// the URL, PGPASSWORD, or `ask` when the server asks for one.
    pub async fn connect(
        url: &str,
        extra: &[(&str, &str)],
        ask: impl Fn(&str) -> Option<String>,
    ) -> Result<Connection, Error> {
        let Target {
            host,
            port,
            user,
            dbname,
            password: given,
            tls,
        } = Target::parse(url)?;
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("could not connect to {host}:{port}: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let (stream, tls): (Box<dyn Io>, _) = match tls::negotiate(tcp, &host, &tls).await? {
            tls::Negotiated::Plain(tcp) => (Box::new(tcp), None),
            tls::Negotiated::Tls(stream) => {
                let (_, session) = stream.get_ref();
                let describe = format!(
                    "{}, cipher {}",
                    session
                        .protocol_version()
                        .and_then(|v| v.as_str())
                        .unwrap_or("TLS"),
                    session
                        .negotiated_cipher_suite()
                        .and_then(|c| c.suite().as_str())
                        .unwrap_or("unknown"),
                );
                (stream, Some(describe))
            }
        };
        let mut connection = Connection {
            stream,
            read: BytesMut::with_capacity(64 * 1024),
            host,
            port,
            user: user.clone(),
            dbname: dbname.clone(),
            tls,
            key: None,
        };
        let mut buf = BytesMut::new();
        let mut params = vec![
            ("user", user.as_str()),
            ("database", dbname.as_str()),
            ("client_encoding", "UTF8"),
        ];
        params.extend_from_slice(extra);
        frontend::startup_message(params.iter().copied(), &mut buf).map_err(io)?;
        connection.send(&buf).await?;
        let password = || -> Result<Vec<u8>, Error> {
            if let Some(p) = &given {
                return Ok(p.clone());
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
            match connection.receive().await? {
                Message::AuthenticationOk => {}
                Message::AuthenticationCleartextPassword => {
                    let mut buf = BytesMut::new();
                    frontend::password_message(&password()?, &mut buf).map_err(io)?;
                    connection.send(&buf).await?;
                }
                Message::AuthenticationMd5Password(body) => {
                    let hash = postgres_protocol::authentication::md5_hash(
                        user.as_bytes(),
                        &password()?,
                        body.salt(),
                    );
                    let mut buf = BytesMut::new();
                    frontend::password_message(hash.as_bytes(), &mut buf).map_err(io)?;
                    connection.send(&buf).await?;
                }
                Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut offered = false;
                    while let Some(m) = mechanisms.next().map_err(io)? {
                        offered |= m == "SCRAM-SHA-256";
                    }
                    if !offered {
                        return Err("the server offers no SASL mechanism we speak".into());
                    }
                    let exchange = ScramSha256::new(&password()?, ChannelBinding::unsupported());
                    let mut buf = BytesMut::new();
                    frontend::sasl_initial_response("SCRAM-SHA-256", exchange.message(), &mut buf)
                        .map_err(io)?;
                    connection.send(&buf).await?;
                    scram = Some(exchange);
                }
                Message::AuthenticationSaslContinue(body) => {
                    let exchange = scram.as_mut().ok_or("unexpected SASL message")?;
                    exchange.update(body.data()).map_err(io)?;
                    let mut buf = BytesMut::new();
                    frontend::sasl_response(exchange.message(), &mut buf).map_err(io)?;
                    connection.send(&buf).await?;
                }
                Message::AuthenticationSaslFinal(body) => {
                    let exchange = scram.as_mut().ok_or("unexpected SASL message")?;
                    exchange
                        .finish(body.data())
                        .map_err(|e| format!("the server's SCRAM proof is wrong: {e}"))?;
                }
                Message::BackendKeyData(body) => {
                    connection.key = Some((body.process_id(), body.secret_key()));
                }
                Message::ParameterStatus(_) | Message::NoticeResponse(_) => {}
                Message::ReadyForQuery(_) => return Ok(connection),
                Message::ErrorResponse(body) => return Err(error_text(body.fields())),
                _ => return Err("unexpected message while logging in".into()),
            }
        }
    }

    pub async fn send(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.stream.write_all(buf).await.map_err(lost)
    }

    /// The next message, waiting for it.
    pub async fn receive(&mut self) -> Result<Message, Error> {
        loop {
            if let Some(message) = self.buffered()? {
                return Ok(message);
            }
            if self.stream.read_buf(&mut self.read).await.map_err(lost)? == 0 {
                return Err("the server closed the connection".into());
            }
        }
    }

    /// The next message if it has already arrived whole.
    pub fn buffered(&mut self) -> Result<Option<Message>, Error> {
        Message::parse(&mut self.read).map_err(io)
    }

    /// Waits for a CopyBothResponse (which `postgres-protocol` does not
    /// parse), skipping notices. An ErrorResponse comes back as its
    /// SQLSTATE and text.
    pub async fn start_copy_both(&mut self) -> Result<(), (String, Error)> {
        use bytes::Buf;
        loop {
            if self.read.len() >= 5 {
                if self.read[0] == b'W' {
                    let len = u32::from_be_bytes(self.read[1..5].try_into().expect("4 bytes"));
                    if self.read.len() > len as usize {
                        self.read.advance(len as usize + 1);
                        return Ok(());
                    }
                } else {
                    match self.buffered() {
                        Ok(Some(Message::ErrorResponse(body))) => {
                            return Err(error_parts(body.fields()))
                        }
                        Ok(Some(_)) => continue,
                        Ok(None) => {}
                        Err(e) => return Err(("08P01".into(), e)),
                    }
                }
            }
            match self.stream.read_buf(&mut self.read).await {
                Ok(0) => return Err(("08006".into(), "the server closed the connection".into())),
                Ok(_) => {}
                Err(e) => return Err(("08006".into(), lost(e))),
            }
        }
    }

    /// Sends a simple query.
    pub async fn send_query(&mut self, sql: &str) -> Result<(), Error> {
        let mut buf = BytesMut::new();
        frontend::query(sql, &mut buf).map_err(io)?;
        self.send(&buf).await
    }

    /// Runs a query and returns its rows as text (NULL as None), for the
    /// small answers of replication commands.
    pub async fn simple_rows(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>, Error> {
        self.send_query(sql).await?;
        let mut rows = Vec::new();
        let mut failed = None;
        loop {
            match self.receive().await? {
                Message::DataRow(body) => {
                    let data = body.buffer();
                    let mut ranges = body.ranges();
                    let mut row = Vec::new();
                    while let Some(range) = ranges.next().map_err(io)? {
                        row.push(range.map(|r| String::from_utf8_lossy(&data[r]).into_owned()));
                    }
                    rows.push(row);
                }
                Message::ErrorResponse(body) => {
                    failed = Some(error_text(body.fields()));
                }
                Message::ReadyForQuery(_) => {
                    return match failed {
                        Some(e) => Err(e),
                        None => Ok(rows),
                    }
                }
                _ => {}
            }
        }
    }

    /// Ends the session politely.
    pub async fn terminate(mut self) {
        let mut buf = BytesMut::new();
        frontend::terminate(&mut buf);
        let _ = self.send(&buf).await;
        let _ = self.stream.shutdown().await;
    }
}

pub fn io(e: std::io::Error) -> Error {
    format!("protocol error: {e}")
}

fn lost(e: std::io::Error) -> Error {
    format!("connection to the server lost: {e}")
}

/// "SEVERITY:  message" with DETAIL and HINT lines, as psql prints them.
pub fn error_text(fields: postgres_protocol::message::backend::ErrorFields<'_>) -> String {
    error_parts(fields).1
}

/// The SQLSTATE of an error and its text as [`error_text`] writes it.
pub fn error_parts(
    mut fields: postgres_protocol::message::backend::ErrorFields<'_>,
) -> (String, String) {
    let (mut severity, mut message, mut detail, mut hint) =
        (String::from("ERROR"), String::new(), None, None);
    let mut code = String::new();
    while let Ok(Some(field)) = fields.next() {
        let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
        match field.type_() {
            b'V' => severity = value,
            b'M' => message = value,
            b'D' => detail = Some(value),
            b'H' => hint = Some(value),
            b'C' => code = value,
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
    (code, text)
}

/// Cancels a running statement: a CancelRequest on a new connection, as
/// psql's Ctrl-C sends.
pub struct CancelHandle {
    host: String,
    port: u16,
    key: Option<(i32, i32)>,
}

impl CancelHandle {
    pub fn of(connection: &Connection) -> CancelHandle {
        CancelHandle {
            host: connection.host.clone(),
            port: connection.port,
            key: connection.key,
        }
    }

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
