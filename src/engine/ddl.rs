//! Changes to the catalog: schemas, tables, views, roles and grants.
//!
//! Each change is made on a copy of the catalog, which is installed whole.
//! A change logs what it actually did, as effects that name the objects it
//! touched, and nothing when it did nothing (`IF NOT EXISTS` of something
//! that exists, `IF EXISTS` of something missing). Recovery applies those
//! effects with the `restore_*` functions, which make no checks: a logged
//! effect happened, and replaying it must never fail on the checks the
//! statement already passed.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::catalog::{CatalogState, QualifiedName, View};
use super::comments::CommentTarget;
use super::foreign::ForeignKeyDef;
use super::roles::{self, Acl, AclObject};
use super::sequence::{Sequence, SequenceDef};
use super::table::Table;
use super::txn::{DdlState, Transaction};
use super::{Ack, CommitWatch, Database};
use crate::engine::commit::{Commit, Effect};
use crate::error::{QuiverError, Result};
use datafusion::arrow::record_batch::RecordBatch;

impl Database {
    /// Applies `change` to a copy of the catalog and installs the copy,
    /// logging the effects `change` recorded (nothing when it recorded
    /// none). A failed change leaves the catalog untouched. Inside a
    /// transaction the change goes to the transaction's own copy of the
    /// catalog and is logged and installed at its COMMIT.
    fn change_catalog<T>(
        &self,
        txn: Option<&Transaction>,
        change: impl FnOnce(&mut CatalogState, &mut Commit) -> Result<T>,
    ) -> Result<(T, Ack)> {
        let mut effects = Commit::new();
        if let Some(txn) = txn {
            let mut ddl = txn.ddl();
            let (base, version) = match ddl.as_ref() {
                Some(d) => (d.catalog.clone(), d.catalog_version),
                None => (self.catalog(), self.catalog_version()),
            };
            let mut next = CatalogState::clone(&base);
            let out = change(&mut next, &mut effects)?;
            if !effects.effects.is_empty() {
                self.check_writable()?;
                DdlState::install(&mut ddl, (base, version), next, effects);
            }
            return Ok((out, Ack::none()));
        }
        let _gate = self.commit_gate.read();
        let _guard = self.ddl_lock.lock();
        let mut next = CatalogState::clone(&self.catalog.load());
        let out = change(&mut next, &mut effects)?;
        if effects.effects.is_empty() {
            // Nothing happened: nothing to log, and nothing for prepared
            // statements or open transactions to notice.
            return Ok((out, Ack::none()));
        }
        self.check_writable()?;
        let ack = self.log(&effects, CommitWatch::statement_sync_level())?;
        mark_created_sequences(&next, &effects);
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok((out, ack))
    }

    /// ALTER TABLE (and CREATE/DROP INDEX): replaces `old` (named `name`)
    /// with `table` under `new_name`. `rebuild` turns rows of `old` into
    /// rows of `table` (checked against its new constraints); `commit` is
    /// what to log. No commit runs while the rows are rebuilt. Views that
    /// read the table are re-planned by the caller.
    ///
    /// Inside a transaction the new table is the transaction's own until
    /// it commits; the commit fails (40001) if another one changed the
    /// old table's rows in between, as they would be lost otherwise.
    pub fn replace_table(
        &self,
        txn: Option<&Transaction>,
        name: &QualifiedName,
        old: &Arc<Table>,
        (new_name, table): (&QualifiedName, Arc<Table>),
        commit: Commit,
        rebuild: impl Fn(Vec<RecordBatch>) -> Result<Vec<RecordBatch>>,
    ) -> Result<Ack> {
        self.check_writable()?;
        if let Some(txn) = txn {
            self.replace_table_in(txn, name, old, (new_name, table), commit, rebuild)?;
            return Ok(Ack::none());
        }
        let _gate = self.commit_gate.read();
        let _guard = self.ddl_lock.lock();
        let _order = self.commit_lock.lock();
        let current = self.catalog.load_full();
        check_replaceable(&current, name, old, new_name)?;
        let rows = rebuild(old.snapshot().live_batches()?)?;
        table.restore(rows, 1)?;
        let ack = self.log(&commit, CommitWatch::statement_sync_level())?;
        let mut next = CatalogState::clone(&current);
        move_table(&mut next, name, old, new_name, table);
        apply_foreign_key_effects(&mut next, &commit.effects);
        old.retire();
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok(ack)
    }

    fn replace_table_in(
        &self,
        txn: &Transaction,
        name: &QualifiedName,
        old: &Arc<Table>,
        (new_name, table): (&QualifiedName, Arc<Table>),
        commit: Commit,
        rebuild: impl Fn(Vec<RecordBatch>) -> Result<Vec<RecordBatch>>,
    ) -> Result<()> {
        let mut ddl = txn.ddl();
        let (base_catalog, version) = match ddl.as_ref() {
            Some(d) => (d.catalog.clone(), d.catalog_version),
            None => (self.catalog(), self.catalog_version()),
        };
        check_replaceable(&base_catalog, name, old, new_name)?;
        // The new table starts from the committed rows the transaction
        // read, which is what replaying the logged ALTER rebuilds; rows
        // the transaction added before move over as its own insert.
        let base = txn.base_version(old);
        let pending = txn.pending(old.id());
        if let Some(write) = &pending {
            if !write.net.only_added() {
                return Err(QuiverError::FeatureNotSupported(format!(
                    "altering table \"{}\" after deleting or updating its rows in the same transaction is not supported; commit the changes first",
                    name.name
                )));
            }
        }
        let rows = rebuild(base.live_batches()?)?;
        table.restore(rows, 1)?;
        let added = match &pending {
            Some(write) => rebuild(write.version.live_rows_from(write.net.base_rows_left())?)?,
            None => Vec::new(),
        };
        // Checked before the transaction changes at all (a failure leaves
        // it as it was).
        if added.iter().any(|b| b.num_rows() > 0) {
            txn.apply(&table, super::Change::Insert(added))?;
        }
        let mut next = CatalogState::clone(&base_catalog);
        move_table(&mut next, name, old, new_name, table.clone());
        apply_foreign_key_effects(&mut next, &commit.effects);
        DdlState::install(&mut ddl, (base_catalog, version), next, commit)
            .replaced
            .push((old.clone(), base.version));
        drop(ddl);
        txn.forget(old.id());
        Ok(())
    }

    /// Returns false when the schema existed and `if_not_exists` was given.
    pub fn create_schema(
        &self,
        txn: Option<&Transaction>,
        name: &str,
        if_not_exists: bool,
        owner: Option<&str>,
    ) -> Result<(bool, Ack)> {
        self.change_catalog(txn, |c, log| {
            if c.schemas.contains_key(name) {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::DuplicateSchema(name.to_string()))
                };
            }
            c.schemas.insert(name.to_string(), Default::default());
            log.effects.push(Effect::CreateSchema {
                name: name.to_string(),
            });
            if let Some(owner) = owner {
                set_acl(
                    c,
                    log,
                    AclObject::Schema(name.to_string()),
                    Acl::owned_by(owner),
                );
            }
            Ok(true)
        })
    }

    /// DROP SCHEMA; with `cascade`, everything in it goes too, and the
    /// views elsewhere that read it.
    /// Drops the temporary schemas sessions of an earlier run left (the
    /// process stopped before they ended).
    pub fn drop_temporary_schemas(&self) -> Result<()> {
        let left: Vec<String> = self
            .catalog()
            .schemas
            .keys()
            .filter(|s| s.starts_with(super::sessions::TEMP_SCHEMA_PREFIX))
            .cloned()
            .collect();
        for schema in left {
            // Nothing waits for the drop to be durable: a crash before it
            // leaves the schema to the next start.
            let (_, _not_awaited) = self.drop_schema(None, &schema, true, true)?;
        }
        Ok(())
    }

    pub fn drop_schema(
        &self,
        txn: Option<&Transaction>,
        name: &str,
        if_exists: bool,
        cascade: bool,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            let Some(entry) = c.schemas.get(name) else {
                return if if_exists {
                    Ok(())
                } else {
                    Err(QuiverError::UndefinedSchema(name.to_string()))
                };
            };
            let contents: Vec<QualifiedName> = entry
                .relation_names()
                .map(|n| QualifiedName::new(name, n.clone()))
                .collect();
            if !cascade && !contents.is_empty() {
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "cannot drop schema {name} because other objects depend on it"
                )));
            }
            let mut dropped = Vec::new();
            for relation in &contents {
                dropped.extend(remove_with_dependents(c, relation));
            }
            if !dropped.is_empty() {
                log.effects.push(drop_effect(&dropped));
            }
            remove_schema(c, name);
            log.effects.push(Effect::DropSchema {
                name: name.to_string(),
                cascade,
            });
            Ok(())
        })
    }

    /// Adds a table. Returns false when a relation of that name existed and
    /// `if_not_exists` was given.
    /// `sequences` are created with it (for its SERIAL and identity
    /// columns), before it; its `foreign_keys` after it.
    pub fn create_table(
        &self,
        txn: Option<&Transaction>,
        name: &QualifiedName,
        table: Arc<Table>,
        (sequences, foreign_keys): (Vec<SequenceDef>, Vec<ForeignKeyDef>),
        if_not_exists: bool,
        owner: Option<&str>,
    ) -> Result<(bool, Ack)> {
        let definition = table.definition_commit(&name.schema)?;
        self.change_catalog(txn, |c, log| {
            let entry = c
                .schemas
                .get_mut(&name.schema)
                .ok_or_else(|| QuiverError::UndefinedSchema(name.schema.clone()))?;
            if entry.has_relation(&name.name) {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::DuplicateTable(name.name.clone()))
                };
            }
            for def in sequences {
                put_sequence(c, log, def, owner)?;
            }
            let entry = c.schemas.get_mut(&name.schema).expect("checked above");
            entry.tables.insert(name.name.clone(), table);
            log.append(definition);
            for def in foreign_keys {
                put_foreign_key(c, log, def)?;
            }
            if let Some(owner) = owner {
                set_acl(c, log, AclObject::relation(name), Acl::owned_by(owner));
            }
            Ok(true)
        })
    }

    /// ALTER TABLE ... ADD/DROP CONSTRAINT of foreign keys: drops `drop`
    /// (table, constraint name), then adds `add`. Rows already there are
    /// checked against an added key at COMMIT (the statement checks them
    /// first).
    pub fn alter_foreign_keys(
        &self,
        txn: Option<&Transaction>,
        drop: &[(QualifiedName, String)],
        add: Vec<ForeignKeyDef>,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            for (table, name) in drop {
                if !c.drop_foreign_key(table, name) {
                    return Err(QuiverError::UndefinedObject(format!(
                        "constraint \"{name}\" of relation \"{}\" does not exist",
                        table.name
                    )));
                }
                log.effects.push(Effect::DropForeignKey {
                    schema: table.schema.clone(),
                    table: table.name.clone(),
                    name: name.clone(),
                });
            }
            for def in add {
                put_foreign_key(c, log, def)?;
            }
            Ok(())
        })
    }

    /// COMMENT ON: sets or removes (None) a description.
    pub fn set_comment(
        &self,
        txn: Option<&Transaction>,
        target: CommentTarget,
        comment: Option<String>,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            if c.comment(&target) == comment.as_ref() {
                return Ok(());
            }
            log.effects.push(Effect::SetComment {
                target: target.clone(),
                comment: comment.clone(),
            });
            c.set_comment(target, comment);
            Ok(())
        })
    }

    /// A comment set or removed (recovery).
    pub fn restore_comment(&self, target: &CommentTarget, comment: &Option<String>) {
        self.restore(|c| c.set_comment(target.clone(), comment.clone()));
    }

    /// CREATE SEQUENCE. Returns false when a relation of that name existed
    /// and `if_not_exists` was given.
    pub fn create_sequence(
        &self,
        txn: Option<&Transaction>,
        def: SequenceDef,
        if_not_exists: bool,
        owner: Option<&str>,
    ) -> Result<(bool, Ack)> {
        self.change_catalog(txn, |c, log| {
            let entry = c
                .schemas
                .get(&def.schema)
                .ok_or_else(|| QuiverError::UndefinedSchema(def.schema.clone()))?;
            if entry.has_relation(&def.name) {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::DuplicateTable(def.name.clone()))
                };
            }
            put_sequence(c, log, def, owner)?;
            Ok(true)
        })
    }

    /// Adds a view, or replaces one (`or_replace`), keeping its owner and
    /// grants.
    pub fn create_view(
        &self,
        txn: Option<&Transaction>,
        name: &QualifiedName,
        view: View,
        or_replace: bool,
        owner: Option<&str>,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            let entry = c
                .schemas
                .get_mut(&name.schema)
                .ok_or_else(|| QuiverError::UndefinedSchema(name.schema.clone()))?;
            if entry.tables.contains_key(&name.name)
                || (entry.views.contains_key(&name.name) && !or_replace)
            {
                return Err(QuiverError::DuplicateTable(name.name.clone()));
            }
            log.effects.push(Effect::CreateView(view.def.clone()));
            let replaced = entry
                .views
                .insert(name.name.clone(), Arc::new(view))
                .is_some();
            if let (Some(owner), false) = (owner, replaced) {
                set_acl(c, log, AclObject::relation(name), Acl::owned_by(owner));
            }
            Ok(())
        })
    }

    /// Drops tables, views or sequences (`kind` says which the statement
    /// named), all or none: a missing name without `if_exists` drops
    /// nothing.
    pub fn drop_relations(
        &self,
        txn: Option<&Transaction>,
        names: &[QualifiedName],
        kind: RelationType,
        if_exists: bool,
        cascade: bool,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            if !cascade {
                for name in names {
                    let outside = c
                        .foreign_keys_to(name)
                        .into_iter()
                        .find(|fk| !names.contains(&fk.child()));
                    if let Some(fk) = outside {
                        return Err(QuiverError::DependentObjectsStillExist(format!(
                            "cannot drop table {} because other objects depend on it (constraint {} on table {}); use DROP ... CASCADE to drop the dependent objects too",
                            name.name, fk.name, fk.table
                        )));
                    }
                }
            }
            let mut dropped = Vec::new();
            for name in names {
                dropped.extend(drop_relation(c, name, kind, if_exists, cascade)?);
            }
            if !dropped.is_empty() {
                log.effects.push(drop_effect(&dropped));
            }
            Ok(())
        })
    }

    /// CREATE ROLE (`create`) or ALTER ROLE: stores the role whole.
    pub fn put_role(
        &self,
        txn: Option<&Transaction>,
        role: roles::Role,
        create: bool,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            match (c.roles.contains_key(&role.name), create) {
                (true, true) => {
                    return Err(QuiverError::DuplicateObject(format!(
                        "role \"{}\" already exists",
                        role.name
                    )))
                }
                (false, false) => return Err(QuiverError::UndefinedRole(role.name.clone())),
                _ => {}
            }
            log.effects.push(Effect::PutRole(role.clone()));
            c.roles.insert(role.name.clone(), role);
            Ok(())
        })
    }

    /// DROP ROLE: refused while the role owns objects; its grants go with it.
    pub fn drop_role(
        &self,
        txn: Option<&Transaction>,
        name: &str,
        if_exists: bool,
    ) -> Result<(bool, Ack)> {
        self.change_catalog(txn, |c, log| {
            if c.roles.remove(name).is_none() {
                return if if_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::UndefinedRole(name.to_string()))
                };
            }
            if let Some((object, _)) = c.acls.iter().find(|(_, acl)| acl.owner == name) {
                let what = match object {
                    AclObject::Schema(s) => format!("schema {s}"),
                    AclObject::Relation { schema, name } => format!("relation {schema}.{name}"),
                };
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "role \"{name}\" cannot be dropped because some objects depend on it: it owns {what}"
                )));
            }
            remove_role(c, name);
            log.effects.push(Effect::DropRole {
                name: name.to_string(),
            });
            Ok(true)
        })
    }

    /// GRANT, REVOKE, OWNER TO: replaces the access-control lists given.
    pub fn set_acls(
        &self,
        txn: Option<&Transaction>,
        acls: Vec<(AclObject, Acl)>,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            for (object, acl) in acls {
                set_acl(c, log, object, acl);
            }
            Ok(())
        })
    }
}

/// Recovery: logged effects applied as they happened. Nothing is logged
/// (no WAL is attached yet) and nothing is checked: the statement that
/// logged the effect already passed its checks.
impl Database {
    fn restore(&self, apply: impl FnOnce(&mut CatalogState)) {
        let _guard = self.ddl_lock.lock();
        let mut next = CatalogState::clone(&self.catalog.load());
        apply(&mut next);
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
    }

    pub fn restore_schema(&self, name: &str) {
        self.restore(|c| {
            c.schemas.entry(name.to_string()).or_default();
        });
    }

    /// The schema and everything still in it.
    pub fn restore_drop_schema(&self, name: &str) {
        self.restore(|c| {
            let contents: Vec<QualifiedName> = c
                .schemas
                .get(name)
                .map(|entry| {
                    entry
                        .relation_names()
                        .map(|n| QualifiedName::new(name, n.clone()))
                        .collect()
                })
                .unwrap_or_default();
            for relation in &contents {
                remove_with_dependents(c, relation);
            }
            remove_schema(c, name);
        });
    }

    /// Puts a table under `name`, replacing whatever relation had it.
    pub fn restore_table(&self, name: &QualifiedName, table: Arc<Table>) {
        self.restore(|c| {
            let entry = c.schemas.entry(name.schema.clone()).or_default();
            if entry.views.remove(&name.name).is_some() {
                tracing::warn!("recovery: table {name} replaces a view of the same name");
            }
            if let Some(old) = entry.tables.insert(name.name.clone(), table.clone()) {
                if old.id() != table.id() {
                    tracing::warn!("recovery: table {name} replaces an older table of that name");
                }
            }
        });
    }

    /// Puts a view under `name`, replacing whatever view had it.
    pub fn restore_view(&self, name: &QualifiedName, view: View) {
        self.restore(|c| {
            let entry = c.schemas.entry(name.schema.clone()).or_default();
            if entry.tables.remove(&name.name).is_some() {
                tracing::warn!("recovery: view {name} replaces a table of the same name");
            }
            entry.views.insert(name.name.clone(), Arc::new(view));
        });
    }

    /// Puts a sequence under `name` (replacing one of that name).
    pub fn restore_sequence(&self, def: &SequenceDef) {
        self.reserve_table_ids(def.id + 1);
        self.restore(|c| {
            let sequence = Arc::new(Sequence::new(def));
            sequence.mark_committed();
            c.schemas
                .entry(def.schema.clone())
                .or_default()
                .sequences
                .insert(def.name.clone(), sequence);
        });
    }

    /// Removes relations by name, with the views that read them when
    /// `cascade` (records written before drops listed their dependents).
    pub fn restore_drop_relations(&self, names: &[QualifiedName], cascade: bool) {
        self.restore(|c| {
            for name in names {
                if cascade {
                    remove_with_dependents(c, name);
                } else {
                    remove_relation(c, name);
                }
            }
        });
    }

    /// ALTER TABLE: the table with `old`'s id becomes `table` under
    /// `new_name`.
    pub fn restore_replaced_table(
        &self,
        name: &QualifiedName,
        old: &Arc<Table>,
        new_name: &QualifiedName,
        table: Arc<Table>,
    ) {
        self.restore(|c| move_table(c, name, old, new_name, table));
        old.retire();
    }

    /// Foreign keys added or dropped (recovery).
    pub fn restore_foreign_keys(&self, effects: &[Effect]) {
        self.restore(|c| apply_foreign_key_effects(c, effects));
    }

    /// A role created or altered (`Some`), or dropped.
    pub fn restore_role(&self, role: Option<roles::Role>, drop: &str) {
        self.restore(|c| match role {
            Some(role) => {
                c.roles.insert(role.name.clone(), role);
            }
            None => remove_role(c, drop),
        });
    }

    pub fn restore_acl(&self, object: AclObject, acl: Option<Acl>) {
        self.restore(|c| {
            match acl {
                Some(acl) => c.acls.insert(object, acl),
                None => c.acls.remove(&object),
            };
        });
    }
}

/// What DROP names: DROP TABLE, DROP VIEW or DROP SEQUENCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationType {
    Table,
    View,
    Sequence,
}

impl RelationType {
    fn name(self) -> &'static str {
        match self {
            RelationType::Table => "table",
            RelationType::View => "view",
            RelationType::Sequence => "sequence",
        }
    }
}

/// Adds a foreign key to the catalog (its tables and the referenced key
/// must exist) and logs it.
fn put_foreign_key(c: &mut CatalogState, log: &mut Commit, def: ForeignKeyDef) -> Result<()> {
    if c.foreign_keys_of(&def.child())
        .iter()
        .any(|fk| fk.name == def.name)
    {
        return Err(QuiverError::DuplicateObject(format!(
            "constraint \"{}\" for relation \"{}\" already exists",
            def.name, def.table
        )));
    }
    super::foreign::Resolved::new(c, &def)?;
    log.effects.push(Effect::AddForeignKey(def.clone()));
    c.add_foreign_key(def);
    Ok(())
}

/// The foreign keys a commit adds and drops, applied to a catalog (ALTER
/// TABLE logs them beside the table it rebuilds; recovery replays them).
pub(super) fn apply_foreign_key_effects(c: &mut CatalogState, effects: &[Effect]) {
    for effect in effects {
        match effect {
            Effect::AddForeignKey(def) => c.add_foreign_key(def.clone()),
            Effect::DropForeignKey {
                schema,
                table,
                name,
            } => {
                c.drop_foreign_key(&QualifiedName::new(schema, table), name);
            }
            _ => {}
        }
    }
}

/// Adds a sequence to the catalog and logs it.
fn put_sequence(
    c: &mut CatalogState,
    log: &mut Commit,
    def: SequenceDef,
    owner: Option<&str>,
) -> Result<()> {
    let entry = c
        .schemas
        .get_mut(&def.schema)
        .ok_or_else(|| QuiverError::UndefinedSchema(def.schema.clone()))?;
    if entry.has_relation(&def.name) {
        return Err(QuiverError::DuplicateTable(def.name.clone()));
    }
    let name = QualifiedName::new(&def.schema, &def.name);
    entry
        .sequences
        .insert(def.name.clone(), Arc::new(Sequence::new(&def)));
    log.effects.push(Effect::CreateSequence(def));
    if let Some(owner) = owner {
        set_acl(c, log, AclObject::relation(&name), Acl::owned_by(owner));
    }
    Ok(())
}

/// The sequences `commit` creates are now in the committed catalog
/// `catalog`: from now on they log their positions.
pub(super) fn mark_created_sequences(catalog: &CatalogState, commit: &Commit) {
    for effect in &commit.effects {
        if let Effect::CreateSequence(def) = effect {
            if let Some(sequence) = catalog.sequence(&QualifiedName::new(&def.schema, &def.name)) {
                sequence.mark_committed();
            }
        }
    }
}

/// A transaction's CREATE SEQUENCE records, at its commit, the state its
/// sequences reached inside it (it logged nothing before).
pub(super) fn record_sequence_states(catalog: &CatalogState, commit: &mut Commit) {
    for effect in &mut commit.effects {
        if let Effect::CreateSequence(def) = effect {
            let name = QualifiedName::new(&def.schema, &def.name);
            if let Some(sequence) = catalog.sequence(&name) {
                if sequence.id() == def.id {
                    (def.last_value, def.is_called) = sequence.log_current();
                }
            }
        }
    }
}

/// Sets an owner and grants and logs it.
fn set_acl(c: &mut CatalogState, log: &mut Commit, object: AclObject, acl: Acl) {
    log.effects.push(Effect::SetAcl {
        object: object.clone(),
        acl: Some(acl.clone()),
    });
    c.acls.insert(object, acl);
}

fn drop_effect(dropped: &[QualifiedName]) -> Effect {
    Effect::DropRelations {
        names: dropped
            .iter()
            .map(|n| (n.schema.clone(), n.name.clone()))
            .collect(),
        views: false,
        if_exists: true,
        cascade: false,
    }
}

/// ALTER TABLE's swap: `old` leaves `name`, `table` arrives at `new_name`
/// with `old`'s grants.
fn move_table(
    c: &mut CatalogState,
    name: &QualifiedName,
    old: &Arc<Table>,
    new_name: &QualifiedName,
    table: Arc<Table>,
) {
    if let Some(entry) = c.schemas.get_mut(&name.schema) {
        if entry
            .tables
            .get(&name.name)
            .is_some_and(|t| t.id() == old.id())
        {
            entry.tables.remove(&name.name);
        }
    }
    if let Some(acl) = c.acls.remove(&AclObject::relation(name)) {
        c.acls.insert(AclObject::relation(new_name), acl);
    }
    c.rename_in_foreign_keys(name, new_name);
    c.rename_comments(name, new_name);
    if new_name.schema == name.schema && new_name.name != name.name {
        for sequence in c.sequences_owned_by(name) {
            if let Some(s) = c.sequence(&sequence) {
                s.set_owner_table(&new_name.name);
            }
        }
    }
    c.schemas
        .entry(new_name.schema.clone())
        .or_default()
        .tables
        .insert(new_name.name.clone(), table);
    c.forget_dropped_index_comments();
}

/// ALTER TABLE may replace `old` when it is still the table named `name`
/// and `new_name` is free.
fn check_replaceable(
    c: &CatalogState,
    name: &QualifiedName,
    old: &Arc<Table>,
    new_name: &QualifiedName,
) -> Result<()> {
    match c.table(name) {
        Some(t) if Arc::ptr_eq(t, old) => {}
        _ => {
            return Err(QuiverError::SerializationFailure(format!(
                "could not serialize access due to a concurrent change of \"{}\"",
                name.name
            )))
        }
    }
    if new_name != name
        && c.schemas
            .get(&new_name.schema)
            .is_some_and(|s| s.has_relation(&new_name.name))
    {
        return Err(QuiverError::DuplicateTable(new_name.name.clone()));
    }
    Ok(())
}

fn remove_schema(c: &mut CatalogState, name: &str) {
    c.schemas.remove(name);
    c.foreign_keys
        .retain(|fk| fk.schema != name && fk.ref_schema != name);
    c.forget_schema_comments(name);
    c.acls.retain(|object, _| match object {
        AclObject::Schema(s) => s != name,
        AclObject::Relation { schema, .. } => schema != name,
    });
}

fn remove_role(c: &mut CatalogState, name: &str) {
    c.roles.remove(name);
    for acl in c.acls.values_mut() {
        acl.grants.remove(name);
    }
}

/// Removes one relation (table or view) and its grants, if it exists.
fn remove_relation(c: &mut CatalogState, name: &QualifiedName) -> bool {
    let owned = c.sequences_owned_by(name);
    let Some(entry) = c.schemas.get_mut(&name.schema) else {
        return false;
    };
    let table = entry.tables.remove(&name.name).is_some();
    let removed = table
        || entry.views.remove(&name.name).is_some()
        || entry.sequences.remove(&name.name).is_some();
    if removed {
        c.forget_relation(name);
    }
    if removed {
        c.forget_comments(name);
        c.forget_dropped_index_comments();
    }
    if table {
        c.forget_foreign_keys(name);
        // Its SERIAL and identity sequences go with it.
        for sequence in owned {
            if let Some(entry) = c.schemas.get_mut(&sequence.schema) {
                entry.sequences.remove(&sequence.name);
            }
            c.forget_relation(&sequence);
        }
    }
    removed
}

/// Removes a relation and, transitively, the views that read it; returns
/// what was removed, dependents first.
fn remove_with_dependents(c: &mut CatalogState, name: &QualifiedName) -> Vec<QualifiedName> {
    let mut removed = Vec::new();
    for dependent in c.views_depending_on(name) {
        removed.extend(remove_with_dependents(c, &dependent));
    }
    if remove_relation(c, name) {
        removed.push(name.clone());
    }
    removed
}

/// DROP TABLE / DROP VIEW / DROP SEQUENCE of one name: what it removed
/// (nothing when the name is missing and `if_exists`).
fn drop_relation(
    c: &mut CatalogState,
    name: &QualifiedName,
    want: RelationType,
    if_exists: bool,
    cascade: bool,
) -> Result<Vec<QualifiedName>> {
    let kind = want.name();
    let found = c.schemas.get(&name.schema).and_then(|entry| {
        if entry.tables.contains_key(&name.name) {
            Some(RelationType::Table)
        } else if let Some(view) = entry.views.get(&name.name) {
            // An external table is kept as a view; DROP TABLE drops it too.
            Some(match (view.is_external(), want) {
                (true, RelationType::Table) => RelationType::Table,
                _ => RelationType::View,
            })
        } else if entry.sequences.contains_key(&name.name) {
            Some(RelationType::Sequence)
        } else {
            None
        }
    });
    let Some(found) = found else {
        return if if_exists {
            Ok(Vec::new())
        } else {
            Err(QuiverError::UndefinedTable(name.name.clone()))
        };
    };
    if found != want {
        return Err(QuiverError::WrongObjectType(format!(
            "\"{}\" is not a {kind}",
            name.name
        )));
    }
    let dependents = c.views_depending_on(name);
    if !dependents.is_empty() && !cascade {
        return Err(QuiverError::DependentObjectsStillExist(format!(
            "cannot drop {kind} {} because other objects depend on it (view {}); use DROP ... CASCADE to drop the dependent objects too",
            name.name, dependents[0].name
        )));
    }
    if want == RelationType::Sequence && !cascade {
        if let Some((table, column)) = column_defaulting_to(c, name) {
            return Err(QuiverError::DependentObjectsStillExist(format!(
                "cannot drop sequence {} because other objects depend on it (default value for column {column} of table {table}); use DROP ... CASCADE to drop the dependent objects too",
                name.name
            )));
        }
    }
    Ok(remove_with_dependents(c, name))
}

/// A column whose DEFAULT takes values from the sequence `name`.
fn column_defaulting_to(c: &CatalogState, name: &QualifiedName) -> Option<(String, String)> {
    let quoted = format!("'{}'", name.name);
    let qualified = format!("'{}.{}'", name.schema, name.name);
    c.schemas
        .values()
        .flat_map(|e| e.tables.iter())
        .find_map(|(table, t)| {
            t.defaults_sql().iter().find_map(|(column, sql)| {
                (sql.contains("nextval(") && (sql.contains(&quoted) || sql.contains(&qualified)))
                    .then(|| (table.clone(), column.clone()))
            })
        })
}
