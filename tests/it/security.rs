//! Who gets in and what they may do: SCRAM logins (tokio-postgres, psql),
//! roles that survive a restart, `quiver user add`, privileges, TLS, and
//! the limits that keep the server up (memory, connections, idle
//! transactions).

use crate::common;

use std::process::Command;
use std::time::Duration;

use common::{first_column, tool_version, TestServer};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

pub(crate) async fn login(
    server: &TestServer,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let conn = format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname=quiver",
        server.port
    );
    let (client, connection) = tokio_postgres::connect(&conn, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// A data directory with a superuser `admin` (password `adminpw`), made by
/// `quiver user add`.
pub(crate) fn data_dir_with_admin() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["user", "add", "admin", "--superuser", "--data-dir"])
        .arg(dir.path())
        .env("QUIVER_PASSWORD", "adminpw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

pub(crate) fn serve(dir: &tempfile::TempDir, extra: &[&str]) -> TestServer {
    let mut args = vec!["--data-dir", dir.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    TestServer::start_with(&args)
}

fn code(e: &tokio_postgres::Error) -> Option<&SqlState> {
    e.code()
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

#[tokio::test]
async fn scram_logins_and_failures_look_alike() {
    let dir = data_dir_with_admin();
    let server = serve(&dir, &[]);
    let admin = login(&server, "admin", "adminpw").await.unwrap();
    let me: String = admin
        .query_one("SELECT current_user", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(me, "admin");
    admin
        .batch_execute("CREATE USER dash PASSWORD 'dashpw'")
        .await
        .unwrap();

    let wrong = login(&server, "dash", "nope").await.unwrap_err();
    let unknown = login(&server, "nobody", "nope").await.unwrap_err();
    let conn = format!(
        "host=127.0.0.1 port={} user=dash dbname=quiver",
        server.port
    );
    let Err(without) = tokio_postgres::connect(&conn, NoTls).await else {
        panic!("a login without a password was accepted");
    };
    assert_eq!(code(&wrong), Some(&SqlState::INVALID_PASSWORD), "{wrong:?}");
    assert_eq!(
        code(&unknown),
        Some(&SqlState::INVALID_PASSWORD),
        "{unknown:?}"
    );
    // Same message shape for a wrong password and an unknown user.
    let text = |e: &tokio_postgres::Error, user: &str| {
        e.as_db_error()
            .unwrap()
            .message()
            .replace(&format!("\"{user}\""), "\"?\"")
    };
    assert_eq!(text(&wrong, "dash"), text(&unknown, "nobody"));
    // tokio-postgres refuses to go on without a password once asked.
    drop(without);

    let dash = login(&server, "dash", "dashpw").await.unwrap();
    let super_: String = dash
        .query_one(
            "SELECT setting FROM pg_settings WHERE name = 'is_superuser'",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or_else(|_| "off".into());
    assert_eq!(super_, "off");
    // Changing one's own password is allowed; it takes effect at once.
    dash.batch_execute("ALTER USER dash PASSWORD 'newpw'")
        .await
        .unwrap();
    assert!(login(&server, "dash", "dashpw").await.is_err());
    login(&server, "dash", "newpw").await.unwrap();
    // The verifier is stored, never the password.
    let stored: String = admin
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'dash'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!stored.contains("newpw"));
}

#[tokio::test]
async fn a_read_only_role_reads_what_it_was_granted_and_nothing_else() {
    let dir = data_dir_with_admin();
    let server = serve(&dir, &[]);
    let admin = login(&server, "admin", "adminpw").await.unwrap();
    admin
        .batch_execute(
            "CREATE TABLE sales (id INT PRIMARY KEY, amount INT);
             INSERT INTO sales VALUES (1, 10), (2, 20);
             CREATE TABLE salaries (who TEXT, pay INT);
             CREATE VIEW big_sales AS SELECT * FROM sales WHERE amount > 15;
             CREATE USER dash PASSWORD 'pw';
             GRANT SELECT ON sales, big_sales TO dash;
             CREATE SEQUENCE admin_seq;
             CREATE SEQUENCE shared_seq;
             GRANT USAGE ON SEQUENCE shared_seq TO dash;",
        )
        .await
        .unwrap();
    let dash = login(&server, "dash", "pw").await.unwrap();
    let n: i64 = dash
        .query_one("SELECT count(*) FROM sales", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let n: i64 = dash
        .query_one("SELECT count(*) FROM big_sales", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    for statement in [
        "SELECT * FROM salaries",
        "SELECT * FROM sales JOIN salaries ON true",
        "INSERT INTO sales VALUES (3, 30)",
        "UPDATE sales SET amount = 0",
        "DELETE FROM sales",
        "TRUNCATE sales",
        "CREATE TABLE mine (x INT)",
        "DROP TABLE sales",
        "ALTER TABLE sales ADD COLUMN note TEXT",
        "CREATE SCHEMA own",
        "GRANT SELECT ON salaries TO dash",
        "CREATE USER intruder SUPERUSER PASSWORD 'x'",
        "CHECKPOINT",
        "COPY sales FROM STDIN",
        "BEGIN; DECLARE c CURSOR FOR SELECT * FROM salaries",
        "CREATE SEQUENCE own_seq",
        "SELECT nextval('admin_seq')",
        "SELECT setval('admin_seq', 5)",
        "ALTER SEQUENCE admin_seq RESTART",
        "DROP SEQUENCE admin_seq",
    ] {
        let err = dash.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            code(&err),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {err:?}"
        );
        dash.batch_execute("ROLLBACK").await.unwrap();
    }
    // USAGE on a sequence is what nextval needs.
    let next: i64 = dash
        .query_one("SELECT nextval('shared_seq')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 1);
    // What an EXPLAIN would read is checked; server files are superusers'.
    for statement in [
        "EXPLAIN SELECT * FROM salaries",
        "COPY sales TO '/tmp/quiver-sales.csv'",
        "CREATE EXTERNAL TABLE f (x INT) STORED AS CSV LOCATION '/tmp/quiver-f.csv'",
    ] {
        let err = dash.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            code(&err),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {err:?}"
        );
    }
    // Indexes are their table owner's to make and drop.
    for statement in [
        "CREATE INDEX i ON sales (id)",
        "DROP INDEX sales_pkey",
        "ALTER INDEX sales_pkey RENAME TO j",
    ] {
        let err = dash.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            code(&err),
            Some(&SqlState::INSUFFICIENT_PRIVILEGE),
            "{statement}: {err:?}"
        );
    }
    // A statement QuiverDB does not run is refused for every role, never
    // let through by a privilege check that does not know it.
    for statement in ["DROP TYPE i", "CREATE EXTENSION hstore"] {
        for client in [&dash, &admin] {
            let err = client.batch_execute(statement).await.unwrap_err();
            assert_eq!(
                code(&err),
                Some(&SqlState::FEATURE_NOT_SUPPORTED),
                "{statement}: {err:?}"
            );
        }
    }
    // A session's own state needs no privilege.
    dash.batch_execute(
        "SET search_path = public; SHOW search_path; BEGIN; COMMIT; RESET ALL; DISCARD ALL; DEALLOCATE ALL;
         LISTEN news; UNLISTEN *; SELECT pg_try_advisory_lock(1); SELECT pg_advisory_unlock_all();
         BEGIN; DECLARE c CURSOR FOR SELECT * FROM sales; FETCH 1 FROM c; CLOSE c; COMMIT",
    )
    .await
    .unwrap();
    // Prepared statements are checked when they run, too.
    let err = dash.prepare("SELECT * FROM salaries").await;
    if let Ok(statement) = err {
        let err = dash.query(&statement, &[]).await.unwrap_err();
        assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    }
    // The catalog answers truthfully.
    let row = dash
        .query_one(
            "SELECT has_table_privilege('sales', 'SELECT'), has_table_privilege('sales', 'INSERT'),
                    has_table_privilege('salaries', 'SELECT')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get(0), row.get(1), row.get(2)), (true, false, false));
    let visible: Vec<String> = first_column(
        &dash,
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await;
    assert_eq!(visible, ["big_sales", "sales"]);

    // Revoked: gone at once. Write access granted: works.
    admin
        .batch_execute("REVOKE SELECT ON sales FROM dash; GRANT INSERT ON sales TO dash")
        .await
        .unwrap();
    let err = dash.batch_execute("SELECT * FROM sales").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    dash.batch_execute("INSERT INTO sales VALUES (3, 30)")
        .await
        .unwrap();
}

#[tokio::test]
async fn roles_and_grants_survive_a_restart() {
    let dir = data_dir_with_admin();
    {
        let server = serve(&dir, &[]);
        let admin = login(&server, "admin", "adminpw").await.unwrap();
        admin
            .batch_execute(
                "CREATE TABLE t (x INT); INSERT INTO t VALUES (1);
                 CREATE USER reader PASSWORD 'r';
                 CREATE SCHEMA s; CREATE TABLE s.u (y INT);
                 GRANT USAGE ON SCHEMA s TO reader;
                 GRANT SELECT ON ALL TABLES IN SCHEMA s TO reader;
                 GRANT SELECT ON t TO reader;",
            )
            .await
            .unwrap();
        // No clean shutdown: the WAL alone must bring them back.
        drop(server);
    }
    let server = serve(&dir, &[]);
    let reader = login(&server, "reader", "r").await.unwrap();
    let n: i64 = reader
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    reader.batch_execute("SELECT * FROM s.u").await.unwrap();
    let admin = login(&server, "admin", "adminpw").await.unwrap();
    admin.batch_execute("CHECKPOINT").await.unwrap();
    drop(server);
    // And from the checkpoint.
    let server = serve(&dir, &[]);
    let reader = login(&server, "reader", "r").await.unwrap();
    reader.batch_execute("SELECT * FROM s.u").await.unwrap();
    let err = reader.batch_execute("DROP TABLE t").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
}

#[tokio::test]
async fn the_first_password_must_belong_to_a_superuser() {
    let server = TestServer::start();
    let client = server.connect().await;
    let err = client
        .batch_execute("CREATE USER dash PASSWORD 'pw'")
        .await
        .unwrap_err();
    assert!(
        message(&err).contains("first role with a password"),
        "{err:?}"
    );
    // Without passwords, loopback logins need none.
    client
        .batch_execute("CREATE USER admin SUPERUSER PASSWORD 'a'")
        .await
        .unwrap();
    // Now a login without one fails (tokio-postgres stops when asked
    // for a password it was not given).
    assert!(tokio_postgres::connect(&server.conn_string(), NoTls)
        .await
        .is_err());
}

#[test]
fn a_public_address_without_users_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_quiver"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--insecure-no-auth"), "{stderr}");
}

#[tokio::test]
async fn a_query_over_the_memory_limit_fails_and_others_go_on() {
    let server = TestServer::start_with(&["--memory", "--memory-limit", "20MB"]);
    let client = server.connect().await;
    let err = client
        .query(
            "SELECT a, count(*) FROM (SELECT a, repeat('x', 100) AS pad FROM generate_series(1, 3000000) AS t(a)) s
             GROUP BY a ORDER BY a DESC LIMIT 1",
            &[],
        )
        .await;
    // Either it spilled and finished, or it failed with 53200.
    if let Err(e) = err {
        assert_eq!(code(&e), Some(&SqlState::OUT_OF_MEMORY), "{e:?}");
    }
    let other = server.connect().await;
    let one: i32 = other.query_one("SELECT 1::int", &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    let again: i32 = client.query_one("SELECT 2::int", &[]).await.unwrap().get(0);
    assert_eq!(again, 2);
}

#[tokio::test]
async fn inserts_past_the_table_memory_limit_fail_with_53200() {
    let server = TestServer::start_with(&["--memory", "--max-table-memory", "4MB"]);
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (s TEXT)")
        .await
        .unwrap();
    let err = client
        .batch_execute("INSERT INTO big SELECT repeat('x', 1000) FROM generate_series(1, 20000)")
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::OUT_OF_MEMORY), "{err:?}");
    assert!(message(&err).contains("--max-table-memory"), "{err:?}");
    client
        .batch_execute("INSERT INTO big SELECT 'small' FROM generate_series(1, 10)")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM big", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
}

#[tokio::test]
async fn connections_beyond_the_limit_get_53300_and_superusers_keep_a_slot() {
    let dir = data_dir_with_admin();
    let server = serve(&dir, &["--max-connections", "5"]);
    let admin = login(&server, "admin", "adminpw").await.unwrap();
    admin
        .batch_execute("CREATE USER app PASSWORD 'p'")
        .await
        .unwrap();
    let mut held = Vec::new();
    // 5 slots, 3 reserved for superusers, one taken by admin: one left.
    held.push(login(&server, "app", "p").await.unwrap());
    let err = login(&server, "app", "p").await.unwrap_err();
    assert_eq!(code(&err), Some(&SqlState::TOO_MANY_CONNECTIONS), "{err:?}");
    // A superuser still gets in.
    held.push(login(&server, "admin", "adminpw").await.unwrap());
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    login(&server, "app", "p").await.unwrap();
}

#[tokio::test]
async fn an_idle_transaction_times_out() {
    let server = TestServer::start();
    let client = server.connect().await;
    client
        .batch_execute("SET idle_in_transaction_session_timeout = 300; BEGIN")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(client.batch_execute("SELECT 1").await.is_err());
    let other = server.connect().await;
    other.batch_execute("SELECT 1").await.unwrap();
}

/// A CA and a server certificate for localhost, written to `dir`.
pub(crate) fn certificates(dir: &std::path::Path) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "QuiverDB test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.to_str().unwrap().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("server.pem", cert.pem()),
        write("server.key", key.serialize_pem()),
    )
}

fn psql(port: u16, user: &str, password: &str, options: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .arg(format!(
            "host=localhost port={port} user={user} dbname=quiver {options}"
        ))
        .args(["-XAtc", sql])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .unwrap()
}

#[tokio::test]
async fn psql_logs_in_over_tls_and_plaintext_is_refused_when_tls_is_required() {
    if tool_version("psql").is_none() {
        println!("SKIPPED: psql is not installed (apt-get install postgresql-client); .ci/run installs it");
        return;
    }
    let dir = data_dir_with_admin();
    let (ca, cert, key) = certificates(dir.path());
    let server = serve(
        &dir,
        &["--tls-cert", &cert, "--tls-key", &key, "--require-tls"],
    );
    let port = server.port;
    let run = move |options: &'static str, password: &'static str| {
        let out = psql(port, "admin", password, options, "\\conninfo");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let verify_full: &'static str =
        Box::leak(format!("sslmode=verify-full sslrootcert={ca}").into_boxed_str());
    for options in ["sslmode=require", verify_full] {
        let (ok, out) = tokio::task::spawn_blocking(move || run(options, "adminpw"))
            .await
            .unwrap();
        assert!(ok, "{options}: {out}");
        assert!(out.contains("SSL connection"), "{options}: {out}");
    }
    let (ok, out) = tokio::task::spawn_blocking(move || run("sslmode=disable", "adminpw"))
        .await
        .unwrap();
    assert!(!ok, "plaintext login was accepted: {out}");
    assert!(out.contains("requires TLS"), "{out}");
    let (ok, out) = tokio::task::spawn_blocking(move || run("sslmode=require", "wrong"))
        .await
        .unwrap();
    assert!(!ok);
    assert!(out.contains("password authentication failed"), "{out}");
}

#[tokio::test]
async fn without_tls_the_ssl_request_is_declined_and_plaintext_works() {
    if tool_version("psql").is_none() {
        println!("SKIPPED: psql is not installed (apt-get install postgresql-client); .ci/run installs it");
        return;
    }
    let server = TestServer::start();
    let port = server.port;
    let out =
        tokio::task::spawn_blocking(move || psql(port, "tester", "", "sslmode=prefer", "SELECT 1"))
            .await
            .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = tokio::task::spawn_blocking(move || {
        psql(port, "tester", "", "sslmode=require", "SELECT 1")
    })
    .await
    .unwrap();
    assert!(!out.status.success());
}

const JDBC_JAR: &str = "/usr/share/java/postgresql.jar";

#[test]
fn pgjdbc_logs_in_over_tls() {
    if Command::new("javac").arg("-version").output().is_err() {
        println!("SKIPPED: javac is not installed (a JDK); .ci/run uses the machine's");
        return;
    }
    if !std::path::Path::new(JDBC_JAR).exists() {
        println!("SKIPPED: pgjdbc is not installed (apt-get install libpostgresql-jdbc-java); .ci/run installs it");
        return;
    }
    let dir = data_dir_with_admin();
    let (ca, cert, key) = certificates(dir.path());
    let classes = tempfile::tempdir().unwrap();
    let status = Command::new("javac")
        .args(["-d", classes.path().to_str().unwrap(), "-cp", JDBC_JAR])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/java/JdbcTls.java"
        ))
        .status()
        .unwrap();
    assert!(status.success(), "javac failed");
    let server = serve(
        &dir,
        &["--tls-cert", &cert, "--tls-key", &key, "--require-tls"],
    );
    let out = Command::new("java")
        .arg("-cp")
        .arg(format!("{}:{JDBC_JAR}", classes.path().display()))
        .arg("JdbcTls")
        .arg(server.port.to_string())
        .arg(&ca)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("ok: sslmode=verify-full"), "{text}");
}

/// Reads backend messages until the server closes; returns their types
/// and, for an ErrorResponse, its severity.
fn read_until_closed(stream: &mut std::net::TcpStream) -> Vec<(u8, String)> {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut messages = Vec::new();
    loop {
        let mut header = [0u8; 5];
        if stream.read_exact(&mut header).is_err() {
            return messages;
        }
        let len = i32::from_be_bytes(header[1..5].try_into().unwrap()) as usize;
        let mut body = vec![0u8; len - 4];
        if stream.read_exact(&mut body).is_err() {
            return messages;
        }
        let severity = if header[0] == b'E' {
            String::from_utf8_lossy(&body[1..body.iter().position(|b| *b == 0).unwrap()])
                .to_string()
        } else {
            String::new()
        };
        messages.push((header[0], severity));
    }
}

#[test]
fn a_broken_login_never_reaches_a_query() {
    use std::io::Write;
    let dir = data_dir_with_admin();
    let server = serve(&dir, &[]);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let mut startup = Vec::new();
    let params = b"\0\x03\0\0user\0admin\0database\0quiver\0\0";
    startup.extend_from_slice(&(params.len() as i32 + 4).to_be_bytes());
    startup.extend_from_slice(params);
    // A password message that is no SASLInitialResponse, then a query.
    let bad = [b'p', 0, 0, 0, 6, b'x', b'y'];
    let mut query = vec![b'Q'];
    let sql = b"CREATE TABLE pwned (x INT)\0";
    query.extend_from_slice(&(sql.len() as i32 + 4).to_be_bytes());
    query.extend_from_slice(sql);
    stream.write_all(&startup).unwrap();
    stream.write_all(&bad).unwrap();
    stream.write_all(&query).unwrap();
    let messages = read_until_closed(&mut stream);
    assert!(
        messages.iter().any(|(t, s)| *t == b'E' && s == "FATAL"),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|(t, _)| *t == b'C' || *t == b'Z'),
        "{messages:?}"
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let admin = login(&server, "admin", "adminpw").await.unwrap();
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'pwned'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0);
    });
}

#[tokio::test]
async fn upserts_need_update_and_others_activity_is_hidden() {
    let dir = data_dir_with_admin();
    let server = serve(&dir, &[]);
    let admin = login(&server, "admin", "adminpw").await.unwrap();
    admin
        .batch_execute(
            "CREATE TABLE kv (k INT PRIMARY KEY, v INT);
             CREATE USER app PASSWORD 'p';
             GRANT INSERT ON kv TO app;",
        )
        .await
        .unwrap();
    let app = login(&server, "app", "p").await.unwrap();
    app.batch_execute("INSERT INTO kv VALUES (1, 1)")
        .await
        .unwrap();
    let err = app
        .batch_execute("INSERT INTO kv VALUES (1, 2) ON CONFLICT (k) DO UPDATE SET v = excluded.v")
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        Some(&SqlState::INSUFFICIENT_PRIVILEGE),
        "{err:?}"
    );
    let queries: Vec<String> = app
        .query(
            "SELECT query FROM pg_stat_activity WHERE usename = 'admin'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(queries, ["<insufficient privilege>"]);
}

#[tokio::test]
async fn copy_data_past_the_table_memory_limit_is_refused() {
    use futures::SinkExt;
    let server = TestServer::start_with(&["--memory", "--max-table-memory", "2MB"]);
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE lines (s TEXT)")
        .await
        .unwrap();
    let sink = client.copy_in("COPY lines FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    let line = format!("{}\n", "x".repeat(1000));
    let mut failed = false;
    for _ in 0..5000 {
        if sink.send(bytes::Bytes::from(line.clone())).await.is_err() {
            failed = true;
            break;
        }
    }
    let outcome = if failed {
        Err(())
    } else {
        sink.finish().await.map_err(|_| ())
    };
    assert!(
        outcome.is_err(),
        "5 MB of COPY data went into a 2 MB table budget"
    );
    // The connection and the server go on.
    let n: i64 = client
        .query_one("SELECT count(*) FROM lines", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn role_features_we_lack_are_refused_not_ignored() {
    let server = TestServer::start();
    let client = server.connect().await;
    for statement in [
        "CREATE ROLE r CREATEROLE",
        "CREATE ROLE r CREATEDB",
        "CREATE ROLE r CONNECTION LIMIT 5",
        "CREATE ROLE r IN ROLE other",
    ] {
        let err = client.batch_execute(statement).await.unwrap_err();
        assert_eq!(
            code(&err),
            Some(&SqlState::FEATURE_NOT_SUPPORTED),
            "{statement}: {err:?}"
        );
    }
    client
        .batch_execute("CREATE TABLE t (x INT); CREATE ROLE r")
        .await
        .unwrap();
    let err = client
        .batch_execute("GRANT SELECT ON t TO r WITH GRANT OPTION")
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        Some(&SqlState::FEATURE_NOT_SUPPORTED),
        "{err:?}"
    );
    // A role without LOGIN cannot log in, even without passwords.
    let conn = format!("host=127.0.0.1 port={} user=r dbname=quiver", server.port);
    let Err(err) = tokio_postgres::connect(&conn, NoTls).await else {
        panic!("a NOLOGIN role logged in");
    };
    assert_eq!(
        code(&err),
        Some(&SqlState::INVALID_AUTHORIZATION_SPECIFICATION),
        "{err:?}"
    );
}

/// As in PostgreSQL, a role granted a view may change the table under it
/// through the view, and only within the view's rows; the table itself
/// stays out of reach.
#[tokio::test]
async fn a_role_changes_a_table_only_through_the_view_it_was_granted() {
    let dir = data_dir_with_admin();
    let server = serve(&dir, &[]);
    let admin = login(&server, "admin", "adminpw").await.unwrap();
    admin
        .batch_execute(
            "CREATE TABLE orders (id INT PRIMARY KEY, shop TEXT, total INT);
             INSERT INTO orders VALUES (1, 'north', 10), (2, 'south', 20);
             CREATE VIEW north AS SELECT id, total FROM orders WHERE shop = 'north';
             CREATE USER clerk PASSWORD 'pw';
             GRANT SELECT, UPDATE, DELETE ON north TO clerk;",
        )
        .await
        .unwrap();
    let clerk = login(&server, "clerk", "pw").await.unwrap();
    assert_eq!(
        clerk
            .execute("UPDATE north SET total = total + 1", &[])
            .await
            .unwrap(),
        1
    );
    let err = clerk
        .execute("UPDATE orders SET total = 0", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let err = clerk
        .execute("INSERT INTO north VALUES (3, 30)", &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE));
    let totals: Vec<i32> = admin
        .query("SELECT total FROM orders ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(totals, vec![11, 20]);
}
