//! The session's DataFusion state as planning and execution read it.
//!
//! `SessionContext::state()` copies the whole state, function registries
//! (several hundred names) included, and a statement used to take several
//! copies: for `SELECT 1` they cost more than planning it. One copy is
//! kept here instead, stamped with the start time of the session's
//! transaction (what `now()` reads: constant inside a BEGIN block, as in
//! PostgreSQL) each time it is handed out, and dropped when the session
//! changes its DataFusion state (`SET search_path`, `SET datafusion.*`).
//!
//! Beside it, a lean copy for plans that read nothing and compute only
//! expressions (`SELECT 1`, `SELECT version()`, a pool's ping): the
//! analyzer runs in full, the logical optimizer only simplifies
//! expressions (which folds `now()`), and no physical optimizer runs —
//! there is no table, join, sort or aggregate for them to improve, and they
//! cost more than the rest of such a statement.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use datafusion::execution::context::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::optimizer::simplify_expressions::SimplifyExpressions;
use parking_lot::Mutex;

use super::Session;

/// The copies, made when first asked for.
#[derive(Default)]
pub(super) struct StateCache(Mutex<Cached>);

#[derive(Default)]
struct Cached {
    state: Option<Arc<SessionState>>,
    lean: Option<Arc<SessionState>>,
    task: Option<Arc<TaskContext>>,
}

/// `kept`, its start time set to `at`, or a fresh copy made by `make` when
/// it is still in use.
fn stamped(
    kept: &mut Option<Arc<SessionState>>,
    at: DateTime<Utc>,
    make: impl FnOnce() -> SessionState,
) -> Arc<SessionState> {
    let stamp = |state: &mut SessionState| {
        state.mark_start_execution();
        state.execution_props_mut().query_execution_start_time = Some(at);
    };
    if let Some(state) = kept.as_mut() {
        if let Some(unique) = Arc::get_mut(state) {
            stamp(unique);
            return state.clone();
        }
    }
    let mut state = make();
    stamp(&mut state);
    let state = Arc::new(state);
    *kept = Some(state.clone());
    state
}

impl Session {
    /// When the session's transaction started: `now()` and
    /// `current_timestamp` (the statement's own start outside a block).
    fn transaction_start(&self) -> DateTime<Utc> {
        self.info.transaction_start().unwrap_or_else(Utc::now)
    }

    /// The state to plan with, its start time set to the transaction's.
    /// Planning that
    /// starts while an outer plan still holds the kept copy (a subquery
    /// run first) gets a copy of its own.
    pub(super) fn df_state(&self) -> Arc<SessionState> {
        let at = self.transaction_start();
        stamped(&mut self.df_cache.0.lock().state, at, || self.ctx.state())
    }

    /// The lean state, for plans without tables (see the module comment).
    pub(super) fn lean_df_state(&self) -> Arc<SessionState> {
        let at = self.transaction_start();
        stamped(&mut self.df_cache.0.lock().lean, at, || {
            SessionStateBuilder::new_from_existing(self.ctx.state())
                .with_optimizer_rules(vec![Arc::new(SimplifyExpressions::new())])
                .with_physical_optimizer_rules(Vec::new())
                .build()
        })
    }

    /// What a plan runs with (settings, functions, memory).
    pub(super) fn task_ctx(&self) -> Arc<TaskContext> {
        let mut cached = self.df_cache.0.lock();
        cached
            .task
            .get_or_insert_with(|| Arc::new(TaskContext::from(&*self.ctx.state_ref().read())))
            .clone()
    }

    /// Changes the session's DataFusion state; later statements see it.
    pub(super) fn change_df_state<R>(&self, change: impl FnOnce(&mut SessionState) -> R) -> R {
        let changed = change(&mut self.ctx.state_ref().write());
        *self.df_cache.0.lock() = Cached::default();
        changed
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::Database;
    use crate::session::{Session, StatementResult};

    async fn one_value(session: &mut Session, sql: &str) -> String {
        let mut results = session.execute_sql(sql).await;
        let Some(Ok(result)) = results.pop() else {
            panic!("{sql} failed");
        };
        let other = result.collected().await.unwrap();
        let StatementResult::Rows { batches, .. } = other else {
            panic!("{sql} returned no rows: {other:?}");
        };
        datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap()
    }

    #[tokio::test]
    async fn kept_state_follows_changes_and_the_clock() {
        let mut session = Session::new(Database::new());
        session.execute_sql("CREATE SCHEMA other").await;
        session
            .execute_sql("CREATE TABLE other.t (x int); INSERT INTO other.t VALUES (7)")
            .await;
        let first = one_value(&mut session, "SELECT now()::text").await;
        std::thread::sleep(std::time::Duration::from_millis(5));
        let second = one_value(&mut session, "SELECT now()::text").await;
        assert_ne!(first, second, "each statement reads the clock");
        // Inside a block, now() is the transaction's start (PostgreSQL);
        // statement_timestamp() and clock_timestamp() move on.
        session.execute_sql("BEGIN").await;
        let begun = one_value(&mut session, "SELECT now()::text").await;
        let statement = one_value(&mut session, "SELECT statement_timestamp()::text").await;
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(one_value(&mut session, "SELECT now()::text").await, begun);
        assert_eq!(
            one_value(&mut session, "SELECT transaction_timestamp()::text").await,
            begun
        );
        assert_ne!(
            one_value(&mut session, "SELECT statement_timestamp()::text").await,
            statement
        );
        assert_eq!(
            one_value(&mut session, "SELECT clock_timestamp() > now()").await,
            "true"
        );
        session.execute_sql("COMMIT").await;
        assert_ne!(one_value(&mut session, "SELECT now()::text").await, begun);
        session.execute_sql("SET search_path = other").await;
        assert_eq!(one_value(&mut session, "SELECT x FROM t").await, "7");
        session
            .execute_sql("SET datafusion.execution.batch_size = 17")
            .await;
        assert_eq!(
            one_value(&mut session, "SHOW datafusion.execution.batch_size").await,
            "17"
        );
    }
}
