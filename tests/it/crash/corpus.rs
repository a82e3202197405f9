//! Every statement of the `sql/*.slt` corpus, each followed by a kill -9
//! and a restart on the same data directory: the server must come back,
//! and with exactly the catalog and rows it had before the kill. Run
//! twice per file: once with the whole WAL replayed at every restart, once
//! with a checkpoint just before each statement.

use std::path::{Path, PathBuf};

use sqllogictest::{DefaultColumnType, Record};

use crate::common::TestServer;

/// The SQL of every statement and query in a file, in order.
fn statements(path: &Path) -> Vec<String> {
    sqllogictest::parse_file::<DefaultColumnType>(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter_map(|record| match record {
            Record::Statement { sql, .. } | Record::Query { sql, .. } => Some(sql),
            _ => None,
        })
        .collect()
}

fn first_word(sql: &str) -> String {
    sql.trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Whether a statement may change what is stored (so a crash right after
/// it is worth checking). Statements that only read, and the session's
/// own settings, cannot.
fn may_write(sql: &str) -> bool {
    sql.split(';').filter(|s| !s.trim().is_empty()).any(|s| {
        !matches!(
            first_word(s).as_str(),
            "SELECT"
                | "VALUES"
                | "SHOW"
                | "EXPLAIN"
                | "SET"
                | "RESET"
                | "BEGIN"
                | "START"
                | "ROLLBACK"
                | "SAVEPOINT"
                | "RELEASE"
                | "DEALLOCATE"
                | "DISCARD"
        )
    })
}

/// Tracks whether the session is inside a transaction block (a kill there
/// loses the block, as it should, and the file's later statements would
/// then fail differently).
fn block_after(in_block: bool, sql: &str) -> bool {
    let mut in_block = in_block;
    for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
        let upper = statement.trim().to_ascii_uppercase();
        match first_word(statement).as_str() {
            "BEGIN" | "START" => in_block = true,
            "COMMIT" | "END" => in_block = false,
            "ROLLBACK" if !upper.contains(" TO ") => in_block = false,
            _ => {}
        }
    }
    in_block
}

async fn rows_as_text(client: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let mut rows: Vec<String> = match client.simple_query(sql).await {
        Ok(messages) => messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => None,
            })
            .collect(),
        Err(e) => vec![format!("ERROR {:?}: {e}", e.code().map(|c| c.code()))],
    };
    rows.sort();
    rows
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Everything a restart must bring back: schemas, relations, columns,
/// constraints, views, roles, owners, grants, and every relation's rows.
async fn dump(client: &tokio_postgres::Client) -> Vec<(String, Vec<String>)> {
    let catalog_queries = [
        "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace",
        "SELECT n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')",
        "SELECT table_schema, table_name, column_name, ordinal_position, data_type, \
         character_maximum_length, numeric_precision, numeric_scale, is_nullable, column_default \
         FROM information_schema.columns \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
        "SELECT n.nspname, c.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) \
         FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace",
        "SELECT schemaname, viewname, viewowner, definition FROM pg_views \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema')",
        "SELECT rolname, rolsuper, rolcanlogin, rolpassword IS NOT NULL FROM pg_authid",
        // Grants, as every role sees them (pg_class.relacl is not kept).
        "SELECT r.rolname, n.nspname, c.relname, \
         has_table_privilege(r.rolname, n.nspname || '.' || c.relname, 'SELECT'), \
         has_table_privilege(r.rolname, n.nspname || '.' || c.relname, 'INSERT'), \
         has_table_privilege(r.rolname, n.nspname || '.' || c.relname, 'UPDATE'), \
         has_table_privilege(r.rolname, n.nspname || '.' || c.relname, 'DELETE'), \
         has_table_privilege(r.rolname, n.nspname || '.' || c.relname, 'TRUNCATE') \
         FROM pg_authid r CROSS JOIN pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'v') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
        "SELECT r.rolname, n.nspname, has_schema_privilege(r.rolname, n.nspname, 'USAGE'), \
         has_schema_privilege(r.rolname, n.nspname, 'CREATE') FROM pg_authid r CROSS JOIN pg_namespace n",
    ];
    let mut out = Vec::new();
    for sql in catalog_queries {
        let rows = rows_as_text(client, sql).await;
        assert!(
            !rows.iter().any(|r| r.starts_with("ERROR")),
            "{sql}: {rows:?}"
        );
        out.push((sql.to_string(), rows));
    }
    let relations = rows_as_text(
        client,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r', 'v') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
    )
    .await;
    for relation in relations {
        let (schema, name) = relation.split_once('|').expect("schema|name");
        let sql = format!("SELECT * FROM {}.{}", quote(schema), quote(name));
        let rows = rows_as_text(client, &sql).await;
        out.push((sql, rows));
    }
    out
}

/// The first difference between two dumps, for the failure message.
fn difference(before: &[(String, Vec<String>)], after: &[(String, Vec<String>)]) -> String {
    for (b, a) in before.iter().zip(after) {
        if b != a {
            return format!(
                "{}\n  before: {:?}\n  after:  {:?}",
                b.0,
                &b.1[..b.1.len().min(20)],
                &a.1[..a.1.len().min(20)]
            );
        }
    }
    format!(
        "relations before: {:?}\nrelations after: {:?}",
        before.iter().map(|d| &d.0).collect::<Vec<_>>(),
        after.iter().map(|d| &d.0).collect::<Vec<_>>()
    )
}

fn start(data_dir: &str) -> TestServer {
    // No automatic checkpoints: each pass decides when one happens.
    TestServer::start_with(&[
        "--data-dir",
        data_dir,
        "--checkpoint-interval",
        "0",
        "--checkpoint-wal-mb",
        "100000",
    ])
}

/// Runs one file's statements, killing and restarting the server after
/// every one that may write; returns how many crashes were checked.
async fn crash_after_each_statement(file: &Path, checkpoint_first: bool) -> usize {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let mut server = start(&data_dir);
    let mut client = server.connect().await;
    // Settings the file made, made again on every new connection.
    let mut session_settings: Vec<String> = Vec::new();
    let mut in_block = false;
    let mut checked = 0;
    for sql in statements(file) {
        let writes = may_write(&sql);
        if checkpoint_first && writes && !in_block {
            client.batch_execute("CHECKPOINT").await.unwrap();
        }
        let _ = client.simple_query(&sql).await;
        in_block = block_after(in_block, &sql);
        if matches!(first_word(&sql).as_str(), "SET" | "RESET") && !in_block {
            session_settings.push(sql.clone());
        }
        if !writes || in_block {
            continue;
        }
        let before = dump(&client).await;
        drop(client);
        server.stop_with("KILL");
        server = start(&data_dir);
        client = server.connect().await;
        for setting in &session_settings {
            let _ = client.batch_execute(setting).await;
        }
        let after = dump(&client).await;
        assert!(
            before == after,
            "{} (checkpoint first: {checkpoint_first}): after a crash right after\n  {sql}\nthe data directory came back different:\n{}",
            file.display(),
            difference(&before, &after)
        );
        checked += 1;
    }
    checked
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/sql"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        // Temporary tables are meant to be gone after a crash (the
        // session that made them is); `session_features` checks that.
        .filter(|p| !p.ends_with("temporary.slt"))
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_the_corpus_survives_a_crash_right_after_it() {
    let mut checked = 0;
    for file in corpus() {
        checked += crash_after_each_statement(&file, false).await;
    }
    assert!(checked > 100, "only {checked} crashes checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_survives_a_crash_after_a_checkpoint_before_it() {
    let mut checked = 0;
    for file in corpus() {
        checked += crash_after_each_statement(&file, true).await;
    }
    assert!(checked > 100, "only {checked} crashes checked");
}
