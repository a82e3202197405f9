//! Bulk loads prepared while their data is still arriving. A COPY stages
//! each chunk on the thread that parsed it: conformed to the table (types,
//! NOT NULL, CHECK) and made into compressed segments, which the WAL
//! records as they are kept.
//! Its commit then only checks unique keys, writes the log and installs,
//! and the chunk's plain Arrow buffers are freed (and reused for the next
//! chunk) long before the whole load is in; a table with unique
//! constraints keeps them until the commit checks their keys.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use super::commit::{Commit, Effect};
use super::conform::conform_batches;
use super::replication::SyncLevel;
use super::table::StagedRows;
use super::{Ack, Database, Table};
use crate::error::{QuiverError, Result};

/// Stages rows for one table of one database.
#[derive(Clone)]
pub struct Stager {
    table: Arc<Table>,
    logged: bool,
}

/// Rows ready to append: see [`Database::append_staged`].
pub struct Staged {
    table_id: u64,
    /// The WAL's copy of the rows (each segment as it is kept), when there
    /// is a WAL.
    blobs: Option<Vec<Vec<u8>>>,
    rows: StagedRows,
}

impl fmt::Debug for Stager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stager")
            .field("table", &self.table.name())
            .finish()
    }
}

impl Stager {
    pub fn table(&self) -> &Arc<Table> {
        &self.table
    }

    /// Conforms, encodes and segments `batches` (columns of the table, in
    /// its order) on the calling thread.
    pub fn stage(&self, batches: Vec<RecordBatch>) -> Result<Staged> {
        let batches = conform_batches(&self.table, batches)?;
        let rows = self.table.stage(batches);
        let blobs = match self.logged {
            true => Some(rows.to_log()?),
            false => None,
        };
        Ok(Staged {
            table_id: self.table.id(),
            blobs,
            rows,
        })
    }
}

impl Staged {
    pub fn rows(&self) -> usize {
        self.rows.rows()
    }

    /// Bytes the rows will take in the table.
    pub fn memory_bytes(&self) -> usize {
        self.rows.memory_bytes()
    }

    /// The rows as plain batches again (for a table that changed since).
    pub fn into_batches(self) -> Result<Vec<RecordBatch>> {
        self.rows.into_batches()
    }
}

impl Database {
    /// A stager for rows of `table`.
    pub fn stager(&self, table: &Arc<Table>) -> Stager {
        Stager {
            table: table.clone(),
            logged: self.log.get().is_some(),
        }
    }

    /// Appends staged rows, in order, in one commit: what
    /// [`Database::append`] does, with the encoding already done.
    pub fn append_staged(
        &self,
        table: &Table,
        staged: Vec<Staged>,
        sync: SyncLevel,
    ) -> Result<(usize, Ack)> {
        let started = std::time::Instant::now();
        if staged.iter().any(|s| s.table_id != table.id()) {
            return Err(QuiverError::Internal(format!(
                "rows staged for another table than \"{}\"",
                table.name()
            )));
        }
        let logged = self.log.get().is_some();
        let mut commit = Commit::new();
        let mut parts = Vec::with_capacity(staged.len());
        for part in staged {
            match part.blobs {
                Some(blobs) if logged => {
                    for blob in blobs {
                        let data = commit.add_blob(blob);
                        commit.effects.push(Effect::InsertSegment {
                            table_id: table.id(),
                            data,
                        });
                    }
                }
                None if logged && part.rows.rows() > 0 => {
                    return Err(QuiverError::Internal(
                        "rows staged without their WAL record".into(),
                    ))
                }
                _ => {}
            }
            parts.push(part.rows);
        }
        let bytes = parts.iter().map(|p| p.memory_bytes()).sum();
        let (added, ack) =
            self.commit_append(table, logged.then_some(commit), bytes, sync, || {
                table.prepare_staged(parts)
            })?;
        tracing::debug!(
            total_ms = started.elapsed().as_millis() as u64,
            rows = added,
            "append: staged rows logged and installed"
        );
        Ok((added, ack))
    }
}
