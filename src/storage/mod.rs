//! Durability: the write-ahead log, Parquet checkpoints with their
//! manifest, and recovery from both.
//!
//! ```text
//! data-dir/
//!   LOCK                      held by the running process
//!   MANIFEST                  the last checkpoint: schemas, tables, views
//!   tables/<id>-<version>.parquet
//!   wal/<epoch>.wal           commits since (epoch >= MANIFEST's wal_epoch)
//! ```

pub mod checkpoint;
pub mod manifest;
pub mod recovery;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::any::Any;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::engine::commit::Commit;
use crate::engine::{CommitLog, Database, Durable, LogStatus};

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
    db.attach_log(Arc::new(Storage::new(dir, wal, 1, None)));
    checkpoint(db)
}

/// The storage behind `db`, if its commit log is a data directory.
pub fn storage_of(db: &Database) -> Option<&Storage> {
    db.commit_log()?.as_any().downcast_ref::<Storage>()
}

impl CommitLog for Storage {
    fn append(&self, commit: &Commit, sync: bool) -> crate::error::Result<Durable> {
        self.wal.append(commit, sync)
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

/// The on-disk side of a database with a data directory.
#[derive(Debug)]
pub struct Storage {
    dir: PathBuf,
    pub wal: Wal,
    /// The WAL file commits go to now.
    epoch: AtomicU64,
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

    pub fn new(dir: &Path, wal: Wal, epoch: u64, manifest: Option<Manifest>) -> Storage {
        // The manifest file was written when that checkpoint completed.
        let last_checkpoint_at = manifest.as_ref().and_then(|_| {
            let modified = std::fs::metadata(Manifest::path(dir))
                .ok()?
                .modified()
                .ok()?;
            Some(chrono::DateTime::<chrono::Utc>::from(modified))
        });
        Storage {
            last_checkpoint_at: Mutex::new(last_checkpoint_at),
            dir: dir.to_path_buf(),
            wal,
            epoch: AtomicU64::new(epoch),
            last_manifest: Mutex::new(manifest),
            checkpoint_lock: Mutex::new(()),
            checkpoint_running: AtomicBool::new(false),
            checkpoint_wal_bytes: AtomicU64::new(DEFAULT_CHECKPOINT_WAL_BYTES),
        }
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
