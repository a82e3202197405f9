//! psql, the reference client, runs scripts against a real server.

use crate::common;

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

/// psql's meta-commands read pg_catalog: `\l`, `\dn`, `\dt`, `\d TABLE`,
/// `\dv`, `\df`, `\x`, `\conninfo` print what they print against
/// PostgreSQL (the outputs recorded from PostgreSQL 15 are in
/// tests/psql/catalog.postgres.d; ours differ only in owner, database
/// list and the CHECK deparse, see catalog.notes.md).
#[test]
fn psql_meta_commands_describe_the_catalog() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/psql");
    let conn = format!(
        "host=127.0.0.1 port={} user=quiver dbname=quiver",
        server.port
    );
    let run = |args: &[&str]| {
        Command::new("psql")
            .arg(&conn)
            .args(["-X", "-v", "ON_ERROR_STOP=1"])
            .args(args)
            .output()
            .expect("run psql")
    };
    let setup = run(&["-q", "-f", dir.join("catalog.sql").to_str().unwrap()]);
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let commands = std::fs::read_to_string(dir.join("catalog.commands")).unwrap();
    for line in commands
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let mut parts = line.split('\t');
        let name = parts.next().unwrap();
        let mut args = Vec::new();
        for command in parts {
            args.push("-c");
            args.push(command);
        }
        let out = run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout)
            .replace(&format!("port \"{}\"", server.port), "port \"PORT\"");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if name == "dt_plus" {
            // Sizes are the tables' memory, which PostgreSQL's heap does not match.
            assert!(stdout.contains("| permanent   | heap"), "{stdout}");
            assert!(
                stdout.contains(" public | measurement | table | quiver"),
                "{stdout}"
            );
            continue;
        }
        let expected =
            std::fs::read_to_string(dir.join(format!("catalog.expected.d/{name}.out"))).unwrap();
        assert_eq!(stdout, expected, "psql {line}");
    }
}

/// psql's `\copy` in both directions, CSV with a header.
#[test]
fn psql_copy_round_trips_a_csv_file() {
    if !psql_available() {
        return;
    }
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let output = dir.path().join("out.csv");
    std::fs::write(&input, "id,name\n1,\"Oslo, NO\"\n2,\n3,\"line\nbreak\"\n").unwrap();
    let out = psql(
        &server,
        &[
            "-c",
            "CREATE TABLE c (id INT PRIMARY KEY, name TEXT)",
            "-c",
            &format!("\\copy c FROM '{}' (FORMAT csv, HEADER)", input.display()),
            "-c",
            &format!(
                "\\copy (SELECT * FROM c ORDER BY id) TO '{}' (FORMAT csv, HEADER)",
                output.display()
            ),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("COPY 3"));
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        std::fs::read_to_string(&input).unwrap()
    );
}
