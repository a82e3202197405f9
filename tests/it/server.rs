//! The server process: clean shutdown, a taken port, query cancellation,
//! and staying up under pressure.

use crate::common;
mod pressure;

use std::process::Command;
use std::time::Duration;

use common::TestServer;
use tokio_postgres::error::SqlState;

#[test]
fn sigterm_and_sigint_stop_the_server_cleanly() {
    for signal in ["TERM", "INT"] {
        let mut server = TestServer::start();
        let status = server.stop_with(signal);
        assert!(status.success(), "exit after SIG{signal}: {status:?}");
    }
}

#[test]
fn a_taken_port_is_a_one_line_error() {
    let server = TestServer::start();
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args([
            "serve",
            "--memory",
            "--listen",
            &format!("127.0.0.1:{}", server.port),
        ])
        .env("QUIVER_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("could not listen on 127.0.0.1:{}", server.port)),
        "{stderr}"
    );
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let _first = TestServer::start_with(&["--data-dir", path]);
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", path])
        .env("QUIVER_LOG", "error")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another quiver process"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_cancel_request_stops_a_running_query() {
    let server = TestServer::start();
    let client = server.connect().await;
    let token = client.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    let err = client
        .query("SELECT count(*) FROM generate_series(1, 5000000000) a", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    canceller.await.unwrap();
    // The connection is usable afterwards.
    let one: i32 = client.query_one("SELECT 1::int", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn statement_timeout_cancels_a_long_query() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("SET statement_timeout = 200")
        .await
        .unwrap();
    let err = client
        .query("SELECT count(*) FROM generate_series(1, 5000000000) a", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
    let message = err.as_db_error().unwrap().message();
    assert_eq!(message, "canceling statement due to statement timeout");
}

/// The pid of the other session running a statement that mentions `marker`.
async fn pid_running(observer: &tokio_postgres::Client, marker: &str) -> i32 {
    for _ in 0..100 {
        let rows = observer
            .query(
                "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND query LIKE '%' || $1 || '%'",
                &[&marker],
            )
            .await
            .unwrap();
        if let Some(row) = rows.first() {
            return row.get(0);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no session is running {marker}");
}

#[tokio::test]
async fn pg_cancel_backend_and_pg_terminate_backend_signal_another_session() {
    let server = TestServer::start();
    let worker = server.connect().await;
    let admin = server.connect().await;
    let long = "SELECT count(*) FROM generate_series(1, 5000000000) a /* cancel-me */";
    let running = tokio::spawn(async move {
        let err = worker.query(long, &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::QUERY_CANCELED), "{err:?}");
        // Still connected after a cancel.
        worker.batch_execute("SELECT 1").await.unwrap();
        worker
    });
    let pid = pid_running(&admin, "cancel-me").await;
    let cancelled: bool = admin
        .query_one("SELECT pg_cancel_backend($1::int)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(cancelled);
    let worker = running.await.unwrap();

    let long = "SELECT count(*) FROM generate_series(1, 5000000000) a /* end-me */";
    let running = tokio::spawn(async move { worker.query(long, &[]).await });
    let pid = pid_running(&admin, "end-me").await;
    let ended: bool = admin
        .query_one("SELECT pg_terminate_backend($1::int)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(ended);
    let err = running.await.unwrap().unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::ADMIN_SHUTDOWN), "{err:?}");
    // Gone from pg_stat_activity; an unknown pid gives false.
    for _ in 0..50 {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unknown: bool = admin
        .query_one("SELECT pg_cancel_backend(1)", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!unknown);
}

#[tokio::test]
async fn json_logs_carry_slow_statements_with_their_user() {
    use std::io::Read;
    let (mut child, port) = serve_with(
        &["--log-format", "json", "--log-min-duration-statement", "0"],
        &[("QUIVER_LOG", "info")],
    )
    .unwrap();
    let client = connect_as(port, "logger").await;
    client.batch_execute("SELECT 42 AS marker").await.unwrap();
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let events: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let slow = events
        .iter()
        .find(|e| e["fields"]["message"] == "slow statement")
        .unwrap_or_else(|| panic!("no slow statement in {stderr}"));
    assert_eq!(slow["fields"]["statement"], "SELECT 42 AS marker");
    assert_eq!(slow["fields"]["user"], "logger");
    assert!(slow["fields"]["duration_ms"].is_number());
}

/// A connection to the server on `port` as `user`.
async fn connect_as(port: u16, user: &str) -> tokio_postgres::Client {
    let conn = format!("host=127.0.0.1 port={port} user={user} dbname=quiver");
    let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Starts `quiver serve` with extra arguments and environment; returns the
/// child and its port, or the failed run's stderr.
fn serve_with(args: &[&str], env: &[(&str, &str)]) -> Result<(std::process::Child, u16), String> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["serve", "--memory", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("QUIVER_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().rsplit(':').next().and_then(|p| p.parse().ok()) {
        Some(port) => Ok((child, port)),
        None => {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            child.wait().unwrap();
            Err(stderr)
        }
    }
}

#[tokio::test]
async fn settings_come_from_flags_then_environment_then_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("quiver.toml");
    std::fs::write(
        &config,
        "max_connections = 7\nmemory_limit = \"100MB\"\nmax-message-size = \"2MiB\"\nlog_min_duration_statement = 250\nstatement_timeout = \"2s\"\nsynchronous_commit = \"off\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let (mut child, port) = serve_with(
        &["--config", config, "--max-message-size", "3MiB"],
        &[("QUIVER_MAX_CONNECTIONS", "9")],
    )
    .unwrap();
    let client = connect_as(port, "u").await;
    let show = |name: &'static str| {
        let client = &client;
        async move {
            let rows = client.simple_query(&format!("SHOW {name}")).await.unwrap();
            match &rows[1] {
                tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).unwrap().to_string(),
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        show("max_connections").await,
        "9",
        "environment beats the file"
    );
    assert_eq!(
        show("memory_limit").await,
        "100000000",
        "the file beats the default"
    );
    assert_eq!(
        show("max_message_size").await,
        (3 << 20).to_string(),
        "a flag beats the file"
    );
    assert_eq!(show("log_min_duration_statement").await, "250");
    // Session parameters the server sets: the new default, which a
    // session may change and RESET brings back.
    assert_eq!(show("statement_timeout").await, "2000");
    assert_eq!(show("synchronous_commit").await, "off");
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    assert_eq!(show("statement_timeout").await, "0");
    client
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();
    assert_eq!(show("statement_timeout").await, "2000");
    let server_rows = client
        .simple_query(
            "SELECT setting FROM pg_settings WHERE name = 'max_connections' AND context = 'postmaster'",
        )
        .await
        .unwrap();
    assert!(
        matches!(&server_rows[1], tokio_postgres::SimpleQueryMessage::Row(r) if r.get(0) == Some("9")),
        "{server_rows:?}"
    );
    let all = client.simple_query("SHOW ALL").await.unwrap();
    let names: Vec<String> = all
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap().to_string()),
            _ => None,
        })
        .collect();
    for name in ["max_table_memory", "listen", "statement_timeout"] {
        assert!(names.iter().any(|n| n == name), "SHOW ALL lacks {name}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // Unknown and invalid settings stop the start with a clear error.
    std::fs::write(dir.path().join("bad.toml"), "max_conections = 5\n").unwrap();
    let bad = dir.path().join("bad.toml");
    let err = serve_with(&["--config", bad.to_str().unwrap()], &[]).unwrap_err();
    assert!(err.contains("unknown setting \"max_conections\""), "{err}");
    std::fs::write(&bad, "memory_limit = \"lots\"\n").unwrap();
    let err = serve_with(&["--config", bad.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        err.contains("memory-limit") && err.contains("lots"),
        "{err}"
    );
    std::fs::write(&bad, "statement_timeout = \"soon\"\n").unwrap();
    let err = serve_with(&["--config", bad.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        err.contains("statement_timeout") && err.contains("soon"),
        "{err}"
    );
}

/// GET `path` from `addr` over plain HTTP/1.1; returns (status, body).
fn http_get(addr: &str, method: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

/// The value of the sample `name{labels}` (labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn the_metrics_endpoint_reports_statements_connections_tables_and_the_wal() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("QUIVER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let port: u16 = listening.rsplit(':').next().unwrap().parse().unwrap();
    let metrics_line = lines.next().unwrap().unwrap();
    let addr = metrics_line
        .strip_prefix("QuiverDB metrics on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("{metrics_line}"))
        .to_string();

    let client = connect_as(port, "watcher").await;
    client
        .batch_execute(
            "CREATE TABLE m (x INT); INSERT INTO m SELECT * FROM generate_series(1, 1000); \
             CHECKPOINT",
        )
        .await
        .unwrap();
    for _ in 0..3 {
        client.simple_query("SELECT count(*) FROM m").await.unwrap();
    }
    assert!(client.simple_query("SELECT * FROM missing").await.is_err());
    let prepared = client
        .prepare("SELECT x FROM m WHERE x = $1")
        .await
        .unwrap();
    client.query(&prepared, &[&7i32]).await.unwrap();

    let (status, text) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || http_get(&addr, "GET", "/metrics")
    })
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"), "{text}");
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.starts_with("quiver_"), "unprefixed sample: {line}");
    }
    let ok_selects = sample(
        &text,
        "quiver_statements_total{kind=\"select\",outcome=\"ok\"}",
    )
    .unwrap_or_else(|| panic!("{text}"));
    assert!(
        ok_selects >= 4.0,
        "{ok_selects}: three simple and one prepared"
    );
    assert_eq!(
        sample(
            &text,
            "quiver_statements_total{kind=\"select\",outcome=\"error\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "quiver_statement_duration_seconds_count{kind=\"select\"}"
        ),
        Some(ok_selects + 1.0)
    );
    assert_eq!(sample(&text, "quiver_connections_active"), Some(1.0));
    assert_eq!(sample(&text, "quiver_queries_waiting"), Some(0.0));
    assert_eq!(sample(&text, "quiver_queries_running"), Some(0.0));
    assert!(sample(&text, "quiver_query_slots").unwrap() >= 1.0);
    assert_eq!(
        sample(&text, "quiver_table_rows{schema=\"public\",table=\"m\"}"),
        Some(1000.0)
    );
    assert!(
        sample(
            &text,
            "quiver_table_memory_bytes{schema=\"public\",table=\"m\"}"
        )
        .unwrap()
            >= 4000.0
    );
    assert!(sample(&text, "quiver_wal_written_bytes_total").unwrap() > 4000.0);
    assert!(sample(&text, "quiver_wal_fsync_duration_seconds_count").unwrap() >= 2.0);
    assert_eq!(
        sample(&text, "quiver_checkpoint_duration_seconds_count"),
        Some(1.0)
    );
    assert!(sample(&text, "quiver_query_memory_limit_bytes").unwrap() > 0.0);
    assert!(
        text.contains("quiver_statement_duration_seconds_bucket{le=\"+Inf\",kind=\"select\"}")
            || text
                .contains("quiver_statement_duration_seconds_bucket{kind=\"select\",le=\"+Inf\"}")
    );

    // Other paths and methods get errors, and the endpoint keeps serving.
    let (status, _) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || http_get(&addr, "GET", "/nope")
    })
    .await
    .unwrap();
    assert_eq!(status, 404);
    let (status, _) = tokio::task::spawn_blocking({
        let addr = addr.clone();
        move || http_get(&addr, "POST", "/metrics")
    })
    .await
    .unwrap();
    assert_eq!(status, 405);
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, text) = tokio::task::spawn_blocking(move || http_get(&addr, "GET", "/metrics"))
        .await
        .unwrap();
    assert_eq!(sample(&text, "quiver_connections_active"), Some(0.0));
    child.kill().unwrap();
    child.wait().unwrap();
}
