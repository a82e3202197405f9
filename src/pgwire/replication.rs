//! A replication connection's commands (`replication=true` at start-up),
//! as PostgreSQL's walsender answers them: IDENTIFY_SYSTEM as a row,
//! BASE_BACKUP in COPY OUT, START_REPLICATION in COPY BOTH. What to send
//! is decided in `crate::replication`; this moves it over the socket. An
//! error in a command is an ErrorResponse and the connection stays; a
//! broken stream ends this connection only.

use std::io;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use futures::{Sink, SinkExt, Stream, StreamExt};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::copy::{CopyBothResponse, CopyData, CopyDone, CopyOutResponse};
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};
use pgwire::messages::response::{CommandComplete, ReadyForQuery, TransactionStatus};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use tokio::io::AsyncReadExt;

use super::handler::ConnectionHandlers;
use crate::error::QuiverError;
use crate::replication::sender::{WalSender, KEEPALIVE_INTERVAL};
use crate::replication::{backup_stream, keepalive, Command};
use crate::storage::backup::Backup;

/// What the connection does after a command.
pub enum Flow {
    Continue,
    Close,
}

/// Runs one command of a replication connection.
pub async fn command<T>(
    socket: &mut T,
    handlers: &ConnectionHandlers,
    text: &str,
) -> io::Result<Flow>
where
    T: Sink<PgWireBackendMessage, Error = io::Error>
        + Stream<Item = Result<PgWireFrontendMessage, PgWireError>>
        + Unpin,
{
    let db = handlers.db().clone();
    let outcome = match Command::parse(text) {
        Err(e) => Err(e),
        Ok(Command::IdentifySystem) => identify_system(socket, &db).await?,
        Ok(Command::BaseBackup { slot }) => base_backup(socket, handlers, slot).await?,
        Ok(Command::StartReplication {
            slot,
            start,
            timeline,
        }) => {
            let ours = db.replication.timeline();
            match timeline {
                Some(t) if t != ours => Err(QuiverError::NotInPrerequisiteState(format!(
                    "requested timeline {t} is not this server's timeline {ours}"
                ))),
                _ => match WalSender::start(&db, handlers.replication_peer(), slot, start) {
                    Ok(sender) => return stream(socket, handlers, sender).await,
                    Err(e) => Err(e),
                },
            }
        }
        Ok(Command::TimelinePromoted {
            timeline,
            system_id,
        }) => superseded(socket, &db, timeline, system_id).await?,
    };
    match outcome {
        Ok(()) => {}
        Err(e) => {
            let info = ErrorInfo::new("ERROR".into(), e.sqlstate().code().into(), e.to_string());
            socket
                .send(PgWireBackendMessage::ErrorResponse(info.into()))
                .await?;
        }
    }
    socket
        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
            TransactionStatus::Idle,
        )))
        .await?;
    Ok(Flow::Continue)
}

type Outcome = std::result::Result<(), QuiverError>;

/// One row of text columns.
async fn send_row<T>(socket: &mut T, columns: &[(&str, u32)], values: &[String]) -> io::Result<()>
where
    T: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let fields = columns
        .iter()
        .map(|(name, oid)| FieldDescription::new(name.to_string(), 0, 0, *oid, -1, -1, 0))
        .collect();
    socket
        .feed(PgWireBackendMessage::RowDescription(RowDescription::new(
            fields,
        )))
        .await?;
    let mut data = BytesMut::new();
    for value in values {
        data.put_i32(value.len() as i32);
        data.put_slice(value.as_bytes());
    }
    socket
        .feed(PgWireBackendMessage::DataRow(DataRow::new(
            data,
            values.len() as i16,
        )))
        .await
}

const TEXT: u32 = 25;
const INT4: u32 = 23;
const BOOL: u32 = 16;

async fn identify_system<T>(socket: &mut T, db: &crate::engine::Database) -> io::Result<Outcome>
where
    T: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let position = crate::storage::storage_of(db)
        .map(|s| s.wal.flushed())
        .unwrap_or_default();
    send_row(
        socket,
        &[
            ("systemid", TEXT),
            ("timeline", INT4),
            ("xlogpos", TEXT),
            ("dbname", TEXT),
        ],
        &[
            db.replication.system_id().to_string(),
            db.replication.timeline().to_string(),
            position.to_string(),
            String::new(),
        ],
    )
    .await?;
    socket
        .send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
            "IDENTIFY_SYSTEM".into(),
        )))
        .await?;
    Ok(Ok(()))
}

/// A checkpoint's manifest and files, in COPY OUT.
async fn base_backup<T>(
    socket: &mut T,
    handlers: &ConnectionHandlers,
    slot: Option<String>,
) -> io::Result<Outcome>
where
    T: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let db = handlers.db().clone();
    let started = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || Backup::start(&db, slot.as_deref())).await
    };
    let backup = match started {
        Ok(Ok(backup)) => backup,
        Ok(Err(e)) => return Ok(Err(e)),
        Err(e) => {
            return Ok(Err(QuiverError::Internal(format!(
                "base backup failed: {e}"
            ))))
        }
    };
    let peer = handlers.replication_peer();
    let status = db
        .replication
        .add_sender(crate::engine::replication::SenderStatus {
            pid: peer.pid,
            user: peer.user,
            application_name: peer.application_name,
            client_addr: peer.client_addr,
            started: chrono::Utc::now(),
            state: "backup",
            sent: backup.start_lsn(),
            write: Default::default(),
            flush: Default::default(),
            apply: Default::default(),
            write_lag: None,
            flush_lag: None,
            replay_lag: None,
            reply_time: None,
            lag_bytes: 0,
            streaming: false,
        });
    let sent = send_backup(socket, &backup).await;
    db.replication.remove_sender(status);
    sent?;
    socket
        .send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
            "BASE_BACKUP".into(),
        )))
        .await?;
    Ok(Ok(()))
}

async fn send_backup<T>(socket: &mut T, backup: &Backup) -> io::Result<()>
where
    T: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let copy = |kind: u8, body: &[u8]| {
        let mut data = BytesMut::with_capacity(1 + body.len());
        data.put_u8(kind);
        data.put_slice(body);
        PgWireBackendMessage::CopyData(CopyData::new(data.freeze()))
    };
    socket
        .send(PgWireBackendMessage::CopyOutResponse(CopyOutResponse::new(
            1,
            0,
            vec![],
        )))
        .await?;
    let manifest = serde_json::to_vec(&backup.manifest).map_err(io::Error::other)?;
    socket
        .feed(copy(backup_stream::MANIFEST, &manifest))
        .await?;
    let mut chunk = vec![0u8; 1 << 20];
    for (name, size) in &backup.files {
        let mut header = Vec::with_capacity(8 + name.len());
        header.extend_from_slice(&size.to_be_bytes());
        header.extend_from_slice(name.as_bytes());
        socket.feed(copy(backup_stream::FILE, &header)).await?;
        let mut file = tokio::fs::File::open(backup.path(name)).await?;
        loop {
            let read = file.read(&mut chunk).await?;
            if read == 0 {
                break;
            }
            socket
                .send(copy(backup_stream::DATA, &chunk[..read]))
                .await?;
        }
    }
    socket.feed(copy(backup_stream::END, &[])).await?;
    socket
        .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await
}

/// Streams WAL in COPY BOTH until the replica ends it (CopyDone), goes
/// away, breaks the protocol or stops answering.
async fn stream<T>(
    socket: &mut T,
    handlers: &ConnectionHandlers,
    mut sender: WalSender,
) -> io::Result<Flow>
where
    T: Sink<PgWireBackendMessage, Error = io::Error>
        + Stream<Item = Result<PgWireFrontendMessage, PgWireError>>
        + Unpin,
{
    socket
        .send(PgWireBackendMessage::CopyBothResponse(
            CopyBothResponse::new(0, 0, vec![]),
        ))
        .await?;
    let mut tick = tokio::time::interval(KEEPALIVE_INTERVAL);
    tick.tick().await;
    loop {
        // Everything flushed goes out before waiting again.
        let mut queued = 0usize;
        loop {
            let next = tokio::task::block_in_place(|| sender.next_message());
            match next {
                Ok(Some(message)) => {
                    queued += message.len();
                    socket
                        .feed(PgWireBackendMessage::CopyData(CopyData::new(message)))
                        .await?;
                    if queued >= 4 << 20 {
                        socket.flush().await?;
                        queued = 0;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    drop(sender);
                    return end(socket, e.sqlstate().code(), &e.to_string()).await;
                }
            }
        }
        socket.flush().await?;
        tokio::select! {
            _ = sender.wal_arrived() => {}
            incoming = socket.next() => match incoming {
                Some(Ok(PgWireFrontendMessage::CopyData(data))) => {
                    if let Err(e) = sender.receive(data.data) {
                        // The slot is free before the client hears.
                        drop(sender);
                        return end(socket, "08P01", &e.to_string()).await;
                    }
                }
                Some(Ok(PgWireFrontendMessage::CopyDone(_))) => {
                    drop(sender);
                    socket.feed(PgWireBackendMessage::CopyDone(CopyDone::new())).await?;
                    socket
                        .feed(PgWireBackendMessage::CommandComplete(CommandComplete::new(
                            "START_REPLICATION".into(),
                        )))
                        .await?;
                    socket
                        .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                            TransactionStatus::Idle,
                        )))
                        .await?;
                    return Ok(Flow::Continue);
                }
                Some(Ok(PgWireFrontendMessage::CopyFail(_))) | Some(Ok(PgWireFrontendMessage::Terminate(_))) | None | Some(Err(_)) => {
                    return Ok(Flow::Close);
                }
                Some(Ok(_)) => {
                    drop(sender);
                    return end(socket, "08P01", "unexpected message type during replication: only CopyData and CopyDone").await;
                }
            },
            _ = tick.tick() => {
                if sender.timed_out() {
                    drop(sender);
                    return end(socket, "08006", "terminating walsender process due to replication timeout").await;
                }
                let message = keepalive(sender.flushed(), false);
                socket.send(PgWireBackendMessage::CopyData(CopyData::new(message))).await?;
            }
            _ = handlers.terminated() => {
                drop(sender);
                return end(socket, "57P01", "terminating connection due to administrator command").await;
            }
        }
    }
}

/// Ends the connection with a FATAL error.
async fn end<T>(socket: &mut T, code: &str, message: &str) -> io::Result<Flow>
where
    T: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    tracing::info!("replication connection ended: {message}");
    let info = ErrorInfo::new("FATAL".into(), code.into(), message.into());
    let _ = socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await;
    Ok(Flow::Close)
}

/// A promoted replica says this server was superseded: it stops taking
/// writes, now and after restarts.
async fn superseded<T>(
    socket: &mut T,
    db: &Arc<crate::engine::Database>,
    timeline: u64,
    system_id: u64,
) -> io::Result<Outcome>
where
    T: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    if system_id != db.replication.system_id() {
        return Ok(Err(QuiverError::NotInPrerequisiteState(format!(
            "system {system_id} is not this server's system {}",
            db.replication.system_id()
        ))));
    }
    let ours = db.replication.timeline();
    let fenced = timeline > ours && !db.replication.in_recovery();
    if fenced {
        let reason = format!(
            "this server is no longer the primary: a replica was promoted to timeline {timeline} \
             (this server is on timeline {ours}); re-attach it as a replica of the new primary \
             (quiver serve --replicate-from URL --rebase-if-needed)"
        );
        tracing::error!("{reason}");
        if let Err(e) = crate::storage::recovery::fence(db, &reason) {
            return Ok(Err(e));
        }
    }
    send_row(
        socket,
        &[("fenced", BOOL)],
        &[if fenced { "t" } else { "f" }.into()],
    )
    .await?;
    socket
        .send(PgWireBackendMessage::CommandComplete(CommandComplete::new(
            "TIMELINE_PROMOTED".into(),
        )))
        .await?;
    Ok(Ok(()))
}
