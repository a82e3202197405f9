//! A set-returning function in FROM over a column of an earlier table
//! (`FROM orders o, jsonb_array_elements(o.items) AS e`, also written
//! `CROSS JOIN LATERAL`): PostgreSQL calls it once per row of that table.
//! DataFusion cannot plan the correlated call, but it expands the same
//! function in a select list, so the table and the call become one derived
//! table under the table's own name:
//!
//! ```sql
//! FROM (SELECT o.*, jsonb_array_elements(o.items) AS value FROM orders o) AS o
//! ```
//!
//! and `e.value` in the query becomes `o.value`. Rows whose call yields
//! nothing drop out, as in PostgreSQL's (inner) lateral join; under `LEFT
//! JOIN LATERAL ... ON true` they stay once, with NULL for the call's
//! column (a second branch of the derived table selects them).

use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, Expr, FunctionArg, FunctionArgExpr, Ident, JoinConstraint, JoinOperator,
    ObjectName, Query, Select, SelectItem, SetExpr, TableAlias, TableFactor, Value, Visit,
    VisitMut, Visitor, VisitorMut,
};
use datafusion::sql::sqlparser::parser::Parser;

/// The functions rewritten, and whether they name their column after the
/// alias (a scalar result) rather than `value`.
const FUNCTIONS: &[(&str, bool)] = &[
    ("jsonb_array_elements", false),
    ("jsonb_array_elements_text", false),
    ("json_array_elements", false),
    ("json_array_elements_text", false),
    ("jsonb_object_keys", true),
    ("json_object_keys", true),
    ("generate_series", true),
    ("unnest", true),
];

/// Rewrites every lateral call in the statement (see the module's text).
pub fn rewrite_lateral_functions(statement: &mut DfStatement) {
    match statement {
        DfStatement::Statement(s) => {
            let _ = s.visit(&mut Lateral);
        }
        DfStatement::Explain(explain) => rewrite_lateral_functions(explain.statement.as_mut()),
        _ => {}
    }
}

struct Lateral;

impl VisitorMut for Lateral {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        while let Some(found) = find(select) {
            let Some((from, to, column)) = apply(select, found) else {
                break;
            };
            let rename = |expr: &mut Expr| {
                match expr {
                    Expr::CompoundIdentifier(parts)
                        if parts.len() == 2 && same(&parts[0], &from) =>
                    {
                        parts[0] = to.clone();
                    }
                    // The alias alone is the call's value (`e ->> 'k'`).
                    Expr::Identifier(alias) if same(alias, &from) => {
                        *expr = Expr::CompoundIdentifier(vec![to.clone(), column.clone()]);
                    }
                    _ => {}
                }
                ControlFlow::<()>::Continue(())
            };
            let _ = visit_expressions_mut(select.as_mut(), rename);
            if let Some(order_by) = &mut query.order_by {
                let _ = visit_expressions_mut(order_by, rename);
            }
        }
        ControlFlow::Continue(())
    }
}

fn same(a: &Ident, b: &Ident) -> bool {
    super::normalize_ident(a) == super::normalize_ident(b)
}

/// Where a lateral call stands: an item of the FROM list of its own, or
/// a join of an item.
#[derive(Clone, Copy)]
enum Place {
    Item(usize),
    Join(usize, usize),
}

struct Found {
    place: Place,
    /// `LEFT JOIN LATERAL ... ON true`: a row whose call yields nothing
    /// stays, with NULL for the call's column.
    left: bool,
    /// The relation the call reads: (item, None) or (item, Some(join)).
    target: (usize, Option<usize>),
}

/// A call of one of [`FUNCTIONS`] in `factor`: its name, arguments and
/// alias.
fn call(factor: &TableFactor) -> Option<(&'static str, Vec<Expr>, &Option<TableAlias>)> {
    let (name, args, alias) = match factor {
        TableFactor::Table {
            name,
            args: Some(args),
            alias,
            with_ordinality: false,
            ..
        } => (name, &args.args, alias),
        TableFactor::Function {
            name,
            args,
            alias,
            with_ordinality: false,
            ..
        } => (name, args, alias),
        TableFactor::UNNEST {
            alias,
            array_exprs,
            with_offset: false,
            with_ordinality: false,
            ..
        } if array_exprs.len() == 1 => return Some(("unnest", array_exprs.clone(), alias)),
        _ => return None,
    };
    let [function] = name.0.as_slice() else {
        return None;
    };
    let function = function.as_ident()?.value.to_ascii_lowercase();
    let (known, _) = FUNCTIONS.iter().find(|(f, _)| *f == function)?;
    let args = args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some((known, args, alias))
}

/// The qualifiers of the columns the arguments read (None: unqualified).
fn qualifiers(args: &[Expr]) -> Vec<Option<Ident>> {
    struct Columns(Vec<Option<Ident>>);
    impl Visitor for Columns {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            match expr {
                Expr::Identifier(_) => self.0.push(None),
                Expr::CompoundIdentifier(parts) if parts.len() == 2 => {
                    self.0.push(Some(parts[0].clone()))
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    let mut columns = Columns(vec![]);
    for arg in args {
        let _ = arg.visit(&mut columns);
    }
    columns.0
}

/// The name a relation is referred to by, if it is a plain table or an
/// aliased derived table.
fn relation_name(factor: &TableFactor) -> Option<Ident> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => match alias {
            Some(a) if a.columns.is_empty() => Some(a.name.clone()),
            Some(_) => None,
            None => name.0.last()?.as_ident().cloned(),
        },
        TableFactor::Derived { alias: Some(a), .. } if a.columns.is_empty() => Some(a.name.clone()),
        _ => None,
    }
}

fn find(select: &Select) -> Option<Found> {
    // The relations before a place, with their positions.
    let before = |place: Place| {
        let mut list = Vec::new();
        let (items, joins) = match place {
            Place::Item(i) => (i, None),
            Place::Join(i, j) => (i, Some(j)),
        };
        for (i, item) in select.from.iter().enumerate().take(items + 1) {
            if i < items {
                list.push(((i, None), &item.relation));
                for (j, join) in item.joins.iter().enumerate() {
                    list.push(((i, Some(j)), &join.relation));
                }
            } else if let Some(j) = joins {
                list.push(((i, None), &item.relation));
                for (k, join) in item.joins.iter().enumerate().take(j) {
                    list.push(((i, Some(k)), &join.relation));
                }
            }
        }
        list
    };
    let mut places = Vec::new();
    for (i, item) in select.from.iter().enumerate() {
        if i > 0 && item.joins.is_empty() {
            places.push((Place::Item(i), &item.relation, false));
        }
        for (j, join) in item.joins.iter().enumerate() {
            // CROSS JOIN [LATERAL] f(...), [LEFT] JOIN LATERAL f(...) ON true.
            let on_true =
                |on: &Expr| matches!(on, Expr::Value(v) if v.value == Value::Boolean(true));
            let (lateral, left) = match &join.join_operator {
                JoinOperator::CrossJoin(JoinConstraint::None) => (true, false),
                JoinOperator::Join(JoinConstraint::On(on))
                | JoinOperator::Inner(JoinConstraint::On(on)) => (on_true(on), false),
                JoinOperator::Left(JoinConstraint::On(on))
                | JoinOperator::LeftOuter(JoinConstraint::On(on)) => (on_true(on), true),
                _ => (false, false),
            };
            if lateral && j + 1 == item.joins.len() {
                places.push((Place::Join(i, j), &join.relation, left));
            }
        }
    }
    for (place, factor, left) in places {
        let Some((_, args, _)) = call(factor) else {
            continue;
        };
        let columns = qualifiers(&args);
        if columns.is_empty() {
            continue;
        }
        let candidates = before(place);
        let target = match columns.first().cloned().flatten() {
            Some(q)
                if columns
                    .iter()
                    .all(|c| c.as_ref().is_some_and(|c| same(c, &q))) =>
            {
                candidates
                    .iter()
                    .find(|(_, f)| relation_name(f).is_some_and(|n| same(&n, &q)))
                    .map(|(at, _)| *at)
            }
            None if columns.iter().all(Option::is_none) && candidates.len() == 1 => {
                relation_name(candidates[0].1).map(|_| candidates[0].0)
            }
            _ => None,
        };
        if let Some(target) = target {
            return Some(Found {
                place,
                left,
                target,
            });
        }
    }
    None
}

/// Makes the target relation a derived table with the call's column and
/// drops the call; returns the call's alias, the target's name and the
/// call's column, for renaming the references.
fn apply(select: &mut Select, found: Found) -> Option<(Ident, Ident, Ident)> {
    let factor = match found.place {
        Place::Item(i) => &select.from[i].relation,
        Place::Join(i, j) => &select.from[i].joins[j].relation,
    };
    let (function, args, alias) = call(factor)?;
    let scalar = FUNCTIONS.iter().any(|(f, s)| *f == function && *s);
    let alias_name = alias
        .as_ref()
        .map_or_else(|| Ident::new(function), |a| a.name.clone());
    let column = match alias.as_ref().and_then(|a| a.columns.first()) {
        Some(c) => c.name.clone(),
        None if scalar => alias_name.clone(),
        None => Ident::new("value"),
    };
    if alias.as_ref().is_some_and(|a| a.columns.len() > 1) {
        return None;
    }
    let arguments: Vec<String> = args.iter().map(ToString::to_string).collect();
    let target = match found.target {
        (i, None) => &select.from[i].relation,
        (i, Some(j)) => &select.from[i].joins[j].relation,
    };
    let name = relation_name(target)?;
    let call = format!("{function}({})", arguments.join(", "));
    let text = match found.left {
        false => format!("(SELECT {name}.*, {call} AS {column} FROM {target}) AS {name}"),
        // The rows whose call yields nothing, once each, with NULL.
        true => format!(
            "(SELECT {name}.*, {call} AS {column} FROM {target} \
             UNION ALL SELECT {name}.*, NULL AS {column} FROM {target} WHERE {}) AS {name}",
            yields_nothing(function, &arguments)?
        ),
    };
    let dialect = super::dialect::Postgres;
    let derived = Parser::new(&dialect)
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_table_factor())
        .ok()?;
    match found.target {
        (i, None) => select.from[i].relation = derived,
        (i, Some(j)) => select.from[i].joins[j].relation = derived,
    }
    match found.place {
        Place::Item(i) => {
            select.from.remove(i);
        }
        Place::Join(i, j) => {
            select.from[i].joins.remove(j);
        }
    }
    // `e.*` is the call's one column.
    for item in select.projection.iter_mut() {
        if let SelectItem::QualifiedWildcard(kind, _) = item {
            let named = match kind {
                datafusion::sql::sqlparser::ast::SelectItemQualifiedWildcardKind::ObjectName(
                    ObjectName(parts),
                ) => parts.len() == 1 && parts[0].as_ident().is_some_and(|i| same(i, &alias_name)),
                _ => false,
            };
            if named {
                *item = SelectItem::UnnamedExpr(Expr::CompoundIdentifier(vec![
                    name.clone(),
                    column.clone(),
                ]));
            }
        }
    }
    Some((alias_name, name, column))
}

/// A condition true exactly when the call yields no rows (a NULL
/// argument yields none); None for a call whose rows it cannot tell.
fn yields_nothing(function: &str, args: &[String]) -> Option<String> {
    Some(match (function, args) {
        (
            "jsonb_array_elements" | "jsonb_array_elements_text",
            [x],
        ) => format!("coalesce(jsonb_array_length({x}), 0) = 0"),
        ("json_array_elements" | "json_array_elements_text", [x]) => {
            format!("coalesce(json_array_length({x}), 0) = 0")
        }
        ("jsonb_object_keys", [x]) => format!("coalesce({x} = '{{}}'::jsonb, true)"),
        ("unnest", [x]) => format!("coalesce(cardinality({x}), 0) = 0"),
        ("generate_series", [from, to]) => format!("NOT coalesce({from} <= {to}, false)"),
        ("generate_series", [from, to, step]) => format!(
            "NOT coalesce(({step} > 0 AND {from} <= {to}) OR ({step} < 0 AND {from} >= {to}), false)"
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut statements = datafusion::sql::parser::DFParser::parse_sql_with_dialect(
            sql,
            &super::super::dialect::Postgres,
        )
        .unwrap();
        let mut statement = statements.pop_front().unwrap();
        rewrite_lateral_functions(&mut statement);
        statement.to_string()
    }

    #[test]
    fn a_call_over_a_column_becomes_a_derived_table() {
        assert_eq!(
            rewritten("SELECT o.id, e.value ->> 's' FROM orders o, jsonb_array_elements(o.items) AS e WHERE e.value ? 's' ORDER BY e.value"),
            "SELECT o.id, o.value ->> 's' FROM (SELECT o.*, jsonb_array_elements(o.items) AS value FROM orders o) AS o WHERE o.value ? 's' ORDER BY o.value"
        );
        assert_eq!(
            rewritten("SELECT t.id, g FROM t CROSS JOIN LATERAL generate_series(1, t.n) AS g"),
            "SELECT t.id, t.g FROM (SELECT t.*, generate_series(1, t.n) AS g FROM t) AS t"
        );
        assert_eq!(
            rewritten("SELECT k.* FROM t JOIN LATERAL jsonb_object_keys(j) k ON true"),
            "SELECT t.k FROM (SELECT t.*, jsonb_object_keys(j) AS k FROM t) AS t"
        );
    }

    #[test]
    fn a_left_lateral_call_keeps_the_rows_it_yields_nothing_for() {
        assert_eq!(
            rewritten("SELECT t.id, x FROM t LEFT JOIN LATERAL unnest(t.a) x ON true"),
            "SELECT t.id, t.x FROM (SELECT t.*, unnest(t.a) AS x FROM t UNION ALL SELECT t.*, NULL AS x FROM t WHERE coalesce(cardinality(t.a), 0) = 0) AS t"
        );
    }

    #[test]
    fn other_calls_are_left_alone() {
        for sql in [
            "SELECT * FROM jsonb_array_elements('[1]')",
            "SELECT * FROM a, b, jsonb_array_elements(x)",
            "SELECT * FROM t, jsonb_each(t.j)",
            "SELECT * FROM t LEFT JOIN LATERAL json_object_keys(t.j) k ON true",
        ] {
            assert_eq!(rewritten(sql), sql);
        }
    }
}
