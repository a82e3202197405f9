//! The sessions connected to a database, as `pg_stat_activity` shows them:
//! who they are, their settings and what they are doing now.

use std::sync::{Arc, Weak};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};

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
    /// Cancels the statement the session is running (set by the wire
    /// layer; the REPL has none).
    canceller: Mutex<Option<Canceller>>,
    /// Set when another session asks this one to end.
    terminated: std::sync::atomic::AtomicBool,
    terminate: tokio::sync::Notify,
}

/// What cancels a session's running statement.
pub struct Canceller(pub Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for Canceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Canceller")
    }
}

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
            canceller: Mutex::new(None),
            terminated: Default::default(),
            terminate: tokio::sync::Notify::new(),
        }
    }
}

impl SessionInfo {
    pub fn set_canceller(&self, canceller: Canceller) {
        *self.canceller.lock() = Some(canceller);
    }

    /// pg_cancel_backend: cancels the running statement, if any. False
    /// for a session that cannot be signalled.
    pub fn cancel(&self) -> bool {
        match self.canceller.lock().as_ref() {
            Some(cancel) => {
                (cancel.0)();
                true
            }
            None => false,
        }
    }

    /// pg_terminate_backend: the session ends; its connection stops what
    /// it runs (a cancel here would race it and report 57014 instead).
    pub fn terminate(&self) {
        self.terminated
            .store(true, std::sync::atomic::Ordering::Release);
        self.terminate.notify_waiters();
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

impl SessionInfo {
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

    /// A statement starts.
    pub fn start_query(&self, query: &str) {
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
}

impl SessionRegistry {
    pub fn register(&self, info: &Arc<SessionInfo>) {
        let mut sessions = self.sessions.lock();
        sessions.retain(|s| s.strong_count() > 0);
        sessions.push(Arc::downgrade(info));
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
