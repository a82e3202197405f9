//! A table's whole row as one value, where the JSON functions take it:
//! `row_to_json(t)`, `to_json(t)`, `json_agg(t)` (and `t.*`, and the jsonb
//! forms) make an object of the row's columns, as PostgREST, Hasura and
//! hand-written reports send.
//!
//! A bare name in such a call that names a relation of the statement is
//! spelled `t.*` after parsing ([`rewrite`]); DataFusion plans `t.*` in a
//! call as a wildcard it cannot execute, so before type coercion the
//! wildcard becomes `named_struct('a', t.a, ...)` over the relation's
//! columns ([`expand`]), which the JSON functions write as an object. A
//! name that is also a column of the query is that column, as PostgreSQL
//! resolves it.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::error::Result;
use datafusion::logical_expr::{lit, Expr};
use datafusion::sql::sqlparser::ast::{
    Expr as SqlExpr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName,
    ObjectNamePart, Statement, TableAlias, TableFactor, VisitMut, VisitorMut,
};

/// The functions that take a whole row.
const ROW_FUNCTIONS: &[&str] = &[
    "row_to_json",
    "to_json",
    "to_jsonb",
    "json_agg",
    "jsonb_agg",
];

/// Whether the statement's text may hold such a call (most do not, and
/// skip the walks).
pub(crate) fn may_apply(sql: &str) -> bool {
    sql.to_ascii_lowercase().contains("json")
}

/// Spells a bare relation name passed to a row function as `name.*`.
pub(crate) fn rewrite(statement: &mut Statement) {
    let mut relations = Relations::default();
    let _ = statement.visit(&mut relations);
    if relations.0.is_empty() {
        return;
    }
    let _ = datafusion::sql::sqlparser::ast::visit_expressions_mut(statement, |expr| {
        let SqlExpr::Function(call) = expr else {
            return ControlFlow::<()>::Continue(());
        };
        let name = call.name.to_string().to_ascii_lowercase();
        let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
        if !ROW_FUNCTIONS.contains(&name) {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &mut call.args else {
            return ControlFlow::Continue(());
        };
        if let Some(FunctionArg::Unnamed(arg)) = list.args.first_mut() {
            if let FunctionArgExpr::Expr(SqlExpr::Identifier(ident)) = arg {
                if relations.0.contains(&folded(ident)) {
                    *arg = FunctionArgExpr::QualifiedWildcard(ObjectName(vec![
                        ObjectNamePart::Identifier(ident.clone()),
                    ]));
                }
            }
        }
        ControlFlow::Continue(())
    });
}

/// An identifier as PostgreSQL compares it: unquoted ones fold to lower
/// case.
fn folded(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

/// The names the statement's relations go by: their aliases, or a table's
/// own (last) name.
#[derive(Default)]
struct Relations(HashSet<String>);

impl VisitorMut for Relations {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let alias: Option<&TableAlias> = match factor {
            TableFactor::Table { name, alias, .. } => {
                if alias.is_none() {
                    if let Some(ObjectNamePart::Identifier(last)) = name.0.last() {
                        self.0.insert(folded(last));
                    }
                }
                alias.as_ref()
            }
            TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => alias.as_ref(),
            _ => None,
        };
        if let Some(alias) = alias {
            self.0.insert(folded(&alias.name));
        }
        ControlFlow::Continue(())
    }
}

/// A `t.*` argument of a call becomes the row of `t`'s columns, named as
/// they are.
pub(crate) fn expand(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let row = |arg: &mut Expr| -> Result<bool> {
        #[allow(deprecated)]
        let Expr::Wildcard {
            qualifier: Some(qualifier),
            options,
        } = arg
        else {
            return Ok(false);
        };
        // A column of that name wins, as PostgreSQL resolves `to_json(t)`
        // when `t` is both a column and a relation.
        if let [column] = schema
            .columns_with_unqualified_name(qualifier.table())
            .as_slice()
        {
            *arg = Expr::Column(column.clone());
            return Ok(true);
        }
        let columns = datafusion::logical_expr::utils::expand_qualified_wildcard(
            qualifier,
            schema,
            Some(options),
        )?;
        let mut pairs = Vec::with_capacity(columns.len() * 2);
        for column in columns {
            let Expr::Column(c) = &column else {
                continue;
            };
            pairs.push(lit(c.name.clone()));
            pairs.push(column);
        }
        *arg = datafusion::functions::core::named_struct().call(pairs);
        Ok(true)
    };
    match expr {
        Expr::ScalarFunction(mut call) => {
            let mut changed = false;
            for arg in call.args.iter_mut() {
                changed |= row(arg)?;
            }
            Ok(Transformed::new_transformed(
                Expr::ScalarFunction(call),
                changed,
            ))
        }
        Expr::AggregateFunction(mut call) => {
            let mut changed = false;
            for arg in call.params.args.iter_mut() {
                changed |= row(arg)?;
            }
            Ok(Transformed::new_transformed(
                Expr::AggregateFunction(call),
                changed,
            ))
        }
        other => Ok(Transformed::no(other)),
    }
}

#[cfg(test)]
mod tests {
    fn rewritten(sql: &str) -> String {
        let mut statement = crate::sql::parse_statements(sql)
            .unwrap()
            .pop_front()
            .unwrap();
        let datafusion::sql::parser::Statement::Statement(s) = &mut statement else {
            panic!("not a statement");
        };
        s.to_string()
    }

    #[test]
    fn a_relation_name_in_a_row_function_becomes_its_row() {
        assert_eq!(
            rewritten("SELECT row_to_json(t), json_agg(T) FROM (SELECT 1 AS a) t"),
            "SELECT row_to_json(t.*), json_agg(T.*) FROM (SELECT 1 AS a) t"
        );
        assert_eq!(
            rewritten("SELECT to_jsonb(o) FROM orders o JOIN items ON true"),
            "SELECT to_jsonb(o.*) FROM orders o JOIN items ON true"
        );
        // A column, a name that is no relation, and other functions stay.
        assert_eq!(
            rewritten("SELECT to_json(a), upper(t) FROM t"),
            "SELECT to_json(a), upper(t) FROM t"
        );
        assert_eq!(
            rewritten("SELECT to_json(\"T\") FROM t"),
            "SELECT to_json(\"T\") FROM t"
        );
    }
}
