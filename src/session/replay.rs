//! Recovery replays logged commits through the same catalog and table
//! operations that made them (with no WAL attached, so nothing is logged
//! twice).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::Session;
use crate::engine::{Ack, Change, QualifiedName, Table, View};
use crate::error::{QuiverError, Result};
use crate::storage::record::{decode_batches, decode_positions, Commit, Effect, ViewDef};

impl Session {
    /// Applies one logged commit. `tables` maps table ids to tables,
    /// including ones dropped since (rows logged for them are discarded
    /// with them).
    pub async fn replay(
        &mut self,
        commit: Commit,
        tables: &mut HashMap<u64, Arc<Table>>,
    ) -> Result<()> {
        let blob = |i: usize| {
            commit.blobs.get(i).ok_or_else(|| {
                QuiverError::Internal(format!("WAL record refers to missing blob {i}"))
            })
        };
        for effect in &commit.effects {
            match effect {
                Effect::CreateSchema { name } => self.db.restore_schema(name),
                Effect::DropSchema { name, .. } => self.db.restore_drop_schema(name),
                Effect::CreateTable(def) => {
                    let (schema, _) = decode_batches(blob(def.arrow_schema)?)?;
                    let table = Arc::new(self.build_table_from_def(def, schema)?);
                    let name = QualifiedName::new(&def.schema, &def.name);
                    self.db.restore_table(&name, table.clone());
                    self.db.reserve_table_ids(def.id + 1);
                    tables.insert(def.id, table);
                }
                Effect::CreateView(def) => {
                    self.replay_view(def.clone()).await?;
                }
                Effect::DropRelations { names, cascade, .. } => {
                    let names: Vec<_> = names
                        .iter()
                        .map(|(s, n)| QualifiedName::new(s, n))
                        .collect();
                    self.db.restore_drop_relations(&names, *cascade);
                }
                Effect::PutRole(role) => self.db.restore_role(Some(role.clone()), ""),
                Effect::DropRole { name } => self.db.restore_role(None, name),
                Effect::SetAcl { object, acl } => self.db.restore_acl(object.clone(), acl.clone()),
                Effect::Truncate { table_ids } => {
                    for id in table_ids {
                        if let Some(table) = tables.get(id) {
                            table.truncate();
                        }
                    }
                }
                Effect::Delete {
                    table_id,
                    positions,
                } => {
                    let Some(table) = tables.get(table_id) else {
                        tracing::warn!("skipping logged delete for dropped table id {table_id}");
                        continue;
                    };
                    let positions = decode_positions(blob(*positions)?)?;
                    table.apply_now(&Change::Delete(Arc::new(positions)))?;
                }
                Effect::AlterTable {
                    old_id,
                    old_schema,
                    old_name,
                    def,
                    columns,
                } => {
                    let Some(old) = tables.get(old_id).cloned() else {
                        return Err(QuiverError::Internal(format!(
                            "WAL alters table id {old_id}, which does not exist"
                        )));
                    };
                    let (schema, _) = decode_batches(blob(def.arrow_schema)?)?;
                    let table = Arc::new(self.build_table_from_def(def, schema.clone())?);
                    let fills = super::alter::logged_fills(&commit.blobs, columns)?;
                    let name = QualifiedName::new(old_schema, old_name);
                    let new_name = QualifiedName::new(&def.schema, &def.name);
                    let rows =
                        super::alter::rebuild_rows(&old.snapshot(), &schema, columns, &fills)?;
                    let rows = super::insert::conform_batches(&table, rows)?;
                    table.restore(rows, 1)?;
                    self.db
                        .restore_replaced_table(&name, &old, &new_name, table.clone());
                    self.db.reserve_table_ids(def.id + 1);
                    tables.insert(def.id, table);
                }
                Effect::Insert { table_id, data } => {
                    // Rows for a table dropped before the last checkpoint:
                    // an INSERT that raced with its DROP TABLE. They went
                    // with the table.
                    let Some(table) = tables.get(table_id) else {
                        tracing::warn!("skipping logged rows for dropped table id {table_id}");
                        continue;
                    };
                    let (_, batches) = decode_batches(blob(*data)?)?;
                    let (_, ack) = table.append(batches, || Ok(Ack::none()))?;
                    ack.wait().await;
                }
            }
        }
        Ok(())
    }

    /// Creates a view (or an external table) again from its definition.
    /// One that no longer plans (it reads a file that has gone, say) comes
    /// back broken, with its definition, rather than stopping recovery:
    /// returns why.
    pub(crate) async fn replay_view(&mut self, def: ViewDef) -> Result<Option<String>> {
        let name = QualifiedName::new(&def.schema, &def.name);
        let built = match Session::parse(&def.query) {
            Ok(mut statements) => match statements.pop_front() {
                // Built from the schema recorded at creation: the files
                // may have gone while the server was down.
                Some(DfStatement::CreateExternalTable(create)) => {
                    self.build_external_table(def.clone(), &create).await
                }
                Some(DfStatement::Statement(s)) => match *s {
                    Statement::Query(query) => self.build_view(def.clone(), &query).await,
                    _ => Err(unreadable(&def)),
                },
                _ => Err(unreadable(&def)),
            },
            Err(e) => Err(e),
        };
        match built {
            Ok(view) => {
                self.db.restore_view(&name, view);
                Ok(None)
            }
            Err(e) => {
                let reason = format!("its definition no longer plans ({e})");
                tracing::warn!("view {name} came back unusable: {reason}");
                let depends_on = match Session::parse(&def.query).map(|mut s| s.pop_front()) {
                    Ok(Some(DfStatement::Statement(s))) => match *s {
                        Statement::Query(query) => {
                            self.relations_named_in(&query, &def.default_schema)
                        }
                        _ => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                let seq = self.db.allocate_view_seq();
                self.db
                    .restore_view(&name, View::broken(def, seq, depends_on, reason.clone()));
                Ok(Some(reason))
            }
        }
    }
}

fn unreadable(def: &ViewDef) -> QuiverError {
    QuiverError::Internal(format!("view {} has an unreadable definition", def.name))
}
