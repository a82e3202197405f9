//! Rows as a plan produces them, with the column types the SQL layer
//! declared for them (a column DataFusion produced in another type is cast
//! on the way out).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::{Stream, StreamExt};

use crate::error::{from_datafusion, Result};

/// Rows a plan is still producing.
pub struct RowStream(SendableRecordBatchStream);

impl std::fmt::Debug for RowStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowStream").finish_non_exhaustive()
    }
}

impl RowStream {
    pub fn new(stream: SendableRecordBatchStream) -> RowStream {
        RowStream(stream)
    }

    /// The rows with the column types `schema` declares: a column that
    /// comes in another type is cast, so what a client is told a column
    /// is and what it is sent always agree.
    pub fn conformed(self, schema: SchemaRef) -> RowStream {
        let declared = schema.clone();
        let stream = self
            .0
            .map(move |batch| Ok(conform_batch(batch?, &declared)?));
        RowStream::new(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, stream),
        ))
    }

    pub fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    /// Every remaining batch.
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut batches = Vec::new();
        while let Some(batch) = self.0.next().await {
            batches.push(batch.map_err(from_datafusion)?);
        }
        Ok(batches)
    }
}

impl Stream for RowStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0
            .poll_next_unpin(cx)
            .map(|next| next.map(|batch| batch.map_err(from_datafusion)))
    }
}

/// `batch` with the column types `declared` gives (cast where they differ).
pub fn conform_batch(
    batch: RecordBatch,
    declared: &SchemaRef,
) -> std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    if batch
        .schema()
        .fields()
        .iter()
        .zip(declared.fields())
        .all(|(have, want)| have.data_type() == want.data_type())
    {
        return super::pg_bpchar::pad_batch(batch, declared);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(declared.fields())
        .map(|(column, want)| datafusion::arrow::compute::cast(column, want.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // The batch's own names and nullability, the declared types.
    let fields: Vec<datafusion::arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(field, column)| {
            field
                .as_ref()
                .clone()
                .with_data_type(column.data_type().clone())
                .with_nullable(true)
        })
        .collect();
    let batch = RecordBatch::try_new(
        Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
        columns,
    )?;
    super::pg_bpchar::pad_batch(batch, declared)
}
