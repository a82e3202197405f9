//! The server under pressure: heavy queries never make it unreachable,
//! queries beyond the execution slots wait in order (and can be cancelled
//! or time out while they wait), a client that goes away frees its slot,
//! a query past the memory limit fails alone, and rows are sent as the
//! plan produces them. Each wait below is bounded so that a regression
//! fails the test instead of hanging it; none is a timing assertion.

use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::common::TestServer;

/// Runs until cancelled (40 billion pairs).
const ENDLESS: &str = "SELECT count(*) FROM p a, p b WHERE a.id + b.id = -1";

/// Long enough for anything below to finish on a loaded CI machine.
const PATIENCE: Duration = Duration::from_secs(60);

async fn with_patience<T>(what: &str, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, work)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {PATIENCE:?}"))
}

async fn server_with_table(args: &[&str]) -> (TestServer, tokio_postgres::Client) {
    let server = TestServer::start_with(args);
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE p (id INT NOT NULL);
             INSERT INTO p SELECT CAST(g AS INT) FROM generate_series(1, 200000) g",
        )
        .await
        .unwrap();
    (server, client)
}

/// Starts `sql` on a connection of its own; resolves to its SQLSTATE (or
/// None on success).
async fn start(server: &TestServer, sql: &'static str) -> StartedQuery {
    let client = server.connect().await;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    let cancel = client.cancel_token();
    let task = tokio::spawn(async move {
        let result = client.simple_query(sql).await;
        result
            .err()
            .and_then(|e| e.code().map(|c| c.code().to_string()))
    });
    StartedQuery { pid, cancel, task }
}

struct StartedQuery {
    pid: i32,
    cancel: tokio_postgres::CancelToken,
    task: tokio::task::JoinHandle<Option<String>>,
}

impl StartedQuery {
    async fn cancel(self) -> Option<String> {
        self.cancel
            .cancel_query(tokio_postgres::NoTls)
            .await
            .unwrap();
        with_patience("a cancelled query", self.task).await.unwrap()
    }
}

async fn count_waiting(client: &tokio_postgres::Client) -> i64 {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'QueryQueue' AND wait_event_type = 'Extension'",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

/// Waits until `query` runs past its admission: with one slot, a query
/// started next queues behind it rather than racing it for the slot.
async fn until_running(client: &tokio_postgres::Client, query: &StartedQuery) {
    with_patience("a query holding the slot", async {
        loop {
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity
                     WHERE pid = $1 AND state = 'active' AND wait_event IS NULL",
                    &[&query.pid],
                )
                .await
                .unwrap();
            if row.get::<_, i64>(0) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

/// The session waiting for a slot now, if one is.
async fn waiting_pid(client: &tokio_postgres::Client) -> Option<i32> {
    client
        .query_opt(
            "SELECT pid FROM pg_stat_activity WHERE wait_event = 'QueryQueue'",
            &[],
        )
        .await
        .unwrap()
        .map(|row| row.get(0))
}

async fn until_waiting(client: &tokio_postgres::Client, n: i64) {
    with_patience("a query queued for a slot", async {
        while count_waiting(client).await < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_past_the_slots_wait_in_order_while_the_server_keeps_answering() {
    let (server, admin) = server_with_table(&["--memory", "--max-concurrent-queries", "1"]).await;
    let first = start(&server, ENDLESS).await;
    until_running(&admin, &first).await;
    let second = start(&server, ENDLESS).await;
    until_waiting(&admin, 1).await;
    // Seen running, the first may still have been planning: the one that
    // waits is the one queued.
    let (running, queued) = match waiting_pid(&admin).await {
        Some(pid) if pid == first.pid => (second, first),
        _ => (first, second),
    };

    // Logins, catalog queries and SELECT 1 do not queue.
    for _ in 0..3 {
        let client = with_patience("a login", server.connect()).await;
        let rows = with_patience("SELECT 1", client.simple_query("SELECT 1"))
            .await
            .unwrap();
        assert!(rows
            .iter()
            .any(|m| matches!(m, SimpleQueryMessage::Row(r) if r.get(0) == Some("1"))));
        let sessions: i64 = with_patience(
            "pg_stat_activity",
            client.query_one("SELECT count(*) FROM pg_stat_activity", &[]),
        )
        .await
        .unwrap()
        .get(0);
        assert!(sessions >= 3);
    }
    let setting: String = admin
        .query_one("SHOW max_concurrent_queries", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(setting, "1");

    // The waiting query can be cancelled; so can the running one, after
    // which the slot is free for the next.
    assert_eq!(queued.cancel().await.as_deref(), Some("57014"));
    assert_eq!(count_waiting(&admin).await, 0);
    assert_eq!(running.cancel().await.as_deref(), Some("57014"));
    let n: i64 = with_patience(
        "a query after the cancels",
        admin.query_one("SELECT count(*) FROM p", &[]),
    )
    .await
    .unwrap()
    .get(0);
    assert_eq!(n, 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_runs_while_a_query_waits_for_a_slot() {
    let (server, admin) = server_with_table(&["--memory", "--max-concurrent-queries", "1"]).await;
    let running = start(&server, ENDLESS).await;
    until_running(&admin, &running).await;
    // A second one waits: the slot is taken.
    let waiting = start(&server, ENDLESS).await;
    until_waiting(&admin, 1).await;
    admin
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let err = with_patience(
        "a queued query with a timeout",
        admin.simple_query("SELECT count(*) FROM p"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "57014");
    let message = err.as_db_error().unwrap().message();
    assert!(message.contains("statement timeout"), "{message}");
    assert_eq!(waiting.cancel().await.as_deref(), Some("57014"));
    assert_eq!(running.cancel().await.as_deref(), Some("57014"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_mid_query_frees_its_slot() {
    let (server, admin) = server_with_table(&["--memory", "--max-concurrent-queries", "1"]).await;
    let (client, connection) =
        tokio_postgres::connect(&server.conn_string(), tokio_postgres::NoTls)
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let query = tokio::spawn(async move { client.simple_query(ENDLESS).await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(300)).await;
    connection.abort();
    query.abort();
    // With the slot still taken this would wait for ever.
    let n: i64 = with_patience(
        "a query after the client went away",
        admin.query_one("SELECT count(*) FROM p", &[]),
    )
    .await
    .unwrap()
    .get(0);
    assert_eq!(n, 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_past_the_memory_limit_fails_with_53200_and_the_server_goes_on() {
    let (_server, client) = server_with_table(&["--memory", "--memory-limit", "64MB"]).await;
    // Operators that cannot spill: an aggregate's state, a hash join's
    // build side. (Grouping and sorting spill to disk instead, within
    // the limit.)
    for sql in [
        "SELECT cardinality(array_agg(a.id)) FROM p a, p b WHERE b.id <= 100",
        "WITH x AS (SELECT a.id::bigint * 200001 + b.id AS k FROM p a, p b WHERE b.id <= 50)
         SELECT count(*) FROM x JOIN x y ON x.k = y.k",
    ] {
        let err = with_patience(sql, client.simple_query(sql))
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "53200", "{sql}: {err}");
    }
    let n: i64 = client
        .query_one("SELECT count(*) FROM p", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 200_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_sent_as_the_plan_produces_them() {
    let (_server, client) = server_with_table(&["--memory"]).await;
    // Row 150000 divides by zero. Collected first, the client would get
    // the error and no rows; streamed, the rows before it arrive first.
    let stream = client
        .simple_query_raw("SELECT 10 / (id - 150000) FROM p")
        .await
        .unwrap();
    futures::pin_mut!(stream);
    let mut rows = 0;
    let mut error = None;
    while let Some(message) = futures::StreamExt::next(&mut stream).await {
        match message {
            Ok(SimpleQueryMessage::Row(_)) => rows += 1,
            Ok(_) => {}
            Err(e) => {
                error = e.code().map(|c| c.code().to_string());
                break;
            }
        }
    }
    assert_eq!(error.as_deref(), Some("22012"));
    assert!(rows > 0, "no rows arrived before the error");

    // In a transaction block the error fails the block, as any other.
    client.batch_execute("BEGIN").await.unwrap();
    let err = client
        .simple_query("SELECT 10 / (id - 150000) FROM p")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "22012");
    let err = client.simple_query("SELECT 1").await.unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_with_a_row_limit_is_read_in_chunks_from_one_stream() {
    let (_server, mut client) = server_with_table(&["--memory"]).await;
    let tx = client.transaction().await.unwrap();
    let portal = tx
        .bind(
            "SELECT id FROM p WHERE id % 2 = $1::int ORDER BY id",
            &[&0i32],
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    let mut chunks = 0;
    loop {
        let rows = tx.query_portal(&portal, 7_000).await.unwrap();
        if rows.is_empty() {
            break;
        }
        chunks += 1;
        ids.extend(rows.iter().map(|r| r.get::<_, i32>(0)));
    }
    tx.commit().await.unwrap();
    assert_eq!(ids, (1..=100_000).map(|i| i * 2).collect::<Vec<i32>>());
    assert_eq!(chunks, 15);
}
