//! PRIMARY KEY and UNIQUE constraints, enforced by an in-memory hash index
//! of the key columns' row-encoded values.

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::arrow::util::display::array_value_to_string;

use super::keyset::KeySet;
use crate::error::{QuiverError, Result};

/// An encoded key with the batch and row it came from.
pub type KeyAt = (Box<[u8]>, usize, usize);

/// A unique constraint as declared.
#[derive(Debug, Clone)]
pub struct UniqueConstraint {
    /// Postgres-style name: `t_pkey`, `t_col_key`.
    pub name: String,
    /// Column positions in the table schema.
    pub columns: Vec<usize>,
    pub primary: bool,
    /// Made by CREATE UNIQUE INDEX, not declared as a constraint: it
    /// enforces the same, but is listed as an index only.
    pub index_only: bool,
}

/// Encodes the values of some columns of a row as one comparable byte
/// string: the keys of unique constraints and of lookup indexes.
pub struct KeyEncoder {
    /// Column positions in the table schema, in key order.
    columns: Vec<usize>,
    converter: RowConverter,
}

impl KeyEncoder {
    pub fn new(columns: Vec<usize>, schema: &Schema) -> Result<Self> {
        let fields = columns
            .iter()
            .map(|&c| SortField::new(schema.field(c).data_type().clone()))
            .collect();
        Ok(KeyEncoder {
            columns,
            converter: RowConverter::new(fields)?,
        })
    }

    pub fn columns(&self) -> &[usize] {
        &self.columns
    }

    /// The non-NULL keys of `batches`, each with the batch and row it came
    /// from (a key with a NULL equals nothing, as in Postgres).
    pub fn keys(&self, batches: &[RecordBatch]) -> Result<Vec<KeyAt>> {
        let mut out = Vec::new();
        for (b, batch) in batches.iter().enumerate() {
            let columns: Vec<ArrayRef> = self
                .columns
                .iter()
                .map(|&c| batch.column(c).clone())
                .collect();
            out.extend(
                self.keys_of(&columns)?
                    .into_iter()
                    .map(|(key, i)| (key, b, i)),
            );
        }
        Ok(out)
    }

    /// The non-NULL keys of the key columns' values (in key order), each
    /// with its row.
    pub fn keys_of(&self, columns: &[ArrayRef]) -> Result<Vec<(Box<[u8]>, usize)>> {
        let mut keys = Vec::new();
        self.for_each_key(columns, |key, i| {
            keys.push((key.into(), i));
            Ok(())
        })?;
        Ok(keys)
    }

    /// Calls `f` with each non-NULL key of the key columns' values (in
    /// key order) and its row, until `f` fails.
    pub fn for_each_key(
        &self,
        columns: &[ArrayRef],
        mut f: impl FnMut(&[u8], usize) -> Result<()>,
    ) -> Result<()> {
        let rows = self.converter.convert_columns(columns)?;
        let nulls = columns.iter().any(|c| c.null_count() > 0);
        for (i, row) in rows.iter().enumerate() {
            if !(nulls && columns.iter().any(|c| c.is_null(i))) {
                f(row.as_ref(), i)?;
            }
        }
        Ok(())
    }

    /// One key from its columns' values (one row each, in key order);
    /// None when a value is NULL.
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<Option<Box<[u8]>>> {
        if columns.iter().any(|c| c.is_null(0)) {
            return Ok(None);
        }
        let rows = self.converter.convert_columns(columns)?;
        Ok(Some(rows.row(0).as_ref().into()))
    }

    /// Every row's key from its columns' values (in key order); None where
    /// a value is NULL.
    pub fn encode_all(&self, columns: &[ArrayRef]) -> Result<Vec<Option<Box<[u8]>>>> {
        let rows = self.converter.convert_columns(columns)?;
        Ok(rows
            .iter()
            .enumerate()
            .map(|(i, row)| (!columns.iter().any(|c| c.is_null(i))).then(|| row.as_ref().into()))
            .collect())
    }
}

/// The keys present in a table for one constraint.
pub struct UniqueIndex {
    pub constraint: UniqueConstraint,
    encoder: KeyEncoder,
    keys: KeySet,
    /// False while the keys are still to be read from the table's rows
    /// (after a restart, until the first write that needs them).
    built: bool,
}

impl std::fmt::Debug for UniqueIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UniqueIndex")
            .field("constraint", &self.constraint.name)
            .field("keys", &self.keys.len())
            .field("bytes", &self.keys.memory_size())
            .finish()
    }
}

impl UniqueIndex {
    pub fn new(constraint: UniqueConstraint, schema: &Schema) -> Result<Self> {
        Ok(UniqueIndex {
            encoder: KeyEncoder::new(constraint.columns.clone(), schema)?,
            constraint,
            keys: KeySet::new(),
            built: true,
        })
    }

    pub fn is_built(&self) -> bool {
        self.built
    }

    /// Forgets the keys until [`UniqueIndex::fill`] reads them again.
    pub fn defer(&mut self) {
        self.keys = KeySet::new();
        self.built = false;
    }

    /// The key columns, in key order (positions in the table).
    pub fn columns(&self) -> &[usize] {
        self.encoder.columns()
    }

    /// As [`KeyEncoder::keys_of`].
    pub fn keys_of(&self, columns: &[ArrayRef]) -> Result<Vec<(Box<[u8]>, usize)>> {
        self.encoder.keys_of(columns)
    }

    /// Reads the keys of rows known to satisfy the constraint (a
    /// checkpoint's; the key columns segment by segment), after
    /// [`UniqueIndex::defer`].
    pub fn fill(
        &mut self,
        parts: impl Iterator<Item = Result<Vec<ArrayRef>>>,
        rows: usize,
    ) -> Result<()> {
        let mut keys = KeySet::with_capacity(rows);
        for columns in parts {
            self.encoder.for_each_key(&columns?, |key, _| {
                keys.insert(key);
                Ok(())
            })?;
        }
        self.keys = keys;
        self.built = true;
        Ok(())
    }

    /// The non-NULL keys of `batches`, each with the batch and row it came
    /// from. Keys with a NULL never conflict, as in Postgres.
    pub fn keys(&self, batches: &[RecordBatch]) -> Result<Vec<KeyAt>> {
        self.encoder.keys(batches)
    }

    /// The keys `batches` would add, or the violation they cause (against
    /// existing keys or among themselves).
    pub fn check(&self, schema: &Schema, batches: &[RecordBatch]) -> Result<KeySet> {
        let parts: Vec<Vec<ArrayRef>> = batches
            .iter()
            .map(|batch| {
                self.columns()
                    .iter()
                    .map(|&c| batch.column(c).clone())
                    .collect()
            })
            .collect();
        self.check_columns(schema, &parts)
    }

    /// [`UniqueIndex::check`] of rows given by their key columns' values
    /// (in key order), part by part.
    pub fn check_columns(&self, schema: &Schema, parts: &[Vec<ArrayRef>]) -> Result<KeySet> {
        // Sized for every row at once: a big load's keys are not copied
        // as the set grows, nor left with twice the room they need.
        let rows = parts
            .iter()
            .map(|columns| columns.first().map_or(0, |c| c.len()))
            .sum();
        let mut new_keys = KeySet::with_capacity(rows);
        for columns in parts {
            self.encoder.for_each_key(columns, |key, i| {
                if self.keys.contains(key) || !new_keys.insert(key) {
                    return Err(self.violation_in(schema, columns, i));
                }
                Ok(())
            })?;
        }
        Ok(new_keys)
    }

    /// One key from its columns' values (one row each, in constraint
    /// order); None when a value is NULL.
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<Option<Box<[u8]>>> {
        self.encoder.encode(columns)
    }

    /// Every row's key from its columns' values (in constraint order);
    /// None where a value is NULL.
    pub fn encode_all(&self, columns: &[ArrayRef]) -> Result<Vec<Option<Box<[u8]>>>> {
        self.encoder.encode_all(columns)
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.keys.contains(key)
    }

    pub fn clear(&mut self) {
        self.keys = KeySet::new();
        self.built = true;
    }

    pub fn insert<K: AsRef<[u8]>>(&mut self, keys: impl IntoIterator<Item = K>) {
        for key in keys {
            self.keys.insert(key.as_ref());
        }
    }

    /// Adds the keys [`UniqueIndex::check`] returned.
    pub fn insert_checked(&mut self, keys: KeySet) {
        self.keys.extend(keys);
    }

    pub fn remove<K: AsRef<[u8]>>(&mut self, keys: impl IntoIterator<Item = K>) {
        for key in keys {
            self.keys.remove(key.as_ref());
        }
    }

    /// The error for a duplicate of the key in `batch` at `row`.
    pub fn violation(&self, schema: &Schema, batch: &RecordBatch, row: usize) -> QuiverError {
        let columns: Vec<ArrayRef> = self
            .constraint
            .columns
            .iter()
            .map(|&c| batch.column(c).clone())
            .collect();
        self.violation_in(schema, &columns, row)
    }

    fn violation_in(&self, schema: &Schema, columns: &[ArrayRef], row: usize) -> QuiverError {
        let names: Vec<&str> = self
            .constraint
            .columns
            .iter()
            .map(|&c| schema.field(c).name().as_str())
            .collect();
        let values: Vec<String> = columns
            .iter()
            .map(|c| array_value_to_string(c, row).unwrap_or_default())
            .collect();
        QuiverError::UniqueViolation {
            constraint: self.constraint.name.clone(),
            detail: format!(
                "Key ({})=({}) already exists.",
                names.join(", "),
                values.join(", ")
            ),
        }
    }
}
