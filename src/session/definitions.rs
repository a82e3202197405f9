//! The SQL layer's side of recovery: stored table and view definitions
//! compiled again (DEFAULT and CHECK expressions, view queries), through
//! the same code that compiled them when they were created.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::Session;
use crate::engine::commit::{TableDef, ViewDef};
use crate::engine::{Compiler, Database, QualifiedName, Table, View};
use crate::error::{QuiverError, Result};

/// Compiles definitions for one database, with a session of its own.
pub struct Definitions(Session);

impl Definitions {
    /// The compiler recovery uses for `db` (a [`crate::engine::MakeCompiler`]).
    pub fn for_database(db: Arc<Database>) -> Box<dyn Compiler> {
        Box::new(Definitions(Session::new(db)))
    }
}

#[async_trait::async_trait]
impl Compiler for Definitions {
    fn table(&mut self, def: &TableDef, schema: SchemaRef) -> Result<Table> {
        self.0.build_table_from_def(def, schema)
    }

    async fn view(&mut self, def: ViewDef) -> Result<(View, Option<String>)> {
        let session = &mut self.0;
        let name = QualifiedName::new(&def.schema, &def.name);
        let built = match Session::parse(&def.query) {
            Ok(mut statements) => match statements.pop_front() {
                // Built from the schema recorded at creation: the files
                // may have gone while the server was down.
                Some(DfStatement::CreateExternalTable(create)) => {
                    session.build_external_table(def.clone(), &create).await
                }
                Some(DfStatement::Statement(s)) => match *s {
                    Statement::Query(query) => session.build_view(def.clone(), &query).await,
                    _ => Err(unreadable(&def)),
                },
                _ => Err(unreadable(&def)),
            },
            Err(e) => Err(e),
        };
        match built {
            Ok(view) => Ok((view, None)),
            Err(e) => {
                let reason = format!("its definition no longer plans ({e})");
                tracing::warn!("view {name} came back unusable: {reason}");
                let depends_on = match Session::parse(&def.query).map(|mut s| s.pop_front()) {
                    Ok(Some(DfStatement::Statement(s))) => match *s {
                        Statement::Query(query) => {
                            session.relations_named_in(&query, &def.default_schema)
                        }
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                let seq = session.db.allocate_view_seq();
                let view = View::broken(def, seq, depends_on, reason.clone());
                Ok((view, Some(reason)))
            }
        }
    }
}

fn unreadable(def: &ViewDef) -> QuiverError {
    QuiverError::Internal(format!("view {} has an unreadable definition", def.name))
}
