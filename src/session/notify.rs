//! LISTEN, UNLISTEN and NOTIFY (and `pg_notify`), and what the
//! session does when a statement or a transaction ends: deliver its
//! notifications and apply its LISTENs at commit (never on rollback), in
//! commit order; apply `set_config` calls; release `_xact_` advisory
//! locks.

use datafusion::sql::sqlparser::ast::Ident;

use super::{normalize_ident, Session, StatementResult};
use crate::engine::advisory::Holder;
use crate::engine::sessions::Notification;
use crate::error::Result;
use crate::sql::session_functions::check_payload;

/// A LISTEN or UNLISTEN waiting for its transaction to commit.
#[derive(Debug, Clone)]
pub(super) enum Listening {
    Listen(String),
    /// None: UNLISTEN *.
    Unlisten(Option<String>),
}

/// What a transaction block will do when it commits.
#[derive(Debug, Default)]
pub(super) struct AtCommit {
    pub notifications: Vec<Notification>,
    pub listening: Vec<Listening>,
}

impl Session {
    pub(super) fn listen(&mut self, channel: &Ident) -> Result<StatementResult> {
        self.queue_listening(Listening::Listen(normalize_ident(channel)));
        Ok(StatementResult::command("LISTEN"))
    }

    pub(super) fn unlisten(&mut self, channel: &Ident) -> Result<StatementResult> {
        let channel = match channel.quote_style {
            None if channel.value == "*" => None,
            _ => Some(normalize_ident(channel)),
        };
        self.queue_listening(Listening::Unlisten(channel));
        Ok(StatementResult::command("UNLISTEN"))
    }

    pub(super) fn notify(
        &mut self,
        channel: &Ident,
        payload: Option<&str>,
    ) -> Result<StatementResult> {
        let payload = payload.unwrap_or_default();
        check_payload(payload)?;
        self.queue_notification(normalize_ident(channel), payload.to_string());
        Ok(StatementResult::command("NOTIFY"))
    }

    fn queue_listening(&mut self, action: Listening) {
        match &mut self.txn {
            Some(open) => open.at_commit.listening.push(action),
            None => apply_listening(&self.info, action),
        }
    }

    fn queue_notification(&mut self, channel: String, payload: String) {
        let notification = Notification {
            pid: self.info.identity().pid,
            channel,
            payload,
        };
        match &mut self.txn {
            // One of each (channel, payload) per transaction, as in
            // PostgreSQL.
            Some(open) => {
                if !open.at_commit.notifications.contains(&notification) {
                    open.at_commit.notifications.push(notification);
                }
            }
            None => self.db.sessions.publish(&[notification]),
        }
    }

    /// A transaction block committed: its LISTENs take effect and its
    /// notifications go out.
    pub(super) fn committed(&mut self, at_commit: AtCommit) {
        for action in at_commit.listening {
            apply_listening(&self.info, action);
        }
        self.db.sessions.publish(&at_commit.notifications);
        self.release_transaction_locks();
        self.close_transaction_cursors();
    }

    /// A transaction block ended without committing.
    pub(super) fn rolled_back(&mut self) {
        self.release_transaction_locks();
        self.close_transaction_cursors();
    }

    fn release_transaction_locks(&self) {
        self.db.advisory().unlock_all(self.lock_holder(true));
    }

    pub(super) fn lock_holder(&self, transaction: bool) -> Holder {
        Holder {
            session: self.info.id,
            pid: self.info.identity().pid,
            transaction,
        }
    }

    /// What a statement's functions asked for, once it ended: `set_config`
    /// values are set, `pg_notify` notifications queued (or sent, outside
    /// a block); a failed statement's are dropped. Outside a block, the
    /// statement was its own transaction: its `_xact_` locks go.
    pub(super) fn after_statement(&mut self, succeeded: bool) -> Result<()> {
        let settings: Vec<_> = self.handle.settings.lock().drain(..).collect();
        let notifies: Vec<_> = self.handle.notifies.lock().drain(..).collect();
        if self.txn.is_none() {
            self.release_transaction_locks();
        }
        if !succeeded {
            return Ok(());
        }
        for (channel, payload) in notifies {
            self.queue_notification(channel, payload);
        }
        // set_config(..., is_local => true) is SET LOCAL, which here lasts
        // as SET does.
        for (name, value, _local) in settings {
            self.set_value(&name, value)?;
        }
        Ok(())
    }
}

fn apply_listening(info: &crate::engine::sessions::SessionInfo, action: Listening) {
    match action {
        Listening::Listen(channel) => info.listen(&channel),
        Listening::Unlisten(channel) => info.unlisten(channel.as_deref()),
    }
}
