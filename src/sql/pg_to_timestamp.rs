//! `to_timestamp(text, template)` and `to_date(text, template)` with
//! PostgreSQL's template patterns (`YYYY-MM-DD HH24:MI:SS.US`, `DD Mon
//! YYYY`, `TZH:TZM`, ...), the inverse of `to_char`. DataFusion's functions
//! of those names read chrono's `%` patterns: Superset's
//! `TO_TIMESTAMP('2024-01-01 00:00:00.000000', 'YYYY-MM-DD HH24:MI:SS.US')`
//! failed. A local time is read in the session's time zone.

use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use datafusion::arrow::array::{Array, AsArray, Date32Array, TimestampMicrosecondArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_timezone::{arrow_tz, local_to_utc};
use super::pg_to_char::{parse_template, Item, Pattern, DAYS, MONTHS};
use crate::error::QuiverError;

#[derive(Debug, PartialEq, Eq, Hash)]
struct ToTimestamp {
    /// The session's zone, as Arrow names it.
    zone: String,
    /// to_date: the date alone.
    date: bool,
    signature: Signature,
}

/// `to_timestamp(text, template)` reading local times in `zone`, or
/// `to_date(text, template)`.
pub fn udf(zone: &str, date: bool) -> ScalarUDF {
    ScalarUDF::new_from_impl(ToTimestamp {
        zone: zone.to_string(),
        date,
        signature: Signature::exact(vec![DataType::Utf8, DataType::Utf8], Volatility::Stable),
    })
}

impl ScalarUDFImpl for ToTimestamp {
    fn name(&self) -> &str {
        if self.date {
            "to_date"
        } else {
            "to_timestamp"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(if self.date {
            DataType::Date32
        } else {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let texts = cast(&args.args[0].to_array(args.number_rows)?, &DataType::Utf8)?;
        let templates = cast(&args.args[1].to_array(args.number_rows)?, &DataType::Utf8)?;
        let (texts, templates) = (texts.as_string::<i32>(), templates.as_string::<i32>());
        let tz = arrow_tz(&self.zone).ok_or_else(|| {
            DataFusionError::Execution(format!("time zone \"{}\" not recognized", self.zone))
        })?;
        let mut parsed: Option<(String, Vec<Item>)> = None;
        let mut values = Vec::with_capacity(texts.len());
        for row in 0..texts.len() {
            if texts.is_null(row) || templates.is_null(row) {
                values.push(None);
                continue;
            }
            let template = templates.value(row);
            if parsed.as_ref().is_none_or(|(t, _)| t != template) {
                parsed = Some((template.to_string(), parse_template(template)));
            }
            let items = &parsed.as_ref().expect("set above").1;
            let (local, offset) = read(texts.value(row), items)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            values.push(Some(match (self.date, offset) {
                (true, _) => {
                    (local.date() - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days()
                }
                (false, Some(offset)) => (local - chrono::Duration::seconds(offset as i64))
                    .and_utc()
                    .timestamp_micros(),
                (false, None) => local_to_utc(&tz, &local).and_utc().timestamp_micros(),
            }));
        }
        let array: Arc<dyn Array> = if self.date {
            Arc::new(Date32Array::from(
                values
                    .into_iter()
                    .map(|v| v.map(|d| d as i32))
                    .collect::<Vec<_>>(),
            ))
        } else {
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
        };
        super::pg_timezone::columnar(array, scalar)
    }
}

/// The local time a text gives under a template, and the offset (seconds
/// east of UTC) when it names one (`TZH:TZM`).
fn read(
    text: &str,
    items: &[Item],
) -> std::result::Result<(NaiveDateTime, Option<i32>), QuiverError> {
    let bad = QuiverError::DatetimeTemplate;
    let out_of_range =
        || QuiverError::DatetimeOverflow(format!("date/time field value out of range: \"{text}\""));
    let mut rest = text.trim_start();
    let (mut year, mut month, mut day) = (None::<i32>, 1u32, 1u32);
    let (mut hour, mut minute, mut second, mut micros) = (0u32, 0u32, 0u32, 0u32);
    let (mut pm, mut twelve_hour) = (None::<bool>, false);
    let (mut offset_hours, mut offset_minutes) = (None::<i32>, 0i32);
    for (i, item) in items.iter().enumerate() {
        // A field right before another one reads its own width (`YYYYMMDD`);
        // before a separator or at the end a year reads all its digits.
        let next_is_field = matches!(items.get(i + 1), Some(Item::Field { .. }));
        match item {
            Item::Literal(literal) => {
                // A separator in the template skips separators in the
                // text (PostgreSQL's default, non-FX mode).
                for c in literal.chars() {
                    if c.is_whitespace() {
                        rest = rest.trim_start();
                    } else if rest.starts_with(|r: char| !r.is_alphanumeric()) {
                        let r = rest.chars().next().expect("not empty");
                        rest = &rest[r.len_utf8()..];
                    }
                }
            }
            Item::Field { pattern, .. } => {
                rest = rest.trim_start_matches(' ');
                let mut number =
                    |max: usize, what: &str| -> std::result::Result<(i64, usize), QuiverError> {
                        let negative = rest.starts_with('-') && what == "TZH";
                        let body = if negative || (rest.starts_with('+') && what == "TZH") {
                            &rest[1..]
                        } else {
                            rest
                        };
                        let digits = body
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .take(max)
                            .count();
                        if digits == 0 {
                            return Err(bad(format!(
                                "invalid value \"{}\" for \"{what}\"",
                                rest.split_whitespace().next().unwrap_or_default()
                            )));
                        }
                        let value: i64 = body[..digits].parse().expect("digits");
                        rest = &body[digits..];
                        Ok((if negative { -value } else { value }, digits))
                    };
                match pattern {
                    Pattern::Yyyy => {
                        let width = if next_is_field { 4 } else { usize::MAX };
                        year = Some(number(width, "YYYY")?.0 as i32)
                    }
                    Pattern::Yyy => year = Some(near_2020(number(3, "YYY")?.0 as i32)),
                    Pattern::Yy => year = Some(near_2020(number(2, "YY")?.0 as i32)),
                    Pattern::Mm => month = number(2, "MM")?.0 as u32,
                    Pattern::Dd => day = number(2, "DD")?.0 as u32,
                    Pattern::Hh24 => hour = number(2, "HH24")?.0 as u32,
                    Pattern::Hh12 | Pattern::Hh => {
                        hour = number(2, "HH12")?.0 as u32;
                        twelve_hour = true;
                    }
                    Pattern::Mi => minute = number(2, "MI")?.0 as u32,
                    Pattern::Ss => second = number(2, "SS")?.0 as u32,
                    // Fractions: digits after the point, up to milli- or
                    // microseconds (`.5` is half a second).
                    Pattern::Ms => {
                        let (v, n) = number(3, "MS")?;
                        micros = (v * 10i64.pow(3 - n as u32) * 1000) as u32;
                    }
                    Pattern::Us => {
                        let (v, n) = number(6, "US")?;
                        micros = (v * 10i64.pow(6 - n as u32)) as u32;
                    }
                    Pattern::Meridiem { .. } => {
                        let upper = rest.to_ascii_uppercase();
                        let (is_pm, len) = if upper.starts_with("P.M.") {
                            (true, 4)
                        } else if upper.starts_with("A.M.") {
                            (false, 4)
                        } else if upper.starts_with("PM") {
                            (true, 2)
                        } else if upper.starts_with("AM") {
                            (false, 2)
                        } else {
                            return Err(bad("invalid value for \"AM/PM\"".into()));
                        };
                        pm = Some(is_pm);
                        rest = &rest[len..];
                    }
                    Pattern::MonthName(_) | Pattern::MonthShort(_) => {
                        let short = matches!(pattern, Pattern::MonthShort(_));
                        let found = MONTHS.iter().enumerate().find_map(|(i, name)| {
                            let name = if short { &name[..3] } else { name };
                            rest.get(..name.len())
                                .filter(|p| p.eq_ignore_ascii_case(name))
                                .map(|_| (i as u32 + 1, name.len()))
                        });
                        let (m, len) =
                            found.ok_or_else(|| bad("invalid value for \"Mon\"".into()))?;
                        month = m;
                        rest = &rest[len..];
                    }
                    Pattern::DayName(_) | Pattern::DayShort(_) => {
                        // A weekday is read and not checked, as PostgreSQL.
                        let short = matches!(pattern, Pattern::DayShort(_));
                        let len = DAYS
                            .iter()
                            .map(|name| if short { &name[..3] } else { name })
                            .find(|name| {
                                rest.get(..name.len())
                                    .is_some_and(|p| p.eq_ignore_ascii_case(name))
                            })
                            .map(|name| name.len())
                            .ok_or_else(|| bad("invalid value for \"Day\"".into()))?;
                        rest = &rest[len..];
                    }
                    Pattern::Tzh => offset_hours = Some(number(2, "TZH")?.0 as i32),
                    Pattern::Tzm => offset_minutes = number(2, "TZM")?.0 as i32,
                    other => {
                        return Err(QuiverError::FeatureNotSupported(format!(
                            "the template pattern {other:?} is not supported by to_timestamp"
                        )))
                    }
                }
            }
        }
    }
    if twelve_hour {
        if hour == 0 || hour > 12 {
            return Err(bad(format!(
                "hour \"{hour}\" is invalid for the 12-hour clock"
            )));
        }
        hour %= 12;
    }
    if pm == Some(true) && hour < 12 {
        hour += 12;
    }
    let date = NaiveDate::from_ymd_opt(year.unwrap_or(1), month, day).ok_or_else(out_of_range)?;
    let time =
        NaiveTime::from_hms_micro_opt(hour, minute, second, micros).ok_or_else(out_of_range)?;
    let offset = offset_hours.map(|h| {
        let minutes = if h < 0 {
            -offset_minutes
        } else {
            offset_minutes
        };
        h * 3600 + minutes * 60
    });
    Ok((NaiveDateTime::new(date, time), offset))
}

/// A year of fewer than four digits, as PostgreSQL completes it: the
/// nearest to 2020.
fn near_2020(year: i32) -> i32 {
    match year {
        0..=69 => year + 2000,
        70..=99 => year + 1900,
        100..=519 => year + 2000,
        520..=999 => year + 1000,
        _ => year,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str, template: &str) -> String {
        let (local, offset) = read(text, &parse_template(template)).unwrap();
        format!("{local} {offset:?}")
    }

    #[test]
    fn templates_read_like_postgres() {
        assert_eq!(
            at("2024-01-01 10:00:00.5", "YYYY-MM-DD HH24:MI:SS.US"),
            "2024-01-01 10:00:00.500 None"
        );
        assert_eq!(
            at("2024-01-01 10:00:00.000123", "YYYY-MM-DD HH24:MI:SS.US"),
            "2024-01-01 10:00:00.000123 None"
        );
        assert_eq!(at("05 Mar 2024", "DD Mon YYYY"), "2024-03-05 00:00:00 None");
        assert_eq!(
            at("2024/3/5 7:05 PM", "YYYY/MM/DD HH12:MI AM"),
            "2024-03-05 19:05:00 None"
        );
        assert_eq!(
            at("2024-03-05 10:00 +05:30", "YYYY-MM-DD HH24:MI TZH:TZM"),
            "2024-03-05 10:00:00 Some(19800)"
        );
        // Fields without separators read their own widths.
        assert_eq!(at("20240102", "YYYYMMDD"), "2024-01-02 00:00:00 None");
        assert_eq!(
            at("20240102 1530", "YYYYMMDD HH24MI"),
            "2024-01-02 15:30:00 None"
        );
        assert_eq!(
            at("12345-01-02", "YYYY-MM-DD"),
            "+12345-01-02 00:00:00 None"
        );
        assert!(read("2024-13-01", &parse_template("YYYY-MM-DD")).is_err());
        assert!(read("x", &parse_template("YYYY")).is_err());
    }
}
