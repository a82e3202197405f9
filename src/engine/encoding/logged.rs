//! A segment as the WAL records it: the arrays its encodings keep, so a
//! bulk load is logged in the bytes it is kept in. There is no second
//! compression of the same rows (LZ4 over their plain Arrow form was a
//! seventh of a COPY's CPU), and a replay installs the segment without
//! encoding it again.
//!
//! Layout: one Arrow IPC stream holding a one-row batch. Field `c`, for
//! the table's column `c`, is a list of the array the column keeps per row
//! (plain values, offsets, dictionary codes or FSST codes). Each
//! dictionary's strings (a list) and each FSST symbol table (bytes) follow
//! as fields of their own. The schema's metadata (`quiver.segment`, JSON)
//! says how each column is encoded, with the row count and each column's
//! decoded size.

use std::collections::HashMap;
use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::{DataFusionError, Result};
use serde::{Deserialize, Serialize};

use super::{keeps_offsets, owned, Encoded, Stored, Symbols};

const LAYOUT_KEY: &str = "quiver.segment";
/// An FSST symbol table as logged: 255 eight-byte symbols (little-endian),
/// then their 255 lengths.
const SYMBOL_BYTES: usize = 255 * 8 + 255;

#[derive(Serialize, Deserialize)]
struct Layout {
    rows: usize,
    columns: Vec<Column>,
}

#[derive(Serialize, Deserialize)]
struct Column {
    /// Bytes of the column decoded.
    plain: usize,
    kind: Kind,
}

#[derive(Serialize, Deserialize)]
enum Kind {
    Plain,
    /// The base as a decimal string: JSON numbers stop at 2^53.
    Offset {
        base: String,
    },
    /// The strings are the list in field `values`.
    Dict {
        values: usize,
    },
    /// The symbol table is the bytes in field `symbols`.
    Fsst {
        symbols: usize,
        ratio: f64,
    },
}

impl Stored {
    /// The segment as the WAL records it.
    pub fn to_log(&self) -> Result<Vec<u8>> {
        let n = self.columns.len();
        let mut fields = Vec::with_capacity(n);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(n);
        let mut extra_fields = Vec::new();
        let mut extra_arrays: Vec<ArrayRef> = Vec::new();
        let mut columns = Vec::with_capacity(n);
        for (c, column) in self.columns.iter().enumerate() {
            let kind = match column {
                Encoded::Plain(_) => Kind::Plain,
                Encoded::Offset { base, .. } => Kind::Offset {
                    base: base.to_string(),
                },
                Encoded::Dict { values, .. } => {
                    let list = one_row_list(values)?;
                    extra_fields.push(Field::new(
                        format!("values{c}"),
                        list.data_type().clone(),
                        false,
                    ));
                    extra_arrays.push(list);
                    Kind::Dict {
                        values: n + extra_arrays.len() - 1,
                    }
                }
                Encoded::Fsst { symbols, .. } => {
                    extra_fields.push(Field::new(format!("symbols{c}"), DataType::Binary, false));
                    extra_arrays.push(Arc::new(BinaryArray::from_vec(vec![&symbols.to_bytes()])));
                    Kind::Fsst {
                        symbols: n + extra_arrays.len() - 1,
                        ratio: symbols.ratio,
                    }
                }
            };
            let list = one_row_list(column.physical())?;
            fields.push(Field::new(format!("c{c}"), list.data_type().clone(), false));
            arrays.push(list);
            columns.push(Column {
                plain: self.plain[c],
                kind,
            });
        }
        fields.extend(extra_fields);
        arrays.extend(extra_arrays);
        let layout = serde_json::to_string(&Layout {
            rows: self.rows,
            columns,
        })
        .map_err(|e| DataFusionError::Internal(format!("logging a segment's layout: {e}")))?;
        let schema = Arc::new(Schema::new_with_metadata(
            fields,
            HashMap::from([(LAYOUT_KEY.to_string(), layout)]),
        ));
        // One row, also for a table without columns.
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )?;
        let mut out = Vec::with_capacity(self.bytes + 64 * 1024);
        let mut writer =
            StreamWriter::try_new_with_options(&mut out, &schema, IpcWriteOptions::default())?;
        writer.write(&batch)?;
        writer.finish()?;
        drop(writer);
        Ok(out)
    }

    /// A segment of a table with `schema` from what [`Stored::to_log`]
    /// wrote. Every array is checked against the encoding that reads it,
    /// and copied out of the record's buffer so that the segment owns (and
    /// counts) exactly its own bytes.
    pub fn from_log(schema: &SchemaRef, bytes: &[u8]) -> Result<Stored> {
        let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
        let layout: Layout = reader
            .schema()
            .metadata()
            .get(LAYOUT_KEY)
            .ok_or_else(|| malformed("it has no layout"))
            .and_then(|json| {
                serde_json::from_str(json).map_err(|e| malformed(&format!("its layout: {e}")))
            })?;
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
        let [batch] = &batches[..] else {
            return Err(malformed("it is not one batch"));
        };
        let n = schema.fields().len();
        if layout.columns.len() != n || batch.num_columns() < n || batch.num_rows() != 1 {
            return Err(malformed("its columns are not the table's"));
        }
        let field = |i: usize| -> Result<ArrayRef> {
            let array = batch
                .columns()
                .get(i)
                .ok_or_else(|| malformed("a field is missing"))?;
            match array.data_type() {
                DataType::List(_) => Ok(owned(array.as_list::<i32>().value(0).as_ref())?),
                _ => Ok(array.clone()),
            }
        };
        let rows = layout.rows;
        let mut columns = Vec::with_capacity(n);
        for (c, column) in layout.columns.iter().enumerate() {
            let data_type = schema.field(c).data_type();
            let kept = field(c)?;
            if kept.len() != rows {
                return Err(malformed(&format!("column {c} has {} rows", kept.len())));
            }
            let encoded = match &column.kind {
                Kind::Plain if kept.data_type() == data_type => Encoded::Plain(kept),
                Kind::Offset { base } if offsets_fit(&kept, data_type) => Encoded::Offset {
                    offsets: kept,
                    base: base
                        .parse()
                        .map_err(|_| malformed(&format!("column {c} has base {base}")))?,
                    data_type: data_type.clone(),
                },
                Kind::Dict { values } if *data_type == DataType::Utf8 => {
                    let values = field(*values)?;
                    if !codes_fit(&kept, &values) {
                        return Err(malformed(&format!("column {c} has codes past its values")));
                    }
                    Encoded::Dict {
                        codes: kept,
                        values,
                    }
                }
                Kind::Fsst { symbols, ratio }
                    if *data_type == DataType::Utf8 && *kept.data_type() == DataType::Binary =>
                {
                    let table = field(*symbols)?;
                    let symbols = table
                        .as_binary_opt::<i32>()
                        .filter(|t| t.len() == 1)
                        .and_then(|t| Symbols::from_bytes(t.value(0), *ratio))
                        .ok_or_else(|| malformed(&format!("column {c} has a bad symbol table")))?;
                    Encoded::Fsst {
                        codes: kept,
                        symbols: Arc::new(symbols),
                    }
                }
                _ => {
                    return Err(malformed(&format!(
                        "column {c} ({data_type}) is kept as {}",
                        kept.data_type()
                    )))
                }
            };
            columns.push(encoded);
        }
        Ok(Stored {
            schema: schema.clone(),
            bytes: columns.iter().map(Encoded::memory_size).sum(),
            plain: layout.columns.iter().map(|c| c.plain).collect(),
            columns,
            rows,
        })
    }
}

impl Symbols {
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SYMBOL_BYTES);
        for symbol in &self.symbols {
            out.extend_from_slice(&symbol.to_u64().to_le_bytes());
        }
        out.extend_from_slice(&self.lengths);
        out
    }

    /// None unless `bytes` is a table [`Symbols::to_bytes`] could write:
    /// the decompressor trusts every length to be 1 to 8.
    fn from_bytes(bytes: &[u8], ratio: f64) -> Option<Symbols> {
        if bytes.len() != SYMBOL_BYTES || !(ratio.is_finite() && ratio > 0.0) {
            return None;
        }
        let (symbols, lengths) = bytes.split_at(255 * 8);
        let lengths: [u8; 255] = lengths.try_into().ok()?;
        if lengths.iter().any(|&l| !(1..=8).contains(&l)) {
            return None;
        }
        let mut table = [fsst::Symbol::ZERO; 255];
        for (symbol, bytes) in table.iter_mut().zip(symbols.chunks_exact(8)) {
            *symbol = fsst::Symbol::from_slice(bytes.try_into().ok()?);
        }
        Some(Symbols {
            symbols: table,
            lengths,
            ratio,
        })
    }
}

/// `array` as the one value of a list.
fn one_row_list(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new_list_field(array.data_type().clone(), true)),
        OffsetBuffer::from_lengths([array.len()]),
        array.clone(),
        None,
    )?))
}

/// Whether `offsets` can be widened into values of `data_type`.
fn offsets_fit(offsets: &ArrayRef, data_type: &DataType) -> bool {
    matches!(
        offsets.data_type(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64
    ) && keeps_offsets(data_type)
}

/// Whether every code (nulls' included) points at one of `values`.
fn codes_fit(codes: &ArrayRef, values: &ArrayRef) -> bool {
    if *values.data_type() != DataType::Utf8 {
        return false;
    }
    let below = |code: usize| code < values.len();
    match codes.data_type() {
        DataType::UInt8 => (codes.as_primitive::<datafusion::arrow::datatypes::UInt8Type>())
            .values()
            .iter()
            .all(|&c| below(c as usize)),
        DataType::UInt16 => (codes.as_primitive::<datafusion::arrow::datatypes::UInt16Type>())
            .values()
            .iter()
            .all(|&c| below(c as usize)),
        _ => false,
    }
}

fn malformed(why: &str) -> DataFusionError {
    DataFusionError::Execution(format!("a segment in the WAL is malformed: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Decimal128Array, Int32Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::Schema;

    fn segment() -> (SchemaRef, RecordBatch) {
        let n = 40_000;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("price", DataType::Decimal128(38, 2), true),
            Field::new("flag", DataType::Utf8, true),
            Field::new("city", DataType::Utf8, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("raw", DataType::Int32, true),
            Field::new("none", DataType::Int32, true),
        ]));
        let ids = Int64Array::from_iter_values((0..n).map(|i| i as i64 - (1 << 40)));
        // A base past 2^53 (JSON's exact integers) and past i64.
        let prices = Decimal128Array::from_iter(
            (0..n).map(|i| (i % 7 != 0).then_some(i as i128 * 100 - 10i128.pow(30))),
        )
        .with_precision_and_scale(38, 2)
        .unwrap();
        let flags =
            StringArray::from_iter((0..n).map(|i| (i % 5 != 0).then(|| ["A", "N", "R"][i % 3])));
        let cities = StringArray::from_iter(
            (0..n).map(|i| (i % 11 != 0).then(|| format!("city {}", i % 1000))),
        );
        let notes = StringArray::from_iter((0..n).map(|i| {
            (i % 13 != 0).then(|| format!("carefully final deposits {i} haggle blithely {}", i * 7))
        }));
        let raw = Int32Array::from_iter_values(
            (0..n).map(|i| (i as i32).wrapping_mul(2_654_435_761u32 as i32)),
        );
        let none = Int32Array::new_null(n);
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(ids),
                Arc::new(prices),
                Arc::new(flags),
                Arc::new(cities),
                Arc::new(notes),
                Arc::new(raw),
                Arc::new(none),
            ],
        )
        .unwrap();
        (schema, batch)
    }

    #[test]
    fn a_logged_segment_reads_back_as_kept() {
        let (schema, batch) = segment();
        let stored = Stored::encoded(batch.clone());
        // Every encoding is in the segment.
        let kinds: Vec<_> = stored
            .columns
            .iter()
            .map(|c| match c {
                Encoded::Plain(_) => "plain",
                Encoded::Offset { .. } => "offset",
                Encoded::Dict { codes, .. } if *codes.data_type() == DataType::UInt8 => "dict8",
                Encoded::Dict { .. } => "dict16",
                Encoded::Fsst { .. } => "fsst",
            })
            .collect();
        assert_eq!(
            kinds,
            ["offset", "offset", "dict8", "dict16", "fsst", "plain", "plain"]
        );
        let bytes = stored.to_log().unwrap();
        // The log holds about what memory does, not the plain rows.
        assert!(bytes.len() < stored.memory_size() * 11 / 10 + 16 * 1024);
        let back = Stored::from_log(&schema, &bytes).unwrap();
        assert_eq!(back.rows(None, super::super::Rows::All).unwrap(), batch);
        assert_eq!(back.num_rows(), stored.num_rows());
        // Copied out of the record: no more than the segment held (which
        // may have had some capacity to spare).
        assert!(back.memory_size() <= stored.memory_size());
        assert!(back.memory_size() > stored.memory_size() * 99 / 100);
        assert_eq!(back.plain, stored.plain);
        // The same encodings, not just the same rows.
        for (a, b) in back.columns.iter().zip(&stored.columns) {
            assert_eq!(a.physical().data_type(), b.physical().data_type());
        }
    }

    #[test]
    fn a_segment_without_columns_keeps_its_row_count() {
        let schema = Arc::new(Schema::empty());
        let batch = RecordBatch::try_new_with_options(
            schema.clone(),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(5)),
        )
        .unwrap();
        let bytes = Stored::plain(batch).to_log().unwrap();
        assert_eq!(Stored::from_log(&schema, &bytes).unwrap().num_rows(), 5);
    }

    #[test]
    fn a_damaged_segment_is_an_error() {
        let (schema, batch) = segment();
        let bytes = Stored::encoded(batch).to_log().unwrap();
        // Another table's schema.
        let other = Arc::new(schema.project(&[0, 1]).unwrap());
        assert!(Stored::from_log(&other, &bytes).is_err());
        let swapped = Arc::new(Schema::new(
            (0..schema.fields().len())
                .map(|c| {
                    let f = schema.field(c);
                    match f.data_type() {
                        DataType::Utf8 => Field::new(f.name(), DataType::Int64, true),
                        _ => Field::new(f.name(), DataType::Utf8, true),
                    }
                })
                .collect::<Vec<_>>(),
        ));
        assert!(Stored::from_log(&swapped, &bytes).is_err());
        // Truncated anywhere.
        for cut in [0, 8, bytes.len() / 3, bytes.len() - 9] {
            assert!(
                Stored::from_log(&schema, &bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        // Symbol tables with impossible lengths.
        let mut bad = [0u8; SYMBOL_BYTES];
        bad[255 * 8..].fill(9);
        assert!(Symbols::from_bytes(&bad, 2.0).is_none());
        bad[255 * 8..].fill(8);
        assert!(Symbols::from_bytes(&bad, 2.0).is_some());
        assert!(Symbols::from_bytes(&bad[1..], 2.0).is_none());
    }
}
