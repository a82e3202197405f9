//! Results as Flight SQL clients read them: plain Arrow types (the Flight
//! SQL JDBC driver rejects view types; dictionaries are decoded), every
//! column nullable (the stream's schema must equal the one FlightInfo
//! announced, and a plan's nullability is not always what its rows turn
//! out to be), and the column metadata the Flight SQL specification
//! names (`ARROW:FLIGHT:SQL:TYPE_NAME` and the rest).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::{
    DictionaryTracker, IpcDataGenerator, IpcWriteContext, IpcWriteOptions,
};

use arrow_flight::error::FlightError;
use arrow_flight::{FlightData, SchemaAsIpc};
use futures::{Stream, StreamExt};

use crate::engine::encoding::owned;
use crate::sql::types::{SOURCE_SCHEMA_KEY, SOURCE_TABLE_KEY};

/// The schema of a result as Flight SQL sends it.
pub fn result_schema(schema: &Schema, catalog: &str) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            Field::new(f.name(), plain_type(f.data_type()), true)
                .with_metadata(column_metadata(f, catalog))
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// The columns of a table as GetTables describes them: declared
/// nullability kept.
pub fn table_schema(schema: &Schema, catalog: &str) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| {
            Field::new(f.name(), plain_type(f.data_type()), f.is_nullable())
                .with_metadata(column_metadata(f, catalog))
        })
        .collect();
    Schema::new(fields)
}

/// `batch` in the types of `schema` (one made by [`result_schema`]).
pub fn result_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// The most data one message should carry: gRPC clients refuse
/// messages over 4 MiB by default.
pub const MESSAGE_BYTES: usize = 2 << 20;

/// The bytes of `batch`'s own rows. A slice of a table segment, or a
/// batch decoded from a Flight message, points into larger buffers, which
/// `get_array_memory_size` would count whole for each column.
pub fn own_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|c| {
            c.to_data()
                .get_slice_memory_size()
                .unwrap_or_else(|_| c.get_array_memory_size())
        })
        .sum()
}

/// `batch` cut into pieces of about [`MESSAGE_BYTES`] of data each.
/// (arrow-flight's own split counts the whole buffers a sliced column
/// points into, so a slice of a large table segment would go out in many
/// needlessly small messages.)
pub fn split_for_messages(batch: RecordBatch) -> Vec<RecordBatch> {
    let bytes = own_bytes(&batch);
    let pieces = bytes.div_ceil(MESSAGE_BYTES).max(1);
    if pieces == 1 || batch.num_rows() < 2 {
        return vec![batch];
    }
    let rows = batch.num_rows().div_ceil(pieces);
    (0..batch.num_rows())
        .step_by(rows)
        .map(|start| batch.slice(start, rows.min(batch.num_rows() - start)))
        .collect()
}

/// The Flight messages of a result: its schema, then each batch cut by
/// [`split_for_messages`], a message per piece. What arrow-flight's
/// `FlightDataEncoder` does (without its own second cut), except that each
/// message body is allocated at the size of the one before: that encoder
/// lets arrow-ipc keep room only between the pieces of its own cut, so
/// each of our bodies grew from empty by doubling, a fifth of the copying
/// in a fetch of a whole table.
pub fn flight_data<S>(
    schema: SchemaRef,
    batches: S,
) -> impl Stream<Item = Result<FlightData, FlightError>> + Send + 'static
where
    S: Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static,
{
    let options = IpcWriteOptions::default();
    let first = FlightData::from(SchemaAsIpc::new(&schema, &options));
    let generator = IpcDataGenerator::default();
    let mut dictionaries = DictionaryTracker::new(false);
    let mut context = IpcWriteContext::default();
    context.set_reserve_scratch(true);
    let messages = batches.flat_map(move |batch| {
        let mut out = Vec::new();
        match batch {
            Ok(batch) => {
                for piece in split_for_messages(batch) {
                    match generator.encode(&piece, &mut dictionaries, &options, &mut context) {
                        Ok((dictionaries, data)) => {
                            out.extend(dictionaries.into_iter().map(|d| Ok(d.into())));
                            out.push(Ok(data.into()));
                        }
                        Err(e) => {
                            out.push(Err(FlightError::Arrow(e)));
                            break;
                        }
                    }
                }
            }
            Err(e) => out.push(Err(e)),
        }
        futures::stream::iter(out)
    });
    futures::stream::once(async move { Ok(first) }).chain(messages)
}

/// `batch` in buffers of its own. A batch decoded from a Flight message
/// points into the whole message body, column by column: kept as it is,
/// each column would hold (and be counted as) the whole message.
pub fn compact(batch: &RecordBatch) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .map(|column| {
            // View arrays (polars' strings, Parquet read by pyarrow) would
            // keep every data buffer they point into: they become plain
            // strings and binaries, which our columns are anyway.
            if matches!(
                column.data_type(),
                DataType::Utf8View | DataType::BinaryView
            ) {
                return cast(column, &plain_type(column.data_type()));
            }
            owned(column.as_ref())
        })
        .collect::<Result<Vec<_>, ArrowError>>()?;
    let fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    RecordBatch::try_new_with_options(
        Arc::new(Schema::new_with_metadata(
            fields,
            batch.schema().metadata().clone(),
        )),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// A type every Flight SQL client reads.
pub fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Dictionary(_, values) => plain_type(values),
        DataType::List(item) => DataType::List(Arc::new(
            Field::new(
                item.name(),
                plain_type(item.data_type()),
                item.is_nullable(),
            )
            .with_metadata(item.metadata().clone()),
        )),
        DataType::ListView(item) => DataType::List(Arc::new(Field::new(
            item.name(),
            plain_type(item.data_type()),
            item.is_nullable(),
        ))),
        other => other.clone(),
    }
}

/// The column metadata keys of the Flight SQL specification.
fn column_metadata(field: &Field, catalog: &str) -> HashMap<String, String> {
    let mut meta = HashMap::new();
    let type_name = crate::sql::types::pg_type(field)
        .map(|t| t.name().to_string())
        .unwrap_or_else(|_| field.data_type().to_string());
    meta.insert("ARROW:FLIGHT:SQL:TYPE_NAME".to_string(), type_name);
    if let Some(schema) = field.metadata().get(SOURCE_SCHEMA_KEY) {
        meta.insert("ARROW:FLIGHT:SQL:CATALOG_NAME".into(), catalog.to_string());
        meta.insert("ARROW:FLIGHT:SQL:DB_SCHEMA_NAME".into(), schema.clone());
    }
    if let Some(table) = field.metadata().get(SOURCE_TABLE_KEY) {
        meta.insert("ARROW:FLIGHT:SQL:TABLE_NAME".into(), table.clone());
    }
    if let DataType::Decimal128(precision, scale) | DataType::Decimal256(precision, scale) =
        field.data_type()
    {
        meta.insert("ARROW:FLIGHT:SQL:PRECISION".into(), precision.to_string());
        meta.insert("ARROW:FLIGHT:SQL:SCALE".into(), scale.to_string());
    }
    let text = matches!(
        field.data_type(),
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    );
    meta.insert(
        "ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE".into(),
        if text { "1" } else { "0" }.into(),
    );
    meta.insert("ARROW:FLIGHT:SQL:IS_SEARCHABLE".into(), "1".into());
    meta
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{DictionaryArray, Int32Array, StringViewArray};
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn view_and_dictionary_columns_go_out_plain_and_nullable() {
        let schema = Schema::new(vec![
            Field::new("s", DataType::Utf8View, false),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("n", DataType::Int32, false),
        ]);
        let out = result_schema(&schema, "quiver");
        assert_eq!(out.field(0).data_type(), &DataType::Utf8);
        assert_eq!(out.field(1).data_type(), &DataType::Utf8);
        assert!(out.fields().iter().all(|f| f.is_nullable()));
        assert_eq!(
            out.field(2).metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"],
            "int4"
        );
        let dict: DictionaryArray<Int32Type> = vec!["a", "b", "a"].into_iter().collect();
        let batch = RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(StringViewArray::from(vec!["x", "y", "z"])),
                Arc::new(dict),
                Arc::new(Int32Array::from(vec![1, 2, 3])),
            ],
        )
        .unwrap();
        let sent = result_batch(&batch, &out).unwrap();
        assert_eq!(sent.schema(), out);
        assert_eq!(sent.num_rows(), 3);
    }

    #[test]
    fn messages_are_cut_by_the_data_of_the_slice() {
        let values: Int32Array = (0..2_000_000).collect();
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int32, false)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(values)]).unwrap();
        // 8 MB of data: four messages.
        let pieces = split_for_messages(batch.clone());
        assert_eq!(pieces.len(), 4);
        assert_eq!(
            pieces.iter().map(|b| b.num_rows()).sum::<usize>(),
            2_000_000
        );
        // A small slice of it is one message, however large its buffer.
        assert_eq!(split_for_messages(batch.slice(10, 8192)).len(), 1);
        // Compacted, the slice holds only its own values.
        let slice = compact(&batch.slice(10, 8192)).unwrap();
        assert!(slice.get_array_memory_size() < 64 * 1024);
        assert_eq!(
            slice.column(0).as_ref(),
            batch.slice(10, 8192).column(0).as_ref()
        );
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;
    use arrow_flight::decode::FlightRecordBatchStream;
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use datafusion::arrow::array::{Decimal128Array, Int64Array, StringViewArray};
    use futures::TryStreamExt;

    #[tokio::test]
    async fn decoded_batches_compact_to_their_own_size() {
        let n = 65536;
        let schema = Arc::new(Schema::new(vec![
            Field::new("i", DataType::Int64, false),
            Field::new("s", DataType::Utf8View, false),
            Field::new("d", DataType::Decimal128(15, 2), false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
                Arc::new(StringViewArray::from_iter_values(
                    (0..n).map(|i| format!("a longer string value, row {i}")),
                )),
                Arc::new(
                    Decimal128Array::from_iter_values((0..n).map(|i| i as i128))
                        .with_precision_and_scale(15, 2)
                        .unwrap(),
                ),
            ],
        )
        .unwrap();
        let data = FlightDataEncoderBuilder::new()
            .with_max_flight_data_size(usize::MAX)
            .build(futures::stream::iter(vec![
                Ok(batch.clone()),
                Ok(batch.clone()),
            ]));
        let decoded: Vec<RecordBatch> = FlightRecordBatchStream::new_from_flight_data(data)
            .try_collect()
            .await
            .unwrap();
        for b in &decoded {
            let compacted = compact(b).unwrap();
            // Each column of the decoded batch points into the whole
            // message; compacted, the batch is about its own size (strings
            // no longer views).
            assert!(b.get_array_memory_size() > 2 * batch.get_array_memory_size());
            assert!(compacted.get_array_memory_size() <= batch.get_array_memory_size() * 2);
            assert_eq!(compacted.column(1).data_type(), &DataType::Utf8);
            assert_eq!(compacted.num_rows(), n);
        }
    }
}
