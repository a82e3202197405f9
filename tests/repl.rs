//! The REPL driven through piped input, as `quiver < script.sql` runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn run_repl(script: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("repl")
        .env("QUIVER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start quiver repl");
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
