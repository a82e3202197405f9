//! Opening a data directory: the last checkpoint's Parquet files (read in
//! parallel), then the WAL after it, then a fresh WAL file for new commits.

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;

use super::checkpoint::read_parquet;
use super::manifest::{Manifest, ManifestTable};
use super::record::decode_batches;
use super::wal::{read_wal, wal_epochs, wal_path, Wal};
use super::Storage;
use crate::engine::{Database, QualifiedName, Table, DEFAULT_SCHEMA};
use crate::error::{QuiverError, Result};
use crate::session::Session;

/// Opens (creating if needed) the database in `dir`. The caller holds the
/// directory's lock.
pub async fn open(dir: &Path) -> Result<Arc<Database>> {
    let started = Instant::now();
    std::fs::create_dir_all(dir)?;
    let db = Database::new();
    let mut session = Session::new(db.clone());
    let mut tables: HashMap<u64, Arc<Table>> = HashMap::new();
    let manifest = Manifest::read(dir)?;
    let mut replay_from = 0;
    if let Some(manifest) = &manifest {
        restore_checkpoint(&db, &mut session, dir, manifest, &mut tables).await?;
        replay_from = manifest.wal_epoch;
    }
    let epochs = wal_epochs(dir)?;
    let mut replayed = 0usize;
    for &epoch in epochs.iter().filter(|e| **e >= replay_from) {
        let path = wal_path(dir, epoch);
        let contents = read_wal(&path)?;
        if contents.torn_bytes > 0 {
            tracing::warn!(
                "{}: dropped {} byte(s) of a record cut short at the end (a commit that was never acknowledged)",
                path.display(),
                contents.torn_bytes
            );
            let file = OpenOptions::new().write(true).open(&path)?;
            file.set_len(contents.valid_len)?;
            file.sync_all()?;
        }
        for commit in contents.commits {
            session.replay(commit, &mut tables).await?;
            replayed += 1;
        }
    }
    let epoch = epochs.last().copied().unwrap_or(0).max(replay_from) + 1;
    let wal = Wal::open(dir, epoch)?;
    db.attach_storage(Storage::new(dir, wal, epoch, manifest));
    let rows: usize = tables.values().map(|t| t.snapshot().row_count).sum();
    tracing::info!(
        "opened {}: {} table(s), {} row(s), {} WAL record(s) replayed, {} ms",
        dir.display(),
        db.catalog()
            .schemas
            .values()
            .map(|s| s.tables.len())
            .sum::<usize>(),
        rows,
        replayed,
        started.elapsed().as_millis()
    );
    Ok(db)
}

async fn restore_checkpoint(
    db: &Arc<Database>,
    session: &mut Session,
    dir: &Path,
    manifest: &Manifest,
    tables: &mut HashMap<u64, Arc<Table>>,
) -> Result<()> {
    for schema in &manifest.schemas {
        let (_, ack) = db.create_schema(None, schema, true, None)?;
        ack.wait().await;
    }
    if !manifest.schemas.iter().any(|s| s == DEFAULT_SCHEMA) {
        let (_, ack) = db.drop_schema(None, DEFAULT_SCHEMA, true, true)?;
        ack.wait().await;
    }
    // Read every table's file in parallel; a missing or damaged file is an
    // error naming it, never an empty table.
    let loaded: Vec<
        Result<(
            &ManifestTable,
            datafusion::arrow::datatypes::SchemaRef,
            Vec<RecordBatch>,
        )>,
    > = std::thread::scope(|scope| {
        let handles: Vec<_> = manifest
            .tables
            .iter()
            .map(|t| {
                scope.spawn(move || {
                    let (schema, _) = decode_batches(&t.schema_bytes()?)?;
                    let batches = read_parquet(&dir.join(&t.file), &schema)?;
                    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                    if rows as u64 != t.rows {
                        return Err(QuiverError::Corrupt {
                            path: dir.join(&t.file).display().to_string(),
                            offset: 0,
                            reason: format!("holds {rows} rows, the manifest says {}", t.rows),
                        });
                    }
                    Ok((t, schema, batches))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("checkpoint reader panicked"))
            .collect()
    });
    for result in loaded {
        let (entry, schema, batches) = result?;
        let def = &entry.def;
        let table = Arc::new(session.build_table_from_def(def, schema)?);
        table.restore(batches, entry.version)?;
        let (_, ack) = db.create_table(
            None,
            &QualifiedName::new(&def.schema, &def.name),
            table.clone(),
            false,
            None,
        )?;
        ack.wait().await;
        tables.insert(def.id, table);
    }
    for view in &manifest.views {
        session.replay_view(view.clone()).await?;
    }
    for role in &manifest.roles {
        db.replay_role(Some(role.clone()), "")?;
    }
    for (object, acl) in &manifest.acls {
        db.replay_acl(object.clone(), Some(acl.clone()))?;
    }
    db.reserve_table_ids(manifest.next_table_id);
    db.reserve_view_seqs(manifest.next_view_seq);
    Ok(())
}
