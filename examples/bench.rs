//! The performance suite (issue 7): TPC-H data generated in process, loaded
//! into a QuiverDB server through the wire, and measured next to DuckDB
//! (python `duckdb`, in memory, in process) and PostgreSQL (Debian's
//! `postgresql`, started on loopback) in the same run. Prints markdown.
//!
//! ```sh
//! benches/run.sh --sf 1 --scale 0.1,1,3     # installs the references, builds, runs
//! target/release/examples/bench --sf 1      # the same without installing
//! ```
//!
//! Workloads (all clients are tokio-postgres in this process, fetching
//! every row):
//! 1. the 22 TPC-H queries (`benches/tpch/`), median of `--runs` after a
//!    warm-up, against DuckDB;
//! 2. `COPY lineitem FROM STDIN (FORMAT csv)` against PostgreSQL's COPY
//!    (same client, same file) and DuckDB's `COPY FROM` the file;
//! 3. `SELECT * FROM lineitem`, text and binary, against PostgreSQL;
//! 4. small statements against PostgreSQL (with its primary-key index):
//!    prepared primary-key lookups on orders, 1 and 16 clients, and
//!    `SELECT 1` as a simple and as a prepared query (`--small` runs only
//!    these, with only orders loaded);
//! 5. 16 clients running Q1, Q6, Q14 in turn, against DuckDB with 16
//!    threads;
//! 6. resident memory after loading, against the CSV size and DuckDB;
//! 7. with `--scale`, workloads 1, 2 and 6 at each scale factor.

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchReader};
use futures::{SinkExt, StreamExt};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};
use tpchgen::generators::OrderGenerator;

#[path = "common/tpch.rs"]
mod tpch_data;
use tpch_data::{batches_of, sql_type, TABLES};

#[derive(Parser)]
struct Args {
    /// TPC-H scale factor of the full suite.
    #[arg(long, default_value_t = 1.0)]
    sf: f64,
    /// Also run workloads 1, 2 and 6 at these scale factors (comma-separated).
    #[arg(long, value_delimiter = ',')]
    scale: Vec<f64>,
    /// Timed runs of each TPC-H query (after one warm-up).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds of each multi-client run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Where generated data is kept between runs.
    #[arg(long, default_value = "target/bench-data")]
    data: PathBuf,
    /// Skip the PostgreSQL reference.
    #[arg(long)]
    no_postgres: bool,
    /// Skip the DuckDB reference.
    #[arg(long)]
    no_duckdb: bool,
    /// Only load, memory and TPC-H (workloads 1, 2 and 6) at every scale
    /// factor: no streaming, lookups, mix or PostgreSQL.
    #[arg(long)]
    tpch_only: bool,
    /// Only the small statements (workload 4), against PostgreSQL.
    #[arg(long)]
    small: bool,
}

/// One scale factor's generated data: a Parquet and a header-less CSV file
/// per table.
struct Dataset {
    dir: PathBuf,
    rows: Vec<(String, u64)>,
    schemas: Vec<SchemaRef>,
    csv_bytes: u64,
}

impl Dataset {
    fn csv(&self, table: &str) -> PathBuf {
        self.dir.join(format!("{table}.csv"))
    }

    fn rows(&self, table: &str) -> u64 {
        self.rows.iter().find(|(t, _)| t == table).unwrap().1
    }

    /// `CREATE TABLE` for every table, valid for QuiverDB, PostgreSQL and
    /// DuckDB alike.
    fn ddl(&self, table: &str) -> String {
        let i = TABLES.iter().position(|t| *t == table).unwrap();
        let columns: Vec<String> = self.schemas[i]
            .fields()
            .iter()
            .map(|f| {
                let ty = sql_type(f.data_type());
                format!("{} {ty} NOT NULL", f.name())
            })
            .collect();
        format!("CREATE TABLE {table} ({})", columns.join(", "))
    }
}

/// Generates the eight tables at `sf` (or reuses an earlier run's files).
fn generate(root: &Path, sf: f64) -> anyhow::Result<Dataset> {
    let dir = root.join(format!("sf{sf}"));
    let done = dir.join("rows.txt");
    let schemas: Vec<SchemaRef> = TABLES
        .iter()
        .map(|t| batches_of(t, 0.01).schema())
        .collect();
    if !done.exists() {
        std::fs::create_dir_all(&dir)?;
        let started = Instant::now();
        // Tables are generated on separate threads, lineitem (70% of the
        // rows) starting first.
        let counts: Vec<(String, u64)> = std::thread::scope(|s| {
            let handles: Vec<_> = TABLES
                .iter()
                .rev()
                .map(|table| {
                    let dir = &dir;
                    s.spawn(move || write_table(dir, table, sf).map(|n| (table.to_string(), n)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect::<anyhow::Result<Vec<_>>>()
        })?;
        let text: String = counts.iter().map(|(t, n)| format!("{t} {n}\n")).collect();
        std::fs::write(&done, text)?;
        println!(
            "generated TPC-H SF {sf} in {:.1} s into {}",
            started.elapsed().as_secs_f64(),
            dir.display()
        );
    }
    let rows = std::fs::read_to_string(&done)?
        .lines()
        .map(|l| {
            let (t, n) = l.split_once(' ').unwrap();
            (t.to_string(), n.parse().unwrap())
        })
        .collect();
    let csv_bytes = TABLES
        .iter()
        .map(|t| std::fs::metadata(dir.join(format!("{t}.csv"))).map(|m| m.len()))
        .sum::<Result<u64, _>>()?;
    Ok(Dataset {
        dir,
        rows,
        schemas,
        csv_bytes,
    })
}

fn write_table(dir: &Path, table: &str, sf: f64) -> anyhow::Result<u64> {
    let reader = batches_of(table, sf);
    let schema = reader.schema();
    let mut csv = datafusion::arrow::csv::WriterBuilder::new()
        .with_header(false)
        .build(std::io::BufWriter::new(std::fs::File::create(
            dir.join(format!("{table}.csv")),
        )?));
    let mut parquet = datafusion::parquet::arrow::ArrowWriter::try_new(
        std::fs::File::create(dir.join(format!("{table}.parquet")))?,
        schema,
        None,
    )?;
    let mut rows = 0;
    for batch in reader {
        let batch: RecordBatch = batch?;
        rows += batch.num_rows() as u64;
        csv.write(&batch)?;
        parquet.write(&batch)?;
    }
    parquet.close()?;
    csv.into_inner().flush()?;
    Ok(rows)
}

fn queries() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tpch");
    (1..=22)
        .map(|i| std::fs::read_to_string(dir.join(format!("q{i}.sql"))).expect("query file"))
        .collect()
}

// ---------------------------------------------------------------------------
// Clients

async fn connect(conninfo: &str) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Streams a CSV file through `COPY table FROM STDIN`; returns the rows
/// the server reports.
async fn copy_csv(client: &Client, table: &str, path: &Path) -> anyhow::Result<u64> {
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {table} FROM STDIN (FORMAT csv)"))
        .await?;
    futures::pin_mut!(sink);
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        sink.send(bytes::Bytes::copy_from_slice(&buf[..n])).await?;
    }
    Ok(sink.finish().await?)
}

/// Runs one statement with the simple protocol (text rows, as psql does),
/// fetching every row; returns the rows.
async fn simple_rows(client: &Client, sql: &str) -> anyhow::Result<usize> {
    let stream = client.simple_query_raw(sql).await?;
    futures::pin_mut!(stream);
    let mut rows = 0;
    while let Some(message) = stream.next().await {
        if let SimpleQueryMessage::Row(_) = message? {
            rows += 1;
        }
    }
    Ok(rows)
}

/// The extended protocol with binary results, fetching every row.
async fn binary_rows(client: &Client, sql: &str) -> anyhow::Result<usize> {
    let stream = client.query_raw(sql, Vec::<i64>::new()).await?;
    futures::pin_mut!(stream);
    let mut rows = 0;
    while let Some(row) = stream.next().await {
        row?;
        rows += 1;
    }
    Ok(rows)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 * p) as usize).min(values.len() - 1)]
}

/// Query times and row counts: (median seconds, rows) per query.
async fn tpch(client: &Client, runs: usize) -> anyhow::Result<Vec<(f64, usize)>> {
    let mut out = Vec::new();
    for (i, sql) in queries().iter().enumerate() {
        let rows = simple_rows(client, sql)
            .await
            .with_context(|| format!("TPC-H Q{}", i + 1))?;
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            simple_rows(client, sql).await?;
            times.push(started.elapsed().as_secs_f64());
        }
        out.push((median(times), rows));
    }
    Ok(out)
}

/// Latencies of prepared primary-key lookups on orders from `clients`
/// connections (1 client: `count` lookups; more: for `seconds`).
async fn lookups(
    conninfo: &str,
    clients: usize,
    orders: u64,
    count: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<f64>, f64)> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let conninfo = conninfo.to_string();
        tasks.push(tokio::spawn(async move {
            let client = connect(&conninfo).await?;
            let statement = client
                .prepare(
                    "SELECT o_orderkey, o_custkey, o_orderstatus, o_totalprice, o_orderdate, \
                     o_orderpriority FROM orders WHERE o_orderkey = $1",
                )
                .await?;
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (c as u64 + 1);
            let mut latencies = Vec::new();
            let mut i = 0;
            while (clients == 1 && i < count) || (clients > 1 && Instant::now() < deadline) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let key = OrderGenerator::make_order_key((seed % orders) as i64 + 1);
                let begun = Instant::now();
                let rows = client.query(&statement, &[&key]).await?;
                latencies.push(begun.elapsed().as_secs_f64());
                anyhow::ensure!(rows.len() == 1, "order {key}: {} rows", rows.len());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rate = all.len() as f64 / elapsed;
    Ok((all, rate))
}

/// Workload 4 on one server.
async fn small_statements(conninfo: &str, orders: u64, seconds: u64) -> anyhow::Result<SmallRun> {
    let (select1_simple, select1_prepared) = select_one(conninfo, 10_000).await?;
    Ok(SmallRun {
        lookup1: lookups(conninfo, 1, orders, 10_000, 0).await?.0,
        lookup16: lookups(conninfo, 16, orders, 0, seconds).await?,
        select1_simple,
        select1_prepared,
    })
}

/// Latencies of `count` `SELECT 1` sent as a simple query, then as a
/// prepared statement executed again and again (after a short warm-up).
async fn select_one(conninfo: &str, count: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let client = connect(conninfo).await?;
    let statement = client.prepare("SELECT 1").await?;
    for _ in 0..200 {
        client.simple_query("SELECT 1").await?;
        client.query(&statement, &[]).await?;
    }
    let mut simple = Vec::with_capacity(count);
    for _ in 0..count {
        let begun = Instant::now();
        let messages = client.simple_query("SELECT 1").await?;
        simple.push(begun.elapsed().as_secs_f64());
        let rows = messages
            .iter()
            .filter(|m| matches!(m, SimpleQueryMessage::Row(_)))
            .count();
        anyhow::ensure!(rows == 1, "SELECT 1 (simple): {rows} rows");
    }
    let mut prepared = Vec::with_capacity(count);
    for _ in 0..count {
        let begun = Instant::now();
        let rows = client.query(&statement, &[]).await?;
        prepared.push(begun.elapsed().as_secs_f64());
        anyhow::ensure!(
            rows.len() == 1 && rows[0].get::<_, i32>(0) == 1,
            "SELECT 1 (prepared): wrong answer"
        );
    }
    Ok((simple, prepared))
}

/// `clients` connections running Q1, Q6 and Q14 in turn for `seconds`:
/// (queries per second, p50, p99).
async fn mix(conninfo: &str, clients: usize, seconds: u64) -> anyhow::Result<(f64, f64, f64)> {
    let texts = queries();
    let mix = [texts[0].clone(), texts[5].clone(), texts[13].clone()];
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let conninfo = conninfo.to_string();
        let mix = mix.clone();
        tasks.push(tokio::spawn(async move {
            let client = connect(&conninfo).await?;
            let mut latencies = Vec::new();
            let mut i = c;
            while Instant::now() < deadline {
                let begun = Instant::now();
                simple_rows(&client, &mix[i % 3]).await?;
                latencies.push(begun.elapsed().as_secs_f64());
                i += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let qps = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((qps, percentile(&mut all, 0.5), percentile(&mut all, 0.99)))
}

// ---------------------------------------------------------------------------
// Servers

struct Quiver {
    child: Child,
    conninfo: String,
    _data: tempfile::TempDir,
}

impl Quiver {
    fn start() -> anyhow::Result<Quiver> {
        let data = tempfile::tempdir()?;
        let mut child = Command::new(common::quiver_binary())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env("QUIVER_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .context("start target/release/quiver (cargo build --release --bin quiver)")?;
        let port = common::read_port(&mut child)?;
        Ok(Quiver {
            child,
            conninfo: format!("host=127.0.0.1 port={port} user=bench dbname=quiver"),
            _data: data,
        })
    }

    fn rss(&self) -> u64 {
        rss_bytes(self.child.id())
    }
}

impl Drop for Quiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------
// Results

#[derive(Default)]
struct QuiverRun {
    load_secs: f64,
    memory: u64,
    tpch: Vec<(f64, usize)>,
    text_secs: f64,
    binary_secs: f64,
    small: SmallRun,
    mix: (f64, f64, f64),
}

/// Latencies (seconds) of the small statements; the 16-client lookups
/// with their rate.
#[derive(Default)]
struct SmallRun {
    lookup1: Vec<f64>,
    lookup16: (Vec<f64>, f64),
    select1_simple: Vec<f64>,
    select1_prepared: Vec<f64>,
}

#[derive(serde::Deserialize)]
struct DuckRun {
    version: String,
    threads: serde_json::Value,
    memory: u64,
    tpch: Vec<DuckQuery>,
    load: f64,
    mix: Option<DuckMix>,
}

#[derive(serde::Deserialize)]
struct DuckQuery {
    median: f64,
    rows: usize,
}

#[derive(serde::Deserialize)]
struct DuckMix {
    qps: f64,
    p50: f64,
    p99: f64,
}

#[derive(Default)]
struct PostgresRun {
    version: String,
    load_secs: f64,
    text_secs: f64,
    binary_secs: f64,
    small: SmallRun,
}

/// QuiverDB: load every table through COPY, checkpoint, measure memory,
/// then the query workloads (all of them when `full`).
async fn run_quiver(data: &Dataset, args: &Args, full: bool) -> anyhow::Result<QuiverRun> {
    let server = Quiver::start()?;
    let client = connect(&server.conninfo).await?;
    let mut run = QuiverRun::default();
    for table in TABLES {
        client.batch_execute(&data.ddl(table)).await?;
        let started = Instant::now();
        let rows = copy_csv(&client, table, &data.csv(table)).await?;
        anyhow::ensure!(
            rows == data.rows(table),
            "{table}: COPY reported {rows} rows"
        );
        if table == "lineitem" {
            run.load_secs = started.elapsed().as_secs_f64();
        }
    }
    client
        .batch_execute("ALTER TABLE orders ADD PRIMARY KEY (o_orderkey)")
        .await?;
    // The WAL goes to Parquet now rather than in the middle of a query.
    client.batch_execute("CHECKPOINT").await?;
    run.memory = server.rss();
    println!(
        "quiver: lineitem COPY {:.2} s, RSS {:.2} GiB",
        run.load_secs,
        gib(run.memory)
    );
    run.tpch = tpch(&client, args.runs).await?;
    println!(
        "quiver: TPC-H total {:.2} s",
        run.tpch.iter().map(|q| q.0).sum::<f64>()
    );
    if !full {
        return Ok(run);
    }
    let (text, binary) = streaming(&client, data.rows("lineitem")).await?;
    run.text_secs = text;
    run.binary_secs = binary;
    run.small = small_statements(&server.conninfo, data.rows("orders"), args.seconds).await?;
    run.mix = mix(&server.conninfo, 16, args.seconds).await?;
    println!("quiver: streaming, lookups and the 16-client mix done");
    Ok(run)
}

/// `--small`: workload 4 alone, with only orders loaded.
async fn run_small(data: &Dataset, args: &Args) -> anyhow::Result<()> {
    let ours = {
        let server = Quiver::start()?;
        let client = connect(&server.conninfo).await?;
        client.batch_execute(&data.ddl("orders")).await?;
        copy_csv(&client, "orders", &data.csv("orders")).await?;
        client
            .batch_execute("ALTER TABLE orders ADD PRIMARY KEY (o_orderkey); CHECKPOINT")
            .await?;
        small_statements(&server.conninfo, data.rows("orders"), args.seconds).await?
    };
    let theirs = run_postgres(data, args).await;
    report_small(&ours, theirs.as_ref().map(|p| &p.small));
    Ok(())
}

/// Seconds to fetch all of lineitem as text and as binary rows.
async fn streaming(client: &Client, expected: u64) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let rows = simple_rows(client, "SELECT * FROM lineitem").await?;
    let text = started.elapsed().as_secs_f64();
    anyhow::ensure!(rows as u64 == expected, "text streaming: {rows} rows");
    let started = Instant::now();
    let rows = binary_rows(client, "SELECT * FROM lineitem").await?;
    let binary = started.elapsed().as_secs_f64();
    anyhow::ensure!(rows as u64 == expected, "binary streaming: {rows} rows");
    Ok((text, binary))
}

fn run_duckdb(data: &Dataset, args: &Args, full: bool) -> Option<DuckRun> {
    if args.no_duckdb {
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/duckdb_reference.py");
    let queries = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/tpch");
    let seconds = if full { args.seconds } else { 0 };
    let out = Command::new("python3")
        .arg(script)
        .arg(&data.dir)
        .arg(queries)
        .arg(args.runs.to_string())
        .arg(seconds.to_string())
        .arg("16")
        .output();
    match out {
        Ok(out) if out.status.success() => match serde_json::from_slice::<DuckRun>(&out.stdout) {
            Ok(run) => Some(run),
            Err(e) => {
                println!("DuckDB reference skipped: unreadable output ({e})");
                None
            }
        },
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            println!(
                "DuckDB reference skipped: {} (pip install duckdb)",
                err.lines().last().unwrap_or("")
            );
            None
        }
        Err(e) => {
            println!("DuckDB reference skipped: {e} (pip install duckdb)");
            None
        }
    }
}

async fn run_postgres(data: &Dataset, args: &Args) -> Option<PostgresRun> {
    if args.no_postgres {
        return None;
    }
    let work = tempfile::tempdir().ok()?;
    // Enough shared buffers to keep lineitem and orders cached.
    let pg = match common::postgres_reference(work.path(), &["shared_buffers=2GB"]) {
        Ok(pg) => pg,
        Err(why) => {
            println!("PostgreSQL reference skipped: {why} (apt-get install postgresql)");
            return None;
        }
    };
    match postgres_workloads(data, args, &pg.conninfo()).await {
        Ok(run) => Some(run),
        Err(e) => {
            println!("PostgreSQL reference failed: {e:#}");
            None
        }
    }
}

async fn postgres_workloads(
    data: &Dataset,
    args: &Args,
    conninfo: &str,
) -> anyhow::Result<PostgresRun> {
    let client = connect(conninfo).await?;
    let mut run = PostgresRun {
        version: client
            .query_one("SHOW server_version", &[])
            .await?
            .get::<_, String>(0),
        ..Default::default()
    };
    let tables: &[&str] = if args.small {
        &["orders"]
    } else {
        &["orders", "lineitem"]
    };
    for &table in tables {
        client.batch_execute(&data.ddl(table)).await?;
        let started = Instant::now();
        copy_csv(&client, table, &data.csv(table)).await?;
        if table == "lineitem" {
            run.load_secs = started.elapsed().as_secs_f64();
        }
    }
    client
        .batch_execute("ALTER TABLE orders ADD PRIMARY KEY (o_orderkey)")
        .await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    if args.small {
        run.small = small_statements(conninfo, data.rows("orders"), args.seconds).await?;
        return Ok(run);
    }
    println!("postgres: lineitem COPY {:.2} s", run.load_secs);
    // One untimed pass brings lineitem into shared buffers.
    simple_rows(&client, "SELECT count(*) FROM lineitem").await?;
    let (text, binary) = streaming(&client, data.rows("lineitem")).await?;
    run.text_secs = text;
    run.binary_secs = binary;
    run.small = small_statements(conninfo, data.rows("orders"), args.seconds).await?;
    Ok(run)
}

// ---------------------------------------------------------------------------
// Report

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn ms(s: f64) -> String {
    format!("{:.1} ms", s * 1000.0)
}

fn us(s: f64) -> String {
    format!("{:.0} µs", s * 1e6)
}

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => format!("{:.2}x", ours / t),
        _ => "n/a".into(),
    }
}

fn rate(rows: u64, secs: f64) -> String {
    format!("{:.2}M rows/s", rows as f64 / secs / 1e6)
}

/// Workload 4's tables.
fn report_small(q: &SmallRun, p: Option<&SmallRun>) {
    println!();
    println!("## Small statements, one client: p50 latency");
    println!();
    println!("| statement | QuiverDB p50 | p99 | PostgreSQL p50 | p99 | p50 vs PostgreSQL |");
    println!("|---|---|---|---|---|---|");
    for (name, ours, theirs) in [
        (
            "`SELECT 1`, simple query",
            &q.select1_simple,
            p.map(|p| &p.select1_simple),
        ),
        (
            "`SELECT 1`, prepared",
            &q.select1_prepared,
            p.map(|p| &p.select1_prepared),
        ),
        (
            "primary-key lookup, prepared",
            &q.lookup1,
            p.map(|p| &p.lookup1),
        ),
    ] {
        let mut ours = ours.clone();
        let o50 = percentile(&mut ours, 0.5);
        let o99 = percentile(&mut ours, 0.99);
        let t = theirs.map(|t| {
            let mut t = t.clone();
            (percentile(&mut t, 0.5), percentile(&mut t, 0.99))
        });
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            us(o50),
            us(o99),
            t.map(|t| us(t.0)).unwrap_or("skipped".into()),
            t.map(|t| us(t.1)).unwrap_or("skipped".into()),
            ratio(o50, t.map(|t| t.0)),
        );
    }
    println!();
    println!("## Point lookups: prepared `SELECT … FROM orders WHERE o_orderkey = $1`");
    println!();
    println!("| clients | QuiverDB p50 | p99 | lookups/s | PostgreSQL p50 | p99 | lookups/s | p50 vs PostgreSQL |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut ours1 = q.lookup1.clone();
    let ours1_rate = ours1.len() as f64 / ours1.iter().sum::<f64>();
    let mut theirs1 = p.map(|p| p.lookup1.clone());
    let theirs1_rate = theirs1
        .as_ref()
        .map(|t| t.len() as f64 / t.iter().sum::<f64>());
    let mut ours16 = q.lookup16.0.clone();
    let mut theirs16 = p.map(|p| p.lookup16.0.clone());
    for (clients, ours, ours_rate, theirs, theirs_rate) in [
        (1, &mut ours1, ours1_rate, theirs1.as_mut(), theirs1_rate),
        (
            16,
            &mut ours16,
            q.lookup16.1,
            theirs16.as_mut(),
            p.map(|p| p.lookup16.1),
        ),
    ] {
        let o50 = percentile(ours, 0.5);
        let o99 = percentile(ours, 0.99);
        let t = theirs.map(|t| (percentile(t, 0.5), percentile(t, 0.99)));
        println!(
            "| {clients} | {} | {} | {:.0} | {} | {} | {} | {} |",
            us(o50),
            us(o99),
            ours_rate,
            t.map(|t| us(t.0)).unwrap_or("skipped".into()),
            t.map(|t| us(t.1)).unwrap_or("skipped".into()),
            theirs_rate
                .map(|r| format!("{r:.0}"))
                .unwrap_or("skipped".into()),
            ratio(o50, t.map(|t| t.0)),
        );
    }
}

fn report(data: &Dataset, sf: f64, q: &QuiverRun, d: Option<&DuckRun>, p: Option<&PostgresRun>) {
    let lineitem = data.rows("lineitem");
    println!();
    println!("## TPC-H SF {sf}: the 22 queries through the wire (median of runs)");
    println!();
    println!("| query | QuiverDB | DuckDB | QuiverDB / DuckDB (time) | rows |");
    println!("|---|---|---|---|---|");
    let mut ours_total = 0.0;
    let mut theirs_total = 0.0;
    for (i, (secs, rows)) in q.tpch.iter().enumerate() {
        let theirs = d.map(|d| &d.tpch[i]);
        ours_total += secs;
        theirs_total += theirs.map(|t| t.median).unwrap_or(0.0);
        let rows_note = match theirs {
            Some(t) if t.rows != *rows => format!("{rows} (DuckDB {})", t.rows),
            _ => rows.to_string(),
        };
        println!(
            "| Q{} | {} | {} | {} | {rows_note} |",
            i + 1,
            ms(*secs),
            theirs.map(|t| ms(t.median)).unwrap_or("skipped".into()),
            ratio(*secs, theirs.map(|t| t.median)),
        );
    }
    println!(
        "| **total** | **{}** | **{}** | **{}** | |",
        ms(ours_total),
        d.map(|_| ms(theirs_total)).unwrap_or("skipped".into()),
        ratio(ours_total, d.map(|_| theirs_total))
    );

    println!();
    println!("## Load, streaming, memory (SF {sf}, lineitem {lineitem} rows)");
    println!();
    println!("| measurement | QuiverDB | PostgreSQL | DuckDB | vs PostgreSQL | vs DuckDB |");
    println!("|---|---|---|---|---|---|");
    let pr = |f: fn(&PostgresRun) -> f64| p.map(f);
    println!(
        "| `COPY lineitem FROM STDIN (FORMAT csv)` (rate) | {} | {} | {} (`COPY FROM` file) | {} | {} |",
        rate(lineitem, q.load_secs),
        pr(|p| p.load_secs).map(|s| rate(lineitem, s)).unwrap_or("skipped".into()),
        d.map(|d| rate(lineitem, d.load)).unwrap_or("skipped".into()),
        ratio(1.0 / q.load_secs, pr(|p| 1.0 / p.load_secs)),
        ratio(1.0 / q.load_secs, d.map(|d| 1.0 / d.load)),
    );
    if q.text_secs > 0.0 {
        for (label, ours, theirs) in [
            (
                "`SELECT * FROM lineitem`, text (rate)",
                q.text_secs,
                pr(|p| p.text_secs),
            ),
            (
                "`SELECT * FROM lineitem`, binary (rate)",
                q.binary_secs,
                pr(|p| p.binary_secs),
            ),
        ] {
            println!(
                "| {label} | {} | {} | | {} | |",
                rate(lineitem, ours),
                theirs
                    .map(|s| rate(lineitem, s))
                    .unwrap_or("skipped".into()),
                ratio(1.0 / ours, theirs.map(|s| 1.0 / s)),
            );
        }
    }
    println!(
        "| resident memory after loading (CSV {:.2} GiB) | {:.2} GiB ({:.2}x CSV) | | {:.2} GiB | | {} |",
        gib(data.csv_bytes),
        gib(q.memory),
        q.memory as f64 / data.csv_bytes as f64,
        d.map(|d| gib(d.memory)).unwrap_or(f64::NAN),
        ratio(q.memory as f64, d.map(|d| d.memory as f64)),
    );

    if q.small.lookup1.is_empty() {
        return;
    }
    report_small(&q.small, p.map(|p| &p.small));

    println!();
    println!("## 16 clients running Q1, Q6, Q14 in turn");
    println!();
    println!(
        "| | QuiverDB (16 connections) | DuckDB (16 threads, one database) | QuiverDB / DuckDB |"
    );
    println!("|---|---|---|---|");
    let dm = d.and_then(|d| d.mix.as_ref());
    println!(
        "| queries/s | {:.2} | {} | {} |",
        q.mix.0,
        dm.map(|m| format!("{:.2}", m.qps))
            .unwrap_or("skipped".into()),
        ratio(q.mix.0, dm.map(|m| m.qps))
    );
    println!(
        "| p50 latency | {} | {} | {} |",
        ms(q.mix.1),
        dm.map(|m| ms(m.p50)).unwrap_or("skipped".into()),
        ratio(q.mix.1, dm.map(|m| m.p50))
    );
    println!(
        "| p99 latency | {} | {} | {} |",
        ms(q.mix.2),
        dm.map(|m| ms(m.p99)).unwrap_or("skipped".into()),
        ratio(q.mix.2, dm.map(|m| m.p99))
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "# QuiverDB benchmark: TPC-H SF {}, {} cores, {:.1} GiB RAM available",
        args.sf,
        std::thread::available_parallelism()?.get(),
        gib(mem_available())
    );
    if args.small {
        return run_small(&generate(&args.data, args.sf)?, &args).await;
    }
    let mut scale_factors = vec![args.sf];
    scale_factors.extend(args.scale.iter().filter(|s| **s != args.sf));
    let mut scale_rows = Vec::new();
    for (i, &sf) in scale_factors.iter().enumerate() {
        let full = i == 0 && !args.tpch_only;
        // QuiverDB holds about 2x the CSV while it loads; DuckDB's run comes
        // after the server has stopped.
        let need = (sf * 1.1 * 2.5 * (1u64 << 30) as f64) as u64 + (2u64 << 30);
        if mem_available() < need {
            println!(
                "SF {sf} skipped: needs about {:.1} GiB free, {:.1} GiB available",
                gib(need),
                gib(mem_available())
            );
            continue;
        }
        let data = generate(&args.data, sf)?;
        let quiver = run_quiver(&data, &args, full).await?;
        let duck = run_duckdb(&data, &args, full);
        if let Some(d) = &duck {
            println!(
                "duckdb {} ({} threads): CSV load {:.2} s, RSS {:.2} GiB, TPC-H total {:.2} s",
                d.version,
                d.threads,
                d.load,
                gib(d.memory),
                d.tpch.iter().map(|q| q.median).sum::<f64>()
            );
        }
        let postgres = if full {
            run_postgres(&data, &args).await
        } else {
            None
        };
        if let Some(p) = &postgres {
            println!("postgres {}: done", p.version);
        }
        report(&data, sf, &quiver, duck.as_ref(), postgres.as_ref());
        scale_rows.push((sf, data.csv_bytes, data.rows("lineitem"), quiver, duck));
    }
    if scale_rows.len() > 1 {
        scale_rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        println!();
        println!("## Scale: workloads 1, 2 and 6 by scale factor");
        println!();
        println!("| SF | CSV | TPC-H total QuiverDB | DuckDB | COPY lineitem QuiverDB | DuckDB | memory QuiverDB | DuckDB |");
        println!("|---|---|---|---|---|---|---|---|");
        for (sf, csv, lineitem, q, d) in &scale_rows {
            println!(
                "| {sf} | {:.2} GiB | {:.2} s | {} | {} | {} | {:.2} GiB | {} |",
                gib(*csv),
                q.tpch.iter().map(|q| q.0).sum::<f64>(),
                d.as_ref()
                    .map(|d| format!("{:.2} s", d.tpch.iter().map(|q| q.median).sum::<f64>()))
                    .unwrap_or("skipped".into()),
                rate(*lineitem, q.load_secs),
                d.as_ref()
                    .map(|d| rate(*lineitem, d.load))
                    .unwrap_or("skipped".into()),
                gib(q.memory),
                d.as_ref()
                    .map(|d| format!("{:.2} GiB", gib(d.memory)))
                    .unwrap_or("skipped".into()),
            );
        }
    }
    Ok(())
}
