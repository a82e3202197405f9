//! Recovery from what is on disk: exact round trips through the WAL and
//! through checkpoints, torn tails, and damaged files reported by name.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{first_column, TestServer};
use tokio_postgres::SimpleQueryMessage;

const SETUP: &str = "
    CREATE SCHEMA sales;
    CREATE TABLE sales.typed (
        i2 SMALLINT, i4 INTEGER NOT NULL, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION,
        n NUMERIC(12,3), t TEXT DEFAULT 'dflt', vc VARCHAR(5), c CHAR(3), b BOOLEAN,
        d DATE, tm TIME, ts TIMESTAMP, tz TIMESTAMPTZ, iv INTERVAL,
        by BYTEA, u UUID, j JSON, jb JSONB, PRIMARY KEY (i4));
    INSERT INTO sales.typed VALUES
        (1, 1, 10000000000, 1.5, 0.25, 12.345, 'x', 'abc', 'ab', true, '2024-02-29', '10:11:12.5',
         '2024-02-29 10:11:12', '2024-02-29 10:11:12+03', '1 year 2 mons 3 days 04:05:06',
         '\\x00ff', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '[1, {\"a\": null}]', '{\"k\": [true]}');
    INSERT INTO sales.typed (i4) VALUES (2);
    CREATE VIEW sales.summary (n_rows, max_key) AS SELECT count(*), max(i4) FROM sales.typed;
    CREATE TABLE public.later AS SELECT i4 * 10 AS k FROM sales.typed;
    CREATE VIEW public.later_big AS SELECT * FROM public.later WHERE k > 10;
    CREATE INDEX ON public.later (k);
    ALTER TABLE public.later RENAME TO later_old;
    ALTER TABLE public.later_old ADD COLUMN note TEXT DEFAULT 'n';
    ALTER TABLE later_old RENAME TO later;
    CREATE TABLE public.emptied (x INT PRIMARY KEY);
    INSERT INTO public.emptied VALUES (1), (2);
    TRUNCATE public.emptied;
    INSERT INTO public.emptied VALUES (2);
    DROP TABLE IF EXISTS never_existed;";

/// Every row of every relation, as text, in a stable order.
async fn dump(client: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT * FROM sales.typed ORDER BY i4",
        "SELECT * FROM sales.summary",
        "SELECT * FROM public.later ORDER BY k",
        "SELECT * FROM public.later_big ORDER BY k",
        "SELECT * FROM public.emptied ORDER BY x",
    ] {
        for message in client.simple_query(sql).await.unwrap() {
            match message {
                SimpleQueryMessage::RowDescription(cols) => out.push(
                    cols.iter()
                        .map(|c| c.name().to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                SimpleQueryMessage::Row(row) => out.push(
                    (0..row.len())
                        .map(|i| row.get(i).unwrap_or("NULL").to_string())
                        .collect::<Vec<_>>()
                        .join("|"),
                ),
                _ => {}
            }
        }
    }
    // Column types as clients see them.
    let stmt = client.prepare("SELECT * FROM sales.typed").await.unwrap();
    out.push(format!(
        "{:?}",
        stmt.columns()
            .iter()
            .map(|c| c.type_().name())
            .collect::<Vec<_>>()
    ));
    out
}

async fn setup_and_dump(dir: &str) -> Vec<String> {
    let server = TestServer::start_with(&["--data-dir", dir]);
    let client = server.connect().await;
    client.batch_execute(SETUP).await.unwrap();
    dump(&client).await
}

#[tokio::test]
async fn data_and_schema_come_back_exactly_from_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let before = setup_and_dump(path).await; // killed: recovery replays the WAL
    let server = TestServer::start_with(&["--data-dir", path]);
    let after = dump(&server.connect().await).await;
    assert_eq!(before, after);
}

#[tokio::test]
async fn data_and_schema_come_back_exactly_from_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let before = {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client.batch_execute(SETUP).await.unwrap();
        client.batch_execute("CHECKPOINT").await.unwrap();
        dump(&client).await
    };
    assert!(
        wal_files(dir.path()).len() == 1,
        "the checkpoint removed the old WAL"
    );
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    assert_eq!(before, dump(&client).await);
    // Constraints are enforced again after recovery.
    let err = client
        .batch_execute("INSERT INTO sales.typed (i4) VALUES (1)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23505");
}

/// Sealed segments come back encoded from a checkpoint, and a unique
/// key's index, left to be read on first use after the restart, still
/// refuses every duplicate.
#[tokio::test]
async fn encoded_rows_and_lazily_read_keys_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let summary = "SELECT count(*)::text || ' ' || sum(k)::text || ' ' || sum(n)::text || ' ' \
                   || count(DISTINCT s)::text || ' ' || min(d)::text || ' ' || max(d)::text FROM big";
    let before: String = {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE big (k int PRIMARY KEY, s text, n numeric(12,2), d date);
                 INSERT INTO big SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE 'mode ' || (g % 5) END, \
                   g * 0.25, date '2000-01-01' + (g % 3000) FROM generate_series(1, 100000) g;
                 CHECKPOINT",
            )
            .await
            .unwrap();
        client.query_one(summary, &[]).await.unwrap().get(0)
    };
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    assert_eq!(
        before,
        client
            .query_one(summary, &[])
            .await
            .unwrap()
            .get::<_, String>(0)
    );
    let rows = client
        .query(
            "SELECT k, s FROM big WHERE s = 'mode 3' AND k < 30 ORDER BY k",
            &[],
        )
        .await
        .unwrap();
    let keys: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(keys, vec![3, 8, 13, 18, 23, 28]);
    let err = client
        .batch_execute("INSERT INTO big (k) VALUES (77777)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23505");
    let inserted = client
        .execute(
            "INSERT INTO big (k) VALUES (5), (100001) ON CONFLICT DO NOTHING",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(inserted, 1);
    let err = client
        .batch_execute("INSERT INTO big (k) VALUES (100001)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23505");
}

#[tokio::test]
async fn a_restart_serves_at_once_and_reads_each_table_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let report = "SELECT (SELECT count(*) FROM facts)::text || ' ' || \
                  (SELECT sum(f.v * d.w) FROM facts f JOIN dims d ON d.id = f.dim)::text";
    let before: String = {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE dims (id int PRIMARY KEY, w int);
                 INSERT INTO dims SELECT g, g % 7 FROM generate_series(1, 100) g;
                 CREATE TABLE facts (id bigint PRIMARY KEY, dim int, v numeric(10,2));
                 INSERT INTO facts SELECT g, 1 + g % 100, g * 0.5 FROM generate_series(1, 200000) g;
                 CHECKPOINT",
            )
            .await
            .unwrap();
        client.query_one(report, &[]).await.unwrap().get(0)
    };
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    // A transaction begun before the rows are read sees all of them, and
    // so does every statement after it.
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    let count: i64 = client
        .query_one("SELECT count(*) FROM facts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 200000);
    assert_eq!(
        before,
        client
            .query_one(report, &[])
            .await
            .unwrap()
            .get::<_, String>(0)
    );
    client.batch_execute("COMMIT").await.unwrap();
    let err = client
        .batch_execute("INSERT INTO facts VALUES (7, 1, 1)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "23505");
    client
        .batch_execute("INSERT INTO facts VALUES (200001, 1, 1); DELETE FROM dims WHERE id = 100")
        .await
        .unwrap();
    // The background reader brings in every table.
    let mut resident = false;
    for _ in 0..300 {
        resident = client
            .query_one(
                "SELECT bool_and(resident AND memory_bytes > 0) FROM quiver_tables",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if resident {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(resident, "every table is read within 30 s");
    let after: String = client.query_one(report, &[]).await.unwrap().get(0);
    assert_eq!(after.split(' ').next(), Some("200001"), "{after}");
}

#[tokio::test]
async fn a_damaged_data_page_fails_only_its_table_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    {
        let mut server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE fine (x int); INSERT INTO fine VALUES (1), (2);
                 CREATE TABLE hurt (x int, s text);
                 INSERT INTO hurt SELECT g, 'row ' || g FROM generate_series(1, 50000) g;
                 CHECKPOINT",
            )
            .await
            .unwrap();
        drop(client);
        assert!(server.stop_with("TERM").success());
    }
    // `hurt` was created second: its file sorts second. Its first page
    // header is overwritten; the footer stays readable.
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 2);
    let original = std::fs::read(&files[1]).unwrap();
    let mut damaged = original.clone();
    damaged[4..68].fill(0xff);
    std::fs::write(&files[1], &damaged).unwrap();
    {
        let mut server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        // Answered from the manifest (row count and saved statistics)
        // without reading the damaged rows.
        let row = client
            .query_one("SELECT count(*), min(x), max(x), count(s) FROM hurt", &[])
            .await
            .unwrap();
        assert_eq!(
            (
                row.get::<_, i64>(0),
                row.get::<_, i32>(1),
                row.get::<_, i32>(2),
                row.get::<_, i64>(3)
            ),
            (50000, 1, 50000, 50000)
        );
        let err = client
            .query("SELECT sum(x) FROM hurt", &[])
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "XX001", "{err:?}");
        let file_name = files[1].file_name().unwrap().to_str().unwrap();
        assert!(err.to_string().contains(file_name) || format!("{err:?}").contains(file_name));
        let err = client
            .batch_execute("INSERT INTO hurt VALUES (0, 'new')")
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "XX001", "{err:?}");
        // Everything else works, and a checkpoint keeps the damaged file
        // as it is instead of writing the table empty.
        client
            .batch_execute("INSERT INTO fine VALUES (3); CHECKPOINT")
            .await
            .unwrap();
        let sum: i64 = client
            .query_one("SELECT sum(x) FROM fine", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(sum, 6);
        drop(client);
        assert!(server.stop_with("TERM").success());
    }
    // With the file repaired (a backup put back) every row is there.
    std::fs::write(&files[1], &original).unwrap();
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    let row = client
        .query_one("SELECT count(*), sum(x) FROM hurt", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (50000, 1250025000)
    );
    let sum: i64 = client
        .query_one("SELECT sum(x) FROM fine", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 6);
}

#[tokio::test]
async fn a_big_append_logged_compressed_is_replayed_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let summary = "SELECT count(*)::text || ' ' || sum(k)::text || ' ' || count(s)::text || ' ' \
                   || max(length(s))::text FROM big";
    let before: String = {
        let mut server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        // About 45 MB of rows in one statement: logged as LZ4-compressed
        // streams encoded in parallel.
        client
            .batch_execute(
                "CREATE TABLE big (k bigint, s text);
                 INSERT INTO big SELECT g, CASE WHEN g % 9 = 0 THEN NULL \
                   ELSE 'the row numbered ' || g || ' of a big append' END \
                   FROM generate_series(1, 1000000) g",
            )
            .await
            .unwrap();
        let before = client.query_one(summary, &[]).await.unwrap().get(0);
        drop(client);
        server.stop_with("KILL");
        before
    };
    let wal_bytes: u64 = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(wal_bytes < 30 << 20, "the log holds {wal_bytes} bytes");
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    let after: String = client.query_one(summary, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
    let rows: Vec<i64> = first_column(
        &client,
        "SELECT k FROM big WHERE k IN (1, 500000, 1000000) ORDER BY k",
    )
    .await;
    assert_eq!(rows, vec![1, 500000, 1000000]);
}

#[tokio::test]
async fn a_clean_shutdown_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let mut server = TestServer::start_with(&["--data-dir", path]);
    server.connect().await.batch_execute(SETUP).await.unwrap();
    assert!(server.stop_with("TERM").success());
    assert!(dir.path().join("MANIFEST").exists());
    let parquet = std::fs::read_dir(dir.path().join("tables"))
        .unwrap()
        .count();
    assert_eq!(parquet, 3, "one Parquet file per table");
}

fn wal_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// Opens the directory offline (`quiver checkpoint`) and returns stderr.
fn open_offline(dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["checkpoint", "--data-dir", dir.to_str().unwrap()])
        .env("QUIVER_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_torn_tail_is_dropped_with_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let before = setup_and_dump(path).await;
    let wal = wal_files(dir.path()).pop().unwrap();
    // Half a record: a length promising more bytes than follow.
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend_from_slice(&500u32.to_le_bytes());
    bytes.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7]);
    std::fs::write(&wal, bytes).unwrap();
    let (ok, stderr) = open_offline(dir.path());
    assert!(ok, "{stderr}");
    assert!(stderr.contains("dropped 11 byte(s)"), "{stderr}");
    let server = TestServer::start_with(&["--data-dir", path]);
    assert_eq!(before, dump(&server.connect().await).await);
}

#[tokio::test]
async fn a_corrupt_wal_record_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    setup_and_dump(path).await;
    let wal = wal_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[20] ^= 0x55; // inside the first record, with more after it
    std::fs::write(&wal, bytes).unwrap();
    let (ok, stderr) = open_offline(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains(wal.file_name().unwrap().to_str().unwrap())
            && stderr.contains("damaged at byte 0"),
        "{stderr}"
    );
}

async fn checkpointed(path: &str) {
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    client.batch_execute(SETUP).await.unwrap();
    client.batch_execute("CHECKPOINT").await.unwrap();
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("tables"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn a_missing_or_damaged_parquet_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    checkpointed(path).await;
    let files = parquet_files(dir.path());
    // Damaged: cut in half.
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(&files[0], &bytes[..bytes.len() / 2]).unwrap();
    let (ok, stderr) = open_offline(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains(files[0].file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );
    // Missing.
    std::fs::remove_file(&files[0]).unwrap();
    let (ok, stderr) = open_offline(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains(files[0].file_name().unwrap().to_str().unwrap()),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_damaged_manifest_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    checkpointed(path).await;
    std::fs::write(dir.path().join("MANIFEST"), b"{ not json").unwrap();
    let (ok, stderr) = open_offline(dir.path());
    assert!(!ok);
    assert!(stderr.contains("MANIFEST is damaged"), "{stderr}");
}

#[tokio::test]
async fn checkpoint_files_are_ordinary_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    checkpointed(path).await;
    let ctx = datafusion::prelude::SessionContext::new();
    let mut seen = Vec::new();
    for file in parquet_files(dir.path()) {
        let df = ctx
            .read_parquet(file.to_str().unwrap(), Default::default())
            .await
            .unwrap();
        let names: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let rows = df.count().await.unwrap();
        seen.push((names, rows));
    }
    seen.sort();
    assert_eq!(
        seen[0].0,
        vec![
            "i2", "i4", "i8", "f4", "f8", "n", "t", "vc", "c", "b", "d", "tm", "ts", "tz", "iv",
            "by", "u", "j", "jb"
        ]
    );
    assert_eq!(seen[0].1, 2);
    assert_eq!(seen[1], (vec!["k".to_string(), "note".to_string()], 2));
}

#[tokio::test]
async fn many_small_inserts_survive_a_restart_after_an_automatic_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    {
        // A 1 MiB WAL limit makes the server checkpoint on its own.
        let server = TestServer::start_with(&["--data-dir", path, "--checkpoint-wal-mb", "1"]);
        let client = server.connect().await;
        client
            .batch_execute("CREATE TABLE small (i INT, pad TEXT)")
            .await
            .unwrap();
        let insert = client
            .prepare("INSERT INTO small VALUES ($1, $2)")
            .await
            .unwrap();
        let pad = "x".repeat(500);
        for i in 0..3000i32 {
            client.execute(&insert, &[&i, &pad]).await.unwrap();
        }
        // Give the background checkpoint a moment; correctness does not
        // depend on it having finished.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(
        dir.path().join("MANIFEST").exists(),
        "an automatic checkpoint ran"
    );
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    let row = client
        .query_one("SELECT count(*), count(DISTINCT i) FROM small", &[])
        .await
        .unwrap();
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (3000, 3000));
}

#[tokio::test]
async fn synchronous_commit_off_still_keeps_rows_across_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    {
        let mut server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute("SET synchronous_commit = off; CREATE TABLE fast (i INT)")
            .await
            .unwrap();
        for i in 0..200i32 {
            client
                .execute("INSERT INTO fast VALUES ($1)", &[&i])
                .await
                .unwrap();
        }
        // Unsynced commits may be lost in a crash; a clean stop syncs the
        // WAL (and checkpoints), so all of them are kept.
        assert!(server.stop_with("TERM").success());
    }
    let server = TestServer::start_with(&["--data-dir", path]);
    let n: i64 = server
        .connect()
        .await
        .query_one("SELECT count(*) FROM fast", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 200);
}

#[tokio::test]
async fn quiver_tables_shows_rows_memory_and_the_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(&["--data-dir", dir.path().to_str().unwrap()]);
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE SCHEMA s; CREATE TABLE s.t (x INT);
             INSERT INTO s.t SELECT * FROM generate_series(1, 1000);
             INSERT INTO s.t VALUES (0);",
        )
        .await
        .unwrap();
    let query = "SELECT rows, batches, memory_bytes, last_checkpoint IS NULL
                 FROM quiver_tables WHERE schema_name = 's' AND table_name = 't'";
    let row = client.query_one(query, &[]).await.unwrap();
    let (rows, batches, memory, never): (i64, i64, i64, bool) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(rows, 1001);
    assert!(batches >= 1, "{batches}");
    // At least a byte a row, compressed (QUIVER_ENCODE_MIN_ROWS) or not.
    assert!(memory >= 1001, "{memory}");
    assert!(never, "not checkpointed yet");
    client.batch_execute("CHECKPOINT").await.unwrap();
    let row = client.query_one(query, &[]).await.unwrap();
    assert!(!row.get::<_, bool>(3), "checkpointed now");
    // Qualified, and from another schema on the search path, too.
    client
        .batch_execute("SET search_path = s; SELECT count(*) FROM pg_catalog.quiver_tables")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM quiver_tables", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

/// `quiver recover ARGS` run to completion: (exit code, stdout, stderr).
fn recover(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("recover")
        .args(args)
        .env("QUIVER_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Five commits of one row each, all in the WAL; returns the WAL file.
async fn five_logged_commits(path: &str) -> PathBuf {
    let server = TestServer::start_with(&["--data-dir", path, "--checkpoint-interval", "0"]);
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT)")
        .await
        .unwrap();
    for i in 1..=5 {
        client
            .batch_execute(&format!("INSERT INTO t VALUES ({i}, 'row {i}')"))
            .await
            .unwrap();
    }
    drop(client);
    drop(server); // kill -9: everything stays in the WAL
    wal_files(Path::new(path)).pop().unwrap()
}

/// Byte offsets of the records in a WAL file.
fn record_offsets(wal: &Path) -> Vec<usize> {
    let bytes = std::fs::read(wal).unwrap();
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        offsets.push(at);
        at += 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    offsets
}

#[tokio::test]
async fn recover_salvages_every_record_before_a_damaged_one_and_says_what_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let wal = five_logged_commits(path).await;
    // Damage the fourth record (the third INSERT): a checksum mismatch
    // with valid records after it.
    let offsets = record_offsets(&wal);
    assert_eq!(offsets.len(), 6, "CREATE TABLE and five INSERTs");
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[offsets[3] + 12] ^= 0x55;
    std::fs::write(&wal, &bytes).unwrap();

    // The server refuses, naming the file and offset.
    let (ok, stderr) = open_offline(dir.path());
    assert!(!ok);
    assert!(
        stderr.contains(&format!("damaged at byte {}", offsets[3])),
        "{stderr}"
    );

    // recover reports it, and exits 3 (damage found).
    let (code, stdout, stderr) = recover(&["--data-dir", path]);
    assert_eq!(code, 3, "{stdout}{stderr}");
    assert!(stdout.contains("3 WAL record(s) replayed"), "{stdout}");
    assert!(
        stdout.contains(wal.file_name().unwrap().to_str().unwrap())
            && stdout.contains(&format!("damaged at byte {}", offsets[3]))
            && stdout.contains("not replayed"),
        "{stdout}"
    );
    // Nothing in the damaged directory changed.
    assert_eq!(std::fs::read(&wal).unwrap(), bytes);

    // Salvage into a new directory, which then serves normally.
    let salvaged = tempfile::tempdir().unwrap();
    let target = salvaged.path().join("new");
    let (code, stdout, stderr) =
        recover(&["--data-dir", path, "--salvage-to", target.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let server = TestServer::start_with(&["--data-dir", target.to_str().unwrap()]);
    let client = server.connect().await;
    let ids: Vec<i32> = client
        .query("SELECT id FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ids, vec![1, 2]);
    client
        .batch_execute("INSERT INTO t VALUES (3, 'again')")
        .await
        .unwrap();

    // Salvaging into a directory that is not empty is refused.
    let (code, _, stderr) =
        recover(&["--data-dir", path, "--salvage-to", target.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(stderr.contains("not empty"), "{stderr}");
}

#[tokio::test]
async fn recover_serves_what_can_be_read_and_refuses_every_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE kept (id INT); INSERT INTO kept VALUES (1), (2);
                 CREATE TABLE lost (id INT); INSERT INTO lost VALUES (7);
                 CHECKPOINT;
                 INSERT INTO kept VALUES (3); INSERT INTO lost VALUES (8);",
            )
            .await
            .unwrap();
    }
    // The checkpoint file of `lost` (the second table created) is gone.
    let files = parquet_files(dir.path());
    assert_eq!(files.len(), 2);
    std::fs::remove_file(&files[1]).unwrap();

    let server = TestServer::start_command(&[
        "recover",
        "--data-dir",
        path,
        "--serve",
        "--listen",
        "127.0.0.1:0",
    ]);
    let client = server.connect().await;
    let kept: Vec<i32> = client
        .query("SELECT id FROM kept ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(kept, vec![1, 2, 3]);
    let lost: i64 = client
        .query_one("SELECT count(*) FROM lost", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(lost, 0, "the unreadable table comes back empty, not wrong");
    for change in [
        "INSERT INTO kept VALUES (4)",
        "UPDATE kept SET id = 5",
        "DELETE FROM kept",
        "CREATE TABLE more (x INT)",
        "DROP TABLE kept",
        "TRUNCATE kept",
    ] {
        let err = client.batch_execute(change).await.unwrap_err();
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("25006"),
            "{change}: {err}"
        );
    }
    let (code, stdout, _) = {
        drop(client);
        drop(server);
        recover(&["--data-dir", path])
    };
    assert_eq!(code, 3);
    assert!(
        stdout.contains("table public.lost") && stdout.contains("comes back empty"),
        "{stdout}"
    );
}

#[tokio::test]
async fn a_view_whose_files_are_gone_comes_back_unusable_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let files = tempfile::tempdir().unwrap();
    let csv = files.path().join("people.csv");
    std::fs::write(&csv, "id,name\n1,ada\n2,alan\n").unwrap();
    {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(&format!(
                "CREATE TABLE kept (x INT); INSERT INTO kept VALUES (1);
                 CREATE VIEW people AS SELECT * FROM read_csv('{}');",
                csv.display()
            ))
            .await
            .unwrap();
        let n: i64 = client
            .query_one("SELECT count(*) FROM people", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 2);
    }
    std::fs::remove_file(&csv).unwrap();
    // The server starts; the view is there, and says why it cannot be read.
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    let err = client
        .simple_query("SELECT * FROM people")
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "55000", "{db:?}");
    assert!(
        db.message().contains("view \"people\" cannot be read"),
        "{db:?}"
    );
    let views: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_views WHERE viewname = 'people'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(views, 1);
    // Everything else came back.
    let kept: i64 = client
        .query_one("SELECT count(*) FROM kept", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, 1);
    // Replacing it mends it.
    client
        .batch_execute("CREATE OR REPLACE VIEW people AS SELECT 1 AS id")
        .await
        .unwrap();
    let id: i32 = client
        .query_one("SELECT id FROM people", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(id, 1);
}
