//! Transaction state that reads need: the snapshot of table versions taken
//! when the transaction started and the rows it has written but not yet
//! committed. A session's DataFusion config carries a [`TxnSlot`]; table
//! scans look there to see what the transaction sees.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use parking_lot::Mutex;

use super::table::{Table, TableVersion};

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

/// Rows a transaction added to one table.
#[derive(Debug, Clone)]
pub struct PendingWrite {
    pub table: Arc<Table>,
    pub batches: Vec<RecordBatch>,
}

/// Pending writes by table id; cloned whole for savepoints.
pub type Writes = BTreeMap<u64, PendingWrite>;

#[derive(Debug)]
pub struct Transaction {
    /// Every table's version when the transaction began.
    snapshot: HashMap<u64, Arc<TableVersion>>,
    writes: Mutex<Writes>,
}

impl Transaction {
    pub fn new(snapshot: HashMap<u64, Arc<TableVersion>>) -> Transaction {
        Transaction {
            snapshot,
            writes: Mutex::new(BTreeMap::new()),
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

    /// What the transaction sees of `table`: its base version plus its own
    /// uncommitted rows.
    pub fn visible(&self, table: &Table) -> (Arc<TableVersion>, Vec<RecordBatch>) {
        let pending = self
            .writes
            .lock()
            .get(&table.id())
            .map(|w| w.batches.clone())
            .unwrap_or_default();
        (self.base_version(table), pending)
    }

    /// The rows this transaction has already added to `table`.
    pub fn pending_for(&self, table: &Table) -> Vec<RecordBatch> {
        self.writes
            .lock()
            .get(&table.id())
            .map(|w| w.batches.clone())
            .unwrap_or_default()
    }

    pub fn add(&self, table: &Arc<Table>, batches: Vec<RecordBatch>) {
        let mut writes = self.writes.lock();
        writes
            .entry(table.id())
            .or_insert_with(|| PendingWrite {
                table: table.clone(),
                batches: Vec::new(),
            })
            .batches
            .extend(batches);
    }

    pub fn writes(&self) -> Writes {
        self.writes.lock().clone()
    }

    pub fn restore_writes(&self, writes: Writes) {
        *self.writes.lock() = writes;
    }
}
