//! The session's `TimeZone`, applied where PostgreSQL applies it.
//!
//! A `timestamptz` is an instant. Every one in a plan carries Arrow's
//! "UTC" label (table columns, `now()`, casts), so DataFusion compares,
//! sorts and groups instants without ever mixing zones. The session's zone
//! matters only at the edges, and this analyzer rule (after type coercion)
//! puts it there:
//!
//! - text without an offset, and a `timestamp` or `date` made a
//!   `timestamptz`, are read as local times in the zone (an ambiguous local
//!   time at a DST change is the later instant, a skipped one is read with
//!   the offset before the change, as PostgreSQL does);
//! - a `timestamptz` made a `timestamp`, `date` or `time`, and the instant
//!   that `date_trunc`, `extract` and `to_char` look at, is the local time;
//! - adding days or months to a `timestamptz` follows the zone's calendar
//!   (one day across a DST change is 23 or 25 hours);
//! - `x AT TIME ZONE 'zone'` turns a `timestamptz` into that zone's local
//!   `timestamp`, and a `timestamp` into the `timestamptz` it is there;
//! - `timestamp::text` is PostgreSQL's text, the offset of the zone included.
//!
//! Values sent to a client are shown in the zone by the text encoder.
//!
//! Over 800 lines: zone parsing (IANA, offsets, POSIX) and the analyzer rule
//! that applies the zone share the zone type; its tests are a third of it.

use std::sync::{Arc, RwLock};

use chrono::{
    DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone,
};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type, TimeUnit};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TryCast, TypeSignature, Volatility,
};
use datafusion::optimizer::AnalyzerRule;

use crate::error::QuiverError;

/// The label every instant carries inside a plan.
const UTC: &str = crate::engine::types::UTC;

/// A time zone as the `TimeZone` setting shows it and as Arrow reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// What `SHOW TimeZone` says (`Europe/Berlin`, `<+05:30>-05:30`).
    pub name: String,
    /// An IANA name or a fixed offset `+05:30`.
    pub arrow: String,
}

impl Zone {
    /// The abbreviation a POSIX zone names itself by (`UTC` of `UTC+3`,
    /// `-07` of `<-07>+07`), which `to_char`'s `TZ` prints; None for an
    /// IANA zone, whose abbreviation depends on the date.
    pub fn abbreviation(&self) -> Option<String> {
        if let Some(inner) = self.name.strip_prefix('<') {
            return inner.split_once('>').map(|(a, _)| a.to_string());
        }
        if self.name == self.arrow {
            return None;
        }
        let letters: String = self
            .name
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        (!letters.is_empty()).then_some(letters)
    }
}

/// A zone as PostgreSQL's `TimeZone` setting reads it: an IANA name in any
/// case (`europe/berlin`), hours east of UTC (`-7`, `+05:30`, `5.5`, or
/// `INTERVAL '+05:30' HOUR TO MINUTE`), or a POSIX zone whose offset is
/// hours *west* (`UTC+3` is three hours behind UTC, `<+05>-05` five
/// ahead).
pub fn parse_zone(value: &str) -> Option<Zone> {
    let value = value.trim();
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|tz| tz.name().eq_ignore_ascii_case(value))
    {
        return Some(Zone {
            name: tz.name().to_string(),
            arrow: tz.name().to_string(),
        });
    }
    let east = |seconds: i32| Zone {
        name: format!("<{}>{}", offset_text(seconds), offset_text(-seconds)),
        arrow: arrow_offset(seconds),
    };
    // INTERVAL '+05:30' HOUR TO MINUTE
    let lower = value.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("interval") {
        let quoted = rest.trim().strip_prefix('\'')?;
        let (text, _) = quoted.split_once('\'')?;
        return offset_seconds(text).map(east);
    }
    if value.starts_with(|c: char| c == '+' || c == '-' || c.is_ascii_digit()) {
        if let Ok(hours) = value.parse::<f64>() {
            let seconds = (hours * 3600.0).round();
            return (seconds.abs() < 16.0 * 3600.0).then(|| east(seconds as i32));
        }
        return offset_seconds(value).map(east);
    }
    // POSIX: an abbreviation (letters, or anything in <>) and hours west.
    let abbreviation_end = if value.starts_with('<') {
        value.find('>')? + 1
    } else {
        value
            .find(|c: char| !c.is_ascii_alphabetic())
            .filter(|at| *at >= 3)?
    };
    let west = offset_seconds(&value[abbreviation_end..])?;
    Some(Zone {
        name: value.to_string(),
        arrow: arrow_offset(-west),
    })
}

/// A zone as `AT TIME ZONE` reads it: first the usual abbreviations
/// (`PST`, `CET`: a fixed offset, as in PostgreSQL), then as the setting.
pub fn parse_at_zone(value: &str) -> Option<Zone> {
    const ABBREVIATIONS: [(&str, i32); 33] = [
        ("UTC", 0),
        ("UT", 0),
        ("GMT", 0),
        ("Z", 0),
        ("ZULU", 0),
        ("EST", -5 * 60),
        ("EDT", -4 * 60),
        ("CST", -6 * 60),
        ("CDT", -5 * 60),
        ("MST", -7 * 60),
        ("MDT", -6 * 60),
        ("PST", -8 * 60),
        ("PDT", -7 * 60),
        ("AKST", -9 * 60),
        ("AKDT", -8 * 60),
        ("HST", -10 * 60),
        ("WET", 0),
        ("WEST", 60),
        ("BST", 60),
        ("CET", 60),
        ("CEST", 2 * 60),
        ("MET", 60),
        ("MEST", 2 * 60),
        ("EET", 2 * 60),
        ("EEST", 3 * 60),
        ("MSK", 3 * 60),
        ("IST", 2 * 60),
        ("JST", 9 * 60),
        ("KST", 9 * 60),
        ("AWST", 8 * 60),
        ("ACST", 9 * 60 + 30),
        ("AEST", 10 * 60),
        ("AEDT", 11 * 60),
    ];
    let trimmed = value.trim();
    if let Some((_, minutes)) = ABBREVIATIONS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
    {
        return Some(Zone {
            name: trimmed.to_ascii_uppercase(),
            arrow: arrow_offset(minutes * 60),
        });
    }
    parse_zone(trimmed)
}

/// `+05`, `-0530`, `+05:30`, `5:30:15` as seconds (a missing sign is +).
fn offset_seconds(text: &str) -> Option<i32> {
    let text = text.trim();
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => (1, text),
    };
    let mut parts = digits.split(':');
    let first = parts.next()?;
    let (hours, mut minutes) = match (first.len(), first.bytes().all(|b| b.is_ascii_digit())) {
        (1 | 2, true) => (first.parse::<i32>().ok()?, 0),
        (4, true) => (first[..2].parse().ok()?, first[2..].parse().ok()?),
        _ => return None,
    };
    let mut seconds = 0;
    if let Some(m) = parts.next() {
        minutes = m.parse().ok().filter(|m| (0..60).contains(m))?;
    }
    if let Some(s) = parts.next() {
        seconds = s.parse().ok().filter(|s| (0..60).contains(s))?;
    }
    if parts.next().is_some() || hours > 15 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60 + seconds))
}

/// An offset as Arrow reads a fixed zone (seconds dropped: none of Arrow's
/// zones has them).
fn arrow_offset(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    format!("{sign}{:02}:{:02}", s / 3600, s / 60 % 60)
}

/// An offset as PostgreSQL prints it after a `timestamptz`: `+01`,
/// `+05:30`, `-03:30:52`.
pub fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let s = seconds.unsigned_abs();
    let mut text = format!("{sign}{:02}", s / 3600);
    if !s.is_multiple_of(3600) {
        text.push_str(&format!(":{:02}", s / 60 % 60));
        if !s.is_multiple_of(60) {
            text.push_str(&format!(":{:02}", s % 60));
        }
    }
    text
}

/// The Arrow zone of an `arrow` zone string (checked when it was set).
pub fn arrow_tz(arrow: &str) -> Option<Tz> {
    arrow.parse().ok()
}

/// Whether a zone label means UTC.
fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "+00:00" | "Etc/UTC" | "Z")
}

/// The offset east of UTC, in seconds, in force at an instant.
pub fn offset_at(tz: &Tz, utc: &NaiveDateTime) -> i32 {
    let utc = in_known_years(utc);
    tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()
}

/// The last year whose transitions the zone tables hold.
const LAST_KNOWN_YEAR: i32 = 2037;

/// The zone tables stop at 2037, after which their last offset would hold
/// forever (London in summer 2179 would be on GMT). PostgreSQL applies the
/// zone's last rule to every later year; so do we, by reading a later
/// date in the equivalent year before 2038 (the same weekday on January 1
/// and the same leap year-ness, so DST starts on the same dates).
fn in_known_years(moment: &NaiveDateTime) -> NaiveDateTime {
    let year = moment.year();
    if year <= LAST_KNOWN_YEAR {
        return *moment;
    }
    let leap = |y: i32| NaiveDate::from_ymd_opt(y, 2, 29).is_some();
    let weekday = |y: i32| NaiveDate::from_ymd_opt(y, 1, 1).map(|d| d.weekday());
    (LAST_KNOWN_YEAR - 27..=LAST_KNOWN_YEAR)
        .rev()
        .find(|y| leap(*y) == leap(year) && weekday(*y) == weekday(year))
        .and_then(|y| moment.with_year(y))
        .unwrap_or(*moment)
}

/// The instant a local time is in a zone, as PostgreSQL decides it: a time
/// that occurs twice (clocks turned back) is the later instant, one that
/// never occurs (clocks turned forward) is read with the offset in force
/// before the change.
pub fn local_to_utc(tz: &Tz, local: &NaiveDateTime) -> NaiveDateTime {
    let known = in_known_years(local);
    let utc = match tz.from_local_datetime(&known) {
        LocalResult::Single(t) => t.naive_utc(),
        LocalResult::Ambiguous(_, later) => later.naive_utc(),
        LocalResult::None => {
            let before = offset_at(tz, &(known - Duration::hours(12)));
            known - Duration::seconds(before as i64)
        }
    };
    // The offset found, applied to the date itself.
    *local - (known - utc)
}

fn units_per_second(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// A timestamp value of `unit` as a date and time (None past chrono's range).
pub fn naive_of(value: i64, unit: &TimeUnit) -> Option<NaiveDateTime> {
    let per = units_per_second(unit);
    let nanos = value.rem_euclid(per) * (1_000_000_000 / per);
    DateTime::from_timestamp(value.div_euclid(per), nanos as u32).map(|t| t.naive_utc())
}

/// A date and time (UTC) as a timestamp value of `unit`.
pub fn value_of(moment: &NaiveDateTime, unit: &TimeUnit) -> Option<i64> {
    let utc = moment.and_utc();
    match unit {
        TimeUnit::Second => Some(utc.timestamp()),
        TimeUnit::Millisecond => Some(utc.timestamp_millis()),
        TimeUnit::Microsecond => Some(utc.timestamp_micros()),
        TimeUnit::Nanosecond => utc.timestamp_nanos_opt(),
    }
}

/// Which way [`Shift`] moves a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Direction {
    /// An instant to the local time in the zone (`timestamptz` to
    /// `timestamp`).
    ToLocal,
    /// A local time in the zone to the instant (`timestamp` to
    /// `timestamptz`).
    ToInstant,
    /// A local time (first argument) to an instant with the offset in
    /// force at the second argument (an instant): `date_trunc` to hours
    /// or less keeps the offset of the value it truncates.
    WithOffsetOf,
}

/// Moves timestamps between instants and local times of one zone.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Shift {
    direction: Direction,
    zone: String,
    signature: Signature,
}

fn shift(direction: Direction, zone: &str, value: Expr) -> Expr {
    ScalarUDF::new_from_impl(Shift {
        direction,
        zone: zone.to_string(),
        signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
    })
    .call(vec![value])
}

/// `value` (a `timestamptz`) as the local time in `zone`.
fn to_local(zone: &str, value: Expr) -> Expr {
    shift(Direction::ToLocal, zone, value)
}

/// `value` (a `timestamp`) as the instant it is in `zone`.
fn to_instant(zone: &str, value: Expr) -> Expr {
    shift(Direction::ToInstant, zone, value)
}

/// `local` (a `timestamp`) as an instant with the offset `reference` (an
/// instant) has in `zone`.
fn with_offset_of(zone: &str, local: Expr, reference: Expr) -> Expr {
    ScalarUDF::new_from_impl(Shift {
        direction: Direction::WithOffsetOf,
        zone: zone.to_string(),
        signature: Signature::new(TypeSignature::Any(2), Volatility::Immutable),
    })
    .call(vec![local, reference])
}

impl ScalarUDFImpl for Shift {
    fn name(&self) -> &str {
        match self.direction {
            Direction::ToLocal => "pg_local_time",
            Direction::ToInstant | Direction::WithOffsetOf => "pg_instant",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match (&args[0], self.direction) {
            (DataType::Timestamp(unit, _), Direction::ToLocal) => {
                Ok(DataType::Timestamp(*unit, None))
            }
            (DataType::Timestamp(unit, _), Direction::ToInstant | Direction::WithOffsetOf) => {
                Ok(DataType::Timestamp(*unit, Some(UTC.into())))
            }
            (other, _) => Err(DataFusionError::Plan(format!(
                "{} takes a timestamp, not {other}",
                self.name()
            ))),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        let DataType::Timestamp(unit, _) = input.data_type().clone() else {
            return Err(DataFusionError::Internal(format!(
                "{} got {}",
                self.name(),
                input.data_type()
            )));
        };
        let tz = arrow_tz(&self.zone).ok_or_else(|| unknown_zone(&self.zone))?;
        let values = cast(&input, &DataType::Int64)?;
        let references = match args.args.get(1) {
            Some(reference) => {
                let reference = reference.to_array(args.number_rows)?;
                let DataType::Timestamp(reference_unit, _) = reference.data_type().clone() else {
                    return Err(DataFusionError::Internal(format!(
                        "{} got {}",
                        self.name(),
                        reference.data_type()
                    )));
                };
                Some((cast(&reference, &DataType::Int64)?, reference_unit))
            }
            None => None,
        };
        let per = units_per_second(&unit);
        let moved: Int64Array = values
            .as_primitive::<Int64Type>()
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let Some(v) = v else { return Ok(None) };
                match self.direction {
                    Direction::ToLocal => local_value(v, &unit, &tz).map(Some),
                    Direction::ToInstant => instant_value(v, &unit, &tz).map(Some),
                    Direction::WithOffsetOf => {
                        let (references, reference_unit) =
                            references.as_ref().expect("two arguments");
                        let references = references.as_primitive::<Int64Type>();
                        if references.is_null(row) {
                            return Ok(None);
                        }
                        let reference = naive_of(references.value(row), reference_unit)
                            .ok_or_else(out_of_range)?;
                        Ok(Some(v - offset_at(&tz, &reference) as i64 * per))
                    }
                }
            })
            .collect::<Result<_>>()?;
        let result = cast(&moved, &self.return_type(&[input.data_type().clone()])?)?;
        columnar(result, scalar)
    }
}

fn out_of_range() -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::DatetimeOverflow(
        "timestamp out of range".into(),
    )))
}

/// An instant (a timestamp value of `unit`) as the local time in `tz`.
fn local_value(v: i64, unit: &TimeUnit, tz: &Tz) -> Result<i64> {
    let moment = naive_of(v, unit).ok_or_else(out_of_range)?;
    Ok(v + offset_at(tz, &moment) as i64 * units_per_second(unit))
}

/// A local time in `tz` (a timestamp value of `unit`) as the instant.
fn instant_value(v: i64, unit: &TimeUnit, tz: &Tz) -> Result<i64> {
    let moment = naive_of(v, unit).ok_or_else(out_of_range)?;
    value_of(&local_to_utc(tz, &moment), unit).ok_or_else(out_of_range)
}

/// A function's result: a scalar when every argument was one.
pub(crate) fn columnar(result: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    Ok(match scalar {
        true => ColumnarValue::Scalar(ScalarValue::try_from_array(&result, 0)?),
        false => ColumnarValue::Array(result),
    })
}

fn unknown_zone(zone: &str) -> DataFusionError {
    DataFusionError::External(Box::new(QuiverError::InvalidParameterValue(format!(
        "time zone \"{zone}\" not recognized"
    ))))
}

/// `timezone(zone, x)`, which `x AT TIME ZONE zone` is: a `timestamptz`
/// becomes the local time in the zone, a `timestamp` the instant it is
/// there. (Text and dates are made instants by [`SessionTimeZone`].)
#[derive(Debug, PartialEq, Eq, Hash)]
struct AtTimeZone {
    signature: Signature,
}

/// The `timezone(zone, timestamp)` function.
pub fn at_time_zone_udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(AtTimeZone {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

impl ScalarUDFImpl for AtTimeZone {
    fn name(&self) -> &str {
        "timezone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let [zone, value] = args else {
            return Err(DataFusionError::Plan(
                "timezone(zone, timestamp) takes two arguments".into(),
            ));
        };
        if !is_text(zone) && *zone != DataType::Null {
            return Err(DataFusionError::Plan(format!(
                "function timezone({zone}, {value}) does not exist"
            )));
        }
        let value = match value {
            DataType::Timestamp(..) | DataType::Date32 => value.clone(),
            t if is_text(t) || *t == DataType::Null => DataType::Utf8,
            other => {
                return Err(DataFusionError::Plan(format!(
                    "function timezone(text, {other}) does not exist"
                )))
            }
        };
        Ok(vec![DataType::Utf8, value])
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match &args[1] {
            DataType::Timestamp(unit, None) => DataType::Timestamp(*unit, Some(UTC.into())),
            DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, None),
            _ => DataType::Timestamp(TimeUnit::Microsecond, None),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let zones = args.args[0].to_array(args.number_rows)?;
        let zones = zones.as_string::<i32>();
        let input = args.args[1].to_array(args.number_rows)?;
        let DataType::Timestamp(unit, label) = input.data_type().clone() else {
            return Err(DataFusionError::Internal(format!(
                "timezone() got {}",
                input.data_type()
            )));
        };
        let values = cast(&input, &DataType::Int64)?;
        let mut last: Option<(String, Tz)> = None;
        let moved: Int64Array = values
            .as_primitive::<Int64Type>()
            .iter()
            .enumerate()
            .map(|(row, v)| {
                let (Some(v), false) = (v, zones.is_null(row)) else {
                    return Ok(None);
                };
                let name = zones.value(row);
                if last.as_ref().is_none_or(|(n, _)| n != name) {
                    let tz = parse_at_zone(name)
                        .and_then(|z| arrow_tz(&z.arrow))
                        .ok_or_else(|| unknown_zone(name))?;
                    last = Some((name.to_string(), tz));
                }
                let tz = &last.as_ref().expect("set above").1;
                match label {
                    Some(_) => local_value(v, &unit, tz).map(Some),
                    None => instant_value(v, &unit, tz).map(Some),
                }
            })
            .collect::<Result<_>>()?;
        let result = cast(
            &moved,
            &self.return_type(&[DataType::Utf8, input.data_type().clone()])?,
        )?;
        columnar(result, scalar)
    }
}

/// `value::text` of a timestamp (or a date) as PostgreSQL writes it.
fn timestamp_to_text(
    value: Expr,
    zone: &str,
    style: super::pg_datestyle::DateStyle,
    to: &DataType,
) -> Expr {
    let text = ScalarUDF::new_from_impl(TimestampText {
        zone: zone.to_string(),
        style,
        signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
    })
    .call(vec![value]);
    cast_to(text, to.clone())
}

/// `timestamp::text`, `timestamptz::text` and (outside the ISO DateStyle)
/// `date::text` as PostgreSQL writes them.
#[derive(Debug, PartialEq, Eq, Hash)]
struct TimestampText {
    zone: String,
    style: super::pg_datestyle::DateStyle,
    signature: Signature,
}

impl ScalarUDFImpl for TimestampText {
    fn name(&self) -> &str {
        "pg_timestamp_text"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    /// Named as the cast it replaces.
    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        Ok(args[0].schema_name().to_string())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let input = args.args[0].to_array(args.number_rows)?;
        if input.data_type() == &DataType::Date32 {
            let texts: StringArray = input
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .iter()
                .map(|v| v.and_then(|days| date_text(days, self.style)))
                .collect();
            return columnar(Arc::new(texts), scalar);
        }
        let DataType::Timestamp(unit, label) = input.data_type().clone() else {
            return Err(DataFusionError::Internal(format!(
                "pg_timestamp_text got {}",
                input.data_type()
            )));
        };
        let tz = match label {
            Some(_) => Some(arrow_tz(&self.zone).ok_or_else(|| unknown_zone(&self.zone))?),
            None => None,
        };
        let values = cast(&input, &DataType::Int64)?;
        let texts: StringArray = values
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| {
                v.and_then(|v| {
                    let zone = tz.as_ref().map(|tz| (tz, self.zone.as_str()));
                    styled_timestamp_text(v, &unit, zone, self.style)
                })
            })
            .collect();
        let result: ArrayRef = Arc::new(texts);
        columnar(result, scalar)
    }
}

/// A timestamp as PostgreSQL writes it: `2024-01-05 10:00:00`, fractional
/// seconds without trailing zeros, and for an instant (`zone` given) the
/// local time there and its offset (`2024-01-05 11:00:00+01`).
pub fn timestamp_text(value: i64, unit: &TimeUnit, zone: Option<&Tz>) -> Option<String> {
    styled_timestamp_text(value, unit, zone.map(|tz| (tz, "")), Default::default())
}

/// [`timestamp_text`] in a DateStyle; outside ISO an instant shows its
/// zone's abbreviation (`CET`), for which `zone` carries its name as the
/// TimeZone setting gives it to Arrow.
pub fn styled_timestamp_text(
    value: i64,
    unit: &TimeUnit,
    zone: Option<(&Tz, &str)>,
    style: super::pg_datestyle::DateStyle,
) -> Option<String> {
    let utc = naive_of(value, unit)?;
    let offset = zone.map(|(tz, _)| offset_at(tz, &utc));
    let local = utc + Duration::seconds(offset.unwrap_or(0) as i64);
    let suffix = match (offset, zone) {
        (Some(offset), Some((_, name))) => {
            let abbreviation = match style.style {
                super::pg_datestyle::Style::Iso => String::new(),
                _ => abbreviation_at(name, &utc, offset),
            };
            Some((offset_text(offset), abbreviation))
        }
        _ => None,
    };
    Some(style.timestamp_text(
        local,
        suffix.as_ref().map(|(o, a)| (o.as_str(), a.as_str())),
    ))
}

/// A date (days since 1970-01-01) in a DateStyle.
pub fn date_text(days: i32, style: super::pg_datestyle::DateStyle) -> Option<String> {
    let date = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(Duration::days(days as i64))?;
    Some(style.date_text(date))
}

/// The abbreviation of `zone` (an Arrow zone string) at an instant, as
/// PostgreSQL prints it (`CET`, `PDT`); its offset (`+05:30`) where the
/// zone has none.
pub fn abbreviation_at(zone: &str, utc: &NaiveDateTime, offset: i32) -> String {
    use chrono_tz::OffsetName;
    zone.parse::<chrono_tz::Tz>()
        .ok()
        .and_then(|tz| {
            tz.offset_from_utc_datetime(&in_known_years(utc))
                .abbreviation()
                .filter(|a| a.starts_with(|c: char| c.is_ascii_alphabetic()))
                .map(str::to_string)
        })
        .unwrap_or_else(|| offset_text(offset))
}

/// The session's zone, as the analyzer rule reads it and `SET TIME ZONE`
/// changes it.
pub type ZoneHandle = Arc<RwLock<Zone>>;

/// UTC, the zone a session starts in.
pub fn utc() -> Zone {
    Zone {
        name: UTC.into(),
        arrow: UTC.into(),
    }
}

/// The rule that applies the session's zone (see the module comment).
#[derive(Debug)]
pub struct SessionTimeZone {
    pub zone: ZoneHandle,
    /// DateStyle: how timestamps become text, in which order dates are
    /// read.
    pub date_style: super::pg_datestyle::Handle,
}

impl AnalyzerRule for SessionTimeZone {
    fn name(&self) -> &str {
        "pg_session_time_zone"
    }

    fn analyze(&self, plan: LogicalPlan, config: &ConfigOptions) -> Result<LogicalPlan> {
        let now = datafusion::functions::datetime::now(config).call(vec![]);
        let session = self
            .zone
            .read()
            .map(|z| z.clone())
            .unwrap_or_else(|_| utc());
        let zone = session.arrow.clone();
        let abbreviation = session.abbreviation();
        let style = self.date_style.read().map(|s| *s).unwrap_or_default();
        let session = Session {
            zone: &zone,
            abbreviation: abbreviation.as_deref(),
            style,
            now: &now,
        };
        Ok(plan
            .transform_up_with_subqueries(|node| {
                super::pg_arithmetic::rewrite_expressions(node, |expr, schema| {
                    expr.transform_up(|e| zoned(e, schema, &session))
                })
            })?
            .data)
    }
}

fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn cast_to(value: Expr, to: DataType) -> Expr {
    Expr::Cast(Cast::new(Box::new(value), to))
}

/// What the rule applies: the session's zone (Arrow's form) and its
/// abbreviation, its DateStyle, and `now()`.
struct Session<'a> {
    zone: &'a str,
    abbreviation: Option<&'a str>,
    style: super::pg_datestyle::DateStyle,
    now: &'a Expr,
}

/// One expression with the session's zone and DateStyle applied.
fn zoned(expr: Expr, schema: &DFSchema, session: &Session) -> Result<Transformed<Expr>> {
    use super::pg_datestyle::{Order, Style};
    use DataType::Timestamp;
    let Session {
        zone,
        abbreviation,
        style,
        now,
    } = *session;
    let type_of = |e: &Expr| e.get_type(schema).ok();
    let utc_session = is_utc(zone);
    let instant_type = |e: &Expr| matches!(type_of(e), Some(Timestamp(_, Some(_))));
    match expr {
        Expr::Cast(Cast { expr: inner, field }) => {
            let (Some(from), to) = (type_of(&inner), field.data_type().clone()) else {
                return Ok(Transformed::no(Expr::Cast(Cast { expr: inner, field })));
            };
            let rewritten = match (&from, &to) {
                // Text to timestamptz: local times read in the session's
                // zone; dates of numbers in the DateStyle's order.
                (f, Timestamp(_, Some(label)))
                    if is_text(f)
                        && is_utc(label)
                        && (!utc_session || style.order != Order::Mdy) =>
                {
                    Some(super::pg_datetime::datetime_in_zone(
                        &to,
                        cast_to(*inner.clone(), DataType::Utf8),
                        zone,
                        style.order,
                    ))
                }
                // Dates of numbers in the DateStyle's order; `'today'` is
                // the date in the session's zone.
                (f, Timestamp(_, None) | DataType::Date32)
                    if is_text(f) && (!utc_session || style.order != Order::Mdy) =>
                {
                    Some(super::pg_datetime::datetime_in_zone(
                        &to,
                        cast_to(*inner.clone(), DataType::Utf8),
                        zone,
                        style.order,
                    ))
                }
                // A local time (timestamp or date) made an instant: where
                // the session's zone is.
                (Timestamp(_, None) | DataType::Date32, Timestamp(unit, Some(label)))
                    if is_utc(label) =>
                {
                    (!utc_session).then(|| {
                        let local = cast_to(*inner.clone(), Timestamp(*unit, None));
                        to_instant(zone, local)
                    })
                }
                // An instant made a local time, date or time of day.
                (
                    Timestamp(_, Some(_)),
                    Timestamp(_, None) | DataType::Date32 | DataType::Time64(_),
                ) if !utc_session => Some(cast_to(to_local(zone, *inner.clone()), to.clone())),
                (Timestamp(..), t) if is_text(t) => {
                    Some(timestamp_to_text(*inner.clone(), zone, style, &to))
                }
                (DataType::Date32, t) if is_text(t) && style.style != Style::Iso => {
                    Some(timestamp_to_text(*inner.clone(), zone, style, &to))
                }
                _ => None,
            };
            Ok(match rewritten {
                Some(e) => Transformed::yes(e),
                None => Transformed::no(Expr::Cast(Cast { expr: inner, field })),
            })
        }
        Expr::ScalarFunction(call) => {
            let name = call.func.name().to_ascii_lowercase();
            let args = &call.args;
            let rewritten = match name.as_str() {
                // `x AT TIME ZONE z` of text or a date: first the
                // timestamptz it is (PostgreSQL resolves the literal so).
                "timezone" if args.len() == 2 => {
                    let instant = match type_of(&args[1]) {
                        Some(t) if is_text(&t) => Some(super::pg_datetime::datetime_in_zone(
                            &Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
                            cast_to(args[1].clone(), DataType::Utf8),
                            zone,
                            style.order,
                        )),
                        Some(DataType::Date32) => Some(to_instant(
                            zone,
                            cast_to(args[1].clone(), Timestamp(TimeUnit::Microsecond, None)),
                        )),
                        _ => None,
                    };
                    instant.map(|instant| {
                        let mut call = call.clone();
                        call.args[1] = instant;
                        Expr::ScalarFunction(call)
                    })
                }
                // PostgreSQL's templates, local times read in the zone.
                "to_timestamp" | "to_date"
                    if args.len() == 2 && type_of(&args[1]).is_some_and(|t| is_text(&t)) =>
                {
                    let udf = super::pg_to_timestamp::udf(zone, name == "to_date");
                    Some(Expr::ScalarFunction(
                        datafusion::logical_expr::expr::ScalarFunction::new_udf(
                            Arc::new(udf),
                            vec![
                                cast_to(args[0].clone(), DataType::Utf8),
                                cast_to(args[1].clone(), DataType::Utf8),
                            ],
                        ),
                    ))
                }
                _ if utc_session => None,
                // Truncated in local time. To a day or more, the result is
                // read in the zone again (midnight may have another
                // offset); to an hour or less it keeps the offset of the
                // value, as PostgreSQL does (an hour that occurs twice is
                // truncated within its own occurrence).
                "date_trunc" if args.len() == 2 && instant_type(&args[1]) => {
                    let mut local = call.clone();
                    local.args[1] = to_local(zone, args[1].clone());
                    let sub_day = matches!(&args[0], Expr::Literal(ScalarValue::Utf8(Some(u)), _)
                        if matches!(u.to_ascii_lowercase().as_str(),
                            "hour" | "minute" | "second" | "milliseconds" | "microseconds"));
                    Some(match sub_day {
                        true => with_offset_of(zone, Expr::ScalarFunction(local), args[1].clone()),
                        false => to_instant(zone, Expr::ScalarFunction(local)),
                    })
                }
                // Fields of the local time (the functions read instants
                // in the zone they are given).
                "date_part" | "extract" if args.len() == 2 && instant_type(&args[1]) => {
                    let udf = match name.as_str() {
                        "extract" => super::pg_extract::extract_udf(zone),
                        _ => super::pg_extract::date_part_udf(zone),
                    };
                    Some(Expr::ScalarFunction(
                        datafusion::logical_expr::expr::ScalarFunction::new_udf(
                            Arc::new(udf),
                            args.clone(),
                        ),
                    ))
                }
                // Calendar fields of the local times.
                "age" if args.iter().any(instant_type) => Some(Expr::ScalarFunction(
                    datafusion::logical_expr::expr::ScalarFunction::new_udf(
                        Arc::new(super::pg_age::age_udf(zone)),
                        args.clone(),
                    ),
                )),
                // The instant in the zone, which `TZ` and `OF` name.
                "to_char" if !args.is_empty() && instant_type(&args[0]) => Some(
                    Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                        Arc::new(super::pg_to_char::to_char_udf(zone, abbreviation)),
                        args.clone(),
                    )),
                ),
                "current_date" | "today" if args.is_empty() => {
                    Some(cast_to(to_local(zone, now.clone()), DataType::Date32))
                }
                _ => None,
            };
            Ok(match rewritten {
                Some(e) => Transformed::yes(e),
                None => Transformed::no(Expr::ScalarFunction(call)),
            })
        }
        // Days and months added in the zone's calendar: Arrow adds them to
        // the local time of the array's zone.
        Expr::BinaryExpr(BinaryExpr { left, op, right })
            if !utc_session
                && matches!(op, Operator::Plus | Operator::Minus)
                && (instant_type(&left) || instant_type(&right))
                && [&left, &right]
                    .iter()
                    .any(|e| matches!(type_of(e), Some(DataType::Interval(_)))) =>
        {
            let Some(Timestamp(unit, _)) = type_of(&left)
                .filter(|t| matches!(t, Timestamp(..)))
                .or_else(|| type_of(&right))
            else {
                return Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                })));
            };
            let relabel = |e: Box<Expr>, label: &str| -> Box<Expr> {
                if instant_type(&e) {
                    Box::new(Expr::TryCast(TryCast::new(
                        e,
                        Timestamp(unit, Some(label.into())),
                    )))
                } else {
                    e
                }
            };
            let local = Expr::BinaryExpr(BinaryExpr {
                left: relabel(left, zone),
                op,
                right: relabel(right, zone),
            });
            Ok(Transformed::yes(Expr::TryCast(TryCast::new(
                Box::new(local),
                Timestamp(unit, Some(UTC.into())),
            ))))
        }
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_read_as_postgresql_reads_them() {
        let z = |v: &str| parse_zone(v).map(|z| (z.name, z.arrow));
        let pair = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(z("europe/berlin"), pair("Europe/Berlin", "Europe/Berlin"));
        assert_eq!(z("UTC"), pair("UTC", "UTC"));
        assert_eq!(z("-7"), pair("<-07>+07", "-07:00"));
        assert_eq!(z("+02"), pair("<+02>-02", "+02:00"));
        assert_eq!(z("5.5"), pair("<+05:30>-05:30", "+05:30"));
        assert_eq!(
            z("INTERVAL '+05:30' HOUR TO MINUTE"),
            pair("<+05:30>-05:30", "+05:30")
        );
        assert_eq!(z("UTC+3"), pair("UTC+3", "-03:00"));
        assert_eq!(z("GMT-01:00"), pair("GMT-01:00", "+01:00"));
        assert_eq!(z("<-07>+07"), pair("<-07>+07", "-07:00"));
        assert_eq!(z("PST"), None);
        assert_eq!(z("Mars/Olympus"), None);
        assert_eq!(
            parse_at_zone("pst").map(|z| z.arrow).as_deref(),
            Some("-08:00")
        );
    }

    #[test]
    fn offsets_print_as_postgresql_prints_them() {
        assert_eq!(offset_text(3600), "+01");
        assert_eq!(offset_text(-(3 * 3600 + 30 * 60 + 52)), "-03:30:52");
        assert_eq!(offset_text(5 * 3600 + 1800), "+05:30");
        assert_eq!(offset_text(0), "+00");
    }

    #[test]
    fn local_times_at_dst_changes_resolve_as_postgresql_resolves_them() {
        let berlin = arrow_tz("Europe/Berlin").unwrap();
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        // Clocks turned back: 02:30 happens twice; the later one (+01).
        assert_eq!(
            local_to_utc(&berlin, &at("2024-10-27 02:30")),
            at("2024-10-27 01:30")
        );
        // Clocks turned forward: 02:30 never happens; read with +01.
        assert_eq!(
            local_to_utc(&berlin, &at("2024-03-31 02:30")),
            at("2024-03-31 01:30")
        );
        let micros = at("2024-03-30 23:30").and_utc().timestamp_micros();
        assert_eq!(
            timestamp_text(micros, &TimeUnit::Microsecond, Some(&berlin)).as_deref(),
            Some("2024-03-31 00:30:00+01")
        );
        assert_eq!(
            timestamp_text(micros + 500_000, &TimeUnit::Microsecond, None).as_deref(),
            Some("2024-03-30 23:30:00.5")
        );
        // After 2037 the zone's last rules still apply (BST in summer).
        let london = arrow_tz("Europe/London").unwrap();
        assert_eq!(offset_at(&london, &at("2179-06-05 23:00")), 3600);
        assert_eq!(offset_at(&london, &at("2179-12-05 23:00")), 0);
        assert_eq!(
            local_to_utc(&london, &at("2179-06-06 00:00")),
            at("2179-06-05 23:00")
        );
    }
}
