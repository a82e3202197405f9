//! Uncorrelated `IN (subquery)` and `EXISTS (subquery)` where DataFusion
//! cannot plan them (as values in a select list, under an OR): each
//! subquery runs once before the statement, as PostgreSQL's InitPlan
//! does, and its answer takes its place: `x IN (SELECT a FROM t)` becomes
//! `x IN (1, 2, NULL)`, `EXISTS (...)` becomes `true` or `false`.
//! DataFusion turns the ones it can plan into joins; those are left alone.

use std::collections::{HashMap, HashSet};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::expr::{Exists, InList, InSubquery};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{lit, Expr, LogicalPlan, Subquery};

use super::Session;
use crate::error::Result;

/// Whether planning failed on a subquery expression DataFusion did not
/// turn into a join, or on a lateral subquery's reference to its left
/// (also when DataFusion's rule for lateral joins failed on it).
pub(super) fn is_unplanned_subquery(e: &DataFusionError) -> bool {
    if is_failed_lateral_rule(e) {
        return true;
    }
    let message = e.find_root().to_string();
    message.contains("Physical plan does not support logical expression")
        && (message.contains("InSubquery")
            || message.contains("Exists")
            || message.contains("ScalarSubquery")
            || message.contains("OuterReferenceColumn"))
}

/// Whether DataFusion's optimizer rule for lateral joins failed (it does
/// on some it cannot turn into joins: a table function under an alias).
pub(super) fn is_failed_lateral_rule(e: &DataFusionError) -> bool {
    e.to_string().contains("'decorrelate_lateral_join' failed")
}

/// What a subquery answered: its distinct first-column values, or whether
/// it returned a row.
enum Answer {
    Values(Vec<ScalarValue>),
    Exists(bool),
}

impl Session {
    /// `plan` with every uncorrelated IN and EXISTS subquery replaced by
    /// its answer.
    pub(super) async fn run_init_plans(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let mut wanted: Vec<(Subquery, bool)> = Vec::new();
        plan.apply_with_subqueries(|node| {
            node.apply_expressions(|expr| {
                expr.apply(|e| {
                    match e {
                        Expr::InSubquery(InSubquery { subquery, .. }) if uncorrelated(subquery) => {
                            wanted.push((subquery.clone(), false));
                        }
                        Expr::Exists(Exists { subquery, .. }) if uncorrelated(subquery) => {
                            wanted.push((subquery.clone(), true));
                        }
                        _ => {}
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        let mut answers: HashMap<Subquery, Answer> = HashMap::new();
        for (subquery, exists) in wanted {
            if answers.contains_key(&subquery) {
                continue;
            }
            let plan = subquery.subquery.as_ref().clone();
            // Boxed: the subquery may have init plans of its own.
            let batches = Box::pin(self.collect_plan(plan)).await?;
            let answer = match exists {
                true => Answer::Exists(batches.iter().any(|b| b.num_rows() > 0)),
                false => Answer::Values(distinct_first_column(&batches)?),
            };
            answers.insert(subquery, answer);
        }
        // The replaced expressions keep their names (`exists`, not `true`):
        // the columns stay as named, and two of them stay apart.
        let replaced = plan.transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            let node = node.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten = expr.transform_up(|e| Ok(replace(e, &answers)))?;
                Ok(rewritten.update_data(|e| name.restore(e)))
            })?;
            node.map_data(|plan| plan.recompute_schema())
        })?;
        Ok(replaced.data)
    }
}

fn uncorrelated(subquery: &Subquery) -> bool {
    subquery.outer_ref_columns.is_empty() && !subquery.subquery.contains_outer_reference()
}

fn distinct_first_column(batches: &[RecordBatch]) -> Result<Vec<ScalarValue>> {
    let mut seen = HashSet::new();
    let mut values = Vec::new();
    for batch in batches {
        let column = batch.column(0);
        for row in 0..batch.num_rows() {
            let value = ScalarValue::try_from_array(column, row)?;
            if seen.insert(value.clone()) {
                values.push(value);
            }
        }
    }
    Ok(values)
}

fn replace(expr: Expr, answers: &HashMap<Subquery, Answer>) -> Transformed<Expr> {
    match expr {
        Expr::InSubquery(InSubquery {
            expr,
            subquery,
            negated,
        }) => match answers.get(&subquery) {
            // `x IN (empty)` is false and `x NOT IN (empty)` true, even
            // for a NULL x.
            Some(Answer::Values(values)) if values.is_empty() => Transformed::yes(lit(negated)),
            // IN over a list has the same NULL rules as over a subquery.
            Some(Answer::Values(values)) => Transformed::yes(Expr::InList(InList::new(
                expr,
                values.iter().cloned().map(lit).collect(),
                negated,
            ))),
            _ => Transformed::no(Expr::InSubquery(InSubquery {
                expr,
                subquery,
                negated,
            })),
        },
        Expr::Exists(Exists { subquery, negated }) => match answers.get(&subquery) {
            Some(Answer::Exists(found)) => Transformed::yes(lit(*found != negated)),
            _ => Transformed::no(Expr::Exists(Exists { subquery, negated })),
        },
        other => Transformed::no(other),
    }
}
