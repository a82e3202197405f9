//! The primary's side of a replica's stream: reads the WAL files from the
//! replica's position up to what is flushed (never past it: a replica must
//! not hold a commit the primary could lose in a crash), and records what
//! the replica reports, for `pg_stat_replication`, its slot and the
//! commits waiting for synchronous replicas. The wire front end moves the
//! bytes; this decides them.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::{xlog_data, StreamMessage};
use crate::engine::replication::SenderStatus;
use crate::engine::{Database, Lsn};
use crate::error::{QuiverError, Result};
use crate::storage::backup::primary_storage;
use crate::storage::wal::{is_record_boundary, wal_epochs, wal_path};

/// WAL bytes per XLogData message.
const CHUNK: usize = 1 << 20;
/// A replica that says nothing for this long is gone (wal_sender_timeout).
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an idle stream sends a keepalive.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// Who is on the other end.
pub struct Peer {
    pub pid: i32,
    pub user: String,
    pub application_name: String,
    pub client_addr: Option<IpAddr>,
}

pub struct WalSender {
    db: Arc<Database>,
    id: u64,
    slot: Option<String>,
    /// The next byte to send.
    position: Lsn,
    flushed: watch::Receiver<Lsn>,
    file: Option<(u64, File)>,
    /// Positions sent and when, to measure the replica's lag.
    sent_at: VecDeque<(Lsn, Instant)>,
    last_reply: Instant,
}

impl WalSender {
    /// Starts streaming at `start` (a record boundary the primary still
    /// has). With a slot, the WAL from there on is kept for the replica.
    pub fn start(
        db: &Arc<Database>,
        peer: Peer,
        slot: Option<String>,
        start: Lsn,
    ) -> Result<WalSender> {
        let storage = primary_storage(db)?;
        let flushed = storage.wal.flushed();
        if start > flushed {
            return Err(QuiverError::NotInPrerequisiteState(format!(
                "requested starting point {start} is ahead of the WAL flush position of this server {flushed}"
            )));
        }
        let path = wal_path(storage.dir(), start.epoch());
        let oldest = wal_epochs(storage.dir())?.first().copied();
        if !path.exists() {
            return Err(removed(start, oldest));
        }
        if !is_record_boundary(&path, start.offset())? {
            return Err(QuiverError::InvalidParameterValue(format!(
                "requested starting point {start} is not the start of a WAL record"
            )));
        }
        if let Some(slot) = &slot {
            storage.slots.acquire(slot, start)?;
        }
        let id = db.replication.add_sender(SenderStatus {
            pid: peer.pid,
            user: peer.user,
            application_name: peer.application_name,
            client_addr: peer.client_addr,
            started: chrono::Utc::now(),
            state: "catchup",
            sent: start,
            write: start,
            flush: start,
            apply: start,
            write_lag: None,
            flush_lag: None,
            replay_lag: None,
            reply_time: None,
            lag_bytes: storage.wal_bytes_since(start),
            streaming: true,
        });
        Ok(WalSender {
            db: db.clone(),
            id,
            slot,
            position: start,
            flushed: storage.wal.watch_flushed(),
            file: None,
            sent_at: VecDeque::new(),
            last_reply: Instant::now(),
        })
    }

    /// How far this server's log is flushed.
    pub fn flushed(&self) -> Lsn {
        *self.flushed.borrow()
    }

    /// Waits until there is WAL to send.
    pub async fn wal_arrived(&mut self) {
        while self.position >= *self.flushed.borrow_and_update() {
            if self.flushed.changed().await.is_err() {
                // The log is gone (shutdown): nothing more will come.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The next XLogData message, None when everything flushed was sent.
    /// Blocking file reads of at most a megabyte.
    pub fn next_message(&mut self) -> Result<Option<Bytes>> {
        loop {
            let flushed = *self.flushed.borrow();
            if self.position >= flushed {
                self.set_state("streaming");
                return Ok(None);
            }
            let storage = primary_storage(&self.db)?;
            let epoch = self.position.epoch();
            // A finished file is read to its end, the current one to what
            // is flushed.
            let limit = if epoch < flushed.epoch() {
                None
            } else {
                Some(flushed.offset())
            };
            let file = match &mut self.file {
                Some((open, file)) if *open == epoch => file,
                _ => {
                    let path = wal_path(storage.dir(), epoch);
                    let file = File::open(&path).map_err(|_| {
                        removed(
                            self.position,
                            wal_epochs(storage.dir())
                                .ok()
                                .and_then(|e| e.first().copied()),
                        )
                    })?;
                    &mut self.file.insert((epoch, file)).1
                }
            };
            let end = match limit {
                Some(end) => end,
                None => file.metadata()?.len(),
            };
            if self.position.offset() >= end {
                // The file is done: the next one holds what follows.
                let next = wal_epochs(storage.dir())?
                    .into_iter()
                    .find(|e| *e > epoch)
                    .unwrap_or(flushed.epoch());
                self.position = Lsn::new(next, 0);
                self.file = None;
                continue;
            }
            let len = (end - self.position.offset()).min(CHUNK as u64) as usize;
            let mut data = vec![0; len];
            file.seek(SeekFrom::Start(self.position.offset()))?;
            file.read_exact(&mut data)?;
            let start = self.position;
            self.position = Lsn::new(epoch, start.offset() + len as u64);
            self.sent_at.push_back((self.position, Instant::now()));
            if self.sent_at.len() > 10_000 {
                self.sent_at.pop_front();
            }
            self.set_state("catchup");
            let sent = self.position;
            self.db
                .replication
                .update_sender(self.id, |s| s.sent = sent);
            return Ok(Some(xlog_data(start, flushed, &data)));
        }
    }

    /// A message from the replica: its status (or hot standby feedback,
    /// ignored). Anything else is a protocol violation.
    pub fn receive(&mut self, data: Bytes) -> Result<()> {
        self.last_reply = Instant::now();
        let StreamMessage::Status {
            write,
            flush,
            apply,
            sent_at,
        } = StreamMessage::parse(data)?
        else {
            return Ok(());
        };
        let now = Instant::now();
        let lag_to = |lsn: Lsn| -> Option<Duration> {
            self.sent_at
                .iter()
                .take_while(|(at, _)| *at <= lsn)
                .last()
                .map(|(_, when)| now.duration_since(*when))
        };
        let (write_lag, flush_lag, replay_lag) = (lag_to(write), lag_to(flush), lag_to(apply));
        while self.sent_at.front().is_some_and(|(at, _)| *at <= apply) {
            self.sent_at.pop_front();
        }
        let storage = primary_storage(&self.db)?;
        if let Some(slot) = &self.slot {
            storage.slots.advance(slot, flush);
        }
        let lag_bytes = storage.wal_bytes_since(apply);
        self.db.replication.update_sender(self.id, |s| {
            s.write = write;
            s.flush = flush;
            s.apply = apply;
            s.write_lag = write_lag.or(s.write_lag);
            s.flush_lag = flush_lag.or(s.flush_lag);
            s.replay_lag = replay_lag.or(s.replay_lag);
            s.reply_time = super::from_pg_time(sent_at);
            s.lag_bytes = lag_bytes;
        });
        Ok(())
    }

    /// Whether the replica has been silent for too long.
    pub fn timed_out(&self) -> bool {
        self.last_reply.elapsed() > REPLY_TIMEOUT
    }

    fn set_state(&self, state: &'static str) {
        self.db.replication.update_sender(self.id, |s| {
            if s.state != state {
                s.state = state;
            }
        });
    }
}

impl Drop for WalSender {
    fn drop(&mut self) {
        self.db.replication.remove_sender(self.id);
        if let (Some(slot), Some(storage)) = (&self.slot, crate::storage::storage_of(&self.db)) {
            storage.slots.release(slot);
        }
    }
}

/// The error for a position whose WAL file is gone.
fn removed(position: Lsn, oldest: Option<u64>) -> QuiverError {
    let kept = match oldest {
        Some(epoch) => format!("this server keeps the WAL from {} on", Lsn::new(epoch, 0)),
        None => "this server keeps no older WAL".into(),
    };
    QuiverError::UndefinedFile(format!(
        "requested WAL position {position} has already been removed ({kept}): the replica fell \
         behind the WAL the primary keeps (--max-replica-lag); take a new base backup \
         (quiver serve --rebase-if-needed)"
    ))
}
