//! `INTERSECT ALL` and `EXCEPT ALL` count duplicates, as SQL and
//! PostgreSQL define them: a row that appears `m` times on the left and
//! `n` times on the right appears `min(m, n)` times in the intersection
//! and `max(m - n, 0)` times in the difference. DataFusion plans both as a
//! semi (anti) join on all columns, which keeps every left copy of a row
//! found on the right (removes every one): `{1,1} INTERSECT ALL {1}` gave
//! two rows, `{1,1} EXCEPT ALL {1}` none.
//!
//! Each side's copies of a row are numbered (`row_number() OVER
//! (PARTITION BY every column)`) and the number joins with the columns:
//! the k-th left copy pairs with the k-th right copy only.
//!
//! At analysis a semi or anti join whose keys match NULLs can only come
//! from these set operations (subqueries become joins later, in the
//! optimizer); the distinct forms join a `DISTINCT` left side, where
//! counting changes nothing, and are left as they are.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, NullEquality, Result};
use datafusion::logical_expr::{
    Distinct, Expr, ExprFunctionExt, Join, JoinType, LogicalPlan, LogicalPlanBuilder, Projection,
};
use datafusion::optimizer::AnalyzerRule;

const COPY: &str = "__quiver_copy";

#[derive(Debug, Default)]
pub struct CountedSetOperations;

impl AnalyzerRule for CountedSetOperations {
    fn name(&self) -> &str {
        "pg_counted_set_operations"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Join(join) if counts_copies(&join) => counted(join),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// `INTERSECT ALL` / `EXCEPT ALL` as DataFusion plans them.
fn counts_copies(join: &Join) -> bool {
    matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
        && join.null_equality == NullEquality::NullEqualsNull
        && join.filter.is_none()
        && !matches!(join.left.as_ref(), LogicalPlan::Distinct(Distinct::All(_)))
        && !join.on.is_empty()
        // Not a second time (a plan analyzed again).
        && !join
            .on
            .iter()
            .any(|(l, _)| matches!(l, Expr::Column(c) if c.name == COPY))
}

/// The side with each copy of a row numbered, 1, 2, ... among its equals.
fn numbered(side: &Arc<LogicalPlan>) -> Result<LogicalPlan> {
    let columns: Vec<Expr> = side
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let copy = datafusion::functions_window::expr_fn::row_number()
        .partition_by(columns)
        .build()?
        .alias(COPY);
    LogicalPlanBuilder::from(side.as_ref().clone())
        .window(vec![copy])?
        .build()
}

fn counted(join: Join) -> Result<Transformed<LogicalPlan>> {
    let left_columns = join.left.schema().columns();
    let mut on = join.on.clone();
    on.push((
        Expr::Column(Column::new_unqualified(COPY)),
        Expr::Column(Column::new_unqualified(COPY)),
    ));
    let joined = Join::try_new(
        Arc::new(numbered(&join.left)?),
        Arc::new(numbered(&join.right)?),
        on,
        None,
        join.join_type,
        join.join_constraint,
        join.null_equality,
        join.null_aware,
    )?;
    // The left side's own columns, without the copy numbers.
    let projection = Projection::try_new(
        left_columns.into_iter().map(Expr::Column).collect(),
        Arc::new(LogicalPlan::Join(joined)),
    )?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}
