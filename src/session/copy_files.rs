//! COPY to and from files on the server: `COPY t FROM '/data/*.csv'
//! (FORMAT csv, HEADER)`, `COPY t FROM '/data/part-*.parquet' (FORMAT
//! parquet)`, JSON lines, and `COPY t|(query) TO '/out/file' (FORMAT csv |
//! text | binary | parquet | json)`. Superusers only (checked with the other
//! privileges). Text, CSV and binary files are read exactly as COPY data
//! from a client is; Parquet and JSON through DataFusion's readers.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions};

use super::{Session, StatementResult};
use crate::error::{QuiverError, Result};
use crate::sql::copy::CopyRows;
use crate::sql::copy_options::{CopyFormat, CopyIn, CopyOut};

impl Session {
    /// `COPY t FROM 'pattern'`: every file the pattern matches, as one
    /// INSERT (all rows or none).
    pub(super) async fn copy_from_files(
        &mut self,
        copy: CopyIn,
        pattern: &str,
    ) -> Result<StatementResult> {
        let started = std::time::Instant::now();
        let paths = matching_files(pattern)?;
        let rows = match copy.options.format {
            CopyFormat::Parquet | CopyFormat::Json => {
                let urls: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                let frame = if copy.options.format == CopyFormat::Parquet {
                    self.ctx
                        .read_parquet(urls, ParquetReadOptions::default())
                        .await
                } else {
                    let options = JsonReadOptions {
                        file_extension: "",
                        ..Default::default()
                    };
                    self.ctx.read_json(urls, options).await
                }
                .map_err(|e| unreadable(pattern, e))?;
                let batches = self
                    .collect_plan(frame.into_unoptimized_plan())
                    .await
                    .map_err(|e| unreadable(pattern, e))?;
                CopyRows::Batches(vec![conform(&copy, batches)?])
            }
            _ => {
                // Reading and parsing block: off the async workers.
                let copy = copy.clone();
                tokio::task::spawn_blocking(move || {
                    let mut rows = CopyRows::Batches(Vec::new());
                    for path in &paths {
                        let data = std::fs::read(path).map_err(|e| cannot_open(path, e))?;
                        let mut progress = crate::sql::copy::CopyInProgress::new(copy.clone());
                        progress.push(&data).map_err(|e| in_file(path, e))?;
                        rows.append(progress.finish().map_err(|e| in_file(path, e))?)?;
                    }
                    Ok::<_, QuiverError>(rows)
                })
                .await
                .map_err(|e| QuiverError::Internal(format!("reading COPY files: {e}")))??
            }
        };
        let parsed = started.elapsed();
        let rows = self.copy_finish(&copy, rows).await?;
        tracing::debug!(
            rows,
            read_ms = parsed.as_millis() as u64,
            store_ms = (started.elapsed() - parsed).as_millis() as u64,
            "COPY FROM files"
        );
        Ok(StatementResult::Command {
            tag: "COPY",
            rows: Some(rows),
        })
    }

    /// `COPY ... TO 'path'`: writes the rows to a new or replaced file
    /// (off the async workers: encoding and writing block).
    pub(super) async fn copy_to_file(
        &mut self,
        out: CopyOut,
        path: &str,
    ) -> Result<StatementResult> {
        let path = absolute(path)?;
        let options = crate::sql::types::format_options(self.settings());
        tokio::task::spawn_blocking(move || write_file(out, &path, &options))
            .await
            .map_err(|e| QuiverError::Internal(format!("writing the COPY file: {e}")))?
    }
}

fn write_file(
    out: CopyOut,
    path: &Path,
    options: &std::sync::Arc<pgwire::types::format::FormatOptions>,
) -> Result<StatementResult> {
    let rows: usize = out.batches.iter().map(|b| b.num_rows()).sum();
    let file = std::fs::File::create(path).map_err(|e| cannot_open(path, e))?;
    let failed = |e: &dyn std::fmt::Display| {
        QuiverError::Io(std::io::Error::other(format!(
            "could not write file \"{}\": {e}",
            path.display()
        )))
    };
    match out.options.format {
        CopyFormat::Parquet => {
            use datafusion::parquet::arrow::ArrowWriter;
            let mut writer =
                ArrowWriter::try_new(file, out.schema.clone(), None).map_err(|e| failed(&e))?;
            for batch in &out.batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.close().map_err(|e| failed(&e))?;
        }
        CopyFormat::Json => {
            use datafusion::arrow::json::LineDelimitedWriter;
            let mut writer = LineDelimitedWriter::new(std::io::BufWriter::new(file));
            for batch in &out.batches {
                writer.write(batch).map_err(|e| failed(&e))?;
            }
            writer.finish().map_err(|e| failed(&e))?;
        }
        _ => {
            use std::io::Write;
            let binary = out.options.format == CopyFormat::Binary;
            let chunks = crate::sql::copy::encode_copy_out(out, options)
                .map_err(|e| QuiverError::Internal(format!("encoding COPY data: {e}")))?;
            let mut writer = std::io::BufWriter::new(file);
            for chunk in chunks {
                writer.write_all(&chunk).map_err(|e| failed(&e))?;
            }
            // The binary trailer (on the wire, pgwire sends it).
            if binary {
                writer
                    .write_all(&(-1i16).to_be_bytes())
                    .map_err(|e| failed(&e))?;
            }
            writer.flush().map_err(|e| failed(&e))?;
        }
    }
    Ok(StatementResult::Command {
        tag: "COPY",
        rows: Some(rows),
    })
}

/// Server file names must be absolute: the server's working directory is
/// no business of a client's.
fn absolute(path: &str) -> Result<PathBuf> {
    let path = PathBuf::from(path);
    if !path.is_absolute() {
        return Err(QuiverError::InvalidParameterValue(format!(
            "relative path not allowed for a server file: \"{}\" (give the absolute path)",
            path.display()
        )));
    }
    Ok(path)
}

/// The files a COPY FROM pattern names (`*`, `?` and `[...]` as in a
/// shell), in name order.
pub fn matching_files(pattern: &str) -> Result<Vec<PathBuf>> {
    absolute(pattern)?;
    let matches = glob::glob(pattern).map_err(|e| {
        QuiverError::InvalidParameterValue(format!("invalid file pattern \"{pattern}\": {e}"))
    })?;
    let mut paths = Vec::new();
    for entry in matches {
        let path = entry.map_err(|e| QuiverError::Io(std::io::Error::other(e.to_string())))?;
        if path.is_file() {
            paths.push(path);
        }
    }
    if paths.is_empty() {
        return Err(QuiverError::UndefinedFile(format!(
            "could not open file \"{pattern}\" for reading: No such file or directory"
        )));
    }
    paths.sort();
    Ok(paths)
}

fn cannot_open(path: &Path, e: std::io::Error) -> QuiverError {
    if e.kind() == std::io::ErrorKind::NotFound {
        return QuiverError::UndefinedFile(format!(
            "could not open file \"{}\": {e}",
            path.display()
        ));
    }
    QuiverError::Io(std::io::Error::new(
        e.kind(),
        format!("could not open file \"{}\": {e}", path.display()),
    ))
}

fn unreadable(pattern: &str, e: impl Into<QuiverError>) -> QuiverError {
    QuiverError::InvalidParameterValue(format!("could not read \"{pattern}\": {}", e.into()))
}

/// A COPY data error, with the file it is in.
fn in_file(path: &Path, e: QuiverError) -> QuiverError {
    match e {
        QuiverError::CopyData {
            message,
            context,
            fault,
        } => QuiverError::CopyData {
            message,
            context: format!("{context}, file \"{}\"", path.display()),
            fault,
        },
        other => other,
    }
}

/// The file's columns as the COPY's: by name when the file has every
/// column the COPY names, else by position when the counts agree. Types
/// are converted by the INSERT that stores the rows.
fn conform(copy: &CopyIn, batches: Vec<RecordBatch>) -> Result<RecordBatch> {
    let Some(first) = batches.first() else {
        return Ok(RecordBatch::new_empty(copy.columns.clone()));
    };
    let file = first.schema();
    let wanted = copy.columns.fields();
    let by_name: Option<Vec<usize>> = wanted
        .iter()
        .map(|f| file.index_of(f.name()).ok())
        .collect();
    let indices = match by_name {
        Some(indices) => indices,
        None if file.fields().len() == wanted.len() => (0..wanted.len()).collect(),
        None => {
            let names = |fields: &datafusion::arrow::datatypes::Fields| {
                fields
                    .iter()
                    .map(|f| f.name().as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(QuiverError::InvalidParameterValue(format!(
                "the file's columns ({}) do not match the columns of \"{}\" ({})",
                names(file.fields()),
                copy.table_name,
                names(wanted)
            )));
        }
    };
    let all = concat_batches(&file, &batches)?;
    let columns = indices.iter().map(|i| all.column(*i).clone()).collect();
    let fields: Vec<Field> = indices
        .iter()
        .zip(wanted.iter())
        .map(|(i, target)| Field::new(target.name(), file.field(*i).data_type().clone(), true))
        .collect();
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}
