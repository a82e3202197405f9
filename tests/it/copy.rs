//! COPY FROM STDIN and COPY TO STDOUT over the wire with tokio-postgres:
//! text, CSV and binary, errors that name the line and column, and
//! all-or-nothing loads.

use crate::common;

use bytes::Bytes;
use futures::{SinkExt, TryStreamExt};

use common::{first_column, TestServer};

async fn copy_in(
    client: &tokio_postgres::Client,
    sql: &str,
    data: &str,
) -> Result<u64, tokio_postgres::Error> {
    let sink = client.copy_in(sql).await?;
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data.to_string())).await?;
    sink.finish().await
}

async fn copy_out(client: &tokio_postgres::Client, sql: &str) -> Vec<u8> {
    let stream = client.copy_out(sql).await.expect("copy out");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("copy data");
    chunks.concat()
}

async fn setup(client: &tokio_postgres::Client) {
    client
        .batch_execute(
            "CREATE TABLE t (id INT PRIMARY KEY, name TEXT, price NUMERIC(8,2), day DATE, ok BOOLEAN)",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn text_and_csv_round_trip() {
    let server = TestServer::start();
    let client = server.connect().await;
    setup(&client).await;
    let rows = copy_in(
        &client,
        "COPY t FROM STDIN",
        "1\tone\t1.50\t2024-01-02\tt\n2\ttab\\there\t\\N\t\\N\tf\n",
    )
    .await
    .unwrap();
    assert_eq!(rows, 2);
    let rows = copy_in(
        &client,
        "COPY t (id, name) FROM STDIN (FORMAT csv, HEADER true)",
        "id,name\n3,\"a, \"\"quoted\"\"\nvalue\"\n4,\n",
    )
    .await
    .unwrap();
    assert_eq!(rows, 2);
    let text = copy_out(&client, "COPY t TO STDOUT").await;
    assert_eq!(
        String::from_utf8(text).unwrap(),
        "1\tone\t1.50\t2024-01-02\tt\n2\ttab\\there\t\\N\t\\N\tf\n\
         3\ta, \"quoted\"\\nvalue\t\\N\t\\N\t\\N\n4\t\\N\t\\N\t\\N\t\\N\n"
    );
    let csv = copy_out(
        &client,
        "COPY (SELECT id, name FROM t WHERE id >= 3 ORDER BY id) TO STDOUT (FORMAT csv, HEADER)",
    )
    .await;
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        "id,name\n3,\"a, \"\"quoted\"\"\nvalue\"\n4,\n"
    );
}

#[tokio::test]
async fn binary_round_trip() {
    let server = TestServer::start();
    let client = server.connect().await;
    setup(&client).await;
    client
        .batch_execute("INSERT INTO t VALUES (1, 'x', 12345.67, '2000-01-01', true), (2, NULL, -0.5, NULL, NULL)")
        .await
        .unwrap();
    let data = copy_out(&client, "COPY t TO STDOUT (FORMAT binary)").await;
    assert!(data.starts_with(b"PGCOPY\n\xff\r\n\0"));
    client
        .batch_execute("CREATE TABLE u (id INT PRIMARY KEY, name TEXT, price NUMERIC(8,2), day DATE, ok BOOLEAN)")
        .await
        .unwrap();
    let sink = client
        .copy_in("COPY u FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data)).await.unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);
    let a = client
        .simple_query("SELECT * FROM t ORDER BY id")
        .await
        .unwrap();
    let b = client
        .simple_query("SELECT * FROM u ORDER BY id")
        .await
        .unwrap();
    let text = |m: &[tokio_postgres::SimpleQueryMessage]| {
        m.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                    (0..r.len())
                        .map(|i| r.get(i).map(str::to_string))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(text(&a), text(&b));
    assert_eq!(text(&b)[0][2].as_deref(), Some("12345.67"));
}

#[tokio::test]
async fn a_bad_row_names_line_and_column_and_keeps_nothing() {
    let server = TestServer::start();
    let client = server.connect().await;
    setup(&client).await;
    let err = copy_in(
        &client,
        "COPY t (id, name) FROM STDIN (FORMAT csv)",
        "1,a\n2,b\nthree,c\n",
    )
    .await
    .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "22P02");
    assert_eq!(
        db.message(),
        "invalid input syntax for type integer: \"three\""
    );
    assert_eq!(db.where_(), Some("COPY t, line 3, column id: \"three\""));
    let err = copy_in(&client, "COPY t (id, name) FROM STDIN", "1\ta\textra\n")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "22P04");
    // A duplicate key fails the whole COPY.
    let err = copy_in(&client, "COPY t (id) FROM STDIN", "7\n7\n")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "23505");
    let count: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);
    // The connection goes on.
    assert_eq!(
        copy_in(&client, "COPY t (id) FROM STDIN", "8\n")
            .await
            .unwrap(),
        1
    );
}

/// Numbers and dates in their plain forms and in the others PostgreSQL
/// reads, side by side in one COPY; the values and the error are
/// PostgreSQL 15's for the same data.
#[tokio::test]
async fn copy_reads_plain_and_other_number_forms_as_postgresql_does() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE v (a int2, b int4, c int8, d numeric(6,2), e date)")
        .await
        .unwrap();
    let data = "1,1,1,1.5,1996-03-13\n \
                2,+2, 2 ,1.005,1996-3-13\n\
                007,0070,00700,1e2,19960313\n\
                32767,2147483647,9223372036854775807,-2.5e+1,2024-02-29\n\
                -32768,-2147483648,-9223372036854775808,  12.5  ,  0001-01-01  \n\
                ,,,,\n";
    assert_eq!(
        copy_in(&client, "COPY v FROM STDIN (FORMAT csv)", data)
            .await
            .unwrap(),
        6
    );
    let rows: Vec<String> = first_column(
        &client,
        "SELECT concat_ws('|', a, b, c, d, e) FROM v ORDER BY c NULLS LAST",
    )
    .await;
    assert_eq!(
        rows,
        [
            "-32768|-2147483648|-9223372036854775808|12.50|0001-01-01",
            "1|1|1|1.50|1996-03-13",
            "2|2|2|1.01|1996-03-13",
            "7|70|700|100.00|1996-03-13",
            "32767|2147483647|9223372036854775807|-25.00|2024-02-29",
            "",
        ]
    );
    // Two bad fields: PostgreSQL names the first bad row, not the first
    // bad column.
    let err = copy_in(
        &client,
        "COPY v FROM STDIN (FORMAT csv)",
        "1,1,1,1,1996-01-01\n2,2,2,2,1996-13-01\n3,3,x,3,1996-01-01\n",
    )
    .await
    .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(
        db.where_(),
        Some("COPY v, line 2, column e: \"1996-13-01\"")
    );
    // A number of the right form that its type cannot hold is 22003.
    for (columns, data, message) in [
        (
            "a",
            "40000",
            "value \"40000\" is out of range for type smallint",
        ),
        (
            "b",
            "-2147483649",
            "value \"-2147483649\" is out of range for type integer",
        ),
        ("d", "12345.67", "numeric field overflow"),
        ("d", "1e4", "numeric field overflow"),
    ] {
        let err = copy_in(
            &client,
            &format!("COPY v ({columns}) FROM STDIN"),
            &format!("{data}\n"),
        )
        .await
        .unwrap_err();
        let db = err.as_db_error().expect("a server error");
        assert_eq!(
            (db.code().code(), db.message()),
            ("22003", message),
            "{data}"
        );
    }
    let err = copy_in(&client, "COPY v (a) FROM STDIN", "4x\n")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "22P02");
}

#[tokio::test]
async fn copy_in_a_transaction_rolls_back_with_it() {
    let server = TestServer::start();
    let client = server.connect().await;
    setup(&client).await;
    client.batch_execute("BEGIN").await.unwrap();
    copy_in(&client, "COPY t (id) FROM STDIN", "1\n2\n")
        .await
        .unwrap();
    let inside: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(inside, 2);
    client.batch_execute("ROLLBACK").await.unwrap();
    let after: i64 = client
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, 0);
}

#[tokio::test]
async fn copy_from_stdin_must_end_the_query_string() {
    let server = TestServer::start();
    let client = server.connect().await;
    setup(&client).await;
    let err = client
        .simple_query("COPY t (id) FROM STDIN; SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "0A000");
    // Binary data with a negative field size other than -1 is refused.
    let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
    data.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    data.extend_from_slice(&1i16.to_be_bytes());
    data.extend_from_slice(&(-7i32).to_be_bytes());
    data.extend_from_slice(&(-1i16).to_be_bytes());
    let sink = client
        .copy_in("COPY t (id) FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(data)).await.unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "22P04");
}

/// COPY reads dates and timestamps in PostgreSQL's forms, not only ISO
/// 8601, and names the value PostgreSQL would refuse too.
#[tokio::test]
async fn copy_reads_postgresql_date_forms() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE w (ts TIMESTAMP, d DATE)")
        .await
        .unwrap();
    let rows = copy_in(
        &client,
        "COPY w FROM STDIN",
        "2024-01-01 10:00\tJan 5 2024\n01/31/2024 23:59\t2024-02-02\n",
    )
    .await
    .unwrap();
    assert_eq!(rows, 2);
    let out = copy_out(&client, "COPY (SELECT * FROM w ORDER BY ts) TO STDOUT").await;
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "2024-01-01 10:00:00\t2024-01-05\n2024-01-31 23:59:00\t2024-02-02\n"
    );
    let err = copy_in(&client, "COPY w FROM STDIN", "garbage\t2024-01-01\n")
        .await
        .unwrap_err();
    let db = err.as_db_error().expect("a database error");
    assert!(db.message().contains("\"garbage\""), "{db:?}");
}

/// Rows of a text COPY: `id`, a text, and `id % 1000`.
fn numbered_rows(ids: std::ops::RangeInclusive<u64>) -> String {
    ids.map(|i| format!("{i}\trow number {i} of the load\t{}\n", i % 1000))
        .collect()
}

/// A COPY bigger than a parse chunk (8 MiB) is staged for its table chunk
/// by chunk while it arrives. It is still all or nothing: a key repeated
/// in a later chunk or a NULL for a NOT NULL column fails the whole load.
/// A load that succeeds is committed once, comes back after kill -9, and
/// its keys are still enforced.
#[tokio::test]
async fn a_load_of_many_chunks_is_all_or_nothing_and_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let rows = 600_000;
    let data = numbered_rows(1..=rows);
    assert!(data.len() > 2 * (8 << 20), "{} bytes", data.len());
    let summary = "SELECT count(*)::text || ' ' || sum(id)::text || ' ' || sum(n)::text \
                   || ' ' || max(s) FROM big";
    let mut server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (id BIGINT PRIMARY KEY, s TEXT NOT NULL, n INT)")
        .await
        .unwrap();
    let repeated = format!("{data}5\tagain\t0\n");
    let err = copy_in(&client, "COPY big FROM STDIN", &repeated)
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "23505", "{err:?}");
    assert_eq!(db.detail(), Some("Key (id)=(5) already exists."));
    let null = format!("{data}{}\t\\N\t0\n", rows + 1);
    let err = copy_in(&client, "COPY big FROM STDIN", &null)
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.code().code(), "23502", "{err:?}");
    assert_eq!(
        db.message(),
        "null value in column \"s\" of relation \"big\" violates not-null constraint"
    );
    assert_eq!(
        first_column::<i64>(&client, "SELECT count(*) FROM big").await,
        [0]
    );
    assert_eq!(
        copy_in(&client, "COPY big FROM STDIN", &data)
            .await
            .unwrap(),
        rows
    );
    let before: String = client.query_one(summary, &[]).await.unwrap().get(0);
    assert_eq!(
        before,
        "600000 180000300000 299700000 row number 99999 of the load"
    );
    drop(client);
    server.stop_with("KILL");

    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    let after: String = client.query_one(summary, &[]).await.unwrap().get(0);
    assert_eq!(before, after);
    let err = client
        .execute("INSERT INTO big VALUES (600000, 'again', 0)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.as_db_error().unwrap().code().code(), "23505");
    assert_eq!(
        copy_in(
            &client,
            "COPY big FROM STDIN",
            &numbered_rows(600_001..=600_002)
        )
        .await
        .unwrap(),
        2
    );
}

/// Rows staged for a table that another session alters before the COPY
/// ends go into the table as it is then, as an INSERT would put them.
#[tokio::test]
async fn a_table_altered_during_a_copy_gets_the_rows_in_its_new_shape() {
    let server = TestServer::start();
    let client = server.connect().await;
    let other = server.connect().await;
    client
        .batch_execute("CREATE TABLE a (id BIGINT, s TEXT, n INT)")
        .await
        .unwrap();
    let sink = client.copy_in("COPY a FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(Bytes::from(numbered_rows(1..=300_000)))
        .await
        .unwrap();
    other
        .batch_execute("ALTER TABLE a ADD COLUMN extra INT DEFAULT 7")
        .await
        .unwrap();
    sink.send(Bytes::from(numbered_rows(300_001..=400_000)))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 400_000);
    let summary: String = client
        .query_one(
            "SELECT count(*)::text || ' ' || sum(id)::text || ' ' || count(extra)::text \
             || ' ' || min(extra)::text || ' ' || max(extra)::text FROM a",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(summary, "400000 80000200000 400000 7 7");
}
