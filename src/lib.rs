//! QuiverDB: an in-memory analytical SQL database. Tables live in RAM as
//! Arrow record batches, DataFusion plans and runs the queries, and clients
//! connect over the PostgreSQL wire protocol or through the embedded REPL.

pub mod engine;
pub mod error;
pub mod pg;
pub mod repl;
pub mod session;

pub use engine::Database;
pub use error::{QuiverError, Result};
pub use session::{Session, StatementResult};
