//! COPY data on the wire: reading rows of text, CSV and binary COPY data
//! into Arrow columns, and writing result rows in those formats. The
//! values themselves are encoded by `pg::types`, as in DataRows.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::ScalarValue;
use pgwire::api::portal::Format;
use pgwire::error::PgWireResult;
use pgwire::types::format::FormatOptions;

use super::types::{decode_text_row, encode_batches, row_description, uuid_text};
use crate::engine::types::TaggedType;
use crate::error::{QuiverError, Result};
use crate::session::{column_from_text, CopyFormat, CopyIn, CopyOptions, CopyOut};

const BINARY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A COPY FROM STDIN in progress: the data received so far.
pub struct CopyInProgress {
    pub copy: CopyIn,
    data: Vec<u8>,
}

impl CopyInProgress {
    pub fn new(copy: CopyIn) -> Self {
        CopyInProgress {
            copy,
            data: Vec::new(),
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Bytes received so far.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Parses all the data into one batch of the COPY's columns.
    pub fn finish(self) -> Result<RecordBatch> {
        let copy = &self.copy;
        match copy.options.format {
            CopyFormat::Parquet | CopyFormat::Json => Err(QuiverError::Internal(
                "Parquet and JSON are read by DataFusion, not as COPY data".into(),
            )),
            CopyFormat::Binary => read_binary(copy, &self.data),
            CopyFormat::Text | CopyFormat::Csv => {
                let text = std::str::from_utf8(&self.data).map_err(|e| QuiverError::CopyData {
                    message: format!("invalid byte sequence for encoding \"UTF8\": {e}"),
                    context: format!("COPY {}", copy.table_name),
                    malformed: false,
                })?;
                let (rows, lines) = if copy.options.format == CopyFormat::Csv {
                    split_csv(text, &copy.options)?
                } else {
                    split_text(text, &copy.options)?
                };
                to_batch(copy, rows, &lines)
            }
        }
    }
}

/// The data row starting each line of a COPY (1-based, as Postgres counts
/// them in error messages).
type Lines = Vec<usize>;

fn context(copy: &CopyIn, line: usize) -> String {
    format!("COPY {}, line {line}", copy.table_name)
}

fn bad_data(copy: &CopyIn, line: usize, message: String) -> QuiverError {
    QuiverError::CopyData {
        message,
        context: context(copy, line),
        malformed: true,
    }
}

/// Text format: one row per line, fields split at the delimiter,
/// backslash escapes, `\N` (or the NULL option) for NULL, `\.` ends.
fn split_text(text: &str, options: &CopyOptions) -> Result<(Vec<Vec<Option<String>>>, Lines)> {
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    // The data ends with a newline: nothing follows the last one.
    let last = text.split('\n').count() - 1;
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line == "\\." {
            break;
        }
        if line.is_empty() && n == last {
            break;
        }
        let mut fields = Vec::new();
        for raw in line.split(options.delimiter) {
            if raw == options.null {
                fields.push(None);
            } else {
                fields.push(Some(unescape_text(raw)));
            }
        }
        let header = options.header && n == 0;
        if !header {
            rows.push(fields);
            lines.push(n + 1);
        }
    }
    Ok((rows, lines))
}

fn unescape_text(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('v') => out.push('\u{b}'),
            Some('x') => {
                let mut value = 0u32;
                let mut digits = 0;
                while digits < 2 {
                    match chars.peek().and_then(|c| c.to_digit(16)) {
                        Some(d) => {
                            value = value * 16 + d;
                            chars.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    out.push('x');
                } else if let Some(c) = char::from_u32(value) {
                    out.push(c);
                }
            }
            Some(d @ '0'..='7') => {
                let mut value = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            chars.next();
                        }
                        None => break,
                    }
                }
                if let Some(c) = char::from_u32(value) {
                    out.push(c);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// CSV: fields split at the delimiter, quoted fields may hold the
/// delimiter, quotes (escaped) and newlines; an unquoted field equal to
/// the NULL string is NULL, a quoted one never is.
fn split_csv(text: &str, options: &CopyOptions) -> Result<(Vec<Vec<Option<String>>>, Lines)> {
    let (delim, quote, escape) = (options.delimiter, options.quote, options.escape);
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    let mut first = true;
    while chars.peek().is_some() {
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut end_of_data = false;
        loop {
            let Some(c) = chars.next() else {
                if in_quotes {
                    return Err(QuiverError::CopyData {
                        message: "unterminated CSV quoted field".into(),
                        context: format!("line {start_line}"),
                        malformed: true,
                    });
                }
                break;
            };
            if in_quotes {
                if c == escape && escape != quote && chars.peek() == Some(&quote) {
                    field.push(quote);
                    chars.next();
                } else if c == quote {
                    if escape == quote && chars.peek() == Some(&quote) {
                        field.push(quote);
                        chars.next();
                    } else {
                        in_quotes = false;
                    }
                } else {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            } else if c == quote {
                in_quotes = true;
                quoted = true;
            } else if c == delim {
                fields.push(csv_value(std::mem::take(&mut field), quoted, options));
                quoted = false;
            } else if c == '\n' {
                line += 1;
                break;
            } else if c == '\r' && chars.peek() == Some(&'\n') {
                continue;
            } else {
                field.push(c);
            }
        }
        if fields.is_empty() && !quoted && field == "\\." {
            end_of_data = true;
        }
        if end_of_data {
            break;
        }
        fields.push(csv_value(field, quoted, options));
        if options.header && first {
            first = false;
            continue;
        }
        first = false;
        rows.push(fields);
        lines.push(start_line);
    }
    Ok((rows, lines))
}

fn csv_value(field: String, quoted: bool, options: &CopyOptions) -> Option<String> {
    if !quoted && field == options.null {
        None
    } else {
        Some(field)
    }
}

/// Rows of text fields into a batch of the COPY's columns.
fn to_batch(copy: &CopyIn, rows: Vec<Vec<Option<String>>>, lines: &Lines) -> Result<RecordBatch> {
    let fields = copy.columns.fields();
    let mut columns: Vec<Vec<Option<String>>> = vec![Vec::with_capacity(rows.len()); fields.len()];
    for (i, row) in rows.into_iter().enumerate() {
        if row.len() != fields.len() {
            let message = if row.len() < fields.len() {
                format!("missing data for column \"{}\"", fields[row.len()].name())
            } else {
                "extra data after last expected column".to_string()
            };
            return Err(bad_data(copy, lines[i], message));
        }
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let arrays = fields
        .iter()
        .zip(&columns)
        .map(|(field, values)| {
            column_from_text(field, values).map_err(|bad| QuiverError::CopyData {
                message: bad.message,
                context: format!(
                    "{}, column {}: \"{}\"",
                    context(copy, lines[bad.row]),
                    bad.column,
                    bad.value
                ),
                malformed: false,
            })
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(
        copy.columns.clone(),
        arrays,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(lines.len())),
    )?)
}

/// Binary format: signature, flags, header extension, then per row a
/// field count and length-prefixed values in each type's binary form.
fn read_binary(copy: &CopyIn, data: &[u8]) -> Result<RecordBatch> {
    let fail = |message: &str| QuiverError::CopyData {
        message: message.to_string(),
        context: format!("COPY {}", copy.table_name),
        malformed: true,
    };
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> Result<&[u8]> {
        let slice = data
            .get(*at..*at + n)
            .ok_or_else(|| fail("unexpected end of data"))?;
        *at += n;
        Ok(slice)
    };
    if take(&mut at, BINARY_SIGNATURE.len())? != BINARY_SIGNATURE {
        return Err(fail("COPY file signature not recognized"));
    }
    let _flags = take(&mut at, 4)?;
    let ext = i32::from_be_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
    take(&mut at, ext.max(0) as usize)?;
    let fields = copy.columns.fields();
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::new(); fields.len()];
    let mut row = 0;
    loop {
        let count = i16::from_be_bytes(take(&mut at, 2)?.try_into().expect("2 bytes"));
        if count == -1 {
            break;
        }
        row += 1;
        if count as usize != fields.len() {
            return Err(bad_data(
                copy,
                row,
                format!("row field count is {count}, expected {}", fields.len()),
            ));
        }
        for (i, field) in fields.iter().enumerate() {
            let len = i32::from_be_bytes(take(&mut at, 4)?.try_into().expect("4 bytes"));
            if len < -1 {
                return Err(bad_data(copy, row, format!("invalid field size {len}")));
            }
            let value = if len == -1 {
                ScalarValue::try_from(field.data_type())?
            } else {
                let bytes = take(&mut at, len as usize)?;
                decode_binary(field, bytes).map_err(|message| {
                    bad_data(copy, row, format!("{message}, column {}", field.name()))
                })?
            };
            columns[i].push(value);
        }
    }
    let arrays = fields
        .iter()
        .zip(columns)
        .map(|(field, values)| {
            if values.is_empty() {
                Ok(datafusion::arrow::array::new_empty_array(field.data_type()))
            } else {
                Ok(ScalarValue::iter_to_array(values)?)
            }
        })
        .collect::<Result<Vec<ArrayRef>>>()?;
    Ok(RecordBatch::try_new_with_options(
        copy.columns.clone(),
        arrays,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(row)),
    )?)
}

/// Days and microseconds between 1970-01-01 and Postgres' epoch 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn decode_binary(field: &Field, b: &[u8]) -> std::result::Result<ScalarValue, String> {
    let wrong = || {
        format!(
            "incorrect binary data format for type {}",
            field.data_type()
        )
    };
    let int = |n: usize| -> std::result::Result<i64, String> {
        if b.len() != n {
            return Err(wrong());
        }
        Ok(match n {
            2 => i16::from_be_bytes([b[0], b[1]]) as i64,
            4 => i32::from_be_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_be_bytes(b.try_into().map_err(|_| wrong())?),
        })
    };
    let text = || String::from_utf8(b.to_vec()).map_err(|_| wrong());
    Ok(match field.data_type() {
        DataType::Boolean => ScalarValue::Boolean(Some(b.first().ok_or_else(wrong)? != &0)),
        DataType::Int16 => ScalarValue::Int16(Some(int(2)? as i16)),
        DataType::Int32 => ScalarValue::Int32(Some(int(4)? as i32)),
        DataType::Int64 => ScalarValue::Int64(Some(int(8)?)),
        DataType::Float32 => ScalarValue::Float32(Some(f32::from_bits(int(4)? as u32))),
        DataType::Float64 => ScalarValue::Float64(Some(f64::from_bits(int(8)? as u64))),
        DataType::Date32 => ScalarValue::Date32(Some(int(4)? as i32 + PG_EPOCH_DAYS)),
        DataType::Time64(TimeUnit::Microsecond) => ScalarValue::Time64Microsecond(Some(int(8)?)),
        DataType::Timestamp(TimeUnit::Microsecond, tz) => {
            ScalarValue::TimestampMicrosecond(Some(int(8)? + PG_EPOCH_MICROS), tz.clone())
        }
        DataType::Binary => ScalarValue::Binary(Some(b.to_vec())),
        DataType::Interval(_) => {
            if b.len() != 16 {
                return Err(wrong());
            }
            let micros = i64::from_be_bytes(b[0..8].try_into().map_err(|_| wrong())?);
            let days = i32::from_be_bytes(b[8..12].try_into().map_err(|_| wrong())?);
            let months = i32::from_be_bytes(b[12..16].try_into().map_err(|_| wrong())?);
            ScalarValue::IntervalMonthDayNano(Some(
                datafusion::arrow::datatypes::IntervalMonthDayNano::new(
                    months,
                    days,
                    micros * 1000,
                ),
            ))
        }
        DataType::Decimal128(p, s) => {
            let value = numeric_text(b).ok_or_else(wrong)?;
            ScalarValue::Utf8(Some(value))
                .cast_to(&DataType::Decimal128(*p, *s))
                .map_err(|e| e.to_string())?
        }
        DataType::Utf8 => match TaggedType::of(field) {
            Some(TaggedType::Uuid) => ScalarValue::Utf8(Some(uuid_text(b).ok_or_else(wrong)?)),
            Some(TaggedType::Jsonb) => match b.split_first() {
                Some((1, rest)) => {
                    ScalarValue::Utf8(Some(String::from_utf8(rest.to_vec()).map_err(|_| wrong())?))
                }
                _ => return Err(wrong()),
            },
            _ => ScalarValue::Utf8(Some(text()?)),
        },
        other => return Err(format!("binary COPY of type {other} is not supported")),
    })
}

/// Postgres' binary numeric (ndigits, weight, sign, dscale, base-10000
/// digits) as decimal text.
fn numeric_text(b: &[u8]) -> Option<String> {
    let word = |i: usize| Some(i16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]));
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)? as usize;
    if sign == 0xC000 {
        return Some("NaN".into());
    }
    let digits: Vec<i32> = (0..ndigits)
        .map(|i| word(8 + 2 * i).map(|d| d as i32))
        .collect::<Option<_>>()?;
    let mut int_part = String::new();
    for w in 0..=weight.max(-1) {
        let d = digits.get(w as usize).copied().unwrap_or(0);
        if int_part.is_empty() {
            int_part = d.to_string();
        } else {
            int_part.push_str(&format!("{d:04}"));
        }
    }
    if int_part.is_empty() {
        int_part.push('0');
    }
    let mut frac = String::new();
    let mut w = weight + 1;
    while frac.len() < dscale {
        let d = if w < 0 {
            0
        } else {
            digits.get(w as usize).copied().unwrap_or(0)
        };
        frac.push_str(&format!("{d:04}"));
        w += 1;
    }
    frac.truncate(dscale);
    let mut out = String::new();
    if sign == 0x4000 {
        out.push('-');
    }
    out.push_str(&int_part);
    if dscale > 0 {
        out.push('.');
        out.push_str(&frac);
    }
    Some(out)
}

/// The CopyData payloads of a COPY TO STDOUT: one per row (the header
/// goes with the first, the binary trailer on its own).
pub fn encode_copy_out(out: CopyOut, format: &FormatOptions) -> PgWireResult<Vec<Bytes>> {
    let binary = out.options.format == CopyFormat::Binary;
    let wire_format = if binary {
        Format::UnifiedBinary
    } else {
        Format::UnifiedText
    };
    let options = Arc::new(format.clone());
    let fields = Arc::new(row_description(&out.schema, &wire_format, &options)?);
    let mut messages = Vec::new();
    // The header travels with the first row (pgwire counts messages as
    // rows for the COPY tag).
    let mut header = BytesMut::new();
    if binary {
        header.put_slice(BINARY_SIGNATURE);
        header.put_i32(0);
        header.put_i32(0);
    } else if out.options.header {
        let names: Vec<Option<String>> = out
            .schema
            .fields()
            .iter()
            .map(|f| Some(f.name().clone()))
            .collect();
        header.put_slice(format_row(&names, &out.options).as_bytes());
    }
    let columns = out.schema.fields().len();
    let rows = futures::executor::block_on_stream(Box::pin(encode_batches(
        fields,
        out.schema.clone(),
        out.batches,
    )));
    for row in rows {
        let row = row?;
        if binary {
            header.put_i16(columns as i16);
            header.put_slice(&row.data);
        } else {
            header.put_slice(format_row(&decode_text_row(&row.data), &out.options).as_bytes());
        }
        messages.push(header.split().freeze());
    }
    // No rows: the header alone (the binary trailer is added by pgwire).
    if !header.is_empty() {
        messages.push(header.freeze());
    }
    Ok(messages)
}

/// One line of text or CSV COPY output, newline included.
fn format_row(values: &[Option<String>], options: &CopyOptions) -> String {
    let mut line = String::new();
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            line.push(options.delimiter);
        }
        match value {
            None => line.push_str(&options.null),
            Some(v) if options.format == CopyFormat::Csv => {
                let needs_quotes = v.is_empty() && options.null.is_empty()
                    || *v == options.null
                    || v.contains(options.delimiter)
                    || v.contains(options.quote)
                    || v.contains('\n')
                    || v.contains('\r');
                if needs_quotes {
                    line.push(options.quote);
                    for c in v.chars() {
                        if c == options.quote || c == options.escape {
                            line.push(options.escape);
                        }
                        line.push(c);
                    }
                    line.push(options.quote);
                } else {
                    line.push_str(v);
                }
            }
            Some(v) => {
                for c in v.chars() {
                    match c {
                        '\\' => line.push_str("\\\\"),
                        '\n' => line.push_str("\\n"),
                        '\r' => line.push_str("\\r"),
                        '\t' => line.push_str("\\t"),
                        '\u{8}' => line.push_str("\\b"),
                        '\u{c}' => line.push_str("\\f"),
                        '\u{b}' => line.push_str("\\v"),
                        c if c == options.delimiter => {
                            line.push('\\');
                            line.push(c);
                        }
                        c => line.push(c),
                    }
                }
            }
        }
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::CopyFormat;

    fn options(format: CopyFormat) -> CopyOptions {
        CopyOptions::new(format)
    }

    #[test]
    fn text_rows_unescape_and_stop_at_end_marker() {
        let (rows, lines) = split_text(
            "1\ta\\tb\n2\t\\N\n\\.\nignored\n",
            &options(CopyFormat::Text),
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][1].as_deref(), Some("a\tb"));
        assert_eq!(rows[1][1], None);
        assert_eq!(lines, vec![1, 2]);
    }

    #[test]
    fn csv_quotes_hold_delimiters_newlines_and_quotes() {
        let (rows, lines) = split_csv(
            "1,\"a,b\"\n2,\"line\nbreak\"\n3,\"say \"\"hi\"\"\"\n4,\n5,\"\"\n",
            &options(CopyFormat::Csv),
        )
        .unwrap();
        assert_eq!(rows[0][1].as_deref(), Some("a,b"));
        assert_eq!(rows[1][1].as_deref(), Some("line\nbreak"));
        assert_eq!(rows[2][1].as_deref(), Some("say \"hi\""));
        assert_eq!(rows[3][1], None);
        assert_eq!(rows[4][1].as_deref(), Some(""));
        assert_eq!(lines, vec![1, 2, 4, 5, 6]);
    }

    #[test]
    fn csv_output_quotes_what_needs_it() {
        let line = format_row(
            &[Some("a,b".into()), None, Some("".into()), Some("x".into())],
            &options(CopyFormat::Csv),
        );
        assert_eq!(line, "\"a,b\",,\"\",x\n");
    }

    #[test]
    fn binary_numeric_reads_as_decimal_text() {
        // 12345.67: ndigits 3, weight 1, sign +, dscale 2, digits 1 2345 6700
        let bytes = [0, 3, 0, 1, 0, 0, 0, 2, 0, 1, 0x09, 0x29, 0x1a, 0x2c];
        assert_eq!(numeric_text(&bytes).as_deref(), Some("12345.67"));
    }
}
