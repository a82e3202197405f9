//! An aggregate over a sorted subquery sees the rows in its order, as
//! PostgreSQL documents for `SELECT string_agg(x, ',') FROM (SELECT x
//! FROM t ORDER BY y) s` and as PostgREST's `json_agg` over an ordered
//! subquery relies on. DataFusion gives an aggregate no order it did not
//! ask for (its physical optimizer drops the sort), so each
//! order-sensitive aggregate without an `ORDER BY` of its own (array_agg,
//! string_agg, json_agg, first_value, ...) is given the subquery's.
//!
//! The order is followed up through aliases, projections, filters and
//! limits; a sort key the subquery does not select is carried up as a
//! hidden column of its projection.
//!
//! An order-sensitive `DISTINCT` aggregate without an order is ordered by
//! its argument: PostgreSQL removes duplicates by sorting, so
//! `array_agg(DISTINCT x)` comes out ascending.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, Limit, LogicalPlan, Projection, SortExpr, SubqueryAlias,
};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct OrderedInput;

impl AnalyzerRule for OrderedInput {
    fn name(&self) -> &str {
        "pg_ordered_input"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Aggregate(aggregate) if wants_order(&aggregate) => ordered(aggregate),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
    }
}

/// The aggregates whose result depends on the order of their rows (the
/// JSON ones are `array_agg` underneath). DataFusion's own flag says so of
/// every function that does not declare otherwise, `count` among them.
const ORDER_SENSITIVE: &[&str] = &[
    "array_agg",
    "string_agg",
    "first_value",
    "last_value",
    "nth_value",
];

/// An aggregate function that depends on the order of its rows and was
/// given none.
fn unordered_sensitive(expr: &Expr) -> Option<&AggregateFunction> {
    match expr {
        Expr::Alias(alias) => unordered_sensitive(&alias.expr),
        Expr::AggregateFunction(f)
            if f.params.order_by.is_empty()
                && !f.params.distinct
                && ORDER_SENSITIVE.contains(&f.func.name()) =>
        {
            Some(f)
        }
        _ => None,
    }
}

fn wants_order(aggregate: &Aggregate) -> bool {
    aggregate
        .aggr_expr
        .iter()
        .any(|e| unordered_sensitive(e).is_some() || distinct_unordered(e).is_some())
}

/// An order-sensitive `DISTINCT` aggregate without an order of its own:
/// PostgreSQL removes the duplicates by sorting, so its values come
/// sorted (`array_agg(DISTINCT x)` is ascending).
fn distinct_unordered(expr: &Expr) -> Option<&AggregateFunction> {
    match expr {
        Expr::Alias(alias) => distinct_unordered(&alias.expr),
        Expr::AggregateFunction(f)
            if f.params.order_by.is_empty()
                && f.params.distinct
                && matches!(f.func.name(), "array_agg" | "string_agg") =>
        {
            Some(f)
        }
        _ => None,
    }
}

fn ordered(aggregate: Aggregate) -> Result<Transformed<LogicalPlan>> {
    let names = NamePreserver::new_for_projection();
    let by_argument = |e: &Expr| {
        distinct_unordered(e).map(|f| {
            let name = names.save(e);
            let mut f = f.clone();
            f.params.order_by = vec![f.params.args[0].clone().sort(true, false)];
            name.restore(Expr::AggregateFunction(f))
        })
    };
    let found = order_of(aggregate.input.as_ref())?;
    let distinct = aggregate
        .aggr_expr
        .iter()
        .any(|e| distinct_unordered(e).is_some());
    if found.is_none() && !distinct {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let aggr_expr = aggregate
        .aggr_expr
        .iter()
        .map(|e| match (unordered_sensitive(e), &found) {
            (Some(f), Some((_, order))) => {
                let name = names.save(e);
                let mut f = f.clone();
                f.params.order_by = order.clone();
                name.restore(Expr::AggregateFunction(f))
            }
            _ => by_argument(e).unwrap_or_else(|| e.clone()),
        })
        .collect();
    let input = found.map_or(aggregate.input, |(input, _)| Arc::new(input));
    let aggregate = Aggregate::try_new(input, aggregate.group_expr, aggr_expr)?;
    Ok(Transformed::yes(LogicalPlan::Aggregate(aggregate)))
}

/// The order `plan`'s rows come in, over its output columns, with the
/// plan rewritten to output every column the order needs; None where no
/// sort below fixes one.
fn order_of(plan: &LogicalPlan) -> Result<Option<(LogicalPlan, Vec<SortExpr>)>> {
    Ok(match plan {
        LogicalPlan::Sort(sort) => Some((plan.clone(), sort.expr.clone())),
        LogicalPlan::Filter(filter) => order_of(&filter.input)?
            .map(|(input, order)| {
                Filter::try_new(filter.predicate.clone(), Arc::new(input))
                    .map(|f| (LogicalPlan::Filter(f), order))
            })
            .transpose()?,
        LogicalPlan::Limit(limit) => order_of(&limit.input)?.map(|(input, order)| {
            (
                LogicalPlan::Limit(Limit {
                    skip: limit.skip.clone(),
                    fetch: limit.fetch.clone(),
                    input: Arc::new(input),
                }),
                order,
            )
        }),
        LogicalPlan::SubqueryAlias(alias) => match order_of(&alias.input)? {
            Some((input, order)) => {
                let inner = input.schema().clone();
                let aliased = SubqueryAlias::try_new(Arc::new(input), alias.alias.clone())?;
                // A column of the input is the field at its place under
                // the alias.
                let outer = aliased.schema.clone();
                let order = order
                    .into_iter()
                    .map(|sort| {
                        sort.expr
                            .clone()
                            .transform(|e| match e {
                                Expr::Column(c) => {
                                    let i = inner.index_of_column(&c)?;
                                    Ok(Transformed::yes(Expr::Column(Column::from(
                                        outer.qualified_field(i),
                                    ))))
                                }
                                other => Ok(Transformed::no(other)),
                            })
                            .map(|t| sort.with_expr(t.data))
                    })
                    .collect::<Result<_>>()?;
                Some((LogicalPlan::SubqueryAlias(aliased), order))
            }
            None => None,
        },
        LogicalPlan::Projection(projection) => match order_of(&projection.input)? {
            Some((input, order)) => {
                let mut exprs = projection.expr.clone();
                let mut keys = Vec::with_capacity(order.len());
                for (k, sort) in order.into_iter().enumerate() {
                    let at = exprs
                        .iter()
                        .position(|e| e.clone().unalias() == sort.expr)
                        .unwrap_or_else(|| {
                            exprs.push(sort.expr.clone().alias(format!("__quiver_order_{k}")));
                            exprs.len() - 1
                        });
                    keys.push((at, sort));
                }
                let projection = Projection::try_new(exprs, Arc::new(input))?;
                let order = keys
                    .into_iter()
                    .map(|(at, sort)| {
                        sort.with_expr(Expr::Column(Column::from(
                            projection.schema.qualified_field(at),
                        )))
                    })
                    .collect();
                Some((LogicalPlan::Projection(projection), order))
            }
            None => None,
        },
        _ => None,
    })
}
