//! `quiver import` and `quiver export`: files into a table and query
//! results into files, either on a data directory (the server stopped) or
//! through a running server (`--url`), with a progress bar.
//!
//! Imports go through `COPY ... FROM STDIN (FORMAT csv)`, all in one
//! transaction (a single file into an existing table is one COPY, atomic
//! by itself), whatever the file format: CSV is sent as it is, Parquet
//! and JSON lines are decoded into Arrow batches and written as CSV. A
//! failed import rolls back, so the table is left as it was. A missing
//! table is created from the first file's schema.
//!
//! Exports write to `FILE.partial` and rename it when complete, so a
//! failed export never leaves a truncated file under the real name.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use futures::SinkExt;
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::Database;
use crate::session::{Session, StatementResult};

/// File formats import and export read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Parquet,
    Json,
}

impl Format {
    /// From a file's extension.
    pub fn of_path(path: &Path) -> Option<Format> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        let name = name.strip_suffix(".partial").unwrap_or(&name);
        if name.ends_with(".csv") || name.ends_with(".tsv") || name.ends_with(".txt") {
            Some(Format::Csv)
        } else if name.ends_with(".parquet") || name.ends_with(".pq") {
            Some(Format::Parquet)
        } else if name.ends_with(".json") || name.ends_with(".jsonl") || name.ends_with(".ndjson") {
            Some(Format::Json)
        } else {
            None
        }
    }

    fn resolve(given: Option<Format>, path: &Path) -> anyhow::Result<Format> {
        given.or_else(|| Format::of_path(path)).ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {} from its name; pass --format csv|parquet|json",
                path.display()
            )
        })
    }
}

/// Where the rows go or come from.
pub enum Target {
    /// A database opened from its data directory.
    Embedded(Box<Session>),
    /// A running server.
    Remote(tokio_postgres::Client),
}

impl Target {
    pub fn embedded(db: Arc<Database>) -> Target {
        Target::Embedded(Box::new(Session::new(db)))
    }

    pub async fn remote(url: &str) -> anyhow::Result<Target> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .with_context(|| "could not connect to the server".to_string())?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection closed: {e}");
            }
        });
        Ok(Target::Remote(client))
    }

    /// Runs statements that return no rows.
    async fn run(&mut self, sql: &str) -> anyhow::Result<()> {
        match self {
            Target::Embedded(session) => {
                for result in session.execute_sql(sql).await {
                    result.map_err(|e| anyhow!("{e}"))?;
                }
                Ok(())
            }
            Target::Remote(client) => client.batch_execute(sql).await.map_err(pg_error),
        }
    }

    /// Whether the table exists (as a table).
    async fn table_exists(&mut self, schema: &str, table: &str) -> anyhow::Result<bool> {
        let sql = format!(
            "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = {} AND tablename = {}",
            literal(schema),
            literal(table)
        );
        let count = match self {
            Target::Embedded(session) => {
                let result = session.execute_sql(&sql).await.pop();
                match result {
                    Some(Ok(StatementResult::Rows { batches, .. })) => batches
                        .iter()
                        .map(|b| {
                            datafusion::arrow::compute::cast(b.column(0), &DataType::Int64)
                                .map(|c| {
                                    c.as_any()
                                        .downcast_ref::<datafusion::arrow::array::Int64Array>()
                                        .map(|a| a.value(0))
                                        .unwrap_or(0)
                                })
                                .unwrap_or(0)
                        })
                        .sum(),
                    Some(Err(e)) => bail!("{e}"),
                    _ => 0,
                }
            }
            Target::Remote(client) => client
                .query_one(&sql, &[])
                .await
                .map_err(pg_error)?
                .get::<_, i64>(0),
        };
        Ok(count > 0)
    }

    /// Sends one COPY FROM STDIN with its data; returns the rows stored.
    async fn copy_in(&mut self, sql: &str, chunks: Chunks) -> anyhow::Result<u64> {
        match self {
            Target::Embedded(session) => {
                let copy = match session.execute_sql(sql).await.pop() {
                    Some(Ok(StatementResult::CopyIn(copy))) => copy,
                    Some(Err(e)) => bail!("{e}"),
                    _ => bail!("COPY did not ask for data"),
                };
                let mut progress = crate::sql::copy::CopyInProgress::new(copy.clone());
                let parsed = tokio::task::block_in_place(|| -> anyhow::Result<_> {
                    for chunk in chunks {
                        progress.push(&chunk?).map_err(|e| anyhow!("{e}"))?;
                    }
                    progress.finish().map_err(|e| anyhow!("{e}"))
                });
                let batches = match parsed {
                    Ok(batches) => batches,
                    Err(e) => {
                        session.copy_failed();
                        return Err(e);
                    }
                };
                match session.copy_finish(&copy, batches).await {
                    Ok(rows) => Ok(rows as u64),
                    Err(e) => {
                        session.copy_failed();
                        bail!("{e}")
                    }
                }
            }
            Target::Remote(client) => {
                let sink = client.copy_in::<_, Bytes>(sql).await.map_err(pg_error)?;
                futures::pin_mut!(sink);
                // A chunk that could not be made drops the sink unfinished,
                // which fails the COPY.
                while let Some(chunk) = tokio::task::block_in_place(|| chunks.recv().ok()) {
                    sink.send(chunk?).await.map_err(pg_error)?;
                }
                sink.finish().await.map_err(pg_error)
            }
        }
    }
}

fn pg_error(e: tokio_postgres::Error) -> anyhow::Error {
    match e.as_db_error() {
        Some(db) => anyhow!(
            "{}{}",
            db.message(),
            db.where_().map(|w| format!(" ({w})")).unwrap_or_default()
        ),
        None => anyhow!("{e}"),
    }
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// (schema, table) of a possibly qualified, possibly quoted name.
fn split_name(name: &str) -> (String, String) {
    let fold = |part: &str| {
        if part.len() >= 2 && part.starts_with('"') && part.ends_with('"') {
            part[1..part.len() - 1].replace("\"\"", "\"")
        } else {
            part.to_lowercase()
        }
    };
    match name.split_once('.') {
        Some((schema, table)) => (fold(schema), fold(table)),
        None => ("public".into(), fold(name)),
    }
}

/// CSV reading options of `quiver import`.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    pub header: bool,
    pub delimiter: u8,
}

/// A progress bar on stderr (drawn only on a terminal): bytes, rate, rows.
fn progress_bar(total_bytes: u64, verb: &str) -> ProgressBar {
    let bar = ProgressBar::new(total_bytes);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{verb} {{bar:30}} {{bytes}}/{{total_bytes}} {{binary_bytes_per_sec}} {{msg}} [{{elapsed}}]"
        ))
        .expect("a valid template"),
    );
    bar
}

/// One file's data, ready to COPY: the columns it fills (by name) and
/// the CSV chunks, made by a thread of their own while earlier chunks are
/// sent (at most [`CHUNKS_AHEAD`] ahead).
struct Prepared {
    columns: Option<Vec<String>>,
    header: bool,
    delimiter: u8,
    chunks: Chunks,
}

type Chunks = std::sync::mpsc::Receiver<anyhow::Result<Bytes>>;

const CHUNKS_AHEAD: usize = 8;

/// `quiver import`: loads `files` into `table`, all or nothing.
pub async fn import(
    target: &mut Target,
    files: &[PathBuf],
    table: &str,
    format: Option<Format>,
    csv: &CsvOptions,
) -> anyhow::Result<u64> {
    if files.is_empty() {
        bail!("no files to import");
    }
    let mut total_bytes = 0;
    for file in files {
        total_bytes += std::fs::metadata(file)
            .with_context(|| format!("could not read {}", file.display()))?
            .len();
    }
    let started = Instant::now();
    let (schema_name, table_name) = split_name(table);
    let qualified = format!("{}.{}", quote_ident(&schema_name), quote_ident(&table_name));
    let create = if target.table_exists(&schema_name, &table_name).await? {
        None
    } else {
        let first = &files[0];
        let schema = infer_schema(first, Format::resolve(format, first)?, csv)?;
        Some(create_table_sql(&qualified, &schema)?)
    };
    let bar = progress_bar(total_bytes, "importing");
    // One COPY into a table that exists is all or nothing by itself; on
    // its own (not in a block) the server stages its rows as they arrive.
    let block = create.is_some() || files.len() > 1;
    if block {
        target.run("BEGIN").await?;
    }
    let loaded = async {
        if let Some(create) = &create {
            target.run(create).await?;
        }
        let mut rows = 0;
        for file in files {
            let prepared = prepare_file(file, Format::resolve(format, file)?, csv, &bar)?;
            let columns = prepared
                .columns
                .as_ref()
                .map(|c| {
                    let names: Vec<String> = c.iter().map(|n| quote_ident(n)).collect();
                    format!(" ({})", names.join(", "))
                })
                .unwrap_or_default();
            let delimiter = prepared.delimiter;
            let sql = format!(
                "COPY {qualified}{columns} FROM STDIN (FORMAT csv, HEADER {}, DELIMITER {})",
                prepared.header,
                literal(&(delimiter as char).to_string())
            );
            rows += target
                .copy_in(&sql, prepared.chunks)
                .await
                .with_context(|| format!("{} was not imported", file.display()))?;
            bar.set_message(format!("{rows} rows"));
        }
        anyhow::Ok(rows)
    }
    .await;
    match loaded {
        Ok(rows) => {
            if block {
                target.run("COMMIT").await?;
            }
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "imported {rows} rows into {table} from {} file(s), {:.1} MiB in {seconds:.2} s ({:.0} rows/s)",
                files.len(),
                total_bytes as f64 / (1 << 20) as f64,
                rows as f64 / seconds.max(1e-9)
            );
            Ok(rows)
        }
        Err(e) => {
            bar.abandon();
            if block {
                let _ = target.run("ROLLBACK").await;
            }
            Err(e.context(format!("nothing was imported; {table} is as it was")))
        }
    }
}

/// Reads a file into CSV chunks for COPY, moving the bar as it goes.
fn prepare_file(
    path: &Path,
    format: Format,
    csv: &CsvOptions,
    bar: &ProgressBar,
) -> anyhow::Result<Prepared> {
    let open = || File::open(path).with_context(|| format!("could not open {}", path.display()));
    const CHUNK: usize = 1 << 20;
    match format {
        Format::Csv => {
            // Sent as it is; with a header, the columns are matched by name.
            let columns = if csv.header {
                let schema = infer_schema(path, Format::Csv, csv)?;
                Some(schema.fields().iter().map(|f| f.name().clone()).collect())
            } else {
                None
            };
            let mut file = open()?;
            let bar = bar.clone();
            let chunks = produce(move |send| loop {
                let mut chunk = vec![0; CHUNK];
                let n = read_full(&mut file, &mut chunk)?;
                if n == 0 {
                    return Ok(());
                }
                chunk.truncate(n);
                bar.inc(n as u64);
                if !send(Bytes::from(chunk)) {
                    return Ok(());
                }
            })?;
            Ok(Prepared {
                columns,
                header: csv.header,
                delimiter: csv.delimiter,
                chunks,
            })
        }
        Format::Parquet | Format::Json => {
            let size = std::fs::metadata(path)?.len();
            let (schema, batches) = read_batches(path, format)?;
            for field in schema.fields() {
                if field.data_type().is_nested() {
                    bail!(
                        "{}: column \"{}\" is nested ({}); load such files with \
                         CREATE TABLE ... AS SELECT * FROM read_parquet('...')",
                        path.display(),
                        field.name(),
                        field.data_type()
                    );
                }
            }
            let bar = bar.clone();
            let chunks = produce(move |send| {
                for batch in batches {
                    let batch = batch?;
                    let mut out = Vec::new();
                    datafusion::arrow::csv::WriterBuilder::new()
                        .with_header(false)
                        .with_timestamp_format("%Y-%m-%d %H:%M:%S%.f".into())
                        .with_timestamp_tz_format("%Y-%m-%d %H:%M:%S%.f%:z".into())
                        .build(&mut out)
                        .write(&batch)?;
                    if !send(Bytes::from(out)) {
                        break;
                    }
                }
                bar.inc(size);
                Ok(())
            })?;
            Ok(Prepared {
                columns: Some(schema.fields().iter().map(|f| f.name().clone()).collect()),
                header: false,
                delimiter: b',',
                chunks,
            })
        }
    }
}

/// Chunks that `make` sends from a thread of its own; `send` answers
/// false once nobody reads them any more. An error of `make` is the last
/// chunk.
fn produce(
    make: impl FnOnce(&mut dyn FnMut(Bytes) -> bool) -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<Chunks> {
    let (tx, rx) = std::sync::mpsc::sync_channel(CHUNKS_AHEAD);
    std::thread::Builder::new()
        .name("quiver-import".into())
        .spawn(move || {
            let mut send = |chunk| tx.send(Ok(chunk)).is_ok();
            if let Err(e) = make(&mut send) {
                let _ = tx.send(Err(e));
            }
        })?;
    Ok(rx)
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Batches read from a file as they are taken.
type Batches = Box<dyn Iterator<Item = anyhow::Result<RecordBatch>> + Send>;

/// A Parquet or JSON-lines file as Arrow batches.
fn read_batches(path: &Path, format: Format) -> anyhow::Result<(SchemaRef, Batches)> {
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let bad = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    match format {
        Format::Parquet => {
            let reader =
                datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                    file,
                )
                .map_err(|e| bad(&format!("not a Parquet file ({e})")))?
                .with_batch_size(64 * 1024)
                .build()
                .map_err(|e| bad(&e))?;
            let schema = datafusion::arrow::array::RecordBatchReader::schema(&reader);
            let path = path.display().to_string();
            let batches = reader.map(move |b| b.map_err(|e| anyhow!("{path}: {e}")));
            Ok((schema, Box::new(batches)))
        }
        Format::Json => {
            let schema = infer_schema(
                path,
                Format::Json,
                &CsvOptions {
                    header: true,
                    delimiter: b',',
                },
            )?;
            let mut file = file;
            file.seek(SeekFrom::Start(0))?;
            let reader = datafusion::arrow::json::ReaderBuilder::new(schema.clone())
                .build(BufReader::new(file))
                .map_err(|e| bad(&e))?;
            let path = path.display().to_string();
            let batches =
                reader.map(move |b| b.map_err(|e| anyhow!("{path}: not JSON lines ({e})")));
            Ok((schema, Box::new(batches)))
        }
        Format::Csv => unreachable!("CSV is sent as it is"),
    }
}

/// The schema of a file: CSV and JSON inferred from their first 1000
/// rows, Parquet from its footer.
fn infer_schema(path: &Path, format: Format, csv: &CsvOptions) -> anyhow::Result<SchemaRef> {
    let file = File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let bad = |e: &dyn std::fmt::Display| anyhow!("{}: {e}", path.display());
    let schema = match format {
        Format::Csv => {
            let (schema, _) = datafusion::arrow::csv::reader::Format::default()
                .with_header(csv.header)
                .with_delimiter(csv.delimiter)
                .infer_schema(file, Some(1000))
                .map_err(|e| bad(&e))?;
            schema
        }
        Format::Parquet => {
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| bad(&format!("not a Parquet file ({e})")))?
                .schema()
                .as_ref()
                .clone()
        }
        Format::Json => {
            let (schema, _) = datafusion::arrow::json::reader::infer_json_schema(
                BufReader::new(file),
                Some(1000),
            )
            .map_err(|e| bad(&format!("not JSON lines ({e})")))?;
            schema
        }
    };
    Ok(Arc::new(schema))
}

/// CREATE TABLE for a file's schema.
fn create_table_sql(qualified: &str, schema: &Schema) -> anyhow::Result<String> {
    let mut columns = Vec::new();
    for field in schema.fields() {
        if field.data_type().is_nested() {
            bail!(
                "column \"{}\" is nested ({}); load such files with \
                 CREATE TABLE ... AS SELECT * FROM read_parquet('...')",
                field.name(),
                field.data_type()
            );
        }
        let sql_type = match field.data_type() {
            // Inferred CSV/JSON types are 64-bit; keep them.
            DataType::Null => "text".to_string(),
            DataType::UInt8 | DataType::UInt16 => "integer".into(),
            DataType::UInt32 | DataType::UInt64 => "bigint".into(),
            DataType::Float16 => "real".into(),
            DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                crate::engine::types::display_type(field)
            }
            DataType::Dictionary(_, value) => {
                crate::engine::types::display_type(&Field::new("v", *value.clone(), true))
            }
            _ => crate::engine::types::display_type(field),
        };
        columns.push(format!("{} {sql_type}", quote_ident(field.name())));
    }
    Ok(format!("CREATE TABLE {qualified} ({})", columns.join(", ")))
}

/// `quiver export`: writes the rows of `query` to `path`.
pub async fn export(
    target: &mut Target,
    query: &str,
    path: &Path,
    format: Option<Format>,
) -> anyhow::Result<u64> {
    let format = Format::resolve(format, path)?;
    let started = Instant::now();
    let partial = PathBuf::from(format!("{}.partial", path.display()));
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template(
            "exporting {spinner} {bytes} {binary_bytes_per_sec} {msg} [{elapsed}]",
        )
        .expect("a valid template"),
    );
    let written = write_export(target, query, &partial, format, &bar).await;
    let rows = match written {
        Ok(rows) => rows,
        Err(e) => {
            bar.abandon();
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!("{} was not written", path.display())));
        }
    };
    std::fs::rename(&partial, path).with_context(|| {
        format!(
            "could not rename {} to {}",
            partial.display(),
            path.display()
        )
    })?;
    bar.finish_and_clear();
    let bytes = std::fs::metadata(path)?.len();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "exported {rows} rows to {}, {:.1} MiB in {seconds:.2} s ({:.0} rows/s)",
        path.display(),
        bytes as f64 / (1 << 20) as f64,
        rows as f64 / seconds.max(1e-9)
    );
    Ok(rows)
}

async fn write_export(
    target: &mut Target,
    query: &str,
    partial: &Path,
    format: Format,
    bar: &ProgressBar,
) -> anyhow::Result<u64> {
    match target {
        Target::Embedded(session) => {
            // The server's own COPY TO a file, which writes every format.
            let absolute = std::path::absolute(partial)?;
            let format_name = match format {
                Format::Csv => "csv, HEADER true",
                Format::Parquet => "parquet",
                Format::Json => "json",
            };
            let sql = format!(
                "COPY ({query}) TO {} (FORMAT {format_name})",
                literal(&absolute.display().to_string())
            );
            match session.execute_sql(&sql).await.pop() {
                Some(Ok(StatementResult::Command { rows, .. })) => {
                    bar.set_position(std::fs::metadata(partial)?.len());
                    Ok(rows.unwrap_or(0) as u64)
                }
                Some(Err(e)) => bail!("{e}"),
                _ => bail!("the export wrote nothing"),
            }
        }
        Target::Remote(client) => {
            // CSV from the server; Parquet and JSON are made here from it,
            // typed by the query's column types.
            let columns = client.prepare(query).await.map_err(pg_error)?;
            let schema = Arc::new(Schema::new(
                columns
                    .columns()
                    .iter()
                    .map(|c| Field::new(c.name(), arrow_type(c.type_()), true))
                    .collect::<Vec<_>>(),
            ));
            let header = format == Format::Csv;
            let sql = format!("COPY ({query}) TO STDOUT (FORMAT csv, HEADER {header})");
            let stream = client.copy_out(&sql).await.map_err(pg_error)?;
            futures::pin_mut!(stream);
            let mut csv_data: Vec<u8> = Vec::new();
            let mut file = File::create(partial)?;
            // Rows are lines ending outside quotes (values may hold newlines).
            let (mut lines, mut in_quotes) = (0u64, false);
            use futures::StreamExt;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(pg_error)?;
                bar.inc(chunk.len() as u64);
                for byte in chunk.iter() {
                    match byte {
                        b'"' => in_quotes = !in_quotes,
                        b'\n' if !in_quotes => lines += 1,
                        _ => {}
                    }
                }
                bar.set_message(format!("{} rows", lines.saturating_sub(header as u64)));
                if format == Format::Csv {
                    file.write_all(&chunk)?;
                } else {
                    csv_data.extend_from_slice(&chunk);
                }
            }
            if format == Format::Csv {
                file.sync_all()?;
                return Ok(lines.saturating_sub(1));
            }
            let batches = csv_to_batches(&csv_data, &schema)?;
            let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
            match format {
                Format::Parquet => {
                    let mut writer =
                        datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None)?;
                    for batch in &batches {
                        writer.write(batch)?;
                    }
                    writer.close()?;
                }
                Format::Json => {
                    let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(file);
                    for batch in &batches {
                        writer.write(batch)?;
                    }
                    writer.finish()?;
                }
                Format::Csv => unreachable!(),
            }
            Ok(rows)
        }
    }
}

/// The Arrow type a Postgres column is exported as (text when there is no
/// exact match: numeric keeps its digits).
fn arrow_type(pg: &tokio_postgres::types::Type) -> DataType {
    use tokio_postgres::types::Type;
    match *pg {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        _ => DataType::Utf8,
    }
}

/// Server CSV (Postgres text values) into batches of `schema`: read as
/// text, then cast, which takes Postgres' spellings (t/f, "2024-01-02
/// 03:04:05+00").
fn csv_to_batches(data: &[u8], schema: &SchemaRef) -> anyhow::Result<Vec<RecordBatch>> {
    let text_schema = Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let reader = datafusion::arrow::csv::ReaderBuilder::new(text_schema)
        .with_header(false)
        .with_batch_size(64 * 1024)
        .build(std::io::Cursor::new(data))?;
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch?;
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                datafusion::arrow::compute::cast(column, field.data_type()).map_err(|e| {
                    anyhow!(
                        "column \"{}\" did not convert to {}: {e}",
                        field.name(),
                        field.data_type()
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?;
        batches.push(RecordBatch::try_new(schema.clone(), columns)?);
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_text_casts_to_arrow_types() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i", DataType::Int32, true),
            Field::new("d", DataType::Date32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new(
                "tz",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
        ]));
        let batches = csv_to_batches(
            b"t,1,2024-01-02,2024-01-02 03:04:05.5,2024-01-02 03:04:05+00\nf,,,,\n",
            &schema,
        )
        .unwrap();
        assert_eq!(batches[0].num_rows(), 2);
        assert_eq!(batches[0].column(1).null_count(), 1);
    }

    #[test]
    fn names_split_and_fold_like_postgres() {
        assert_eq!(split_name("T"), ("public".into(), "t".into()));
        assert_eq!(split_name("s.\"Mixed\""), ("s".into(), "Mixed".into()));
    }
}
