//! `RIGHT` and `FULL JOIN ... USING (c)`: in PostgreSQL the merged column
//! `c` is the right side's value (RIGHT) or the first one that is not
//! null (FULL). DataFusion gives the left side's, so the rows only the
//! right side has came back with `c` null (a wrong answer), and `WHERE c
//! = ...` was ambiguous. Such a join becomes a join `ON l.c = r.c`, and in
//! its SELECT a bare `c` becomes `COALESCE(l.c, r.c)` (or `r.c`), and `*`
//! lists the merged columns first, then each side's other columns, as
//! PostgreSQL does.
//!
//! Rewritten when both sides are named (a table, or anything with an
//! alias); a chain (`a FULL JOIN b USING (k) FULL JOIN c USING (k)`)
//! merges `k` across all of them.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, ExcludeSelectItem, Expr, Ident, JoinConstraint, JoinOperator, ObjectName,
    ObjectNamePart, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    TableFactor, VisitMut, VisitorMut, WildcardAdditionalOptions,
};

use super::normalize_ident;
use crate::error::{not_supported, Result};

/// Rewrites every RIGHT or FULL join with USING in the statement. A
/// NATURAL RIGHT or FULL join is refused (0A000): its columns are not
/// known before planning, and DataFusion's answer would be wrong.
pub fn rewrite_outer_using(statement: &mut DfStatement) -> Result<()> {
    let flow = match statement {
        DfStatement::Statement(s) => s.visit(&mut OuterUsing),
        DfStatement::Explain(explain) => return rewrite_outer_using(explain.statement.as_mut()),
        _ => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(()) => Err(not_supported(
            "NATURAL RIGHT JOIN and NATURAL FULL JOIN (name the columns with USING (...))",
        )),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct OuterUsing;

impl VisitorMut for OuterUsing {
    type Break = ();

    fn post_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_ref() {
            let natural_outer = select.from.iter().flat_map(|f| &f.joins).any(|j| {
                matches!(
                    j.join_operator,
                    JoinOperator::Right(JoinConstraint::Natural)
                        | JoinOperator::RightOuter(JoinConstraint::Natural)
                        | JoinOperator::FullOuter(JoinConstraint::Natural)
                )
            });
            if natural_outer {
                return ControlFlow::Break(());
            }
        }
        let SetExpr::Select(select) = query.body.as_mut() else {
            return ControlFlow::Continue(());
        };
        let Some(merged) = merge_joins(select) else {
            return ControlFlow::Continue(());
        };
        let mut replace = Replace {
            columns: &merged.columns,
            depth: 0,
        };
        for item in &mut select.projection {
            match item {
                SelectItem::UnnamedExpr(Expr::Identifier(ident)) => {
                    if let Some(expr) = merged.columns.get(&normalize_ident(ident)) {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: ident.clone(),
                        };
                    }
                }
                SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                    let _ = expr.visit(&mut replace);
                }
                _ => {}
            }
        }
        if let Some(at) = select
            .projection
            .iter()
            .position(|item| matches!(item, SelectItem::Wildcard(_)))
        {
            select.projection.splice(at..=at, merged.wildcard());
        }
        if let Some(selection) = &mut select.selection {
            let _ = selection.visit(&mut replace);
        }
        if let Some(having) = &mut select.having {
            let _ = having.visit(&mut replace);
        }
        let _ = select.group_by.visit(&mut replace);
        // In ORDER BY a bare name is an output column first: one the
        // select list gives another value keeps it.
        let mut columns = merged.columns.clone();
        for item in &select.projection {
            if let SelectItem::ExprWithAlias { expr, alias } = item {
                let name = normalize_ident(alias);
                if columns.get(&name).is_some_and(|merged| merged != expr) {
                    columns.remove(&name);
                }
            }
        }
        if let Some(order_by) = &mut query.order_by {
            let _ = order_by.visit(&mut Replace {
                columns: &columns,
                depth: 0,
            });
        }
        ControlFlow::Continue(())
    }
}

/// What a SELECT's rewritten joins merged.
struct Merged {
    /// Merged column (normalized name) -> its value, in USING order.
    columns: HashMap<String, Expr>,
    order: Vec<Ident>,
    /// The relations of the FROM, in order, each with the merged columns
    /// it has (left out of its part of `*`).
    relations: Vec<(Ident, Vec<Ident>)>,
}

impl Merged {
    /// `*`: the merged columns, then every relation's others.
    fn wildcard(&self) -> Vec<SelectItem> {
        let mut items: Vec<SelectItem> = self
            .order
            .iter()
            .map(|name| SelectItem::ExprWithAlias {
                expr: self.columns[&normalize_ident(name)].clone(),
                alias: name.clone(),
            })
            .collect();
        for (relation, merged) in &self.relations {
            let options = WildcardAdditionalOptions {
                opt_exclude: (!merged.is_empty()).then(|| {
                    ExcludeSelectItem::Multiple(
                        merged
                            .iter()
                            .map(|c| ObjectName(vec![ObjectNamePart::Identifier(c.clone())]))
                            .collect(),
                    )
                }),
                ..Default::default()
            };
            items.push(SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(ObjectName(vec![
                    ObjectNamePart::Identifier(relation.clone()),
                ])),
                options,
            ));
        }
        items
    }
}

/// Turns the SELECT's RIGHT/FULL USING joins into ON joins; None when it
/// has none it can rewrite (then nothing is changed).
fn merge_joins(select: &mut Select) -> Option<Merged> {
    let [from] = select.from.as_mut_slice() else {
        return None;
    };
    if !from.joins.iter().any(|j| is_outer_using(&j.join_operator)) {
        return None;
    }
    let mut columns: HashMap<String, Expr> = HashMap::new();
    let mut order: Vec<Ident> = Vec::new();
    let first = relation_name(&from.relation)?;
    let mut relations = vec![(first.clone(), Vec::new())];
    let mut conditions: Vec<Option<Expr>> = Vec::new();
    for (i, join) in from.joins.iter().enumerate() {
        let right = relation_name(&join.relation)?;
        let (kind, constraint) = match &join.join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c) => (Kind::Left, c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (Kind::Right, c),
            JoinOperator::FullOuter(c) => (Kind::Full, c),
            _ => (Kind::Left, &JoinConstraint::None),
        };
        let names: Vec<Ident> = match constraint {
            JoinConstraint::Using(names) => names
                .iter()
                .map(|n| match n.0.as_slice() {
                    [part] => part.as_ident().cloned(),
                    _ => None,
                })
                .collect::<Option<_>>()?,
            // A NATURAL join's columns are not known here.
            JoinConstraint::Natural => return None,
            _ => {
                relations.push((right, Vec::new()));
                conditions.push(None);
                continue;
            }
        };
        let mut on: Option<Expr> = None;
        for name in &names {
            let key = normalize_ident(name);
            let left = match columns.get(&key) {
                Some(expr) => expr.clone(),
                // Only the first relation is known to have it.
                None if i == 0 => qualified(&first, name),
                None => return None,
            };
            let right_col = qualified(&right, name);
            let equal = Expr::BinaryOp {
                left: Box::new(left.clone()),
                op: BinaryOperator::Eq,
                right: Box::new(right_col.clone()),
            };
            on = Some(match on {
                None => equal,
                Some(on) => Expr::BinaryOp {
                    left: Box::new(on),
                    op: BinaryOperator::And,
                    right: Box::new(equal),
                },
            });
            if !columns.contains_key(&key) {
                order.push(name.clone());
                relations[0].1.push(name.clone());
            }
            let value = match kind {
                Kind::Left => left,
                Kind::Right => right_col,
                Kind::Full => coalesce(left, right_col),
            };
            columns.insert(key, value);
        }
        relations.push((right, names));
        conditions.push(on);
    }
    for (join, on) in from.joins.iter_mut().zip(conditions) {
        let Some(on) = on else { continue };
        match &mut join.join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c) => *c = JoinConstraint::On(on),
            _ => {}
        }
    }
    Some(Merged {
        columns,
        order,
        relations,
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Left,
    Right,
    Full,
}

fn is_outer_using(op: &JoinOperator) -> bool {
    matches!(
        op,
        JoinOperator::Right(JoinConstraint::Using(_))
            | JoinOperator::RightOuter(JoinConstraint::Using(_))
            | JoinOperator::FullOuter(JoinConstraint::Using(_))
    )
}

/// The name a relation's columns are qualified with: its alias, or a
/// table's own name.
fn relation_name(factor: &TableFactor) -> Option<Ident> {
    match factor {
        TableFactor::Table { alias: Some(a), .. }
        | TableFactor::Derived { alias: Some(a), .. }
        | TableFactor::Function { alias: Some(a), .. }
        | TableFactor::UNNEST { alias: Some(a), .. } => {
            // Renamed columns (`t(a, b)`) are fine; the alias names them.
            Some(a.name.clone())
        }
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last()?.as_ident().cloned(),
        _ => None,
    }
}

fn qualified(relation: &Ident, column: &Ident) -> Expr {
    Expr::CompoundIdentifier(vec![relation.clone(), column.clone()])
}

fn coalesce(left: Expr, right: Expr) -> Expr {
    super::function_call("coalesce", vec![left, right], Vec::new())
}

/// Replaces bare references to merged columns, not inside subqueries
/// (their names are their own FROM's first).
struct Replace<'a> {
    columns: &'a HashMap<String, Expr>,
    /// How many subqueries deep the visit is.
    depth: usize,
}

impl VisitorMut for Replace<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let (Expr::Identifier(ident), 0) = (&expr, self.depth) {
            if let Some(value) = self.columns.get(&normalize_ident(ident)) {
                *expr = value.clone();
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}
