//! Server-side cursors: `DECLARE name CURSOR [WITH HOLD] FOR query`,
//! `FETCH [FORWARD n | NEXT | ALL] FROM name`, `CLOSE name | ALL`, as
//! psycopg2's named cursors, SQLAlchemy's `stream_results` and pandas'
//! `chunksize` use them. A cursor reads its plan's stream as FETCH asks:
//! the rows are computed in pieces, never held whole. Cursors scan
//! forward only (`SCROLL` answers 0A000).

use std::collections::VecDeque;

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
        if declare.scroll == Some(true) {
            return Err(not_supported("SCROLL cursors (cursors scan forward only)"));
        }
        if declare.binary == Some(true) {
            return Err(not_supported("BINARY cursors"));
        }
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
        let schema = column_names::rename(&schema, &names);
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
        let count = forward_count(direction)?;
        let name = normalize_ident(name);
        let cursor = self
            .cursors
            .iter_mut()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c)
            .ok_or_else(|| {
                QuiverError::UndefinedCursor(format!("cursor \"{name}\" does not exist"))
            })?;
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
        Ok(StatementResult::Rows {
            schema: cursor.schema.clone(),
            batches,
            tag: "FETCH",
        })
    }

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

/// How many rows a FETCH direction reads forward.
fn forward_count(direction: &FetchDirection) -> Result<usize> {
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
    let backward = || {
        QuiverError::NotInPrerequisiteState(
            "cursor can only scan forward (cursors here are NO SCROLL)".into(),
        )
    };
    let count = match direction {
        FetchDirection::Next | FetchDirection::Forward { limit: None } => 1,
        FetchDirection::All | FetchDirection::ForwardAll => i64::MAX,
        FetchDirection::Count { limit } | FetchDirection::Forward { limit: Some(limit) } => {
            number(limit)?
        }
        _ => return Err(backward()),
    };
    if count < 0 {
        return Err(backward());
    }
    Ok(usize::try_from(count).unwrap_or(usize::MAX))
}
