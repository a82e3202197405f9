//! Transactions across real connections: isolation, the 40001 rule,
//! rollback, and the client libraries' transaction helpers.

use crate::common;

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
    assert_eq!(count(&client, "SELECT sum(x)::bigint FROM t").await, 12);
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

#[tokio::test]
async fn transactions_that_change_different_rows_of_a_table_both_commit() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    let c = server.connect().await;
    a.batch_execute(
        "CREATE TABLE acct (id INT PRIMARY KEY, bal INT);
         INSERT INTO acct SELECT v, 100 FROM generate_series(1, 10) AS g(v)",
    )
    .await
    .unwrap();
    a.batch_execute("BEGIN; UPDATE acct SET bal = bal - 1 WHERE id = 2")
        .await
        .unwrap();
    b.batch_execute(
        "BEGIN; UPDATE acct SET bal = bal + 5 WHERE id = 7; DELETE FROM acct WHERE id = 9",
    )
    .await
    .unwrap();
    c.batch_execute(
        "BEGIN; INSERT INTO acct VALUES (11, 0); UPDATE acct SET bal = 50 WHERE id = 1",
    )
    .await
    .unwrap();
    // The rows each transaction removed move as the others commit first.
    b.batch_execute("COMMIT").await.unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    c.batch_execute("COMMIT").await.unwrap();
    let rows: Vec<(i32, i32)> = a
        .query("SELECT id, bal FROM acct ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, 50),
            (2, 99),
            (3, 100),
            (4, 100),
            (5, 100),
            (6, 100),
            (7, 105),
            (8, 100),
            (10, 100),
            (11, 0)
        ]
    );
    // The same row from two transactions: the first to commit wins.
    a.batch_execute("BEGIN; UPDATE acct SET bal = 1 WHERE id = 3")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE acct SET bal = 2 WHERE id = 4; DELETE FROM acct WHERE id = 3")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let err = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
    assert_eq!(
        count(&a, "SELECT bal::bigint FROM acct WHERE id = 3").await,
        1
    );
    assert_eq!(
        count(&a, "SELECT bal::bigint FROM acct WHERE id = 4").await,
        100
    );
}

/// Transfers between accounts from many clients at once, each a
/// transaction retried on 40001, for a fixed time: money is neither made
/// nor lost, every account ends where the committed transfers put it,
/// and transfers between different accounts do not fail each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_transfers_never_lose_an_update() {
    use std::sync::{Arc, Mutex};
    const ACCOUNTS: i32 = 100;
    const CLIENTS: usize = 8;
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute(&format!(
            "CREATE TABLE acct (id INT PRIMARY KEY, bal BIGINT NOT NULL);
             INSERT INTO acct SELECT v, 1000 FROM generate_series(1, {ACCOUNTS}) AS g(v)"
        ))
        .await
        .unwrap();
    // What the committed transfers did to each account.
    let ledger = Arc::new(Mutex::new(vec![0i64; ACCOUNTS as usize + 1]));
    let stats = Arc::new(Mutex::new((0usize, 0usize))); // (committed, retried)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut tasks = Vec::new();
    for client_id in 0..CLIENTS {
        let client = server.connect().await;
        let ledger = ledger.clone();
        let stats = stats.clone();
        tasks.push(tokio::spawn(async move {
            let mut seed = 0x9e37_79b9u64 + client_id as u64;
            let mut next = move || {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed
            };
            while std::time::Instant::now() < deadline {
                let from = (next() % ACCOUNTS as u64) as i32 + 1;
                let to = (next() % ACCOUNTS as u64) as i32 + 1;
                if from == to {
                    continue;
                }
                let amount = (next() % 50) as i64 + 1;
                // One round trip per statement, so transactions overlap.
                let transfer = async {
                    client.batch_execute("BEGIN").await?;
                    client
                        .batch_execute(&format!(
                            "UPDATE acct SET bal = bal - {amount} WHERE id = {from}"
                        ))
                        .await?;
                    client
                        .batch_execute(&format!(
                            "UPDATE acct SET bal = bal + {amount} WHERE id = {to}"
                        ))
                        .await?;
                    client.batch_execute("COMMIT").await
                };
                match transfer.await {
                    Ok(()) => {
                        let mut ledger = ledger.lock().unwrap();
                        ledger[from as usize] -= amount;
                        ledger[to as usize] += amount;
                        stats.lock().unwrap().0 += 1;
                    }
                    Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
                        stats.lock().unwrap().1 += 1;
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    Err(e) => panic!("transfer failed: {e}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let balances: Vec<(i32, i64)> = setup
        .query("SELECT id, bal FROM acct ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let ledger = ledger.lock().unwrap();
    for (id, bal) in &balances {
        assert_eq!(*bal, 1000 + ledger[*id as usize], "account {id}");
    }
    let total: i64 = balances.iter().map(|(_, b)| b).sum();
    assert_eq!(total, 1000 * ACCOUNTS as i64);
    let (committed, retried) = *stats.lock().unwrap();
    eprintln!("{committed} transfers committed, {retried} serialization failures");
    assert!(committed > 0, "no transfer committed");
    // With row-level conflicts only transfers that share an account can
    // fail each other; with table-level ones almost every one would.
    assert!(
        retried < committed,
        "{retried} serialization failures for {committed} commits"
    );
}
