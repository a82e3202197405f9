//! Correlated subqueries that DataFusion cannot turn into joins (a
//! correlation that is not an equality: `(SELECT count(*) FROM t AS x
//! WHERE x.b < t.b)`, an `EXISTS` or `IN` used as a value) run as
//! PostgreSQL's SubPlan does: once per row of the query around them, with
//! that row's values in place of the outer references. The rows of the
//! node that holds the subquery are computed first, each subquery's
//! answer becomes a column beside them, and the node reads that column.
//! Rows with the same outer values share one run. Slow for many rows, as
//! a nested loop is, but correct; cancel and statement_timeout stop it
//! between and during runs.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::MemTable;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::expr::{Exists, InSubquery};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Expr, Filter, LogicalPlan, LogicalPlanBuilder, Projection, Subquery,
};

use super::Session;
use crate::error::{QuiverError, Result};

/// The table the computed rows are read from.
const ROWS: &str = "__subplan_rows";

/// Whether a subquery reads outer columns, also from a subquery inside it.
fn correlated(subquery: &Subquery) -> bool {
    !subquery.outer_ref_columns.is_empty() || any_outer_reference(&subquery.subquery, |_| true)
}

/// A correlated subquery expression of one node.
fn is_correlated_subquery(expr: &Expr) -> bool {
    match expr {
        Expr::ScalarSubquery(s) => correlated(s),
        Expr::Exists(Exists { subquery, .. }) => correlated(subquery),
        Expr::InSubquery(InSubquery { subquery, .. }) => correlated(subquery),
        _ => false,
    }
}

/// Rows computed here as a scan of the table `name`.
pub(super) fn rows_scan(
    name: &str,
    fields: Vec<Field>,
    columns: Vec<ArrayRef>,
) -> Result<LogicalPlan> {
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    let table = MemTable::try_new(schema, vec![vec![batch]])?;
    Ok(LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?)
}

/// The columns `c0`, `c1`, ... of the table `name` under the names (and
/// qualifiers) of `schema`'s columns: the table's columns are numbered
/// because those names may repeat under different qualifiers.
pub(super) fn named_as(name: &str, schema: &DFSchema) -> Vec<Expr> {
    schema
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect()
}

/// `plan` with `target`, one of its nodes, replaced.
fn replaced(
    plan: LogicalPlan,
    target: &LogicalPlan,
    replacement: LogicalPlan,
) -> datafusion::error::Result<LogicalPlan> {
    let mut done = false;
    let rewritten = plan.transform_up(|node| {
        if !done && node == *target {
            done = true;
            return Ok(Transformed::yes(replacement.clone()));
        }
        Ok(Transformed::no(node))
    })?;
    Ok(rewritten.data)
}

/// A join whose right side reads the left side's columns (`LEFT JOIN
/// LATERAL (SELECT ... WHERE b.x = a.x ORDER BY ... LIMIT 1) ON true`)
/// and that DataFusion could not turn into a plain join.
fn is_lateral_join(node: &LogicalPlan) -> bool {
    let LogicalPlan::Join(join) = node else {
        return false;
    };
    let left = join.left.schema();
    any_outer_reference(&join.right, |column| left.has_column(column))
}

/// Whether `plan` (with its subqueries) has an outer reference to a
/// column `wanted` accepts.
fn any_outer_reference(plan: &LogicalPlan, wanted: impl Fn(&Column) -> bool) -> bool {
    let mut found = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|e| {
            e.apply(|e| {
                if let Expr::OuterReferenceColumn(_, column) = e {
                    found |= wanted(column);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(match found {
            true => TreeNodeRecursion::Stop,
            false => TreeNodeRecursion::Continue,
        })
    });
    found
}

/// `plan` with the outer references to `values`' columns replaced by the
/// values (cast to the reference's type), and the subquery wrappers that
/// held them unwrapped. Columns keep their names (a projection of
/// `f(outer.x)` is named after the reference, and the nodes above read it
/// by that name).
pub(super) fn bound(
    plan: LogicalPlan,
    values: &HashMap<&Column, &ScalarValue>,
) -> datafusion::error::Result<LogicalPlan> {
    let bound = plan
        .transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let bound = e.transform_up(|e| match e {
                    Expr::OuterReferenceColumn(field, column) if values.contains_key(&column) => {
                        let value = values[&column].clone();
                        let value = match value.data_type() == *field.data_type() {
                            true => value,
                            false => value.cast_to(field.data_type())?,
                        };
                        Ok(Transformed::yes(Expr::Literal(value, None)))
                    }
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(bound.update_data(|e| saved.restore(e)))
            })
        })?
        .data;
    // A lateral subquery whose references are all bound now is a plain
    // derived table. (Not those in expressions, which stay subqueries.)
    Ok(bound
        .transform_up(|node| match node {
            LogicalPlan::Subquery(s) if !any_outer_reference(&s.subquery, |_| true) => {
                Ok(Transformed::yes(Arc::unwrap_or_clone(s.subquery)))
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// The correlated subquery expressions of a node's own expressions.
fn subqueries_of(node: &LogicalPlan) -> Vec<Expr> {
    let mut found = Vec::new();
    let _ = node.apply_expressions(|expr| {
        expr.apply(|e| {
            if is_correlated_subquery(e) {
                if !found.contains(e) {
                    found.push(e.clone());
                }
                return Ok(TreeNodeRecursion::Jump);
            }
            Ok(TreeNodeRecursion::Continue)
        })
    });
    found
}

impl Session {
    /// `plan` (optimized) with the lowest Projection or Filter that holds
    /// a correlated subquery DataFusion left in place computed row by row;
    /// None when there is none.
    pub(super) async fn run_one_sub_plan(&self, plan: LogicalPlan) -> Result<Option<LogicalPlan>> {
        // The lowest such node: the first one met going up.
        let mut target: Option<LogicalPlan> = None;
        plan.apply(|node| {
            if matches!(node, LogicalPlan::Projection(_) | LogicalPlan::Filter(_))
                && !subqueries_of(node).is_empty()
            {
                target = Some(node.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        // apply visits top-down: keep the last match whose input holds no
        // other one (the lowest).
        let Some(target) = target else {
            return Ok(None);
        };
        let replacement = self.computed(&target).await?;
        Ok(Some(replaced(plan, &target, replacement)?))
    }

    /// `plan` (analyzed, not optimized: the optimizer drops the left
    /// columns only a lateral subquery reads) with its lowest lateral join
    /// computed row by row; None when it has none.
    pub(super) async fn run_one_lateral_join(
        &self,
        plan: LogicalPlan,
    ) -> Result<Option<LogicalPlan>> {
        let mut target: Option<LogicalPlan> = None;
        plan.apply(|node| {
            if is_lateral_join(node) {
                target = Some(node.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let Some(LogicalPlan::Join(join)) = &target else {
            return Ok(None);
        };
        let replacement = self.lateral_joined(join).await?;
        Ok(Some(replaced(
            plan,
            target.as_ref().expect("a join"),
            replacement,
        )?))
    }

    /// `node` reading its input's rows with each correlated subquery's
    /// answer beside them.
    async fn computed(&self, node: &LogicalPlan) -> Result<LogicalPlan> {
        let input = node.inputs()[0].clone();
        let input_schema = input.schema().clone();
        let batches = Box::pin(self.collect_analyzed(input.clone())).await?;
        let arrow_schema = Arc::new(input_schema.as_arrow().clone());
        let rows = concat_batches(&arrow_schema, &batches)?;
        let subqueries = subqueries_of(node);
        let mut answers: Vec<ArrayRef> = Vec::new();
        for expr in &subqueries {
            answers.push(self.answer_per_row(expr, &rows, &input_schema).await?);
        }
        // The rows and the answers as a table: c0.. for the input's
        // columns (whose names may repeat under different qualifiers),
        // s0.. for the answers.
        let mut fields: Vec<Field> = arrow_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| f.as_ref().clone().with_name(format!("c{i}")))
            .collect();
        let mut columns = rows.columns().to_vec();
        for (k, answer) in answers.iter().enumerate() {
            fields.push(Field::new(
                format!("s{k}"),
                answer.data_type().clone(),
                true,
            ));
            columns.push(answer.clone());
        }
        let scan = rows_scan(ROWS, fields, columns)?;
        // The input's columns under their own names again, and the answers.
        let mut exprs = named_as(ROWS, &input_schema);
        let answer_names: Vec<String> = (0..subqueries.len())
            .map(|k| format!("__subplan_{k}"))
            .collect();
        for (k, name) in answer_names.iter().enumerate() {
            exprs.push(Expr::Column(Column::new(Some(ROWS), format!("s{k}"))).alias(name));
        }
        let rows_plan = Arc::new(LogicalPlan::Projection(Projection::try_new(
            exprs,
            Arc::new(scan),
        )?));
        let answered = |expr: Expr| -> datafusion::error::Result<Transformed<Expr>> {
            let names = answer_names.clone();
            let subqueries = subqueries.clone();
            expr.transform_up(move |e| match subqueries.iter().position(|s| *s == e) {
                Some(k) => Ok(Transformed::yes(Expr::Column(Column::from_name(&names[k])))),
                None => Ok(Transformed::no(e)),
            })
        };
        Ok(match node {
            LogicalPlan::Projection(projection) => {
                let names = NamePreserver::new(node);
                let exprs = projection
                    .expr
                    .iter()
                    .map(|e| {
                        let name = names.save(e);
                        Ok(answered(e.clone())?.update_data(|e| name.restore(e)).data)
                    })
                    .collect::<datafusion::error::Result<Vec<_>>>()?;
                LogicalPlan::Projection(Projection::try_new_with_schema(
                    exprs,
                    rows_plan,
                    projection.schema.clone(),
                )?)
            }
            LogicalPlan::Filter(filter) => {
                let predicate = answered(filter.predicate.clone())?.data;
                let filtered = LogicalPlan::Filter(Filter::try_new(predicate, rows_plan)?);
                // Only the input's columns go on, as from the filter.
                let exprs = input_schema
                    .iter()
                    .map(|(qualifier, field)| {
                        Expr::Column(Column::new(qualifier.cloned(), field.name()))
                    })
                    .collect();
                LogicalPlan::Projection(Projection::try_new_with_schema(
                    exprs,
                    Arc::new(filtered),
                    input_schema.clone(),
                )?)
            }
            _ => unreachable!("only projections and filters are chosen"),
        })
    }

    /// The answers of one correlated subquery expression for every row.
    async fn answer_per_row(
        &self,
        expr: &Expr,
        rows: &RecordBatch,
        schema: &DFSchema,
    ) -> Result<ArrayRef> {
        let (subquery, probe, negated) = match expr {
            Expr::ScalarSubquery(s) => (s, None, false),
            Expr::Exists(Exists { subquery, negated }) => (subquery, None, *negated),
            Expr::InSubquery(InSubquery {
                expr,
                subquery,
                negated,
            }) => (subquery, Some(expr.as_ref()), *negated),
            _ => unreachable!("a subquery expression"),
        };
        // The outer columns the subquery reads from these rows, by their
        // place in them (a subquery inside it may also read the
        // subquery's own columns: those stay).
        let mut outer: Vec<(Column, usize)> = Vec::new();
        subquery.subquery.apply_with_subqueries(|node| {
            node.apply_expressions(|e| {
                e.apply(|e| {
                    if let Expr::OuterReferenceColumn(_, column) = e {
                        if !outer.iter().any(|(c, _)| c == column) {
                            if let Ok(at) = schema.index_of_column(column) {
                                outer.push((column.clone(), at));
                            }
                        }
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
            })
        })?;
        let probe = match probe {
            Some(probe) => {
                let physical = self.ctx.create_physical_expr(probe.clone(), schema)?;
                Some(physical.evaluate(rows)?.into_array(rows.num_rows())?)
            }
            None => None,
        };
        let output_type = subquery.subquery.schema().field(0).data_type().clone();
        let mut memo: HashMap<Vec<ScalarValue>, ScalarValue> = HashMap::new();
        let mut answers = Vec::with_capacity(rows.num_rows());
        for row in 0..rows.num_rows() {
            let mut key = outer
                .iter()
                .map(|(_, at)| ScalarValue::try_from_array(rows.column(*at), row))
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let probe_value = match &probe {
                Some(p) => Some(ScalarValue::try_from_array(p, row)?),
                None => None,
            };
            key.extend(probe_value.clone());
            if let Some(answer) = memo.get(&key) {
                answers.push(answer.clone());
                continue;
            }
            let values: HashMap<&Column, &ScalarValue> = outer
                .iter()
                .zip(&key)
                .map(|((column, _), value)| (column, value))
                .collect();
            let bound = bound(subquery.subquery.as_ref().clone(), &values)?;
            let batches = Box::pin(self.collect_analyzed(bound)).await?;
            let answer = match expr {
                Expr::ScalarSubquery(_) => {
                    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
                    match total {
                        0 => ScalarValue::try_from(&output_type)?,
                        1 => {
                            let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
                            ScalarValue::try_from_array(batch.column(0), 0)?
                        }
                        _ => {
                            return Err(QuiverError::CardinalityViolation(
                                "more than one row returned by a subquery used as an expression"
                                    .into(),
                            ))
                        }
                    }
                }
                Expr::Exists(_) => {
                    ScalarValue::Boolean(Some(batches.iter().any(|b| b.num_rows() > 0) != negated))
                }
                _ => {
                    // x IN (values): true if one equals x, else NULL if x or
                    // a value is NULL (and there are values), else false.
                    let x = probe_value.expect("IN has a probe");
                    let mut any = false;
                    let mut found = false;
                    let mut null = false;
                    for batch in &batches {
                        for r in 0..batch.num_rows() {
                            any = true;
                            let v = ScalarValue::try_from_array(batch.column(0), r)?;
                            if v.is_null() {
                                null = true;
                            } else if !x.is_null() && v == x {
                                found = true;
                            }
                        }
                    }
                    let result = match (any, found, null || x.is_null()) {
                        (false, _, _) => Some(false),
                        (true, true, _) => Some(true),
                        (true, false, true) => None,
                        (true, false, false) => Some(false),
                    };
                    ScalarValue::Boolean(result.map(|r| r != negated))
                }
            };
            memo.insert(key, answer.clone());
            answers.push(answer);
        }
        let data_type = match expr {
            Expr::ScalarSubquery(_) => output_type,
            _ => datafusion::arrow::datatypes::DataType::Boolean,
        };
        if answers.is_empty() {
            return Ok(datafusion::arrow::array::new_empty_array(&data_type));
        }
        Ok(ScalarValue::iter_to_array(answers)?)
    }
}
