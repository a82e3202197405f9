//! `to_char(timestamp, template)` with PostgreSQL's template patterns
//! (`YYYY-MM-DD HH24:MI:SS`, `FMMonth`, `Dy`, `TZ`, ...). DataFusion's
//! `to_char` reads chrono's `%` patterns and copies PostgreSQL's as text,
//! so `to_char(ts, 'YYYY-MM')` answered `YYYY-MM`.

use std::sync::Arc;

use chrono::{Datelike, NaiveDateTime, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_timezone::{arrow_tz, naive_of, offset_at, offset_text};

/// `to_char` for dates and timestamps; a `timestamptz` is shown as the
/// local time in `zone` (an Arrow zone string), which `TZ` and `OF` name.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToChar {
    zone: String,
    /// What `TZ` prints for a POSIX zone (`UTC` of `UTC+3`).
    abbreviation: Option<String>,
    signature: Signature,
}

/// The `to_char` function, showing instants in `zone` (an Arrow zone
/// string; `abbreviation` is its name for a POSIX zone).
pub fn to_char_udf(zone: &str, abbreviation: Option<&str>) -> ScalarUDF {
    ScalarUDF::new_from_impl(ToChar {
        zone: zone.to_string(),
        abbreviation: abbreviation.map(str::to_string),
        signature: Signature::user_defined(Volatility::Stable),
    })
}

impl ScalarUDFImpl for ToChar {
    fn name(&self) -> &str {
        "to_char"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [value, _] = args else {
            return Err(DataFusionError::Plan(
                "to_char(value, template) takes two arguments".into(),
            ));
        };
        let value = match value {
            DataType::Timestamp(..) => value.clone(),
            DataType::Date32 | DataType::Date64 => DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Null => DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Interval(_) => {
                DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano)
            }
            // Numbers: PostgreSQL's numeric templates.
            n if n.is_numeric() => n.clone(),
            other => {
                return Err(DataFusionError::Plan(format!(
                    "function to_char({other}, text) does not exist: to_char formats dates, timestamps and numbers"
                )))
            }
        };
        Ok(vec![value, DataType::Utf8])
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let values = args.args[0].to_array(args.number_rows)?;
        let templates = args.args[1].to_array(args.number_rows)?;
        let templates = templates.as_string::<i32>();
        if values.data_type().is_numeric() {
            let texts = super::pg_to_number::to_char_numbers(&values, templates)?;
            return Ok(if scalar {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&texts, 0)?)
            } else {
                ColumnarValue::Array(texts)
            });
        }
        if let DataType::Interval(_) = values.data_type() {
            let intervals =
                values.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
            let texts = intervals
                .iter()
                .enumerate()
                .map(|(row, v)| match (v, templates.is_null(row)) {
                    (Some(v), false) => {
                        format_interval(&parse_template(templates.value(row)), v).map(Some)
                    }
                    _ => Ok(None),
                })
                .collect::<Result<StringArray>>()?;
            return Ok(if scalar {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&texts, 0)?)
            } else {
                ColumnarValue::Array(Arc::new(texts))
            });
        }
        let DataType::Timestamp(unit, label) = values.data_type().clone() else {
            return Err(DataFusionError::Internal(format!(
                "to_char got {}",
                values.data_type()
            )));
        };
        let zone = match label {
            Some(_) => Some(arrow_tz(&self.zone).ok_or_else(|| {
                DataFusionError::Execution(format!("time zone \"{}\" not recognized", self.zone))
            })?),
            None => None,
        };
        let numbers = cast(&values, &DataType::Int64)?;
        let mut parsed: Option<(String, Vec<Item>)> = None;
        let texts: StringArray = numbers
            .as_primitive::<Int64Type>()
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let (Some(v), false) = (v, templates.is_null(row)) else {
                    return None;
                };
                let template = templates.value(row);
                if parsed.as_ref().is_none_or(|(t, _)| t != template) {
                    parsed = Some((template.to_string(), parse_template(template)));
                }
                let items = &parsed.as_ref().expect("set above").1;
                let utc = naive_of(v, &unit)?;
                let (local, offset) = match &zone {
                    Some(tz) => {
                        let offset = offset_at(tz, &utc);
                        (
                            utc + chrono::Duration::seconds(offset as i64),
                            Some((
                                offset,
                                self.abbreviation.clone().unwrap_or_else(|| {
                                    super::pg_timezone::abbreviation_at(&self.zone, &utc, offset)
                                }),
                            )),
                        )
                    }
                    None => (utc, None),
                };
                Some(format_items(items, &local, offset.as_ref()))
            })
            .collect();
        let result: ArrayRef = Arc::new(texts);
        super::pg_timezone::columnar(result, scalar)
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Item {
    Literal(String),
    Field {
        pattern: Pattern,
        fill_mode: bool,
        ordinal: Option<bool>,
    },
}

/// Template patterns, longest first where one is a prefix of another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Pattern {
    Hh24,
    Hh12,
    Hh,
    Mi,
    Sssss,
    Ssss,
    Ss,
    Ms,
    Us,
    Meridiem { upper: bool, dots: bool },
    YearComma,
    Yyyy,
    Yyy,
    Yy,
    Y,
    Iyyy,
    Iyy,
    Iy,
    I,
    Era { upper: bool, dots: bool },
    MonthName(Case),
    MonthShort(Case),
    Mm,
    DayName(Case),
    DayShort(Case),
    Ddd,
    Iddd,
    Dd,
    D,
    Id,
    W,
    Ww,
    Iw,
    Cc,
    J,
    Q,
    Roman { upper: bool },
    Tz { upper: bool },
    Tzh,
    Tzm,
    Of,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Case {
    Upper,
    Capitalized,
    Lower,
}

/// The patterns in the order they are tried (a longer one before its
/// prefix, as PostgreSQL matches them).
const PATTERNS: &[(&str, Pattern)] = &[
    ("HH24", Pattern::Hh24),
    ("HH12", Pattern::Hh12),
    ("HH", Pattern::Hh),
    ("MI", Pattern::Mi),
    ("SSSSS", Pattern::Sssss),
    ("SSSS", Pattern::Ssss),
    ("SS", Pattern::Ss),
    ("MS", Pattern::Ms),
    ("US", Pattern::Us),
    (
        "A.M.",
        Pattern::Meridiem {
            upper: true,
            dots: true,
        },
    ),
    (
        "P.M.",
        Pattern::Meridiem {
            upper: true,
            dots: true,
        },
    ),
    (
        "a.m.",
        Pattern::Meridiem {
            upper: false,
            dots: true,
        },
    ),
    (
        "p.m.",
        Pattern::Meridiem {
            upper: false,
            dots: true,
        },
    ),
    (
        "AM",
        Pattern::Meridiem {
            upper: true,
            dots: false,
        },
    ),
    (
        "PM",
        Pattern::Meridiem {
            upper: true,
            dots: false,
        },
    ),
    (
        "am",
        Pattern::Meridiem {
            upper: false,
            dots: false,
        },
    ),
    (
        "pm",
        Pattern::Meridiem {
            upper: false,
            dots: false,
        },
    ),
    ("Y,YYY", Pattern::YearComma),
    ("YYYY", Pattern::Yyyy),
    ("YYY", Pattern::Yyy),
    ("YY", Pattern::Yy),
    ("IYYY", Pattern::Iyyy),
    ("IYY", Pattern::Iyy),
    ("IY", Pattern::Iy),
    ("IDDD", Pattern::Iddd),
    ("ID", Pattern::Id),
    ("IW", Pattern::Iw),
    ("I", Pattern::I),
    ("Y", Pattern::Y),
    (
        "B.C.",
        Pattern::Era {
            upper: true,
            dots: true,
        },
    ),
    (
        "A.D.",
        Pattern::Era {
            upper: true,
            dots: true,
        },
    ),
    (
        "b.c.",
        Pattern::Era {
            upper: false,
            dots: true,
        },
    ),
    (
        "a.d.",
        Pattern::Era {
            upper: false,
            dots: true,
        },
    ),
    (
        "BC",
        Pattern::Era {
            upper: true,
            dots: false,
        },
    ),
    (
        "AD",
        Pattern::Era {
            upper: true,
            dots: false,
        },
    ),
    (
        "bc",
        Pattern::Era {
            upper: false,
            dots: false,
        },
    ),
    (
        "ad",
        Pattern::Era {
            upper: false,
            dots: false,
        },
    ),
    ("MONTH", Pattern::MonthName(Case::Upper)),
    ("Month", Pattern::MonthName(Case::Capitalized)),
    ("month", Pattern::MonthName(Case::Lower)),
    ("MON", Pattern::MonthShort(Case::Upper)),
    ("Mon", Pattern::MonthShort(Case::Capitalized)),
    ("mon", Pattern::MonthShort(Case::Lower)),
    ("MM", Pattern::Mm),
    ("DAY", Pattern::DayName(Case::Upper)),
    ("Day", Pattern::DayName(Case::Capitalized)),
    ("day", Pattern::DayName(Case::Lower)),
    ("DY", Pattern::DayShort(Case::Upper)),
    ("Dy", Pattern::DayShort(Case::Capitalized)),
    ("dy", Pattern::DayShort(Case::Lower)),
    ("DDD", Pattern::Ddd),
    ("DD", Pattern::Dd),
    ("D", Pattern::D),
    ("WW", Pattern::Ww),
    ("W", Pattern::W),
    ("CC", Pattern::Cc),
    ("J", Pattern::J),
    ("Q", Pattern::Q),
    ("RM", Pattern::Roman { upper: true }),
    ("rm", Pattern::Roman { upper: false }),
    ("TZH", Pattern::Tzh),
    ("TZM", Pattern::Tzm),
    ("TZ", Pattern::Tz { upper: true }),
    ("tz", Pattern::Tz { upper: false }),
    ("OF", Pattern::Of),
];

/// Reads a template: patterns (with the FM prefix and TH/th suffix),
/// double-quoted text, backslash escapes, and everything else as is.
pub(super) fn parse_template(template: &str) -> Vec<Item> {
    let mut items = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while !rest.is_empty() {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            literal.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => literal.push(c),
                }
            }
            rest = &quoted[end.min(quoted.len())..];
            continue;
        }
        // Outside quotes a backslash escapes only a double quote.
        if let Some(escaped) = rest.strip_prefix("\\\"") {
            literal.push('"');
            rest = escaped;
            continue;
        }
        let mut fill_mode = false;
        let mut body = rest;
        loop {
            if let Some(after) = body.strip_prefix("FM").or_else(|| body.strip_prefix("fm")) {
                fill_mode = true;
                body = after;
            } else if let Some(after) = body
                .strip_prefix("FX")
                .or_else(|| body.strip_prefix("TM"))
                .or_else(|| body.strip_prefix("tm"))
            {
                body = after;
            } else {
                break;
            }
        }
        if let Some((name, pattern)) = PATTERNS.iter().find(|(name, _)| body.starts_with(name)) {
            if !literal.is_empty() {
                items.push(Item::Literal(std::mem::take(&mut literal)));
            }
            body = &body[name.len()..];
            let ordinal = if let Some(after) = body.strip_prefix("TH") {
                body = after;
                Some(true)
            } else if let Some(after) = body.strip_prefix("th") {
                body = after;
                Some(false)
            } else {
                None
            };
            items.push(Item::Field {
                pattern: *pattern,
                fill_mode,
                ordinal,
            });
            rest = body;
            continue;
        }
        // Not a pattern: the prefixes (if any) and the next character
        // are text.
        let consumed = rest.len() - body.len();
        literal.push_str(&rest[..consumed]);
        let c = body.chars().next().expect("not empty");
        literal.push(c);
        rest = &body[c.len_utf8()..];
    }
    if !literal.is_empty() {
        items.push(Item::Literal(literal));
    }
    items
}

pub(super) const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
pub(super) const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const ROMAN: [&str; 12] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII",
];

fn cased(text: &str, case: Case) -> String {
    match case {
        Case::Upper => text.to_uppercase(),
        Case::Capitalized => text.to_string(),
        Case::Lower => text.to_lowercase(),
    }
}

fn ordinal_suffix(n: i64, upper: bool) -> &'static str {
    let suffix = match (n % 100, n % 10) {
        (11..=13, _) => "th",
        (_, 1) => "st",
        (_, 2) => "nd",
        (_, 3) => "rd",
        _ => "th",
    };
    match (upper, suffix) {
        (false, s) => s,
        (true, "st") => "ST",
        (true, "nd") => "ND",
        (true, "rd") => "RD",
        (true, _) => "TH",
    }
}

/// `local` (with the zone's offset and abbreviation, for an instant) as
/// the template says.
fn format_items(items: &[Item], local: &NaiveDateTime, zone: Option<&(i32, String)>) -> String {
    let mut out = String::new();
    let year = local.year();
    // Years BC print as positive numbers (with BC).
    let shown_year = if year <= 0 { 1 - year } else { year } as i64;
    for item in items {
        let (pattern, fill_mode, ordinal) = match item {
            Item::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Item::Field {
                pattern,
                fill_mode,
                ordinal,
            } => (*pattern, *fill_mode, *ordinal),
        };
        let number = |n: i64, width: usize| -> (String, Option<i64>) {
            if fill_mode {
                (n.to_string(), Some(n))
            } else {
                (format!("{n:0width$}"), Some(n))
            }
        };
        let padded = |text: String| -> (String, Option<i64>) {
            if fill_mode {
                (text, None)
            } else {
                (format!("{text:<9}"), None)
            }
        };
        let hour12 = match local.hour() % 12 {
            0 => 12,
            h => h,
        } as i64;
        let (text, value) = match pattern {
            Pattern::Hh24 => number(local.hour() as i64, 2),
            Pattern::Hh12 | Pattern::Hh => number(hour12, 2),
            Pattern::Mi => number(local.minute() as i64, 2),
            Pattern::Ss => number(local.second() as i64, 2),
            Pattern::Ms => number((local.nanosecond() / 1_000_000) as i64, 3),
            Pattern::Us => number((local.nanosecond() / 1_000) as i64, 6),
            Pattern::Sssss | Pattern::Ssss => (local.num_seconds_from_midnight().to_string(), None),
            Pattern::Meridiem { upper, dots } => (meridiem(local.hour() >= 12, upper, dots), None),
            Pattern::YearComma => (
                format!("{},{:03}", shown_year / 1000, shown_year % 1000),
                Some(shown_year),
            ),
            Pattern::Yyyy => number(shown_year, 4),
            Pattern::Yyy => number(shown_year % 1000, 3),
            Pattern::Yy => number(shown_year % 100, 2),
            Pattern::Y => number(shown_year % 10, 1),
            Pattern::Iyyy => number(local.iso_week().year() as i64, 4),
            Pattern::Iyy => number(local.iso_week().year() as i64 % 1000, 3),
            Pattern::Iy => number(local.iso_week().year() as i64 % 100, 2),
            Pattern::I => number(local.iso_week().year() as i64 % 10, 1),
            Pattern::Era { upper, dots } => {
                let text = match (year <= 0, dots) {
                    (false, false) => "AD",
                    (true, false) => "BC",
                    (false, true) => "A.D.",
                    (true, true) => "B.C.",
                };
                let text = if upper {
                    text.to_string()
                } else {
                    text.to_lowercase()
                };
                (text, None)
            }
            Pattern::MonthName(case) => padded(cased(MONTHS[local.month0() as usize], case)),
            Pattern::MonthShort(case) => (cased(&MONTHS[local.month0() as usize][..3], case), None),
            Pattern::Mm => number(local.month() as i64, 2),
            Pattern::DayName(case) => padded(cased(
                DAYS[local.weekday().num_days_from_sunday() as usize],
                case,
            )),
            Pattern::DayShort(case) => (
                cased(
                    &DAYS[local.weekday().num_days_from_sunday() as usize][..3],
                    case,
                ),
                None,
            ),
            Pattern::Ddd => number(local.ordinal() as i64, 3),
            Pattern::Iddd => {
                let week = local.iso_week().week() as i64;
                let day = local.weekday().number_from_monday() as i64;
                number((week - 1) * 7 + day, 3)
            }
            Pattern::Dd => number(local.day() as i64, 2),
            Pattern::D => number(local.weekday().number_from_sunday() as i64, 1),
            Pattern::Id => number(local.weekday().number_from_monday() as i64, 1),
            Pattern::W => number((local.day() as i64 - 1) / 7 + 1, 1),
            Pattern::Ww => number((local.ordinal() as i64 - 1) / 7 + 1, 2),
            Pattern::Iw => number(local.iso_week().week() as i64, 2),
            Pattern::Cc => {
                let century = if year > 0 {
                    (year as i64 + 99) / 100
                } else {
                    -((99 - year as i64) / 100)
                };
                number(century, 2)
            }
            Pattern::J => {
                // Julian day: days since 4714-11-24 BC (proleptic Gregorian).
                let days = local.date().num_days_from_ce() as i64 + 1_721_425;
                (days.to_string(), Some(days))
            }
            Pattern::Q => number((local.month0() / 3 + 1) as i64, 1),
            Pattern::Roman { upper } => {
                let numeral = ROMAN[local.month0() as usize];
                let numeral = if upper {
                    numeral.to_string()
                } else {
                    numeral.to_lowercase()
                };
                if fill_mode {
                    (numeral, None)
                } else {
                    (format!("{numeral:<4}"), None)
                }
            }
            Pattern::Tz { upper } => {
                let text = zone
                    .map(|(_, abbreviation)| abbreviation.clone())
                    .unwrap_or_default();
                let text = if upper { text } else { text.to_lowercase() };
                (text, None)
            }
            Pattern::Tzh => {
                let offset = zone.map_or(0, |(o, _)| *o);
                let sign = if offset < 0 { '-' } else { '+' };
                (format!("{sign}{:02}", offset.unsigned_abs() / 3600), None)
            }
            Pattern::Tzm => {
                let offset = zone.map_or(0, |(o, _)| *o);
                (format!("{:02}", offset.unsigned_abs() / 60 % 60), None)
            }
            Pattern::Of => (offset_text(zone.map_or(0, |(o, _)| *o)), None),
        };
        out.push_str(&text);
        if let (Some(upper), Some(n)) = (ordinal, value) {
            out.push_str(ordinal_suffix(n, upper));
        }
    }
    out
}

/// `AM`/`PM`, `a.m.`/`p.m.` and the other spellings.
fn meridiem(pm: bool, upper: bool, dots: bool) -> String {
    let text = match (pm, dots) {
        (false, false) => "AM",
        (true, false) => "PM",
        (false, true) => "A.M.",
        (true, true) => "P.M.",
    };
    match upper {
        true => text.to_string(),
        false => text.to_lowercase(),
    }
}

/// An interval as the template says, as PostgreSQL formats one: its parts
/// as a calendar-free time (years and months from the months, days, and
/// hours that may pass 24); patterns tied to dates (day names, weeks,
/// zones) are an error.
fn format_interval(
    items: &[Item],
    value: datafusion::arrow::datatypes::IntervalMonthDayNano,
) -> Result<String> {
    let micros = value.nanoseconds / 1_000;
    let (years, months) = ((value.months / 12) as i64, (value.months % 12) as i64);
    let days = value.days as i64;
    let hours = micros / 3_600_000_000;
    let minutes = micros / 60_000_000 % 60;
    let seconds = micros / 1_000_000 % 60;
    let fraction = micros % 1_000_000;
    let mut out = String::new();
    for item in items {
        let (pattern, fill_mode, ordinal) = match item {
            Item::Literal(text) => {
                out.push_str(text);
                continue;
            }
            Item::Field {
                pattern,
                fill_mode,
                ordinal,
            } => (*pattern, *fill_mode, *ordinal),
        };
        // A negative part keeps its digits' width after the sign (`-03`).
        let number = |n: i64, width: usize| match fill_mode {
            true => n.to_string(),
            false => format!("{n:0w$}", w = width + usize::from(n < 0)),
        };
        let (text, value) = match pattern {
            Pattern::Hh24 => (number(hours, 2), hours),
            Pattern::Hh12 | Pattern::Hh => {
                let h = match hours % 12 {
                    0 => 12,
                    h => h,
                };
                (number(h, 2), h)
            }
            Pattern::Mi => (number(minutes, 2), minutes),
            Pattern::Ss => (number(seconds, 2), seconds),
            Pattern::Ms => (number(fraction / 1_000, 3), fraction / 1_000),
            Pattern::Us => (number(fraction, 6), fraction),
            Pattern::Sssss | Pattern::Ssss => {
                let s = hours * 3600 + minutes * 60 + seconds;
                (s.to_string(), s)
            }
            Pattern::Meridiem { upper, dots } => {
                out.push_str(&meridiem(hours % 24 >= 12, upper, dots));
                continue;
            }
            Pattern::YearComma => (format!("{},{:03}", years / 1000, years % 1000), years),
            Pattern::Yyyy => (number(years, 4), years),
            Pattern::Yyy => (number(years % 1000, 3), years),
            Pattern::Yy => (number(years % 100, 2), years),
            Pattern::Y => (number(years % 10, 1), years),
            Pattern::Mm => (number(months, 2), months),
            Pattern::Dd => (number(days, 2), days),
            // Days counted as PostgreSQL counts an interval's (30-day months).
            Pattern::Ddd => {
                let d = (years * 12 + months) * 30 + days;
                (number(d, 3), d)
            }
            // The month part in Roman numerals (none for zero months).
            Pattern::Roman { upper } => {
                if (1..=12).contains(&months) {
                    let numeral = ROMAN[(months - 1) as usize];
                    let numeral = match upper {
                        true => numeral.to_string(),
                        false => numeral.to_lowercase(),
                    };
                    out.push_str(&match fill_mode {
                        true => numeral,
                        false => format!("{numeral:<4}"),
                    });
                }
                continue;
            }
            _ => {
                return Err(DataFusionError::External(Box::new(
                    crate::error::QuiverError::DatetimeTemplate(
                        "invalid format specification for an interval value (intervals are \
                         not tied to specific calendar dates)"
                            .into(),
                    ),
                )))
            }
        };
        out.push_str(&text);
        if let Some(upper) = ordinal {
            out.push_str(ordinal_suffix(value, upper));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(template: &str, moment: &str) -> String {
        let local = NaiveDateTime::parse_from_str(moment, "%Y-%m-%d %H:%M:%S%.f").unwrap();
        format_items(&parse_template(template), &local, None)
    }

    #[test]
    fn templates_format_as_in_postgresql() {
        let at = "2024-03-05 14:07:09.123456";
        assert_eq!(show("YYYY-MM-DD HH24:MI:SS", at), "2024-03-05 14:07:09");
        assert_eq!(show("HH12:MI AM", at), "02:07 PM");
        assert_eq!(show("Month DD", at), "March     05");
        assert_eq!(show("FMMonth FMDDth", at), "March 5th");
        assert_eq!(show("Dy, Mon DD YYYY", at), "Tue, Mar 05 2024");
        assert_eq!(show("DAY", at), "TUESDAY  ");
        assert_eq!(show("\"Week\" IW, Q\"Q\"", at), "Week 10, 1Q");
        assert_eq!(show("MS US", at), "123 123456");
        assert_eq!(show("DDD D ID W WW CC", at), "065 3 2 1 10 21");
        assert_eq!(show("Y,YYY YY", at), "2,024 24");
        assert_eq!(show("RM", at), "III ");
        assert_eq!(show("J", "2024-01-01 00:00:00"), "2460311");
        assert_eq!(show("DDth", "2024-03-22 00:00:00"), "22nd");
        assert_eq!(show("YYYY \\\"x\\MI", at), "2024 \"x\\07");
    }
}
