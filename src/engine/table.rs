//! A table held in RAM: an immutable [`TableVersion`] of Arrow batches behind
//! an `ArcSwap`, so readers clone an `Arc` and scan without locks while a
//! writer installs the next version.
//!
//! Over 800 lines: one type, the table, with its versions, deletion vectors,
//! key maps and append/apply paths, which share private state; a split would
//! make that state public to the engine.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use datafusion::arrow::array::BooleanBufferBuilder;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session as DfSession, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use parking_lot::Mutex;

use super::encoding::{decode_rows, Rows, Stored};
use super::scan::{balance, Piece, PieceRows, TableScan, ZoneMaps};
use super::txn::TxnSlot;
use super::unique::{KeyEncoder, UniqueConstraint, UniqueIndex};
use super::unread::{DeferredScan, Unread};
use super::Ack;
use crate::engine::commit::{
    encode_schema, CheckDef, Commit, ConstraintDef, Effect, IndexDef, TableDef,
};
use crate::error::{QuiverError, Result};

/// Batches smaller than this are merged with their neighbours as rows
/// arrive, so that many small INSERTs still leave scan-friendly batches.
pub const TARGET_BATCH_ROWS: usize = 64 * 1024;

/// Unique-key value -> row of one segment's batch.
type KeyMap = HashMap<Box<[u8]>, u32>;

/// Key value -> the rows of one segment's batch with that key (of a
/// lookup index, where keys repeat): each key's first row, and for every
/// row the next row with the same key.
#[derive(Debug)]
struct RowsMap {
    first: HashMap<Box<[u8]>, u32>,
    next: Vec<u32>,
}

impl RowsMap {
    const END: u32 = u32::MAX;

    fn build(keys: Vec<super::unique::KeyAt>, rows: usize) -> RowsMap {
        let mut first: HashMap<Box<[u8]>, u32> = HashMap::with_capacity(keys.len());
        let mut next = vec![Self::END; rows];
        // Backwards, so that each chain runs in row order.
        for (key, _, row) in keys.into_iter().rev() {
            let row = row as u32;
            if let Some(head) = first.insert(key, row) {
                next[row as usize] = head;
            }
        }
        RowsMap { first, next }
    }

    /// The rows with `key`, in row order.
    fn rows<'a>(&'a self, key: &[u8]) -> impl Iterator<Item = u32> + 'a {
        let head = self.first.get(key).copied();
        std::iter::successors(head, |&row| {
            Some(self.next[row as usize]).filter(|&next| next != Self::END)
        })
    }
}

/// Rows found by key: per segment with any, its position in the version
/// and its rows, in row order.
type Found = Vec<(usize, Vec<u32>)>;

/// A segment's key maps, built on first use and shared by every version
/// that keeps its batch (the batch never changes; the live mask says
/// which rows still count).
#[derive(Debug, Default)]
struct KeyMaps {
    /// Per unique constraint.
    unique: Mutex<Vec<Option<Arc<KeyMap>>>>,
    /// Per lookup index.
    lookup: Mutex<Vec<Option<Arc<RowsMap>>>>,
}

/// One batch of a table and which of its rows are still there.
#[derive(Debug, Clone)]
pub struct Segment {
    /// The rows, encoded once the segment is sealed (see `encoding.rs`).
    data: Arc<Stored>,
    /// Set bits are live rows; `None` when no row was deleted.
    keep: Option<BooleanBuffer>,
    live: usize,
    /// The batch's keys under each unique constraint and lookup index.
    keys: Arc<KeyMaps>,
    /// The batch's zone maps (min, max, nulls per column), for scans.
    zones: Arc<ZoneMaps>,
}

impl Segment {
    fn new(batch: RecordBatch) -> Segment {
        Segment {
            live: batch.num_rows(),
            keep: None,
            zones: Arc::new(ZoneMaps::new(batch.num_columns())),
            data: Arc::new(Stored::new(batch)),
            keys: Default::default(),
        }
    }

    /// A segment of rows kept as they were logged.
    fn logged(data: Stored) -> Segment {
        Segment {
            live: data.num_rows(),
            keep: None,
            zones: Arc::new(ZoneMaps::new(data.schema().fields().len())),
            data: Arc::new(data),
            keys: Default::default(),
        }
    }

    fn rows(&self) -> usize {
        self.data.num_rows()
    }

    /// The live rows as one batch.
    fn live_batch(&self) -> Result<RecordBatch> {
        self.live_projected(None)
    }

    /// The live rows of the projected columns (projecting first, so a
    /// masked segment filters only the columns a scan reads).
    fn live_projected(&self, projection: Option<&[usize]>) -> Result<RecordBatch> {
        Ok(match &self.keep {
            None => self.data.rows(projection, Rows::All)?,
            Some(keep) => self.data.rows(
                projection,
                Rows::Mask(&BooleanArray::new(keep.clone(), None)),
            )?,
        })
    }

    fn is_live(&self, row: usize) -> bool {
        self.keep.as_ref().is_none_or(|keep| keep.value(row))
    }

    /// Position of a live row among the segment's live rows.
    fn rank(&self, row: usize) -> usize {
        match &self.keep {
            None => row,
            Some(keep) => keep.slice(0, row).count_set_bits(),
        }
    }

    /// Key columns (table positions, in key order) of every row, deleted
    /// ones too (key maps address rows of the segment's batch).
    fn key_columns(&self, columns: &[usize]) -> Result<Vec<ArrayRef>> {
        Ok(self.data.rows(Some(columns), Rows::All)?.columns().to_vec())
    }

    /// The key map of lookup index `i`, built on first use.
    fn rows_map(&self, i: usize, index: &KeyEncoder) -> Result<Arc<RowsMap>> {
        let mut maps = self.keys.lookup.lock();
        if maps.len() <= i {
            maps.resize(i + 1, None);
        }
        if let Some(map) = &maps[i] {
            return Ok(map.clone());
        }
        let keys = index.keys_of(&self.key_columns(index.columns())?)?;
        let keys = keys.into_iter().map(|(key, row)| (key, 0, row)).collect();
        let map = Arc::new(RowsMap::build(keys, self.rows()));
        maps[i] = Some(map.clone());
        Ok(map)
    }

    /// The key map of unique constraint `c`, built on first use.
    fn key_map(&self, c: usize, index: &UniqueIndex) -> Result<Arc<KeyMap>> {
        let mut maps = self.keys.unique.lock();
        if maps.len() <= c {
            maps.resize(c + 1, None);
        }
        if let Some(map) = &maps[c] {
            return Ok(map.clone());
        }
        let map: KeyMap = index
            .keys_of(&self.key_columns(index.columns())?)?
            .into_iter()
            .map(|(key, row)| (key, row as u32))
            .collect();
        let map = Arc::new(map);
        maps[c] = Some(map.clone());
        Ok(map)
    }
}

/// One immutable state of a table's rows. Deleted rows stay in their batch,
/// masked out, until the batch is compacted.
#[derive(Debug, Default, Clone)]
pub struct TableVersion {
    segments: Vec<Segment>,
    /// Live rows.
    pub row_count: usize,
    /// Increases by one with every change installed.
    pub version: u64,
    /// Set on the placeholder a restart installs before the checkpoint's
    /// rows are read: `row_count` and `version` are right, the rows are
    /// in here (see [`TableVersion::resolved`]).
    unread: Option<Arc<Unread>>,
}

/// A segment is rewritten without its deleted rows once this share of it
/// is gone (1/4), so scans do not filter the same dead rows forever.
fn needs_compaction(segment: &Segment) -> bool {
    segment.live * 4 < segment.rows() * 3
}

impl TableVersion {
    /// A checkpoint's rows as version `version`.
    pub(super) fn loaded(rows: LoadedRows, version: u64) -> TableVersion {
        TableVersion {
            row_count: rows.row_count(),
            segments: rows.0,
            version,
            unread: None,
        }
    }

    /// The placeholder of a table whose checkpoint is not read yet.
    fn placeholder(unread: Arc<Unread>) -> TableVersion {
        TableVersion {
            segments: Vec::new(),
            row_count: unread.rows,
            version: unread.version,
            unread: Some(unread),
        }
    }

    /// The read this placeholder stands for; None once the rows are here.
    pub fn unread(&self) -> Option<&Arc<Unread>> {
        self.unread.as_ref()
    }

    /// This version with its rows: a placeholder's read is done here (or
    /// waited for). When the read failed the placeholder comes back, and
    /// every use of its rows fails with the read's error. Blocking.
    pub fn resolved(self: &Arc<Self>) -> Arc<TableVersion> {
        match &self.unread {
            Some(unread) => unread.read().unwrap_or_else(|_| self.clone()),
            None => self.clone(),
        }
    }

    /// The segments; an error for a placeholder, so that rows not read
    /// are never taken for no rows.
    fn segments(&self) -> Result<&[Segment]> {
        match &self.unread {
            None => Ok(&self.segments),
            Some(unread) => Err(unread.failure_now()),
        }
    }

    /// The live rows, batch by batch, in table order.
    pub fn live_batches(&self) -> Result<Vec<RecordBatch>> {
        self.live_batches_projected(None)
    }

    /// The live rows, batch by batch, in table order, each decoded only
    /// when it is taken (a checkpoint writes a compressed table without
    /// decoding all of it at once).
    pub fn live_batches_one_by_one(&self) -> impl Iterator<Item = Result<RecordBatch>> + '_ {
        let (segments, failed) = match self.segments() {
            Ok(segments) => (segments, None),
            Err(e) => (&[][..], Some(Err(e))),
        };
        failed
            .into_iter()
            .chain(segments.iter().map(Segment::live_batch))
    }

    /// The live rows of some columns, batch by batch, in table order.
    pub fn live_batches_projected(&self, projection: Option<&[usize]>) -> Result<Vec<RecordBatch>> {
        self.segments()?
            .iter()
            .map(|s| s.live_projected(projection))
            .collect()
    }

    /// The least and greatest value of `column` over the version's
    /// segments (deleted rows included: bounds, not exact values), from
    /// the zone maps. None when unknown.
    pub fn column_bounds(&self, column: usize) -> Option<(ScalarValue, ScalarValue)> {
        let mut bounds: Option<(ScalarValue, ScalarValue)> = None;
        for segment in self.segments().ok()?.iter().filter(|s| s.live > 0) {
            let zone = segment.zones.column(&segment.data, column);
            let (Some(lo), Some(hi)) = (&zone.min, &zone.max) else {
                if zone.nulls == segment.rows() {
                    continue;
                }
                return None;
            };
            bounds = Some(match bounds {
                None => (lo.clone(), hi.clone()),
                Some((min, max)) => (
                    if lo < &min { lo.clone() } else { min },
                    if hi > &max { hi.clone() } else { max },
                ),
            });
        }
        bounds
    }

    /// Per column of the first `columns`: NULLs among the live rows and the
    /// least and greatest value, from the zone maps (exact when no segment
    /// has deleted rows, else bounds). A segment with deleted rows is
    /// decoded, one at a time, to count its live NULLs.
    pub fn column_statistics(&self, columns: usize) -> Result<Vec<ColumnStatistics>> {
        let segments = self.segments()?;
        let exact = segments.iter().all(|s| s.keep.is_none());
        let mut nulls = vec![0usize; columns];
        for segment in segments.iter().filter(|s| s.live > 0) {
            match &segment.keep {
                None => {
                    for (c, n) in nulls.iter_mut().enumerate() {
                        *n += segment.zones.column(&segment.data, c).nulls;
                    }
                }
                Some(_) => {
                    let batch = segment.live_batch()?;
                    for (c, n) in nulls.iter_mut().enumerate() {
                        *n += batch.column(c).null_count();
                    }
                }
            }
        }
        Ok(nulls
            .into_iter()
            .enumerate()
            .map(|(c, nulls)| {
                let (min, max) = match self.column_bounds(c) {
                    Some((lo, hi)) if exact => (Precision::Exact(lo), Precision::Exact(hi)),
                    Some((lo, hi)) => (Precision::Inexact(lo), Precision::Inexact(hi)),
                    None => (Precision::Absent, Precision::Absent),
                };
                ColumnStatistics {
                    null_count: Precision::Exact(nulls),
                    min_value: min,
                    max_value: max,
                    ..ColumnStatistics::new_unknown()
                }
            })
            .collect())
    }

    /// Distinct values of `column`, estimated from a sample of up to 8K
    /// rows spread over the segments: the sample's distinct count where
    /// values repeat a lot in it, else scaled up to the live rows.
    pub fn estimate_distinct(&self, column: usize) -> Option<f64> {
        use datafusion::arrow::row::{RowConverter, SortField};
        const PER_SEGMENT: usize = 1024;
        const SEGMENTS: usize = 8;
        let live: Vec<&Segment> = self
            .segments()
            .ok()?
            .iter()
            .filter(|s| s.live > 0)
            .collect();
        if live.is_empty() {
            return None;
        }
        let step = live.len().div_ceil(SEGMENTS);
        let data_type = live[0].data.schema().field(column).data_type().clone();
        let converter = RowConverter::new(vec![SortField::new(data_type)]).ok()?;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let mut sampled = 0usize;
        for segment in live.iter().step_by(step.max(1)) {
            let rows = segment.rows().min(PER_SEGMENT);
            let array =
                decode_rows(segment.data.encoded_column(column), Rows::Range(0, rows)).ok()?;
            let converted = converter.convert_columns(&[array]).ok()?;
            for row in converted.iter() {
                seen.insert(row.as_ref().to_vec());
            }
            sampled += rows;
        }
        let distinct = seen.len() as f64;
        let sampled = sampled.max(1) as f64;
        Some(if distinct * 2.0 <= sampled {
            distinct
        } else {
            distinct * self.row_count as f64 / sampled
        })
    }

    /// The live rows of some columns as scan pieces, with their
    /// segments' zone maps.
    pub fn pieces(&self, projection: Option<&[usize]>) -> Result<Vec<Piece>> {
        let segments = self.segments()?;
        let mut pieces = Vec::with_capacity(segments.len());
        for segment in segments.iter().filter(|s| s.live > 0) {
            // Deleted rows are filtered out now; other rows are decoded
            // as the scan reads them.
            let rows = match &segment.keep {
                None => PieceRows::Run {
                    offset: 0,
                    len: segment.rows(),
                },
                Some(_) => PieceRows::Decoded(segment.live_projected(projection)?),
            };
            pieces.push(Piece {
                rows,
                segment: segment.data.clone(),
                zones: segment.zones.clone(),
                intact: segment.keep.is_none(),
                whole: segment.keep.is_none(),
            });
        }
        Ok(pieces)
    }

    /// Like [`TableVersion::live_batches_projected`], each batch paired
    /// with the position of its first row among the live rows.
    pub fn live_batches_with_positions(
        &self,
        projection: Option<&[usize]>,
    ) -> Result<Vec<(u64, RecordBatch)>> {
        let mut base = 0u64;
        let segments = self.segments()?;
        let mut out = Vec::with_capacity(segments.len());
        for segment in segments {
            if segment.live > 0 {
                out.push((base, segment.live_projected(projection)?));
            }
            base += segment.live as u64;
        }
        Ok(out)
    }

    /// The live rows from the `first`-th one on, in table order.
    pub fn live_rows_from(&self, first: usize) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        let mut base = 0;
        for segment in self.segments()? {
            let end = base + segment.live;
            if end > first && segment.live > 0 {
                let batch = segment.live_batch()?;
                let skip = first.saturating_sub(base);
                out.push(batch.slice(skip, batch.num_rows() - skip));
            }
            base = end;
        }
        Ok(out)
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of Arrow memory the rows take, deleted rows included until
    /// their segment is compacted (none before they are read).
    pub fn memory_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.data.memory_size()).sum()
    }

    /// An empty version that follows this one.
    fn emptied(&self) -> TableVersion {
        TableVersion {
            segments: Vec::new(),
            row_count: 0,
            version: self.version + 1,
            unread: None,
        }
    }

    /// The version after appending `new` rows. Small trailing batches are
    /// merged pairwise while the older one is no larger than the newer one
    /// (the binary-counter rule), which keeps each row's copy count
    /// logarithmic and the batch count small.
    fn appended(&self, schema: &SchemaRef, new: Vec<RecordBatch>) -> Result<TableVersion> {
        let new: Vec<RecordBatch> = new.into_iter().filter(|b| b.num_rows() > 0).collect();
        self.with_segments(schema, segments_of(new))
    }

    /// The version after appending segments already made.
    fn with_segments(
        &self,
        schema: &SchemaRef,
        new: impl IntoIterator<Item = Segment>,
    ) -> Result<TableVersion> {
        let mut segments = self.segments()?.to_vec();
        let mut added = 0;
        for segment in new {
            added += segment.rows();
            segments.push(segment);
            merge_tail(schema, &mut segments)?;
        }
        Ok(TableVersion {
            segments,
            row_count: self.row_count + added,
            version: self.version + 1,
            unread: None,
        })
    }

    /// The version without the rows at `positions` (sorted, distinct,
    /// counted among live rows in table order), and those rows.
    /// The live rows at `positions` (sorted, distinct).
    pub fn rows_at(&self, schema: &SchemaRef, positions: &[u64]) -> Result<Vec<RecordBatch>> {
        Ok(self.deleted(schema, positions, true)?.1)
    }

    fn deleted(
        &self,
        schema: &SchemaRef,
        positions: &[u64],
        want_rows: bool,
    ) -> Result<(TableVersion, Vec<RecordBatch>)> {
        let mut segments = Vec::with_capacity(self.segments.len());
        let mut removed_rows = Vec::new();
        let mut removed = 0;
        let mut base = 0u64;
        let mut rest = positions;
        for segment in self.segments()? {
            let end = base + segment.live as u64;
            let here = rest.partition_point(|&p| p < end);
            let (mine, later) = rest.split_at(here);
            rest = later;
            if mine.is_empty() {
                segments.push(segment.clone());
                base = end;
                continue;
            }
            let rows = segment.rows();
            // Live ordinal -> physical row.
            let physical: Vec<usize> = match &segment.keep {
                None => mine.iter().map(|&p| (p - base) as usize).collect(),
                Some(keep) => {
                    let live: Vec<usize> = keep.set_indices().collect();
                    mine.iter().map(|&p| live[(p - base) as usize]).collect()
                }
            };
            let mut keep = BooleanBufferBuilder::new(rows);
            match &segment.keep {
                Some(old) => keep.append_buffer(old),
                None => keep.append_n(rows, true),
            }
            for &row in &physical {
                keep.set_bit(row, false);
            }
            if want_rows {
                let indices = UInt32Array::from_iter_values(physical.iter().map(|&r| r as u32));
                removed_rows.push(segment.data.rows(None, Rows::Take(&indices))?);
            }
            removed += physical.len();
            let next = Segment {
                data: segment.data.clone(),
                keep: Some(keep.finish()),
                live: segment.live - physical.len(),
                keys: segment.keys.clone(),
                zones: segment.zones.clone(),
            };
            if next.live == 0 {
                // Gone entirely.
            } else if needs_compaction(&next) {
                segments.push(Segment::new(next.live_batch()?));
            } else {
                segments.push(next);
            }
            base = end;
        }
        if !rest.is_empty() {
            return Err(QuiverError::Internal(format!(
                "row position {} is past the end of the table ({} rows)",
                rest[0], self.row_count
            )));
        }
        let mut merged = Vec::with_capacity(segments.len());
        for segment in segments {
            merged.push(segment);
            merge_tail(schema, &mut merged)?;
        }
        Ok((
            TableVersion {
                segments: merged,
                row_count: self.row_count - removed,
                version: self.version + 1,
                unread: None,
            },
            removed_rows,
        ))
    }
}

/// Rows made into segments ahead of their append (compressed where
/// sealed), on the thread that produced them: see [`Table::stage`].
pub struct StagedRows {
    segments: Vec<Segment>,
    /// When the table has unique constraints, the columns of their keys
    /// as they came, batch by batch (None for the other columns): the
    /// keys are checked at the commit, against the keys committed by then.
    keys: Option<Vec<Vec<Option<ArrayRef>>>>,
}

impl StagedRows {
    pub fn rows(&self) -> usize {
        self.segments.iter().map(|s| s.rows()).sum()
    }

    /// Bytes the rows will take in the table.
    pub fn memory_bytes(&self) -> usize {
        self.segments.iter().map(|s| s.data.memory_size()).sum()
    }

    /// The rows as plain batches again.
    pub fn into_batches(self) -> Result<Vec<RecordBatch>> {
        self.segments.iter().map(|s| s.live_batch()).collect()
    }

    /// The rows for the WAL: each segment as it is kept (see
    /// `encoding/logged.rs`).
    pub fn to_log(&self) -> Result<Vec<Vec<u8>>> {
        Ok(self
            .segments
            .iter()
            .map(|s| s.data.to_log())
            .collect::<DfResult<_>>()?)
    }

    /// Rows of a table with `schema` that [`StagedRows::to_log`] logged.
    pub fn from_log(schema: &SchemaRef, blobs: &[&[u8]]) -> Result<StagedRows> {
        let segments = blobs
            .iter()
            .map(|blob| Ok(Segment::logged(Stored::from_log(schema, blob)?)))
            .collect::<Result<_>>()?;
        Ok(StagedRows {
            segments,
            keys: None,
        })
    }

    /// The values of `columns` (positions in the table), part by part.
    fn key_columns(&self, columns: &[usize]) -> Result<Vec<Vec<ArrayRef>>> {
        let kept = self.keys.as_ref().and_then(|batches| {
            batches
                .iter()
                .map(|batch| columns.iter().map(|&c| batch[c].clone()).collect())
                .collect::<Option<Vec<Vec<ArrayRef>>>>()
        });
        match kept {
            Some(parts) => Ok(parts),
            // Staged before the constraint was added: read the segments.
            None => self
                .segments
                .iter()
                .map(|s| Ok(s.live_projected(Some(columns))?.columns().to_vec()))
                .collect(),
        }
    }
}

/// A checkpoint's rows made into segments, ready for [`Table::load`].
pub struct LoadedRows(Vec<Segment>);

/// One batch of a checkpoint made into a segment (compressed where
/// sealed), on the thread that read it.
pub struct LoadedBatch(Segment);

impl LoadedBatch {
    pub fn new(batch: RecordBatch) -> LoadedBatch {
        LoadedBatch(Segment::new(batch))
    }
}

impl LoadedRows {
    /// The batches in table order; small ones are merged as appends are.
    pub fn new(schema: &SchemaRef, batches: Vec<LoadedBatch>) -> Result<LoadedRows> {
        let mut segments = Vec::with_capacity(batches.len());
        for LoadedBatch(segment) in batches.into_iter().filter(|b| b.0.live > 0) {
            segments.push(segment);
            merge_tail(schema, &mut segments)?;
        }
        Ok(LoadedRows(segments))
    }

    /// Live rows.
    pub fn row_count(&self) -> usize {
        self.0.iter().map(|s| s.live).sum()
    }
}

/// Batches made into segments, in order: compressing many sealed ones
/// (a big INSERT, an ingest) is spread over every core.
fn segments_of(batches: Vec<RecordBatch>) -> Vec<Segment> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(batches.len());
    if threads < 2 || rows < 4 * super::encoding::SEALED_ROWS {
        return batches.into_iter().map(Segment::new).collect();
    }
    let per_thread = batches.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .chunks(per_thread)
            .map(|part| scope.spawn(|| part.iter().cloned().map(Segment::new).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("compressing a segment panicked"))
            .collect()
    })
}

/// Merges the last two segments while the binary-counter rule allows:
/// the older is no larger than the newer and together they fit a target
/// batch. Merging drops deleted rows.
fn merge_tail(schema: &SchemaRef, segments: &mut Vec<Segment>) -> Result<()> {
    while segments.len() >= 2 {
        let last = segments[segments.len() - 1].live;
        let prev = segments[segments.len() - 2].live;
        if prev > last || prev + last > TARGET_BATCH_ROWS {
            break;
        }
        let b = segments.pop().expect("two segments");
        let a = segments.pop().expect("two segments");
        let merged = concat_batches(schema, [&a.live_batch()?, &b.live_batch()?])?;
        segments.push(Segment::new(merged));
    }
    Ok(())
}

/// Rows as they will be kept: batches of at most twice
/// [`TARGET_BATCH_ROWS`] that own their memory. Query results are often slices of larger
/// buffers (a COPY parses everything into one batch that a projection
/// hands back 8192 rows at a time); kept as they are, every slice would
/// pin, and be counted as, the whole buffer. Batches that are already
/// compact pass through untouched.
pub fn densify(schema: &SchemaRef, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    if batches
        .iter()
        .all(|b| b.num_rows() <= 2 * TARGET_BATCH_ROWS && !pins_more_than_it_holds(b))
    {
        return Ok(batches);
    }
    let mut out = Vec::new();
    let mut pieces: Vec<RecordBatch> = Vec::new();
    let mut filled = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (TARGET_BATCH_ROWS - filled).min(batch.num_rows() - offset);
            pieces.push(batch.slice(offset, take));
            offset += take;
            filled += take;
            if filled == TARGET_BATCH_ROWS {
                out.push(copy_rows(schema, &pieces, filled)?);
                pieces.clear();
                filled = 0;
            }
        }
    }
    if filled > 0 {
        out.push(copy_rows(schema, &pieces, filled)?);
    }
    Ok(out)
}

/// Whether a batch's buffers are much larger than its rows need (it is a
/// slice of something bigger).
fn pins_more_than_it_holds(batch: &RecordBatch) -> bool {
    let pinned = batch.get_array_memory_size();
    let used: usize = batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(pinned))
        .sum();
    pinned > used + used / 2 + 64 * 1024
}

/// The rows of `pieces` copied into one batch with buffers of their own.
fn copy_rows(schema: &SchemaRef, pieces: &[RecordBatch], rows: usize) -> Result<RecordBatch> {
    use datafusion::arrow::array::{make_array, MutableArrayData};
    let columns = (0..schema.fields().len())
        .map(|c| {
            let data: Vec<_> = pieces.iter().map(|p| p.column(c).to_data()).collect();
            let mut out = MutableArrayData::new(data.iter().collect(), false, rows);
            for (i, d) in data.iter().enumerate() {
                out.try_extend(i, 0, d.len())?;
            }
            Ok(make_array(out.freeze()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Whether `key` is among `index`'s keys (constraint `c`) with `delta`
/// applied.
fn present(index: &UniqueIndex, delta: Option<&KeyDelta>, c: usize, key: &[u8]) -> bool {
    match delta {
        Some(d) => {
            d.added[c].contains(key)
                || (!d.truncated && index.contains(key) && !d.removed[c].contains(key))
        }
        None => index.contains(key),
    }
}

/// Whether a proposed row's key is already taken (ON CONFLICT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    None,
    /// By a row already in the table.
    Existing,
    /// By an earlier row of the same statement.
    Repeated,
}

/// One change a statement makes to a table.
#[derive(Debug, Clone)]
pub enum Change {
    Insert(Vec<RecordBatch>),
    /// Live-row positions (sorted, distinct) in the version it applies to.
    Delete(Arc<Vec<u64>>),
    /// Rows replaced by new ones (UPDATE): logged as a delete followed by
    /// an insert, checked as one step, so keys may move between rows.
    Update {
        positions: Arc<Vec<u64>>,
        rows: Vec<RecordBatch>,
        /// No unique-key column was assigned: the keys stay as they are,
        /// so the indexes need no work.
        keys_unchanged: bool,
    },
    Truncate,
}

impl Change {
    /// The rows of the version it applies to that the change removes.
    pub fn removed(&self) -> Removed {
        match self {
            Change::Insert(_) => Removed::Nothing,
            Change::Delete(positions) | Change::Update { positions, .. } => {
                Removed::Rows(positions.clone())
            }
            Change::Truncate => Removed::All,
        }
    }
}

/// How a transaction's changes move the unique indexes: keys it removed
/// from the committed ones, keys it added, or (after TRUNCATE) that the
/// committed keys no longer count.
#[derive(Debug, Clone, Default)]
pub struct KeyDelta {
    truncated: bool,
    removed: Vec<HashSet<Box<[u8]>>>,
    added: Vec<HashSet<Box<[u8]>>>,
}

impl KeyDelta {
    fn for_indexes(n: usize) -> KeyDelta {
        KeyDelta {
            truncated: false,
            removed: vec![HashSet::new(); n],
            added: vec![HashSet::new(); n],
        }
    }
}

/// Which rows of the version before it a new version no longer has.
#[derive(Debug, Clone)]
pub enum Removed {
    /// None: rows were only added (at the end).
    Nothing,
    /// The rows at these positions among the earlier version's live rows
    /// (sorted, distinct).
    Rows(Arc<Vec<u64>>),
    /// Every row (TRUNCATE).
    All,
}

/// The recent versions of a table, each with the rows it removed from the
/// one before: how a transaction that read an older version finds its
/// rows in the current one (row-level conflict checks at COMMIT). Bounded;
/// a transaction older than what is kept conflicts at table level.
#[derive(Debug, Default)]
struct History {
    /// (version before, version after, what it removed), oldest first.
    steps: std::collections::VecDeque<(u64, u64, Removed)>,
    /// Positions held in `steps`, to bound its memory.
    positions: usize,
}

/// How many installed versions a table remembers for row-level conflict
/// checks, and how many removed positions at most.
const HISTORY_STEPS: usize = 4096;
const HISTORY_POSITIONS: usize = 4 << 20;

impl History {
    fn record(&mut self, from: u64, to: u64, removed: Removed) {
        if let Removed::Rows(rows) = &removed {
            self.positions += rows.len();
        }
        self.steps.push_back((from, to, removed));
        while self.steps.len() > HISTORY_STEPS || self.positions > HISTORY_POSITIONS {
            match self.steps.pop_front() {
                Some((_, _, Removed::Rows(rows))) => self.positions -= rows.len(),
                Some(_) => {}
                None => break,
            }
        }
    }

    fn clear(&mut self) {
        self.steps.clear();
        self.positions = 0;
    }

    /// Where the rows at `positions` (sorted, among the live rows of
    /// version `from`) are in version `to`: None when a version in between
    /// removed one of them, or when the history does not reach back to
    /// `from`.
    fn rebase(&self, from: u64, to: u64, positions: &[u64]) -> Option<Vec<u64>> {
        if from == to {
            return Some(positions.to_vec());
        }
        let start = self.steps.iter().position(|(f, _, _)| *f == from)?;
        let mut at = from;
        let mut moved = positions.to_vec();
        for (before, after, removed) in self.steps.iter().skip(start) {
            if at == to {
                break;
            }
            if *before != at {
                return None;
            }
            match removed {
                Removed::Nothing => {}
                Removed::All if moved.is_empty() => {}
                Removed::All => return None,
                Removed::Rows(gone) => moved = shift_past(&moved, gone)?,
            }
            at = *after;
        }
        (at == to).then_some(moved)
    }
}

/// `positions` after the rows at `gone` were removed (both sorted): each
/// moves down by the removed rows before it; None if one of them was
/// removed.
fn shift_past(positions: &[u64], gone: &[u64]) -> Option<Vec<u64>> {
    let mut out = Vec::with_capacity(positions.len());
    let mut below = 0usize;
    for &p in positions {
        while below < gone.len() && gone[below] < p {
            below += 1;
        }
        if gone.get(below) == Some(&p) {
            return None;
        }
        out.push(p - below as u64);
    }
    Some(out)
}

/// A CHECK constraint, planned against the table's columns.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub sql: String,
    pub expr: Arc<dyn PhysicalExpr>,
}

impl Check {
    /// The first row of `batch` for which the expression is false.
    pub fn first_violation(&self, batch: &RecordBatch) -> Result<Option<usize>> {
        let value = self.expr.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(result) = value.as_boolean_opt() else {
            return Err(QuiverError::Internal(format!(
                "check constraint \"{}\" did not evaluate to boolean",
                self.name
            )));
        };
        Ok((0..result.len()).find(|&i| result.is_valid(i) && !result.value(i)))
    }
}

/// An append checked and computed, waiting to be installed.
pub struct PreparedAppend {
    pub added: usize,
    base_version: u64,
    next: TableVersion,
    keys: Vec<super::keyset::KeySet>,
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
    /// Taken by autocommit UPDATE/DELETE/upsert for the whole statement,
    /// so that they queue behind each other instead of failing each other
    /// (as row locks make them wait in Postgres).
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Set when ALTER TABLE replaced this table: writes that still hold it
    /// must not commit.
    retired: std::sync::atomic::AtomicBool,
    /// CHECK constraints, in name order (the order Postgres reports
    /// violations in).
    checks: Vec<Check>,
    /// Identity columns: name, and whether GENERATED ALWAYS.
    identities: Vec<(String, bool)>,
    /// The indexes CREATE INDEX made, in creation order (unique ones are
    /// also among the unique indexes below).
    indexes: Vec<IndexDef>,
    /// The non-unique indexes whose columns all compare exactly (see
    /// [`is_exact_key_type`]): equality lookups on their columns probe
    /// per-segment key maps instead of scanning.
    lookups: Vec<KeyEncoder>,
    /// The unique indexes; the lock also serialises writers. Readers never
    /// take it.
    writer: Mutex<Vec<UniqueIndex>>,
    /// What recent versions removed, for row-level conflict checks.
    history: Mutex<History>,
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
            checks: Vec::new(),
            identities: Vec::new(),
            indexes: Vec::new(),
            lookups: Vec::new(),
            turn: Default::default(),
            retired: Default::default(),
            writer: Mutex::new(Vec::new()),
            history: Default::default(),
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

    /// Adds CHECK constraints (before the table is shared).
    pub fn with_checks(mut self, mut checks: Vec<Check>) -> Self {
        checks.sort_by(|a, b| a.name.cmp(&b.name));
        self.checks = checks;
        self
    }

    /// Waits for this table's turn for an autocommit change of its rows.
    pub async fn writer_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        self.turn.clone().lock_owned().await
    }

    /// Marks the table as replaced (callers hold the commit lock).
    pub fn retire(&self) {
        self.retired
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Fails when ALTER TABLE replaced this table since the caller looked
    /// it up.
    pub fn check_current(&self) -> Result<()> {
        if self.retired.load(std::sync::atomic::Ordering::Acquire) {
            return Err(QuiverError::SerializationFailure(format!(
                "could not serialize access due to a concurrent ALTER TABLE of \"{}\"",
                self.name
            )));
        }
        Ok(())
    }

    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    /// Marks identity columns (before the table is shared).
    pub fn with_identities(mut self, identities: Vec<(String, bool)>) -> Self {
        self.identities = identities;
        self
    }

    /// Adds the indexes CREATE INDEX made (before the table is shared and
    /// before it holds rows): unique ones are enforced from now on.
    pub fn with_indexes(mut self, indexes: Vec<IndexDef>) -> Result<Self> {
        {
            let mut unique = self.writer.lock();
            for index in &indexes {
                let columns = index
                    .columns
                    .iter()
                    .map(|c| {
                        self.schema
                            .index_of(c)
                            .map_err(|_| QuiverError::UndefinedColumn(c.clone()))
                    })
                    .collect::<Result<Vec<_>>>()?;
                if !index.unique {
                    if columns
                        .iter()
                        .all(|&c| is_exact_key_type(self.schema.field(c)))
                    {
                        self.lookups.push(KeyEncoder::new(columns, &self.schema)?);
                    }
                    continue;
                }
                let constraint = UniqueConstraint {
                    name: index.name.clone(),
                    columns,
                    primary: false,
                    index_only: true,
                };
                unique.push(UniqueIndex::new(constraint, &self.schema)?);
            }
        }
        self.indexes = indexes;
        Ok(self)
    }

    /// The indexes CREATE INDEX made.
    pub fn indexes(&self) -> &[IndexDef] {
        &self.indexes
    }

    /// The names of every index: those of PRIMARY KEY and UNIQUE
    /// constraints and those CREATE INDEX made.
    pub fn index_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .writer
            .lock()
            .iter()
            .map(|i| i.constraint.name.clone())
            .collect();
        names.extend(
            self.indexes
                .iter()
                .filter(|i| !i.unique)
                .map(|i| i.name.clone()),
        );
        names
    }

    /// Identity columns: name, and whether GENERATED ALWAYS.
    pub fn identities(&self) -> &[(String, bool)] {
        &self.identities
    }

    /// Whether `column` is an identity column: Some(true) for GENERATED
    /// ALWAYS, Some(false) for BY DEFAULT.
    pub fn identity(&self, column: &str) -> Option<bool> {
        self.identities
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, always)| *always)
    }

    /// Fails with the first CHECK constraint (by name) that a row of
    /// `batch` violates; NULL results pass, as in Postgres.
    pub fn check_rows(&self, batch: &RecordBatch) -> Result<()> {
        for check in &self.checks {
            if check.first_violation(batch)?.is_some() {
                return Err(QuiverError::CheckViolation(format!(
                    "new row for relation \"{}\" violates check constraint \"{}\"",
                    self.name, check.name
                )));
            }
        }
        Ok(())
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
            .filter(|c| !c.index_only)
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
            checks: self
                .checks
                .iter()
                .map(|c| CheckDef {
                    name: c.name.clone(),
                    sql: c.sql.clone(),
                })
                .collect(),
            identities: self.identities.clone(),
            indexes: self.indexes.clone(),
        })
    }

    /// A commit that creates this table.
    pub fn definition_commit(&self, schema_name: &str) -> Result<Commit> {
        let mut commit = Commit::new();
        let def = self.definition(schema_name, &mut commit)?;
        commit.effects.push(Effect::CreateTable(def));
        Ok(commit)
    }

    /// Recovery: installs a checkpoint's rows as `version`. They satisfy
    /// the constraints: the unique indexes read their keys on first use,
    /// so a restart does not wait for them.
    pub fn load(&self, rows: LoadedRows, version: u64) -> Result<()> {
        if self.data.load().row_count > 0 {
            return Err(QuiverError::Internal(format!(
                "checkpoint rows loaded into table \"{}\", which has rows",
                self.name
            )));
        }
        self.install_checkpoint(TableVersion::loaded(rows, version));
        Ok(())
    }

    /// Recovery: the table holds a checkpoint's rows that `unread` reads
    /// when they are first needed. Until then it reports their count and
    /// version; [`Table::snapshot`] and every write wait for the read.
    pub fn load_later(&self, unread: Arc<Unread>) {
        self.install_checkpoint(TableVersion::placeholder(unread));
    }

    /// Installs a checkpoint's version; the unique indexes read their
    /// keys on first use.
    fn install_checkpoint(&self, version: TableVersion) {
        let mut indexes = self.writer.lock();
        self.data.store(Arc::new(version));
        self.history.lock().clear();
        for index in indexes.iter_mut() {
            index.defer();
        }
    }

    /// Reads the rows a restart left unread (or waits for the read under
    /// way) and installs them. Blocking; callers hold no lock of this
    /// table. Fails when the checkpoint file cannot be read.
    pub fn ready(&self) -> Result<()> {
        let current = self.data.load_full();
        let Some(unread) = current.unread() else {
            return Ok(());
        };
        let read = unread.read()?;
        // Nothing else changes a placeholder (writes wait for this), but a
        // TRUNCATE may have replaced it: then the rows are not wanted.
        self.data.compare_and_swap(&current, read);
        Ok(())
    }

    /// Whether the rows are in memory (a restart reads them lazily).
    pub fn is_resident(&self) -> bool {
        self.data.load().unread().is_none()
    }

    /// The unique indexes, their keys read from the rows first where a
    /// restart left them to be read.
    fn unique_indexes(&self) -> Result<parking_lot::MutexGuard<'_, Vec<UniqueIndex>>> {
        self.ready()?;
        let mut indexes = self.writer.lock();
        if indexes.iter().any(|i| !i.is_built()) {
            let version = self.data.load_full();
            for index in indexes.iter_mut().filter(|i| !i.is_built()) {
                let columns = index.columns().to_vec();
                let parts = version
                    .segments()?
                    .iter()
                    .map(|segment| Ok(segment.live_projected(Some(&columns))?.columns().to_vec()));
                index.fill(parts, version.row_count)?;
            }
        }
        Ok(indexes)
    }

    /// Installs the rows of a table rebuilt by ALTER TABLE as `version`,
    /// checked against the unique constraints.
    pub fn restore(&self, batches: Vec<RecordBatch>, version: u64) -> Result<()> {
        let (_, ack) = self.append(batches, || Ok(Ack::none()))?;
        drop(ack);
        let mut current = TableVersion::clone(&self.data.load());
        current.version = version;
        self.data.store(Arc::new(current));
        self.history.lock().clear();
        Ok(())
    }

    pub fn schema_ref(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn defaults(&self) -> &HashMap<String, Expr> {
        &self.defaults
    }

    /// The rows as they are now; the returned version never changes.
    /// After a restart this waits for the table's rows to be read (see
    /// [`Table::pin`] for a version that does not wait).
    pub fn snapshot(&self) -> Arc<TableVersion> {
        if let Err(e) = self.ready() {
            // The placeholder comes back: its rows fail every use with e.
            tracing::debug!("table \"{}\": {e}", self.name);
        }
        self.data.load_full()
    }

    /// The current version without waiting: after a restart it may be a
    /// placeholder whose rows are not read yet (its row count and version
    /// are right; [`TableVersion::resolved`] reads the rows).
    pub fn pin(&self) -> Arc<TableVersion> {
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
        let current = self.data.load_full();
        let next = current.emptied();
        self.history
            .lock()
            .record(current.version, next.version, Removed::All);
        self.data.store(Arc::new(next));
        for index in indexes.iter_mut() {
            index.clear();
        }
    }

    /// The version `batches` would produce, checked against the unique
    /// constraints; nothing changes until [`Table::install`].
    pub fn prepare_append(&self, batches: Vec<RecordBatch>) -> Result<PreparedAppend> {
        let indexes = self.unique_indexes()?;
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

    /// Makes rows that already match the table's schema (see
    /// `conform_batches`) into segments for a later
    /// [`Table::prepare_staged`], on the calling thread: nothing changes.
    pub fn stage(&self, batches: Vec<RecordBatch>) -> StagedRows {
        let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
        let key_columns: std::collections::BTreeSet<usize> = self
            .writer
            .lock()
            .iter()
            .flat_map(|index| index.columns().to_vec())
            .collect();
        let keys = (!key_columns.is_empty()).then(|| {
            batches
                .iter()
                .map(|batch| {
                    (0..batch.num_columns())
                        .map(|c| key_columns.contains(&c).then(|| batch.column(c).clone()))
                        .collect()
                })
                .collect()
        });
        StagedRows {
            segments: batches.into_iter().map(Segment::new).collect(),
            keys,
        }
    }

    /// [`Table::prepare_append`] for staged rows, in order.
    pub fn prepare_staged(&self, staged: Vec<StagedRows>) -> Result<PreparedAppend> {
        let indexes = self.unique_indexes()?;
        let mut keys = Vec::with_capacity(indexes.len());
        for index in indexes.iter() {
            let mut parts = Vec::new();
            for part in &staged {
                parts.extend(part.key_columns(index.columns())?);
            }
            keys.push(index.check_columns(&self.schema, &parts)?);
        }
        let current = self.data.load();
        let next = current.with_segments(
            &self.schema,
            staged.into_iter().flat_map(|part| part.segments),
        )?;
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
        self.history.lock().record(
            prepared.base_version,
            prepared.next.version,
            Removed::Nothing,
        );
        self.data.store(Arc::new(prepared.next));
        for (index, keys) in indexes.iter_mut().zip(prepared.keys) {
            index.insert_checked(keys);
        }
    }

    /// An empty key delta for this table's indexes.
    pub fn key_delta(&self) -> KeyDelta {
        KeyDelta::for_indexes(self.writer.lock().len())
    }

    /// `base` with `change` applied, checking unique constraints against
    /// the committed keys as `delta` changes them and recording the key
    /// changes in `delta`. Nothing is installed.
    pub fn apply(
        &self,
        base: &TableVersion,
        change: &Change,
        delta: &mut KeyDelta,
    ) -> Result<TableVersion> {
        let indexes = self.unique_indexes()?;
        match change {
            Change::Truncate => {
                delta.truncated = true;
                for set in delta.removed.iter_mut().chain(delta.added.iter_mut()) {
                    set.clear();
                }
                Ok(base.emptied())
            }
            Change::Delete(positions) => {
                self.apply_rows(&indexes, base, Some(positions), &[], delta)
            }
            Change::Insert(rows) => self.apply_rows(&indexes, base, None, rows, delta),
            Change::Update {
                positions,
                rows,
                keys_unchanged: true,
            } => {
                let (next, _) = base.deleted(&self.schema, positions, false)?;
                next.appended(&self.schema, rows.clone())
            }
            Change::Update {
                positions, rows, ..
            } => self.apply_rows(&indexes, base, Some(positions), rows, delta),
        }
    }

    /// Deletes the rows at `positions` and appends `rows`, as one step: a
    /// new key may be one a deleted row had. `delta` is left as it was on
    /// error.
    fn apply_rows(
        &self,
        indexes: &[UniqueIndex],
        base: &TableVersion,
        positions: Option<&Arc<Vec<u64>>>,
        rows: &[RecordBatch],
        delta: &mut KeyDelta,
    ) -> Result<TableVersion> {
        let (mut next, old_rows) = match positions {
            Some(positions) => base.deleted(&self.schema, positions, !indexes.is_empty())?,
            None => (base.clone(), Vec::new()),
        };
        let mut moves = Vec::with_capacity(indexes.len());
        for (i, index) in indexes.iter().enumerate() {
            let gone: HashSet<Box<[u8]>> = index
                .keys(&old_rows)?
                .into_iter()
                .map(|(key, _, _)| key)
                .collect();
            let new = index.keys(rows)?;
            let mut mine: HashSet<&[u8]> = HashSet::with_capacity(new.len());
            for (key, b, row) in &new {
                let taken = !gone.contains(key)
                    && (delta.added[i].contains(key)
                        || (!delta.truncated
                            && index.contains(key)
                            && !delta.removed[i].contains(key)));
                if taken || !mine.insert(key) {
                    return Err(index.violation(&self.schema, &rows[*b], *row));
                }
            }
            moves.push((gone, new));
        }
        for (i, (gone, new)) in moves.into_iter().enumerate() {
            for key in gone {
                if !delta.added[i].remove(&key) {
                    delta.removed[i].insert(key);
                }
            }
            delta.added[i].extend(new.into_iter().map(|(key, _, _)| key));
        }
        if !rows.is_empty() {
            next = next.appended(&self.schema, rows.to_vec())?;
        }
        Ok(next)
    }

    /// The unique constraints by position, for ON CONFLICT targets.
    pub fn constraint_index(&self, pick: impl Fn(&UniqueConstraint) -> bool) -> Vec<usize> {
        self.writer
            .lock()
            .iter()
            .enumerate()
            .filter(|(_, index)| pick(&index.constraint))
            .map(|(i, _)| i)
            .collect()
    }

    /// The live row whose key under unique constraint `c` is `key` (as
    /// [`UniqueIndex::encode`] makes it), with its position among the live
    /// rows of `version`: a hash probe per segment instead of a scan.
    pub fn find_by_key(
        &self,
        version: &TableVersion,
        c: usize,
        key: &[u8],
    ) -> Result<Option<(u64, RecordBatch)>> {
        let indexes = self.writer.lock();
        let index = &indexes[c];
        let mut base = 0u64;
        for segment in version.segments()? {
            let map = segment.key_map(c, index)?;
            if let Some(&row) = map.get(key) {
                let row = row as usize;
                if segment.is_live(row) {
                    let position = base + segment.rank(row) as u64;
                    let rows = Rows::Range(row, 1);
                    return Ok(Some((position, segment.data.rows(None, rows)?)));
                }
            }
            base += segment.live as u64;
        }
        Ok(None)
    }

    /// The key of one row given as its key columns' values (None when one
    /// is NULL), encoded as unique constraint `c` encodes keys.
    pub fn encode_key(&self, c: usize, columns: &[ArrayRef]) -> Result<Option<Box<[u8]>>> {
        self.writer.lock()[c].encode(columns)
    }

    /// The column names of the unique constraint at `index`.
    pub fn constraint_columns(&self, index: usize) -> Vec<String> {
        self.writer.lock()[index]
            .constraint
            .columns
            .iter()
            .map(|&c| self.schema.field(c).name().clone())
            .collect()
    }

    /// For each row of `batch`, whether its key under one of the
    /// constraints `only` is taken: by a row the transaction sees
    /// (committed keys as `delta` changes them) or by an earlier row of
    /// `batch`.
    pub fn conflicts(
        &self,
        delta: Option<&KeyDelta>,
        batch: &RecordBatch,
        only: &[usize],
    ) -> Result<Vec<Conflict>> {
        let indexes = self.unique_indexes()?;
        let mut out = vec![Conflict::None; batch.num_rows()];
        for &i in only {
            let index = &indexes[i];
            let mut seen: HashSet<Box<[u8]>> = HashSet::new();
            for (key, _, row) in index.keys(std::slice::from_ref(batch))? {
                let existing = match delta {
                    Some(d) => {
                        d.added[i].contains(&key)
                            || (!d.truncated
                                && index.contains(&key)
                                && !d.removed[i].contains(&key))
                    }
                    None => index.contains(&key),
                };
                if !seen.insert(key) {
                    out[row] = Conflict::Repeated;
                } else if existing && out[row] == Conflict::None {
                    out[row] = Conflict::Existing;
                }
            }
        }
        Ok(out)
    }

    /// Keys (columns in the order of unique constraint `c`) encoded as
    /// its index encodes them; None where a value is NULL.
    pub fn encode_keys(&self, c: usize, columns: &[ArrayRef]) -> Result<Vec<Option<Box<[u8]>>>> {
        self.writer.lock()[c].encode_all(columns)
    }

    /// Whether `key` is among the keys of unique constraint `c`, with a
    /// transaction's `delta` applied to the committed ones.
    pub fn key_present(&self, delta: Option<&KeyDelta>, c: usize, key: &[u8]) -> Result<bool> {
        let indexes = self.unique_indexes()?;
        Ok(present(&indexes[c], delta, c, key))
    }

    /// For each row of `columns` (in the order of unique constraint `c`):
    /// whether its key is present, with `delta` applied. A key with a NULL
    /// counts as present (MATCH SIMPLE: it references nothing).
    pub fn key_presence(
        &self,
        delta: Option<&KeyDelta>,
        c: usize,
        columns: &[ArrayRef],
    ) -> Result<Vec<bool>> {
        let indexes = self.unique_indexes()?;
        let index = &indexes[c];
        Ok(index
            .encode_all(columns)?
            .into_iter()
            .map(|key| key.is_none_or(|key| present(index, delta, c, &key)))
            .collect())
    }

    /// A column of `rows` values of `field`'s DEFAULT (NULL without one);
    /// the DEFAULT must not need a session (FOREIGN KEY ... SET DEFAULT).
    pub fn default_array(
        &self,
        field: &datafusion::arrow::datatypes::Field,
        rows: usize,
    ) -> Result<ArrayRef> {
        let Some(expr) = self.defaults.get(field.name()) else {
            return Ok(datafusion::arrow::array::new_null_array(
                field.data_type(),
                rows,
            ));
        };
        let schema = datafusion::common::DFSchema::empty();
        let physical = datafusion::physical_expr::create_physical_expr(
            expr,
            &schema,
            &datafusion::execution::context::ExecutionProps::new(),
            &Default::default(),
        )?;
        let one = RecordBatch::try_new_with_options(
            Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            vec![],
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        let value = physical.evaluate(&one)?.into_array(rows)?;
        Ok(datafusion::arrow::compute::cast(&value, field.data_type())?)
    }

    /// Applies `change` to the current version and installs the result
    /// (recovery, which has the database to itself).
    pub fn apply_now(&self, change: &Change) -> Result<()> {
        let mut delta = self.key_delta();
        let next = self.apply(&self.snapshot(), change, &mut delta)?;
        self.install_version(next, &delta, change.removed());
        Ok(())
    }

    /// Applies `changes` in order and installs the result as one version:
    /// a reader sees all of them or none (a replica replaying a commit).
    /// Each step is recorded in the history, for transactions that rebase
    /// row positions across it.
    pub fn apply_all_now(&self, changes: &[Change]) -> Result<()> {
        let mut delta = self.key_delta();
        let mut version = self.snapshot();
        let mut steps = Vec::with_capacity(changes.len());
        for change in changes {
            let next = self.apply(&version, change, &mut delta)?;
            steps.push((version.version, next.version, change.removed()));
            version = Arc::new(next);
        }
        if steps.is_empty() {
            return Ok(());
        }
        let mut indexes = self.writer.lock();
        {
            let mut history = self.history.lock();
            for (from, to, removed) in steps {
                history.record(from, to, removed);
            }
        }
        for (i, index) in indexes.iter_mut().enumerate() {
            if delta.truncated {
                index.clear();
            }
            index.remove(&delta.removed[i]);
            index.insert(&delta.added[i]);
        }
        self.data.store(version);
        Ok(())
    }

    /// Where the rows at `positions` among the live rows of version
    /// `from` are in the current version; None when another change since
    /// removed (deleted or updated) one of them, or when `from` is older
    /// than the versions the table remembers.
    pub fn rebase_positions(&self, from: u64, positions: &[u64]) -> Option<Vec<u64>> {
        let current = self.data.load().version;
        self.history.lock().rebase(from, current, positions)
    }

    /// Installs a version computed by [`Table::apply`] from the current
    /// one, with its key changes. Callers hold the commit lock and have
    /// checked that the current version is the one `next` was built on.
    pub fn install_version(&self, next: TableVersion, delta: &KeyDelta, removed: Removed) {
        let mut indexes = self.writer.lock();
        self.history
            .lock()
            .record(self.data.load().version, next.version, removed);
        for (i, index) in indexes.iter_mut().enumerate() {
            if delta.truncated {
                index.clear();
            }
            index.remove(&delta.removed[i]);
            index.insert(&delta.added[i]);
        }
        self.data.store(Arc::new(next));
    }
}

/// Whether `=` on values of this column is equality of their key bytes
/// (integers, text, dates), so a key probe finds exactly the rows `=`
/// matches. A numeric or float compare could match a key spelled
/// differently.
pub fn is_exact_key_type(field: &datafusion::arrow::datatypes::Field) -> bool {
    let exact = field.data_type().is_integer()
        || matches!(field.data_type(), DataType::Utf8 | DataType::Date32);
    exact && super::types::TaggedType::of(field).is_none()
}

impl Table {
    /// `column = constant` (either way round) on a bare column of this
    /// table: the column and the constant.
    fn pinned_column(&self, filter: &Expr) -> Option<(usize, ScalarValue)> {
        let Expr::BinaryExpr(binary) = filter else {
            return None;
        };
        if binary.op != Operator::Eq {
            return None;
        }
        let (column, value) = match (binary.left.as_ref(), binary.right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        let index = self.schema.index_of(&column.name).ok()?;
        let field = self.schema.field(index);
        if !is_exact_key_type(field) {
            return None;
        }
        if value.data_type() != *field.data_type() && !value.is_null() {
            return None;
        }
        Some((index, value.clone()))
    }

    /// When `filters` pin every column of a unique constraint to a
    /// constant: Some(the live row with that key, if any), found by a hash
    /// probe per batch instead of a scan. None when they do not.
    fn key_lookup(
        &self,
        version: &TableVersion,
        filters: &[Expr],
    ) -> Result<Option<Vec<RecordBatch>>> {
        let pinned: HashMap<usize, ScalarValue> = filters
            .iter()
            .filter_map(|f| self.pinned_column(f))
            .collect();
        self.lookup(version, &pinned)
    }

    /// The live rows that equal every value `pinned` gives (column ->
    /// value, of the column's type), found by the key maps of a unique
    /// constraint or lookup index whose columns are all pinned: per
    /// segment that has any, its position and the rows, in table order.
    /// None when no key's columns are all pinned.
    fn probe(
        &self,
        version: &TableVersion,
        pinned: &HashMap<usize, ScalarValue>,
    ) -> Result<Option<Found>> {
        let Some(found) = self.probe_key(version, pinned)? else {
            return Ok(None);
        };
        // The key may pin fewer columns than `pinned`: the rows must equal
        // every pinned value.
        let mut matching = Vec::with_capacity(found.len());
        let mut columns: Vec<usize> = pinned.keys().copied().collect();
        columns.sort_unstable();
        for (s, rows) in found {
            let indices = UInt32Array::from(rows.clone());
            let batch = version.segments[s]
                .data
                .rows(Some(&columns), Rows::Take(&indices))?;
            let mut kept = Vec::with_capacity(rows.len());
            for (i, row) in rows.into_iter().enumerate() {
                let mut equal = true;
                for (at, c) in columns.iter().enumerate() {
                    let value = &pinned[c];
                    if value.is_null()
                        || ScalarValue::try_from_array(batch.column(at), i)? != *value
                    {
                        equal = false;
                        break;
                    }
                }
                if equal {
                    kept.push(row);
                }
            }
            if !kept.is_empty() {
                matching.push((s, kept));
            }
        }
        Ok(Some(matching))
    }

    /// [`Table::probe`] by the key alone.
    fn probe_key(
        &self,
        version: &TableVersion,
        pinned: &HashMap<usize, ScalarValue>,
    ) -> Result<Option<Found>> {
        let covered = |columns: &[usize]| columns.iter().all(|c| pinned.contains_key(c));
        let key_values = |columns: &[usize]| -> Result<Vec<ArrayRef>> {
            Ok(columns
                .iter()
                .map(|c| pinned[c].to_array_of_size(1))
                .collect::<DfResult<_>>()?)
        };
        if pinned.is_empty() {
            return Ok(None);
        }
        {
            let indexes = self.writer.lock();
            if let Some(c) = indexes.iter().position(|i| covered(&i.constraint.columns)) {
                let index = &indexes[c];
                // A NULL key column matches nothing.
                let Some(key) = index.encode(&key_values(&index.constraint.columns)?)? else {
                    return Ok(Some(Vec::new()));
                };
                for (s, segment) in version.segments()?.iter().enumerate() {
                    if let Some(&row) = segment.key_map(c, index)?.get(&key) {
                        if segment.is_live(row as usize) {
                            return Ok(Some(vec![(s, vec![row])]));
                        }
                    }
                }
                return Ok(Some(Vec::new()));
            }
        }
        // The lookup index that pins the most columns.
        let Some((i, index)) = self
            .lookups
            .iter()
            .enumerate()
            .filter(|(_, index)| covered(index.columns()))
            .max_by_key(|(_, index)| index.columns().len())
        else {
            return Ok(None);
        };
        let Some(key) = index.encode(&key_values(index.columns())?)? else {
            return Ok(Some(Vec::new()));
        };
        let mut found = Vec::new();
        for (s, segment) in version.segments()?.iter().enumerate() {
            let rows: Vec<u32> = segment
                .rows_map(i, index)?
                .rows(&key)
                .filter(|&row| segment.is_live(row as usize))
                .collect();
            if !rows.is_empty() {
                found.push((s, rows));
            }
        }
        Ok(Some(found))
    }

    /// The columns of the unique constraints and lookup indexes, whose
    /// equalities [`Table::lookup`] answers from key maps.
    pub fn key_columns(&self) -> Vec<Vec<usize>> {
        let mut keys: Vec<Vec<usize>> = self
            .writer
            .lock()
            .iter()
            .map(|index| index.constraint.columns.clone())
            .collect();
        keys.extend(self.lookups.iter().map(|index| index.columns().to_vec()));
        keys
    }

    /// When `pinned` (column -> value, of the column's type) covers every
    /// column of a unique constraint or lookup index: Some(the live rows
    /// with that key). None when it covers no key.
    pub fn lookup(
        &self,
        version: &TableVersion,
        pinned: &HashMap<usize, ScalarValue>,
    ) -> Result<Option<Vec<RecordBatch>>> {
        let Some(found) = self.probe(version, pinned)? else {
            return Ok(None);
        };
        let mut batches = Vec::with_capacity(found.len());
        for (s, rows) in found {
            let data = &version.segments[s].data;
            batches.push(match rows.as_slice() {
                [row] => data.rows(None, Rows::Range(*row as usize, 1))?,
                _ => data.rows(None, Rows::Take(&UInt32Array::from(rows)))?,
            });
        }
        Ok(Some(batches))
    }

    /// As [`Table::lookup`], each row with its position among the live
    /// rows of `version` (what UPDATE and DELETE address rows by).
    pub fn lookup_positions(
        &self,
        version: &TableVersion,
        pinned: &HashMap<usize, ScalarValue>,
    ) -> Result<Option<Vec<(u64, RecordBatch)>>> {
        let Some(found) = self.probe(version, pinned)? else {
            return Ok(None);
        };
        let mut bases = Vec::with_capacity(version.segments.len());
        let mut base = 0u64;
        for segment in version.segments()? {
            bases.push(base);
            base += segment.live as u64;
        }
        let mut out = Vec::new();
        for (s, rows) in found {
            let segment = &version.segments[s];
            for row in rows {
                let position = bases[s] + segment.rank(row as usize) as u64;
                let rows = Rows::Range(row as usize, 1);
                out.push((position, segment.data.rows(None, rows)?));
            }
        }
        Ok(Some(out))
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

    /// `key = constant` on a column of a unique constraint is offered to
    /// [`TableProvider::scan`], which answers it from the key maps when
    /// every column of the constraint is pinned. DataFusion still applies
    /// the filter (Inexact), so a scan that cannot use it stays correct.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let key_columns: HashSet<usize> = self.key_columns().into_iter().flatten().collect();
        Ok(filters
            .iter()
            .map(|filter| match self.pinned_column(filter) {
                Some((column, _)) if key_columns.contains(&column) => {
                    TableProviderFilterPushDown::Inexact
                }
                _ => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn DfSession,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let external = |e: QuiverError| datafusion::error::DataFusionError::External(Box::new(e));
        // Inside a transaction: its snapshot plus its own uncommitted rows.
        let txn = state
            .config()
            .get_extension::<TxnSlot>()
            .and_then(|slot| slot.get());
        let pinned = match txn {
            Some(txn) => txn.visible_unread(self),
            None => self.pin(),
        };
        let schema = match projection {
            Some(columns) => Arc::new(self.schema.project(columns)?),
            None => self.schema.clone(),
        };
        let columns = match projection {
            Some(columns) => columns.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let prune = state.config().options().execution.parquet.pruning;
        // After a restart: rows not read yet are waited for when the scan
        // runs, not while it is planned (rows that could not be read fail
        // then too; counts and bounds from the manifest still answer).
        let version = match pinned.unread() {
            None => pinned,
            Some(unread) => match unread.try_read() {
                Some(Ok(read)) => read,
                _ => {
                    return Ok(Arc::new(DeferredScan::new(
                        unread.clone(),
                        &self.name,
                        schema,
                        columns,
                        state.config().target_partitions(),
                        prune,
                    )))
                }
            },
        };
        if let Some(rows) = self.key_lookup(&version, filters).map_err(external)? {
            let batches = match projection {
                Some(columns) => rows
                    .iter()
                    .map(|rows| rows.project(columns))
                    .collect::<std::result::Result<_, _>>()?,
                None => rows,
            };
            let source = MemorySourceConfig::try_new(&[batches], schema, None)?;
            return Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source));
        }
        let pieces = version
            .pieces(projection.map(|p| p.as_slice()))
            .map_err(external)?;
        // An equal share of rows for every core.
        let parts = balance(pieces, state.config().target_partitions());
        let source = TableScan::new(&self.name, schema, columns, parts, prune);
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }
}

/// Spreads batches over `partitions` with (nearly) the same number of rows
/// each, slicing batches where needed (slices share memory), so every core
/// gets an equal share of a scan whatever the batch sizes are.
pub fn balanced_partitions(batches: Vec<RecordBatch>, partitions: usize) -> Vec<Vec<RecordBatch>> {
    super::scan::spread(
        batches,
        partitions,
        RecordBatch::num_rows,
        |b, offset, len| b.slice(offset, len),
    )
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
        assert!(
            snap.segment_count() <= 16,
            "{} batches",
            snap.segment_count()
        );
        let total: usize = snap
            .live_batches()
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(total, 10_000);
    }

    #[test]
    fn sealed_segments_are_kept_encoded_and_read_back_exactly() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("mode", DataType::Utf8, true),
        ]));
        let rows = TARGET_BATCH_ROWS;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(
                    (0..rows as i64).map(|i| 1_000_000 + i),
                )),
                Arc::new(StringArray::from(
                    (0..rows)
                        .map(|i| (i % 9 != 0).then_some(["AIR", "SHIP", "TRUCK"][i % 3]))
                        .collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let table = Table::new("t", schema.clone(), HashMap::new());
        let _ = table
            .append(vec![batch.clone()], || Ok(Ack::none()))
            .unwrap();
        let version = table.snapshot();
        assert!(version.memory_bytes() < batch.get_array_memory_size() / 2);
        assert_eq!(version.live_batches().unwrap(), vec![batch.clone()]);
        // Deleted rows are masked over the encoded rows.
        let (next, removed) = version.deleted(&schema, &[0, 5, 9], true).unwrap();
        let take = |rows: &[u32]| {
            datafusion::arrow::compute::take_record_batch(&batch, &UInt32Array::from(rows.to_vec()))
                .unwrap()
        };
        assert_eq!(removed[0], take(&[0, 5, 9]));
        assert_eq!(next.row_count, rows - 3);
        assert_eq!(
            next.live_batches().unwrap()[0].slice(0, 4),
            take(&[1, 2, 3, 4])
        );
    }

    #[test]
    fn slices_of_a_big_batch_are_copied_into_compact_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let big = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from_iter_values(0..204_800))],
        )
        .unwrap();
        let slices: Vec<RecordBatch> = (0..25).map(|i| big.slice(i * 8192, 8192)).collect();
        let pinned: usize = slices.iter().map(|b| b.get_array_memory_size()).sum();
        let dense = densify(&schema, slices).unwrap();
        let rows: Vec<usize> = dense.iter().map(|b| b.num_rows()).collect();
        assert_eq!(rows, vec![65536, 65536, 65536, 8192]);
        let held: usize = dense.iter().map(|b| b.get_array_memory_size()).sum();
        assert!(held <= 204_800 * 4 * 11 / 10, "{held} bytes");
        assert!(held * 10 < pinned, "{held} vs {pinned}");
        let values: Vec<i32> = dense
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(values, (0..204_800).collect::<Vec<_>>());
        // Compact batches pass through as they are.
        let small = vec![one_row(&schema, 7)];
        assert_eq!(densify(&schema, small.clone()).unwrap(), small);
    }

    #[test]
    fn partitions_get_equal_shares_of_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let batches = vec![
            rows(&schema, (0..65536).collect()),
            rows(&schema, (0..1024).collect()),
            rows(&schema, (0..32).collect()),
        ];
        let parts = balanced_partitions(batches, 2);
        let sizes: Vec<usize> = parts
            .iter()
            .map(|p| p.iter().map(|b| b.num_rows()).sum())
            .collect();
        assert_eq!(sizes, vec![33296, 33296]);
        let one = balanced_partitions(vec![rows(&schema, vec![1, 2, 3])], 4);
        let sizes: Vec<usize> = one
            .iter()
            .map(|p| p.iter().map(|b| b.num_rows()).sum())
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 3);
        assert!(balanced_partitions(Vec::new(), 2).len() == 1);
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

    fn values(table: &Table, txn_version: Option<&TableVersion>) -> Vec<i32> {
        let version = match txn_version {
            Some(v) => v.clone(),
            None => TableVersion::clone(&table.snapshot()),
        };
        version
            .live_batches()
            .unwrap()
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    fn keyed_table() -> (SchemaRef, Table) {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let table = Table::with_constraints(
            1,
            "t",
            schema.clone(),
            (HashMap::new(), Vec::new()),
            vec![UniqueConstraint {
                name: "t_pkey".into(),
                columns: vec![0],
                primary: true,
                index_only: false,
            }],
        )
        .unwrap();
        (schema, table)
    }

    fn rows(schema: &SchemaRef, values: Vec<i32>) -> RecordBatch {
        RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(values))]).unwrap()
    }

    #[test]
    fn deletes_mask_rows_and_positions_count_live_rows() {
        let (schema, table) = keyed_table();
        table
            .apply_now(&Change::Insert(vec![rows(&schema, (0..10).collect())]))
            .unwrap();
        table
            .apply_now(&Change::Delete(Arc::new(vec![1, 3])))
            .unwrap();
        assert_eq!(values(&table, None), vec![0, 2, 4, 5, 6, 7, 8, 9]);
        // Position 1 is now the value 2: positions are among live rows.
        table.apply_now(&Change::Delete(Arc::new(vec![1]))).unwrap();
        assert_eq!(values(&table, None), vec![0, 4, 5, 6, 7, 8, 9]);
        assert_eq!(table.snapshot().row_count, 7);
        // The deleted keys are free again.
        table
            .apply_now(&Change::Insert(vec![rows(&schema, vec![1, 2, 3])]))
            .unwrap();
        assert!(table
            .apply_now(&Change::Insert(vec![rows(&schema, vec![4])]))
            .is_err());
    }

    #[test]
    fn column_statistics_are_exact_until_a_row_is_deleted() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, true)]));
        let table = Table::new("t", schema.clone(), HashMap::new());
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int32Array::from(vec![
                Some(4),
                None,
                Some(-2),
                None,
                Some(7),
                Some(1),
                Some(2),
                Some(3),
                Some(5),
                Some(6),
            ]))],
        )
        .unwrap();
        table.apply_now(&Change::Insert(vec![batch])).unwrap();
        let stats = table.snapshot().column_statistics(1).unwrap();
        assert_eq!(stats[0].null_count, Precision::Exact(2));
        assert_eq!(
            stats[0].min_value,
            Precision::Exact(ScalarValue::Int32(Some(-2)))
        );
        assert_eq!(
            stats[0].max_value,
            Precision::Exact(ScalarValue::Int32(Some(7)))
        );
        // Deleting the least value and a NULL (too few rows to compact
        // the segment): the NULLs are counted again, the bounds are only
        // bounds now.
        table
            .apply_now(&Change::Delete(Arc::new(vec![1, 2])))
            .unwrap();
        let stats = table.snapshot().column_statistics(1).unwrap();
        assert_eq!(stats[0].null_count, Precision::Exact(1));
        assert_eq!(
            stats[0].min_value,
            Precision::Inexact(ScalarValue::Int32(Some(-2)))
        );
    }

    #[test]
    fn an_index_finds_every_live_row_with_a_key() {
        // (id, grp): grp repeats; an index on grp, none on id.
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("grp", DataType::Int32, true),
        ]));
        let table = Table::new("t", schema.clone(), HashMap::new())
            .with_indexes(vec![IndexDef {
                name: "t_grp_idx".into(),
                columns: vec!["grp".into()],
                unique: false,
                method: "btree".into(),
            }])
            .unwrap();
        let batch = |ids: std::ops::Range<i32>| {
            let grp: Vec<Option<i32>> = ids
                .clone()
                .map(|i| (i % 10 != 9).then_some(i % 10))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int32Array::from_iter_values(ids)),
                    Arc::new(Int32Array::from(grp)),
                ],
            )
            .unwrap()
        };
        // Two segments.
        let size = TARGET_BATCH_ROWS as i32;
        for range in [0..size, size..size + 100] {
            table
                .apply_now(&Change::Insert(vec![batch(range)]))
                .unwrap();
        }
        assert!(table.snapshot().segment_count() >= 2);
        // Rows 3 and 13 go.
        table
            .apply_now(&Change::Delete(Arc::new(vec![3, 13])))
            .unwrap();
        let ids = |pinned: &[(usize, i32)]| -> Option<Vec<i32>> {
            let pinned = pinned
                .iter()
                .map(|&(c, v)| (c, ScalarValue::Int32(Some(v))))
                .collect();
            let version = table.snapshot();
            let rows = table.lookup(&version, &pinned).unwrap()?;
            Some(
                rows.iter()
                    .flat_map(|b| {
                        b.column(0)
                            .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                            .values()
                            .to_vec()
                    })
                    .collect(),
            )
        };
        let threes = ids(&[(1, 3)]).unwrap();
        let expected: Vec<i32> = (0..size + 100)
            .filter(|i| i % 10 == 3 && *i != 3 && *i != 13)
            .collect();
        assert_eq!(threes, expected);
        // Further pinned columns are checked on the rows found.
        assert_eq!(ids(&[(1, 3), (0, 23)]), Some(vec![23]));
        assert_eq!(ids(&[(1, 3), (0, 24)]), Some(vec![]));
        // NULL keys are not in the index; an unindexed column alone is a scan.
        assert_eq!(ids(&[(1, 9)]), Some(vec![]));
        assert_eq!(ids(&[(0, 5)]), None);
    }

    #[test]
    fn heavily_deleted_segments_are_compacted() {
        let (schema, table) = keyed_table();
        table
            .apply_now(&Change::Insert(vec![rows(&schema, (0..1000).collect())]))
            .unwrap();
        let half: Vec<u64> = (0..500).collect();
        table.apply_now(&Change::Delete(Arc::new(half))).unwrap();
        let snap = table.snapshot();
        assert_eq!(snap.row_count, 500);
        assert!(snap.segments.iter().all(|s| s.keep.is_none()));
        assert_eq!(values(&table, None)[0], 500);
    }

    #[test]
    fn an_update_may_move_keys_between_rows() {
        let (schema, table) = keyed_table();
        table
            .apply_now(&Change::Insert(vec![rows(&schema, vec![1, 2, 3])]))
            .unwrap();
        // SET x = x + 1 over every row: 2 and 3 are taken by rows that are
        // being replaced, so it succeeds.
        table
            .apply_now(&Change::Update {
                positions: Arc::new(vec![0, 1, 2]),
                rows: vec![rows(&schema, vec![2, 3, 4])],
                keys_unchanged: false,
            })
            .unwrap();
        assert_eq!(values(&table, None), vec![2, 3, 4]);
        // Moving one row onto a key another row keeps fails, and changes
        // nothing.
        let before = table.snapshot().version;
        assert!(table
            .apply_now(&Change::Update {
                positions: Arc::new(vec![0]),
                rows: vec![rows(&schema, vec![3])],
                keys_unchanged: false,
            })
            .is_err());
        assert_eq!(table.snapshot().version, before);
    }

    #[test]
    fn a_key_delta_tracks_a_transactions_changes() {
        let (schema, table) = keyed_table();
        table
            .apply_now(&Change::Insert(vec![rows(&schema, vec![1, 2])]))
            .unwrap();
        let base = table.snapshot();
        let mut delta = table.key_delta();
        // Delete key 1 and insert it again within the transaction.
        let v1 = table
            .apply(&base, &Change::Delete(Arc::new(vec![0])), &mut delta)
            .unwrap();
        let v2 = table
            .apply(
                &v1,
                &Change::Insert(vec![rows(&schema, vec![1])]),
                &mut delta,
            )
            .unwrap();
        assert!(table
            .apply(
                &v2,
                &Change::Insert(vec![rows(&schema, vec![2])]),
                &mut delta
            )
            .is_err());
        assert_eq!(values(&table, Some(&v2)), vec![2, 1]);
        table.install_version(v2, &delta, Removed::Rows(Arc::new(vec![0])));
        assert!(table
            .apply_now(&Change::Insert(vec![rows(&schema, vec![1])]))
            .is_err());
        assert_eq!(values(&table, None), vec![2, 1]);
    }
}
