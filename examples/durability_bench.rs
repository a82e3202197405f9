//! Durability benchmark (issue 3): checkpoint and restart on TPC-H lineitem,
//! and single-row autocommit INSERT throughput with fsync on, each next to a
//! reference measured in the same run (DuckDB via python `duckdb`,
//! PostgreSQL started from Debian's `postgresql` package).
//!
//! ```sh
//! cargo build --release --bin quiver --example durability_bench
//! target/release/examples/durability_bench [SCALE_FACTOR] [INSERT_SECONDS]
//! ```
//! A reference that is not installed is reported as skipped, with the
//! command that installs it.

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quiverdb::Session;

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => format!("{:.2}x", ours / t),
        _ => "n/a".into(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let sf: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let insert_secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let work = tempfile::tempdir()?;
    println!(
        "# QuiverDB durability benchmark, TPC-H SF {sf}, {} cores",
        std::thread::available_parallelism()?.get()
    );

    // --- generate lineitem ------------------------------------------------
    let started = Instant::now();
    let (schema, batches) = common::lineitem(sf)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    println!(
        "generated lineitem: {rows} rows in {}",
        secs(started.elapsed())
    );

    // --- QuiverDB: load, checkpoint ---------------------------------------
    let data_dir = work.path().join("quiver-data");
    let checkpoint_time = {
        let db = quiverdb::open(&data_dir).await?;
        let mut session = Session::new(db.clone());
        session.execute_sql("SET synchronous_commit = off").await;
        session
            .create_table_from_batches("lineitem", schema, batches)
            .await?;
        let started = Instant::now();
        let stats = quiverdb::storage::checkpoint(&db)?;
        let t = started.elapsed();
        println!(
            "quiver checkpoint: {} ({} bytes of Parquet)",
            secs(t),
            stats.bytes_written
        );
        t
    };
    let parquet = std::fs::read_dir(data_dir.join("tables"))?
        .next()
        .expect("a checkpoint file")?
        .path();

    // --- QuiverDB: restart to first scan ------------------------------------
    let started = Instant::now();
    let mut child = Command::new(common::quiver_binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .env("QUIVER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()?;
    let port = common::read_port(&mut child)?;
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=bench dbname=quiver"),
        tokio_postgres::NoTls,
    )
    .await?;
    tokio::spawn(conn);
    let count: i64 = client
        .query_one("SELECT count(*) FROM lineitem", &[])
        .await?
        .get(0);
    let restart_time = started.elapsed();
    assert_eq!(count as usize, rows);
    println!("quiver restart + first scan: {}", secs(restart_time));
    drop(client);
    let _ = child.kill();
    let _ = child.wait();

    // --- DuckDB reference ----------------------------------------------------
    let duck = duckdb_reference(&parquet, work.path());
    // --- insert throughput -----------------------------------------------------
    let quiver_inserts = {
        let mut child = Command::new(common::quiver_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(work.path().join("insert-data"))
            .env("QUIVER_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()?;
        let port = common::read_port(&mut child)?;
        let conn = format!("host=127.0.0.1 port={port} user=bench dbname=quiver");
        let result = insert_rates(&conn, insert_secs).await?;
        let _ = child.kill();
        let _ = child.wait();
        result
    };
    let pg_inserts = match common::postgres_reference(work.path(), &[]) {
        Ok(mut pg) => {
            let conn = format!(
                "host=127.0.0.1 port={} user=postgres dbname=postgres",
                pg.port
            );
            let r = insert_rates(&conn, insert_secs).await;
            pg.stop();
            r.ok()
        }
        Err(why) => {
            println!("PostgreSQL reference skipped: {why} (apt-get install postgresql)");
            None
        }
    };

    println!();
    println!("| measurement | QuiverDB | reference | QuiverDB / reference |");
    println!("|---|---|---|---|");
    let duck_ckpt = duck.as_ref().map(|d| d.0);
    let duck_open = duck.as_ref().map(|d| d.1);
    println!(
        "| checkpoint of lineitem SF {sf} ({rows} rows) | {} | DuckDB CHECKPOINT {} | {} (time; lower is better) |",
        secs(checkpoint_time),
        duck_ckpt.map(|t| format!("{t:.3} s")).unwrap_or("skipped".into()),
        ratio(checkpoint_time.as_secs_f64(), duck_ckpt)
    );
    println!(
        "| restart to first count(*) | {} | DuckDB reopen + count(*) {} | {} (time; lower is better) |",
        secs(restart_time),
        duck_open.map(|t| format!("{t:.3} s")).unwrap_or("skipped".into()),
        ratio(restart_time.as_secs_f64(), duck_open)
    );
    for (i, clients) in [1usize, 16].iter().enumerate() {
        let ours = quiver_inserts[i];
        let theirs = pg_inserts.as_ref().map(|p| p[i]);
        println!(
            "| single-row INSERT, {clients} client(s), fsync on | {ours:.0} rows/s | PostgreSQL {} | {} (rate; higher is better) |",
            theirs.map(|t| format!("{t:.0} rows/s")).unwrap_or("skipped".into()),
            ratio(ours, theirs)
        );
    }
    Ok(())
}

/// Rows per second of single-row autocommit INSERTs with 1 and 16 clients.
async fn insert_rates(conn: &str, seconds: u64) -> anyhow::Result<Vec<f64>> {
    let (setup, c) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
    tokio::spawn(c);
    setup
        .batch_execute("DROP TABLE IF EXISTS bench_insert")
        .await?;
    setup
        .batch_execute("CREATE TABLE bench_insert (id BIGINT, v TEXT)")
        .await?;
    let mut rates = Vec::new();
    for clients in [1usize, 16] {
        println!("inserting with {clients} client(s) for {seconds} s into {conn}");
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for c in 0..clients {
            let conn = conn.to_string();
            let done = done.clone();
            tasks.push(tokio::spawn(async move {
                let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                let insert = client
                    .prepare("INSERT INTO bench_insert VALUES ($1, $2)")
                    .await
                    .unwrap();
                let mut i = 0i64;
                while Instant::now() < deadline {
                    client
                        .execute(&insert, &[&(c as i64 * 1_000_000_000 + i), &"payload"])
                        .await
                        .unwrap();
                    i += 1;
                }
                done.fetch_add(i as u64, Ordering::Relaxed);
            }));
        }
        for t in tasks {
            t.await?;
        }
        rates.push(done.load(Ordering::Relaxed) as f64 / seconds as f64);
    }
    Ok(rates)
}

/// DuckDB: load the same rows into a database file, time CHECKPOINT, then
/// time reopening the file and a first count(*).
fn duckdb_reference(parquet: &Path, work: &Path) -> Option<(f64, f64)> {
    let db = work.join("duck.duckdb");
    let script = format!(
        r#"
import time, duckdb
con = duckdb.connect({db:?})
con.execute("SET checkpoint_threshold = '1TB'")
con.execute("CREATE TABLE lineitem AS SELECT * FROM read_parquet('{parquet}')")
t = time.time(); con.execute("CHECKPOINT"); ckpt = time.time() - t
con.close()
t = time.time()
con = duckdb.connect({db:?})
n = con.execute("SELECT count(*) FROM lineitem").fetchone()[0]
reopen = time.time() - t
print(ckpt, reopen, n)
"#,
        db = db.display().to_string(),
        parquet = parquet.display()
    );
    let parts = common::duckdb_numbers(&script)?;
    println!(
        "duckdb checkpoint: {:.3} s, reopen + first scan: {:.3} s",
        parts[0], parts[1]
    );
    Some((parts[0], parts[1]))
}
