//! Building a system table's batch row by row from a compact column list.

use std::sync::Arc;

use datafusion::arrow::array::{new_empty_array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::Result;

/// A system table's columns as (name, Postgres type name). Object ids are
/// int4 (Arrow Int32) throughout, as `datafusion-pg-catalog`'s static
/// tables have them, so the two kinds of table join.
pub type Columns = &'static [(&'static str, &'static str)];

pub fn arrow_type(pg: &str) -> DataType {
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    match pg {
        "oid" | "int4" | "xid" | "regproc" => DataType::Int32,
        "int2" => DataType::Int16,
        "int8" => DataType::Int64,
        "float4" => DataType::Float32,
        "float8" => DataType::Float64,
        "bool" => DataType::Boolean,
        "timestamptz" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        "int2[]" | "int2vector" => list(DataType::Int16),
        "oid[]" | "oidvector" => list(DataType::Int32),
        "text[]" | "char[]" => list(DataType::Utf8),
        _ => DataType::Utf8,
    }
}

pub fn schema_of(columns: Columns) -> SchemaRef {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, pg)| {
                let field = Field::new(*name, arrow_type(pg), true);
                match *pg {
                    "int2vector" | "oidvector" => field.with_metadata(
                        [(
                            crate::engine::types::PG_TYPE_KEY.to_string(),
                            pg.to_string(),
                        )]
                        .into(),
                    ),
                    _ => field,
                }
            })
            .collect::<Vec<_>>(),
    ))
}

/// Rows collected column by column; `ScalarValue::Null` stands for a
/// NULL of the column's type.
pub struct Rows {
    schema: SchemaRef,
    columns: Vec<Vec<ScalarValue>>,
}

impl Rows {
    pub fn new(schema: SchemaRef) -> Self {
        let columns = vec![Vec::new(); schema.fields().len()];
        Rows { schema, columns }
    }

    /// Appends a row given as (column name, value); columns not named are
    /// NULL. Panics on a name the table does not have (a bug here).
    pub fn push(&mut self, values: Vec<(&str, ScalarValue)>) {
        let mut row = vec![ScalarValue::Null; self.columns.len()];
        for (name, value) in values {
            let i = self
                .schema
                .index_of(name)
                .unwrap_or_else(|_| panic!("system table has no column {name}"));
            row[i] = value;
        }
        for (column, value) in self.columns.iter_mut().zip(row) {
            column.push(value);
        }
    }

    pub fn finish(self) -> Result<RecordBatch> {
        let arrays = self
            .columns
            .into_iter()
            .zip(self.schema.fields())
            .map(|(values, field)| column(values, field.data_type()))
            .collect::<Result<Vec<_>>>()?;
        Ok(RecordBatch::try_new(self.schema, arrays)?)
    }
}

fn column(values: Vec<ScalarValue>, data_type: &DataType) -> Result<ArrayRef> {
    if values.is_empty() {
        return Ok(new_empty_array(data_type));
    }
    let typed = values
        .into_iter()
        .map(|v| {
            if v.is_null() {
                ScalarValue::try_from(data_type)
            } else if &v.data_type() != data_type {
                v.cast_to(data_type)
            } else {
                Ok(v)
            }
        })
        .collect::<Result<Vec<_>>>()?;
    ScalarValue::iter_to_array(typed)
}

pub fn text(s: impl Into<String>) -> ScalarValue {
    ScalarValue::Utf8(Some(s.into()))
}

pub fn int(i: i64) -> ScalarValue {
    ScalarValue::Int64(Some(i))
}

pub fn boolean(b: bool) -> ScalarValue {
    ScalarValue::Boolean(Some(b))
}

pub fn int2_list(values: &[i64]) -> ScalarValue {
    let items: Vec<ScalarValue> = values
        .iter()
        .map(|v| ScalarValue::Int16(Some(*v as i16)))
        .collect();
    ScalarValue::List(ScalarValue::new_list(&items, &DataType::Int16, true))
}

pub fn int4_list(values: &[i64]) -> ScalarValue {
    let items: Vec<ScalarValue> = values
        .iter()
        .map(|v| ScalarValue::Int32(Some(*v as i32)))
        .collect();
    ScalarValue::List(ScalarValue::new_list(&items, &DataType::Int32, true))
}
