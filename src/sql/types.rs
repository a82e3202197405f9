//! The one place that maps Arrow columns to Postgres types and encodes their
//! values for the wire, in text and binary format.
//!
//! Most types go through `arrow-pg`; the Postgres types we keep as tagged
//! Utf8 (uuid, json, jsonb, varchar, char) are reported and encoded here.

use std::error::Error;
use std::sync::Arc;

use arrow_pg::encoder::encode_value;
use bytes::{BufMut, BytesMut};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, IntervalMonthDayNano, IntervalUnit, Schema,
};
use futures::stream::{self, Stream, StreamExt};
use pgwire::api::portal::Format;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;
use pgwire::types::ToSqlText;
use postgres_types::{to_sql_checked, IsNull, ToSql};

use crate::engine::types::{hyphenated_uuid, TaggedType};
use crate::sql::pg_datestyle::DateStyle;
use crate::sql::pg_timezone;
use crate::sql::settings::Settings;

/// Field metadata of a result column read straight from a table, in no
/// protocol's terms: the table's schema and name and the column's number
/// in it (from 1). RowDescription reports them as the table's oid and the
/// column's attnum; another front end reports them its own way.
pub const SOURCE_SCHEMA_KEY: &str = "quiver.source_schema";
pub const SOURCE_TABLE_KEY: &str = "quiver.source_table";
pub const SOURCE_COLUMN_KEY: &str = "quiver.source_column";
/// Field metadata of a computed numeric result column whose precision and
/// scale PostgreSQL would not know (`sum(n)`, `n * 2`, `CAST(x AS
/// numeric)`): RowDescription reports typmod -1 for it, as PostgreSQL does.
pub const TYPMOD_UNKNOWN_KEY: &str = "quiver.typmod_unknown";

/// The Postgres type a column is reported as.
pub fn pg_type(field: &Field) -> PgWireResult<Type> {
    Ok(match TaggedType::of(field) {
        Some(TaggedType::Uuid) => Type::UUID,
        Some(TaggedType::Json) => Type::JSON,
        Some(TaggedType::Jsonb) => Type::JSONB,
        Some(TaggedType::Varchar) => Type::VARCHAR,
        Some(TaggedType::Bpchar) => Type::BPCHAR,
        Some(TaggedType::Int2Vector) => Type::INT2_VECTOR,
        Some(TaggedType::OidVector) => Type::OID_VECTOR,
        None => match field.data_type() {
            // Arrays of the types kept as text: their tag says which.
            DataType::List(_) if TaggedType::of_elements(field).is_some() => {
                match TaggedType::of_elements(field).expect("checked") {
                    TaggedType::Uuid => Type::UUID_ARRAY,
                    TaggedType::Json => Type::JSON_ARRAY,
                    TaggedType::Jsonb => Type::JSONB_ARRAY,
                    TaggedType::Varchar => Type::VARCHAR_ARRAY,
                    _ => Type::BPCHAR_ARRAY,
                }
            }
            // Postgres has no one-byte integer; int2 is the closest.
            DataType::Int8 => Type::INT2,
            // `SELECT NULL` and `SELECT $1` with no other hint are text.
            DataType::Null => Type::TEXT,
            _ => arrow_pg::datatypes::field_into_pg_type(&Arc::new(field.clone()))?,
        },
    })
}

/// The type reported for a parameter in ParameterDescription.
pub fn param_pg_type(field: Option<&FieldRef>) -> Type {
    match field {
        Some(field) => pg_type(field).unwrap_or(Type::TEXT),
        None => Type::TEXT,
    }
}

/// RowDescription fields for a result schema.
pub fn row_description(
    schema: &Schema,
    format: &Format,
    options: &Arc<FormatOptions>,
) -> PgWireResult<Vec<FieldInfo>> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(idx, field)| {
            let metadata = field.metadata();
            let table = match (
                metadata.get(SOURCE_SCHEMA_KEY),
                metadata.get(SOURCE_TABLE_KEY),
            ) {
                (Some(schema), Some(table)) => Some(super::catalog::relation_oid(schema, table)),
                _ => None,
            };
            let column = metadata.get(SOURCE_COLUMN_KEY).and_then(|n| n.parse().ok());
            Ok(FieldInfo::new(
                field.name().clone(),
                table,
                column,
                pg_type(field)?,
                format.format_for(idx),
            )
            .with_type_modifier(match field.metadata().contains_key(TYPMOD_UNKNOWN_KEY) {
                true => -1,
                false => super::catalog::type_modifier(field),
            })
            .with_format_options(options.clone()))
        })
        .collect()
}

/// Encodes result batches as a stream of DataRows, column values read
/// straight from the Arrow arrays. `schema` is the logical result schema
/// (it carries the Postgres type tags). Batches whose columns all have a
/// fast writer ([`super::rows`]) skip the per-value encoder.
pub fn encode_batches(
    fields: Arc<Vec<FieldInfo>>,
    schema: Arc<Schema>,
    batches: Vec<RecordBatch>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let tags: Vec<Option<TaggedType>> = schema.fields().iter().map(|f| TaggedType::of(f)).collect();
    let rows = batches.into_iter().flat_map(
        move |batch| -> Box<dyn Iterator<Item = PgWireResult<DataRow>> + Send> {
            match super::rows::encode_batch(&batch, &fields, &tags) {
                Some(rows) => Box::new(rows.into_iter().map(Ok)),
                None => Box::new(general_rows(fields.clone(), tags.clone(), batch)),
            }
        },
    );
    stream::iter(rows)
}

/// Like [`encode_batches`], for rows still being produced: each batch is
/// encoded as it arrives; an error in the rows ends the stream with it,
/// as the front end reports errors (`report`).
pub fn encode_stream(
    fields: Arc<Vec<FieldInfo>>,
    schema: Arc<Schema>,
    rows: crate::sql::RowStream,
    report: fn(&crate::error::QuiverError) -> PgWireError,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let tags: Vec<Option<TaggedType>> = schema.fields().iter().map(|f| TaggedType::of(f)).collect();
    rows.flat_map(
        move |batch| -> futures::stream::BoxStream<'static, PgWireResult<DataRow>> {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    let error = report(&e);
                    return Box::pin(stream::once(async move { Err(error) }));
                }
            };
            match super::rows::encode_batch(&batch, &fields, &tags) {
                Some(rows) => Box::pin(stream::iter(rows.into_iter().map(Ok))),
                None => Box::pin(stream::iter(general_rows(
                    fields.clone(),
                    tags.clone(),
                    batch,
                ))),
            }
        },
    )
}

/// [`encode_batches`] without the fast path (to check the two agree).
#[cfg(test)]
pub fn encode_general(
    fields: Arc<Vec<FieldInfo>>,
    schema: Arc<Schema>,
    batches: Vec<RecordBatch>,
) -> impl Stream<Item = PgWireResult<DataRow>> + Send + 'static {
    let tags: Vec<Option<TaggedType>> = schema.fields().iter().map(|f| TaggedType::of(f)).collect();
    stream::iter(
        batches
            .into_iter()
            .flat_map(move |batch| general_rows(fields.clone(), tags.clone(), batch)),
    )
}

/// One batch's rows, each value through its type's encoder.
fn general_rows(
    fields: Arc<Vec<FieldInfo>>,
    tags: Vec<Option<TaggedType>>,
    batch: RecordBatch,
) -> impl Iterator<Item = PgWireResult<DataRow>> + Send {
    let mut encoder = DataRowEncoder::new(fields.clone());
    let batch = durations_as_intervals(batch);
    (0..batch.num_rows()).map(move |row| {
        for (col, (array, pg_field)) in batch.columns().iter().zip(fields.iter()).enumerate() {
            // NULL is NULL whatever the type (arrow-pg forgets to check
            // for some, e.g. intervals).
            if array.is_null(row) {
                encode_as_field(&mut encoder, &None::<TextOnly>, pg_field)?;
                continue;
            }
            match tags[col] {
                Some(tag @ (TaggedType::Uuid | TaggedType::Json | TaggedType::Jsonb))
                    if array.data_type() == &DataType::Utf8 =>
                {
                    let value = (!array.is_null(row))
                        .then(|| TextBacked::new(tag, array.as_string::<i32>().value(row)));
                    encode_as_field(&mut encoder, &value, pg_field)?;
                }
                Some(TaggedType::Int2Vector | TaggedType::OidVector)
                    if pg_field.format() == FieldFormat::Text =>
                {
                    let value = vector_text(array.as_ref(), row).map(TextOnly);
                    encode_as_field(&mut encoder, &value, pg_field)?;
                }
                // Arrays in text: each element as its type prints it,
                // quoted where PostgreSQL quotes.
                None if pg_field.format() == FieldFormat::Text
                    && matches!(array.data_type(), DataType::List(_)) =>
                {
                    let list = array.as_list::<i32>().value(row);
                    let value = Some(TextOnly(list_text(&list, pg_field.format_options())));
                    encode_as_field(&mut encoder, &value, pg_field)?;
                }
                // uuid[] and jsonb[] in binary: elements in their own
                // binary forms.
                None if matches!(array.data_type(), DataType::List(item) if item.data_type() == &DataType::Utf8)
                    && matches!(
                        pg_field.datatype(),
                        &Type::UUID_ARRAY | &Type::JSONB_ARRAY
                    ) =>
                {
                    let list = array.as_list::<i32>().value(row);
                    let tag = match pg_field.datatype() {
                        &Type::UUID_ARRAY => TaggedType::Uuid,
                        _ => TaggedType::Jsonb,
                    };
                    let value: Vec<Option<TextBacked>> = list
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.map(|text| TextBacked::new(tag, text)))
                        .collect();
                    encode_as_field(&mut encoder, &Some(value), pg_field)?;
                }
                // Every digit of a 38-digit numeric (arrow-pg's decimal
                // holds 28).
                None if matches!(array.data_type(), DataType::Decimal128(_, 0..))
                    && pg_field.datatype() == &Type::NUMERIC =>
                {
                    let DataType::Decimal128(_, scale) = array.data_type() else {
                        unreachable!("matched above")
                    };
                    let value = array
                        .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                        .value(row);
                    encode_as_field(&mut encoder, &Some(Numeric(value, *scale as u16)), pg_field)?;
                }
                _ if pg_field.format() == FieldFormat::Text
                    && has_own_text(array.data_type(), pg_field.format_options()) =>
                {
                    let value =
                        own_text(array.as_ref(), row, pg_field.format_options()).map(TextOnly);
                    encode_as_field(&mut encoder, &value, pg_field)?;
                }
                _ => {
                    let arrow_field = batch.schema_ref().field(col).clone();
                    encode_value(&mut encoder, array, row, &arrow_field, pg_field)?;
                }
            }
        }
        Ok(encoder.take_row())
    })
}

/// An array's text form (`{1,2,NULL}`, `{"a b",c}`): each element as a
/// value of its type prints, nested arrays as `{...}`.
pub fn list_text(values: &dyn Array, options: &FormatOptions) -> String {
    let mut out = String::from("{");
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        match values.data_type() {
            DataType::List(_) if values.is_valid(i) => {
                out.push_str(&list_text(&values.as_list::<i32>().value(i), options))
            }
            _ => crate::sql::pg_arrays::push_element(
                &mut out,
                element_text(values, i, options).as_deref(),
            ),
        }
    }
    out.push('}');
    out
}

/// One value's text form, as a column of its type prints it.
fn element_text(values: &dyn Array, i: usize, options: &FormatOptions) -> Option<String> {
    if values.is_null(i) {
        return None;
    }
    Some(match values.data_type() {
        data_type if has_own_text(data_type, options) => own_text(values, i, options)?,
        DataType::Decimal128(_, scale) => {
            let mut out = BytesMut::new();
            super::rows::numeric_text(
                values
                    .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
                    .value(i),
                (*scale).max(0) as u16,
                &mut out,
            );
            String::from_utf8_lossy(&out).into_owned()
        }
        DataType::Boolean => match values.as_boolean().value(i) {
            true => "t".into(),
            false => "f".into(),
        },
        DataType::Binary => {
            let bytes = values.as_binary::<i32>().value(i);
            let mut text = String::with_capacity(2 + 2 * bytes.len());
            text.push_str("\\x");
            for b in bytes {
                text.push_str(&format!("{b:02x}"));
            }
            text
        }
        DataType::Utf8 => values.as_string::<i32>().value(i).to_string(),
        _ => datafusion::arrow::util::display::array_value_to_string(values, i).ok()?,
    })
}

/// The text form of an `int2vector` or `oidvector`: `1 2 3`.
fn vector_text(array: &dyn Array, row: usize) -> Option<String> {
    let list = array.as_list_opt::<i32>()?;
    let values = list.value(row);
    let values = datafusion::arrow::compute::cast(&values, &DataType::Int64).ok()?;
    let values = values.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    Some(
        values
            .iter()
            .map(|v| v.map_or_else(|| "0".to_string(), |v| v.to_string()))
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Encodes one value with the column's type, format and format options.
fn encode_as_field<T: ToSql + ToSqlText>(
    encoder: &mut DataRowEncoder,
    value: &Option<T>,
    field: &FieldInfo,
) -> PgWireResult<()> {
    encoder.encode_field_with_type_and_format(
        value,
        field.datatype(),
        field.format(),
        field.format_options(),
    )
}

/// A value stored as text whose binary wire form differs from its text
/// (uuid: 16 bytes; jsonb: a version byte, then the text).
#[derive(Debug)]
struct TextBacked<'a> {
    tag: TaggedType,
    text: &'a str,
}

impl<'a> TextBacked<'a> {
    fn new(tag: TaggedType, text: &'a str) -> Self {
        TextBacked { tag, text }
    }
}

impl ToSql for TextBacked<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self.tag {
            TaggedType::Uuid => out.put_slice(&uuid_bytes(self.text)?),
            TaggedType::Jsonb => {
                out.put_u8(1);
                out.put_slice(self.text.as_bytes());
            }
            _ => out.put_slice(self.text.as_bytes()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSqlText for TextBacked<'_> {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.text.as_bytes());
        Ok(IsNull::No)
    }
}

/// Types whose Postgres text form we write ourselves rather than through
/// pgwire, whose output differs from what psql and drivers expect.
fn has_own_text(data_type: &DataType, options: &FormatOptions) -> bool {
    match data_type {
        DataType::Timestamp(..)
        | DataType::Time64(_)
        | DataType::Time32(_)
        | DataType::Float32
        | DataType::Float64 => true,
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            matches!(options.interval_style.as_str(), "postgres" | "iso_8601")
        }
        // In every DateStyle, and years BC (`0044-03-15 BC`).
        DataType::Date32 => true,
        _ => false,
    }
}

/// `extra_float_digits`: above 0 floats print exactly (shortest
/// round-trip), at 0 or below with 15 (float8) or 6 (float4) significant
/// digits plus the setting, as Postgres does.
fn own_text(array: &dyn Array, row: usize, options: &FormatOptions) -> Option<String> {
    use datafusion::arrow::datatypes::{Float32Type, Float64Type, IntervalMonthDayNanoType};
    if array.is_null(row) {
        return None;
    }
    let extra_float_digits = options.extra_float_digits;
    let float = |value: f64, precision: i32| {
        if extra_float_digits > 0 {
            float_text(value, precision)
        } else {
            float_text_rounded(value, (precision + extra_float_digits as i32).max(1))
        }
    };
    match array.data_type() {
        DataType::Float64 => Some(float(array.as_primitive::<Float64Type>().value(row), 15)),
        DataType::Float32 => Some(float(
            array.as_primitive::<Float32Type>().value(row) as f64,
            6,
        )),
        DataType::Interval(IntervalUnit::MonthDayNano) => Some(interval_text(
            array.as_primitive::<IntervalMonthDayNanoType>().value(row),
            options.interval_style == "iso_8601",
        )),
        DataType::Date32 => pg_timezone::date_text(
            array
                .as_primitive::<datafusion::arrow::datatypes::Date32Type>()
                .value(row),
            // ISO (the common case) without parsing the setting.
            match options.date_style.starts_with("ISO") {
                true => DateStyle::default(),
                false => DateStyle::parse(&options.date_style),
            },
        ),
        _ => temporal_text(array, row, options),
    }
}

/// Durations (what `timestamp - timestamp` gives in DataFusion) as the
/// intervals PostgreSQL gives for it: whole days apart from the time
/// (`9 days 12:00:00`, not `228:00:00`; PostgreSQL's timestamp_mi
/// justifies hours into days, and so do both wire formats here).
fn durations_as_intervals(batch: RecordBatch) -> RecordBatch {
    use datafusion::arrow::array::{ArrayRef, IntervalMonthDayNanoArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DurationNanosecondType, TimeUnit};
    if !batch
        .schema_ref()
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Duration(_)))
    {
        return batch;
    }
    const DAY: i64 = 86_400 * 1_000_000_000;
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema_ref().fields().iter().zip(batch.columns()) {
        let nanos = match field.data_type() {
            DataType::Duration(_) => cast(column, &DataType::Duration(TimeUnit::Nanosecond)).ok(),
            _ => None,
        };
        match nanos {
            Some(nanos) => {
                let intervals: IntervalMonthDayNanoArray = nanos
                    .as_primitive::<DurationNanosecondType>()
                    .iter()
                    .map(|v| v.map(|n| IntervalMonthDayNano::new(0, (n / DAY) as i32, n % DAY)))
                    .collect();
                fields.push(Arc::new(
                    field
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::Interval(IntervalUnit::MonthDayNano)),
                ));
                columns.push(Arc::new(intervals) as ArrayRef);
            }
            None => {
                fields.push(field.clone());
                columns.push(column.clone());
            }
        }
    }
    let schema = Arc::new(Schema::new_with_metadata(
        fields,
        batch.schema_ref().metadata().clone(),
    ));
    RecordBatch::try_new(schema, columns).unwrap_or(batch)
}

/// An interval as PostgreSQL prints it in IntervalStyle `postgres`
/// (`1 year 2 mons -3 days +04:05:06.5`) or `iso_8601` (`P1Y2M-3DT4H5M6.5S`):
/// fractional seconds without trailing zeros, to the microsecond
/// (EncodeInterval in PostgreSQL's datetime.c).
pub fn interval_text(value: IntervalMonthDayNano, iso: bool) -> String {
    let micros = value.nanoseconds / 1_000;
    let (years, months) = (value.months / 12, value.months % 12);
    let days = value.days;
    let hours = micros / 3_600_000_000;
    let minutes = micros / 60_000_000 % 60;
    let seconds = micros % 60_000_000;
    // Seconds and microseconds, signed, trailing zeros dropped.
    let seconds_text = |seconds: i64| {
        let sign = if seconds < 0 { "-" } else { "" };
        let (whole, fraction) = (seconds.abs() / 1_000_000, seconds.abs() % 1_000_000);
        let mut text = format!("{sign}{whole:02}");
        if fraction != 0 {
            let digits = format!("{fraction:06}");
            text.push('.');
            text.push_str(digits.trim_end_matches('0'));
        }
        text
    };
    if iso {
        if value.months == 0 && days == 0 && micros == 0 {
            return "PT0S".into();
        }
        let mut out = String::from("P");
        for (part, unit) in [
            (years as i64, 'Y'),
            (months as i64, 'M'),
            (days as i64, 'D'),
        ] {
            if part != 0 {
                out.push_str(&format!("{part}{unit}"));
            }
        }
        if micros != 0 {
            out.push('T');
            for (part, unit) in [(hours, 'H'), (minutes, 'M')] {
                if part != 0 {
                    out.push_str(&format!("{part}{unit}"));
                }
            }
            if seconds != 0 {
                // No zero padding here: `PT6.5S`.
                let text = seconds_text(seconds);
                let text = match text.strip_prefix('-') {
                    Some(rest) => format!("-{}", rest.strip_prefix('0').unwrap_or(rest)),
                    None => text.strip_prefix('0').unwrap_or(&text).to_string(),
                };
                out.push_str(&text);
                out.push('S');
            }
        }
        return out;
    }
    let mut out = String::new();
    // Whether nothing was written yet, and whether the last part written
    // was negative (a positive part after it shows a `+`).
    let (mut zero, mut before) = (true, false);
    for (part, unit) in [(years, "year"), (months, "mon"), (days, "day")] {
        if part == 0 {
            continue;
        }
        let space = if zero { "" } else { " " };
        let plus = if before && part > 0 { "+" } else { "" };
        let plural = if part != 1 { "s" } else { "" };
        out.push_str(&format!("{space}{plus}{part} {unit}{plural}"));
        before = part < 0;
        zero = false;
    }
    if zero || micros != 0 {
        let sign = if micros < 0 {
            "-"
        } else if before {
            "+"
        } else {
            ""
        };
        let space = if zero { "" } else { " " };
        out.push_str(&format!(
            "{space}{sign}{:02}:{:02}:{}",
            hours.abs(),
            minutes.abs(),
            seconds_text(seconds.abs())
        ));
    }
    out
}

/// Postgres' shortest-exact float output (extra_float_digits >= 1):
/// positional unless the decimal exponent is below -4 or at least
/// `precision` (15 for float8, 6 for float4), then `1.5e+20` style.
pub fn float_text(value: f64, precision: i32) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    // Shortest round-trip digits, in scientific form: "1.5e20", "-3e-7".
    let sci = if precision == 6 {
        format!("{:e}", value as f32)
    } else {
        format!("{value:e}")
    };
    let (mantissa, exponent) = sci.split_once('e').expect("LowerExp has an exponent");
    let exponent: i32 = exponent.parse().expect("numeric exponent");
    if exponent < -4 || exponent >= precision {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    } else if precision == 6 {
        format!("{}", value as f32)
    } else {
        format!("{value}")
    }
}

/// C's `%.{digits}g`, as Postgres prints floats when extra_float_digits
/// is 0 or less: `digits` significant digits, trailing zeros dropped,
/// scientific notation below 1e-4 or from 1e{digits} on.
pub fn float_text_rounded(value: f64, digits: i32) -> String {
    if value.is_nan() || value.is_infinite() {
        return float_text(value, 15);
    }
    let sci = format!("{:.*e}", (digits - 1) as usize, value);
    let (mantissa, exponent) = sci.split_once('e').expect("LowerExp has an exponent");
    let exponent: i32 = exponent.parse().expect("numeric exponent");
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if exponent < -4 || exponent >= digits {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa.to_string()), exponent.abs())
    } else {
        let decimals = (digits - 1 - exponent).max(0) as usize;
        trim(format!("{value:.decimals$}"))
    }
}

/// Postgres' text form of timestamps and times: fractional seconds only
/// when non-zero, without trailing zeros; a timestamptz as the local time
/// in the session's zone (`zone`, Arrow's name) and its offset.
fn temporal_text(array: &dyn Array, row: usize, options: &FormatOptions) -> Option<String> {
    use datafusion::arrow::array::{
        Time32MillisecondArray, Time32SecondArray, Time64MicrosecondArray, Time64NanosecondArray,
        TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
        TimestampSecondArray,
    };
    use datafusion::arrow::datatypes::TimeUnit;
    if array.is_null(row) {
        return None;
    }
    let any = array.as_any();
    let zone_name = options.time_zone.as_str();
    let nanos_of = |unit: &TimeUnit, v: i64| -> i128 {
        let v = v as i128;
        match unit {
            TimeUnit::Second => v * 1_000_000_000,
            TimeUnit::Millisecond => v * 1_000_000,
            TimeUnit::Microsecond => v * 1_000,
            TimeUnit::Nanosecond => v,
        }
    };
    match array.data_type() {
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => any.downcast_ref::<TimestampSecondArray>()?.value(row),
                TimeUnit::Millisecond => {
                    any.downcast_ref::<TimestampMillisecondArray>()?.value(row)
                }
                TimeUnit::Microsecond => {
                    any.downcast_ref::<TimestampMicrosecondArray>()?.value(row)
                }
                TimeUnit::Nanosecond => any.downcast_ref::<TimestampNanosecondArray>()?.value(row),
            };
            let zone = match tz {
                Some(_) => Some(
                    pg_timezone::arrow_tz(zone_name).or_else(|| pg_timezone::arrow_tz("UTC"))?,
                ),
                None => None,
            };
            // The common case without parsing the setting.
            if options.date_style.starts_with("ISO") {
                return pg_timezone::timestamp_text(v, unit, zone.as_ref());
            }
            let style = DateStyle::parse(&options.date_style);
            pg_timezone::styled_timestamp_text(
                v,
                unit,
                zone.as_ref().map(|tz| (tz, zone_name)),
                style,
            )
        }
        DataType::Time32(unit) | DataType::Time64(unit) => {
            let v = match unit {
                TimeUnit::Second => any.downcast_ref::<Time32SecondArray>()?.value(row) as i64,
                TimeUnit::Millisecond => {
                    any.downcast_ref::<Time32MillisecondArray>()?.value(row) as i64
                }
                TimeUnit::Microsecond => any.downcast_ref::<Time64MicrosecondArray>()?.value(row),
                TimeUnit::Nanosecond => any.downcast_ref::<Time64NanosecondArray>()?.value(row),
            };
            let nanos = nanos_of(unit, v);
            let secs = (nanos / 1_000_000_000) as i64;
            let mut text = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
            push_fraction(&mut text, (nanos % 1_000_000_000) as u32);
            Some(text)
        }
        _ => None,
    }
}

/// Appends `.ffffff` (microseconds, as Postgres keeps) without trailing zeros.
fn push_fraction(text: &mut String, nanos: u32) {
    let micros = nanos / 1000;
    if micros != 0 {
        let digits = format!("{micros:06}");
        text.push('.');
        text.push_str(digits.trim_end_matches('0'));
    }
}

/// A numeric value as a Decimal128 holds it: digits and scale.
#[derive(Debug)]
struct Numeric(i128, u16);

impl ToSql for Numeric {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        super::rows::numeric_binary(self.0, self.1, out);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        ty == &Type::NUMERIC
    }

    to_sql_checked!();
}

impl ToSqlText for Numeric {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        super::rows::numeric_text(self.0, self.1, out);
        Ok(IsNull::No)
    }
}

/// A value that is only ever sent in text format.
#[derive(Debug)]
struct TextOnly(String);

impl ToSql for TextOnly {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl ToSqlText for TextOnly {
    fn to_sql_text(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
        _options: &FormatOptions,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
}

/// The 16 bytes of a canonical uuid string.
fn uuid_bytes(text: &str) -> Result<[u8; 16], Box<dyn Error + Sync + Send>> {
    let hex: Vec<u8> = text.bytes().filter(|b| *b != b'-').collect();
    if hex.len() != 32 {
        return Err(format!("invalid uuid \"{text}\"").into());
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair)?;
        out[i] = u8::from_str_radix(s, 16)?;
    }
    Ok(out)
}

/// A canonical uuid string from its 16 wire bytes.
pub fn uuid_text(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(hyphenated_uuid(&hex))
}

/// Rows in Postgres text format, exactly as a client would receive them
/// (None is NULL). The REPL and the embedded test runner show values this
/// way, so they agree with psql.
pub fn text_rows(
    schema: &Arc<Schema>,
    batches: Vec<RecordBatch>,
) -> PgWireResult<Vec<Vec<Option<String>>>> {
    text_rows_with(schema, batches, &format_options(&Settings::default()))
}

/// The settings that format values as text (DateStyle, IntervalStyle,
/// bytea_output, TimeZone, extra_float_digits).
pub fn format_options(s: &Settings) -> Arc<FormatOptions> {
    let mut options = FormatOptions::default();
    options.date_style = s.get("DateStyle").unwrap_or("ISO, MDY").to_string();
    options.interval_style = s.get("IntervalStyle").unwrap_or("postgres").to_string();
    options.bytea_output = s.get("bytea_output").unwrap_or("hex").to_string();
    options.time_zone = pg_timezone::parse_zone(s.get("TimeZone").unwrap_or("UTC"))
        .map(|zone| zone.arrow)
        .unwrap_or_else(|| "UTC".into());
    options.extra_float_digits = s
        .get("extra_float_digits")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Arc::new(options)
}

/// [`text_rows`] with a session's format settings.
pub fn text_rows_with(
    schema: &Arc<Schema>,
    batches: Vec<RecordBatch>,
    options: &Arc<FormatOptions>,
) -> PgWireResult<Vec<Vec<Option<String>>>> {
    let options = options.clone();
    let fields = Arc::new(row_description(schema, &Format::UnifiedText, &options)?);
    let mut rows = Vec::new();
    for row in futures::executor::block_on_stream(Box::pin(encode_batches(
        fields,
        schema.clone(),
        batches,
    ))) {
        rows.push(decode_text_row(&row?.data));
    }
    Ok(rows)
}

/// Splits a DataRow body (length-prefixed fields, -1 for NULL) into strings.
pub fn decode_text_row(mut data: &[u8]) -> Vec<Option<String>> {
    let mut values = Vec::new();
    while data.len() >= 4 {
        let len = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        data = &data[4..];
        if len < 0 {
            values.push(None);
        } else {
            let (value, rest) = data.split_at(len as usize);
            values.push(Some(String::from_utf8_lossy(value).into_owned()));
            data = rest;
        }
    }
    values
}

#[cfg(test)]
mod tests {

    #[test]
    fn intervals_print_as_postgresql_prints_them() {
        const S: i64 = 1_000_000_000;
        let time = |h: i64, m: i64, ns: i64| h * 3600 * S + m * 60 * S + ns;
        // (months, days, nanoseconds), postgres style, iso_8601 style: as
        // PostgreSQL 15 printed them.
        let cases = [
            ((0, 0, 0), "00:00:00", "PT0S"),
            (
                (0, 0, time(4, 5, 6_500_000_000)),
                "04:05:06.5",
                "PT4H5M6.5S",
            ),
            (
                (0, 1, time(4, 5, 6_500_000_000)),
                "1 day 04:05:06.5",
                "P1DT4H5M6.5S",
            ),
            ((0, -1, time(2, 0, 0)), "-1 days +02:00:00", "P-1DT2H"),
            (
                (14, -3, time(4, 5, 6_000_001_000)),
                "1 year 2 mons -3 days +04:05:06.000001",
                "P1Y2M-3DT4H5M6.000001S",
            ),
            ((-14, 0, 0), "-1 years -2 mons", "P-1Y-2M"),
            (
                (0, 0, -time(4, 5, 6_250_000_000)),
                "-04:05:06.25",
                "PT-4H-5M-6.25S",
            ),
            ((1, 0, -S), "1 mon -00:00:01", "P1MT-1S"),
            ((0, 0, time(25, 0, 0)), "25:00:00", "PT25H"),
            ((0, -1, -1_500_000_000), "-1 days -00:00:01.5", "P-1DT-1.5S"),
            ((12, 0, 0), "1 year", "P1Y"),
            ((25, 1, 0), "2 years 1 mon 1 day", "P2Y1M1D"),
        ];
        for ((months, days, nanoseconds), postgres, iso) in cases {
            let value = IntervalMonthDayNano::new(months, days, nanoseconds);
            assert_eq!(interval_text(value, false), postgres);
            assert_eq!(interval_text(value, true), iso);
        }
    }
    use super::*;

    #[test]
    fn floats_print_as_postgres_does() {
        assert_eq!(float_text(1.0, 15), "1");
        assert_eq!(float_text(0.1, 15), "0.1");
        assert_eq!(float_text(1e20, 15), "1e+20");
        assert_eq!(float_text(0.00001, 15), "1e-05");
        assert_eq!(float_text(-2.5, 15), "-2.5");
        assert_eq!(float_text_rounded(0.1 + 0.2, 15), "0.3");
        assert_eq!(float_text_rounded(1.0 / 3.0, 15), "0.333333333333333");
        assert_eq!(float_text_rounded(1e20, 15), "1e+20");
        assert_eq!(float_text_rounded(123456.7, 6), "123457");
        assert_eq!(float_text_rounded(0.00001234, 15), "1.234e-05");
        assert_eq!(float_text(f64::INFINITY, 15), "Infinity");
        assert_eq!(float_text(1234567.0, 6), "1.234567e+06");
        assert_eq!(float_text(0.1f32 as f64, 6), "0.1");
    }

    #[test]
    fn uuid_round_trips_through_bytes() {
        let text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let bytes = uuid_bytes(text).unwrap();
        assert_eq!(uuid_text(&bytes).unwrap(), text);
    }
}
