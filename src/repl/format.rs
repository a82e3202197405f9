//! Result sets as text: psql's aligned and expanded (`\x`) formats, CSV
//! and JSON. Values are in Postgres text format, as psql shows them,
//! whether they come from the embedded engine or over the wire.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema};

use crate::error::{QuiverError, Result};
use pgwire::types::format::FormatOptions;

use crate::sql::types::{format_options, text_rows_with};

/// How a column's values are shown: numbers align right (and are bare in
/// JSON), booleans are true/false in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Number,
    Bool,
    Text,
}

impl ColumnKind {
    fn of_type(data_type: &DataType) -> ColumnKind {
        match data_type {
            DataType::Boolean => ColumnKind::Bool,
            t if t.is_numeric() => ColumnKind::Number,
            _ => ColumnKind::Text,
        }
    }

    /// From a Postgres type OID (int2/4/8, oid, float4/8, numeric; bool).
    pub fn of_oid(oid: u32) -> ColumnKind {
        match oid {
            20 | 21 | 23 | 26 | 700 | 701 | 1700 => ColumnKind::Number,
            16 => ColumnKind::Bool,
            _ => ColumnKind::Text,
        }
    }
}

/// Rows as text, with their column names and kinds.
#[derive(Debug, Clone, Default)]
pub struct ResultSet {
    pub columns: Vec<String>,
    pub kinds: Vec<ColumnKind>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl ResultSet {
    /// Arrow batches as text, with a session's format settings
    /// (extra_float_digits, bytea_output, IntervalStyle).
    pub fn from_batches(
        schema: &Arc<Schema>,
        batches: &[RecordBatch],
        options: &Arc<FormatOptions>,
    ) -> Result<ResultSet> {
        let rows = text_rows_with(schema, batches.to_vec(), options)
            .map_err(|e| QuiverError::Internal(e.to_string()))?;
        Ok(ResultSet {
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            kinds: schema
                .fields()
                .iter()
                .map(|f| ColumnKind::of_type(f.data_type()))
                .collect(),
            rows,
        })
    }
}

/// How the shell prints result sets (`\pset format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Aligned,
    Csv,
    Json,
}

impl Mode {
    pub fn parse(name: &str) -> Option<Mode> {
        match name.to_ascii_lowercase().as_str() {
            "aligned" | "table" => Some(Mode::Aligned),
            "csv" => Some(Mode::Csv),
            "json" => Some(Mode::Json),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Aligned => "aligned",
            Mode::Csv => "csv",
            Mode::Json => "json",
        }
    }
}

/// Renders a result set in `mode`; `expanded` is psql's `\x` (aligned
/// mode only, as in psql).
pub fn render(set: &ResultSet, mode: Mode, expanded: bool) -> String {
    match mode {
        Mode::Aligned if expanded => expanded_text(set),
        Mode::Aligned => aligned(set),
        Mode::Csv => csv(set),
        Mode::Json => json(set),
    }
}

/// Renders rows like psql's aligned format, with the `(N rows)` footer.
pub fn render_table(schema: &Arc<Schema>, batches: &[RecordBatch]) -> Result<String> {
    render_table_with(schema, batches, &format_options(&Default::default()))
}

/// [`render_table`] with a session's format settings.
pub fn render_table_with(
    schema: &Arc<Schema>,
    batches: &[RecordBatch],
    options: &Arc<FormatOptions>,
) -> Result<String> {
    Ok(aligned(&ResultSet::from_batches(schema, batches, options)?))
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn aligned(set: &ResultSet) -> String {
    let mut widths: Vec<usize> = set.columns.iter().map(|h| width(h)).collect();
    for row in &set.rows {
        for (w, value) in widths.iter_mut().zip(row) {
            *w = (*w).max(width(value.as_deref().unwrap_or_default()));
        }
    }
    let mut out = String::new();
    let header: Vec<String> = set
        .columns
        .iter()
        .zip(&widths)
        .map(|(h, w)| center(h, *w))
        .collect();
    out.push_str(format!(" {}", header.join(" | ")).trim_end());
    out.push('\n');
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(w + 2)).collect();
    out.push_str(&rule.join("+"));
    out.push('\n');
    for row in &set.rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .zip(&set.kinds)
            .map(|((v, w), kind)| {
                let v = v.as_deref().unwrap_or_default();
                if *kind == ColumnKind::Number {
                    format!("{v:>w$}")
                } else {
                    format!("{v:<w$}")
                }
            })
            .collect();
        out.push_str(format!(" {}", cells.join(" | ")).trim_end());
        out.push('\n');
    }
    out.push_str(&row_count(set.rows.len()));
    out
}

fn row_count(n: usize) -> String {
    format!("({n} row{})\n", if n == 1 { "" } else { "s" })
}

/// psql's `\x` layout: one block per row, a line per column.
fn expanded_text(set: &ResultSet) -> String {
    if set.rows.is_empty() {
        return "(0 rows)\n".into();
    }
    let name_width = set.columns.iter().map(|c| width(c)).max().unwrap_or(0);
    let value_width = set
        .rows
        .iter()
        .flatten()
        .map(|v| width(v.as_deref().unwrap_or_default()))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (i, row) in set.rows.iter().enumerate() {
        out.push_str(&record_rule(i + 1, name_width, value_width));
        out.push('\n');
        for (name, value) in set.columns.iter().zip(row) {
            let line = format!(
                "{name:<name_width$} | {}",
                value.as_deref().unwrap_or_default()
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

/// `-[ RECORD n ]-+----`, as wide as the block below it (psql's
/// print_aligned_vertical_line with border 1).
fn record_rule(record: usize, name_width: usize, value_width: usize) -> String {
    let label = format!("-[ RECORD {record} ]");
    let total = name_width + 3 + value_width;
    // The '+' sits above the '|' of the lines below, unless the label
    // covers it.
    let mut line = label;
    while width(&line) < total {
        line.push(if width(&line) == name_width + 1 {
            '+'
        } else {
            '-'
        });
    }
    line
}

/// RFC 4180 CSV with a header line; NULL is an empty field, as psql's
/// `--csv` writes it.
fn csv(set: &ResultSet) -> String {
    fn field(value: &str) -> String {
        if value.contains([',', '"', '\n', '\r']) || value.starts_with(' ') || value.ends_with(' ')
        {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value.to_string()
        }
    }
    let mut out = String::new();
    let header: Vec<String> = set.columns.iter().map(|c| field(c)).collect();
    out.push_str(&header.join(","));
    out.push('\n');
    for row in &set.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|v| v.as_deref().map(field).unwrap_or_default())
            .collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

/// A JSON array with one object per row (as DuckDB's `.mode json`):
/// numbers and booleans bare, NULL as null, everything else a string.
fn json(set: &ResultSet) -> String {
    use serde_json::{Map, Number, Value};
    let rows: Vec<Value> = set
        .rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            for ((name, kind), value) in set.columns.iter().zip(&set.kinds).zip(row) {
                let value = match (value, kind) {
                    (None, _) => Value::Null,
                    (Some(v), ColumnKind::Bool) => Value::Bool(v == "t" || v == "true"),
                    (Some(v), ColumnKind::Number) => v
                        .parse::<i64>()
                        .ok()
                        .map(Number::from)
                        .or_else(|| v.parse::<f64>().ok().and_then(Number::from_f64))
                        .map(Value::Number)
                        // NaN, Infinity and numerics beyond f64 stay exact as text.
                        .unwrap_or_else(|| Value::String(v.clone())),
                    (Some(v), ColumnKind::Text) => Value::String(v.clone()),
                };
                object.insert(name.clone(), value);
            }
            Value::Object(object)
        })
        .collect();
    let mut text = serde_json::to_string_pretty(&Value::Array(rows)).expect("JSON values print");
    text.push('\n');
    text
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
    use datafusion::arrow::datatypes::Field;

    fn sample() -> (Arc<Schema>, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("ok", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int32Array::from(vec![1, 20])),
                Arc::new(StringArray::from(vec![Some("alice, \"al\""), None])),
                Arc::new(BooleanArray::from(vec![Some(true), None])),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn renders_like_psql() {
        let (schema, batch) = sample();
        let text = render_table(&schema, &[batch]).unwrap();
        assert_eq!(
            text,
            " id |    name     | ok\n----+-------------+----\n  1 | alice, \"al\" | t\n 20 |             |\n(2 rows)\n"
        );
    }

    #[test]
    fn expanded_csv_and_json() {
        let (schema, batch) = sample();
        let set = ResultSet::from_batches(&schema, &[batch], &format_options(&Default::default()))
            .unwrap();
        assert_eq!(
            render(&set, Mode::Aligned, true),
            "-[ RECORD 1 ]-----\nid   | 1\nname | alice, \"al\"\nok   | t\n-[ RECORD 2 ]-----\nid   | 20\nname |\nok   |\n"
        );
        assert_eq!(
            render(&set, Mode::Csv, false),
            "id,name,ok\n1,\"alice, \"\"al\"\"\",t\n20,,\n"
        );
        let json: serde_json::Value =
            serde_json::from_str(&render(&set, Mode::Json, false)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"id": 1, "name": "alice, \"al\"", "ok": true},
                {"id": 20, "name": null, "ok": null}
            ])
        );
    }
}
