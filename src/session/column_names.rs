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

fn names_of_query(query: &Query) -> Option<Vec<Option<String>>> {
    let mut body = query.body.as_ref();
    // The first branch of a set operation names the columns.
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_ref(),
            SetExpr::Query(q) => return names_of_query(q),
            SetExpr::Select(select) => {
                return select
                    .projection
                    .iter()
                    .map(|item| match item {
                        SelectItem::UnnamedExpr(expr) => Some(name_of(expr)),
                        SelectItem::ExprWithAlias { .. } => Some(None),
                        _ => None,
                    })
                    .collect();
            }
            _ => return None,
        }
    }
}

/// Postgres' name for an unaliased select-list expression (FigureColname).
fn name_of(expr: &Expr) -> Option<String> {
    match expr {
        // DataFusion already names plain column references by the column.
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
        Expr::Function(f) => f
            .name
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(|i| i.value.to_lowercase()),
        Expr::Cast {
            expr, data_type, ..
        } => match expr.as_ref() {
            Expr::Identifier(i) => Some(i.value.to_lowercase()),
            Expr::CompoundIdentifier(parts) => parts.last().map(|i| i.value.to_lowercase()),
            Expr::Function(_) => name_of(expr),
            _ => Some(type_column_name(&data_type.to_string())),
        },
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
        Expr::Exists { .. } => Some("exists".into()),
        Expr::Array(_) => Some("array".into()),
        Expr::Subquery(q) => names_of_query(q)
            .and_then(|n| n.into_iter().next())
            .flatten()
            .or(Some("?column?".into())),
        _ => Some("?column?".into()),
    }
}

/// Postgres names a cast column after the type's internal name.
fn type_column_name(sql_type: &str) -> String {
    let lower = sql_type.to_lowercase();
    let base = lower.split('(').next().unwrap_or(&lower).trim();
    match base {
        "integer" | "int" => "int4",
        "bigint" => "int8",
        "smallint" => "int2",
        "real" => "float4",
        "double precision" | "float" => "float8",
        "boolean" => "bool",
        "character varying" => "varchar",
        "decimal" => "numeric",
        "timestamp with time zone" => "timestamptz",
        "timestamp" | "timestamp without time zone" => "timestamp",
        other => other,
    }
    .to_string()
}

/// Renames the fields of `schema` where `names` says so.
pub fn rename(schema: &SchemaRef, names: &Option<Vec<Option<String>>>) -> SchemaRef {
    let Some(names) = names else {
        return schema.clone();
    };
    if names.len() != schema.fields().len() {
        return schema.clone();
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(names)
        .map(|(f, name)| match name {
            Some(n) => f.as_ref().clone().with_name(n),
            None => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    fn names(sql: &str) -> Option<Vec<Option<String>>> {
        let statement = Session::parse(sql).unwrap().pop_front().unwrap();
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
