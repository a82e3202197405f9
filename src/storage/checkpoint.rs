//! Checkpoints: every table changed since the last checkpoint is written to
//! Parquet from a snapshot, then a new manifest replaces the old one, then
//! the files no manifest needs are removed. Commits are held back only for
//! the instant it takes to switch WAL files and take the snapshot.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Array, Int64Array, IntervalMonthDayNanoArray, RecordBatch,
    StructArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, Fields, IntervalMonthDayNano, IntervalUnit, Schema, SchemaRef,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::manifest::{Manifest, ManifestTable};
use super::wal::{sync_dir, wal_epochs, wal_path};
use super::{storage_of, Storage};
use crate::engine::commit::{encode_schema, Commit};
use crate::engine::unread::SavedStatistics;
use crate::engine::{CheckpointStats, Database};
use crate::error::{QuiverError, Result};

pub const TABLES_DIR: &str = "tables";
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Starts a checkpoint in the background when the WAL has grown past the
/// configured size and none is running.
pub(super) fn maybe_checkpoint(storage: &Storage, db: &Arc<Database>) {
    if storage.wal.size() < storage.checkpoint_wal_bytes() {
        return;
    }
    checkpoint_soon(storage, db);
}

/// Starts a checkpoint on a thread of its own, unless one is running.
pub fn checkpoint_soon(storage: &Storage, db: &Arc<Database>) {
    if storage
        .checkpoint_running
        .swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        return;
    }
    let db = db.clone();
    std::thread::spawn(move || {
        yield_to_statements();
        if let Err(e) = checkpoint(&db) {
            tracing::error!("automatic checkpoint failed: {e}");
        }
        if let Some(storage) = storage_of(&db) {
            storage
                .checkpoint_running
                .store(false, std::sync::atomic::Ordering::Release);
        }
    });
}

/// Checkpoints every `interval` while commits have been logged since the
/// last checkpoint (PostgreSQL's checkpoint_timeout), on a thread of its
/// own, for as long as the process runs.
pub fn checkpoint_every(db: &Arc<Database>, interval: std::time::Duration) {
    let db = Arc::downgrade(db);
    let spawned = std::thread::Builder::new()
        .name("quiver-checkpointer".into())
        .spawn(move || {
            yield_to_statements();
            loop {
                std::thread::sleep(interval);
                let Some(db) = db.upgrade() else {
                    return;
                };
                let Some(storage) = storage_of(&db) else {
                    return;
                };
                if storage.wal.size() == 0
                    || storage
                        .checkpoint_running
                        .swap(true, std::sync::atomic::Ordering::AcqRel)
                {
                    continue;
                }
                if let Err(e) = checkpoint(&db) {
                    tracing::error!("timed checkpoint failed: {e}");
                }
                storage
                    .checkpoint_running
                    .store(false, std::sync::atomic::Ordering::Release);
            }
        });
    if let Err(e) = spawned {
        tracing::error!("could not start the checkpoint timer: {e}");
    }
}

/// Lowers the calling thread's CPU priority (nice 10): an automatic
/// checkpoint yields the cores to the statements running beside it and
/// uses what they leave. On two cores, a checkpoint of the tables loaded
/// before lineitem (zstd Parquet, 3.5 s of a core) ran beside lineitem's
/// COPY and made it take 3.5 s instead of 2.4 s.
fn yield_to_statements() {
    // SAFETY: setpriority only changes scheduling; on Linux PRIO_PROCESS
    // with 0 names the calling thread (elsewhere, the whole process).
    #[cfg(target_os = "linux")]
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
}

/// Writes a checkpoint of `db`. Blocking: run it off the async runtime.
pub fn checkpoint(db: &Database) -> Result<CheckpointStats> {
    let storage = storage_of(db).ok_or_else(|| {
        QuiverError::FeatureNotSupported(
            "CHECKPOINT needs a data directory; this database is in memory".into(),
        )
    })?;
    checkpoint_with(storage, db)
}

pub(super) fn checkpoint_with(storage: &Storage, db: &Database) -> Result<CheckpointStats> {
    let _one_at_a_time = storage.checkpoint_lock.lock();
    let started = Instant::now();
    let dir = storage.dir();

    // The cut: every commit before it is in the snapshot, every commit
    // after it is in the new WAL file (on a replica: after the position
    // replay had reached, in its primary's file).
    let (epoch, offset, catalog, tables, sequences) = {
        let _gate = db.block_commits();
        let (epoch, offset) = if storage.is_mirror() {
            let applied = storage.applied();
            (applied.epoch(), applied.offset())
        } else {
            let epoch = storage.epoch() + 1;
            storage.wal.rotate(epoch)?;
            storage
                .epoch
                .store(epoch, std::sync::atomic::Ordering::Release);
            (epoch, 0)
        };
        let catalog = db.catalog();
        let mut tables = Vec::new();
        for (schema, entry) in &catalog.schemas {
            for table in entry.tables.values() {
                // Without waiting for rows a restart has not read: an
                // unchanged table keeps its file.
                tables.push((schema.clone(), table.clone(), table.pin()));
            }
        }
        // Positions as logged: a value handed out after the cut is in a
        // record of the new WAL.
        let sequences: Vec<_> = catalog
            .sequences()
            .map(|(name, s)| s.def(&name.schema, &name.name, false))
            .collect();
        (epoch, offset, catalog, tables, sequences)
    };

    let previous: HashMap<u64, ManifestTable> = storage
        .last_manifest
        .lock()
        .as_ref()
        .map(|m| m.tables.iter().map(|t| (t.def.id, t.clone())).collect())
        .unwrap_or_default();
    std::fs::create_dir_all(dir.join(TABLES_DIR))?;
    let mut stats = CheckpointStats::default();
    let mut manifest = Manifest::new(epoch);
    manifest.wal_offset = offset;
    manifest.system_id = storage.replication.system_id();
    manifest.timeline = storage.replication.timeline();
    manifest.schemas = catalog.schemas.keys().cloned().collect();
    for (schema_name, table, version) in &tables {
        let mut scratch = Commit::new();
        let mut def = table.definition(schema_name, &mut scratch)?;
        def.arrow_schema = 0;
        let (file, statistics, bytes) = match previous.get(&table.id()) {
            Some(prev) if prev.version == version.version && dir.join(&prev.file).exists() => {
                stats.tables_reused += 1;
                let bytes = match prev.bytes {
                    0 => std::fs::metadata(dir.join(&prev.file))?.len(),
                    bytes => bytes,
                };
                (prev.file.clone(), prev.statistics.clone(), bytes)
            }
            _ => {
                let file = format!("{TABLES_DIR}/{}-{}.parquet", table.id(), version.version);
                let version = version.resolved();
                let schema = table.schema_ref();
                let bytes =
                    write_parquet(&dir.join(&file), &schema, version.live_batches_one_by_one())?;
                stats.bytes_written += bytes;
                stats.tables_written += 1;
                // Only a help for the next start: a failure costs nothing.
                let statistics = SavedStatistics::of(&version, &schema)
                    .inspect_err(|e| tracing::debug!("statistics of {}: {e}", table.name()))
                    .ok();
                (file, statistics, bytes)
            }
        };
        stats.rows += version.row_count as u64;
        manifest.tables.push(ManifestTable {
            def,
            arrow_schema: ManifestTable::encode_schema(&encode_schema(&table.schema_ref())?),
            file,
            version: version.version,
            rows: version.row_count as u64,
            bytes,
            statistics,
        });
    }
    let mut views: Vec<_> = catalog
        .schemas
        .values()
        .flat_map(|entry| entry.views.values().cloned())
        .collect();
    views.sort_by_key(|v| v.seq);
    manifest.views = views.iter().map(|v| v.def.clone()).collect();
    manifest.roles = catalog.roles.values().cloned().collect();
    manifest.acls = catalog
        .acls
        .iter()
        .map(|(object, acl)| (object.clone(), acl.clone()))
        .collect();
    manifest.sequences = sequences;
    manifest.foreign_keys = catalog
        .foreign_keys
        .iter()
        .map(|fk| fk.as_ref().clone())
        .collect();
    manifest.comments = catalog
        .comments
        .iter()
        .map(|(target, text)| (target.clone(), text.clone()))
        .collect();
    manifest.next_table_id = db.next_table_id();
    manifest.next_view_seq = db.next_view_seq();
    sync_dir(&dir.join(TABLES_DIR))?;
    manifest.write(dir)?;

    // Only now is the old state unneeded: the WAL before the cut (unless
    // a replica or a base backup still needs it), and the files no longer
    // in the manifest (after a grace period, and not while a base backup
    // reads them).
    let keep_from = storage.wal_keep_from(epoch);
    for old in wal_epochs(dir)?.into_iter().filter(|e| *e < keep_from) {
        remove_quietly(&wal_path(dir, old));
    }
    if let Err(e) = storage.slots.save() {
        tracing::warn!("could not save the replication slots: {e}");
    }
    let referenced: HashSet<&str> = manifest.tables.iter().map(|t| t.file.as_str()).collect();
    let pinned: HashSet<String> = storage
        .pins
        .lock()
        .values()
        .flat_map(|p| p.files.iter().cloned())
        .collect();
    let grace = *storage.file_grace.lock();
    let now = Instant::now();
    let mut superseded = storage.superseded.lock();
    for entry in std::fs::read_dir(dir.join(TABLES_DIR))? {
        let name = format!("{TABLES_DIR}/{}", entry?.file_name().to_string_lossy());
        if !referenced.contains(name.as_str()) && !superseded.iter().any(|(f, _)| *f == name) {
            superseded.push((name, now));
        }
    }
    superseded.retain(|(name, since)| {
        if referenced.contains(name.as_str()) {
            return false;
        }
        if pinned.contains(name) || now.duration_since(*since) < grace {
            return true;
        }
        remove_quietly(&dir.join(name));
        false
    });
    drop(superseded);
    *storage.last_manifest.lock() = Some(manifest);
    *storage.last_checkpoint_at.lock() = Some(chrono::Utc::now());
    stats.millis = started.elapsed().as_millis();
    crate::metrics::metrics().checkpoint(started.elapsed());
    tracing::info!(
        "checkpoint: {} table(s) written ({} bytes), {} unchanged, {} rows, {} ms",
        stats.tables_written,
        stats.bytes_written,
        stats.tables_reused,
        stats.rows,
        stats.millis
    );
    Ok(stats)
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!("could not remove {}: {e}", path.display());
    }
}

/// Writes batches as a zstd Parquet file (temp file, fsync, rename);
/// returns its size.
/// Writes `batches` (taken one at a time: a compressed table is decoded
/// segment by segment, never all at once) to a Parquet file.
fn write_parquet(
    path: &Path,
    schema: &SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch>>,
) -> Result<u64> {
    let file_schema = parquet_schema(schema);
    let tmp = path.with_extension("parquet.tmp");
    let file = File::create(&tmp)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut writer = ArrowWriter::try_new(file, file_schema.clone(), Some(props))
        .map_err(|e| QuiverError::Internal(format!("writing {}: {e}", path.display())))?;
    for batch in batches {
        let batch = to_parquet_batch(&file_schema, &batch?)?;
        writer
            .write(&batch)
            .map_err(|e| QuiverError::Internal(format!("writing {}: {e}", path.display())))?;
    }
    let file = writer
        .into_inner()
        .map_err(|e| QuiverError::Internal(format!("writing {}: {e}", path.display())))?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    std::fs::rename(&tmp, path)?;
    Ok(size)
}

/// The rows a Parquet file says it holds (its footer is read, not its
/// data); an error naming the file when it is missing or its footer
/// damaged.
pub fn parquet_rows(path: &Path) -> Result<u64> {
    let damaged = |reason: String| QuiverError::Corrupt {
        path: path.display().to_string(),
        offset: 0,
        reason,
    };
    let file = File::open(path).map_err(|e| damaged(format!("cannot open: {e}")))?;
    let reader = datafusion::parquet::file::reader::SerializedFileReader::new(file)
        .map_err(|e| damaged(e.to_string()))?;
    use datafusion::parquet::file::reader::FileReader;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}

/// Reads a checkpoint file back into batches of the table's schema, its
/// row groups decoded in parallel, each batch passed through `f` on the
/// thread that read it, in file order (recovery compresses batches as they are read,
/// so a table's plain rows are never all in memory at once).
pub fn read_parquet_map<T: Send>(
    path: &Path,
    schema: &SchemaRef,
    f: impl Fn(RecordBatch) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let damaged = |reason: String| QuiverError::Corrupt {
        path: path.display().to_string(),
        offset: 0,
        reason,
    };
    let open = || -> Result<ParquetRecordBatchReaderBuilder<File>> {
        let file = File::open(path).map_err(|e| damaged(format!("cannot open: {e}")))?;
        ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| damaged(e.to_string()))
    };
    let row_groups = open()?.metadata().num_row_groups();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, row_groups.max(1));
    let chunk = row_groups.div_ceil(threads).max(1);
    let groups: Vec<Vec<usize>> = (0..row_groups)
        .collect::<Vec<_>>()
        .chunks(chunk)
        .map(|c| c.to_vec())
        .collect();
    let read_groups = |groups: Vec<usize>| -> Result<Vec<T>> {
        let reader = open()?
            .with_row_groups(groups)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| damaged(e.to_string()))?;
        let mut batches = Vec::new();
        for batch in reader {
            let batch = batch.map_err(|e| damaged(e.to_string()))?;
            let batch = from_parquet_batch(schema, &batch).map_err(|e| damaged(e.to_string()))?;
            batches.push(f(batch)?);
        }
        Ok(batches)
    };
    if groups.len() <= 1 {
        return read_groups((0..row_groups).collect());
    }
    let read_groups = &read_groups;
    let parts: Vec<Result<Vec<T>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|g| scope.spawn(move || read_groups(g)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parquet reader panicked"))
            .collect()
    });
    let mut batches = Vec::new();
    for part in parts {
        batches.extend(part?);
    }
    Ok(batches)
}

/// Parquet cannot hold Arrow's month-day-nanosecond intervals; they are
/// stored as a struct of their three parts.
fn interval_struct_fields() -> Fields {
    Fields::from(vec![
        Field::new("months", DataType::Int32, true),
        Field::new("days", DataType::Int32, true),
        Field::new("nanoseconds", DataType::Int64, true),
    ])
}

fn is_interval(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Interval(IntervalUnit::MonthDayNano))
}

fn parquet_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| is_interval(f.data_type())) {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            if is_interval(f.data_type()) {
                Field::new(
                    f.name(),
                    DataType::Struct(interval_struct_fields()),
                    f.is_nullable(),
                )
                .with_metadata(f.metadata().clone())
            } else {
                f.as_ref().clone()
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn to_parquet_batch(file_schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            if !is_interval(column.data_type()) {
                return Ok(column.clone());
            }
            let intervals = column
                .as_any()
                .downcast_ref::<IntervalMonthDayNanoArray>()
                .expect("interval array");
            let months: Int32Array = intervals.iter().map(|v| v.map(|v| v.months)).collect();
            let days: Int32Array = intervals.iter().map(|v| v.map(|v| v.days)).collect();
            let nanos: Int64Array = intervals.iter().map(|v| v.map(|v| v.nanoseconds)).collect();
            let parts: Vec<ArrayRef> = vec![Arc::new(months), Arc::new(days), Arc::new(nanos)];
            Ok(Arc::new(StructArray::try_new(
                interval_struct_fields(),
                parts,
                intervals.nulls().cloned(),
            )?) as ArrayRef)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(file_schema.clone(), columns)?)
}

fn from_parquet_batch(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch> {
    if batch.num_columns() != schema.fields().len() {
        return Err(QuiverError::Internal(format!(
            "has {} columns, the table has {}",
            batch.num_columns(),
            schema.fields().len()
        )));
    }
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            if !is_interval(field.data_type()) {
                return Ok(column.clone());
            }
            let parts = column.as_struct();
            let months = parts
                .column(0)
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
            let days = parts
                .column(1)
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>();
            let nanos = parts
                .column(2)
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
            let values: IntervalMonthDayNanoArray = (0..parts.len())
                .map(|i| {
                    (!parts.is_null(i) && !months.is_null(i)).then(|| {
                        IntervalMonthDayNano::new(months.value(i), days.value(i), nanos.value(i))
                    })
                })
                .collect();
            Ok(Arc::new(values) as ArrayRef)
        })
        .collect::<Result<Vec<_>>>()?;
    // The table's schema (with its type tags), not the file's.
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_nulls_round_trip_through_parquet() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "iv",
            DataType::Interval(IntervalUnit::MonthDayNano),
            true,
        )]));
        let values: IntervalMonthDayNanoArray =
            vec![Some(IntervalMonthDayNano::new(1, 2, 3)), None]
                .into_iter()
                .collect();
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_parquet(&path, &schema, [Ok(batch.clone())]).unwrap();
        assert_eq!(read_parquet_map(&path, &schema, Ok).unwrap(), vec![batch]);
    }
}
