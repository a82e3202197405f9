//! Running SQL text: statements in order, a message's statements in one
//! implicit transaction (run again when it loses a write race), each under
//! the statement timeout, with metrics and the slow-statement log.

use std::sync::Arc;
use std::time::Duration;

use datafusion::sql::parser::Statement as DfStatement;

use super::classify::classify;
use super::script::{parse_script, Parsed};
use super::TxnState;
use super::{Session, StatementResult, IMPLICIT_RETRIES};
use crate::engine::CommitWatch;
use crate::error::{QuiverError, Result};
use crate::metrics;

impl Session {
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
    pub(super) fn end_statement(&mut self, result: StatementResult) -> StatementResult {
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
    pub(super) fn log_statement(&self, sql: &str, elapsed: Duration, failed: bool) {
        let ms = elapsed.as_secs_f64() * 1000.0;
        if self.db.is_slow(elapsed) {
            let user = self.info.identity().user;
            tracing::info!(%user, duration_ms = ms, failed, statement = sql, "slow statement");
        } else {
            tracing::debug!(duration_ms = ms, failed, statement = sql, "statement");
        }
    }

    /// Tells pg_stat_activity whether the session is idle, and in a block.
    pub(super) fn publish_state(&self) {
        let state = self.transaction_state();
        self.info.end_query(
            !matches!(state, TxnState::Idle),
            matches!(state, TxnState::Failed),
        );
    }

    pub(super) async fn execute_sql_inner(&mut self, sql: &str) -> Vec<Result<StatementResult>> {
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
                .any(|p| matches!(p, Parsed::Statement(s, _) if crate::sql::copy_options::is_copy_from_stdin(s)))
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
                .all(|p| matches!(p, Parsed::Statement(s, _) if classify(s).implicit_block));
        if !implicit {
            return self.run_statements(statements).await;
        }
        let _turns = self
            .writer_turns(statements.iter().filter_map(|p| match p {
                Parsed::Statement(statement @ DfStatement::Statement(s), _)
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
    pub(super) async fn run_statements(
        &mut self,
        statements: Vec<Parsed>,
    ) -> Vec<Result<StatementResult>> {
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
                Parsed::Move(fetch) => match self.admit(None) {
                    Ok(()) => self
                        .execute_statement(fetch)
                        .await
                        .and_then(super::prepared::moved),
                    Err(e) => Err(e),
                },
                Parsed::SetConstraints(names, deferred) => match self.admit(None) {
                    Ok(()) => self.set_constraints(names, deferred),
                    Err(e) => Err(e),
                },
                Parsed::Sequence(statement) => match self.admit(None) {
                    Ok(()) => {
                        self.run_with_timeout(|s| Box::pin(s.sequence_statement(statement)))
                            .await
                    }
                    Err(e) => Err(e),
                },
                Parsed::Statement(statement, overriding) => {
                    let kind = classify(&statement).kind;
                    let started = std::time::Instant::now();
                    let result = match self
                        .admit(Some(&statement))
                        .and_then(|_| self.authorize(&statement))
                    {
                        Ok(()) => {
                            let outer = self.overriding;
                            self.overriding = overriding.or(outer);
                            let result = self
                                .run_with_timeout(|s| Box::pin(s.execute_statement(statement)))
                                .await;
                            self.overriding = outer;
                            result
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

    /// CHECKPOINT: writes the tables to Parquet off the async runtime.
    pub(super) async fn checkpoint(&mut self) -> Result<StatementResult> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.checkpoint())
            .await
            .map_err(|e| QuiverError::Internal(format!("checkpoint failed: {e}")))??;
        Ok(StatementResult::command("CHECKPOINT"))
    }

    /// Runs `f` under the session's `statement_timeout`.
    pub(super) async fn run_with_timeout<F>(&mut self, f: F) -> Result<StatementResult>
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
        *self.handle.deadline.lock() = self.deadline;
        // A cancel or the timeout stops the statement wherever it is
        // (rows it streams stop on their own: see `control`).
        // Once the statement has logged a commit it runs to its end: the
        // stop then only cuts short a wait for synchronous replicas.
        let control = self.control();
        let watch = Arc::new(CommitWatch::new(self.synchronous_commit()));
        let stopped = async {
            let reason = match control.deadline {
                Some(deadline) => tokio::select! {
                    _ = control.cancel.cancelled() => QuiverError::QueryCanceled,
                    _ = tokio::time::sleep_until(deadline.into()) => QuiverError::StatementTimeout,
                },
                None => {
                    control.cancel.cancelled().await;
                    QuiverError::QueryCanceled
                }
            };
            if watch.logged() {
                watch.stop_waiting();
                return std::future::pending().await;
            }
            reason
        };
        let result = tokio::select! {
            result = watch.watch(f(self)) => result,
            reason = stopped => Err(reason),
        };
        if watch.gave_up() {
            let why = if control.cancel.is_cancelled() {
                "user request"
            } else {
                "statement timeout"
            };
            // PostgreSQL's words, its SQLSTATE (01000, warning) included.
            self.warning(
                "01000",
                format!("canceling wait for synchronous replication due to {why}"),
                "The transaction has already committed locally, but might not have been \
                 replicated to the standby."
                    .into(),
            );
        }
        // Sequence values the statement took reach the client only once
        // the record that covers them is durable (rows still streaming
        // wait at their end, see `finish_when_sent`).
        self.handle.sequences.durable().await;
        let after = self.after_statement(result.is_ok());
        self.db.maybe_checkpoint();
        result.and_then(|r| after.map(|_| r))
    }
}
