//! A session: one client's state (settings, the DataFusion context it plans
//! with) and the dispatch of each statement to DataFusion or to our own code.
//!
//! The wire server and the REPL both drive a `Session`; neither touches table
//! data any other way.

mod alter;
mod classify;
mod copy;
mod copy_files;
mod ddl;
mod definitions;
mod dml;
mod execution;
mod external;
mod file_functions;
mod init_plans;
mod insert;
mod lookup;
mod script;
mod security;
mod sources;
mod sub_plans;
mod transaction;
mod variables;
mod view_dml;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{FieldRef, SchemaRef};
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::ParamValues;
use datafusion::common::TableReference;
use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::logical_expr::{Cast, Expr, LogicalPlan, ScalarUDF, TryCast, WriteOp};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Ident, ObjectName, ObjectType, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;

use crate::engine::{Database, QualifiedName, Table, CATALOG_NAME, DEFAULT_SCHEMA};
pub use crate::error::from_datafusion;
use crate::error::{not_supported, QuiverError, Result};
use crate::metrics;
use crate::sql::catalog::{CatalogContext, Identity, SessionInfo};
pub(crate) use crate::sql::normalize_ident;
use crate::sql::settings::{self, Settings};
pub use crate::sql::{
    column_from_text, BadValue, CopyFormat, CopyIn, CopyOptions, CopyOut, RowStream,
};
use crate::sql::{
    column_names, order_by, pg_arithmetic, pg_casts, pg_datestyle, pg_extract, pg_timezone,
    pg_to_char, pg_types_in,
};
use classify::classify;
pub use definitions::Definitions;
pub use execution::{reads_tables, QUERY_QUEUE};
use script::{is_checkpoint, parse_script, Parsed};
use transaction::OpenTransaction;
pub use transaction::TxnState;
use variables::own_statement_schema;

/// How often the implicit transaction of a multi-statement message is run
/// again after losing a write race, before its 40001 goes to the client.
const IMPLICIT_RETRIES: usize = 20;

/// What one statement produced.
#[derive(Debug)]
pub enum StatementResult {
    /// A result set; `schema` describes the columns (with their Postgres
    /// type tags), `batches` hold the rows.
    Rows {
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        /// The command's tag, to which the row count is appended:
        /// `SELECT`, or `UPDATE` etc. for RETURNING.
        tag: &'static str,
    },
    /// A result set still being produced (a session that streams its
    /// results, see [`Session::stream_results`]): the rows come as the
    /// plan runs, and the statement ends when the last one is out.
    RowStream {
        schema: SchemaRef,
        rows: RowStream,
        tag: &'static str,
    },
    /// A command without rows, e.g. `CREATE TABLE` or `INSERT 0 3`.
    Command {
        tag: &'static str,
        rows: Option<usize>,
    },
    /// BEGIN (`starts`), COMMIT or ROLLBACK of a transaction block.
    TransactionControl { tag: &'static str, starts: bool },
    /// The empty query.
    Empty,
    /// `COPY ... FROM STDIN`: the client sends the rows next.
    CopyIn(crate::sql::CopyIn),
    /// `COPY ... TO STDOUT`: rows to send in COPY format.
    CopyOut(crate::sql::CopyOut),
}

impl StatementResult {
    fn command(tag: &'static str) -> Self {
        StatementResult::Command { tag, rows: None }
    }

    /// The result with every row computed (a stream collected).
    pub async fn collected(self) -> Result<StatementResult> {
        match self {
            StatementResult::RowStream { schema, rows, tag } => Ok(StatementResult::Rows {
                schema,
                batches: rows.collect().await?,
                tag,
            }),
            other => Ok(other),
        }
    }
}

/// A statement parsed (and, where DataFusion plans it, planned) once and
/// executed any number of times with different parameters.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sql: String,
    statement: Option<DfStatement>,
    plan: Option<LogicalPlan>,
    catalog_version: u64,
    /// Types of `$1..$n`, as DataFusion inferred them (None: unknown),
    /// with the Postgres type tags of the columns they are compared with.
    pub param_fields: Vec<Option<FieldRef>>,
    /// Columns of the result, when the statement returns rows.
    pub result_schema: Option<SchemaRef>,
    /// Postgres names of the result columns (see `column_names`).
    column_names: Option<Vec<Option<String>>>,
    /// The statement is CHECKPOINT (which the SQL parser does not know).
    checkpoint: bool,
    /// The statement is a point lookup by key, run without planning.
    lookup: Option<lookup::KeyLookup>,
}

pub struct Session {
    db: Arc<Database>,
    ctx: SessionContext,
    bytea_in: Arc<ScalarUDF>,
    interval_in: Arc<ScalarUDF>,
    settings: Settings,
    /// The session's TimeZone as Arrow names it, read by the planner.
    zone: pg_timezone::ZoneHandle,
    /// The session's DateStyle, read by the planner.
    date_style: pg_datestyle::Handle,
    /// Reported parameters changed by the last statements, for the wire
    /// layer to announce with ParameterStatus.
    changed: Vec<(&'static str, String)>,
    /// The open transaction block, if any.
    txn: Option<OpenTransaction>,
    /// Where per-statement tables of UPDATE/DELETE/RETURNING live.
    scratch_schema: Arc<MemorySchemaProvider>,
    /// What the system catalog reports about this session.
    info: Arc<SessionInfo>,
    /// Prepared statements named in DEALLOCATE, for the wire layer to drop.
    deallocated: Vec<String>,
    /// When the running statement times out (statement_timeout).
    deadline: Option<std::time::Instant>,
    /// Query results come as [`StatementResult::RowStream`] (a server
    /// sends rows as they are produced) rather than collected.
    stream_results: bool,
    /// Set when the rows of a streamed result failed after its statement
    /// returned: the open block is failed at the next statement.
    stream_failed: Arc<std::sync::atomic::AtomicBool>,
}

impl Session {
    pub fn new(db: Arc<Database>) -> Session {
        let slot = Arc::new(crate::engine::TxnSlot::default());
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // `1.5` is a numeric, as in PostgreSQL (DataFusion: a float).
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            // now() and `::timestamptz` give instants (timestamptz), shown
            // in the session's TimeZone, which is UTC.
            .set_str("datafusion.execution.time_zone", "UTC")
            .with_extension(slot.clone());
        let zone: pg_timezone::ZoneHandle = Arc::new(std::sync::RwLock::new(pg_timezone::utc()));
        let date_style = pg_datestyle::Handle::default();
        let ctx = SessionContext::new_with_state(pg_arithmetic::session_state(
            config,
            db.runtime(),
            zone.clone(),
            date_style.clone(),
        ));
        let info = Arc::new(SessionInfo::default());
        db.sessions.register(&info);
        crate::sql::catalog::install(
            &ctx,
            CATALOG_NAME,
            CatalogContext {
                db: db.clone(),
                slot,
                info: info.clone(),
            },
        );
        let scratch_schema = Arc::new(MemorySchemaProvider::new());
        let scratch = MemoryCatalogProvider::new();
        scratch
            .register_schema("s", scratch_schema.clone())
            .expect("a fresh catalog takes a schema");
        ctx.register_catalog(dml::SCRATCH_CATALOG, Arc::new(scratch));
        let bytea_in = Arc::new(pg_casts::bytea_in_udf());
        let interval_in = Arc::new(pg_casts::interval_in_udf());
        file_functions::register(&ctx);
        ctx.register_udf(bytea_in.as_ref().clone());
        ctx.register_udf(interval_in.as_ref().clone());
        ctx.register_udf(pg_timezone::at_time_zone_udf());
        ctx.register_udf(pg_casts::named_cast_udf());
        ctx.register_udf(pg_to_char::to_char_udf("UTC", None));
        ctx.register_udf(pg_extract::date_part_udf("UTC"));
        ctx.register_udf(pg_casts::pg_typeof_udf());
        for udf in pg_types_in::text_type_udfs() {
            ctx.register_udf(udf);
        }
        let db_defaults = db.session_defaults();
        let mut session = Session {
            db,
            ctx,
            bytea_in,
            interval_in,
            // Checked when the server set them.
            settings: Settings::with_defaults(&db_defaults).unwrap_or_default(),
            zone,
            date_style,
            changed: Vec::new(),
            txn: None,
            scratch_schema,
            info,
            deallocated: Vec::new(),
            deadline: None,
            stream_results: false,
            stream_failed: Default::default(),
        };
        session.publish_settings();
        session.apply_time_zone();
        session
    }

    /// Who is connected: reported by `current_user`, `current_database()`,
    /// `pg_backend_pid()` and `pg_stat_activity`.
    /// Who logged in: `implicit_superuser` when no authentication was
    /// asked and `user` is no role.
    pub fn set_identity(&mut self, user: &str, database: &str, pid: i32, implicit_superuser: bool) {
        let mut identity: Identity = self.info.identity();
        identity.user = user.to_string();
        identity.database = database.to_string();
        identity.pid = pid;
        identity.implicit_superuser = implicit_superuser;
        self.info.set_identity(identity);
    }

    /// What pg_stat_activity shows of this session, and how other
    /// sessions signal it.
    pub fn info(&self) -> &Arc<SessionInfo> {
        &self.info
    }

    pub fn database(&self) -> &Arc<Database> {
        &self.db
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Query results come as [`StatementResult::RowStream`], produced
    /// while the caller sends them (a server), when the statement is the
    /// only one of its message; otherwise they are collected first.
    pub fn stream_results(&mut self, on: bool) {
        self.stream_results = on;
    }

    /// Reported parameters changed since the last call.
    pub fn take_changed_settings(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.changed)
    }

    /// Prepared statements named in DEALLOCATE since the last call.
    pub fn take_deallocated(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deallocated)
    }

    /// Splits SQL text into statements.
    pub fn parse(sql: &str) -> Result<VecDeque<DfStatement>> {
        let sql = script::check_and_rewrite(sql)?;
        crate::sql::parse_statements(sql.as_ref())
    }

    /// Runs every statement in `sql` in order, stopping at the first error
    /// (which is the last element), as the simple query protocol does.
    pub async fn execute_sql(&mut self, sql: &str) -> Vec<Result<StatementResult>> {
        self.take_stream_failure();
        self.info.start_query(sql);
        let started = std::time::Instant::now();
        let mut results = self.execute_sql_inner(sql).await;
        let failed = results.iter().any(|r| r.is_err());
        self.log_statement(sql, started.elapsed(), failed);
        match results.pop() {
            Some(Ok(last)) => results.push(Ok(self.end_statement(last))),
            Some(Err(e)) => {
                self.publish_state();
                results.push(Err(e));
            }
            None => self.publish_state(),
        }
        results
    }

    /// The statement returned: it ends now, or when the rows of a streamed
    /// result are all sent.
    fn end_statement(&mut self, result: StatementResult) -> StatementResult {
        match result {
            StatementResult::RowStream { schema, rows, tag } => {
                let in_block = self.txn.is_some();
                StatementResult::RowStream {
                    schema,
                    rows: self.finish_when_sent(rows, in_block),
                    tag,
                }
            }
            other => {
                self.publish_state();
                other
            }
        }
    }

    /// One DEBUG line per statement; an INFO line for a slow one.
    fn log_statement(&self, sql: &str, elapsed: Duration, failed: bool) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if self.db.is_slow(elapsed) {
            let user = self.info.identity().user;
            tracing::info!(%user, duration_ms = ms, failed, statement = sql, "slow statement");
        } else {
            tracing::debug!(duration_ms = ms, failed, statement = sql, "statement");
        }
    }

    /// Tells pg_stat_activity whether the session is idle, and in a block.
    fn publish_state(&self) {
        let state = self.transaction_state();
        self.info.end_query(
            !matches!(state, TxnState::Idle),
            matches!(state, TxnState::Failed),
        );
    }

    async fn execute_sql_inner(&mut self, sql: &str) -> Vec<Result<StatementResult>> {
        let statements = match parse_script(sql) {
            Ok(s) => s,
            Err(e) => return vec![Err(e)],
        };
        if statements.is_empty() {
            return vec![Ok(StatementResult::Empty)];
        }
        // The rows of a COPY FROM STDIN arrive after the query string has
        // been read; statements after it would run before them.
        if statements.len() > 1
            && statements[..statements.len() - 1]
                .iter()
                .any(|p| matches!(p, Parsed::Statement(s) if crate::sql::copy_options::is_copy_from_stdin(s)))
        {
            return vec![Err(QuiverError::FeatureNotSupported(
                "COPY FROM STDIN must be the last statement of a query string".into(),
            ))];
        }
        // Several statements in one message run as one transaction, as in
        // Postgres (here: when they only read and change rows). Nothing has
        // been sent yet, so a transaction that loses a write race to
        // another session is simply run again on the newer rows.
        let implicit = statements.len() > 1
            && self.txn.is_none()
            && statements
                .iter()
                .all(|p| matches!(p, Parsed::Statement(s) if classify(s).implicit_block));
        if !implicit {
            return self.run_statements(statements).await;
        }
        let _turns = self
            .writer_turns(statements.iter().filter_map(|p| match p {
                Parsed::Statement(statement @ DfStatement::Statement(s))
                    if classify(statement).dml =>
                {
                    Some(s.as_ref())
                }
                _ => None,
            }))
            .await;
        let mut attempt = 0;
        loop {
            if let Err(e) = self.begin() {
                return vec![Err(e)];
            }
            let mut results = self.run_statements(statements.clone()).await;
            if results.iter().any(|r| r.is_err()) {
                self.rollback();
                return results;
            }
            match self.commit().await {
                Ok(_) => return results,
                Err(QuiverError::SerializationFailure(_)) if attempt < IMPLICIT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_micros(50 * attempt as u64)).await;
                }
                Err(e) => {
                    results.push(Err(e));
                    return results;
                }
            }
        }
    }

    /// Runs statements in order, stopping at the first error. Of several,
    /// each one's rows are computed before the next runs (an error among
    /// them stops the rest, and the implicit transaction).
    async fn run_statements(&mut self, statements: Vec<Parsed>) -> Vec<Result<StatementResult>> {
        let several = statements.len() > 1;
        let mut results = Vec::with_capacity(statements.len());
        for statement in statements {
            let result = match statement {
                Parsed::Checkpoint => {
                    match self.admit(None).and_then(|_| self.authorize_checkpoint()) {
                        Ok(()) => self.checkpoint().await,
                        Err(e) => Err(e),
                    }
                }
                Parsed::Statement(statement) => {
                    let kind = classify(&statement).kind;
                    let started = std::time::Instant::now();
                    let result = match self
                        .admit(Some(&statement))
                        .and_then(|_| self.authorize(&statement))
                    {
                        Ok(()) => {
                            self.run_with_timeout(|s| Box::pin(s.execute_statement(statement)))
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    metrics::metrics().statement(
                        kind,
                        metrics::Outcome::of(&result),
                        started.elapsed(),
                    );
                    result
                }
            };
            let result = match result {
                Ok(rows @ StatementResult::RowStream { .. }) if several => rows.collected().await,
                other => other,
            };
            if result.is_err() {
                self.note_failure();
            }
            let failed = result.is_err();
            results.push(result);
            if failed {
                break;
            }
        }
        results
    }

    /// Parses and plans one statement for the extended protocol.
    pub async fn prepare(&mut self, sql: &str) -> Result<Prepared> {
        if is_checkpoint(sql) {
            return Ok(Prepared {
                sql: sql.to_string(),
                statement: None,
                plan: None,
                catalog_version: self.db.catalog_version(),
                param_fields: Vec::new(),
                result_schema: None,
                column_names: None,
                checkpoint: true,
                lookup: None,
            });
        }
        let mut statements = if crate::sql::copy_options::is_copy(sql) {
            VecDeque::from([crate::sql::copy_options::parse_copy(sql)?])
        } else {
            Session::parse(sql)?
        };
        if statements.len() > 1 {
            return Err(QuiverError::Syntax(
                "cannot insert multiple commands into a prepared statement".into(),
            ));
        }
        let catalog_version = self.db.catalog_version();
        let Some(statement) = statements.pop_front() else {
            return Ok(Prepared {
                sql: sql.to_string(),
                statement: None,
                plan: None,
                catalog_version,
                param_fields: Vec::new(),
                result_schema: None,
                column_names: None,
                checkpoint: false,
                lookup: None,
            });
        };
        let mut prepared = Prepared {
            sql: sql.to_string(),
            statement: None,
            plan: None,
            catalog_version,
            param_fields: Vec::new(),
            result_schema: own_statement_schema(&statement),
            column_names: column_names::postgres_column_names(&statement),
            checkpoint: false,
            lookup: None,
        };
        let class = classify(&statement);
        if let (true, DfStatement::Statement(s)) = (class.dml, &statement) {
            let (params, returns) = self.describe_dml(s).await?;
            prepared.param_fields = params;
            prepared.result_schema = returns;
            prepared.statement = Some(statement);
            return Ok(prepared);
        }
        if class.planned {
            let plan = self.plan(statement.clone()).await?;
            prepared.param_fields = parameter_fields(&plan)?;
            let typed = self.typed_schema(&plan);
            prepared.result_schema = returns_rows(&plan).then(|| {
                let schema = column_names::rename(&typed, &prepared.column_names);
                sources::annotate(&plan, schema, &self.catalog(), &self.default_schema())
            });
            // The schema run_plan would report for the rows.
            let rows_schema =
                sources::annotate(&plan, typed, &self.catalog(), &self.default_schema());
            prepared.lookup = lookup::KeyLookup::of(self, &plan, rows_schema);
            prepared.plan = Some(plan);
        }
        prepared.statement = Some(statement);
        Ok(prepared)
    }

    /// Executes a prepared statement with bound parameter values.
    pub async fn execute_prepared(
        &mut self,
        prepared: &Prepared,
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        self.take_stream_failure();
        self.info.start_query(&prepared.sql);
        let started = std::time::Instant::now();
        let result = self.execute_prepared_inner(prepared, params).await;
        if result.is_err() {
            self.note_failure();
        }
        let kind = match &prepared.statement {
            Some(statement) => classify(statement).kind,
            None => metrics::Kind::Utility,
        };
        metrics::metrics().statement(kind, metrics::Outcome::of(&result), started.elapsed());
        self.log_statement(&prepared.sql, started.elapsed(), result.is_err());
        match result {
            Ok(result) => Ok(self.end_statement(result)),
            Err(e) => {
                self.publish_state();
                Err(e)
            }
        }
    }

    async fn execute_prepared_inner(
        &mut self,
        prepared: &Prepared,
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        self.admit(prepared.statement.as_ref())?;
        if prepared.checkpoint {
            self.authorize_checkpoint()?;
            return self.checkpoint().await;
        }
        if let Some(statement) = &prepared.statement {
            self.authorize(statement)?;
        }
        let Some(statement) = prepared.statement.clone() else {
            return Ok(StatementResult::Empty);
        };
        if classify(&statement).dml {
            return self
                .run_with_timeout(|s| Box::pin(s.execute_dml_owned(statement, params)))
                .await;
        }
        let plan = match &prepared.plan {
            // The catalog changed since Parse: plan again, so the statement
            // sees tables created or dropped in between.
            Some(_) if prepared.catalog_version != self.db.catalog_version() => {
                Some(self.plan(statement.clone()).await?)
            }
            other => other.clone(),
        };
        if let Some(lookup) = &prepared.lookup {
            if prepared.catalog_version == self.db.catalog_version() {
                if let Some(result) = self.run_lookup(lookup, params.as_ref())? {
                    return Ok(rename_columns(result, &prepared.column_names));
                }
            }
        }
        match plan {
            Some(plan) => {
                let plan = match params {
                    Some(params) => plan.with_param_values(params)?,
                    None => plan,
                };
                let result = self.run_with_timeout(|s| Box::pin(s.run_plan(plan))).await;
                Ok(rename_columns(result?, &prepared.column_names))
            }
            None => {
                if params.is_some_and(|p| !matches!(&p, ParamValues::List(v) if v.is_empty())) {
                    return Err(QuiverError::FeatureNotSupported(
                        "parameters are only allowed in queries and INSERT".into(),
                    ));
                }
                self.run_with_timeout(|s| Box::pin(s.execute_statement(statement)))
                    .await
            }
        }
    }

    /// CHECKPOINT: writes the tables to Parquet off the async runtime.
    async fn checkpoint(&mut self) -> Result<StatementResult> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.checkpoint())
            .await
            .map_err(|e| QuiverError::Internal(format!("checkpoint failed: {e}")))??;
        Ok(StatementResult::command("CHECKPOINT"))
    }

    /// Runs `f` under the session's `statement_timeout`.
    async fn run_with_timeout<F>(&mut self, f: F) -> Result<StatementResult>
    where
        F: for<'a> FnOnce(
            &'a mut Session,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<StatementResult>> + Send + 'a>,
        >,
    {
        let timeout_ms: u64 = self
            .settings
            .get("statement_timeout")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        self.deadline =
            (timeout_ms > 0).then(|| std::time::Instant::now() + Duration::from_millis(timeout_ms));
        // A cancel or the timeout stops the statement wherever it is
        // (rows it streams stop on their own: see `control`).
        let control = self.control();
        let stopped = async {
            match control.deadline {
                Some(deadline) => tokio::select! {
                    _ = control.cancel.cancelled() => QuiverError::QueryCanceled,
                    _ = tokio::time::sleep_until(deadline.into()) => QuiverError::StatementTimeout,
                },
                None => {
                    control.cancel.cancelled().await;
                    QuiverError::QueryCanceled
                }
            }
        };
        let result = tokio::select! {
            result = f(self) => result,
            reason = stopped => Err(reason),
        };
        self.db.maybe_checkpoint();
        result
    }

    /// Plans with unqualified names resolving in `schema` (view bodies are
    /// planned as their creator saw them).
    async fn plan_in_schema(&self, statement: DfStatement, schema: &str) -> Result<LogicalPlan> {
        let state = self.ctx.state_ref();
        let previous = std::mem::replace(
            &mut state
                .write()
                .config_mut()
                .options_mut()
                .catalog
                .default_schema,
            schema.to_string(),
        );
        let planned = self.plan(statement).await;
        state
            .write()
            .config_mut()
            .options_mut()
            .catalog
            .default_schema = previous;
        planned
    }

    /// Whether commits wait for the WAL sync (`synchronous_commit`).
    fn synchronous_commit(&self) -> bool {
        !self
            .settings
            .get("synchronous_commit")
            .is_ok_and(|v| v.eq_ignore_ascii_case("off"))
    }

    async fn plan(&self, statement: DfStatement) -> Result<LogicalPlan> {
        let mut statement = self.through_views(&statement)?.unwrap_or(statement);
        let is_query = matches!(&statement, DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_)));
        crate::sql::catalog::rewrite_client_sql(&mut statement);
        pg_types_in::rewrite_casts(&mut statement);
        if let DfStatement::Statement(s) = &mut statement {
            if let Statement::Insert(insert) = s.as_mut() {
                self.fill_values_defaults(insert)?;
            }
        }
        if let DfStatement::Statement(s) = &mut statement {
            order_by::resolve_order_by(s)?;
            column_names::separate_cast_aggregates(s);
        }
        match &mut statement {
            DfStatement::Statement(s) => column_names::separate_repeated_names(s),
            DfStatement::Explain(e) => {
                if let DfStatement::Statement(s) = e.statement.as_mut() {
                    column_names::separate_repeated_names(s)
                }
            }
            _ => {}
        }
        // A query over a catalog that is always empty here (psql asks for
        // row security policies, statistics objects, ...) answers no rows;
        // when DataFusion cannot plan or run it as written, the answer is
        // given by an equivalent empty query.
        let fallback = if is_query {
            crate::sql::catalog::empty_result_fallback(&statement).map(|mut empty| {
                if let DfStatement::Statement(s) = &mut empty {
                    column_names::separate_repeated_names(s);
                }
                empty
            })
        } else {
            None
        };
        let plan = match (
            self.ctx.state().statement_to_plan(statement).await,
            fallback,
        ) {
            (Ok(plan), None) => plan,
            (Ok(plan), Some(empty)) => {
                if self.ctx.state().create_physical_plan(&plan).await.is_ok() {
                    plan
                } else {
                    self.ctx.state().statement_to_plan(empty).await?
                }
            }
            (Err(_), Some(empty)) => self.ctx.state().statement_to_plan(empty).await?,
            (Err(e), None) => return Err(e.into()),
        };
        Ok(pg_casts::rewrite_text_casts(
            plan,
            &self.bytea_in,
            &self.interval_in,
        )?)
    }

    /// Executes one statement that carries no parameters.
    pub async fn execute_statement(&mut self, statement: DfStatement) -> Result<StatementResult> {
        let DfStatement::Statement(stmt) = &statement else {
            return match &statement {
                DfStatement::Explain(_) => {
                    let plan = self.plan(statement).await?;
                    self.run_plan(plan).await
                }
                DfStatement::Reset(datafusion::sql::parser::ResetStatement::Variable(name)) => {
                    let mut name = object_name_parts(name)?.join(".");
                    // `RESET TIME ZONE` parses as the name `time.zone`.
                    if name.eq_ignore_ascii_case("time.zone") {
                        name = "TimeZone".into();
                    }
                    if name.eq_ignore_ascii_case("all") {
                        self.reset(None)
                    } else {
                        self.reset(Some(name))
                    }
                }
                DfStatement::CreateExternalTable(create) => {
                    self.create_external_table(create).await
                }
                _ => Err(unsupported(&statement)),
            };
        };
        if classify(&statement).dml {
            return self.execute_dml(stmt, None).await;
        }
        match stmt.as_ref() {
            Statement::Query(_) | Statement::Insert(_) | Statement::Explain { .. } => {
                let names = column_names::postgres_column_names(&statement);
                let plan = self.plan(statement).await?;
                Ok(rename_columns(self.run_plan(plan).await?, &names))
            }
            Statement::Copy { .. } => self.copy(stmt).await,
            Statement::CreateRole(create) => self.create_role(create, false).await,
            Statement::AlterRole { name, operation } => self.alter_role(name, operation).await,
            Statement::Drop {
                object_type: ObjectType::Role,
                if_exists,
                names,
                ..
            } => self.drop_roles(names, *if_exists).await,
            Statement::Grant(grant) => {
                self.grant_or_revoke(
                    &grant.privileges,
                    grant.objects.as_ref(),
                    &grant.grantees,
                    true,
                    grant.with_grant_option,
                )
                .await
            }
            Statement::Revoke(revoke) => {
                self.grant_or_revoke(
                    &revoke.privileges,
                    revoke.objects.as_ref(),
                    &revoke.grantees,
                    false,
                    false,
                )
                .await
            }
            Statement::CreateTable(create) => self.create_table(create).await,
            Statement::AlterTable(alter) => self.alter_table(alter).await,
            Statement::CreateView(create) => self.create_view(create).await,
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                ..
            } => {
                let name = match schema_name {
                    datafusion::sql::sqlparser::ast::SchemaName::Simple(n)
                    | datafusion::sql::sqlparser::ast::SchemaName::NamedAuthorization(n, _) => {
                        object_name_parts(n)?.pop().unwrap_or_default()
                    }
                    datafusion::sql::sqlparser::ast::SchemaName::UnnamedAuthorization(_) => {
                        return Err(not_supported("CREATE SCHEMA AUTHORIZATION without a name"))
                    }
                };
                if name == crate::sql::catalog::PG_CATALOG
                    || name == crate::sql::catalog::INFORMATION_SCHEMA
                {
                    if *if_not_exists {
                        return Ok(StatementResult::command("CREATE SCHEMA"));
                    }
                    return Err(QuiverError::DuplicateSchema(name));
                }
                if name.starts_with("pg_") {
                    return Err(QuiverError::ReservedName(format!(
                        "unacceptable schema name \"{name}\": the prefix \"pg_\" is reserved for system schemas"
                    )));
                }
                let (_, ack) = self.db.create_schema(
                    self.current_txn().as_deref(),
                    &name,
                    *if_not_exists,
                    Some(&self.current_role()),
                )?;
                ack.wait().await;
                Ok(StatementResult::command("CREATE SCHEMA"))
            }
            Statement::Drop {
                object_type,
                if_exists,
                names,
                cascade,
                ..
            } => self.drop(*object_type, *if_exists, names, *cascade).await,
            Statement::Truncate(truncate) => {
                let catalog = self.catalog();
                let mut tables = Vec::new();
                for target in &truncate.table_names {
                    let name = self.qualified(&target.name)?;
                    match catalog.table(&name) {
                        Some(table) => tables.push(table.clone()),
                        None if catalog.view(&name).is_some() => {
                            return Err(QuiverError::WrongObjectType(format!(
                                "\"{}\" is not a table",
                                name.name
                            )))
                        }
                        None => return Err(QuiverError::UndefinedTable(name.name)),
                    }
                }
                if let Some(txn) = self.current_txn() {
                    for table in &tables {
                        txn.apply(table, crate::engine::Change::Truncate)?;
                    }
                } else {
                    let ack = self.db.truncate(&tables)?;
                    ack.wait().await;
                }
                Ok(StatementResult::command("TRUNCATE TABLE"))
            }
            Statement::Set(set) => self.set(set),
            Statement::ShowVariable { variable } => self.show(variable),
            Statement::Reset(reset) => {
                use datafusion::sql::sqlparser::ast::Reset;
                match &reset.reset {
                    Reset::ALL => self.reset(None),
                    Reset::ConfigurationParameter(name) => {
                        self.reset(Some(object_name_parts(name)?.join(".")))
                    }
                }
            }
            Statement::Deallocate { name, .. } => {
                if name.value.eq_ignore_ascii_case("all") && name.quote_style.is_none() {
                    // The wire layer's statements are not listed here; a
                    // client that deallocates all of them re-prepares
                    // under the same names, which replaces them.
                    Ok(StatementResult::command("DEALLOCATE ALL"))
                } else {
                    self.deallocated.push(name.value.clone());
                    Ok(StatementResult::command("DEALLOCATE"))
                }
            }
            Statement::Discard { .. } => {
                self.reset(None)?;
                Ok(StatementResult::command("DISCARD ALL"))
            }
            Statement::StartTransaction { .. } => self.begin(),
            Statement::Commit { .. } => self.commit().await,
            Statement::Rollback {
                savepoint: None, ..
            } => Ok(self.rollback()),
            Statement::Rollback {
                savepoint: Some(name),
                ..
            } => self.rollback_to_savepoint(normalize_ident(name)),
            Statement::Savepoint { name } => self.savepoint(normalize_ident(name)),
            Statement::ReleaseSavepoint { name } => self.release_savepoint(normalize_ident(name)),
            _ => Err(unsupported(&statement)),
        }
    }

    async fn execute_dml_owned(
        &mut self,
        statement: DfStatement,
        params: Option<ParamValues>,
    ) -> Result<StatementResult> {
        let DfStatement::Statement(s) = statement else {
            return Err(QuiverError::Internal("not a DML statement".into()));
        };
        self.execute_dml(&s, params.as_ref()).await
    }

    /// Runs a DataFusion plan: INSERT through our commit path, anything
    /// that returns rows through DataFusion.
    async fn run_plan(&mut self, plan: LogicalPlan) -> Result<StatementResult> {
        match &plan {
            LogicalPlan::Dml(dml) if matches!(dml.op, WriteOp::Insert(_)) => self.insert(dml).await,
            LogicalPlan::Dml(dml) => Err(not_supported(format!("{}", dml.op))),
            LogicalPlan::Ddl(ddl) => Err(not_supported(ddl.name())),
            LogicalPlan::Statement(_) | LogicalPlan::Copy(_) => {
                Err(not_supported(format!("{}", plan.display())))
            }
            _ => {
                let schema = sources::annotate(
                    &plan,
                    self.typed_schema(&plan),
                    &self.catalog(),
                    &self.default_schema(),
                );
                // Partition by partition, in order: a scan's partitions
                // are consecutive slices of the table, so rows come back
                // in table order when the query does not reorder them
                // (as a Postgres sequential scan returns them).
                let rows = self.execute_plan(plan).await?.conformed(schema.clone());
                if self.stream_results {
                    return Ok(StatementResult::RowStream {
                        schema,
                        rows,
                        tag: "SELECT",
                    });
                }
                Ok(StatementResult::Rows {
                    schema,
                    batches: rows.collect().await?,
                    tag: "SELECT",
                })
            }
        }
    }

    /// `INSERT ... VALUES (1, DEFAULT)`: replaces each DEFAULT with the
    /// column's default expression (or NULL), which DataFusion then plans.
    /// `INSERT INTO t VALUES (1)` into a wider table names the leading
    /// columns, as Postgres does (the rest get their defaults).
    fn fill_values_defaults(
        &self,
        insert: &mut datafusion::sql::sqlparser::ast::Insert,
    ) -> Result<()> {
        use datafusion::sql::sqlparser::ast::{Expr as SqlExpr, SetExpr, TableObject};
        let is_default = |e: &SqlExpr| {
            matches!(e, SqlExpr::Identifier(i)
                if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("default"))
        };
        let Some(source) = insert.source.as_mut() else {
            return Ok(());
        };
        let SetExpr::Values(values) = source.body.as_mut() else {
            return Ok(());
        };
        let width = values.rows.first().map_or(0, |r| r.content.len());
        let uniform = values.rows.iter().all(|r| r.content.len() == width);
        let has_default = values
            .rows
            .iter()
            .flat_map(|r| r.content.iter())
            .any(is_default);
        let widens = insert.columns.is_empty() && uniform;
        if !has_default && !widens {
            return Ok(());
        }
        let TableObject::TableName(name) = &insert.table else {
            return Ok(());
        };
        let table = self
            .catalog()
            .table(&self.qualified(name)?)
            .cloned()
            .ok_or_else(|| QuiverError::UndefinedTable(name.to_string()))?;
        let schema = table.schema_ref();
        if insert.columns.is_empty() && uniform && width < schema.fields().len() {
            insert.columns = schema.fields()[..width]
                .iter()
                .map(|f| ObjectName::from(vec![Ident::with_quote('"', f.name())]))
                .collect();
        }
        let columns: Vec<String> = if insert.columns.is_empty() {
            schema.fields().iter().map(|f| f.name().clone()).collect()
        } else {
            insert
                .columns
                .iter()
                .map(|c| object_name_parts(c).map(|mut p| p.pop().unwrap_or_default()))
                .collect::<Result<_>>()?
        };
        for row in values.rows.iter_mut() {
            for (i, value) in row.content.iter_mut().enumerate() {
                if !is_default(value) {
                    continue;
                }
                let sql = columns
                    .get(i)
                    .and_then(|c| table.defaults_sql().iter().find(|(d, _)| d == c))
                    .map(|(_, sql)| sql.as_str())
                    .unwrap_or("NULL");
                *value = datafusion::sql::sqlparser::parser::Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(sql)?
                    .parse_expr()?;
            }
        }
        Ok(())
    }

    /// The catalog this session sees: its transaction's, when that has run
    /// DDL, else the database's.
    pub(crate) fn catalog(&self) -> Arc<crate::engine::CatalogState> {
        crate::engine::catalog::visible_catalog(&self.db, &self.txn_slot())
    }

    /// Resolves a table name as DataFusion spelled it in a plan.
    fn table_for_reference(
        &self,
        reference: &TableReference,
    ) -> Result<(QualifiedName, Arc<Table>)> {
        let name = match reference {
            TableReference::Bare { table } => {
                QualifiedName::new(self.default_schema(), table.as_ref())
            }
            TableReference::Partial { schema, table }
            | TableReference::Full { schema, table, .. } => {
                QualifiedName::new(schema.as_ref(), table.as_ref())
            }
        };
        let table = self
            .catalog()
            .table(&name)
            .cloned()
            .ok_or_else(|| QuiverError::UndefinedTable(name.name.clone()))?;
        Ok((name, table))
    }

    /// The schema new relations go to: the first existing schema on the
    /// search path.
    fn default_schema(&self) -> String {
        let catalog = self.catalog();
        self.settings
            .search_path()
            .into_iter()
            .find(|s| catalog.schemas.contains_key(s))
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string())
    }

    /// Normalises `schema.name` / `name` into a qualified name.
    fn qualified(&self, name: &ObjectName) -> Result<QualifiedName> {
        let mut parts = object_name_parts(name)?;
        let table = parts.pop().unwrap_or_default();
        let schema = parts.pop().unwrap_or_else(|| self.default_schema());
        Ok(QualifiedName::new(schema, table))
    }

    async fn drop(
        &mut self,
        object_type: ObjectType,
        if_exists: bool,
        names: &[ObjectName],
        cascade: bool,
    ) -> Result<StatementResult> {
        match object_type {
            ObjectType::Table | ObjectType::View => {
                let want_view = object_type == ObjectType::View;
                let names = names
                    .iter()
                    .map(|n| self.qualified(n))
                    .collect::<Result<Vec<_>>>()?;
                let (_, ack) = self.db.drop_relations(
                    self.current_txn().as_deref(),
                    &names,
                    want_view,
                    if_exists,
                    cascade,
                )?;
                ack.wait().await;
                Ok(StatementResult::command(if want_view {
                    "DROP VIEW"
                } else {
                    "DROP TABLE"
                }))
            }
            ObjectType::Schema => {
                for name in names {
                    let name = object_name_parts(name)?.pop().unwrap_or_default();
                    let (_, ack) = self.db.drop_schema(
                        self.current_txn().as_deref(),
                        &name,
                        if_exists,
                        cascade,
                    )?;
                    ack.wait().await;
                }
                Ok(StatementResult::command("DROP SCHEMA"))
            }
            other => Err(not_supported(format!("DROP {other}"))),
        }
    }
}

fn rename_columns(result: StatementResult, names: &Option<Vec<Option<String>>>) -> StatementResult {
    match result {
        StatementResult::Rows {
            schema,
            batches,
            tag,
        } => StatementResult::Rows {
            schema: column_names::rename(&schema, names),
            batches,
            tag,
        },
        StatementResult::RowStream { schema, rows, tag } => StatementResult::RowStream {
            schema: column_names::rename(&schema, names),
            rows,
            tag,
        },
        other => other,
    }
}

fn object_name_parts(name: &ObjectName) -> Result<Vec<String>> {
    name.0
        .iter()
        .map(|part| {
            part.as_ident()
                .map(normalize_ident)
                .ok_or_else(|| QuiverError::Syntax(format!("invalid name \"{name}\"")))
        })
        .collect()
}

/// 0A000 for a statement QuiverDB does not run.
fn unsupported(statement: &DfStatement) -> QuiverError {
    match statement {
        DfStatement::Statement(s) => {
            not_supported(format!("the statement \"{}\"", first_words(&s.to_string())))
        }
        other => not_supported(format!("the statement \"{other}\"")),
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn returns_rows(plan: &LogicalPlan) -> bool {
    !matches!(
        plan,
        LogicalPlan::Dml(_) | LogicalPlan::Ddl(_) | LogicalPlan::Statement(_)
    )
}

/// `$1..$n` in order; a gap (an unused `$k`) is reported as unknown.
fn parameter_fields(plan: &LogicalPlan) -> Result<Vec<Option<FieldRef>>> {
    let mut found = plan.get_parameter_fields()?;
    // `$1::int`: DataFusion leaves a parameter that is only cast untyped;
    // Postgres gives it the cast's type, and clients send it as such.
    let _ = plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            let _ = expr.apply(|e| {
                if let Expr::Cast(Cast { expr, field, .. })
                | Expr::TryCast(TryCast { expr, field, .. }) = e
                {
                    if let Expr::Placeholder(p) = expr.as_ref() {
                        let slot = found.entry(p.id.clone()).or_insert(None);
                        if slot.is_none() {
                            *slot = Some(field.clone());
                        }
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    let max = found
        .keys()
        .filter_map(|k| k.strip_prefix('$')?.parse::<usize>().ok())
        .max()
        .unwrap_or(0);
    Ok((1..=max)
        .map(|i| found.get(&format!("${i}")).cloned().flatten())
        .collect())
}
