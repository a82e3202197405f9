//! Rows a restart has not read yet. A restarted server serves at once: each
//! table starts as a placeholder version that knows its row count and
//! version (from the manifest) and holds an [`Unread`], the read of its
//! checkpoint file. The read runs once, on whichever thread needs the rows
//! first: the background reader, a write, or a query (which waits for
//! that table only). Meanwhile a [`DeferredScan`] plans queries with the
//! row count and the [`SavedStatistics`] the checkpoint wrote, so counts,
//! least and greatest values need no rows at all.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, Statistics};
use datafusion::datasource::source::DataSource;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::TryStreamExt;
use parking_lot::{Condvar, Mutex};

use super::scan::{balance, TableScan};
use super::table::{LoadedRows, TableVersion};
use crate::error::{QuiverError, Result};

/// Reads a table's checkpointed rows.
pub type ReadRows = Box<dyn FnOnce() -> Result<LoadedRows> + Send>;

/// What a checkpoint records of a table's columns, so that a restarted
/// server plans with them (and answers `min`, `max` and `count(column)`
/// from them) before the rows are read.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedStatistics {
    /// NULLs per column.
    pub nulls: Vec<u64>,
    /// Least and greatest value per column, as a two-row Arrow IPC
    /// stream in base64 (NULL where unknown: floats, all-NULL columns).
    pub bounds: String,
    /// Whether the bounds are the exact least and greatest values (no
    /// deleted row widened them).
    pub exact: bool,
}

impl SavedStatistics {
    /// The statistics of `version`'s rows (read; not a placeholder).
    pub fn of(version: &TableVersion, schema: &SchemaRef) -> Result<SavedStatistics> {
        use base64::Engine;
        use datafusion::arrow::array::new_null_array;
        use datafusion::arrow::datatypes::Schema;
        let statistics = version.column_statistics(schema.fields().len())?;
        let exact = statistics.iter().all(|c| {
            !matches!(c.min_value, Precision::Inexact(_))
                && !matches!(c.max_value, Precision::Inexact(_))
        });
        let nullable = Arc::new(Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let mut arrays = Vec::with_capacity(schema.fields().len());
        let mut nulls = Vec::with_capacity(schema.fields().len());
        for (field, column) in schema.fields().iter().zip(&statistics) {
            nulls.push(column.null_count.get_value().copied().unwrap_or(0) as u64);
            let bounds = match (column.min_value.get_value(), column.max_value.get_value()) {
                (Some(lo), Some(hi)) => {
                    datafusion::common::ScalarValue::iter_to_array([lo.clone(), hi.clone()])
                        .ok()
                        .filter(|a| a.data_type() == field.data_type())
                }
                _ => None,
            };
            arrays.push(bounds.unwrap_or_else(|| new_null_array(field.data_type(), 2)));
        }
        let batch =
            datafusion::arrow::record_batch::RecordBatch::try_new(nullable.clone(), arrays)?;
        let bytes = super::commit::encode_batches(&nullable, &[batch])?;
        Ok(SavedStatistics {
            nulls,
            bounds: base64::engine::general_purpose::STANDARD.encode(bytes),
            exact,
        })
    }

    /// Per column of `schema`, the statistics saved; None when they do
    /// not fit the schema (they are only a help: never an error).
    pub fn columns(&self, schema: &SchemaRef, rows: usize) -> Option<Vec<ColumnStatistics>> {
        use base64::Engine;
        use datafusion::common::ScalarValue;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&self.bounds)
            .ok()?;
        let (_, batches) = super::commit::decode_batches(&bytes).ok()?;
        let batch = batches.first()?;
        if batch.num_columns() != schema.fields().len()
            || batch.num_rows() != 2
            || self.nulls.len() != schema.fields().len()
        {
            return None;
        }
        let mut out = Vec::with_capacity(schema.fields().len());
        for (c, field) in schema.fields().iter().enumerate() {
            let array = batch.column(c);
            if array.data_type() != field.data_type() {
                return None;
            }
            let nulls = self.nulls[c] as usize;
            let bound = |row: usize| {
                if array.is_null(row) || nulls >= rows {
                    return Precision::Absent;
                }
                match ScalarValue::try_from_array(array, row) {
                    Ok(value) if self.exact => Precision::Exact(value),
                    Ok(value) => Precision::Inexact(value),
                    Err(_) => Precision::Absent,
                }
            };
            out.push(ColumnStatistics {
                null_count: Precision::Exact(nulls),
                min_value: bound(0),
                max_value: bound(1),
                ..ColumnStatistics::new_unknown()
            });
        }
        Some(out)
    }
}

/// The read of one table's checkpoint, shared by every placeholder
/// version of it and every query waiting for it.
pub struct Unread {
    /// What is read, for messages: the checkpoint file.
    source: String,
    /// Live rows and version the read gives back.
    pub rows: usize,
    pub version: u64,
    /// Per table column, from the checkpoint, when it saved them.
    statistics: Option<Vec<ColumnStatistics>>,
    state: Mutex<State>,
    done: Condvar,
}

enum State {
    Waiting(ReadRows),
    Reading,
    Read(Arc<TableVersion>),
    /// The read failed: every use of the rows fails with this, the table
    /// stays as the checkpoint left it on disk.
    Failed {
        reason: String,
    },
}

impl std::fmt::Debug for Unread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unread")
            .field("source", &self.source)
            .field("rows", &self.rows)
            .field("version", &self.version)
            .finish()
    }
}

impl Unread {
    /// The read of a checkpoint of `rows` rows at `version`, with the
    /// column statistics the checkpoint saved (if any).
    pub fn new(
        source: String,
        rows: usize,
        version: u64,
        statistics: Option<Vec<ColumnStatistics>>,
        read: ReadRows,
    ) -> Arc<Unread> {
        Arc::new(Unread {
            source,
            rows,
            version,
            statistics,
            state: Mutex::new(State::Waiting(read)),
            done: Condvar::new(),
        })
    }

    /// The rows, read here if nobody has started reading them, else
    /// waited for. Blocking: async code calls [`Unread::read_async`].
    pub fn read(&self) -> Result<Arc<TableVersion>> {
        let mut state = self.state.lock();
        loop {
            match &*state {
                State::Read(version) => return Ok(version.clone()),
                State::Failed { reason } => return Err(self.failure(reason)),
                State::Reading => self.done.wait(&mut state),
                State::Waiting(_) => {
                    let State::Waiting(read) = std::mem::replace(&mut *state, State::Reading)
                    else {
                        unreachable!("matched Waiting above")
                    };
                    drop(state);
                    let outcome = std::panic::catch_unwind(AssertUnwindSafe(read));
                    let next = match outcome {
                        Ok(Ok(rows)) => self.version_of(rows),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(QuiverError::Internal("the reader panicked".into())),
                    };
                    state = self.state.lock();
                    *state = match next {
                        Ok(version) => State::Read(Arc::new(version)),
                        Err(e) => {
                            tracing::error!("reading {} failed: {e}", self.source);
                            State::Failed {
                                reason: match e {
                                    QuiverError::Corrupt { reason, .. } => reason,
                                    e => e.to_string(),
                                },
                            }
                        }
                    };
                    self.done.notify_all();
                }
            }
        }
    }

    /// [`Unread::read`] on a blocking thread, for async code.
    pub async fn read_async(self: &Arc<Self>) -> Result<Arc<TableVersion>> {
        if let Some(done) = self.try_read() {
            return done;
        }
        let unread = self.clone();
        tokio::task::spawn_blocking(move || unread.read())
            .await
            .map_err(|e| QuiverError::Internal(format!("reading {}: {e}", self.source)))?
    }

    /// The outcome of the read if it has ended, without waiting.
    pub fn try_read(&self) -> Option<Result<Arc<TableVersion>>> {
        match &*self.state.lock() {
            State::Read(version) => Some(Ok(version.clone())),
            State::Failed { reason } => Some(Err(self.failure(reason))),
            State::Waiting(_) | State::Reading => None,
        }
    }

    /// Why the rows cannot be used: the read failed, or (a bug) they were
    /// used before anyone read them.
    pub fn failure_now(&self) -> QuiverError {
        match &*self.state.lock() {
            State::Failed { reason } => self.failure(reason),
            _ => QuiverError::Internal(format!(
                "the rows of {} were used before they were read",
                self.source
            )),
        }
    }

    fn failure(&self, reason: &str) -> QuiverError {
        QuiverError::Corrupt {
            path: self.source.clone(),
            offset: 0,
            reason: reason.to_string(),
        }
    }

    fn version_of(&self, rows: LoadedRows) -> Result<TableVersion> {
        let version = TableVersion::loaded(rows, self.version);
        if version.row_count != self.rows {
            return Err(QuiverError::Corrupt {
                path: self.source.clone(),
                offset: 0,
                reason: format!(
                    "holds {} rows, the manifest says {}",
                    version.row_count, self.rows
                ),
            });
        }
        Ok(version)
    }
}

/// The scan of a table whose rows are not read yet: planned at once, with
/// the exact row count as its statistics (so `count(*)` needs no rows),
/// it waits for the read when it runs and then scans the version the
/// restart read, the one the query pinned.
#[derive(Debug)]
pub struct DeferredScan {
    unread: Arc<Unread>,
    table: String,
    /// Output schema, and the table column of each output column.
    schema: SchemaRef,
    columns: Vec<usize>,
    prune: bool,
    properties: Arc<PlanProperties>,
    /// The scan of the rows once read, made by the first partition that
    /// runs.
    scan: Arc<tokio::sync::OnceCell<TableScan>>,
}

impl DeferredScan {
    pub fn new(
        unread: Arc<Unread>,
        table: &str,
        schema: SchemaRef,
        columns: Vec<usize>,
        partitions: usize,
        prune: bool,
    ) -> DeferredScan {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions.max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        DeferredScan {
            unread,
            table: table.to_string(),
            schema,
            columns,
            prune,
            properties: Arc::new(properties),
            scan: Default::default(),
        }
    }
}

impl DisplayAs for DeferredScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeferredScan: table={}, rows={} (not read yet)",
            self.table, self.unread.rows
        )
    }
}

impl ExecutionPlan for DeferredScan {
    fn name(&self) -> &str {
        "DeferredScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn partition_statistics(&self, partition: Option<usize>) -> DfResult<Arc<Statistics>> {
        let mut statistics = Statistics::new_unknown(&self.schema);
        if partition.is_none() {
            statistics.num_rows = Precision::Exact(self.unread.rows);
            if let Some(saved) = &self.unread.statistics {
                statistics.column_statistics = self
                    .columns
                    .iter()
                    .map(|&c| saved.get(c).cloned().unwrap_or_default())
                    .collect();
            }
        }
        Ok(Arc::new(statistics))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let unread = self.unread.clone();
        let scan = self.scan.clone();
        let (table, schema, columns, prune) = (
            self.table.clone(),
            self.schema.clone(),
            self.columns.clone(),
            self.prune,
        );
        let partitions = self.properties.partitioning.partition_count();
        let opened = async move {
            let scan = scan
                .get_or_try_init(|| async {
                    let version = unread.read_async().await?;
                    let pieces = version.pieces(Some(&columns))?;
                    let parts = balance(pieces, partitions);
                    Ok::<_, QuiverError>(TableScan::new(&table, schema, columns, parts, prune))
                })
                .await
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            scan.open(partition, context)
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::once(opened).try_flatten(),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::table::{LoadedBatch, LoadedRows};
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;

    fn rows(n: i32) -> LoadedRows {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from_iter_values(0..n))],
        )
        .unwrap();
        LoadedRows::new(&schema, vec![LoadedBatch::new(batch)]).unwrap()
    }

    #[test]
    fn the_rows_are_read_once_whoever_asks_first() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let unread = Unread::new(
            "t.parquet".into(),
            10,
            7,
            None,
            Box::new(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(50));
                Ok(rows(10))
            }),
        );
        assert!(unread.try_read().is_none());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let unread = unread.clone();
                std::thread::spawn(move || unread.read().unwrap())
            })
            .collect();
        for t in threads {
            let version = t.join().unwrap();
            assert_eq!((version.row_count, version.version), (10, 7));
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_failed_or_short_read_fails_every_use_naming_the_file() {
        let short = Unread::new("a.parquet".into(), 11, 1, None, Box::new(|| Ok(rows(10))));
        let e = short.read().unwrap_err().to_string();
        assert!(
            e.contains("a.parquet") && e.contains("manifest says 11"),
            "{e}"
        );
        let panicked = Unread::new("b.parquet".into(), 1, 1, None, Box::new(|| panic!("boom")));
        assert!(panicked
            .read()
            .unwrap_err()
            .to_string()
            .contains("b.parquet"));
        // Later uses fail the same way, without reading again.
        assert!(panicked.try_read().unwrap().is_err());
        assert!(panicked.failure_now().to_string().contains("panicked"));
    }

    /// A table whose read is counted and held back until `open` is set.
    fn held_table(
        reads: Arc<std::sync::atomic::AtomicUsize>,
    ) -> (Arc<crate::engine::Table>, Arc<Unread>) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let table = Arc::new(crate::engine::Table::new(
            "t",
            schema,
            std::collections::HashMap::new(),
        ));
        let unread = Unread::new(
            "t.parquet".into(),
            10,
            4,
            None,
            Box::new(move || {
                reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(rows(10))
            }),
        );
        table.load_later(unread.clone());
        (table, unread)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_count_needs_no_rows_and_a_scan_reads_them_once() {
        use datafusion::prelude::SessionContext;
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (table, _) = held_table(reads.clone());
        let ctx = SessionContext::new();
        ctx.register_table("t", table.clone()).unwrap();
        let one = |sql: &'static str| {
            let ctx = ctx.clone();
            async move {
                let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                    .unwrap()
                    .to_string()
            }
        };
        assert!(one("SELECT count(*) AS n FROM t").await.contains("| 10 |"));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(!table.is_resident());
        assert_eq!(table.pin().row_count, 10);
        assert!(one("SELECT sum(x) AS s FROM t").await.contains("| 45 |"));
        assert!(one("SELECT max(x) AS m FROM t").await.contains("| 9 |"));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        // The scan read the rows; the table installs them on its next use.
        assert_eq!(table.snapshot().live_batches().unwrap()[0].num_rows(), 10);
        assert!(table.is_resident());
    }

    #[test]
    fn a_transaction_pinned_before_the_read_sees_every_row() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (table, _) = held_table(reads.clone());
        let txn = crate::engine::Transaction::new([(table.id(), table.pin())].into());
        assert!(
            table.pin().live_batches().is_err(),
            "a placeholder is never empty rows"
        );
        let seen = txn.visible(&table);
        assert_eq!((seen.row_count, seen.version), (10, 4));
        assert_eq!(seen.live_batches().unwrap()[0].num_rows(), 10);
        // Writes wait for the rows too.
        let (added, _) = table
            .append(
                vec![RecordBatch::try_new(
                    table.schema_ref(),
                    vec![Arc::new(Int32Array::from(vec![10]))],
                )
                .unwrap()],
                || Ok(crate::engine::Ack::none()),
            )
            .unwrap();
        assert_eq!((added, table.snapshot().row_count), (1, 11));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_truncate_before_the_read_leaves_the_rows_unread() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (table, _) = held_table(reads.clone());
        table.truncate();
        table.ready().unwrap();
        let version = table.snapshot();
        assert_eq!((version.row_count, version.version), (0, 5));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn saved_statistics_answer_min_and_max_before_the_read() {
        use datafusion::prelude::SessionContext;
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let source = crate::engine::Table::new("s", schema.clone(), Default::default());
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from(vec![
                Some(5),
                None,
                Some(-3),
                Some(9),
            ]))],
        )
        .unwrap();
        let _ = source
            .append(vec![batch], || Ok(crate::engine::Ack::none()))
            .unwrap();
        let saved = SavedStatistics::of(&source.snapshot(), &schema).unwrap();
        assert!(saved.exact);
        // Through the manifest's JSON and back.
        let saved: SavedStatistics =
            serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
        let columns = saved.columns(&schema, 4).unwrap();
        assert_eq!(columns[0].null_count, Precision::Exact(1));

        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let table = Arc::new(crate::engine::Table::new(
            "t",
            schema.clone(),
            Default::default(),
        ));
        table.load_later(Unread::new(
            "t.parquet".into(),
            4,
            1,
            Some(columns),
            Box::new(move || {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(QuiverError::Internal("not read in this test".into()))
            }),
        ));
        let ctx = SessionContext::new();
        ctx.register_table("t", table).unwrap();
        let batches = ctx
            .sql("SELECT min(x) AS lo, max(x) AS hi, count(x) AS n, count(*) AS r FROM t")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        assert!(text.contains("| -3 | 9  | 3 | 4 |"), "{text}");
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0);
    }
}
