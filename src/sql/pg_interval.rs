//! `interval * number` and `interval / number`, which DataFusion's SQL
//! planner refuses, planned by an [`ExprPlanner`] and computed as
//! PostgreSQL's interval_mul and interval_div do: a fraction of a month
//! carries into days (30 to a month), a fraction of a day into time (86400
//! seconds to a day), time rounds to the microsecond.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{DataType, Float64Type, IntervalMonthDayNano, IntervalUnit};
use datafusion::common::DFSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    Cast, ColumnarValue, Expr, ExprSchemable, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use crate::error::QuiverError;

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);

/// Plans `interval * n`, `n * interval` and `interval / n` as calls of
/// the functions below, where DataFusion's planner would refuse them.
#[derive(Debug, Default)]
pub(crate) struct IntervalArithmetic;

impl ExprPlanner for IntervalArithmetic {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let number = |e: &Expr| {
            e.get_type(schema).is_ok_and(|t| {
                t.is_integer() || t.is_floating() || matches!(t, DataType::Decimal128(..))
            })
        };
        let interval = |e: &Expr| e.get_type(schema).is_ok_and(|t| t == INTERVAL);
        let date = |e: &Expr| e.get_type(schema).is_ok_and(|t| t == DataType::Date32);
        let RawBinaryExpr { op, left, right } = &expr;
        // `date + interval` is a timestamp in PostgreSQL (DataFusion keeps
        // a date, dropping the time of `date + interval '1 hour'`).
        let midnight = |e: &Expr| {
            Expr::Cast(Cast::new(
                Box::new(e.clone()),
                DataType::Timestamp(crate::engine::types::TIMESTAMP_UNIT, None),
            ))
        };
        match op {
            BinaryOperator::Plus | BinaryOperator::Minus if date(left) && interval(right) => {
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    op: op.clone(),
                    left: midnight(left),
                    right: right.clone(),
                }));
            }
            BinaryOperator::Plus if interval(left) && date(right) => {
                return Ok(PlannerResult::Original(RawBinaryExpr {
                    op: op.clone(),
                    left: left.clone(),
                    right: midnight(right),
                }));
            }
            _ => {}
        }
        let float = |e: &Expr| Expr::Cast(Cast::new(Box::new(e.clone()), DataType::Float64));
        // The arguments in the order written, so that `i * n` and `n * i`
        // are named apart.
        let (operation, args) = match op {
            BinaryOperator::Multiply if interval(left) && number(right) => {
                (Scaling::Times, vec![left.clone(), float(right)])
            }
            BinaryOperator::Multiply if number(left) && interval(right) => {
                (Scaling::TimesFirst, vec![float(left), right.clone()])
            }
            BinaryOperator::Divide if interval(left) && number(right) => {
                (Scaling::Divided, vec![left.clone(), float(right)])
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(
                Arc::new(ScalarUDF::new_from_impl(IntervalScale::new(operation))),
                args,
            ),
        )))
    }
}

/// `interval * n`, `n * interval`, `interval / n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scaling {
    Times,
    TimesFirst,
    Divided,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalScale {
    operation: Scaling,
    signature: Signature,
}

impl IntervalScale {
    fn new(operation: Scaling) -> IntervalScale {
        let args = match operation {
            Scaling::TimesFirst => vec![DataType::Float64, INTERVAL],
            _ => vec![INTERVAL, DataType::Float64],
        };
        IntervalScale {
            operation,
            signature: Signature::exact(args, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IntervalScale {
    fn name(&self) -> &str {
        match self.operation {
            Scaling::Divided => "pg_interval_div",
            _ => "pg_interval_mul",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(INTERVAL)
    }

    /// Named as the operator it replaces.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        let op = match self.operation {
            Scaling::Divided => "/",
            _ => "*",
        };
        Ok(format!(
            "{} {op} {}",
            args[0].schema_name(),
            args[1].schema_name()
        ))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let mut arrays = ColumnarValue::values_to_arrays(&args.args)?;
        if self.operation == Scaling::TimesFirst {
            arrays.swap(0, 1);
        }
        let divide = self.operation == Scaling::Divided;
        let spans =
            arrays[0].as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
        let factors = arrays[1].as_primitive::<Float64Type>();
        let result: IntervalMonthDayNanoArray = spans
            .iter()
            .zip(factors.iter())
            .map(|pair| match pair {
                (Some(span), Some(factor)) => scale(span, factor, divide).map(Some),
                _ => Ok(None),
            })
            .collect::<Result<_>>()?;
        let result: Arc<dyn Array> = Arc::new(result);
        Ok(match scalar {
            true => {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&result, 0)?)
            }
            false => ColumnarValue::Array(result),
        })
    }
}

pub(crate) fn out_of_range() -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::DatetimeOverflow(
        "interval out of range".into(),
    )))
}

/// PostgreSQL's interval_mul (and interval_div, the same with a division).
fn scale(span: IntervalMonthDayNano, factor: f64, divide: bool) -> Result<IntervalMonthDayNano> {
    if divide && factor == 0.0 {
        return Err(DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::DivideByZero),
            None,
        ));
    }
    let apply = |x: f64| if divide { x / factor } else { x * factor };
    let to_i32 = |x: f64| {
        if x.is_nan() || x < i32::MIN as f64 || x > i32::MAX as f64 {
            Err(out_of_range())
        } else {
            Ok(x as i32)
        }
    };
    let months_exact = apply(span.months as f64);
    let months = to_i32(months_exact)?;
    let days_exact = apply(span.days as f64);
    let mut days = to_i32(days_exact)?;
    // The fraction of a month, in days; the fraction of a day, in seconds.
    let mut month_remainder_days = (months_exact - months as f64) * 30.0;
    if divide {
        // interval_div rounds it to the microsecond's precision; interval_mul
        // does not.
        month_remainder_days = (month_remainder_days * 1e6).round() / 1e6;
    }
    let mut sec_remainder =
        (days_exact - days as f64 + month_remainder_days - month_remainder_days.trunc()) * 86_400.0;
    sec_remainder = (sec_remainder * 1e6).round() / 1e6;
    if sec_remainder.abs() >= 86_400.0 {
        let whole_days = (sec_remainder / 86_400.0).trunc();
        days = days
            .checked_add(whole_days as i32)
            .ok_or_else(out_of_range)?;
        sec_remainder -= whole_days * 86_400.0;
    }
    days = days
        .checked_add(month_remainder_days.trunc() as i32)
        .ok_or_else(out_of_range)?;
    let micros = (apply((span.nanoseconds / 1_000) as f64) + sec_remainder * 1e6).round();
    with_micros(months, days, micros)
}

/// An interval of `micros` microseconds of time (rounded already), or
/// 22008 when they do not fit.
pub(crate) fn with_micros(months: i32, days: i32, micros: f64) -> Result<IntervalMonthDayNano> {
    if !micros.is_finite() || micros.abs() >= i64::MAX as f64 / 1_000.0 {
        return Err(out_of_range());
    }
    Ok(IntervalMonthDayNano::new(
        months,
        days,
        micros as i64 * 1_000,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn intervals_scale_as_in_postgresql() {
        let iv = IntervalMonthDayNano::new;
        // Values as PostgreSQL 15 computes them.
        assert_eq!(
            scale(iv(0, 0, HOUR), 3.0, false).unwrap(),
            iv(0, 0, 3 * HOUR)
        );
        assert_eq!(
            scale(iv(0, 0, HOUR), 2.5, true).unwrap(),
            iv(0, 0, 24 * 60_000_000_000)
        );
        assert_eq!(scale(iv(0, 1, 0), 1.5, false).unwrap(), iv(0, 1, 12 * HOUR));
        // 1 mon * 1.5 = 1 mon 15 days.
        assert_eq!(scale(iv(1, 0, 0), 1.5, false).unwrap(), iv(1, 15, 0));
        // 1 mon / 7 = 4 days 06:51:25.6896.
        assert_eq!(
            scale(iv(1, 0, 0), 7.0, true).unwrap(),
            iv(0, 4, 6 * HOUR + 51 * 60_000_000_000 + 25_689_600_000)
        );
        // 1 year 3 days * -0.3 = -3 mons -18 days -21:36:00.
        assert_eq!(
            scale(iv(12, 3, 0), -0.3, false).unwrap(),
            iv(-3, -18, -(21 * HOUR + 36 * 60_000_000_000))
        );
        assert!(scale(iv(0, 0, HOUR), 0.0, true).is_err());
    }
}

/// Intervals compare and sort as PostgreSQL's do: by their whole span,
/// a month being 30 days and a day 24 hours (`interval '25 hours' >
/// interval '1 day'`, `interval '1 month' = interval '30 days'`). Arrow
/// compares months, then days, then time, one after another. This is the
/// span in nanoseconds, to compare and sort by.
pub(crate) fn interval_key(expr: Expr) -> Expr {
    Expr::ScalarFunction(ScalarFunction::new_udf(
        Arc::new(ScalarUDF::new_from_impl(IntervalKey(Signature::exact(
            vec![INTERVAL],
            Volatility::Immutable,
        )))),
        vec![expr],
    ))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IntervalKey(Signature);

/// Nanoseconds in a day and in PostgreSQL's month of 30 days.
const DAY_NANOS: i128 = 86_400 * 1_000_000_000;
const MONTH_NANOS: i128 = 30 * DAY_NANOS;

/// The span an interval compares by.
pub(crate) fn span_nanos(span: IntervalMonthDayNano) -> i128 {
    span.months as i128 * MONTH_NANOS + span.days as i128 * DAY_NANOS + span.nanoseconds as i128
}

impl ScalarUDFImpl for IntervalKey {
    fn name(&self) -> &str {
        "pg_interval_key"
    }

    fn signature(&self) -> &Signature {
        &self.0
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Decimal128(38, 0))
    }

    /// Named as its argument: a sort key or a comparison's operand.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let key = |array: &dyn Array| -> Result<Arc<dyn Array>> {
            let spans =
                array.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
            let keys: datafusion::arrow::array::Decimal128Array =
                spans.iter().map(|s| s.map(span_nanos)).collect();
            Ok(Arc::new(keys.with_precision_and_scale(38, 0)?))
        };
        Ok(match &args.args[0] {
            ColumnarValue::Array(array) => ColumnarValue::Array(key(array)?),
            ColumnarValue::Scalar(scalar) => ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&key(&scalar.to_array()?)?, 0)?,
            ),
        })
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn spans_compare_as_postgresql_compares_them() {
        let span = |months, days, hours: i64| {
            span_nanos(IntervalMonthDayNano::new(
                months,
                days,
                hours * 3_600_000_000_000,
            ))
        };
        assert!(span(0, 0, 25) > span(0, 1, 0));
        assert_eq!(span(1, 0, 0), span(0, 30, 0));
        assert_eq!(span(0, 1, 0), span(0, 0, 24));
        assert!(span(0, 1, 6) < span(0, 0, 36));
        assert!(span(-1, 0, 0) < span(0, -29, 0));
    }
}
