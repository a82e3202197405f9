//! The pgwire handlers of one connection: start-up, simple and extended
//! query, each turning messages into calls on the connection's `Session`.

use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::auth::StartupHandler;
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::{
    ClientInfo, ClientPortalStore, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Describe, Execute, Sync as SyncMessage, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;
use tokio::sync::Mutex;

use super::params::decode_parameters;
use super::startup::{fatal, Login};
use super::ServerContext;
use crate::engine::Database;
use crate::error::QuiverError;
use crate::session::{is_binary_cursor, CopyFormat, Prepared, Session, StatementResult, TxnState};
use crate::sql::copy::{encode_copy_out, CopyInProgress};
use crate::sql::types::{encode_batches, encode_stream, param_pg_type, row_description};

/// Everything pgwire needs to serve one connection.
pub struct ConnectionHandlers {
    /// The session as other sessions see and signal it.
    info: Arc<crate::engine::sessions::SessionInfo>,
    backend: Arc<Backend>,
    cancel: Arc<CancelRequests>,
}

/// CancelRequest: finds the session by its pid and secret and cancels
/// its running statement, wherever that is (planning, waiting for a slot,
/// executing, or sending rows).
pub struct CancelRequests {
    db: Arc<Database>,
}

#[async_trait]
impl pgwire::api::cancel::CancelHandler for CancelRequests {
    async fn on_cancel_request(&self, request: pgwire::messages::cancel::CancelRequest) {
        crate::server::cancel(&self.db, request.pid, &request.secret_key.to_bytes());
    }
}

impl ConnectionHandlers {
    pub fn new(db: Arc<Database>, server: Arc<ServerContext>, peer: SocketAddr) -> Self {
        let mut session = Session::new(db.clone());
        session.stream_results(true);
        let info = session.info().clone();
        let session = Arc::new(Mutex::new(session));
        let logged_in = Arc::new(AtomicBool::new(false));
        ConnectionHandlers {
            info,
            backend: Arc::new(Backend {
                session: session.clone(),
                parser: Arc::new(Parser {
                    session,
                    logged_in: logged_in.clone(),
                }),
                logged_in,
                copy_in: Default::default(),
                db: db.clone(),
                server,
                peer,
                login: Default::default(),
                replication: AtomicBool::new(false),
            }),
            cancel: Arc::new(CancelRequests { db }),
        }
    }

    /// Whether this is a logged-in replication connection.
    pub fn is_replication(&self) -> bool {
        self.backend
            .logged_in
            .load(std::sync::atomic::Ordering::Acquire)
            && self
                .backend
                .replication
                .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn db(&self) -> &Arc<Database> {
        &self.backend.db
    }

    /// Who is on the other end of a replication connection.
    pub fn replication_peer(&self) -> crate::replication::sender::Peer {
        let identity = self.info.identity();
        crate::replication::sender::Peer {
            pid: identity.pid,
            user: identity.user.clone(),
            application_name: identity.application_name.clone(),
            client_addr: Some(self.backend.peer.ip()),
        }
    }

    /// Completes when another session terminated this one.
    pub async fn terminated(&self) {
        self.info.terminated().await
    }

    /// A statement failed before it reached the session (the connection
    /// loop refused it): an open transaction block is failed, as any
    /// error fails it.
    pub async fn note_failure(&self) {
        self.backend.session.lock().await.note_failure();
    }

    /// Whether the session is inside a transaction block.
    pub async fn in_block(&self) -> bool {
        self.backend.session.lock().await.transaction_state() != TxnState::Idle
    }

    /// The next notification for this session (LISTEN), when it comes.
    pub async fn notification(&self) -> crate::engine::sessions::Notification {
        self.info.next_notification().await
    }

    /// How long the session may sit idle in an open transaction block.
    pub async fn idle_in_transaction_timeout(&self) -> Option<std::time::Duration> {
        let session = self.backend.session.lock().await;
        if session.transaction_state() == TxnState::Idle {
            return None;
        }
        let millis: u64 = session
            .settings()
            .get("idle_in_transaction_session_timeout")
            .ok()?
            .parse()
            .ok()?;
        (millis > 0).then(|| std::time::Duration::from_millis(millis))
    }
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.backend.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.backend.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        self.backend.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        self.cancel.clone()
    }

    fn copy_handler(&self) -> Arc<impl CopyHandler> {
        self.backend.clone()
    }
}

#[async_trait]
impl CopyHandler for Backend {
    async fn on_copy_data<C>(&self, _client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // The data is held until CopyDone: it may not outgrow what the
        // tables may hold.
        let limit = self.db.table_memory_limit();
        let failed = {
            let mut slot = self.copy_in.lock();
            let Some(copy) = slot.as_mut() else {
                return Ok(());
            };
            let pushed = if copy.len().saturating_add(data.data.len()) > limit {
                Err(QuiverError::OutOfMemory(format!(
                    "COPY data exceeds the table memory limit of {} MiB (--max-table-memory)",
                    limit >> 20
                )))
            } else {
                // Whole chunks are parsed as they fill up: a malformed row
                // fails the COPY now rather than at CopyDone.
                copy.push(&data.data)
            };
            pushed.err().inspect(|_| {
                slot.take();
            })
        };
        if let Some(e) = failed {
            self.session.lock().await.copy_failed();
            return Err(pg_error(e));
        }
        Ok(())
    }

    /// All data is in: parse it and store the rows, or fail as a whole.
    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(progress) = self.copy_in.lock().take() else {
            return Err(pg_error(QuiverError::Internal(
                "no COPY in progress".into(),
            )));
        };
        let copy = progress.copy.clone();
        let mut session = self.session.lock().await;
        let started = std::time::Instant::now();
        let parsed = tokio::task::spawn_blocking(move || progress.finish())
            .await
            .unwrap_or_else(|e| Err(QuiverError::Internal(format!("COPY parsing failed: {e}"))));
        let parse_ms = started.elapsed().as_millis() as u64;
        let stored = match parsed {
            Ok(batches) => session.copy_finish(&copy, batches).await,
            Err(e) => Err(e),
        };
        tracing::debug!(
            parse_ms,
            store_ms = started.elapsed().as_millis() as u64 - parse_ms,
            "COPY FROM STDIN done"
        );
        let status = wire_status(session.transaction_state());
        match stored {
            Ok(rows) => {
                client.set_transaction_status(status);
                client
                    .send(PgWireBackendMessage::CommandComplete(
                        Tag::new("COPY").with_rows(rows).into(),
                    ))
                    .await?;
                Ok(())
            }
            Err(e) => {
                session.copy_failed();
                client.set_transaction_status(wire_status(session.transaction_state()));
                Err(pg_error(e))
            }
        }
    }

    async fn on_copy_fail<C>(&self, _client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        self.copy_in.lock().take();
        let mut session = self.session.lock().await;
        session.copy_failed();
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "ERROR".into(),
            "57014".into(),
            format!("COPY from stdin failed: {}", fail.message),
        )))
    }
}

pub struct Backend {
    pub(super) session: Arc<Mutex<Session>>,
    pub(super) parser: Arc<Parser>,
    /// The COPY FROM STDIN receiving data, between CopyInResponse and
    /// CopyDone.
    pub(super) copy_in: CopySlot,
    pub(super) db: Arc<Database>,
    pub(super) server: Arc<ServerContext>,
    pub(super) peer: SocketAddr,
    /// Where the login is, between the start-up packet and AuthenticationOk.
    pub(super) login: parking_lot::Mutex<Login>,
    /// Set once the login succeeded; no statement runs before.
    pub(super) logged_in: Arc<AtomicBool>,
    /// A replication connection (`replication=true` at start-up): it
    /// takes replication commands, not SQL.
    pub(super) replication: AtomicBool,
}

/// The error for a statement that arrives before the login completed.
fn not_logged_in() -> PgWireError {
    fatal(
        "08P01",
        "no statement may run before the login completes".into(),
    )
}

type CopySlot = parking_lot::Mutex<Option<CopyInProgress>>;

/// Turns an error into the ErrorResponse the client sees.
pub fn error_info(e: &QuiverError) -> ErrorInfo {
    let mut info = ErrorInfo::new("ERROR".into(), e.sqlstate().code().into(), e.to_string());
    info.detail = e.detail();
    info.hint = e.hint();
    info.where_context = e.context();
    info.position = e.position().map(|p| p.to_string());
    info
}

fn pg_error(e: QuiverError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

/// The settings that format values on the wire.
fn format_options(session: &Session) -> Arc<FormatOptions> {
    crate::sql::types::format_options(session.settings())
}

fn into_response(
    result: Result<StatementResult, QuiverError>,
    format: &Format,
    options: &Arc<FormatOptions>,
    copy_in: &CopySlot,
) -> PgWireResult<Response> {
    match result {
        Ok(StatementResult::Rows {
            schema,
            batches,
            tag,
        }) => {
            let fields = Arc::new(row_description(&schema, format, options)?);
            let rows = encode_batches(fields.clone(), schema, batches);
            let mut response = QueryResponse::new(fields, rows);
            // pgwire appends the row count: `INSERT 0 3`, `UPDATE 3`.
            response.set_command_tag(if tag == "INSERT" { "INSERT 0" } else { tag });
            Ok(Response::Query(response))
        }
        Ok(StatementResult::RowStream { schema, rows, tag }) => {
            let fields = Arc::new(row_description(&schema, format, options)?);
            let rows = encode_stream(fields.clone(), schema, rows, |e| {
                PgWireError::UserError(Box::new(error_info(e)))
            });
            let mut response = QueryResponse::new(fields, rows);
            response.set_command_tag(if tag == "INSERT" { "INSERT 0" } else { tag });
            Ok(Response::Query(response))
        }
        Ok(StatementResult::Command { tag, rows }) => {
            let mut out = Tag::new(tag);
            if tag == "INSERT" {
                out = out.with_oid(0);
            }
            if let Some(rows) = rows {
                out = out.with_rows(rows);
            }
            Ok(Response::Execution(out))
        }
        Ok(StatementResult::TransactionControl { tag, starts: true }) => {
            Ok(Response::TransactionStart(Tag::new(tag)))
        }
        Ok(StatementResult::TransactionControl { tag, starts: false }) => {
            Ok(Response::TransactionEnd(Tag::new(tag)))
        }
        Ok(StatementResult::Empty) => Ok(Response::EmptyQuery),
        Ok(StatementResult::CopyIn(copy)) => {
            let format = i8::from(copy.options.format == CopyFormat::Binary);
            let columns = copy.columns.fields().len();
            *copy_in.lock() = Some(CopyInProgress::new(copy));
            Ok(Response::CopyIn(CopyResponse::new(
                format,
                columns,
                stream::empty(),
            )))
        }
        Ok(StatementResult::CopyOut(out)) => {
            let format = i8::from(out.options.format == CopyFormat::Binary);
            let columns = out.schema.fields().len();
            let messages = encode_copy_out(out, options)?;
            Ok(Response::CopyOut(CopyResponse::new(
                format,
                columns,
                stream::iter(messages.into_iter().map(|m| Ok(CopyData::new(m)))),
            )))
        }
        Err(e) => Ok(Response::Error(Box::new(error_info(&e)))),
    }
}

/// Tells the client about reported settings that a statement changed.
/// What the last statements left for the client besides their results:
/// changed parameters (ParameterStatus) and notices (NoticeResponse).
async fn send_session_messages<C>(client: &mut C, session: &mut Session) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    for (name, value) in session.take_changed_settings() {
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name.to_string(),
                value,
            )))
            .await?;
    }
    for notice in session.take_notices() {
        let mut info = ErrorInfo::new(
            notice.severity.to_string(),
            notice.code.to_string(),
            notice.message,
        );
        info.detail = notice.detail;
        client
            .feed(PgWireBackendMessage::NoticeResponse(info.into()))
            .await?;
    }
    Ok(())
}

/// ReadyForQuery's status from the session, which knows it best.
fn wire_status(state: TxnState) -> TransactionStatus {
    match state {
        TxnState::Idle => TransactionStatus::Idle,
        TxnState::InTransaction => TransactionStatus::Transaction,
        TxnState::Failed => TransactionStatus::Error,
    }
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    /// pgwire derives the status it reports from the status before the
    /// query and the responses; start it from the session's own state (a
    /// failed block counts as open, so that an error marks it failed again
    /// and ROLLBACK TO SAVEPOINT can clear it).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !self.logged_in.load(Ordering::Acquire) {
            return Err(not_logged_in());
        }
        let state = self.session.lock().await.transaction_state();
        let empty = query.query.chars().all(|c| c == ';' || c.is_whitespace());
        let start = match state {
            TxnState::Failed if !empty => TransactionStatus::Transaction,
            other => wire_status(other),
        };
        client.set_transaction_status(start);
        self._on_query(client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let mut session = self.session.lock().await;
        let results = session.execute_sql(query).await;
        let options = format_options(&session);
        send_session_messages(client, &mut session).await?;
        for name in session.take_deallocated() {
            client.portal_store().rm_statement(&name);
        }
        results
            .into_iter()
            .map(|r| {
                // A FETCH from a BINARY cursor answers in binary.
                let format = match &r {
                    Ok(StatementResult::Rows { schema, .. }) if is_binary_cursor(schema) => {
                        Format::UnifiedBinary
                    }
                    _ => Format::UnifiedText,
                };
                into_response(r, &format, &options, &self.copy_in)
            })
            .collect()
    }
}

/// Parses and plans statements for the extended protocol.
pub struct Parser {
    session: Arc<Mutex<Session>>,
    logged_in: Arc<AtomicBool>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Arc<Prepared>;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Self::Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if !self.logged_in.load(Ordering::Acquire) {
            return Err(not_logged_in());
        }
        let mut session = self.session.lock().await;
        match session.prepare(sql).await {
            Ok(prepared) => Ok(Some(Arc::new(prepared))),
            Err(e) => {
                session.note_failure();
                Err(pg_error(e))
            }
        }
    }

    fn get_parameter_types(&self, stmt: &Self::Statement) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .param_fields
            .iter()
            .map(|f| param_pg_type(f.as_ref()))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Self::Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let Some(schema) = &stmt.result_schema else {
            return Ok(Vec::new());
        };
        // Describe of a statement happens before Bind chooses formats: text.
        let format = column_format.cloned().unwrap_or(Format::UnifiedText);
        let options = Arc::new(FormatOptions::default());
        row_description(schema, &format, &options)
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = Arc<Prepared>;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Self::QueryParser> {
        self.parser.clone()
    }

    /// Describe of a statement: ParameterDescription, then NoData for a
    /// statement without result rows (pgwire would send an empty
    /// RowDescription when there are parameters, which pgjdbc takes for a
    /// query returning rows).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type != TARGET_TYPE_BYTE_STATEMENT {
            // A portal that is a cursor DECLAREd in SQL (psycopg 3's named
            // cursors describe it before they FETCH).
            let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
            if client.portal_store().get_portal(name).is_none() {
                let schema = self.session.lock().await.cursor_schema(name);
                if let Some(schema) = schema {
                    let options = Arc::new(FormatOptions::default());
                    let fields = row_description(&schema, &Format::UnifiedText, &options)?;
                    client
                        .send(PgWireBackendMessage::RowDescription(RowDescription::new(
                            fields.iter().map(Into::into).collect(),
                        )))
                        .await?;
                    return Ok(());
                }
            }
            return self._on_describe(client, message).await;
        }
        let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) else {
            return self._on_describe(client, message).await;
        };
        let described = self.do_describe_statement(client, &stmt).await?;
        client
            .send(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(described.parameters.iter().map(|t| t.oid()).collect()),
            ))
            .await?;
        if described.fields.is_empty() {
            client
                .send(PgWireBackendMessage::NoData(NoData::new()))
                .await?;
        } else {
            client
                .send(PgWireBackendMessage::RowDescription(RowDescription::new(
                    described.fields.iter().map(Into::into).collect(),
                )))
                .await?;
        }
        Ok(())
    }

    /// Execute, as pgwire's, except that rows are sent as the plan
    /// produces them (pgwire's portal fetch collects them all first):
    /// with a row limit the portal keeps the rest of the stream for the
    /// next Execute.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        let portal_name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME);
        let Some(Entry::Value(portal)) = client.portal_store().get_portal(portal_name) else {
            // Empty or unknown portals: pgwire's answers.
            return self._on_execute(client, message).await;
        };
        let max_rows = usize::try_from(message.max_rows).unwrap_or(0);
        let state = portal.state();
        let started = matches!(*state.lock().await, PortalExecutionState::Initial);
        let mut status = client.transaction_status();
        client.set_state(PgWireConnectionState::QueryInProgress);
        if started {
            let response =
                ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows).await?;
            match response {
                Response::Query(rows) => {
                    *state.lock().await = PortalExecutionState::Suspended(rows);
                }
                Response::EmptyQuery => {
                    client
                        .feed(PgWireBackendMessage::EmptyQueryResponse(
                            pgwire::messages::response::EmptyQueryResponse::new(),
                        ))
                        .await?;
                }
                Response::Execution(tag) => {
                    pgwire::api::query::send_execution_response(client, tag).await?
                }
                Response::TransactionStart(tag) => {
                    pgwire::api::query::send_execution_response(client, tag).await?;
                    status = status.to_in_transaction_state();
                }
                Response::TransactionEnd(tag) => {
                    pgwire::api::query::send_execution_response(client, tag).await?;
                    status = status.to_idle_state();
                    client.portal_store().rm_portal(pgwire::api::DEFAULT_NAME);
                }
                Response::Error(e) => return Err(PgWireError::UserError(e)),
                Response::CopyIn(copy) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_in_response(client, copy).await?;
                }
                Response::CopyOut(copy) => {
                    pgwire::api::copy::send_copy_out_response(client, copy).await?;
                }
                Response::CopyBoth(copy) => {
                    client.set_state(PgWireConnectionState::CopyInProgress(true));
                    pgwire::api::copy::send_copy_both_response(client, copy).await?;
                }
            }
        }
        let mut state = state.lock().await;
        if let PortalExecutionState::Suspended(rows) = &mut *state {
            let tag = rows.command_tag().to_owned();
            let mut sent = 0;
            let mut more = true;
            while max_rows == 0 || sent < max_rows {
                match rows.data_rows().next().await {
                    Some(row) => {
                        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                        sent += 1;
                    }
                    None => {
                        more = false;
                        break;
                    }
                }
            }
            if more {
                client
                    .send(PgWireBackendMessage::PortalSuspended(
                        pgwire::messages::extendedquery::PortalSuspended::new(),
                    ))
                    .await?;
            } else {
                *state = PortalExecutionState::Finished;
                client
                    .send(PgWireBackendMessage::CommandComplete(
                        Tag::new(&tag).with_rows(sent).into(),
                    ))
                    .await?;
            }
        } else if !started {
            // Executed to the end already: no more rows.
            client
                .send(PgWireBackendMessage::CommandComplete(
                    Tag::new("SELECT").with_rows(0).into(),
                ))
                .await?;
        }
        drop(state);
        if !matches!(client.state(), PgWireConnectionState::CopyInProgress(_)) {
            client.set_state(PgWireConnectionState::ReadyForQuery);
            client.set_transaction_status(status);
        }
        Ok(())
    }

    /// ReadyForQuery after Sync reports the session's transaction state.
    async fn on_sync<C>(&self, client: &mut C, _message: SyncMessage) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = wire_status(self.session.lock().await.transaction_state());
        client.set_transaction_status(status);
        client.portal_store().rm_portal(pgwire::api::DEFAULT_NAME);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                status,
            )))
            .await?;
        client.flush().await?;
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Self::Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !self.logged_in.load(Ordering::Acquire) {
            return Err(not_logged_in());
        }
        let mut session = self.session.lock().await;
        let params = match decode_parameters(portal) {
            Ok(params) => params,
            Err(e) => {
                session.note_failure();
                return Err(e);
            }
        };
        let result = session
            .execute_prepared(&portal.statement.statement, Some(params))
            .await;
        let options = format_options(&session);
        send_session_messages(client, &mut session).await?;
        for name in session.take_deallocated() {
            client.portal_store().rm_statement(&name);
        }
        match into_response(
            result,
            &portal.result_column_format,
            &options,
            &self.copy_in,
        )? {
            // pgwire sends ErrorResponse for a returned error, which in the
            // extended protocol must also skip to Sync: return it as Err.
            Response::Error(info) => Err(PgWireError::UserError(info)),
            other => Ok(other),
        }
    }
}
