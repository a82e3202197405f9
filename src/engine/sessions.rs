//! The sessions connected to a database, as `pg_stat_activity` shows them:
//! who they are, their settings and what they are doing now.

use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use tokio_util::sync::CancellationToken;

/// Who is connected and how: what `current_user`, `current_schema()`,
/// `pg_backend_pid()` and `pg_settings` report for this session.
#[derive(Debug)]
pub struct SessionInfo {
    identity: RwLock<Identity>,
    /// The schemas of `search_path`, in order.
    search_path: RwLock<Vec<String>>,
    /// (name, value, description) of every setting.
    settings: RwLock<Vec<(String, String, String)>>,
    pub started: chrono::DateTime<chrono::Utc>,
    activity: Mutex<Activity>,
    /// Cancelled to stop the statement the session runs now (a fresh
    /// token for every statement, so a cancel that arrives between
    /// statements stops nothing).
    statement: Mutex<CancellationToken>,
    /// The secret a CancelRequest must present with the pid (set at
    /// login by a front end that offers cancel requests).
    cancel_secret: Mutex<Option<Vec<u8>>>,
    /// What the running statement waits for, as pg_stat_activity's
    /// wait_event shows it.
    wait_event: Mutex<Option<&'static str>>,
    /// Set when another session asks this one to end.
    terminated: std::sync::atomic::AtomicBool,
    terminate: tokio::sync::Notify,
    /// Unique among the sessions of the process (pids are what clients
    /// see; embedded sessions share the process's).
    pub id: u64,
    /// LISTEN: the channels this session receives notifications on.
    listening: Mutex<std::collections::BTreeSet<String>>,
    /// Notifications committed for this session, not yet delivered.
    inbox: Mutex<std::collections::VecDeque<Notification>>,
    arrived: tokio::sync::Notify,
    /// The session's open cursors, as `pg_cursors` lists them.
    cursors: Mutex<Vec<CursorInfo>>,
}

/// An open cursor as `pg_cursors` shows it.
#[derive(Debug, Clone)]
pub struct CursorInfo {
    pub name: String,
    /// The DECLARE statement.
    pub statement: String,
    pub holdable: bool,
    pub created: DateTime<Utc>,
}

/// A NOTIFY as a listener receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The pid of the session that sent it.
    pub pid: i32,
    pub channel: String,
    pub payload: String,
}

static NEXT_SESSION_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[derive(Debug, Clone)]
pub struct Identity {
    pub user: String,
    pub database: String,
    pub pid: i32,
    pub application_name: String,
    /// Logged in without authentication under a name that is no role: a
    /// superuser (the REPL, and every session of a database without
    /// passwords).
    pub implicit_superuser: bool,
    /// Where the client connects from (None: embedded).
    pub client_addr: Option<std::net::IpAddr>,
    /// What pg_stat_activity's backend_type says: `client backend` for
    /// PostgreSQL clients, `flight sql` for Arrow Flight SQL ones.
    pub backend_type: &'static str,
}

impl Identity {
    pub fn actor(&self) -> super::roles::Actor<'_> {
        super::roles::Actor {
            name: &self.user,
            implicit_superuser: self.implicit_superuser,
        }
    }
}

impl Default for SessionInfo {
    fn default() -> Self {
        SessionInfo {
            identity: RwLock::new(Identity {
                user: "quiver".into(),
                database: "quiver".into(),
                pid: std::process::id() as i32,
                application_name: String::new(),
                implicit_superuser: true,
                client_addr: None,
                backend_type: "client backend",
            }),
            search_path: RwLock::new(vec!["public".into()]),
            settings: RwLock::new(Vec::new()),
            started: chrono::Utc::now(),
            activity: Mutex::new(Activity {
                state: "idle",
                query: String::new(),
                query_start: None,
                state_change: chrono::Utc::now(),
                xact_start: None,
            }),
            statement: Mutex::new(CancellationToken::new()),
            cancel_secret: Mutex::new(None),
            wait_event: Mutex::new(None),
            terminated: Default::default(),
            terminate: tokio::sync::Notify::new(),
            id: NEXT_SESSION_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            listening: Default::default(),
            inbox: Default::default(),
            arrived: tokio::sync::Notify::new(),
            cursors: Default::default(),
        }
    }
}

impl SessionInfo {
    /// The session's cursors changed.
    pub fn set_cursors(&self, cursors: Vec<CursorInfo>) {
        *self.cursors.lock() = cursors;
    }

    pub fn cursors(&self) -> Vec<CursorInfo> {
        self.cursors.lock().clone()
    }
}

/// LISTEN / NOTIFY: what a session listens to, and its notifications.
impl SessionInfo {
    pub fn listen(&self, channel: &str) {
        self.listening.lock().insert(channel.to_string());
    }

    /// UNLISTEN of one channel (None: UNLISTEN *).
    pub fn unlisten(&self, channel: Option<&str>) {
        match channel {
            Some(channel) => {
                self.listening.lock().remove(channel);
            }
            None => self.listening.lock().clear(),
        }
    }

    /// The channels listened to, in name order.
    pub fn listening(&self) -> Vec<String> {
        self.listening.lock().iter().cloned().collect()
    }

    /// The next notification for this session, when one arrives. Safe to
    /// drop while waiting: nothing is taken until it is returned.
    pub async fn next_notification(&self) -> Notification {
        loop {
            let arrived = self.arrived.notified();
            if let Some(next) = self.inbox.lock().pop_front() {
                return next;
            }
            arrived.await;
        }
    }

    /// Notifications waiting to be delivered, taken (an embedded session
    /// reads them this way).
    pub fn take_notifications(&self) -> Vec<Notification> {
        self.inbox.lock().drain(..).collect()
    }

    fn deliver(&self, notification: &Notification) {
        if self.listening.lock().contains(&notification.channel) {
            self.inbox.lock().push_back(notification.clone());
            self.arrived.notify_one();
        }
    }
}

impl SessionInfo {
    /// Lets CancelRequests that present this secret (with the pid)
    /// cancel the session's statements.
    pub fn set_cancel_secret(&self, secret: Vec<u8>) {
        *self.cancel_secret.lock() = Some(secret);
    }

    /// Whether a CancelRequest with this secret may cancel the session.
    pub fn cancel_secret_is(&self, secret: &[u8]) -> bool {
        self.cancel_secret
            .lock()
            .as_deref()
            .is_some_and(|mine| mine == secret)
    }

    /// pg_cancel_backend or a CancelRequest: stops the running statement,
    /// if any. True, as PostgreSQL's is once the signal is sent.
    pub fn cancel(&self) -> bool {
        self.statement.lock().cancel();
        true
    }

    /// What stops the running statement.
    pub fn statement_token(&self) -> CancellationToken {
        self.statement.lock().clone()
    }

    /// What the statement waits for now (None: it runs).
    pub fn set_wait_event(&self, event: Option<&'static str>) {
        *self.wait_event.lock() = event;
    }

    pub fn wait_event(&self) -> Option<&'static str> {
        *self.wait_event.lock()
    }

    /// pg_terminate_backend: the session ends; its connection stops what
    /// it runs (a cancel here would race it and report 57014 instead).
    pub fn terminate(&self) {
        self.terminated
            .store(true, std::sync::atomic::Ordering::Release);
        self.terminate.notify_waiters();
    }

    /// Whether the session was told to end.
    pub fn is_terminated(&self) -> bool {
        self.terminated.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Completes once the session was told to end.
    pub async fn terminated(&self) {
        loop {
            let notified = self.terminate.notified();
            if self.terminated.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Schemas of temporary tables are named this, then the session's id.
pub const TEMP_SCHEMA_PREFIX: &str = "pg_temp_";

impl SessionInfo {
    /// The schema of this session's temporary tables (made with the
    /// first one, dropped when the session ends).
    pub fn temp_schema(&self) -> String {
        format!("{TEMP_SCHEMA_PREFIX}{}", self.id)
    }

    pub fn identity(&self) -> Identity {
        self.identity.read().clone()
    }

    pub fn set_identity(&self, identity: Identity) {
        *self.identity.write() = identity;
    }

    pub fn search_path(&self) -> Vec<String> {
        self.search_path.read().clone()
    }

    /// Called whenever a setting changes.
    pub fn set_settings(&self, search_path: Vec<String>, settings: Vec<(String, String, String)>) {
        if let Some((_, app, _)) = settings.iter().find(|(n, _, _)| n == "application_name") {
            self.identity.write().application_name = app.clone();
        }
        *self.search_path.write() = search_path;
        *self.settings.write() = settings;
    }

    pub fn settings(&self) -> Vec<(String, String, String)> {
        self.settings.read().clone()
    }
}

/// What a session is doing, as `pg_stat_activity.state` says it.
#[derive(Debug, Clone)]
pub struct Activity {
    pub state: &'static str,
    /// The current statement, or the last one when idle.
    pub query: String,
    pub query_start: Option<DateTime<Utc>>,
    pub state_change: DateTime<Utc>,
    /// When the open transaction block began.
    pub xact_start: Option<DateTime<Utc>>,
}

impl SessionInfo {
    pub fn activity(&self) -> Activity {
        self.activity.lock().clone()
    }

    /// When the open transaction (a block, or the running statement
    /// outside one) started.
    pub fn transaction_start(&self) -> Option<DateTime<Utc>> {
        self.activity.lock().xact_start
    }

    /// When the running statement started.
    pub fn statement_start(&self) -> Option<DateTime<Utc>> {
        self.activity.lock().query_start
    }

    /// A statement starts.
    pub fn start_query(&self, query: &str) {
        *self.statement.lock() = CancellationToken::new();
        let now = Utc::now();
        let mut a = self.activity.lock();
        a.state = "active";
        a.query = query.to_string();
        a.query_start = Some(now);
        a.state_change = now;
        if a.xact_start.is_none() {
            a.xact_start = Some(now);
        }
    }

    /// A statement ended, leaving the session in or out of a block.
    pub fn end_query(&self, in_block: bool, failed_block: bool) {
        let now = Utc::now();
        let mut a = self.activity.lock();
        a.state = match (in_block, failed_block) {
            (_, true) => "idle in transaction (aborted)",
            (true, false) => "idle in transaction",
            (false, false) => "idle",
        };
        a.state_change = now;
        if !in_block {
            a.xact_start = None;
        }
    }
}

/// The live sessions of a database.
#[derive(Debug, Default)]
pub struct SessionRegistry {
    sessions: Mutex<Vec<Weak<SessionInfo>>>,
    /// Held while a commit's notifications are delivered, so that every
    /// listener receives them in commit order.
    publishing: Mutex<()>,
}

impl SessionRegistry {
    pub fn register(&self, info: &Arc<SessionInfo>) {
        let mut sessions = self.sessions.lock();
        sessions.retain(|s| s.strong_count() > 0);
        sessions.push(Arc::downgrade(info));
    }

    /// Delivers a committed transaction's notifications to every session
    /// listening on their channels (the sender too, as in PostgreSQL).
    pub fn publish(&self, notifications: &[Notification]) {
        if notifications.is_empty() {
            return;
        }
        let _order = self.publishing.lock();
        let live = self.live();
        for notification in notifications {
            for session in &live {
                session.deliver(notification);
            }
        }
    }

    /// The sessions still connected, in the order they connected.
    pub fn live(&self) -> Vec<Arc<SessionInfo>> {
        self.sessions
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }
}
