//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT`: what to copy and how.
//! The wire layer moves and parses the bytes (`pg::copy`); the session
//! says which columns come or go and stores the rows like an INSERT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BinaryArray, IntervalMonthDayNanoArray, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{MemTable, SchemaProvider};
use datafusion::common::TableReference;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};

use super::{normalize_ident, Session, StatementResult};
use crate::error::{not_supported, QuiverError, Result};

/// The data format of a COPY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFormat {
    Text,
    Csv,
    Binary,
    /// Files only (`COPY t FROM '/path/*.parquet' (FORMAT parquet)`).
    Parquet,
    /// JSON lines, one object per row; files only.
    Json,
}

impl CopyFormat {
    /// Whether the wire protocol can carry it (COPY FROM STDIN, TO STDOUT).
    pub fn is_stream_format(self) -> bool {
        matches!(
            self,
            CopyFormat::Text | CopyFormat::Csv | CopyFormat::Binary
        )
    }
}

/// How rows are written in the data of a COPY.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    pub format: CopyFormat,
    pub delimiter: char,
    /// The text that stands for NULL.
    pub null: String,
    pub quote: char,
    pub escape: char,
    pub header: bool,
}

impl CopyOptions {
    /// Postgres' defaults for a format.
    pub fn new(format: CopyFormat) -> Self {
        let csv = format == CopyFormat::Csv;
        CopyOptions {
            format,
            delimiter: if csv { ',' } else { '\t' },
            null: if csv { String::new() } else { "\\N".into() },
            quote: '"',
            escape: '"',
            header: false,
        }
    }
}

/// A `COPY table FROM STDIN` waiting for its data (or from files).
#[derive(Debug, Clone)]
pub struct CopyIn {
    /// The table as the statement named it (for messages).
    pub table_name: String,
    /// Quoted, schema-qualified name for the INSERT that stores the rows.
    qualified: String,
    /// The table's schema.
    schema_name: String,
    /// The columns the data has, in order, with their types.
    pub columns: SchemaRef,
    pub options: CopyOptions,
    /// The session's time zone (Arrow's form), where a `timestamptz`
    /// written without an offset is.
    pub zone: String,
    /// The DateStyle order an ambiguous date (`01/02/2024`) is read in.
    pub date_order: super::pg_datestyle::Order,
}

impl CopyIn {
    /// A COPY into a table `t` with `columns` (unit tests of the parser).
    #[cfg(test)]
    pub(crate) fn for_test(columns: SchemaRef, options: CopyOptions) -> CopyIn {
        CopyIn {
            table_name: "t".into(),
            qualified: "public.t".into(),
            schema_name: "public".into(),
            columns,
            options,
            zone: "UTC".into(),
            date_order: Default::default(),
        }
    }
}

/// Rows to send for `COPY ... TO STDOUT`.
#[derive(Debug)]
pub struct CopyOut {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
    pub options: CopyOptions,
}

static COPY_SEQ: AtomicU64 = AtomicU64::new(0);

/// Whether SQL text is a COPY statement (which DataFusion's parser reads
/// differently): its first word, after comments, is COPY.
pub fn is_copy(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    rest.get(..4)
        .is_some_and(|w| w.eq_ignore_ascii_case("copy"))
        && rest[4..].starts_with(|c: char| c.is_whitespace() || c == '(')
}

/// Whether a parsed statement is a `COPY ... FROM STDIN`.
pub fn is_copy_from_stdin(statement: &DfStatement) -> bool {
    matches!(
        statement,
        DfStatement::Statement(s) if matches!(
            s.as_ref(),
            Statement::Copy { to: false, target: CopyTarget::Stdin, .. }
        )
    )
}

fn options_of(options: &[CopyOption], legacy: &[CopyLegacyOption]) -> Result<CopyOptions> {
    let mut format = CopyFormat::Text;
    for o in options {
        if let CopyOption::Format(name) = o {
            format = match name.value.to_ascii_lowercase().as_str() {
                "text" => CopyFormat::Text,
                "csv" => CopyFormat::Csv,
                "binary" => CopyFormat::Binary,
                "parquet" => CopyFormat::Parquet,
                "json" | "ndjson" | "jsonl" => CopyFormat::Json,
                other => {
                    return Err(QuiverError::InvalidParameterValue(format!(
                        "COPY format \"{other}\" not recognized"
                    )))
                }
            };
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => format = CopyFormat::Binary,
            CopyLegacyOption::Csv(_) => format = CopyFormat::Csv,
            _ => {}
        }
    }
    let mut out = CopyOptions::new(format);
    let mut escape = None;
    for o in options {
        match o {
            CopyOption::Format(_) | CopyOption::Freeze(_) => {}
            CopyOption::Delimiter(c) => out.delimiter = *c,
            CopyOption::Null(s) => out.null = s.clone(),
            CopyOption::Header(h) => out.header = *h,
            CopyOption::Quote(c) => out.quote = *c,
            CopyOption::Escape(c) => escape = Some(*c),
            CopyOption::Encoding(e) => {
                let e = e.to_ascii_uppercase().replace(['-', '_'], "");
                if e != "UTF8" && e != "UNICODE" {
                    return Err(not_supported(format!("COPY encoding {e}; data is UTF8")));
                }
            }
            other => return Err(not_supported(format!("the COPY option {other}"))),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Binary => {}
            CopyLegacyOption::Delimiter(c) => out.delimiter = *c,
            CopyLegacyOption::Null(s) => out.null = s.clone(),
            CopyLegacyOption::Header => out.header = true,
            CopyLegacyOption::Csv(csv) => {
                for c in csv {
                    match c {
                        CopyLegacyCsvOption::Header => out.header = true,
                        CopyLegacyCsvOption::Quote(q) => out.quote = *q,
                        CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                        other => return Err(not_supported(format!("the COPY option {other}"))),
                    }
                }
            }
            other => return Err(not_supported(format!("the COPY option {other}"))),
        }
    }
    out.escape = escape.unwrap_or(out.quote);
    if out.header && out.format == CopyFormat::Binary {
        return Err(QuiverError::FeatureNotSupported(
            "cannot specify HEADER in BINARY mode".into(),
        ));
    }
    if out.format == CopyFormat::Text && matches!(out.delimiter, '\\' | '\n' | '\r') {
        return Err(QuiverError::InvalidParameterValue(
            "COPY delimiter cannot be newline, carriage return or backslash".into(),
        ));
    }
    Ok(out)
}

impl Session {
    /// Runs a COPY statement: FROM STDIN gives the wire layer a [`CopyIn`]
    /// to fill; TO STDOUT runs the query and gives it the rows.
    pub(super) async fn copy(&mut self, statement: &Statement) -> Result<StatementResult> {
        let Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            values,
        } = statement
        else {
            return Err(QuiverError::Internal("not a COPY statement".into()));
        };
        let options = options_of(options, legacy_options)?;
        if !options.format.is_stream_format()
            && matches!(target, CopyTarget::Stdin | CopyTarget::Stdout)
        {
            let name = format!("{:?}", options.format).to_lowercase();
            return Err(QuiverError::FeatureNotSupported(format!(
                "COPY FORMAT {name} reads and writes server files only; use FORMAT csv, text or binary with STDIN/STDOUT"
            )));
        }
        match (to, target) {
            (false, CopyTarget::Stdin | CopyTarget::File { .. }) => {
                if !values.is_empty() {
                    return Err(not_supported("COPY data inline in the statement text"));
                }
                let CopySource::Table {
                    table_name,
                    columns,
                } = source
                else {
                    return Err(QuiverError::InvalidStatement(
                        "COPY FROM needs a table, not a query".into(),
                    ));
                };
                let name = self.qualified(table_name)?;
                let catalog = self.catalog();
                let Some(table) = catalog.table(&name) else {
                    return Err(match catalog.view(&name) {
                        Some(_) => QuiverError::WrongObjectType(format!(
                            "cannot copy to view \"{}\"",
                            name.name
                        )),
                        None => QuiverError::UndefinedTable(name.name.clone()),
                    });
                };
                let schema = table.schema_ref();
                let fields: Vec<Field> = if columns.is_empty() {
                    schema.fields().iter().map(|f| f.as_ref().clone()).collect()
                } else {
                    columns
                        .iter()
                        .map(|c| {
                            let c = normalize_ident(c);
                            schema.field_with_name(&c).cloned().map_err(|_| {
                                QuiverError::UndefinedColumnOf {
                                    column: c.clone(),
                                    table: name.name.clone(),
                                }
                            })
                        })
                        .collect::<Result<_>>()?
                };
                let copy = CopyIn {
                    table_name: name.name.clone(),
                    qualified: format!("{}.{}", quote(&name.schema), quote(&name.name)),
                    schema_name: name.schema.clone(),
                    columns: Arc::new(Schema::new(fields)),
                    options,
                    zone: self.arrow_zone(),
                    date_order: self.date_style().order,
                };
                match target {
                    CopyTarget::File { filename } => self.copy_from_files(copy, filename).await,
                    _ => Ok(StatementResult::CopyIn(copy)),
                }
            }
            (true, CopyTarget::Stdout | CopyTarget::File { .. }) => {
                let query = match source {
                    CopySource::Query(q) => q.to_string(),
                    CopySource::Table {
                        table_name,
                        columns,
                    } => {
                        let name = self.qualified(table_name)?;
                        if self.catalog().table(&name).is_none() {
                            return Err(match self.catalog().view(&name) {
                                Some(_) => QuiverError::WrongObjectType(format!(
                                    "cannot copy from view \"{}\"; try the COPY (SELECT ...) TO variant",
                                    name.name
                                )),
                                None => QuiverError::UndefinedTable(name.name.clone()),
                            });
                        }
                        let list = if columns.is_empty() {
                            "*".to_string()
                        } else {
                            columns
                                .iter()
                                .map(|c| quote(&normalize_ident(c)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        format!(
                            "SELECT {list} FROM {}.{}",
                            quote(&name.schema),
                            quote(&name.name)
                        )
                    }
                };
                let mut statements = Session::parse(&query)?;
                let statement = statements
                    .pop_front()
                    .ok_or_else(|| QuiverError::InvalidStatement("COPY needs a query".into()))?;
                let result = Box::pin(self.execute_statement(statement)).await?;
                match result.collected().await? {
                    StatementResult::Rows {
                        schema, batches, ..
                    } => {
                        let out = CopyOut {
                            schema,
                            batches,
                            options,
                        };
                        match target {
                            CopyTarget::File { filename } => self.copy_to_file(out, filename).await,
                            _ => Ok(StatementResult::CopyOut(out)),
                        }
                    }
                    _ => Err(QuiverError::InvalidStatement(
                        "COPY query must return rows".into(),
                    )),
                }
            }
            (_, _) => Err(QuiverError::FeatureNotSupported(
                "COPY with a program is not supported; use a file, or STDIN/STDOUT (psql's \\copy)"
                    .into(),
            )),
        }
    }

    /// Stores the rows of a COPY FROM STDIN, as one INSERT: in the open
    /// transaction block, else committed on its own. Nothing is kept if
    /// any row fails.
    ///
    /// A boxed future: COPY FROM a file runs this INSERT from inside a
    /// statement, and the box (declared Send) ends that recursion.
    pub fn copy_finish<'a>(
        &'a mut self,
        copy: &'a CopyIn,
        batches: Vec<RecordBatch>,
    ) -> futures::future::BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            // Every column of the table, in order, parsed to its type: the
            // rows go in as they are.
            let reference =
                TableReference::partial(copy.schema_name.as_str(), copy.table_name.as_str());
            let (_, table) = self.table_for_reference(&reference)?;
            if table.schema_ref().fields() == copy.columns.fields()
                && batches
                    .iter()
                    .all(|b| b.schema().fields() == copy.columns.fields())
            {
                return self.store_rows(&table, batches).await;
            }
            // Otherwise an INSERT fills in defaults and converts types.
            let name = format!("copy_{}", COPY_SEQ.fetch_add(1, Ordering::Relaxed));
            // Files in Parquet or JSON bring their own column types.
            let schema = batches
                .first()
                .map(|b| b.schema())
                .unwrap_or_else(|| copy.columns.clone());
            let provider = MemTable::try_new(schema, vec![batches])?;
            self.scratch_schema
                .register_table(name.clone(), Arc::new(provider))?;
            let columns = copy
                .columns
                .fields()
                .iter()
                .map(|f| quote(f.name()))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO {} ({columns}) SELECT * FROM {}.s.{}",
                copy.qualified,
                super::dml::SCRATCH_CATALOG,
                quote(&name)
            );
            let result = self.execute_sql(&sql).await.pop();
            let _ = self.scratch_schema.deregister_table(&name);
            match result {
                Some(Ok(StatementResult::Command { rows, .. })) => Ok(rows.unwrap_or(0)),
                Some(Err(e)) => Err(e),
                _ => Err(QuiverError::Internal("COPY stored no rows".into())),
            }
        })
    }

    /// Marks the open transaction block failed after a COPY that failed
    /// while its data was being read.
    pub fn copy_failed(&mut self) {
        self.note_failure();
    }
}

/// A value that does not fit its column, found while reading COPY data.
#[derive(Debug)]
pub struct BadValue {
    /// Row index among the rows read (0-based).
    pub row: usize,
    pub column: String,
    pub value: String,
    pub message: String,
}

/// Converts COPY text fields (None is NULL) into a column of `field`'s
/// type, with Postgres' input rules where Arrow's differ. Reports the
/// first value that does not convert.
pub fn column_from_text(
    field: &Field,
    values: &StringArray,
    zone: &str,
    date_order: super::pg_datestyle::Order,
) -> std::result::Result<ArrayRef, BadValue> {
    let bad = |row: usize, message: String| BadValue {
        row,
        column: field.name().clone(),
        value: values.value(row).to_string(),
        message,
    };
    let type_name = crate::engine::types::display_type(field);
    match field.data_type() {
        DataType::Utf8 => Ok(Arc::new(values.clone())),
        DataType::Binary => {
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(text) => Some(super::pg_casts::parse_bytea(text).map_err(|e| {
                        bad(row, format!("invalid input syntax for type bytea: {e}"))
                    })?),
                });
            }
            Ok(Arc::new(BinaryArray::from_iter(out)))
        }
        DataType::Interval(_) => {
            let mut out = Vec::with_capacity(values.len());
            for (row, v) in values.iter().enumerate() {
                out.push(match v {
                    None => None,
                    Some(text) => Some(super::pg_casts::parse_interval(text).map_err(|_| {
                        bad(
                            row,
                            format!("invalid input syntax for type interval: \"{text}\""),
                        )
                    })?),
                });
            }
            Ok(Arc::new(IntervalMonthDayNanoArray::from(out)))
        }
        target => {
            // Postgres ignores spaces around numbers, dates and the like.
            let padded = values
                .iter()
                .flatten()
                .any(|v| v.starts_with(char::is_whitespace) || v.ends_with(char::is_whitespace));
            let trimmed: StringArray;
            let values_read = if padded {
                trimmed = values.iter().map(|v| v.map(str::trim)).collect();
                &trimmed
            } else {
                values
            };
            // Dates and timestamps in PostgreSQL's forms, not only ISO.
            if super::pg_datetime::reads(target) {
                use super::pg_datetime::Unread;
                return super::pg_datetime::read_datetimes(
                    values_read,
                    target,
                    Some(zone),
                    date_order,
                )
                .map_err(|e| match e {
                    Unread::Row(row) => bad(
                        row,
                        format!(
                            "invalid input syntax for type {type_name}: \"{}\"",
                            values.value(row)
                        ),
                    ),
                    Unread::Arrow(e) => bad(0, e.to_string()),
                });
            }
            let converted = cast(values_read, target).map_err(|e| bad(0, e.to_string()))?;
            // Safe casts give NULL for what does not parse: find the first.
            if converted.null_count() > values.null_count() {
                if let Some(row) =
                    (0..values.len()).find(|&i| values.is_valid(i) && converted.is_null(i))
                {
                    return Err(bad(
                        row,
                        format!(
                            "invalid input syntax for type {type_name}: \"{}\"",
                            values.value(row)
                        ),
                    ));
                }
            }
            Ok(converted)
        }
    }
}

/// `"name"`, quoted for use in generated SQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Parses a COPY statement with the SQL parser DataFusion re-exports
/// (DataFusion's own only knows `COPY ... TO 'file'`).
pub fn parse_copy(sql: &str) -> Result<DfStatement> {
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, sql)?;
    if statements.len() != 1 {
        return Err(QuiverError::InvalidStatement(
            "COPY must be a statement of its own".into(),
        ));
    }
    Ok(DfStatement::Statement(Box::new(statements.remove(0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_statements_are_recognised_after_comments() {
        assert!(is_copy("COPY t FROM STDIN"));
        assert!(is_copy("  -- load\ncopy t from stdin"));
        assert!(is_copy("copy (select 1) to stdout"));
        assert!(!is_copy("copyright"));
        assert!(!is_copy("SELECT 'COPY'"));
    }

    #[test]
    fn csv_defaults_follow_postgres() {
        let o = options_of(
            &[CopyOption::Format(
                datafusion::sql::sqlparser::ast::Ident::new("csv"),
            )],
            &[],
        )
        .unwrap();
        assert_eq!(o.delimiter, ',');
        assert_eq!(o.null, "");
        assert_eq!(o.escape, '"');
    }
}
