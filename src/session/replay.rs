//! Recovery replays logged commits through the same catalog and table
//! operations that made them (with no WAL attached, so nothing is logged
//! twice).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::Session;
use crate::engine::{Ack, Change, QualifiedName, Table};
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
                Effect::CreateSchema { name } => {
                    let (_, ack) = self.db.create_schema(None, name, true, None)?;
                    ack.wait().await;
                }
                Effect::DropSchema { name, cascade } => {
                    let (_, ack) = self.db.drop_schema(None, name, true, *cascade)?;
                    ack.wait().await;
                }
                Effect::CreateTable(def) => {
                    let (schema, _) = decode_batches(blob(def.arrow_schema)?)?;
                    let table = Arc::new(self.build_table_from_def(def, schema)?);
                    let name = QualifiedName::new(&def.schema, &def.name);
                    let (_, ack) = self
                        .db
                        .create_table(None, &name, table.clone(), false, None)?;
                    ack.wait().await;
                    self.db.reserve_table_ids(def.id + 1);
                    tables.insert(def.id, table);
                }
                Effect::CreateView(def) => self.replay_view(def.clone()).await?,
                Effect::DropRelations {
                    names,
                    views,
                    if_exists,
                    cascade,
                } => {
                    let names: Vec<_> = names
                        .iter()
                        .map(|(s, n)| QualifiedName::new(s, n))
                        .collect();
                    let (_, ack) = self
                        .db
                        .drop_relations(None, &names, *views, *if_exists, *cascade)?;
                    ack.wait().await;
                }
                Effect::PutRole(role) => self.db.replay_role(Some(role.clone()), "")?,
                Effect::DropRole { name } => self.db.replay_role(None, name)?,
                Effect::SetAcl { object, acl } => {
                    self.db.replay_acl(object.clone(), acl.clone())?
                }
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
                    let ack = self.db.replace_table(&name, &old, &new_name, |version| {
                        let rows = super::alter::rebuild_rows(version, &schema, columns, &fills)?;
                        let rows = super::insert::conform_batches(&table, rows)?;
                        table.restore(rows, 1)?;
                        Ok((table.clone(), Commit::new()))
                    })?;
                    ack.wait().await;
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
    pub(crate) async fn replay_view(&mut self, def: ViewDef) -> Result<()> {
        let name = QualifiedName::new(&def.schema, &def.name);
        let or_replace = def.or_replace;
        let unreadable =
            || QuiverError::Internal(format!("view {} has an unreadable definition", def.name));
        let view = match Session::parse(&def.query)?.pop_front() {
            // Built from the schema recorded at creation: the files may
            // have gone while the server was down.
            Some(DfStatement::CreateExternalTable(create)) => {
                self.build_external_table(def, &create).await?
            }
            Some(DfStatement::Statement(s)) => match *s {
                Statement::Query(query) => self.build_view(def, &query).await?,
                _ => return Err(unreadable()),
            },
            _ => return Err(unreadable()),
        };
        let (_, ack) = self.db.create_view(None, &name, view, or_replace, None)?;
        ack.wait().await;
        Ok(())
    }
}
