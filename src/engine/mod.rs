//! The database engine: the catalog of in-memory tables and the operations
//! that change it. Nothing here knows about the wire protocol.

pub mod advisory;
pub mod catalog;
pub mod comments;
pub mod commit;
pub mod conform;
mod ddl;
pub mod encoding;
pub mod foreign;
pub mod json;
pub mod keyset;
pub mod log;
pub mod rebuild;
mod replay;
pub mod replication;
pub mod roles;
pub mod scan;
pub mod sequence;
pub mod sessions;
pub mod stage;
pub mod table;
pub mod txn;
pub mod types;
pub mod unique;
pub mod unread;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

pub use catalog::{CatalogState, QualifiedName, View};
pub use ddl::RelationType;
pub use table::{Change, Conflict, Table, TableVersion};
pub use txn::{Transaction, TxnSlot};

use crate::error::{QuiverError, Result};
use crate::executor::QueryExecutor;
use commit::{encode_positions, encode_rows_for_log, Commit, Effect};
pub use log::{CheckpointStats, CommitLog, Compiler, Durable, LogStatus, MakeCompiler};
pub use replication::{CommitWatch, Lsn, Replication, SyncLevel};

/// What a writer waits for before acknowledging a commit: its WAL record
/// on disk (nothing to wait for without a WAL).
#[must_use = "a commit is acknowledged only after its Ack resolves"]
pub struct Ack(Option<Durable>);

impl Ack {
    pub fn none() -> Ack {
        Ack(None)
    }

    pub async fn wait(self) {
        if let Some(durable) = self.0 {
            durable.wait().await;
        }
    }
}

pub use crate::names::{CATALOG_NAME, DEFAULT_SCHEMA};

/// A database: one catalog shared by every session.
#[derive(Debug)]
pub struct Database {
    catalog: ArcSwap<CatalogState>,
    /// Serialises catalog changes; readers load the current state lock-free.
    ddl_lock: Mutex<()>,
    /// Increases with every catalog change: a transaction's DDL commits
    /// only onto the version it started from.
    catalog_version: AtomicU64,
    /// Increases when a transaction's own catalog is thrown away: with
    /// the catalog version, it tells prepared plans to plan again.
    discarded_catalogs: AtomicU64,
    /// Commits hold it shared while they log and install; a checkpoint holds
    /// it exclusively for the instant it switches WAL files and takes its
    /// snapshot, so every commit is either in the snapshot or in the new WAL.
    commit_gate: RwLock<()>,
    /// Orders commits that change table rows: their WAL records and their
    /// installs happen in the same order, and a snapshot of all tables
    /// never sees half of a multi-table commit.
    commit_lock: Mutex<()>,
    /// Where commits are logged (a data directory's WAL); unset for an
    /// in-memory database and while recovery replays.
    log: OnceLock<Arc<dyn CommitLog>>,
    next_table_id: AtomicU64,
    next_view_seq: AtomicU64,
    /// The connected sessions, for pg_stat_activity.
    pub sessions: sessions::SessionRegistry,
    /// Advisory locks (`pg_advisory_lock` and friends).
    advisory: advisory::AdvisoryLocks,
    /// DataFusion's runtime every session shares: the query memory pool
    /// and the spill files.
    runtime: ArcSwap<RuntimeEnv>,
    /// Bytes all tables together may hold (`usize::MAX`: no limit).
    table_memory_limit: AtomicUsize,
    /// Statements that run this many milliseconds or more are logged
    /// (`u64::MAX`: none).
    slow_statement_ms: AtomicU64,
    /// The server's effective configuration, as SHOW ALL lists it:
    /// (name, value, description).
    server_settings: RwLock<Vec<(String, String, String)>>,
    /// Session parameters whose defaults the server sets (name, value),
    /// already checked.
    session_defaults: RwLock<Vec<(String, String)>>,
    /// Where query work runs and how much at once.
    executor: ArcSwap<QueryExecutor>,
    /// Why every change fails with 25006, when it does: a database opened
    /// read-only (`quiver recover --serve`), a replica, a primary
    /// superseded by a promoted replica.
    read_only: RwLock<Option<String>>,
    /// Replicas of this server, or the primary this replica follows.
    pub replication: Arc<Replication>,
}

impl Database {
    /// An empty database with the `public` schema.
    pub fn new() -> Arc<Database> {
        let mut state = CatalogState::default();
        state
            .schemas
            .insert(DEFAULT_SCHEMA.to_string(), Default::default());
        Arc::new(Database {
            catalog: ArcSwap::from_pointee(state),
            ddl_lock: Mutex::new(()),
            catalog_version: AtomicU64::new(1),
            discarded_catalogs: AtomicU64::new(0),
            commit_gate: RwLock::new(()),
            commit_lock: Mutex::new(()),
            log: OnceLock::new(),
            next_table_id: AtomicU64::new(1),
            next_view_seq: AtomicU64::new(1),
            sessions: Default::default(),
            advisory: Default::default(),
            runtime: ArcSwap::from(
                runtime_builder()
                    .build_arc()
                    .expect("the default runtime builds"),
            ),
            table_memory_limit: AtomicUsize::new(usize::MAX),
            slow_statement_ms: AtomicU64::new(u64::MAX),
            server_settings: RwLock::new(Vec::new()),
            session_defaults: RwLock::new(Vec::new()),
            executor: ArcSwap::from_pointee(QueryExecutor::inline(default_parallelism())),
            read_only: Default::default(),
            replication: Default::default(),
        })
    }

    /// The advisory locks sessions hold.
    pub fn advisory(&self) -> &advisory::AdvisoryLocks {
        &self.advisory
    }

    /// From now on every commit is in `log` before it is acknowledged.
    pub fn attach_log(&self, log: Arc<dyn CommitLog>) {
        if self.log.set(log).is_err() {
            panic!("a commit log is already attached");
        }
    }

    /// The log commits go to (None: an in-memory database).
    pub fn commit_log(&self) -> Option<&Arc<dyn CommitLog>> {
        self.log.get()
    }

    /// Writes a checkpoint now. Blocking: run it off the async runtime.
    pub fn checkpoint(&self) -> Result<CheckpointStats> {
        match self.log.get() {
            Some(log) => log.checkpoint(self),
            None => Err(QuiverError::FeatureNotSupported(
                "CHECKPOINT needs a data directory; this database is in memory".into(),
            )),
        }
    }

    /// Starts a checkpoint in the background if the log has grown enough.
    pub fn maybe_checkpoint(self: &Arc<Self>) {
        if let Some(log) = self.log.get() {
            log.maybe_checkpoint(self);
        }
    }

    /// Runs query work on `executor` from now on (statements running
    /// now finish where they are).
    pub fn set_executor(&self, executor: QueryExecutor) {
        self.executor.store(Arc::new(executor));
    }

    /// Where query work runs.
    pub fn executor(&self) -> Arc<QueryExecutor> {
        self.executor.load_full()
    }

    /// From now on every change fails with 25006 (read_only_sql_transaction).
    pub fn set_read_only(&self) {
        self.set_read_only_because("the database is open read-only");
    }

    /// From now on every change fails with 25006, saying `why`.
    pub fn set_read_only_because(&self, why: &str) {
        *self.read_only.write() = Some(why.to_string());
    }

    /// Changes are allowed again (a promoted replica).
    pub fn set_writable(&self) {
        *self.read_only.write() = None;
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.read().is_some()
    }

    /// Fails when the database may not change.
    pub fn check_writable(&self) -> Result<()> {
        match self.read_only.read().as_deref() {
            Some(why) => Err(QuiverError::ReadOnly(format!(
                "cannot execute a change in a read-only transaction: {why}"
            ))),
            None => Ok(()),
        }
    }

    /// Limits memory: `query_bytes` for query execution (sorts, joins and
    /// aggregations spill to disk, or fail with 53200, past it) and
    /// `table_bytes` for the rows of all tables. Sessions started before
    /// keep the runtime they had.
    pub fn limit_memory(&self, query_bytes: usize, table_bytes: usize) -> Result<()> {
        let runtime = runtime_builder()
            .with_memory_pool(Arc::new(FairSpillPool::new(query_bytes)))
            .build_arc()?;
        self.runtime.store(runtime);
        self.table_memory_limit
            .store(table_bytes, Ordering::Relaxed);
        Ok(())
    }

    /// The runtime sessions execute queries in.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.runtime.load_full()
    }

    /// Records the server's effective configuration (for SHOW).
    pub fn set_server_settings(&self, settings: Vec<(String, String, String)>) {
        *self.server_settings.write() = settings;
    }

    pub fn server_settings(&self) -> Vec<(String, String, String)> {
        self.server_settings.read().clone()
    }

    /// Sets the defaults new sessions start with for these parameters
    /// (as `statement_timeout` in postgresql.conf). The caller has checked
    /// each value as SET checks it (`Settings::with_defaults`).
    pub fn set_session_defaults(&self, defaults: Vec<(String, String)>) {
        *self.session_defaults.write() = defaults;
    }

    pub fn session_defaults(&self) -> Vec<(String, String)> {
        self.session_defaults.read().clone()
    }

    /// Logs statements that take `threshold` or longer.
    pub fn log_statements_slower_than(&self, threshold: std::time::Duration) {
        let ms = u64::try_from(threshold.as_millis()).unwrap_or(u64::MAX);
        self.slow_statement_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether a statement that took `elapsed` is slow enough to log.
    pub fn is_slow(&self, elapsed: std::time::Duration) -> bool {
        let ms = self.slow_statement_ms.load(Ordering::Relaxed);
        ms != u64::MAX && elapsed.as_millis() >= u128::from(ms)
    }

    /// Bytes all tables together may hold.
    pub fn table_memory_limit(&self) -> usize {
        self.table_memory_limit.load(Ordering::Relaxed)
    }

    /// Bytes the tables hold, as `txn` sees them (its pending rows count).
    pub fn table_memory(&self, txn: Option<&Transaction>) -> usize {
        let pending = txn.map(|t| t.written_bytes()).unwrap_or_default();
        self.catalog()
            .schemas
            .values()
            .flat_map(|entry| entry.tables.values())
            .map(|table| match pending.get(&table.id()) {
                Some(bytes) => *bytes,
                None => table.pin().memory_bytes(),
            })
            .sum()
    }

    /// Fails with 53200 when adding `extra` bytes of rows would take the
    /// tables past their memory limit.
    pub fn check_table_memory(&self, txn: Option<&Transaction>, extra: usize) -> Result<()> {
        let limit = self.table_memory_limit.load(Ordering::Relaxed);
        if limit == usize::MAX {
            return Ok(());
        }
        let held = self.table_memory(txn);
        if held.saturating_add(extra) > limit {
            let mib = |b: usize| b.div_ceil(1 << 20);
            return Err(QuiverError::OutOfMemory(format!(
                "out of table memory: the tables hold {} MiB and this change adds {} MiB, over the limit of {} MiB (--max-table-memory)",
                mib(held),
                mib(extra),
                mib(limit)
            )));
        }
        Ok(())
    }

    pub fn next_table_id(&self) -> u64 {
        self.next_table_id.load(Ordering::Relaxed)
    }

    pub fn next_view_seq(&self) -> u64 {
        self.next_view_seq.load(Ordering::Relaxed)
    }

    /// Stops commits for as long as the guard lives (checkpoint snapshots).
    pub fn block_commits(&self) -> RwLockWriteGuard<'_, ()> {
        self.commit_gate.write()
    }

    pub fn allocate_table_id(&self) -> u64 {
        self.next_table_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Recovery: ids below `next` are taken.
    pub fn reserve_table_ids(&self, next: u64) {
        self.next_table_id.fetch_max(next, Ordering::Relaxed);
    }

    pub fn allocate_view_seq(&self) -> u64 {
        self.next_view_seq.fetch_add(1, Ordering::Relaxed)
    }

    pub fn reserve_view_seqs(&self, next: u64) {
        self.next_view_seq.fetch_max(next, Ordering::Relaxed);
    }

    /// Logs a commit of the running statement (which from then on runs
    /// to its end: see [`CommitWatch`]).
    fn log(&self, commit: &Commit, sync: SyncLevel) -> Result<Ack> {
        let ack = self.log_record(commit, sync)?;
        replication::CommitWatch::note_logged();
        Ok(ack)
    }

    /// Logs a record that is no commit of the running statement (a
    /// sequence's new position).
    fn log_record(&self, commit: &Commit, sync: SyncLevel) -> Result<Ack> {
        match self.log.get() {
            Some(log) => Ok(Ack(Some(log.append(commit, sync)?))),
            None => Ok(Ack(None)),
        }
    }

    /// Appends rows to a table: checks its constraints, logs the rows and
    /// installs the new version. The caller acknowledges after the Ack.
    pub fn append(
        &self,
        table: &Table,
        batches: Vec<RecordBatch>,
        sync: SyncLevel,
    ) -> Result<(usize, Ack)> {
        let started = std::time::Instant::now();
        let commit = match self.log.get() {
            Some(_) => {
                let mut commit = Commit::new();
                for blob in encode_rows_for_log(&table.schema_ref(), &batches)? {
                    let data = commit.add_blob(blob);
                    commit.effects.push(Effect::Insert {
                        table_id: table.id(),
                        data,
                    });
                }
                tracing::debug!(
                    encode_ms = started.elapsed().as_millis() as u64,
                    bytes = commit.blobs.iter().map(|b| b.len()).sum::<usize>(),
                    "append: rows encoded for the WAL"
                );
                Some(commit)
            }
            None => None,
        };
        let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let appended =
            self.commit_append(table, commit, bytes, sync, || table.prepare_append(batches));
        tracing::debug!(
            total_ms = started.elapsed().as_millis() as u64,
            "append: logged and installed"
        );
        appended
    }

    /// The commit of an append of `bytes` of rows, made ready by `prepare`
    /// under the commit lock (so the log order is the install order):
    /// logs `commit` (when there is a WAL and it has effects) and installs.
    fn commit_append(
        &self,
        table: &Table,
        commit: Option<Commit>,
        bytes: usize,
        sync: SyncLevel,
        prepare: impl FnOnce() -> Result<table::PreparedAppend>,
    ) -> Result<(usize, Ack)> {
        self.check_writable()?;
        self.check_table_memory(None, bytes)?;
        // Rows a restart has not read yet are read before the commit lock
        // is taken, so other commits do not wait for them.
        table.ready()?;
        let _gate = self.commit_gate.read();
        let _order = self.commit_lock.lock();
        table.check_current()?;
        let prepared = prepare()?;
        let added = prepared.added;
        let ack = match &commit {
            Some(commit) if !commit.effects.is_empty() => self.log(commit, sync)?,
            _ => Ack::none(),
        };
        table.install(prepared);
        Ok((added, ack))
    }

    /// Empties tables, all together, in one logged commit.
    pub fn truncate(&self, tables: &[Arc<Table>]) -> Result<Ack> {
        self.check_writable()?;
        let commit = Commit::of(Effect::Truncate {
            table_ids: tables.iter().map(|t| t.id()).collect(),
        });
        let _gate = self.commit_gate.read();
        let _order = self.commit_lock.lock();
        for table in tables {
            table.check_current()?;
        }
        let ack = self.log(&commit, CommitWatch::statement_sync_level())?;
        for table in tables {
            table.truncate();
        }
        Ok(ack)
    }

    /// Starts a transaction: a consistent snapshot of every table's rows.
    pub fn begin(&self) -> Transaction {
        let _order = self.commit_lock.lock();
        let catalog = self.catalog();
        let snapshot = catalog
            .schemas
            .values()
            .flat_map(|entry| entry.tables.values())
            .map(|table| (table.id(), table.pin()))
            .collect();
        Transaction::new(snapshot)
    }

    /// Commits a transaction's writes atomically: one WAL record, all
    /// tables installed together. Conflicts are decided per row: rows the
    /// transaction deleted or updated must still be there, unchanged, in
    /// the current version (another transaction that removed one of them
    /// committed first: 40001, first committer wins); rows it added are
    /// added to whatever the table holds now, with unique keys checked
    /// again (23505 when another transaction took one).
    pub fn commit(&self, txn: &Transaction, sync: SyncLevel) -> Result<Ack> {
        let writes = txn.writes();
        let ddl = txn.ddl().take();
        if writes.values().all(|w| w.changes.is_empty()) && ddl.is_none() {
            return Ok(Ack::none());
        }
        self.check_writable()?;
        let logging = self.log.get().is_some();
        // Each table's log fragment is encoded before taking the lock; one
        // whose rows moved under it is encoded again inside.
        let mut fragments = BTreeMap::new();
        if logging {
            for (id, write) in &writes {
                fragments.insert(*id, log_changes(*id, &write.table, &write.changes)?);
            }
        }
        let _gate = self.commit_gate.read();
        let _ddl_order = ddl.as_ref().map(|_| self.ddl_lock.lock());
        let _order = self.commit_lock.lock();
        if let Some(ddl) = &ddl {
            if ddl.catalog_version != self.catalog_version() {
                return Err(QuiverError::SerializationFailure(
                    "could not serialize access due to a concurrent change of the schema".into(),
                ));
            }
            for (table, version) in &ddl.replaced {
                if table.pin().version != *version {
                    return Err(QuiverError::SerializationFailure(format!(
                        "could not serialize access due to a concurrent update of table \"{}\" while it was altered",
                        table.name()
                    )));
                }
            }
        }
        let mut installs = Vec::with_capacity(writes.len());
        for (id, write) in writes {
            write.table.check_current()?;
            let current = write.table.snapshot();
            if current.version == write.base_version {
                let removed = match (write.net.truncated, write.net.removed.is_empty()) {
                    (true, _) => table::Removed::All,
                    (false, true) => table::Removed::Nothing,
                    (false, false) => table::Removed::Rows(Arc::new(write.net.removed.clone())),
                };
                installs.push((
                    write.table,
                    TableVersion::clone(&write.version),
                    write.delta,
                    removed,
                ));
                continue;
            }
            let concurrent = || {
                QuiverError::SerializationFailure(format!(
                    "could not serialize access due to concurrent update of table \"{}\"",
                    write.table.name()
                ))
            };
            if write.net.only_added() {
                // Only inserts: replay them on the table as it is now.
                let mut delta = write.table.key_delta();
                let mut version = TableVersion::clone(&current);
                for change in &write.changes {
                    version = write.table.apply(&version, change, &mut delta)?;
                }
                installs.push((write.table, version, delta, table::Removed::Nothing));
                continue;
            }
            if write.net.truncated {
                return Err(concurrent());
            }
            // Rows were deleted or updated: find them in the current version.
            let positions = write
                .table
                .rebase_positions(write.base_version, &write.net.removed)
                .ok_or_else(concurrent)?;
            let added = table::densify(
                &write.table.schema_ref(),
                write.version.live_rows_from(write.net.base_rows_left())?,
            )?;
            let positions = Arc::new(positions);
            let change = Change::Update {
                positions: positions.clone(),
                rows: added,
                keys_unchanged: false,
            };
            let mut delta = write.table.key_delta();
            let version = write.table.apply(&current, &change, &mut delta)?;
            if logging {
                fragments.insert(id, log_changes(id, &write.table, &[change])?);
            }
            installs.push((write.table, version, delta, table::Removed::Rows(positions)));
        }
        {
            let catalog = match &ddl {
                Some(ddl) => ddl.catalog.clone(),
                None => self.catalog(),
            };
            let written: Vec<_> = installs
                .iter()
                .map(|(table, version, delta, _)| (table, version, delta))
                .collect();
            let added: Vec<&str> = ddl
                .iter()
                .flat_map(|d| d.commit.effects.iter())
                .filter_map(|e| match e {
                    Effect::AddForeignKey(def) => Some(def.name.as_str()),
                    _ => None,
                })
                .collect();
            foreign::check_at_commit(&catalog, txn, &written, &added)?;
        }
        // DDL first: rows may go to tables the transaction created.
        let mut commit = match &ddl {
            Some(ddl) => {
                let mut commit = ddl.commit.clone();
                ddl::record_sequence_states(&ddl.catalog, &mut commit);
                commit
            }
            None => Commit::new(),
        };
        for fragment in fragments.into_values() {
            commit.append(fragment);
        }
        let ack = if commit.effects.is_empty() {
            Ack::none()
        } else {
            self.log(&commit, sync)?
        };
        if let Some(ddl) = ddl {
            for (table, _) in &ddl.replaced {
                table.retire();
            }
            ddl::mark_created_sequences(&ddl.catalog, &commit);
            self.catalog.store(ddl.catalog);
            self.catalog_version.fetch_add(1, Ordering::AcqRel);
        }
        for (table, version, delta, removed) in installs {
            table.install_version(version, &delta, removed);
        }
        Ok(ack)
    }

    /// The catalog as it is now.
    pub fn catalog(&self) -> Arc<CatalogState> {
        self.catalog.load_full()
    }

    /// Makes prepared statements plan again (after a transaction's own
    /// catalog was thrown away).
    pub fn invalidate_plans(&self) {
        self.discarded_catalogs.fetch_add(1, Ordering::AcqRel);
    }

    pub fn catalog_version(&self) -> u64 {
        self.catalog_version.load(Ordering::Acquire)
    }

    /// Changes whenever a prepared plan may be stale: a catalog change, or
    /// a transaction's own catalog thrown away.
    pub fn plans_version(&self) -> u64 {
        self.catalog_version() + self.discarded_catalogs.load(Ordering::Acquire)
    }
}

/// The machine's cores: query threads and slots by default.
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// DataFusion's runtime as QuiverDB uses it. File listings are not
/// cached: files queried in place (external tables, read_parquet) are
/// listed again by every query, so new files show up.
fn runtime_builder() -> RuntimeEnvBuilder {
    RuntimeEnvBuilder::new().with_cache_manager(
        datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
            .with_list_files_cache_limit(0),
    )
}

/// The WAL effects of a table's changes, in order: a delete is logged as
/// the positions it removed, an update as those and the new rows.
fn log_changes(id: u64, table: &Table, changes: &[Change]) -> Result<Commit> {
    let schema = table.schema_ref();
    let mut commit = Commit::new();
    for change in changes {
        let (deleted, inserted) = match change {
            Change::Insert(rows) => (None, Some(rows)),
            Change::Delete(positions) => (Some(positions), None),
            Change::Update {
                positions, rows, ..
            } => (Some(positions), Some(rows)),
            Change::Truncate => {
                commit.effects.push(Effect::Truncate {
                    table_ids: vec![id],
                });
                continue;
            }
        };
        if let Some(positions) = deleted {
            let positions = commit.add_blob(encode_positions(positions));
            commit.effects.push(Effect::Delete {
                table_id: id,
                positions,
            });
        }
        if let Some(rows) = inserted {
            for blob in encode_rows_for_log(&schema, rows)? {
                let data = commit.add_blob(blob);
                commit.effects.push(Effect::Insert { table_id: id, data });
            }
        }
    }
    Ok(commit)
}
