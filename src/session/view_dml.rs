//! `INSERT`, `UPDATE` and `DELETE` on a simple view change the table under
//! it, as PostgreSQL's automatically updatable views do: the statement is
//! rewritten onto the view's relation (a table, or another such view), its
//! names replaced by what the view's columns compute, and the view's
//! `WHERE` added to what an `UPDATE` or `DELETE` may touch.
//!
//! A view is simple when it reads one relation and has no `DISTINCT`,
//! `GROUP BY`, `HAVING`, aggregate or window function, `LIMIT`/`OFFSET`,
//! set operation or `WITH`. Its columns that are not plain columns of the
//! relation can be read (and deleted through) but not assigned.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Assignment, AssignmentTarget, BinaryOperator, Expr, FromTable, Ident, ObjectName,
    ObjectNamePart, OnConflictAction, OnInsert, Query, SelectItem, SetExpr, Statement, TableAlias,
    TableFactor, TableObject, VisitMut, VisitorMut,
};

use super::{normalize_ident, Session};
use crate::engine::catalog::QualifiedName;
use crate::error::{QuiverError, Result};

/// Views inside views: more than this many is a cycle or a mistake.
const MAX_VIEW_DEPTH: usize = 32;

/// What a simple view is made of.
struct SimpleView {
    name: String,
    /// The relation it reads, schema-qualified.
    relation: ObjectName,
    /// What the view's own query calls that relation (alias or name).
    relation_alias: Option<String>,
    /// Each view column, by name: the expression over the relation it is,
    /// and whether it is a plain column that can be assigned.
    columns: Vec<ViewColumn>,
    /// The view's WHERE.
    condition: Option<Expr>,
}

struct ViewColumn {
    name: String,
    expr: Expr,
    /// The relation's column, when the view column is one.
    base: Option<Ident>,
}

impl Session {
    /// `statement`, or the same statement on the tables under the views
    /// it changes (rewritten view by view until it changes a table).
    pub(super) fn on_tables<'a>(
        &self,
        statement: &'a Statement,
    ) -> Result<std::borrow::Cow<'a, Statement>> {
        let mut current: Option<Statement> = None;
        for _ in 0..MAX_VIEW_DEPTH {
            let changed = current.as_ref().unwrap_or(statement);
            let Some(view) = self.view_changed_by(changed)? else {
                return Ok(match current {
                    Some(rewritten) => std::borrow::Cow::Owned(rewritten),
                    None => std::borrow::Cow::Borrowed(statement),
                });
            };
            current = Some(view.rewrite(changed.clone())?);
        }
        Err(QuiverError::InvalidStatement(format!(
            "views nested more than {MAX_VIEW_DEPTH} deep cannot be changed"
        )))
    }

    /// [`Session::on_tables`] of a parsed statement (None: it changes no
    /// view).
    pub(super) fn through_views(&self, statement: &DfStatement) -> Result<Option<DfStatement>> {
        let DfStatement::Statement(s) = statement else {
            return Ok(None);
        };
        Ok(match self.on_tables(s)? {
            std::borrow::Cow::Owned(rewritten) => Some(DfStatement::Statement(Box::new(rewritten))),
            std::borrow::Cow::Borrowed(_) => None,
        })
    }

    /// The simple view an INSERT, UPDATE or DELETE changes, if it changes
    /// a view.
    fn view_changed_by(&self, statement: &Statement) -> Result<Option<SimpleView>> {
        let (name, verb) = match statement {
            Statement::Insert(insert) => match &insert.table {
                TableObject::TableName(name) => (name, "insert into"),
                _ => return Ok(None),
            },
            Statement::Update(update) => match &update.table.relation {
                TableFactor::Table { name, .. } if update.table.joins.is_empty() => {
                    (name, "update")
                }
                _ => return Ok(None),
            },
            Statement::Delete(delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &delete.from;
                match from.first().map(|f| &f.relation) {
                    Some(TableFactor::Table { name, .. }) if from.len() == 1 => {
                        (name, "delete from")
                    }
                    _ => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        let qualified = self.qualified(name)?;
        let catalog = self.catalog();
        if catalog.table(&qualified).is_some() {
            return Ok(None);
        }
        let Some(view) = catalog.view(&qualified).cloned() else {
            return Ok(None);
        };
        drop(catalog);
        let refuse = |why: &str| QuiverError::ViewNotUpdatable {
            message: format!("cannot {verb} view \"{}\"", qualified.name),
            detail: format!("{why}."),
        };
        if view.is_external() {
            return Err(QuiverError::WrongObjectType(format!(
                "cannot change external table \"{}\"",
                qualified.name
            )));
        }
        let query = match Session::parse(&view.def.query)?.pop_front() {
            Some(DfStatement::Statement(s)) => match *s {
                Statement::Query(query) => query,
                _ => return Err(refuse("Its definition is not a query")),
            },
            _ => return Err(refuse("Its definition is not a query")),
        };
        self.simple_view(&qualified.name, &view.def, *query)
            .map(Some)
            .map_err(|why| refuse(&why))
    }

    /// The view's parts, or why it is not automatically updatable (in
    /// PostgreSQL's words).
    fn simple_view(
        &self,
        name: &str,
        def: &crate::engine::commit::ViewDef,
        query: Query,
    ) -> std::result::Result<SimpleView, String> {
        let not = |what: &str| format!("Views {what} are not automatically updatable");
        if query.with.is_some() {
            return Err(not("containing WITH"));
        }
        if query.limit_clause.is_some() || query.fetch.is_some() {
            return Err(not("containing LIMIT or OFFSET"));
        }
        let SetExpr::Select(select) = *query.body else {
            return Err(not("containing UNION, INTERSECT, or EXCEPT"));
        };
        if select.distinct.is_some() {
            return Err(not("containing DISTINCT"));
        }
        let grouped = !matches!(
            &select.group_by,
            datafusion::sql::sqlparser::ast::GroupByExpr::Expressions(e, _) if e.is_empty()
        );
        if grouped {
            return Err(not("containing GROUP BY"));
        }
        if select.having.is_some() {
            return Err(not("containing HAVING"));
        }
        let [from] = select.from.as_slice() else {
            return Err(not("that do not select from a single table or view"));
        };
        let TableFactor::Table {
            name: relation,
            alias,
            args: None,
            ..
        } = &from.relation
        else {
            return Err(not("that do not select from a single table or view"));
        };
        if !from.joins.is_empty() {
            return Err(not("that do not select from a single table or view"));
        }
        // The relation as the view's creator resolved it.
        let mut parts: Vec<String> = relation
            .0
            .iter()
            .filter_map(|p| p.as_ident().map(normalize_ident))
            .collect();
        let relation_name = parts.pop().unwrap_or_default();
        let relation_schema = parts.pop().unwrap_or_else(|| def.default_schema.clone());
        let qualified = QualifiedName::new(relation_schema.clone(), relation_name.clone());
        let relation_columns = self
            .relation_columns(&qualified)
            .ok_or_else(|| not("that do not select from a single table or view"))?;

        // Plain columns are qualified, so that they keep meaning the
        // relation's column next to an UPDATE's FROM.
        let own_name = alias
            .as_ref()
            .map(|a| normalize_ident(&a.name))
            .unwrap_or_else(|| relation_name.clone());
        let qualify = |column: &Ident| {
            Expr::CompoundIdentifier(vec![Ident::with_quote('"', &own_name), column.clone()])
        };
        let mut columns = Vec::new();
        for item in &select.projection {
            match item {
                SelectItem::ExprWithAliases { .. } => {
                    return Err(not("with a column of several names"));
                }
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    for column in &relation_columns {
                        let ident = Ident::with_quote('"', column);
                        columns.push(ViewColumn {
                            name: column.clone(),
                            expr: qualify(&ident),
                            base: Some(ident),
                        });
                    }
                }
                SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } => {
                    if has_aggregate_or_window(expr) {
                        return Err(not("that return aggregate functions or window functions"));
                    }
                    let base = match expr {
                        Expr::Identifier(i) => Some(i.clone()),
                        Expr::CompoundIdentifier(parts) => parts.last().cloned(),
                        _ => None,
                    };
                    let name = match item {
                        SelectItem::ExprWithAlias { alias, .. } => normalize_ident(alias),
                        _ => match &base {
                            Some(column) => normalize_ident(column),
                            None => crate::sql::column_names::name_of(expr)
                                .unwrap_or_else(|| "?column?".into()),
                        },
                    };
                    columns.push(ViewColumn {
                        name,
                        expr: match &base {
                            Some(column) => qualify(column),
                            None => expr.clone(),
                        },
                        base,
                    });
                }
            }
        }
        // `CREATE VIEW v (x, y)` renames the first columns.
        for (column, name) in columns.iter_mut().zip(&def.columns) {
            column.name = name.clone();
        }
        Ok(SimpleView {
            name: name.to_string(),
            relation: ObjectName(vec![
                ObjectNamePart::Identifier(Ident::with_quote('"', relation_schema)),
                ObjectNamePart::Identifier(Ident::with_quote('"', relation_name)),
            ]),
            relation_alias: alias.as_ref().map(|a| normalize_ident(&a.name)),
            columns,
            condition: select.selection.clone(),
        })
    }

    /// Which columns of a view can be assigned, when the view can be
    /// changed at all.
    pub(super) fn updatable_columns(
        &self,
        def: &crate::engine::commit::ViewDef,
        query: &Query,
    ) -> Option<Vec<bool>> {
        let view = self.simple_view(&def.name, def, query.clone()).ok()?;
        Some(view.columns.iter().map(|c| c.base.is_some()).collect())
    }

    /// The column names of a table or view.
    fn relation_columns(&self, name: &QualifiedName) -> Option<Vec<String>> {
        let schema = self.relation_schema(&name.schema, &name.name)?;
        Some(schema.fields().iter().map(|f| f.name().clone()).collect())
    }
}

impl SimpleView {
    fn column(&self, name: &Ident) -> Option<&ViewColumn> {
        let name = normalize_ident(name);
        self.columns.iter().find(|c| c.name == name)
    }

    /// The relation's column a view column assigns, or PostgreSQL's error.
    fn assignable(&self, name: &Ident, verb: &str) -> Result<Ident> {
        let column = self
            .column(name)
            .ok_or_else(|| QuiverError::UndefinedColumnOf {
                column: normalize_ident(name),
                table: self.name.clone(),
            })?;
        column
            .base
            .clone()
            .ok_or_else(|| QuiverError::ViewNotUpdatable {
                message: format!(
                    "cannot {verb} column \"{}\" of view \"{}\"",
                    column.name, self.name
                ),
                detail: "View columns that are not columns of their base relation are not \
                         updatable."
                    .into(),
            })
    }

    /// The statement, on the view's relation.
    fn rewrite(&self, statement: Statement) -> Result<Statement> {
        match statement {
            Statement::Insert(mut insert) => {
                let targets: Vec<Ident> = match insert.columns.is_empty() {
                    true => self
                        .columns
                        .iter()
                        .map(|c| Ident::with_quote('"', &c.name))
                        .collect(),
                    false => insert.columns.iter().map(last_ident).collect(),
                };
                insert.columns = targets
                    .iter()
                    .map(|c| {
                        let base = self.assignable(c, "insert into")?;
                        Ok(ObjectName(vec![ObjectNamePart::Identifier(base)]))
                    })
                    .collect::<Result<_>>()?;
                insert.table = TableObject::TableName(self.relation.clone());
                // The inserted rows are named by the statement's alias, or
                // else by the relation's name.
                let alias = match &insert.table_alias {
                    Some(alias) => normalize_ident(&alias.alias),
                    None => self.relation_name(),
                };
                if let Some(OnInsert::OnConflict(conflict)) = &mut insert.on {
                    if let Some(datafusion::sql::sqlparser::ast::ConflictTarget::Columns(cols)) =
                        &mut conflict.conflict_target
                    {
                        for col in cols.iter_mut() {
                            *col = self.assignable(col, "insert into")?;
                        }
                    }
                    if let OnConflictAction::DoUpdate(update) = &mut conflict.action {
                        self.assignments(&mut update.assignments, &alias)?;
                        if let Some(selection) = &mut update.selection {
                            self.substitute(selection, &alias);
                        }
                    }
                }
                if let Some(returning) = &mut insert.returning {
                    self.returning(returning, &alias);
                }
                Ok(Statement::Insert(insert))
            }
            Statement::Update(mut update) => {
                let TableFactor::Table { alias, .. } = &update.table.relation else {
                    return Ok(Statement::Update(update));
                };
                let alias = self.target_alias(alias.as_ref());
                update.table.relation = self.relation_as(&alias);
                self.assignments(&mut update.assignments, &alias)?;
                update.selection = self.restrict(update.selection.take(), &alias);
                if let Some(returning) = &mut update.returning {
                    self.returning(returning, &alias);
                }
                Ok(Statement::Update(update))
            }
            Statement::Delete(mut delete) => {
                let (FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from)) =
                    &mut delete.from;
                let Some(TableFactor::Table { alias, .. }) = from.first().map(|f| &f.relation)
                else {
                    return Ok(Statement::Delete(delete));
                };
                let alias = self.target_alias(alias.as_ref());
                from[0].relation = self.relation_as(&alias);
                delete.selection = self.restrict(delete.selection.take(), &alias);
                if let Some(returning) = &mut delete.returning {
                    self.returning(returning, &alias);
                }
                Ok(Statement::Delete(delete))
            }
            other => Ok(other),
        }
    }

    /// What the statement calls its target: its alias, else the view's
    /// name.
    fn target_alias(&self, alias: Option<&TableAlias>) -> String {
        alias
            .map(|a| normalize_ident(&a.name))
            .unwrap_or_else(|| self.name.clone())
    }

    fn relation_as(&self, alias: &str) -> TableFactor {
        TableFactor::Table {
            name: self.relation.clone(),
            alias: Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', alias),
                columns: Vec::new(),
                at: None,
            }),
            args: None,
            with_hints: Vec::new(),
            version: None,
            with_ordinality: false,
            partitions: Vec::new(),
            json_path: None,
            sample: None,
            index_hints: Vec::new(),
        }
    }

    fn assignments(&self, assignments: &mut [Assignment], alias: &str) -> Result<()> {
        for assignment in assignments {
            if let AssignmentTarget::ColumnName(name) = &mut assignment.target {
                let column = last_ident(name);
                let base = self.assignable(&column, "update")?;
                *name = ObjectName(vec![ObjectNamePart::Identifier(base)]);
            }
            self.substitute(&mut assignment.value, alias);
        }
        Ok(())
    }

    /// The statement's WHERE, over the relation, and the view's.
    fn restrict(&self, selection: Option<Expr>, alias: &str) -> Option<Expr> {
        let selection = selection.map(|mut e| {
            self.substitute(&mut e, alias);
            e
        });
        let condition = self.condition.clone().map(|e| self.own(e, alias));
        match (selection, condition) {
            (Some(a), Some(b)) => Some(Expr::BinaryOp {
                left: Box::new(Expr::Nested(Box::new(a))),
                op: BinaryOperator::And,
                right: Box::new(Expr::Nested(Box::new(b))),
            }),
            (a, b) => a.or(b),
        }
    }

    /// `RETURNING *` is the view's columns; names are the view's.
    fn returning(&self, items: &mut Vec<SelectItem>, alias: &str) {
        let mut out = Vec::with_capacity(items.len());
        for item in items.drain(..) {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    for column in &self.columns {
                        out.push(SelectItem::ExprWithAlias {
                            expr: self.own(column.expr.clone(), alias),
                            alias: Ident::with_quote('"', &column.name),
                        });
                    }
                }
                SelectItem::UnnamedExpr(mut expr) => {
                    // Named as the view's column it reads.
                    let name = match &expr {
                        Expr::Identifier(i) => Some(i.clone()),
                        Expr::CompoundIdentifier(parts) => parts.last().cloned(),
                        _ => None,
                    };
                    self.substitute(&mut expr, alias);
                    out.push(match name {
                        Some(name) => SelectItem::ExprWithAlias { expr, alias: name },
                        None => SelectItem::UnnamedExpr(expr),
                    });
                }
                SelectItem::ExprWithAlias {
                    mut expr,
                    alias: name,
                } => {
                    self.substitute(&mut expr, alias);
                    out.push(SelectItem::ExprWithAlias { expr, alias: name });
                }
                other => out.push(other),
            }
        }
        *items = out;
    }

    fn relation_name(&self) -> String {
        self.relation
            .0
            .last()
            .and_then(|p| p.as_ident())
            .map(normalize_ident)
            .unwrap_or_default()
    }

    /// What the view's query calls its relation.
    fn own_name(&self) -> String {
        self.relation_alias
            .clone()
            .unwrap_or_else(|| self.relation_name())
    }

    /// An expression of the view's query, with its name for the relation
    /// replaced by the statement's.
    fn own(&self, mut expr: Expr, alias: &str) -> Expr {
        let old = self.own_name();
        struct Requalify<'a> {
            old: &'a str,
            new: &'a str,
        }
        impl VisitorMut for Requalify<'_> {
            type Break = ();
            fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
                if let Expr::CompoundIdentifier(parts) = expr {
                    // `t.a` or `schema.t.a`: the column keeps its name.
                    if parts.len() >= 2 && normalize_ident(&parts[parts.len() - 2]) == self.old {
                        let column = parts[parts.len() - 1].clone();
                        *parts = vec![Ident::with_quote('"', self.new), column];
                    }
                }
                ControlFlow::Continue(())
            }
        }
        let _ = expr.visit(&mut Requalify {
            old: &old,
            new: alias,
        });
        expr
    }

    /// Names of view columns in a statement's expression replaced by what
    /// they compute over the relation.
    fn substitute(&self, expr: &mut Expr, alias: &str) {
        let by_name: HashMap<&str, Expr> = self
            .columns
            .iter()
            .map(|c| (c.name.as_str(), self.own(c.expr.clone(), alias)))
            .collect();
        struct Substitute<'a> {
            columns: &'a HashMap<&'a str, Expr>,
            alias: &'a str,
        }
        impl VisitorMut for Substitute<'_> {
            type Break = ();
            fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
                let name = match &*expr {
                    Expr::Identifier(i) => Some(normalize_ident(i)),
                    Expr::CompoundIdentifier(parts)
                        if parts.len() == 2 && normalize_ident(&parts[0]) == self.alias =>
                    {
                        Some(normalize_ident(&parts[1]))
                    }
                    _ => None,
                };
                if let Some(replacement) = name.and_then(|n| self.columns.get(n.as_str())) {
                    *expr = match replacement {
                        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => replacement.clone(),
                        other => Expr::Nested(Box::new(other.clone())),
                    };
                }
                ControlFlow::Continue(())
            }
        }
        let _ = expr.visit(&mut Substitute {
            columns: &by_name,
            alias,
        });
    }
}

fn last_ident(name: &ObjectName) -> Ident {
    name.0
        .last()
        .and_then(|p| p.as_ident())
        .cloned()
        .unwrap_or_else(|| Ident::new(""))
}

/// Whether an expression calls an aggregate or window function.
fn has_aggregate_or_window(expr: &Expr) -> bool {
    use datafusion::sql::sqlparser::ast::{Visit, Visitor};
    struct Find;
    impl Visitor for Find {
        type Break = ();
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr {
                let name = f.name.to_string().to_lowercase();
                let aggregate = matches!(
                    name.as_str(),
                    "count"
                        | "sum"
                        | "avg"
                        | "min"
                        | "max"
                        | "array_agg"
                        | "string_agg"
                        | "bool_and"
                        | "bool_or"
                        | "every"
                        | "stddev"
                        | "variance"
                        | "stddev_pop"
                        | "stddev_samp"
                        | "var_pop"
                        | "var_samp"
                        | "json_agg"
                        | "jsonb_agg"
                        | "bit_and"
                        | "bit_or"
                );
                if aggregate || f.over.is_some() {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }
    expr.visit(&mut Find).is_break()
}
