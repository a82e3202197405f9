//! `COPY ... FROM STDIN` and `COPY ... TO STDOUT`: what to copy and how.
//! The front end moves the bytes and `sql::copy` parses them; the session
//! says which columns come or go and stores the rows like an INSERT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::catalog::{MemTable, SchemaProvider};
use datafusion::common::TableReference;
use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, Statement};

use super::{normalize_ident, Overriding, Session, StatementResult};
use crate::engine::Table;
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::copy::CopyRows;
use crate::sql::copy_options::{options_of, quote, CopyIn, CopyOut};

static COPY_SEQ: AtomicU64 = AtomicU64::new(0);

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
                // Every column in order, committed on its own: each chunk
                // is staged for the table as it is parsed.
                let columns = Arc::new(Schema::new(fields));
                let stager = (columns.fields() == schema.fields() && self.may_stage(table))
                    .then(|| self.db.stager(table));
                let copy = CopyIn {
                    table_name: name.name.clone(),
                    qualified: format!("{}.{}", quote(&name.schema), quote(&name.name)),
                    schema_name: name.schema.clone(),
                    columns,
                    options,
                    zone: self.arrow_zone(),
                    date_order: self.date_style().order,
                    stager,
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

    /// Whether a COPY into `table` may stage its rows and commit them on
    /// its own: no transaction block (the rows would join its changes) and
    /// no foreign keys (they are checked on the plain rows).
    fn may_stage(&self, table: &Table) -> bool {
        self.current_txn().is_none() && !self.has_foreign_keys(table)
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
        rows: CopyRows,
    ) -> futures::future::BoxFuture<'a, Result<usize>> {
        Box::pin(async move {
            let stored = self.copy_store(copy, rows).await;
            // A load that took the WAL past its checkpoint size starts the
            // checkpoint now, not at the next statement of some session.
            self.db.maybe_checkpoint();
            stored
        })
    }

    /// What [`Session::copy_finish`] does before the checkpoint check.
    async fn copy_store(&mut self, copy: &CopyIn, rows: CopyRows) -> Result<usize> {
        let reference =
            TableReference::partial(copy.schema_name.as_str(), copy.table_name.as_str());
        let (_, table) = self.table_for_reference(&reference)?;
        let batches = match rows {
            CopyRows::Staged(parts) => match &copy.stager {
                // Still the table the rows were staged for.
                Some(stager) if Arc::ptr_eq(stager.table(), &table) && self.may_stage(&table) => {
                    let (rows, ack) =
                        self.db
                            .append_staged(&table, parts, self.synchronous_commit())?;
                    ack.wait().await;
                    return Ok(rows);
                }
                _ => CopyRows::Staged(parts).into_batches()?,
            },
            CopyRows::Batches(batches) => batches,
        };
        // Every column of the table, in order, parsed to its type: the
        // rows go in as they are.
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
        self.overriding = Some(Overriding::System);
        let result = self.execute_sql(&sql).await.pop();
        self.overriding = None;
        let _ = self.scratch_schema.deregister_table(&name);
        match result {
            Some(Ok(StatementResult::Command { rows, .. })) => Ok(rows.unwrap_or(0)),
            Some(Err(e)) => Err(e),
            _ => Err(QuiverError::Internal("COPY stored no rows".into())),
        }
    }

    /// Stores Arrow batches a client sent as they are (Flight SQL's bulk
    /// ingest): the columns of `copy`, in its order, cast to the table's
    /// types where they differ, never through text. When they are all
    /// the table's columns the rows go straight in; otherwise an INSERT
    /// fills in the defaults of the others. Privileges were checked when
    /// the COPY statement that made `copy` ran.
    pub async fn copy_arrow(&mut self, copy: &CopyIn, batches: Vec<RecordBatch>) -> Result<usize> {
        let reference =
            TableReference::partial(copy.schema_name.as_str(), copy.table_name.as_str());
        let (_, table) = self.table_for_reference(&reference)?;
        let every_column = table.schema_ref().fields().len() == copy.columns.fields().len()
            && table
                .schema_ref()
                .fields()
                .iter()
                .zip(copy.columns.fields())
                .all(|(a, b)| a.name() == b.name());
        if every_column {
            self.store_rows(&table, batches).await
        } else {
            self.copy_finish(copy, CopyRows::Batches(batches)).await
        }
    }

    /// Marks the open transaction block failed after a COPY that failed
    /// while its data was being read.
    pub fn copy_failed(&mut self) {
        self.note_failure();
    }
}
