//! Transaction blocks: BEGIN, COMMIT, ROLLBACK and savepoints, the failed
//! state (25P02) after an error, and what may run inside a block.

use std::sync::Arc;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::{Session, StatementResult};
use crate::engine::txn::Saved;
use crate::engine::{Transaction, TxnSlot};
use crate::error::{QuiverError, Result};

/// Where a session stands, as ReadyForQuery reports it (I, T, E).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Idle,
    InTransaction,
    Failed,
}

/// An open transaction block.
pub(super) struct OpenTransaction {
    pub(super) txn: Arc<Transaction>,
    failed: bool,
    savepoints: Vec<(String, Saved)>,
    /// NOTIFYs and LISTENs that take effect when it commits.
    pub(super) at_commit: super::notify::AtCommit,
    /// Temporary tables created `ON COMMIT DROP`: dropped by its commit.
    pub(super) drop_at_commit: Vec<crate::engine::QualifiedName>,
}

impl Session {
    pub fn transaction_state(&self) -> TxnState {
        match &self.txn {
            None => TxnState::Idle,
            Some(open) if open.failed || self.stream_failed() => TxnState::Failed,
            Some(_) => TxnState::InTransaction,
        }
    }

    /// The transaction reads and writes go through, if a block is open.
    pub(super) fn current_txn(&self) -> Option<Arc<Transaction>> {
        self.txn.as_ref().map(|open| open.txn.clone())
    }

    pub(super) fn txn_slot(&self) -> Arc<TxnSlot> {
        self.slot.clone()
    }

    /// Refuses what may not run now: anything but the end of the block in
    /// a failed transaction.
    pub(super) fn admit(&self, statement: Option<&DfStatement>) -> Result<()> {
        let Some(open) = &self.txn else {
            return Ok(());
        };
        if !open.failed {
            return Ok(());
        }
        match statement {
            Some(DfStatement::Statement(s))
                if matches!(
                    s.as_ref(),
                    Statement::Commit { .. } | Statement::Rollback { .. }
                ) =>
            {
                Ok(())
            }
            _ => Err(QuiverError::InFailedTransaction),
        }
    }

    /// An error inside a block fails the whole transaction (the wire layer
    /// calls this for errors in Parse and Bind, too).
    pub fn note_failure(&mut self) {
        if let Some(open) = &mut self.txn {
            open.failed = true;
        }
    }

    pub(super) fn begin(&mut self) -> Result<StatementResult> {
        if self.txn.is_none() {
            let txn = Arc::new(self.db.begin());
            self.txn_slot().set(Some(txn.clone()));
            self.txn = Some(OpenTransaction {
                txn,
                failed: false,
                savepoints: Vec::new(),
                at_commit: Default::default(),
                drop_at_commit: Vec::new(),
            });
        }
        // Postgres only warns about a BEGIN inside a block.
        Ok(StatementResult::TransactionControl {
            tag: "BEGIN",
            starts: true,
        })
    }

    /// Runs `body` in the open transaction block, or in a block of its
    /// own that commits if `body` succeeds and rolls back if not: for a
    /// statement whose changes must land together.
    pub(super) async fn in_block<T>(
        &mut self,
        body: impl AsyncFnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let own = self.txn.is_none();
        if own {
            self.begin()?;
        }
        let result = body(self).await;
        if !own {
            return result;
        }
        match result {
            Ok(value) => {
                self.commit().await?;
                Ok(value)
            }
            Err(e) => {
                self.rollback();
                Err(e)
            }
        }
    }

    /// COMMIT: a failed block rolls back instead, and says so.
    pub(super) async fn commit(&mut self) -> Result<StatementResult> {
        let Some(open) = self.txn.take() else {
            return Ok(StatementResult::TransactionControl {
                tag: "COMMIT",
                starts: false,
            });
        };
        self.txn_slot().set(None);
        let had_ddl = open.txn.catalog().is_some();
        if open.failed {
            if had_ddl {
                self.db.invalidate_plans();
            }
            self.rolled_back();
            return Ok(StatementResult::TransactionControl {
                tag: "ROLLBACK",
                starts: false,
            });
        }
        let committed = match self.drop_temporary_at_commit(&open) {
            Ok(()) => self.db.commit(&open.txn, self.synchronous_commit()),
            Err(e) => Err(e),
        };
        let ack = match committed {
            Ok(ack) => ack,
            Err(e) => {
                if had_ddl {
                    self.db.invalidate_plans();
                }
                self.rolled_back();
                return Err(e);
            }
        };
        ack.wait().await;
        self.committed(open.at_commit);
        Ok(StatementResult::TransactionControl {
            tag: "COMMIT",
            starts: false,
        })
    }

    pub(super) fn rollback(&mut self) -> StatementResult {
        if let Some(open) = self.txn.take() {
            if open.txn.catalog().is_some() {
                // Statements prepared against the block's own tables must
                // be planned again.
                self.db.invalidate_plans();
            }
            self.rolled_back();
        }
        self.txn_slot().set(None);
        StatementResult::TransactionControl {
            tag: "ROLLBACK",
            starts: false,
        }
    }

    fn open_block(&mut self, what: &str) -> Result<&mut OpenTransaction> {
        self.txn.as_mut().ok_or_else(|| {
            QuiverError::NoActiveTransaction(format!(
                "{what} can only be used in transaction blocks"
            ))
        })
    }

    pub(super) fn savepoint(&mut self, name: String) -> Result<StatementResult> {
        let open = self.open_block("SAVEPOINT")?;
        let saved = open.txn.save();
        open.savepoints.push((name, saved));
        Ok(StatementResult::command("SAVEPOINT"))
    }

    pub(super) fn release_savepoint(&mut self, name: String) -> Result<StatementResult> {
        let open = self.open_block("RELEASE SAVEPOINT")?;
        let at = position(&open.savepoints, &name)?;
        open.savepoints.truncate(at);
        Ok(StatementResult::command("RELEASE"))
    }

    /// Undoes the writes since the savepoint and clears a failure.
    pub(super) fn rollback_to_savepoint(&mut self, name: String) -> Result<StatementResult> {
        let open = self.open_block("ROLLBACK TO SAVEPOINT")?;
        let at = position(&open.savepoints, &name)?;
        let had_ddl = open.txn.catalog().is_some();
        open.txn.restore(open.savepoints[at].1.clone());
        if had_ddl {
            self.db.invalidate_plans();
        }
        let open = self.open_block("ROLLBACK TO SAVEPOINT")?;
        open.savepoints.truncate(at + 1);
        open.failed = false;
        Ok(StatementResult::command("ROLLBACK"))
    }
}

/// The most recent savepoint of that name.
fn position(savepoints: &[(String, Saved)], name: &str) -> Result<usize> {
    savepoints
        .iter()
        .rposition(|(n, _)| n == name)
        .ok_or_else(|| QuiverError::UndefinedSavepoint(name.to_string()))
}
