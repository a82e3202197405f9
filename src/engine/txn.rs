//! Transaction state that reads need: the snapshot of table versions taken
//! when the transaction started and the rows it has written but not yet
//! committed. A session's DataFusion config carries a [`TxnSlot`]; table
//! scans look there to see what the transaction sees.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use datafusion::arrow::record_batch::RecordBatch;

use super::catalog::CatalogState;
use super::table::{Change, Conflict, KeyDelta, Table, TableVersion};
use crate::error::Result;
use crate::storage::record::Commit;

/// The current transaction of a session, if any (a DataFusion config
/// extension, so `TableProvider::scan` can find it).
#[derive(Debug, Default)]
pub struct TxnSlot(Mutex<Option<Arc<Transaction>>>);

impl TxnSlot {
    pub fn get(&self) -> Option<Arc<Transaction>> {
        self.0.lock().clone()
    }

    pub fn set(&self, txn: Option<Arc<Transaction>>) {
        *self.0.lock() = txn;
    }
}

/// What a transaction did to one table: the version it sees (its base
/// with its own changes applied), the changes in order (for the WAL) and
/// how they move the unique keys.
#[derive(Debug, Clone)]
pub struct PendingWrite {
    pub table: Arc<Table>,
    pub version: Arc<TableVersion>,
    pub changes: Vec<Change>,
    pub delta: KeyDelta,
}

/// Pending writes by table id; cloned whole for savepoints (the versions
/// are shared, so that is cheap).
pub type Writes = BTreeMap<u64, PendingWrite>;

/// DDL a transaction has run: the catalog as it sees it, the catalog
/// version that copy was made from, and the logged effects to commit.
#[derive(Debug, Clone)]
pub struct DdlState {
    pub catalog: Arc<CatalogState>,
    pub catalog_version: u64,
    pub commit: Commit,
}

/// What a savepoint keeps: the writes and the DDL as they were.
#[derive(Debug, Clone)]
pub struct Saved {
    writes: Writes,
    ddl: Option<DdlState>,
}

#[derive(Debug)]
pub struct Transaction {
    /// Every table's version when the transaction began.
    snapshot: HashMap<u64, Arc<TableVersion>>,
    writes: Mutex<Writes>,
    ddl: Mutex<Option<DdlState>>,
}

impl Transaction {
    pub fn new(snapshot: HashMap<u64, Arc<TableVersion>>) -> Transaction {
        Transaction {
            snapshot,
            writes: Mutex::new(BTreeMap::new()),
            ddl: Mutex::new(None),
        }
    }

    /// The committed version this transaction reads of `table`: its
    /// snapshot, or, for a table created since, the current one.
    pub fn base_version(&self, table: &Table) -> Arc<TableVersion> {
        self.snapshot
            .get(&table.id())
            .cloned()
            .unwrap_or_else(|| table.snapshot())
    }

    /// What the transaction sees of `table`: its base version with its own
    /// changes applied.
    pub fn visible(&self, table: &Table) -> Arc<TableVersion> {
        match self.writes.lock().get(&table.id()) {
            Some(write) => write.version.clone(),
            None => self.base_version(table),
        }
    }

    /// Applies `change` to what the transaction sees of `table`, checking
    /// unique constraints; on error nothing changes.
    pub fn apply(&self, table: &Arc<Table>, change: Change) -> Result<()> {
        let mut writes = self.writes.lock();
        let (base, mut delta) = match writes.get_mut(&table.id()) {
            Some(write) => (write.version.clone(), std::mem::take(&mut write.delta)),
            None => (self.base_version(table), table.key_delta()),
        };
        // `apply` leaves the delta as it was when it fails.
        let next = match table.apply(&base, &change, &mut delta) {
            Ok(next) => next,
            Err(e) => {
                if let Some(write) = writes.get_mut(&table.id()) {
                    write.delta = delta;
                }
                return Err(e);
            }
        };
        let write = writes.entry(table.id()).or_insert_with(|| PendingWrite {
            table: table.clone(),
            version: base,
            changes: Vec::new(),
            delta: KeyDelta::default(),
        });
        write.delta = delta;
        write.version = Arc::new(next);
        write.changes.push(change);
        Ok(())
    }

    /// ON CONFLICT: which rows of `batch` have a key (under the constraints
    /// `only`) that the transaction already sees.
    pub fn conflicts(
        &self,
        table: &Table,
        batch: &RecordBatch,
        only: &[usize],
    ) -> Result<Vec<Conflict>> {
        let writes = self.writes.lock();
        let delta = writes.get(&table.id()).map(|w| &w.delta);
        table.conflicts(delta, batch, only)
    }

    /// Whether the transaction has changed anything.
    pub fn has_writes(&self) -> bool {
        !self.writes.lock().is_empty()
    }

    /// Arrow bytes of the version the transaction sees, per table it wrote.
    pub fn written_bytes(&self) -> BTreeMap<u64, usize> {
        self.writes
            .lock()
            .iter()
            .map(|(id, write)| (*id, write.version.memory_bytes()))
            .collect()
    }

    pub fn writes(&self) -> Writes {
        self.writes.lock().clone()
    }

    /// The catalog as this transaction's DDL left it, if it ran any.
    pub fn catalog(&self) -> Option<Arc<CatalogState>> {
        self.ddl.lock().as_ref().map(|d| d.catalog.clone())
    }

    /// The DDL state, for a change to extend (callers put it back).
    pub fn ddl(&self) -> parking_lot::MutexGuard<'_, Option<DdlState>> {
        self.ddl.lock()
    }

    /// Everything the transaction has done so far (SAVEPOINT).
    pub fn save(&self) -> Saved {
        Saved {
            writes: self.writes(),
            ddl: self.ddl.lock().clone(),
        }
    }

    /// Back to a savepoint.
    pub fn restore(&self, saved: Saved) {
        *self.writes.lock() = saved.writes;
        *self.ddl.lock() = saved.ddl;
    }
}
