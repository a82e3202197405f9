//! `EXTRACT(field FROM x)` and `date_part('field', x)` as PostgreSQL
//! computes them: `extract` is a `numeric` (`extract(second ...)` is
//! `1.500000`), `date_part` a `double precision`. DataFusion's `date_part`
//! answered integers for most fields and dropped the fraction of seconds.
//! A `timestamptz` is read as the local time in the session's zone (the
//! epoch excepted, which is the instant's).

use std::sync::Arc;

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, IntervalMonthDayNanoArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::pg_timezone::{arrow_tz, columnar, naive_of, offset_at};
use crate::error::QuiverError;

/// `extract` (numeric) or `date_part` (double precision); instants are
/// read in `zone` (an Arrow zone string).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DatePart {
    numeric: bool,
    zone: String,
    signature: Signature,
}

/// `EXTRACT(field FROM x)`: a numeric.
pub fn extract_udf(zone: &str) -> ScalarUDF {
    ScalarUDF::new_from_impl(DatePart {
        numeric: true,
        zone: zone.to_string(),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// `date_part('field', x)`: a double precision.
pub fn date_part_udf(zone: &str) -> ScalarUDF {
    ScalarUDF::new_from_impl(DatePart {
        numeric: false,
        zone: zone.to_string(),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// What a field is extracted from.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Timestamp,
    Instant,
    Date,
    Time,
    Interval,
}

impl Source {
    fn of(t: &DataType) -> Option<Source> {
        Some(match t {
            DataType::Timestamp(_, None) => Source::Timestamp,
            DataType::Timestamp(_, Some(_)) => Source::Instant,
            DataType::Date32 => Source::Date,
            DataType::Time64(_) => Source::Time,
            DataType::Interval(IntervalUnit::MonthDayNano) => Source::Interval,
            _ => return None,
        })
    }

    fn type_name(self) -> &'static str {
        match self {
            Source::Timestamp => "timestamp without time zone",
            Source::Instant => "timestamp with time zone",
            Source::Date => "date",
            Source::Time => "time without time zone",
            Source::Interval => "interval",
        }
    }
}

/// The digits after the point PostgreSQL gives a field's numeric.
fn scale(field: &str, source: Source) -> u8 {
    match (field, source) {
        (_, Source::Date) => 0,
        ("second" | "epoch", _) => 6,
        ("julian", Source::Timestamp | Source::Instant) => 6,
        ("milliseconds", _) => 3,
        _ => 0,
    }
}

/// A field name as PostgreSQL spells it (its synonyms and plurals read).
fn canonical_field(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "century" | "centuries" | "c" => "century",
        "day" | "days" | "d" => "day",
        "decade" | "decades" => "decade",
        "dow" => "dow",
        "doy" => "doy",
        "epoch" => "epoch",
        "hour" | "hours" | "h" | "hr" | "hrs" => "hour",
        "isodow" => "isodow",
        "isoyear" => "isoyear",
        "julian" | "j" => "julian",
        "microseconds" | "microsecond" | "us" | "usec" | "usecs" => "microseconds",
        "millennium" | "millennia" | "mil" | "mils" => "millennium",
        "milliseconds" | "millisecond" | "ms" | "msec" | "msecs" => "milliseconds",
        "minute" | "minutes" | "m" | "min" | "mins" => "minute",
        "month" | "months" | "mon" | "mons" => "month",
        "quarter" | "qtr" => "quarter",
        "second" | "seconds" | "s" | "sec" | "secs" => "second",
        "timezone" => "timezone",
        "timezone_hour" => "timezone_hour",
        "timezone_minute" => "timezone_minute",
        "week" | "weeks" | "w" => "week",
        "year" | "years" | "y" | "yr" | "yrs" => "year",
        _ => return None,
    })
}

fn unsupported(field: &str, source: Source) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::FeatureNotSupported(format!(
        "unit \"{field}\" not supported for type {}",
        source.type_name()
    ))))
}

fn unknown_field(field: &str, source: Source) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::InvalidParameterValue(format!(
        "unit \"{field}\" not recognized for type {}",
        source.type_name()
    ))))
}

/// The field's literal name, when the call names it by a constant.
fn literal_field(args: &ReturnFieldArgs) -> Option<String> {
    match args.scalar_arguments.first()? {
        Some(ScalarValue::Utf8(Some(f)) | ScalarValue::LargeUtf8(Some(f)))
        | Some(ScalarValue::Utf8View(Some(f))) => Some(f.clone()),
        _ => None,
    }
}

impl ScalarUDFImpl for DatePart {
    fn name(&self) -> &str {
        if self.numeric {
            "extract"
        } else {
            "date_part"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [_, value] = args else {
            return Err(DataFusionError::Plan(format!(
                "{} takes a field and a value",
                self.name()
            )));
        };
        let value = match value {
            DataType::Timestamp(..) | DataType::Date32 => value.clone(),
            DataType::Time64(_) | DataType::Time32(_) => DataType::Time64(TimeUnit::Microsecond),
            DataType::Interval(_) => DataType::Interval(IntervalUnit::MonthDayNano),
            DataType::Date64 | DataType::Null => DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                DataType::Timestamp(TimeUnit::Microsecond, None)
            }
            other => {
                return Err(DataFusionError::Plan(format!(
                    "function {}(unknown, {other}) does not exist",
                    self.name()
                )))
            }
        };
        Ok(vec![DataType::Utf8, value])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Err(DataFusionError::Internal(
            "return_field_from_args is used".into(),
        ))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let data_type = if self.numeric {
            let source = Source::of(args.arg_fields[1].data_type());
            let field = literal_field(&args).and_then(|f| canonical_field(&f));
            let scale = match (field, source) {
                (Some(field), Some(source)) => scale(field, source),
                _ => 6,
            };
            // 20 integer digits hold every field (an epoch in
            // microseconds has 19).
            DataType::Decimal128(20 + scale, scale as i8)
        } else {
            DataType::Float64
        };
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let fields = args.args[0].to_array(args.number_rows)?;
        let fields = fields.as_string::<i32>();
        let values = args.args[1].to_array(args.number_rows)?;
        let source = Source::of(values.data_type()).ok_or_else(|| {
            DataFusionError::Internal(format!("{} got {}", self.name(), values.data_type()))
        })?;
        let zone = match source {
            Source::Instant => Some(
                arrow_tz(&self.zone)
                    .ok_or_else(|| DataFusionError::Execution("unknown time zone".into()))?,
            ),
            _ => None,
        };
        // Each field as an integer of units of 10^-scale.
        let parts = (0..values.len())
            .map(|row| {
                if fields.is_null(row) || values.is_null(row) {
                    return Ok(None);
                }
                let name = fields.value(row);
                let field = canonical_field(name).ok_or_else(|| unknown_field(name, source))?;
                part(field, source, &values, row, zone.as_ref()).map(Some)
            })
            .collect::<Result<Vec<_>>>()?;
        let DataType::Decimal128(precision, out_scale) = *args.return_field.data_type() else {
            // date_part: a double.
            let doubles: Float64Array = parts
                .into_iter()
                .map(|p| p.map(|(units, scale)| units as f64 / 10f64.powi(scale as i32)))
                .collect();
            return columnar(Arc::new(doubles), scalar);
        };
        // To the declared scale (the same, unless the field was not a
        // constant).
        let numbers: Decimal128Array = parts
            .into_iter()
            .map(|p| {
                p.map(|(units, scale)| {
                    let shift = out_scale as i32 - scale as i32;
                    if shift >= 0 {
                        units * 10i128.pow(shift as u32)
                    } else {
                        units / 10i128.pow((-shift) as u32)
                    }
                })
            })
            .collect();
        let numbers = numbers.with_precision_and_scale(precision, out_scale)?;
        columnar(Arc::new(numbers), scalar)
    }
}

/// PostgreSQL's year: there is no year 0, 1 BC is -1.
fn pg_year(date: &NaiveDate) -> i128 {
    let y = date.year() as i128;
    if y <= 0 {
        y - 1
    } else {
        y
    }
}

/// Fields of a date (exact integers).
fn date_field(field: &str, date: &NaiveDate) -> Option<i128> {
    let year = pg_year(date);
    Some(match field {
        "year" => year,
        "month" => date.month() as i128,
        "day" => date.day() as i128,
        "dow" => date.weekday().num_days_from_sunday() as i128,
        "isodow" => date.weekday().number_from_monday() as i128,
        "doy" => date.ordinal() as i128,
        "week" => date.iso_week().week() as i128,
        "isoyear" => date.iso_week().year() as i128,
        "quarter" => (date.month0() / 3 + 1) as i128,
        "decade" => year.div_euclid(10),
        "century" => {
            if year > 0 {
                (year + 99) / 100
            } else {
                -((99 - year) / 100)
            }
        }
        "millennium" => {
            if year > 0 {
                (year + 999) / 1000
            } else {
                -((999 - year) / 1000)
            }
        }
        "julian" => date.num_days_from_ce() as i128 + 1_721_425,
        _ => return None,
    })
}

/// Fields of a time of day given as microseconds since midnight.
fn time_field(field: &str, micros: i128) -> Option<(i128, u8)> {
    Some(match field {
        "hour" => (micros / 3_600_000_000, 0),
        "minute" => (micros / 60_000_000 % 60, 0),
        "second" => (micros % 60_000_000, 6),
        "milliseconds" => (micros % 60_000_000, 3),
        "microseconds" => (micros % 60_000_000, 0),
        _ => return None,
    })
}

/// The field of row `row`, as an integer of units of 10^-scale.
fn part(
    field: &str,
    source: Source,
    values: &ArrayRef,
    row: usize,
    zone: Option<&datafusion::arrow::array::timezone::Tz>,
) -> Result<(i128, u8)> {
    let out_of_range = || {
        DataFusionError::External(Box::new(QuiverError::DatetimeOverflow(
            "timestamp out of range".into(),
        )))
    };
    match source {
        Source::Timestamp | Source::Instant => {
            let DataType::Timestamp(unit, _) = values.data_type() else {
                unreachable!("a timestamp source")
            };
            let raw = cast(&values.slice(row, 1), &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .value(0);
            let utc = naive_of(raw, unit).ok_or_else(out_of_range)?;
            let offset = zone.map_or(0, |tz| offset_at(tz, &utc));
            if field == "epoch" {
                return Ok((micros_since_epoch(&utc), 6));
            }
            match (field, source) {
                ("timezone", Source::Instant) => return Ok((offset as i128, 0)),
                ("timezone_hour", Source::Instant) => return Ok((offset as i128 / 3600, 0)),
                ("timezone_minute", Source::Instant) => return Ok((offset as i128 / 60 % 60, 0)),
                ("timezone" | "timezone_hour" | "timezone_minute", _) => {
                    return Err(unsupported(field, source))
                }
                _ => {}
            }
            let local = utc + chrono::Duration::seconds(offset as i64);
            if field == "julian" {
                // The day and the fraction of it passed, as PostgreSQL
                // computes it (a double).
                let day = date_field("julian", &local.date()).expect("julian is a date field");
                return Ok((day * 1_000_000 + day_micros(&local) / 86_400, 6));
            }
            if let Some(v) = date_field(field, &local.date()) {
                return Ok((v, 0));
            }
            time_field(field, day_micros(&local)).ok_or_else(|| unknown_field(field, source))
        }
        Source::Date => {
            let days = values.as_primitive::<datafusion::arrow::datatypes::Date32Type>();
            let date = NaiveDate::from_num_days_from_ce_opt(days.value(row) + 719_163)
                .ok_or_else(out_of_range)?;
            if field == "epoch" {
                return Ok((days.value(row) as i128 * 86_400, 0));
            }
            match date_field(field, &date) {
                Some(v) => Ok((v, 0)),
                None if canonical_field(field).is_some() => Err(unsupported(field, source)),
                None => Err(unknown_field(field, source)),
            }
        }
        Source::Time => {
            let DataType::Time64(unit) = values.data_type() else {
                unreachable!("a time source")
            };
            let raw = cast(&values.slice(row, 1), &DataType::Int64)?
                .as_primitive::<Int64Type>()
                .value(0) as i128;
            let micros = match unit {
                TimeUnit::Nanosecond => raw / 1000,
                _ => raw,
            };
            if field == "epoch" {
                return Ok((micros, 6));
            }
            time_field(field, micros).ok_or_else(|| unsupported(field, source))
        }
        Source::Interval => {
            let intervals: &IntervalMonthDayNanoArray = values.as_primitive();
            let (months, days, nanos) = IntervalMonthDayNanoType::to_parts(intervals.value(row));
            let (months, days, micros) = (months as i128, days as i128, nanos as i128 / 1000);
            let years = months / 12;
            Ok(match field {
                "epoch" => {
                    // A year is 365.25 days, a month 30, as in PostgreSQL.
                    let seconds_of_years = years * 36_525 * 864; // 365.25 days
                    let seconds_of_months = (months % 12) * 30 * 86_400;
                    let micros_total =
                        (seconds_of_years + seconds_of_months + days * 86_400) * 1_000_000 + micros;
                    (micros_total, 6)
                }
                "year" => (years, 0),
                "month" => (months % 12, 0),
                "quarter" => ((months % 12) / 3 + 1, 0),
                "decade" => (years / 10, 0),
                "century" => (years / 100, 0),
                "millennium" => (years / 1000, 0),
                "day" => (days, 0),
                "hour" => (micros / 3_600_000_000, 0),
                "minute" => (micros / 60_000_000 % 60, 0),
                "second" => (micros % 60_000_000, 6),
                "milliseconds" => (micros % 60_000_000, 3),
                "microseconds" => (micros % 60_000_000, 0),
                _ => return Err(unsupported(field, source)),
            })
        }
    }
}

fn day_micros(moment: &NaiveDateTime) -> i128 {
    moment.num_seconds_from_midnight() as i128 * 1_000_000 + (moment.nanosecond() / 1000) as i128
}

fn micros_since_epoch(moment: &NaiveDateTime) -> i128 {
    let utc = moment.and_utc();
    utc.timestamp() as i128 * 1_000_000 + utc.timestamp_subsec_micros() as i128
}

/// Plans `EXTRACT(field FROM x)` as [`extract_udf`].
#[derive(Debug)]
pub struct ExtractPlanner;

impl datafusion::logical_expr::planner::ExprPlanner for ExtractPlanner {
    fn plan_extract(
        &self,
        args: Vec<datafusion::logical_expr::Expr>,
    ) -> Result<datafusion::logical_expr::planner::PlannerResult<Vec<datafusion::logical_expr::Expr>>>
    {
        Ok(datafusion::logical_expr::planner::PlannerResult::Planned(
            extract_udf(crate::engine::types::UTC).call(args),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_intervals_and_dates_are_postgresql_s() {
        let date = NaiveDate::from_ymd_opt(2024, 12, 30).unwrap();
        assert_eq!(date_field("isoyear", &date), Some(2025));
        assert_eq!(date_field("week", &date), Some(1));
        assert_eq!(date_field("dow", &date), Some(1));
        assert_eq!(date_field("century", &date), Some(21));
        let bc = NaiveDate::from_ymd_opt(0, 6, 1).unwrap();
        assert_eq!(date_field("year", &bc), Some(-1));
        assert_eq!(time_field("second", 61_500_000), Some((1_500_000, 6)));
        assert_eq!(canonical_field("SECONDS"), Some("second"));
        assert_eq!(canonical_field("fortnight"), None);
    }
}
