//! `ORDER BY` as PostgreSQL resolves it, where DataFusion's planner
//! resolves otherwise or refuses: which column a name means (an output
//! column, or inside an expression an input column), positions of
//! expressions over grouped columns, and casts of the sort column.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    Expr, Ident, Query, SelectItem, SetExpr, Statement, Value, Visit, VisitMut, Visitor, VisitorMut,
};

use super::column_names::{item_expr, name_of, output_name, REPEAT_MARK};
use super::normalize_ident;
use crate::error::QuiverError;

/// Two select-list items that compute the same thing (`a` and `t.a` are
/// taken to be one column).
fn same_item(a: &Expr, b: &Expr) -> bool {
    let column = |e: &Expr| match e {
        Expr::Identifier(i) => Some(normalize_ident(i)),
        Expr::CompoundIdentifier(parts) => parts.last().map(normalize_ident),
        _ => None,
    };
    match (column(a), column(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// `ORDER BY` names as PostgreSQL resolves them. A bare name is an output
/// column first (two different output columns of that name are `42702`),
/// an input column otherwise; inside an expression every name is an input
/// column. DataFusion also sees output aliases inside expressions and
/// prefers them, which sorted `SELECT b AS a FROM t ORDER BY a + 0` by
/// `b`. In the statement's own result (not in subqueries, whose output
/// names the outer query reads) such an alias is renamed with a mark that
/// [`super::column_names::rename`] takes off, so that DataFusion finds the input column.
pub fn resolve_order_by(statement: &mut Statement) -> Result<(), QuiverError> {
    /// Every query of the statement; the first one visited is the
    /// statement's own result when the statement is a query.
    struct Resolve {
        error: Option<QuiverError>,
        top: bool,
    }
    impl VisitorMut for Resolve {
        type Break = ();
        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            let top = std::mem::take(&mut self.top);
            let resolved = check_ambiguous(query).and_then(|()| {
                name_positions(query, top);
                name_casts(query, top);
                hide_aliases(query, top)
            });
            match resolved {
                Ok(()) => ControlFlow::Continue(()),
                Err(e) => {
                    self.error = Some(e);
                    ControlFlow::Break(())
                }
            }
        }
    }
    let mut resolve = Resolve {
        error: None,
        top: matches!(statement, Statement::Query(_)),
    };
    let _ = statement.visit(&mut resolve);
    resolve.error.map_or(Ok(()), Err)
}

/// Gives an unaliased select-list item the alias `name`: marked with
/// `tag` in the statement's own result (the mark comes off in its column
/// names, [`super::column_names::rename`]), plain in a subquery, whose
/// names the outer query reads. Returns the alias.
fn alias_item(item: &mut SelectItem, name: &str, top: bool, tag: &str) -> String {
    let alias = match top {
        true => format!("{name}{REPEAT_MARK}{tag}"),
        false => name.to_string(),
    };
    if let SelectItem::UnnamedExpr(expr) = item {
        *item = SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: Ident::with_quote('"', &alias),
        };
    }
    alias
}

/// The position an `ORDER BY` item names (`ORDER BY 2`), if it is one.
fn position(expr: &Expr) -> Option<usize> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn order_exprs(query: &mut Query) -> Vec<&mut Expr> {
    match query.order_by.as_mut().map(|o| &mut o.kind) {
        Some(datafusion::sql::sqlparser::ast::OrderByKind::Expressions(exprs)) => {
            exprs.iter_mut().map(|e| &mut e.expr).collect()
        }
        _ => Vec::new(),
    }
}

fn check_ambiguous(query: &mut Query) -> Result<(), QuiverError> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Ok(());
    };
    let projection = select.projection.clone();
    for expr in order_exprs(query) {
        let Expr::Identifier(ident) = &*expr else {
            continue;
        };
        let name = normalize_ident(ident);
        let matching: Vec<&Expr> = projection
            .iter()
            .filter(|item| output_name(item).as_deref() == Some(name.as_str()))
            .filter_map(item_expr)
            .collect();
        if matching.windows(2).any(|w| !same_item(w[0], w[1])) {
            return Err(QuiverError::AmbiguousColumn(format!(
                "ORDER BY \"{name}\" is ambiguous"
            )));
        }
    }
    Ok(())
}

/// Unqualified names read inside an expression.
fn names_in(expr: &Expr) -> Vec<String> {
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Identifier(i) = expr {
                self.0.push(normalize_ident(i));
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(Vec::new());
    let _ = expr.visit(&mut names);
    names.0
}

fn hide_aliases(query: &mut Query, top: bool) -> Result<(), QuiverError> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return Ok(());
    };
    // Aliases an ORDER BY expression (not a bare name) mentions, other
    // than an alias of the very column it names.
    let aliases: Vec<String> = select
        .projection
        .iter()
        .filter_map(|item| match item {
            SelectItem::ExprWithAlias { expr, alias } => {
                let name = normalize_ident(alias);
                let plain = matches!(expr, Expr::Identifier(i) if normalize_ident(i) == name);
                (!plain).then_some(name)
            }
            _ => None,
        })
        .collect();
    let mentioned: Vec<String> = order_exprs(query)
        .into_iter()
        .filter(|e| !matches!(e, Expr::Identifier(_) | Expr::Value(_)))
        .flat_map(|e| names_in(e))
        .filter(|n| aliases.contains(n))
        .collect();
    if mentioned.is_empty() {
        return Ok(());
    }
    if !top {
        return Err(QuiverError::FeatureNotSupported(format!(
            "in a subquery, ORDER BY \"{}\" inside an expression where an output column \
             has that name too is not supported (give the output column another name)",
            mentioned[0]
        )));
    }
    let hidden = |name: &str| Ident::with_quote('"', format!("{name}{REPEAT_MARK}o"));
    if let SetExpr::Select(select) = query.body.as_mut() {
        for item in select.projection.iter_mut() {
            if let SelectItem::ExprWithAlias { alias, .. } = item {
                if mentioned.contains(&normalize_ident(alias)) {
                    *alias = hidden(&normalize_ident(alias));
                }
            }
        }
    }
    // A bare ORDER BY name still means the output column.
    for expr in order_exprs(query) {
        if let Expr::Identifier(ident) = expr {
            let name = normalize_ident(ident);
            if mentioned.contains(&name) {
                *ident = hidden(&name);
            }
        }
    }
    Ok(())
}

/// `SELECT t::date FROM x ORDER BY t`: DataFusion names the cast like
/// the column, then adds the column for the sort, and refuses the two
/// alike names. An alias keeps them apart: in the statement's result
/// a marked one ([`super::column_names::rename`] takes the mark off), which a bare `ORDER
/// BY t` then names (an output column comes first); in a subquery,
/// whose names the outer query reads, the name PostgreSQL gives.
fn name_casts(query: &mut Query, top: bool) {
    if order_exprs(query).is_empty() {
        return;
    }
    let mut marked = Vec::new();
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    for item in select.projection.iter_mut() {
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        let mut inner = &*expr;
        while let Expr::Cast { expr, .. } | Expr::Nested(expr) = inner {
            inner = expr;
        }
        if !matches!(expr, Expr::Cast { .. })
            || !matches!(inner, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
        {
            continue;
        }
        if let Some(name) = name_of(expr) {
            let alias = alias_item(item, &name, top, "c");
            if top {
                marked.push((name, alias));
            }
        }
    }
    for expr in order_exprs(query) {
        if let Expr::Identifier(ident) = expr {
            let name = normalize_ident(ident);
            if let Some((_, alias)) = marked.iter().find(|(n, _)| *n == name) {
                *ident = Ident::with_quote('"', alias);
            }
        }
    }
}

/// `SELECT upper(b) FROM t GROUP BY b ORDER BY 1`: DataFusion reads
/// the position as a column named like the expression, which the
/// grouping check then does not find. The item gets an alias (marked
/// in the statement's result, PostgreSQL's name in a subquery) and the
/// ORDER BY names it.
fn name_positions(query: &mut Query, top: bool) {
    let positions: Vec<usize> = order_exprs(query)
        .iter()
        .filter_map(|e| position(e))
        .collect();
    if positions.is_empty() {
        return;
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let mut named: Vec<(usize, String)> = Vec::new();
    for n in positions {
        let Some(item) = n.checked_sub(1).and_then(|i| select.projection.get_mut(i)) else {
            continue;
        };
        let SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        if matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let name = name_of(expr).unwrap_or_else(|| "?column?".into());
        named.push((n, alias_item(item, &name, top, &format!("p{n}"))));
    }
    for expr in order_exprs(query) {
        let n = position(expr);
        if let Some((_, alias)) = named.iter().find(|(at, _)| Some(*at) == n) {
            *expr = Expr::Identifier(Ident::with_quote('"', alias));
        }
    }
}
