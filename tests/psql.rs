//! psql, the reference client, runs scripts against a real server.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{tool_version, TestServer};

fn psql_available() -> bool {
    match tool_version("psql") {
        Some(version) => {
            println!("using {version}");
            true
        }
        None => {
            println!("SKIPPED: psql is not installed (apt-get install postgresql-client); .ci/run installs it");
            false
        }
    }
}

fn psql(server: &TestServer, args: &[&str]) -> std::process::Output {
    Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={} user=tester dbname=quiver",
            server.port
        ))
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .expect("run psql")
}

#[test]
fn psql_script_output_matches_postgres_formatting() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/psql");
    let script = dir.join("weather.sql");
    let out = psql(&server, &["-f", script.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = std::fs::read_to_string(dir.join("weather.expected")).unwrap();
    assert_eq!(stdout, expected);
}

#[test]
fn psql_stops_at_an_error_with_the_postgres_message() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let out = psql(
        &server,
        &[
            "-c",
            "CREATE TABLE t (x INT)",
            "-c",
            "SELECT * FROM missing",
            "-c",
            "INSERT INTO t VALUES (1)",
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR:  relation \"missing\" does not exist"),
        "{stderr}"
    );
    // ON_ERROR_STOP: the INSERT after the error never ran.
    let out = psql(&server, &["-A", "-t", "-c", "SELECT count(*) FROM t"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
}
