//! `age(a, b)` and `age(a)` as PostgreSQL counts them: the difference in
//! years, months and days of the calendar (`age('2020-03-01',
//! '2019-01-31')` is `1 year 1 mon 1 day`), not the plain subtraction's
//! days and hours. `age(a)` is `age(current_date, a)` (the planner
//! rewrites it so). A `timestamptz` is read as the local time in the
//! session's zone.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_timezone::{arrow_tz, naive_of, offset_at};

/// `age`, reading instants in `zone` (an Arrow zone string).
pub fn age_udf(zone: &str) -> ScalarUDF {
    ScalarUDF::new_from_impl(Age {
        zone: zone.to_string(),
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Age {
    zone: String,
    signature: Signature,
}

impl ScalarUDFImpl for Age {
    fn name(&self) -> &str {
        "age"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 2 {
            return Err(DataFusionError::Plan(
                "function age takes one or two timestamps".into(),
            ));
        }
        args.iter()
            .map(|t| match t {
                DataType::Timestamp(_, zone) => {
                    Ok(DataType::Timestamp(TimeUnit::Microsecond, zone.clone()))
                }
                DataType::Date32
                | DataType::Date64
                | DataType::Null
                | DataType::Utf8
                | DataType::Utf8View
                | DataType::LargeUtf8 => Ok(DataType::Timestamp(TimeUnit::Microsecond, None)),
                other => Err(DataFusionError::Plan(format!(
                    "function age({other}) does not exist"
                ))),
            })
            .collect()
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let tz = arrow_tz(&self.zone);
        let local = |array: &ArrayRef, row: usize| -> Result<NaiveDateTime> {
            let value = array.as_primitive::<TimestampMicrosecondType>().value(row);
            let moment = naive_of(value, &TimeUnit::Microsecond)
                .ok_or_else(|| DataFusionError::Execution("timestamp out of range".into()))?;
            Ok(match (array.data_type(), &tz) {
                (DataType::Timestamp(_, Some(_)), Some(tz)) => {
                    moment + chrono::Duration::seconds(offset_at(tz, &moment).into())
                }
                _ => moment,
            })
        };
        let (a, b) = (&arrays[0], &arrays[1]);
        let ages = (0..args.number_rows)
            .map(|row| {
                if a.is_null(row) || b.is_null(row) {
                    return Ok(None);
                }
                Ok(Some(age(&local(a, row)?, &local(b, row)?)))
            })
            .collect::<Result<IntervalMonthDayNanoArray>>()?;
        Ok(ColumnarValue::Array(Arc::new(ages)))
    }
}

/// PostgreSQL's `timestamp_age`: the field-by-field difference (from the
/// later to the earlier, sign restored at the end), each negative field
/// borrowing from the next larger one; a day borrows the length of the
/// earlier timestamp's month.
fn age(a: &NaiveDateTime, b: &NaiveDateTime) -> IntervalMonthDayNano {
    let fields = |t: &NaiveDateTime| {
        [
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
            i64::from(t.minute()),
            i64::from(t.second()),
            i64::from(t.nanosecond() / 1000),
        ]
    };
    let (fa, fb) = (fields(a), fields(b));
    let backwards = a < b;
    let (later, earlier) = if backwards { (fb, fa) } else { (fa, fb) };
    let mut d: [i64; 7] = std::array::from_fn(|i| later[i] - earlier[i]);
    let [year, month, day, hour, minute, second, micros] = [0, 1, 2, 3, 4, 5, 6];
    for (field, bigger, size) in [
        (micros, second, 1_000_000),
        (second, minute, 60),
        (minute, hour, 60),
        (hour, day, 24),
    ] {
        while d[field] < 0 {
            d[field] += size;
            d[bigger] -= 1;
        }
    }
    while d[day] < 0 {
        d[day] += days_in_month(earlier[year], earlier[month]);
        d[month] -= 1;
    }
    while d[month] < 0 {
        d[month] += 12;
        d[year] -= 1;
    }
    let sign = if backwards { -1 } else { 1 };
    let time = ((d[hour] * 60 + d[minute]) * 60 + d[second]) * 1_000_000 + d[micros];
    IntervalMonthDayNano::new(
        (sign * (d[year] * 12 + d[month])) as i32,
        (sign * d[day]) as i32,
        sign * time * 1000,
    )
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").unwrap()
    }

    /// (months, days, microseconds)
    fn parts(a: &str, b: &str) -> (i32, i32, i64) {
        let i = age(&at(a), &at(b));
        (i.months, i.days, i.nanoseconds / 1000)
    }

    #[test]
    fn ages_match_postgresql() {
        // Answers from PostgreSQL 15.
        assert_eq!(
            parts("2020-03-01 00:00:00", "2019-01-31 00:00:00"),
            (13, 1, 0)
        );
        assert_eq!(
            parts("2019-01-31 00:00:00", "2020-03-01 00:00:00"),
            (-13, -1, 0)
        );
        assert_eq!(
            parts("2001-04-10 00:00:00", "1957-06-13 00:00:00"),
            (43 * 12 + 9, 27, 0)
        );
        assert_eq!(
            parts("2024-03-01 10:00:00", "2024-02-28 12:30:00.5"),
            (0, 1, (21 * 3600 + 29 * 60 + 59) * 1_000_000 + 500_000)
        );
        assert_eq!(
            parts("2023-03-31 00:00:00", "2023-02-28 00:00:00"),
            (1, 3, 0)
        );
        assert_eq!(
            parts("2023-03-01 00:00:00", "2023-01-31 00:00:00"),
            (1, 1, 0)
        );
        assert_eq!(
            parts("2023-01-31 00:00:00", "2023-03-01 00:00:00"),
            (-1, -1, 0)
        );
        assert_eq!(
            parts("2020-01-01 00:00:00", "2020-01-01 00:00:00"),
            (0, 0, 0)
        );
    }
}
