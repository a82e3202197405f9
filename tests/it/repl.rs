//! The REPL driven through piped input, as `quiver < script.sql` runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::common;

fn run_repl(script: &str) -> Output {
    run_quiver(&["repl"], script, &[])
}

/// `quiver ARGS` with `script` on stdin and `env` set (PGPASSWORD unset
/// unless given).
fn run_quiver(args: &[&str], script: &str, env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .env("QUIVER_LOG", "warn")
        .env_remove("PGPASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start quiver");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_piped_script_prints_psql_style_tables() {
    let out = run_repl(
        "CREATE TABLE t (id INT, name TEXT);\n\
         INSERT INTO t VALUES (1, 'one'),\n  (2, 'two');\n\
         SELECT id, name FROM t ORDER BY id;\n\
         SELECT count(*) FROM t\n  WHERE id > 1;\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = "CREATE TABLE\nINSERT 0 2\n id | name\n----+------\n  1 | one\n  2 | two\n(2 rows)\n\n count\n-------\n     1\n(1 row)\n\n";
    assert_eq!(stdout, expected);
    // No interactive chrome: no banner, no prompts.
    assert!(!stdout.contains("quiver=>"));
}

#[test]
fn a_piped_script_stops_at_the_first_error_with_a_failing_status() {
    let out =
        run_repl("CREATE TABLE t (id INT);\nSELECT * FROM missing;\nINSERT INTO t VALUES (1);\n");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR:  relation \"missing\" does not exist"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("INSERT"), "ran past the error: {stdout}");
}

#[test]
fn backslash_commands_describe_tables() {
    let out = run_repl(
        "CREATE TABLE items (id INT PRIMARY KEY, label VARCHAR(20), price NUMERIC(8,2));\n\\dt\n\\d items\n",
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" public | items | table"), "{stdout}");
    assert!(stdout.contains("Table \"public.items\""), "{stdout}");
    assert!(
        stdout.contains(" id     | integer               | not null"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" label  | character varying(20) |"),
        "{stdout}"
    );
    assert!(
        stdout.contains(" price  | numeric(8,2)          |"),
        "{stdout}"
    );
}

#[test]
fn include_runs_another_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("setup.sql");
    std::fs::write(
        &file,
        "CREATE TABLE inc (x INT);\nINSERT INTO inc VALUES (7);\n",
    )
    .unwrap();
    let out = run_repl(&format!("\\i {}\nSELECT x FROM inc;\n", file.display()));
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(" x\n---\n 7\n(1 row)\n"));
}

#[test]
fn output_formats_expanded_display_and_output_files() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out.csv");
    let out = run_repl(&format!(
        "CREATE TABLE t (id INT, name TEXT, ok BOOLEAN);\n\
         INSERT INTO t VALUES (1, 'a, \"b\"', true), (20, NULL, false);\n\
         \\x\n\
         SELECT * FROM t ORDER BY id;\n\
         \\x off\n\
         \\pset format csv\n\
         SELECT * FROM t ORDER BY id;\n\
         \\json\n\
         SELECT * FROM t ORDER BY id;\n\
         \\pset format aligned\n\
         \\o {}\n\
         SELECT id FROM t ORDER BY id;\n\
         \\o\n\
         SELECT 'back' AS here;\n",
        out_file.display()
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "-[ RECORD 1 ]\nid   | 1\nname | a, \"b\"\nok   | t\n-[ RECORD 2 ]\nid   | 20\nname |\nok   | f\n"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("id,name,ok\n1,\"a, \"\"b\"\"\",t\n20,,f\n"),
        "{stdout}"
    );
    let json_start = stdout.find("[\n  {").unwrap();
    let json_end = json_start + stdout[json_start..].find("]\n").unwrap() + 1;
    let json: serde_json::Value = serde_json::from_str(&stdout[json_start..json_end]).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"id": 1, "name": "a, \"b\"", "ok": true},
            {"id": 20, "name": null, "ok": false}
        ])
    );
    // \o sent the aligned table to the file, and \o alone brought output back.
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(written, " id\n----\n  1\n 20\n(2 rows)\n\n");
    assert!(!stdout.contains(" id\n----\n  1\n 20"), "{stdout}");
    assert!(stdout.contains(" here\n------\n back\n"), "{stdout}");

    // --format csv from the command line, for scripts.
    let out = run_quiver(
        &["repl", "--format", "csv"],
        "SELECT 1 AS a, 'x' AS b;\n",
        &[],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a,b\n1,x\n");
}

/// `quiver repl URL` with `script` on stdin.
fn run_remote(url: &str, script: &str, env: &[(&str, &str)]) -> Output {
    run_quiver(&["repl", url], script, env)
}

#[test]
fn the_shell_connects_to_a_running_server() {
    let server = common::TestServer::start();
    let url = format!("postgres://analyst@127.0.0.1:{}/quiver", server.port);
    let out = run_remote(
        &url,
        "CREATE TABLE r (id INT PRIMARY KEY, name TEXT);\n\
         INSERT INTO r VALUES (1, 'one'), (2, NULL);\n\
         SELECT id, name FROM r ORDER BY id;\n\
         UPDATE r SET name = 'two' WHERE id = 2;\n\
         \\dt\n\
         \\d r\n\
         COPY r TO STDOUT (FORMAT csv);\n\
         SELECT current_user;\n",
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected_start = "CREATE TABLE\nINSERT 0 2\n id | name\n----+------\n  1 | one\n  2 |\n(2 rows)\n\nUPDATE 1\n";
    assert!(stdout.starts_with(expected_start), "{stdout}");
    assert!(stdout.contains(" public | r    | table\n"), "{stdout}");
    assert!(
        stdout.contains(" id     | integer | not null |"),
        "{stdout}"
    );
    assert!(stdout.contains("1,one\n2,two\nCOPY 2\n"), "{stdout}");
    assert!(stdout.contains(" analyst\n"), "{stdout}");

    // An error: printed as psql does, and the script stops with status 1.
    let out = run_remote(&url, "SELECT * FROM missing;\nSELECT 'not reached';\n", &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ERROR:  relation \"missing\" does not exist"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("not reached"));
}

#[test]
fn the_shell_logs_in_with_scram() {
    let server = common::TestServer::start();
    let setup = run_remote(
        &format!("postgres://admin@127.0.0.1:{}/quiver", server.port),
        "CREATE USER admin WITH SUPERUSER PASSWORD 's3cret';\n",
        &[],
    );
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let url = format!("postgres://admin@127.0.0.1:{}/quiver", server.port);
    let out = run_remote(
        &url,
        "SELECT 40 + 2 AS answer;\n",
        &[("PGPASSWORD", "s3cret")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("     42\n"));
    let with_password = format!("postgres://admin:s3cret@127.0.0.1:{}/quiver", server.port);
    let out = run_remote(&with_password, "SELECT 1;\n", &[]);
    assert!(out.status.success());
    // Wrong, and missing with no terminal to ask on: a clear failure.
    let out = run_remote(&url, "SELECT 1;\n", &[("PGPASSWORD", "wrong")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("password authentication failed"),
        "{stderr}"
    );
    let out = run_remote(&url, "SELECT 1;\n", &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("asks a password"), "{stderr}");
}
