//! Server files: COPY to and from CSV, text, Parquet and JSON files, and
//! querying files in place with read_csv / read_parquet / read_json.

use crate::common;

use std::sync::Arc;

use common::TestServer;
use datafusion::arrow::array::{
    ArrayRef, Int32Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Int32Type, Schema};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

fn path(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).display().to_string()
}

#[tokio::test]
async fn copy_from_csv_files_with_quotes_nulls_and_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        path(&dir, "a.csv"),
        "id,name,score\n1,\"Smith, J\",1.5\n2,,\n3,\"say \"\"hi\"\"\",3\n",
    )
    .unwrap();
    std::fs::write(path(&dir, "b.csv"), "id,name,score\n4,d,4\n").unwrap();
    std::fs::write(path(&dir, "bad.csv"), "id,name,score\n5,e,5\n6,f,lots\n").unwrap();
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT, score DOUBLE PRECISION)")
        .await
        .unwrap();
    let glob = path(&dir, "[ab].csv");
    let n = client
        .execute(
            &format!("COPY t FROM '{glob}' (FORMAT csv, HEADER true)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 4);
    let rows = client
        .query("SELECT id, name, score FROM t ORDER BY id", &[])
        .await
        .unwrap();
    let names: Vec<Option<String>> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(
        names,
        [
            Some("Smith, J".into()),
            None,
            Some("say \"hi\"".into()),
            Some("d".into())
        ]
    );
    // A bad value fails the whole COPY, naming the file, line and column.
    let bad = path(&dir, "bad.csv");
    let err = client
        .execute(&format!("COPY t FROM '{bad}' (FORMAT csv, HEADER)"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_TEXT_REPRESENTATION));
    let db = err.as_db_error().unwrap();
    let context = db.where_().unwrap_or_default();
    assert!(
        context.contains("line 3") && context.contains("bad.csv"),
        "{context}"
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 4, "nothing of the failed COPY is kept");
    // Missing files and relative paths are clear errors.
    let err = client
        .execute(
            &format!("COPY t FROM '{}' (FORMAT csv)", path(&dir, "none*.csv")),
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_FILE), "{err:?}");
    let err = client
        .execute("COPY t FROM 'relative.csv' (FORMAT csv)", &[])
        .await
        .unwrap_err();
    assert!(err
        .as_db_error()
        .unwrap()
        .message()
        .contains("relative path"));
}

/// A Parquet file with the table's column types is staged as a COPY's
/// text is (conformed, checked and compressed on every core), still all or
/// nothing, and its rows come back after kill -9.
#[tokio::test]
async fn a_big_parquet_copy_is_checked_whole_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let file = path(&dir, "big.parquet");
    let dupes = path(&dir, "dupes.parquet");
    let summary =
        "SELECT count(*)::text || ' ' || sum(id)::text || ' ' || count(DISTINCT flag)::text \
                   || ' ' || max(note) || ' ' || sum(price)::text FROM dst";
    let mut server = TestServer::start_with(&["--data-dir", data]);
    let client = server.connect().await;
    client
        .batch_execute(&format!(
            "CREATE TABLE src (id BIGINT NOT NULL, flag TEXT, note TEXT NOT NULL, price NUMERIC(15,2));
             INSERT INTO src SELECT g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'F' || (g % 3)::text END,
                    'note ' || g::text || ' of the file', g * 1.25
             FROM generate_series(1, 300000) g;
             COPY src TO '{file}' (FORMAT parquet);
             COPY (SELECT * FROM src WHERE id > 299990 UNION ALL SELECT * FROM src WHERE id = 299995)
               TO '{dupes}' (FORMAT parquet);
             CREATE TABLE dst (id BIGINT PRIMARY KEY, flag TEXT, note TEXT NOT NULL, price NUMERIC(15,2));"
        ))
        .await
        .unwrap();
    // A key repeated within the file: nothing is kept.
    let err = client
        .batch_execute(&format!("COPY dst FROM '{dupes}' (FORMAT parquet)"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err:?}");
    let n = client
        .execute(&format!("COPY dst FROM '{file}' (FORMAT parquet)"), &[])
        .await
        .unwrap();
    assert_eq!(n, 300_000);
    let before: String = client.query_one(summary, &[]).await.unwrap().get(0);
    assert_eq!(
        before,
        "300000 45000150000 3 note 99999 of the file 56250187500.00"
    );
    // Keys already in the table.
    let err = client
        .batch_execute(&format!("COPY dst FROM '{dupes}' (FORMAT parquet)"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err:?}");
    drop(client);
    server.stop_with("KILL");

    let server = TestServer::start_with(&["--data-dir", data]);
    let client = server.connect().await;
    let after: String = client.query_one(summary, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
    let same: i64 = client
        .query_one(
            "SELECT count(*) FROM src JOIN dst USING (id)
             WHERE (src.flag IS NOT DISTINCT FROM dst.flag) AND src.note = dst.note
               AND src.price = dst.price",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(same, 300_000);
}

#[tokio::test]
async fn copy_to_files_and_back_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE src (id INT, name TEXT, at TIMESTAMP);
             INSERT INTO src VALUES (1, 'a', '2024-01-02 03:04:05'), (2, NULL, NULL), (3, 'c,\"q\"', '2024-12-31 23:59:59');",
        )
        .await
        .unwrap();
    for (format, file) in [
        ("csv, HEADER", "out.csv"),
        ("text", "out.txt"),
        ("binary", "out.bin"),
        ("parquet", "out.parquet"),
        ("json", "out.jsonl"),
    ] {
        let file = path(&dir, file);
        let n = client
            .execute(&format!("COPY src TO '{file}' (FORMAT {format})"), &[])
            .await
            .unwrap();
        assert_eq!(n, 3, "{format}");
        client
            .batch_execute(
                "DROP TABLE IF EXISTS dst; CREATE TABLE dst (id INT, name TEXT, at TIMESTAMP)",
            )
            .await
            .unwrap();
        let n = client
            .execute(&format!("COPY dst FROM '{file}' (FORMAT {format})"), &[])
            .await
            .unwrap();
        assert_eq!(n, 3, "{format}");
        let same: i64 = client
            .query_one(
                "SELECT count(*) FROM src JOIN dst ON src.id = dst.id
                 AND (src.name IS NOT DISTINCT FROM dst.name) AND (src.at IS NOT DISTINCT FROM dst.at)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(same, 3, "{format} round trip");
    }
    // A query's rows, too; and formats that only files have are refused
    // over the wire.
    let file = path(&dir, "q.csv");
    client
        .execute(
            &format!("COPY (SELECT id * 10 FROM src) TO '{file}' (FORMAT csv)"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "10\n20\n30\n");
    let err = client
        .batch_execute("COPY src TO STDOUT (FORMAT parquet)")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
}

/// A Parquet file with a struct, a list and NULLs, written with arrow.
fn nested_parquet(file: &str) {
    let inner = Fields::from(vec![
        Field::new("x", DataType::Int32, true),
        Field::new("label", DataType::Utf8, true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("point", DataType::Struct(inner.clone()), true),
        Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            true,
        ),
        Field::new("note", DataType::Utf8, true),
    ]));
    let point = StructArray::new(
        inner,
        vec![
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("one"), Some("two"), None])),
        ],
        Some(vec![true, true, false].into()),
    );
    let tags = ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        None,
        Some(vec![]),
    ]);
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(point),
            Arc::new(tags),
            Arc::new(StringArray::from(vec![Some("a"), None, Some("c")])),
        ],
    )
    .unwrap();
    let out = std::fs::File::create(file).unwrap();
    let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(out, schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[tokio::test]
async fn files_are_queried_in_place_and_loaded_with_create_table_as() {
    let dir = tempfile::tempdir().unwrap();
    let parquet = path(&dir, "nested.parquet");
    nested_parquet(&parquet);
    std::fs::write(path(&dir, "p1.csv"), "k,v\n1,10\n2,20\n").unwrap();
    std::fs::write(path(&dir, "p2.csv"), "k,v\n3,30\n").unwrap();
    std::fs::write(
        path(&dir, "rows.jsonl"),
        "{\"a\":1,\"b\":\"x\"}\n{\"a\":2,\"b\":null}\n",
    )
    .unwrap();
    std::fs::write(path(&dir, "broken.parquet"), b"not parquet at all").unwrap();
    let server = TestServer::start();
    let client = server.connect().await;

    let row = client
        .query_one(
            &format!(
                "SELECT count(*), count(note), sum(point['x'])::bigint, max(array_length(tags, 1))::int
                 FROM read_parquet('{parquet}')"
            ),
            &[],
        )
        .await
        .unwrap();
    let (n, notes, xs, longest): (i64, i64, i64, i32) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((n, notes, xs, longest), (3, 2, 1, 2));

    let sum: i64 = client
        .query_one(
            &format!(
                "SELECT sum(v)::bigint FROM read_csv('{}')",
                path(&dir, "p*.csv")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(sum, 60);
    let nulls: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM read_json('{}') WHERE b IS NULL",
                path(&dir, "rows.jsonl")
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 1);

    client
        .batch_execute(&format!(
            "CREATE TABLE kv AS SELECT * FROM read_csv('{}')",
            path(&dir, "p*.csv")
        ))
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM kv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 3);

    let err = client
        .query(
            &format!(
                "SELECT * FROM read_parquet('{}')",
                path(&dir, "broken.parquet")
            ),
            &[],
        )
        .await
        .unwrap_err();
    let message = err.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("broken.parquet") && message.contains("Parquet"),
        "{message}"
    );
}

#[tokio::test]
async fn only_superusers_touch_server_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(path(&dir, "x.csv"), "a\n1\n").unwrap();
    let server = TestServer::start();
    let admin = server.connect().await;
    admin
        .batch_execute(
            "CREATE TABLE t (a INT); CREATE USER analyst; GRANT SELECT, INSERT ON t TO analyst",
        )
        .await
        .unwrap();
    // No passwords yet: a loopback login as the role needs none, and has
    // the role's privileges.
    let conn = format!(
        "host=127.0.0.1 port={} user=analyst dbname=quiver",
        server.port
    );
    let (analyst, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
    tokio::spawn(connection);
    let file = path(&dir, "x.csv");
    for statement in [
        format!("COPY t FROM '{file}' (FORMAT csv, HEADER)"),
        format!("COPY t TO '{}' (FORMAT csv)", path(&dir, "leak.csv")),
        format!("SELECT * FROM read_csv('{file}')"),
        "SELECT * FROM read_csv('/etc/passwd')".to_string(),
        "CREATE EXTERNAL TABLE pw STORED AS CSV LOCATION '/etc/passwd'".to_string(),
    ] {
        let err = analyst.batch_execute(&statement).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {err:?}"
        );
    }
    assert!(!dir.path().join("leak.csv").exists());
}

#[tokio::test]
async fn external_tables_read_their_files_in_place_and_survive_a_restart() {
    let files = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        path(&files, "people.csv"),
        "id,name\n1,ann\n2,\"b, c\"\n3,\n",
    )
    .unwrap();
    std::fs::write(path(&files, "semi.csv"), "id;name\n7;x\n").unwrap();
    std::fs::create_dir(files.path().join("pq")).unwrap();
    let data_dir = data.path().to_str().unwrap().to_string();
    let mut server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let people = path(&files, "people.csv");
    let pq = format!("{}/", path(&files, "pq"));
    client
        .batch_execute(&format!(
            "CREATE EXTERNAL TABLE people STORED AS CSV OPTIONS ('format.has_header' 'true') \
             LOCATION '{people}'; \
             CREATE EXTERNAL TABLE typed (id BIGINT, name VARCHAR) STORED AS CSV \
             OPTIONS ('has_header' 'true', 'delimiter' ';') LOCATION '{}'; \
             COPY (SELECT * FROM people) TO '{pq}part-1.parquet' (FORMAT parquet); \
             CREATE EXTERNAL TABLE facts STORED AS PARQUET LOCATION '{pq}'; \
             CREATE VIEW named AS SELECT name FROM people WHERE id < 3",
            path(&files, "semi.csv")
        ))
        .await
        .unwrap();
    let rows = client
        .query("SELECT id, name FROM people ORDER BY id", &[])
        .await
        .unwrap();
    let names: Vec<Option<String>> = rows.iter().map(|r| r.get(1)).collect();
    assert_eq!(names, [Some("ann".into()), Some("b, c".into()), None]);
    let typed = client
        .query_one("SELECT id, name FROM typed", &[])
        .await
        .unwrap();
    assert_eq!(typed.get::<_, i64>(0), 7);
    assert_eq!(typed.get::<_, String>(1), "x");
    // A new file in the directory shows up in the next query: nothing is
    // loaded.
    client
        .batch_execute(&format!(
            "COPY (SELECT id + 10 AS id, name FROM people) TO '{pq}part-2.parquet' (FORMAT parquet)"
        ))
        .await
        .unwrap();
    let total: i64 = client
        .query_one("SELECT sum(id)::bigint FROM facts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 6 + 36);
    // Missing files and relative paths are refused when the table is made.
    let err = client
        .batch_execute(&format!(
            "CREATE EXTERNAL TABLE nothing STORED AS CSV LOCATION '{}'",
            path(&files, "none-*.csv")
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_FILE), "{err:?}");
    let err = client
        .batch_execute("CREATE EXTERNAL TABLE rel STORED AS CSV LOCATION 'people.csv'")
        .await
        .unwrap_err();
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains("absolute"), "{message}");

    // After a crash, the definitions come back from the WAL, and after a
    // checkpoint from the manifest.
    drop(client);
    server.stop_with("KILL");
    let mut server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let total: i64 = client
        .query_one("SELECT sum(id)::bigint FROM facts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 42);
    client.batch_execute("CHECKPOINT").await.unwrap();
    drop(client);
    server.stop_with("KILL");
    let server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let named: Vec<String> = client
        .query("SELECT name FROM named ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(named, ["ann", "b, c"]);
    let (schema_rows, type_rows) = (
        client
            .query_one("SELECT count(*) FROM people", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        client
            .query_one("SELECT count(*) FROM typed", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
    );
    assert_eq!((schema_rows, type_rows), (3, 1));
    // DROP TABLE drops an external table (a view depending on it needs
    // CASCADE); the files stay.
    let err = client.batch_execute("DROP TABLE people").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::DEPENDENT_OBJECTS_STILL_EXIST));
    client
        .batch_execute("DROP TABLE people CASCADE; DROP TABLE typed, facts")
        .await
        .unwrap();
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname IN ('people', 'typed', 'facts', 'named')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    assert!(files.path().join("people.csv").exists());
}
