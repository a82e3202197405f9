//! Postgres syntax that catalog queries use and DataFusion does not plan,
//! rewritten into equivalents before planning:
//!
//! - `OPERATOR(pg_catalog.~)` and friends become the plain operators;
//! - `COLLATE "C"` / `COLLATE pg_catalog.default` are dropped (the only
//!   collation is byte order);
//! - `'name'::regclass` (and regtype, regnamespace, regproc) become the
//!   object's oid, looked up in pg_catalog;
//! - `pg_catalog.f(...)` calls lose the schema, `current_user` and
//!   `session_user` become function calls;
//! - `x = ANY('{a,b}')` with an array literal becomes an array test;
//! - unqualified `pg_class`, `pg_type`, ... resolve in pg_catalog, as it
//!   is implicitly first on Postgres' search path.
//!
//! The rules are `datafusion-pg-catalog`'s; the ones that change results
//! (replacing unsupported subqueries with NULL) are deliberately not used.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AccessExpr, BinaryOperator, CaseWhen, Expr, FunctionArguments,
    GroupByExpr, Ident, JoinOperator, ObjectName, ObjectNamePart, OrderByKind, Query, SelectItem,
    SetExpr, SetOperator, Statement, Subscript, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::{
    CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, RewriteArrayAnyAllOperation,
    RewritePgCatalogOperator, RewriteRegCastToSubquery, SqlStatementRewriteRule,
    StripCallableQualifier, StripCollate,
};

static RULES: LazyLock<Vec<Arc<dyn SqlStatementRewriteRule>>> = LazyLock::new(|| {
    vec![
        Arc::new(RewriteArrayAnyAllOperation),
        Arc::new(StripCallableQualifier),
        Arc::new(FixArrayLiteral),
        Arc::new(CurrentUserVariableToSessionUserFunctionCall),
        Arc::new(StripCollate),
        Arc::new(RewritePgCatalogOperator),
        Arc::new(RewriteRegCastToSubquery::new()),
    ]
});

/// Applies the rewrites to a statement (and the statement an EXPLAIN
/// wraps).
pub fn rewrite_client_sql(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(s) => {
            if !mentions_catalog_syntax(s) {
                return;
            }
            let mut owned = std::mem::replace(
                s.as_mut(),
                Statement::Commit {
                    chain: false,
                    end: false,
                    modifier: None,
                },
            );
            let _ = owned.visit(&mut NameCasts);
            for rule in RULES.iter() {
                owned = rule.rewrite(owned);
            }
            let _ = owned.visit(&mut QualifySystemTables);
            let _ = owned.visit(&mut AggregateCatalogSubqueries);
            let _ = owned.visit(&mut ZeroBasedVectors);
            let _ = owned.visit(&mut LikeEscapes);
            let _ = owned.visit(&mut ExpandArray);
            let _ = owned.visit(&mut FieldSelection);
            let _ = owned.visit(&mut SqlValueFunctions);
            let _ = owned.visit(&mut OrderBySelected);
            let _ = owned.visit(&mut InSubqueryOutsideFilters);
            **s = owned;
        }
        DfStatement::Explain(explain) => rewrite_client_sql(explain.statement.as_mut()),
        _ => {}
    }
}

/// Cheap test that a statement may need a rewrite: most user queries do
/// not, and skip the AST walks.
fn mentions_catalog_syntax(statement: &Statement) -> bool {
    let text = statement.to_string().to_ascii_lowercase();
    [
        "pg_",
        "collate",
        "reg",
        "any",
        "current_user",
        "session_user",
        "information_schema",
        "operator",
        "escape",
        "indkey",
        "_pg_expandarray",
        "generate_subscripts",
        "current_catalog",
        "current_schema",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// Unqualified names of pg_catalog tables resolve there, as in Postgres,
/// where pg_catalog is implicitly searched before the search path. A
/// quoted name is left alone.
struct QualifySystemTables;

impl VisitorMut for QualifySystemTables {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        scalar_function_in_from(factor);
        if let TableFactor::Table {
            name, args: None, ..
        } = factor
        {
            if let [ObjectNamePart::Identifier(ident)] = name.0.as_slice() {
                // `"pg_class"` names the same table when it is spelled in
                // lower case.
                let spelled = match ident.quote_style {
                    None => ident.value.to_ascii_lowercase(),
                    Some(_) => ident.value.clone(),
                };
                if is_system_table(&spelled) && spelled.starts_with("pg_") {
                    *name = ObjectName(vec![
                        ObjectNamePart::Identifier(Ident::new(super::PG_CATALOG)),
                        ObjectNamePart::Identifier(Ident::new(spelled)),
                    ]);
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `LIKE 'pg/_%' ESCAPE '/'` (SQLAlchemy's schema filter): DataFusion
/// takes only the backslash as escape character, so a literal pattern
/// with another one is rewritten to use the backslash.
struct LikeEscapes;

impl VisitorMut for LikeEscapes {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Like {
            pattern,
            escape_char,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char,
            ..
        } = expr
        {
            let escape = match escape_char.as_ref().map(|v| &v.value) {
                Some(Value::SingleQuotedString(e)) if e.chars().count() == 1 && e != "\\" => {
                    e.chars().next()
                }
                _ => None,
            };
            if let Some(escape) = escape {
                match pattern.as_mut() {
                    Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)) => {
                        if let Value::SingleQuotedString(p) = &v.value {
                            v.value = Value::SingleQuotedString(backslash_escapes(p, escape));
                        }
                    }
                    // A parameter: converted when it is known.
                    other => {
                        let inner = std::mem::replace(other, Expr::value(Value::Null));
                        *other = Parser::new(&PostgreSqlDialect {})
                            .try_with_sql(&format!(
                                "pg_like_escape({inner}, '{}')",
                                escape.to_string().replace('\'', "''")
                            ))
                            .and_then(|mut p| p.parse_expr())
                            .unwrap_or(inner);
                    }
                }
                *escape_char = None;
            }
        }
        ControlFlow::Continue(())
    }
}

pub fn backslash_escapes(pattern: &str, escape: char) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c == escape {
            if let Some(next) = chars.next() {
                out.push('\\');
                out.push(next);
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    out
}

/// `information_schema._pg_expandarray(a)`, a set-returning function of
/// (x, n) pairs, becomes `unnest(pg_expandarray(a))`: one row per element,
/// as a struct with fields x and n.
struct ExpandArray;

impl VisitorMut for ExpandArray {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            let name = f.name.0.last().map(|p| p.to_string().to_ascii_lowercase());
            if name.as_deref() == Some("generate_subscripts") {
                // The subscripts of a one-dimensional array, as rows.
                if let FunctionArguments::List(list) = &f.args {
                    if let Some(first) = list.args.first() {
                        if let Ok(e) = Parser::new(&PostgreSqlDialect {})
                            .try_with_sql(&format!(
                                "unnest(range(1, CAST(coalesce(array_length({first}), 0) AS BIGINT) + 1))"
                            ))
                            .and_then(|mut p| p.parse_expr())
                        {
                            *expr = e;
                            return ControlFlow::Continue(());
                        }
                    }
                }
            }
            if name.as_deref() == Some("_pg_expandarray") {
                let args = f.args.to_string();
                if let Ok(e) = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&format!("unnest(pg_expandarray{args})"))
                    .and_then(|mut p| p.parse_expr())
                {
                    *expr = e;
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// Casts to oid-alias types that the lookup rewrite does not cover:
/// `'pg_catalog.array_in'::regproc` compares with pg_type's regproc
/// columns, which hold function names here, so it becomes the name;
/// `CAST(format('%I.%I', s, t) AS regclass)`, a name computed per row,
/// becomes `to_regclass(...)`.
struct NameCasts;

impl VisitorMut for NameCasts {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Cast {
            expr: operand,
            data_type,
            ..
        } = expr
        else {
            return ControlFlow::Continue(());
        };
        let type_name = data_type.to_string().to_ascii_lowercase();
        let type_name = type_name.trim_start_matches("pg_catalog.");
        match (type_name, operand.as_ref()) {
            ("regproc", Expr::Value(v)) => {
                if let Value::SingleQuotedString(name) = &v.value {
                    let short = name.rsplit('.').next().unwrap_or(name).to_string();
                    *expr = Expr::value(Value::SingleQuotedString(short));
                }
            }
            ("regclass", Expr::Function(_) | Expr::BinaryOp { .. })
            | ("regclass", Expr::Cast { .. }) => {
                let call = format!("to_regclass({operand})");
                if let Ok(e) = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&call)
                    .and_then(|mut p| p.parse_expr())
                {
                    *expr = e;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// `ORDER BY <expression that is also selected>`: ordered by its output
/// position instead, which plans even when the expression holds a
/// subquery (Grafana sorts by a `CASE ... IN (SELECT ...)` it selects).
struct OrderBySelected;

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
struct InSubqueryOutsideFilters;

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
    if let Ok(e) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_expr())
    {
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
    let Ok(Statement::Query(mut outer)) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_statement())
    else {
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

/// `current_catalog` and a bare `current_schema` are SQL value functions
/// (no parentheses) in Postgres.
struct SqlValueFunctions;

impl VisitorMut for SqlValueFunctions {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Identifier(ident) = expr {
            let function = match ident.value.to_ascii_lowercase().as_str() {
                "current_catalog" if ident.quote_style.is_none() => "current_database()",
                "current_schema" if ident.quote_style.is_none() => "current_schema()",
                _ => return ControlFlow::Continue(()),
            };
            if let Ok(call) = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(function)
                .and_then(|mut p| p.parse_expr())
            {
                *expr = call;
            }
        }
        ControlFlow::Continue(())
    }
}

/// `(expr).field`, Postgres' field selection from a composite value,
/// becomes `(expr)['field']`, DataFusion's struct field access.
struct FieldSelection;

impl VisitorMut for FieldSelection {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundFieldAccess { root, access_chain } = expr {
            if matches!(root.as_ref(), Expr::Nested(_) | Expr::Function(_)) {
                for access in access_chain.iter_mut() {
                    if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                        *access = AccessExpr::Subscript(Subscript::Index {
                            index: Expr::value(Value::SingleQuotedString(
                                field.value.to_lowercase(),
                            )),
                        });
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `int2vector` and `oidvector` columns (`pg_index.indkey`, ...) are
/// subscripted from 0 in Postgres; they are lists here, subscripted from
/// 1. psqlODBC reads primary keys with `i.indkey[ia.attnum-1]`.
struct ZeroBasedVectors;

const VECTOR_COLUMNS: &[&str] = &[
    "indkey",
    "indclass",
    "indcollation",
    "indoption",
    "proargtypes",
];

impl VisitorMut for ZeroBasedVectors {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::CompoundFieldAccess { root, access_chain } = expr {
            // `i.indkey[n]` arrives as root `i` with `.indkey` then `[n]`.
            let first_subscript = access_chain
                .iter()
                .position(|a| matches!(a, AccessExpr::Subscript(_)));
            let Some(at) = first_subscript else {
                return ControlFlow::Continue(());
            };
            let column = match at.checked_sub(1).map(|i| &access_chain[i]) {
                Some(AccessExpr::Dot(Expr::Identifier(i))) => Some(i.value.clone()),
                Some(_) => None,
                None => match root.as_ref() {
                    Expr::Identifier(i) => Some(i.value.clone()),
                    Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.clone()),
                    _ => None,
                },
            };
            if column.is_some_and(|c| VECTOR_COLUMNS.contains(&c.to_ascii_lowercase().as_str())) {
                if let AccessExpr::Subscript(Subscript::Index { index }) = &mut access_chain[at] {
                    let zero_based = std::mem::replace(index, Expr::value(Value::Null));
                    *index = Expr::BinaryOp {
                        left: Box::new(Expr::Nested(Box::new(zero_based))),
                        op: BinaryOperator::Plus,
                        right: Box::new(Expr::value(Value::Number("1".into(), false))),
                    };
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// psql's `\d` (and other clients) select a column's default or
/// collation with a scalar subquery that finds at most one catalog row,
/// e.g. `(SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d WHERE
/// d.adrelid = a.attrelid AND d.adnum = a.attnum)`. DataFusion plans a
/// correlated scalar subquery only when it aggregates, so such a subquery
/// over system tables is wrapped in `first_value(...)`: the same answer
/// for zero or one row. User queries are not touched.
struct AggregateCatalogSubqueries;

impl VisitorMut for AggregateCatalogSubqueries {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Subquery(query) = expr {
            // Over a catalog that is always empty here: always NULL.
            if branch_is_empty(&query.body) {
                *expr = Expr::value(Value::Null);
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
                [schema, _] => schema == super::PG_CATALOG || schema == super::INFORMATION_SCHEMA,
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
    if !is_aggregate(&column) {
        let wrapped = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&format!("first_value({column})"))
            .and_then(|mut p| p.parse_expr())
            .ok()?;
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
/// inheritance, triggers, sequences, ...) do not exist here.
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
    "pg_sequence",
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
    Some(DfStatement::Statement(Box::new(
        Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&sql)
            .and_then(|mut p| p.parse_statement())
            .ok()?,
    )))
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

/// Table functions DataFusion knows; any other function in FROM returns
/// one value, which Postgres treats as a one-row table.
const TABLE_FUNCTIONS: &[&str] = &[
    "generate_series",
    "range",
    "unnest",
    "pg_get_keywords",
    "read_parquet",
    "read_csv",
    "read_json",
    "read_avro",
];

/// `FROM string_to_array(x, ',') s` (Grafana): a scalar function in FROM
/// becomes `FROM (SELECT string_to_array(x, ',') AS s) s`.
fn scalar_function_in_from(factor: &mut TableFactor) {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = factor
    else {
        return;
    };
    let function = name.to_string();
    let short = function
        .rsplit('.')
        .next()
        .unwrap_or(&function)
        .to_ascii_lowercase();
    if TABLE_FUNCTIONS.contains(&short.as_str()) {
        return;
    }
    let Some(alias) = alias.clone() else {
        return;
    };
    let column = alias
        .columns
        .first()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| alias.name.clone());
    let args = args
        .args
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("SELECT {function}({args}) AS {column}");
    let Ok(Statement::Query(subquery)) = Parser::new(&PostgreSqlDialect {})
        .try_with_sql(&sql)
        .and_then(|mut p| p.parse_statement())
    else {
        return;
    };
    let mut alias = alias;
    alias.columns.clear();
    *factor = TableFactor::Derived {
        lateral: false,
        subquery,
        alias: Some(alias),
        sample: None,
    };
}

fn is_system_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("pg_")
        && (super::pg_tables::TABLES.iter().any(|t| t.name == lower)
            || datafusion_pg_catalog::pg_catalog::PG_CATALOG_TABLES.contains(&lower.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    fn rewritten(sql: &str) -> String {
        let mut statements = Session::parse(sql).unwrap();
        let mut s = statements.pop_front().unwrap();
        rewrite_client_sql(&mut s);
        s.to_string()
    }

    #[test]
    fn psql_operators_and_collations_become_plain_sql() {
        let sql = rewritten(
            "SELECT c.relname FROM pg_catalog.pg_class c \
             WHERE c.relname OPERATOR(pg_catalog.~) '^(city)$' COLLATE pg_catalog.default",
        );
        assert!(sql.contains("c.relname ~ '^(city)$'"), "{sql}");
        assert!(!sql.to_lowercase().contains("collate"), "{sql}");
    }

    #[test]
    fn unqualified_system_tables_resolve_in_pg_catalog() {
        let sql = rewritten("SELECT oid FROM pg_class");
        assert!(sql.contains("pg_catalog.pg_class"), "{sql}");
        let sql = rewritten("SELECT * FROM \"pg_class\"");
        assert!(sql.contains("pg_catalog.pg_class"), "{sql}");
        let sql = rewritten("SELECT * FROM \"PG_CLASS\"");
        assert!(!sql.contains("pg_catalog."), "{sql}");
    }

    #[test]
    fn single_row_catalog_subqueries_aggregate() {
        let sql = rewritten(
            "SELECT a.attname, (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) \
             FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid) \
             FROM pg_catalog.pg_attribute a",
        );
        assert!(sql.contains("first_value(pg_get_expr("), "{sql}");
        let sql = rewritten(
            "SELECT (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t \
             WHERE c.oid = a.attcollation AND t.oid = a.atttypid \
             AND a.attcollation <> t.typcollation AND a.atthasdef) FROM pg_catalog.pg_attribute a",
        );
        assert!(sql.contains("CASE WHEN a.atthasdef THEN"), "{sql}");
        assert!(sql.contains("c.oid <> t.typcollation"), "{sql}");
        // A user query keeps Postgres' meaning.
        let sql = rewritten("SELECT (SELECT x FROM t WHERE t.y = u.y) FROM u");
        assert!(!sql.contains("first_value"), "{sql}");
    }

    #[test]
    fn vector_subscripts_count_from_zero() {
        let sql = rewritten(
            "SELECT i.indkey[ia.attnum - 1] FROM pg_catalog.pg_index i, pg_catalog.pg_attribute ia",
        );
        assert!(sql.contains("indkey[(ia.attnum - 1) + 1]"), "{sql}");
    }

    #[test]
    fn like_escapes_other_than_backslash_are_rewritten() {
        assert_eq!(backslash_escapes("pg/_%", '/'), "pg\\_%");
        let sql = rewritten("SELECT 1 FROM pg_namespace WHERE nspname NOT LIKE 'pg/_%' ESCAPE '/'");
        assert!(sql.contains("NOT LIKE 'pg\\_%'"), "{sql}");
    }

    #[test]
    fn regclass_literals_become_lookups() {
        let sql = rewritten("SELECT 'city'::regclass");
        assert!(sql.contains("pg_catalog.pg_class"), "{sql}");
    }
}
