//! PostgreSQL's `make_timestamp` and `justify_hours`, `justify_days`,
//! `justify_interval`, which DataFusion does not have.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, IntervalMonthDayNanoArray, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::engine::types::TIMESTAMP_UNIT;
use crate::error::QuiverError;

const INTERVAL: DataType = DataType::Interval(IntervalUnit::MonthDayNano);
const NANOS_PER_DAY: i64 = 86_400_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Calendar {
    MakeTimestamp,
    JustifyHours,
    JustifyDays,
    JustifyInterval,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct CalendarFunction {
    kind: Calendar,
    signature: Signature,
}

/// The functions, for registering with a session.
pub fn udfs() -> Vec<ScalarUDF> {
    let make = Signature::exact(
        vec![
            DataType::Int64,
            DataType::Int64,
            DataType::Int64,
            DataType::Int64,
            DataType::Int64,
            DataType::Float64,
        ],
        Volatility::Immutable,
    );
    let justify = || Signature::exact(vec![INTERVAL], Volatility::Immutable);
    [
        (Calendar::MakeTimestamp, make),
        (Calendar::JustifyHours, justify()),
        (Calendar::JustifyDays, justify()),
        (Calendar::JustifyInterval, justify()),
    ]
    .into_iter()
    .map(|(kind, signature)| ScalarUDF::from(CalendarFunction { kind, signature }))
    .collect()
}

fn out_of_range(message: String) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::DatetimeOverflow(message)))
}

impl ScalarUDFImpl for CalendarFunction {
    fn name(&self) -> &str {
        match self.kind {
            Calendar::MakeTimestamp => "make_timestamp",
            Calendar::JustifyHours => "justify_hours",
            Calendar::JustifyDays => "justify_days",
            Calendar::JustifyInterval => "justify_interval",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Calendar::MakeTimestamp => DataType::Timestamp(TIMESTAMP_UNIT, None),
            _ => INTERVAL,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.kind {
            Calendar::MakeTimestamp => {
                let parts: Vec<ArrayRef> = arrays[..5]
                    .iter()
                    .map(|a| cast(a, &DataType::Int64))
                    .collect::<std::result::Result<_, _>>()?;
                let seconds = cast(&arrays[5], &DataType::Float64)?;
                let seconds = seconds.as_primitive::<Float64Type>();
                let stamps = (0..args.number_rows)
                    .map(|row| {
                        if parts.iter().any(|p| p.is_null(row)) || seconds.is_null(row) {
                            return Ok(None);
                        }
                        let part = |i: usize| parts[i].as_primitive::<Int64Type>().value(row);
                        make_timestamp(
                            [part(0), part(1), part(2), part(3), part(4)],
                            seconds.value(row),
                        )
                        .map(Some)
                    })
                    .collect::<Result<TimestampMicrosecondArray>>()?;
                Arc::new(stamps)
            }
            kind => {
                let spans = arrays[0].as_primitive::<IntervalMonthDayNanoType>();
                let justified: IntervalMonthDayNanoArray = spans
                    .iter()
                    .map(|span| {
                        span.map(|s| match kind {
                            Calendar::JustifyHours => justify_hours(s),
                            Calendar::JustifyDays => justify_days(s),
                            _ => justify_interval(s),
                        })
                    })
                    .collect();
                Arc::new(justified)
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// `make_timestamp(year, month, day, hour, min, sec)` in microseconds
/// (PostgreSQL's messages for a field out of range).
fn make_timestamp([year, month, day, hour, minute]: [i64; 5], seconds: f64) -> Result<i64> {
    let date = u32::try_from(month)
        .ok()
        .zip(u32::try_from(day).ok())
        .and_then(|(m, d)| NaiveDate::from_ymd_opt(i32::try_from(year).ok()?, m, d))
        .ok_or_else(|| {
            out_of_range(format!(
                "date field value out of range: {year}-{month:02}-{day:02}"
            ))
        })?;
    let micros = (seconds * 1e6).round();
    let time = u32::try_from(hour)
        .ok()
        .zip(u32::try_from(minute).ok())
        .filter(|_| (0.0..60e6).contains(&micros))
        .and_then(|(h, m)| NaiveTime::from_hms_opt(h, m, 0))
        .ok_or_else(|| {
            out_of_range(format!(
                "time field value out of range: {hour:02}:{minute:02}:{seconds:02}"
            ))
        })?;
    Ok(date.and_time(time).and_utc().timestamp_micros() + micros as i64)
}

/// Moves one `unit` of `minor` into or out of `major` so that their
/// signs agree (`1 day -1 hour` is `23:00:00`).
fn agree(major: &mut i64, minor: &mut i64, unit: i64) {
    if *major > 0 && *minor < 0 {
        *minor += unit;
        *major -= 1;
    } else if *major < 0 && *minor > 0 {
        *minor -= unit;
        *major += 1;
    }
}

/// Whole days of the time part into days, the time keeping the sign of
/// the days (PostgreSQL's `justify_hours`).
fn justify_hours(span: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let mut days = i64::from(span.days) + span.nanoseconds / NANOS_PER_DAY;
    let mut nanos = span.nanoseconds % NANOS_PER_DAY;
    agree(&mut days, &mut nanos, NANOS_PER_DAY);
    IntervalMonthDayNano::new(
        span.months,
        days.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        nanos,
    )
}

/// Days in 30s into months, the days keeping the sign of the months
/// (PostgreSQL's `justify_days`).
fn justify_days(span: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let mut months = i64::from(span.months) + i64::from(span.days / 30);
    let mut days = i64::from(span.days % 30);
    agree(&mut months, &mut days, 30);
    let months = months.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    IntervalMonthDayNano::new(months, days as i32, span.nanoseconds)
}

/// Both at once, the signs of all three parts made to agree (PostgreSQL's
/// `justify_interval`).
fn justify_interval(span: IntervalMonthDayNano) -> IntervalMonthDayNano {
    let mut nanos = span.nanoseconds % NANOS_PER_DAY;
    let mut days = i64::from(span.days) + span.nanoseconds / NANOS_PER_DAY;
    let mut months = i64::from(span.months) + days / 30;
    days %= 30;
    if months > 0 && (days < 0 || (days == 0 && nanos < 0)) {
        days += 30;
        months -= 1;
    } else if months < 0 && (days > 0 || (days == 0 && nanos > 0)) {
        days -= 30;
        months += 1;
    }
    agree(&mut days, &mut nanos, NANOS_PER_DAY);
    let clamp = |v: i64| v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
    IntervalMonthDayNano::new(clamp(months), clamp(days), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn justify_moves_whole_units() {
        let hours = |h: i64| IntervalMonthDayNano::new(0, 0, h * 3_600_000_000_000);
        assert_eq!(
            justify_hours(hours(27)),
            IntervalMonthDayNano::new(0, 1, 3 * 3_600_000_000_000)
        );
        assert_eq!(
            justify_days(IntervalMonthDayNano::new(0, 35, 0)),
            IntervalMonthDayNano::new(1, 5, 0)
        );
        assert_eq!(
            justify_days(IntervalMonthDayNano::new(1, -5, 0)),
            IntervalMonthDayNano::new(0, 25, 0)
        );
    }

    #[test]
    fn make_timestamp_checks_its_fields() {
        assert_eq!(
            make_timestamp([2024, 2, 29, 10, 30], 1.5).unwrap(),
            NaiveDate::from_ymd_opt(2024, 2, 29)
                .unwrap()
                .and_hms_micro_opt(10, 30, 1, 500_000)
                .unwrap()
                .and_utc()
                .timestamp_micros()
        );
        assert!(make_timestamp([2023, 2, 29, 0, 0], 0.0).is_err());
        assert!(make_timestamp([2023, 1, 1, 24, 0], 0.0).is_err());
    }
}
