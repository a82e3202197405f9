//! tokio-postgres against a real server: simple and extended protocol,
//! every column type in text and binary, NULLs, errors, many connections.

use crate::common;
mod differential;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use common::TestServer;
use rust_decimal::Decimal;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

const ALL_TYPES: &str = "CREATE TABLE all_types (
    i2 SMALLINT, i4 INTEGER, i8 BIGINT, f4 REAL, f8 DOUBLE PRECISION,
    n NUMERIC(12,3), t TEXT, vc VARCHAR(10), c CHAR(3), b BOOLEAN,
    d DATE, tm TIME, ts TIMESTAMP, tz TIMESTAMPTZ,
    by BYTEA, u UUID, j JSON, jb JSONB)";

#[tokio::test]
async fn simple_query_creates_inserts_and_aggregates_with_a_join() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE dept (id INT NOT NULL, name TEXT);
             CREATE TABLE emp (id INT, dept_id INT, salary BIGINT);
             INSERT INTO dept VALUES (1, 'eng'), (2, 'ops');
             INSERT INTO emp VALUES (1, 1, 100), (2, 1, 150), (3, 2, 80);",
        )
        .await
        .unwrap();
    let rows = client
        .query(
            "SELECT d.name, sum(e.salary)::bigint AS total, count(*) FROM emp e JOIN dept d ON d.id = e.dept_id GROUP BY d.name ORDER BY d.name",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(got, vec![("eng".into(), 250, 2), ("ops".into(), 80, 1)]);
    // Postgres names: an alias, and a bare aggregate named after its function.
    assert_eq!(rows[0].columns()[1].name(), "total");
    assert_eq!(rows[0].columns()[2].name(), "count");
}

#[tokio::test]
async fn command_tags_report_row_counts() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (x INT)")
        .await
        .unwrap();
    let n = client
        .execute("INSERT INTO t VALUES (1), (2), (3)", &[])
        .await
        .unwrap();
    assert_eq!(n, 3);
    let messages = client
        .simple_query("INSERT INTO t SELECT x + 10 FROM t")
        .await
        .unwrap();
    assert!(messages
        .iter()
        .any(|m| matches!(m, SimpleQueryMessage::CommandComplete(3))));
}

#[tokio::test]
async fn every_type_round_trips_in_binary_through_parameters() {
    let server = TestServer::start();
    let client = server.connect().await;
    client.batch_execute(ALL_TYPES).await.unwrap();
    let insert = client
        .prepare("INSERT INTO all_types VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)")
        .await
        .unwrap();
    // Parameter types are inferred from the target columns.
    let expected_types = [
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::NUMERIC,
        Type::TEXT,
        Type::VARCHAR,
        Type::BPCHAR,
        Type::BOOL,
        Type::DATE,
        Type::TIME,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::BYTEA,
        Type::UUID,
        Type::JSON,
        Type::JSONB,
    ];
    assert_eq!(insert.params(), &expected_types);

    let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
    let tm = NaiveTime::from_hms_micro_opt(13, 45, 30, 250_000).unwrap();
    let ts = NaiveDateTime::new(d, tm);
    let tz: DateTime<Utc> = DateTime::from_naive_utc_and_offset(ts, Utc);
    let u = uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap();
    let j = serde_json::json!({"a": [1, 2]});
    let jb = serde_json::json!({"k": "v"});
    let n = Decimal::new(12345678, 3);
    let by: Vec<u8> = vec![0xde, 0xad, 0x00, 0xef];
    client
        .execute(
            &insert,
            &[
                &-32768i16,
                &2147483647i32,
                &i64::MAX,
                &1.5f32,
                &0.1f64,
                &n,
                &"hello",
                &"varchar",
                &"abc",
                &true,
                &d,
                &tm,
                &ts,
                &tz,
                &by,
                &u,
                &j,
                &jb,
            ],
        )
        .await
        .unwrap();
    // A row of NULLs through the same statement.
    let nulls: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![
        &None::<i16>,
        &None::<i32>,
        &None::<i64>,
        &None::<f32>,
        &None::<f64>,
        &None::<Decimal>,
        &None::<&str>,
        &None::<&str>,
        &None::<&str>,
        &None::<bool>,
        &None::<NaiveDate>,
        &None::<NaiveTime>,
        &None::<NaiveDateTime>,
        &None::<DateTime<Utc>>,
        &None::<Vec<u8>>,
        &None::<uuid::Uuid>,
        &None::<serde_json::Value>,
        &None::<serde_json::Value>,
    ];
    client.execute(&insert, &nulls).await.unwrap();

    // tokio-postgres reads results in binary format.
    let row = client
        .query_one("SELECT * FROM all_types WHERE i4 = $1", &[&2147483647i32])
        .await
        .unwrap();
    let column_types: Vec<Type> = row.columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(column_types, expected_types);
    assert_eq!(row.get::<_, i16>(0), -32768);
    assert_eq!(row.get::<_, i32>(1), 2147483647);
    assert_eq!(row.get::<_, i64>(2), i64::MAX);
    assert_eq!(row.get::<_, f32>(3), 1.5);
    assert_eq!(row.get::<_, f64>(4), 0.1);
    assert_eq!(row.get::<_, Decimal>(5), n);
    assert_eq!(row.get::<_, &str>(6), "hello");
    assert_eq!(row.get::<_, &str>(7), "varchar");
    assert_eq!(row.get::<_, &str>(8), "abc");
    assert!(row.get::<_, bool>(9));
    assert_eq!(row.get::<_, NaiveDate>(10), d);
    assert_eq!(row.get::<_, NaiveTime>(11), tm);
    assert_eq!(row.get::<_, NaiveDateTime>(12), ts);
    assert_eq!(row.get::<_, DateTime<Utc>>(13), tz);
    assert_eq!(row.get::<_, Vec<u8>>(14), by);
    assert_eq!(row.get::<_, uuid::Uuid>(15), u);
    assert_eq!(row.get::<_, serde_json::Value>(16), j);
    assert_eq!(row.get::<_, serde_json::Value>(17), jb);

    let row = client
        .query_one("SELECT * FROM all_types WHERE i4 IS NULL", &[])
        .await
        .unwrap();
    for i in 0..row.len() {
        assert!(
            row.try_get::<_, Option<String>>(i)
                .map(|v| v.is_none())
                .unwrap_or(true),
            "column {i} is not NULL"
        );
    }
    assert_eq!(row.get::<_, Option<i32>>(1), None);
    assert_eq!(row.get::<_, Option<uuid::Uuid>>(15), None);
}

#[tokio::test]
async fn every_type_reads_back_in_text_format() {
    let server = TestServer::start();
    let client = server.connect().await;
    client.batch_execute(ALL_TYPES).await.unwrap();
    client
        .batch_execute(
            "INSERT INTO all_types VALUES (1, 2, 3, 1.5, 2.25, 12345.678, 'hi', 'vc', 'ab', false,
             '2024-01-02', '03:04:05', '2024-01-02 03:04:05.5', '2024-01-02 03:04:05+01',
             '\\x0102', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', '[1, 2]', '{\"k\": 1}')",
        )
        .await
        .unwrap();
    let messages = client
        .simple_query("SELECT * FROM all_types")
        .await
        .unwrap();
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("a row");
    let values: Vec<&str> = (0..row.len()).map(|i| row.get(i).unwrap()).collect();
    assert_eq!(
        values,
        vec![
            "1",
            "2",
            "3",
            "1.5",
            "2.25",
            "12345.678",
            "hi",
            "vc",
            "ab ", // char(3), padded as PostgreSQL shows it
            "f",
            "2024-01-02",
            "03:04:05",
            "2024-01-02 03:04:05.5",
            "2024-01-02 02:04:05+00",
            "\\x0102",
            "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "[1, 2]",
            "{\"k\": 1}",
        ]
    );
}

#[tokio::test]
async fn parameters_are_inferred_in_queries() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE p (id BIGINT, name TEXT); INSERT INTO p VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        .await
        .unwrap();
    let stmt = client
        .prepare("SELECT name FROM p WHERE id > $1 AND name <> $2 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(stmt.params(), &[Type::INT8, Type::TEXT]);
    assert_eq!(stmt.columns()[0].type_(), &Type::TEXT);
    let rows = client.query(&stmt, &[&1i64, &"c"]).await.unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["b"]);
    // The same statement again, with other values.
    let rows = client.query(&stmt, &[&0i64, &"z"]).await.unwrap();
    assert_eq!(rows.len(), 3);
}

#[tokio::test]
async fn errors_carry_their_sqlstate_and_the_connection_survives() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE e (id INT NOT NULL, name VARCHAR(3))")
        .await
        .unwrap();
    let cases: &[(&str, &SqlState)] = &[
        ("SELECT * FROM nope", &SqlState::UNDEFINED_TABLE),
        ("SELEC 1", &SqlState::SYNTAX_ERROR),
        ("SELECT missing FROM e", &SqlState::UNDEFINED_COLUMN),
        ("SELECT 1 / 0", &SqlState::DIVISION_BY_ZERO),
        (
            "INSERT INTO e (name) VALUES ('a')",
            &SqlState::NOT_NULL_VIOLATION,
        ),
        (
            "INSERT INTO e VALUES (1, 'toolong')",
            &SqlState::STRING_DATA_RIGHT_TRUNCATION,
        ),
        (
            "SELECT 99999::smallint",
            &SqlState::NUMERIC_VALUE_OUT_OF_RANGE,
        ),
        ("CREATE TABLE e (x INT)", &SqlState::DUPLICATE_TABLE),
        ("SELECT 'abc'::int", &SqlState::INVALID_TEXT_REPRESENTATION),
    ];
    for (sql, code) in cases {
        // Both protocols: simple (batch_execute) and extended (query).
        let err = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(err.code(), Some(*code), "simple protocol: {sql}: {err:?}");
        let err = client.query(*sql, &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(*code), "extended protocol: {sql}: {err:?}");
    }
    // Syntax errors read as PostgreSQL's, with the position psql points at.
    for (sql, message, position) in [
        ("SELEC 1", "syntax error at or near \"SELEC\"", 1),
        ("SELECT 1 +", "syntax error at end of input", 11),
        ("SELECT 1;\nSELECT 2 3", "syntax error at or near \"3\"", 20),
        (
            "SELECT 'abc",
            "unterminated quoted string at or near \"'abc\"",
            8,
        ),
    ] {
        for err in [
            client.batch_execute(sql).await.unwrap_err(),
            client.query(sql, &[]).await.unwrap_err(),
        ] {
            let db = err.as_db_error().unwrap();
            assert_eq!(db.code(), &SqlState::SYNTAX_ERROR, "{sql}");
            assert_eq!(db.message(), message, "{sql}");
            assert_eq!(
                db.position(),
                Some(&tokio_postgres::error::ErrorPosition::Original(position)),
                "{sql}"
            );
        }
    }
    let one: i64 = client
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
}

#[tokio::test]
async fn fifty_concurrent_connections_each_see_all_rows() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE c (conn INT, i INT)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for conn in 0..50 {
        let conn_string = server.conn_string();
        tasks.push(tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&conn_string, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            for i in 0..10 {
                client
                    .execute("INSERT INTO c VALUES ($1, $2)", &[&conn, &i])
                    .await
                    .unwrap();
            }
            let mine: i64 = client
                .query_one("SELECT count(*) FROM c WHERE conn = $1", &[&conn])
                .await
                .unwrap()
                .get(0);
            assert_eq!(mine, 10);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total: i64 = setup
        .query_one("SELECT count(*) FROM c", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 500);
}

#[tokio::test]
async fn startup_reports_the_parameters_clients_read() {
    let server = TestServer::start();
    let client = server.connect().await;
    let rows = client.simple_query("SHOW server_version").await.unwrap();
    let version = rows
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    assert!(version.starts_with("16"), "{version}");
    // A client can change a setting and read it back.
    client
        .batch_execute("SET application_name = 'wire-test'")
        .await
        .unwrap();
    let rows = client.query("SHOW application_name", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "wire-test");
}

/// Start-up `options` (libpq's PGOPTIONS) set settings for the session;
/// a bad one fails the login with a FATAL error saying why, as in
/// PostgreSQL; other start-up parameters are settings too, and win over
/// `options`.
#[tokio::test]
async fn startup_options_set_settings() {
    let server = TestServer::start();
    let connect = |options: &'static str, application_name: Option<&'static str>| {
        let mut config: tokio_postgres::Config = server.conn_string().parse().unwrap();
        config.options(options);
        if let Some(name) = application_name {
            config.application_name(name);
        }
        async move { config.connect(tokio_postgres::NoTls).await }
    };
    let (client, connection) = connect(
        r"-c statement_timeout=5000 --search-path=pg_catalog -capplication_name=a\ b",
        None,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    for (name, want) in [
        ("statement_timeout", "5000"),
        ("search_path", "pg_catalog"),
        ("application_name", "a b"),
    ] {
        let rows = client.query(&format!("SHOW {name}"), &[]).await.unwrap();
        assert_eq!(rows[0].get::<_, &str>(0), want, "{name}");
    }
    let (client, connection) = connect("-c application_name=from_options", Some("param"))
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client.query("SHOW application_name", &[]).await.unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "param");
    for (options, sqlstate) in [
        ("-c nosuch=1", SqlState::UNDEFINED_OBJECT),
        (
            "-c statement_timeout=abc",
            SqlState::INVALID_PARAMETER_VALUE,
        ),
        ("-X", SqlState::INVALID_PARAMETER_VALUE),
    ] {
        let err = connect(options, None).await.err().expect(options);
        assert_eq!(err.code(), Some(&sqlstate), "{options}: {err}");
    }
}

#[tokio::test]
async fn casts_to_uuid_and_jsonb_report_their_types() {
    let server = TestServer::start();
    let client = server.connect().await;
    let row = client
        .query_one(
            "SELECT 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'::uuid AS u, '{\"a\": 1}'::jsonb AS j",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.columns()[0].type_(), &Type::UUID);
    assert_eq!(row.columns()[1].type_(), &Type::JSONB);
    assert_eq!(
        row.get::<_, uuid::Uuid>(0),
        uuid::Uuid::parse_str("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").unwrap()
    );
    assert_eq!(
        row.get::<_, serde_json::Value>(1),
        serde_json::json!({"a": 1})
    );
}

/// jsonb through the extended protocol, as an ORM sends it: a binary
/// jsonb parameter stored in its canonical text, read back binary, and
/// the operators with parameters for the key, the path and the value.
#[tokio::test]
async fn jsonb_parameters_operators_and_results() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE docs (id INT PRIMARY KEY, body JSONB)")
        .await
        .unwrap();
    let body =
        serde_json::json!({"user": {"name": "ann", "id": 7}, "tags": ["a", "b"], "b": 1, "a": 2});
    client
        .execute("INSERT INTO docs VALUES ($1, $2)", &[&1i32, &body])
        .await
        .unwrap();
    let row = client
        .query_one("SELECT body, body ->> 'tags' FROM docs WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(row.columns()[0].type_(), &Type::JSONB);
    assert_eq!(row.get::<_, serde_json::Value>(0), body);
    // Stored canonical: keys ordered, ", " between items.
    assert_eq!(row.get::<_, String>(1), r#"["a", "b"]"#);
    let row = client
        .query_one(
            "SELECT body -> $1 ->> $2, body #>> $3, body @> $4, body ? $5 FROM docs",
            &[
                &"user",
                &"name",
                &vec!["tags", "1"],
                &serde_json::json!({"user": {"id": 7}}),
                &"tags",
            ],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ann");
    assert_eq!(row.get::<_, String>(1), "b");
    assert!(row.get::<_, bool>(2));
    assert!(row.get::<_, bool>(3));
    let err = client
        .query_one("SELECT '{\"a\": 01}'::jsonb", &[])
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&SqlState::INVALID_TEXT_REPRESENTATION),
        "{err}"
    );
}

/// pg_stat_activity lists every connected session with what it is doing;
/// pg_backend_pid() and current_user are the asking session's own.
#[tokio::test]
async fn pg_stat_activity_shows_every_session() {
    let server = TestServer::start();
    let watcher = server.connect().await;
    let other = server.connect().await;
    other
        .batch_execute("SET application_name = 'loader'; BEGIN; SELECT 1")
        .await
        .unwrap();
    let rows = watcher
        .query(
            "SELECT pid, usename, application_name, state, query, pid = pg_backend_pid() AS me \
             FROM pg_stat_activity ORDER BY application_name",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let loader = &rows[1];
    assert_eq!(loader.get::<_, &str>("application_name"), "loader");
    assert_eq!(loader.get::<_, &str>("state"), "idle in transaction");
    assert_eq!(loader.get::<_, &str>("usename"), "tester");
    assert!(!loader.get::<_, bool>("me"));
    let me = &rows[0];
    assert_eq!(me.get::<_, &str>("state"), "active");
    assert!(me.get::<_, bool>("me"));
    drop(other);
    // A closed connection leaves the list.
    for _ in 0..50 {
        let n: i64 = watcher
            .query_one("SELECT count(*) FROM pg_stat_activity", &[])
            .await
            .unwrap()
            .get(0);
        if n == 1 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the closed session stayed in pg_stat_activity");
}

/// Prepared lookups on a unique key are answered by a key probe: the
/// answers must be a scan's, inside and outside transactions, for missing
/// keys and NULL, for text and two-column keys, and after the table is
/// replaced under the prepared statement.
#[tokio::test]
async fn prepared_key_lookups_answer_as_a_scan_would() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE acct (id BIGINT PRIMARY KEY, code TEXT UNIQUE, region INT, n INT,
                                balance NUMERIC(12,2), opened DATE, UNIQUE (region, n));
             INSERT INTO acct SELECT x, 'c' || x, x % 10, x / 10, x * 1.5, DATE '2020-01-01' + x::int
               FROM generate_series(1, 5000) t(x);",
        )
        .await
        .unwrap();
    let by_id = client
        .prepare("SELECT id, code, balance, opened FROM acct WHERE id = $1")
        .await
        .unwrap();
    let row = client.query_one(&by_id, &[&42i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 42);
    assert_eq!(row.get::<_, String>(1), "c42");
    assert_eq!(row.get::<_, Decimal>(2), Decimal::new(6300, 2));
    assert_eq!(
        row.get::<_, NaiveDate>(3),
        NaiveDate::from_ymd_opt(2020, 2, 12).unwrap()
    );
    assert!(client.query(&by_id, &[&9999i64]).await.unwrap().is_empty());
    assert!(client
        .query(&by_id, &[&None::<i64>])
        .await
        .unwrap()
        .is_empty());
    // Column names and order as written, reversed comparison.
    let reversed = client
        .prepare("SELECT balance AS b, id FROM acct WHERE $1 = id")
        .await
        .unwrap();
    let row = client.query_one(&reversed, &[&7i64]).await.unwrap();
    assert_eq!(row.columns()[0].name(), "b");
    assert_eq!(row.get::<_, i64>(1), 7);
    // A text key and a two-column key.
    let by_code = client
        .prepare("SELECT id FROM acct WHERE code = $1")
        .await
        .unwrap();
    let row = client.query_one(&by_code, &[&"c77"]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 77);
    let by_pair = client
        .prepare("SELECT id FROM acct WHERE region = $1 AND n = $2")
        .await
        .unwrap();
    let row = client.query_one(&by_pair, &[&3i32, &12i32]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 123);
    // A non-unique index: every row with the key, as a scan finds them.
    client
        .batch_execute("CREATE INDEX acct_region ON acct (region)")
        .await
        .unwrap();
    let by_region = client
        .prepare("SELECT id FROM acct WHERE region = $1")
        .await
        .unwrap();
    for region in [0i32, 3, 9, 11] {
        let ids = |rows: Vec<tokio_postgres::Row>| {
            let mut ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
            ids.sort_unstable();
            ids
        };
        let found = ids(client.query(&by_region, &[&region]).await.unwrap());
        let scan = format!("SELECT id FROM acct WHERE region + 0 = {region}");
        let scanned = ids(client.query(&scan, &[]).await.unwrap());
        assert_eq!(found, scanned, "region {region}");
    }
    assert_eq!(client.query(&by_region, &[&3i32]).await.unwrap().len(), 500);
    // A transaction sees its own changes; others do not until COMMIT.
    let other = server.connect().await;
    let other_by_id = other
        .prepare("SELECT code FROM acct WHERE id = $1")
        .await
        .unwrap();
    client
        .batch_execute(
            "BEGIN; INSERT INTO acct VALUES (6000, 'new', NULL, NULL, 0, NULL); DELETE FROM acct WHERE id = 5;",
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .query_one(&by_id, &[&6000i64])
            .await
            .unwrap()
            .get::<_, String>(1),
        "new"
    );
    assert!(client.query(&by_id, &[&5i64]).await.unwrap().is_empty());
    assert!(other
        .query(&other_by_id, &[&6000i64])
        .await
        .unwrap()
        .is_empty());
    assert_eq!(other.query(&other_by_id, &[&5i64]).await.unwrap().len(), 1);
    client.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        other
            .query_one(&other_by_id, &[&6000i64])
            .await
            .unwrap()
            .get::<_, String>(0),
        "new"
    );
    assert!(other
        .query(&other_by_id, &[&5i64])
        .await
        .unwrap()
        .is_empty());
    // The table replaced under the prepared statement: the new one answers.
    other
        .batch_execute(
            "DROP TABLE acct; CREATE TABLE acct (id BIGINT PRIMARY KEY, code TEXT);
             INSERT INTO acct VALUES (1, 'replaced');",
        )
        .await
        .unwrap();
    let row = other.query_one(&other_by_id, &[&1i64]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "replaced");
}

async fn connect_to(
    server: &TestServer,
    user: &str,
    dbname: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut params = format!("host=127.0.0.1 port={} user={user}", server.port);
    if let Some(dbname) = dbname {
        params.push_str(&format!(" dbname={dbname}"));
    }
    server.try_connect(&params).await
}

#[tokio::test]
async fn the_server_has_one_database_and_postgres_is_its_alias() {
    let server = TestServer::start();
    for (dbname, expected) in [(Some("quiver"), "quiver"), (Some("postgres"), "quiver")] {
        let client = connect_to(&server, "tester", dbname).await.unwrap();
        let row = client
            .query_one(
                "SELECT current_database(), (SELECT string_agg(datname, ',') FROM pg_database)",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), expected, "{dbname:?}");
        assert_eq!(row.get::<_, String>(1), expected, "{dbname:?}");
    }
    // No database named: libpq's default is the user's name.
    assert!(connect_to(&server, "quiver", None).await.is_ok());
    for (user, dbname) in [
        ("tester", Some("nope")),
        ("tester", Some("Quiver")),
        ("tester", None),
    ] {
        let err = connect_to(&server, user, dbname).await.err().unwrap();
        assert_eq!(
            err.code(),
            Some(&SqlState::INVALID_CATALOG_NAME),
            "{dbname:?}: {err:?}"
        );
        let wanted = dbname.unwrap_or(user);
        assert_eq!(
            err.as_db_error().unwrap().message(),
            format!("database \"{wanted}\" does not exist")
        );
    }

    // `--database` names it otherwise.
    let server = TestServer::start_with(&["--memory", "--database", "analytics"]);
    let client = connect_to(&server, "tester", Some("analytics"))
        .await
        .unwrap();
    let name: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "analytics");
    assert!(connect_to(&server, "tester", Some("postgres"))
        .await
        .is_ok());
    let err = connect_to(&server, "tester", Some("quiver"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.code(), Some(&SqlState::INVALID_CATALOG_NAME));
}

/// An interval in binary: (microseconds, days, months), as PostgreSQL
/// sends it.
#[derive(Debug, PartialEq)]
struct RawInterval(i64, i32, i32);

impl<'a> tokio_postgres::types::FromSql<'a> for RawInterval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let micros = i64::from_be_bytes(raw[0..8].try_into()?);
        let days = i32::from_be_bytes(raw[8..12].try_into()?);
        let months = i32::from_be_bytes(raw[12..16].try_into()?);
        Ok(RawInterval(micros, days, months))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

#[tokio::test]
async fn a_timestamp_difference_is_an_interval_of_days_and_time_in_binary() {
    let server = TestServer::start();
    let client = server.connect().await;
    // PostgreSQL 15 sends (43200000000, 9, 0) and (-43200500000, -9, 0).
    let row = client
        .query_one(
            "SELECT timestamp '2024-03-10 12:00' - timestamp '2024-03-01 00:00',
                    timestamp '2024-03-01' - timestamp '2024-03-10 12:00:00.5'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.columns()[0].type_(), &Type::INTERVAL);
    assert_eq!(
        row.get::<_, RawInterval>(0),
        RawInterval(43_200_000_000, 9, 0)
    );
    assert_eq!(
        row.get::<_, RawInterval>(1),
        RawInterval(-43_200_500_000, -9, 0)
    );
}
