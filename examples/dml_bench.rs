//! DML benchmark (issue 4) on TPC-H lineitem, each number next to DuckDB
//! doing the same in the same run (python `duckdb`):
//!
//! - bulk `UPDATE ... SET l_discount = l_discount + 0.01` of ~15% of rows,
//! - bulk `DELETE` of ~10% of rows,
//! - 10,000 point UPDATEs by primary key through a prepared statement,
//!   autocommit (QuiverDB over the wire, fsync on; DuckDB in-process),
//! - a full-table aggregate after 100,000 single-row INSERTs, against the
//!   same aggregate over the same rows loaded at once (no reference: the
//!   goal is a ratio within 10%).
//!
//! ```sh
//! cargo build --release --bin quiver --example dml_bench
//! target/release/examples/dml_bench [SCALE_FACTOR] [POINT_UPDATES] [SMALL_INSERTS]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int32Type, Int64Type};
use quiverdb::{Session, StatementResult};

const BULK_UPDATE: &str =
    "UPDATE lineitem SET l_discount = l_discount + 0.01 WHERE l_shipdate < date '1993-01-01'";
const BULK_DELETE: &str = "DELETE FROM lineitem WHERE l_quantity <= 5";

fn ratio(ours: f64, theirs: Option<f64>) -> String {
    match theirs {
        Some(t) if t > 0.0 => format!("{:.2}x", ours / t),
        _ => "n/a".into(),
    }
}

/// Runs one statement and returns its row count, failing on any error.
async fn run(session: &mut Session, sql: &str) -> anyhow::Result<usize> {
    let mut results = session.execute_sql(sql).await;
    match results.pop() {
        Some(Ok(StatementResult::Command { rows, .. })) => Ok(rows.unwrap_or(0)),
        Some(Ok(_)) => Ok(0),
        Some(Err(e)) => Err(anyhow::anyhow!("{sql}: {e}")),
        None => Ok(0),
    }
}

async fn timed(session: &mut Session, sql: &str) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let rows = run(session, sql).await?;
    Ok((started.elapsed().as_secs_f64(), rows))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let sf: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1.0);
    let points: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let small_rows: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let work = tempfile::tempdir()?;
    println!(
        "# QuiverDB DML benchmark, TPC-H SF {sf}, {} cores",
        std::thread::available_parallelism()?.get()
    );

    let (schema, batches) = common::lineitem(sf)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let keys = sample_keys(&batches, points);
    let parquet = work.path().join("lineitem.parquet");
    write_parquet(&parquet, &batches)?;
    println!("generated lineitem: {rows} rows");

    // --- QuiverDB, embedded with a data directory (WAL on, fsync on) ------
    let data_dir = work.path().join("quiver-data");
    let (update_time, update_rows, delete_time, delete_rows) = {
        let db = quiverdb::open(&data_dir).await?;
        let mut session = Session::new(db.clone());
        session
            .create_table_from_batches("lineitem", schema, batches)
            .await?;
        run(
            &mut session,
            "ALTER TABLE lineitem ADD PRIMARY KEY (l_orderkey, l_linenumber)",
        )
        .await?;
        quiverdb::storage::checkpoint(&db)?;
        let (ut, ur) = timed(&mut session, BULK_UPDATE).await?;
        println!("quiver bulk update: {ut:.3} s, {ur} rows");
        let (dt, dr) = timed(&mut session, BULK_DELETE).await?;
        println!("quiver bulk delete: {dt:.3} s, {dr} rows");
        quiverdb::storage::checkpoint(&db)?;
        (ut, ur, dt, dr)
    };

    // --- QuiverDB point updates over the wire --------------------------------
    let point_rate = {
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
        let update = client
            .prepare(
                "UPDATE lineitem SET l_comment = $1 WHERE l_orderkey = $2 AND l_linenumber = $3",
            )
            .await?;
        let started = Instant::now();
        let mut changed = 0;
        for (i, (order, line)) in keys.iter().enumerate() {
            changed += client
                .execute(&update, &[&format!("point {i}"), order, line])
                .await?;
        }
        let t = started.elapsed().as_secs_f64();
        println!(
            "quiver point updates: {} in {t:.3} s ({changed} rows changed)",
            keys.len()
        );
        let _ = child.kill();
        let _ = child.wait();
        keys.len() as f64 / t
    };

    // --- 100,000 single-row INSERTs, then a full-table aggregate ------------
    let (small_time, bulk_time) = small_inserts(small_rows).await?;

    // --- DuckDB -------------------------------------------------------------
    let duck = duckdb_reference(&parquet, work.path(), &keys);

    println!();
    println!("| measurement | QuiverDB | DuckDB | QuiverDB / DuckDB |");
    println!("|---|---|---|---|");
    let d = duck.as_ref();
    println!(
        "| bulk UPDATE of {update_rows} rows ({:.0}%) | {update_time:.3} s | {} | {} (time; lower is better) |",
        100.0 * update_rows as f64 / rows as f64,
        d.map(|d| format!("{:.3} s", d.update)).unwrap_or("skipped".into()),
        ratio(update_time, d.map(|d| d.update))
    );
    println!(
        "| bulk DELETE of {delete_rows} rows ({:.0}%) | {delete_time:.3} s | {} | {} (time; lower is better) |",
        100.0 * delete_rows as f64 / rows as f64,
        d.map(|d| format!("{:.3} s", d.delete)).unwrap_or("skipped".into()),
        ratio(delete_time, d.map(|d| d.delete))
    );
    println!(
        "| {} point UPDATEs by primary key, prepared, autocommit | {point_rate:.0} /s | {} | {} (rate; higher is better) |",
        keys.len(),
        d.map(|d| format!("{:.0} /s", d.point_rate)).unwrap_or("skipped".into()),
        ratio(point_rate, d.map(|d| d.point_rate))
    );
    println!(
        "| aggregate after {small_rows} single-row INSERTs vs after one bulk load | {small_time:.4} s | (bulk-loaded: {bulk_time:.4} s) | {:.2}x (goal: within 1.10x) |",
        small_time / bulk_time
    );
    Ok(())
}

/// Median time of the same aggregate over 100,000 rows inserted one
/// statement at a time, and over the same rows loaded with one INSERT ...
/// SELECT.
async fn small_inserts(n: usize) -> anyhow::Result<(f64, f64)> {
    let db = quiverdb::Database::new();
    let mut session = Session::new(db);
    run(
        &mut session,
        "CREATE TABLE small (id BIGINT, v DOUBLE PRECISION, s TEXT)",
    )
    .await?;
    let started = Instant::now();
    for i in 0..n {
        run(
            &mut session,
            &format!(
                "INSERT INTO small VALUES ({i}, {}, 'row {i}')",
                i as f64 * 0.5
            ),
        )
        .await?;
    }
    println!(
        "{n} single-row INSERTs (embedded, in memory): {:.1} s",
        started.elapsed().as_secs_f64()
    );
    run(
        &mut session,
        "CREATE TABLE bulk (id BIGINT, v DOUBLE PRECISION, s TEXT)",
    )
    .await?;
    run(&mut session, "INSERT INTO bulk SELECT * FROM small").await?;
    let small = median(&mut session, "small").await?;
    let bulk = median(&mut session, "bulk").await?;
    Ok((small, bulk))
}

/// The median time of a full-table aggregate over `table`.
async fn median(session: &mut Session, table: &str) -> anyhow::Result<f64> {
    let sql = format!("SELECT count(*), sum(v), avg(id), max(s) FROM {table}");
    let mut times = Vec::new();
    for _ in 0..15 {
        times.push(timed(session, &sql).await?.0);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    Ok(times[times.len() / 2])
}

/// `n` (l_orderkey, l_linenumber) pairs spread over the table.
fn sample_keys(batches: &[RecordBatch], n: usize) -> Vec<(i64, i32)> {
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let step = (total / n.max(1)).max(1);
    let mut keys = Vec::with_capacity(n);
    let mut seen = 0;
    let mut next = step / 2;
    for batch in batches {
        let orders = batch
            .column_by_name("l_orderkey")
            .expect("l_orderkey")
            .as_primitive::<Int64Type>();
        let lines = batch
            .column_by_name("l_linenumber")
            .expect("l_linenumber")
            .as_primitive::<Int32Type>();
        while next < seen + batch.num_rows() && keys.len() < n {
            let i = next - seen;
            keys.push((orders.value(i), lines.value(i)));
            next += step;
        }
        seen += batch.num_rows();
    }
    keys
}

fn write_parquet(path: &Path, batches: &[RecordBatch]) -> anyhow::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, batches[0].schema(), None)?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(())
}

struct Duck {
    update: f64,
    delete: f64,
    point_rate: f64,
}

/// The same statements in DuckDB (a database file, so commits are logged),
/// with a unique index on the key for the point updates.
fn duckdb_reference(parquet: &Path, work: &Path, keys: &[(i64, i32)]) -> Option<Duck> {
    let keys_file = work.join("keys.txt");
    let text: String = keys.iter().map(|(o, l)| format!("{o} {l}\n")).collect();
    std::fs::write(&keys_file, text).ok()?;
    let script = format!(
        r#"
import time, duckdb
con = duckdb.connect({db:?})
con.execute("CREATE TABLE lineitem AS SELECT * FROM read_parquet('{parquet}')")
con.execute("CREATE UNIQUE INDEX lineitem_pk ON lineitem (l_orderkey, l_linenumber)")
con.execute("CHECKPOINT")
t = time.time(); n = con.execute("{update}").fetchone()[0]; update = time.time() - t
t = time.time(); m = con.execute("{delete}").fetchone()[0]; delete = time.time() - t
keys = [tuple(int(x) for x in line.split()) for line in open({keys:?})]
t = time.time()
for i, (o, l) in enumerate(keys):
    con.execute("UPDATE lineitem SET l_comment = ? WHERE l_orderkey = ? AND l_linenumber = ?", ["point %d" % i, o, l])
points = time.time() - t
print(update, delete, len(keys) / points, n, m)
"#,
        db = work.join("duck.duckdb").display().to_string(),
        parquet = parquet.display(),
        update = BULK_UPDATE,
        delete = BULK_DELETE,
        keys = keys_file.display().to_string(),
    );
    let parts = common::duckdb_numbers(&script)?;
    println!(
        "duckdb: update {:.3} s ({} rows), delete {:.3} s ({} rows), {:.0} point updates/s",
        parts[0], parts[3], parts[1], parts[4], parts[2]
    );
    Some(Duck {
        update: parts[0],
        delete: parts[1],
        point_rate: parts[2],
    })
}
