//! Running a statement's plan: on the query threads, after waiting for an
//! execution slot when it reads tables, stopped by a cancel or the
//! statement timeout; and the rows of a result that is still being
//! produced while the front end sends it.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use futures::{FutureExt, Stream, StreamExt};

use super::Session;
use crate::engine::sessions::SessionInfo;
use crate::error::Result;
use crate::executor::{Control, Slot};
use crate::sql::catalog::{INFORMATION_SCHEMA, PG_CATALOG};
use crate::sql::RowStream;

/// A plan after DataFusion's analyzer (types coerced, wildcards
/// expanded): the step that settles a result's column types, done once
/// for both the columns announced and the plan run. `None` for EXPLAIN,
/// which DataFusion analyzes itself to show each step.
pub(super) struct Analyzed(Option<datafusion::error::Result<LogicalPlan>>);

impl Analyzed {
    pub(super) fn of(session: &Session, plan: &LogicalPlan) -> Analyzed {
        if matches!(plan, LogicalPlan::Explain(_)) {
            return Analyzed(None);
        }
        let state = session.df_state();
        Analyzed(Some(state.analyzer().execute_and_check(
            plan.clone(),
            state.config_options(),
            |_, _| {},
        )))
    }

    /// The columns of the plan's rows (`plan` is the one analyzed).
    pub(super) fn schema(&self, plan: &LogicalPlan) -> SchemaRef {
        match &self.0 {
            Some(Ok(analyzed)) => Arc::new(analyzed.schema().as_arrow().clone()),
            _ => Arc::new(plan.schema().as_arrow().clone()),
        }
    }
}

/// What pg_stat_activity's wait_event shows while a query waits for an
/// execution slot.
pub const QUERY_QUEUE: &str = "QueryQueue";

/// Whether a plan reads tables (ours, files, table functions): such a
/// query runs on the query threads and waits for an execution slot. One
/// that reads only the system catalogs, or nothing (`SELECT 1`), runs at
/// once where it was asked: an operator's look at pg_stat_activity never
/// queues behind the queries it is looking at.
pub fn reads_tables(plan: &LogicalPlan) -> bool {
    let mut reads = false;
    let _ = plan.apply_with_subqueries(|node| {
        let system = match node {
            LogicalPlan::TableScan(scan) => matches!(
                scan.table_name.schema(),
                Some(PG_CATALOG) | Some(INFORMATION_SCHEMA)
            ),
            LogicalPlan::RecursiveQuery(_) => false,
            _ => return Ok(TreeNodeRecursion::Continue),
        };
        if system {
            Ok(TreeNodeRecursion::Continue)
        } else {
            reads = true;
            Ok(TreeNodeRecursion::Stop)
        }
    });
    reads
}

/// Whether a plan reads nothing and only computes expressions: the
/// nodes of `SELECT 1, now()` or `VALUES (1)`, without subqueries.
fn computes_only(plan: &LogicalPlan) -> bool {
    use datafusion::logical_expr::Expr;
    let mut only = true;
    let _ = plan.apply(|node| {
        only &= matches!(
            node,
            LogicalPlan::Projection(_)
                | LogicalPlan::EmptyRelation(_)
                | LogicalPlan::Values(_)
                | LogicalPlan::SubqueryAlias(_)
        ) && node.expressions().iter().all(|e| {
            !e.exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_)
                        | Expr::InSubquery(_)
                        | Expr::Exists(_)
                        | Expr::SetComparison(_)
                        | Expr::OuterReferenceColumn(..)
                ))
            })
            .unwrap_or(true)
        });
        Ok(if only {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    only
}

impl Session {
    /// The columns a plan's rows have: DataFusion settles some result
    /// types only when it analyzes the plan for execution (the common
    /// type of UNION branches, for one), and the rows come in those.
    pub(super) fn typed_schema(&self, plan: &LogicalPlan) -> SchemaRef {
        Analyzed::of(self, plan).schema(plan)
    }

    /// What stops the running statement: a cancel, or its timeout.
    pub(super) fn control(&self) -> Control {
        Control::new(self.info.statement_token(), self.deadline)
    }

    /// Waits for an execution slot, showing the wait in pg_stat_activity.
    async fn admit_query(&self) -> Arc<Slot> {
        let executor = self.db.executor();
        /// Clears the wait event however the wait ends: with a slot, or
        /// dropped by a cancel or a timeout.
        struct Waiting<'a>(&'a SessionInfo);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.set_wait_event(None);
            }
        }
        self.info.set_wait_event(Some(QUERY_QUEUE));
        let _waiting = Waiting(&self.info);
        executor.admit().await
    }

    /// Executes a logical plan and returns its rows as they come.
    pub(super) async fn execute_plan(&self, plan: LogicalPlan) -> Result<RowStream> {
        let analyzed = Analyzed::of(self, &plan);
        self.execute_analyzed(plan, analyzed).await
    }

    /// Executes a logical plan already analyzed (see [`Analyzed`]).
    pub(super) async fn execute_analyzed(
        &self,
        plan: LogicalPlan,
        analyzed: Analyzed,
    ) -> Result<RowStream> {
        let heavy = reads_tables(&plan);
        let state = match &analyzed.0 {
            Some(Ok(analyzed)) if computes_only(analyzed) => self.lean_df_state(),
            _ => self.df_state(),
        };
        let planned = match analyzed.0 {
            Some(Ok(analyzed)) => match state.optimizer().optimize(analyzed, &*state, |_, _| {}) {
                Ok(optimized) => {
                    state
                        .query_planner()
                        .create_physical_plan(&optimized, &*state)
                        .await
                }
                Err(e) => Err(e),
            },
            Some(Err(e)) => Err(e),
            None => state.create_physical_plan(&plan).await,
        };
        let physical = match planned {
            Ok(physical) => physical,
            Err(e) if super::init_plans::is_unplanned_subquery(&e) => {
                // Uncorrelated ones run once first; correlated ones row by
                // row, the lowest node first.
                let plan = self.run_init_plans(plan).await?;
                let analyzed =
                    state
                        .analyzer()
                        .execute_and_check(plan, state.config_options(), |_, _| {})?;
                self.physical_of_analyzed(analyzed).await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self.execute_physical(physical, heavy).await)
    }

    /// The physical plan of a plan whose types are settled (analyzed), not
    /// analyzed again: our analyzer rules are not idempotent (a second
    /// pass would make `sum(bigint)`, coerced from `sum(int)`, a numeric).
    /// Correlated subqueries DataFusion leaves in place are computed row
    /// by row ([`super::sub_plans`]).
    async fn physical_of_analyzed(
        &self,
        plan: LogicalPlan,
    ) -> Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let state = self.df_state();
        let mut plan = plan;
        loop {
            // Lateral joins DataFusion's rule fails on run as a nested
            // loop, like the ones it leaves in place.
            let optimized = match state.optimizer().optimize(plan.clone(), &*state, |_, _| {}) {
                Ok(optimized) => optimized,
                Err(e) if super::init_plans::is_failed_lateral_rule(&e) => {
                    match Box::pin(self.run_one_lateral_join(plan)).await? {
                        Some(computed) => {
                            plan = computed;
                            continue;
                        }
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            };
            match state
                .query_planner()
                .create_physical_plan(&optimized, &*state)
                .await
            {
                Ok(physical) => return Ok(physical),
                Err(e) if super::init_plans::is_unplanned_subquery(&e) => {
                    let computed = match Box::pin(self.run_one_lateral_join(plan)).await? {
                        Some(computed) => Some(computed),
                        None => Box::pin(self.run_one_sub_plan(optimized)).await?,
                    };
                    match computed {
                        Some(computed) => plan = computed,
                        None => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Executes a plan whose types are settled (see
    /// [`Self::physical_of_analyzed`]) to the end.
    pub(super) async fn collect_analyzed(&self, plan: LogicalPlan) -> Result<Vec<RecordBatch>> {
        let heavy = reads_tables(&plan);
        let physical = self.physical_of_analyzed(plan).await?;
        self.execute_physical(physical, heavy).await.collect().await
    }

    /// Runs a physical plan (a heavy one in an execution slot).
    async fn execute_physical(
        &self,
        physical: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
        heavy: bool,
    ) -> RowStream {
        let slot = match heavy {
            true => Some(self.admit_query().await),
            false => None,
        };
        let stream = self
            .db
            .executor()
            .execute(physical, self.task_ctx(), self.control(), slot)
            .await;
        RowStream::new(stream)
    }

    /// Executes a logical plan to the end.
    pub(super) async fn collect_plan(&self, plan: LogicalPlan) -> Result<Vec<RecordBatch>> {
        self.execute_plan(plan).await?.collect().await
    }

    /// The rows of a result the front end is still sending end the
    /// statement when they are all out: pg_stat_activity shows it active
    /// until then, and an error among them fails the open transaction.
    pub(super) fn finish_when_sent(&self, rows: RowStream, in_block: bool) -> RowStream {
        let schema = rows.schema();
        let guarded = Finishing {
            rows,
            sequences: self.handle.sequences.clone(),
            durable: None,
            info: self.info.clone(),
            failed: self.stream_failed.clone(),
            in_block,
            errored: false,
            finished: false,
        };
        RowStream::new(Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema,
                guarded.map(|batch| batch.map_err(|e| DataFusionError::External(Box::new(e)))),
            ),
        ))
    }

    /// Whether rows sent after the last statement returned failed (the
    /// open block is then failed).
    pub(super) fn take_stream_failure(&mut self) {
        if self.stream_failed.swap(false, Ordering::AcqRel) {
            self.note_failure();
        }
    }

    /// Whether rows still being sent failed (before the next statement
    /// notices).
    pub(super) fn stream_failed(&self) -> bool {
        self.stream_failed.load(Ordering::Acquire)
    }
}

/// A statement's rows with what must happen when they are all sent.
struct Finishing {
    rows: RowStream,
    /// Sequence values among the rows are covered by a durable record
    /// before the end of the rows is reported.
    sequences: Arc<crate::sql::sequences::SequenceCalls>,
    durable: Option<futures::future::BoxFuture<'static, ()>>,
    info: Arc<SessionInfo>,
    failed: Arc<AtomicBool>,
    in_block: bool,
    errored: bool,
    finished: bool,
}

impl Finishing {
    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let failed_block = self.in_block && self.errored;
        if failed_block {
            self.failed.store(true, Ordering::Release);
        }
        self.info.end_query(self.in_block, failed_block);
    }
}

impl Stream for Finishing {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(durable) = &mut self.durable {
            if durable.poll_unpin(cx).is_pending() {
                return Poll::Pending;
            }
            // The rows had ended.
            self.durable = None;
            self.finish();
            return Poll::Ready(None);
        }
        let next = self.rows.poll_next_unpin(cx);
        if matches!(next, Poll::Ready(None)) && self.sequences.has_pending() {
            let sequences = self.sequences.clone();
            let mut durable: futures::future::BoxFuture<'static, ()> =
                Box::pin(async move { sequences.durable().await });
            if durable.poll_unpin(cx).is_pending() {
                self.durable = Some(durable);
                return Poll::Pending;
            }
        }
        match &next {
            Poll::Ready(Some(Err(_))) => {
                self.errored = true;
                self.finish();
            }
            Poll::Ready(None) => self.finish(),
            _ => {}
        }
        next
    }
}

impl Drop for Finishing {
    fn drop(&mut self) {
        // Not read to the end (the client went away, a portal closed).
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::util::pretty::pretty_format_batches;

    use super::Analyzed;
    use crate::engine::Database;
    use crate::session::{Session, StatementResult};

    async fn text(session: &mut Session, sql: &str) -> String {
        let mut last = String::new();
        for result in session.execute_sql(sql).await {
            if let StatementResult::Rows { batches, .. } =
                result.unwrap().collected().await.unwrap()
            {
                last = pretty_format_batches(&batches).unwrap().to_string();
            }
        }
        last
    }

    #[tokio::test]
    async fn a_filter_over_a_scan_is_sized_by_the_rows_it_keeps_and_side_effects_are_never_tried() {
        let mut session = Session::new(Database::new());
        text(
            &mut session,
            "CREATE TABLE big AS SELECT g AS k, g % 1000 AS a, g % 997 AS b
                 FROM generate_series(1, 200000) g;
             CREATE TABLE mid AS SELECT g AS k FROM generate_series(1, 100000) g;
             CREATE SEQUENCE s;
             SET datafusion.explain.show_statistics = true",
        )
        .await;
        // 2,000 of 200,000 rows pass: 1%, not DataFusion's 20% (which made
        // `big` the larger side and so the probe side).
        let plan = text(
            &mut session,
            "EXPLAIN SELECT count(*) FROM mid JOIN big ON mid.k = big.k
             WHERE big.a < big.b - 990",
        )
        .await;
        assert!(plan.contains("FilterExec"), "{plan}");
        assert!(plan.contains("Rows=Inexact(2000)"), "{plan}");
        // nextval is not called on sample rows.
        text(
            &mut session,
            "EXPLAIN SELECT count(*) FROM big WHERE a < b - nextval('s')",
        )
        .await;
        let next = text(&mut session, "SELECT nextval('s')").await;
        assert!(next.contains("| 1 "), "{next}");
    }

    #[tokio::test]
    async fn conjuncts_run_most_selective_first_unless_one_can_fail() {
        let mut session = Session::new(Database::new());
        text(
            &mut session,
            "CREATE TABLE big AS SELECT g AS k, g % 1000 AS a, (g % 7)::text AS t
                 FROM generate_series(1, 200000) g",
        )
        .await;
        let predicate = |plan: &str| {
            let line = plan.lines().find(|l| l.contains("FilterExec")).unwrap();
            line.split("FilterExec: ").nth(1).unwrap().to_string()
        };
        // `a = 5` keeps 0.1%, the text test about 86%: the equality first,
        // so the text test runs only on the rows it keeps.
        let plan = text(
            &mut session,
            "EXPLAIN SELECT count(*) FROM big WHERE t <> '3' AND k > 10 AND a = 5",
        )
        .await;
        let order = predicate(&plan);
        assert!(order.starts_with("a@"), "{order}");
        assert!(
            order.find("k@").unwrap() < order.find("t@").unwrap(),
            "{order}"
        );
        let answer = text(
            &mut session,
            "SELECT count(*) FROM big WHERE t <> '3' AND k > 10 AND a = 5",
        )
        .await;
        assert!(answer.contains("| 170 "), "{answer}");
        // A conjunct that may fail (a division) keeps the query's order.
        let plan = text(
            &mut session,
            "EXPLAIN SELECT count(*) FROM big WHERE t <> '3' AND 1000 / (a + 1) > 2 AND a = 5",
        )
        .await;
        assert!(predicate(&plan).starts_with("t@"), "{plan}");
    }

    #[tokio::test]
    async fn chains_of_more_than_ten_tables_are_ordered_greedily() {
        let mut session = Session::new(Database::new());
        let mut setup = String::new();
        for t in 0..12 {
            setup += &format!(
                "CREATE TABLE t{t} AS SELECT g AS k, g % 7 AS v, g % 1000 AS w
                 FROM generate_series(1, 3000) g;"
            );
        }
        text(&mut session, &setup).await;
        let from: Vec<String> = (0..12).map(|t| format!("t{t}")).collect();
        let chain: Vec<String> = (0..11).map(|t| format!("t{t}.k = t{}.k", t + 1)).collect();
        let sql = format!(
            "SELECT count(*), sum(t0.v) FROM {} WHERE {} AND t11.w = 42",
            from.join(", "),
            chain.join(" AND ")
        );
        let answer = text(&mut session, &sql).await;
        // k = 42, 1042, 2042: v = 0, 6, 5.
        assert!(answer.contains("| 3        | 11 "), "{answer}");
        // FROM order would join t0 and t1 (3000 rows) first; the greedy
        // order starts from the three rows of t11.
        let plan = text(&mut session, &format!("EXPLAIN {sql}")).await;
        let deepest = plan
            .lines()
            .rfind(|l| l.contains("Inner Join"))
            .unwrap()
            .to_string();
        assert!(deepest.contains("t11.k"), "{plan}");
    }

    #[tokio::test]
    async fn only_plans_that_read_nothing_take_the_lean_path() {
        let session = Session::new(Database::new());
        for (sql, lean) in [
            ("SELECT 1", true),
            ("SELECT now(), version()", true),
            ("SELECT * FROM (VALUES (1), (2)) v(x)", true),
            ("SELECT (SELECT 1)", false),
            ("SELECT 1 WHERE EXISTS (SELECT 1)", false),
            ("SELECT 1 UNION SELECT 2", false),
            ("SELECT * FROM generate_series(1, 3)", false),
            ("SELECT count(*) FROM (VALUES (1)) v(x)", false),
        ] {
            let statement = Session::parse(sql).unwrap().pop_front().unwrap();
            let plan = session.plan(statement).await.unwrap();
            let Analyzed(Some(Ok(analyzed))) = Analyzed::of(&session, &plan) else {
                panic!("{sql} did not analyze");
            };
            assert_eq!(super::computes_only(&analyzed), lean, "{sql}");
        }
    }
}
