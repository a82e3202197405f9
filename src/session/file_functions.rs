//! `read_parquet('/data/*.parquet')`, `read_csv('/data/x.csv')` and
//! `read_json('/data/x.jsonl')`: query server files in place, as DuckDB
//! does. The schema is inferred from the first file (CSV with a header
//! line); DataFusion's listing table then reads every matching file,
//! in parallel. Reading server files is for superusers (see `security`).

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::Expr;
use datafusion::prelude::SessionContext;

use super::copy_files::matching_files;

/// The file formats the functions read.
#[derive(Debug, Clone, Copy)]
pub enum FileKind {
    Parquet,
    Csv,
    Json,
}

/// The names, for the privilege check.
pub const FILE_FUNCTIONS: [&str; 3] = ["read_parquet", "read_csv", "read_json"];

pub fn register(ctx: &SessionContext) {
    for (name, kind) in
        FILE_FUNCTIONS
            .iter()
            .zip([FileKind::Parquet, FileKind::Csv, FileKind::Json])
    {
        ctx.register_udtf(name, Arc::new(ReadFiles(kind)));
    }
}

#[derive(Debug)]
struct ReadFiles(FileKind);

impl TableFunctionImpl for ReadFiles {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let pattern = match args.exprs() {
            [Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::LargeUtf8(Some(p)), _)] => {
                p.clone()
            }
            _ => {
                return Err(DataFusionError::Plan(format!(
                    "{} takes one argument: a file path or pattern, as a string literal",
                    self.name()
                )))
            }
        };
        let paths = matching_files(&pattern).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let first = &paths[0];
        let bad = |e: &dyn std::fmt::Display| {
            DataFusionError::Plan(format!("could not read \"{}\": {e}", first.display()))
        };
        let open = || File::open(first).map_err(|e| bad(&e));
        let (schema, format): (Schema, Arc<dyn FileFormat>) = match self.0 {
            FileKind::Parquet => {
                use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
                let builder = ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .map_err(|e| bad(&format!("not a Parquet file ({e})")))?;
                (
                    builder.schema().as_ref().clone(),
                    Arc::new(ParquetFormat::default()),
                )
            }
            FileKind::Csv => {
                let (schema, _) = datafusion::arrow::csv::reader::Format::default()
                    .with_header(true)
                    .infer_schema(open()?, Some(1000))
                    .map_err(|e| bad(&e))?;
                (schema, Arc::new(CsvFormat::default().with_has_header(true)))
            }
            FileKind::Json => {
                let (schema, _) = datafusion::arrow::json::reader::infer_json_schema(
                    BufReader::new(open()?),
                    Some(1000),
                )
                .map_err(|e| bad(&format!("not JSON lines ({e})")))?;
                (schema, Arc::new(JsonFormat::default()))
            }
        };
        let urls = paths
            .iter()
            .map(|p| ListingTableUrl::parse(p.display().to_string()))
            .collect::<Result<Vec<_>>>()?;
        let options = ListingOptions::new(format).with_file_extension("");
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(SchemaRef::new(schema));
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}

impl ReadFiles {
    fn name(&self) -> &'static str {
        match self.0 {
            FileKind::Parquet => FILE_FUNCTIONS[0],
            FileKind::Csv => FILE_FUNCTIONS[1],
            FileKind::Json => FILE_FUNCTIONS[2],
        }
    }
}
