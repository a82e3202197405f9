//! `quiver import` and `quiver export` run as processes, on a data
//! directory and through a running server.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::TestServer;

fn quiver(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(args)
        .env("QUIVER_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `sql` in the shell on a data directory; returns its CSV output.
fn query(data_dir: &Path, sql: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["repl", "--format", "csv", "--data-dir", s(data_dir)])
        .env("QUIVER_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn import_and_export_on_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let csv = dir.path().join("people.csv");
    std::fs::write(
        &csv,
        "id,name,score\n1,\"Smith, J\",1.5\n2,,\n3,\"say \"\"hi\"\"\",3\n",
    )
    .unwrap();
    let semi = dir.path().join("more.txt");
    std::fs::write(&semi, "4;d;4\n").unwrap();

    // A missing table is created from the file; --no-header files fill
    // columns in order.
    let out = ok(quiver(&[
        "import",
        s(&csv),
        "--table",
        "people",
        "--data-dir",
        s(&data),
    ]));
    assert!(out.contains("imported 3 rows into people"), "{out}");
    ok(quiver(&[
        "import",
        s(&semi),
        "--table",
        "people",
        "--data-dir",
        s(&data),
        "--no-header",
        "--delimiter",
        ";",
        "--format",
        "csv",
    ]));
    assert_eq!(
        query(&data, "SELECT id, name, score FROM people ORDER BY id;\n"),
        "id,name,score\n1,\"Smith, J\",1.5\n2,,\n3,\"say \"\"hi\"\"\",3\n4,d,4\n"
    );

    // Exports in every format, read back by import.
    for name in ["out.parquet", "out.jsonl", "out.csv"] {
        let file = dir.path().join(name);
        let out = ok(quiver(&[
            "export",
            s(&file),
            "--query",
            "SELECT * FROM people ORDER BY id",
            "--data-dir",
            s(&data),
        ]));
        assert!(out.contains("exported 4 rows"), "{out}");
        assert!(!dir.path().join(format!("{name}.partial")).exists());
        let table = format!("copy_{}", name.replace('.', "_"));
        ok(quiver(&[
            "import",
            s(&file),
            "--table",
            &table,
            "--data-dir",
            s(&data),
        ]));
        assert_eq!(
            query(
                &data,
                &format!(
                    "SELECT count(*) AS n, sum(id) AS s, count(name) AS named FROM {table};\n"
                )
            ),
            "n,s,named\n4,10,3\n",
            "{name}"
        );
    }
}

#[test]
fn a_failed_import_leaves_the_table_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let good = dir.path().join("good.csv");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&good, "id,day\n1,2024-01-01\n").unwrap();
    std::fs::write(&bad, "id,day\n2,2024-01-02\n3,someday\n").unwrap();
    // Inferred from its first 1000 rows as integers; row 1001 is not.
    let mut late = String::from("n\n");
    for i in 0..1000 {
        late.push_str(&format!("{i}\n"));
    }
    late.push_str("many\n");
    let late_file = dir.path().join("late.csv");
    std::fs::write(&late_file, late).unwrap();
    ok(quiver(&[
        "import",
        s(&good),
        "--table",
        "d",
        "--data-dir",
        s(&data),
    ]));
    // The good file of the same run is rolled back with the bad one; one
    // bad file alone (one COPY, not in a block) keeps nothing either.
    for files in [vec![s(&good), s(&bad)], vec![s(&bad)]] {
        let mut args = vec!["import"];
        args.extend(files);
        args.extend(["--table", "d", "--data-dir", s(&data)]);
        let out = quiver(&args);
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("nothing was imported") && stderr.contains("someday"),
            "{stderr}"
        );
        assert_eq!(query(&data, "SELECT count(*) AS n FROM d;\n"), "n\n1\n");
    }
    // A table created by a failed import is not left behind either.
    let out = quiver(&[
        "import",
        s(&late_file),
        "--table",
        "fresh",
        "--data-dir",
        s(&data),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("many"), "{stderr}");
    assert_eq!(
        query(
            &data,
            "SELECT count(*) AS n FROM pg_tables WHERE tablename = 'fresh';\n"
        ),
        "n\n0\n"
    );
    // A failed export leaves no file.
    let target = dir.path().join("never.parquet");
    let out = quiver(&[
        "export",
        s(&target),
        "--query",
        "SELECT * FROM missing",
        "--data-dir",
        s(&data),
    ]);
    assert!(!out.status.success());
    assert!(!target.exists());
    assert!(!dir.path().join("never.parquet.partial").exists());
}

#[tokio::test]
async fn import_and_export_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    let url = format!("postgres://loader@127.0.0.1:{}/quiver", server.port);
    let jsonl = dir.path().join("events.jsonl");
    std::fs::write(
        &jsonl,
        "{\"id\": 1, \"kind\": \"click\", \"ok\": true}\n{\"id\": 2, \"kind\": null, \"ok\": false}\n",
    )
    .unwrap();
    let out = tokio::task::spawn_blocking({
        let (url, jsonl) = (url.clone(), jsonl.clone());
        move || quiver(&["import", s(&jsonl), "--table", "events", "--url", &url])
    })
    .await
    .unwrap();
    assert!(ok(out).contains("imported 2 rows into events"));
    let client = server.connect().await;
    let rows = client
        .query("SELECT id, kind, ok FROM events ORDER BY id", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].get::<_, Option<String>>(1).as_deref(),
        Some("click")
    );
    assert_eq!(rows[1].get::<_, Option<String>>(1), None);
    assert!(!rows[1].get::<_, bool>(2));

    client
        .batch_execute(
            "CREATE TABLE typed (i INT, f DOUBLE PRECISION, b BOOLEAN, d DATE, ts TIMESTAMP, t TEXT); \
             INSERT INTO typed VALUES (1, 1.5, true, '2024-02-03', '2024-02-03 04:05:06.5', 'a,\"b\"\nc'), \
             (NULL, NULL, NULL, NULL, NULL, NULL)",
        )
        .await
        .unwrap();
    for name in ["typed.parquet", "typed.csv", "typed.jsonl"] {
        let file = dir.path().join(name);
        let out = tokio::task::spawn_blocking({
            let (url, file) = (url.clone(), file.clone());
            move || quiver(&["export", s(&file), "--table", "typed", "--url", &url])
        })
        .await
        .unwrap();
        assert!(ok(out).contains("exported 2 rows"), "{name}");
        // Into an existing table, columns matched by name (CSV and JSON
        // carry no column types of their own).
        let table = format!("back_{}", name.replace('.', "_"));
        client
            .batch_execute(&format!(
                "CREATE TABLE {table} (t TEXT, ts TIMESTAMP, d DATE, b BOOLEAN, f DOUBLE PRECISION, i INT)"
            ))
            .await
            .unwrap();
        let out = tokio::task::spawn_blocking({
            let (url, file, table) = (url.clone(), file.clone(), table.clone());
            move || quiver(&["import", s(&file), "--table", &table, "--url", &url])
        })
        .await
        .unwrap();
        ok(out);
        let same: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM typed x JOIN {table} y ON x.i = y.i AND x.f = y.f \
                     AND x.b = y.b AND x.d = y.d AND x.ts = y.ts AND x.t = y.t"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(same, 1, "{name}: the row came back equal");
        let nulls: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE i IS NULL AND t IS NULL"),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(nulls, 1, "{name}: the NULL row came back");
    }
}
