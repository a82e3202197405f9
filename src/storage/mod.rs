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
pub mod record;
pub mod recovery;
pub mod wal;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;

pub use checkpoint::{checkpoint, maybe_checkpoint, CheckpointStats};
use manifest::Manifest;
pub use recovery::open;
use wal::Wal;

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
    /// One checkpoint at a time.
    checkpoint_lock: Mutex<()>,
    checkpoint_running: AtomicBool,
    checkpoint_wal_bytes: AtomicU64,
}

impl Storage {
    pub fn new(dir: &Path, wal: Wal, epoch: u64, manifest: Option<Manifest>) -> Storage {
        Storage {
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

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}
