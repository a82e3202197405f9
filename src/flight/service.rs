//! The Flight SQL calls, each on a QuiverDB session: login (Handshake),
//! statements (GetFlightInfo runs them, DoGet streams their rows),
//! prepared statements with parameters, transactions and savepoints,
//! bulk ingest, cancel, and the catalog listings.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;

use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionBeginSavepointRequest, ActionBeginSavepointResult, ActionBeginTransactionRequest,
    ActionBeginTransactionResult, ActionCancelQueryRequest, ActionCancelQueryResult,
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, ActionEndSavepointRequest, ActionEndTransactionRequest,
    Any, CommandGetCatalogs, CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys,
    CommandGetImportedKeys, CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes,
    CommandGetTables, CommandGetXdbcTypeInfo, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, EndTransaction, ProstMessageExt, SqlInfo,
    TableExistsOption, TableNotExistOption, TicketStatementQuery,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, FlightData, FlightDescriptor,
    FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage, SchemaAsIpc,
    Ticket,
};
use base64::Engine;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::common::{ParamValues, ScalarValue};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::arrow_out::{
    compact, flight_data, own_bytes, plain_type, result_batch, result_schema, table_schema,
};
use super::metadata::{self, SQL_INFO, XDBC_TYPES};
use super::sessions::{random_name, FlightSession, Pending, PreparedStatement, Registry, Rows};
use super::status::{refused, status, with_sqlstate};
use crate::engine::stage::Stager;
use crate::engine::Database;
use crate::error::QuiverError;
use crate::server::{Admission, Proof};
use crate::session::{Session, StatementResult, TxnState};
use crate::sql::copy::CopyRows;
use crate::sql::copy_options::CopyIn;
use crate::sql::placeholders::number_question_marks;

/// The user of a call that names none, where no password is needed.
const DEFAULT_USER: &str = "quiver";

type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// The Flight SQL service of one server.
pub struct QuiverFlight {
    pub(super) db: Arc<Database>,
    pub(super) admission: Admission,
    /// Whether the endpoint speaks TLS (then every call came over it).
    pub(super) tls: bool,
    pub(super) registry: Arc<Registry>,
}

/// Counts a call in the metrics and passes its result on.
fn counted<T>(call: &'static str, result: Result<T, Status>) -> Result<T, Status> {
    crate::metrics::metrics().flight_request(call, result.is_ok());
    result
}

fn peer_ip<T>(request: &Request<T>) -> IpAddr {
    request
        .remote_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]))
}

/// The client program, from the gRPC user agent, as application_name.
fn user_agent<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(63).collect())
}

fn unauthenticated(message: &str) -> Status {
    with_sqlstate("28000", message, None, None)
}

/// The last result of a run of statements (the error, if one failed).
fn last(
    mut results: Vec<crate::error::Result<StatementResult>>,
) -> Result<StatementResult, Status> {
    results
        .pop()
        .unwrap_or(Ok(StatementResult::Empty))
        .map_err(|e| status(&e))
}

/// How many rows a statement changed (0 for DDL and the like; a query's
/// rows counted).
async fn affected(result: StatementResult) -> Result<i64, Status> {
    match result.collected().await.map_err(|e| status(&e))? {
        StatementResult::Command { rows, .. } => Ok(rows.unwrap_or(0) as i64),
        StatementResult::Rows { batches, .. } => {
            Ok(batches.iter().map(|b| b.num_rows() as i64).sum())
        }
        StatementResult::CopyIn(_) => Err(copy_in_refused()),
        _ => Ok(0),
    }
}

fn copy_in_refused() -> Status {
    with_sqlstate(
        "0A000",
        "COPY FROM STDIN needs the PostgreSQL protocol",
        None,
        Some("over Flight SQL, send the rows with bulk ingest (CommandStatementIngest; ADBC's adbc_ingest)"),
    )
}

/// An identifier quoted for SQL text.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A string literal for SQL text.
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// A schema in the IPC form FlightInfo and prepared statements carry.
fn schema_bytes(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(message.0)
}

/// The record batches (and their schema) a DoPut carries; `fits` is
/// asked after each batch whether the bytes read so far may be held.
async fn read_batches(
    stream: PeekableFlightDataStream,
    fits: impl Fn(usize) -> Result<(), Status> + Send + 'static,
) -> Result<(Option<SchemaRef>, Vec<RecordBatch>), Status> {
    // The first message may carry only the command (no Arrow message).
    let messages = stream
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut decoder = FlightRecordBatchStream::new_from_flight_data(messages);
    // Each batch is copied out of its message on another thread while the
    // next message arrives.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let compacting = tokio::task::spawn_blocking(move || {
        let mut batches = Vec::new();
        let mut bytes = 0;
        while let Some(batch) = rx.blocking_recv() {
            let batch = compact(&batch).map_err(|e| Status::internal(e.to_string()))?;
            bytes += batch.get_array_memory_size();
            fits(bytes)?;
            batches.push(batch);
        }
        Ok::<_, Status>(batches)
    });
    let mut received = Ok(());
    while let Some(batch) = decoder.next().await {
        match batch {
            // A send fails only when the compacting thread stopped on an
            // error, which it returns below.
            Ok(batch) => {
                if tx.send(batch).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                received = Err(Status::from(e));
                break;
            }
        }
    }
    drop(tx);
    let batches = compacting
        .await
        .map_err(|e| Status::internal(format!("reading the batches failed: {e}")))??;
    received?;
    Ok((decoder.schema().cloned(), batches))
}

/// Parameter rows bound at once may take this many bytes.
const MAX_PARAMETER_BYTES: usize = 256 << 20;

fn parameters_fit(bytes: usize) -> Result<(), Status> {
    if bytes > MAX_PARAMETER_BYTES {
        return Err(with_sqlstate(
            "54000",
            &format!(
                "the bound parameters take more than {} MiB; bind fewer rows at once, or ingest them",
                MAX_PARAMETER_BYTES >> 20
            ),
            None,
            None,
        ));
    }
    Ok(())
}

/// Each row of the bound batches as the values of `$1..$n`, cast to the
/// types the statement gives its parameters.
fn parameter_rows(
    batches: &[RecordBatch],
    types: &[Option<datafusion::arrow::datatypes::FieldRef>],
) -> Result<Vec<ParamValues>, Status> {
    let mut rows = Vec::new();
    for batch in batches {
        if batch.num_columns() != types.len() {
            return Err(with_sqlstate(
                "08P01",
                &format!(
                    "bind message supplies {} parameters, but prepared statement requires {}",
                    batch.num_columns(),
                    types.len()
                ),
                None,
                None,
            ));
        }
        let columns = batch
            .columns()
            .iter()
            .zip(types)
            .map(|(column, field)| match field {
                Some(field) if field.data_type() != column.data_type() => {
                    cast(column, field.data_type())
                        .map_err(|e| status(&crate::session::from_datafusion(e.into())))
                }
                _ => Ok(column.clone()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let values = columns
                .iter()
                .map(|c| ScalarValue::try_from_array(c, row).map(Into::into))
                .collect::<datafusion::error::Result<Vec<_>>>()
                .map_err(|e| status(&crate::session::from_datafusion(e)))?;
            rows.push(ParamValues::List(values));
        }
    }
    Ok(rows)
}

/// A one-batch answer (a catalog listing) streamed in `schema`.
fn answer<E: std::fmt::Display>(
    schema: SchemaRef,
    batch: Result<RecordBatch, E>,
) -> Result<Response<DoGetStream>, Status> {
    let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async { Ok(batch) }))
            .map_err(Status::from),
    )))
}

/// A FlightInfo whose ticket is the command itself (catalog listings:
/// nothing runs until DoGet).
fn info_for_command<C: ProstMessageExt>(
    command: &C,
    schema: &Schema,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let ticket = Ticket::new(command.as_any().encode_to_vec());
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(ticket))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

impl QuiverFlight {
    /// Starts a session for `user` after checking the login rules
    /// (`keep`: it gets a bearer token and lives across calls).
    async fn login(
        &self,
        user: Option<String>,
        password: Option<String>,
        peer: IpAddr,
        application: Option<String>,
        keep: bool,
    ) -> Result<(String, Arc<FlightSession>), Status> {
        let user = user.unwrap_or_else(|| DEFAULT_USER.to_string());
        let proof = self
            .admission
            .proof(&self.db, &user, peer, self.tls)
            .map_err(|r| refused(&r))?;
        let implicit_superuser = match proof {
            Proof::Trust { implicit_superuser } => implicit_superuser,
            Proof::Password => {
                let Some(password) = password else {
                    return Err(unauthenticated(&format!(
                        "password authentication failed for user \"{user}\": this server requires a user name and password (HTTP Basic credentials in the Flight handshake)"
                    )));
                };
                let (db, admission, name) = (self.db.clone(), self.admission.clone(), user.clone());
                let matches = tokio::task::spawn_blocking(move || {
                    admission.password_matches(&db, &name, &password)
                })
                .await
                .unwrap_or(false);
                if !matches {
                    return Err(refused(&self.admission.password_failed(&user, peer).await));
                }
                false
            }
        };
        // The new session counts among the live ones.
        let mut session = Session::new(self.db.clone());
        let admitted = self
            .admission
            .admit(
                &self.db,
                &user,
                implicit_superuser,
                self.db.sessions.live().len(),
            )
            .map_err(|r| refused(&r))?;
        let pid = random_pid();
        session.set_identity(
            &admitted.user,
            &self.admission.database,
            pid,
            implicit_superuser,
        );
        session.set_client(Some(peer), "flight sql");
        session.stream_results(true);
        if let Some(application) = application {
            let _ = session.apply_startup_setting("application_name", &application);
        }
        if keep {
            tracing::info!(%user, %peer, "Flight SQL session started");
        }
        Ok(self.registry.open(session, user, peer, keep))
    }

    /// The session a call runs in: the one its bearer token names; a new
    /// one for HTTP Basic credentials; where no password is needed, a
    /// new one for a call that names none (it ends with the call).
    async fn caller<T>(&self, request: &Request<T>) -> Result<Arc<FlightSession>, Status> {
        let peer = peer_ip(request);
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        match header {
            None => {
                let (_, session) = self
                    .login(None, None, peer, user_agent(request), false)
                    .await?;
                Ok(session)
            }
            Some(header) => {
                if let Some(token) = strip_scheme(&header, "Bearer") {
                    return self.registry.session(token).ok_or_else(|| {
                        unauthenticated("the session of this token has ended (closed, idle too long, terminated, or the server restarted); log in again")
                    });
                }
                let (user, password) = basic_credentials(&header)?;
                let (_, session) = self
                    .login(Some(user), Some(password), peer, user_agent(request), false)
                    .await?;
                Ok(session)
            }
        }
    }

    /// Fails when a command names a transaction the session does not
    /// have open.
    fn check_transaction(
        &self,
        session: &FlightSession,
        transaction: Option<&[u8]>,
    ) -> Result<(), Status> {
        match transaction {
            Some(id) if session.transaction.lock().as_deref() != Some(id) => Err(with_sqlstate(
                "25P01",
                "the transaction this command names is not open in this session (it ended, or belongs to another session)",
                None,
                None,
            )),
            _ => Ok(()),
        }
    }

    /// Keeps a statement's result for its DoGet and describes it.
    fn result_info(
        &self,
        owner: Arc<FlightSession>,
        result: StatementResult,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        // A command's FlightInfo counts the rows it changed (the DB-API's
        // rowcount); a query's rows are not counted before they are read.
        let total = match &result {
            StatementResult::Command { rows: Some(n), .. } => *n as i64,
            _ => -1,
        };
        let (schema, rows) = match result {
            StatementResult::Rows {
                schema, batches, ..
            } => (schema, Rows::Batches(batches)),
            StatementResult::RowStream { schema, rows, .. } => (schema, Rows::Stream(rows)),
            StatementResult::CopyOut(out) => (out.schema, Rows::Batches(out.batches)),
            StatementResult::CopyIn(_) => return Err(copy_in_refused()),
            _ => (Arc::new(Schema::empty()), Rows::Batches(Vec::new())),
        };
        let schema = result_schema(&schema, &self.admission.database);
        let handle = self.registry.keep(owner, schema.clone(), rows);
        let ticket = TicketStatementQuery {
            statement_handle: handle.into(),
        };
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(
                FlightEndpoint::new().with_ticket(Ticket::new(ticket.as_any().encode_to_vec())),
            )
            .with_descriptor(descriptor)
            .with_total_records(total)
            .with_ordered(true);
        Ok(Response::new(info))
    }

    /// Streams a kept result: batches as the plan produces them, in the
    /// announced schema, until the client has them all, goes away (the
    /// plan is dropped with the stream) or cancels.
    fn stream(&self, handle: Vec<u8>, pending: Pending) -> DoGetStream {
        let Pending {
            owner,
            schema,
            rows,
            cancel,
            ..
        } = pending;
        let batches: Pin<Box<dyn Stream<Item = Result<RecordBatch, FlightError>> + Send>> =
            match rows {
                Rows::Stream(stream) => {
                    Box::pin(stream.map(|batch| batch.map_err(|e| FlightError::from(status(&e)))))
                }
                Rows::Batches(batches) => {
                    Box::pin(futures::stream::iter(batches.into_iter().map(Ok)))
                }
            };
        let out = schema.clone();
        let guard = SentGuard {
            registry: self.registry.clone(),
            handle,
        };
        let batches = batches.map(move |batch| {
            let _ = &guard;
            owner.touch();
            if owner.info.is_terminated() {
                return Err(FlightError::from(with_sqlstate(
                    "57P01",
                    "terminating connection due to administrator command",
                    None,
                    None,
                )));
            }
            batch.and_then(|b| result_batch(&b, &out).map_err(FlightError::Arrow))
        });
        let stopped = cancel.clone();
        let batches = batches
            .take_until(cancel.cancelled_owned())
            .chain(futures::stream::iter(
                std::iter::from_fn(move || {
                    stopped
                        .is_cancelled()
                        .then(|| Err(FlightError::from(status(&QuiverError::QueryCanceled))))
                })
                .take(1),
            ));
        Box::pin(flight_data(schema, batches).map_err(Status::from))
    }

    /// Runs SQL text in a session; returns the last statement's result.
    async fn run(&self, session: &FlightSession, sql: &str) -> Result<StatementResult, Status> {
        let mut guard = session.session.lock().await;
        last(guard.execute_sql(sql).await)
    }

    /// The rows of a catalog query, as text.
    async fn catalog_rows(
        &self,
        session: &FlightSession,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, Status> {
        match self
            .run(session, sql)
            .await?
            .collected()
            .await
            .map_err(|e| status(&e))?
        {
            StatementResult::Rows {
                schema, batches, ..
            } => crate::sql::types::text_rows(&schema, batches)
                .map_err(|e| Status::internal(e.to_string())),
            _ => Ok(Vec::new()),
        }
    }

    /// Runs a prepared statement once per bound parameter row (once
    /// without parameters when none are bound). A query's rows stream
    /// when there is one run; several runs' rows are collected together.
    async fn run_prepared(
        &self,
        session: &FlightSession,
        statement: &PreparedStatement,
        params: Vec<ParamValues>,
    ) -> Result<StatementResult, Status> {
        let mut guard = session.session.lock().await;
        if params.len() <= 1 {
            return guard
                .execute_prepared(&statement.prepared, params.into_iter().next())
                .await
                .map_err(|e| status(&e));
        }
        let mut all = Vec::new();
        let mut rows_schema = None;
        let mut changed = 0;
        for row in params {
            let result = guard
                .execute_prepared(&statement.prepared, Some(row))
                .await
                .map_err(|e| status(&e))?
                .collected()
                .await
                .map_err(|e| status(&e))?;
            match result {
                StatementResult::Rows {
                    schema, batches, ..
                } => {
                    rows_schema = Some(schema);
                    all.extend(batches);
                }
                StatementResult::Command { rows, .. } => changed += rows.unwrap_or(0),
                _ => {}
            }
        }
        Ok(match rows_schema {
            Some(schema) => StatementResult::Rows {
                schema,
                batches: all,
                tag: "SELECT",
            },
            None => StatementResult::Command {
                tag: "UPDATE",
                rows: Some(changed),
            },
        })
    }

    /// The statement a handle names, for its owner.
    fn prepared(&self, handle: &[u8], user: &str) -> Result<Arc<PreparedStatement>, Status> {
        self.registry.prepared(handle, user).ok_or_else(|| {
            with_sqlstate(
                "26000",
                "prepared statement does not exist (it was closed, or idle too long)",
                None,
                None,
            )
        })
    }

    async fn get_flight_info_statement_inner(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.caller(&request).await?;
        self.check_transaction(&session, query.transaction_id.as_deref())?;
        let result = self.run(&session, &query.query).await?;
        self.result_info(session, result, request.into_inner())
    }

    async fn ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.caller(&request).await?;
        self.check_transaction(&session, command.transaction_id.as_deref())?;
        if command.temporary {
            return Err(with_sqlstate(
                "0A000",
                "temporary tables are not supported; ingest into a regular table",
                None,
                None,
            ));
        }
        if let Some(catalog) = command.catalog.as_deref() {
            if catalog != self.admission.database {
                return Err(with_sqlstate(
                    "3D000",
                    &format!("database \"{catalog}\" does not exist"),
                    None,
                    None,
                ));
            }
        }
        let options = command.table_definition_options.unwrap_or_default();
        let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
            .unwrap_or(TableNotExistOption::Unspecified);
        let if_exists = TableExistsOption::try_from(options.if_exists)
            .unwrap_or(TableExistsOption::Unspecified);
        let target = IngestTarget {
            table: &command.table,
            schema: command.schema.as_deref(),
            if_not_exist,
            if_exists,
        };
        let mut guard = session.session.lock().await;
        // A REPLACE keeps the old table until the new rows are in: outside
        // a block it gets one of its own.
        let own_block = matches!(guard.transaction_state(), TxnState::Idle)
            && if_exists == TableExistsOption::Replace;
        if own_block {
            last(guard.execute_sql("BEGIN").await)?;
        }
        let in_block = !matches!(guard.transaction_state(), TxnState::Idle);
        let stored = ingest_rows(
            &self.db,
            &mut guard,
            &target,
            request.into_inner(),
            in_block,
        )
        .await;
        match stored {
            Ok(rows) if own_block => {
                last(guard.execute_sql("COMMIT").await)?;
                Ok(rows as i64)
            }
            Ok(rows) => Ok(rows as i64),
            Err(e) => {
                if own_block {
                    let _ = guard.execute_sql("ROLLBACK").await;
                } else if in_block {
                    guard.copy_failed();
                }
                Err(e)
            }
        }
    }
}

fn no_schema() -> Status {
    with_sqlstate("08P01", "bulk ingest sent no Arrow schema", None, None)
}

/// Where a bulk ingest puts its rows.
struct IngestTarget<'a> {
    table: &'a str,
    schema: Option<&'a str>,
    if_not_exist: TableNotExistOption,
    if_exists: TableExistsOption,
}

/// Creates, replaces or finds the ingest's table; its qualified name, and
/// whether it was created.
async fn ingest_table(
    session: &mut Session,
    target: &IngestTarget<'_>,
    columns: &SchemaRef,
) -> Result<(String, bool), Status> {
    let table = target.table;
    let schema_name = match target.schema {
        Some(name) => name.to_string(),
        None => session.default_schema(),
    };
    let qualified = format!("{}.{}", quote_ident(&schema_name), quote_ident(table));
    let exists = session.relation_schema(&schema_name, table).is_some();
    let create = match (exists, target.if_exists, target.if_not_exist) {
        (true, TableExistsOption::Append, _) => false,
        (true, TableExistsOption::Replace, _) => {
            last(
                session
                    .execute_sql(&format!("DROP TABLE {qualified}"))
                    .await,
            )?;
            true
        }
        (true, _, _) => {
            return Err(status(&QuiverError::DuplicateTable(table.to_string())));
        }
        (false, _, TableNotExistOption::Create) => true,
        (false, _, _) => return Err(status(&QuiverError::UndefinedTable(table.to_string()))),
    };
    if create {
        let definitions = columns
            .fields()
            .iter()
            .map(|f| {
                let sql_type = sql_type(f.data_type()).ok_or_else(|| {
                    with_sqlstate(
                        "0A000",
                        &format!(
                            "column \"{}\" has Arrow type {}, which has no QuiverDB column type",
                            f.name(),
                            f.data_type()
                        ),
                        None,
                        None,
                    )
                })?;
                let not_null = if f.is_nullable() { "" } else { " NOT NULL" };
                Ok(format!("{} {sql_type}{not_null}", quote_ident(f.name())))
            })
            .collect::<Result<Vec<_>, Status>>()?;
        last(
            session
                .execute_sql(&format!(
                    "CREATE TABLE {qualified} ({})",
                    definitions.join(", ")
                ))
                .await,
        )?;
    }
    Ok((qualified, create))
}

/// Starts a COPY of the ingest's columns into its table (privileges are
/// checked here, as for any COPY).
async fn start_copy(
    session: &mut Session,
    qualified: &str,
    columns: &SchemaRef,
) -> Result<CopyIn, Status> {
    let names = columns
        .fields()
        .iter()
        .map(|f| quote_ident(f.name()))
        .collect::<Vec<_>>()
        .join(", ");
    match last(
        session
            .execute_sql(&format!("COPY {qualified} ({names}) FROM STDIN"))
            .await,
    )? {
        StatementResult::CopyIn(copy) => Ok(copy),
        _ => Err(Status::internal("COPY FROM STDIN did not start")),
    }
}

/// The rows of a bulk ingest. The table is created (or found) when the
/// first batch arrives; then each group of received batches is copied out
/// of its messages on a worker while the next messages arrive. Outside a
/// transaction block the groups are also staged there (conformed, encoded
/// for the WAL, made into compressed segments), the rows are appended in
/// one commit at the end, and a table made here is dropped again when the
/// rows fail; inside one, they join the block as one statement.
async fn ingest_rows(
    db: &Arc<Database>,
    session: &mut Session,
    target: &IngestTarget<'_>,
    stream: PeekableFlightDataStream,
    in_block: bool,
) -> Result<usize, Status> {
    let messages = stream
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut decoder = FlightRecordBatchStream::new_from_flight_data(messages);
    let first = decoder.next().await.transpose().map_err(Status::from)?;
    let Some(schema) = decoder.schema().cloned() else {
        return Err(no_schema());
    };
    let (qualified, created) = ingest_table(session, target, &schema).await?;
    let stored = async {
        let copy = start_copy(session, &qualified, &schema).await?;
        let stored = match stage_batches(db, &copy, first, &mut decoder).await? {
            CopyRows::Batches(batches) => session.copy_arrow(&copy, batches).await,
            staged => session.copy_finish(&copy, staged).await,
        };
        stored.map_err(|e| status(&e))
    }
    .await;
    match stored {
        Ok(rows) => Ok(rows),
        Err(e) => {
            if created && !in_block {
                let _ = session
                    .execute_sql(&format!("DROP TABLE IF EXISTS {qualified}"))
                    .await;
            }
            Err(e)
        }
    }
}

/// Batches are staged in groups of at least this many rows (or bytes,
/// below), so that small client batches still make full segments.
const STAGE_ROWS: usize = 64 * 1024;
const STAGE_BYTES: usize = 16 << 20;

/// Receives the rest of an ingest's batches (`first` is the first) and
/// stages them for the COPY's table, a group per worker while the next
/// arrive; plain batches when the COPY cannot stage (a transaction block,
/// a table with foreign keys, columns in another order).
async fn stage_batches(
    db: &Arc<Database>,
    copy: &CopyIn,
    first: Option<RecordBatch>,
    decoder: &mut FlightRecordBatchStream,
) -> Result<CopyRows, Status> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut staging = std::collections::VecDeque::new();
    let mut rows = CopyRows::Batches(Vec::new());
    let mut bytes = 0;
    let mut group: Vec<RecordBatch> = Vec::new();
    let (mut group_rows, mut group_bytes) = (0, 0);
    let mut next = first;
    loop {
        let ended = next.is_none();
        if let Some(batch) = next.take() {
            group_rows += batch.num_rows();
            // Its buffers are slices of the whole message.
            group_bytes += own_bytes(&batch);
            group.push(batch);
        }
        if !group.is_empty() && (ended || group_rows >= STAGE_ROWS || group_bytes >= STAGE_BYTES) {
            (group_rows, group_bytes) = (0, 0);
            // One group in flight per worker: wait for the oldest beyond
            // that (which also slows the client down to the staging rate).
            while staging.len() >= workers {
                let done = staging.pop_front().expect("a group in flight");
                add_staged(db, &mut rows, &mut bytes, done).await?;
            }
            let batches = std::mem::take(&mut group);
            let stager = copy.stager.clone();
            staging.push_back(crate::workers::spawn_awaited(move || {
                stage_group(stager.as_ref(), batches)
            }));
        }
        if ended {
            break;
        }
        next = decoder.next().await.transpose().map_err(Status::from)?;
    }
    while let Some(done) = staging.pop_front() {
        add_staged(db, &mut rows, &mut bytes, done).await?;
    }
    Ok(rows)
}

/// A group of received batches in buffers of their own (not the
/// messages'), as one batch, staged when there is a stager.
fn stage_group(
    stager: Option<&Stager>,
    batches: Vec<RecordBatch>,
) -> crate::error::Result<CopyRows> {
    let mut compacted = batches.iter().map(compact).collect::<Result<Vec<_>, _>>()?;
    let batch = match compacted.len() {
        1 => compacted.pop().expect("one batch"),
        _ => concat_batches(&compacted[0].schema(), &compacted)?,
    };
    Ok(match stager {
        Some(stager) => CopyRows::Staged(vec![stager.stage(vec![batch])?]),
        None => CopyRows::Batches(vec![batch]),
    })
}

/// Adds a staged group to the ingest's rows, within the table memory
/// limit.
async fn add_staged(
    db: &Database,
    rows: &mut CopyRows,
    bytes: &mut usize,
    done: impl std::future::Future<Output = std::thread::Result<crate::error::Result<CopyRows>>>,
) -> Result<(), Status> {
    let part = done
        .await
        .map_err(|_| Status::internal("staging the ingested rows failed"))?
        .map_err(|e| status(&e))?;
    *bytes += part.memory_bytes();
    db.check_table_memory(None, *bytes)
        .map_err(|e| status(&e))?;
    rows.append(part).map_err(|e| status(&e))
}

/// The column type CREATE TABLE gives an ingested Arrow column.
fn sql_type(data_type: &DataType) -> Option<String> {
    Some(match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "numeric(20, 0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) if *p <= 38 && *s >= 0 => {
            format!("numeric({p}, {s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null => "text".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time".into(),
        DataType::Timestamp(_, None) => "timestamp".into(),
        DataType::Timestamp(_, Some(_)) => "timestamptz".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::Dictionary(_, values) => return sql_type(values),
        DataType::List(item) | DataType::LargeList(item) => {
            let element = sql_type(item.data_type())?;
            format!("{element}[]")
        }
        _ => return None,
    })
}

/// `Bearer xyz` → `xyz` (the scheme's case does not matter).
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// The user and password of an HTTP Basic header.
fn basic_credentials(header: &str) -> Result<(String, String), Status> {
    let encoded = strip_scheme(header, "Basic").ok_or_else(|| {
        unauthenticated("unsupported authorization header: send HTTP Basic credentials in the handshake, then the Bearer token it returns")
    })?;
    // Go's Flight client (ADBC) leaves the padding off.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine
        .decode(encoded)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| unauthenticated("malformed HTTP Basic credentials"))?;
    let (user, password) = decoded
        .split_once(':')
        .ok_or_else(|| unauthenticated("malformed HTTP Basic credentials"))?;
    Ok((user.to_string(), password.to_string()))
}

/// A pid for pg_stat_activity and pg_backend_pid(): positive, random.
fn random_pid() -> i32 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut bytes);
    ((u32::from_le_bytes(bytes) >> 1) as i32).max(1)
}

/// Forgets a result's cancel token when its DoGet stream ends.
struct SentGuard {
    registry: Arc<Registry>,
    handle: Vec<u8>,
}

impl Drop for SentGuard {
    fn drop(&mut self) {
        self.registry.sent(&self.handle);
    }
}

#[tonic::async_trait]
impl FlightSqlService for QuiverFlight {
    type FlightService = QuiverFlight;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let peer = peer_ip(&request);
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        let (user, password) = match header {
            None => (None, None),
            Some(header) => {
                let (user, password) = basic_credentials(&header)?;
                (Some(user), Some(password))
            }
        };
        let login = self
            .login(user, password, peer, user_agent(&request), true)
            .await;
        let (token, _) = counted("Handshake", login)?;
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(futures::stream::iter(vec![Ok(response)])));
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Status::internal("token is not a header value"))?;
        response.metadata_mut().insert("authorization", value);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let result = self.get_flight_info_statement_inner(query, request).await;
        counted("GetFlightInfo", result)
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let statement = self.prepared(&query.prepared_statement_handle, &session.user)?;
            let params = statement.params.lock().clone();
            let result = self.run_prepared(&session, &statement, params).await?;
            self.result_info(session, result, request.into_inner())
        }
        .await;
        counted("GetFlightInfo", result)
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let handle = ticket.statement_handle.to_vec();
            let pending = self.registry.take(&handle, &session.user).ok_or_else(|| {
                with_sqlstate(
                    "34000",
                    "this result was fetched already, was cancelled, or expired unread",
                    None,
                    None,
                )
            })?;
            Ok(Response::new(self.stream(handle, pending)))
        }
        .await;
        counted("DoGet", result)
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            self.check_transaction(&session, command.transaction_id.as_deref())?;
            affected(self.run(&session, &command.query).await?).await
        }
        .await;
        counted("DoPut", result)
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let result = self.ingest(command, request).await;
        counted("DoPut", result)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let handle = query.prepared_statement_handle;
            let statement = self.prepared(&handle, &session.user)?;
            let (_, batches) = read_batches(request.into_inner(), parameters_fit).await?;
            *statement.params.lock() = parameter_rows(&batches, &statement.prepared.param_fields)?;
            Ok(DoPutPreparedStatementResult {
                prepared_statement_handle: Some(handle),
            })
        }
        .await;
        counted("DoPut", result)
    }

    async fn do_put_prepared_statement_update(
        &self,
        query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let statement = self.prepared(&query.prepared_statement_handle, &session.user)?;
            let (_, batches) = read_batches(request.into_inner(), parameters_fit).await?;
            let params = if batches.iter().any(|b| b.num_rows() > 0) {
                parameter_rows(&batches, &statement.prepared.param_fields)?
            } else {
                statement.params.lock().clone()
            };
            affected(self.run_prepared(&session, &statement, params).await?).await
        }
        .await;
        counted("DoPut", result)
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            self.check_transaction(&session, query.transaction_id.as_deref())?;
            let sql = number_question_marks(&query.query).into_owned();
            let prepared = session
                .session
                .lock()
                .await
                .prepare(&sql)
                .await
                .map_err(|e| status(&e))?;
            let dataset = match &prepared.result_schema {
                Some(schema) => result_schema(schema, &self.admission.database),
                None => Arc::new(Schema::empty()),
            };
            let parameters = Schema::new(
                prepared
                    .param_fields
                    .iter()
                    .enumerate()
                    .map(|(i, field)| {
                        let data_type = field
                            .as_ref()
                            .map(|f| plain_type(f.data_type()))
                            .unwrap_or(DataType::Utf8);
                        Field::new(format!("${}", i + 1), data_type, true)
                    })
                    .collect::<Vec<_>>(),
            );
            let handle = random_name::<16>().into_bytes();
            let result = ActionCreatePreparedStatementResult {
                prepared_statement_handle: handle.clone().into(),
                dataset_schema: schema_bytes(&dataset)?,
                parameter_schema: schema_bytes(&parameters)?,
            };
            self.registry
                .add_prepared(handle, session.user.clone(), prepared);
            Ok(result)
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let result = async {
            let session = self.caller(&request).await?;
            self.registry
                .close_prepared(&query.prepared_statement_handle, &session.user);
            Ok(())
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_begin_transaction(
        &self,
        _query: ActionBeginTransactionRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginTransactionResult, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            if !self.registry.is_kept(&session) {
                return Err(with_sqlstate(
                    "08P01",
                    "a transaction needs a session: log in with the Handshake first and send its Bearer token",
                    None,
                    None,
                ));
            }
            let mut guard = session.session.lock().await;
            if !matches!(guard.transaction_state(), TxnState::Idle) {
                return Err(with_sqlstate(
                    "25001",
                    "there is already a transaction in progress",
                    None,
                    None,
                ));
            }
            last(guard.execute_sql("BEGIN").await)?;
            let id = random_name::<16>().into_bytes();
            *session.transaction.lock() = Some(id.clone());
            Ok(ActionBeginTransactionResult {
                transaction_id: id.into(),
            })
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_end_transaction(
        &self,
        query: ActionEndTransactionRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let result = async {
            let session = self.caller(&request).await?;
            self.check_transaction(&session, Some(&query.transaction_id))?;
            let mut guard = session.session.lock().await;
            let failed = matches!(guard.transaction_state(), TxnState::Failed);
            let commit = query.action == EndTransaction::Commit as i32;
            let rollback = query.action == EndTransaction::Rollback as i32;
            if !commit && !rollback {
                return Err(with_sqlstate(
                    "08P01",
                    "EndTransaction needs an action: commit or rollback",
                    None,
                    None,
                ));
            }
            *session.transaction.lock() = None;
            if commit && failed {
                let _ = guard.execute_sql("ROLLBACK").await;
                return Err(with_sqlstate(
                    "25P02",
                    "the transaction was rolled back: a statement in it failed",
                    None,
                    None,
                ));
            }
            last(
                guard
                    .execute_sql(if commit { "COMMIT" } else { "ROLLBACK" })
                    .await,
            )?;
            Ok(())
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_begin_savepoint(
        &self,
        query: ActionBeginSavepointRequest,
        request: Request<Action>,
    ) -> Result<ActionBeginSavepointResult, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            self.check_transaction(&session, Some(&query.transaction_id))?;
            self.run(&session, &format!("SAVEPOINT {}", quote_ident(&query.name)))
                .await?;
            Ok(ActionBeginSavepointResult {
                savepoint_id: query.name.into_bytes().into(),
            })
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_end_savepoint(
        &self,
        query: ActionEndSavepointRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let name = String::from_utf8_lossy(&query.savepoint_id).into_owned();
            let sql = match query.action {
                1 => format!("RELEASE SAVEPOINT {}", quote_ident(&name)),
                2 => format!("ROLLBACK TO SAVEPOINT {}", quote_ident(&name)),
                _ => {
                    return Err(with_sqlstate(
                        "08P01",
                        "EndSavepoint needs an action: release or rollback",
                        None,
                        None,
                    ))
                }
            };
            self.run(&session, &sql).await.map(|_| ())
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let info = FlightInfo::decode(query.info)
                .map_err(|e| Status::invalid_argument(format!("malformed FlightInfo: {e}")))?;
            let cancelled = self.cancel_info(&info, &session.user);
            // CancelResult: CANCELLED = 1, NOT_CANCELLABLE = 3.
            Ok(ActionCancelQueryResult {
                result: if cancelled { 1 } else { 3 },
            })
        }
        .await;
        counted("DoAction", result)
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let result = async {
            tracing::debug!(action = %request.get_ref().r#type, "Flight action");
            match request.get_ref().r#type.as_str() {
                "CancelFlightInfo" => {}
                "CloseSession" => return Ok(self.close_session(&request)),
                other => {
                    return Err(Status::invalid_argument(format!(
                        "unknown action \"{other}\""
                    )))
                }
            }
            let session = self.caller(&request).await?;
            let cancel = CancelFlightInfoRequest::decode(request.get_ref().body.clone())
                .map_err(|e| Status::invalid_argument(format!("malformed request: {e}")))?;
            let cancelled = cancel
                .info
                .as_ref()
                .is_some_and(|info| self.cancel_info(info, &session.user));
            // CancelStatus: CANCELLED = 1, NOT_CANCELLABLE = 3.
            let result = CancelFlightInfoResult {
                status: if cancelled { 1 } else { 3 },
            };
            let body = arrow_flight::Result {
                body: result.encode_to_vec().into(),
            };
            let stream: <Self as FlightService>::DoActionStream =
                Box::pin(futures::stream::iter(vec![Ok(body)]));
            Ok(Response::new(stream))
        }
        .await;
        counted("DoAction", result)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        counted(
            "GetFlightInfo",
            info_for_command(&query, &schema, request.into_inner()),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            self.caller(&request).await?;
            let mut builder = query.into_builder();
            builder.append(&self.admission.database);
            answer(builder.schema(), builder.build())
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        counted(
            "GetFlightInfo",
            info_for_command(&query, &schema, request.into_inner()),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let rows = self
                .catalog_rows(
                    &session,
                    "SELECT schema_name FROM information_schema.schemata ORDER BY schema_name",
                )
                .await?;
            let mut builder = query.into_builder();
            for row in rows {
                if let Some(Some(name)) = row.into_iter().next() {
                    builder.append(&self.admission.database, name);
                }
            }
            answer(builder.schema(), builder.build())
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        counted(
            "GetFlightInfo",
            info_for_command(&query, &schema, request.into_inner()),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let rows = self
                .catalog_rows(
                    &session,
                    "SELECT table_schema, table_name, table_type FROM information_schema.tables \
                     ORDER BY table_schema, table_name",
                )
                .await?;
            let mut builder = query.into_builder();
            let include_schema = builder.include_schema();
            let guard = session.session.lock().await;
            for row in rows {
                let [Some(schema), Some(name), Some(kind)] =
                    <[Option<String>; 3]>::try_from(row).unwrap_or([None, None, None])
                else {
                    continue;
                };
                let system = schema == "pg_catalog" || schema == "information_schema";
                let kind = match kind.as_str() {
                    _ if system => "SYSTEM TABLE",
                    "BASE TABLE" => "TABLE",
                    "VIEW" => "VIEW",
                    other => other,
                }
                .to_string();
                let columns = if include_schema {
                    guard
                        .relation_schema(&schema, &name)
                        .map(|s| table_schema(&s, &self.admission.database))
                        .unwrap_or_else(Schema::empty)
                } else {
                    Schema::empty()
                };
                builder
                    .append(&self.admission.database, &schema, &name, &kind, &columns)
                    .map_err(|e| Status::internal(e.to_string()))?;
            }
            drop(guard);
            answer(builder.schema(), builder.build())
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        counted(
            "GetFlightInfo",
            info_for_command(&query, &schema, request.into_inner()),
        )
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            self.caller(&request).await?;
            let mut builder = query.into_builder();
            for kind in ["SYSTEM TABLE", "TABLE", "VIEW"] {
                builder.append(kind);
            }
            answer(builder.schema(), builder.build())
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        counted(
            "GetFlightInfo",
            info_for_command(&query, &schema, request.into_inner()),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            self.caller(&request).await?;
            let builder = query.into_builder(&SQL_INFO);
            answer(builder.schema(), builder.build())
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&XDBC_TYPES).schema();
        counted(
            "GetFlightInfo",
            info_for_command(&query, &schema, request.into_inner()),
        )
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            self.caller(&request).await?;
            let builder = query.into_builder(&XDBC_TYPES);
            answer(builder.schema(), builder.build())
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        counted(
            "GetFlightInfo",
            info_for_command(
                &query,
                &metadata::primary_keys_schema(),
                request.into_inner(),
            ),
        )
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = async {
            let session = self.caller(&request).await?;
            let mut sql = format!(
                "SELECT k.table_catalog, k.table_schema, k.table_name, k.column_name, \
                 k.constraint_name, k.ordinal_position \
                 FROM information_schema.table_constraints c \
                 JOIN information_schema.key_column_usage k \
                 ON k.constraint_schema = c.constraint_schema \
                 AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name \
                 WHERE c.constraint_type = 'PRIMARY KEY' AND k.table_name = {}",
                literal(&query.table)
            );
            if let Some(schema) = &query.db_schema {
                sql.push_str(&format!(" AND k.table_schema = {}", literal(schema)));
            }
            sql.push_str(" ORDER BY k.table_schema, k.ordinal_position");
            let rows = self.catalog_rows(&session, &sql).await?;
            let schema = metadata::primary_keys_schema();
            let batch = metadata::text_table(schema.clone(), &rows);
            answer::<Status>(schema, Ok(batch))
        }
        .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        counted(
            "GetFlightInfo",
            info_for_command(&query, &metadata::keys_schema(), request.into_inner()),
        )
    }

    async fn do_get_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = self
            .keys(
                &request,
                None,
                Some((query.db_schema.as_deref(), &query.table)),
            )
            .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        counted(
            "GetFlightInfo",
            info_for_command(&query, &metadata::keys_schema(), request.into_inner()),
        )
    }

    async fn do_get_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = self
            .keys(
                &request,
                Some((query.db_schema.as_deref(), &query.table)),
                None,
            )
            .await;
        counted("DoGet", result)
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        counted(
            "GetFlightInfo",
            info_for_command(&query, &metadata::keys_schema(), request.into_inner()),
        )
    }

    async fn do_get_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let result = self
            .keys(
                &request,
                Some((query.pk_db_schema.as_deref(), &query.pk_table)),
                Some((query.fk_db_schema.as_deref(), &query.fk_table)),
            )
            .await;
        counted("DoGet", result)
    }

    /// A DoPut without a command (or its descriptor) is the client's
    /// mistake, not a missing feature.
    async fn do_put_error_callback(
        &self,
        _request: Request<PeekableFlightDataStream>,
        error: arrow_flight::sql::server::DoPutError,
    ) -> Result<Response<<Self as FlightService>::DoPutStream>, Status> {
        counted(
            "DoPut",
            Err(with_sqlstate(
                "08P01",
                &format!("invalid DoPut: {error}"),
                None,
                None,
            )),
        )
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl QuiverFlight {
    /// CloseSession (ADBC sends it when a connection closes): the session
    /// of the call's token ends, and its open transaction rolls back.
    fn close_session(
        &self,
        request: &Request<Action>,
    ) -> Response<<Self as FlightService>::DoActionStream> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|h| strip_scheme(h, "Bearer"));
        let closed = token.is_some_and(|t| self.registry.close(t));
        if closed {
            tracing::info!("Flight SQL session closed by its client");
        }
        // CloseSessionResult { status: CLOSED (1) }, in protobuf: field 1,
        // varint 1. (arrow-flight 59 does not generate the session messages.)
        let body = arrow_flight::Result {
            body: bytes::Bytes::from_static(&[0x08, 0x01]),
        };
        Response::new(Box::pin(futures::stream::iter(vec![Ok(body)])))
    }

    /// Foreign keys, from the referenced (primary) side, the referencing
    /// (foreign) side, or both.
    async fn keys<T>(
        &self,
        request: &Request<T>,
        primary: Option<(Option<&str>, &str)>,
        foreign: Option<(Option<&str>, &str)>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.caller(request).await?;
        let mut sql = "SELECT pk.table_catalog, pk.table_schema, pk.table_name, pk.column_name, \
             fk.table_catalog, fk.table_schema, fk.table_name, fk.column_name, \
             fk.ordinal_position, fk.constraint_name, pk.constraint_name, \
             rc.update_rule, rc.delete_rule \
             FROM information_schema.referential_constraints rc \
             JOIN information_schema.key_column_usage fk \
             ON fk.constraint_schema = rc.constraint_schema AND fk.constraint_name = rc.constraint_name \
             JOIN information_schema.key_column_usage pk \
             ON pk.constraint_schema = rc.unique_constraint_schema \
             AND pk.constraint_name = rc.unique_constraint_name \
             AND pk.ordinal_position = fk.position_in_unique_constraint \
             WHERE true"
            .to_string();
        for (side, filter) in [("pk", primary), ("fk", foreign)] {
            if let Some((schema, table)) = filter {
                sql.push_str(&format!(" AND {side}.table_name = {}", literal(table)));
                if let Some(schema) = schema {
                    sql.push_str(&format!(" AND {side}.table_schema = {}", literal(schema)));
                }
            }
        }
        sql.push_str(" ORDER BY pk.table_schema, pk.table_name, fk.table_schema, fk.table_name, fk.constraint_name, fk.ordinal_position");
        let rows = self.catalog_rows(&session, &sql).await?;
        let schema = metadata::keys_schema();
        let batch = metadata::text_table(schema.clone(), &rows);
        answer::<Status>(schema, Ok(batch))
    }

    /// Cancels the results a FlightInfo's tickets name.
    fn cancel_info(&self, info: &FlightInfo, user: &str) -> bool {
        let mut cancelled = false;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else {
                continue;
            };
            let Ok(any) = Any::decode(ticket.ticket.clone()) else {
                continue;
            };
            if let Ok(Some(query)) = any.unpack::<TicketStatementQuery>() {
                cancelled |= self.registry.cancel(&query.statement_handle, user);
            }
        }
        cancelled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingested_arrow_types_get_column_types() {
        assert_eq!(sql_type(&DataType::Int64).unwrap(), "bigint");
        assert_eq!(sql_type(&DataType::Utf8View).unwrap(), "text");
        assert_eq!(
            sql_type(&DataType::Timestamp(
                datafusion::arrow::datatypes::TimeUnit::Nanosecond,
                Some("UTC".into())
            ))
            .unwrap(),
            "timestamptz"
        );
        assert_eq!(
            sql_type(&DataType::Decimal128(15, 2)).unwrap(),
            "numeric(15, 2)"
        );
        assert!(sql_type(&DataType::Decimal256(50, 2)).is_none());
    }

    #[test]
    fn credentials_come_from_basic_and_tokens_from_bearer() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("alice:pa:ss")
        );
        assert_eq!(
            basic_credentials(&header).unwrap(),
            ("alice".to_string(), "pa:ss".to_string())
        );
        assert_eq!(strip_scheme("bearer abc", "Bearer"), Some("abc"));
        assert!(basic_credentials("Basic !!!").is_err());
        // Without padding, as Go's client sends it.
        assert_eq!(
            basic_credentials("Basic cXVpdmVyOng").unwrap(),
            ("quiver".to_string(), "x".to_string())
        );
    }
}
