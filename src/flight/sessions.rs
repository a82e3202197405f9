//! Flight SQL sessions: a bearer token names a QuiverDB session (its
//! settings, privileges, open transaction and prepared statements), and a
//! ticket names a result waiting for its DoGet. gRPC calls carry no
//! connection, so both live here, found by their random names, until the
//! session is idle too long or the result is fetched or abandoned.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::engine::sessions::SessionInfo;
use crate::session::{Prepared, RowStream, Session};

/// A result nobody fetched is dropped after this long, its plan, memory
/// and execution slot with it (clients fetch at once; a query that is
/// never fetched must not hold a slot long).
pub const RESULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Results a session may have waiting for their DoGet; past it the
/// oldest is dropped.
const RESULTS_PER_SESSION: usize = 64;
/// How often idle sessions and abandoned results are looked for.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One Flight SQL client's session.
pub struct FlightSession {
    /// Statements of one session run one at a time, as on a connection.
    pub session: tokio::sync::Mutex<Session>,
    /// What pg_stat_activity shows; pg_terminate_backend marks it.
    pub info: Arc<SessionInfo>,
    pub user: String,
    pub peer: IpAddr,
    last_used: Mutex<Instant>,
    /// The id given to the open transaction (BeginTransaction).
    pub transaction: Mutex<Option<Vec<u8>>>,
}

impl FlightSession {
    pub fn touch(&self) {
        *self.last_used.lock() = Instant::now();
    }
}

/// A prepared statement and the parameter rows last bound to it. It
/// belongs to a user rather than a session, so a client that calls
/// without a session (no password needed, no handshake) can still
/// prepare, bind and execute.
pub struct PreparedStatement {
    pub prepared: Prepared,
    pub params: Mutex<Vec<ParamValues>>,
    user: String,
    last_used: Mutex<Instant>,
}

/// What a ticket fetches.
pub enum Rows {
    /// A plan running as it is read.
    Stream(RowStream),
    /// Rows computed already.
    Batches(Vec<RecordBatch>),
}

/// A result waiting for (or being sent by) its DoGet.
pub struct Pending {
    pub owner: Arc<FlightSession>,
    /// The columns as FlightInfo announced them.
    pub schema: SchemaRef,
    pub rows: Rows,
    /// Cancelled by CancelFlightInfo / CancelQuery: stops the DoGet.
    pub cancel: CancellationToken,
    created: Instant,
}

/// The sessions and results of one Flight SQL server.
pub struct Registry {
    sessions: Mutex<HashMap<String, Arc<FlightSession>>>,
    prepared: Mutex<HashMap<Vec<u8>, Arc<PreparedStatement>>>,
    results: Mutex<HashMap<Vec<u8>, Pending>>,
    /// Results being streamed: their cancel tokens, by ticket.
    streaming: Mutex<HashMap<Vec<u8>, CancellationToken>>,
    idle_timeout: Duration,
}

impl Registry {
    pub fn new(idle_timeout: Duration) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Default::default(),
            prepared: Default::default(),
            results: Default::default(),
            streaming: Default::default(),
            idle_timeout,
        })
    }

    /// Starts a session for a login the server admitted; returns its
    /// bearer token. A session not `kept` serves one call and ends with
    /// it (its token names nothing).
    pub fn open(
        &self,
        session: Session,
        user: String,
        peer: IpAddr,
        keep: bool,
    ) -> (String, Arc<FlightSession>) {
        let token = random_name::<32>();
        let flight = Arc::new(FlightSession {
            info: session.info().clone(),
            session: tokio::sync::Mutex::new(session),
            user,
            peer,
            last_used: Mutex::new(Instant::now()),
            transaction: Default::default(),
        });
        if keep {
            self.sessions.lock().insert(token.clone(), flight.clone());
        }
        (token, flight)
    }

    /// Whether a session lives across calls (it has a token).
    pub fn is_kept(&self, session: &Arc<FlightSession>) -> bool {
        self.sessions
            .lock()
            .values()
            .any(|s| Arc::ptr_eq(s, session))
    }

    /// Keeps a prepared statement of `user` under `handle`.
    pub fn add_prepared(&self, handle: Vec<u8>, user: String, prepared: Prepared) {
        let statement = PreparedStatement {
            prepared,
            params: Default::default(),
            user,
            last_used: Mutex::new(Instant::now()),
        };
        self.prepared.lock().insert(handle, Arc::new(statement));
    }

    /// The prepared statement `handle` names, if it is `user`'s.
    pub fn prepared(&self, handle: &[u8], user: &str) -> Option<Arc<PreparedStatement>> {
        let statement = self.prepared.lock().get(handle).cloned()?;
        if statement.user != user {
            return None;
        }
        *statement.last_used.lock() = Instant::now();
        Some(statement)
    }

    pub fn close_prepared(&self, handle: &[u8], user: &str) {
        let mut prepared = self.prepared.lock();
        if prepared.get(handle).is_some_and(|s| s.user == user) {
            prepared.remove(handle);
        }
    }

    /// The session a bearer token names, if it is still open.
    /// A session pg_terminate_backend ended is gone.
    pub fn session(&self, token: &str) -> Option<Arc<FlightSession>> {
        let session = self.sessions.lock().get(token).cloned()?;
        if session.info.is_terminated() {
            self.close(token);
            return None;
        }
        session.touch();
        Some(session)
    }

    /// Keeps a result for its DoGet; returns its ticket.
    pub fn keep(&self, owner: Arc<FlightSession>, schema: SchemaRef, rows: Rows) -> Vec<u8> {
        let ticket = random_name::<16>().into_bytes();
        let mut results = self.results.lock();
        let mine: Vec<(Instant, Vec<u8>)> = results
            .iter()
            .filter(|(_, p)| Arc::ptr_eq(&p.owner, &owner))
            .map(|(t, p)| (p.created, t.clone()))
            .collect();
        if mine.len() >= RESULTS_PER_SESSION {
            if let Some((_, oldest)) = mine.into_iter().min() {
                results.remove(&oldest);
            }
        }
        results.insert(
            ticket.clone(),
            Pending {
                owner,
                schema,
                rows,
                cancel: CancellationToken::new(),
                created: Instant::now(),
            },
        );
        ticket
    }

    /// Takes the result a ticket names, for the DoGet of `user`.
    pub fn take(&self, ticket: &[u8], user: &str) -> Option<Pending> {
        let mut results = self.results.lock();
        if results.get(ticket)?.owner.user != user {
            return None;
        }
        let pending = results.remove(ticket)?;
        pending.owner.touch();
        self.streaming
            .lock()
            .insert(ticket.to_vec(), pending.cancel.clone());
        Some(pending)
    }

    /// The result's DoGet ended.
    pub fn sent(&self, ticket: &[u8]) {
        self.streaming.lock().remove(ticket);
    }

    /// Cancels the result a ticket names, waiting or being sent. Returns
    /// whether there was one.
    pub fn cancel(&self, ticket: &[u8], user: &str) -> bool {
        let waiting = {
            let mut results = self.results.lock();
            match results.get(ticket) {
                Some(p) if p.owner.user == user => results.remove(ticket),
                _ => None,
            }
        };
        if waiting.is_some() {
            return true;
        }
        match self.streaming.lock().get(ticket) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Ends the session a token names (its open transaction rolls back
    /// when its last call is done). Returns whether there was one.
    pub fn close(&self, token: &str) -> bool {
        let Some(session) = self.sessions.lock().remove(token) else {
            return false;
        };
        self.results
            .lock()
            .retain(|_, p| !Arc::ptr_eq(&p.owner, &session));
        true
    }

    /// Drops sessions idle longer than the timeout (not while a statement
    /// of theirs runs) and results nobody fetched in time.
    fn sweep(&self) {
        let now = Instant::now();
        self.results
            .lock()
            .retain(|_, p| now.duration_since(p.created) < RESULT_TIMEOUT);
        self.prepared
            .lock()
            .retain(|_, p| now.duration_since(*p.last_used.lock()) < self.idle_timeout);
        let expired: Vec<(String, Arc<FlightSession>)> = {
            let mut sessions = self.sessions.lock();
            let expired: Vec<String> = sessions
                .iter()
                .filter(|(_, s)| {
                    s.info.is_terminated()
                        || (now.duration_since(*s.last_used.lock()) >= self.idle_timeout
                            && s.session.try_lock().is_ok())
                })
                .map(|(t, _)| t.clone())
                .collect();
            expired
                .into_iter()
                .filter_map(|t| sessions.remove(&t).map(|s| (t, s)))
                .collect()
        };
        for (_, session) in expired {
            if session.info.is_terminated() {
                tracing::info!(user = %session.user, peer = %session.peer, "Flight SQL session terminated");
            } else {
                tracing::info!(user = %session.user, peer = %session.peer, "Flight SQL session expired after {:?} idle", self.idle_timeout);
            }
        }
    }

    /// Sweeps every second until the registry is dropped.
    pub fn sweep_until_dropped(registry: &Arc<Registry>) {
        let weak = Arc::downgrade(registry);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(registry) => registry.sweep(),
                    None => return,
                }
            }
        });
    }
}

/// A random name of N bytes, URL-safe base64.
pub fn random_name<const N: usize>() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
