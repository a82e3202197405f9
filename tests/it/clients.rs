//! Real client libraries against a real server: psycopg 3, psycopg2,
//! asyncpg, SQLAlchemy + pandas, pgjdbc, psqlODBC (through pyodbc) and
//! node-postgres, each running its own program from `tests/clients/`.
//! `.ci/run` installs them all; a client missing here is reported as
//! SKIPPED with the reason, never silently passed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;

fn clients_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Runs a client program against a fresh server; fails the test with its
/// output if it fails. Returns its stdout.
fn run_client(server: &TestServer, mut command: Command) -> String {
    let output = command
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", server.port.to_string())
        .env("PGUSER", "quiver")
        .env("PGDATABASE", "quiver")
        .env_remove("PGPASSWORD")
        .output()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}

fn python(script: &str) {
    if Command::new("python3").arg("--version").output().is_err() {
        println!("SKIPPED: python3 is not installed");
        return;
    }
    let server = TestServer::start();
    let mut command = Command::new("python3");
    command.arg(clients_dir().join(script));
    run_client(&server, command);
}

#[test]
fn psycopg3() {
    python("python/test_psycopg3.py");
}

#[test]
fn psycopg2() {
    python("python/test_psycopg2.py");
}

#[test]
fn asyncpg() {
    python("python/test_asyncpg.py");
}

#[test]
fn sqlalchemy_and_pandas() {
    python("python/test_sqlalchemy_pandas.py");
}

/// ADBC's Flight SQL driver (with pyarrow, pandas and polars) against
/// the Flight SQL endpoint.
#[test]
fn adbc_flight_sql() {
    let probe = Command::new("python3")
        .args(["-c", "import adbc_driver_flightsql, pyarrow"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!(
            "SKIPPED: python3 with adbc-driver-flightsql and pyarrow is not installed \
             (pip install adbc-driver-flightsql adbc-driver-manager pyarrow polars); .ci/run installs them"
        );
        return;
    }
    let server = TestServer::start_with(&["--memory", "--flight-listen", "127.0.0.1:0"]);
    let mut command = Command::new("python3");
    command
        .arg(clients_dir().join("python/test_adbc_flightsql.py"))
        .env(
            "QUIVER_FLIGHT_PORT",
            server.flight_port.unwrap().to_string(),
        );
    run_client(&server, command);
}

#[test]
fn odbc() {
    python("odbc/test_odbc.py");
}

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[test]
fn jdbc() {
    jdbc_in_zone(None);
}

/// pgjdbc in a JVM whose zone is not UTC: it sends that zone as the
/// session's TimeZone, and java.sql.Timestamp values are local times there.
#[test]
fn jdbc_in_new_york() {
    jdbc_in_zone(Some("America/New_York"));
}

fn jdbc_in_zone(zone: Option<&str>) {
    if Command::new("javac").arg("-version").output().is_err() {
        println!("SKIPPED: javac is not installed (a JDK); .ci/run uses the machine's");
        return;
    }
    if !Path::new(JDBC_JAR).exists() {
        println!(
            "SKIPPED: pgjdbc is not installed (apt-get install libpostgresql-jdbc-java); .ci/run installs it"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let status = Command::new("javac")
        .args(["-d", out.path().to_str().unwrap(), "-cp", JDBC_JAR])
        .arg(clients_dir().join("java/JdbcClient.java"))
        .status()
        .expect("run javac");
    assert!(status.success(), "javac failed");
    let server = TestServer::start();
    let mut command = Command::new("java");
    command
        .args(zone.map(|z| format!("-Djdbc.zone={z}")))
        .arg("-cp")
        .arg(format!("{}:{JDBC_JAR}", out.path().display()))
        .arg("JdbcClient");
    run_client(&server, command);
}

#[test]
fn node_postgres() {
    let dir = clients_dir().join("node");
    if Command::new("node").arg("--version").output().is_err() {
        println!("SKIPPED: node is not installed");
        return;
    }
    if !dir.join("node_modules/pg").exists() {
        println!(
            "SKIPPED: node-postgres is not installed (cd tests/clients/node && npm ci); .ci/run installs it"
        );
        return;
    }
    let server = TestServer::start();
    let mut command = Command::new("node");
    command.arg(dir.join("test_pg.js")).current_dir(&dir);
    run_client(&server, command);
}

/// Statements of a `tests/clients/bi/*.sql` file with the row count each
/// returned on PostgreSQL (`-- rows: N`): separated by `-- next`,
/// metadata comments dropped, comment-only ones left out.
fn bi_statements(file: &str) -> Vec<(String, Option<usize>)> {
    let text = std::fs::read_to_string(clients_dir().join("bi").join(file)).unwrap();
    text.split("\n-- next\n")
        .map(|s| {
            let rows = s
                .lines()
                .find_map(|l| l.strip_prefix("-- rows: "))
                .and_then(|n| n.trim().parse().ok());
            let body = s
                .lines()
                .filter(|l| {
                    ![
                        "-- source:",
                        "-- purpose:",
                        "-- note:",
                        "-- tag:",
                        "-- rows:",
                    ]
                    .iter()
                    .any(|p| l.starts_with(p))
                })
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_string();
            (body, rows)
        })
        .filter(|(s, _)| !s.is_empty() && !s.lines().all(|l| l.starts_with("--")))
        .collect()
}

/// Catalogs whose contents legitimately differ from PostgreSQL's: its
/// built-in types, roles and databases (postgres, template0/1).
const DIFFERENT_BUILTINS: &[&str] = &[
    "FROM pg_catalog.pg_type",
    "FROM pg_catalog.pg_roles",
    "FROM pg_database",
];

/// The introspection queries Metabase, Grafana, Superset (SQLAlchemy),
/// DBeaver and pgjdbc send when they connect and list schemas, tables,
/// columns and keys (captured from their sources and from runs against
/// PostgreSQL, see tests/clients/bi/README.md): every one runs, and each
/// returns as many rows as on PostgreSQL with the same schema loaded.
#[tokio::test]
async fn bi_tool_introspection_queries() {
    let server = TestServer::start();
    let client = server.connect().await;
    let setup = std::fs::read_to_string(clients_dir().join("../psql/catalog.sql")).unwrap();
    client.batch_execute(&setup).await.unwrap();
    let mut failures = Vec::new();
    let mut count = 0;
    for file in [
        "dbeaver.sql",
        "grafana.sql",
        "metabase.sql",
        "pgjdbc.sql",
        "superset.sql",
    ] {
        for (sql, expected) in bi_statements(file) {
            count += 1;
            match client.simple_query(&sql).await {
                Err(e) => failures.push(format!("{file}: {e:?}\n{sql}")),
                Ok(messages) => {
                    let rows = messages
                        .iter()
                        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
                        .count();
                    let comparable = !DIFFERENT_BUILTINS.iter().any(|b| sql.contains(b));
                    if let (Some(expected), true) = (expected, comparable) {
                        if rows != expected {
                            failures.push(format!(
                                "{file}: {rows} rows, PostgreSQL gives {expected}\n{sql}"
                            ));
                        }
                    }
                }
            }
        }
    }
    assert!(count > 140, "{count} statements");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
