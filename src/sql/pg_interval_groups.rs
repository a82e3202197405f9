//! Intervals that PostgreSQL holds equal are one value wherever values are
//! told apart, not only in comparisons: `interval '1 day'` and `interval
//! '24 hours'` are one group of a `GROUP BY`, one row of a `DISTINCT`, one
//! value of a `count(DISTINCT ...)`, one partition of a window; `min` and
//! `max` pick by the whole span. Arrow tells intervals apart by their
//! months, days and time, one field after another, so each of these is
//! rewritten to go by [`interval_key`] (the span in nanoseconds) instead.
//!
//! A group keeps one of its values as PostgreSQL does (whichever comes
//! first), so `SELECT DISTINCT` over `1 day` and `24 hours` shows one of
//! the two.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::expr::WindowFunction;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::utils::grouping_set_to_exprlist;
use datafusion::logical_expr::{
    Accumulator, Aggregate, AggregateUDF, AggregateUDFImpl, Case, Distinct, DistinctOn, Expr,
    ExprSchemable, GroupingSet, LogicalPlan, Projection, Signature, Volatility, WindowFrameBound,
    WindowFrameUnits, WindowFunctionDefinition,
};

use super::pg_interval::{interval_key, span_nanos};

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

fn is_interval(expr: &Expr, schema: &DFSchema) -> bool {
    expr.get_type(schema).is_ok_and(|t| t == INTERVAL)
}

/// A `GROUP BY` of an interval groups by its span, and `SELECT DISTINCT`
/// over intervals (also `UNION`) is such a grouping. The aggregate groups
/// by the key and keeps the first value of each group; a projection above
/// it gives the columns their old names, so the nodes above do not change.
pub(crate) fn group_by_span(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let aggregate = match node {
        LogicalPlan::Aggregate(aggregate) => aggregate,
        LogicalPlan::Distinct(Distinct::All(input))
            if input
                .schema()
                .fields()
                .iter()
                .any(|f| f.data_type() == &INTERVAL) =>
        {
            let columns = input.schema().columns().into_iter().map(Expr::Column);
            Aggregate::try_new(input, columns.collect(), vec![])?
        }
        LogicalPlan::Distinct(Distinct::On(on)) => return Ok(distinct_on_span(on)),
        other => return Ok(Transformed::no(other)),
    };
    let input_schema = aggregate.input.schema().clone();
    // The grouping's distinct expressions, as the aggregate's first
    // fields are: which of them are intervals.
    let spans: Vec<bool> = grouping_set_to_exprlist(&aggregate.group_expr)?
        .into_iter()
        .map(|g| is_interval(g, &input_schema))
        .collect();
    if !spans.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Aggregate(aggregate)));
    }
    let by_span = |g: &Expr| match is_interval(g, &input_schema) {
        true => interval_key(g.clone()),
        false => g.clone(),
    };
    let sets = matches!(aggregate.group_expr.first(), Some(Expr::GroupingSet(_)));
    let group_expr = match aggregate.group_expr.first() {
        Some(Expr::GroupingSet(set)) => vec![Expr::GroupingSet(match set {
            GroupingSet::Rollup(exprs) => GroupingSet::Rollup(exprs.iter().map(by_span).collect()),
            GroupingSet::Cube(exprs) => GroupingSet::Cube(exprs.iter().map(by_span).collect()),
            GroupingSet::GroupingSets(sets) => GroupingSet::GroupingSets(
                sets.iter()
                    .map(|set| set.iter().map(by_span).collect())
                    .collect(),
            ),
        })],
        _ => aggregate.group_expr.iter().map(by_span).collect(),
    };
    let value_name = |i: usize| format!("__quiver_interval_{i}");
    let mut aggr_expr = aggregate.aggr_expr.clone();
    for (i, group) in grouping_set_to_exprlist(&aggregate.group_expr)?
        .into_iter()
        .enumerate()
    {
        if spans[i] {
            let first = datafusion::functions_aggregate::first_last::first_value_udaf();
            aggr_expr.push(first.call(vec![group.clone()]).alias(value_name(i)));
        }
    }
    let grouped = Aggregate::try_new(aggregate.input.clone(), group_expr, aggr_expr)?;
    // The old fields, in their places: a span shows its group's first
    // value, or NULL in a grouping set's rows that leave it out.
    let columns = aggregate
        .schema
        .iter()
        .zip(grouped.schema.iter())
        .enumerate()
        .map(|(i, ((qualifier, field), new))| {
            let value = Expr::Column(Column::new_unqualified(value_name(i)));
            match spans.get(i) {
                Some(true) if sets => Expr::Case(Case::new(
                    None,
                    vec![(
                        Box::new(Expr::Column(Column::from(new)).is_not_null()),
                        Box::new(value),
                    )],
                    None,
                ))
                .alias_qualified(qualifier.cloned(), field.name()),
                Some(true) => value.alias_qualified(qualifier.cloned(), field.name()),
                _ => Expr::Column(Column::from(new)),
            }
        })
        .collect();
    let projection = Projection::try_new(columns, Arc::new(LogicalPlan::Aggregate(grouped)))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// `DISTINCT ON (d)` over an interval keeps one row per span: its keys
/// become spans, and so do the leading `ORDER BY` expressions that must
/// match them (they only order rows within a group and the groups).
fn distinct_on_span(mut on: DistinctOn) -> Transformed<LogicalPlan> {
    let schema = on.input.schema().clone();
    let mut changed = false;
    for key in on.on_expr.iter_mut() {
        if is_interval(key, &schema) {
            *key = interval_key(key.clone());
            changed = true;
        }
    }
    if let Some(sorts) = on.sort_expr.as_mut() {
        for sort in sorts.iter_mut().take(on.on_expr.len()) {
            if is_interval(&sort.expr, &schema) {
                sort.expr = interval_key(sort.expr.clone());
            }
        }
    }
    let plan = LogicalPlan::Distinct(Distinct::On(on));
    match changed {
        true => Transformed::yes(plan),
        false => Transformed::no(plan),
    }
}

/// `min` and `max` of intervals pick by span, `count(DISTINCT)` counts
/// spans, and a window's partitions are spans (after type coercion).
pub(crate) fn span_aggregates(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    match expr {
        Expr::AggregateFunction(mut aggregate) if aggregate.params.args.len() == 1 => {
            let arg = &aggregate.params.args[0];
            if !is_interval(arg, schema) {
                return Ok(Transformed::no(Expr::AggregateFunction(aggregate)));
            }
            match aggregate.func.name() {
                "min" | "max" => {
                    aggregate.func = extreme(aggregate.func.name() == "max");
                    Ok(Transformed::yes(Expr::AggregateFunction(aggregate)))
                }
                "count" if aggregate.params.distinct => {
                    let arg = aggregate.params.args.remove(0);
                    aggregate.params.args.push(interval_key(arg));
                    Ok(Transformed::yes(Expr::AggregateFunction(aggregate)))
                }
                _ => Ok(Transformed::no(Expr::AggregateFunction(aggregate))),
            }
        }
        Expr::WindowFunction(mut window) => {
            let mut changed = false;
            if let WindowFunctionDefinition::AggregateUDF(func) = &window.fun {
                let name = func.name();
                if matches!(name, "min" | "max")
                    && window.params.args.len() == 1
                    && is_interval(&window.params.args[0], schema)
                {
                    window.fun = WindowFunctionDefinition::AggregateUDF(extreme(name == "max"));
                    changed = true;
                }
            }
            changed |= partition_by_span(&mut window, schema);
            Ok(match changed {
                true => Transformed::yes(Expr::WindowFunction(window)),
                false => Transformed::no(Expr::WindowFunction(window)),
            })
        }
        other => Ok(Transformed::no(other)),
    }
}

fn partition_by_span(window: &mut WindowFunction, schema: &DFSchema) -> bool {
    let mut changed = false;
    for partition in window.params.partition_by.iter_mut() {
        if is_interval(partition, schema) {
            *partition = interval_key(partition.clone());
            changed = true;
        }
    }
    changed
}

/// A window ordered by an interval, before type coercion: DataFusion's
/// coercion refuses a `RANGE` frame (the default one) over an interval
/// ordering, so the ordering becomes the span here. A frame with offsets
/// (`RANGE BETWEEN interval '1 hour' PRECEDING ...`) is left as written.
pub(crate) fn window_order_by_span(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::WindowFunction(mut window) = expr else {
        return Ok(Transformed::no(expr));
    };
    let offset = |bound: &WindowFrameBound| matches!(bound, WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) if !v.is_null());
    let frame = &window.params.window_frame;
    if frame.units != WindowFrameUnits::Range
        || offset(&frame.start_bound)
        || offset(&frame.end_bound)
        || !window
            .params
            .order_by
            .iter()
            .any(|s| is_interval(&s.expr, schema))
    {
        return Ok(Transformed::no(Expr::WindowFunction(window)));
    }
    for sort in window.params.order_by.iter_mut() {
        if is_interval(&sort.expr, schema) {
            sort.expr = interval_key(sort.expr.clone());
        }
    }
    Ok(Transformed::yes(Expr::WindowFunction(window)))
}

fn extreme(max: bool) -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::new_from_impl(IntervalExtreme {
        max,
        signature: Signature::exact(vec![INTERVAL], Volatility::Immutable),
    }))
}

/// `min` and `max` of intervals by their span.
#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalExtreme {
    max: bool,
    signature: Signature,
}

impl AggregateUDFImpl for IntervalExtreme {
    fn name(&self) -> &str {
        match self.max {
            true => "max",
            false => "min",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(INTERVAL)
    }

    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(Extreme {
            max: self.max,
            best: None,
        }))
    }

    /// A window frame that moves (`ROWS BETWEEN 1 PRECEDING AND CURRENT
    /// ROW`) takes rows out again: the frame's values are kept.
    fn create_sliding_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SlidingExtreme {
            max: self.max,
            frame: std::collections::BTreeMap::new(),
        }))
    }
}

/// The values of a moving window frame by span, each span's in the order
/// they came (rows leave a frame in the order they entered it).
#[derive(Debug)]
struct SlidingExtreme {
    max: bool,
    frame: std::collections::BTreeMap<i128, std::collections::VecDeque<IntervalMonthDayNano>>,
}

impl Accumulator for SlidingExtreme {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for value in values[0]
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .flatten()
        {
            self.frame
                .entry(span_nanos(value))
                .or_default()
                .push_back(value);
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        for value in values[0]
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .flatten()
        {
            let span = span_nanos(value);
            if let Some(same) = self.frame.get_mut(&span) {
                same.pop_front();
                if same.is_empty() {
                    self.frame.remove(&span);
                }
            }
        }
        Ok(())
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.update_batch(states)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    /// Of equal spans the latest, as [`Extreme`].
    fn evaluate(&mut self) -> Result<ScalarValue> {
        let extreme = match self.max {
            true => self.frame.values().next_back(),
            false => self.frame.values().next(),
        };
        Ok(ScalarValue::IntervalMonthDayNano(
            extreme.and_then(|same| same.back().copied()),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.frame.len() * 64
    }
}

#[derive(Debug)]
struct Extreme {
    max: bool,
    best: Option<(i128, IntervalMonthDayNano)>,
}

impl Extreme {
    fn offer(&mut self, values: &ArrayRef) {
        for value in values
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .flatten()
        {
            let span = span_nanos(value);
            let better = match self.best {
                None => true,
                // Of equal spans the later, as interval_larger and
                // interval_smaller keep.
                Some((best, _)) if self.max => span >= best,
                Some((best, _)) => span <= best,
            };
            if better {
                self.best = Some((span, value));
            }
        }
    }

    fn value(&self) -> ScalarValue {
        ScalarValue::IntervalMonthDayNano(self.best.map(|(_, value)| value))
    }
}

impl Accumulator for Extreme {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        self.offer(&values[0]);
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        self.offer(&states[0]);
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.value()])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(self.value())
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::IntervalMonthDayNanoArray;

    #[test]
    fn min_and_max_go_by_the_whole_span() {
        const HOUR: i64 = 3_600_000_000_000;
        let values: ArrayRef = Arc::new(IntervalMonthDayNanoArray::from(vec![
            Some(IntervalMonthDayNano::new(0, 1, HOUR)),
            None,
            Some(IntervalMonthDayNano::new(0, 0, 26 * HOUR)),
            Some(IntervalMonthDayNano::new(0, 0, 24 * HOUR)),
        ]));
        let mut max = Extreme {
            max: true,
            best: None,
        };
        max.update_batch(std::slice::from_ref(&values)).unwrap();
        assert_eq!(
            max.evaluate().unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 0, 26 * HOUR)))
        );
        let mut min = Extreme {
            max: false,
            best: None,
        };
        min.update_batch(&[values]).unwrap();
        assert_eq!(
            min.evaluate().unwrap(),
            ScalarValue::IntervalMonthDayNano(Some(IntervalMonthDayNano::new(0, 0, 24 * HOUR)))
        );
        let mut none = Extreme {
            max: true,
            best: None,
        };
        assert_eq!(
            none.evaluate().unwrap(),
            ScalarValue::IntervalMonthDayNano(None)
        );
    }
}
