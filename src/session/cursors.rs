//! Server-side cursors: `DECLARE name CURSOR [WITH HOLD] FOR query`,
//! `FETCH [FORWARD n | NEXT | ALL] FROM name`, `CLOSE name | ALL`, as
//! psycopg2's named cursors, SQLAlchemy's `stream_results` and pandas'
//! `chunksize` use them. A cursor reads its plan's stream as FETCH asks:
//! the rows are computed in pieces, never held whole.
//!
//! A `SCROLL` cursor also moves backward and to any position (`FETCH
//! PRIOR`, `BACKWARD n`, `FIRST`, `LAST`, `ABSOLUTE n`, `RELATIVE n`, and
//! `MOVE` likewise): it keeps the rows it has read, as PostgreSQL's
//! tuplestore does, still reading the plan only as far as a FETCH needs.
//! A cursor declared without SCROLL scans forward only (55000 otherwise,
//! with PostgreSQL's hint).

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CloseCursor, Declare, DeclareType, FetchDirection, Ident, Statement, Value,
};
use futures::StreamExt;

use super::{column_names, normalize_ident, sources, Session, StatementResult};
use crate::engine::sessions::CursorInfo;
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::RowStream;

/// Marks the schema of a BINARY cursor's rows: a FETCH sent as a simple
/// query returns them in binary format, as PostgreSQL does.
pub const BINARY_CURSOR_KEY: &str = "quiver.binary_cursor";

/// Whether rows of this schema come from a BINARY cursor.
pub fn is_binary_cursor(schema: &datafusion::arrow::datatypes::Schema) -> bool {
    schema.metadata().contains_key(BINARY_CURSOR_KEY)
}

/// An open cursor.
pub(super) struct Cursor {
    /// Taken out while a FETCH reads it (the lock makes the session
    /// shareable; it is never held across an await).
    rows: std::sync::Mutex<Option<RowStream>>,
    schema: SchemaRef,
    /// Rows read from the stream and not fetched yet.
    pending: VecDeque<RecordBatch>,
    /// WITH HOLD: it outlives its transaction.
    hold: bool,
    /// SCROLL: the rows read so far and the position among them.
    scroll: Option<Scroll>,
    /// What pg_cursors shows.
    info: CursorInfo,
}

impl Session {
    pub(super) async fn declare(
        &mut self,
        declares: &[Declare],
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        let [declare] = declares else {
            return Err(not_supported("DECLARE of several cursors at once"));
        };
        let (Some(DeclareType::Cursor), [name], Some(query)) = (
            &declare.declare_type,
            declare.names.as_slice(),
            &declare.for_query,
        ) else {
            return Err(not_supported(format!("DECLARE {declare}")));
        };
        let hold = declare.hold == Some(true);
        if !hold && self.txn.is_none() {
            return Err(QuiverError::NoActiveTransaction(
                "DECLARE CURSOR can only be used in transaction blocks".into(),
            ));
        }
        let name = normalize_ident(name);
        if self.cursors.iter().any(|(n, _)| *n == name) {
            return Err(QuiverError::DuplicateCursor(format!(
                "cursor \"{name}\" already exists"
            )));
        }
        let statement = DfStatement::Statement(Box::new(Statement::Query(query.clone())));
        let names = column_names::postgres_column_names(&statement);
        let plan = match params {
            Some(params) => self.plan(statement).await?.with_param_values(params)?,
            None => self.plan(statement).await?,
        };
        let schema = sources::annotate(
            &plan,
            self.typed_schema(&plan),
            &self.catalog(),
            &self.default_schema(),
        );
        let mut schema = column_names::rename(&schema, &names);
        if declare.binary == Some(true) {
            // The rows are read by FETCH in binary when FETCH comes as a
            // simple query (a Bind's formats decide otherwise).
            let mut metadata = schema.metadata().clone();
            metadata.insert(BINARY_CURSOR_KEY.into(), "true".into());
            schema = Arc::new(schema.as_ref().clone().with_metadata(metadata));
        }
        // The rows outlive this statement: no statement_timeout of its own.
        let deadline = self.deadline.take();
        let rows = self.execute_plan(plan).await;
        self.deadline = deadline;
        let rows = rows?.conformed(schema.clone());
        self.cursors.push((
            name.clone(),
            Cursor {
                rows: std::sync::Mutex::new(Some(rows)),
                schema,
                pending: VecDeque::new(),
                hold,
                scroll: (declare.scroll == Some(true)).then(Scroll::default),
                info: CursorInfo {
                    name: name.clone(),
                    statement: format!("DECLARE {declare}"),
                    holdable: hold,
                    created: chrono::Utc::now(),
                },
            },
        ));
        self.publish_cursors();
        Ok(StatementResult::command("DECLARE CURSOR"))
    }

    pub(super) async fn fetch(
        &mut self,
        name: &Ident,
        direction: &FetchDirection,
    ) -> Result<StatementResult> {
        let step = Step::of(direction)?;
        let name = normalize_ident(name);
        let cursor = self
            .cursors
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
            .ok_or_else(|| {
                QuiverError::UndefinedCursor(format!("cursor \"{name}\" does not exist"))
            })?;
        let count = match (step, cursor.scroll.is_some()) {
            (_, true) => return cursor.scroll_fetch(step).await,
            (Step::Forward(n), false) => n,
            (_, false) => {
                return Err(QuiverError::NotInPrerequisiteState(
                    "cursor can only scan forward (declare it with SCROLL to move backward \
                     or to a position)"
                        .into(),
                ))
            }
        };
        let batches = cursor.read_forward(count).await?;
        Ok(StatementResult::Rows {
            schema: cursor.schema.clone(),
            batches,
            tag: "FETCH",
        })
    }
}

impl Cursor {
    /// Reads up to `count` rows on from where the stream stands.
    async fn read_forward(&mut self, count: usize) -> Result<Vec<RecordBatch>> {
        let cursor = self;
        let mut rows = cursor
            .rows
            .lock()
            .map_err(|_| QuiverError::Internal("a cursor's lock was poisoned".into()))?
            .take();
        let mut batches = Vec::new();
        let mut wanted = count;
        let mut failed = None;
        while wanted > 0 {
            let batch = match cursor.pending.pop_front() {
                Some(batch) => batch,
                None => match rows.as_mut() {
                    Some(stream) => match stream.next().await {
                        Some(Ok(batch)) => batch,
                        Some(Err(e)) => {
                            failed = Some(e);
                            break;
                        }
                        None => break,
                    },
                    None => break,
                },
            };
            if batch.num_rows() <= wanted {
                wanted -= batch.num_rows();
                batches.push(batch);
            } else {
                batches.push(batch.slice(0, wanted));
                cursor
                    .pending
                    .push_front(batch.slice(wanted, batch.num_rows() - wanted));
                wanted = 0;
            }
        }
        if let Ok(mut slot) = cursor.rows.lock() {
            *slot = rows;
        }
        if let Some(e) = failed {
            return Err(e);
        }
        Ok(batches)
    }

    /// A FETCH (or MOVE) of a SCROLL cursor: the rows `step` passes over,
    /// in the order it passes them, and the cursor left where PostgreSQL
    /// leaves it (on the last row returned, or before the first or after
    /// the last row when the step runs off either end).
    async fn scroll_fetch(&mut self, step: Step) -> Result<StatementResult> {
        // Reads on until `n` rows are known (or the rows end).
        async fn known(cursor: &mut Cursor, n: usize) -> Result<usize> {
            let scroll = cursor.scroll.as_ref().expect("a scroll cursor");
            let have = scroll.rows;
            if n > have && !scroll.done {
                let more = cursor.read_forward(n - have).await?;
                let scroll = cursor.scroll.as_mut().expect("a scroll cursor");
                let read: usize = more.iter().map(|b| b.num_rows()).sum();
                scroll.rows += read;
                scroll
                    .seen
                    .extend(more.into_iter().filter(|b| b.num_rows() > 0));
                scroll.done = scroll.rows < n;
            }
            Ok(cursor.scroll.as_ref().expect("a scroll cursor").rows)
        }
        let position = self.scroll.as_ref().expect("a scroll cursor").position;
        // The positions (1-based) to return, in order, and where the
        // cursor ends.
        let (wanted, end): (Vec<usize>, usize) = match step {
            Step::Forward(n) => {
                let last = position.saturating_add(n);
                let total = known(self, last).await?;
                let to = last.min(total);
                let end = if last > total { total + 1 } else { to };
                (((position + 1).min(to + 1)..=to).collect(), end)
            }
            Step::Backward(n) => {
                let total = known(self, position).await?;
                let from = position.min(total + 1);
                let end = from.saturating_sub(n);
                ((end.max(1)..from).rev().collect(), end)
            }
            Step::Absolute(k) => {
                let target = if k >= 0 {
                    k as usize
                } else {
                    let total = known(self, usize::MAX).await?;
                    (total as i64 + 1 + k).max(0) as usize
                };
                let total = known(self, target).await?;
                match target {
                    0 => (vec![], 0),
                    t if t > total => (vec![], total + 1),
                    t => (vec![t], t),
                }
            }
            Step::Relative(k) => {
                let target = position as i64 + k;
                let total = known(self, target.max(0) as usize).await?;
                match target {
                    t if t <= 0 => (vec![], 0),
                    t if t as usize > total => (vec![], total + 1),
                    t => (vec![t as usize], t as usize),
                }
            }
        };
        let scroll = self.scroll.as_mut().expect("a scroll cursor");
        scroll.position = end;
        let batches = match wanted.is_empty() {
            true => vec![],
            false => {
                // (batch, row) of each position, from the batches' starts.
                let mut starts = Vec::with_capacity(scroll.seen.len());
                let mut at = 0;
                for batch in &scroll.seen {
                    starts.push(at);
                    at += batch.num_rows();
                }
                let indices: Vec<(usize, usize)> = wanted
                    .iter()
                    .map(|p| {
                        let row = p - 1;
                        let batch = starts.partition_point(|&s| s <= row) - 1;
                        (batch, row - starts[batch])
                    })
                    .collect();
                let seen: Vec<&RecordBatch> = scroll.seen.iter().collect();
                vec![datafusion::arrow::compute::interleave_record_batch(
                    &seen, &indices,
                )?]
            }
        };
        Ok(StatementResult::Rows {
            schema: self.schema.clone(),
            batches,
            tag: "FETCH",
        })
    }
}

/// A SCROLL cursor's rows read so far and its position among them: 0
/// before the first row, `rows + 1` after the last.
#[derive(Default)]
struct Scroll {
    seen: Vec<RecordBatch>,
    rows: usize,
    /// The plan has no more rows.
    done: bool,
    position: usize,
}

/// Where a FETCH direction moves.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Forward(usize),
    Backward(usize),
    Absolute(i64),
    Relative(i64),
}

impl Step {
    fn of(direction: &FetchDirection) -> Result<Step> {
        let number = |v: &datafusion::sql::sqlparser::ast::ValueWithSpan| -> Result<i64> {
            match &v.value {
                Value::Number(n, _) => n
                    .parse()
                    .map_err(|_| QuiverError::InvalidStatement(format!("bad row count {n}"))),
                other => Err(QuiverError::InvalidStatement(format!(
                    "bad row count {other}"
                ))),
            }
        };
        // `FORWARD -2` is `BACKWARD 2`; `FORWARD 0` fetches the current row.
        let forward = |n: i64| match n {
            0 => Step::Relative(0),
            n if n > 0 => Step::Forward(n as usize),
            n => Step::Backward(n.unsigned_abs() as usize),
        };
        Ok(match direction {
            FetchDirection::Next | FetchDirection::Forward { limit: None } => Step::Forward(1),
            FetchDirection::Prior | FetchDirection::Backward { limit: None } => Step::Backward(1),
            FetchDirection::All | FetchDirection::ForwardAll => Step::Forward(usize::MAX),
            FetchDirection::BackwardAll => Step::Backward(usize::MAX),
            FetchDirection::First => Step::Absolute(1),
            FetchDirection::Last => Step::Absolute(-1),
            FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
                forward(number(limit)?)
            }
            FetchDirection::Backward { limit: Some(limit) } => forward(-number(limit)?),
            FetchDirection::Absolute { limit } => Step::Absolute(number(limit)?),
            FetchDirection::Relative { limit } => Step::Relative(number(limit)?),
        })
    }
}

impl Session {
    /// CLOSE name | CLOSE ALL.
    pub(super) fn close(&mut self, cursor: &CloseCursor) -> Result<StatementResult> {
        match cursor {
            CloseCursor::All => {
                self.cursors.clear();
                self.publish_cursors();
                Ok(StatementResult::command("CLOSE CURSOR ALL"))
            }
            CloseCursor::Specific { name } => {
                let name = normalize_ident(name);
                let before = self.cursors.len();
                self.cursors.retain(|(n, _)| *n != name);
                if self.cursors.len() == before {
                    return Err(QuiverError::UndefinedCursor(format!(
                        "cursor \"{name}\" does not exist"
                    )));
                }
                self.publish_cursors();
                Ok(StatementResult::command("CLOSE CURSOR"))
            }
        }
    }

    /// The columns of an open cursor: what a Describe of the portal of
    /// that name answers (psycopg 3 describes its named cursors so).
    pub fn cursor_schema(&self, name: &str) -> Option<SchemaRef> {
        self.cursors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| c.schema.clone())
    }

    /// The transaction ended: its cursors (all but WITH HOLD ones) close.
    pub(super) fn close_transaction_cursors(&mut self) {
        self.cursors.retain(|(_, c)| c.hold);
        self.publish_cursors();
    }

    /// Every cursor closes (DISCARD ALL).
    pub(super) fn close_all_cursors(&mut self) {
        self.cursors.clear();
        self.publish_cursors();
    }

    fn publish_cursors(&self) {
        self.info
            .set_cursors(self.cursors.iter().map(|(_, c)| c.info.clone()).collect());
    }
}
