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

use datafusion::arrow::array::AsArray;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::Result;
use datafusion::datasource::source::{DataSource, DataSourceExec};
use datafusion::logical_expr::Volatility;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr,
    Literal, NegativeExpr, NotExpr, TryCastExpr,
};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
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
            match sampled_percent(filter) {
                Some(percent) if percent != filter.default_selectivity() => Ok(Transformed::yes(
                    Arc::new(filter.clone().with_default_selectivity(percent)?),
                )),
                _ => Ok(Transformed::no(node)),
            }
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

/// The percentage (1 to 100) of sampled rows that pass `filter`, when its
/// input is one of our scans and its predicate is safe to try.
fn sampled_percent(filter: &FilterExec) -> Option<u8> {
    let source = filter.input().downcast_ref::<DataSourceExec>()?;
    let scan = source.data_source().downcast_ref::<TableScan>()?;
    if scan.fetch().is_some() || !safe_to_try(filter.predicate()) {
        return None;
    }
    let rows = scan
        .partition_statistics(None)
        .ok()?
        .num_rows
        .get_value()
        .copied()?;
    if rows < MIN_ROWS {
        return None;
    }
    let sample = scan.sample(SAMPLE_ROWS).ok()??;
    let passed = filter
        .predicate()
        .evaluate(&sample)
        .ok()?
        .into_array(sample.num_rows())
        .ok()?;
    let passed = passed.as_boolean_opt()?;
    let share = passed.true_count() as f64 / sample.num_rows() as f64;
    // None of the sample: somewhere below 1%, still more than nothing.
    Some((share * 100.0).ceil().clamp(1.0, 100.0) as u8)
}

/// Whether evaluating `predicate` on rows the query may never read is
/// harmless: plain comparisons, casts and functions without side effects
/// (no `nextval`, no `random`).
fn safe_to_try(predicate: &Arc<dyn PhysicalExpr>) -> bool {
    let mut safe = true;
    let _ = predicate.apply(|e| {
        let plain = e.downcast_ref::<Column>().is_some()
            || e.downcast_ref::<Literal>().is_some()
            || e.downcast_ref::<BinaryExpr>().is_some()
            || e.downcast_ref::<InListExpr>().is_some()
            || e.downcast_ref::<LikeExpr>().is_some()
            || e.downcast_ref::<NotExpr>().is_some()
            || e.downcast_ref::<IsNullExpr>().is_some()
            || e.downcast_ref::<IsNotNullExpr>().is_some()
            || e.downcast_ref::<CastExpr>().is_some()
            || e.downcast_ref::<TryCastExpr>().is_some()
            || e.downcast_ref::<NegativeExpr>().is_some()
            || e.downcast_ref::<CaseExpr>().is_some()
            || e.downcast_ref::<ScalarFunctionExpr>()
                .is_some_and(|f| f.fun().signature().volatility == Volatility::Immutable);
        safe &= plain;
        Ok(if plain {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    safe
}
