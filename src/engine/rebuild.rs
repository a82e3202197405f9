//! The rows of a table after ALTER TABLE, rebuilt from its current rows:
//! each column kept, cast, or filled. The statement and recovery's replay
//! of it run the same code, so they build the same rows.

use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::ScalarValue;

use super::commit::{decode_batches, ColumnSource};
use crate::error::{QuiverError, Result};

/// The altered table's rows from the old ones (also used by recovery).
pub fn rebuild_rows(
    batches: Vec<RecordBatch>,
    schema: &SchemaRef,
    columns: &[ColumnSource],
    fills: &[Option<ArrayRef>],
) -> Result<Vec<RecordBatch>> {
    let strict = CastOptions {
        safe: false,
        ..Default::default()
    };
    // Build with nullable fields: NOT NULL is checked afterwards, with
    // Postgres's message.
    let loose = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    batches
        .into_iter()
        .map(|batch| {
            let n = batch.num_rows();
            let arrays = columns
                .iter()
                .zip(schema.fields())
                .zip(fills)
                .map(|((source, field), fill)| {
                    Ok(match source {
                        ColumnSource::Old(i) => batch.column(*i).clone(),
                        ColumnSource::Cast(i) => {
                            cast_with_options(batch.column(*i), field.data_type(), &strict)?
                        }
                        ColumnSource::Fill(_) => match fill {
                            Some(value) => {
                                ScalarValue::try_from_array(value, 0)?.to_array_of_size(n)?
                            }
                            None => new_null_array(field.data_type(), n),
                        },
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(RecordBatch::try_new(loose.clone(), arrays)?)
        })
        .collect()
}

/// Recovery: the fill values of a logged ALTER TABLE.
pub fn logged_fills(
    commit_blobs: &[bytes::Bytes],
    columns: &[ColumnSource],
) -> Result<Vec<Option<ArrayRef>>> {
    columns
        .iter()
        .map(|c| match c {
            ColumnSource::Fill(Some(blob)) => {
                let bytes = commit_blobs.get(*blob).ok_or_else(|| {
                    QuiverError::Internal(format!("WAL record refers to missing blob {blob}"))
                })?;
                let (_, batches) = decode_batches(bytes)?;
                Ok(batches.first().map(|b| b.column(0).clone()))
            }
            _ => Ok(None),
        })
        .collect()
}
