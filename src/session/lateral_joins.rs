//! Lateral joins DataFusion cannot turn into plain joins (`CROSS JOIN
//! LATERAL (SELECT ... WHERE b.k = a.k ORDER BY ... LIMIT 1)`, `LEFT JOIN
//! LATERAL (...) ON true`, a subquery over a left column that is not an
//! equality) run as PostgreSQL's nested loop does: the right side once
//! per row of the left, with that row's values in place of its references
//! to the left (rows with the same values share one run). For an inner
//! join a left row goes once with each right row that meets the ON
//! condition; for a LEFT join a row that meets none goes once with NULLs.
//! Slow for many left rows, as any nested loop is; cancel and
//! statement_timeout stop it between and during runs.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat, concat_batches, take};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::logical_expr::{Expr, Filter, Join, LogicalPlan, Projection};

use super::Session;
use crate::error::{QuiverError, Result};

/// The table the joined rows are read from.
const ROWS: &str = "__lateral_rows";

impl Session {
    /// `join` computed row by row, as a scan of its rows under the join's
    /// own column names.
    pub(super) async fn lateral_joined(&self, join: &Join) -> Result<LogicalPlan> {
        let outer_join = match join.join_type {
            JoinType::Inner => false,
            JoinType::Left => true,
            _ => {
                return Err(QuiverError::Syntax(
                    "the combining JOIN type must be INNER or LEFT for a LATERAL reference".into(),
                ))
            }
        };
        let left_schema = join.left.schema().clone();
        let left = Box::pin(self.collect_analyzed(join.left.as_ref().clone())).await?;
        let rows = concat_batches(&Arc::new(left_schema.as_arrow().clone()), &left)?;
        // The ON condition, equi-join keys included.
        let condition = join
            .on
            .iter()
            .map(|(l, r)| l.clone().eq(r.clone()))
            .chain(join.filter.clone())
            .reduce(Expr::and);
        // The left columns the right side and the condition read, by
        // their place in the left rows.
        let mut read: Vec<(Column, usize)> = Vec::new();
        let mut note = |column: &Column| {
            if let Ok(at) = left_schema.index_of_column(column) {
                if !read.iter().any(|(c, _)| c == column) {
                    read.push((column.clone(), at));
                }
            }
        };
        join.right.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|e| {
                    if let Expr::OuterReferenceColumn(_, column) = e {
                        note(column);
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        if let Some(condition) = &condition {
            for column in condition.column_refs() {
                note(column);
            }
        }
        // Nullable: a LEFT join's unmatched rows have NULLs on the right.
        let right_schema = Arc::new(Schema::new(
            join.right
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let mut memo: HashMap<Vec<ScalarValue>, RecordBatch> = HashMap::new();
        let mut left_rows: Vec<u32> = Vec::new();
        let mut right_parts: Vec<RecordBatch> = Vec::new();
        for row in 0..rows.num_rows() {
            let key = read
                .iter()
                .map(|(_, at)| ScalarValue::try_from_array(rows.column(*at), row))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            if !memo.contains_key(&key) {
                let values: HashMap<&Column, &ScalarValue> = read
                    .iter()
                    .zip(&key)
                    .map(|((column, _), value)| (column, value))
                    .collect();
                let mut right = super::sub_plans::bound(join.right.as_ref().clone(), &values)?;
                if let Some(condition) = &condition {
                    let condition = condition.clone().transform_up(|e| match e {
                        Expr::Column(column) if values.contains_key(&column) => Ok(
                            Transformed::yes(Expr::Literal(values[&column].clone(), None)),
                        ),
                        other => Ok(Transformed::no(other)),
                    })?;
                    right = LogicalPlan::Filter(Filter::try_new(condition.data, Arc::new(right))?);
                }
                let batches = Box::pin(self.collect_analyzed(right)).await?;
                let columns = match batches.is_empty() {
                    true => RecordBatch::new_empty(right_schema.clone())
                        .columns()
                        .to_vec(),
                    false => {
                        let schema = batches[0].schema();
                        concat_batches(&schema, &batches)?.columns().to_vec()
                    }
                };
                memo.insert(
                    key.clone(),
                    RecordBatch::try_new(right_schema.clone(), columns)?,
                );
            }
            let matched = &memo[&key];
            let count = match (matched.num_rows(), outer_join) {
                (0, true) => {
                    right_parts.push(RecordBatch::try_new(
                        right_schema.clone(),
                        right_schema
                            .fields()
                            .iter()
                            .map(|f| new_null_array(f.data_type(), 1))
                            .collect(),
                    )?);
                    1
                }
                (n, _) => {
                    right_parts.push(matched.clone());
                    n
                }
            };
            left_rows.extend(std::iter::repeat_n(row as u32, count));
        }
        // The left columns taken for each output row, then the right ones.
        let indices = UInt32Array::from(left_rows);
        let mut columns: Vec<ArrayRef> = rows
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<std::result::Result<_, _>>()?;
        for (i, field) in right_schema.fields().iter().enumerate() {
            let pieces: Vec<&dyn datafusion::arrow::array::Array> =
                right_parts.iter().map(|b| b.column(i).as_ref()).collect();
            columns.push(match pieces.is_empty() {
                true => new_null_array(field.data_type(), 0),
                false => concat(&pieces)?,
            });
        }
        // Numbered, then given the join's names again.
        let fields: Vec<Field> = join
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), true))
            .collect();
        let scan = super::sub_plans::rows_scan(ROWS, fields, columns)?;
        let exprs = super::sub_plans::named_as(ROWS, &join.schema);
        Ok(LogicalPlan::Projection(Projection::try_new_with_schema(
            exprs,
            Arc::new(scan),
            join.schema.clone(),
        )?))
    }
}
