//! Text to `date`, `timestamp` and `timestamptz` as PostgreSQL reads it.
//! Arrow's parser reads ISO 8601 (`2024-01-05 10:00:00`, `...T...Z`); a
//! value it refuses is read again in the other forms PostgreSQL accepts:
//! without seconds (`2024-01-05 10:00`), with month names (`Jan 5 2024`,
//! `5 January 2024`), `MM/DD/YYYY` (DateStyle MDY), a zone offset of hours
//! (`+02`), and the special values `epoch`, `now`, `today`, `tomorrow`,
//! `yesterday`.

use chrono::{Duration, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::pg_datestyle::Order;
use crate::error::QuiverError;

/// `pg_datetime_in(text)` as the cast of `text` to `target`.
pub fn datetime_in(target: &DataType, text: Expr) -> Expr {
    ScalarUDF::new_from_impl(DatetimeIn::new(target.clone(), None, Order::Mdy)).call(vec![text])
}

/// [`datetime_in`] reading a local time (no offset written) in `zone` (an
/// Arrow zone string) for a `timestamptz`, and an ambiguous date
/// (`01/02/2024`) in `order` (DateStyle).
pub fn datetime_in_zone(target: &DataType, text: Expr, zone: &str, order: Order) -> Expr {
    ScalarUDF::new_from_impl(DatetimeIn::new(
        target.clone(),
        Some(zone.to_string()),
        order,
    ))
    .call(vec![text])
}

/// Whether [`datetime_in`] reads text into `target`.
pub fn reads(target: &DataType) -> bool {
    matches!(target, DataType::Date32 | DataType::Timestamp(..))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DatetimeIn {
    target: DataType,
    /// Where a local time is, for a `timestamptz` (None: UTC).
    zone: Option<String>,
    order: Order,
    signature: Signature,
}

impl DatetimeIn {
    fn new(target: DataType, zone: Option<String>, order: Order) -> DatetimeIn {
        DatetimeIn {
            target,
            zone,
            order,
            // Immutable, so that a literal folds into a constant when the
            // statement is planned (as PostgreSQL reads `'now'` when it
            // parses the statement; now() is the function for later).
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }

    fn type_name(&self) -> &'static str {
        match &self.target {
            DataType::Date32 => "date",
            DataType::Timestamp(_, Some(_)) => "timestamp with time zone",
            _ => "timestamp",
        }
    }
}

impl ScalarUDFImpl for DatetimeIn {
    fn name(&self) -> &str {
        "pg_datetime_in"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.target.clone())
    }

    /// Named as the cast it replaces.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let texts = arrays[0].as_string::<i32>();
        let result = read_datetimes(texts, &self.target, self.zone.as_deref(), self.order)
            .map_err(|e| match e {
                Unread::Row(row) => {
                    DataFusionError::External(Box::new(QuiverError::InvalidDatetimeFormat {
                        type_name: self.type_name().into(),
                        value: texts.value(row).into(),
                    }))
                }
                Unread::Arrow(e) => e.into(),
            })?;
        super::pg_timezone::columnar(result, scalar)
    }
}

/// Why [`read_datetimes`] could not read a column.
pub enum Unread {
    /// The first value PostgreSQL would not read either.
    Row(usize),
    Arrow(datafusion::arrow::error::ArrowError),
}

/// Text values as `target` (a date or a timestamp): by Arrow's parser, and
/// what it refuses in PostgreSQL's other forms. For a `timestamptz`, a
/// value without an offset is a local time in `zone` (an Arrow zone
/// string; None or UTC: in UTC).
/// `today` is the date in `zone` (UTC without one), as PostgreSQL reads
/// `'today'` in the session's zone.
pub fn read_datetimes(
    texts: &StringArray,
    target: &DataType,
    zone: Option<&str>,
    order: Order,
) -> std::result::Result<ArrayRef, Unread> {
    let now = Utc::now().naive_utc();
    let offset = zone
        .and_then(super::pg_timezone::arrow_tz)
        .map_or(0, |tz| super::pg_timezone::offset_at(&tz, &now));
    let reading = Reading {
        order,
        today: (now + Duration::seconds(offset as i64)).date(),
    };
    read(texts, target, zone, &reading)
}

/// How ambiguous and relative dates are read: the DateStyle's order, and
/// the date `today` means.
struct Reading {
    order: Order,
    today: NaiveDate,
}

fn read(
    texts: &StringArray,
    target: &DataType,
    zone: Option<&str>,
    reading: &Reading,
) -> std::result::Result<ArrayRef, Unread> {
    if let DataType::Timestamp(unit, Some(_)) = target {
        let zone = zone.unwrap_or("UTC");
        let named = || texts.iter().flatten().any(|t| zone_named(t).is_some());
        if !matches!(zone, "UTC" | "+00:00") || named() {
            return read_in_zone(texts, *unit, target, zone, reading);
        }
    }
    let safe = CastOptions {
        safe: true,
        ..Default::default()
    };
    let read = cast_with_options(texts, target, &safe).map_err(Unread::Arrow)?;
    if read.null_count() == texts.null_count() {
        return Ok(read);
    }
    let date = *target == DataType::Date32;
    let rewritten: StringArray = texts
        .iter()
        .enumerate()
        .map(|(row, text)| match text {
            Some(text) if read.is_null(row) => iso_form(text, date, reading)
                .map(Some)
                .ok_or(Unread::Row(row)),
            other => Ok(other.map(str::to_string)),
        })
        .collect::<std::result::Result<_, _>>()?;
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(&rewritten, target, &strict).map_err(Unread::Arrow)
}

/// [`read_datetimes`] of instants whose local times are in `zone`: values
/// with an offset read as written, those that name a zone
/// (`2024-01-05 10:00 America/New_York`) as local times there, the others
/// as local times in `zone`.
fn read_in_zone(
    texts: &StringArray,
    unit: datafusion::arrow::datatypes::TimeUnit,
    target: &DataType,
    zone: &str,
    reading: &Reading,
) -> std::result::Result<ArrayRef, Unread> {
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Int64Type;
    let tz = super::pg_timezone::arrow_tz(zone).ok_or_else(|| {
        Unread::Arrow(datafusion::arrow::error::ArrowError::ParseError(format!(
            "time zone \"{zone}\" not recognized"
        )))
    })?;
    // Those that name a zone are read one by one below.
    let plain: StringArray = texts
        .iter()
        .map(|t| t.filter(|t| zone_named(t).is_none()))
        .collect();
    let instants = read(&plain, target, None, reading)?;
    let locals = read(&plain, &DataType::Timestamp(unit, None), None, reading)?;
    let as_values = |a: &ArrayRef| cast_with_options(a, &DataType::Int64, &CastOptions::default());
    let instants = as_values(&instants).map_err(Unread::Arrow)?;
    let locals = as_values(&locals).map_err(Unread::Arrow)?;
    let (instants, locals) = (
        instants.as_primitive::<Int64Type>(),
        locals.as_primitive::<Int64Type>(),
    );
    let values: Int64Array = (0..texts.len())
        .map(|row| {
            if texts.is_null(row) {
                return Ok(None);
            }
            let text = texts.value(row);
            if let Some((rest, named)) = zone_named(text) {
                let rest = StringArray::from(vec![rest]);
                let local = read(&rest, &DataType::Timestamp(unit, None), None, reading)
                    .map_err(|_| Unread::Row(row))?;
                let local = as_values(&local).map_err(Unread::Arrow)?;
                let local =
                    super::pg_timezone::naive_of(local.as_primitive::<Int64Type>().value(0), &unit)
                        .ok_or(Unread::Row(row))?;
                let utc = super::pg_timezone::local_to_utc(&named, &local);
                return super::pg_timezone::value_of(&utc, &unit)
                    .map(Some)
                    .ok_or(Unread::Row(row));
            }
            if instants.is_valid(row) && has_zone(text) {
                return Ok(Some(instants.value(row)));
            }
            let local =
                super::pg_timezone::naive_of(locals.value(row), &unit).ok_or(Unread::Row(row))?;
            let utc = super::pg_timezone::local_to_utc(&tz, &local);
            super::pg_timezone::value_of(&utc, &unit)
                .map(Some)
                .ok_or(Unread::Row(row))
        })
        .collect::<std::result::Result<_, _>>()?;
    cast_with_options(&values, target, &CastOptions::default()).map_err(Unread::Arrow)
}

/// A date and time followed by a zone's name (`... America/New_York`,
/// `... EST`): the text before it and the zone.
fn zone_named(text: &str) -> Option<(&str, datafusion::arrow::array::timezone::Tz)> {
    let (rest, name) = text.trim().rsplit_once(' ')?;
    if !name.starts_with(|c: char| c.is_ascii_alphabetic())
        || ["AM", "PM", "UTC", "GMT", "Z"]
            .iter()
            .any(|w| name.eq_ignore_ascii_case(w))
        || !rest.contains(':') && !rest.contains('-') && !rest.contains('/')
    {
        return None;
    }
    let zone = super::pg_timezone::parse_at_zone(name)?;
    Some((rest.trim_end(), super::pg_timezone::arrow_tz(&zone.arrow)?))
}

/// Whether a date/time text names its instant by itself: an offset or a
/// zone written after the time, or `now`/`epoch`.
fn has_zone(text: &str) -> bool {
    let trimmed = text.trim();
    if trimmed.eq_ignore_ascii_case("now") || trimmed.eq_ignore_ascii_case("epoch") {
        return true;
    }
    let upper = trimmed.to_ascii_uppercase();
    if upper.ends_with('Z') && upper[..upper.len() - 1].ends_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    split_offset(trimmed).1.is_some()
}

/// `text` in the ISO form Arrow reads (`2024-01-05T10:00:00+02:00`, or
/// `2024-01-05` for a date), when PostgreSQL would read it.
fn iso_form(text: &str, date: bool, reading: &Reading) -> Option<String> {
    let trimmed = text.trim();
    let midnight = |days: i64| (reading.today + Duration::days(days)).and_hms_opt(0, 0, 0);
    let special = match trimmed.to_ascii_lowercase().as_str() {
        "epoch" => Some(NaiveDate::from_ymd_opt(1970, 1, 1)?.and_hms_opt(0, 0, 0)?),
        "now" => Some(Utc::now().naive_utc()),
        "today" => Some(midnight(0)?),
        "tomorrow" => Some(midnight(1)?),
        "yesterday" => Some(midnight(-1)?),
        _ => None,
    };
    let (moment, offset) = match special {
        Some(moment) => (moment, Some("+00:00".to_string())),
        None => {
            let (rest, offset) = split_offset(trimmed);
            (parse_local(rest, reading.order)?, offset)
        }
    };
    if date {
        return Some(moment.format("%Y-%m-%d").to_string());
    }
    let mut iso = moment.format("%Y-%m-%dT%H:%M:%S%.f").to_string();
    if let Some(offset) = offset {
        iso.push_str(&offset);
    }
    Some(iso)
}

/// The text and its zone offset as `+HH:MM`: `Z`, `UTC`, `GMT`, `+02`,
/// `-0530`, `+05:30` at the end.
fn split_offset(text: &str) -> (&str, Option<String>) {
    for zone in ["Z", " UTC", " GMT", "UTC", "GMT"] {
        if let Some(rest) = text.strip_suffix(zone) {
            if rest.ends_with(|c: char| c.is_ascii_digit()) {
                return (rest.trim_end(), Some("+00:00".into()));
            }
        }
    }
    // A sign after the time (not the date's hyphens): the last + or -
    // that follows a colon-separated time.
    if let Some(at) = text.rfind(['+', '-']) {
        let (rest, zone) = text.split_at(at);
        let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
        if rest.contains(':') && !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            let (hours, minutes) = match digits.len() {
                1 | 2 => (digits.as_str(), "00"),
                4 => digits.split_at(2),
                _ => return (text, None),
            };
            if let Ok(hours @ 0..=15) = hours.parse::<u32>() {
                return (
                    rest.trim_end(),
                    Some(format!("{}{hours:02}:{minutes}", &zone[..1])),
                );
            }
        }
    }
    (text, None)
}

/// A date and time without zone in one of PostgreSQL's other forms; a
/// date of numbers without the year first is read in `order`.
fn parse_local(text: &str, order: Order) -> Option<NaiveDateTime> {
    const DATES: [&str; 8] = [
        "%Y-%m-%d",
        "%b %d %Y",
        "%B %d %Y",
        "%b %d, %Y",
        "%B %d, %Y",
        "%d %b %Y",
        "%d %B %Y",
        "%Y%m%d",
    ];
    const NUMERIC: [&str; 3] = ["%m/%d/%Y", "%m-%d-%Y", "%m.%d.%Y"];
    const NUMERIC_DMY: [&str; 3] = ["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y"];
    const NUMERIC_YMD: [&str; 2] = ["%Y/%m/%d", "%Y.%m.%d"];
    const TIMES: [&str; 4] = ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M", "%I:%M %p"];
    let numeric: &[&str] = match order {
        Order::Mdy => &NUMERIC,
        Order::Dmy => &NUMERIC_DMY,
        Order::Ymd => &NUMERIC_YMD,
    };
    // What DateStyle Postgres writes: `Sun Dec 07 07:37:16.5 1997` (MDY)
    // or `Sun 07 Dec 07:37:16.5 1997` (DMY).
    for format in ["%a %b %d %H:%M:%S%.f %Y", "%a %d %b %H:%M:%S%.f %Y"] {
        if let Ok(moment) = NaiveDateTime::parse_from_str(text, format) {
            return Some(moment);
        }
    }
    for date in DATES.iter().chain(numeric) {
        if let Ok(day) = NaiveDate::parse_from_str(text, date) {
            return day.and_hms_opt(0, 0, 0);
        }
        for separator in [" ", "T"] {
            for time in TIMES {
                let format = format!("{date}{separator}{time}");
                if let Ok(moment) = NaiveDateTime::parse_from_str(text, &format) {
                    return Some(moment);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_postgresql_reads() {
        let mdy = Reading {
            order: Order::Mdy,
            today: NaiveDate::from_ymd_opt(2024, 1, 5).unwrap(),
        };
        let ts = |t: &str| iso_form(t, false, &mdy);
        assert_eq!(
            ts("2024-01-01 10:00").as_deref(),
            Some("2024-01-01T10:00:00")
        );
        assert_eq!(
            ts("2024-01-01T10:00").as_deref(),
            Some("2024-01-01T10:00:00")
        );
        assert_eq!(ts("Jan 5 2024").as_deref(), Some("2024-01-05T00:00:00"));
        assert_eq!(
            ts("January 5, 2024 10:30").as_deref(),
            Some("2024-01-05T10:30:00")
        );
        assert_eq!(ts("5 Jan 2024").as_deref(), Some("2024-01-05T00:00:00"));
        assert_eq!(ts("01/05/2024").as_deref(), Some("2024-01-05T00:00:00"));
        assert_eq!(
            ts("2024-01-01 10:00+02").as_deref(),
            Some("2024-01-01T10:00:00+02:00")
        );
        assert_eq!(
            ts("2024-01-01 10:00 -0530").as_deref(),
            Some("2024-01-01T10:00:00-05:30")
        );
        assert_eq!(
            ts("2024-01-01 10:00 UTC").as_deref(),
            Some("2024-01-01T10:00:00+00:00")
        );
        assert_eq!(ts("epoch").as_deref(), Some("1970-01-01T00:00:00+00:00"));
        assert_eq!(
            iso_form("Jan 5 2024", true, &mdy).as_deref(),
            Some("2024-01-05")
        );
        assert_eq!(
            iso_form("2024-01-05 10:00", true, &mdy).as_deref(),
            Some("2024-01-05")
        );
        assert_eq!(ts("not a date"), None);
        assert_eq!(ts("2024-13-01 10:00"), None);
        // DateStyle's order reads an ambiguous date; its styles read back.
        let dmy_reading = Reading {
            order: Order::Dmy,
            ..mdy
        };
        let dmy = |t: &str| iso_form(t, true, &dmy_reading);
        assert_eq!(dmy("01/05/2024").as_deref(), Some("2024-05-01"));
        assert_eq!(dmy("17.12.1997").as_deref(), Some("1997-12-17"));
        assert_eq!(dmy("12/17/1997"), None);
        assert_eq!(
            ts("Sun Dec 07 07:37:16.5 1997").as_deref(),
            Some("1997-12-07T07:37:16.500")
        );
        assert_eq!(
            ts("12-17-1997 07:37:16").as_deref(),
            Some("1997-12-17T07:37:16")
        );
    }
}
