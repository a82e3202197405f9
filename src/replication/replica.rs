//! The replica's side: a base backup into an empty data directory, then
//! streaming. Received WAL is written to the replica's own log at the
//! same position as on the primary, synced, reported, applied through the
//! engine's replay (one commit at a time, so a query sees whole commits),
//! and reported again. Everything runs on one thread of its own; the
//! server serves read-only queries meanwhile. `pg_promote()` (or `quiver
//! promote` on a stopped replica) ends streaming and makes it a primary
//! on a new timeline; it then tells the old primary, whenever that one is
//! reachable again, that it was superseded.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::sync::mpsc;

use super::{backup_stream, status_update, StreamMessage};
use crate::client::{error_parts, Connection};
use crate::engine::replication::ReceiverStatus;
use crate::engine::{Compiler, Database, Lsn, Table};
use crate::error::QuiverError;
use crate::storage::manifest::Manifest;
use crate::storage::wal::next_frame;
use crate::storage::{storage_of, Storage};

/// A data directory made by a base backup holds this file until the
/// replica is promoted: such a directory is served only as a replica.
pub const STANDBY_FILE: &str = "STANDBY";

/// How a replica reaches its primary.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// `postgres://user:password@host:port/db` (the password may also come
    /// from PGPASSWORD).
    pub primary: String,
    /// The replica's name: its slot on the primary and its
    /// application_name in `pg_stat_replication`.
    pub name: String,
    /// Take a new base backup when the primary no longer has the WAL this
    /// replica needs (or is on a newer timeline).
    pub rebase_if_needed: bool,
}

/// Why streaming stopped.
#[derive(Debug)]
pub enum ReplicaError {
    /// Only a new base backup helps (the WAL is gone, another system, a
    /// newer timeline).
    NeedsRebase(String),
    /// Nothing this replica can do (an older timeline, replay failed).
    Fatal(String),
    /// Try again later (the primary is down or restarting).
    Retry(String),
}

impl std::fmt::Display for ReplicaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplicaError::NeedsRebase(m) | ReplicaError::Fatal(m) | ReplicaError::Retry(m) => {
                f.write_str(m)
            }
        }
    }
}

type Outcome<T> = std::result::Result<T, ReplicaError>;

fn retry(e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Retry(e.to_string())
}

fn fatal(e: impl std::fmt::Display) -> ReplicaError {
    ReplicaError::Fatal(e.to_string())
}

/// The primary's URL without its password.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) if credentials.contains(':') => {
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:********@{host}")
        }
        _ => url.to_string(),
    }
}

/// The host and port a URL names.
fn host_port(url: &str) -> (String, u16) {
    match crate::client::Target::parse(url) {
        Ok(target) => (target.host, target.port),
        Err(_) => (String::new(), 5432),
    }
}

async fn connect(options: &ReplicaOptions) -> Outcome<Connection> {
    let params = [
        ("replication", "true"),
        ("application_name", options.name.as_str()),
    ];
    Connection::connect(&options.primary, &params, |_| None)
        .await
        .map_err(|e| {
            // A login refused is not going to change by itself, but the
            // primary may be restarting: both are retried, and said.
            retry(format!("{}: {e}", redact(&options.primary)))
        })
}

/// What IDENTIFY_SYSTEM answers.
struct Identity {
    system_id: u64,
    timeline: u64,
}

async fn identify(connection: &mut Connection) -> Outcome<Identity> {
    let rows = connection
        .simple_rows("IDENTIFY_SYSTEM")
        .await
        .map_err(retry)?;
    let row = rows
        .first()
        .ok_or_else(|| fatal("IDENTIFY_SYSTEM answered no row"))?;
    let field = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    Ok(Identity {
        system_id: field(0)
            .parse()
            .map_err(|_| fatal("IDENTIFY_SYSTEM answered no system id: is this QuiverDB?"))?,
        timeline: field(1).parse().unwrap_or(0),
    })
}

/// Copies a consistent checkpoint of the primary into `dir` (which must
/// hold no database), keeping the WAL after it in the primary's slot for
/// this replica. Returns the position streaming starts from.
pub async fn base_backup(options: &ReplicaOptions, dir: &Path) -> anyhow::Result<Lsn> {
    if dir.join(crate::storage::manifest::MANIFEST_FILE).exists() {
        anyhow::bail!(
            "{} already holds a database: a base backup goes into an empty data directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("tables"))?;
    let mut connection = connect(options).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    connection
        .send_query(&format!("BASE_BACKUP SLOT {}", options.name))
        .await
        .map_err(anyhow::Error::msg)?;
    let started = std::time::Instant::now();
    let mut manifest: Option<Manifest> = None;
    let mut current: Option<(PathBuf, std::fs::File)> = None;
    let mut written: Vec<PathBuf> = Vec::new();
    let mut bytes = 0u64;
    let finish_file = |current: &mut Option<(PathBuf, std::fs::File)>,
                       written: &mut Vec<PathBuf>|
     -> anyhow::Result<()> {
        if let Some((path, file)) = current.take() {
            file.sync_all()?;
            let done = path.with_extension("parquet");
            std::fs::rename(&path, &done)?;
            written.push(done);
        }
        Ok(())
    };
    let mut ended = false;
    loop {
        match connection.receive().await.map_err(anyhow::Error::msg)? {
            Message::CopyOutResponse(_) | Message::CopyDone => {}
            Message::CopyData(body) => {
                let data = body.data();
                let (kind, rest) = data
                    .split_first()
                    .ok_or_else(|| anyhow::anyhow!("empty base backup message"))?;
                match *kind {
                    backup_stream::MANIFEST => {
                        manifest = Some(serde_json::from_slice(rest).map_err(|e| {
                            anyhow::anyhow!("the primary sent an unreadable manifest: {e}")
                        })?);
                    }
                    backup_stream::FILE => {
                        finish_file(&mut current, &mut written)?;
                        if rest.len() < 8 {
                            anyhow::bail!("malformed base backup file header");
                        }
                        let name = std::str::from_utf8(&rest[8..])?;
                        let path = backup_file(dir, name)?;
                        let part = path.with_extension("part");
                        current = Some((part.clone(), std::fs::File::create(&part)?));
                    }
                    backup_stream::DATA => {
                        let (_, file) = current
                            .as_mut()
                            .ok_or_else(|| anyhow::anyhow!("base backup data before a file"))?;
                        file.write_all(rest)?;
                        bytes += rest.len() as u64;
                    }
                    backup_stream::END => ended = true,
                    other => anyhow::bail!("unexpected base backup message {other}"),
                }
            }
            Message::ErrorResponse(body) => {
                anyhow::bail!(
                    "the primary refused the base backup: {}",
                    crate::client::error_text(body.fields())
                )
            }
            Message::ReadyForQuery(_) => break,
            _ => {}
        }
    }
    finish_file(&mut current, &mut written)?;
    let manifest = match (manifest, ended) {
        (Some(manifest), true) => manifest,
        _ => anyhow::bail!("the base backup ended early"),
    };
    for table in &manifest.tables {
        if !dir.join(&table.file).exists() {
            anyhow::bail!("the base backup lacks {}", table.file);
        }
    }
    crate::storage::wal::sync_dir(&dir.join("tables"))?;
    std::fs::write(dir.join(STANDBY_FILE), redact(&options.primary))?;
    manifest.write(dir)?;
    connection.terminate().await;
    tracing::info!(
        "base backup from {}: {} file(s), {} MiB, {} ms; replay starts at {}",
        redact(&options.primary),
        written.len(),
        bytes >> 20,
        started.elapsed().as_millis(),
        Lsn::new(manifest.wal_epoch, manifest.wal_offset)
    );
    Ok(Lsn::new(manifest.wal_epoch, manifest.wal_offset))
}

/// Where a file the primary names goes: only `tables/<name>.parquet`,
/// never outside the data directory.
fn backup_file(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let file = name.strip_prefix("tables/").unwrap_or("");
    let safe = !file.is_empty()
        && file.ends_with(".parquet")
        && file
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !file.contains("..");
    if !safe {
        anyhow::bail!("the primary sent a file named {name:?}, which is no checkpoint file");
    }
    Ok(dir.join("tables").join(file))
}

/// Empties a replica's data directory for a new base backup (the lock
/// file stays).
fn wipe(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name() == "LOCK" {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(&path)?;
        } else {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

async fn open_dir(dir: &Path) -> crate::error::Result<(Arc<Database>, Lsn)> {
    crate::storage::recovery::open_replica(dir, &crate::session::Definitions::for_database).await
}

/// A replica, opened and (when the primary answered) streaming.
pub struct Replica {
    pub db: Arc<Database>,
    connection: Option<(Connection, Lsn)>,
    options: ReplicaOptions,
}

/// Opens `dir` as a replica of `options.primary`: a base backup first
/// when it holds no database (or when it must be re-based and may be),
/// then streaming from where it stopped. A primary that cannot be reached
/// is not an error: the replica serves what it has and keeps trying.
pub async fn open(dir: &Path, options: ReplicaOptions) -> anyhow::Result<Replica> {
    let manifest = Manifest::read(dir)?;
    if manifest.is_some() && !dir.join(STANDBY_FILE).exists() {
        if !options.rebase_if_needed {
            anyhow::bail!(
                "{} holds a primary's database, not a replica's: to make it a replica of {}, \
                 start it with --rebase-if-needed (its data is replaced by a base backup)",
                dir.display(),
                redact(&options.primary)
            );
        }
        tracing::warn!(
            "{} held a primary's database; replacing it with a base backup of {}",
            dir.display(),
            redact(&options.primary)
        );
        wipe(dir)?;
    }
    if Manifest::read(dir)?.is_none() {
        wipe(dir)?;
        base_backup(&options, dir).await?;
    }
    let (db, resume) = open_dir(dir).await?;
    match start_streaming(&db, &options, resume).await {
        Ok(connection) => Ok(Replica {
            db,
            connection: Some((connection, resume)),
            options,
        }),
        Err(ReplicaError::NeedsRebase(why)) if options.rebase_if_needed => {
            tracing::warn!("{why}; taking a new base backup (--rebase-if-needed)");
            drop(db);
            wipe(dir)?;
            base_backup(&options, dir).await?;
            let (db, resume) = open_dir(dir).await?;
            let connection = start_streaming(&db, &options, resume)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(Replica {
                db,
                connection: Some((connection, resume)),
                options,
            })
        }
        Err(ReplicaError::NeedsRebase(why)) => anyhow::bail!(
            "{why}. Restart with --rebase-if-needed to replace this replica's data with a new base backup"
        ),
        Err(ReplicaError::Fatal(why)) => anyhow::bail!("{why}"),
        Err(ReplicaError::Retry(why)) => {
            tracing::warn!("cannot reach the primary yet ({why}); serving what this replica has and retrying");
            Ok(Replica {
                db,
                connection: None,
                options,
            })
        }
    }
}

/// Logs in, checks the primary is this replica's (same system, same
/// timeline) and starts the stream at `resume`.
async fn start_streaming(
    db: &Database,
    options: &ReplicaOptions,
    resume: Lsn,
) -> Outcome<Connection> {
    let mut connection = connect(options).await?;
    let primary = identify(&mut connection).await?;
    let ours = db.replication.timeline();
    if primary.system_id != db.replication.system_id() {
        return Err(ReplicaError::NeedsRebase(format!(
            "the primary {} is another database (system {}, this replica's is {})",
            redact(&options.primary),
            primary.system_id,
            db.replication.system_id()
        )));
    }
    if primary.timeline < ours {
        return Err(ReplicaError::Fatal(format!(
            "the primary {} is on timeline {}, older than this server's timeline {}: it was \
             superseded by a promotion; point --replicate-from at the current primary",
            redact(&options.primary),
            primary.timeline,
            ours
        )));
    }
    if primary.timeline > ours {
        return Err(ReplicaError::NeedsRebase(format!(
            "the primary {} is on timeline {}, newer than this replica's timeline {}: this \
             replica's log may hold commits the new timeline does not",
            redact(&options.primary),
            primary.timeline,
            ours
        )));
    }
    connection
        .send_query(&format!(
            "START_REPLICATION SLOT {} PHYSICAL {resume} TIMELINE {ours}",
            options.name
        ))
        .await
        .map_err(retry)?;
    match connection.start_copy_both().await {
        Ok(()) => Ok(connection),
        Err((code, text)) => Err(match code.as_str() {
            "58P01" => ReplicaError::NeedsRebase(text),
            "55000" | "22023" | "42601" | "0A000" => ReplicaError::Fatal(text),
            _ => ReplicaError::Retry(text),
        }),
    }
}

/// Starts the replica's receiver on a thread of its own: it streams,
/// reconnects when the primary goes away, and promotes when asked.
pub fn spawn(replica: Replica) -> std::io::Result<()> {
    let Replica {
        db,
        connection,
        options,
    } = replica;
    let (promote_tx, promote_rx) = mpsc::unbounded_channel();
    db.replication.set_promote_hook(Some(Box::new(move || {
        let (answer, rx) = std::sync::mpsc::channel();
        if promote_tx.send(answer).is_err() {
            let (gone, rx) = std::sync::mpsc::channel();
            let _ = gone.send(Err(QuiverError::NotInPrerequisiteState(
                "the replica's receiver has stopped".into(),
            )));
            return rx;
        }
        rx
    })));
    std::thread::Builder::new()
        .name("quiver-replica".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    tracing::error!("could not start the replica's receiver: {e}");
                    return;
                }
            };
            runtime.block_on(receive(db, connection, options, promote_rx));
        })?;
    Ok(())
}

type PromoteRequests = mpsc::UnboundedReceiver<PromoteAnswer>;

async fn receive(
    db: Arc<Database>,
    mut connection: Option<(Connection, Lsn)>,
    options: ReplicaOptions,
    mut promote: PromoteRequests,
) {
    let Some(storage) = storage_of(&db) else {
        return;
    };
    let (sender_host, sender_port) = host_port(&options.primary);
    db.replication.set_receiver(Some(ReceiverStatus {
        pid: std::process::id() as i32,
        status: "starting".into(),
        slot_name: options.name.clone(),
        sender_host,
        sender_port,
        conninfo: redact(&options.primary),
        received_tli: db.replication.timeline(),
        receive_start_tli: db.replication.timeline(),
        ..Default::default()
    }));
    let mut compiler = crate::session::Definitions::for_database(db.clone());
    let mut tables: HashMap<u64, Arc<Table>> = db
        .catalog()
        .schemas
        .values()
        .flat_map(|entry| entry.tables.values())
        .map(|table| (table.id(), table.clone()))
        .collect();
    let mut pause = Duration::from_millis(200);
    loop {
        let resume = storage.wal.written();
        let (live, start) = match connection.take() {
            Some(live) => live,
            None => {
                let attempt = tokio::select! {
                    attempt = start_streaming(&db, &options, resume) => attempt,
                    answer = promote.recv() => {
                        promote_and_fence(&db, &options, answer).await;
                        return;
                    }
                };
                match attempt {
                    Ok(live) => (live, resume),
                    Err(e) => {
                        stopped(&db, &e);
                        let wait = tokio::time::sleep(pause);
                        pause = (pause * 2).min(Duration::from_secs(5));
                        tokio::select! {
                            _ = wait => continue,
                            answer = promote.recv() => {
                                promote_and_fence(&db, &options, answer).await;
                                return;
                            }
                        }
                    }
                }
            }
        };
        pause = Duration::from_millis(200);
        tracing::info!("streaming from {} at {start}", redact(&options.primary));
        db.replication.update_receiver(|s| {
            s.status = "streaming".into();
            s.receive_start_lsn = start;
            s.last_error = None;
        });
        let mut stream = Stream {
            db: &db,
            storage,
            connection: live,
            buffer: BytesMut::new(),
            buffer_at: start,
            received: start,
            compiler: compiler.as_mut(),
            tables: &mut tables,
        };
        match stream.run(&mut promote).await {
            Ok(answer) => {
                let Stream { connection, .. } = stream;
                connection.terminate().await;
                promote_and_fence(&db, &options, Some(answer)).await;
                return;
            }
            Err(e) => stopped(&db, &e),
        }
    }
}

/// Streaming stopped: says why, in the log and in pg_stat_wal_receiver.
fn stopped(db: &Database, e: &ReplicaError) {
    match e {
        ReplicaError::Retry(why) => tracing::warn!("replication: {why}; retrying"),
        ReplicaError::NeedsRebase(why) => tracing::error!(
            "replication stopped: {why}. This replica serves what it has; restart it with \
             --rebase-if-needed to take a new base backup"
        ),
        ReplicaError::Fatal(why) => tracing::error!("replication stopped: {why}"),
    }
    let status = match e {
        ReplicaError::Retry(_) => "waiting",
        _ => "stopped",
    };
    db.replication.update_receiver(|s| {
        s.status = status.into();
        s.last_error = Some(e.to_string());
    });
}

struct Stream<'a> {
    db: &'a Arc<Database>,
    storage: &'a Storage,
    connection: Connection,
    /// Received bytes not yet applied (the start of a record at most).
    buffer: BytesMut,
    /// The position of `buffer`'s first byte.
    buffer_at: Lsn,
    /// The end of what was received and written.
    received: Lsn,
    compiler: &'a mut dyn Compiler,
    tables: &'a mut HashMap<u64, Arc<Table>>,
}

impl Stream<'_> {
    /// Streams until an error, or until a promotion is asked for (its
    /// answer channel is returned).
    async fn run(&mut self, promote: &mut PromoteRequests) -> Outcome<PromoteAnswer> {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            let first = tokio::select! {
                message = self.connection.receive() => message.map_err(retry)?,
                answer = promote.recv() => match answer {
                    Some(answer) => return Ok(answer),
                    None => return Err(fatal("the server is stopping")),
                },
                _ = tick.tick() => {
                    self.report(false).await?;
                    continue;
                }
            };
            // Everything that has arrived is written with one sync.
            let mut messages = vec![first];
            while messages.len() < 256 {
                match self.connection.buffered().map_err(retry)? {
                    Some(message) => messages.push(message),
                    None => break,
                }
            }
            let mut wrote = false;
            let mut reply = false;
            let mut new_file = false;
            for message in messages {
                match message {
                    Message::CopyData(body) => {
                        match StreamMessage::parse(Bytes::copy_from_slice(body.data()))
                            .map_err(fatal)?
                        {
                            StreamMessage::XLogData {
                                start,
                                end,
                                sent_at,
                                data,
                            } => {
                                if start.epoch() != self.received.epoch() {
                                    // The primary's file ended: what came
                                    // of it is applied before the next.
                                    if wrote {
                                        self.flush_and_apply().await?;
                                    }
                                    new_file = true;
                                }
                                self.write(start, data)?;
                                wrote = true;
                                let received = self.received;
                                self.db.replication.update_receiver(|s| {
                                    s.written = received;
                                    s.latest_end_lsn = end;
                                    s.latest_end_time = Some(chrono::Utc::now());
                                    s.last_msg_send_time = super::from_pg_time(sent_at);
                                    s.last_msg_receipt_time = Some(chrono::Utc::now());
                                });
                            }
                            StreamMessage::Keepalive { end, reply: asked } => {
                                reply |= asked;
                                self.db.replication.update_receiver(|s| {
                                    s.latest_end_lsn = end;
                                    s.last_msg_receipt_time = Some(chrono::Utc::now());
                                });
                            }
                            _ => {}
                        }
                    }
                    Message::CopyDone => {
                        return Err(retry("the primary ended the stream"));
                    }
                    Message::ErrorResponse(body) => {
                        let (code, text) = error_parts(body.fields());
                        return Err(match code.as_str() {
                            "58P01" => ReplicaError::NeedsRebase(text),
                            _ => ReplicaError::Retry(text),
                        });
                    }
                    _ => {}
                }
            }
            if wrote {
                self.flush_and_apply().await?;
            }
            self.report(reply).await?;
            if new_file {
                // The primary checkpointed: so does the replica, keeping
                // its own log as short as the primary's.
                crate::storage::checkpoint::checkpoint_soon(self.storage, self.db);
            }
        }
    }

    /// Syncs what was written, says so (synchronous commits on the
    /// primary wait for it), and applies it.
    async fn flush_and_apply(&mut self) -> Outcome<()> {
        self.storage.wal.flush().map_err(fatal)?;
        let flushed = self.received;
        self.db.replication.update_receiver(|s| s.flushed = flushed);
        self.report(false).await?;
        self.apply().await
    }

    /// Writes received WAL at its place in this replica's log.
    fn write(&mut self, start: Lsn, data: Bytes) -> Outcome<()> {
        if start != self.received {
            let next_file = start.epoch() > self.received.epoch() && start.offset() == 0;
            if !next_file || !self.buffer.is_empty() {
                return Err(fatal(format!(
                    "the primary sent WAL at {start}, but this replica expected {}",
                    self.received
                )));
            }
            self.buffer_at = start;
        }
        self.storage
            .wal
            .mirror(start, data.clone())
            .map_err(fatal)?;
        self.buffer.extend_from_slice(&data);
        self.received = Lsn::new(start.epoch(), start.offset() + data.len() as u64);
        Ok(())
    }

    /// Applies every whole commit received.
    async fn apply(&mut self) -> Outcome<()> {
        loop {
            let (commit, len) = match next_frame(&self.buffer) {
                Ok(Some(frame)) => frame,
                Ok(None) => return Ok(()),
                Err(e) => {
                    return Err(fatal(format!(
                        "the record at {} is damaged: {e}",
                        self.buffer_at
                    )))
                }
            };
            let end = Lsn::new(self.buffer_at.epoch(), self.buffer_at.offset() + len as u64);
            let storage = self.storage;
            self.db
                .replay_live(commit, self.tables, self.compiler, || {
                    storage.set_applied(end)
                })
                .await
                .map_err(|e| {
                    fatal(format!(
                        "could not apply the commit at {}: {e}",
                        self.buffer_at
                    ))
                })?;
            self.db.replication.set_replayed(end);
            self.buffer.advance(len);
            self.buffer_at = end;
        }
    }

    /// Tells the primary how far this replica has written, flushed and
    /// applied its log.
    async fn report(&mut self, reply: bool) -> Outcome<()> {
        let flushed = self.storage.wal.flushed();
        let message = status_update(self.received, flushed, self.storage.applied(), reply);
        let mut buf = BytesMut::new();
        frontend::CopyData::new(&message[..])
            .map_err(fatal)?
            .write(&mut buf);
        self.connection.send(&buf).await.map_err(retry)
    }
}

/// Makes this replica a primary: a checkpoint on a new timeline (the
/// manifest says so), then its own WAL file, then writable. Blocking
/// file work; the server keeps serving reads meanwhile.
pub fn promote_now(db: &Database) -> crate::error::Result<u64> {
    let storage = storage_of(db).ok_or_else(|| {
        QuiverError::NotInPrerequisiteState("this server has no data directory".into())
    })?;
    if !storage.is_mirror() {
        return Err(QuiverError::NotInPrerequisiteState(
            "recovery is not in progress: this server is not a replica".into(),
        ));
    }
    let timeline = db.replication.timeline() + 1;
    db.replication.set_timeline(timeline);
    if let Err(e) = db.checkpoint() {
        db.replication.set_timeline(timeline - 1);
        return Err(e);
    }
    storage.stop_mirroring()?;
    match std::fs::remove_file(storage.dir().join(STANDBY_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    db.replication.set_in_recovery(false);
    db.replication.set_receiver(None);
    db.replication.set_promote_hook(None);
    db.set_writable();
    tracing::info!(
        "promoted: this server is a primary on timeline {timeline}, from {}",
        storage.wal.written()
    );
    Ok(timeline)
}

type PromoteAnswer = std::sync::mpsc::Sender<crate::error::Result<()>>;

/// Promotes (answering `pg_promote()`), then keeps telling the old
/// primary it was superseded until it hears it: a primary that comes back
/// after a crash must not take writes on the old timeline.
async fn promote_and_fence(
    db: &Arc<Database>,
    options: &ReplicaOptions,
    answer: Option<PromoteAnswer>,
) {
    let promoted = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || promote_now(&db))
            .await
            .unwrap_or_else(|e| Err(QuiverError::Internal(format!("promotion failed: {e}"))))
    };
    let ok = promoted.is_ok();
    if let Err(e) = &promoted {
        tracing::error!("promotion failed: {e}");
    }
    if let Some(answer) = answer {
        let _ = answer.send(promoted.map(|_| ()));
    }
    if ok {
        fence_old_primary(db.clone(), options.clone()).await;
    }
}

async fn fence_old_primary(db: Arc<Database>, options: ReplicaOptions) {
    let timeline = db.replication.timeline();
    loop {
        match tell_superseded(&db, &options, timeline).await {
            Ok(true) => {
                tracing::info!(
                    "told the old primary {} that timeline {timeline} superseded it; it takes no more writes",
                    redact(&options.primary)
                );
                return;
            }
            Ok(false) => return,
            Err(e) => tracing::debug!("old primary not reachable yet: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Ok(false): nothing to tell (another system, or already on this
/// timeline or a later one).
async fn tell_superseded(db: &Database, options: &ReplicaOptions, timeline: u64) -> Outcome<bool> {
    let mut connection = connect(options).await?;
    let old = identify(&mut connection).await?;
    if old.system_id != db.replication.system_id() || old.timeline >= timeline {
        connection.terminate().await;
        return Ok(false);
    }
    connection
        .simple_rows(&format!(
            "TIMELINE_PROMOTED {timeline} SYSTEM {}",
            db.replication.system_id()
        ))
        .await
        .map_err(retry)?;
    connection.terminate().await;
    Ok(true)
}

/// `quiver promote --data-dir D` on a stopped replica.
pub async fn promote_offline(dir: &Path) -> anyhow::Result<u64> {
    if !dir.join(STANDBY_FILE).exists() {
        anyhow::bail!("{} is not a replica's data directory", dir.display());
    }
    let (db, _) = open_dir(dir).await?;
    let promoted = {
        let db = db.clone();
        tokio::task::spawn_blocking(move || promote_now(&db)).await??
    };
    let db2 = db.clone();
    tokio::task::spawn_blocking(move || db2.checkpoint()).await??;
    Ok(promoted)
}
