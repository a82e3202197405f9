//! Rewrites for the subqueries of catalog queries that DataFusion does not
//! plan as written: single-row correlated subqueries, subqueries over
//! catalogs that are always empty here, IN subqueries and subqueries in
//! sort keys outside filters.

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, BinaryOperator, CaseWhen, Expr, FunctionArguments, GroupByExpr, Ident,
    JoinOperator, OrderByKind, Query, SelectItem, SetExpr, SetOperator, Statement, TableFactor,
    Value, VisitorMut,
};

use super::{is_system_table, parse_expr, parse_statement};
use crate::sql::catalog::{INFORMATION_SCHEMA, PG_CATALOG};

/// `ORDER BY <expression that is also selected>`: ordered by its output
/// position instead, which plans even when the expression holds a
/// subquery (Grafana sorts by a `CASE ... IN (SELECT ...)` it selects).
pub(super) struct OrderBySelected;

impl VisitorMut for OrderBySelected {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let (Some(order_by), SetExpr::Select(select)) =
            (query.order_by.as_mut(), query.body.as_ref())
        else {
            return ControlFlow::Continue(());
        };
        let OrderByKind::Expressions(exprs) = &mut order_by.kind else {
            return ControlFlow::Continue(());
        };
        for ordering in exprs.iter_mut() {
            if !matches!(
                ordering.expr,
                Expr::Subquery(_)
                    | Expr::InSubquery { .. }
                    | Expr::Case { .. }
                    | Expr::Exists { .. }
            ) {
                continue;
            }
            let text = ordering.expr.to_string();
            let position = select.projection.iter().position(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    e.to_string() == text
                }
                _ => false,
            });
            if let Some(at) = position {
                ordering.expr = Expr::value(Value::Number((at + 1).to_string(), false));
            }
        }
        sort_outside(query);
        ControlFlow::Continue(())
    }
}

/// `x IN (SELECT ...)` in a select list (Grafana's `CASE WHEN
/// quote_ident(table_schema) IN (SELECT ... search_path ...)`): DataFusion
/// plans IN subqueries only in filters; elsewhere an uncorrelated one
/// becomes a test against the array of its values.
pub(super) struct InSubqueryOutsideFilters;

impl VisitorMut for InSubqueryOutsideFilters {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in select.projection.iter_mut() {
                if let SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } = item
                {
                    let _ = visit_expressions_mut(e, |e: &mut Expr| {
                        in_subquery_as_array(e);
                        ControlFlow::<()>::Continue(())
                    });
                }
            }
        }
        ControlFlow::Continue(())
    }
}

fn in_subquery_as_array(expr: &mut Expr) {
    let Expr::InSubquery {
        expr: value,
        subquery,
        negated,
    } = expr
    else {
        return;
    };
    let sql = format!(
        "{}coalesce(array_has((SELECT array_agg(\"?v\") FROM ({subquery}) AS \"?in\"(\"?v\")), {value}), false)",
        if *negated { "NOT " } else { "" }
    );
    if let Some(e) = parse_expr(&sql) {
        *expr = e;
    }
}

fn has_subquery(expr: &Expr) -> bool {
    let mut found = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| {
        if matches!(
            e,
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. }
        ) {
            found = true;
        }
        ControlFlow::<()>::Continue(())
    });
    found
}

/// `SELECT a AS x FROM t ORDER BY <expr with a subquery>, 1`: DataFusion
/// plans subqueries only in projections and filters, so the sort key is
/// computed as a hidden column of a derived table, sorted on outside:
/// `SELECT x FROM (SELECT a AS x, <expr> AS "?sort1" FROM t) ORDER BY
/// "?sort1", 1`. Done only when every output column has a known name and
/// the other sort keys are output positions or names.
fn sort_outside(query: &mut Query) {
    let Some(order_by) = &query.order_by else {
        return;
    };
    let OrderByKind::Expressions(keys) = &order_by.kind else {
        return;
    };
    if !keys.iter().any(|k| has_subquery(&k.expr)) || query.with.is_some() {
        return;
    }
    let SetExpr::Select(select) = query.body.as_ref() else {
        return;
    };
    let mut names = Vec::new();
    for item in &select.projection {
        match item {
            SelectItem::ExprWithAlias { alias, .. } => names.push(alias.value.clone()),
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => names.push(i.value.clone()),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(p)) => {
                names.push(p.last().map(|i| i.value.clone()).unwrap_or_default())
            }
            _ => return,
        }
    }
    let simple = keys.iter().all(|k| {
        has_subquery(&k.expr)
            || matches!(&k.expr, Expr::Value(v) if matches!(v.value, Value::Number(..)))
            || matches!(&k.expr, Expr::Identifier(i) if names.contains(&i.value))
    });
    if !simple {
        return;
    }
    let mut inner = select.as_ref().clone();
    let mut outer_keys = Vec::new();
    for (n, key) in keys.iter().enumerate() {
        let mut key = key.clone();
        if has_subquery(&key.expr) {
            let hidden = Ident::with_quote('"', format!("?sort{n}"));
            inner.projection.push(SelectItem::ExprWithAlias {
                expr: key.expr.clone(),
                alias: hidden.clone(),
            });
            key.expr = Expr::Identifier(hidden);
        }
        outer_keys.push(key);
    }
    let columns = names
        .iter()
        .map(|n| format!("\"{}\"", n.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {columns} FROM (SELECT 1) AS \"?sorted\"");
    let Some(Statement::Query(mut outer)) = parse_statement(&sql) else {
        return;
    };
    let inner_query = Query {
        body: Box::new(SetExpr::Select(Box::new(inner))),
        order_by: None,
        limit_clause: None,
        ..(*outer).clone()
    };
    let SetExpr::Select(outer_select) = outer.body.as_mut() else {
        return;
    };
    if let Some(from) = outer_select.from.first_mut() {
        if let TableFactor::Derived { subquery, .. } = &mut from.relation {
            **subquery = inner_query;
        }
    }
    query.body = outer.body;
    if let Some(order_by) = &mut query.order_by {
        order_by.kind = OrderByKind::Expressions(outer_keys);
    }
}

/// psql's `\d` (and other clients) select a column's default or
/// collation with a scalar subquery that finds at most one catalog row,
/// e.g. `(SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE
/// d.adrelid = a.attrelid AND d.adnum = a.attnum)`. DataFusion plans a
/// correlated scalar subquery only when it aggregates, so such a subquery
/// over system tables is wrapped in `first_value(...)`: the same answer
/// for zero or one row. User queries are not touched.
pub(super) struct AggregateCatalogSubqueries;

impl VisitorMut for AggregateCatalogSubqueries {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        array_constructor(expr);
        if let Expr::Subquery(query) = expr {
            // Over a catalog that is always empty here: always NULL.
            if branch_is_empty(&query.body) {
                // An array (from ARRAY(SELECT ...)) stays typed as one.
                let array = matches!(query.body.as_ref(), SetExpr::Select(s)
                    if s.projection.len() == 1
                        && s.projection[0].to_string().to_ascii_lowercase().starts_with("array_agg("));
                *expr = match array.then(|| parse_expr("CAST(NULL AS TEXT[])")).flatten() {
                    Some(null_array) => null_array,
                    None => Expr::value(Value::Null),
                };
                return ControlFlow::Continue(());
            }
            if let Some(hoisted) = rewrite_catalog_subquery(query) {
                // `CASE WHEN <outer-only conditions> THEN (subquery) END`
                let subquery = std::mem::replace(expr, Expr::value(Value::Null));
                *expr = Expr::Case {
                    case_token: AttachedToken::empty(),
                    end_token: AttachedToken::empty(),
                    operand: None,
                    conditions: vec![CaseWhen {
                        condition: hoisted,
                        result: subquery,
                    }],
                    else_result: None,
                };
            }
        }
        ControlFlow::Continue(())
    }
}

/// `ARRAY(SELECT x FROM ... ORDER BY y)` (psql's `\\du`, `\\d+`):
/// DataFusion has no array constructor over a subquery; the aggregate
/// `(SELECT array_agg(x ORDER BY y) FROM ...)` gives the same array (NULL
/// rather than `{}` when there are no rows).
fn array_constructor(expr: &mut Expr) {
    let Expr::Function(f) = expr else {
        return;
    };
    let is_array = f
        .name
        .0
        .last()
        .is_some_and(|p| p.to_string().eq_ignore_ascii_case("array"));
    let FunctionArguments::Subquery(query) = &f.args else {
        return;
    };
    if !is_array || query.with.is_some() || query.limit_clause.is_some() {
        return;
    }
    if unnests_an_always_null_array(query) {
        if let Some(null) = parse_expr("CAST(NULL AS TEXT[])") {
            *expr = null;
        }
        return;
    }
    let mut query = query.as_ref().clone();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let [SelectItem::UnnamedExpr(item) | SelectItem::ExprWithAlias { expr: item, .. }] =
        select.projection.as_slice()
    else {
        return;
    };
    let order = match query.order_by.take() {
        Some(order_by) => format!(" {order_by}"),
        None => String::new(),
    };
    let Some(aggregate) = parse_expr(&format!("array_agg({item}{order})")) else {
        return;
    };
    select.projection = vec![SelectItem::UnnamedExpr(aggregate)];
    *expr = Expr::Subquery(Box::new(query));
}

/// Catalog array columns that are NULL in every row here: there are no
/// storage options and no ACLs (everyone may do everything).
const ALWAYS_NULL_ARRAYS: &[&str] = &[
    "reloptions",
    "relacl",
    "attacl",
    "attoptions",
    "datacl",
    "nspacl",
    "proacl",
];

/// `ARRAY(SELECT 'toast.' || x FROM unnest(tc.reloptions) x)` (psql's
/// `\\d+`): a correlated unnest DataFusion cannot plan, over a column that
/// is NULL here, so the array is empty.
fn unnests_an_always_null_array(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let [from] = select.from.as_slice() else {
        return false;
    };
    let TableFactor::Table {
        name,
        args: Some(args),
        ..
    } = &from.relation
    else {
        return false;
    };
    let is_unnest = name
        .0
        .last()
        .is_some_and(|p| p.to_string().eq_ignore_ascii_case("unnest"));
    let column = args
        .args
        .first()
        .map(|a| a.to_string().to_ascii_lowercase());
    is_unnest
        && column.is_some_and(|c| {
            let last = c.rsplit('.').next().unwrap_or(&c).to_string();
            ALWAYS_NULL_ARRAYS.contains(&last.as_str())
        })
}

/// Makes a single-row subquery over system tables plannable: aggregates
/// its one column, rewrites conditions that compare an outer column with
/// an inner one in terms of the inner column it equals, and returns the
/// conditions that read only outer columns (to be tested outside).
fn rewrite_catalog_subquery(query: &mut Query) -> Option<Expr> {
    if query.limit_clause.is_some() || query.with.is_some() {
        return None;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let grouped = !matches!(&select.group_by, GroupByExpr::Expressions(e, _) if e.is_empty());
    if grouped || select.having.is_some() || select.projection.len() != 1 || select.from.is_empty()
    {
        return None;
    }
    let mut inner = Vec::new();
    for t in &select.from {
        for f in std::iter::once(&t.relation).chain(t.joins.iter().map(|j| &j.relation)) {
            let TableFactor::Table { name, alias, .. } = f else {
                return None;
            };
            let parts: Vec<String> = name.0.iter().map(|p| p.to_string()).collect();
            let system = match parts.as_slice() {
                [schema, _] => schema == PG_CATALOG || schema == INFORMATION_SCHEMA,
                [table] => is_system_table(table),
                _ => false,
            };
            if !system {
                return None;
            }
            inner.push(match alias {
                Some(a) => a.name.value.clone(),
                None => parts.last().cloned().unwrap_or_default(),
            });
        }
    }
    let (column, alias) = match &select.projection[0] {
        SelectItem::UnnamedExpr(e) => (e.clone(), None),
        SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
        _ => return None,
    };
    // A column computed from outer columns (SQLAlchemy's identity
    // options read `attidentity = 'a'`) cannot go inside an aggregate:
    // such a subquery is left to run row by row.
    if reads_outer(&column, &inner) {
        return None;
    }
    if !is_aggregate(&column) {
        let wrapped = parse_expr(&format!("first_value({column})"))?;
        let alias = alias.unwrap_or_else(|| Ident::new(inner_name(&column)));
        select.projection[0] = SelectItem::ExprWithAlias {
            expr: wrapped,
            alias,
        };
    }
    let selection = select.selection.take()?;
    let mut conjuncts = Vec::new();
    split_and(selection, &mut conjuncts);
    // outer column -> inner column it is equal to
    let mut equal = Vec::new();
    for c in &conjuncts {
        if let Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        {
            match (side(left, &inner), side(right, &inner)) {
                (Some(false), Some(true)) => equal.push((left.to_string(), (**right).clone())),
                (Some(true), Some(false)) => equal.push((right.to_string(), (**left).clone())),
                _ => {}
            }
        }
    }
    let mut kept = Vec::new();
    let mut hoisted = Vec::new();
    for mut c in conjuncts {
        let is_correlation = matches!(&c, Expr::BinaryOp { left, op: BinaryOperator::Eq, right }
            if side(left, &inner).is_some() && side(right, &inner).is_some()
                && side(left, &inner) != side(right, &inner));
        if !is_correlation {
            let _ = visit_expressions_mut(&mut c, |e: &mut Expr| {
                if side(e, &inner) == Some(false) {
                    let name = e.to_string();
                    if let Some((_, with)) = equal.iter().find(|(o, _)| *o == name) {
                        *e = with.clone();
                    }
                }
                ControlFlow::<()>::Continue(())
            });
        }
        if !is_correlation && reads_only_outer(&c, &inner) {
            hoisted.push(c);
        } else {
            kept.push(c);
        }
    }
    select.selection = join_and(kept);
    join_and(hoisted)
}

fn split_and(expr: Expr, out: &mut Vec<Expr>) {
    match expr {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(*left, out);
            split_and(*right, out);
        }
        Expr::Nested(inner)
            if matches!(
                *inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) =>
        {
            split_and(*inner, out)
        }
        other => out.push(other),
    }
}

fn join_and(exprs: Vec<Expr>) -> Option<Expr> {
    exprs.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

/// For a qualified column: Some(true) if it belongs to one of `inner`'s
/// tables, Some(false) if to an outer one; None for anything else.
fn side(expr: &Expr, inner: &[String]) -> Option<bool> {
    match expr {
        Expr::CompoundIdentifier(parts) if parts.len() >= 2 => {
            let qualifier = &parts[parts.len() - 2].value;
            Some(inner.iter().any(|t| t.eq_ignore_ascii_case(qualifier)))
        }
        _ => None,
    }
}

/// True when an expression reads a column qualified by an outer table.
fn reads_outer(expr: &Expr, inner: &[String]) -> bool {
    let mut outer = false;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| {
        outer |= side(e, inner) == Some(false);
        ControlFlow::<()>::Continue(())
    });
    outer
}

/// True when an expression reads columns, all of them qualified by an
/// outer table, and no subquery.
fn reads_only_outer(expr: &Expr, inner: &[String]) -> bool {
    let mut outer = 0;
    let mut other = 0;
    let _ = datafusion::sql::sqlparser::ast::visit_expressions(expr, |e: &Expr| {
        match e {
            Expr::Identifier(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::InSubquery { .. } => other += 1,
            Expr::CompoundIdentifier(_) => match side(e, inner) {
                Some(false) => outer += 1,
                _ => other += 1,
            },
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    outer > 0 && other == 0
}

/// The column name Postgres gives an unaliased expression.
fn inner_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|i| i.value.clone()).unwrap_or_default()
        }
        Expr::Function(f) => f.name.0.last().map(|p| p.to_string()).unwrap_or_default(),
        _ => "?column?".into(),
    }
}

fn is_aggregate(expr: &Expr) -> bool {
    let text = expr.to_string().to_ascii_lowercase();
    [
        "count(",
        "max(",
        "min(",
        "sum(",
        "avg(",
        "array_agg(",
        "string_agg(",
        "bool_and(",
        "bool_or(",
        "first_value(",
    ]
    .iter()
    .any(|f| text.contains(f))
}

/// Catalogs that are empty in every QuiverDB database because the objects
/// they list (row security policies, extended statistics, publications,
/// inheritance, triggers, ...) do not exist here.
const ALWAYS_EMPTY: &[&str] = &[
    "pg_policy",
    "pg_statistic_ext",
    "pg_statistic_ext_data",
    "pg_publication",
    "pg_publication_rel",
    "pg_publication_namespace",
    "pg_inherits",
    "pg_trigger",
    "pg_event_trigger",
    "pg_foreign_table",
    "pg_partitioned_table",
    "pg_subscription",
    "pg_subscription_rel",
    "pg_largeobject",
    "pg_largeobject_metadata",
    "pg_description",
];

/// For a query DataFusion cannot plan (psql's `\d` asks about policies
/// with `array(SELECT ...)`, about extended statistics with `'d' =
/// any(stxkind)`, ...): when every branch of it inner-joins a catalog
/// that is always empty here, its answer is no rows, given as a query
/// with the same number of columns. Anything else stays an error.
pub fn empty_result_fallback(statement: &DfStatement) -> Option<DfStatement> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::Query(query) = s.as_ref() else {
        return None;
    };
    if !branch_is_empty(&query.body) {
        return None;
    }
    let mut first = query.body.as_ref();
    while let SetExpr::SetOperation { left, .. } = first {
        first = left.as_ref();
    }
    let SetExpr::Select(select) = first else {
        return None;
    };
    let mut columns = Vec::new();
    for (i, item) in select.projection.iter().enumerate() {
        let name = match item {
            SelectItem::ExprWithAlias { alias, .. } => alias.value.clone(),
            SelectItem::UnnamedExpr(e) => match inner_name(e).as_str() {
                "?column?" => format!("column{}", i + 1),
                n => n.to_string(),
            },
            _ => return None,
        };
        columns.push(format!("NULL AS \"{}\"", name.replace('"', "\"\"")));
    }
    let sql = format!("SELECT {} WHERE false", columns.join(", "));
    Some(DfStatement::Statement(Box::new(parse_statement(&sql)?)))
}

fn branch_is_empty(body: &SetExpr) -> bool {
    match body {
        SetExpr::SetOperation {
            left, right, op, ..
        } => match op {
            SetOperator::Union => branch_is_empty(left) && branch_is_empty(right),
            SetOperator::Intersect => branch_is_empty(left) || branch_is_empty(right),
            _ => branch_is_empty(left),
        },
        SetExpr::Select(select) => select.from.iter().any(|t| {
            std::iter::once(&t.relation)
                .chain(t.joins.iter().filter_map(|j| match j.join_operator {
                    JoinOperator::Inner(_) | JoinOperator::Join(_) | JoinOperator::CrossJoin(_) => {
                        Some(&j.relation)
                    }
                    _ => None,
                }))
                .any(|f| match f {
                    TableFactor::Table { name, .. } => name.0.last().is_some_and(|p| {
                        ALWAYS_EMPTY.contains(&p.to_string().to_lowercase().as_str())
                    }),
                    _ => false,
                })
        }),
        SetExpr::Query(q) => branch_is_empty(&q.body),
        _ => false,
    }
}
