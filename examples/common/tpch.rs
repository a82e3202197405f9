//! TPC-H data generated in process (`tpchgen-arrow`), shared by the
//! benchmark (`examples/bench.rs`) and the TPC-H test (`tests/it/tpch.rs`).

use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::record_batch::RecordBatchReader;
use tpchgen::generators::*;
use tpchgen_arrow::*;

/// The eight tables, smallest first.
pub const TABLES: [&str; 8] = [
    "nation", "region", "part", "supplier", "partsupp", "customer", "orders", "lineitem",
];

/// The SQL type a generated column is declared with.
pub fn sql_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Int64 => "BIGINT".to_string(),
        DataType::Int32 => "INTEGER".to_string(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        DataType::Date32 => "DATE".to_string(),
        DataType::Utf8 | DataType::Utf8View => "TEXT".to_string(),
        other => panic!("no SQL type for {other}"),
    }
}

/// The rows of `table` at scale factor `sf`, in batches of 64K rows.
pub fn batches_of(table: &str, sf: f64) -> Box<dyn RecordBatchReader + Send> {
    const BATCH: usize = 64 * 1024;
    match table {
        "nation" => {
            Box::new(NationArrow::new(NationGenerator::new(sf, 1, 1)).with_batch_size(BATCH))
        }
        "region" => {
            Box::new(RegionArrow::new(RegionGenerator::new(sf, 1, 1)).with_batch_size(BATCH))
        }
        "part" => Box::new(PartArrow::new(PartGenerator::new(sf, 1, 1)).with_batch_size(BATCH)),
        "supplier" => {
            Box::new(SupplierArrow::new(SupplierGenerator::new(sf, 1, 1)).with_batch_size(BATCH))
        }
        "partsupp" => {
            Box::new(PartSuppArrow::new(PartSuppGenerator::new(sf, 1, 1)).with_batch_size(BATCH))
        }
        "customer" => {
            Box::new(CustomerArrow::new(CustomerGenerator::new(sf, 1, 1)).with_batch_size(BATCH))
        }
        "orders" => Box::new(OrderArrow::new(OrderGenerator::new(sf, 1, 1)).with_batch_size(BATCH)),
        "lineitem" => {
            Box::new(LineItemArrow::new(LineItemGenerator::new(sf, 1, 1)).with_batch_size(BATCH))
        }
        other => unreachable!("{other}"),
    }
}
