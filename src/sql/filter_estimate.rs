//! The share of a table's rows a filter keeps, measured on a sample.
//!
//! DataFusion estimates a filter from column bounds only when every part
//! of it is a comparison of a column with a constant; for anything else
//! (`l_commitdate < l_receiptdate`, a LIKE, an OR of string equalities)
//! it assumes 20% of the rows. Q12's 0.5% of lineitem was taken for 20%,
//! and the hash join built its table from the 1.5M orders instead of the
//! 31K lineitems. This physical rule, run before DataFusion's
//! `JoinSelection` picks build sides, evaluates each filter over one of
//! our scans on a few thousand of the scan's rows and gives the filter
//! that share as its estimate (DataFusion still prefers its own analysis
//! where it has one). Tested with the session's planning, in
//! `session::execution`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::datasource::source::{DataSource, DataSourceExec};
use datafusion::logical_expr::Volatility;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr,
    Literal, NegativeExpr, NotExpr, TryCastExpr,
};
use datafusion::physical_expr::{conjunction, split_conjunction, PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::ExecutionPlan;

use crate::engine::scan::TableScan;

/// Rows a filter is tried on.
const SAMPLE_ROWS: usize = 4096;
/// Scans smaller than this are left to DataFusion's guess: their joins
/// cost little whichever side builds.
const MIN_ROWS: usize = 10_000;

#[derive(Debug, Default)]
pub struct SampledSelectivity;

impl PhysicalOptimizerRule for SampledSelectivity {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(measured) = measure(filter) else {
                return Ok(Transformed::no(node));
            };
            if measured.percent == filter.default_selectivity() && measured.reordered.is_none() {
                return Ok(Transformed::no(node));
            }
            let mut rebuilt =
                FilterExecBuilder::from(filter).with_default_selectivity(measured.percent);
            if let Some(predicate) = measured.reordered {
                rebuilt = rebuilt.with_predicate(predicate);
            }
            Ok(Transformed::yes(Arc::new(rebuilt.build()?)))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "quiver_sampled_selectivity"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// What the sample says about a filter.
struct Measured {
    /// The percentage (1 to 100) of sampled rows that pass.
    percent: u8,
    /// The predicate with its conjuncts in a cheaper order, if one is.
    reordered: Option<Arc<dyn PhysicalExpr>>,
}

/// Measures `filter` on a sample of its input, when that is one of our
/// scans and its predicate is safe to try.
fn measure(filter: &FilterExec) -> Option<Measured> {
    let source = filter.input().downcast_ref::<DataSourceExec>()?;
    let scan = source.data_source().downcast_ref::<TableScan>()?;
    if scan.fetch().is_some() || !safe_to_try(filter.predicate()) {
        return None;
    }
    if scan.rows() < MIN_ROWS {
        return None;
    }
    let sample = scan.sample(SAMPLE_ROWS).ok()??;
    let conjuncts: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(filter.predicate())
        .into_iter()
        .cloned()
        .collect();
    // Each conjunct's passing rows (NULL does not pass).
    let masks = conjuncts
        .iter()
        .map(|c| {
            let value = c
                .evaluate(&sample)
                .ok()?
                .into_array(sample.num_rows())
                .ok()?;
            let mask = value.as_boolean_opt()?;
            Some(match mask.nulls() {
                Some(nulls) => mask.values() & nulls.inner(),
                None => mask.values().clone(),
            })
        })
        .collect::<Option<Vec<BooleanBuffer>>>()?;
    let passed = masks
        .iter()
        .fold(BooleanBuffer::new_set(sample.num_rows()), |all, m| &all & m);
    let share = passed.count_set_bits() as f64 / sample.num_rows() as f64;
    let reordered = if conjuncts.len() > 1 && conjuncts.iter().all(cannot_fail) {
        let schema = sample.schema();
        let costs: Vec<f64> = conjuncts.iter().map(|c| cost(c, &schema)).collect();
        let order = cheapest_order(&masks, &costs, sample.num_rows());
        (!order.iter().copied().eq(0..conjuncts.len()))
            .then(|| conjunction(order.iter().map(|&i| conjuncts[i].clone())))
    } else {
        None
    };
    Some(Measured {
        // None of the sample: somewhere below 1%, still more than nothing.
        percent: (share * 100.0).ceil().clamp(1.0, 100.0) as u8,
        reordered,
    })
}

/// The order to evaluate conjuncts in: DataFusion evaluates `a AND b`'s
/// right side only on the rows its left side keeps once that is at most a
/// fifth of them, so the conjuncts that remove the most rows for their
/// cost go first. Greedy: each step takes the conjunct with the lowest
/// cost per share of the remaining sample rows it removes (the classic
/// rank of predicate ordering, with the shares measured together, so that
/// two halves of one date range count as the range they make). Ties keep
/// the query's order.
fn cheapest_order(masks: &[BooleanBuffer], costs: &[f64], rows: usize) -> Vec<usize> {
    let mut alive = BooleanBuffer::new_set(rows);
    let mut left: Vec<usize> = (0..masks.len()).collect();
    let mut order = Vec::with_capacity(masks.len());
    while !left.is_empty() {
        let alive_rows = alive.count_set_bits();
        if alive_rows == 0 {
            order.append(&mut left);
            break;
        }
        let rank = |i: usize| {
            let kept = (&alive & &masks[i]).count_set_bits() as f64 / alive_rows as f64;
            costs[i] / (1.0 - kept).max(0.01)
        };
        let best = (0..left.len())
            .min_by(|&a, &b| rank(left[a]).total_cmp(&rank(left[b])))
            .expect("some left");
        let chosen = left.remove(best);
        alive = &alive & &masks[chosen];
        order.push(chosen);
    }
    order
}

/// What evaluating a conjunct costs per row, in comparisons of two
/// numbers: one per comparison, IN list, LIKE or null test in it, four
/// where it compares strings. (`a = 1 OR a = 2 OR a = 3` costs 3;
/// `l_shipmode IN ('MAIL', 'SHIP')`, one hash lookup of a string, 4.)
fn cost(conjunct: &Arc<dyn PhysicalExpr>, schema: &Schema) -> f64 {
    let text = |e: &Arc<dyn PhysicalExpr>| {
        e.data_type(schema).is_ok_and(|t| {
            matches!(
                t,
                DataType::Utf8
                    | DataType::LargeUtf8
                    | DataType::Utf8View
                    | DataType::Binary
                    | DataType::BinaryView
                    | DataType::Dictionary(..)
            )
        })
    };
    let mut total = 0.0;
    let _ = conjunct.apply(|e| {
        let operand = if let Some(b) = e.downcast_ref::<BinaryExpr>() {
            (!b.op().is_logic_operator()).then(|| b.left().clone())
        } else if let Some(list) = e.downcast_ref::<InListExpr>() {
            Some(list.expr().clone())
        } else if let Some(like) = e.downcast_ref::<LikeExpr>() {
            Some(like.expr().clone())
        } else if let Some(null) = e.downcast_ref::<IsNullExpr>() {
            Some(null.arg().clone())
        } else {
            e.downcast_ref::<IsNotNullExpr>().map(|n| n.arg().clone())
        };
        if let Some(operand) = operand {
            total += if text(&operand) { 4.0 } else { 1.0 };
        }
        Ok(TreeNodeRecursion::Continue)
    });
    f64::max(total, 1.0)
}

/// Whether a conjunct can never raise an error, so that evaluating it
/// before or after the others changes only the time taken: comparisons,
/// AND/OR/NOT, IN lists, LIKE and null tests of columns and constants.
/// (Arithmetic, casts and functions may fail on a row another conjunct
/// would have removed first.)
fn cannot_fail(conjunct: &Arc<dyn PhysicalExpr>) -> bool {
    every_node(conjunct, |e| {
        tests_plainly(e)
            || e.downcast_ref::<BinaryExpr>().is_some_and(|b| {
                use datafusion::logical_expr::Operator::*;
                matches!(
                    b.op(),
                    Eq | NotEq
                        | Lt
                        | LtEq
                        | Gt
                        | GtEq
                        | IsDistinctFrom
                        | IsNotDistinctFrom
                        | And
                        | Or
                        | LikeMatch
                        | NotLikeMatch
                        | ILikeMatch
                        | NotILikeMatch
                )
            })
    })
}

/// Columns, constants, IN lists, LIKE, NOT and null tests.
fn tests_plainly(e: &Arc<dyn PhysicalExpr>) -> bool {
    e.downcast_ref::<Column>().is_some()
        || e.downcast_ref::<Literal>().is_some()
        || e.downcast_ref::<InListExpr>().is_some()
        || e.downcast_ref::<LikeExpr>().is_some()
        || e.downcast_ref::<NotExpr>().is_some()
        || e.downcast_ref::<IsNullExpr>().is_some()
        || e.downcast_ref::<IsNotNullExpr>().is_some()
}

/// Whether `ok` holds for every node of `expr`.
fn every_node(expr: &Arc<dyn PhysicalExpr>, ok: impl Fn(&Arc<dyn PhysicalExpr>) -> bool) -> bool {
    let mut all = true;
    let _ = expr.apply(|e| {
        all &= ok(e);
        Ok(if all {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    all
}

/// Whether evaluating `predicate` on rows the query may never read is
/// harmless: plain comparisons, casts and functions without side effects
/// (no `nextval`, no `random`).
fn safe_to_try(predicate: &Arc<dyn PhysicalExpr>) -> bool {
    every_node(predicate, |e| {
        tests_plainly(e)
            || e.downcast_ref::<BinaryExpr>().is_some()
            || e.downcast_ref::<CastExpr>().is_some()
            || e.downcast_ref::<TryCastExpr>().is_some()
            || e.downcast_ref::<NegativeExpr>().is_some()
            || e.downcast_ref::<CaseExpr>().is_some()
            || e.downcast_ref::<ScalarFunctionExpr>()
                .is_some_and(|f| f.fun().signature().volatility == Volatility::Immutable)
    })
}
