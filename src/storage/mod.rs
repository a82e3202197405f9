//! Durability: the write-ahead log, Parquet checkpoints with their
//! manifest, and recovery from both.
//!
//! ```text
//! data-dir/
//!   LOCK                      held by the running process
//!   MANIFEST                  the last checkpoint: schemas, tables, views
//!   REPLICATION_SLOTS         the WAL each replica still needs
//!   tables/<id>-<version>.parquet
//!   wal/<epoch>.wal           commits since (epoch >= MANIFEST's wal_epoch)
//! ```
//!
//! A replica's `wal/` is a byte-for-byte copy of its primary's (same
//! epochs, same offsets), so a position means the same on both.

pub mod backup;
pub mod checkpoint;
pub mod manifest;
pub mod recovery;
pub mod slots;
pub mod wal;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::any::Any;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::engine::commit::Commit;
use crate::engine::{CommitLog, Database, Durable, LogStatus, Lsn, Replication, SyncLevel};

pub use crate::engine::CheckpointStats;
pub use checkpoint::{checkpoint, checkpoint_every};
use manifest::Manifest;
pub use recovery::open;
use wal::Wal;

/// Writes a database that has no data directory (one [`recovery::open_damaged`]
/// read) into `dir` as a checkpoint, making `dir` a data directory that
/// opens with everything `db` holds. `dir` must be missing or empty.
pub fn salvage_into(db: &Database, dir: &Path) -> crate::error::Result<CheckpointStats> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(crate::error::QuiverError::InvalidParameterValue(format!(
            "{} is not empty: salvage into a new directory",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir)?;
    let wal = Wal::open(dir, 1)?;
    db.attach_log(Arc::new(Storage::new(
        dir,
        wal,
        1,
        None,
        db.replication.clone(),
    )?));
    checkpoint(db)
}

/// The storage behind `db`, if its commit log is a data directory.
pub fn storage_of(db: &Database) -> Option<&Storage> {
    db.commit_log()?.as_any().downcast_ref::<Storage>()
}

impl CommitLog for Storage {
    fn append(&self, commit: &Commit, sync: SyncLevel) -> crate::error::Result<Durable> {
        if self.is_mirror() {
            // A replica's log is its primary's; nothing else may go in.
            return Err(crate::error::QuiverError::ReadOnly(
                "cannot execute a change in a read-only transaction: this server is a replica"
                    .into(),
            ));
        }
        let appended = self.wal.append(commit, sync.syncs_locally())?;
        let replication = self.replication.clone();
        Ok(Durable::from_future(async move {
            let end = appended.wait().await;
            replication.wait_for_replicas(end, sync).await;
        }))
    }

    fn checkpoint(&self, db: &Database) -> crate::error::Result<CheckpointStats> {
        checkpoint::checkpoint_with(self, db)
    }

    fn maybe_checkpoint(&self, db: &Arc<Database>) {
        checkpoint::maybe_checkpoint(self, db)
    }

    fn status(&self) -> LogStatus {
        LogStatus {
            wal_bytes: self.wal_size(),
            last_checkpoint: self.last_checkpoint(),
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// WAL size past which a checkpoint starts on its own.
pub const DEFAULT_CHECKPOINT_WAL_BYTES: u64 = 64 * 1024 * 1024;
/// WAL a replica may fall behind by before its slot is dropped.
pub const DEFAULT_MAX_REPLICA_LAG: u64 = 1 << 30;
/// How long a checkpoint file stays after a newer checkpoint replaced it.
pub const DEFAULT_FILE_GRACE: Duration = Duration::from_secs(60);

/// The on-disk side of a database with a data directory.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    pub wal: Wal,
    /// The WAL file commits go to now (a primary's).
    epoch: AtomicU64,
    /// This is a replica: its WAL is written by [`Wal::mirror`], and a
    /// checkpoint ends where replay has got to instead of starting a file.
    mirror: AtomicBool,
    /// A replica's replay position: the end of the last commit applied.
    applied: AtomicU64,
    pub replication: Arc<Replication>,
    pub slots: slots::Slots,
    /// Files that readers outside the checkpoint (base backups) are
    /// reading: checkpoints do not delete them.
    pins: Mutex<BTreeMap<u64, backup::Pinned>>,
    next_pin: AtomicU64,
    /// Checkpoint files no longer in the manifest, and since when.
    superseded: Mutex<Vec<(String, Instant)>>,
    file_grace: Mutex<Duration>,
    max_replica_lag: AtomicU64,
    /// The manifest of the last checkpoint, to reuse unchanged files.
    last_manifest: Mutex<Option<Manifest>>,
    /// When the last checkpoint completed.
    last_checkpoint_at: Mutex<Option<chrono::DateTime<chrono::Utc>>>,
    /// One checkpoint at a time.
    checkpoint_lock: Mutex<()>,
    checkpoint_running: AtomicBool,
    checkpoint_wal_bytes: AtomicU64,
}

impl Storage {
    /// When the last checkpoint completed, and the ids of the tables it
    /// holds (None before the first checkpoint).
    pub fn last_checkpoint(&self) -> Option<(chrono::DateTime<chrono::Utc>, Vec<u64>)> {
        let at = (*self.last_checkpoint_at.lock())?;
        let ids = self
            .last_manifest
            .lock()
            .as_ref()
            .map(|m| m.tables.iter().map(|t| t.def.id).collect())
            .unwrap_or_default();
        Some((at, ids))
    }

    pub fn new(
        dir: &Path,
        wal: Wal,
        epoch: u64,
        manifest: Option<Manifest>,
        replication: Arc<Replication>,
    ) -> crate::error::Result<Storage> {
        // The manifest file was written when that checkpoint completed.
        let last_checkpoint_at = manifest.as_ref().and_then(|_| {
            let modified = std::fs::metadata(Manifest::path(dir))
                .ok()?
                .modified()
                .ok()?;
            Some(chrono::DateTime::<chrono::Utc>::from(modified))
        });
        Ok(Storage {
            last_checkpoint_at: Mutex::new(last_checkpoint_at),
            dir: dir.to_path_buf(),
            wal,
            epoch: AtomicU64::new(epoch),
            mirror: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            replication,
            slots: slots::Slots::open(dir)?,
            pins: Mutex::new(BTreeMap::new()),
            next_pin: AtomicU64::new(1),
            superseded: Mutex::new(Vec::new()),
            file_grace: Mutex::new(DEFAULT_FILE_GRACE),
            max_replica_lag: AtomicU64::new(DEFAULT_MAX_REPLICA_LAG),
            last_manifest: Mutex::new(manifest),
            checkpoint_lock: Mutex::new(()),
            checkpoint_running: AtomicBool::new(false),
            checkpoint_wal_bytes: AtomicU64::new(DEFAULT_CHECKPOINT_WAL_BYTES),
        })
    }

    /// How long a checkpoint file stays after a newer checkpoint stopped
    /// using it (readers outside the process may still be reading it).
    pub fn set_file_grace(&self, grace: Duration) {
        *self.file_grace.lock() = grace;
    }

    /// WAL bytes a replica's slot may hold back before it is dropped.
    pub fn set_max_replica_lag(&self, bytes: u64) {
        self.max_replica_lag.store(bytes, Ordering::Relaxed);
    }

    pub fn is_mirror(&self) -> bool {
        self.mirror.load(Ordering::Acquire)
    }

    /// Makes this a replica's storage, replay having reached `applied`.
    pub fn start_mirroring(&self, applied: Lsn) {
        self.applied.store(applied.0, Ordering::Release);
        self.mirror.store(true, Ordering::Release);
    }

    /// A replica applied everything before `lsn`. The caller holds the
    /// commit gate (shared), so a checkpoint sees rows and position together.
    pub fn set_applied(&self, lsn: Lsn) {
        self.applied.store(lsn.0, Ordering::Release);
    }

    pub fn applied(&self) -> Lsn {
        Lsn(self.applied.load(Ordering::Acquire))
    }

    /// Promotion: commits from now on go to a WAL file of their own.
    pub fn stop_mirroring(&self) -> crate::error::Result<()> {
        let epoch = self.wal.written().epoch() + 1;
        self.wal.rotate(epoch)?;
        self.epoch.store(epoch, Ordering::Release);
        self.mirror.store(false, Ordering::Release);
        Ok(())
    }

    /// The oldest WAL epoch a checkpoint at `cut` keeps: replicas' slots
    /// (a slot further behind than `--max-replica-lag` is dropped, with a
    /// warning) and running base backups hold older files.
    fn wal_keep_from(&self, cut: u64) -> u64 {
        let mut keep = cut;
        let max_lag = self.max_replica_lag.load(Ordering::Relaxed);
        for slot in self.slots.list() {
            let from = Lsn(slot.restart_lsn);
            if from.epoch() >= cut {
                continue;
            }
            let behind = self.wal_bytes_since(from);
            if behind > max_lag {
                tracing::warn!(
                    "replication slot \"{}\" holds {} MiB of WAL, more than --max-replica-lag ({} MiB): dropped it; its replica must take a new base backup (quiver serve --rebase-if-needed)",
                    slot.name,
                    behind >> 20,
                    max_lag >> 20
                );
                if let Err(e) = self.slots.drop_slot(&slot.name) {
                    tracing::warn!("could not save the replication slots: {e}");
                }
                continue;
            }
            keep = keep.min(from.epoch());
        }
        for pin in self.pins.lock().values() {
            keep = keep.min(pin.wal_from);
        }
        keep
    }

    /// WAL bytes on disk from `from` to the end of the log.
    pub fn wal_bytes_since(&self, from: Lsn) -> u64 {
        let end = self.wal.flushed();
        if from >= end {
            return 0;
        }
        if from.epoch() == end.epoch() {
            return end.offset() - from.offset();
        }
        let mut bytes = end.offset();
        for epoch in from.epoch()..end.epoch() {
            let size = std::fs::metadata(wal::wal_path(&self.dir, epoch))
                .map(|m| m.len())
                .unwrap_or(0);
            bytes += if epoch == from.epoch() {
                size.saturating_sub(from.offset())
            } else {
                size
            };
        }
        bytes
    }

    /// WAL size past which a checkpoint starts on its own.
    pub fn set_checkpoint_wal_bytes(&self, bytes: u64) {
        self.checkpoint_wal_bytes.store(bytes, Ordering::Relaxed);
    }

    fn checkpoint_wal_bytes(&self) -> u64 {
        self.checkpoint_wal_bytes.load(Ordering::Relaxed)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in the current WAL file.
    pub fn wal_size(&self) -> u64 {
        self.wal.size()
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}
