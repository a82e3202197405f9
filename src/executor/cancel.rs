//! Stopping a query's operators where they compute. DataFusion operators
//! yield to the scheduler only between batches of their sources, and some
//! loop far longer inside one poll: an aggregate pulls batches from a
//! cross join that never waits for anything, a nested-loop join compares
//! every build row with a probe batch before it looks at its input again.
//! A cancel, a timeout or a vanished client must stop them all within a
//! moment, so every operator's input passes a check point (which also
//! spends the task's cooperative budget, so the task yields), and the
//! filter of a nested-loop join checks at every evaluation.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use datafusion::arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::analyze::AnalyzeExec;
use datafusion::physical_plan::coop::make_cooperative;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{NestedLoopJoinExec, NestedLoopJoinExecBuilder};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::Control;

/// `plan` with a check point on the input of every operator (none under
/// EXPLAIN ANALYZE, whose output would show them) and a checked filter in
/// every nested-loop join.
pub fn insert_check_points(
    plan: Arc<dyn ExecutionPlan>,
    control: &Control,
) -> Result<Arc<dyn ExecutionPlan>> {
    if plan.is::<AnalyzeExec>() {
        return Ok(plan);
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let checked: Vec<Arc<dyn ExecutionPlan>> = children
        .into_iter()
        .map(|child| {
            let child = insert_check_points(child, control)?;
            Ok(Arc::new(CheckPointExec::new(child, control.clone())) as Arc<dyn ExecutionPlan>)
        })
        .collect::<Result<_>>()?;
    // A check point has its input's properties: the plan's stay as they
    // were planned.
    let plan = plan.replace_children(
        checked,
        ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
    )?;
    checked_join_filter(plan, control)
}

/// A nested-loop join whose filter stops the join when the query must
/// stop.
fn checked_join_filter(
    plan: Arc<dyn ExecutionPlan>,
    control: &Control,
) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(join) = plan.downcast_ref::<NestedLoopJoinExec>() else {
        return Ok(plan);
    };
    let Some(filter) = join.filter() else {
        return Ok(plan);
    };
    let expression: Arc<dyn PhysicalExpr> = Arc::new(CheckedExpr {
        inner: filter.expression().clone(),
        control: control.clone(),
    });
    let filter = JoinFilter::new(
        expression,
        filter.column_indices().to_vec(),
        filter.schema().clone(),
    );
    Ok(Arc::new(
        NestedLoopJoinExecBuilder::from(join)
            .with_filter(Some(filter))
            .build()?,
    ))
}

fn stopped(control: &Control) -> Option<DataFusionError> {
    control
        .execution
        .is_cancelled()
        .then(|| DataFusionError::External(Box::new(control.reason())))
}

/// Passes its input's batches on, unless the query must stop.
#[derive(Debug)]
struct CheckPointExec {
    input: Arc<dyn ExecutionPlan>,
    control: Control,
}

impl CheckPointExec {
    fn new(input: Arc<dyn ExecutionPlan>, control: Control) -> Self {
        CheckPointExec { input, control }
    }
}

impl DisplayAs for CheckPointExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckPointExec")
    }
}

impl ExecutionPlan for CheckPointExec {
    fn name(&self) -> &str {
        "CheckPointExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().expect("one child");
        Ok(Arc::new(CheckPointExec::new(input, self.control.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = make_cooperative(self.input.execute(partition, context)?);
        Ok(Box::pin(CheckedStream {
            input,
            control: self.control.clone(),
            done: false,
        }))
    }
}

struct CheckedStream {
    input: SendableRecordBatchStream,
    control: Control,
    done: bool,
}

impl Stream for CheckedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some(e) = stopped(&self.control) {
            self.done = true;
            return Poll::Ready(Some(Err(e)));
        }
        self.input.poll_next_unpin(cx)
    }
}

impl RecordBatchStream for CheckedStream {
    fn schema(&self) -> SchemaRef {
        self.input.schema()
    }
}

/// An expression that fails instead of evaluating once the query must
/// stop.
#[derive(Debug)]
struct CheckedExpr {
    inner: Arc<dyn PhysicalExpr>,
    control: Control,
}

impl PartialEq for CheckedExpr {
    fn eq(&self, other: &Self) -> bool {
        self.inner.as_ref() == other.inner.as_ref()
    }
}

impl Eq for CheckedExpr {}

impl Hash for CheckedExpr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl fmt::Display for CheckedExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl PhysicalExpr for CheckedExpr {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.inner.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.inner.nullable(input_schema)
    }

    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.inner.return_field(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if let Some(e) = stopped(&self.control) {
            return Err(e);
        }
        self.inner.evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.inner]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(CheckedExpr {
            inner: children.pop().expect("one child"),
            control: self.control.clone(),
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt_sql(f)
    }
}
