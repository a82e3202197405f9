//! Result sets as psql-style aligned text tables.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;

use crate::error::{QuiverError, Result};
use pgwire::types::format::FormatOptions;

use crate::pg::types::{format_options, text_rows_with};

/// Renders rows like psql's aligned format, with the `(N rows)` footer.
/// Values are in Postgres text format, as psql would show them.
pub fn render_table(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Result<String> {
    render_table_with(schema, batches, &format_options(&Default::default()))
}

/// [`render_table`] with a session's format settings (extra_float_digits,
/// bytea_output, IntervalStyle).
pub fn render_table_with(
    schema: &Arc<Schema>,
    batches: &[RecordBatch],
    options: &Arc<FormatOptions>,
) -> Result<String> {
    let rows = text_rows_with(schema, batches.to_vec(), options)
        .map_err(|e| QuiverError::Internal(e.to_string()))?;
    let headers: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, value) in widths.iter_mut().zip(row) {
            *w = (*w).max(value.as_deref().unwrap_or_default().chars().count());
        }
    }
    let numeric: Vec<bool> = schema
        .fields()
        .iter()
        .map(|f| f.data_type().is_numeric())
        .collect();
    let mut out = String::new();
    let header: Vec<String> = headers
        .iter()
        .zip(&widths)
        .map(|(h, w)| center(h, *w))
        .collect();
    out.push_str(format!(" {}", header.join(" | ")).trim_end());
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&rule.join("+"));
    out.push('\n');
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((v, w), num)| {
                let v = v.as_deref().unwrap_or_default();
                if *num {
                    format!("{v:>w$}")
                } else {
                    format!("{v:<w$}")
                }
            })
            .collect();
        out.push_str(format!(" {}", cells.join(" | ")).trim_end());
        out.push('\n');
    }
    let n = rows.len();
    out.push_str(&format!("({n} row{})\n", if n == 1 { "" } else { "s" }));
    Ok(out)
}

fn center(text: &str, width: usize) -> String {
    let len = text.chars().count();
    let left = (width - len) / 2;
    let right = width - len - left;
    format!("{}{}{}", " ".repeat(left), text, " ".repeat(right))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    #[test]
    fn renders_like_psql() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![1, 20])),
                Arc::new(StringArray::from(vec![Some("alice"), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ],
        )
        .unwrap();
        let text = render_table(&schema, &[batch]).unwrap();
        assert_eq!(
            text,
            " id | name  | ok\n----+-------+----\n  1 | alice | t\n 20 |       |\n(2 rows)\n"
        );
    }
}
