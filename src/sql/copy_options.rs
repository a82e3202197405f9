//! COPY's statement side that every front end shares: the formats and
//! options of a COPY, what a `COPY ... FROM STDIN` expects, and reading
//! COPY text fields into Arrow columns with PostgreSQL's input rules. The
//! session decides which columns come or go (`session/copy.rs`); the bytes
//! are parsed and written by `sql::copy`.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, IntervalMonthDayNanoArray, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopyTarget, Statement,
};

use crate::error::{not_supported, QuiverError, Result};

/// The data format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
    /// Files only (`COPY t FROM '/path/*.parquet' (FORMAT parquet)`).
    Parquet,
    /// JSON lines, one object per row; files only.
    Json,
}

impl CopyFormat {
    /// Whether the wire protocol can carry it (COPY FROM STDIN, TO STDOUT).
    pub fn is_stream_format(self) -> bool {
        matches!(
            self,
            CopyFormat::Text | CopyFormat::Csv | CopyFormat::Binary
        )
    }
}

/// How rows are written in the data of a COPY.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub delimiter: char,
    /// The text that stands for NULL.
    pub null: String,
    pub quote: char,
    pub escape: char,
    pub header: bool,
}

impl CopyOptions {
    /// Postgres' defaults for a format.
    pub fn new(format: CopyFormat) -> Self {
        let csv = format == CopyFormat::Csv;
        CopyOptions {
            format,
            delimiter: if csv { ',' } else { '\t' },
            null: if csv { String::new() } else { "\\N".into() },
            quote: '"',
            escape: '"',
            header: false,
        }
    }
}

/// A `COPY table FROM STDIN` waiting for its data (or from files).
#[derive(Debug, Clone)]
pub struct CopyIn {
    /// The table as the statement named it (for messages).
    pub table_name: String,
    /// Quoted, schema-qualified name for the INSERT that stores the rows.
    pub(crate) qualified: String,
    /// The table's schema.
    pub(crate) schema_name: String,
    /// The columns the data has, in order, with their types.
    pub columns: SchemaRef,
    pub options: CopyOptions,
    /// The session's time zone (Arrow's form), where a `timestamptz`
    /// written without an offset is.
    pub zone: String,
    /// The DateStyle order an ambiguous date (`01/02/2024`) is read in.
    pub date_order: super::pg_datestyle::Order,
    /// When the rows go straight into the table (every column, in order,
    /// outside a transaction block): each parsed chunk is staged for it
    /// as soon as it is parsed.
    pub stager: Option<crate::engine::stage::Stager>,
}

impl CopyIn {
    /// A COPY into a table `t` with `columns` (unit tests of the parser).
    #[cfg(test)]
    pub(crate) fn for_test(columns: SchemaRef, options: CopyOptions) -> CopyIn {
        CopyIn {
            table_name: "t".into(),
            qualified: "public.t".into(),
            schema_name: "public".into(),
            columns,
            options,
            zone: "UTC".into(),
            date_order: Default::default(),
            stager: None,
        }
    }
}

/// Rows to send for `COPY ... TO STDOUT`.
#[derive(Debug)]
pub struct CopyOut {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub options: CopyOptions,
}

/// Whether SQL text is a COPY statement (which DataFusion's parser reads
/// differently): its first word, after comments, is COPY.
pub fn is_copy(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("copy"))
        && rest[4..].starts_with(|c: char| c.is_whitespace() || c == '(')
}

/// Whether a parsed statement is a `COPY ... FROM STDIN`.
pub fn is_copy_from_stdin(statement: &DfStatement) -> bool {
    matches!(
        statement,
        DfStatement::Statement(s) if matches!(
            s.as_ref(),
            Statement::Copy { to: false, target: CopyTarget::Stdin, .. }
        )
    )
}

pub(crate) fn options_of(
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopyOptions> {
    let mut format = CopyFormat::Text;
    for o in options {
        if let CopyOption::Format(name) = o {
            format = match name.value.to_ascii_lowercase().as_str() {
                "text" => CopyFormat::Text,
                "csv" => CopyFormat::Csv,
                "binary" => CopyFormat::Binary,
                "parquet" => CopyFormat::Parquet,
                "json" | "ndjson" | "jsonl" => CopyFormat::Json,
                other => {
                    return Err(QuiverError::InvalidParameterValue(format!(
                        "COPY format \"{other}\" not recognized"
                    )))
                }
            };
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => format = CopyFormat::Binary,
            CopyLegacyOption::Csv(_) => format = CopyFormat::Csv,
            _ => {}
        }
    }
    let mut out = CopyOptions::new(format);
    let mut escape = None;
    for o in options {
        match o {
            CopyOption::Format(_) | CopyOption::Freeze(_) => {}
            CopyOption::Delimiter(c) => out.delimiter = *c,
            CopyOption::Null(s) => out.null = s.clone(),
            CopyOption::Header(h) => out.header = *h,
            CopyOption::Quote(c) => out.quote = *c,
            CopyOption::Escape(c) => escape = Some(*c),
            CopyOption::Encoding(e) => {
                let e = e.to_ascii_uppercase().replace(['-', '_'], "");
                if e != "UTF8" && e != "UNICODE" {
                    return Err(not_supported(format!("COPY encoding {e}; data is UTF8")));
                }
            }
            other => return Err(not_supported(format!("the COPY option {other}"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => {}
            CopyLegacyOption::Delimiter(c) => out.delimiter = *c,
            CopyLegacyOption::Null(s) => out.null = s.clone(),
            CopyLegacyOption::Header => out.header = true,
            CopyLegacyOption::Csv(csv) => {
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => out.header = true,
                        CopyLegacyCsvOption::Quote(q) => out.quote = *q,
                        CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                        other => return Err(not_supported(format!("the COPY option {other}"))),
                    }
                }
            }
            other => return Err(not_supported(format!("the COPY option {other}"))),
        }
    }
    out.escape = escape.unwrap_or(out.quote);
    if out.header && out.format == CopyFormat::Binary {
        return Err(QuiverError::FeatureNotSupported(
            "cannot specify HEADER in BINARY mode".into(),
        ));
    }
    if out.format == CopyFormat::Text && matches!(out.delimiter, '\\' | '\n' | '\r') {
        return Err(QuiverError::InvalidParameterValue(
            "COPY delimiter cannot be newline, carriage return or backslash".into(),
        ));
    }
    Ok(out)
}

#[derive(Debug)]
pub struct BadValue {
    /// Row index among the rows read (0-based).
    pub row: usize,
    pub column: String,
    pub value: String,
    pub message: String,
    /// A number of the right form that the type cannot hold (22003).
    pub out_of_range: bool,
}

/// Converts COPY text fields (None is NULL) into a column of `field`'s
/// type, with Postgres' input rules where Arrow's differ. Reports the
/// first value that does not convert.
pub fn column_from_text(
    field: &Field,
    values: &StringArray,
    zone: &str,
    date_order: super::pg_datestyle::Order,
) -> std::result::Result<ArrayRef, BadValue> {
    let bad = |row: usize, message: String| BadValue {
        row,
        column: field.name().clone(),
        value: values.value(row).to_string(),
        message,
        out_of_range: false,
    };
    let type_name = crate::engine::types::display_type(field);
    match field.data_type() {
        DataType::Utf8 => Ok(Arc::new(values.clone())),
        DataType::List(_) => super::pg_arrays::lists_from_text(field, values, |element, texts| {
            column_from_text(element, texts, zone, date_order).map_err(|bad| {
                super::pg_arrays::BadElement {
                    row: bad.row,
                    message: bad.message,
                }
            })
        })
        .map_err(|bad| BadValue {
            row: bad.row,
            column: field.name().clone(),
            value: values.value(bad.row).to_string(),
            message: bad.message,
            out_of_range: false,
        }),
        DataType::Binary => {
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(text) => Some(super::pg_casts::parse_bytea(text).map_err(|e| {
                        bad(row, format!("invalid input syntax for type bytea: {e}"))
                    })?),
                });
            }
            Ok(Arc::new(BinaryArray::from_iter(out)))
        }
        DataType::Interval(_) => {
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(text) => Some(super::pg_casts::parse_interval(text).map_err(|_| {
                        bad(
                            row,
                            format!("invalid input syntax for type interval: \"{text}\""),
                        )
                    })?),
                });
            }
            Ok(Arc::new(IntervalMonthDayNanoArray::from(out)))
        }
        target => {
            // Postgres ignores spaces around numbers, dates and the like.
            let padded = values
                .iter()
                .flatten()
                .any(|v| v.starts_with(char::is_whitespace) || v.ends_with(char::is_whitespace));
            let trimmed: StringArray;
            let values_read = if padded {
                trimmed = values.iter().map(|v| v.map(str::trim)).collect();
                &trimmed
            } else {
                values
            };
            // Dates and timestamps in PostgreSQL's forms, not only ISO.
            if super::pg_datetime::reads(target) {
                use super::pg_datetime::Unread;
                return super::pg_datetime::read_datetimes(
                    values_read,
                    target,
                    Some(zone),
                    date_order,
                )
                .map_err(|e| match e {
                    Unread::Row(row) => bad(
                        row,
                        format!(
                            "invalid input syntax for type {type_name}: \"{}\"",
                            values.value(row)
                        ),
                    ),
                    Unread::Arrow(e) => bad(0, e.to_string()),
                });
            }
            // Arrow reads no exponent in a decimal; PostgreSQL does.
            let expanded: StringArray;
            let values_read =
                if matches!(target, DataType::Decimal128(..) | DataType::Decimal256(..))
                    && values_read.iter().flatten().any(|v| v.contains(['e', 'E']))
                {
                    expanded = values_read
                        .iter()
                        .map(|v| v.map(|v| without_exponent(v).unwrap_or_else(|| v.to_string())))
                        .collect();
                    &expanded
                } else {
                    values_read
                };
            let converted = cast(values_read, target).map_err(|e| bad(0, e.to_string()))?;
            // Safe casts give NULL for what does not parse: find the first.
            if converted.null_count() > values.null_count() {
                if let Some(row) =
                    (0..values.len()).find(|&i| values.is_valid(i) && converted.is_null(i))
                {
                    let text = values_read.value(row);
                    return Err(match out_of_range(target, &type_name, text) {
                        Some(message) => BadValue {
                            out_of_range: true,
                            ..bad(row, message)
                        },
                        None => bad(
                            row,
                            format!(
                                "invalid input syntax for type {type_name}: \"{}\"",
                                values.value(row)
                            ),
                        ),
                    });
                }
            }
            Ok(converted)
        }
    }
}

/// PostgreSQL's message for `text` that is a number of the right form
/// but too big for `target` (named `type_name`); None when it is not of
/// that form.
fn out_of_range(target: &DataType, type_name: &str, text: &str) -> Option<String> {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match target {
        DataType::Int16 | DataType::Int32 | DataType::Int64
            if !unsigned.is_empty() && digits(unsigned) =>
        {
            Some(format!(
                "value \"{text}\" is out of range for type {type_name}"
            ))
        }
        DataType::Decimal128(..) | DataType::Decimal256(..) => {
            let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
            (!(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction))
                .then(|| "numeric field overflow".to_string())
        }
        _ => None,
    }
}

/// A number with an exponent (`-1.5e3`, `25E-1`) written out without it
/// (`-1500`, `2.5`); None for anything else. Exponents beyond PostgreSQL's
/// range of numeric weights are left alone (they fail as before).
fn without_exponent(text: &str) -> Option<String> {
    let (mantissa, exponent) = text.split_once(['e', 'E'])?;
    let exponent: i64 = exponent.parse().ok().filter(|e: &i64| e.abs() <= 1000)?;
    let (sign, mantissa) = match mantissa.as_bytes().first() {
        Some(b'-') => ("-", &mantissa[1..]),
        Some(b'+') => ("", &mantissa[1..]),
        _ => ("", mantissa),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    // Digits left of the point once the exponent has moved it.
    let point = whole.len() as i64 + exponent;
    Some(if point <= 0 {
        format!(
            "{sign}0.{}{digits}",
            "0".repeat(point.unsigned_abs() as usize)
        )
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (left, right) = digits.split_at(point as usize);
        format!("{sign}{left}.{right}")
    })
}

/// `"name"`, quoted for use in generated SQL.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Parses a COPY statement with the SQL parser DataFusion re-exports
/// (DataFusion's own only knows `COPY ... TO 'file'`).
pub fn parse_copy(sql: &str) -> Result<DfStatement> {
    use datafusion::sql::sqlparser::parser::Parser;
    let mut statements = Parser::parse_sql(&crate::sql::dialect::Postgres, sql)
        .map_err(|e| super::syntax_error::from_parser(sql, e))?;
    if statements.len() != 1 {
        return Err(QuiverError::InvalidStatement(
            "COPY must be a statement of its own".into(),
        ));
    }
    Ok(DfStatement::Statement(Box::new(statements.remove(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_statements_are_recognised_after_comments() {
        assert!(is_copy("COPY t FROM STDIN"));
        assert!(is_copy("  -- load\ncopy t from stdin"));
        assert!(is_copy("copy (select 1) to stdout"));
        assert!(!is_copy("copyright"));
        assert!(!is_copy("SELECT 'COPY'"));
    }

    #[test]
    fn exponents_are_written_out() {
        let cases = [
            ("1e2", Some("100")),
            ("1.5E-1", Some("0.15")),
            ("-2.5e+1", Some("-25")),
            ("+12.345e1", Some("123.45")),
            ("5e-3", Some("0.005")),
            (".5e1", Some("5")),
            ("1e", None),
            ("e5", None),
            ("1x2e3", None),
            ("1e5000", None),
            ("12", None),
        ];
        for (text, expected) in cases {
            assert_eq!(without_exponent(text).as_deref(), expected, "{text}");
        }
    }

    #[test]
    fn csv_defaults_follow_postgres() {
        let o = options_of(
            &[CopyOption::Format(
                datafusion::sql::sqlparser::ast::Ident::new("csv"),
            )],
            &[],
        )
        .unwrap();
        assert_eq!(o.delimiter, ',');
        assert_eq!(o.null, "");
        assert_eq!(o.escape, '"');
    }
}
