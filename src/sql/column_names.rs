//! Result column names as Postgres gives them: `count` for `count(*)`,
//! `?column?` for `1 + 1`, where DataFusion would say `count(*)` and
//! `Int64(1) + Int64(1)`. Clients address columns by these names.

use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Query, SelectItem, SetExpr, Statement};

/// For each output column of a query, the Postgres name when it differs
/// from DataFusion's (None keeps DataFusion's). None overall when the
/// statement is not a plain query or its columns cannot be matched up
/// one-to-one (a `*` in the select list).
pub fn postgres_column_names(statement: &DfStatement) -> Option<Vec<Option<String>>> {
    let DfStatement::Statement(s) = statement else {
        return None;
    };
    let Statement::Query(query) = s.as_ref() else {
        return None;
    };
    names_of_query(query)
}

/// The column names PostgreSQL gives a view's query (CREATE VIEW), where
/// DataFusion names a column otherwise: `count`, not `count(*)`; a name
/// marked apart by [`separate_repeated_names`] loses its mark.
pub fn view_column_names(query: &Query, schema: &datafusion::common::DFSchema) -> Vec<String> {
    let postgres = names_of_query(query).filter(|n| n.len() == schema.fields().len());
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let own = postgres.as_ref().and_then(|n| n[i].clone());
            own.unwrap_or_else(|| match f.name().split_once(REPEAT_MARK) {
                Some((shown, _)) => shown.to_string(),
                None => f.name().clone(),
            })
        })
        .collect()
}

fn names_of_query(query: &Query) -> Option<Vec<Option<String>>> {
    first_select(query)?
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(expr) => Some(name_of(expr)),
            SelectItem::ExprWithAlias { .. } => Some(None),
            _ => None,
        })
        .collect()
}

/// Postgres' name for an unaliased select-list expression (FigureColname).
pub(crate) fn name_of(expr: &Expr) -> Option<String> {
    match expr {
        // DataFusion already names plain column references by the column.
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_lowercase()),
        Expr::AtTimeZone { .. } => Some("timezone".into()),
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Identifier(i) => Some(i.value.to_lowercase()),
            Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
            // A cast keeps a name its operand has (`ARRAY[1]::int[]` is
            // `array`), else takes the type's.
            inner => match name_of(inner) {
                Some(name) if name != "?column?" => Some(name),
                _ => Some(type_column_name(&data_type.to_string())),
            },
        },
        // `a[1]`, `(ARRAY[...])[2:3]`: named as the array.
        Expr::CompoundFieldAccess { root, access_chain }
            if access_chain.iter().all(|a| {
                matches!(a, datafusion::sql::sqlparser::ast::AccessExpr::Subscript(_))
            }) =>
        {
            match root.as_ref() {
                Expr::Identifier(i) => Some(i.value.to_lowercase()),
                Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
                inner => name_of(inner),
            }
        }
        Expr::Nested(inner) => name_of(inner).or_else(|| match inner.as_ref() {
            Expr::Identifier(i) => Some(i.value.to_lowercase()),
            _ => None,
        }),
        Expr::Case { .. } => Some("case".into()),
        Expr::Substring { shorthand, .. } => {
            Some(if *shorthand { "substr" } else { "substring" }.into())
        }
        Expr::Extract { .. } => Some("extract".into()),
        Expr::Trim { .. } => Some("btrim".into()),
        Expr::Position { .. } => Some("position".into()),
        Expr::Ceil { .. } => Some("ceil".into()),
        Expr::Floor { .. } => Some("floor".into()),
        Expr::Overlay { .. } => Some("overlay".into()),
        Expr::Exists { negated: false, .. } => Some("exists".into()),
        // `interval '1 day'`, `DATE '2024-01-05'`: named after the type.
        Expr::Interval(_) => Some("interval".into()),
        Expr::TypedString(typed) => Some(type_column_name(&typed.data_type.to_string())),
        Expr::Array(_) => Some("array".into()),
        // Named as its own first column (`(SELECT x.b ...)` is `b`).
        Expr::Subquery(q) => first_output_name(q).or(Some("?column?".into())),
        _ => Some("?column?".into()),
    }
}

/// Postgres names a cast column after the type's internal name.
fn type_column_name(sql_type: &str) -> String {
    let lower = sql_type.to_lowercase();
    let base = lower.split(['(', '[']).next().unwrap_or(&lower).trim();
    match base {
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "char" | "character" => "bpchar",
        "decimal" => "numeric",
        "timestamp with time zone" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => other,
    }
    .to_string()
}

/// Marks an alias given only to keep a repeated output name apart for
/// DataFusion (which wants distinct names); [`rename`] removes it, so the
/// client sees the repeated name, as in Postgres.
pub(crate) const REPEAT_MARK: char = '\u{1}';

/// `SELECT a, a` and `SELECT count(*), count(*)`: DataFusion refuses
/// repeated output names, Postgres allows them. Gives every repeat in
/// every select list of the statement a marked alias.
pub fn separate_repeated_names(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::Ident;
    use std::collections::HashMap;

    super::for_each_select(statement, |select| {
        // `SELECT c.oid, c.*`: the explicit column and the one from
        // the wildcard share a name; unqualify the explicit one.
        let wildcard = select.projection.iter().any(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        });
        if wildcard {
            for item in select.projection.iter_mut() {
                let name = match &*item {
                    SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                        parts.last().cloned()
                    }
                    _ => None,
                };
                if let (Some(name), SelectItem::UnnamedExpr(expr)) = (name, &*item) {
                    // Marked: DataFusion drops an alias equal to the
                    // column's own name; [`rename`] takes the mark off.
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: Ident::with_quote(
                            '"',
                            format!("{}{REPEAT_MARK}w", super::normalize_ident(&name)),
                        ),
                    };
                }
            }
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (position, item) in select.projection.iter_mut().enumerate() {
            let key = match &*item {
                SelectItem::UnnamedExpr(Expr::Identifier(i)) => super::normalize_ident(i),
                SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
                    parts.last().map(super::normalize_ident).unwrap_or_default()
                }
                // DataFusion names a scalar subquery's column after the
                // subquery's own column.
                SelectItem::UnnamedExpr(Expr::Subquery(query)) => subquery_column_key(query),
                SelectItem::UnnamedExpr(e) => datafusion_name_key(e),
                SelectItem::ExprWithAlias { alias, .. } => super::normalize_ident(alias),
                _ => continue,
            };
            let n = seen.entry(key.clone()).or_insert(0);
            *n += 1;
            if *n == 1 {
                continue;
            }
            let shown = match &*item {
                SelectItem::UnnamedExpr(e) => name_of(e).unwrap_or(key),
                _ => key,
            };
            // Marked by position: two repeats of different keys can show
            // the same name (`pg_typeof(x::text)` repeats `pg_typeof(x)`,
            // `pg_typeof(y::text)` repeats `pg_typeof(y)`).
            let alias = Ident::with_quote('"', format!("{shown}{REPEAT_MARK}{position}"));
            *item = match std::mem::replace(item, SelectItem::Wildcard(Default::default())) {
                SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                    SelectItem::ExprWithAlias { expr, alias }
                }
                other => other,
            };
        }
    });
}

/// The function that keeps a cast's name (`CAST(t.a AS Int64)`) where
/// DataFusion names a cast like the value cast.
pub const NAMED_CAST: &str = "pg_named_cast";

/// `SELECT count(CAST(a AS bigint)), count(a)`: DataFusion names both
/// aggregates `count(t.a)` (a cast takes the name of what it casts) and
/// refuses the two. Where a select's aggregates collide so, every cast
/// inside an aggregate's arguments (in the select list, HAVING and ORDER
/// BY alike, so that they still match) goes through
/// [`NAMED_CAST`], which computes nothing and is named after the cast.
pub fn separate_cast_aggregates(statement: &mut Statement) {
    use datafusion::sql::sqlparser::ast::{
        Function, FunctionArguments, Ident, ObjectName, ObjectNamePart, Query as AstQuery, Visit,
        VisitMut, Visitor, VisitorMut,
    };
    use std::ops::ControlFlow;

    /// The aggregate calls of an expression.
    struct Aggregates<'a>(&'a mut Vec<Expr>);
    impl Visitor for Aggregates<'_> {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if aggregate(expr) {
                self.0.push(expr.clone());
            }
            ControlFlow::Continue(())
        }
    }
    /// Wraps the casts that are inside an aggregate's call.
    struct Named(usize);
    /// An aggregate's call (the names DataFusion gives alike).
    fn aggregate(expr: &Expr) -> bool {
        const AGGREGATES: [&str; 22] = [
            "count",
            "sum",
            "avg",
            "min",
            "max",
            "array_agg",
            "string_agg",
            "bool_and",
            "bool_or",
            "every",
            "stddev",
            "stddev_pop",
            "stddev_samp",
            "variance",
            "var_pop",
            "var_samp",
            "bit_and",
            "bit_or",
            "bit_xor",
            "json_agg",
            "jsonb_agg",
            "median",
        ];
        match expr {
            Expr::Function(f) => f
                .name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .is_some_and(|i| AGGREGATES.contains(&i.value.to_lowercase().as_str())),
            _ => false,
        }
    }
    impl VisitorMut for Named {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if aggregate(expr) {
                self.0 += 1;
            }
            ControlFlow::Continue(())
        }
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if aggregate(expr) {
                self.0 -= 1;
            } else if self.0 > 0 && matches!(expr, Expr::Cast { .. }) {
                let cast = std::mem::replace(
                    expr,
                    Expr::Value(datafusion::sql::sqlparser::ast::Value::Null.into()),
                );
                *expr = Expr::Function(Function {
                    name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(NAMED_CAST))]),
                    uses_odbc_syntax: false,
                    parameters: FunctionArguments::None,
                    args: FunctionArguments::List(
                        datafusion::sql::sqlparser::ast::FunctionArgumentList {
                            duplicate_treatment: None,
                            args: vec![datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                                datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(cast),
                            )],
                            clauses: vec![],
                        },
                    ),
                    filter: None,
                    null_treatment: None,
                    over: None,
                    within_group: vec![],
                });
            }
            ControlFlow::Continue(())
        }
    }

    fn separate(query: &mut AstQuery) {
        let SetExpr::Select(select) = query.body.as_ref() else {
            return;
        };
        let mut calls = Vec::new();
        for item in &select.projection {
            let _ = item.visit(&mut Aggregates(&mut calls));
        }
        let keys: Vec<String> = calls.iter().map(datafusion_name_key).collect();
        let collide =
            (0..calls.len()).any(|i| (0..i).any(|j| keys[i] == keys[j] && calls[i] != calls[j]));
        if !collide {
            return;
        }
        if let SetExpr::Select(select) = query.body.as_mut() {
            for item in select.projection.iter_mut() {
                let _ = item.visit(&mut Named(0));
            }
            if let Some(having) = select.having.as_mut() {
                let _ = having.visit(&mut Named(0));
            }
        }
        if let Some(order_by) = query.order_by.as_mut() {
            let _ = order_by.visit(&mut Named(0));
        }
    }
    struct EachQuery;
    impl VisitorMut for EachQuery {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut AstQuery) -> ControlFlow<()> {
            separate(query);
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut EachQuery);
}

/// The key of the column a scalar subquery names: its first item's.
fn subquery_column_key(query: &Query) -> String {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return "<subquery>".into();
    };
    match select.projection.first() {
        Some(SelectItem::UnnamedExpr(Expr::Identifier(i))) => super::normalize_ident(i),
        Some(SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts))) => {
            parts.last().map(super::normalize_ident).unwrap_or_default()
        }
        Some(SelectItem::UnnamedExpr(e)) => datafusion_name_key(e),
        Some(SelectItem::ExprWithAlias { alias, .. }) => super::normalize_ident(alias),
        _ => "<subquery>".into(),
    }
}

/// An expression's text as DataFusion would name it, near enough to see
/// two names collide: DataFusion leaves casts, unary plus and parentheses
/// out of names (`CAST(ts AS date)` is named like `ts`) and names every
/// subquery alike.
fn datafusion_name_key(expr: &Expr) -> String {
    use datafusion::sql::sqlparser::ast::{UnaryOperator, Value, VisitMut, VisitorMut};
    use std::ops::ControlFlow;

    struct Strip;
    impl VisitorMut for Strip {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let placeholder = || Expr::Value(Value::Null.into());
            *expr = match std::mem::replace(expr, placeholder()) {
                Expr::Cast { expr, .. } | Expr::Nested(expr) => *expr,
                // `TIMESTAMP '...'` is a cast of the string.
                Expr::TypedString(typed) => Expr::Value(typed.value),
                Expr::UnaryOp {
                    op: UnaryOperator::Plus,
                    expr,
                } => *expr,
                // The planner folds a negated number into the literal, and
                // `-0` is `0`.
                Expr::UnaryOp {
                    op: UnaryOperator::Minus,
                    expr,
                } if matches!(&*expr, Expr::Value(v)
                        if matches!(&v.value, Value::Number(n, _)
                            if n.parse::<f64>().is_ok_and(|f| f == 0.0))) =>
                {
                    *expr
                }
                Expr::Subquery(_) => Expr::Identifier("<subquery>".into()),
                Expr::InSubquery { negated, .. } => {
                    Expr::Identifier(format!("in {negated} <subquery>").as_str().into())
                }
                Expr::Exists { negated, .. } => {
                    Expr::Identifier(format!("exists {negated} <subquery>").as_str().into())
                }
                other => other,
            };
            ControlFlow::Continue(())
        }
    }
    let mut copy = expr.clone();
    let _ = copy.visit(&mut Strip);
    copy.to_string()
}

/// The name PostgreSQL gives the first column of a query.
fn first_output_name(query: &Query) -> Option<String> {
    first_select(query)?
        .projection
        .first()
        .and_then(output_name)
}

/// The select that names a query's columns: the first branch of a set
/// operation.
fn first_select(query: &Query) -> Option<&datafusion::sql::sqlparser::ast::Select> {
    let mut body = query.body.as_ref();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(q) => return first_select(q),
            SetExpr::Select(select) => return Some(select),
            _ => return None,
        }
    }
}

/// The name PostgreSQL gives a select-list item (None for `*`).
pub(crate) fn output_name(item: &SelectItem) -> Option<String> {
    match item {
        SelectItem::ExprWithAlias { alias, .. } => Some(super::normalize_ident(alias)),
        SelectItem::UnnamedExpr(Expr::Identifier(i)) => Some(super::normalize_ident(i)),
        SelectItem::UnnamedExpr(Expr::CompoundIdentifier(parts)) => {
            parts.last().map(super::normalize_ident)
        }
        SelectItem::UnnamedExpr(e) => name_of(e),
        _ => None,
    }
}

pub(crate) fn item_expr(item: &SelectItem) -> Option<&Expr> {
    match item {
        SelectItem::ExprWithAlias { expr, .. } | SelectItem::UnnamedExpr(expr) => Some(expr),
        _ => None,
    }
}

/// Renames the fields of `schema` where `names` says so, and drops the
/// marks [`separate_repeated_names`] added.
pub fn rename(schema: &SchemaRef, names: &Option<Vec<Option<String>>>) -> SchemaRef {
    let names = names
        .as_ref()
        .filter(|names| names.len() == schema.fields().len());
    let marked = schema
        .fields()
        .iter()
        .any(|f| f.name().contains(REPEAT_MARK));
    if names.is_none() && !marked {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| match names.and_then(|n| n[i].as_ref()) {
            Some(n) => f.as_ref().clone().with_name(n),
            None => match f.name().split_once(REPEAT_MARK) {
                Some((shown, _)) => f.as_ref().clone().with_name(shown),
                None => f.as_ref().clone(),
            },
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Option<Vec<Option<String>>> {
        let statement = crate::sql::parse_statements(sql)
            .unwrap()
            .pop_front()
            .unwrap();
        postgres_column_names(&statement)
    }

    #[test]
    fn functions_literals_and_casts_get_postgres_names() {
        assert_eq!(
            names("select count(*), 1 + 1, a, x::int, 'a'::text, sum(b) as total, substr(a, 1) from t"),
            Some(vec![
                Some("count".into()),
                Some("?column?".into()),
                None,
                Some("x".into()),
                Some("text".into()),
                None,
                Some("substr".into()),
            ])
        );
    }

    #[test]
    fn wildcards_keep_datafusion_names() {
        assert_eq!(names("select *, 1 from t"), None);
    }
}
