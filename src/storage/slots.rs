//! Replication slots: for each replica (by name), the WAL position it
//! still needs, so a checkpoint keeps the WAL files after it. Kept in
//! `REPLICATION_SLOTS` (JSON, replaced atomically), so a restarted primary
//! still keeps what its replicas need. Positions are saved at checkpoints
//! and when a replica disconnects: after a crash a slot may hold a little
//! more WAL than needed, never less.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::wal::sync_dir;
use crate::engine::Lsn;
use crate::error::{QuiverError, Result};

const SLOTS_FILE: &str = "REPLICATION_SLOTS";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Slot {
    pub name: String,
    /// The replica has everything before this position durably.
    pub restart_lsn: u64,
    /// When a replica last used the slot (Unix seconds).
    pub last_active: i64,
    /// A replica is connected through it now (not saved).
    #[serde(skip)]
    pub active: bool,
}

#[derive(Debug)]
pub struct Slots {
    path: PathBuf,
    slots: Mutex<BTreeMap<String, Slot>>,
}

impl Slots {
    pub fn open(data_dir: &Path) -> Result<Slots> {
        let path = data_dir.join(SLOTS_FILE);
        let slots = match std::fs::read(&path) {
            Ok(bytes) => {
                let list: Vec<Slot> =
                    serde_json::from_slice(&bytes).map_err(|e| QuiverError::Corrupt {
                        path: path.display().to_string(),
                        offset: 0,
                        reason: format!("not a valid list of replication slots: {e}"),
                    })?;
                list.into_iter().map(|s| (s.name.clone(), s)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Slots {
            path,
            slots: Mutex::new(slots),
        })
    }

    /// Takes the slot `name` for a connected replica that needs the WAL
    /// from `from` on, creating it when missing. A slot another replica
    /// streams from now is refused (55006).
    pub fn acquire(&self, name: &str, from: Lsn) -> Result<()> {
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_string()).or_insert_with(|| Slot {
            name: name.to_string(),
            restart_lsn: from.0,
            last_active: 0,
            active: false,
        });
        if slot.active {
            return Err(QuiverError::ObjectInUse(format!(
                "replication slot \"{name}\" is active for another replica"
            )));
        }
        slot.active = true;
        slot.restart_lsn = from.0;
        slot.last_active = chrono::Utc::now().timestamp();
        drop(slots);
        self.save()
    }

    /// Keeps the WAL from `from` on for `name` without taking the slot
    /// (a base backup, before its replica starts streaming).
    pub fn reserve(&self, name: &str, from: Lsn) -> Result<()> {
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_string()).or_insert_with(|| Slot {
            name: name.to_string(),
            restart_lsn: from.0,
            last_active: 0,
            active: false,
        });
        slot.restart_lsn = from.0;
        slot.last_active = chrono::Utc::now().timestamp();
        drop(slots);
        self.save()
    }

    /// The replica confirmed it has everything before `flushed`.
    pub fn advance(&self, name: &str, flushed: Lsn) {
        if let Some(slot) = self.slots.lock().get_mut(name) {
            slot.restart_lsn = slot.restart_lsn.max(flushed.0);
            slot.last_active = chrono::Utc::now().timestamp();
        }
    }

    /// The replica disconnected; its slot keeps the WAL it needs.
    pub fn release(&self, name: &str) {
        if let Some(slot) = self.slots.lock().get_mut(name) {
            slot.active = false;
        }
        if let Err(e) = self.save() {
            tracing::warn!("could not save the replication slots: {e}");
        }
    }

    pub fn drop_slot(&self, name: &str) -> Result<bool> {
        let dropped = self.slots.lock().remove(name).is_some();
        self.save()?;
        Ok(dropped)
    }

    pub fn list(&self) -> Vec<Slot> {
        self.slots.lock().values().cloned().collect()
    }

    /// Writes the slots (temp file, fsync, rename).
    pub fn save(&self) -> Result<()> {
        let list = self.list();
        let bytes = serde_json::to_vec_pretty(&list)
            .map_err(|e| QuiverError::Internal(format!("encoding the replication slots: {e}")))?;
        let tmp = self.path.with_extension("tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_survive_a_restart_and_refuse_a_second_replica() {
        let dir = tempfile::tempdir().unwrap();
        let slots = Slots::open(dir.path()).unwrap();
        slots.acquire("r1", Lsn::new(2, 0)).unwrap();
        assert!(slots.acquire("r1", Lsn::new(2, 0)).is_err());
        slots.advance("r1", Lsn::new(2, 100));
        slots.release("r1");
        let again = Slots::open(dir.path()).unwrap();
        let list = again.list();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].restart_lsn, Lsn::new(2, 100).0);
        assert!(!list[0].active);
        assert!(again.drop_slot("r1").unwrap());
        assert!(Slots::open(dir.path()).unwrap().list().is_empty());
    }
}
