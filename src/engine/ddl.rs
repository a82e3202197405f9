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
use super::roles::{self, Acl, AclObject};
use super::table::{Table, TableVersion};
use super::txn::{DdlState, Transaction};
use super::{Ack, Database};
use crate::engine::commit::{Commit, Effect};
use crate::error::{QuiverError, Result};

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
                let state = ddl.get_or_insert_with(|| DdlState {
                    catalog: base,
                    catalog_version: version,
                    commit: Commit::new(),
                });
                state.catalog = Arc::new(next);
                state.commit.append(effects);
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
        let ack = self.log(&effects, true)?;
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok((out, ack))
    }

    /// ALTER TABLE: replaces `old` (named `name`) with the table `build`
    /// makes from its current rows, under `new_name`. No commit runs while
    /// the rows are rebuilt; `build` returns the new table and the commit
    /// to log. Views that read the table are re-planned by the caller.
    pub fn replace_table(
        &self,
        name: &QualifiedName,
        old: &Arc<Table>,
        new_name: &QualifiedName,
        build: impl FnOnce(&TableVersion) -> Result<(Arc<Table>, Commit)>,
    ) -> Result<Ack> {
        self.check_writable()?;
        let _gate = self.commit_gate.read();
        let _guard = self.ddl_lock.lock();
        let _order = self.commit_lock.lock();
        let current = self.catalog.load_full();
        match current.table(name) {
            Some(t) if Arc::ptr_eq(t, old) => {}
            _ => {
                return Err(QuiverError::SerializationFailure(format!(
                    "could not serialize access due to a concurrent change of \"{}\"",
                    name.name
                )))
            }
        }
        if new_name != name
            && current
                .schemas
                .get(&new_name.schema)
                .is_some_and(|s| s.has_relation(&new_name.name))
        {
            return Err(QuiverError::DuplicateTable(new_name.name.clone()));
        }
        let (table, commit) = build(&old.snapshot())?;
        let ack = self.log(&commit, true)?;
        let mut next = CatalogState::clone(&current);
        move_table(&mut next, name, old, new_name, table);
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok(ack)
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
                .tables
                .keys()
                .chain(entry.views.keys())
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
    pub fn create_table(
        &self,
        txn: Option<&Transaction>,
        name: &QualifiedName,
        table: Arc<Table>,
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
            entry.tables.insert(name.name.clone(), table);
            log.append(definition);
            if let Some(owner) = owner {
                set_acl(c, log, AclObject::relation(name), Acl::owned_by(owner));
            }
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

    /// Drops tables or views (`want_view` says which the statement named),
    /// all or none: a missing name without `if_exists` drops nothing.
    pub fn drop_relations(
        &self,
        txn: Option<&Transaction>,
        names: &[QualifiedName],
        want_view: bool,
        if_exists: bool,
        cascade: bool,
    ) -> Result<((), Ack)> {
        self.change_catalog(txn, |c, log| {
            let mut dropped = Vec::new();
            for name in names {
                dropped.extend(drop_relation(c, name, want_view, if_exists, cascade)?);
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
                        .tables
                        .keys()
                        .chain(entry.views.keys())
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
    c.schemas
        .entry(new_name.schema.clone())
        .or_default()
        .tables
        .insert(new_name.name.clone(), table);
    old.retire();
}

fn remove_schema(c: &mut CatalogState, name: &str) {
    c.schemas.remove(name);
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
    let Some(entry) = c.schemas.get_mut(&name.schema) else {
        return false;
    };
    let removed =
        entry.tables.remove(&name.name).is_some() || entry.views.remove(&name.name).is_some();
    if removed {
        c.forget_relation(name);
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

/// DROP TABLE / DROP VIEW of one name: what it removed (nothing when the
/// name is missing and `if_exists`).
fn drop_relation(
    c: &mut CatalogState,
    name: &QualifiedName,
    want_view: bool,
    if_exists: bool,
    cascade: bool,
) -> Result<Vec<QualifiedName>> {
    let kind = if want_view { "view" } else { "table" };
    let (is_table, is_view, is_external) = match c.schemas.get(&name.schema) {
        None => (false, false, false),
        Some(entry) => (
            entry.tables.contains_key(&name.name),
            entry.views.contains_key(&name.name),
            entry.views.get(&name.name).is_some_and(|v| v.is_external()),
        ),
    };
    // An external table is kept as a view; DROP TABLE drops it too.
    if (want_view && is_table) || (!want_view && is_view && !is_external) {
        return Err(QuiverError::WrongObjectType(format!(
            "\"{}\" is not a {kind}",
            name.name
        )));
    }
    if !is_table && !is_view {
        return if if_exists {
            Ok(Vec::new())
        } else {
            Err(QuiverError::UndefinedTable(name.name.clone()))
        };
    }
    let dependents = c.views_depending_on(name);
    if !dependents.is_empty() && !cascade {
        return Err(QuiverError::DependentObjectsStillExist(format!(
            "cannot drop {kind} {} because other objects depend on it (view {}); use DROP ... CASCADE to drop the dependent objects too",
            name.name, dependents[0].name
        )));
    }
    Ok(remove_with_dependents(c, name))
}
