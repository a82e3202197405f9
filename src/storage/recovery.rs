//! Opening a data directory: the manifest, a check of every checkpoint
//! file's footer, then the WAL after the checkpoint, then a fresh WAL file
//! for new commits. The tables' rows are read later (see
//! `engine::unread`): by a background reader per core, smallest table
//! first, or by the first statement that needs them.
//!
//! A damaged directory (a checksum mismatch in the middle of the WAL, a
//! missing Parquet file or a damaged footer) is refused with an error
//! naming the file and offset; a data page found damaged when the rows are
//! read fails the statements on that table only. [`open_damaged`] is the
//! way out `quiver recover` offers: it reads what can be read (every table
//! at once), never writes to the directory, and reports every record and
//! table it could not bring back.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;

use super::checkpoint::{parquet_rows, read_parquet_map};
use super::manifest::{Manifest, ManifestTable};
use super::wal::{read_wal_from, wal_epochs, wal_path, Wal};
use super::Storage;
use crate::engine::commit::{decode_batches, Commit, Effect};
use crate::engine::table::{LoadedBatch, LoadedRows};
use crate::engine::unread::Unread;
use crate::engine::{Compiler, Database, Lsn, MakeCompiler, QualifiedName, Table, DEFAULT_SCHEMA};
use crate::error::{QuiverError, Result};

/// What recovery does with damage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Refuse to open: the server never starts on a directory it would
    /// read only partly.
    Strict,
    /// Read what can be read, report the rest, write nothing.
    Salvage,
}

/// What [`open_damaged`] could not bring back.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// One line per problem, naming the file (and offset) and what was
    /// lost with it.
    pub problems: Vec<String>,
    /// WAL records applied.
    pub records_replayed: usize,
}

impl RecoveryReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Opens (creating if needed) the database in `dir`, compiling stored
/// definitions with the compiler `compiler` makes. The caller holds the
/// directory's lock.
pub async fn open(dir: &Path, compiler: &MakeCompiler) -> Result<Arc<Database>> {
    std::fs::create_dir_all(dir)?;
    let recovered = recover(dir, Mode::Strict, compiler).await?;
    let epochs = wal_epochs(dir)?;
    let epoch = epochs
        .last()
        .copied()
        .unwrap_or(0)
        .max(recovered.replay_from)
        + 1;
    let wal = Wal::open(dir, epoch)?;
    let db = recovered.db;
    let storage = Storage::new(dir, wal, epoch, recovered.manifest, db.replication.clone())?;
    db.attach_log(Arc::new(storage));
    match fenced(dir)? {
        Some(reason) => db.set_read_only_because(&reason),
        None => {
            if let Err(e) = db.drop_temporary_schemas() {
                tracing::warn!("could not drop the temporary tables of the last run: {e}");
            }
        }
    }
    read_in_background(&db, recovered.started);
    Ok(db)
}

/// Opens a replica's data directory (a base backup, or a replica that
/// stopped): its WAL is its primary's, so it continues in the last file,
/// at the end of what recovery replayed. Returns the position streaming
/// resumes from. The database is read-only.
pub async fn open_replica(dir: &Path, compiler: &MakeCompiler) -> Result<(Arc<Database>, Lsn)> {
    let recovered = recover(dir, Mode::Strict, compiler).await?;
    let end = recovered.replayed_to;
    let wal = Wal::open(dir, end.epoch())?;
    let db = recovered.db;
    let storage = Storage::new(
        dir,
        wal,
        end.epoch(),
        recovered.manifest,
        db.replication.clone(),
    )?;
    storage.start_mirroring(end);
    db.attach_log(Arc::new(storage));
    db.replication.set_in_recovery(true);
    db.replication.set_replayed(end);
    db.set_read_only_because(
        "this server is a replica (pg_is_in_recovery() is true); write on the primary",
    );
    read_in_background(&db, recovered.started);
    Ok((db, end))
}

const FENCE_FILE: &str = "FENCED";

/// Marks this data directory as a primary superseded by a promoted
/// replica: from now on (and after restarts) it refuses changes, saying
/// `reason`, until it is re-attached as a replica of the new primary.
pub fn fence(db: &Database, reason: &str) -> Result<()> {
    if let Some(storage) = super::storage_of(db) {
        let path = storage.dir().join(FENCE_FILE);
        std::fs::write(&path, reason)?;
        std::fs::File::open(&path)?.sync_all()?;
        super::wal::sync_dir(storage.dir())?;
    }
    db.set_read_only_because(reason);
    Ok(())
}

/// Why this data directory was fenced, if it was.
fn fenced(dir: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(dir.join(FENCE_FILE)) {
        Ok(reason) => Ok(Some(reason.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads a possibly damaged data directory as far as it can be read:
/// tables whose checkpoint file is missing or unreadable come back empty
/// (their definitions kept, their logged rows skipped), and WAL replay
/// stops at the first damaged record. Nothing in `dir` is written. The
/// database comes back without storage: the caller serves it read-only or
/// checkpoints it into a new directory.
pub async fn open_damaged(
    dir: &Path,
    compiler: &MakeCompiler,
) -> Result<(Arc<Database>, RecoveryReport)> {
    if !dir.is_dir() {
        return Err(QuiverError::UndefinedFile(format!(
            "data directory {} does not exist",
            dir.display()
        )));
    }
    let recovered = recover(dir, Mode::Salvage, compiler).await?;
    Ok((recovered.db, recovered.report))
}

/// A database read back from a data directory.
struct Recovered {
    db: Arc<Database>,
    report: RecoveryReport,
    manifest: Option<Manifest>,
    /// The first WAL epoch the manifest did not cover.
    replay_from: u64,
    /// Where the replayed log ends (the last file's valid length).
    replayed_to: Lsn,
    started: Instant,
}

async fn recover(dir: &Path, mode: Mode, compiler: &MakeCompiler) -> Result<Recovered> {
    let started = Instant::now();
    let db = Database::new();
    let mut compiler = compiler(db.clone());
    let mut report = RecoveryReport::default();
    let mut recovery = Recovery {
        tables: HashMap::new(),
        lost: HashSet::new(),
    };
    let manifest = Manifest::read(dir)?;
    let mut replay_from = 0;
    let mut replay_offset = 0;
    match &manifest {
        Some(manifest) => {
            recovery
                .restore_checkpoint(&db, compiler.as_mut(), dir, manifest, mode, &mut report)
                .await?;
            replay_from = manifest.wal_epoch;
            replay_offset = manifest.wal_offset;
            // Directories from before replication get their id now; it is
            // saved with the next checkpoint.
            db.replication.set_system_id(match manifest.system_id {
                0 => super::manifest::new_system_id(),
                id => id,
            });
            db.replication.set_timeline(manifest.timeline.max(1));
        }
        None => db
            .replication
            .set_system_id(super::manifest::new_system_id()),
    }
    let mut replayed_to = Lsn::new(replay_from, replay_offset);
    'files: for epoch in wal_epochs(dir)?.into_iter().filter(|e| *e >= replay_from) {
        let path = wal_path(dir, epoch);
        let start = if epoch == replay_from {
            replay_offset
        } else {
            0
        };
        let contents = read_wal_from(&path, start)?;
        replayed_to = Lsn::new(epoch, contents.valid_len);
        if contents.torn_bytes > 0 {
            tracing::warn!(
                "{}: dropped {} byte(s) of a record cut short at the end (a commit that was never acknowledged)",
                path.display(),
                contents.torn_bytes
            );
            if mode == Mode::Strict {
                let file = OpenOptions::new().write(true).open(&path)?;
                file.set_len(contents.valid_len)?;
                file.sync_all()?;
            }
        }
        let damage = contents.damage;
        for (i, commit) in contents.commits.into_iter().enumerate() {
            match recovery.replay(&db, compiler.as_mut(), commit).await {
                Ok(()) => report.records_replayed += 1,
                Err(e) if mode == Mode::Salvage => {
                    report.problems.push(format!(
                        "{}: record {} could not be applied ({e}); it and every later record were not replayed",
                        path.display(),
                        i + 1
                    ));
                    break 'files;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(damage) = damage {
            if mode == Mode::Strict {
                return Err(damage);
            }
            report.problems.push(format!(
                "{damage}; this record and every later one (including later WAL files) were not replayed"
            ));
            break;
        }
    }
    let rows: usize = recovery.tables.values().map(|t| t.pin().row_count).sum();
    tracing::info!(
        "opened {}: {} table(s), {} row(s), {} WAL record(s) replayed, {} ms",
        dir.display(),
        db.catalog()
            .schemas
            .values()
            .map(|s| s.tables.len())
            .sum::<usize>(),
        rows,
        report.records_replayed,
        started.elapsed().as_millis()
    );
    Ok(Recovered {
        db,
        report,
        manifest,
        replay_from,
        replayed_to,
        started,
    })
}

/// The tables recovery has built, by id (dropped ones too: rows logged
/// for them are discarded with them), and the ids whose rows could not be
/// read (salvage).
struct Recovery {
    tables: HashMap<u64, Arc<Table>>,
    lost: HashSet<u64>,
}

impl Recovery {
    async fn replay(
        &mut self,
        db: &Database,
        compiler: &mut dyn Compiler,
        mut commit: Commit,
    ) -> Result<()> {
        if !self.lost.is_empty() {
            // Rows of a table whose checkpoint was lost: positions in its
            // deletes would point at the wrong rows, so none are applied.
            commit.effects.retain(|effect| match effect {
                Effect::Insert { table_id, .. }
                | Effect::InsertSegment { table_id, .. }
                | Effect::Delete { table_id, .. } => !self.lost.contains(table_id),
                _ => true,
            });
        }
        db.replay(commit, &mut self.tables, compiler).await
    }

    async fn restore_checkpoint(
        &mut self,
        db: &Arc<Database>,
        compiler: &mut dyn Compiler,
        dir: &Path,
        manifest: &Manifest,
        mode: Mode,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        for schema in &manifest.schemas {
            db.restore_schema(schema);
        }
        if !manifest.schemas.iter().any(|s| s == DEFAULT_SCHEMA) {
            db.restore_drop_schema(DEFAULT_SCHEMA);
        }
        for sequence in &manifest.sequences {
            db.restore_sequence(sequence);
        }
        let tables = match mode {
            // Served at once: each table's file is checked now and read
            // when first needed (or by the background reader).
            Mode::Strict => manifest
                .tables
                .iter()
                .map(|t| (t, read_later(dir, t)))
                .collect(),
            Mode::Salvage => read_tables(dir, manifest),
        };
        for (entry, loaded) in tables {
            let def = &entry.def;
            let (schema, rows) = match loaded {
                Ok(loaded) => loaded,
                Err(e) if mode == Mode::Salvage => {
                    report.problems.push(format!(
                        "table {}.{}: its {} checkpointed row(s) could not be read ({e}); the table comes back empty and its logged changes are skipped",
                        def.schema, def.name, entry.rows
                    ));
                    self.lost.insert(def.id);
                    let (schema, _) = decode_batches(&entry.schema_bytes()?)?;
                    let rows = LoadedRows::new(&schema, Vec::new())?;
                    (schema, Rows::Now(rows))
                }
                Err(e) => return Err(e),
            };
            let table = Arc::new(compiler.table(def, schema)?);
            match rows {
                Rows::Now(rows) => table.load(rows, entry.version)?,
                Rows::Later(unread) => table.load_later(unread),
            }
            db.restore_table(&QualifiedName::new(&def.schema, &def.name), table.clone());
            self.tables.insert(def.id, table);
        }
        for view in &manifest.views {
            let (built, broken) = compiler.view(view.clone()).await?;
            db.restore_view(&QualifiedName::new(&view.schema, &view.name), built);
            if let Some(reason) = broken {
                report.problems.push(format!(
                    "view {}.{}: {reason}; it is kept, and a query of it fails until it is replaced or dropped",
                    view.schema, view.name
                ));
            }
        }
        let foreign_keys: Vec<_> = manifest
            .foreign_keys
            .iter()
            .map(|fk| crate::engine::commit::Effect::AddForeignKey(fk.clone()))
            .collect();
        db.restore_foreign_keys(&foreign_keys);
        for (target, text) in &manifest.comments {
            db.restore_comment(target, &Some(text.clone()));
        }
        for role in &manifest.roles {
            db.restore_role(Some(role.clone()), "");
        }
        for (object, acl) in &manifest.acls {
            db.restore_acl(object.clone(), Some(acl.clone()));
        }
        db.reserve_table_ids(manifest.next_table_id);
        db.reserve_view_seqs(manifest.next_view_seq);
        Ok(())
    }
}

/// A table's rows as its checkpoint holds them: read, or to be read.
type Loaded = Result<(SchemaRef, Rows)>;

enum Rows {
    Now(LoadedRows),
    Later(Arc<Unread>),
}

/// A table's checkpoint, to be read when its rows are first needed. The
/// file must be there with the row count the manifest gives (its footer
/// is read now): a damaged directory is still refused at start.
fn read_later(dir: &Path, t: &ManifestTable) -> Loaded {
    let (schema, _) = decode_batches(&t.schema_bytes()?)?;
    let path = dir.join(&t.file);
    check_rows(&path, parquet_rows(&path)?, t)?;
    let read = {
        let schema = schema.clone();
        let path = path.clone();
        move || read_rows(&path, &schema)
    };
    let statistics = t
        .statistics
        .as_ref()
        .and_then(|saved| saved.columns(&schema, t.rows as usize));
    let unread = Unread::new(
        path.display().to_string(),
        t.rows as usize,
        t.version,
        statistics,
        Box::new(read),
    );
    Ok((schema, Rows::Later(unread)))
}

/// Reads, smallest first, the rows of every table a restart left unread,
/// on one thread per core; a query that needs a table before its turn
/// reads that table itself.
fn read_in_background(db: &Database, started: Instant) {
    let mut tables: Vec<(usize, std::sync::Weak<Table>)> = db
        .catalog()
        .schemas
        .values()
        .flat_map(|entry| entry.tables.values())
        .filter(|table| !table.is_resident())
        .map(|table| (table.pin().row_count, Arc::downgrade(table)))
        .collect();
    if tables.is_empty() {
        return;
    }
    tables.sort_by_key(|(rows, _)| *rows);
    let spawned = std::thread::Builder::new()
        .name("quiver-reader".into())
        .spawn(move || {
            use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
            // One reader per core, each taking the next table in line (a
            // small table's file is read by one thread, a big one's by
            // every core).
            let readers = std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(tables.len());
            let (next, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
            std::thread::scope(|scope| {
                for _ in 0..readers {
                    scope.spawn(|| {
                        while let Some((_, table)) = tables.get(next.fetch_add(1, Relaxed)) {
                            // Dropped since: nothing to read.
                            let Some(table) = table.upgrade() else {
                                continue;
                            };
                            if table.ready().is_err() {
                                failed.fetch_add(1, Relaxed);
                            }
                        }
                    });
                }
            });
            let failed = failed.load(Relaxed);
            tracing::info!(
                "every table's rows are in memory ({} ms after start{})",
                started.elapsed().as_millis(),
                if failed > 0 {
                    format!("; {failed} could not be read, see above")
                } else {
                    String::new()
                }
            );
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the background reader: {e}; tables are read on first use");
    }
}

/// Every table's checkpoint file, read in parallel; a missing or damaged
/// file is an error naming it, never an empty table.
fn read_tables<'m>(dir: &Path, manifest: &'m Manifest) -> Vec<(&'m ManifestTable, Loaded)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = manifest
            .tables
            .iter()
            .map(|t| (t, scope.spawn(move || read_table(dir, t))))
            .collect();
        handles
            .into_iter()
            .map(|(t, h)| (t, h.join().expect("checkpoint reader panicked")))
            .collect()
    })
}

fn read_table(dir: &Path, t: &ManifestTable) -> Loaded {
    let (schema, _) = decode_batches(&t.schema_bytes()?)?;
    let path = dir.join(&t.file);
    let rows = read_rows(&path, &schema)?;
    check_rows(&path, rows.row_count() as u64, t)?;
    Ok((schema, Rows::Now(rows)))
}

/// Fails naming `path` unless it holds the rows the manifest gives.
fn check_rows(path: &Path, rows: u64, t: &ManifestTable) -> Result<()> {
    if rows == t.rows {
        return Ok(());
    }
    Err(QuiverError::Corrupt {
        path: path.display().to_string(),
        offset: 0,
        reason: format!("holds {rows} rows, the manifest says {}", t.rows),
    })
}

/// A checkpoint file's rows, each reader thread compressing the batches
/// it decodes.
fn read_rows(path: &Path, schema: &SchemaRef) -> Result<LoadedRows> {
    let batches = read_parquet_map(path, schema, |batch| Ok(LoadedBatch::new(batch)))?;
    LoadedRows::new(schema, batches)
}
