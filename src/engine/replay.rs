//! Replay: a logged commit applied to the database again, by recovery
//! (and, later, by replicas). Effects are applied as they were logged,
//! with no log attached, so nothing is logged twice; definitions are
//! compiled again by the caller's [`Compiler`].

use std::collections::HashMap;
use std::sync::Arc;

use super::commit::{decode_batches, decode_positions, Commit, Effect};
use super::conform::conform_batches;
use super::log::Compiler;
use super::rebuild::{logged_fills, rebuild_rows};
use super::table::{densify, StagedRows};
use super::{Change, Database, QualifiedName, Table};
use crate::error::{QuiverError, Result};

impl Database {
    /// Applies one commit a replica received, while sessions read: a
    /// checkpoint never cuts through it, and a transaction that starts
    /// sees all of its rows or none (a commit that compiles views or
    /// rebuilds a table is atomic for the catalog, not for snapshots taken
    /// meanwhile: those plan queries, which need the commit order lock).
    /// Runs on a thread of its own: the locks are held across the replay
    /// (whose only await, compiling a view, runs without the order lock).
    #[allow(clippy::await_holding_lock)]
    pub async fn replay_live(
        &self,
        commit: Commit,
        tables: &mut HashMap<u64, Arc<Table>>,
        compiler: &mut dyn Compiler,
        applied: impl FnOnce(),
    ) -> Result<()> {
        let _gate = self.commit_gate.read();
        let plans = commit
            .effects
            .iter()
            .any(|e| matches!(e, Effect::CreateView(_) | Effect::AlterTable { .. }));
        let result = if plans {
            self.replay(commit, tables, compiler).await
        } else {
            let _order = self.commit_lock.lock();
            self.replay(commit, tables, compiler).await
        };
        applied();
        result
    }

    /// Applies one logged commit. `tables` maps table ids to tables,
    /// including ones dropped since (rows logged for them are discarded
    /// with them).
    pub async fn replay(
        &self,
        commit: Commit,
        tables: &mut HashMap<u64, Arc<Table>>,
        compiler: &mut dyn Compiler,
    ) -> Result<()> {
        let blob = |i: usize| {
            commit.blobs.get(i).ok_or_else(|| {
                QuiverError::Internal(format!("WAL record refers to missing blob {i}"))
            })
        };
        // A commit's row changes to one table are installed together, as
        // the commit installed them: a reader never sees half of them.
        let mut rows = PendingRows::default();
        for effect in &commit.effects {
            if !matches!(
                effect,
                Effect::Insert { .. } | Effect::InsertSegment { .. } | Effect::Delete { .. }
            ) {
                rows.install()?;
            }
            match effect {
                Effect::CreateSchema { name } => self.restore_schema(name),
                Effect::DropSchema { name, .. } => self.restore_drop_schema(name),
                Effect::CreateTable(def) => {
                    let (schema, _) = decode_batches(blob(def.arrow_schema)?)?;
                    let table = Arc::new(compiler.table(def, schema)?);
                    let name = QualifiedName::new(&def.schema, &def.name);
                    self.restore_table(&name, table.clone());
                    self.reserve_table_ids(def.id + 1);
                    tables.insert(def.id, table);
                }
                Effect::CreateView(def) => {
                    let name = QualifiedName::new(&def.schema, &def.name);
                    let (view, _) = compiler.view(def.clone()).await?;
                    self.restore_view(&name, view);
                }
                Effect::DropRelations { names, cascade, .. } => {
                    let names: Vec<_> = names
                        .iter()
                        .map(|(s, n)| QualifiedName::new(s, n))
                        .collect();
                    self.restore_drop_relations(&names, *cascade);
                }
                Effect::PutRole(role) => self.restore_role(Some(role.clone()), ""),
                Effect::DropRole { name } => self.restore_role(None, name),
                Effect::SetAcl { object, acl } => self.restore_acl(object.clone(), acl.clone()),
                Effect::CreateSequence(def) => self.restore_sequence(def),
                Effect::SetComment { target, comment } => self.restore_comment(target, comment),
                Effect::AddForeignKey(_) | Effect::DropForeignKey { .. } => {
                    self.restore_foreign_keys(std::slice::from_ref(effect))
                }
                Effect::SetSequence {
                    id,
                    last_value,
                    is_called,
                } => match self.catalog().sequence_by_id(*id) {
                    Some((_, sequence)) => sequence.restore(*last_value, *is_called),
                    // Dropped since, or created by a transaction that
                    // never committed.
                    None => tracing::debug!("skipping logged position of sequence id {id}"),
                },
                Effect::AlterSequence(def) => match self.catalog().sequence_by_id(def.id) {
                    Some((_, sequence)) => sequence.restore_def(def),
                    None => tracing::debug!("skipping ALTER of sequence id {}", def.id),
                },
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
                    rows.add(table, Pending::Change(Change::Delete(Arc::new(positions))));
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
                    let table = Arc::new(compiler.table(def, schema.clone())?);
                    let fills = logged_fills(&commit.blobs, columns)?;
                    let name = QualifiedName::new(old_schema, old_name);
                    let new_name = QualifiedName::new(&def.schema, &def.name);
                    let rows =
                        rebuild_rows(old.snapshot().live_batches()?, &schema, columns, &fills)?;
                    let rows = conform_batches(&table, rows)?;
                    table.restore(rows, 1)?;
                    self.restore_replaced_table(&name, &old, &new_name, table.clone());
                    self.reserve_table_ids(def.id + 1);
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
                    rows.add(table, Pending::Change(Change::Insert(batches)));
                }
                Effect::InsertSegment { table_id, data } => {
                    let Some(table) = tables.get(table_id) else {
                        tracing::warn!("skipping logged rows for dropped table id {table_id}");
                        continue;
                    };
                    let rows_of = StagedRows::from_log(&table.schema_ref(), &[blob(*data)?])?;
                    rows.add(table, Pending::Segments(rows_of));
                }
            }
        }
        rows.install()
    }
}

/// Row changes of a commit not yet installed, per table, in order.
#[derive(Default)]
struct PendingRows(Vec<(Arc<Table>, Vec<Pending>)>);

/// One logged row change.
enum Pending {
    Change(Change),
    /// Segments of a bulk load, as the table keeps them.
    Segments(StagedRows),
}

impl Pending {
    fn into_change(self) -> Result<Change> {
        Ok(match self {
            Pending::Change(change) => change,
            Pending::Segments(rows) => Change::Insert(rows.into_batches()?),
        })
    }
}

impl PendingRows {
    fn add(&mut self, table: &Arc<Table>, change: Pending) {
        match self.0.iter_mut().find(|(t, _)| Arc::ptr_eq(t, table)) {
            Some((_, changes)) => changes.push(change),
            None => self.0.push((table.clone(), vec![change])),
        }
    }

    fn install(&mut self) -> Result<()> {
        for (table, changes) in self.0.drain(..) {
            let appends = changes
                .iter()
                .all(|c| matches!(c, Pending::Segments(_) | Pending::Change(Change::Insert(_))));
            let segments = changes.iter().any(|c| matches!(c, Pending::Segments(_)));
            if !appends {
                let changes =
                    (changes.into_iter().map(Pending::into_change)).collect::<Result<Vec<_>>>()?;
                table.apply_all_now(&changes)?;
            } else if !segments {
                // Appended without reading rows a restart has not read yet.
                let batches = changes
                    .into_iter()
                    .flat_map(|c| match c {
                        Pending::Change(Change::Insert(batches)) => batches,
                        _ => Vec::new(),
                    })
                    .collect();
                let (_, _none) = table.append(batches, || Ok(super::Ack::none()))?;
            } else {
                // Logged segments go in as they were logged, not encoded
                // again.
                let mut parts = Vec::with_capacity(changes.len());
                for change in changes {
                    parts.push(match change {
                        Pending::Segments(rows) => rows,
                        Pending::Change(Change::Insert(batches)) => {
                            table.stage(densify(&table.schema_ref(), batches)?)
                        }
                        Pending::Change(_) => {
                            return Err(QuiverError::Internal("a delete among appends".into()))
                        }
                    });
                }
                let prepared = table.prepare_staged(parts)?;
                table.install(prepared);
            }
        }
        Ok(())
    }
}
