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
use crate::engine::commit::Commit;
use crate::error::Result;

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
    /// The committed version the first change applied to.
    pub base_version: u64,
    /// The changes' net effect on the base version: which of its rows
    /// are gone. `version` is the base's other rows, in order, followed by
    /// the rows the transaction added.
    pub net: NetEffect,
}

/// What a transaction did to the rows it read, whatever the order of its
/// statements: the base rows it removed (deleted or updated).
#[derive(Debug, Clone, Default)]
pub struct NetEffect {
    /// Live rows of the base version.
    pub base_rows: usize,
    /// Positions among the base's live rows that are gone (sorted).
    pub removed: Vec<u64>,
    /// TRUNCATE: every base row is gone.
    pub truncated: bool,
}

impl NetEffect {
    fn new(base_rows: usize) -> NetEffect {
        NetEffect {
            base_rows,
            ..NetEffect::default()
        }
    }

    /// Base rows still in the transaction's version (they come first).
    pub fn base_rows_left(&self) -> usize {
        if self.truncated {
            0
        } else {
            self.base_rows - self.removed.len()
        }
    }

    /// Whether the transaction only added rows.
    pub fn only_added(&self) -> bool {
        !self.truncated && self.removed.is_empty()
    }

    /// Records `change`, applied to the transaction's version as it was.
    fn record(&mut self, change: &Change) {
        let positions = match change {
            Change::Insert(_) => return,
            Change::Truncate => {
                self.truncated = true;
                self.removed.clear();
                return;
            }
            Change::Delete(positions) | Change::Update { positions, .. } => positions,
        };
        // Positions past the base's remaining rows are rows the
        // transaction added itself.
        let left = self.base_rows_left() as u64;
        let ranks = &positions[..positions.partition_point(|&p| p < left)];
        if ranks.is_empty() {
            return;
        }
        let gone = base_positions(&self.removed, ranks);
        self.removed = merge_sorted(&self.removed, &gone);
    }
}

/// The base positions of the rows at `ranks` among the rows `removed`
/// left (both sorted).
fn base_positions(removed: &[u64], ranks: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(ranks.len());
    let mut below = 0usize;
    for &rank in ranks {
        let mut p = rank + below as u64;
        while below < removed.len() && removed[below] <= p {
            below += 1;
            p = rank + below as u64;
        }
        out.push(p);
    }
    out
}

fn merge_sorted(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] < b[j] {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
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
    /// Tables ALTER TABLE replaced, with the committed version their
    /// rows were rebuilt from: at COMMIT they must still be at it.
    pub replaced: Vec<(Arc<Table>, u64)>,
}

impl DdlState {
    /// A transaction's DDL: its catalog becomes `next` (made from `base`,
    /// the catalog at `version`) and `commit` joins what COMMIT logs.
    pub fn install(
        slot: &mut Option<DdlState>,
        (base, version): (Arc<CatalogState>, u64),
        next: CatalogState,
        commit: Commit,
    ) -> &mut DdlState {
        let state = slot.get_or_insert_with(|| DdlState {
            catalog: base,
            catalog_version: version,
            commit: Commit::new(),
            replaced: Vec::new(),
        });
        state.catalog = Arc::new(next);
        state.commit.append(commit);
        state
    }
}

/// What a savepoint keeps: the writes and the DDL as they were.
#[derive(Debug, Clone)]
pub struct Saved {
    writes: Writes,
    ddl: Option<DdlState>,
}

/// SET CONSTRAINTS in effect in a transaction.
#[derive(Debug, Default)]
struct ConstraintModes {
    all: Option<bool>,
    named: HashMap<String, bool>,
}

#[derive(Debug)]
pub struct Transaction {
    /// Every table's version when the transaction began.
    snapshot: HashMap<u64, Arc<TableVersion>>,
    writes: Mutex<Writes>,
    ddl: Mutex<Option<DdlState>>,
    constraint_modes: Mutex<ConstraintModes>,
}

impl Transaction {
    pub fn new(snapshot: HashMap<u64, Arc<TableVersion>>) -> Transaction {
        Transaction {
            snapshot,
            writes: Mutex::new(BTreeMap::new()),
            ddl: Mutex::new(None),
            constraint_modes: Mutex::default(),
        }
    }

    /// The committed version this transaction reads of `table`: its
    /// snapshot, or, for a table created since, the current one.
    /// A table not read yet after a restart is read here (blocking).
    pub fn base_version(&self, table: &Table) -> Arc<TableVersion> {
        match self.snapshot.get(&table.id()) {
            Some(version) => version.resolved(),
            None => table.snapshot(),
        }
    }

    /// What the transaction sees of `table`: its base version with its own
    /// changes applied.
    pub fn visible(&self, table: &Table) -> Arc<TableVersion> {
        match self.writes.lock().get(&table.id()) {
            Some(write) => write.version.clone(),
            None => self.base_version(table),
        }
    }

    /// [`Transaction::visible`] without waiting: the version may be a
    /// placeholder whose rows a restart has not read yet.
    pub fn visible_unread(&self, table: &Table) -> Arc<TableVersion> {
        match self.writes.lock().get(&table.id()) {
            Some(write) => write.version.clone(),
            None => self
                .snapshot
                .get(&table.id())
                .cloned()
                .unwrap_or_else(|| table.pin()),
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
            net: NetEffect::new(base.row_count),
            base_version: base.version,
            version: base,
            changes: Vec::new(),
            delta: KeyDelta::default(),
        });
        write.delta = delta;
        write.version = Arc::new(next);
        write.net.record(&change);
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

    /// For each row of `columns`: whether `table` has its key under
    /// unique constraint `c`, as the transaction sees the table.
    pub fn key_presence(
        &self,
        table: &Table,
        c: usize,
        columns: &[datafusion::arrow::array::ArrayRef],
    ) -> Result<Vec<bool>> {
        let writes = self.writes.lock();
        let delta = writes.get(&table.id()).map(|w| &w.delta);
        table.key_presence(delta, c, columns)
    }

    /// Keeps the keys of `keys` that `table` no longer has (constraint `c`)
    /// as the transaction sees it.
    pub fn retain_absent(
        &self,
        table: &Table,
        c: usize,
        keys: &mut std::collections::HashSet<Box<[u8]>>,
    ) -> crate::error::Result<()> {
        let writes = self.writes.lock();
        let delta = writes.get(&table.id()).map(|w| &w.delta);
        let mut failed = None;
        keys.retain(|key| match table.key_present(delta, c, key) {
            Ok(present) => !present,
            Err(e) => {
                failed.get_or_insert(e);
                true
            }
        });
        failed.map_or(Ok(()), Err)
    }

    /// SET CONSTRAINTS: Some(true) when the named constraint (or ALL) was
    /// set DEFERRED in this transaction, Some(false) when IMMEDIATE.
    pub fn constraint_mode(&self, name: &str) -> Option<bool> {
        let modes = self.constraint_modes.lock();
        modes.named.get(name).copied().or(modes.all)
    }

    /// SET CONSTRAINTS { ALL | names } { DEFERRED | IMMEDIATE }.
    pub fn set_constraint_mode(&self, names: Option<&[String]>, deferred: bool) {
        let mut modes = self.constraint_modes.lock();
        match names {
            None => {
                modes.all = Some(deferred);
                modes.named.clear();
            }
            Some(names) => {
                for name in names {
                    modes.named.insert(name.clone(), deferred);
                }
            }
        }
    }

    /// What the transaction did to a table so far, if anything.
    pub fn pending(&self, table_id: u64) -> Option<PendingWrite> {
        self.writes.lock().get(&table_id).cloned()
    }

    /// Drops what the transaction did to a table (ALTER TABLE moved it to
    /// the table that replaces it).
    pub fn forget(&self, table_id: u64) {
        self.writes.lock().remove(&table_id);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(positions: &[u64]) -> Change {
        Change::Delete(Arc::new(positions.to_vec()))
    }

    #[test]
    fn the_net_effect_names_base_rows_whatever_the_order_of_changes() {
        // Base rows 0..10.
        let mut net = NetEffect::new(10);
        net.record(&delete(&[1, 3]));
        // Now the live rows are 0 2 4 5 6 7 8 9: ranks 1 and 2 are base
        // rows 2 and 4.
        net.record(&delete(&[1, 2]));
        assert_eq!(net.removed, vec![1, 2, 3, 4]);
        // An insert adds rows after the 6 base rows left; deleting one of
        // them (rank 6) touches no base row.
        net.record(&Change::Insert(Vec::new()));
        net.record(&delete(&[0, 6]));
        assert_eq!(net.removed, vec![0, 1, 2, 3, 4]);
        assert_eq!(net.base_rows_left(), 5);
        net.record(&Change::Truncate);
        assert!(net.truncated && net.base_rows_left() == 0);
    }

    #[test]
    fn base_positions_skip_removed_rows() {
        assert_eq!(base_positions(&[1, 3], &[0, 1, 2]), vec![0, 2, 4]);
        assert_eq!(base_positions(&[0, 1, 2], &[0]), vec![3]);
        assert_eq!(base_positions(&[], &[5]), vec![5]);
    }
}
