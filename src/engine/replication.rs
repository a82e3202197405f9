//! What replication shares between the layers: positions in the log
//! (LSNs), the `synchronous_commit` levels, and the live state of the WAL
//! senders (on a primary) and of the WAL receiver (on a replica), which the
//! system views show and synchronous commits wait on. The storage layer
//! ships and applies the log; the replication front end drives it.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{QuiverError, Result};

tokio::task_local! {
    static STATEMENT: Arc<CommitWatch>;
}

/// What a statement's commits tell the session running it. Once a commit
/// is logged the statement must not be stopped by dropping it (the client
/// would hear of a failure for a change that happened); a cancel or a
/// statement timeout then only ends a wait for synchronous replicas, and
/// the statement reports success with a warning, as PostgreSQL does.
/// It also carries the session's `synchronous_commit`, which commits the
/// engine makes on the statement's behalf (DDL, TRUNCATE) wait for.
#[derive(Debug)]
pub struct CommitWatch {
    sync: SyncLevel,
    logged: AtomicBool,
    stop_waiting: CancellationToken,
    gave_up: AtomicBool,
}

impl CommitWatch {
    pub fn new(sync: SyncLevel) -> CommitWatch {
        CommitWatch {
            sync,
            logged: AtomicBool::new(false),
            stop_waiting: CancellationToken::new(),
            gave_up: AtomicBool::new(false),
        }
    }

    /// The running statement's `synchronous_commit` (`on` outside one).
    pub fn statement_sync_level() -> SyncLevel {
        STATEMENT.try_with(|w| w.sync).unwrap_or(SyncLevel::On)
    }

    /// Runs `statement` with this watch as its own.
    pub async fn watch<F: Future>(self: &Arc<Self>, statement: F) -> F::Output {
        STATEMENT.scope(self.clone(), statement).await
    }

    /// Whether the statement has logged a commit.
    pub fn logged(&self) -> bool {
        self.logged.load(Ordering::Acquire)
    }

    /// Ends a wait for synchronous replicas, now or when it starts.
    pub fn stop_waiting(&self) {
        self.stop_waiting.cancel();
    }

    /// Whether a wait for synchronous replicas was ended by
    /// [`CommitWatch::stop_waiting`].
    pub fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::Acquire)
    }

    /// Notes, for the statement running now, that a commit was logged.
    pub(super) fn note_logged() {
        let _ = STATEMENT.try_with(|w| w.logged.store(true, Ordering::Release));
    }
}

/// A position in the WAL: the file's epoch in the high 24 bits and the
/// byte offset in it in the low 40 (a file may pass 4 GiB). Printed as
/// PostgreSQL prints a `pg_lsn` (`16/B374D848`), and ordered the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

const OFFSET_BITS: u32 = 40;

impl Lsn {
    pub fn new(epoch: u64, offset: u64) -> Lsn {
        Lsn((epoch << OFFSET_BITS) | offset)
    }

    pub fn epoch(self) -> u64 {
        self.0 >> OFFSET_BITS
    }

    pub fn offset(self) -> u64 {
        self.0 & ((1 << OFFSET_BITS) - 1)
    }

    /// `hi/lo` in hexadecimal, as PostgreSQL writes it.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (hi, lo) = text.trim().split_once('/')?;
        let hi = u32::from_str_radix(hi, 16).ok()?;
        let lo = u32::from_str_radix(lo, 16).ok()?;
        Some(Lsn((u64::from(hi) << 32) | u64::from(lo)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 as u32)
    }
}

/// How much a commit waits for before it is acknowledged
/// (`synchronous_commit`, as in PostgreSQL).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyncLevel {
    /// Not even the local WAL sync (a crash may lose the last 200 ms).
    Off,
    /// The local WAL sync only, whatever replicas are configured.
    Local,
    /// Also: the synchronous replicas have written it (not yet synced).
    RemoteWrite,
    /// Also: the synchronous replicas have it durably in their WAL.
    On,
    /// Also: the synchronous replicas have applied it (a read there sees it).
    RemoteApply,
}

impl SyncLevel {
    pub fn parse(value: &str) -> Option<SyncLevel> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "1" => SyncLevel::On,
            "off" | "false" | "no" | "0" => SyncLevel::Off,
            "local" => SyncLevel::Local,
            "remote_write" => SyncLevel::RemoteWrite,
            "remote_apply" => SyncLevel::RemoteApply,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SyncLevel::Off => "off",
            SyncLevel::Local => "local",
            SyncLevel::RemoteWrite => "remote_write",
            SyncLevel::On => "on",
            SyncLevel::RemoteApply => "remote_apply",
        }
    }

    /// Whether the commit waits for the local WAL sync.
    pub fn syncs_locally(self) -> bool {
        self != SyncLevel::Off
    }
}

/// One WAL sender: a replica (or a base backup) connected to this server.
#[derive(Clone, Debug)]
pub struct SenderStatus {
    pub pid: i32,
    pub user: String,
    pub application_name: String,
    pub client_addr: Option<IpAddr>,
    pub started: DateTime<Utc>,
    /// `backup`, `catchup` or `streaming`.
    pub state: &'static str,
    pub sent: Lsn,
    pub write: Lsn,
    pub flush: Lsn,
    pub apply: Lsn,
    pub write_lag: Option<Duration>,
    pub flush_lag: Option<Duration>,
    pub replay_lag: Option<Duration>,
    pub reply_time: Option<DateTime<Utc>>,
    /// WAL bytes between what this server has flushed and what the
    /// replica has applied.
    pub lag_bytes: u64,
    /// Counts toward `--synchronous-replicas` (a base backup does not).
    pub streaming: bool,
}

impl SenderStatus {
    fn reached(&self, level: SyncLevel) -> Lsn {
        match level {
            SyncLevel::RemoteWrite => self.write,
            SyncLevel::RemoteApply => self.apply,
            _ => self.flush,
        }
    }
}

/// The WAL receiver of a replica.
#[derive(Clone, Debug, Default)]
pub struct ReceiverStatus {
    pub pid: i32,
    /// `starting`, `streaming`, `waiting` (reconnecting) or `stopped`.
    pub status: String,
    pub receive_start_lsn: Lsn,
    pub receive_start_tli: u64,
    pub written: Lsn,
    pub flushed: Lsn,
    pub received_tli: u64,
    pub last_msg_send_time: Option<DateTime<Utc>>,
    pub last_msg_receipt_time: Option<DateTime<Utc>>,
    pub latest_end_lsn: Lsn,
    pub latest_end_time: Option<DateTime<Utc>>,
    pub slot_name: String,
    pub sender_host: String,
    pub sender_port: u16,
    /// The primary's URL without its password.
    pub conninfo: String,
    /// Why the receiver is not streaming, when it is not.
    pub last_error: Option<String>,
}

/// What `pg_promote()` calls: asks the replica to become a primary and
/// answers when it is one (or why it cannot be).
pub type PromoteHook = Box<dyn Fn() -> std::sync::mpsc::Receiver<Result<()>> + Send + Sync>;

/// The replication state of one server.
pub struct Replication {
    /// Identifies the data directory's lineage: a replica follows only a
    /// primary with the same system id.
    system_id: AtomicU64,
    /// Increases at every promotion.
    timeline: AtomicU64,
    /// Commits wait until this many replicas have them (`--synchronous-replicas`).
    synchronous: AtomicUsize,
    senders: Mutex<BTreeMap<u64, SenderStatus>>,
    next_sender: AtomicU64,
    /// Bumped whenever a sender's positions change.
    progress: watch::Sender<u64>,
    receiver: Mutex<Option<ReceiverStatus>>,
    in_recovery: AtomicBool,
    /// The end of the last commit a replica applied.
    replayed: AtomicU64,
    replayed_at: Mutex<Option<DateTime<Utc>>>,
    promote: Mutex<Option<PromoteHook>>,
}

impl fmt::Debug for Replication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Replication")
            .field("timeline", &self.timeline())
            .field("in_recovery", &self.in_recovery())
            .finish_non_exhaustive()
    }
}

impl Default for Replication {
    fn default() -> Replication {
        Replication {
            system_id: AtomicU64::new(0),
            timeline: AtomicU64::new(1),
            synchronous: AtomicUsize::new(0),
            senders: Mutex::new(BTreeMap::new()),
            next_sender: AtomicU64::new(1),
            progress: watch::Sender::new(0),
            receiver: Mutex::new(None),
            in_recovery: AtomicBool::new(false),
            replayed: AtomicU64::new(0),
            replayed_at: Mutex::new(None),
            promote: Mutex::new(None),
        }
    }
}

impl Replication {
    pub fn system_id(&self) -> u64 {
        self.system_id.load(Ordering::Acquire)
    }

    pub fn set_system_id(&self, id: u64) {
        self.system_id.store(id, Ordering::Release);
    }

    pub fn timeline(&self) -> u64 {
        self.timeline.load(Ordering::Acquire)
    }

    pub fn set_timeline(&self, timeline: u64) {
        self.timeline.store(timeline, Ordering::Release);
    }

    pub fn synchronous_replicas(&self) -> usize {
        self.synchronous.load(Ordering::Relaxed)
    }

    pub fn set_synchronous_replicas(&self, n: usize) {
        self.synchronous.store(n, Ordering::Relaxed);
        self.progress.send_modify(|v| *v += 1);
    }

    /// A new WAL sender; its status stays listed until the returned id is
    /// passed to [`Replication::remove_sender`].
    pub fn add_sender(&self, status: SenderStatus) -> u64 {
        let id = self.next_sender.fetch_add(1, Ordering::Relaxed);
        self.senders.lock().insert(id, status);
        id
    }

    pub fn update_sender(&self, id: u64, update: impl FnOnce(&mut SenderStatus)) {
        if let Some(status) = self.senders.lock().get_mut(&id) {
            update(status);
        }
        self.progress.send_modify(|v| *v += 1);
    }

    pub fn remove_sender(&self, id: u64) {
        self.senders.lock().remove(&id);
        self.progress.send_modify(|v| *v += 1);
    }

    pub fn senders(&self) -> Vec<SenderStatus> {
        self.senders.lock().values().cloned().collect()
    }

    /// Waits until `--synchronous-replicas` replicas have reached `lsn` as
    /// `level` asks (at once for `local` and `off`, or with no synchronous
    /// replicas configured). With too few replicas connected, it waits
    /// for them, as PostgreSQL does.
    pub async fn wait_for_replicas(&self, lsn: Lsn, level: SyncLevel) {
        if level < SyncLevel::RemoteWrite {
            return;
        }
        let mut changes = self.progress.subscribe();
        let watch = STATEMENT.try_with(Arc::clone).ok();
        loop {
            let wanted = self.synchronous_replicas();
            if wanted == 0 {
                return;
            }
            let have = self
                .senders
                .lock()
                .values()
                .filter(|s| s.streaming && s.reached(level) >= lsn)
                .count();
            if have >= wanted {
                return;
            }
            let stopped = async {
                match &watch {
                    Some(watch) => watch.stop_waiting.cancelled().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = changes.changed() => if changed.is_err() {
                    return;
                },
                _ = stopped => {
                    if let Some(watch) = &watch {
                        watch.gave_up.store(true, Ordering::Release);
                    }
                    return;
                }
            }
        }
    }

    /// `quorum` when commits wait for replicas, else `async`.
    pub fn sync_state(&self) -> &'static str {
        if self.synchronous_replicas() > 0 {
            "quorum"
        } else {
            "async"
        }
    }

    pub fn in_recovery(&self) -> bool {
        self.in_recovery.load(Ordering::Acquire)
    }

    pub fn set_in_recovery(&self, on: bool) {
        self.in_recovery.store(on, Ordering::Release);
    }

    pub fn set_receiver(&self, status: Option<ReceiverStatus>) {
        *self.receiver.lock() = status;
    }

    pub fn update_receiver(&self, update: impl FnOnce(&mut ReceiverStatus)) {
        if let Some(status) = self.receiver.lock().as_mut() {
            update(status);
        }
    }

    pub fn receiver(&self) -> Option<ReceiverStatus> {
        self.receiver.lock().clone()
    }

    /// A replica applied everything up to `lsn`.
    pub fn set_replayed(&self, lsn: Lsn) {
        self.replayed.store(lsn.0, Ordering::Release);
        *self.replayed_at.lock() = Some(Utc::now());
    }

    pub fn replayed(&self) -> Lsn {
        Lsn(self.replayed.load(Ordering::Acquire))
    }

    /// When the last commit was applied on this replica.
    pub fn replayed_at(&self) -> Option<DateTime<Utc>> {
        *self.replayed_at.lock()
    }

    pub fn set_promote_hook(&self, hook: Option<PromoteHook>) {
        *self.promote.lock() = hook;
    }

    /// `pg_promote()`: makes this replica a primary, waiting up to `wait`
    /// for it (None: asks without waiting).
    pub fn promote(&self, wait: Option<Duration>) -> Result<bool> {
        if !self.in_recovery() {
            return Err(QuiverError::NotInPrerequisiteState(
                "recovery is not in progress: this server is not a replica".into(),
            ));
        }
        let answer = match self.promote.lock().as_ref() {
            Some(hook) => hook(),
            None => {
                return Err(QuiverError::NotInPrerequisiteState(
                    "this replica cannot be promoted while it starts".into(),
                ))
            }
        };
        let Some(wait) = wait else {
            return Ok(true);
        };
        match answer.recv_timeout(wait) {
            Ok(Ok(())) => Ok(true),
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_print_and_parse_as_postgres_does() {
        let lsn = Lsn::new(3, 0x1234);
        assert_eq!(lsn.epoch(), 3);
        assert_eq!(lsn.offset(), 0x1234);
        assert_eq!(Lsn::parse(&lsn.to_string()), Some(lsn));
        assert_eq!(Lsn::parse("0/0"), Some(Lsn(0)));
        assert_eq!(Lsn::parse("16/B374D848"), Some(Lsn(0x16_B374_D848)));
        assert!(Lsn::parse("nope").is_none());
        assert!(Lsn::new(1, 0) > Lsn::new(0, 1 << 39));
    }

    #[tokio::test]
    async fn synchronous_commits_wait_for_enough_replicas() {
        let replication = std::sync::Arc::new(Replication::default());
        let target = Lsn::new(1, 100);
        // No synchronous replicas: nothing to wait for.
        replication.wait_for_replicas(target, SyncLevel::On).await;
        replication.set_synchronous_replicas(1);
        let status = SenderStatus {
            pid: 1,
            user: "r".into(),
            application_name: "r1".into(),
            client_addr: None,
            started: Utc::now(),
            state: "streaming",
            sent: Lsn(0),
            write: Lsn(0),
            flush: Lsn(0),
            apply: Lsn(0),
            write_lag: None,
            flush_lag: None,
            replay_lag: None,
            reply_time: None,
            lag_bytes: 0,
            streaming: true,
        };
        let id = replication.add_sender(status);
        let waiting = {
            let replication = replication.clone();
            tokio::spawn(async move { replication.wait_for_replicas(target, SyncLevel::On).await })
        };
        // Written is not enough for `on`.
        replication.update_sender(id, |s| s.write = target);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        // `local` never waits.
        replication
            .wait_for_replicas(target, SyncLevel::Local)
            .await;
        replication.update_sender(id, |s| s.flush = target);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("released")
            .unwrap();
    }
}
