//! Unqualified relation names along the whole search path. DataFusion
//! looks a bare name up in one schema (the first on the path); a query's
//! names that live in a later schema of the path are qualified with it
//! before planning, as PostgreSQL resolves them.

use std::collections::HashSet;
use std::ops::ControlFlow;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Query, Statement, TableAlias, TableFactor, TableObject,
    Visit, VisitMut, Visitor, VisitorMut,
};

use super::{normalize_ident, Session};

impl Session {
    /// Qualifies the names in `statement` that the search path finds in
    /// another schema than the first.
    pub(super) fn qualify_along_search_path(&self, statement: &mut DfStatement) {
        match statement {
            DfStatement::Statement(s) => self.qualify_relations(s.as_mut()),
            DfStatement::Explain(explain) => self.qualify_along_search_path(&mut explain.statement),
            _ => {}
        }
    }

    /// [`Session::qualify_along_search_path`] of one statement or query.
    pub(super) fn qualify_relations<N: Visit + VisitMut>(&self, node: &mut N) {
        let catalog = self.catalog();
        let on_path = self
            .settings
            .search_path()
            .into_iter()
            .filter(|s| catalog.schemas.contains_key(s))
            .count();
        let temporary = catalog.schemas.contains_key(&self.info.temp_schema());
        if on_path + usize::from(temporary) < 2 {
            return;
        }
        let mut ctes = CteNames::default();
        let _ = Visit::visit(&*node, &mut ctes);
        let _ = node.visit(&mut Qualify {
            session: self,
            ctes: ctes.0,
            default: self.default_schema(),
        });
    }
}

/// The names of every common table expression in a statement.
#[derive(Default)]
struct CteNames(HashSet<String>);

impl Visitor for CteNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let Some(with) = &query.with {
            for cte in &with.cte_tables {
                self.0.insert(normalize_ident(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

struct Qualify<'a> {
    session: &'a Session,
    ctes: HashSet<String>,
    default: String,
}

impl Qualify<'_> {
    /// The schema a bare `name` is found in, when that is not the first.
    fn elsewhere(&self, name: &ObjectName) -> Option<(String, String)> {
        let part = match name.0.as_slice() {
            [part] => part,
            [schema, part] if schema.as_ident().is_some_and(|s| s.value == "pg_temp") => {
                let relation = normalize_ident(part.as_ident()?);
                return Some((self.session.info.temp_schema(), relation));
            }
            _ => return None,
        };
        let relation = normalize_ident(part.as_ident()?);
        if self.ctes.contains(&relation) {
            return None;
        }
        let schema = self.session.schema_of(&relation);
        (schema != self.default).then_some((schema, relation))
    }
}

fn qualified(schema: &str, relation: &str) -> ObjectName {
    ObjectName(vec![
        ObjectNamePart::Identifier(Ident::with_quote('"', schema)),
        ObjectNamePart::Identifier(Ident::with_quote('"', relation)),
    ])
}

impl VisitorMut for Qualify<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
        {
            if let Some((schema, relation)) = self.elsewhere(name) {
                // Aliased by its own name, so that `t.a` still resolves.
                if alias.is_none() {
                    *alias = Some(TableAlias {
                        explicit: true,
                        name: Ident::with_quote('"', &relation),
                        columns: Vec::new(),
                        at: None,
                    });
                }
                *name = qualified(&schema, &relation);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        if let Statement::Insert(insert) = statement {
            if let TableObject::TableName(name) = &mut insert.table {
                if let Some((schema, relation)) = self.elsewhere(name) {
                    *name = qualified(&schema, &relation);
                }
            }
        }
        ControlFlow::Continue(())
    }
}
