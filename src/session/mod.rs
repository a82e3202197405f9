//! A session: one client's state (settings, the DataFusion context it plans
//! with) and the dispatch of each statement to DataFusion or to our own code.
//!
//! The wire server and the REPL both drive a `Session`; neither touches table
//! data any other way.

mod alter;
mod classify;
mod comments;
mod copy;
mod copy_files;
mod cursors;
mod ddl;
mod definitions;
mod dependent_views;
mod df_state;
mod dispatch;
mod dml;
mod execution;
mod external;
mod file_functions;
mod foreign_keys;
mod indexes;
mod init_plans;
mod insert;
mod lookup;
mod notify;
mod plan;
mod prepared;
mod run;
mod script;
mod search_path;
use script::Overriding;
mod lateral_joins;
mod security;
mod sequences;
mod sources;
mod sub_plans;
mod temporary;
mod transaction;
mod variables;
mod view_dml;

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};
use datafusion::common::TableReference;
use datafusion::execution::context::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::ObjectName;

use crate::engine::{Database, QualifiedName, Table, DEFAULT_SCHEMA};
pub use crate::error::from_datafusion;
use crate::error::{not_supported, QuiverError, Result};
use crate::sql::catalog::{Identity, SessionInfo};
use crate::sql::context::Planner;
pub(crate) use crate::sql::normalize_ident;
use crate::sql::settings::{self, Settings};
pub use crate::sql::{
    column_from_text, BadValue, CopyFormat, CopyIn, CopyOptions, CopyOut, RowStream,
};
use crate::sql::{column_names, pg_datestyle, pg_timezone};
pub use cursors::is_binary_cursor;
pub use definitions::Definitions;
pub use execution::{reads_tables, QUERY_QUEUE};
pub use prepared::Prepared;
use transaction::OpenTransaction;
pub use transaction::TxnState;

/// How often the implicit transaction of a multi-statement message is run
/// again after losing a write race, before its 40001 goes to the client.
pub(super) const IMPLICIT_RETRIES: usize = 20;

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

/// A message for the client that is not an error (PostgreSQL's
/// NoticeResponse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// `NOTICE` or `WARNING`.
    pub severity: &'static str,
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
}

pub struct Session {
    db: Arc<Database>,
    ctx: SessionContext,
    /// The copy of `ctx`'s state that statements plan with.
    df_cache: df_state::StateCache,
    /// Where the session's open transaction is, for its catalog.
    slot: Arc<crate::engine::TxnSlot>,
    text_casts: crate::sql::pg_casts::TextCasts,
    settings: Settings,
    /// The session's TimeZone as Arrow names it, read by the planner.
    zone: pg_timezone::ZoneHandle,
    /// The session's DateStyle, read by the planner.
    date_style: pg_datestyle::Handle,
    /// Reported parameters changed by the last statements, for the wire
    /// layer to announce with ParameterStatus.
    changed: Vec<(&'static str, String)>,
    /// Notices and warnings of the last statements, for the wire layer to
    /// send.
    notices: Vec<Notice>,
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
    /// What the session's functions reach of it: sequences, the
    /// statement's deadline, pg_notify and set_config calls.
    handle: crate::sql::context::SessionHandle,
    /// Open cursors (DECLARE), by name.
    cursors: Vec<(String, cursors::Cursor)>,
    /// The OVERRIDING clause of the INSERT being run; SYSTEM also while
    /// COPY stores its rows (COPY writes the values given for GENERATED
    /// ALWAYS columns, as in PostgreSQL).
    overriding: Option<Overriding>,
}

impl Drop for Session {
    /// A session's advisory locks go with it (a wait for one it had not
    /// got yet stops first).
    fn drop(&mut self) {
        self.info.cancel();
        self.db.advisory().unlock_all(self.lock_holder(false));
        self.db.advisory().unlock_all(self.lock_holder(true));
        self.drop_temporary_tables();
    }
}

impl Session {
    pub fn new(db: Arc<Database>) -> Session {
        let slot = Arc::new(crate::engine::TxnSlot::default());
        let info = Arc::new(SessionInfo::default());
        db.sessions.register(&info);
        let Planner {
            ctx,
            text_casts,
            zone,
            date_style,
            handle,
        } = Planner::new(&db, slot.clone(), info.clone());
        let scratch_schema = Arc::new(MemorySchemaProvider::new());
        let scratch = MemoryCatalogProvider::new();
        scratch
            .register_schema("s", scratch_schema.clone())
            .expect("a fresh catalog takes a schema");
        ctx.register_catalog(dml::SCRATCH_CATALOG, Arc::new(scratch));
        file_functions::register(&ctx);
        let db_defaults = db.session_defaults();
        let mut session = Session {
            db,
            ctx,
            df_cache: Default::default(),
            slot,
            text_casts,
            // Checked when the server set them.
            settings: Settings::with_defaults(&db_defaults).unwrap_or_default(),
            zone,
            date_style,
            changed: Vec::new(),
            notices: Vec::new(),
            txn: None,
            scratch_schema,
            info,
            deallocated: Vec::new(),
            deadline: None,
            stream_results: false,
            stream_failed: Default::default(),
            handle,
            cursors: Vec::new(),
            overriding: None,
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

    /// Where the client connects from and which front end serves it, as
    /// pg_stat_activity's client_addr and backend_type show them.
    pub fn set_client(&mut self, addr: Option<std::net::IpAddr>, backend_type: &'static str) {
        let mut identity: Identity = self.info.identity();
        identity.client_addr = addr;
        identity.backend_type = backend_type;
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

    /// Notices and warnings since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Tells the client something it should know (a NOTICE).
    pub(super) fn notice(&mut self, message: String) {
        self.notices.push(Notice {
            severity: "NOTICE",
            code: "00000",
            message,
            detail: None,
        });
    }

    /// Warns the client (a WARNING with its SQLSTATE and a detail).
    pub(super) fn warning(&mut self, code: &'static str, message: String, detail: String) {
        self.notices.push(Notice {
            severity: "WARNING",
            code,
            message,
            detail: Some(detail),
        });
    }

    /// Prepared statements named in DEALLOCATE since the last call.
    pub fn take_deallocated(&mut self) -> Vec<String> {
        std::mem::take(&mut self.deallocated)
    }

    /// Splits SQL text into statements.
    pub fn parse(sql: &str) -> Result<VecDeque<DfStatement>> {
        match script::check_and_rewrite(sql)? {
            std::borrow::Cow::Borrowed(sql) => crate::sql::parse_statements(sql),
            rewritten => crate::sql::parse_statements(&rewritten).map_err(script::without_position),
        }
    }

    /// The catalog this session sees: its transaction's, when that has run
    /// DDL, else the database's.
    pub(crate) fn catalog(&self) -> Arc<crate::engine::CatalogState> {
        crate::engine::catalog::visible_catalog(&self.db, &self.txn_slot())
    }

    /// The columns of the table or view `schema.name` as this session
    /// sees it (None: there is none).
    pub fn relation_schema(&self, schema: &str, name: &str) -> Option<SchemaRef> {
        let catalog = self.catalog();
        let name = QualifiedName::new(schema, name);
        if let Some(table) = catalog.table(&name) {
            return Some(table.schema_ref());
        }
        catalog.view(&name).map(|view| view.schema.clone())
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
    pub fn default_schema(&self) -> String {
        let catalog = self.catalog();
        self.settings
            .search_path()
            .into_iter()
            .find(|s| catalog.schemas.contains_key(s))
            .unwrap_or_else(|| DEFAULT_SCHEMA.to_string())
    }

    /// The schema an unqualified relation name resolves to: the first
    /// schema on the search path that has a relation (or index) of that
    /// name, else the schema new relations go to.
    pub(super) fn schema_of(&self, relation: &str) -> String {
        let catalog = self.catalog();
        let temp = self.info.temp_schema();
        if catalog
            .schemas
            .get(&temp)
            .is_some_and(|entry| entry.has_relation(relation))
        {
            return temp;
        }
        self.settings
            .search_path()
            .into_iter()
            .find(|s| {
                catalog
                    .schemas
                    .get(s)
                    .is_some_and(|entry| entry.has_relation(relation))
            })
            .unwrap_or_else(|| self.default_schema())
    }

    /// Normalises `schema.name` / `name` into the qualified name of an
    /// existing relation: an unqualified name is looked up along the
    /// search path.
    fn qualified(&self, name: &ObjectName) -> Result<QualifiedName> {
        let mut parts = object_name_parts(name)?;
        let table = parts.pop().unwrap_or_default();
        let schema = match parts.pop() {
            Some(schema) => self.schema_named(schema),
            None => self.schema_of(&table),
        };
        Ok(QualifiedName::new(schema, table))
    }

    /// Normalises `schema.name` / `name` into the qualified name of a
    /// relation to create: unqualified, in the first existing schema on
    /// the search path.
    fn qualified_new(&self, name: &ObjectName) -> Result<QualifiedName> {
        let mut parts = object_name_parts(name)?;
        let table = parts.pop().unwrap_or_default();
        let schema = match parts.pop() {
            Some(schema) => self.schema_named(schema),
            None => self.default_schema(),
        };
        Ok(QualifiedName::new(schema, table))
    }

    /// `pg_temp` names the session's temporary schema.
    fn schema_named(&self, schema: String) -> String {
        match schema == "pg_temp" {
            true => self.info.temp_schema(),
            false => schema,
        }
    }
}

pub(super) fn object_name_parts(name: &ObjectName) -> Result<Vec<String>> {
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
pub(super) fn unsupported(statement: &DfStatement) -> QuiverError {
    match statement {
        DfStatement::Statement(s) => {
            not_supported(format!("the statement \"{}\"", first_words(&s.to_string())))
        }
        other => not_supported(format!("the statement \"{other}\"")),
    }
}

pub(super) fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
