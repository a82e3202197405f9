//! Replication with real processes on loopback: a primary and replicas
//! started here, killed by PID. Replicas follow writers, survive kill -9,
//! end with exactly the primary's rows and catalog; a synchronous commit
//! survives the primary's crash on the promoted replica; the old primary
//! comes back fenced; a replica past --max-replica-lag re-bases when told;
//! hostile input on a replication connection ends only that connection.

use std::time::{Duration, Instant};

use quiverdb::client::Connection;

use super::common::TestServer;

fn primary(dir: &tempfile::TempDir, extra: &[&str]) -> TestServer {
    let mut args = vec!["--data-dir", dir.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    TestServer::start_with(&args)
}

/// A primary on a fixed port: a replica finds it there again after a
/// restart.
fn primary_on(port: u16, dir: &tempfile::TempDir, extra: &[&str]) -> TestServer {
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "serve",
        "--listen",
        &listen,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    TestServer::start_command(&args)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn replica_args(primary_port: u16, dir: &tempfile::TempDir, name: &str) -> Vec<String> {
    vec![
        "--data-dir".into(),
        dir.path().to_str().unwrap().into(),
        "--replicate-from".into(),
        format!("postgres://repl@127.0.0.1:{primary_port}/quiver"),
        "--replica-name".into(),
        name.into(),
    ]
}

fn replica(primary_port: u16, dir: &tempfile::TempDir, name: &str, extra: &[&str]) -> TestServer {
    let mut args = replica_args(primary_port, dir, name);
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    TestServer::start_with(&args)
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |db| db.message().to_string())
}

async fn text(client: &tokio_postgres::Client, sql: &str) -> String {
    let rows = client.simple_query(sql).await.unwrap();
    rows.iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits until the replica has replayed everything the primary flushed.
async fn caught_up(primary: &tokio_postgres::Client, replica: &tokio_postgres::Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let target = text(primary, "SELECT pg_current_wal_flush_lsn()").await;
        let replayed = text(replica, "SELECT pg_last_wal_replay_lsn()").await;
        if target == replayed {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica stuck at {replayed}, primary at {target}: {}",
            text(
                replica,
                "SELECT status, last_error FROM pg_stat_wal_receiver"
            )
            .await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Everything a replica must have exactly as the primary has it.
const SAME: &[&str] = &[
    "SELECT id, v, n FROM items ORDER BY id",
    "SELECT k, total FROM ledger ORDER BY k",
    "SELECT * FROM big_items ORDER BY 1",
    "SELECT rolname, rolsuper, rolcanlogin, rolreplication FROM pg_roles ORDER BY 1",
    "SELECT has_table_privilege('analyst', 'items', 'SELECT'), \
     has_table_privilege('analyst', 'items', 'INSERT'), \
     has_table_privilege('analyst', 'ledger', 'SELECT')",
    "SELECT table_name, constraint_type FROM information_schema.table_constraints \
     WHERE table_schema = 'public' ORDER BY 1, 2",
    "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
];

async fn assert_same(primary: &tokio_postgres::Client, replica: &tokio_postgres::Client) {
    for sql in SAME {
        assert_eq!(text(primary, sql).await, text(replica, sql).await, "{sql}");
    }
}

const SETUP: &str = "
    CREATE ROLE repl REPLICATION LOGIN;
    CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL, n numeric(12,2) CHECK (n >= 0));
    CREATE TABLE ledger (k int PRIMARY KEY, total bigint NOT NULL);
    INSERT INTO ledger SELECT g, 0 FROM generate_series(1, 8) g;
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_follow_writers_and_end_with_the_primarys_rows_and_catalog() {
    let (pdir, r1dir, r2dir) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let p = primary(&pdir, &[]);
    let pc = p.connect().await;
    pc.batch_execute(SETUP).await.unwrap();
    let r1 = replica(p.port, &r1dir, "r1", &[]);
    let mut r2 = replica(p.port, &r2dir, "r2", &[]);

    // Writers on the primary while both replicas answer reads.
    let mut writers = Vec::new();
    for w in 0..4i32 {
        let client = p.connect().await;
        writers.push(tokio::spawn(async move {
            for i in 0..150i32 {
                let id = w * 1000 + i;
                client
                    .execute(
                        "INSERT INTO items VALUES ($1, $2, $3)",
                        &[
                            &id,
                            &format!("w{w}-{i}"),
                            &rust_decimal::Decimal::new(i as i64 * 7, 2),
                        ],
                    )
                    .await
                    .unwrap();
                if i % 3 == 0 {
                    client
                        .execute("UPDATE items SET v = v || '!' WHERE id = $1", &[&id])
                        .await
                        .unwrap();
                }
                if i % 5 == 0 {
                    client
                        .execute("DELETE FROM items WHERE id = $1", &[&id])
                        .await
                        .unwrap();
                }
                // A multi-statement transaction over two tables.
                client
                    .batch_execute(&format!(
                        "BEGIN; UPDATE ledger SET total = total + 1 WHERE k = {}; \
                         UPDATE ledger SET total = total - 1 WHERE k = {}; COMMIT",
                        w + 1,
                        w + 5
                    ))
                    .await
                    .unwrap();
            }
        }));
    }
    let r1c = r1.connect().await;
    let mut reads = 0;
    // A reader sees whole commits: the ledger always sums to zero.
    while writers.iter().any(|w| !w.is_finished()) {
        let sum = text(&r1c, "SELECT sum(total) FROM ledger").await;
        assert_eq!(sum, "0", "a replica showed half of a transaction");
        reads += 1;
        if reads == 20 {
            // A replica killed in the middle of the load comes back and
            // catches up.
            r2.stop_with("KILL");
            r2 = replica(p.port, &r2dir, "r2", &[]);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert!(reads > 0);

    // DDL, roles, grants, views and constraints reach the replicas too,
    // across a checkpoint (a new WAL file on the primary).
    pc.batch_execute(
        "CREATE ROLE analyst LOGIN;
         GRANT SELECT ON items TO analyst;
         CHECKPOINT;
         CREATE VIEW busy AS SELECT v, n FROM items WHERE n > 1;
         CREATE TABLE big_items AS SELECT id, v FROM items WHERE id % 2 = 0;
         ALTER TABLE big_items ADD COLUMN note text DEFAULT 'copied';
         ALTER TABLE big_items ADD PRIMARY KEY (id);",
    )
    .await
    .unwrap();

    let r2c = r2.connect().await;
    for rc in [&r1c, &r2c] {
        caught_up(&pc, rc).await;
        assert_same(&pc, rc).await;
        // Writes on a replica fail with 25006; reads go on.
        let err = rc
            .batch_execute("INSERT INTO items VALUES (-1, 'no', 0)")
            .await
            .unwrap_err();
        assert_eq!(err.code().unwrap().code(), "25006", "{err}");
        assert!(message(&err).contains("read-only"), "{err}");
        assert_eq!(text(rc, "SELECT pg_is_in_recovery()").await, "t");
        assert_eq!(
            text(
                rc,
                "SELECT status, slot_name IN ('r1', 'r2') FROM pg_stat_wal_receiver"
            )
            .await,
            "streaming|t"
        );
    }
    let senders = text(
        &pc,
        "SELECT application_name, state, sync_state, replay_lsn = pg_current_wal_flush_lsn() \
         FROM pg_stat_replication ORDER BY 1",
    )
    .await;
    assert_eq!(senders, "r1|streaming|async|t\nr2|streaming|async|t");
    assert_eq!(text(&pc, "SELECT pg_is_in_recovery()").await, "f");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_synchronous_commit_survives_the_primarys_crash_on_the_promoted_replica() {
    let (pdir, rdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    let mut p = primary_on(port, &pdir, &["--synchronous-replicas", "1"]);
    {
        // Without a replica, a commit waits (as in PostgreSQL).
        let pc = p.connect().await;
        let waiting = tokio::spawn(async move {
            pc.batch_execute(
                "CREATE ROLE repl REPLICATION LOGIN; CREATE TABLE acked (id int PRIMARY KEY)",
            )
            .await
            .unwrap();
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !waiting.is_finished(),
            "a synchronous commit did not wait for a replica"
        );
        let r = replica(p.port, &rdir, "r1", &[]);
        tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .expect("released once the replica has the commit")
            .unwrap();
        drop(r);
    }
    let r = replica(p.port, &rdir, "r1", &[]);
    let pc = p.connect().await;
    assert_eq!(
        text(
            &pc,
            "SELECT application_name, sync_state FROM pg_stat_replication"
        )
        .await,
        "r1|quorum"
    );
    // Writers record each acknowledged commit; the primary dies mid-way.
    let acked = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4i32 {
        let client = p.connect().await;
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let id = w * 1_000_000 + i;
                match client
                    .execute("INSERT INTO acked VALUES ($1)", &[&id])
                    .await
                {
                    Ok(_) => acked.lock().push(id),
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    p.stop_with("KILL");
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().clone();
    assert!(
        acked.len() > 10,
        "only {} commits before the crash",
        acked.len()
    );

    let rc = r.connect().await;
    assert_eq!(text(&rc, "SELECT pg_promote()").await, "t");
    assert_eq!(text(&rc, "SELECT pg_is_in_recovery()").await, "f");
    let present: std::collections::HashSet<i32> = rc
        .query("SELECT id FROM acked", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let lost: Vec<_> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged commits missing on the promoted replica: {lost:?}"
    );
    // The promoted replica takes writes.
    rc.batch_execute("INSERT INTO acked VALUES (-1)")
        .await
        .unwrap();
    assert_eq!(
        text(&rc, "SELECT count(*) FROM pg_stat_wal_receiver").await,
        "0"
    );

    // The old primary comes back on the old timeline: the promoted
    // replica tells it, and it takes no more writes.
    let old = primary_on(port, &pdir, &[]);
    let oc = old.connect().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match oc.batch_execute("INSERT INTO acked VALUES (-2)").await {
            Err(e) if e.code().is_some_and(|c| c.code() == "25006") => {
                assert!(message(&e).contains("no longer the primary"), "{e}");
                break;
            }
            // Written before it heard: gone with it once it is re-based.
            Ok(()) => oc
                .batch_execute("DELETE FROM acked WHERE id = -2")
                .await
                .unwrap_or(()),
            Err(e) => panic!("{e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the old primary still takes writes"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(oc);
    drop(old);
    // It stays fenced after a restart.
    let old = primary_on(port, &pdir, &[]);
    let err = old
        .connect()
        .await
        .batch_execute("INSERT INTO acked VALUES (-3)")
        .await
        .unwrap_err();
    assert_eq!(err.code().unwrap().code(), "25006");
    drop(old);

    // Re-attached as a replica of the new primary (its data replaced by a
    // base backup), it follows the new timeline.
    let mut args = replica_args(r.port, &pdir, "old");
    args.push("--rebase-if-needed".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let back = TestServer::start_with(&args);
    let bc = back.connect().await;
    rc.batch_execute("INSERT INTO acked VALUES (-4)")
        .await
        .unwrap();
    caught_up(&rc, &bc).await;
    assert_eq!(
        text(&bc, "SELECT count(*) FROM acked WHERE id < 0").await,
        "2",
        "the new timeline's rows, not the old primary's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_past_max_replica_lag_reports_it_and_rebases_when_told() {
    let (pdir, rdir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = primary(
        &pdir,
        &["--max-replica-lag", "256kB", "--checkpoint-file-grace", "0"],
    );
    let pc = p.connect().await;
    pc.batch_execute("CREATE ROLE repl REPLICATION LOGIN; CREATE TABLE t (id int, pad text)")
        .await
        .unwrap();
    let mut r = replica(p.port, &rdir, "r1", &[]);
    caught_up(&pc, &r.connect().await).await;
    assert!(r.stop_with("TERM").success());
    // Far more WAL than the replica may lag by, over several checkpoints.
    for _ in 0..4 {
        pc.batch_execute(
            "INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g; CHECKPOINT",
        )
        .await
        .unwrap();
    }
    assert_eq!(
        text(&pc, "SELECT count(*) FROM pg_replication_slots").await,
        "0"
    );

    // Without --rebase-if-needed it says so and does not start.
    let args = replica_args(p.port, &rdir, "r1");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_quiver"))
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(&args)
        .env("QUIVER_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("has already been removed"), "{said}");
    assert!(said.contains("--rebase-if-needed"), "{said}");

    // With it, a new base backup, and then the primary's rows.
    let r = replica(p.port, &rdir, "r1", &["--rebase-if-needed"]);
    let rc = r.connect().await;
    caught_up(&pc, &rc).await;
    assert_eq!(text(&rc, "SELECT count(*) FROM t").await, "20000");
}

async fn replication_connection(port: u16, user: &str) -> Result<Connection, String> {
    Connection::connect(
        &format!("postgres://{user}@127.0.0.1:{port}/quiver"),
        &[("replication", "true"), ("application_name", "hostile")],
        |_| None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_replication_input_gets_an_error_and_ends_only_that_connection() {
    let pdir = tempfile::tempdir().unwrap();
    let p = primary(&pdir, &[]);
    let pc = p.connect().await;
    pc.batch_execute(
        "CREATE ROLE repl REPLICATION LOGIN; CREATE ROLE plain LOGIN; CREATE TABLE t (x int)",
    )
    .await
    .unwrap();

    // A role without REPLICATION cannot open one.
    let err = replication_connection(p.port, "plain").await.err().unwrap();
    assert!(err.contains("REPLICATION attribute"), "{err}");

    let mut c = replication_connection(p.port, "repl").await.unwrap();
    // SQL, junk, a position that never existed, a wrong timeline: errors,
    // and the connection goes on.
    for (command, expected) in [
        ("SELECT 1", "not a replication command"),
        (
            "START_REPLICATION SLOT x PHYSICAL nonsense",
            "invalid WAL position",
        ),
        (
            "START_REPLICATION SLOT x PHYSICAL FFFF/0",
            "ahead of the WAL flush position",
        ),
        (
            "START_REPLICATION SLOT x PHYSICAL 0/0",
            "has already been removed",
        ),
        (
            "START_REPLICATION SLOT x PHYSICAL 0/0 TIMELINE 7",
            "timeline",
        ),
        (
            "BASE_BACKUP SLOT ../../etc",
            "invalid replication slot name",
        ),
        (
            "TIMELINE_PROMOTED 9 SYSTEM 1",
            "is not this server's system",
        ),
    ] {
        let err = c.simple_rows(command).await.unwrap_err();
        assert!(err.contains(expected), "{command}: {err}");
    }
    let identity = c.simple_rows("IDENTIFY_SYSTEM").await.unwrap();
    assert_eq!(identity[0][1].as_deref(), Some("1"));

    // A position inside a record is refused too.
    let position = identity[0][2].clone().unwrap();
    let lsn = quiverdb::engine::Lsn::parse(&position).unwrap();
    pc.batch_execute("INSERT INTO t VALUES (1)").await.unwrap();
    let inside = quiverdb::engine::Lsn(lsn.0 + 3);
    let err = c
        .simple_rows(&format!("START_REPLICATION SLOT x PHYSICAL {inside}"))
        .await
        .unwrap_err();
    assert!(err.contains("not the start of a WAL record"), "{err}");

    // A malformed message in the stream ends this connection only.
    c.send_query(&format!("START_REPLICATION SLOT x PHYSICAL {lsn}"))
        .await
        .unwrap();
    c.start_copy_both().await.unwrap();
    let mut buf = bytes::BytesMut::new();
    postgres_protocol::message::frontend::CopyData::new(&b"r-garbage"[..])
        .unwrap()
        .write(&mut buf);
    c.send(&buf).await.unwrap();
    let mut ended = None;
    for _ in 0..100 {
        match c.receive().await {
            Ok(postgres_protocol::message::backend::Message::ErrorResponse(body)) => {
                ended = Some(quiverdb::client::error_text(body.fields()));
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    let ended = ended.expect("an error before the connection closed");
    assert!(ended.contains("malformed"), "{ended}");
    // The slot it took is free again, and the server serves.
    pc.batch_execute("INSERT INTO t VALUES (2)").await.unwrap();
    assert_eq!(text(&pc, "SELECT count(*) FROM t").await, "2");
    let mut again = replication_connection(p.port, "repl").await.unwrap();
    again
        .send_query(&format!("START_REPLICATION SLOT x PHYSICAL {lsn}"))
        .await
        .unwrap();
    again.start_copy_both().await.unwrap();

    // psql speaks to a replication connection as to PostgreSQL's.
    if super::common::tool_version("psql").is_some() {
        let out = std::process::Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=repl dbname=quiver replication=true",
                p.port
            ))
            .args(["-XAtc", "IDENTIFY_SYSTEM"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("|1|"), "{said}");
    } else {
        eprintln!("psql is not installed: skipping its replication connection");
    }
}

/// One value from a query run over the crate's own client.
async fn one(c: &mut Connection, sql: &str) -> String {
    let rows = c.simple_rows(sql).await.unwrap();
    rows[0][0].clone().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_follows_a_primary_that_requires_tls_and_checks_its_certificate() {
    let pdir = super::security::data_dir_with_admin();
    let (certs, other_certs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (ca, cert, key) = super::security::certificates(certs.path());
    let (other_ca, _, _) = super::security::certificates(other_certs.path());
    let p = super::security::serve(
        &pdir,
        &["--tls-cert", &cert, "--tls-key", &key, "--require-tls"],
    );
    let url = |user: &str, options: &str| {
        format!("postgres://{user}@localhost:{}/quiver?{options}", p.port)
    };
    let verified = format!("sslmode=verify-full&sslrootcert={ca}");

    // The client's sslmodes against a server that requires TLS.
    let mut admin = Connection::connect(&url("admin:adminpw", &verified), &[], |_| None)
        .await
        .unwrap();
    assert!(
        admin.tls.as_deref().unwrap_or("").contains("TLS"),
        "{:?}",
        admin.tls
    );
    let plain = Connection::connect(&url("admin:adminpw", "sslmode=disable"), &[], |_| None)
        .await
        .err()
        .unwrap();
    assert!(plain.contains("requires TLS"), "{plain}");
    let stranger = Connection::connect(
        &url(
            "admin:adminpw",
            &format!("sslmode=verify-full&sslrootcert={other_ca}"),
        ),
        &[],
        |_| None,
    )
    .await
    .err()
    .unwrap();
    assert!(stranger.contains("TLS handshake"), "{stranger}");
    let encrypted = Connection::connect(&url("admin:adminpw", "sslmode=require"), &[], |_| None)
        .await
        .unwrap();
    assert!(encrypted.tls.is_some());
    encrypted.terminate().await;

    admin
        .simple_rows(
            "CREATE ROLE repl REPLICATION LOGIN PASSWORD 'replpw'; \
             CREATE TABLE t (x int PRIMARY KEY, v text); \
             INSERT INTO t SELECT g, 'before' FROM generate_series(1, 1000) g",
        )
        .await
        .unwrap();

    // A replica over TLS: base backup, then the stream.
    let rdir = tempfile::tempdir().unwrap();
    let primary_url = url("repl:replpw", &verified);
    let r = TestServer::start_with(&[
        "--data-dir",
        rdir.path().to_str().unwrap(),
        "--replicate-from",
        &primary_url,
        "--replica-name",
        "r1",
    ]);
    let rc = r
        .try_connect(&format!(
            "host=127.0.0.1 port={} user=admin password=adminpw dbname=quiver",
            r.port
        ))
        .await
        .unwrap();
    admin
        .simple_rows("INSERT INTO t SELECT g, 'after' FROM generate_series(1001, 2000) g")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let target = one(&mut admin, "SELECT pg_current_wal_flush_lsn()").await;
        let replayed = text(&rc, "SELECT pg_last_wal_replay_lsn()").await;
        if target == replayed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica stuck at {replayed}, primary at {target}: {}",
            text(&rc, "SELECT status, last_error FROM pg_stat_wal_receiver").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        text(
            &rc,
            "SELECT count(*), count(*) FILTER (WHERE v = 'after') FROM t"
        )
        .await,
        "2000|1000"
    );
    assert_eq!(
        one(
            &mut admin,
            "SELECT application_name || ':' || state FROM pg_stat_replication"
        )
        .await,
        "r1:streaming"
    );
    // The receiver's view shows where it connects, without the password.
    let conninfo = text(&rc, "SELECT conninfo FROM pg_stat_wal_receiver").await;
    assert!(!conninfo.contains("replpw"), "{conninfo}");
    admin.terminate().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_wait_for_a_synchronous_replica_reports_the_commit_with_a_warning() {
    use futures::{stream, StreamExt};
    let pdir = tempfile::tempdir().unwrap();
    // One synchronous replica asked for, none connected: commits wait.
    let p = primary(&pdir, &["--synchronous-replicas", "1"]);
    let (client, mut connection) = tokio_postgres::connect(&p.conn_string(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = stream::poll_fn(move |cx| connection.poll_message(cx));
    tokio::spawn(async move {
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notice(n) = message {
                let _ = tx.send(format!(
                    "{} {}: {} {}",
                    n.severity(),
                    n.code().code(),
                    n.message(),
                    n.detail().unwrap_or_default()
                ));
            }
        }
    });
    // DDL commits wait as synchronous_commit says too: `local` does not.
    tokio::time::timeout(
        Duration::from_secs(20),
        client.batch_execute(
            "SET synchronous_commit = local; CREATE TABLE t (x int); CREATE SEQUENCE s",
        ),
    )
    .await
    .expect("CREATE TABLE under synchronous_commit = local waits for no replica")
    .unwrap();
    client
        .batch_execute("SET synchronous_commit = on; SET statement_timeout = 300")
        .await
        .unwrap();
    // The timeout ends the wait, not the commit: the client hears of it.
    assert_eq!(
        client
            .execute("INSERT INTO t VALUES (1)", &[])
            .await
            .unwrap(),
        1
    );
    let said = notices.recv().await.unwrap();
    assert!(said.starts_with("WARNING 01000: canceling wait"), "{said}");
    assert!(said.contains("due to statement timeout"), "{said}");
    assert!(said.contains("already committed locally"), "{said}");

    // So does a cancel.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let cancel = client.cancel_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel_query(tokio_postgres::NoTls).await.unwrap();
    });
    assert_eq!(
        client
            .execute("INSERT INTO t VALUES (2)", &[])
            .await
            .unwrap(),
        1
    );
    let said = notices.recv().await.unwrap();
    assert!(said.contains("due to user request"), "{said}");
    assert_eq!(text(&client, "SELECT count(*) FROM t").await, "2");

    // nextval waits for no replica (as in PostgreSQL: a commit that uses
    // the value comes later in the WAL).
    let next = tokio::time::timeout(
        Duration::from_secs(20),
        text(&client, "SELECT nextval('s')"),
    )
    .await
    .expect("nextval waits for no synchronous replica");
    assert_eq!(next, "1");

    // A statement stopped before it commits is still stopped, even one
    // that took sequence values.
    client
        .batch_execute("SET statement_timeout = 200")
        .await
        .unwrap();
    let err = client
        .execute(
            "SELECT nextval('s') FROM generate_series(1, 200000000) AS g(n)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
    );
    let err = client
        .execute(
            "INSERT INTO t SELECT t.x FROM t, generate_series(1, 200000000) AS g(n)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
    );
    assert_eq!(text(&client, "SELECT count(*) FROM t").await, "2");
}
