//! QuiverDB: an in-memory analytical SQL database. Tables live in RAM as
//! Arrow record batches, DataFusion plans and runs the queries, and clients
//! connect over the PostgreSQL wire protocol or through the embedded REPL.
//!
//! Embedded use goes through a [`Session`], exactly as the server does:
//!
//! ```
//! use quiverdb::{Database, Session, StatementResult};
//!
//! let runtime = tokio::runtime::Runtime::new().unwrap();
//! let mut session = Session::new(Database::new());
//! let results = runtime.block_on(session.execute_sql(
//!     "CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2); SELECT sum(x) AS total FROM t",
//! ));
//! match results.last() {
//!     Some(Ok(StatementResult::Rows { schema, batches, .. })) => {
//!         assert_eq!(schema.field(0).name(), "total");
//!         assert_eq!(batches[0].num_rows(), 1);
//!     }
//!     other => panic!("unexpected {other:?}"),
//! }
//! ```

pub mod client;
pub mod config;
pub mod engine;
pub mod error;
pub mod executor;
pub mod flight;
pub mod http;
pub mod metrics;
pub mod names;
pub mod pgwire;
pub mod repl;
pub mod replication;
pub mod server;
pub mod session;
pub mod sql;
pub mod storage;
pub mod transfer;
pub mod workers;

pub use engine::Database;
pub use error::{QuiverError, Result};
pub use session::{Session, StatementResult};

/// Opens (creating if needed) the database in the data directory `dir`:
/// storage recovers it, the session layer compiles its stored definitions.
/// The caller holds the directory's lock.
pub async fn open(dir: &std::path::Path) -> Result<std::sync::Arc<Database>> {
    storage::recovery::open(dir, &session::Definitions::for_database).await
}

/// Reads a damaged data directory as far as it can be read, writing
/// nothing (`quiver recover`): see [`storage::recovery::open_damaged`].
pub async fn open_damaged(
    dir: &std::path::Path,
) -> Result<(std::sync::Arc<Database>, storage::recovery::RecoveryReport)> {
    storage::recovery::open_damaged(dir, &session::Definitions::for_database).await
}
