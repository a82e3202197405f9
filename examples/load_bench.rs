//! Load-rate benchmark (issue 8): TPC-H lineitem from files into an
//! in-memory table, each rate next to DuckDB loading the same file into an
//! in-memory table in the same run (python `duckdb`):
//!
//! - server-side `COPY lineitem FROM 'lineitem.csv' (FORMAT csv, HEADER)`
//!   against DuckDB's `INSERT INTO lineitem SELECT * FROM read_csv(...)`,
//! - `CREATE TABLE AS SELECT * FROM read_csv(...)` on both,
//! - `CREATE TABLE AS SELECT * FROM read_parquet(...)` on both.
//!
//! QuiverDB runs embedded (no wire, no WAL) so that both sides measure
//! the load itself.
//!
//! ```sh
//! cargo build --release --example load_bench
//! target/release/examples/load_bench [SCALE_FACTOR]
//! ```

#[path = "common/mod.rs"]
mod common;

use std::path::Path;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use quiverdb::{Database, Session, StatementResult};

async fn timed(session: &mut Session, sql: &str) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let rows = match session.execute_sql(sql).await.pop() {
        Some(Ok(StatementResult::Command { rows, .. })) => rows.unwrap_or(0),
        Some(Ok(_)) => 0,
        Some(Err(e)) => anyhow::bail!("{sql}: {e}"),
        None => 0,
    };
    Ok((started.elapsed().as_secs_f64(), rows))
}

fn create_sql(name: &str, schema: &SchemaRef) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), quiverdb::engine::types::display_type(f)))
        .collect();
    format!("CREATE TABLE {name} ({})", columns.join(", "))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("QUIVER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let sf: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let work = tempfile::tempdir()?;
    println!(
        "# QuiverDB load benchmark, TPC-H SF {sf}, {} cores",
        std::thread::available_parallelism()?.get()
    );
    let (schema, batches) = common::lineitem(sf)?;
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let csv = work.path().join("lineitem.csv");
    let parquet = work.path().join("lineitem.parquet");
    {
        let mut writer = datafusion::arrow::csv::WriterBuilder::new()
            .with_header(true)
            .build(std::fs::File::create(&csv)?);
        for batch in &batches {
            writer.write(batch)?;
        }
    }
    {
        let mut writer = datafusion::parquet::arrow::ArrowWriter::try_new(
            std::fs::File::create(&parquet)?,
            schema.clone(),
            None,
        )?;
        for batch in &batches {
            writer.write(batch)?;
        }
        writer.close()?;
    }
    drop(batches);
    let csv_mib = std::fs::metadata(&csv)?.len() as f64 / (1 << 20) as f64;
    println!("generated lineitem: {rows} rows, CSV {csv_mib:.0} MiB");

    let mut ours = Vec::new();
    for (label, setup, sql) in [
        (
            "COPY FROM a CSV file",
            Some(create_sql("l_copy", &schema)),
            format!(
                "COPY l_copy FROM '{}' (FORMAT csv, HEADER true)",
                csv.display()
            ),
        ),
        (
            "CREATE TABLE AS read_csv",
            None,
            format!(
                "CREATE TABLE l_csv AS SELECT * FROM read_csv('{}')",
                csv.display()
            ),
        ),
        (
            "CREATE TABLE AS read_parquet",
            None,
            format!(
                "CREATE TABLE l_parquet AS SELECT * FROM read_parquet('{}')",
                parquet.display()
            ),
        ),
    ] {
        // A fresh database for each, so one load's memory does not weigh
        // on the next.
        let mut session = Session::new(Database::new());
        if let Some(setup) = setup {
            timed(&mut session, &setup).await?;
        }
        let (seconds, loaded) = timed(&mut session, &sql).await?;
        anyhow::ensure!(loaded == rows, "{label}: loaded {loaded} of {rows} rows");
        println!("quiver {label}: {seconds:.3} s");
        ours.push((label, seconds));
    }

    let duck = duckdb_reference(&csv, &parquet, &create_sql("l_copy", &schema));
    println!();
    println!("| load of {rows} rows | QuiverDB | DuckDB | QuiverDB / DuckDB (rate) |");
    println!("|---|---|---|---|");
    for (i, (label, seconds)) in ours.iter().enumerate() {
        let rate = rows as f64 / seconds;
        let reference = duck.as_ref().map(|d| rows as f64 / d[i]);
        println!(
            "| {label} | {:.0} rows/s ({seconds:.2} s) | {} | {} |",
            rate,
            reference
                .map(|r| format!("{r:.0} rows/s ({:.2} s)", rows as f64 / r))
                .unwrap_or("skipped".into()),
            reference
                .map(|r| format!("{:.2}x", rate / r))
                .unwrap_or("n/a".into())
        );
    }
    Ok(())
}

/// DuckDB's times for the same three loads, in memory.
fn duckdb_reference(csv: &Path, parquet: &Path, create: &str) -> Option<Vec<f64>> {
    let script = format!(
        r#"
import time, duckdb
con = duckdb.connect()
con.execute("{create}")
t = time.time(); con.execute("INSERT INTO l_copy SELECT * FROM read_csv('{csv}', header=true)"); a = time.time() - t
t = time.time(); con.execute("CREATE TABLE l_csv AS SELECT * FROM read_csv('{csv}', header=true)"); b = time.time() - t
t = time.time(); con.execute("CREATE TABLE l_parquet AS SELECT * FROM read_parquet('{parquet}')"); c = time.time() - t
print(a, b, c)
"#,
        csv = csv.display(),
        parquet = parquet.display(),
    );
    let times = common::duckdb_numbers(&script)?;
    println!(
        "duckdb: insert from read_csv {:.3} s, CTAS read_csv {:.3} s, CTAS read_parquet {:.3} s",
        times[0], times[1], times[2]
    );
    Some(times)
}
