//! `generate_series(start, stop, step)` over timestamps: DataFusion's
//! table function takes nanosecond timestamps only, and ours (as
//! PostgreSQL's) are microseconds. The bounds are widened before the call.

use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Expr;

#[derive(Debug)]
struct NanosecondBounds {
    inner: Arc<dyn TableFunctionImpl>,
}

/// Wraps the registered `generate_series` and `range`.
pub fn widen(ctx: &SessionContext) {
    for name in ["generate_series", "range"] {
        let Some(inner) = ctx
            .state()
            .table_functions()
            .get(name)
            .map(|f| Arc::clone(f.function()))
        else {
            continue;
        };
        ctx.register_udtf(name, Arc::new(NanosecondBounds { inner }));
    }
}

impl TableFunctionImpl for NanosecondBounds {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let widened: Vec<Expr> = args.exprs().iter().map(nanoseconds).collect();
        self.inner
            .call_with_args(TableFunctionArgs::new(&widened, args.session()))
    }
}

fn nanoseconds(expr: &Expr) -> Expr {
    let scaled = |v: &Option<i64>, by: i64| v.and_then(|v| v.checked_mul(by));
    match expr {
        Expr::Literal(ScalarValue::TimestampMicrosecond(v, tz), meta) => Expr::Literal(
            ScalarValue::TimestampNanosecond(scaled(v, 1_000), tz.clone()),
            meta.clone(),
        ),
        Expr::Literal(ScalarValue::TimestampMillisecond(v, tz), meta) => Expr::Literal(
            ScalarValue::TimestampNanosecond(scaled(v, 1_000_000), tz.clone()),
            meta.clone(),
        ),
        Expr::Literal(ScalarValue::TimestampSecond(v, tz), meta) => Expr::Literal(
            ScalarValue::TimestampNanosecond(scaled(v, 1_000_000_000), tz.clone()),
            meta.clone(),
        ),
        other => other.clone(),
    }
}
