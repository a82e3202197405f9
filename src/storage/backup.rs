//! Base backups: a consistent checkpoint (its manifest and the files it
//! names) read out of a running server. The checkpoint's files and the
//! WAL after it are pinned while the backup reads them, and a replica's
//! slot (when named) keeps that WAL afterwards, until the replica streams.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::manifest::Manifest;
use super::{storage_of, Storage};
use crate::engine::{Database, Lsn};
use crate::error::{QuiverError, Result};

/// What a pin keeps: checkpoint files and the WAL from an epoch on.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub files: Vec<String>,
    pub wal_from: u64,
}

/// A checkpoint being copied out; its files stay until this is dropped.
pub struct Backup {
    db: Arc<Database>,
    pin: u64,
    pub manifest: Manifest,
    /// Each file (relative to the data directory) with its size.
    pub files: Vec<(String, u64)>,
    dir: PathBuf,
}

impl Backup {
    /// Writes a checkpoint and pins it. `slot`, when given, keeps the WAL
    /// after the checkpoint for the replica of that name. Blocking.
    pub fn start(db: &Arc<Database>, slot: Option<&str>) -> Result<Backup> {
        let storage = primary_storage(db)?;
        db.checkpoint()?;
        let _one_at_a_time = storage.checkpoint_lock.lock();
        let manifest = storage
            .last_manifest
            .lock()
            .clone()
            .ok_or_else(|| QuiverError::Internal("no checkpoint after CHECKPOINT".into()))?;
        if let Some(slot) = slot {
            storage
                .slots
                .reserve(slot, Lsn::new(manifest.wal_epoch, 0))?;
        }
        let mut files = Vec::with_capacity(manifest.tables.len());
        for table in &manifest.tables {
            let size = std::fs::metadata(storage.dir().join(&table.file))?.len();
            files.push((table.file.clone(), size));
        }
        let pin = storage.next_pin.fetch_add(1, Ordering::Relaxed);
        storage.pins.lock().insert(
            pin,
            Pinned {
                files: files.iter().map(|(f, _)| f.clone()).collect(),
                wal_from: manifest.wal_epoch,
            },
        );
        Ok(Backup {
            db: db.clone(),
            pin,
            manifest,
            files,
            dir: storage.dir().to_path_buf(),
        })
    }

    /// Where a file of the backup is.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The position replay starts from after this backup.
    pub fn start_lsn(&self) -> Lsn {
        Lsn::new(self.manifest.wal_epoch, self.manifest.wal_offset)
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        if let Some(storage) = storage_of(&self.db) {
            storage.pins.lock().remove(&self.pin);
        }
    }
}

/// The storage of a primary: replication needs a data directory, and
/// a replica does not pass its log on (no cascading replication).
pub fn primary_storage(db: &Database) -> Result<&Storage> {
    let storage = storage_of(db).ok_or_else(|| {
        QuiverError::FeatureNotSupported(
            "replication needs a data directory; this server keeps its database in memory only"
                .into(),
        )
    })?;
    if storage.is_mirror() {
        return Err(QuiverError::FeatureNotSupported(
            "this server is a replica, and replicas do not serve base backups or WAL \
             (no cascading replication): connect to the primary"
                .into(),
        ));
    }
    Ok(storage)
}
