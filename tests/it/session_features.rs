//! What applications use between their queries: LISTEN/NOTIFY between
//! connections, advisory locks that make a second session wait, and
//! sequences shared by many sessions at once.

use crate::common::{first_column, TestServer};

use std::collections::HashSet;
use std::time::Duration;

use futures::{stream, StreamExt};
use tokio_postgres::{AsyncMessage, NoTls};

/// A client whose notifications arrive on a channel.
async fn listener(
    server: &TestServer,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<tokio_postgres::Notification>,
) {
    let (client, mut connection) = tokio_postgres::connect(&server.conn_string(), NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(n) = message {
                let _ = tx.send(n);
            }
        }
    });
    (client, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_arrive_after_commit_in_commit_order() {
    let server = TestServer::start();
    let (listening, mut inbox) = listener(&server).await;
    listening
        .batch_execute("LISTEN jobs; LISTEN \"Other\"")
        .await
        .unwrap();
    let sender = server.connect().await;
    let sender_pid: i32 = sender
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);

    sender.batch_execute("NOTIFY jobs, 'one'").await.unwrap();
    // In a block: nothing until COMMIT; duplicates are folded; a rolled
    // back block sends nothing.
    sender
        .batch_execute(
            "BEGIN; NOTIFY jobs, 'two'; NOTIFY jobs, 'two'; SELECT pg_notify('Other', 'three')",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(inbox.try_recv().is_ok(), "'one' was sent before the block");
    assert!(inbox.try_recv().is_err(), "nothing of the open block yet");
    sender.batch_execute("COMMIT").await.unwrap();
    sender
        .batch_execute("BEGIN; NOTIFY jobs, 'never'; ROLLBACK")
        .await
        .unwrap();
    sender
        .batch_execute("NOTIFY unheard, 'x'; NOTIFY jobs")
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 3 {
        let n = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
            .await
            .expect("a notification within 5 s")
            .unwrap();
        assert_eq!(n.process_id(), sender_pid);
        got.push((n.channel().to_string(), n.payload().to_string()));
    }
    assert_eq!(
        got,
        vec![
            ("jobs".into(), "two".into()),
            ("Other".into(), "three".into()),
            ("jobs".into(), String::new()),
        ]
    );

    // A listener inside a block receives after its block ends.
    listening.batch_execute("BEGIN").await.unwrap();
    sender.batch_execute("NOTIFY jobs, 'later'").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        inbox.try_recv().is_err(),
        "held while the listener is in a block"
    );
    listening.batch_execute("COMMIT").await.unwrap();
    let n = tokio::time::timeout(Duration::from_secs(5), inbox.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.payload(), "later");

    let err = sender
        .batch_execute(&format!("NOTIFY jobs, '{}'", "x".repeat(8000)))
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22023");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advisory_locks_wait_and_a_timeout_ends_the_wait() {
    let server = TestServer::start();
    let first = server.connect().await;
    let second = server.connect().await;
    first
        .batch_execute("SELECT pg_advisory_lock(5); SELECT pg_advisory_lock_shared(6)")
        .await
        .unwrap();
    let try_lock = |sql: &'static str| {
        let second = &second;
        async move { second.query_one(sql, &[]).await.unwrap().get::<_, bool>(0) }
    };
    assert!(!try_lock("SELECT pg_try_advisory_lock(5)").await);
    assert!(try_lock("SELECT pg_try_advisory_lock_shared(6)").await);
    assert!(!try_lock("SELECT pg_try_advisory_lock(6)").await);

    // A wait ends with 57014 at statement_timeout, holding nothing.
    second
        .batch_execute("SET statement_timeout = 300")
        .await
        .unwrap();
    let err = second
        .batch_execute("SELECT pg_advisory_lock(5)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    second
        .batch_execute("RESET statement_timeout")
        .await
        .unwrap();

    // A wait that the holder's unlock ends.
    let waiting = tokio::spawn({
        let conn = server.conn_string();
        async move {
            let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
            tokio::spawn(connection);
            client
                .batch_execute("SELECT pg_advisory_lock(5)")
                .await
                .unwrap();
            client
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE objid = 5 AND granted AND pid = pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let waits: i64 = first
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE objid = 5 AND NOT granted",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(waits, 1, "pg_locks shows the waiting session");
    first
        .batch_execute("SELECT pg_advisory_unlock(5)")
        .await
        .unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap(),
        1
    );

    // Transaction-level locks go at the end of their transaction.
    second
        .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(9)")
        .await
        .unwrap();
    assert!(!first
        .query_one("SELECT pg_try_advisory_lock(9)", &[])
        .await
        .unwrap()
        .get::<_, bool>(0));
    second.batch_execute("ROLLBACK").await.unwrap();
    assert!(first
        .query_one("SELECT pg_try_advisory_lock(9)", &[])
        .await
        .unwrap()
        .get::<_, bool>(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_never_get_the_same_sequence_value() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE SEQUENCE shared_seq; CREATE TABLE keyed (id BIGSERIAL PRIMARY KEY, who INT)",
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for who in 0..8 {
        let conn = server.conn_string();
        tasks.push(tokio::spawn(async move {
            let (client, connection) = tokio_postgres::connect(&conn, NoTls).await.unwrap();
            tokio::spawn(connection);
            let mut values = Vec::new();
            for _ in 0..25 {
                let rows = client
                    .query(
                        "SELECT nextval('shared_seq') FROM generate_series(1, 7)",
                        &[],
                    )
                    .await
                    .unwrap();
                values.extend(rows.iter().map(|r| r.get::<_, i64>(0)));
                client
                    .execute("INSERT INTO keyed (who) VALUES ($1)", &[&who])
                    .await
                    .unwrap();
            }
            values
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        for value in task.await.unwrap() {
            assert!(seen.insert(value), "nextval handed out {value} twice");
        }
    }
    assert_eq!(seen.len(), 8 * 25 * 7);
    let row = setup
        .query_one(
            "SELECT count(*), count(DISTINCT id), max(id) FROM keyed",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 200);
    assert_eq!(row.get::<_, i64>(1), 200);
    assert_eq!(row.get::<_, i64>(2), 200, "no key skipped without a crash");
}

/// A sequence created and used inside a transaction, then a checkpoint,
/// then kill -9: the values the transaction took are not handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_made_in_a_transaction_keeps_its_values_across_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    {
        let server = TestServer::start_with(&["--data-dir", &data_dir]);
        let client = server.connect().await;
        client
            .batch_execute(
                "BEGIN;
                 CREATE SEQUENCE made_in_tx;
                 CREATE TABLE tx_keys (id SERIAL, v INT);
                 SELECT nextval('made_in_tx') FROM generate_series(1, 5);
                 INSERT INTO tx_keys (v) VALUES (1), (2), (3);
                 COMMIT;
                 CHECKPOINT;",
            )
            .await
            .unwrap();
        // Dropped: kill -9.
    }
    let server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let next: i64 = client
        .query_one("SELECT nextval('made_in_tx')", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        next > 5,
        "nextval gave {next}, which the transaction had taken"
    );
    let key: i32 = client
        .query_one("INSERT INTO tx_keys (v) VALUES (4) RETURNING id", &[])
        .await
        .unwrap()
        .get(0);
    assert!(key > 3, "SERIAL gave {key} again");
}

/// What a migration does in one transaction (create a table, fill it,
/// add a column and a unique index), some of it before a checkpoint and
/// some after, then kill -9: the indexes come back and are enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn indexes_and_altered_tables_come_back_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    {
        let server = TestServer::start_with(&["--data-dir", &data_dir]);
        let client = server.connect().await;
        client
            .batch_execute(
                "BEGIN;
                 CREATE TABLE accounts (id INT PRIMARY KEY, email TEXT);
                 INSERT INTO accounts VALUES (1, 'a@x'), (2, 'b@x');
                 ALTER TABLE accounts ADD COLUMN region TEXT DEFAULT 'eu';
                 CREATE UNIQUE INDEX accounts_email ON accounts (email);
                 CREATE INDEX ON accounts (region);
                 INSERT INTO accounts VALUES (3, 'c@x', 'us');
                 COMMIT;
                 CHECKPOINT;
                 CREATE TABLE events (id INT, kind TEXT);
                 INSERT INTO events VALUES (1, 'a');
                 BEGIN;
                 CREATE UNIQUE INDEX events_id ON events (id);
                 DROP INDEX accounts_region_idx;
                 COMMIT;",
            )
            .await
            .unwrap();
        // Dropped: kill -9.
    }
    let server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let indexes: Vec<String> = client
        .query(
            "SELECT indexname FROM pg_indexes WHERE tablename IN ('accounts', 'events') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes, ["accounts_email", "accounts_pkey", "events_id"]);
    let rows: i64 = client
        .query_one(
            "SELECT count(*) FROM accounts WHERE region IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 3);
    for (statement, index) in [
        ("INSERT INTO accounts VALUES (4, 'a@x')", "accounts_email"),
        ("INSERT INTO events VALUES (1, 'b')", "events_id"),
    ] {
        let err = client.batch_execute(statement).await.unwrap_err();
        let db = err.as_db_error().expect("a database error");
        assert_eq!(
            db.code(),
            &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
        );
        assert!(db.message().contains(index), "{statement}: {db:?}");
    }
}

/// Foreign keys made before a checkpoint and after it, then kill -9: they
/// come back, and are enforced (both ways) after recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_keys_are_enforced_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    {
        let server = TestServer::start_with(&["--data-dir", &data_dir]);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE customers (id INT PRIMARY KEY);
                 CREATE TABLE orders (id INT PRIMARY KEY, customer INT REFERENCES customers ON DELETE CASCADE);
                 INSERT INTO customers VALUES (1), (2);
                 INSERT INTO orders VALUES (10, 1), (11, 2);
                 CHECKPOINT;
                 BEGIN;
                 CREATE TABLE lines (order_id INT, n INT);
                 ALTER TABLE lines ADD CONSTRAINT lines_order FOREIGN KEY (order_id) REFERENCES orders (id);
                 INSERT INTO lines VALUES (10, 1);
                 COMMIT;
                 ALTER TABLE customers RENAME TO clients;",
            )
            .await
            .unwrap();
        // Dropped: kill -9.
    }
    let server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let code = |e: tokio_postgres::Error| e.as_db_error().map(|d| d.code().clone());
    for statement in [
        "INSERT INTO orders VALUES (12, 9)",
        "INSERT INTO lines VALUES (99, 1)",
        // Order 10 has a line, which has no action: the cascade from
        // clients stops there.
        "DELETE FROM clients WHERE id = 1",
    ] {
        let err = client.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            code(err),
            Some(tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION),
            "{statement}"
        );
    }
    client
        .batch_execute("DELETE FROM clients WHERE id = 2")
        .await
        .unwrap();
    let orders: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 1, "the cascade removed customer 2's order");
    let keys: Vec<String> = first_column(
        &client,
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contype = 'f' ORDER BY conname",
    )
    .await;
    assert_eq!(
        keys,
        [
            "FOREIGN KEY (order_id) REFERENCES orders(id)",
            "FOREIGN KEY (customer) REFERENCES clients(id) ON DELETE CASCADE",
        ]
    );
}

/// FETCH and MOVE through the extended protocol (as psycopg 3 sends them
/// for binary and scrollable named cursors): FETCH describes the cursor's
/// columns and answers in the Bind's format; MOVE answers its row count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_and_move_work_as_prepared_statements() {
    let server = TestServer::start();
    let mut client = server.connect().await;
    let txn = client.transaction().await.unwrap();
    txn.batch_execute(
        "DECLARE c SCROLL CURSOR FOR SELECT g AS id, 'n' || g AS note \
         FROM generate_series(1, 20) g ORDER BY g",
    )
    .await
    .unwrap();
    let rows = txn.query("FETCH 3 FROM c", &[]).await.unwrap();
    let got: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, [(1, "n1".into()), (2, "n2".into()), (3, "n3".into())]);
    assert_eq!(txn.execute("MOVE FORWARD 5 FROM c", &[]).await.unwrap(), 5);
    let row = txn.query_one("FETCH NEXT FROM c", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 9);
    // A signed count moves backward.
    assert_eq!(txn.execute("MOVE -3 FROM c", &[]).await.unwrap(), 3);
    let row = txn.query_one("FETCH -1 FROM c", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 5);
    let err = txn.query("FETCH 1 FROM missing", &[]).await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "34000");
}

/// A temporary table is its session's alone: another session's same name
/// finds the permanent table, the table goes when its session ends, and
/// one left by a crash is gone after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_tables_belong_to_their_session_and_go_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap().to_string();
    let temp_schemas = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'pg_temp%'";
    {
        let server = TestServer::start_with(&["--data-dir", &data_dir]);
        let owner = server.connect().await;
        let other = server.connect().await;
        owner
            .batch_execute(
                "CREATE TABLE shared (v TEXT);
                 INSERT INTO shared VALUES ('permanent');
                 CREATE TEMP TABLE shared (v TEXT);
                 INSERT INTO shared VALUES ('temporary');",
            )
            .await
            .unwrap();
        let seen = "SELECT v FROM shared";
        let v: String = owner.query_one(seen, &[]).await.unwrap().get(0);
        assert_eq!(v, "temporary");
        let v: String = other.query_one(seen, &[]).await.unwrap().get(0);
        assert_eq!(v, "permanent");
        drop(owner);
        // The session's end drops its schema, a moment after the client goes.
        let mut left = 1;
        for _ in 0..100 {
            left = other
                .query_one(temp_schemas, &[])
                .await
                .unwrap()
                .get::<_, i64>(0);
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(
            left, 0,
            "the ended session's temporary schema is still there"
        );
        other
            .batch_execute("CREATE TEMP TABLE crashed AS SELECT 1 AS x; CHECKPOINT")
            .await
            .unwrap();
        assert_eq!(
            other
                .query_one(temp_schemas, &[])
                .await
                .unwrap()
                .get::<_, i64>(0),
            1
        );
        // Dropped: kill -9, with the session still connected.
    }
    let server = TestServer::start_with(&["--data-dir", &data_dir]);
    let client = server.connect().await;
    let left: i64 = client.query_one(temp_schemas, &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "a crashed session's temporary tables came back");
    let v: String = client
        .query_one("SELECT v FROM shared", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "permanent");
}
