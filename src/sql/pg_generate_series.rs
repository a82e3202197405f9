//! `generate_series` as PostgreSQL has it: over timestamps (DataFusion's
//! table function takes nanosecond timestamps only, and ours, as
//! PostgreSQL's, are microseconds: the bounds are widened before the
//! call), and in a select list (one row per value, not one list).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::Expr;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArguments, Ident, Query, Select, SelectItem, Value, VisitMut,
    VisitorMut,
};

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

/// `SELECT generate_series(1, 3)`: in PostgreSQL a set-returning function
/// in the select list yields one row per value (several in one list run
/// side by side, the shorter padded with NULLs). DataFusion's scalar
/// `generate_series` returns one list instead, a different answer; so a
/// call in a select list becomes `unnest(generate_series(...))`, which
/// DataFusion expands the same way. Calls in subqueries of the select
/// list belong to those subqueries' own select lists (or to none).
pub fn expand_in_select_lists(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(s) => super::for_each_select(s, expand_in_select),
        DfStatement::Explain(explain) => expand_in_select_lists(explain.statement.as_mut()),
        _ => {}
    }
}

fn expand_in_select(select: &mut Select) {
    for item in select.projection.iter_mut() {
        // A bare call keeps the function's name for its column, as in
        // PostgreSQL.
        if let SelectItem::UnnamedExpr(expr) = item {
            if let Some(name) = set_returning(expr) {
                let expr = std::mem::replace(expr, SqlExpr::value(Value::Null));
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: Ident::new(name),
                };
            }
        }
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            let _ = expr.visit(&mut SeriesCalls { depth: 0 });
        }
    }
}

/// Wraps the `generate_series` calls of one select-list expression,
/// outside its subqueries.
struct SeriesCalls {
    depth: usize,
}

impl VisitorMut for SeriesCalls {
    type Break = ();

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut SqlExpr) -> ControlFlow<()> {
        if self.depth == 0 {
            if let Some(name) = set_returning(expr) {
                let call = std::mem::replace(expr, SqlExpr::value(Value::Null));
                *expr = super::function_call("unnest", vec![call], vec![]);
                if let Some(tag) = super::pg_json::element_tag(name) {
                    let unnested = std::mem::replace(expr, SqlExpr::value(Value::Null));
                    *expr = super::function_call(tag, vec![unnested], vec![]);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// The name of a set-returning function this expression calls with an
/// argument list (`generate_series`, the JSON ones; also schema-qualified
/// with `pg_catalog`), which names its column.
fn set_returning(expr: &SqlExpr) -> Option<&'static str> {
    let SqlExpr::Function(f) = expr else {
        return None;
    };
    let named = match f.name.0.as_slice() {
        [name] => Some(name),
        [schema, name] if schema.to_string().eq_ignore_ascii_case("pg_catalog") => Some(name),
        _ => None,
    }?;
    if !matches!(f.args, FunctionArguments::List(_)) || f.over.is_some() {
        return None;
    }
    let named = named.as_ident()?.value.to_ascii_lowercase();
    std::iter::once("generate_series")
        .chain(super::pg_json::SET_RETURNING.iter().copied())
        .find(|name| *name == named)
}

/// `FROM f(...) WITH ORDINALITY` for a function that cannot number its
/// rows (DataFusion would drop the clause and answer without the column):
/// refused. The JSON table functions number theirs (see `pg_json`).
pub fn refuse_ordinality(statement: &DfStatement) -> crate::error::Result<()> {
    use datafusion::sql::sqlparser::ast::{TableFactor, Visit, Visitor};
    struct Ordinality;
    impl Visitor for Ordinality {
        type Break = String;
        fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
            match factor {
                TableFactor::Table {
                    name,
                    with_ordinality: true,
                    ..
                } => ControlFlow::Break(name.to_string()),
                TableFactor::UNNEST {
                    with_ordinality: true,
                    ..
                } => ControlFlow::Break("UNNEST".into()),
                _ => ControlFlow::Continue(()),
            }
        }
    }
    let found = match statement {
        DfStatement::Statement(s) => s.visit(&mut Ordinality),
        DfStatement::Explain(e) => return refuse_ordinality(&e.statement),
        _ => ControlFlow::Continue(()),
    };
    match found {
        ControlFlow::Break(function) => Err(crate::error::not_supported(format!(
            "WITH ORDINALITY on {function}"
        ))),
        ControlFlow::Continue(()) => Ok(()),
    }
}
