//! The server process: clean shutdown, a taken port, query cancellation.

mod common;

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
