//! What the WAL records: the effects of one committed change, never SQL to
//! re-run. Row data travels as Arrow IPC; definitions as JSON.
//!
//! Payload layout: `u32` header length, the JSON header, then each blob as
//! `u64` length + bytes. The header refers to blobs by index.

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::{IpcWriteOptions, StreamWriter};
use datafusion::arrow::ipc::CompressionType;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::engine::roles::{Acl, AclObject, Role};
use crate::engine::sequence::SequenceDef;
use crate::error::{QuiverError, Result};

/// A unique constraint as logged: name, key column names, primary or not.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ConstraintDef {
    pub name: String,
    pub columns: Vec<String>,
    pub primary: bool,
}

/// A CHECK constraint as logged: its name and boolean SQL expression.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckDef {
    pub name: String,
    pub sql: String,
}

/// An index made by CREATE INDEX (the indexes of PRIMARY KEY and UNIQUE
/// constraints are the constraints themselves). A unique one is enforced
/// like a UNIQUE constraint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexDef {
    pub name: String,
    /// The indexed columns, in key order.
    pub columns: Vec<String>,
    pub unique: bool,
    /// The access method it was created with (`btree`, `hash`).
    pub method: String,
}

/// Everything needed to create a table again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TableDef {
    pub id: u64,
    pub schema: String,
    pub name: String,
    /// Index of the blob holding the Arrow schema (IPC, no batches).
    pub arrow_schema: usize,
    /// Column name and the SQL text of its DEFAULT expression.
    pub defaults: Vec<(String, String)>,
    pub constraints: Vec<ConstraintDef>,
    #[serde(default)]
    pub checks: Vec<CheckDef>,
    /// Identity columns: name, and whether GENERATED ALWAYS (else BY
    /// DEFAULT). Their DEFAULT is the sequence's nextval.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<(String, bool)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
}

/// Everything needed to create a view again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ViewDef {
    pub schema: String,
    pub name: String,
    /// The defining query, as SQL.
    pub query: String,
    /// Column names given in `CREATE VIEW v (a, b)`, if any.
    pub columns: Vec<String>,
    /// The schema unqualified names in `query` resolved to.
    pub default_schema: String,
    pub or_replace: bool,
    /// For an external table: the schema of its files when it was created
    /// (base64 Arrow IPC), so it comes back even if the files have gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_schema: Option<String>,
}

impl ViewDef {
    /// The file schema an external table was created with (recorded so it
    /// comes back even when its files have gone).
    pub fn stored_file_schema(&self) -> Result<Option<SchemaRef>> {
        let Some(stored) = &self.file_schema else {
            return Ok(None);
        };
        let bytes = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, stored)
            .map_err(|e| QuiverError::Internal(format!("bad external table schema: {e}")))?;
        Ok(Some(decode_batches(&bytes)?.0))
    }

    /// Records the file schema of an external table.
    pub fn store_file_schema(&mut self, schema: &Schema) -> Result<()> {
        let bytes = encode_schema(schema)?;
        self.file_schema = Some(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            bytes,
        ));
        Ok(())
    }
}

/// Where a column of an altered table gets its values.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum ColumnSource {
    /// The old table's column at this position, unchanged.
    Old(usize),
    /// The old table's column at this position, cast to the new type.
    Cast(usize),
    /// One value for every row: a one-row IPC batch in this blob, or NULL.
    Fill(Option<usize>),
}

/// One logged change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Effect {
    CreateSchema {
        name: String,
    },
    DropSchema {
        name: String,
        cascade: bool,
    },
    CreateTable(TableDef),
    CreateView(ViewDef),
    DropRelations {
        names: Vec<(String, String)>,
        views: bool,
        if_exists: bool,
        cascade: bool,
    },
    /// Rows appended to the table with this id; the blob is an IPC stream.
    Insert {
        table_id: u64,
        data: usize,
    },
    /// Rows of a bulk load appended to the table with this id: the blob is
    /// one segment as the table keeps it (see `encoding/logged.rs`).
    InsertSegment {
        table_id: u64,
        data: usize,
    },
    /// Rows removed from the table with this id: the blob holds their
    /// positions among its live rows (see [`encode_positions`]).
    Delete {
        table_id: u64,
        positions: usize,
    },
    /// ALTER TABLE: the table with id `old_id` (named `old_name` in
    /// `old_schema`) is replaced by the table `def` describes, whose
    /// columns come from the old rows as `columns` says.
    AlterTable {
        old_id: u64,
        old_schema: String,
        old_name: String,
        def: TableDef,
        columns: Vec<ColumnSource>,
    },
    /// Every row of these tables removed.
    Truncate {
        table_ids: Vec<u64>,
    },
    /// A role created or altered: its whole new definition.
    PutRole(Role),
    DropRole {
        name: String,
    },
    /// The owner and grants of a schema or relation, replaced whole.
    SetAcl {
        object: AclObject,
        acl: Option<Acl>,
    },
    /// A sequence created, with the state it starts from.
    CreateSequence(SequenceDef),
    /// A sequence's position (nextval's log-ahead, setval): after a crash
    /// it continues from here.
    SetSequence {
        id: u64,
        last_value: i64,
        is_called: bool,
    },
    /// ALTER SEQUENCE: the new definition and state, whole.
    AlterSequence(SequenceDef),
    /// A FOREIGN KEY constraint added (CREATE TABLE, ALTER TABLE).
    AddForeignKey(crate::engine::foreign::ForeignKeyDef),
    DropForeignKey {
        schema: String,
        table: String,
        name: String,
    },
    /// COMMENT ON: set, or removed (None).
    SetComment {
        target: crate::engine::comments::CommentTarget,
        comment: Option<String>,
    },
}

impl Effect {
    /// Moves the effect's blob references up by `by`.
    fn shift_blobs(&mut self, by: usize) {
        match self {
            Effect::CreateTable(def) => def.arrow_schema += by,
            Effect::Insert { data, .. } | Effect::InsertSegment { data, .. } => *data += by,
            Effect::Delete { positions, .. } => *positions += by,
            Effect::AlterTable { def, columns, .. } => {
                def.arrow_schema += by;
                for column in columns {
                    if let ColumnSource::Fill(Some(blob)) = column {
                        *blob += by;
                    }
                }
            }
            Effect::CreateSchema { .. }
            | Effect::DropSchema { .. }
            | Effect::CreateView(_)
            | Effect::DropRelations { .. }
            | Effect::Truncate { .. }
            | Effect::PutRole(_)
            | Effect::DropRole { .. }
            | Effect::SetAcl { .. }
            | Effect::CreateSequence(_)
            | Effect::SetSequence { .. }
            | Effect::AlterSequence(_)
            | Effect::AddForeignKey(_)
            | Effect::DropForeignKey { .. }
            | Effect::SetComment { .. } => {}
        }
    }
}

/// A committed change as it sits in the WAL: effects plus their blobs.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub effects: Vec<Effect>,
    /// Shared, not copied, on their way to the log.
    pub blobs: Vec<bytes::Bytes>,
}

impl Commit {
    pub fn new() -> Self {
        Commit::default()
    }

    /// A commit of one effect without blobs.
    pub fn of(effect: Effect) -> Self {
        Commit {
            effects: vec![effect],
            blobs: Vec::new(),
        }
    }

    /// Appends another commit's effects and blobs (renumbering its blob
    /// references).
    pub fn append(&mut self, other: Commit) {
        let shift = self.blobs.len();
        self.blobs.extend(other.blobs);
        for mut effect in other.effects {
            effect.shift_blobs(shift);
            self.effects.push(effect);
        }
    }

    /// Adds a blob and returns its index for an effect to refer to.
    pub fn add_blob(&mut self, bytes: Vec<u8>) -> usize {
        self.blobs.push(bytes.into());
        self.blobs.len() - 1
    }

    /// The encoded record as consecutive parts: the header (with the first
    /// blob's length), then each blob (followed by the next one's length).
    /// The blobs are shared, not copied.
    pub fn encode_parts(&self) -> Result<Vec<bytes::Bytes>> {
        let header = serde_json::to_vec(&self.effects)
            .map_err(|e| QuiverError::Internal(format!("encoding a WAL record: {e}")))?;
        let mut head = Vec::with_capacity(4 + header.len() + 8);
        head.extend_from_slice(&(header.len() as u32).to_le_bytes());
        head.extend_from_slice(&header);
        let mut parts = Vec::with_capacity(1 + 2 * self.blobs.len());
        for blob in &self.blobs {
            head.extend_from_slice(&(blob.len() as u64).to_le_bytes());
            parts.push(bytes::Bytes::from(std::mem::take(&mut head)));
            parts.push(blob.clone());
        }
        if !head.is_empty() {
            parts.push(head.into());
        }
        Ok(parts)
    }

    pub fn decode(payload: &[u8]) -> std::result::Result<Commit, String> {
        let take = |bytes: &[u8], at: usize, n: usize| -> std::result::Result<(), String> {
            if at + n > bytes.len() {
                Err(format!("record truncated at byte {at}"))
            } else {
                Ok(())
            }
        };
        take(payload, 0, 4)?;
        let header_len = u32::from_le_bytes(payload[0..4].try_into().unwrap()) as usize;
        take(payload, 4, header_len)?;
        let effects: Vec<Effect> = serde_json::from_slice(&payload[4..4 + header_len])
            .map_err(|e| format!("bad record header: {e}"))?;
        let mut at = 4 + header_len;
        let mut blobs = Vec::new();
        while at < payload.len() {
            take(payload, at, 8)?;
            let len = u64::from_le_bytes(payload[at..at + 8].try_into().unwrap()) as usize;
            at += 8;
            take(payload, at, len)?;
            blobs.push(bytes::Bytes::copy_from_slice(&payload[at..at + len]));
            at += len;
        }
        Ok(Commit { effects, blobs })
    }
}

/// Sorted row positions as runs: pairs of little-endian `u64` (first
/// position, run length), so a range delete of a million rows is 16 bytes.
pub fn encode_positions(positions: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < positions.len() {
        let start = positions[i];
        let mut len = 1;
        while i + (len as usize) < positions.len() && positions[i + len as usize] == start + len {
            len += 1;
        }
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        i += len as usize;
    }
    out
}

pub fn decode_positions(bytes: &[u8]) -> Result<Vec<u64>> {
    if !bytes.len().is_multiple_of(16) {
        return Err(QuiverError::Internal(
            "WAL record has a malformed list of row positions".into(),
        ));
    }
    let mut out = Vec::new();
    for run in bytes.chunks_exact(16) {
        let start = u64::from_le_bytes(run[..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(run[8..].try_into().expect("8 bytes"));
        out.extend(start..start + len);
    }
    Ok(out)
}

/// Batches as an Arrow IPC stream (the schema, with its metadata, first).
pub fn encode_batches(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    encode_with(schema, batches, IpcWriteOptions::default(), 1)
}

/// `batches` as one IPC stream written with `options`, into a buffer of
/// the arrays' size divided by `shrink` (what compression is expected to
/// leave), plus a little for the padding of each buffer.
fn encode_with(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    options: IpcWriteOptions,
    shrink: usize,
) -> Result<Vec<u8>> {
    let size: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    let mut out = Vec::with_capacity(size / shrink + size / 16 + 4096);
    {
        let mut writer = StreamWriter::try_new_with_options(&mut out, schema, options)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(out)
}

/// The schema and batches of an IPC stream.
pub fn decode_batches(bytes: &[u8]) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// From this many bytes on, logged rows are compressed on every core.
const PARALLEL: usize = 16 << 20;

/// Rows appended by one statement, as the WAL records them: one IPC
/// stream, or for a big append (an INSERT of many rows) several streams
/// with LZ4-compressed buffers, encoded on every core, in row order. The
/// compressed form is a third of the bytes to write and sync; reading it
/// needs nothing more (each stream says how its buffers are compressed).
pub fn encode_rows_for_log(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<Vec<u8>>> {
    let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
    if bytes < PARALLEL {
        return Ok(vec![encode_batches(schema, batches)?]);
    }
    if batches.len() < 2 {
        return Ok(vec![encode_compressed(schema, batches)?]);
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(batches.len());
    let per_thread = batches.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = batches
            .chunks(per_thread)
            .map(|part| scope.spawn(move || encode_compressed(schema, part)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| QuiverError::Internal("a WAL encoder panicked".into()))?
            })
            .collect()
    })
}

fn encode_compressed(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Vec<u8>> {
    let options =
        IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
    encode_with(schema, batches, options, 2)
}

/// A schema alone, as an IPC stream with no batches.
pub fn encode_schema(schema: &Schema) -> Result<Vec<u8>> {
    encode_batches(&Arc::new(schema.clone()), &[])
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_big_append_is_logged_compressed_in_row_order() {
        use datafusion::arrow::array::{Int64Array, StringArray};
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::arrow::record_batch::RecordBatch;
        use std::sync::Arc;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batches: Vec<RecordBatch> = (0..8)
            .map(|b| {
                let keys = (b * 100_000..(b + 1) * 100_000).collect::<Vec<i64>>();
                let text: Vec<Option<String>> = keys
                    .iter()
                    .map(|k| (k % 7 != 0).then(|| format!("row number {k} of the append")))
                    .collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(keys)),
                        Arc::new(StringArray::from(text)),
                    ],
                )
                .unwrap()
            })
            .collect();
        let plain = super::encode_batches(&schema, &batches).unwrap().len();
        let blobs = super::encode_rows_for_log(&schema, &batches).unwrap();
        let logged: usize = blobs.iter().map(|b| b.len()).sum();
        assert!(logged * 2 < plain, "{logged} bytes logged, {plain} plain");
        let mut back = Vec::new();
        for blob in &blobs {
            back.extend(super::decode_batches(blob).unwrap().1);
        }
        assert_eq!(back, batches);
        // A small append stays one plain stream.
        let small = super::encode_rows_for_log(&schema, &batches[..1]).unwrap();
        assert_eq!(
            small,
            vec![super::encode_batches(&schema, &batches[..1]).unwrap()]
        );
    }

    #[test]
    fn positions_round_trip_as_runs() {
        let positions = vec![0, 1, 2, 7, 9, 10, 1_000_000];
        let bytes = super::encode_positions(&positions);
        assert_eq!(bytes.len(), 4 * 16);
        assert_eq!(super::decode_positions(&bytes).unwrap(), positions);
        assert!(super::decode_positions(&[]).unwrap().is_empty());
    }

    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field};
    use std::collections::HashMap;

    #[test]
    fn a_commit_round_trips_with_its_batches() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)
            .with_metadata(HashMap::from([(
                "quiver.pg_type".to_string(),
                "uuid".to_string(),
            )]))]));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int32Array::from(vec![1, 2]))])
                .unwrap();
        let mut commit = Commit::new();
        let data = commit.add_blob(encode_batches(&schema, std::slice::from_ref(&batch)).unwrap());
        commit.effects.push(Effect::Insert { table_id: 7, data });
        let decoded = Commit::decode(&commit.encode_parts().unwrap().concat()).unwrap();
        assert_eq!(decoded.effects, commit.effects);
        let (got_schema, got) = decode_batches(&decoded.blobs[0]).unwrap();
        assert_eq!(got_schema, schema);
        assert_eq!(got, vec![batch]);
    }
}
