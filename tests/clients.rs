//! Real client libraries against a real server: psycopg 3, psycopg2,
//! asyncpg, SQLAlchemy + pandas, pgjdbc, psqlODBC (through pyodbc) and
//! node-postgres, each running its own program from `tests/clients/`.
//! `.ci/run` installs them all; a client missing here is reported as
//! SKIPPED with the reason, never silently passed.

mod common;

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

#[test]
fn odbc() {
    python("odbc/test_odbc.py");
}

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[test]
fn jdbc() {
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

/// Statements of a `tests/clients/bi/*.sql` file: separated by `-- next`,
/// metadata comments (`-- source:` ...) dropped, comment-only ones kept
/// out.
fn bi_statements(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(clients_dir().join("bi").join(file)).unwrap();
    text.split("\n-- next\n")
        .map(|s| {
            s.lines()
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
                .to_string()
        })
        .filter(|s| !s.is_empty() && !s.lines().all(|l| l.starts_with("--")))
        .collect()
}

/// Superset's schema browsing (SQLAlchemy's PostgreSQL inspector, as
/// captured from its queries against PostgreSQL): every query runs.
#[tokio::test]
async fn superset_introspection_queries_run() {
    let server = TestServer::start();
    let client = server.connect().await;
    let setup = std::fs::read_to_string(clients_dir().join("../psql/catalog.sql")).unwrap();
    client.batch_execute(&setup).await.unwrap();
    let statements = bi_statements("superset.sql");
    assert!(statements.len() > 50, "{}", statements.len());
    let mut failures = Vec::new();
    for sql in &statements {
        if let Err(e) = client.simple_query(sql).await {
            failures.push(format!("{e:?}\n{sql}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
