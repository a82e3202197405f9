//! Postgres syntax that catalog queries use and DataFusion does not plan,
//! rewritten into equivalents before planning. Applied only to statements
//! that mention catalog syntax; none changes what a query over user tables
//! returns.
//!
//! - `OPERATOR(pg_catalog.~)` becomes `~`; `COLLATE ...` is dropped (the
//!   only collation is byte order); `pg_catalog.f(...)` loses the schema;
//!   `current_user`, `current_catalog` become calls (these from
//!   `datafusion-pg-catalog`; `x = ANY('{a,b}')` is `sql::pg_arrays`');
//! - `'name'::regclass` (regtype, regnamespace) becomes a lookup of the oid,
//!   `'f'::regproc` the function name, a computed `::regclass` a call of
//!   `to_regclass`;
//! - unqualified or quoted `pg_class`, `pg_type`, ... resolve in pg_catalog;
//! - `LIKE ... ESCAPE 'c'`, 0-based `indkey[n]`, `(expr).field`,
//!   `_pg_expandarray`, `generate_subscripts`, and scalar functions in FROM
//!   get DataFusion equivalents;
//! - subqueries DataFusion cannot plan as written: see [`subqueries`].
//!
//! The rule of `datafusion-pg-catalog` that replaces unsupported
//! subqueries with NULL (changing answers) is deliberately not used.

use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Statement, Subscript, TableFactor, Value, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion_pg_catalog::sql::rules::{
    CurrentUserVariableToSessionUserFunctionCall, FixArrayLiteral, RewritePgCatalogOperator,
    RewriteRegCastToSubquery, SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};

mod subqueries;

pub use subqueries::empty_result_fallback;
use subqueries::{AggregateCatalogSubqueries, InSubqueryOutsideFilters, OrderBySelected};

use super::PG_CATALOG;

/// Parses SQL text of an expression built by a rewrite.
fn parse_expr(sql: &str) -> Option<Expr> {
    Parser::new(&crate::sql::dialect::Postgres)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .ok()
}

/// Parses SQL text of a statement built by a rewrite.
fn parse_statement(sql: &str) -> Option<Statement> {
    Parser::new(&crate::sql::dialect::Postgres)
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statement())
        .ok()
}

static RULES: LazyLock<Vec<Arc<dyn SqlStatementRewriteRule>>> = LazyLock::new(|| {
    vec![
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
                        ObjectNamePart::Identifier(Ident::new(PG_CATALOG)),
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
                        *other = parse_expr(&format!(
                            "pg_like_escape({inner}, '{}')",
                            escape.to_string().replace('\'', "''")
                        ))
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
                        if let Some(e) = parse_expr(&format!(
                                "unnest(range(1, CAST(coalesce(array_length({first}), 0) AS BIGINT) + 1))"
                            ))
                        {
                            *expr = e;
                            return ControlFlow::Continue(());
                        }
                    }
                }
            }
            if name.as_deref() == Some("_pg_expandarray") {
                let args = f.args.to_string();
                if let Some(e) = parse_expr(&format!("unnest(pg_expandarray{args})")) {
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
                if let Some(e) = parse_expr(&call) {
                    *expr = e;
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
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
            if let Some(call) = parse_expr(function) {
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
    let Some(Statement::Query(subquery)) = parse_statement(&sql) else {
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

pub(super) fn is_system_table(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("pg_")
        && (super::pg_tables::TABLES.iter().any(|t| t.name == lower)
            || datafusion_pg_catalog::pg_catalog::PG_CATALOG_TABLES.contains(&lower.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = crate::sql::parse_statements(sql).unwrap();
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
