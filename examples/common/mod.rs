//! What the benchmark programs share.

use std::process::Command;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

/// TPC-H lineitem at scale factor `sf`, generated in process.
pub fn lineitem(sf: f64) -> anyhow::Result<(SchemaRef, Vec<RecordBatch>)> {
    use datafusion::arrow::record_batch::RecordBatchReader;
    let generator = LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(64 * 1024);
    let schema = generator.schema();
    Ok((schema, generator.collect::<Result<Vec<_>, _>>()?))
}

/// Runs a DuckDB reference script with python3 and returns the numbers it
/// prints, or None (saying why) when python or its duckdb package is
/// missing or the script fails.
pub fn duckdb_numbers(script: &str) -> Option<Vec<f64>> {
    let out = match Command::new("python3").args(["-c", script]).output() {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            println!(
                "DuckDB reference skipped: {} (pip install duckdb)",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            );
            return None;
        }
        Err(e) => {
            println!("DuckDB reference skipped: {e} (pip install duckdb)");
            return None;
        }
    };
    Some(
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect(),
    )
}
