//! The shell's connection to a running server (`quiver repl
//! postgres://user@host:port/db`): the simple query protocol, spoken with
//! `postgres-protocol`'s message codecs, so the shell sees what psql sees —
//! command tags, column types, notices, errors with their SQLSTATE.

use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::{backend::Message, frontend};

pub use crate::client::CancelHandle;
use crate::client::{error_text, io, Connection, Error};

use super::format::{ColumnKind, ResultSet};
use super::Output;

/// A logged-in connection.
pub struct Remote {
    connection: Connection,
    /// "user@host:port/db", for the banner.
    pub describe: String,
}

impl Remote {
    /// Connects and logs in. The password comes from the URL, PGPASSWORD,
    /// or `ask` (the terminal) when the server asks for one.
    pub async fn connect(url: &str, ask: impl Fn(&str) -> Option<String>) -> Result<Remote, Error> {
        let connection = Connection::connect(url, &[("application_name", "quiver")], ask).await?;
        let mut describe = format!(
            "{}@{}:{}/{}",
            connection.user, connection.host, connection.port, connection.dbname
        );
        if let Some(tls) = &connection.tls {
            describe.push_str(&format!(" (TLS: {tls})"));
        }
        Ok(Remote {
            connection,
            describe,
        })
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
        CancelHandle::of(&self.connection)
    }

    async fn send(&mut self, buf: &[u8]) -> Result<(), Error> {
        self.connection.send(buf).await
    }

    async fn receive(&mut self) -> Result<Message, Error> {
        self.connection.receive().await
    }
}
