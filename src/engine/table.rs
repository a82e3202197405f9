//! A table held in RAM: an immutable [`TableVersion`] of Arrow batches behind
//! an `ArcSwap`, so readers clone an `Arc` and scan without locks while a
//! writer installs the next version.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;

use super::txn::TxnSlot;
use super::unique::{UniqueConstraint, UniqueIndex};
use super::Ack;
use crate::error::Result;
use crate::storage::record::{encode_schema, Commit, ConstraintDef, Effect, TableDef};

/// Batches smaller than this are merged with their neighbours as rows
/// arrive, so that many small INSERTs still leave scan-friendly batches.
pub const TARGET_BATCH_ROWS: usize = 64 * 1024;

/// One immutable state of a table's rows.
#[derive(Debug, Default)]
pub struct TableVersion {
    pub batches: Vec<RecordBatch>,
    pub row_count: usize,
    /// Increases by one with every change installed.
    pub version: u64,
}

impl TableVersion {
    /// The version after appending `new` rows. Small trailing batches are
    /// merged pairwise while the older one is no larger than the newer one
    /// (the binary-counter rule), which keeps each row's copy count
    /// logarithmic and the batch count small.
    fn appended(&self, schema: &SchemaRef, new: Vec<RecordBatch>) -> Result<TableVersion> {
        let mut batches = self.batches.clone();
        let mut added = 0;
        for batch in new.into_iter().filter(|b| b.num_rows() > 0) {
            added += batch.num_rows();
            batches.push(batch);
            while batches.len() >= 2 {
                let last = batches[batches.len() - 1].num_rows();
                let prev = batches[batches.len() - 2].num_rows();
                if prev > last || prev + last > TARGET_BATCH_ROWS {
                    break;
                }
                let b = batches.pop().expect("two batches");
                let a = batches.pop().expect("two batches");
                batches.push(concat_batches(schema, [&a, &b])?);
            }
        }
        Ok(TableVersion {
            batches,
            row_count: self.row_count + added,
            version: self.version + 1,
        })
    }
}

/// An append checked and computed, waiting to be installed.
pub struct PreparedAppend {
    pub added: usize,
    base_version: u64,
    next: TableVersion,
    keys: Vec<Vec<Box<[u8]>>>,
}

/// A table: its definition and its current rows.
pub struct Table {
    /// Stable identity: the WAL refers to tables by id, not by name.
    id: u64,
    name: String,
    /// DEFAULT expressions as SQL text, for the log and checkpoints.
    defaults_sql: Vec<(String, String)>,
    schema: SchemaRef,
    defaults: HashMap<String, Expr>,
    data: ArcSwap<TableVersion>,
    /// The unique indexes; the lock also serialises writers. Readers never
    /// take it.
    writer: Mutex<Vec<UniqueIndex>>,
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("rows", &self.data.load().row_count)
            .finish()
    }
}

impl Table {
    pub fn new(
        name: impl Into<String>,
        schema: SchemaRef,
        defaults: HashMap<String, Expr>,
    ) -> Self {
        Table {
            id: 0,
            defaults_sql: Vec::new(),
            name: name.into(),
            schema,
            defaults,
            data: ArcSwap::from_pointee(TableVersion::default()),
            writer: Mutex::new(Vec::new()),
        }
    }

    /// A table with its id, DEFAULTs (planned and as SQL) and the unique
    /// constraints its rows must satisfy.
    pub fn with_constraints(
        id: u64,
        name: impl Into<String>,
        schema: SchemaRef,
        defaults: (HashMap<String, Expr>, Vec<(String, String)>),
        constraints: Vec<UniqueConstraint>,
    ) -> Result<Self> {
        let mut table = Table::new(name, schema, defaults.0);
        table.id = id;
        table.defaults_sql = defaults.1;
        let indexes = constraints
            .into_iter()
            .map(|c| UniqueIndex::new(c, &table.schema))
            .collect::<Result<Vec<_>>>()?;
        *table.writer.lock() = indexes;
        Ok(table)
    }

    pub fn unique_constraints(&self) -> Vec<UniqueConstraint> {
        self.writer
            .lock()
            .iter()
            .map(|i| i.constraint.clone())
            .collect()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn defaults_sql(&self) -> &[(String, String)] {
        &self.defaults_sql
    }

    /// The definition as logged: everything needed to create it again.
    pub fn definition(&self, schema_name: &str, commit: &mut Commit) -> Result<TableDef> {
        let arrow_schema = commit.add_blob(encode_schema(&self.schema)?);
        let constraints = self
            .unique_constraints()
            .into_iter()
            .map(|c| ConstraintDef {
                columns: c
                    .columns
                    .iter()
                    .map(|&i| self.schema.field(i).name().clone())
                    .collect(),
                name: c.name,
                primary: c.primary,
            })
            .collect();
        Ok(TableDef {
            id: self.id,
            schema: schema_name.to_string(),
            name: self.name.clone(),
            arrow_schema,
            defaults: self.defaults_sql.clone(),
            constraints,
        })
    }

    /// A commit that creates this table.
    pub fn definition_commit(&self, schema_name: &str) -> Result<Commit> {
        let mut commit = Commit::new();
        let def = self.definition(schema_name, &mut commit)?;
        commit.effects.push(Effect::CreateTable(def));
        Ok(commit)
    }

    /// Recovery: installs rows loaded from a checkpoint as `version`,
    /// rebuilding the unique indexes.
    pub fn restore(&self, batches: Vec<RecordBatch>, version: u64) -> Result<()> {
        let (_, ack) = self.append(batches, || Ok(Ack::none()))?;
        drop(ack);
        let current = self.data.load_full();
        self.data.store(Arc::new(TableVersion {
            batches: current.batches.clone(),
            row_count: current.row_count,
            version,
        }));
        Ok(())
    }

    pub fn schema_ref(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn defaults(&self) -> &HashMap<String, Expr> {
        &self.defaults
    }

    /// The rows as they are now; the returned version never changes.
    pub fn snapshot(&self) -> Arc<TableVersion> {
        self.data.load_full()
    }

    /// Appends batches that already match the table's schema and returns the
    /// number of rows added.
    /// Fails without changing anything when a unique constraint would be
    /// violated; otherwise calls `log` (which queues the WAL record) and
    /// installs the new version. Callers hold the database's commit lock,
    /// so the log order is the install order.
    pub fn append(
        &self,
        batches: Vec<RecordBatch>,
        log: impl FnOnce() -> Result<Ack>,
    ) -> Result<(usize, Ack)> {
        let prepared = self.prepare_append(batches)?;
        let added = prepared.added;
        let ack = log()?;
        self.install(prepared);
        Ok((added, ack))
    }

    /// Removes every row (a new, empty version; the unique indexes are
    /// emptied too). Callers hold the commit lock.
    pub fn truncate(&self) {
        let mut indexes = self.writer.lock();
        let version = self.data.load().version + 1;
        self.data.store(Arc::new(TableVersion {
            batches: Vec::new(),
            row_count: 0,
            version,
        }));
        for index in indexes.iter_mut() {
            index.clear();
        }
    }

    /// Checks `batches` against the unique constraints (committed keys and
    /// each other) without changing anything.
    pub fn check_unique(&self, batches: &[RecordBatch]) -> Result<()> {
        let indexes = self.writer.lock();
        for index in indexes.iter() {
            index.check(&self.schema, batches)?;
        }
        Ok(())
    }

    /// The version `batches` would produce, checked against the unique
    /// constraints; nothing changes until [`Table::install`].
    pub fn prepare_append(&self, batches: Vec<RecordBatch>) -> Result<PreparedAppend> {
        let indexes = self.writer.lock();
        let keys = indexes
            .iter()
            .map(|index| index.check(&self.schema, &batches))
            .collect::<Result<Vec<_>>>()?;
        let current = self.data.load();
        let next = current.appended(&self.schema, batches)?;
        Ok(PreparedAppend {
            added: next.row_count - current.row_count,
            base_version: current.version,
            next,
            keys,
        })
    }

    /// Installs a prepared append (no other append may have happened since
    /// it was prepared: callers hold the commit lock across both).
    pub fn install(&self, prepared: PreparedAppend) {
        let mut indexes = self.writer.lock();
        debug_assert_eq!(self.data.load().version, prepared.base_version);
        self.data.store(Arc::new(prepared.next));
        for (index, keys) in indexes.iter_mut().zip(prepared.keys) {
            index.insert(keys);
        }
    }
}

#[async_trait]
impl TableProvider for Table {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn get_column_default(&self, column: &str) -> Option<&Expr> {
        self.defaults.get(column)
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        // Inside a transaction: its snapshot plus its own uncommitted rows.
        let txn = state
            .config()
            .get_extension::<TxnSlot>()
            .and_then(|slot| slot.get());
        let (snapshot, pending) = match txn {
            Some(txn) => txn.visible(self),
            None => (self.snapshot(), Vec::new()),
        };
        let batches: Vec<&RecordBatch> = snapshot.batches.iter().chain(pending.iter()).collect();
        // Spread whole batches over the configured partitions so that scans
        // of large tables use every core.
        let partitions = state
            .config()
            .target_partitions()
            .clamp(1, batches.len().max(1));
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
        for (i, batch) in batches.into_iter().enumerate() {
            parts[i % partitions].push(batch.clone());
        }
        let source = MemorySourceConfig::try_new(&parts, self.schema.clone(), projection.cloned())?;
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn one_row(schema: &SchemaRef, v: i32) -> RecordBatch {
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![v]))]).unwrap()
    }

    #[test]
    fn many_single_row_appends_leave_few_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let table = Table::new("t", schema.clone(), HashMap::new());
        for i in 0..10_000 {
            let _ = table
                .append(vec![one_row(&schema, i)], || Ok(Ack::none()))
                .unwrap();
        }
        let snap = table.snapshot();
        assert_eq!(snap.row_count, 10_000);
        assert!(snap.batches.len() <= 16, "{} batches", snap.batches.len());
        let total: usize = snap.batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, 10_000);
    }

    #[test]
    fn a_snapshot_does_not_see_later_appends() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let table = Table::new("t", schema.clone(), HashMap::new());
        let _ = table
            .append(vec![one_row(&schema, 1)], || Ok(Ack::none()))
            .unwrap();
        let before = table.snapshot();
        let _ = table
            .append(vec![one_row(&schema, 2)], || Ok(Ack::none()))
            .unwrap();
        assert_eq!(before.row_count, 1);
        assert_eq!(table.snapshot().row_count, 2);
    }
}
