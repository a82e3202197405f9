//! The database engine: the catalog of in-memory tables and the operations
//! that change it. Nothing here knows about the wire protocol.

pub mod catalog;
pub mod roles;
pub mod sessions;
pub mod table;
pub mod txn;
pub mod types;
pub mod unique;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

pub use catalog::{CatalogState, QualifiedName, View};
pub use table::{Change, Conflict, Table, TableVersion};
pub use txn::{Transaction, TxnSlot};

use crate::error::{QuiverError, Result};
use crate::storage::record::{encode_batches, encode_positions, Commit, Effect};
use crate::storage::wal::Durable;
use crate::storage::Storage;

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

/// Name of the one DataFusion catalog that holds every schema.
pub const CATALOG_NAME: &str = "quiver";
/// The schema that exists in every database and is first on the search path.
pub const DEFAULT_SCHEMA: &str = "public";

/// A database: one catalog shared by every session.
#[derive(Debug)]
pub struct Database {
    catalog: ArcSwap<CatalogState>,
    /// Serialises catalog changes; readers load the current state lock-free.
    ddl_lock: Mutex<()>,
    /// Increases with every catalog change, so prepared plans know to re-plan.
    catalog_version: AtomicU64,
    /// Commits hold it shared while they log and install; a checkpoint holds
    /// it exclusively for the instant it switches WAL files and takes its
    /// snapshot, so every commit is either in the snapshot or in the new WAL.
    commit_gate: RwLock<()>,
    /// Orders commits that change table rows: their WAL records and their
    /// installs happen in the same order, and a snapshot of all tables
    /// never sees half of a multi-table commit.
    commit_lock: Mutex<()>,
    /// The data directory and WAL commits are logged to; unset for an
    /// in-memory database and while recovery replays.
    storage: OnceLock<Storage>,
    next_table_id: AtomicU64,
    next_view_seq: AtomicU64,
    /// The connected sessions, for pg_stat_activity.
    pub sessions: sessions::SessionRegistry,
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
            commit_gate: RwLock::new(()),
            commit_lock: Mutex::new(()),
            storage: OnceLock::new(),
            next_table_id: AtomicU64::new(1),
            next_view_seq: AtomicU64::new(1),
            sessions: Default::default(),
            runtime: ArcSwap::from(
                runtime_builder()
                    .build_arc()
                    .expect("the default runtime builds"),
            ),
            table_memory_limit: AtomicUsize::new(usize::MAX),
            slow_statement_ms: AtomicU64::new(u64::MAX),
            server_settings: RwLock::new(Vec::new()),
            session_defaults: RwLock::new(Vec::new()),
        })
    }

    /// From now on every commit is logged to the storage's WAL before it is
    /// acknowledged.
    pub fn attach_storage(&self, storage: Storage) {
        if self.storage.set(storage).is_err() {
            panic!("storage is already attached");
        }
    }

    pub fn storage(&self) -> Option<&Storage> {
        self.storage.get()
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
    /// (as `statement_timeout` in postgresql.conf); each value is checked
    /// as SET checks it.
    pub fn set_session_defaults(&self, defaults: Vec<(String, String)>) -> Result<()> {
        crate::session::settings::Settings::with_defaults(&defaults)?;
        *self.session_defaults.write() = defaults;
        Ok(())
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
                None => table.snapshot().memory_bytes(),
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

    fn log(&self, commit: &Commit, sync: bool) -> Result<Ack> {
        match self.storage.get() {
            Some(storage) => Ok(Ack(Some(storage.wal.append(commit, sync)?))),
            None => Ok(Ack(None)),
        }
    }

    /// Appends rows to a table: checks its constraints, logs the rows and
    /// installs the new version. The caller acknowledges after the Ack.
    pub fn append(
        &self,
        table: &Table,
        batches: Vec<RecordBatch>,
        sync: bool,
    ) -> Result<(usize, Ack)> {
        let started = std::time::Instant::now();
        let commit = match self.storage.get() {
            Some(_) => {
                let mut commit = Commit::new();
                let data = commit.add_blob(encode_batches(&table.schema_ref(), &batches)?);
                tracing::debug!(
                    encode_ms = started.elapsed().as_millis() as u64,
                    "append: rows encoded for the WAL"
                );
                commit.effects.push(Effect::Insert {
                    table_id: table.id(),
                    data,
                });
                Some(commit)
            }
            None => None,
        };
        let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
        self.check_table_memory(None, bytes)?;
        let _gate = self.commit_gate.read();
        let _order = self.commit_lock.lock();
        table.check_current()?;
        let appended = table.append(batches, || match &commit {
            Some(commit) => self.log(commit, sync),
            None => Ok(Ack::none()),
        });
        tracing::debug!(
            total_ms = started.elapsed().as_millis() as u64,
            "append: logged and installed"
        );
        appended
    }

    /// Empties tables, all together, in one logged commit.
    pub fn truncate(&self, tables: &[Arc<Table>]) -> Result<Ack> {
        let commit = Commit::of(Effect::Truncate {
            table_ids: tables.iter().map(|t| t.id()).collect(),
        });
        let _gate = self.commit_gate.read();
        let _order = self.commit_lock.lock();
        for table in tables {
            table.check_current()?;
        }
        let ack = self.log(&commit, true)?;
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
            .map(|table| (table.id(), table.snapshot()))
            .collect();
        Transaction::new(snapshot)
    }

    /// Commits a transaction's writes atomically: one WAL record, all
    /// tables installed together. Rows a transaction only added to a table
    /// are added to whatever the table holds now (inserts commute; unique
    /// keys are checked again); a table the transaction deleted from or
    /// updated must be as it was in the snapshot, else the commit fails
    /// with a serialization error.
    pub fn commit(&self, txn: &Transaction, sync: bool) -> Result<Ack> {
        let writes = txn.writes();
        let ddl = txn.ddl().take();
        if writes.values().all(|w| w.changes.is_empty()) && ddl.is_none() {
            return Ok(Ack::none());
        }
        // DDL first: rows may go to tables the transaction created.
        let mut commit = match &ddl {
            Some(ddl) => ddl.commit.clone(),
            None => Commit::new(),
        };
        if self.storage.get().is_some() {
            for (id, write) in &writes {
                let schema = write.table.schema_ref();
                for change in &write.changes {
                    let (deleted, inserted) = match change {
                        Change::Insert(rows) => (None, Some(rows)),
                        Change::Delete(positions) => (Some(positions), None),
                        Change::Update {
                            positions, rows, ..
                        } => (Some(positions), Some(rows)),
                        Change::Truncate => {
                            commit.effects.push(Effect::Truncate {
                                table_ids: vec![*id],
                            });
                            continue;
                        }
                    };
                    if let Some(positions) = deleted {
                        let positions = commit.add_blob(encode_positions(positions));
                        commit.effects.push(Effect::Delete {
                            table_id: *id,
                            positions,
                        });
                    }
                    if let Some(rows) = inserted {
                        let data = commit.add_blob(encode_batches(&schema, rows)?);
                        commit.effects.push(Effect::Insert {
                            table_id: *id,
                            data,
                        });
                    }
                }
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
        }
        let mut installs = Vec::with_capacity(writes.len());
        for write in writes.into_values() {
            write.table.check_current()?;
            let current = write.table.snapshot();
            if current.version == txn.base_version(&write.table).version {
                installs.push((
                    write.table,
                    TableVersion::clone(&write.version),
                    write.delta,
                ));
                continue;
            }
            if !write.changes.iter().all(|c| matches!(c, Change::Insert(_))) {
                return Err(QuiverError::SerializationFailure(format!(
                    "could not serialize access due to concurrent update of table \"{}\"",
                    write.table.name()
                )));
            }
            // Only inserts: replay them on the table as it is now.
            let mut delta = write.table.key_delta();
            let mut version = TableVersion::clone(&current);
            for change in &write.changes {
                version = write.table.apply(&version, change, &mut delta)?;
            }
            installs.push((write.table, version, delta));
        }
        let ack = if commit.effects.is_empty() {
            Ack::none()
        } else {
            self.log(&commit, sync)?
        };
        if let Some(ddl) = ddl {
            self.catalog.store(ddl.catalog);
            self.catalog_version.fetch_add(1, Ordering::AcqRel);
        }
        for (table, version, delta) in installs {
            table.install_version(version, &delta);
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
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
    }

    pub fn catalog_version(&self) -> u64 {
        self.catalog_version.load(Ordering::Acquire)
    }

    /// Applies `change` to a copy of the catalog, logs `effect` and installs
    /// the copy; a failed change leaves the catalog untouched and logs
    /// nothing. Inside a transaction the change goes to the transaction's
    /// own copy of the catalog and is logged and installed at its COMMIT.
    fn change_catalog<T>(
        &self,
        txn: Option<&Transaction>,
        effect: Commit,
        change: impl FnOnce(&mut CatalogState) -> Result<T>,
    ) -> Result<(T, Ack)> {
        if let Some(txn) = txn {
            let mut ddl = txn.ddl();
            let (base, version, mut commit) = match ddl.take() {
                Some(d) => (d.catalog, d.catalog_version, d.commit),
                None => (self.catalog(), self.catalog_version(), Commit::new()),
            };
            let mut next = CatalogState::clone(&base);
            let out = change(&mut next);
            let catalog = match out {
                Ok(_) => {
                    commit.append(effect);
                    Arc::new(next)
                }
                Err(_) => base,
            };
            *ddl = Some(txn::DdlState {
                catalog,
                catalog_version: version,
                commit,
            });
            return Ok((out?, Ack::none()));
        }
        let _gate = self.commit_gate.read();
        let _guard = self.ddl_lock.lock();
        let mut next = CatalogState::clone(&self.catalog.load());
        let out = change(&mut next)?;
        let ack = self.log(&effect, true)?;
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok((out, ack))
    }

    /// ALTER TABLE: replaces `old` (named `name`) with the table `build`
    /// makes from its current rows, under `new_name`. No commit runs while
    /// the rows are rebuilt; `build` returns the new table and the commit
    /// to log. Views that read the table are re-planned by the caller.
    pub fn replace_table(
        &self,
        name: &QualifiedName,
        old: &Arc<Table>,
        new_name: &QualifiedName,
        build: impl FnOnce(&TableVersion) -> Result<(Arc<Table>, Commit)>,
    ) -> Result<Ack> {
        let _gate = self.commit_gate.read();
        let _guard = self.ddl_lock.lock();
        let _order = self.commit_lock.lock();
        let current = self.catalog.load_full();
        match current.table(name) {
            Some(t) if Arc::ptr_eq(t, old) => {}
            _ => {
                return Err(QuiverError::SerializationFailure(format!(
                    "could not serialize access due to a concurrent change of \"{}\"",
                    name.name
                )))
            }
        }
        if new_name != name
            && current
                .schemas
                .get(&new_name.schema)
                .is_some_and(|s| s.has_relation(&new_name.name))
        {
            return Err(QuiverError::DuplicateTable(new_name.name.clone()));
        }
        let (table, commit) = build(&old.snapshot())?;
        let ack = self.log(&commit, true)?;
        let mut next = CatalogState::clone(&current);
        if let Some(entry) = next.schemas.get_mut(&name.schema) {
            entry.tables.remove(&name.name);
        }
        if let Some(acl) = next.acls.remove(&roles::AclObject::relation(name)) {
            next.acls.insert(roles::AclObject::relation(new_name), acl);
        }
        next.schemas
            .get_mut(&new_name.schema)
            .ok_or_else(|| QuiverError::UndefinedSchema(new_name.schema.clone()))?
            .tables
            .insert(new_name.name.clone(), table);
        old.retire();
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok(ack)
    }

    /// Returns false when the schema existed and `if_not_exists` was given.
    pub fn create_schema(
        &self,
        txn: Option<&Transaction>,
        name: &str,
        if_not_exists: bool,
        owner: Option<&str>,
    ) -> Result<(bool, Ack)> {
        let object = roles::AclObject::Schema(name.to_string());
        let mut effect = Commit::of(Effect::CreateSchema {
            name: name.to_string(),
        });
        if let Some(owner) = owner {
            effect.effects.push(Effect::SetAcl {
                object: object.clone(),
                acl: Some(roles::Acl::owned_by(owner)),
            });
        }
        self.change_catalog(txn, effect, |c| {
            if c.schemas.contains_key(name) {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::DuplicateSchema(name.to_string()))
                };
            }
            c.schemas.insert(name.to_string(), Default::default());
            if let Some(owner) = owner {
                c.acls.insert(object, roles::Acl::owned_by(owner));
            }
            Ok(true)
        })
    }

    pub fn drop_schema(
        &self,
        txn: Option<&Transaction>,
        name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<((), Ack)> {
        let effect = Effect::DropSchema {
            name: name.to_string(),
            cascade,
        };
        self.change_catalog(txn, Commit::of(effect), |c| {
            let Some(entry) = c.schemas.get(name) else {
                return if if_exists {
                    Ok(())
                } else {
                    Err(QuiverError::UndefinedSchema(name.to_string()))
                };
            };
            if !cascade && (!entry.tables.is_empty() || !entry.views.is_empty()) {
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "cannot drop schema {name} because other objects depend on it"
                )));
            }
            c.schemas.remove(name);
            c.acls.retain(|object, _| match object {
                roles::AclObject::Schema(s) => s != name,
                roles::AclObject::Relation { schema, .. } => schema != name,
            });
            Ok(())
        })
    }

    /// Adds a table. Returns false when a relation of that name existed and
    /// `if_not_exists` was given.
    pub fn create_table(
        &self,
        txn: Option<&Transaction>,
        name: &QualifiedName,
        table: Arc<Table>,
        if_not_exists: bool,
        owner: Option<&str>,
    ) -> Result<(bool, Ack)> {
        let mut effect = table.definition_commit(&name.schema)?;
        let object = roles::AclObject::relation(name);
        if let Some(owner) = owner {
            effect.effects.push(Effect::SetAcl {
                object: object.clone(),
                acl: Some(roles::Acl::owned_by(owner)),
            });
        }
        self.change_catalog(txn, effect, |c| {
            let entry = c
                .schemas
                .get_mut(&name.schema)
                .ok_or_else(|| QuiverError::UndefinedSchema(name.schema.clone()))?;
            if entry.has_relation(&name.name) {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::DuplicateTable(name.name.clone()))
                };
            }
            entry.tables.insert(name.name.clone(), table);
            if let Some(owner) = owner {
                c.acls.insert(object, roles::Acl::owned_by(owner));
            }
            Ok(true)
        })
    }

    pub fn create_view(
        &self,
        txn: Option<&Transaction>,
        name: &QualifiedName,
        view: View,
        or_replace: bool,
        owner: Option<&str>,
    ) -> Result<((), Ack)> {
        let mut effect = Commit::of(Effect::CreateView(view.def.clone()));
        let object = roles::AclObject::relation(name);
        if let Some(owner) = owner {
            effect.effects.push(Effect::SetAcl {
                object: object.clone(),
                acl: Some(roles::Acl::owned_by(owner)),
            });
        }
        self.change_catalog(txn, effect, |c| {
            let entry = c
                .schemas
                .get_mut(&name.schema)
                .ok_or_else(|| QuiverError::UndefinedSchema(name.schema.clone()))?;
            if entry.tables.contains_key(&name.name)
                || (entry.views.contains_key(&name.name) && !or_replace)
            {
                return Err(QuiverError::DuplicateTable(name.name.clone()));
            }
            let replaced = entry
                .views
                .insert(name.name.clone(), Arc::new(view))
                .is_some();
            // CREATE OR REPLACE keeps the view's owner and grants.
            if let (Some(owner), false) = (owner, replaced) {
                c.acls.insert(object, roles::Acl::owned_by(owner));
            }
            Ok(())
        })
    }

    /// Drops tables or views (`want_view` says which the statement named),
    /// all or none: a missing name without `if_exists` drops nothing.
    pub fn drop_relations(
        &self,
        txn: Option<&Transaction>,
        names: &[QualifiedName],
        want_view: bool,
        if_exists: bool,
        cascade: bool,
    ) -> Result<((), Ack)> {
        let effect = Effect::DropRelations {
            names: names
                .iter()
                .map(|n| (n.schema.clone(), n.name.clone()))
                .collect(),
            views: want_view,
            if_exists,
            cascade,
        };
        self.change_catalog(txn, Commit::of(effect), |c| {
            for name in names {
                drop_relation(c, name, want_view, if_exists, cascade)?;
            }
            Ok(())
        })
    }

    /// CREATE ROLE (`create`) or ALTER ROLE: stores the role whole.
    pub fn put_role(
        &self,
        txn: Option<&Transaction>,
        role: roles::Role,
        create: bool,
    ) -> Result<((), Ack)> {
        let effect = Commit::of(Effect::PutRole(role.clone()));
        self.change_catalog(txn, effect, |c| {
            match (c.roles.contains_key(&role.name), create) {
                (true, true) => {
                    return Err(QuiverError::DuplicateObject(format!(
                        "role \"{}\" already exists",
                        role.name
                    )))
                }
                (false, false) => return Err(QuiverError::UndefinedRole(role.name.clone())),
                _ => {}
            }
            c.roles.insert(role.name.clone(), role);
            Ok(())
        })
    }

    /// DROP ROLE: refused while the role owns objects; its grants go with it.
    pub fn drop_role(
        &self,
        txn: Option<&Transaction>,
        name: &str,
        if_exists: bool,
    ) -> Result<(bool, Ack)> {
        let effect = Commit::of(Effect::DropRole {
            name: name.to_string(),
        });
        self.change_catalog(txn, effect, |c| {
            if c.roles.remove(name).is_none() {
                return if if_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::UndefinedRole(name.to_string()))
                };
            }
            if let Some((object, _)) = c.acls.iter().find(|(_, acl)| acl.owner == name) {
                let what = match object {
                    roles::AclObject::Schema(s) => format!("schema {s}"),
                    roles::AclObject::Relation { schema, name } => format!("relation {schema}.{name}"),
                };
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "role \"{name}\" cannot be dropped because some objects depend on it: it owns {what}"
                )));
            }
            for acl in c.acls.values_mut() {
                acl.grants.remove(name);
            }
            Ok(true)
        })
    }

    /// GRANT, REVOKE, OWNER TO: replaces the access-control lists given.
    pub fn set_acls(
        &self,
        txn: Option<&Transaction>,
        acls: Vec<(roles::AclObject, roles::Acl)>,
    ) -> Result<((), Ack)> {
        let mut effect = Commit::new();
        for (object, acl) in &acls {
            effect.effects.push(Effect::SetAcl {
                object: object.clone(),
                acl: Some(acl.clone()),
            });
        }
        self.change_catalog(txn, effect, |c| {
            for (object, acl) in acls {
                c.acls.insert(object, acl);
            }
            Ok(())
        })
    }

    /// Replay of a logged access-control list.
    pub fn replay_acl(&self, object: roles::AclObject, acl: Option<roles::Acl>) -> Result<()> {
        // Recovery runs with no WAL attached: nothing is logged again.
        let (_, _logged) = self.change_catalog(None, Commit::new(), |c| {
            match acl {
                Some(acl) => c.acls.insert(object, acl),
                None => c.acls.remove(&object),
            };
            Ok(())
        })?;
        Ok(())
    }

    /// Replay of a logged role change.
    pub fn replay_role(&self, role: Option<roles::Role>, drop: &str) -> Result<()> {
        let (_, _logged) = self.change_catalog(None, Commit::new(), |c| {
            match role {
                Some(role) => c.roles.insert(role.name.clone(), role),
                None => c.roles.remove(drop),
            };
            Ok(())
        })?;
        Ok(())
    }
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

fn drop_relation(
    c: &mut CatalogState,
    name: &QualifiedName,
    want_view: bool,
    if_exists: bool,
    cascade: bool,
) -> Result<()> {
    let kind = if want_view { "view" } else { "table" };
    let (is_table, is_view, is_external) = match c.schemas.get(&name.schema) {
        None => (false, false, false),
        Some(entry) => (
            entry.tables.contains_key(&name.name),
            entry.views.contains_key(&name.name),
            entry.views.get(&name.name).is_some_and(|v| v.is_external()),
        ),
    };
    // An external table is kept as a view; DROP TABLE drops it too.
    if (want_view && is_table) || (!want_view && is_view && !is_external) {
        return Err(QuiverError::WrongObjectType(format!(
            "\"{}\" is not a {kind}",
            name.name
        )));
    }
    if !is_table && !is_view {
        return if if_exists {
            Ok(())
        } else {
            Err(QuiverError::UndefinedTable(name.name.clone()))
        };
    }
    let dependents = c.views_depending_on(name);
    if !dependents.is_empty() && !cascade {
        return Err(QuiverError::DependentObjectsStillExist(format!(
            "cannot drop {kind} {} because other objects depend on it (view {}); use DROP ... CASCADE to drop the dependent objects too",
            name.name, dependents[0].name
        )));
    }
    // CASCADE: drop the views that depend on it, transitively.
    let mut doomed = vec![name.clone()];
    while let Some(target) = doomed.pop() {
        doomed.extend(c.views_depending_on(&target));
        if let Some(entry) = c.schemas.get_mut(&target.schema) {
            entry.tables.remove(&target.name);
            entry.views.remove(&target.name);
        }
        c.forget_relation(&target);
    }
    Ok(())
}
