//! UPDATE, DELETE, upsert and ALTER TABLE across real connections:
//! concurrent writers, prepared statements, conflicts, durability, and a
//! randomized comparison against an in-memory model.

use crate::common;

use std::collections::BTreeMap;

use common::TestServer;
use tokio_postgres::error::SqlState;

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

/// Autocommit `UPDATE ... SET n = n + 1` from several connections at once
/// loses no increment: a statement that loses the race runs again on the
/// newer row.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_autocommit_increments_are_not_lost() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL);
             INSERT INTO counter VALUES (1, 0), (2, 0)",
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let stmt = client
                .prepare("UPDATE counter SET n = n + 1 WHERE id = $1")
                .await
                .unwrap();
            for _ in 0..50 {
                let updated = client.execute(&stmt, &[&1i32]).await.unwrap();
                assert_eq!(updated, 1);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rows = setup
        .query("SELECT id, n FROM counter ORDER BY id", &[])
        .await
        .unwrap();
    let got: Vec<(i32, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![(1, 200), (2, 0)]);
}

/// The same for messages of several statements (one implicit transaction
/// each): a message that loses the race is run again, whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_multi_statement_messages_are_all_applied() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute(
            "CREATE TABLE counter (id INT PRIMARY KEY, n INT NOT NULL);
             INSERT INTO counter VALUES (1, 0), (2, 0)",
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                client
                    .batch_execute(
                        "UPDATE counter SET n = n + 1 WHERE id = 1; UPDATE counter SET n = n + 2 WHERE id = 2",
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let got: Vec<(i32, i32)> = setup
        .query("SELECT id, n FROM counter ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got, vec![(1, 100), (2, 200)]);
}

/// Concurrent autocommit upserts of the same keys: every one is applied
/// once, as an insert or as an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_upserts_of_the_same_keys_are_all_applied() {
    let server = TestServer::start();
    let setup = server.connect().await;
    setup
        .batch_execute("CREATE TABLE kv (k INT PRIMARY KEY, n INT NOT NULL)")
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let client = server.connect().await;
        tasks.push(tokio::spawn(async move {
            let upsert = client
                .prepare("INSERT INTO kv VALUES ($1, 1) ON CONFLICT (k) DO UPDATE SET n = kv.n + 1")
                .await
                .unwrap();
            for i in 0..40 {
                client.execute(&upsert, &[&(i % 4)]).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let got: Vec<(i32, i32)> = setup
        .query("SELECT k, n FROM kv ORDER BY k", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got, vec![(0, 40), (1, 40), (2, 40), (3, 40)]);
}

#[tokio::test]
async fn prepared_dml_with_parameters_and_returning() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE item (id INT PRIMARY KEY, name VARCHAR(10), price NUMERIC(8,2));
             INSERT INTO item VALUES (1, 'a', 1.50), (2, 'b', 2.50), (3, 'c', NULL)",
        )
        .await
        .unwrap();
    // Parameter types come from the columns they are assigned to and
    // compared with.
    let update = client
        .prepare("UPDATE item SET name = $1 WHERE id = $2")
        .await
        .unwrap();
    assert_eq!(update.params()[0], tokio_postgres::types::Type::VARCHAR);
    assert_eq!(update.params()[1], tokio_postgres::types::Type::INT4);
    assert_eq!(client.execute(&update, &[&"z", &2i32]).await.unwrap(), 1);
    assert_eq!(client.execute(&update, &[&"y", &99i32]).await.unwrap(), 0);

    let rows = client
        .query(
            "UPDATE item SET price = price * 2 WHERE id <= $1 RETURNING id, name, price::text AS p",
            &[&2i32],
        )
        .await
        .unwrap();
    let mut got: Vec<(i32, String, String)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (1, "a".into(), "3.00".into()),
            (2, "z".into(), "5.00".into())
        ]
    );

    let deleted = client
        .query("DELETE FROM item WHERE price IS NULL RETURNING id", &[])
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].get::<_, i32>(0), 3);

    let upsert = client
        .prepare(
            "INSERT INTO item VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name",
        )
        .await
        .unwrap();
    let price: Option<rust_decimal::Decimal> = None;
    assert_eq!(
        client
            .execute(&upsert, &[&1i32, &"new", &price])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        client
            .execute(&upsert, &[&7i32, &"seven", &price])
            .await
            .unwrap(),
        1
    );
    let names: Vec<String> = client
        .query("SELECT name FROM item ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, vec!["new", "z", "seven"]);

    // Errors a client can cause come back with their SQLSTATE.
    let err = client
        .execute(&update, &[&"much too long", &1i32])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::STRING_DATA_RIGHT_TRUNCATION));
    let err = client
        .execute("UPDATE item SET id = 2 WHERE id = 1", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
}

#[tokio::test]
async fn conflicting_updates_in_transactions_and_savepoints() {
    let server = TestServer::start();
    let a = server.connect().await;
    let b = server.connect().await;
    a.batch_execute("CREATE TABLE acct (id INT PRIMARY KEY, bal INT); INSERT INTO acct VALUES (1, 100), (2, 100)")
        .await
        .unwrap();

    // A's update is invisible to B until A commits; B's snapshot holds.
    a.batch_execute("BEGIN; UPDATE acct SET bal = bal - 10 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    assert_eq!(
        count(&b, "SELECT bal::bigint FROM acct WHERE id = 1").await,
        100
    );
    b.batch_execute("UPDATE acct SET bal = bal + 10 WHERE id = 2")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    assert_eq!(
        count(&b, "SELECT bal::bigint FROM acct WHERE id = 1").await,
        100
    );
    // Different rows: both commit (conflicts are per row).
    b.batch_execute("COMMIT").await.unwrap();
    assert_eq!(count(&b, "SELECT sum(bal)::bigint FROM acct").await, 200);
    // The same row: the second to commit gets 40001 and changes nothing.
    a.batch_execute("BEGIN; UPDATE acct SET bal = bal - 10 WHERE id = 1")
        .await
        .unwrap();
    b.batch_execute("BEGIN; UPDATE acct SET bal = bal + 5 WHERE id = 1")
        .await
        .unwrap();
    a.batch_execute("COMMIT").await.unwrap();
    let err = b.batch_execute("COMMIT").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
    assert_eq!(count(&b, "SELECT sum(bal)::bigint FROM acct").await, 190);

    // ROLLBACK TO SAVEPOINT undoes the deletes and updates after it.
    a.batch_execute(
        "BEGIN;
         UPDATE acct SET bal = 0 WHERE id = 1;
         SAVEPOINT s;
         DELETE FROM acct;
         UPDATE acct SET bal = 1;
         ROLLBACK TO SAVEPOINT s;
         UPDATE acct SET bal = bal + 1 WHERE id = 2;
         COMMIT",
    )
    .await
    .unwrap();
    let rows: Vec<(i32, i32)> = a
        .query("SELECT id, bal FROM acct ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![(1, 0), (2, 111)]);

    // An error fails the block; everything in it is undone.
    a.batch_execute("BEGIN; DELETE FROM acct WHERE id = 1")
        .await
        .unwrap();
    let err = a
        .batch_execute("INSERT INTO acct VALUES (2, 5)")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
    let err = a.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::IN_FAILED_SQL_TRANSACTION));
    a.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM acct").await, 2);
}

/// Updates, deletes, upserts, TRUNCATE and ALTER TABLE come back after a
/// restart: from the WAL, and from a checkpoint.
#[tokio::test]
async fn dml_and_alter_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let expected = "1|one|11|t\n3|three|33|t\n4|four|40|f\n";
    let dump = |client: tokio_postgres::Client| async move {
        client
            .query("SELECT id, label, n, flag FROM item ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}|{}|{}|{}\n",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, i64>(2),
                    if r.get::<_, bool>(3) { "t" } else { "f" }
                )
            })
            .collect::<String>()
    };
    {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(
                "CREATE TABLE item (id INT PRIMARY KEY, name TEXT, n INT CHECK (n >= 0));
                 CREATE TABLE scratch (x INT);
                 INSERT INTO scratch VALUES (1), (2);
                 TRUNCATE scratch;
                 INSERT INTO item VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3);
                 UPDATE item SET n = n * 11;
                 DELETE FROM item WHERE id = 2;
                 INSERT INTO item VALUES (4, 'four', 4) ON CONFLICT (id) DO NOTHING;
                 INSERT INTO item VALUES (4, 'x', 40) ON CONFLICT (id) DO UPDATE SET n = EXCLUDED.n;
                 ALTER TABLE item RENAME COLUMN name TO label;
                 ALTER TABLE item ALTER COLUMN n TYPE BIGINT;
                 ALTER TABLE item ADD COLUMN flag BOOLEAN NOT NULL DEFAULT true;
                 UPDATE item SET flag = false WHERE id = 4",
            )
            .await
            .unwrap();
        assert_eq!(dump(client).await, expected);
        // Killed without a checkpoint: everything comes from the WAL.
    }
    {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        assert_eq!(count(&client, "SELECT count(*) FROM scratch").await, 0);
        let err = client
            .execute("UPDATE item SET n = -1 WHERE id = 1", &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::CHECK_VIOLATION));
        let err = client
            .execute("INSERT INTO item (id, label) VALUES (3, 'dup')", &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::UNIQUE_VIOLATION));
        assert_eq!(dump(client).await, expected);
        let client = server.connect().await;
        client.batch_execute("CHECKPOINT").await.unwrap();
        client
            .batch_execute(
                "DELETE FROM item WHERE id = 3; INSERT INTO item VALUES (3, 'three', 33)",
            )
            .await
            .unwrap();
    }
    {
        // From the checkpoint plus a WAL tail that deletes by position.
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        assert_eq!(dump(client).await, expected);
    }
}

/// A tiny deterministic generator (no extra dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
}

type Model = BTreeMap<i32, (i64, Option<String>)>;

async fn contents(client: &tokio_postgres::Client) -> Model {
    client
        .query("SELECT id, a, b FROM r ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| (row.get(0), (row.get(1), row.get(2))))
        .collect()
}

/// One random statement, applied to the model too. Returns the SQL.
fn random_statement(rng: &mut Rng, model: &mut Model) -> String {
    let lo = rng.below(60) as i32;
    let hi = lo + rng.below(15) as i32;
    match rng.below(8) {
        0 | 1 => {
            let id = rng.below(80) as i32;
            let a = rng.below(1000);
            let b = (rng.below(3) != 0).then(|| format!("s{}", rng.below(10)));
            let sql_b = b.as_ref().map_or("NULL".to_string(), |s| format!("'{s}'"));
            match model.entry(id) {
                std::collections::btree_map::Entry::Occupied(mut row) => {
                    // Upsert: the conflicting row gets the new a.
                    row.get_mut().0 = a;
                    format!("INSERT INTO r VALUES ({id}, {a}, {sql_b}) ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a")
                }
                std::collections::btree_map::Entry::Vacant(slot) => {
                    slot.insert((a, b));
                    format!("INSERT INTO r VALUES ({id}, {a}, {sql_b})")
                }
            }
        }
        2 => {
            let d = rng.below(50);
            for (_, row) in model.range_mut(lo..=hi) {
                row.0 += d;
            }
            format!("UPDATE r SET a = a + {d} WHERE id BETWEEN {lo} AND {hi}")
        }
        3 => {
            // NULL b never matches b = ...
            let s = format!("s{}", rng.below(10));
            for row in model.values_mut() {
                if row.1.as_deref() == Some(s.as_str()) {
                    row.1 = None;
                }
            }
            format!("UPDATE r SET b = NULL WHERE b = '{s}'")
        }
        6 => {
            // By key: found through the key lookup, not a scan.
            let id = rng.below(80) as i32;
            let d = rng.below(50);
            if let Some(row) = model.get_mut(&id) {
                row.0 += d;
            }
            format!("UPDATE r SET a = a + {d} WHERE id = {id}")
        }
        7 => {
            let id = rng.below(80) as i32;
            model.remove(&id);
            format!("DELETE FROM r WHERE id = {id} AND a >= 0")
        }
        4 => {
            model.retain(|id, _| !(lo..=hi).contains(id));
            format!("DELETE FROM r WHERE id >= {lo} AND id <= {hi}")
        }
        _ => {
            let limit = rng.below(1000);
            model.retain(|_, row| !(row.0 > limit && row.1.is_none()));
            format!("DELETE FROM r WHERE a > {limit} AND b IS NULL")
        }
    }
}

/// The same random INSERT/UPDATE/DELETE/upsert sequence goes to the server
/// and to a model; the table must equal the model throughout, including
/// after rolled-back transactions and a restart.
#[tokio::test]
async fn random_dml_matches_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let seed = std::env::var("QUIVER_MODEL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    println!("model test seed {seed} (QUIVER_MODEL_SEED reruns it)");
    let mut rng = Rng(seed | 1);
    let mut model = Model::new();
    {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute("CREATE TABLE r (id INT PRIMARY KEY, a BIGINT NOT NULL, b TEXT)")
            .await
            .unwrap();
        for step in 0..400 {
            if step % 25 == 24 {
                // A transaction of several statements, sometimes rolled back.
                let mut scratch = model.clone();
                let mut sql = String::from("BEGIN;");
                for _ in 0..4 {
                    sql.push_str(&random_statement(&mut rng, &mut scratch));
                    sql.push(';');
                }
                let commit = rng.below(2) == 0;
                sql.push_str(if commit { "COMMIT" } else { "ROLLBACK" });
                client.batch_execute(&sql).await.unwrap();
                if commit {
                    model = scratch;
                }
            } else {
                let sql = random_statement(&mut rng, &mut model);
                client
                    .batch_execute(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
            }
            if step % 50 == 0 {
                assert_eq!(contents(&client).await, model, "after step {step}");
            }
            if step == 200 {
                client.batch_execute("CHECKPOINT").await.unwrap();
            }
        }
        assert_eq!(contents(&client).await, model);
    }
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    assert_eq!(contents(&client).await, model, "after restart");
}

/// DDL inside a transaction block commits with the block's rows in one
/// logged record, and a rolled-back block leaves nothing behind, also after
/// a restart.
#[tokio::test]
async fn transactional_ddl_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    {
        let server = TestServer::start_with(&["--data-dir", path]);
        let client = server.connect().await;
        client
            .batch_execute(
                "BEGIN;
                 CREATE SCHEMA app;
                 CREATE TABLE app.a (id INT PRIMARY KEY, v TEXT);
                 INSERT INTO app.a VALUES (1, 'x'), (2, 'y');
                 CREATE TABLE app.b AS SELECT id * 10 AS id FROM app.a;
                 UPDATE app.a SET v = 'z' WHERE id = 2;
                 COMMIT;
                 BEGIN;
                 CREATE TABLE app.gone (x INT);
                 INSERT INTO app.gone VALUES (1);
                 DROP TABLE app.b;
                 ROLLBACK;",
            )
            .await
            .unwrap();
        // A block's DDL fails at COMMIT when someone else changed the
        // schema since the block started changing it.
        let other = server.connect().await;
        client
            .batch_execute("BEGIN; CREATE TABLE app.c (x INT)")
            .await
            .unwrap();
        other
            .batch_execute("CREATE TABLE app.d (x INT)")
            .await
            .unwrap();
        let err = client.batch_execute("COMMIT").await.unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::T_R_SERIALIZATION_FAILURE));
    }
    let server = TestServer::start_with(&["--data-dir", path]);
    let client = server.connect().await;
    let rows: Vec<(i32, String)> = client
        .query("SELECT id, v FROM app.a ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(rows, vec![(1, "x".into()), (2, "z".into())]);
    assert_eq!(
        count(&client, "SELECT sum(id)::bigint FROM app.b").await,
        30
    );
    for missing in ["app.gone", "app.c"] {
        let err = client
            .query(&format!("SELECT * FROM {missing}"), &[])
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{missing}");
    }
    assert_eq!(count(&client, "SELECT count(*) FROM app.d").await, 0);
}

/// A statement prepared against a table that only a rolled-back block had
/// is planned again, and finds the table gone.
#[tokio::test]
async fn statements_prepared_in_a_rolled_back_block_plan_again() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("BEGIN; CREATE TABLE tmp (x INT); INSERT INTO tmp VALUES (1)")
        .await
        .unwrap();
    let select = client.prepare("SELECT count(*) FROM tmp").await.unwrap();
    let insert = client.prepare("INSERT INTO tmp VALUES ($1)").await.unwrap();
    assert_eq!(
        client
            .query_one(&select, &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        1
    );
    client.batch_execute("ROLLBACK").await.unwrap();
    let err = client.query(&select, &[]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err:?}");
    let err = client.execute(&insert, &[&2i32]).await.unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::UNDEFINED_TABLE), "{err:?}");
}

/// A simple view is changed through prepared statements with parameters,
/// as through simple queries: the rows land in its table, within its WHERE.
#[tokio::test]
async fn prepared_dml_through_a_view() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE acct (id INT PRIMARY KEY, owner TEXT, region TEXT DEFAULT 'eu', balance BIGINT);
             INSERT INTO acct VALUES (1, 'a', 'eu', 10), (2, 'b', 'us', 20);
             CREATE VIEW eu (id, who, money) AS SELECT id, owner, balance FROM acct WHERE region = 'eu'",
        )
        .await
        .unwrap();
    let insert = client
        .prepare("INSERT INTO eu VALUES ($1, $2, $3)")
        .await
        .unwrap();
    assert_eq!(insert.params()[0], tokio_postgres::types::Type::INT4);
    assert_eq!(insert.params()[2], tokio_postgres::types::Type::INT8);
    client
        .execute(&insert, &[&3i32, &"c", &30i64])
        .await
        .unwrap();
    let update = client
        .prepare("UPDATE eu SET money = money + $1 WHERE who <> $2 RETURNING id, money")
        .await
        .unwrap();
    let rows = client.query(&update, &[&5i64, &"zzz"]).await.unwrap();
    let mut got: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    got.sort();
    // Row 2 is in region "us", outside the view.
    assert_eq!(got, vec![(1, 15), (3, 35)]);
    let deleted = client
        .execute("DELETE FROM eu WHERE money > $1", &[&20i64])
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left: Vec<(i32, String, i64)> = client
        .query("SELECT id, region, balance FROM acct ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(left, vec![(1, "eu".into(), 15), (2, "us".into(), 20)]);
}
