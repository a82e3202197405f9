//! What the engine needs from below: a log that makes a commit durable
//! before it is acknowledged (the storage layer's WAL and checkpoints), and
//! a compiler that brings stored definitions back to life (the SQL layer
//! plans DEFAULT and CHECK expressions and view queries). The engine
//! defines both; the composition root (`quiverdb::open`) plugs them in.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use tokio::sync::oneshot;

use super::commit::{Commit, TableDef, ViewDef};
use super::replication::SyncLevel;
use super::{Database, Table, View};
use crate::error::Result;

/// Where committed transactions go before they are acknowledged.
pub trait CommitLog: Send + Sync + std::fmt::Debug {
    /// Appends a commit; the handle resolves when it is as durable as
    /// `sync` asks (written, on disk, on the synchronous replicas).
    fn append(&self, commit: &Commit, sync: SyncLevel) -> Result<Durable>;

    /// Writes a checkpoint of `db` now. Blocking: run it off the async
    /// runtime.
    fn checkpoint(&self, db: &Database) -> Result<CheckpointStats>;

    /// Starts a checkpoint in the background if the log has grown past
    /// its threshold and none is running.
    fn maybe_checkpoint(&self, db: &Arc<Database>);

    /// Bytes logged since the last checkpoint, and when that checkpoint
    /// completed with the ids of the tables it holds.
    fn status(&self) -> LogStatus;

    /// The concrete log, for the layer that made it.
    fn as_any(&self) -> &dyn Any;
}

/// Resolves when the commit it was returned for is durable.
pub struct Durable(Pin<Box<dyn Future<Output = ()> + Send>>);

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durable")
    }
}

impl Durable {
    /// A handle the log resolves by sending on (or dropping) the sender.
    pub fn new(done: oneshot::Receiver<()>) -> Durable {
        // The writer aborts the process rather than drop a request.
        Durable::from_future(async move {
            let _ = done.await;
        })
    }

    /// A handle that resolves when `done` does.
    pub fn from_future(done: impl Future<Output = ()> + Send + 'static) -> Durable {
        Durable(Box::pin(done))
    }

    pub async fn wait(self) {
        self.0.await
    }
}

/// What a checkpoint did.
#[derive(Debug, Default, Clone)]
pub struct CheckpointStats {
    pub tables_written: usize,
    pub tables_reused: usize,
    pub bytes_written: u64,
    pub rows: u64,
    pub millis: u128,
}

/// The state of a commit log, for the system catalogs and metrics.
#[derive(Debug, Default, Clone)]
pub struct LogStatus {
    /// Bytes in the current WAL file (a checkpoint starts a new one).
    pub wal_bytes: u64,
    /// When the last checkpoint completed, and the ids of the tables it
    /// holds (None before the first checkpoint).
    pub last_checkpoint: Option<(chrono::DateTime<chrono::Utc>, Vec<u64>)>,
}

/// Builds tables and views from their stored definitions, for recovery
/// (and, later, replicas): the engine replays commits, the SQL layer
/// knows how to plan a DEFAULT, a CHECK or a view's query.
#[async_trait::async_trait]
pub trait Compiler: Send {
    /// A table as `def` describes it, empty, with `schema`.
    fn table(&mut self, def: &TableDef, schema: SchemaRef) -> Result<Table>;

    /// A view (or external table) from its definition. One that no longer
    /// plans (it reads a file that has gone, say) comes back broken, with
    /// its definition, and the reason: recovery does not stop for it.
    async fn view(&mut self, def: ViewDef) -> Result<(View, Option<String>)>;
}

/// Makes the compiler for a database being recovered.
pub type MakeCompiler = dyn Fn(Arc<Database>) -> Box<dyn Compiler> + Send + Sync;
