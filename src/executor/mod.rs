//! Where query work runs, and how much of it at once.
//!
//! A server runs query execution (DataFusion's CPU-bound operators) on a
//! thread pool of its own, apart from the runtime that accepts
//! connections, logs users in, reads messages and answers cancel
//! requests: a heavy query never makes the server unreachable (the
//! pattern of InfluxDB 3's `DedicatedExecutor`). Embedded use runs on the
//! caller's runtime.
//!
//! Admission: at most `slots` queries that read tables execute at once;
//! the rest wait for a slot in arrival order. A query holds its slot only
//! while it computes: one whose client is not reading its rows (a
//! suspended portal, a slow network) gives its slot back until there is
//! room for more rows.
//!
//! Rows come back through bounded channels, in partition order (a scan's
//! partitions are consecutive slices of the table, so rows come in table
//! order when the plan does not reorder them). A cancel, a deadline, or
//! the reader going away stops every operator at its next check point
//! (see [`cancel`]).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ExecutionPlan, ExecutionPlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use tokio::sync::{mpsc, Mutex, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::QuiverError;

mod cancel;

/// Batches a partition may run ahead of its reader.
const CHANNEL_BATCHES: usize = 2;

/// The query thread pool and its admission slots.
pub struct QueryExecutor {
    /// The dedicated runtime; None runs work on the caller's runtime.
    runtime: Option<tokio::runtime::Runtime>,
    slots: Arc<Semaphore>,
    slot_count: usize,
    /// Queries waiting for a slot now.
    waiting: Arc<AtomicUsize>,
}

impl std::fmt::Debug for QueryExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryExecutor")
            .field("dedicated", &self.runtime.is_some())
            .field("slots", &self.slot_count)
            .finish()
    }
}

impl Drop for QueryExecutor {
    fn drop(&mut self) {
        // Dropping a runtime inside another one would block it.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// What stops a running query early.
#[derive(Clone, Debug)]
pub struct Control {
    /// The statement's: cancelled by a cancel request or
    /// pg_cancel_backend.
    pub cancel: CancellationToken,
    /// statement_timeout.
    pub deadline: Option<Instant>,
    /// This execution's: cancelled with the statement, at the deadline,
    /// or when the reader of the rows goes away. Operators check it.
    pub execution: CancellationToken,
}

impl Control {
    pub fn new(cancel: CancellationToken, deadline: Option<Instant>) -> Control {
        Control {
            execution: cancel.child_token(),
            cancel,
            deadline,
        }
    }

    /// Why the query stops, once it must.
    pub fn reason(&self) -> QuiverError {
        match self.deadline {
            Some(deadline) if !self.cancel.is_cancelled() && Instant::now() >= deadline => {
                QuiverError::StatementTimeout
            }
            _ => QuiverError::QueryCanceled,
        }
    }

    /// Why the query must stop now, if it must.
    fn stopped(&self) -> Option<QuiverError> {
        if self.cancel.is_cancelled() {
            return Some(QuiverError::QueryCanceled);
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Some(QuiverError::StatementTimeout),
            _ => None,
        }
    }

    /// Completes when the query must stop, with the reason.
    async fn stop(&self) -> QuiverError {
        let deadline = async {
            match self.deadline {
                Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = self.cancel.cancelled() => QuiverError::QueryCanceled,
            _ = deadline => QuiverError::StatementTimeout,
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Control::new(CancellationToken::new(), None)
    }
}

/// A query's admission: holds one slot while any of its partitions
/// computes.
pub struct Slot {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    state: Mutex<SlotState>,
}

struct SlotState {
    permit: Option<OwnedSemaphorePermit>,
    computing: usize,
}

impl Slot {
    /// Waits until this partition may compute (taking the query's slot
    /// back if it had given it up).
    async fn enter(&self) {
        let mut state = self.state.lock().await;
        if state.permit.is_none() {
            let _counted = Waiting::count(&self.waiting);
            state.permit = self.slots.clone().acquire_owned().await.ok();
        }
        state.computing += 1;
    }

    /// This partition waits for its reader: the slot goes back when no
    /// partition of the query computes.
    async fn leave(&self) {
        let mut state = self.state.lock().await;
        state.computing = state.computing.saturating_sub(1);
        if state.computing == 0 {
            state.permit = None;
        }
    }
}

/// Counts a waiter for as long as it lives (a wait may be given up).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl QueryExecutor {
    /// A dedicated pool of `threads` threads; `slots` queries at once.
    pub fn dedicated(threads: usize, slots: usize) -> std::io::Result<QueryExecutor> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("quiver-query")
            // Planning and evaluating deep expressions recurse.
            .thread_stack_size(64 << 20)
            .enable_all()
            .build()?;
        let mut executor = QueryExecutor::inline(slots);
        executor.runtime = Some(runtime);
        Ok(executor)
    }

    /// Runs query work on the caller's runtime (embedded use).
    pub fn inline(slots: usize) -> QueryExecutor {
        let slots = slots.max(1);
        QueryExecutor {
            runtime: None,
            slots: Arc::new(Semaphore::new(slots)),
            slot_count: slots,
            waiting: Default::default(),
        }
    }

    /// Queries that may execute at once.
    pub fn slot_count(&self) -> usize {
        self.slot_count
    }

    /// Queries waiting for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Queries executing now.
    pub fn running(&self) -> usize {
        self.slot_count - self.slots.available_permits()
    }

    /// Waits for a slot, in arrival order.
    pub async fn admit(&self) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            slots: self.slots.clone(),
            waiting: self.waiting.clone(),
            state: Mutex::new(SlotState {
                permit: None,
                computing: 0,
            }),
        });
        // Take the slot now (the caller shows the wait), and keep it
        // until the first partition starts.
        slot.enter().await;
        slot
    }

    /// Starts work on the query threads (`heavy`) or on the caller's
    /// runtime: a query that reads no tables must not wait behind the
    /// ones that do.
    fn spawn<F>(&self, heavy: bool, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match (&self.runtime, heavy) {
            (Some(runtime), true) => drop(runtime.spawn(work)),
            _ => drop(tokio::spawn(work)),
        }
    }

    /// Executes `plan` on the query threads. Its rows come back in
    /// partition order through bounded channels; `slot` (None for queries
    /// that read no tables) is held while a partition computes.
    pub async fn execute(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: Arc<TaskContext>,
        control: Control,
        slot: Option<Arc<Slot>>,
    ) -> SendableRecordBatchStream {
        let plan = match cancel::insert_check_points(plan.clone(), &control) {
            Ok(checked) => checked,
            Err(e) => {
                tracing::warn!("running a query without its check points: {e}");
                plan
            }
        };
        if let Some(deadline) = control.deadline {
            // Stops the operators at the deadline even while no reader
            // polls (the reader reports the timeout itself).
            let execution = control.execution.clone();
            self.spawn(slot.is_some(), async move {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline.into()) => execution.cancel(),
                    _ = execution.cancelled() => {}
                }
            });
        }
        let schema = plan.schema();
        let partitions = plan.output_partitioning().partition_count().max(1);
        if let Some(slot) = &slot {
            // The admission counted as one computing partition; now every
            // partition does, until it waits for its reader.
            slot.state.lock().await.computing += partitions - 1;
        }
        let mut receivers = Vec::with_capacity(partitions);
        for partition in 0..partitions {
            let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
            receivers.push(rx);
            // Executed where it runs: operators start tasks of their own
            // (repartitioning, merging), on the runtime that executes them.
            let (plan, context) = (plan.clone(), context.clone());
            let (control, slot) = (control.clone(), slot.clone());
            self.spawn(slot.is_some(), async move {
                let stream = plan.execute(partition, context);
                drive(stream, tx, control, slot).await
            });
        }
        ordered(schema, receivers, control)
    }
}

/// Polls one partition and sends its batches. The partition counts as
/// computing for the query's slot from the start; it gives the slot up
/// while its reader is behind and takes it back to go on.
async fn drive(
    stream: Result<SendableRecordBatchStream, DataFusionError>,
    tx: mpsc::Sender<Result<RecordBatch, DataFusionError>>,
    control: Control,
    slot: Option<Arc<Slot>>,
) {
    let counted = match stream {
        Ok(stream) => send_all(stream, &tx, &control, slot.as_deref()).await,
        Err(e) => {
            let _ = tx.try_send(Err(e));
            true
        }
    };
    if let (Some(slot), true) = (&slot, counted) {
        slot.leave().await;
    }
}

/// Sends the partition's batches until it ends, fails, is stopped or its
/// reader goes away. Returns whether the partition still counts as
/// computing.
async fn send_all(
    mut stream: SendableRecordBatchStream,
    tx: &mpsc::Sender<Result<RecordBatch, DataFusionError>>,
    control: &Control,
    slot: Option<&Slot>,
) -> bool {
    loop {
        let next = tokio::select! {
            next = stream.next() => next,
            reason = control.stop() => Some(Err(external(reason))),
            // The reader went away: stop computing.
            _ = tx.closed() => return true,
        };
        let Some(next) = next else { return true };
        let failed = next.is_err();
        match tx.try_send(next) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return true,
            Err(mpsc::error::TrySendError::Full(next)) => {
                if let Some(slot) = slot {
                    slot.leave().await;
                }
                if tx.send(next).await.is_err() {
                    return false;
                }
                if let Some(slot) = slot {
                    tokio::select! {
                        _ = slot.enter() => {}
                        _ = tx.closed() => return false,
                    }
                }
            }
        }
        if failed {
            return true;
        }
    }
}

/// The partitions' batches, partition after partition, as they arrive.
fn ordered(
    schema: SchemaRef,
    receivers: Vec<mpsc::Receiver<Result<RecordBatch, DataFusionError>>>,
    control: Control,
) -> SendableRecordBatchStream {
    let batches = futures::stream::iter(receivers)
        .flat_map(|mut rx| futures::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    // When the reader drops the rows, every operator stops.
    let stop_on_drop = Arc::new(control.execution.clone().drop_guard());
    // The reader sees a cancel or timeout at once, even while a partition
    // is deep in a computation.
    let stream = futures::stream::unfold(
        (Box::pin(batches), control, false),
        move |(mut batches, control, done)| {
            let _stop_on_drop = stop_on_drop.clone();
            async move {
                if done {
                    return None;
                }
                if let Some(reason) = control.stopped() {
                    return Some((Err(external(reason)), (batches, control, true)));
                }
                tokio::select! {
                    next = batches.next() => {
                        let next = next?;
                        let done = next.is_err();
                        Some((next, (batches, control, done)))
                    }
                    reason = control.stop() => Some((Err(external(reason)), (batches, control, true))),
                }
            }
        },
    );
    Box::pin(RecordBatchStreamAdapter::new(schema, stream))
}

fn external(e: QuiverError) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::datasource::source::DataSourceExec;

    fn plan(partitions: usize, per_partition: i32) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int32, false)]));
        let parts: Vec<Vec<RecordBatch>> = (0..partitions as i32)
            .map(|p| {
                (0..per_partition)
                    .map(|b| {
                        RecordBatch::try_new(
                            schema.clone(),
                            vec![Arc::new(Int32Array::from(vec![p * 1000 + b]))],
                        )
                        .unwrap()
                    })
                    .collect()
            })
            .collect();
        DataSourceExec::from_data_source(MemorySourceConfig::try_new(&parts, schema, None).unwrap())
    }

    async fn values(stream: SendableRecordBatchStream) -> Vec<i32> {
        let batches: Vec<RecordBatch> = stream.map(|b| b.unwrap()).collect().await;
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn rows_come_back_in_partition_order() {
        let executor = QueryExecutor::dedicated(2, 2).unwrap();
        let slot = executor.admit().await;
        let stream = executor
            .execute(
                plan(3, 5),
                Arc::new(TaskContext::default()),
                Control::default(),
                Some(slot),
            )
            .await;
        let expected: Vec<i32> = (0..3)
            .flat_map(|p| (0..5).map(move |b| p * 1000 + b))
            .collect();
        assert_eq!(values(stream).await, expected);
        // The slot is back once the query is done.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(executor.running(), 0);
    }

    #[tokio::test]
    async fn a_query_that_is_not_read_gives_its_slot_back() {
        let executor = QueryExecutor::inline(1);
        let slot = executor.admit().await;
        let stalled = executor
            .execute(
                plan(1, 100),
                Arc::new(TaskContext::default()),
                Control::default(),
                Some(slot),
            )
            .await;
        // The first query's reader does not read: a second query still
        // gets the only slot.
        let second = tokio::time::timeout(std::time::Duration::from_secs(5), executor.admit())
            .await
            .expect("the slot of a stalled query is free");
        drop(second);
        assert_eq!(values(stalled).await.len(), 100);
    }

    #[tokio::test]
    async fn a_cancel_ends_the_stream_with_57014() {
        let executor = QueryExecutor::inline(1);
        let control = Control::default();
        let mut stream = executor
            .execute(
                plan(1, 100),
                Arc::new(TaskContext::default()),
                control.clone(),
                None,
            )
            .await;
        assert!(stream.next().await.unwrap().is_ok());
        control.cancel.cancel();
        let err = stream.next().await.unwrap().unwrap_err();
        assert!(err.to_string().contains("canceling statement"), "{err}");
        assert!(stream.next().await.is_none());
    }
}
