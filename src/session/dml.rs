//! UPDATE, DELETE, and INSERT with ON CONFLICT or RETURNING: statements
//! that read the table they change.
//!
//! The rows to change are found by DataFusion: the statement becomes a
//! SELECT over the table's visible rows with a hidden row-id column (and
//! the new values, for UPDATE). The row ids become a delete and the new
//! values an insert, applied together to the transaction's view of the
//! table; COMMIT logs and installs them.
//!
//! Over 800 lines: UPDATE, DELETE and upsert share one pipeline (the SELECT
//! with row ids, the target's scratch table, conflict checks); each
//! statement's part is short.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch, UInt64Array};
use datafusion::arrow::compute::{concat_batches, sort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{col, Cast, Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, ConflictTarget, Delete, Expr as SqlExpr, FromTable, Insert,
    OnConflictAction, OnInsert, SelectItem, Statement, TableFactor, TableWithJoins, Update,
    UpdateTableFromKind,
};
use datafusion::sql::sqlparser::parser::Parser;

use super::{normalize_ident, Session, StatementResult};
use crate::engine::conform::conform_batches;
use crate::engine::types::display_type;
use crate::engine::{Change, Conflict, QualifiedName, Table, TableVersion, Transaction};
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::column_names;

/// The hidden column that numbers a table's visible rows for UPDATE and
/// DELETE.
const ROW_ID: &str = "__quiver_rowid";
/// The DataFusion catalog and schema of the per-statement tables.
pub(super) const SCRATCH_CATALOG: &str = "__quiver_dml";
const SCRATCH_SCHEMA: &str = "s";
/// An autocommit statement that loses a race with another writer is run
/// again on the newer rows (what Postgres's READ COMMITTED does), this
/// many times before giving up with 40001.
const AUTOCOMMIT_RETRIES: usize = 20;

static SCRATCH_SEQ: AtomicU64 = AtomicU64::new(1);

/// Tables that exist for one statement (the target with row ids,
/// EXCLUDED, the rows RETURNING reads); gone when this is dropped.
struct Scratch {
    schema: Arc<MemorySchemaProvider>,
    names: Vec<String>,
    partitions: usize,
}

impl Scratch {
    /// Registers a table provider and returns the SQL that names it.
    fn add_provider(
        &mut self,
        table: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> Result<String> {
        let name = format!("t{}", SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed));
        self.schema.register_table(name.clone(), table)?;
        self.names.push(name.clone());
        Ok(format!("{SCRATCH_CATALOG}.{SCRATCH_SCHEMA}.{name}"))
    }

    /// Registers `batches` and returns the SQL that names them.
    fn add(&mut self, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<String> {
        let name = format!("t{}", SCRATCH_SEQ.fetch_add(1, Ordering::Relaxed));
        let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); self.partitions];
        for (i, batch) in batches.into_iter().enumerate() {
            parts[i % self.partitions].push(batch);
        }
        let table = MemTable::try_new(schema, parts)?;
        self.schema.register_table(name.clone(), Arc::new(table))?;
        self.names.push(name.clone());
        Ok(format!("{SCRATCH_CATALOG}.{SCRATCH_SCHEMA}.{name}"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = self.schema.deregister_table(name);
        }
    }
}

/// Clears the session's transaction slot when an autocommit statement's
/// own transaction ends, however it ends (errors, timeouts, cancels).
struct SlotGuard(Arc<crate::engine::TxnSlot>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

/// The table a statement changes, as named and aliased in it.
struct Target {
    table: Arc<Table>,
    /// What the statement's expressions call the table (alias or name),
    /// as SQL.
    alias: String,
}

/// An INSERT statement and its source query, if `statement` is one.
fn insert_with_source(
    statement: &DfStatement,
) -> Option<(
    &datafusion::sql::sqlparser::ast::Insert,
    &datafusion::sql::sqlparser::ast::Query,
)> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::Insert(insert) = s.as_ref() else {
        return None;
    };
    Some((insert, insert.source.as_deref()?))
}

impl Session {
    /// `INSERT INTO t (a) SELECT p0 FROM (VALUES ($1, 0), ...) AS v(p0, n)
    /// ORDER BY n` (SQLAlchemy's insertmanyvalues): DataFusion plans every
    /// VALUES inside an INSERT as rows of the target table, so one of
    /// another width fails. Here the source query is planned on its own
    /// and put under the INSERT in place of a stand-in table of its shape.
    /// None when the INSERT has no VALUES below its source.
    pub(super) async fn plan_insert_over_values(
        &self,
        statement: &DfStatement,
    ) -> Result<Option<LogicalPlan>> {
        use datafusion::common::tree_node::{Transformed, TreeNode};
        use datafusion::logical_expr::SubqueryAlias;
        use datafusion::sql::sqlparser::ast::SetExpr;
        let Some((insert, source)) = insert_with_source(statement) else {
            return Ok(None);
        };
        if matches!(source.body.as_ref(), SetExpr::Values(_))
            || !source.to_string().to_ascii_uppercase().contains("VALUES")
        {
            return Ok(None);
        }
        let state = self.df_state();
        let query = self.plan_source(source).await?;
        let mut scratch = self.scratch();
        let schema = Arc::new(query.schema().as_arrow().clone());
        let stand_in = scratch.add(schema, Vec::new())?;
        let mut insert = insert.clone();
        insert.source = Some(
            Parser::new(&crate::sql::dialect::Postgres)
                .try_with_sql(&format!("SELECT * FROM {stand_in}"))?
                .parse_query()?,
        );
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Insert(insert))))
            .await?;
        let reference = datafusion::common::TableReference::parse_str(&stand_in);
        let plan = plan.transform_up(|node| match &node {
            LogicalPlan::TableScan(scan) if scan.table_name == reference => {
                let alias = SubqueryAlias::try_new(Arc::new(query.clone()), reference.clone())?;
                Ok(Transformed::yes(LogicalPlan::SubqueryAlias(alias)))
            }
            _ => Ok(Transformed::no(node)),
        })?;
        Ok(Some(plan.data))
    }

    /// `INSERT INTO t SELECT ...` without a column list and with fewer
    /// columns than `t`: the query fills the first ones and the rest take
    /// their defaults, as in PostgreSQL (DataFusion requires all of them).
    /// A query of another width than the columns named is PostgreSQL's
    /// 42601.
    pub(super) async fn plan_narrow_insert(
        &self,
        statement: &DfStatement,
    ) -> Result<Option<LogicalPlan>> {
        use datafusion::sql::sqlparser::ast::{Ident, ObjectName, TableObject};
        let Some((insert, source)) = insert_with_source(statement) else {
            return Ok(None);
        };
        let TableObject::TableName(name) = &insert.table else {
            return Ok(None);
        };
        let Some(table) = self.catalog().table(&self.qualified(name)?).cloned() else {
            return Ok(None);
        };
        let query = self.plan_source(source).await?;
        let width = query.schema().fields().len();
        let schema = table.schema_ref();
        let targets = match insert.columns.len() {
            0 => schema.fields().len(),
            n => n,
        };
        if width > targets {
            return Err(QuiverError::InvalidStatement(
                "INSERT has more expressions than target columns".into(),
            ));
        }
        if width == targets {
            return Ok(None);
        }
        if !insert.columns.is_empty() {
            return Err(QuiverError::InvalidStatement(
                "INSERT has more target columns than expressions".into(),
            ));
        }
        let mut insert = insert.clone();
        insert.columns = schema.fields()[..width]
            .iter()
            .map(|f| ObjectName::from(vec![Ident::with_quote('"', f.name())]))
            .collect();
        let plan = self
            .df_state()
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Insert(insert))))
            .await?;
        Ok(Some(plan))
    }

    /// The plan of an INSERT's source query, on its own.
    async fn plan_source(
        &self,
        source: &datafusion::sql::sqlparser::ast::Query,
    ) -> Result<LogicalPlan> {
        Ok(self
            .df_state()
            .statement_to_plan(DfStatement::Statement(Box::new(Statement::Query(
                Box::new(source.clone()),
            ))))
            .await?)
    }

    fn scratch(&self) -> Scratch {
        Scratch {
            schema: self.scratch_schema.clone(),
            names: Vec::new(),
            partitions: self.df_state().config().target_partitions().max(1),
        }
    }

    /// Runs a DML statement in the open transaction block, or in a
    /// transaction of its own that commits at the end (and is run again
    /// on the newer rows if another writer got there first).
    pub(super) async fn execute_dml(
        &mut self,
        statement: &Statement,
        params: Option<&ParamValues>,
    ) -> Result<StatementResult> {
        let statement = &*self.on_tables(statement)?;
        if let Some(txn) = self.current_txn() {
            return self.dml_in(statement, params, &txn).await;
        }
        // Losing a race means: another session changed the rows since
        // this statement's snapshot, or (for an upsert) committed one of
        // the keys it was about to insert. Either way, run it again.
        let upsert = matches!(statement, Statement::Insert(i) if i.on.is_some());
        let lost_race = |e: &QuiverError| {
            matches!(e, QuiverError::SerializationFailure(_))
                || (upsert && matches!(e, QuiverError::UniqueViolation { .. }))
        };
        let turn = self.writer_turns(std::iter::once(statement)).await;
        let mut attempt = 0;
        loop {
            let txn = Arc::new(self.db.begin());
            let slot = self.txn_slot();
            slot.set(Some(txn.clone()));
            let guard = SlotGuard(slot);
            let result = self.dml_in(statement, params, &txn).await;
            drop(guard);
            let outcome = match result {
                Ok(result) => self
                    .db
                    .commit(&txn, self.synchronous_commit())
                    .map(|ack| (result, ack)),
                Err(e) => Err(e),
            };
            match outcome {
                Ok((result, ack)) => {
                    // The next writer may go on while this commit's WAL
                    // record is synced: its own record follows this one.
                    drop(turn);
                    ack.wait().await;
                    return Ok(result);
                }
                Err(e) if lost_race(&e) && attempt < AUTOCOMMIT_RETRIES => {
                    attempt += 1;
                    // Back off a little more each time (plain INSERTs and
                    // transactions do not wait for the turn).
                    tokio::time::sleep(std::time::Duration::from_micros(50 * attempt as u64)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The turns of the tables that `statements` (UPDATE/DELETE/upsert
    /// statements) change, taken in table-id order (so two messages never
    /// wait for each other in a circle).
    pub(super) async fn writer_turns<'a>(
        &self,
        statements: impl Iterator<Item = &'a Statement>,
    ) -> Vec<tokio::sync::OwnedMutexGuard<()>> {
        let mut tables: Vec<Arc<Table>> = statements.filter_map(|s| self.dml_target(s)).collect();
        tables.sort_by_key(|t| t.id());
        tables.dedup_by_key(|t| t.id());
        let mut turns = Vec::with_capacity(tables.len());
        for table in tables {
            turns.push(table.writer_turn().await);
        }
        turns
    }

    /// The table a DML statement changes, when it resolves.
    fn dml_target(&self, statement: &Statement) -> Option<Arc<Table>> {
        let statement = &*self.on_tables(statement).ok()?;
        match statement {
            Statement::Update(update) => self.target(&update.table).ok().map(|t| t.table),
            Statement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                self.target(from.first()?).ok().map(|t| t.table)
            }
            Statement::Insert(insert) => match &insert.table {
                datafusion::sql::sqlparser::ast::TableObject::TableName(name) => {
                    self.table_named(&self.qualified(name).ok()?).ok()
                }
                _ => None,
            },
            _ => None,
        }
    }

    async fn dml_in(
        &mut self,
        statement: &Statement,
        params: Option<&ParamValues>,
        txn: &Arc<Transaction>,
    ) -> Result<StatementResult> {
        match statement {
            Statement::Update(update) => self.update(update, params, txn).await,
            Statement::Delete(delete) => self.delete(delete, params, txn).await,
            Statement::Insert(insert) => self.insert_returning(insert, params, txn).await,
            other => Err(QuiverError::Internal(format!(
                "not a DML statement: {other}"
            ))),
        }
    }

    /// Resolves the table an UPDATE or DELETE names.
    fn target(&self, relation: &TableWithJoins) -> Result<Target> {
        if !relation.joins.is_empty() {
            return Err(not_supported(
                "JOIN in the target of UPDATE or DELETE; use FROM or USING",
            ));
        }
        let TableFactor::Table { name, alias, .. } = &relation.relation else {
            return Err(not_supported(format!(
                "\"{}\" as the target of UPDATE or DELETE",
                relation.relation
            )));
        };
        let qualified = self.qualified(name)?;
        let table = self.table_named(&qualified)?;
        let alias = match alias {
            Some(alias) => alias.name.to_string(),
            None => name.0.last().map(|p| p.to_string()).unwrap_or_default(),
        };
        Ok(Target { table, alias })
    }

    fn table_named(&self, name: &QualifiedName) -> Result<Arc<Table>> {
        let catalog = self.catalog();
        match catalog.table(name) {
            Some(table) => Ok(table.clone()),
            None if catalog.view(name).is_some() => Err(QuiverError::WrongObjectType(format!(
                "cannot change view \"{}\"",
                name.name
            ))),
            None => Err(QuiverError::UndefinedTable(name.name.clone())),
        }
    }

    /// The rows of `table` the transaction sees (or only `candidates`,
    /// when a key lookup found the rows the statement can touch), with
    /// their row ids, as a scratch table.
    fn register_with_row_ids(
        &self,
        scratch: &mut Scratch,
        table: &Table,
        txn: &Transaction,
        candidates: Option<Vec<(u64, RecordBatch)>>,
    ) -> Result<String> {
        let source = RowIdTable {
            schema: with_row_id(&table.schema_ref()),
            version: txn.visible(table),
            candidates,
        };
        scratch.add_provider(Arc::new(source))
    }

    /// UPDATE/DELETE whose WHERE pins every column of a unique constraint
    /// or index with `=` to a constant or parameter (`WHERE id = $1 AND
    /// ...`): the only rows it can touch, found by key instead of by a
    /// scan (the WHERE still decides). None when the WHERE is not of that
    /// form.
    fn point_candidates(
        &self,
        table: &Table,
        txn: &Transaction,
        selection: Option<&SqlExpr>,
        params: Option<&ParamValues>,
    ) -> Result<Option<Vec<(u64, RecordBatch)>>> {
        let Some(selection) = selection else {
            return Ok(None);
        };
        let mut equalities: Vec<(String, &SqlExpr)> = Vec::new();
        collect_equalities(selection, &mut equalities);
        let schema = table.schema_ref();
        let mut pinned = HashMap::new();
        for (name, value) in equalities {
            let Ok(column) = schema.index_of(&name) else {
                continue;
            };
            let field = schema.field(column);
            // Exact types only: a cast of `1.555` to numeric(10,2) would
            // round and find a row `=` does not match.
            if !crate::engine::table::is_exact_key_type(field) {
                continue;
            }
            let Some(scalar) = constant_value(value, params) else {
                continue;
            };
            // A bare number compared with a text column is not a key lookup.
            if field.data_type() == &DataType::Utf8
                && matches!(value, SqlExpr::Value(v) if matches!(v.value, datafusion::sql::sqlparser::ast::Value::Number(..)))
            {
                continue;
            }
            if scalar.is_null() {
                // `column = NULL` is never true.
                return Ok(Some(Vec::new()));
            }
            if let Ok(value) = scalar.cast_to(field.data_type()) {
                pinned.insert(column, value);
            }
        }
        let version = txn.visible(table);
        table.lookup_positions(&version, &pinned)
    }

    /// Plans generated SQL (one SELECT) with the session's rewrites.
    pub(super) async fn plan_generated(&self, sql: &str) -> Result<LogicalPlan> {
        let mut statements = Session::parse(sql)?;
        let statement = statements
            .pop_front()
            .ok_or_else(|| QuiverError::Internal(format!("empty generated SQL: {sql}")))?;
        self.plan(statement).await
    }

    async fn collect(
        &self,
        plan: LogicalPlan,
        params: Option<&ParamValues>,
    ) -> Result<Vec<RecordBatch>> {
        let plan = match params {
            Some(params) => plan.with_param_values(params.clone())?,
            None => plan,
        };
        self.collect_plan(plan).await
    }

    async fn update(
        &mut self,
        update: &Update,
        params: Option<&ParamValues>,
        txn: &Arc<Transaction>,
    ) -> Result<StatementResult> {
        if update.limit.is_some() || !update.order_by.is_empty() {
            return Err(not_supported("UPDATE with ORDER BY or LIMIT"));
        }
        let target = self.target(&update.table)?;
        let from = update_from(update);
        let selection = update.selection.as_ref().map(|e| e.to_string());
        let candidates = if from.is_empty() {
            self.point_candidates(&target.table, txn, update.selection.as_ref(), params)?
        } else {
            None
        };
        let mut scratch = self.scratch();
        let new_rows = self
            .update_rows(
                &mut scratch,
                &target,
                &update.assignments,
                &from,
                selection.as_deref(),
                params,
                txn,
                candidates,
            )
            .await?;
        let count = new_rows.iter().map(|b| b.num_rows()).sum();
        self.finish(
            &mut scratch,
            &target,
            "UPDATE",
            count,
            new_rows,
            update.returning.as_deref(),
            params,
        )
        .await
    }

    /// The core of UPDATE (and of ON CONFLICT DO UPDATE): finds the rows,
    /// computes their new values, and replaces them in the transaction.
    /// Returns the new rows.
    #[allow(clippy::too_many_arguments)]
    async fn update_rows(
        &self,
        scratch: &mut Scratch,
        target: &Target,
        assignments: &[Assignment],
        from: &[String],
        selection: Option<&str>,
        params: Option<&ParamValues>,
        txn: &Arc<Transaction>,
        candidates: Option<Vec<(u64, RecordBatch)>>,
    ) -> Result<Vec<RecordBatch>> {
        let table = &target.table;
        let schema = table.schema_ref();
        let values = self.assigned_values(table, assignments)?;
        let source = self.register_with_row_ids(scratch, table, txn, candidates)?;
        let select = update_select(&target.alias, &source, &schema, &values, from, selection);
        let plan = self.plan_generated(&select).await?;
        // The assignment casts read text as PostgreSQL does (`'\x01'` into
        // a bytea, `'{1,2}'` into an int[]).
        let plan = crate::sql::pg_casts::rewrite_text_casts(
            cast_to_table(plan, &schema, 1)?,
            &self.text_casts,
        )?;
        let batches = self.collect(plan, params).await?;
        let paired = self.cascades_updates(table);
        let Some((positions, rows)) = row_ids_and_rest(batches, paired)? else {
            return Ok(Vec::new());
        };
        // Checked against the table's column rules (NOT NULL among them) by
        // conform_batches, so not yet labelled with the table's schema.
        let loose = nullable(&schema);
        let rows = rows
            .into_iter()
            .map(|b| RecordBatch::try_new(loose.clone(), b.columns().to_vec()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let rows = conform_batches(table, rows)?;
        let keys_unchanged = table
            .unique_constraints()
            .iter()
            .all(|c| c.columns.iter().all(|&i| values[i].is_none()));
        self.db.apply(
            txn,
            table,
            Change::Update {
                positions: Arc::new(positions),
                rows: rows.clone(),
                keys_unchanged,
            },
        )?;
        Ok(rows)
    }

    /// The new value's SQL for each column (None: unchanged), with
    /// `DEFAULT` replaced by the column's default.
    fn assigned_values(
        &self,
        table: &Table,
        assignments: &[Assignment],
    ) -> Result<Vec<Option<String>>> {
        let schema = table.schema_ref();
        let mut values: Vec<Option<String>> = vec![None; schema.fields().len()];
        let mut assign =
            |column: &datafusion::sql::sqlparser::ast::ObjectName, value: &SqlExpr| -> Result<()> {
                let name = column
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    .unwrap_or_default();
                let index = schema
                    .index_of(&name)
                    .map_err(|_| QuiverError::UndefinedColumnOf {
                        column: name.clone(),
                        table: table.name().to_string(),
                    })?;
                if values[index].is_some() {
                    return Err(QuiverError::InvalidStatement(format!(
                        "multiple assignments to same column \"{name}\""
                    )));
                }
                values[index] = Some(match value {
                    value if super::plan::is_default_keyword(value) => table
                        .defaults_sql()
                        .iter()
                        .find(|(c, _)| *c == name)
                        .map(|(_, sql)| super::ddl::regclass_as_name(sql).into_owned())
                        .unwrap_or_else(|| "NULL".to_string()),
                    _ if table.identity(&name) == Some(true) => {
                        return Err(super::sequences::identity_update_error(&name))
                    }
                    other => other.to_string(),
                });
                Ok(())
            };
        for assignment in assignments {
            match (&assignment.target, &assignment.value) {
                (AssignmentTarget::ColumnName(column), value) => assign(column, value)?,
                (AssignmentTarget::Tuple(columns), SqlExpr::Tuple(items))
                    if columns.len() == items.len() =>
                {
                    for (column, value) in columns.iter().zip(items) {
                        assign(column, value)?;
                    }
                }
                (AssignmentTarget::Tuple(_), _) => {
                    return Err(not_supported(
                        "assigning a sub-SELECT to several columns; list one value per column",
                    ))
                }
            }
        }
        Ok(values)
    }

    async fn delete(
        &mut self,
        delete: &Delete,
        params: Option<&ParamValues>,
        txn: &Arc<Transaction>,
    ) -> Result<StatementResult> {
        if delete.limit.is_some() || !delete.order_by.is_empty() || !delete.tables.is_empty() {
            return Err(not_supported(
                "DELETE with ORDER BY, LIMIT or several tables",
            ));
        }
        let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &delete.from;
        let [relation] = from.as_slice() else {
            return Err(not_supported("DELETE from several tables; use USING"));
        };
        let target = self.target(relation)?;
        let table = &target.table;
        let schema = table.schema_ref();
        let candidates = if delete.using.is_none() {
            self.point_candidates(table, txn, delete.selection.as_ref(), params)?
        } else {
            None
        };
        let mut scratch = self.scratch();
        let source = self.register_with_row_ids(&mut scratch, table, txn, candidates)?;
        let select = delete_select(
            &target.alias,
            &source,
            &schema,
            delete,
            delete.returning.is_some(),
        );
        let plan = self.plan_generated(&select).await?;
        let batches = self.collect(plan, params).await?;
        let Some((positions, rows)) = row_ids_and_rest(batches, false)? else {
            return self
                .finish(
                    &mut scratch,
                    &target,
                    "DELETE",
                    0,
                    Vec::new(),
                    delete.returning.as_deref(),
                    params,
                )
                .await;
        };
        let count = positions.len();
        self.db
            .apply(txn, table, Change::Delete(Arc::new(positions)))?;
        let old_rows = if delete.returning.is_some() {
            rows.into_iter()
                .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
                .collect::<std::result::Result<Vec<_>, _>>()?
        } else {
            Vec::new()
        };
        self.finish(
            &mut scratch,
            &target,
            "DELETE",
            count,
            old_rows,
            delete.returning.as_deref(),
            params,
        )
        .await
    }

    /// INSERT with ON CONFLICT and/or RETURNING.
    async fn insert_returning(
        &mut self,
        insert: &Insert,
        params: Option<&ParamValues>,
        txn: &Arc<Transaction>,
    ) -> Result<StatementResult> {
        // DataFusion evaluates the rows (VALUES or a query, defaults and
        // casts) from the statement without the clauses it does not know.
        let mut plain = insert.clone();
        plain.on = None;
        plain.returning = None;
        plain.table_alias = None;
        let plan = self
            .plan(DfStatement::Statement(Box::new(Statement::Insert(plain))))
            .await?;
        let LogicalPlan::Dml(dml) = plan else {
            return Err(QuiverError::Internal("INSERT did not plan as DML".into()));
        };
        let (_, table) = self.table_for_reference(&dml.table_name)?;
        let input = match params {
            Some(params) => dml
                .input
                .as_ref()
                .clone()
                .with_param_values(params.clone())?,
            None => dml.input.as_ref().clone(),
        };
        let batches = self.insert_rows(&table, input).await?;
        let batches = conform_batches(&table, batches)?;
        let schema = table.schema_ref();
        let proposed = concat_batches(&schema, &batches)?;
        let alias = match &insert.table_alias {
            Some(alias) => alias.alias.to_string(),
            None => match &insert.table {
                datafusion::sql::sqlparser::ast::TableObject::TableName(name) => {
                    name.0.last().map(|p| p.to_string()).unwrap_or_default()
                }
                other => other.to_string(),
            },
        };
        let target = Target {
            table: table.clone(),
            alias,
        };
        let mut scratch = self.scratch();
        let mut out_rows = Vec::new();
        let mut count = 0;
        let on_conflict = match &insert.on {
            None => None,
            Some(OnInsert::OnConflict(on_conflict)) => Some(on_conflict),
            Some(_) => return Err(not_supported("this INSERT ... ON clause; use ON CONFLICT")),
        };
        let to_insert = match on_conflict {
            None => proposed,
            Some(on_conflict) => {
                let indexes =
                    self.conflict_indexes(&table, on_conflict.conflict_target.as_ref())?;
                let conflicts = txn.conflicts(&table, &proposed, &indexes)?;
                match &on_conflict.action {
                    OnConflictAction::DoNothing => {
                        keep_rows(&proposed, |i| conflicts[i] == Conflict::None)?
                    }
                    OnConflictAction::DoUpdate(action) => {
                        if on_conflict.conflict_target.is_none() {
                            return Err(QuiverError::InvalidStatement(
                                "ON CONFLICT DO UPDATE requires inference specification or constraint name".into(),
                            ));
                        }
                        if conflicts.contains(&Conflict::Repeated) {
                            return Err(QuiverError::CardinalityViolation(
                                "ON CONFLICT DO UPDATE command cannot affect row a second time"
                                    .into(),
                            ));
                        }
                        let existing =
                            keep_rows(&proposed, |i| conflicts[i] == Conflict::Existing)?;
                        if existing.num_rows() > 0 {
                            let candidates = existing_rows(&table, txn, indexes[0], &existing)?;
                            if candidates.len() < existing.num_rows() {
                                // Another session committed the key after
                                // this snapshot: the row to update is not
                                // visible here. (An autocommit upsert runs
                                // again on the newer rows.)
                                return Err(QuiverError::SerializationFailure(
                                    "could not serialize access due to concurrent insert of a conflicting row".into(),
                                ));
                            }
                            let excluded = scratch.add(schema.clone(), vec![existing])?;
                            let key_columns = table.constraint_columns(indexes[0]);
                            let mut condition: Vec<String> = key_columns
                                .iter()
                                .map(|c| {
                                    let c = quote_ident(c);
                                    format!("{}.{c} = excluded.{c}", target.alias)
                                })
                                .collect();
                            if let Some(selection) = &action.selection {
                                condition.push(format!("({selection})"));
                            }
                            let updated = self
                                .update_rows(
                                    &mut scratch,
                                    &target,
                                    &action.assignments,
                                    &[format!("{excluded} AS excluded")],
                                    Some(&condition.join(" AND ")),
                                    params,
                                    txn,
                                    Some(candidates),
                                )
                                .await?;
                            count += updated.iter().map(|b| b.num_rows()).sum::<usize>();
                            out_rows.extend(updated);
                        }
                        keep_rows(&proposed, |i| conflicts[i] == Conflict::None)?
                    }
                }
            }
        };
        if to_insert.num_rows() > 0 {
            count += to_insert.num_rows();
            self.db
                .check_table_memory(Some(txn), to_insert.get_array_memory_size())?;
            self.db
                .apply(txn, &table, Change::Insert(vec![to_insert.clone()]))?;
            out_rows.insert(0, to_insert);
        }
        self.finish(
            &mut scratch,
            &target,
            "INSERT",
            count,
            out_rows,
            insert.returning.as_deref(),
            params,
        )
        .await
    }

    /// The unique constraints an ON CONFLICT target names (all of them
    /// when it names none).
    fn conflict_indexes(
        &self,
        table: &Table,
        target: Option<&ConflictTarget>,
    ) -> Result<Vec<usize>> {
        let schema = table.schema_ref();
        let found = match target {
            None => table.constraint_index(|_| true),
            Some(ConflictTarget::Columns(columns)) => {
                let mut wanted = Vec::new();
                for column in columns {
                    let name = normalize_ident(column);
                    let index = schema
                        .index_of(&name)
                        .map_err(|_| QuiverError::UndefinedColumn(name.clone()))?;
                    wanted.push(index);
                }
                wanted.sort_unstable();
                wanted.dedup();
                table.constraint_index(|c| {
                    let mut have = c.columns.clone();
                    have.sort_unstable();
                    have == wanted
                })
            }
            Some(ConflictTarget::OnConstraint(name)) => {
                let name = name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .map(normalize_ident)
                    .unwrap_or_default();
                let found = table.constraint_index(|c| c.name == name);
                if found.is_empty() {
                    return Err(QuiverError::UndefinedObject(format!(
                        "constraint \"{name}\" for table \"{}\" does not exist",
                        table.name()
                    )));
                }
                found
            }
        };
        if found.is_empty() && target.is_some() {
            return Err(QuiverError::InvalidColumnReference(
                "there is no unique or exclusion constraint matching the ON CONFLICT specification"
                    .into(),
            ));
        }
        Ok(found)
    }

    /// The command's result: the row count, or with RETURNING the rows it
    /// asks for, computed over `rows` (new rows for INSERT and UPDATE, old
    /// ones for DELETE).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        scratch: &mut Scratch,
        target: &Target,
        tag: &'static str,
        count: usize,
        rows: Vec<RecordBatch>,
        returning: Option<&[SelectItem]>,
        params: Option<&ParamValues>,
    ) -> Result<StatementResult> {
        let Some(items) = returning else {
            return Ok(StatementResult::Command {
                tag,
                rows: Some(count),
            });
        };
        let (plan, schema) = self.plan_returning(scratch, target, items, rows).await?;
        let batches = self
            .collect(plan, params)
            .await?
            .into_iter()
            .map(|batch| crate::sql::stream::conform_batch(batch, &schema))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(StatementResult::Rows {
            schema,
            batches,
            tag,
        })
    }

    /// The query RETURNING runs over `rows` (registered as the target's
    /// alias), and its result columns with their Postgres names.
    async fn plan_returning(
        &self,
        scratch: &mut Scratch,
        target: &Target,
        items: &[SelectItem],
        rows: Vec<RecordBatch>,
    ) -> Result<(LogicalPlan, SchemaRef)> {
        let source = scratch.add(target.table.schema_ref(), rows)?;
        let items: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let sql = format!(
            "SELECT {} FROM {source} AS {}",
            items.join(", "),
            target.alias
        );
        let statement = Session::parse(&sql)?
            .pop_front()
            .ok_or_else(|| QuiverError::Internal("empty RETURNING query".into()))?;
        let names = column_names::postgres_column_names(&statement);
        let plan = self.plan(statement).await?;
        let schema = self.typed_schema(&plan);
        Ok((plan, column_names::rename(&schema, &names)))
    }

    /// What Parse/Describe report for a DML statement: its parameter types
    /// and, with RETURNING, the columns it returns. Planned (not run) over
    /// empty stand-ins for the table.
    pub(super) async fn describe_dml(
        &self,
        statement: &Statement,
    ) -> Result<(
        Vec<Option<datafusion::arrow::datatypes::FieldRef>>,
        Option<SchemaRef>,
    )> {
        let statement = &*self.on_tables(statement)?;
        let params = self.dml_parameters(statement).await?;
        let (target, returning) = match statement {
            Statement::Update(u) => (self.target(&u.table)?, u.returning.as_deref()),
            Statement::Delete(d) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) = &d.from;
                match (from.first(), d.returning.as_deref()) {
                    (Some(relation), Some(items)) => (self.target(relation)?, Some(items)),
                    _ => return Ok((params, None)),
                }
            }
            Statement::Insert(i) => match (&i.table, i.returning.as_deref()) {
                (datafusion::sql::sqlparser::ast::TableObject::TableName(name), Some(items)) => {
                    let table = self.table_named(&self.qualified(name)?)?;
                    let alias = match &i.table_alias {
                        Some(alias) => alias.alias.to_string(),
                        None => name.0.last().map(|p| p.to_string()).unwrap_or_default(),
                    };
                    (Target { table, alias }, Some(items))
                }
                _ => return Ok((params, None)),
            },
            _ => return Ok((params, None)),
        };
        let Some(items) = returning else {
            return Ok((params, None));
        };
        let mut scratch = self.scratch();
        let (_, schema) = self
            .plan_returning(&mut scratch, &target, items, Vec::new())
            .await?;
        Ok((params, Some(schema)))
    }

    /// Parameter types for UPDATE, DELETE and INSERT with ON CONFLICT or
    /// RETURNING: the statement's SELECT is planned over an empty stand-in.
    async fn dml_parameters(
        &self,
        statement: &Statement,
    ) -> Result<Vec<Option<datafusion::arrow::datatypes::FieldRef>>> {
        let mut scratch = self.scratch();
        let mut stand_in =
            |table: &Table| scratch.add(with_row_id(&table.schema_ref()), Vec::new());
        let (select, assigned) = match statement {
            Statement::Update(update) => {
                let target = self.target(&update.table)?;
                let table = &target.table;
                let schema = table.schema_ref();
                let values = self.assigned_values(table, &update.assignments)?;
                let source = stand_in(table)?;
                let selection = update.selection.as_ref().map(|e| e.to_string());
                let select = update_select(
                    &target.alias,
                    &source,
                    &schema,
                    &values,
                    &update_from(update),
                    selection.as_deref(),
                );
                let assigned = schema
                    .fields()
                    .iter()
                    .zip(values)
                    .filter_map(|(field, value)| Some((value?, field.clone())))
                    .collect();
                (select, assigned)
            }
            Statement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                let Some(relation) = from.first() else {
                    return Ok(Vec::new());
                };
                let target = self.target(relation)?;
                let source = stand_in(&target.table)?;
                let schema = target.table.schema_ref();
                let select = delete_select(&target.alias, &source, &schema, delete, false);
                (select, Vec::new())
            }
            Statement::Insert(insert) => {
                let mut plain = insert.clone();
                plain.on = None;
                plain.returning = None;
                plain.table_alias = None;
                let plan = self
                    .plan(DfStatement::Statement(Box::new(Statement::Insert(plain))))
                    .await?;
                return super::prepared::parameter_fields(&plan);
            }
            _ => return Ok(Vec::new()),
        };
        let plan = self.plan_generated(&select).await?;
        let mut fields = super::prepared::parameter_fields(&plan)?;
        // `SET c = $1`: the parameter has the column's type, as in Postgres.
        for (value, field) in assigned {
            if let Some(n) = value
                .strip_prefix('$')
                .and_then(|n| n.parse::<usize>().ok())
            {
                if n == 0 {
                    continue;
                }
                if fields.len() < n {
                    fields.resize(n, None);
                }
                if fields[n - 1].is_none() {
                    fields[n - 1] = Some(field.clone());
                }
            }
        }
        Ok(fields)
    }
}

/// The rows of the table the transaction sees whose key under unique
/// constraint `c` equals that of a row of `proposed`, with their positions.
fn existing_rows(
    table: &Table,
    txn: &Transaction,
    c: usize,
    proposed: &RecordBatch,
) -> Result<Vec<(u64, RecordBatch)>> {
    let version = txn.visible(table);
    let columns = table.unique_constraints()[c].columns.clone();
    let mut found = Vec::new();
    for row in 0..proposed.num_rows() {
        let key: Vec<datafusion::arrow::array::ArrayRef> = columns
            .iter()
            .map(|&i| proposed.column(i).slice(row, 1))
            .collect();
        if let Some(key) = table.encode_key(c, &key)? {
            found.extend(table.find_by_key(&version, c, &key)?);
        }
    }
    Ok(found)
}

/// `col = value` terms of a conjunction (either side may be the column).
fn collect_equalities<'a>(expr: &'a SqlExpr, out: &mut Vec<(String, &'a SqlExpr)>) {
    use datafusion::sql::sqlparser::ast::BinaryOperator;
    match expr {
        SqlExpr::Nested(inner) => collect_equalities(inner, out),
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            collect_equalities(left, out);
            collect_equalities(right, out);
        }
        SqlExpr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } => {
            let column = |e: &SqlExpr| match e {
                SqlExpr::Identifier(i) => Some(normalize_ident(i)),
                SqlExpr::CompoundIdentifier(parts) => parts.last().map(normalize_ident),
                _ => None,
            };
            match (column(left), column(right)) {
                (Some(c), None) => out.push((c, right)),
                (None, Some(c)) => out.push((c, left)),
                _ => {}
            }
        }
        _ => {}
    }
}

/// The value of a literal or a bound parameter; None for anything else.
fn constant_value(expr: &SqlExpr, params: Option<&ParamValues>) -> Option<ScalarValue> {
    use datafusion::sql::sqlparser::ast::{UnaryOperator, Value};
    match expr {
        SqlExpr::Nested(inner) => constant_value(inner, params),
        SqlExpr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match constant_value(expr, params)? {
            ScalarValue::Utf8(Some(s)) if !s.starts_with('-') => {
                Some(ScalarValue::Utf8(Some(format!("-{s}"))))
            }
            _ => None,
        },
        SqlExpr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(ScalarValue::Utf8(Some(n.clone()))),
            Value::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
            Value::Null => Some(ScalarValue::Null),
            Value::Placeholder(p) => {
                let n: usize = p.strip_prefix('$')?.parse().ok()?;
                match params? {
                    ParamValues::List(values) => {
                        values.get(n.checked_sub(1)?).map(|v| v.value.clone())
                    }
                    ParamValues::Map(_) => None,
                }
            }
            _ => None,
        },
        _ => None,
    }
}

/// `schema` plus the hidden row-id column.
fn with_row_id(schema: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(ROW_ID, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// The target of UPDATE/DELETE as DataFusion scans it: the rows the
/// transaction sees (or only the candidate rows a key lookup found), each
/// with its position among the live rows as the hidden last column. Built
/// at scan time for the projected columns only.
#[derive(Debug)]
struct RowIdTable {
    schema: SchemaRef,
    version: Arc<TableVersion>,
    candidates: Option<Vec<(u64, RecordBatch)>>,
}

#[async_trait::async_trait]
impl datafusion::catalog::TableProvider for RowIdTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::logical_expr::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let external = |e: QuiverError| datafusion::error::DataFusionError::External(Box::new(e));
        let row_id = self.schema.fields().len() - 1;
        let projection: Vec<usize> = projection
            .cloned()
            .unwrap_or_else(|| (0..=row_id).collect());
        let columns: Vec<usize> = projection.iter().copied().filter(|&i| i < row_id).collect();
        let chunks: Vec<(u64, RecordBatch)> = match &self.candidates {
            Some(rows) => rows
                .iter()
                .map(|(position, row)| Ok((*position, row.project(&columns)?)))
                .collect::<datafusion::error::Result<_>>()?,
            None => self
                .version
                .live_batches_with_positions(Some(&columns))
                .map_err(external)?,
        };
        let schema = Arc::new(self.schema.project(&projection)?);
        let batches = chunks
            .into_iter()
            .map(|(base, batch)| {
                let n = batch.num_rows() as u64;
                let mut next_column = 0;
                let arrays = projection
                    .iter()
                    .map(|&i| {
                        if i == row_id {
                            Arc::new(UInt64Array::from_iter_values(base..base + n))
                                as datafusion::arrow::array::ArrayRef
                        } else {
                            next_column += 1;
                            batch.column(next_column - 1).clone()
                        }
                    })
                    .collect();
                RecordBatch::try_new_with_options(
                    schema.clone(),
                    arrays,
                    &datafusion::arrow::array::RecordBatchOptions::new()
                        .with_row_count(Some(n as usize)),
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let parts =
            crate::engine::table::balanced_partitions(batches, state.config().target_partitions());
        let source =
            datafusion::datasource::memory::MemorySourceConfig::try_new(&parts, schema, None)?;
        Ok(datafusion::datasource::source::DataSourceExec::from_data_source(source))
    }
}

/// The tables an UPDATE's FROM lists, as SQL.
fn update_from(update: &Update) -> Vec<String> {
    match &update.from {
        None => Vec::new(),
        Some(UpdateTableFromKind::AfterSet(t) | UpdateTableFromKind::BeforeSet(t)) => {
            t.iter().map(|t| t.to_string()).collect()
        }
    }
}

/// The SELECT that finds an UPDATE's rows: the row id, then every column's
/// new value (`values[i]`) or its old one.
fn update_select(
    alias: &str,
    source: &str,
    schema: &SchemaRef,
    values: &[Option<String>],
    from: &[String],
    selection: Option<&str>,
) -> String {
    let mut select = format!("SELECT {alias}.{}", quote_ident(ROW_ID));
    for (i, (field, value)) in schema.fields().iter().zip(values).enumerate() {
        match value {
            Some(value) => select.push_str(&format!(", ({value}) AS \"c{i}\"")),
            None => select.push_str(&format!(", {alias}.{}", quote_ident(field.name()))),
        }
    }
    finish_select(select, alias, source, from, selection)
}

/// The SELECT that finds a DELETE's rows: the row id, and with `with_rows`
/// every column (for RETURNING).
fn delete_select(
    alias: &str,
    source: &str,
    schema: &SchemaRef,
    delete: &Delete,
    with_rows: bool,
) -> String {
    let mut select = format!("SELECT {alias}.{}", quote_ident(ROW_ID));
    if with_rows {
        for field in schema.fields() {
            select.push_str(&format!(", {alias}.{}", quote_ident(field.name())));
        }
    }
    let using: Vec<String> = delete
        .using
        .iter()
        .flatten()
        .map(|t| t.to_string())
        .collect();
    let selection = delete.selection.as_ref().map(|e| e.to_string());
    finish_select(select, alias, source, &using, selection.as_deref())
}

/// `FROM source AS alias, more... WHERE selection`.
fn finish_select(
    mut select: String,
    alias: &str,
    source: &str,
    more: &[String],
    selection: Option<&str>,
) -> String {
    select.push_str(&format!(" FROM {source} AS {alias}"));
    for table in more {
        select.push_str(&format!(", {table}"));
    }
    if let Some(selection) = selection {
        select.push_str(&format!(" WHERE {selection}"));
    }
    select
}

/// Wraps `plan` in casts of its columns from `skip` on to the table's
/// column types (assignment casts, as INSERT has).
fn cast_to_table(plan: LogicalPlan, schema: &SchemaRef, skip: usize) -> Result<LogicalPlan> {
    let input_schema = plan.schema().clone();
    let mut exprs = Vec::with_capacity(input_schema.fields().len());
    for (i, (qualifier, field)) in input_schema.iter().enumerate() {
        let column = col(datafusion::common::Column::new(
            qualifier.cloned(),
            field.name(),
        ));
        if i < skip {
            exprs.push(column);
        } else {
            let target = schema.field(i - skip);
            if !assignable(field.data_type(), target.data_type()) {
                return Err(QuiverError::DatatypeMismatch(format!(
                    "column \"{}\" is of type {} but expression is of type {}",
                    target.name(),
                    display_type(target),
                    display_type(field)
                )));
            }
            // Always a cast, even to the type the column already has: the
            // analyzer may still retype it (integer literals become
            // `integer`), and a same-type cast is simplified away.
            exprs.push(
                Expr::Cast(Cast::new(Box::new(column), target.data_type().clone()))
                    .alias(format!("c{i}")),
            );
        }
    }
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}

/// Whether Postgres would store a value of type `from` in a column of type
/// `to` (an assignment cast exists). Text goes anywhere (a quoted literal
/// is of unknown type in Postgres and converts on assignment) and anything
/// goes into text; otherwise the kinds must match.
pub(super) fn assignable(from: &DataType, to: &DataType) -> bool {
    #[derive(PartialEq)]
    enum Kind {
        Bool,
        Number,
        Text,
        Temporal,
        Interval,
        Binary,
        Array,
        Other,
    }
    fn kind(t: &DataType) -> Kind {
        match t {
            DataType::Boolean => Kind::Bool,
            t if t.is_numeric() => Kind::Number,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::Text,
            DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(..)
            | DataType::Time32(_)
            | DataType::Time64(_) => Kind::Temporal,
            DataType::Interval(_) | DataType::Duration(_) => Kind::Interval,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Kind::Binary,
            DataType::List(_) | DataType::LargeList(_) => Kind::Array,
            _ => Kind::Other,
        }
    }
    let (from, to) = (kind(from), kind(to));
    from == to || from == Kind::Text || to == Kind::Text || from == Kind::Other || to == Kind::Other
}

/// Splits query output whose first column is the row id into sorted,
/// distinct positions and the remaining columns of the same rows (the
/// first of each row id, when a join produced several).
/// With `paired`, the rows come in the order of their ids (ON UPDATE
/// CASCADE pairs each new row with the row it replaces).
fn row_ids_and_rest(
    batches: Vec<RecordBatch>,
    paired: bool,
) -> Result<Option<(Vec<u64>, Vec<RecordBatch>)>> {
    let Some(first) = batches.first() else {
        return Ok(None);
    };
    // Usually every row id comes once: sort the ids, keep the rows as they
    // are (their order does not matter; they are appended).
    let mut ids: Vec<u64> = Vec::with_capacity(batches.iter().map(|b| b.num_rows()).sum());
    for batch in &batches {
        ids.extend(batch.column(0).as_primitive::<UInt64Type>().values().iter());
    }
    if ids.is_empty() {
        return Ok(None);
    }
    let in_order = ids.windows(2).all(|w| w[0] < w[1]);
    ids.sort_unstable();
    if (in_order || !paired) && ids.windows(2).all(|w| w[0] != w[1]) {
        let rest = batches
            .iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| b.project(&(1..b.num_columns()).collect::<Vec<_>>()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        return Ok(Some((ids, rest)));
    }
    // A join matched some rows more than once: keep the first of each.
    let all = concat_batches(&first.schema(), &batches)?;
    if all.num_rows() == 0 {
        return Ok(None);
    }
    let order = sort_to_indices(all.column(0), None, None)?;
    let sorted = take_record_batch(&all, &order)?;
    let ids = sorted.column(0).as_primitive::<UInt64Type>();
    let mut keep = Vec::with_capacity(ids.len());
    let mut positions = Vec::with_capacity(ids.len());
    for i in 0..ids.len() {
        let id = ids.value(i);
        if positions.last() != Some(&id) {
            positions.push(id);
            keep.push(i as u32);
        }
    }
    let sorted = if keep.len() == sorted.num_rows() {
        sorted
    } else {
        take_record_batch(&sorted, &datafusion::arrow::array::UInt32Array::from(keep))?
    };
    let rest = sorted.project(&(1..sorted.num_columns()).collect::<Vec<_>>())?;
    Ok(Some((positions, vec![rest])))
}

/// `schema` with every column nullable.
fn nullable(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ))
}

/// The rows of `batch` for which `keep` says yes.
fn keep_rows(batch: &RecordBatch, keep: impl Fn(usize) -> bool) -> Result<RecordBatch> {
    let mask: datafusion::arrow::array::BooleanArray =
        (0..batch.num_rows()).map(|i| Some(keep(i))).collect();
    Ok(datafusion::arrow::compute::filter_record_batch(
        batch, &mask,
    )?)
}

/// An identifier as SQL, quoted.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_ids_come_back_sorted_and_distinct() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::UInt64, false),
            Field::new("v", DataType::UInt64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(UInt64Array::from(vec![5, 2, 5, 9])),
                Arc::new(UInt64Array::from(vec![50, 20, 51, 90])),
            ],
        )
        .unwrap();
        let (positions, rest) = row_ids_and_rest(vec![batch.clone()], false)
            .unwrap()
            .unwrap();
        assert_eq!(positions, vec![2, 5, 9]);
        assert_eq!(rest[0].num_rows(), 3);
        assert_eq!(rest[0].num_columns(), 1);
        // Distinct ids: the rows stay as they came.
        let distinct = batch.slice(0, 2);
        let (positions, rest) = row_ids_and_rest(vec![distinct], true).unwrap().unwrap();
        assert_eq!(positions, vec![2, 5]);
        assert_eq!(rest[0].num_rows(), 2);
        assert!(row_ids_and_rest(Vec::new(), false).unwrap().is_none());
    }
}
