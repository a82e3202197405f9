//! Runs every `sql/*.slt` file twice: against an embedded session and over
//! the wire against a real server, so both paths give the same answers.

use crate::common;

use std::path::PathBuf;

use async_trait::async_trait;
use quiverdb::sql::types::{format_options, text_rows_with};
use quiverdb::{Database, QuiverError, Session, StatementResult};
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType, Runner};

/// An error as both runners print it: `<SQLSTATE>: <message>`, so a test can
/// match on the code.
#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

fn column_types(schema: &datafusion::arrow::datatypes::Schema) -> Vec<DefaultColumnType> {
    schema
        .fields()
        .iter()
        .map(|f| {
            let t = f.data_type();
            if t.is_integer() {
                DefaultColumnType::Integer
            } else if t.is_floating()
                || matches!(t, datafusion::arrow::datatypes::DataType::Decimal128(..))
            {
                DefaultColumnType::FloatingPoint
            } else {
                DefaultColumnType::Text
            }
        })
        .collect()
}

fn render(value: Option<String>) -> String {
    match value {
        None => "NULL".to_string(),
        Some(s) if s.is_empty() => "(empty)".to_string(),
        Some(s) => s,
    }
}

struct Embedded {
    session: Session,
}

#[async_trait]
impl AsyncDB for Embedded {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let mut results = self.session.execute_sql(sql).await;
        let last = results.pop().expect("at least one result");
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            return Err(error(e));
        }
        match last.map_err(error)?.collected().await.map_err(error)? {
            StatementResult::Rows {
                schema, batches, ..
            } => {
                let options = format_options(self.session.settings());
                let rows = text_rows_with(&schema, batches, &options)
                    .map_err(|e| SqlError(e.to_string()))?;
                Ok(DBOutput::Rows {
                    types: column_types(&schema),
                    rows: rows
                        .into_iter()
                        .map(|r| r.into_iter().map(render).collect())
                        .collect(),
                })
            }
            StatementResult::Command { rows, .. } => {
                Ok(DBOutput::StatementComplete(rows.unwrap_or(0) as u64))
            }
            StatementResult::TransactionControl { .. } | StatementResult::Empty => {
                Ok(DBOutput::StatementComplete(0))
            }
            StatementResult::RowStream { .. } => unreachable!("collected above"),
            StatementResult::CopyIn(_) | StatementResult::CopyOut(_) => Err(SqlError(
                "COPY ... STDIN/STDOUT needs a wire client; test it in tests/copy.rs".into(),
            )),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "embedded"
    }
}

fn error(e: QuiverError) -> SqlError {
    SqlError(format!("{}: {}", e.sqlstate().code(), e))
}

struct Wire {
    client: tokio_postgres::Client,
}

#[async_trait]
impl AsyncDB for Wire {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        use tokio_postgres::SimpleQueryMessage;
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| match e.as_db_error() {
                Some(db) => SqlError(format!("{}: {}", db.code().code(), db.message())),
                None => SqlError(e.to_string()),
            })?;
        let mut rows = Vec::new();
        let mut columns = 0;
        let mut complete = None;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(cols) => columns = cols.len(),
                SimpleQueryMessage::Row(row) => {
                    columns = row.len();
                    rows.push(
                        (0..row.len())
                            .map(|i| render(row.get(i).map(str::to_string)))
                            .collect::<Vec<_>>(),
                    )
                }
                SimpleQueryMessage::CommandComplete(n) => complete = Some(n),
                _ => {}
            }
        }
        let is_query = sql
            .split_whitespace()
            .next()
            .map(|w| {
                let w = w.to_ascii_lowercase();
                matches!(
                    w.as_str(),
                    "select" | "with" | "values" | "show" | "explain" | "("
                )
            })
            .unwrap_or(false);
        if is_query || !rows.is_empty() {
            Ok(DBOutput::Rows {
                types: vec![DefaultColumnType::Any; columns],
                rows,
            })
        } else {
            Ok(DBOutput::StatementComplete(complete.unwrap_or(0)))
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "wire"
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        // QUIVER_SLT=name runs only the files whose name contains it.
        .filter(|p| {
            std::env::var("QUIVER_SLT")
                .map_or(true, |only| p.to_string_lossy().contains(only.as_str()))
        })
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no matching .slt files in {}",
        dir.display()
    );
    files
}

/// Sessions run on threads with the stack the server gives its workers
/// (64 MiB): planning an expression nested 500 deep recurses further than
/// a test thread's 2 MiB allow.
#[test]
fn slt_files_pass_embedded() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(64 << 20)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime
        .block_on(runtime.spawn(run_embedded()))
        .expect("the embedded run finishes");
}

async fn run_embedded() {
    let mut failures = Vec::new();
    for file in slt_files() {
        let mut runner = Runner::new(|| async {
            Ok(Embedded {
                session: Session::new(Database::new()),
            })
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "embedded failures:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slt_files_pass_over_the_wire() {
    let mut failures = Vec::new();
    for file in slt_files() {
        let server = common::TestServer::start();
        let conn = server.conn_string();
        let mut runner = Runner::new(move || {
            let conn = conn.clone();
            async move {
                let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| SqlError(e.to_string()))?;
                tokio::spawn(connection);
                Ok(Wire { client })
            }
        });
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
        drop(server);
    }
    assert!(
        failures.is_empty(),
        "wire failures:\n{}",
        failures.join("\n")
    );
}
