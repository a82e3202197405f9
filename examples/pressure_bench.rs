//! Staying up under pressure (issue 17), each number next to PostgreSQL
//! measured in the same run on the same machine:
//!
//! 1. with one more heavy query running than there are cores: a new
//!    connection's login + `SELECT 1` and a `pg_stat_activity` query,
//!    p50/p99/max; how many queries wait for an execution slot;
//! 2. a CancelRequest (and a client that disconnects) during a cross
//!    join, a nested-loop join, a large sort and a window over a whole
//!    table: how long until the error is back and until the server's CPU
//!    use stops (QuiverDB's process; PostgreSQL's error only);
//! 3. 16 clients each updating random single rows of a 1M-row table by
//!    primary key, one transaction per update: commits/s and aborts;
//! 4. `SELECT * FROM lineitem` streamed to a client: time to the first
//!    row, the whole result, and the server's peak RSS over its loaded
//!    size.
//!
//! ```sh
//! cargo build --release --bin quiver --example pressure_bench
//! target/release/examples/pressure_bench [--seconds 10] [--sf 1,3]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use tokio_postgres::{Client, NoTls};

const CORES_EXTRA: usize = 1;

struct Args {
    seconds: u64,
    scale_factors: Vec<f64>,
}

fn parse_args() -> Args {
    let mut args = Args {
        seconds: 10,
        scale_factors: vec![1.0],
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--seconds" => args.seconds = argv[i + 1].parse().expect("--seconds N"),
            "--sf" => {
                args.scale_factors = argv[i + 1]
                    .split(',')
                    .map(|s| s.parse().expect("--sf 1,3"))
                    .collect()
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    args
}

/// A server under test: QuiverDB (its process, for CPU and RSS) or
/// PostgreSQL.
struct Target {
    name: &'static str,
    conninfo: String,
    pid: Option<u32>,
    /// SQL for the tables the workloads use.
    setup: &'static str,
}

const QUIVER_SETUP: &str = "
    CREATE TABLE p (id INT NOT NULL);
    INSERT INTO p SELECT CAST(g AS INT) FROM generate_series(1, 200000) g;
    CREATE TABLE big (id BIGINT NOT NULL, x BIGINT NOT NULL);
    INSERT INTO big SELECT g, (g * 7919) % 1000003 FROM generate_series(1, 10000000) g;
    CREATE TABLE acct (id INT PRIMARY KEY, bal BIGINT NOT NULL);
    INSERT INTO acct SELECT CAST(g AS INT), 0 FROM generate_series(1, 1000000) g;";

const POSTGRES_SETUP: &str = "
    CREATE TABLE p (id INT NOT NULL);
    INSERT INTO p SELECT g FROM generate_series(1, 200000) g;
    CREATE TABLE big (id BIGINT NOT NULL, x BIGINT NOT NULL);
    INSERT INTO big SELECT g, (g::bigint * 7919) % 1000003 FROM generate_series(1, 10000000) g;
    CREATE TABLE acct (id INT PRIMARY KEY, bal BIGINT NOT NULL);
    INSERT INTO acct SELECT g, 0 FROM generate_series(1, 1000000) g;
    VACUUM ANALYZE;";

/// Never finishes on either system (40 billion pairs).
const HEAVY: &str = "SELECT count(*) FROM p a, p b WHERE a.id + b.id = -1";

const CANCELLED: [(&str, &str); 4] = [
    ("cross join", HEAVY),
    (
        "nested-loop join",
        "SELECT count(*) FROM p a JOIN p b ON a.id < b.id",
    ),
    ("sort of 10M rows", "SELECT id FROM big ORDER BY x DESC, id"),
    (
        "window over 10M rows",
        "SELECT max(s) FROM (SELECT sum(id) OVER (ORDER BY x, id) AS s FROM big) w",
    ),
];

async fn connect(conninfo: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// CPU seconds the process has used (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<f64>().ok()))
        .sum();
    ticks / 100.0
}

fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Waits until the process uses less than a fifth of a core over 200 ms;
/// returns when that window started, measured from `since`.
async fn cpu_settles(pid: u32, since: Instant) -> Duration {
    let window = Duration::from_millis(200);
    loop {
        let start = Instant::now();
        let before = cpu_seconds(pid);
        tokio::time::sleep(window).await;
        let used = cpu_seconds(pid) - before;
        if used < 0.2 * window.as_secs_f64() {
            return start.saturating_duration_since(since);
        }
        if since.elapsed() > Duration::from_secs(60) {
            return since.elapsed();
        }
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

#[derive(Default, Clone)]
struct Responsiveness {
    login: (f64, f64, f64),
    activity: (f64, f64, f64),
    queued: i64,
}

/// Logins and pg_stat_activity while `cores + 1` heavy queries run.
async fn responsiveness(target: &Target, seconds: u64) -> anyhow::Result<Responsiveness> {
    let cores = quiverdb::engine::default_parallelism();
    let mut heavy = Vec::new();
    for _ in 0..cores + CORES_EXTRA {
        let client = connect(&target.conninfo).await?;
        let cancel = client.cancel_token();
        let task = tokio::spawn(async move {
            let _ = client.simple_query(HEAVY).await;
        });
        heavy.push((cancel, task));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let watcher = connect(&target.conninfo).await?;
    let mut logins = Vec::new();
    let mut activity = Vec::new();
    let mut queued = 0;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let started = Instant::now();
        let client = connect(&target.conninfo).await?;
        client.simple_query("SELECT 1").await?;
        logins.push(started.elapsed().as_secs_f64() * 1000.0);
        drop(client);
        let started = Instant::now();
        let rows = watcher
            .simple_query(
                "SELECT count(*) FILTER (WHERE wait_event = 'QueryQueue') FROM pg_stat_activity",
            )
            .await?;
        activity.push(started.elapsed().as_secs_f64() * 1000.0);
        for message in &rows {
            if let tokio_postgres::SimpleQueryMessage::Row(row) = message {
                queued = queued.max(row.get(0).and_then(|v| v.parse().ok()).unwrap_or(0));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (cancel, task) in heavy {
        let _ = cancel.cancel_query(NoTls).await;
        let _ = task.await;
    }
    let stats = |v: &mut Vec<f64>| {
        (
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.iter().cloned().fold(0.0, f64::max),
        )
    };
    Ok(Responsiveness {
        login: stats(&mut logins),
        activity: stats(&mut activity),
        queued,
    })
}

#[derive(Clone)]
struct Stop {
    what: String,
    /// From the cancel (or disconnect) to the error at the client.
    error_ms: Option<f64>,
    /// From the cancel to the server's CPU use settling.
    cpu_ms: Option<f64>,
}

/// Starts `sql`, cancels it after a second, and times the stop.
async fn cancel_one(target: &Target, what: &str, sql: &str) -> anyhow::Result<Stop> {
    let client = connect(&target.conninfo).await?;
    let cancel = client.cancel_token();
    let sql = sql.to_string();
    let task = tokio::spawn(async move {
        let result = client.simple_query(&sql).await;
        (Instant::now(), result.err().and_then(|e| e.code().cloned()))
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cancelled_at = Instant::now();
    cancel.cancel_query(NoTls).await?;
    let settle = async {
        match target.pid {
            Some(pid) => Some(cpu_settles(pid, cancelled_at).await),
            None => None,
        }
    };
    let ((ended, code), cpu) = tokio::join!(async { task.await.expect("query task") }, settle);
    let error_ms = match code {
        Some(code) if code.code() == "57014" => {
            Some(ended.saturating_duration_since(cancelled_at).as_secs_f64() * 1000.0)
        }
        _ => None, // it finished before the cancel
    };
    Ok(Stop {
        what: what.to_string(),
        error_ms,
        cpu_ms: cpu.map(|d| d.as_secs_f64() * 1000.0),
    })
}

/// Starts the heavy query and drops the connection after a second.
async fn disconnect_one(target: &Target) -> anyhow::Result<Stop> {
    let (client, connection) = tokio_postgres::connect(&target.conninfo, NoTls).await?;
    let connection = tokio::spawn(connection);
    let query = tokio::spawn(async move {
        let _ = client.simple_query(HEAVY).await;
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let gone_at = Instant::now();
    connection.abort();
    query.abort();
    let cpu = match target.pid {
        Some(pid) => Some(cpu_settles(pid, gone_at).await.as_secs_f64() * 1000.0),
        None => None,
    };
    Ok(Stop {
        what: "client disconnects (cross join)".into(),
        error_ms: None,
        cpu_ms: cpu,
    })
}

struct Updates {
    commits_per_second: f64,
    aborts: u64,
    commits: u64,
}

/// 16 clients, each `BEGIN; UPDATE ... WHERE id = $1; COMMIT` on random rows.
async fn row_updates(target: &Target, seconds: u64) -> anyhow::Result<Updates> {
    let commits = Arc::new(AtomicU64::new(0));
    let aborts = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client_id in 0..16u64 {
        let client = connect(&target.conninfo).await?;
        let (commits, aborts, stop) = (commits.clone(), aborts.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let update = client
                .prepare("UPDATE acct SET bal = bal + 1 WHERE id = $1")
                .await
                .expect("prepare");
            let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ (client_id + 1);
            while !stop.load(Ordering::Relaxed) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let id = (seed % 1_000_000) as i32 + 1;
                let done = async {
                    client.batch_execute("BEGIN").await?;
                    client.execute(&update, &[&id]).await?;
                    client.batch_execute("COMMIT").await
                };
                match done.await {
                    Ok(()) => {
                        commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) if e.code().is_some_and(|c| c.code() == "40001") => {
                        aborts.fetch_add(1, Ordering::Relaxed);
                        let _ = client.batch_execute("ROLLBACK").await;
                    }
                    Err(e) => panic!("update failed: {e}"),
                }
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let commits = commits.load(Ordering::Relaxed);
    Ok(Updates {
        commits_per_second: commits as f64 / elapsed,
        aborts: aborts.load(Ordering::Relaxed),
        commits,
    })
}

struct Streamed {
    rows: u64,
    first_row_ms: f64,
    total_s: f64,
    /// Peak RSS while streaming, over the RSS before the query.
    peak_growth: Option<u64>,
    loaded_rss: Option<u64>,
}

/// Loads lineitem at `sf` through COPY (CSV).
async fn load_lineitem(client: &Client, sf: f64) -> anyhow::Result<u64> {
    let (schema, batches) = common::lineitem(sf)?;
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            let ty = match f.data_type() {
                datafusion::arrow::datatypes::DataType::Int32 => "INTEGER".to_string(),
                datafusion::arrow::datatypes::DataType::Int64 => "BIGINT".to_string(),
                datafusion::arrow::datatypes::DataType::Decimal128(p, s) => {
                    format!("DECIMAL({p},{s})")
                }
                datafusion::arrow::datatypes::DataType::Date32 => "DATE".to_string(),
                _ => "TEXT".to_string(),
            };
            format!("{} {ty} NOT NULL", f.name())
        })
        .collect();
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS lineitem; CREATE TABLE lineitem ({})",
            columns.join(", ")
        ))
        .await?;
    let sink = client
        .copy_in::<_, bytes::Bytes>("COPY lineitem FROM STDIN (FORMAT csv)")
        .await?;
    futures::pin_mut!(sink);
    for batch in &batches {
        let mut csv = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(false)
            .build(Vec::new());
        csv.write(batch)?;
        sink.send(bytes::Bytes::from(csv.into_inner())).await?;
    }
    Ok(sink.finish().await?)
}

/// Streams `SELECT * FROM lineitem` (extended protocol, binary rows).
async fn stream_lineitem(target: &Target) -> anyhow::Result<Streamed> {
    let client = connect(&target.conninfo).await?;
    let loaded = target.pid.map(rss_bytes);
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = target.pid.map(|pid| {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    });
    let started = Instant::now();
    let rows = client
        .query_raw("SELECT * FROM lineitem", std::iter::empty::<i32>())
        .await?;
    futures::pin_mut!(rows);
    let mut first = None;
    let mut count = 0u64;
    while let Some(row) = rows.next().await {
        row?;
        if first.is_none() {
            first = Some(started.elapsed());
        }
        count += 1;
    }
    let total = started.elapsed();
    done.store(true, Ordering::Relaxed);
    if let Some(sampler) = sampler {
        sampler.await?;
    }
    Ok(Streamed {
        rows: count,
        first_row_ms: first.unwrap_or(total).as_secs_f64() * 1000.0,
        total_s: total.as_secs_f64(),
        peak_growth: loaded.map(|l| peak.load(Ordering::Relaxed).saturating_sub(l)),
        loaded_rss: loaded,
    })
}

struct Quiver {
    child: Child,
    port: u16,
}

impl Quiver {
    fn start() -> anyhow::Result<Quiver> {
        let mut child = Command::new(common::quiver_binary())
            .args(["serve", "--memory", "--listen", "127.0.0.1:0"])
            .env("QUIVER_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("start target/release/quiver (cargo build --release --bin quiver)")?;
        let port = common::read_port(&mut child)?;
        Ok(Quiver { child, port })
    }
}

impl Drop for Quiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Report {
    responsive: Responsiveness,
    stops: Vec<Stop>,
    updates: Updates,
    streamed: Vec<(f64, Streamed)>,
}

async fn run(target: &Target, args: &Args) -> anyhow::Result<Report> {
    let setup = connect(&target.conninfo).await?;
    let started = Instant::now();
    // One at a time: PostgreSQL runs VACUUM only outside a transaction.
    for statement in target.setup.split(';').filter(|s| !s.trim().is_empty()) {
        setup.batch_execute(statement).await?;
    }
    println!(
        "{}: tables loaded in {:.1} s",
        target.name,
        started.elapsed().as_secs_f64()
    );
    let responsive = responsiveness(target, args.seconds).await?;
    let mut stops = Vec::new();
    for (what, sql) in CANCELLED {
        stops.push(cancel_one(target, what, sql).await?);
    }
    stops.push(disconnect_one(target).await?);
    let updates = row_updates(target, args.seconds).await?;
    setup
        .batch_execute("DROP TABLE big; DROP TABLE p; DROP TABLE acct")
        .await?;
    let mut streamed = Vec::new();
    for &sf in &args.scale_factors {
        let rows = load_lineitem(&setup, sf).await?;
        println!("{}: lineitem SF {sf} loaded ({rows} rows)", target.name);
        streamed.push((sf, stream_lineitem(target).await?));
    }
    Ok(Report {
        responsive,
        stops,
        updates,
        streamed,
    })
}

fn ms(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.0} ms"))
}

fn triple((p50, p99, max): (f64, f64, f64)) -> String {
    format!("{p50:.1} / {p99:.1} / {max:.1}")
}

fn print(q: &Report, pg: Option<&Report>) {
    let cores = quiverdb::engine::default_parallelism();
    println!(
        "\n## With {} heavy queries running ({cores} cores)\n",
        cores + CORES_EXTRA
    );
    println!("| | QuiverDB | PostgreSQL |\n|---|---|---|");
    let pg_or = |f: &dyn Fn(&Report) -> String| pg.map_or("n/a".into(), f);
    println!(
        "| new connection: login + `SELECT 1`, ms p50 / p99 / max | {} | {} |",
        triple(q.responsive.login),
        pg_or(&|p| triple(p.responsive.login))
    );
    println!(
        "| `pg_stat_activity` query, ms p50 / p99 / max | {} | {} |",
        triple(q.responsive.activity),
        pg_or(&|p| triple(p.responsive.activity))
    );
    println!(
        "| queries seen waiting for a slot (`wait_event = 'QueryQueue'`) | {} | n/a |",
        q.responsive.queued
    );
    println!("\n## Stopping a query\n");
    println!("| query | QuiverDB: error back | QuiverDB: CPU use stops | PostgreSQL: error back |\n|---|---|---|---|");
    for (i, stop) in q.stops.iter().enumerate() {
        let theirs = pg.and_then(|p| p.stops.get(i)).and_then(|s| s.error_ms);
        println!(
            "| {} | {} | {} | {} |",
            stop.what,
            ms(stop.error_ms),
            ms(stop.cpu_ms),
            ms(theirs)
        );
    }
    println!("\n## 16 clients updating random rows of a 1M-row table by key\n");
    println!("| | commits/s | 40001 aborts | commits |\n|---|---|---|---|");
    let line = |name: &str, u: &Updates| {
        println!(
            "| {name} | {:.0} | {} | {} |",
            u.commits_per_second, u.aborts, u.commits
        )
    };
    line("QuiverDB", &q.updates);
    if let Some(p) = pg {
        line("PostgreSQL (READ COMMITTED)", &p.updates);
        println!(
            "\nQuiverDB / PostgreSQL throughput: {:.2}x",
            q.updates.commits_per_second / p.updates.commits_per_second
        );
    }
    println!("\n## Streaming `SELECT * FROM lineitem` (binary, extended protocol)\n");
    println!("| SF | rows | QuiverDB first row | QuiverDB all rows | QuiverDB RSS loaded | peak RSS growth while streaming | PostgreSQL first row | PostgreSQL all rows |\n|---|---|---|---|---|---|---|---|");
    for (i, (sf, s)) in q.streamed.iter().enumerate() {
        let theirs = pg.and_then(|p| p.streamed.get(i)).map(|(_, s)| s);
        println!(
            "| {sf} | {} | {:.1} ms | {:.2} s | {} MiB | {} MiB | {} | {} |",
            s.rows,
            s.first_row_ms,
            s.total_s,
            s.loaded_rss.unwrap_or(0) >> 20,
            s.peak_growth.unwrap_or(0) >> 20,
            theirs.map_or("n/a".into(), |t| format!("{:.1} ms", t.first_row_ms)),
            theirs.map_or("n/a".into(), |t| format!("{:.2} s", t.total_s)),
        );
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let quiver = Quiver::start()?;
    let ours = Target {
        name: "QuiverDB",
        conninfo: format!(
            "host=127.0.0.1 port={} user=bench dbname=quiver",
            quiver.port
        ),
        pid: Some(quiver.child.id()),
        setup: QUIVER_SETUP,
    };
    let q = run(&ours, &args).await?;
    drop(quiver);
    let work = tempfile::tempdir()?;
    let pg = match common::postgres_reference(
        work.path(),
        // A disconnected client's query stops within a second there too,
        // instead of burning a core for the rest of the run.
        &[
            "shared_buffers=1GB",
            "max_connections=200",
            "client_connection_check_interval=1000",
        ],
    ) {
        Ok(mut postgres) => {
            let theirs = Target {
                name: "PostgreSQL",
                conninfo: postgres.conninfo(),
                pid: None,
                setup: POSTGRES_SETUP,
            };
            let report = run(&theirs, &args).await;
            postgres.stop();
            Some(report?)
        }
        Err(e) => {
            println!("PostgreSQL reference skipped: {e}");
            None
        }
    };
    print(&q, pg.as_ref());
    Ok(())
}
