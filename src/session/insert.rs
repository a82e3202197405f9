//! INSERT: DataFusion evaluates the rows (VALUES or a query, with casts and
//! defaults); we check them against the table's column rules and append.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::logical_expr::{DmlStatement, LogicalPlan};

use super::{Session, StatementResult};
use crate::engine::conform::conform_batches;
use crate::engine::{Change, Table};
use crate::error::{QuiverError, Result};

impl Session {
    pub(super) async fn insert(&mut self, dml: &DmlStatement) -> Result<StatementResult> {
        let (_, table) = self.table_for_reference(&dml.table_name)?;
        let batches = self.insert_rows(&table, dml.input.as_ref().clone()).await?;
        let rows = self.store_rows(&table, batches).await?;
        Ok(StatementResult::Command {
            tag: "INSERT",
            rows: Some(rows),
        })
    }

    /// Checks new rows against the table's column rules and adds them: in
    /// a transaction block to the block, else committed (and acknowledged
    /// by the log) before this returns. Returns how many were added.
    pub(super) async fn store_rows(
        &mut self,
        table: &Arc<Table>,
        batches: Vec<RecordBatch>,
    ) -> Result<usize> {
        let batches = conform_batches(table, batches)?;
        if let Some(txn) = self.current_txn() {
            // Inside a block: checked against the committed keys as the
            // block has changed them; applied at COMMIT.
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
            self.db.check_table_memory(Some(&txn), bytes)?;
            self.db.apply(&txn, table, Change::Insert(batches))?;
            Ok(rows)
        } else if self.has_foreign_keys(table) {
            // Keys are checked against the referenced table in a
            // transaction of its own, and again at its commit.
            let rows = batches.iter().map(|b| b.num_rows()).sum();
            let txn = self.db.begin();
            self.db.apply(&txn, table, Change::Insert(batches))?;
            self.db
                .commit(&txn, self.synchronous_commit())?
                .wait()
                .await;
            Ok(rows)
        } else {
            let (rows, ack) = self.db.append(table, batches, self.synchronous_commit())?;
            ack.wait().await;
            Ok(rows)
        }
    }
}

impl Session {
    /// Evaluates the rows an INSERT proposes.
    pub(super) async fn insert_rows(
        &self,
        table: &Table,
        input: LogicalPlan,
    ) -> Result<Vec<RecordBatch>> {
        let names = input.schema().as_arrow().clone();
        let top = input.expressions();
        match self.collect_plan(input).await {
            Ok(batches) => Ok(batches),
            Err(e) => Err(values_not_null(e, table, &names, &top)),
        }
    }
}

/// DataFusion types a VALUES list with the table's nullability and then
/// fails on a NULL for a NOT NULL column with an Arrow message naming the
/// VALUES column (`column3`); say what Postgres says instead.
fn values_not_null(
    e: QuiverError,
    table: &Table,
    names: &datafusion::arrow::datatypes::Schema,
    top: &[datafusion::logical_expr::Expr],
) -> QuiverError {
    let message = e.to_string();
    let Some(values_column) = message
        .split_once("Column '")
        .and_then(|(_, rest)| rest.split_once("' is declared as non-nullable"))
        .map(|(name, _)| name.to_string())
    else {
        return e;
    };
    let column = top
        .iter()
        .position(|expr| expr.column_refs().iter().any(|c| c.name() == values_column))
        .and_then(|i| names.fields().get(i))
        .map(|f| f.name().clone())
        .or_else(|| {
            table
                .schema_ref()
                .fields()
                .iter()
                .find(|f| !f.is_nullable())
                .map(|f| f.name().clone())
        });
    match column {
        Some(column) => QuiverError::NotNullViolation {
            table: table.name().to_string(),
            column,
        },
        None => e,
    }
}
