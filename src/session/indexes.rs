//! CREATE INDEX and DROP INDEX. An index is part of its table's
//! definition: creating or dropping one replaces the table the way ALTER
//! TABLE does (sharing its rows), so it is transactional and logged with
//! the table. A unique index is enforced like a UNIQUE constraint, and its
//! key map serves point lookups and ON CONFLICT like one.

use datafusion::sql::sqlparser::ast::{CreateIndex, Expr as SqlExpr, IndexType, ObjectName};

use super::{normalize_ident, object_name_parts, Session, StatementResult};
use crate::engine::comments::CommentTarget;
use crate::engine::commit::IndexDef;
use crate::engine::{CatalogState, QualifiedName};
use crate::error::{not_supported, QuiverError, Result};

impl Session {
    pub(super) async fn create_index(&mut self, create: &CreateIndex) -> Result<StatementResult> {
        const TAG: &str = "CREATE INDEX";
        if create.concurrently && self.current_txn().is_some() {
            return Err(QuiverError::ActiveTransaction(
                "CREATE INDEX CONCURRENTLY cannot run inside a transaction block".into(),
            ));
        }
        let name = self.qualified(&create.table_name)?;
        let catalog = self.catalog();
        let Some(table) = catalog.table(&name).cloned() else {
            if catalog.view(&name).is_some() || catalog.sequence(&name).is_some() {
                return Err(QuiverError::WrongObjectType(format!(
                    "cannot create index on relation \"{}\"",
                    name.name
                )));
            }
            return Err(QuiverError::UndefinedTable(name.name));
        };
        let schema = table.schema_ref();
        let exists = |column: String| {
            if schema.index_of(&column).is_ok() {
                Ok(column)
            } else {
                Err(QuiverError::UndefinedColumn(column))
            }
        };
        let mut columns = Vec::with_capacity(create.columns.len());
        for column in &create.columns {
            columns.push(match &column.column.expr {
                SqlExpr::Identifier(ident) => exists(normalize_ident(ident))?,
                SqlExpr::Nested(inner) if matches!(inner.as_ref(), SqlExpr::Identifier(_)) => {
                    let SqlExpr::Identifier(ident) = inner.as_ref() else {
                        unreachable!()
                    };
                    exists(normalize_ident(ident))?
                }
                other => {
                    return Err(not_supported(format!(
                        "an index on the expression {other} (index plain columns)"
                    )))
                }
            });
        }
        for column in &create.include {
            exists(normalize_ident(column))?;
        }
        let method = match &create.using {
            None | Some(IndexType::BTree) => "btree",
            Some(IndexType::Hash) => "hash",
            Some(other) => {
                let asked = other.to_string().to_lowercase();
                self.notice(format!(
                    "access method \"{asked}\" is not available: the index is a btree index, which QuiverDB keeps as a key map"
                ));
                "btree"
            }
        };
        if create.unique {
            if method == "hash" {
                return Err(QuiverError::FeatureNotSupported(
                    "access method \"hash\" does not support unique indexes".into(),
                ));
            }
            if create.predicate.is_some() {
                return Err(not_supported(
                    "a partial unique index (CREATE UNIQUE INDEX ... WHERE)",
                ));
            }
            if create.nulls_distinct == Some(false) {
                return Err(not_supported("UNIQUE NULLS NOT DISTINCT"));
            }
        }
        let index_name = match &create.name {
            Some(given) => index_name_in(given, &name.schema)?,
            None => super::sequences::choose_name(
                &catalog,
                &name.schema,
                (&name.name, &columns.join("_"), "idx"),
                &[],
            ),
        };
        let taken = catalog
            .schemas
            .get(&name.schema)
            .is_some_and(|s| s.has_relation(&index_name));
        if taken {
            if create.if_not_exists {
                self.notice(format!(
                    "relation \"{index_name}\" already exists, skipping"
                ));
                return Ok(StatementResult::command(TAG));
            }
            return Err(QuiverError::DuplicateTable(index_name));
        }
        let mut draft = self.draft_of(&name, &table)?;
        draft.indexes.push(IndexDef {
            name: index_name.clone(),
            columns,
            unique: create.unique,
            method: method.to_string(),
        });
        let txn = self.current_txn();
        match self
            .replace_table(txn.as_ref(), &name, &table, &name, draft)
            .await
        {
            Ok(()) => Ok(StatementResult::command(TAG)),
            Err(QuiverError::UniqueViolation { detail, .. }) if create.unique => {
                Err(QuiverError::UniqueIndexBuild {
                    index: index_name,
                    detail: detail.replace("already exists.", "is duplicated."),
                })
            }
            Err(e) => Err(e),
        }
    }

    pub(super) async fn drop_indexes(
        &mut self,
        names: &[ObjectName],
        if_exists: bool,
        cascade: bool,
    ) -> Result<StatementResult> {
        const TAG: &str = "DROP INDEX";
        for given in names {
            let Some((table_name, index)) = self.find_index(given)? else {
                let name = object_name_parts(given)?.pop().unwrap_or_default();
                if if_exists {
                    self.notice(format!("index \"{name}\" does not exist, skipping"));
                    continue;
                }
                return Err(QuiverError::UndefinedObject(format!(
                    "index \"{name}\" does not exist"
                )));
            };
            let table = self
                .catalog()
                .table(&table_name)
                .cloned()
                .ok_or_else(|| QuiverError::UndefinedTable(table_name.name.clone()))?;
            let mut draft = self.draft_of(&table_name, &table)?;
            if !cascade && draft.constraints.iter().any(|c| c.name == index) {
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "cannot drop index {index} because constraint {index} on table {} requires it",
                    table_name.name
                )));
            }
            // With CASCADE the constraint goes with its index.
            draft.constraints.retain(|c| c.name != index);
            draft.indexes.retain(|i| i.name != index);
            let txn = self.current_txn();
            self.replace_table(txn.as_ref(), &table_name, &table, &table_name, draft)
                .await?;
        }
        Ok(StatementResult::command(TAG))
    }

    /// `ALTER INDEX name RENAME TO new`: the index (or the PRIMARY KEY or
    /// UNIQUE constraint it is) takes the new name, and its comment
    /// follows.
    pub(super) async fn rename_index(
        &mut self,
        name: &ObjectName,
        new: &ObjectName,
    ) -> Result<StatementResult> {
        let Some((table_name, index)) = self.find_index(name)? else {
            let name = object_name_parts(name)?.pop().unwrap_or_default();
            return Err(QuiverError::UndefinedTable(name));
        };
        let new = object_name_parts(new)?.pop().unwrap_or_default();
        let taken = self
            .catalog()
            .schemas
            .get(&table_name.schema)
            .is_some_and(|s| s.has_relation(&new));
        if taken {
            return Err(QuiverError::DuplicateTable(new));
        }
        let table = self
            .catalog()
            .table(&table_name)
            .cloned()
            .ok_or_else(|| QuiverError::UndefinedTable(table_name.name.clone()))?;
        // The comment, read before the old index (and its comment) goes.
        let comment = self
            .catalog()
            .comment(&CommentTarget::Index {
                schema: table_name.schema.clone(),
                name: index.clone(),
            })
            .cloned();
        let mut draft = self.draft_of(&table_name, &table)?;
        for constraint in draft.constraints.iter_mut().filter(|c| c.name == index) {
            constraint.name.clone_from(&new);
        }
        for def in draft.indexes.iter_mut().filter(|i| i.name == index) {
            def.name.clone_from(&new);
        }
        let txn = self.current_txn();
        self.replace_table(txn.as_ref(), &table_name, &table, &table_name, draft)
            .await?;
        if let Some(comment) = comment {
            let target = CommentTarget::Index {
                schema: table_name.schema.clone(),
                name: new,
            };
            let (_, ack) = self.db.set_comment(txn.as_deref(), target, Some(comment))?;
            ack.wait().await;
        }
        Ok(StatementResult::command("ALTER INDEX"))
    }

    /// The table an index belongs to and the index's name: in the schema
    /// given, or the first on the search path that has it.
    pub(super) fn find_index(&self, name: &ObjectName) -> Result<Option<(QualifiedName, String)>> {
        let mut parts = object_name_parts(name)?;
        let index = parts.pop().unwrap_or_default();
        let catalog = self.catalog();
        let schemas = match parts.pop() {
            Some(schema) => vec![schema],
            None => self.settings.search_path(),
        };
        Ok(schemas
            .iter()
            .find_map(|schema| index_in(&catalog, schema, &index))
            .map(|table| (table, index)))
    }
}

/// The table in `schema` with an index named `index`.
fn index_in(catalog: &CatalogState, schema: &str, index: &str) -> Option<QualifiedName> {
    let (table, _) = catalog.schemas.get(schema)?.index_table(index)?;
    Some(QualifiedName::new(schema, table))
}

/// An index's name as CREATE INDEX gives it: unqualified, or qualified
/// with its table's own schema (an index lives beside its table).
fn index_name_in(given: &ObjectName, table_schema: &str) -> Result<String> {
    let mut parts = object_name_parts(given)?;
    let name = parts.pop().unwrap_or_default();
    match parts.pop() {
        Some(schema) if schema != table_schema => Err(QuiverError::Syntax(format!(
            "index \"{name}\" must be in the schema of its table, \"{table_schema}\""
        ))),
        _ => Ok(name),
    }
}
