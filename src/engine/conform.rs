//! Rows stored into a table take its declared column types: cast where
//! the producer's type differs, NOT NULL and CHECK enforced, and the
//! PostgreSQL types kept as text (varchar(n), char(n), uuid, json) checked
//! and normalised. INSERT, UPDATE, COPY, ALTER TABLE and recovery's replay
//! of an ALTER all store rows through here.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::DataType;

use super::types::{declared_length, hyphenated_uuid, TaggedType};
use super::Table;
use crate::error::{QuiverError, Result};

const STRICT: CastOptions<'static> = CastOptions {
    safe: false,
    format_options: datafusion::arrow::util::display::FormatOptions::new(),
};

/// Rebuilds `batches` with exactly the table's schema, enforcing NOT NULL,
/// declared lengths and the text forms of uuid and json.
pub fn conform_batches(table: &Table, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let schema = table.schema_ref();
    let batches = batches
        .into_iter()
        .filter(|b| b.num_rows() > 0)
        .map(|batch| {
            if batch.num_columns() != schema.fields().len() {
                return Err(QuiverError::Syntax(format!(
                    "INSERT has {} expressions but table \"{}\" has {} columns",
                    batch.num_columns(),
                    table.name(),
                    schema.fields().len()
                )));
            }
            let columns = schema
                .fields()
                .iter()
                .zip(batch.columns())
                .map(|(field, column)| {
                    let column = if column.data_type() == field.data_type() {
                        column.clone()
                    } else if matches!(field.data_type(), DataType::List(_))
                        && !matches!(column.data_type(), DataType::List(_) | DataType::Null)
                    {
                        // Arrow would wrap each value in a list of one.
                        return Err(QuiverError::DatatypeMismatch(format!(
                            "column \"{}\" is of type {} but expression is of type {}",
                            field.name(),
                            super::types::display_type(field),
                            super::types::display_type(&datafusion::arrow::datatypes::Field::new(
                                "",
                                column.data_type().clone(),
                                true
                            ))
                        )));
                    } else {
                        // Strict: a value the column type cannot hold is
                        // an error, as in PostgreSQL, never a NULL.
                        cast_with_options(column, field.data_type(), &STRICT)?
                    };
                    if !field.is_nullable() && column.null_count() > 0 {
                        return Err(QuiverError::NotNullViolation {
                            table: table.name().to_string(),
                            column: field.name().clone(),
                        });
                    }
                    match (TaggedType::of(field), TaggedType::of_elements(field)) {
                        (Some(tag), _) => check_tagged(tag, declared_length(field), &column),
                        (None, Some(tag)) => check_elements(tag, declared_length(field), &column),
                        (None, None) => Ok(column),
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            table.check_rows(&batch)?;
            Ok(batch)
        })
        .collect::<Result<Vec<_>>>()?;
    super::table::densify(&schema, batches)
}

/// [`check_tagged`] for the elements of an array column.
fn check_elements(tag: TaggedType, length: Option<usize>, column: &ArrayRef) -> Result<ArrayRef> {
    let Some(list) = column.as_list_opt::<i32>() else {
        return Ok(column.clone());
    };
    let DataType::List(item) = list.data_type() else {
        unreachable!("a list array has a list type")
    };
    let values = check_tagged(tag, length, list.values())?;
    if Arc::ptr_eq(&values, list.values()) {
        return Ok(column.clone());
    }
    Ok(Arc::new(datafusion::arrow::array::ListArray::try_new(
        item.clone(),
        list.offsets().clone(),
        values,
        list.nulls().cloned(),
    )?))
}

/// Checks (and normalises) values of the Postgres types kept as text.
fn check_tagged(tag: TaggedType, length: Option<usize>, column: &ArrayRef) -> Result<ArrayRef> {
    if column.data_type() != &DataType::Utf8 {
        return Ok(column.clone());
    }
    let strings = column.as_string::<i32>();
    match tag {
        TaggedType::Varchar | TaggedType::Bpchar => {
            if let Some(max) = length {
                for value in strings.iter().flatten() {
                    // Postgres lets trailing spaces beyond the limit through.
                    if value.trim_end_matches(' ').chars().count() > max {
                        let type_name = if tag == TaggedType::Varchar {
                            format!("character varying({max})")
                        } else {
                            format!("character({max})")
                        };
                        return Err(QuiverError::StringTooLong(type_name));
                    }
                }
            }
            // A char(n) is kept without its padding (shown padded); a
            // varchar(n) loses the spaces past its length.
            let kept = |v: &'_ str| -> usize {
                match (tag, length) {
                    (TaggedType::Bpchar, _) => v.trim_end_matches(' ').len(),
                    (_, Some(max)) => v.char_indices().nth(max).map_or(v.len(), |(at, _)| at),
                    _ => v.len(),
                }
            };
            if strings.iter().flatten().any(|v| kept(v) < v.len()) {
                let trimmed: StringArray =
                    strings.iter().map(|v| v.map(|v| &v[..kept(v)])).collect();
                return Ok(Arc::new(trimmed));
            }
            Ok(column.clone())
        }
        TaggedType::Uuid => {
            let normalised: StringArray = strings
                .iter()
                .map(|v| v.map(normalise_uuid).transpose())
                .collect::<Result<_>>()?;
            Ok(Arc::new(normalised))
        }
        TaggedType::Json => {
            for value in strings.iter().flatten() {
                super::json::check_json(value)?;
            }
            Ok(column.clone())
        }
        // Stored in its canonical text, so equal values are equal strings.
        TaggedType::Jsonb => {
            let canonical: StringArray = strings
                .iter()
                .map(|v| v.map(super::json::jsonb_text).transpose())
                .collect::<Result<_>>()?;
            Ok(Arc::new(canonical))
        }
        // Catalog types, never stored in a table.
        TaggedType::Int2Vector | TaggedType::OidVector => Ok(column.clone()),
    }
}

/// Numeric input as Postgres reads it (blanks around it, a sign, digits
/// with or without a point, an exponent: ` 1.5E+3 `, `0E-8`), written as
/// plain digits and a point (`1500`, `0.00000000`), the only form Arrow's
/// decimal parsers take. `None` when it is not a number (left to the
/// caller's own error). Python's `Decimal` prints `1E+2` and `0E-8`, and
/// psycopg sends it so.
pub fn plain_numeric(text: &str) -> Option<String> {
    let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (negative, unsigned) = match trimmed.as_bytes().first()? {
        b'-' => (true, &trimmed[1..]),
        b'+' => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => {
            let exponent = &unsigned[at + 1..];
            let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Postgres's own bound on a numeric's exponent.
            let exponent: i64 = exponent.parse().ok().filter(|e: &i64| e.abs() <= 1000)?;
            (&unsigned[..at], exponent)
        }
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let plain = digits_with_point(&digits, whole.len() as i64 + exponent);
    Some(if negative { format!("-{plain}") } else { plain })
}

/// `digits` with a point after the first `point` of them (zeros added
/// on either side as needed; no point when it falls after the last).
pub fn digits_with_point(digits: &str, point: i64) -> String {
    if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        let (left, right) = digits.split_at(point as usize);
        format!("{left}.{right}")
    }
}

/// Accepts the spellings Postgres accepts (hyphens optional, braces, any
/// case) and stores the canonical lower-case hyphenated form.
pub fn normalise_uuid(text: &str) -> Result<String> {
    let invalid = || QuiverError::InvalidTextRepresentation {
        type_name: "uuid".into(),
        value: text.to_string(),
    };
    let trimmed = text.trim();
    let inner = trimmed
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(trimmed);
    let hex: String = inner.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    Ok(hyphenated_uuid(&hex.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_input_is_written_without_exponent() {
        let plain = plain_numeric;
        assert_eq!(plain("1E+2").as_deref(), Some("100"));
        assert_eq!(plain("0E-8").as_deref(), Some("0.00000000"));
        assert_eq!(plain(" -1.5e-3 ").as_deref(), Some("-0.0015"));
        assert_eq!(plain("+12.34e1").as_deref(), Some("123.4"));
        assert_eq!(plain("12.").as_deref(), Some("12"));
        assert_eq!(plain(".5").as_deref(), Some("0.5"));
        assert_eq!(plain("42").as_deref(), Some("42"));
        for bad in [
            "", " ", "-", "e5", "1e", "1e+", "1.2.3", "1x", "abc", "1e5000", "NaN", "1 2",
        ] {
            assert_eq!(plain(bad), None, "{bad}");
        }
    }

    #[test]
    fn uuid_spellings_normalise() {
        assert_eq!(
            normalise_uuid("{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}").unwrap(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert_eq!(
            normalise_uuid("a0eebc999c0b4ef8bb6d6bb9bd380a11").unwrap(),
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        );
        assert!(normalise_uuid("not-a-uuid").is_err());
    }
}
