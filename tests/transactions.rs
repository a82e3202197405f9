//! Transactions across real connections: isolation, the 40001 rule,
//! rollback, and the client libraries' transaction helpers.

mod common;

use common::TestServer;
use tokio_postgres::error::SqlState;

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn no_dirty_reads_and_no_non_repeatable_reads() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)")
        .await
        .unwrap();

    // B's uncommitted rows are invisible to A.
    b.batch_execute("BEGIN; INSERT INTO t VALUES (2), (3)")
        .await
        .unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM t").await, 1);
    assert_eq!(
        count(&b, "SELECT count(*) FROM t").await,
        3,
        "B sees its own rows"
    );

    // A's transaction keeps its snapshot while B commits.
    a.batch_execute("BEGIN").await.unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM t").await, 1);
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        count(&a, "SELECT count(*) FROM t").await,
        1,
        "repeatable read"
    );
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM t").await, 3);
}

#[tokio::test]
async fn the_second_to_change_rows_of_a_table_gets_a_serialization_failure() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (x INT); INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; UPDATE t SET x = x + 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; DELETE FROM t").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let err = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(
        err.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE),
        "{err:?}"
    );
    // B's transaction is gone, none of it applied; B can go on.
    assert_eq!(count(&b, "SELECT count(*) FROM t WHERE x = 2").await, 1);
}

#[tokio::test]
async fn concurrent_inserters_of_a_table_both_commit_unless_keys_collide() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t (x INT PRIMARY KEY)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; INSERT INTO t VALUES (1)")
        .await
        .unwrap();
    b.batch_execute("BEGIN; INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM t").await, 2);

    // The same key from both: the second COMMIT fails and applies nothing.
    a.batch_execute("BEGIN; INSERT INTO t VALUES (3), (4)")
        .await
        .unwrap();
    b.batch_execute("BEGIN; INSERT INTO t VALUES (5), (3)")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let err = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION), "{err:?}");
    assert_eq!(count(&b, "SELECT count(*) FROM t").await, 4);
}

#[tokio::test]
async fn a_multi_statement_message_is_one_transaction() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (x INT PRIMARY KEY)")
        .await
        .unwrap();
    // The third statement fails: the first two are undone with it.
    let err = client
        .batch_execute("INSERT INTO t VALUES (1); UPDATE t SET x = 10; INSERT INTO t VALUES (10)")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    assert_eq!(count(&client, "SELECT count(*) FROM t").await, 0);
    client
        .batch_execute("INSERT INTO t VALUES (1); UPDATE t SET x = 10; INSERT INTO t VALUES (2)")
        .await
        .unwrap();
    assert_eq!(count(&client, "SELECT sum(x) FROM t").await, 12);
}

#[tokio::test]
async fn writers_of_different_tables_both_commit() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE t1 (x INT); CREATE TABLE t2 (x INT)")
        .await
        .unwrap();
    a.batch_execute("BEGIN; INSERT INTO t1 VALUES (1)")
        .await
        .unwrap();
    b.batch_execute("BEGIN; INSERT INTO t2 VALUES (2)")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        count(
            &a,
            "SELECT (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2)"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn client_transaction_helpers_commit_and_roll_back() {
    let server = TestServer::start();
    let mut client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (x INT PRIMARY KEY)")
        .await
        .unwrap();
    {
        let tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO t VALUES ($1)", &[&1i32])
            .await
            .unwrap();
        tx.execute("INSERT INTO t VALUES ($1)", &[&2i32])
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    {
        let tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO t VALUES ($1)", &[&3i32])
            .await
            .unwrap();
        // Dropped without commit: rolled back.
    }
    {
        let tx = client.transaction().await.unwrap();
        let err = tx
            .execute("INSERT INTO t VALUES ($1)", &[&1i32])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
        let err = tx.query("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
        tx.rollback().await.unwrap();
    }
    let rows: Vec<i32> = client
        .query("SELECT x FROM t ORDER BY x", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, vec![1, 2]);
}
