//! Views over a table that ALTER TABLE, CREATE INDEX or DROP INDEX
//! rebuilds. A view's plan reads the table it was planned over, so the
//! views that read the old table are planned again over the new one, in
//! the same transaction: each must still plan and keep its columns (it
//! may gain columns at the end, through a `*`). A renamed table is
//! renamed in the views' queries too.

use std::ops::ControlFlow;

use datafusion::arrow::datatypes::Schema;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Query, Statement, TableAlias, TableFactor, VisitMut,
    VisitorMut,
};

use super::{normalize_ident, Session};
use crate::engine::{QualifiedName, RelationType, View};
use crate::error::{QuiverError, Result};

impl Session {
    /// Plans again the views that read `name` (now `new_name`), in creation
    /// order, in the open transaction. With `cascade` (DROP COLUMN ...
    /// CASCADE) a view that no longer plans is dropped, with the views
    /// over it, as PostgreSQL drops the views that read a dropped column.
    pub(super) async fn replan_views(
        &mut self,
        name: &QualifiedName,
        new_name: &QualifiedName,
        views: &[QualifiedName],
        cascade: bool,
    ) -> Result<()> {
        for view_name in views {
            // Gone with a view dropped before it, by the cascade.
            let Some(old) = self.catalog().view(view_name).cloned() else {
                continue;
            };
            let Some(rebuilt) = self.replan_view(&old, Some((name, new_name))).await else {
                continue;
            };
            let problem = match rebuilt {
                Ok(view) => match changed_column(&old.schema, &view.schema) {
                    None => {
                        self.install_view(view_name, view, true).await?;
                        continue;
                    }
                    Some(change) => change,
                },
                // A view that did not plan before stays as it was.
                Err(_) if old.broken.is_some() => continue,
                Err(e) => Change::NoLongerPlans(e.to_string()),
            };
            if cascade && !matches!(problem, Change::Type(_)) {
                let mut dropped = vec![view_name.clone()];
                dropped.extend(self.catalog().views_depending_on_transitively(view_name));
                for view in dropped {
                    self.notice(format!("drop cascades to view {}", view.name));
                }
                let (_, ack) = self.db.drop_relations(
                    self.current_txn().as_deref(),
                    std::slice::from_ref(view_name),
                    RelationType::View,
                    false,
                    true,
                )?;
                ack.wait().await;
                continue;
            }
            return Err(problem.error(&name.name, &view_name.name));
        }
        Ok(())
    }

    /// `old` planned again from its stored query, its references to table
    /// `from` pointed at `to` first (`rename`); None for an external
    /// table, whose definition reads files, not relations.
    pub(super) async fn replan_view(
        &self,
        old: &View,
        rename: Option<(&QualifiedName, &QualifiedName)>,
    ) -> Option<Result<View>> {
        let statement = match Session::parse(&old.def.query) {
            Ok(mut statements) => statements.pop_front(),
            Err(e) => return Some(Err(e)),
        };
        let Some(DfStatement::Statement(statement)) = statement else {
            return None;
        };
        let Statement::Query(mut query) = *statement else {
            return None;
        };
        let mut def = old.def.clone();
        if let Some((from, to)) = rename.filter(|(from, to)| from != to) {
            rename_relation(&mut query, from, to, &def.default_schema);
            def.query = query.to_string();
        }
        Some(self.build_view(def, &query).await)
    }
}

/// How a view planned again differs from the view it replaces.
enum Change {
    NoLongerPlans(String),
    /// A column that is gone or renamed.
    Column(String),
    /// A column whose type changed.
    Type(String),
}

impl Change {
    fn error(self, table: &str, view: &str) -> QuiverError {
        match self {
            Change::NoLongerPlans(why) => QuiverError::DependentObjectsStillExist(format!(
                "cannot alter table {table} because view {view} depends on it and would no longer plan ({why}); drop the view first, or use DROP ... CASCADE"
            )),
            Change::Column(column) => QuiverError::DependentObjectsStillExist(format!(
                "cannot alter table {table} because view {view} depends on its column \"{column}\"; drop the view first, or use DROP ... CASCADE"
            )),
            Change::Type(column) => QuiverError::FeatureNotSupported(format!(
                "cannot alter type of a column used by a view or rule (view {view} depends on column \"{column}\")"
            )),
        }
    }
}

/// The first of `old`'s columns that `new` no longer has at its position
/// with the same name and type.
fn changed_column(old: &Schema, new: &Schema) -> Option<Change> {
    for (i, field) in old.fields().iter().enumerate() {
        match new.fields().get(i) {
            Some(now) if now.name() != field.name() => {
                return Some(Change::Column(field.name().clone()))
            }
            Some(now) if now.data_type() != field.data_type() => {
                return Some(Change::Type(field.name().clone()))
            }
            Some(_) => {}
            None => return Some(Change::Column(field.name().clone())),
        }
    }
    None
}

/// Points the references to table `old` in `query` at `new`. A reference
/// without an alias gets the old name as its alias, so that the query's
/// qualified columns (`t.a`) keep resolving.
fn rename_relation(query: &mut Query, old: &QualifiedName, new: &QualifiedName, schema: &str) {
    let _ = query.visit(&mut Renamer { old, new, schema });
}

struct Renamer<'a> {
    old: &'a QualifiedName,
    new: &'a QualifiedName,
    schema: &'a str,
}

impl VisitorMut for Renamer<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        else {
            return ControlFlow::Continue(());
        };
        if !resolves_to(name, self.old, self.schema) {
            return ControlFlow::Continue(());
        }
        if alias.is_none() && self.old.name != self.new.name {
            *alias = Some(TableAlias {
                explicit: true,
                name: Ident::with_quote('"', &self.old.name),
                columns: Vec::new(),
                at: None,
            });
        }
        let quoted = |part: &str| ObjectNamePart::Identifier(Ident::with_quote('"', part));
        *name = match name.0.len() > 1 || self.new.schema != self.schema {
            true => ObjectName(vec![quoted(&self.new.schema), quoted(&self.new.name)]),
            false => ObjectName(vec![quoted(&self.new.name)]),
        };
        ControlFlow::Continue(())
    }
}

/// Whether `name` (unqualified names in `schema`) is the table `target`.
fn resolves_to(name: &ObjectName, target: &QualifiedName, schema: &str) -> bool {
    let parts: Option<Vec<String>> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(normalize_ident))
        .collect();
    match parts.as_deref() {
        Some([table]) => schema == target.schema && *table == target.name,
        Some([s, table]) => *s == target.schema && *table == target.name,
        _ => false,
    }
}
