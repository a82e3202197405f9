//! ALTER TABLE: the statement's actions are applied in order to a draft of
//! the table's definition, then the table is rebuilt from its current rows
//! in one step (and logged as the new definition plus where each column
//! comes from, so recovery rebuilds it the same way).

use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AlterColumnOperation, AlterTable, AlterTableOperation, ColumnDef,
    DropBehavior, Expr as SqlExpr, ForeignKeyConstraint, Owner, RenameTableNameKind,
    TableConstraint,
};
use datafusion::sql::sqlparser::parser::Parser;

use super::ddl::{column_spec, name_checks, ColumnSpec};
use super::dml::assignable;
use super::{normalize_ident, Session, StatementResult};
use crate::engine::commit::{
    encode_batches, CheckDef, ColumnSource, Commit, ConstraintDef, Effect, IndexDef,
};
use crate::engine::conform::conform_batches;
use crate::engine::foreign::ForeignKeyDef;
use crate::engine::rebuild::rebuild_rows;
use crate::engine::types::{column_field, display_type};
use crate::engine::{QualifiedName, Table, Transaction};
use crate::error::{not_supported, QuiverError, Result};

/// Foreign keys an ALTER TABLE drops (table, name) and adds.
type ForeignKeyChanges = (Vec<(QualifiedName, String)>, Vec<ForeignKeyDef>);

/// 2BP01 for dropping a column a foreign key references.
fn referenced_column(fk: &ForeignKeyDef, table: &str) -> QuiverError {
    QuiverError::DependentObjectsStillExist(format!(
        "cannot drop a column of table {table} because constraint {} on table {} depends on it; use DROP ... CASCADE to drop the constraint too",
        fk.name, fk.table
    ))
}

/// The definition being built by one ALTER TABLE.
pub(super) struct Draft {
    name: String,
    fields: Vec<Field>,
    sources: Vec<Source>,
    defaults: Vec<(String, String)>,
    pub(super) constraints: Vec<ConstraintDef>,
    checks: Vec<CheckDef>,
    pub(super) indexes: Vec<IndexDef>,
    /// FOREIGN KEY clauses added by this statement: (columns, clause).
    references: Vec<(Vec<String>, ForeignKeyConstraint)>,
    /// Foreign keys of the table this statement drops, by name.
    drop_references: Vec<String>,
    /// Whether anything but foreign keys changes (the table is rebuilt).
    rebuild: bool,
    /// DROP COLUMN ... CASCADE: foreign keys that reference a dropped
    /// column go too.
    cascade: bool,
    /// CHECKs added by this statement: existing rows must pass them.
    new_checks: Vec<String>,
}

/// Where a new column's values come from, before logging.
#[derive(Clone)]
enum Source {
    Old(usize),
    Cast(usize),
    /// The DEFAULT's SQL, evaluated once for every existing row.
    Fill(Option<String>),
}

impl Draft {
    fn index_of(&self, column: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name() == column)
    }

    fn require(&self, column: &str) -> Result<usize> {
        self.index_of(column)
            .ok_or_else(|| QuiverError::UndefinedColumnOf {
                column: column.to_string(),
                table: self.name.clone(),
            })
    }

    fn in_primary_key(&self, column: &str) -> bool {
        self.constraints
            .iter()
            .any(|c| c.primary && c.columns.iter().any(|k| k == column))
    }
}

impl Session {
    pub(super) async fn alter_table(&mut self, alter: &AlterTable) -> Result<StatementResult> {
        if let [AlterTableOperation::OwnerTo { new_owner }] = alter.operations.as_slice() {
            let owner = match new_owner {
                Owner::Ident(ident) => ident.value.clone(),
                Owner::CurrentRole | Owner::CurrentUser | Owner::SessionUser => self.current_role(),
            };
            return self.set_owner(&alter.name, &owner).await;
        }
        let name = self.qualified(&alter.name)?;
        let catalog = self.catalog();
        let Some(table) = catalog.table(&name).cloned() else {
            if catalog.view(&name).is_some() {
                return Err(QuiverError::WrongObjectType(format!(
                    "\"{}\" is not a table",
                    name.name
                )));
            }
            if alter.if_exists {
                return Ok(StatementResult::command("ALTER TABLE"));
            }
            return Err(QuiverError::UndefinedTable(name.name));
        };
        let mut draft = self.draft_of(&name, &table)?;
        let mut new_name = name.clone();
        let foreign_keys = catalog.foreign_keys_of(&name);
        for operation in &alter.operations {
            if let AlterTableOperation::DropConstraint {
                if_exists, name: c, ..
            } = operation
            {
                let c = normalize_ident(c);
                if foreign_keys.iter().any(|fk| fk.name == c) {
                    draft.drop_references.push(c);
                    continue;
                }
                if !if_exists
                    || draft.constraints.iter().any(|k| k.name == c)
                    || draft.checks.iter().any(|k| k.name == c)
                {
                    draft.rebuild = true;
                }
            }
            if let AlterTableOperation::AddConstraint {
                constraint: TableConstraint::ForeignKey(fk),
                ..
            } = operation
            {
                let columns = fk.columns.iter().map(normalize_ident).collect();
                draft.references.push((columns, fk.clone()));
                continue;
            }
            if !matches!(operation, AlterTableOperation::DropConstraint { .. }) {
                draft.rebuild = true;
            }
            self.apply_operation(&mut draft, &mut new_name, operation)
                .await?;
        }
        let (drops, adds) = self.foreign_key_changes(&name, &table, &new_name, &draft)?;
        if drops.is_empty() && adds.is_empty() {
            if draft.rebuild {
                let txn = self.current_txn();
                self.replace_table(txn.as_ref(), &name, &table, &new_name, draft)
                    .await?;
            }
            return Ok(StatementResult::command("ALTER TABLE"));
        }
        // The table and its foreign keys change in one transaction: the
        // open block, or one of the statement's own.
        self.in_block(async |s: &mut Session| {
            let txn = s.current_txn().expect("in a block");
            if draft.rebuild {
                s.replace_table(Some(&txn), &name, &table, &new_name, draft)
                    .await?;
            }
            let added: Vec<String> = adds.iter().map(|fk| fk.name.clone()).collect();
            let (_, ack) = s.db.alter_foreign_keys(Some(&txn), &drops, adds)?;
            ack.wait().await;
            if !added.is_empty() {
                // Rows already there must have their keys (checked again at
                // COMMIT, against what others committed meanwhile).
                s.db.check_deferred(&txn, Some(&added))?;
            }
            Ok(())
        })
        .await?;
        Ok(StatementResult::command("ALTER TABLE"))
    }

    /// The foreign keys ALTER TABLE drops (table, name) and adds: those it
    /// names, and those whose columns it renames or drops (on either
    /// side), named as they will be after the statement.
    fn foreign_key_changes(
        &self,
        name: &QualifiedName,
        table: &Table,
        new_name: &QualifiedName,
        draft: &Draft,
    ) -> Result<ForeignKeyChanges> {
        let catalog = self.catalog();
        let old_schema = table.schema_ref();
        // Old column name -> new name (None: dropped).
        let mut renamed: std::collections::HashMap<String, Option<String>> = old_schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), None))
            .collect();
        for (field, source) in draft.fields.iter().zip(&draft.sources) {
            if let Source::Old(i) | Source::Cast(i) = source {
                renamed.insert(
                    old_schema.field(*i).name().clone(),
                    Some(field.name().clone()),
                );
            }
        }
        let map = |columns: &[String]| -> Option<Vec<String>> {
            columns
                .iter()
                .map(|c| renamed.get(c).cloned().flatten())
                .collect()
        };
        let mut drops = Vec::new();
        let mut adds = Vec::new();
        // Its own keys, under its new name.
        for fk in catalog.foreign_keys_of(name) {
            let dropped = draft.drop_references.contains(&fk.name);
            let columns = map(&fk.columns);
            let own = fk.parent() == *name;
            let ref_columns = if own {
                map(&fk.ref_columns)
            } else {
                Some(fk.ref_columns.clone())
            };
            if !dropped
                && columns.as_ref() == Some(&fk.columns)
                && ref_columns.as_ref() == Some(&fk.ref_columns)
            {
                continue;
            }
            drops.push((new_name.clone(), fk.name.clone()));
            if dropped {
                continue;
            }
            if own && ref_columns.is_none() && !draft.cascade {
                return Err(referenced_column(&fk, &name.name));
            }
            if let (Some(columns), Some(ref_columns)) = (columns, ref_columns) {
                let mut fk = ForeignKeyDef::clone(&fk);
                fk.schema.clone_from(&new_name.schema);
                fk.table.clone_from(&new_name.name);
                if own {
                    fk.ref_schema.clone_from(&new_name.schema);
                    fk.ref_table.clone_from(&new_name.name);
                }
                fk.columns = columns;
                fk.ref_columns = ref_columns;
                adds.push(fk);
            }
        }
        // Other tables' keys that reference it.
        for fk in catalog.foreign_keys_to(name) {
            if fk.child() == *name {
                continue;
            }
            let Some(ref_columns) = map(&fk.ref_columns) else {
                if !draft.cascade {
                    return Err(referenced_column(&fk, &name.name));
                }
                drops.push((fk.child(), fk.name.clone()));
                continue;
            };
            if ref_columns == fk.ref_columns {
                continue;
            }
            drops.push((fk.child(), fk.name.clone()));
            let mut fk = ForeignKeyDef::clone(&fk);
            fk.ref_schema.clone_from(&new_name.schema);
            fk.ref_table.clone_from(&new_name.name);
            fk.ref_columns = ref_columns;
            adds.push(fk);
        }
        // Keys the statement adds.
        let mut taken: Vec<String> = draft
            .constraints
            .iter()
            .map(|c| c.name.clone())
            .chain(draft.checks.iter().map(|c| c.name.clone()))
            .chain(
                catalog
                    .foreign_keys_of(name)
                    .iter()
                    .map(|fk| fk.name.clone()),
            )
            .collect();
        let schema = Schema::new(draft.fields.clone());
        let referencing = super::foreign_keys::Referencing {
            name: new_name,
            schema: &schema,
            primary_key: draft
                .constraints
                .iter()
                .find(|c| c.primary)
                .map(|c| c.columns.clone()),
        };
        for (columns, clause) in &draft.references {
            let def = self.foreign_key_def(&referencing, columns.clone(), clause, &taken)?;
            taken.push(def.name.clone());
            adds.push(def);
        }
        // A key other tables reference must stay.
        let keys: Vec<std::collections::HashSet<&String>> = draft
            .constraints
            .iter()
            .map(|c| c.columns.iter().collect())
            .chain(
                draft
                    .indexes
                    .iter()
                    .filter(|i| i.unique)
                    .map(|i| i.columns.iter().collect()),
            )
            .collect();
        for fk in catalog.foreign_keys_to(name) {
            if drops.iter().any(|(t, n)| *t == fk.child() && *n == fk.name) {
                continue;
            }
            let wanted: std::collections::HashSet<&String> = fk.ref_columns.iter().collect();
            if !keys.contains(&wanted) {
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "cannot drop the key of table {} because constraint {} on table {} depends on it",
                    name.name, fk.name, fk.table
                )));
            }
        }
        Ok((drops, adds))
    }

    /// The definition of `table` as a draft to change.
    pub(super) fn draft_of(&self, name: &QualifiedName, table: &Table) -> Result<Draft> {
        let schema = table.schema_ref();
        let def = table.definition(&name.schema, &mut Commit::new())?;
        Ok(Draft {
            name: table.name().to_string(),
            fields: schema.fields().iter().map(|f| f.as_ref().clone()).collect(),
            sources: (0..schema.fields().len()).map(Source::Old).collect(),
            defaults: def.defaults,
            constraints: def.constraints,
            checks: def.checks,
            indexes: def.indexes,
            references: Vec::new(),
            drop_references: Vec::new(),
            rebuild: false,
            cascade: false,
            new_checks: Vec::new(),
        })
    }

    /// Replaces `table` (named `name`) with the table `draft` describes,
    /// named `new_name`, rebuilt from its rows: now, or in `txn`, the
    /// session's open transaction. The views that read the table are
    /// planned again over the new one, in the same transaction.
    pub(super) async fn replace_table(
        &mut self,
        txn: Option<&Arc<Transaction>>,
        name: &QualifiedName,
        table: &Arc<Table>,
        new_name: &QualifiedName,
        draft: Draft,
    ) -> Result<()> {
        let views = self.catalog().views_depending_on_transitively(name);
        if views.is_empty() {
            return self.rebuild_table(txn, name, table, new_name, draft).await;
        }
        let cascade = draft.cascade;
        self.in_block(async |s: &mut Session| {
            let txn = s.current_txn();
            s.rebuild_table(txn.as_ref(), name, table, new_name, draft)
                .await?;
            s.replan_views(name, new_name, &views, cascade).await
        })
        .await
    }

    /// [`Session::replace_table`] without the views.
    async fn rebuild_table(
        &mut self,
        txn: Option<&Arc<Transaction>>,
        name: &QualifiedName,
        table: &Arc<Table>,
        new_name: &QualifiedName,
        draft: Draft,
    ) -> Result<()> {
        if draft.fields.is_empty() {
            return Err(not_supported("a table without columns"));
        }
        // DEFAULT values for added columns, computed once.
        let mut fills: Vec<Option<ArrayRef>> = Vec::with_capacity(draft.sources.len());
        for (field, source) in draft.fields.iter().zip(&draft.sources) {
            fills.push(match source {
                Source::Fill(Some(sql)) => Some(self.evaluate_default(sql, field).await?),
                _ => None,
            });
        }
        let id = self.db.allocate_table_id();
        let def_schema = Arc::new(Schema::new(draft.fields.clone()));
        // Identity columns stay identities while they keep their name.
        let identities = table
            .identities()
            .iter()
            .filter(|(column, _)| def_schema.index_of(column).is_ok())
            .cloned()
            .collect();
        let new_table = Arc::new(
            self.build_table(
                id,
                &draft.name,
                def_schema.clone(),
                draft.defaults.clone(),
                draft.constraints.clone(),
                draft.checks.clone(),
            )?
            .with_identities(identities)
            .with_indexes(draft.indexes.clone())?,
        );
        let mut commit = Commit::new();
        let def = new_table.definition(&new_name.schema, &mut commit)?;
        let columns = draft
            .sources
            .iter()
            .zip(&fills)
            .map(|(source, fill)| {
                Ok(match (source, fill) {
                    (Source::Old(i), _) => ColumnSource::Old(*i),
                    (Source::Cast(i), _) => ColumnSource::Cast(*i),
                    (Source::Fill(_), None) => ColumnSource::Fill(None),
                    (Source::Fill(_), Some(value)) => {
                        let field = Field::new("v", value.data_type().clone(), true);
                        let batch = RecordBatch::try_new(
                            Arc::new(Schema::new(vec![field])),
                            vec![value.clone()],
                        )?;
                        ColumnSource::Fill(Some(
                            commit.add_blob(encode_batches(&batch.schema(), &[batch])?),
                        ))
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        commit.effects.push(Effect::AlterTable {
            old_id: table.id(),
            old_schema: name.schema.clone(),
            old_name: name.name.clone(),
            def,
            columns: columns.clone(),
        });
        let new_checks = draft.new_checks.clone();
        let ack = self.db.replace_table(
            txn.map(|t| t.as_ref()),
            name,
            table,
            (new_name, new_table.clone()),
            commit,
            |rows| {
                let rows = rebuild_rows(rows, &def_schema, &columns, &fills)?;
                check_existing_rows(&new_table, &rows, &new_checks)?;
                conform_batches(&new_table, rows)
            },
        )?;
        ack.wait().await;
        Ok(())
    }

    async fn apply_operation(
        &self,
        draft: &mut Draft,
        new_name: &mut QualifiedName,
        operation: &AlterTableOperation,
    ) -> Result<()> {
        match operation {
            AlterTableOperation::AddColumn {
                if_not_exists,
                column_def,
                column_position: None,
                ..
            } => self.add_column(draft, column_def, *if_not_exists).await,
            AlterTableOperation::DropColumn {
                column_names,
                if_exists,
                drop_behavior,
                ..
            } => {
                if matches!(drop_behavior, Some(DropBehavior::Cascade)) {
                    draft.cascade = true;
                }
                for column in column_names {
                    let column = normalize_ident(column);
                    let Some(index) = draft.index_of(&column) else {
                        if *if_exists {
                            continue;
                        }
                        return Err(QuiverError::UndefinedColumnOf {
                            column,
                            table: draft.name.clone(),
                        });
                    };
                    draft.fields.remove(index);
                    draft.sources.remove(index);
                    draft.defaults.retain(|(c, _)| *c != column);
                    // Constraints on the column go with it, as in Postgres.
                    draft.constraints.retain(|c| !c.columns.contains(&column));
                    draft.indexes.retain(|i| !i.columns.contains(&column));
                    let schema = Arc::new(Schema::new(vec![Field::new(
                        &column,
                        datafusion::arrow::datatypes::DataType::Null,
                        true,
                    )]));
                    draft
                        .checks
                        .retain(|c| !super::ddl::columns_read(&c.sql, &schema).contains(&column));
                }
                Ok(())
            }
            AlterTableOperation::RenameColumn {
                old_column_name,
                new_column_name,
            } => {
                let old = normalize_ident(old_column_name);
                let new = normalize_ident(new_column_name);
                let index = draft
                    .index_of(&old)
                    .ok_or_else(|| QuiverError::UndefinedColumn(old.clone()))?;
                if draft.index_of(&new).is_some() {
                    return Err(QuiverError::DuplicateColumnOf {
                        column: new,
                        table: draft.name.clone(),
                    });
                }
                draft.fields[index] = draft.fields[index].clone().with_name(&new);
                for (column, _) in draft.defaults.iter_mut() {
                    if *column == old {
                        column.clone_from(&new);
                    }
                }
                for constraint in draft.constraints.iter_mut() {
                    for column in constraint.columns.iter_mut() {
                        if *column == old {
                            column.clone_from(&new);
                        }
                    }
                }
                for index in draft.indexes.iter_mut() {
                    for column in index.columns.iter_mut() {
                        if *column == old {
                            column.clone_from(&new);
                        }
                    }
                }
                for check in draft.checks.iter_mut() {
                    check.sql = rename_in_sql(&check.sql, &old, &new)?;
                }
                Ok(())
            }
            AlterTableOperation::RenameTable { table_name } => {
                let (RenameTableNameKind::As(target) | RenameTableNameKind::To(target)) =
                    table_name;
                let parts = super::object_name_parts(target)?;
                let table = parts.last().cloned().unwrap_or_default();
                *new_name = QualifiedName::new(new_name.schema.clone(), table.clone());
                draft.name = table;
                Ok(())
            }
            AlterTableOperation::AlterColumn { column_name, op } => {
                let column = normalize_ident(column_name);
                let index = draft.require(&column)?;
                match op {
                    AlterColumnOperation::SetNotNull => {
                        draft.fields[index] = draft.fields[index].clone().with_nullable(false);
                    }
                    AlterColumnOperation::DropNotNull => {
                        if draft.in_primary_key(&column) {
                            return Err(QuiverError::InvalidTableDefinition(format!(
                                "column \"{column}\" is in a primary key"
                            )));
                        }
                        draft.fields[index] = draft.fields[index].clone().with_nullable(true);
                    }
                    AlterColumnOperation::SetDefault { value } => {
                        let sql = value.to_string();
                        self.check_default_type(&sql, &draft.fields[index]).await?;
                        draft.defaults.retain(|(c, _)| *c != column);
                        draft.defaults.push((column, sql));
                    }
                    AlterColumnOperation::DropDefault => {
                        draft.defaults.retain(|(c, _)| *c != column);
                    }
                    AlterColumnOperation::SetDataType {
                        data_type,
                        using: None,
                        ..
                    } => {
                        let old = &draft.fields[index];
                        let new = column_field(&column, data_type, old.is_nullable())?;
                        if !castable(old, &new) {
                            return Err(QuiverError::DatatypeMismatch(format!(
                                "column \"{column}\" cannot be cast automatically to type {}",
                                display_type(&new)
                            )));
                        }
                        draft.sources[index] = match &draft.sources[index] {
                            Source::Old(i) | Source::Cast(i) => Source::Cast(*i),
                            fill => fill.clone(),
                        };
                        draft.fields[index] = new;
                    }
                    other => return Err(not_supported(format!("ALTER COLUMN ... {other}"))),
                }
                Ok(())
            }
            AlterTableOperation::AddConstraint { constraint, .. } => {
                self.add_constraint(draft, constraint)
            }
            AlterTableOperation::DropConstraint {
                if_exists, name, ..
            } => {
                let constraint = normalize_ident(name);
                let before = draft.constraints.len() + draft.checks.len();
                draft.constraints.retain(|c| c.name != constraint);
                draft.checks.retain(|c| c.name != constraint);
                if before == draft.constraints.len() + draft.checks.len() && !if_exists {
                    return Err(QuiverError::UndefinedObject(format!(
                        "constraint \"{constraint}\" of relation \"{}\" does not exist",
                        draft.name
                    )));
                }
                Ok(())
            }
            other => Err(not_supported(format!("ALTER TABLE ... {other}"))),
        }
    }

    async fn add_column(
        &self,
        draft: &mut Draft,
        column: &ColumnDef,
        if_not_exists: bool,
    ) -> Result<()> {
        let name = normalize_ident(&column.name);
        if draft.index_of(&name).is_some() {
            if if_not_exists {
                return Ok(());
            }
            return Err(QuiverError::DuplicateColumnOf {
                column: name,
                table: draft.name.clone(),
            });
        }
        let ColumnSpec {
            nullable,
            default,
            keys,
            checks,
            identity,
            references,
        } = column_spec(&name, &column.options)?;
        draft
            .references
            .extend(references.into_iter().map(|fk| (vec![name.clone()], fk)));
        if identity.is_some() {
            return Err(not_supported(
                "ALTER TABLE ... ADD COLUMN with GENERATED AS IDENTITY; create the table with it",
            ));
        }
        let field = column_field(&name, &column.data_type, nullable)?;
        if let Some(sql) = &default {
            self.check_default_type(sql, &field).await?;
            draft.defaults.push((name.clone(), sql.clone()));
        }
        draft.fields.push(field);
        draft.sources.push(Source::Fill(default));
        for (constraint, primary) in keys {
            if primary && draft.constraints.iter().any(|c| c.primary) {
                return Err(QuiverError::InvalidTableDefinition(format!(
                    "multiple primary keys for table \"{}\" are not allowed",
                    draft.name
                )));
            }
            draft.constraints.push(ConstraintDef {
                name: constraint.unwrap_or_else(|| {
                    if primary {
                        format!("{}_pkey", draft.name)
                    } else {
                        format!("{}_{name}_key", draft.name)
                    }
                }),
                columns: vec![name.clone()],
                primary,
            });
        }
        self.add_checks(draft, checks)
    }

    fn add_constraint(&self, draft: &mut Draft, constraint: &TableConstraint) -> Result<()> {
        let (given, columns, primary) = match constraint {
            TableConstraint::Check(check) => {
                return self.add_checks(
                    draft,
                    vec![(
                        check.name.as_ref().map(normalize_ident),
                        None,
                        check.expr.to_string(),
                    )],
                )
            }
            TableConstraint::PrimaryKey(pk) => (&pk.name, &pk.columns, true),
            TableConstraint::Unique(u) => (&u.name, &u.columns, false),
            other => {
                return Err(QuiverError::FeatureNotSupported(format!(
                    "constraint \"{other}\" is not supported"
                )))
            }
        };
        let columns = columns
            .iter()
            .map(|c| match &c.column.expr {
                SqlExpr::Identifier(i) => {
                    let name = normalize_ident(i);
                    draft.require(&name).map(|_| name)
                }
                other => Err(QuiverError::Syntax(format!(
                    "expected a column name, found \"{other}\""
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        if primary {
            if draft.constraints.iter().any(|c| c.primary) {
                return Err(QuiverError::InvalidTableDefinition(format!(
                    "multiple primary keys for table \"{}\" are not allowed",
                    draft.name
                )));
            }
            for column in &columns {
                let i = draft.require(column)?;
                draft.fields[i] = draft.fields[i].clone().with_nullable(false);
            }
        }
        let name = given.as_ref().map(normalize_ident).unwrap_or_else(|| {
            if primary {
                format!("{}_pkey", draft.name)
            } else {
                format!("{}_{}_key", draft.name, columns.join("_"))
            }
        });
        if draft.constraints.iter().any(|c| c.name == name)
            || draft.checks.iter().any(|c| c.name == name)
            || draft.indexes.iter().any(|i| i.name == name)
        {
            return Err(QuiverError::DuplicateTable(name));
        }
        draft.constraints.push(ConstraintDef {
            name,
            columns,
            primary,
        });
        Ok(())
    }

    fn add_checks(
        &self,
        draft: &mut Draft,
        checks: Vec<(Option<String>, Option<String>, String)>,
    ) -> Result<()> {
        if checks.is_empty() {
            return Ok(());
        }
        let schema: SchemaRef = Arc::new(Schema::new(draft.fields.clone()));
        let mut all: Vec<(Option<String>, Option<String>, String)> = draft
            .checks
            .iter()
            .map(|c| (Some(c.name.clone()), None, c.sql.clone()))
            .collect();
        let existing = all.len();
        for (given, column, sql) in checks {
            if let Some(given) = &given {
                if all.iter().any(|(n, _, _)| n.as_ref() == Some(given))
                    || draft.constraints.iter().any(|c| c.name == *given)
                {
                    return Err(QuiverError::DuplicateObject(format!(
                        "constraint \"{given}\" for relation \"{}\" already exists",
                        draft.name
                    )));
                }
            }
            all.push((given, column, sql));
        }
        let named = name_checks(&draft.name, &schema, all)?;
        draft
            .new_checks
            .extend(named[existing..].iter().map(|c| c.name.clone()));
        draft.checks = named;
        Ok(())
    }

    /// 42804 when a DEFAULT's type cannot be stored in the column.
    async fn check_default_type(&self, sql: &str, field: &Field) -> Result<()> {
        let plan = self.plan_generated(&format!("SELECT ({sql})")).await?;
        let from = plan.schema().field(0).data_type().clone();
        if !assignable(&from, field.data_type()) {
            return Err(QuiverError::DatatypeMismatch(format!(
                "column \"{}\" is of type {} but default expression is of type {}",
                field.name(),
                display_type(field),
                display_type(&Field::new("", from, true))
            )));
        }
        Ok(())
    }

    /// A DEFAULT's value, as a one-element array of the column's type.
    async fn evaluate_default(&self, sql: &str, field: &Field) -> Result<ArrayRef> {
        let plan = self.plan_generated(&format!("SELECT ({sql})")).await?;
        let batches = self.collect_plan(plan).await?;
        let value = batches
            .iter()
            .find(|b| b.num_rows() > 0)
            .map(|b| b.column(0).slice(0, 1))
            .ok_or_else(|| QuiverError::Internal(format!("DEFAULT {sql} gave no value")))?;
        // Text into an array column is read as an array (`DEFAULT '{}'`).
        if matches!(field.data_type(), DataType::List(_)) && value.data_type() == &DataType::Utf8 {
            return crate::sql::column_from_text(
                field,
                value.as_string::<i32>(),
                crate::engine::types::UTC,
                Default::default(),
            )
            .map_err(|bad| datafusion::error::DataFusionError::Execution(bad.message).into());
        }
        Ok(cast_with_options(
            &value,
            field.data_type(),
            &CastOptions {
                safe: false,
                ..Default::default()
            },
        )?)
    }
}

/// NOT NULL and the newly added CHECKs against the rows a table already
/// has, with the messages Postgres gives for existing rows.
fn check_existing_rows(table: &Table, rows: &[RecordBatch], new_checks: &[String]) -> Result<()> {
    let schema = table.schema_ref();
    for batch in rows {
        for (i, field) in schema.fields().iter().enumerate() {
            if !field.is_nullable() && batch.column(i).null_count() > 0 {
                return Err(QuiverError::NotNullExisting {
                    table: table.name().to_string(),
                    column: field.name().clone(),
                });
            }
        }
        for check in table
            .checks()
            .iter()
            .filter(|c| new_checks.contains(&c.name))
        {
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())?;
            if check.first_violation(&batch)?.is_some() {
                return Err(QuiverError::CheckViolation(format!(
                    "check constraint \"{}\" of relation \"{}\" is violated by some row",
                    check.name,
                    table.name()
                )));
            }
        }
    }
    Ok(())
}

/// Whether ALTER COLUMN TYPE may convert `from` to `to` without USING:
/// within numbers, within date/time types, and anything to text.
fn castable(from: &Field, to: &Field) -> bool {
    use datafusion::arrow::datatypes::DataType as D;
    let text = |t: &D| matches!(t, D::Utf8 | D::LargeUtf8 | D::Utf8View);
    if text(to.data_type()) {
        return true;
    }
    if text(from.data_type()) {
        // Between the text-like types (varchar, char, ...) only.
        return text(to.data_type());
    }
    assignable(from.data_type(), to.data_type())
}

/// A CHECK's SQL with column `old` renamed to `new`.
fn rename_in_sql(sql: &str, old: &str, new: &str) -> Result<String> {
    let mut expr = Parser::new(&crate::sql::dialect::Postgres)
        .try_with_sql(sql)?
        .parse_expr()?;
    let _ = visit_expressions_mut(&mut expr, |e| {
        match e {
            SqlExpr::Identifier(i) if normalize_ident(i) == old => {
                *i = datafusion::sql::sqlparser::ast::Ident::with_quote('"', new);
            }
            SqlExpr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    if normalize_ident(last) == old {
                        *last = datafusion::sql::sqlparser::ast::Ident::with_quote('"', new);
                    }
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(expr.to_string())
}
