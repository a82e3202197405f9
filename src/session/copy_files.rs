//! COPY to and from files on the server: `COPY t FROM '/data/*.csv'
//! (FORMAT csv, HEADER)`, `COPY t FROM '/data/part-*.parquet' (FORMAT
//! parquet)`, JSON lines, and `COPY t|(query) TO '/out/file' (FORMAT csv |
//! text | binary | parquet | json)`. Superusers only (checked with the other
//! privileges). Text, CSV and binary files are read exactly as COPY data
//! from a client is; Parquet and JSON through DataFusion's readers.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions};

use super::{Session, StatementResult};
use crate::engine::stage::Stager;
use crate::engine::table::TARGET_BATCH_ROWS;
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
                let batches = conform(&copy, batches)?;
                match &copy.stager {
                    Some(stager) if same_types(stager, &batches) => {
                        stage_all(stager, batches).await?
                    }
                    // Other types are converted as an INSERT would.
                    _ => CopyRows::Batches(batches),
                }
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
/// are converted when the rows are staged or stored.
fn conform(copy: &CopyIn, batches: Vec<RecordBatch>) -> Result<Vec<RecordBatch>> {
    let Some(first) = batches.first() else {
        return Ok(vec![RecordBatch::new_empty(copy.columns.clone())]);
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
    let fields: Vec<Field> = indices
        .iter()
        .zip(wanted.iter())
        .map(|(i, target)| Field::new(target.name(), file.field(*i).data_type().clone(), true))
        .collect();
    let schema = std::sync::Arc::new(Schema::new(fields));
    let batches = batches
        .iter()
        .map(|batch| {
            let columns = indices.iter().map(|i| batch.column(*i).clone()).collect();
            RecordBatch::try_new(schema.clone(), columns)
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok(batches)
}

/// Whether the rows have the table's column types, or differ only in
/// keeping strings or bytes as views (as DataFusion reads Parquet).
fn same_types(stager: &Stager, batches: &[RecordBatch]) -> bool {
    let table = stager.table().schema_ref();
    let Some(first) = batches.first() else {
        return true;
    };
    let file = first.schema();
    file.fields().len() == table.fields().len()
        && file.fields().iter().zip(table.fields()).all(|(f, t)| {
            matches!(
                (f.data_type(), t.data_type()),
                (DataType::Utf8View, DataType::Utf8) | (DataType::BinaryView, DataType::Binary)
            ) || f.data_type() == t.data_type()
        })
}

/// Rows read from files staged for their table (conformed to its types
/// and constraints, and compressed) as a COPY's text is: in groups of
/// about a segment, on every core, in order.
async fn stage_all(stager: &Stager, batches: Vec<RecordBatch>) -> Result<CopyRows> {
    let mut groups: Vec<Vec<RecordBatch>> = Vec::new();
    let mut rows = TARGET_BATCH_ROWS;
    for batch in batches {
        if rows >= TARGET_BATCH_ROWS {
            groups.push(Vec::new());
            rows = 0;
        }
        rows += batch.num_rows();
        groups.last_mut().expect("a group").push(batch);
    }
    let staging: Vec<_> = groups
        .into_iter()
        .map(|group| {
            let stager = stager.clone();
            crate::workers::spawn_awaited(move || {
                let batch = concat_batches(&group[0].schema(), &group)?;
                stager.stage(vec![batch])
            })
        })
        .collect();
    let mut parts = Vec::with_capacity(staging.len());
    for done in staging {
        let staged = done
            .await
            .map_err(|_| QuiverError::Internal("staging the file's rows failed".into()))?;
        parts.push(staged?);
    }
    Ok(CopyRows::Staged(parts))
}
