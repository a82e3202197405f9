//! The scan of a table: our own DataFusion [`DataSource`] over the
//! segments of one table version. Beyond handing out batches it
//!
//! - reports statistics from per-segment zone maps (min, max, nulls),
//!   exact where no row of the table was deleted, so that the optimizer
//!   sizes filters and joins from real bounds and answers `min`, `max` and
//!   `count` from them;
//! - takes the filters DataFusion pushes down: the static ones of WHERE
//!   clauses and the dynamic ones that hash joins, TopK and aggregates fill
//!   in while the query runs. It skips a segment whose zone map proves that
//!   none of its rows can pass, and applies the filters to rows for as long
//!   as they remove enough rows to pay for themselves, each conjunct on the
//!   rows the ones before it kept and decoding only its own columns (a test
//!   on a dictionary-coded string is answered per dictionary value); the
//!   other columns are decoded only for the rows that pass (see
//!   `encoding.rs` for how segments keep their columns).
//!
//! Every pushed filter is answered "not pushed down": the operators above
//! still apply it, so the scan may only ever drop rows that could never
//! pass. That keeps a bug here from being anything but a missed
//! optimization, as long as the zone maps are true bounds.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use datafusion::arrow::array::ArrowPrimitiveType;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, UInt64Array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::filter;
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::datatypes::{ArrowNativeType, UInt16Type, UInt8Type};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::config::ConfigOptions;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ColumnStatistics, Result, ScalarValue, Statistics};
use datafusion::datasource::source::DataSource;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use datafusion::physical_expr::expressions::DynamicFilterTracking;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_expr::{
    conjunction, split_conjunction, EquivalenceProperties, Partitioning, PhysicalExpr,
    PhysicalSortExpr,
};
use datafusion::physical_expr_common::physical_expr::{is_volatile, snapshot_physical_expr};
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::coop::cooperative;
use datafusion::physical_plan::execution_plan::SchedulingType;
use datafusion::physical_plan::filter_pushdown::{FilterPushdownPropagation, PushedDown};
use datafusion::physical_plan::joins::{HashExpr, HashTableLookupExpr};
use datafusion::physical_plan::metrics::{Count, ExecutionPlanMetricsSet, MetricBuilder};
use datafusion::physical_plan::DisplayFormatType;
use futures::Stream;

use super::encoding::{decode_rows, Encoded, Rows, Stored};

/// What one segment's column holds, over all rows of its batch (deleted
/// ones too, so the bounds hold for every version that shares the batch).
#[derive(Debug, Clone)]
pub struct ColumnZone {
    /// Least and greatest non-null value; `None` where unknown (a type
    /// without a total order we trust, or no non-null value).
    pub min: Option<ScalarValue>,
    pub max: Option<ScalarValue>,
    pub nulls: usize,
    /// Every value is non-null and at least the one before it (checked
    /// for integer and date columns, where keys are).
    pub ascending: bool,
}

/// A segment's zone maps, one per column, each computed on first use and
/// shared by every version that keeps the segment's batch.
#[derive(Debug)]
pub struct ZoneMaps {
    columns: Box<[OnceLock<ColumnZone>]>,
}

impl ZoneMaps {
    pub fn new(columns: usize) -> ZoneMaps {
        ZoneMaps {
            columns: (0..columns).map(|_| OnceLock::new()).collect(),
        }
    }

    /// The zone map of column `column` of `segment` (the segment's rows).
    pub fn column(&self, segment: &Stored, column: usize) -> &ColumnZone {
        self.columns[column].get_or_init(|| match segment.column(column) {
            Ok(array) => zone_of(&array),
            // Not decodable: nothing known but the nulls.
            Err(_) => ColumnZone {
                min: None,
                max: None,
                nulls: segment.encoded_column(column).null_count(),
                ascending: false,
            },
        })
    }
}

/// Types whose order DataFusion's comparisons and `min`/`max` agree on
/// exactly. Floats are left out (NaN), as are nested and dictionary types.
fn has_zone(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Decimal32(..)
            | Decimal64(..)
            | Decimal128(..)
            | Decimal256(..)
            | Date32
            | Date64
            | Time32(_)
            | Time64(_)
            | Timestamp(..)
            | Utf8
            | LargeUtf8
            | Utf8View
    )
}

fn zone_of(array: &ArrayRef) -> ColumnZone {
    let nulls = array.null_count();
    let bound = |min: bool| -> Option<ScalarValue> {
        if !has_zone(array.data_type()) || nulls == array.len() {
            return None;
        }
        let value = if min {
            let mut acc = MinAccumulator::try_new(array.data_type()).ok()?;
            acc.update_batch(std::slice::from_ref(array)).ok()?;
            acc.evaluate().ok()?
        } else {
            let mut acc = MaxAccumulator::try_new(array.data_type()).ok()?;
            acc.update_batch(std::slice::from_ref(array)).ok()?;
            acc.evaluate().ok()?
        };
        (!value.is_null()).then_some(value)
    };
    ColumnZone {
        min: bound(true),
        max: bound(false),
        nulls,
        ascending: nulls == 0 && ascending(array),
    }
}

/// Whether an integer or date array never goes down (false for other
/// types).
fn ascending(array: &ArrayRef) -> bool {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::{Date32Type, Int32Type, Int64Type};
    fn rises<T: PartialOrd>(values: &[T]) -> bool {
        values.windows(2).all(|w| w[0] <= w[1])
    }
    match array.data_type() {
        DataType::Int32 => rises(array.as_primitive::<Int32Type>().values()),
        DataType::Int64 => rises(array.as_primitive::<Int64Type>().values()),
        DataType::Date32 => rises(array.as_primitive::<Date32Type>().values()),
        _ => false,
    }
}

/// A run of live rows of one segment.
#[derive(Debug, Clone)]
pub struct Piece {
    pub rows: PieceRows,
    /// The segment the rows come from, as kept, and its zone maps
    /// (indexed by table column).
    pub segment: Arc<Stored>,
    pub zones: Arc<ZoneMaps>,
    /// No row of the segment is deleted: the segment's pieces in a scan
    /// hold all of its rows.
    pub intact: bool,
    /// The rows are every row of the segment (intact, not sliced), so the
    /// segment's zone maps are exact for them.
    pub whole: bool,
}

/// Which rows of its segment a piece holds.
#[derive(Debug, Clone)]
pub enum PieceRows {
    /// `len` rows from `offset`, decoded as the scan reads them.
    Run { offset: usize, len: usize },
    /// The live rows of a segment with deleted rows, already decoded and
    /// projected to the scan's columns.
    Decoded(RecordBatch),
}

impl Piece {
    fn zone(&self, table_column: usize) -> &ColumnZone {
        self.zones.column(&self.segment, table_column)
    }

    pub fn num_rows(&self) -> usize {
        match &self.rows {
            PieceRows::Run { len, .. } => *len,
            PieceRows::Decoded(batch) => batch.num_rows(),
        }
    }

    /// `len` of the piece's rows from `offset`.
    fn slice(&self, offset: usize, len: usize) -> Piece {
        let rows = match &self.rows {
            PieceRows::Run { offset: start, .. } => PieceRows::Run {
                offset: start + offset,
                len,
            },
            PieceRows::Decoded(batch) => PieceRows::Decoded(batch.slice(offset, len)),
        };
        Piece {
            rows,
            whole: self.whole && offset == 0 && len == self.num_rows(),
            ..self.clone()
        }
    }

    /// Output column `output` (table column `column`) of the rows `mask`
    /// keeps (all without one), decoding only those.
    fn column(
        &self,
        output: usize,
        column: usize,
        mask: Option<&BooleanArray>,
    ) -> Result<ArrayRef> {
        match &self.rows {
            PieceRows::Decoded(batch) => {
                let array = batch.column(output);
                Ok(match mask {
                    Some(mask) => filter(array, mask)?,
                    None => array.clone(),
                })
            }
            PieceRows::Run { offset, len } => {
                let encoded = self.segment.encoded_column(column);
                match mask {
                    None => decode_rows(encoded, Rows::Range(*offset, *len)),
                    Some(mask) => decode_rows(&encoded.slice(*offset, *len), Rows::Mask(mask)),
                }
            }
        }
    }

    /// The codes (over the piece's rows) and dictionary of table column
    /// `column`, when the segment keeps it dictionary-coded.
    fn dictionary(&self, column: usize) -> Option<(ArrayRef, ArrayRef)> {
        let PieceRows::Run { offset, len } = &self.rows else {
            return None;
        };
        match self.segment.encoded_column(column) {
            Encoded::Dict { codes, values } => Some((codes.slice(*offset, *len), values.clone())),
            _ => None,
        }
    }

    /// Nulls in output column `output` (table column `column`).
    fn null_count(&self, output: usize, column: usize) -> usize {
        match &self.rows {
            PieceRows::Decoded(batch) => batch.column(output).null_count(),
            PieceRows::Run { offset, len } => {
                let encoded = self.segment.encoded_column(column);
                encoded.slice(*offset, *len).null_count()
            }
        }
    }

    /// Bytes the rows of the columns take once decoded (about).
    fn decoded_bytes(&self, columns: &[usize]) -> usize {
        match &self.rows {
            PieceRows::Decoded(batch) => batch.get_array_memory_size(),
            PieceRows::Run { len, .. } => {
                let whole: usize = columns.iter().map(|&c| self.segment.plain_size(c)).sum();
                whole * len / self.segment.num_rows().max(1)
            }
        }
    }

    /// Every row in the scan's columns (`columns`, table column per
    /// output column of `schema`).
    fn read(&self, schema: &SchemaRef, columns: &[usize]) -> Result<RecordBatch> {
        let arrays = columns
            .iter()
            .enumerate()
            .map(|(output, &column)| self.column(output, column, None))
            .collect::<Result<Vec<_>>>()?;
        batch_of(schema, arrays, self.num_rows())
    }
}

/// A batch of `rows` rows (which a batch of no columns needs told).
fn batch_of(schema: &SchemaRef, arrays: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    Ok(RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )?)
}

/// Splits the pieces into `partitions` runs with (nearly) equal row
/// counts, slicing pieces where needed (slices share memory).
pub fn balance(pieces: Vec<Piece>, partitions: usize) -> Vec<Vec<Piece>> {
    spread(pieces, partitions, Piece::num_rows, |p, offset, len| {
        p.slice(offset, len)
    })
}

/// Spreads `items` over `partitions` runs with (nearly) the same number of
/// rows each, slicing items where needed, so every core gets an equal
/// share of a scan whatever the batch sizes are.
pub fn spread<T: Clone>(
    items: Vec<T>,
    partitions: usize,
    rows: impl Fn(&T) -> usize,
    slice: impl Fn(&T, usize, usize) -> T,
) -> Vec<Vec<T>> {
    let total: usize = items.iter().map(&rows).sum();
    if total == 0 {
        return vec![Vec::new()];
    }
    let share = total.div_ceil(partitions.max(1));
    let mut parts = Vec::with_capacity(partitions);
    let mut current = Vec::new();
    let mut filled = 0;
    for item in items {
        let n = rows(&item);
        let mut offset = 0;
        while offset < n {
            let take = (share - filled).min(n - offset);
            current.push(if offset == 0 && take == n {
                item.clone()
            } else {
                slice(&item, offset, take)
            });
            offset += take;
            filled += take;
            if filled == share {
                parts.push(std::mem::take(&mut current));
                filled = 0;
            }
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

/// Whether table column `column` never goes down through `pieces`: each
/// piece's segment is in ascending order (its live rows and any slice of
/// them then are too), and each piece's segment ends at or below where the
/// next one's begins (pieces of one segment follow each other in order).
fn rises_through(pieces: &[Piece], column: usize) -> bool {
    let mut last: Option<&Piece> = None;
    for piece in pieces {
        let zone = piece.zone(column);
        if !zone.ascending {
            return false;
        }
        if let Some(before) = last.filter(|b| !Arc::ptr_eq(&b.zones, &piece.zones)) {
            match (&before.zone(column).max, &zone.min) {
                (Some(max), Some(min)) if max <= min => {}
                _ => return false,
            }
        }
        last = Some(piece);
    }
    true
}

/// The scan of one table version.
#[derive(Debug, Clone)]
pub struct TableScan {
    table: String,
    /// Output schema, and the table column of each output column.
    schema: SchemaRef,
    columns: Vec<usize>,
    partitions: Vec<Vec<Piece>>,
    /// Filters pushed down by DataFusion, over the output schema.
    filters: Vec<Arc<dyn PhysicalExpr>>,
    /// Skip segments by zone maps (DataFusion's
    /// `datafusion.execution.parquet.pruning`, which plays the same role for
    /// Parquet row groups).
    prune: bool,
    fetch: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
    /// Output columns whose values rise through every partition.
    ascending: Vec<usize>,
}

impl TableScan {
    pub fn new(
        table: &str,
        schema: SchemaRef,
        columns: Vec<usize>,
        partitions: Vec<Vec<Piece>>,
        prune: bool,
    ) -> TableScan {
        let ascending = (0..columns.len())
            .filter(|&output| {
                partitions
                    .iter()
                    .all(|pieces| rises_through(pieces, columns[output]))
            })
            .collect();
        TableScan {
            table: table.to_string(),
            schema,
            columns,
            partitions,
            filters: Vec::new(),
            prune,
            fetch: None,
            metrics: ExecutionPlanMetricsSet::new(),
            ascending,
        }
    }

    /// Statistics of `pieces`; `exact` when they hold every row of their
    /// segments (the zone maps are then true minima and maxima).
    fn statistics_of<'a>(
        &self,
        pieces: impl Iterator<Item = &'a Piece> + Clone,
        exact: bool,
    ) -> Statistics {
        let rows: usize = pieces.clone().map(Piece::num_rows).sum();
        let bytes: usize = pieces.clone().map(|p| p.decoded_bytes(&self.columns)).sum();
        let columns = self
            .columns
            .iter()
            .enumerate()
            .map(|(output, &column)| {
                let nulls: usize = pieces.clone().map(|p| p.null_count(output, column)).sum();
                let mut min: Option<ScalarValue> = None;
                let mut max: Option<ScalarValue> = None;
                let mut known = rows > nulls;
                for piece in pieces.clone().filter(|p| p.num_rows() > 0) {
                    let zone = piece.zone(column);
                    match (&zone.min, &zone.max) {
                        (Some(lo), Some(hi)) => {
                            if min.as_ref().is_none_or(|m| lo < m) {
                                min = Some(lo.clone());
                            }
                            if max.as_ref().is_none_or(|m| hi > m) {
                                max = Some(hi.clone());
                            }
                        }
                        // All null in the whole segment: nothing to bound.
                        _ if zone.nulls == piece.segment.num_rows() => {}
                        _ => known = false,
                    }
                }
                let bound = |value: Option<ScalarValue>| match value {
                    Some(value) if known && exact => Precision::Exact(value),
                    Some(value) if known => Precision::Inexact(value),
                    _ => Precision::Absent,
                };
                ColumnStatistics {
                    null_count: Precision::Exact(nulls),
                    min_value: bound(min),
                    max_value: bound(max),
                    ..ColumnStatistics::new_unknown()
                }
            })
            .collect();
        Statistics {
            num_rows: Precision::Exact(rows),
            total_byte_size: Precision::Inexact(bytes),
            column_statistics: columns,
        }
    }
}

impl TableScan {
    /// The rows the scan reads (before filters and fetch).
    pub fn rows(&self) -> usize {
        self.partitions.iter().flatten().map(Piece::num_rows).sum()
    }

    /// About `rows` of the scan's rows, in short runs spread evenly over
    /// all of them (for estimating the share a filter keeps); None when
    /// the scan reads no rows.
    pub fn sample(&self, rows: usize) -> Result<Option<RecordBatch>> {
        const RUN: usize = 64;
        let pieces: Vec<&Piece> = self.partitions.iter().flatten().collect();
        let total = self.rows();
        if total == 0 {
            return Ok(None);
        }
        if total <= rows {
            let batches = pieces
                .iter()
                .map(|p| p.read(&self.schema, &self.columns))
                .collect::<Result<Vec<_>>>()?;
            return Ok(Some(datafusion::arrow::compute::concat_batches(
                &self.schema,
                &batches,
            )?));
        }
        let runs = (rows / RUN).max(1);
        let mut slices = Vec::with_capacity(runs);
        let (mut piece, mut start) = (0, 0);
        for run in 0..runs {
            let at = run * total / runs;
            while start + pieces[piece].num_rows() <= at {
                start += pieces[piece].num_rows();
                piece += 1;
            }
            let offset = at - start;
            let run = pieces[piece].slice(offset, RUN.min(pieces[piece].num_rows() - offset));
            slices.push(run.read(&self.schema, &self.columns)?);
        }
        Ok(Some(datafusion::arrow::compute::concat_batches(
            &self.schema,
            &slices,
        )?))
    }
}

impl DataSource for TableScan {
    fn open(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let pieces = self.partitions.get(partition).cloned().unwrap_or_default();
        // With a fetch (a LIMIT right above), which rows come first
        // decides the answer: leave the rows as they are.
        let filters = if self.fetch.is_none() {
            self.filters.clone()
        } else {
            Vec::new()
        };
        let tracking = conjunction(filters.clone());
        Ok(Box::pin(cooperative(PieceStream {
            schema: self.schema.clone(),
            columns: self.columns.clone(),
            pieces: pieces.into(),
            tracking: DynamicFilterTracking::classify(&tracking),
            filters,
            prune: self.prune,
            pruner: None,
            cheap: None,
            costly: None,
            fixed: None,
            fresh: false,
            fetch: self.fetch,
            pruned: MetricBuilder::new(&self.metrics).counter("batches_pruned", partition),
            filtered: MetricBuilder::new(&self.metrics).counter("rows_filtered", partition),
        })))
    }

    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let rows = self.rows();
        match t {
            DisplayFormatType::TreeRender => {
                writeln!(f, "format=quiver")?;
                writeln!(f, "table={}", self.table)?;
                writeln!(f, "rows={rows}")
            }
            _ => {
                write!(
                    f,
                    "table={}, partitions={}, rows={rows}",
                    self.table,
                    self.partitions.len()
                )?;
                if let Some(fetch) = self.fetch {
                    write!(f, ", fetch={fetch}")?;
                }
                if !self.filters.is_empty() {
                    let filters: Vec<String> = self.filters.iter().map(|e| e.to_string()).collect();
                    write!(f, ", filters=[{}]", filters.join(", "))?;
                }
                Ok(())
            }
        }
    }

    fn output_partitioning(&self) -> Partitioning {
        Partitioning::UnknownPartitioning(self.partitions.len())
    }

    /// Each partition is in the order of the columns whose values rise
    /// through it (a table loaded in key order, such as TPC-H's orders
    /// and lineitem, is in key order): aggregates grouped by such a
    /// column stream, and sorts on it are merges.
    fn eq_properties(&self) -> EquivalenceProperties {
        let orderings = self.ascending.iter().map(|&output| {
            let field = self.schema.field(output);
            [PhysicalSortExpr::new(
                Arc::new(datafusion::physical_expr::expressions::Column::new(
                    field.name(),
                    output,
                )),
                SortOptions {
                    descending: false,
                    nulls_first: false,
                },
            )]
        });
        EquivalenceProperties::new_with_orderings(self.schema.clone(), orderings)
    }

    fn scheduling_type(&self) -> SchedulingType {
        SchedulingType::Cooperative
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let mut stats = match partition {
            Some(p) => match self.partitions.get(p) {
                Some(pieces) => self.statistics_of(pieces.iter(), pieces.iter().all(|p| p.whole)),
                None => Statistics::new_unknown(&self.schema),
            },
            None => {
                let pieces = self.partitions.iter().flatten();
                self.statistics_of(pieces.clone(), pieces.clone().all(|p| p.intact))
            }
        };
        if let Some(fetch) = self.fetch {
            stats = stats.with_fetch(Some(fetch), 0, 1)?;
        }
        Ok(Arc::new(stats))
    }

    fn with_fetch(&self, limit: Option<usize>) -> Option<Arc<dyn DataSource>> {
        Some(Arc::new(TableScan {
            fetch: limit,
            ..self.clone()
        }))
    }

    fn fetch(&self) -> Option<usize> {
        self.fetch
    }

    fn metrics(&self) -> ExecutionPlanMetricsSet {
        self.metrics.clone()
    }

    fn try_swapping_with_projection(
        &self,
        _projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn DataSource>>> {
        Ok(None)
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        _config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn DataSource>>> {
        let answer = vec![PushedDown::No; filters.len()];
        if filters.is_empty() || self.fetch.is_some() {
            return Ok(FilterPushdownPropagation::with_parent_pushdown_result(
                answer,
            ));
        }
        let mut scan = self.clone();
        scan.filters.extend(filters);
        Ok(
            FilterPushdownPropagation::with_parent_pushdown_result(answer)
                .with_updated_node(Arc::new(scan) as Arc<dyn DataSource>),
        )
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        for filter in &self.filters {
            if f(filter)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }
}

/// A filter applied to rows in the scan, for as long as it keeps few
/// enough of them to pay for itself. It reads only its own columns: the
/// scan decodes those first, and the others only for the rows that pass.
struct RowFilter {
    /// The scan's output columns it reads, and the filter over a batch of
    /// just those (`schema`).
    reads: Vec<usize>,
    schema: SchemaRef,
    expr: Arc<dyn PhysicalExpr>,
    /// The share of rows above which it stops, once it has seen
    /// [`RowFilter::TRIAL`] rows.
    keeps_at_most: f64,
    seen: usize,
    kept: usize,
}

impl RowFilter {
    const TRIAL: usize = 64 * 1024;

    fn new(
        parts: Vec<Arc<dyn PhysicalExpr>>,
        keeps_at_most: f64,
        scan: &SchemaRef,
    ) -> Option<RowFilter> {
        if parts.is_empty() {
            return None;
        }
        let expr = conjunction(parts);
        let all = || RowFilter {
            reads: (0..scan.fields().len()).collect(),
            schema: scan.clone(),
            expr: expr.clone(),
            keeps_at_most,
            seen: 0,
            kept: 0,
        };
        // A join's hash-table lookup may hold columns outside its
        // children: it reads the whole batch.
        if probes_hash_table(&expr) {
            return Some(all());
        }
        let mut reads: Vec<usize> = collect_columns(&expr).iter().map(|c| c.index()).collect();
        reads.sort_unstable();
        reads.dedup();
        let Ok(schema) = scan.project(&reads).map(Arc::new) else {
            return Some(all());
        };
        match reassign_expr_columns(expr.clone(), &schema) {
            Ok(narrow) => Some(RowFilter {
                reads,
                schema,
                expr: narrow,
                keeps_at_most,
                seen: 0,
                kept: 0,
            }),
            Err(_) => Some(all()),
        }
    }

    fn pays(&self) -> bool {
        self.seen < Self::TRIAL || (self.kept as f64) <= self.seen as f64 * self.keeps_at_most
    }

    /// The type of output column `output` (one it reads).
    fn field_type(&self, output: usize) -> &DataType {
        let at = self.reads.binary_search(&output).unwrap_or(0);
        self.schema.field(at).data_type()
    }

    /// The codes and dictionary of the one column the filter reads, when
    /// the piece keeps it dictionary-coded.
    fn dictionary(&self, piece: &Piece, columns: &[usize]) -> Option<(ArrayRef, ArrayRef)> {
        match self.reads.as_slice() {
            [output] if self.schema.fields().len() == 1 => piece.dictionary(columns[*output]),
            _ => None,
        }
    }

    /// Which rows pass, evaluated once per dictionary value: `codes`
    /// (over the piece's rows) index `values`; only the rows `selection`
    /// keeps are answered.
    fn on_dictionary(
        &mut self,
        (codes, values): (ArrayRef, ArrayRef),
        selection: Option<&BooleanArray>,
    ) -> Option<BooleanArray> {
        let codes = match selection {
            Some(selection) => filter(&codes, selection).ok()?,
            None => codes,
        };
        // One more row for NULL when there are NULLs.
        let with_null = codes.null_count() > 0;
        let values = if with_null {
            let null = datafusion::arrow::array::new_null_array(values.data_type(), 1);
            datafusion::arrow::compute::concat(&[values.as_ref(), null.as_ref()]).ok()?
        } else {
            values
        };
        let n = values.len();
        let answers = self.evaluate(vec![values], n)?;
        // mask() counted the dictionary; count the rows instead.
        self.seen -= n;
        self.kept -= answers.true_count();
        // A row's answer is its code's; a NULL row's is the last one's.
        fn per_row<T: ArrowPrimitiveType>(
            codes: &ArrayRef,
            answers: &BooleanArray,
        ) -> BooleanBuffer {
            let codes = codes.as_primitive::<T>();
            let null = answers.len() - 1;
            BooleanBuffer::collect_bool(codes.len(), |i| {
                answers.value(if codes.is_valid(i) {
                    codes.value(i).as_usize()
                } else {
                    null
                })
            })
        }
        let bits = match codes.data_type() {
            DataType::UInt8 => per_row::<UInt8Type>(&codes, &answers),
            _ => per_row::<UInt16Type>(&codes, &answers),
        };
        let rows = codes.len();
        let mask = BooleanArray::new(bits, None);
        self.seen += rows;
        self.kept += mask.true_count();
        Some(mask)
    }

    /// Which of `rows` rows pass (NULL counts as not passing), given the
    /// decoded output columns it reads; None when the filter cannot be
    /// evaluated (it then only costs its speed-up).
    fn mask(&mut self, columns: &[Option<ArrayRef>], rows: usize) -> Option<BooleanArray> {
        let arrays = self
            .reads
            .iter()
            .map(|&c| columns[c].clone())
            .collect::<Option<Vec<_>>>()?;
        self.evaluate(arrays, rows)
    }

    /// As [`RowFilter::mask`], given the columns it reads in order.
    fn evaluate(&mut self, arrays: Vec<ArrayRef>, rows: usize) -> Option<BooleanArray> {
        let batch = batch_of(&self.schema, arrays, rows).ok()?;
        let mask = self
            .expr
            .evaluate(&batch)
            .and_then(|value| value.into_array(rows))
            .ok()?;
        let mask = mask.as_any().downcast_ref::<BooleanArray>()?;
        let mask = match mask.nulls() {
            Some(nulls) => BooleanArray::new(mask.values() & nulls.inner(), None),
            None => mask.clone(),
        };
        self.seen += rows;
        self.kept += mask.true_count();
        Some(mask)
    }
}

/// One partition of a [`TableScan`] being read.
struct PieceStream {
    schema: SchemaRef,
    columns: Vec<usize>,
    pieces: VecDeque<Piece>,
    filters: Vec<Arc<dyn PhysicalExpr>>,
    tracking: DynamicFilterTracking,
    prune: bool,
    /// Built from the filters' current values; rebuilt when a dynamic
    /// filter changes.
    pruner: Option<PruningPredicate>,
    /// Filters applied to rows: the dynamic filters' current values (key
    /// ranges and short key lists; lookups in a join's hash table) and
    /// the static filters of the query.
    cheap: Option<RowFilter>,
    costly: Option<RowFilter>,
    /// The static filters' conjuncts, each on its own (None once one
    /// could not be evaluated), taken on first use.
    fixed: Option<Vec<Option<RowFilter>>>,
    fresh: bool,
    fetch: Option<usize>,
    pruned: Count,
    filtered: Count,
}

impl PieceStream {
    /// Takes the filters' current values, first and whenever a dynamic
    /// filter changed.
    fn refresh(&mut self) {
        let changed = self
            .tracking
            .watcher()
            .is_some_and(|watcher| watcher.changed());
        if self.fresh && !changed {
            return;
        }
        self.fresh = true;
        if self.filters.is_empty() {
            return;
        }
        if self.prune {
            self.pruner = PruningPredicateBuilder::new()
                .with_file_schema(self.schema.clone())
                .try_build(conjunction(self.filters.clone()))
                .ok()
                .filter(|p| !p.always_true());
        }
        // The dynamic filters' current values, in two parts. Key ranges and
        // short key lists cost little: they run while they drop at least
        // one row in ten. A lookup in the join's hash table (or a routing
        // by key hash) costs what the join's own probe costs: it pays only
        // where it drops nearly every row before operators that would
        // otherwise see them (an aggregate, another join), so it runs while
        // it keeps at most 2% of the rows.
        let (costly, cheap): (Vec<_>, Vec<_>) = self
            .filters
            .iter()
            .filter(|f| DynamicFilterTracking::classify(f).contains_dynamic_filter())
            .filter_map(|f| snapshot_physical_expr(f.clone()).ok())
            .flat_map(|f| {
                split_conjunction(&f)
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|f| !is_true(f))
            .partition(probes_hash_table);
        self.cheap = RowFilter::new(cheap, 0.9, &self.schema);
        self.costly = RowFilter::new(costly, 0.02, &self.schema);
        // The query's own filters run again above the scan (they are
        // answered "not pushed down"), where rows that all pass cost
        // nothing more to filter. Here they save decoding (filtering
        // compressed columns is cheaper than filtering decoded ones) and
        // the work of the operators above, at the price of a second
        // evaluation: conjuncts on strings, which may cost much (LIKE),
        // run while they drop 40% of the rows they see, others always.
        // Volatile ones (random()) must run once, above.
        if self.fixed.is_none() {
            let fixed = self
                .filters
                .iter()
                .filter(|f| !DynamicFilterTracking::classify(f).contains_dynamic_filter())
                .flat_map(split_conjunction)
                .filter(|f| !is_volatile(f))
                .map(|f| {
                    let mut filter = RowFilter::new(vec![f.clone()], 0.6, &self.schema)?;
                    if filter
                        .reads
                        .iter()
                        .all(|&c| !is_string(filter.field_type(c)))
                    {
                        filter.keeps_at_most = 1.0;
                    }
                    Some(filter)
                })
                .collect();
            self.fixed = Some(fixed);
        }
    }

    fn may_match(&self, piece: &Piece) -> bool {
        let Some(pruner) = &self.pruner else {
            return true;
        };
        let stats = PieceStatistics {
            piece,
            schema: &self.schema,
            columns: &self.columns,
        };
        pruner
            .prune(&stats)
            .map(|keep| keep.first().copied().unwrap_or(true))
            .unwrap_or(true)
    }

    /// The rows of `piece` that pass the filters that still pay for
    /// themselves, in the scan's columns. Each filter sees only the rows
    /// the ones before it kept, and decodes only its own columns for
    /// them; the other columns are decoded for the rows that pass all.
    /// Conjuncts on one dictionary-coded string column are answered on
    /// the dictionary, and go first; then those that decode no strings.
    fn read(&mut self, piece: &Piece) -> Result<RecordBatch> {
        let rows = piece.num_rows();
        let columns = &self.columns;
        let mut decoded: Vec<Option<ArrayRef>> = vec![None; columns.len()];
        // The rows still in, over the piece's rows (None: all), and how many.
        let mut selection: Option<BooleanArray> = None;
        let mut left = rows;
        let fixed = self.fixed.get_or_insert_with(Vec::new);
        let mut order: Vec<(u8, usize)> = fixed
            .iter()
            .enumerate()
            .filter_map(|(i, f)| {
                let f = f.as_ref()?;
                let rank = if f.dictionary(piece, columns).is_some() {
                    0
                } else if f.reads.iter().all(|&c| !is_string(f.field_type(c))) {
                    1
                } else {
                    2
                };
                Some((rank, i))
            })
            .collect();
        order.sort();
        let mut stages: Vec<&mut Option<RowFilter>> = vec![&mut self.cheap];
        let mut by_index: Vec<Option<&mut Option<RowFilter>>> =
            fixed.iter_mut().map(Some).collect();
        for (_, i) in &order {
            stages.extend(by_index[*i].take());
        }
        stages.push(&mut self.costly);
        for stage in stages {
            if left == 0 {
                break;
            }
            let Some(f) = stage else { continue };
            let passes = match f.dictionary(piece, columns) {
                Some(codes) => f.on_dictionary(codes, selection.as_ref()),
                None if !f.pays() => continue,
                None => {
                    for &output in &f.reads {
                        if decoded[output].is_none() {
                            let column =
                                piece.column(output, columns[output], selection.as_ref())?;
                            decoded[output] = Some(column);
                        }
                    }
                    f.mask(&decoded, left)
                }
            };
            let Some(passes) = passes else {
                *stage = None;
                continue;
            };
            let kept = passes.true_count();
            if kept == left {
                continue;
            }
            for array in decoded.iter_mut().flatten() {
                *array = filter(array, &passes)?;
            }
            selection = Some(match selection {
                None => passes,
                Some(before) => within(&before, &passes),
            });
            left = kept;
        }
        self.filtered.add(rows - left);
        let arrays = decoded
            .into_iter()
            .enumerate()
            .map(|(output, array)| match array {
                Some(array) => Ok(array),
                None => piece.column(output, columns[output], selection.as_ref()),
            })
            .collect::<Result<Vec<_>>>()?;
        batch_of(&self.schema, arrays, left)
    }
}

/// The rows of `selection` (over all rows) that `passes` (over the rows
/// `selection` keeps) keeps, over all rows.
fn within(selection: &BooleanArray, passes: &BooleanArray) -> BooleanArray {
    let mut out = BooleanBufferBuilder::new(selection.len());
    out.append_n(selection.len(), false);
    for (j, i) in selection.values().set_indices().enumerate() {
        if passes.value(j) {
            out.set_bit(i, true);
        }
    }
    BooleanArray::new(out.finish(), None)
}

fn is_string(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    )
}

/// Whether evaluating `expr` hashes rows into a join's hash table.
fn probes_hash_table(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let mut found = false;
    let _ = expr.apply(|e| {
        found = e.downcast_ref::<HashTableLookupExpr>().is_some()
            || e.downcast_ref::<HashExpr>().is_some();
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

fn is_true(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.downcast_ref::<datafusion::physical_expr::expressions::Literal>()
        .is_some_and(|l| l.value() == &ScalarValue::Boolean(Some(true)))
}

impl Stream for PieceStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.fetch == Some(0) {
                return Poll::Ready(None);
            }
            let Some(piece) = this.pieces.pop_front() else {
                return Poll::Ready(None);
            };
            this.refresh();
            if !this.may_match(&piece) {
                this.pruned.add(1);
                continue;
            }
            let mut batch = match this.read(&piece) {
                Ok(batch) => batch,
                Err(e) => return Poll::Ready(Some(Err(e))),
            };
            if batch.num_rows() == 0 {
                continue;
            }
            if let Some(fetch) = &mut this.fetch {
                if batch.num_rows() > *fetch {
                    batch = batch.slice(0, *fetch);
                }
                *fetch -= batch.num_rows();
            }
            return Poll::Ready(Some(Ok(batch)));
        }
    }
}

impl RecordBatchStream for PieceStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// One piece's zone maps as DataFusion's pruning reads them: one
/// container.
struct PieceStatistics<'a> {
    piece: &'a Piece,
    schema: &'a SchemaRef,
    columns: &'a [usize],
}

impl PieceStatistics<'_> {
    fn zone(&self, column: &Column) -> Option<&ColumnZone> {
        let output = self.schema.index_of(column.name()).ok()?;
        Some(self.piece.zone(self.columns[output]))
    }
}

impl PruningStatistics for PieceStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.zone(column)?.min.as_ref()?.to_array_of_size(1).ok()
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.zone(column)?.max.as_ref()?.to_array_of_size(1).ok()
    }

    fn num_containers(&self) -> usize {
        1
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let zone = self.zone(column)?;
        Some(Arc::new(UInt64Array::from(vec![zone.nulls as u64])))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from(vec![
            self.piece.segment.num_rows() as u64,
        ])))
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &std::collections::HashSet<ScalarValue>,
    ) -> Option<BooleanArray> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int32, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("f", DataType::Float64, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![Some(7), None, Some(-3), Some(12)])),
                Arc::new(StringArray::from(vec![
                    Some("b"),
                    Some("a"),
                    None,
                    Some("c"),
                ])),
                Arc::new(Float64Array::from(vec![1.0, f64::NAN, 2.0, 3.0])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn zone_maps_bound_each_column_and_skip_floats() {
        let batch = Stored::plain(batch());
        let zones = ZoneMaps::new(3);
        let k = zones.column(&batch, 0);
        assert_eq!(k.min, Some(ScalarValue::Int32(Some(-3))));
        assert_eq!(k.max, Some(ScalarValue::Int32(Some(12))));
        assert_eq!(k.nulls, 1);
        let s = zones.column(&batch, 1);
        assert_eq!(s.min, Some(ScalarValue::Utf8(Some("a".into()))));
        assert_eq!(s.max, Some(ScalarValue::Utf8(Some("c".into()))));
        let f = zones.column(&batch, 2);
        assert_eq!((f.min.clone(), f.max.clone()), (None, None));
    }

    #[test]
    fn statistics_are_exact_only_for_whole_segments() {
        let batch = batch();
        let zones = Arc::new(ZoneMaps::new(3));
        let piece = Piece {
            rows: PieceRows::Run { offset: 0, len: 4 },
            segment: Arc::new(Stored::plain(batch.clone())),
            zones,
            intact: true,
            whole: true,
        };
        let parts = balance(vec![piece], 2);
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().flatten().all(|p| !p.whole && p.intact));
        let scan = TableScan::new("t", batch.schema(), vec![0, 1, 2], parts, true);
        let all = scan.partition_statistics(None).unwrap();
        assert_eq!(all.num_rows, Precision::Exact(4));
        let k = &all.column_statistics[0];
        assert_eq!(k.min_value, Precision::Exact(ScalarValue::Int32(Some(-3))));
        assert_eq!(k.null_count, Precision::Exact(1));
        assert_eq!(all.column_statistics[2].max_value, Precision::Absent);
        // One partition holds half the rows: the segment's bounds only bound it.
        let first = scan.partition_statistics(Some(0)).unwrap();
        assert_eq!(first.num_rows, Precision::Exact(2));
        assert!(matches!(
            first.column_statistics[0].max_value,
            Precision::Inexact(_)
        ));
    }

    /// All rows of a one-column segment as one piece.
    fn whole_segment(rows: RecordBatch) -> Piece {
        Piece {
            rows: PieceRows::Run {
                offset: 0,
                len: rows.num_rows(),
            },
            segment: Arc::new(Stored::encoded(rows)),
            zones: Arc::new(ZoneMaps::new(1)),
            intact: true,
            whole: true,
        }
    }

    #[test]
    fn a_scan_declares_the_order_its_partitions_really_have() {
        use datafusion::arrow::array::Int64Array;
        let segment = |keys: Vec<i64>| {
            let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
            whole_segment(
                RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(keys))]).unwrap(),
            )
        };
        let ordered = |segments: Vec<Vec<i64>>, partitions: usize| {
            let pieces = segments.into_iter().map(segment).collect::<Vec<_>>();
            let schema = pieces[0].segment.schema().clone();
            let scan = TableScan::new("t", schema, vec![0], balance(pieces, partitions), true);
            !scan.eq_properties().oeq_class().is_empty()
        };
        // In key order, ties across segments, split between partitions
        // inside a segment: ordered.
        assert!(ordered(vec![vec![1, 2, 2, 5], vec![5, 7, 9]], 2));
        assert!(ordered(vec![vec![1, 2, 3, 4, 5, 6, 7, 8]], 3));
        // A segment that goes down, or one that starts below the end of
        // the one before: not ordered.
        assert!(!ordered(vec![vec![1, 3, 2]], 1));
        assert!(!ordered(vec![vec![1, 2, 6], vec![5, 8]], 1));
        // Out of order across partitions only: each partition is ordered,
        // which is all the declaration says.
        assert!(ordered(vec![vec![5, 6], vec![1, 2]], 2));
    }

    #[test]
    fn a_sample_takes_short_runs_from_the_whole_scan() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int32, false)]));
        let piece = |from: i32, to: i32| {
            whole_segment(
                RecordBatch::try_new(
                    schema.clone(),
                    vec![Arc::new(Int32Array::from_iter_values(from..to))],
                )
                .unwrap(),
            )
        };
        let parts = vec![
            vec![piece(0, 10_000), piece(10_000, 10_000)],
            vec![piece(10_000, 40_000)],
        ];
        let scan = TableScan::new("t", schema.clone(), vec![0], parts, true);
        let sample = scan.sample(1024).unwrap().unwrap();
        assert_eq!(sample.num_rows(), 1024);
        let keys = sample
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        // Runs of 64 every 2,500 rows, from the first piece to the last.
        assert_eq!(keys.value(0), 0);
        assert_eq!(keys.value(64), 2_500);
        assert!(keys.values().iter().any(|&k| k >= 37_500));
        // A small scan is sampled whole.
        assert_eq!(scan.sample(100_000).unwrap().unwrap().num_rows(), 40_000);
    }
}
