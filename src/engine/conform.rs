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
        TaggedType::Json | TaggedType::Jsonb => {
            for value in strings.iter().flatten() {
                check_json(tag, value)?;
            }
            Ok(column.clone())
        }
        // Catalog types, never stored in a table.
        TaggedType::Int2Vector | TaggedType::OidVector => Ok(column.clone()),
    }
}

/// Checks that `text` is valid JSON.
pub fn check_json(tag: TaggedType, text: &str) -> Result<()> {
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => Ok(()),
        Err(_) => Err(QuiverError::InvalidTextRepresentation {
            type_name: tag.name().to_string(),
            value: text.to_string(),
        }),
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
