//! The database engine: the catalog of in-memory tables and the operations
//! that change it. Nothing here knows about the wire protocol.

pub mod catalog;
pub mod table;
pub mod types;
pub mod unique;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

pub use catalog::{CatalogState, QualifiedName, View};
pub use table::{Table, TableVersion};

use crate::error::{QuiverError, Result};

/// Name of the one DataFusion catalog that holds every schema.
pub const CATALOG_NAME: &str = "quiver";
/// The schema that exists in every database and is first on the search path.
pub const DEFAULT_SCHEMA: &str = "public";

/// A database: one catalog shared by every session.
#[derive(Debug)]
pub struct Database {
    catalog: ArcSwap<CatalogState>,
    /// Serialises catalog changes; readers load the current state lock-free.
    ddl_lock: Mutex<()>,
    /// Increases with every catalog change, so prepared plans know to re-plan.
    catalog_version: AtomicU64,
}

impl Database {
    /// An empty database with the `public` schema.
    pub fn new() -> Arc<Database> {
        let mut state = CatalogState::default();
        state
            .schemas
            .insert(DEFAULT_SCHEMA.to_string(), Default::default());
        Arc::new(Database {
            catalog: ArcSwap::from_pointee(state),
            ddl_lock: Mutex::new(()),
            catalog_version: AtomicU64::new(1),
        })
    }

    /// The catalog as it is now.
    pub fn catalog(&self) -> Arc<CatalogState> {
        self.catalog.load_full()
    }

    pub fn catalog_version(&self) -> u64 {
        self.catalog_version.load(Ordering::Acquire)
    }

    /// Applies `change` to a copy of the catalog and installs the copy, so a
    /// failed change leaves the catalog untouched.
    fn change_catalog<T>(&self, change: impl FnOnce(&mut CatalogState) -> Result<T>) -> Result<T> {
        let _guard = self.ddl_lock.lock();
        let mut next = CatalogState::clone(&self.catalog.load());
        let out = change(&mut next)?;
        self.catalog.store(Arc::new(next));
        self.catalog_version.fetch_add(1, Ordering::AcqRel);
        Ok(out)
    }

    /// Returns false when the schema existed and `if_not_exists` was given.
    pub fn create_schema(&self, name: &str, if_not_exists: bool) -> Result<bool> {
        self.change_catalog(|c| {
            if c.schemas.contains_key(name) {
                return if if_not_exists {
                    Ok(false)
                } else {
                    Err(QuiverError::DuplicateSchema(name.to_string()))
                };
            }
            c.schemas.insert(name.to_string(), Default::default());
            Ok(true)
        })
    }

    pub fn drop_schema(&self, name: &str, if_exists: bool, cascade: bool) -> Result<()> {
        self.change_catalog(|c| {
            let Some(entry) = c.schemas.get(name) else {
                return if if_exists {
                    Ok(())
                } else {
                    Err(QuiverError::UndefinedSchema(name.to_string()))
                };
            };
            if !cascade && (!entry.tables.is_empty() || !entry.views.is_empty()) {
                return Err(QuiverError::DependentObjectsStillExist(format!(
                    "cannot drop schema {name} because other objects depend on it"
                )));
            }
            c.schemas.remove(name);
            Ok(())
        })
    }

    /// Adds a table. Returns false when a relation of that name existed and
    /// `if_not_exists` was given.
    pub fn create_table(
        &self,
        name: &QualifiedName,
        table: Arc<Table>,
        if_not_exists: bool,
    ) -> Result<bool> {
        self.change_catalog(|c| {
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
            Ok(true)
        })
    }

    pub fn create_view(&self, name: &QualifiedName, view: View, or_replace: bool) -> Result<()> {
        self.change_catalog(|c| {
            let entry = c
                .schemas
                .get_mut(&name.schema)
                .ok_or_else(|| QuiverError::UndefinedSchema(name.schema.clone()))?;
            if entry.tables.contains_key(&name.name)
                || (entry.views.contains_key(&name.name) && !or_replace)
            {
                return Err(QuiverError::DuplicateTable(name.name.clone()));
            }
            entry.views.insert(name.name.clone(), Arc::new(view));
            Ok(())
        })
    }

    /// Drops tables or views (`want_view` says which the statement named),
    /// all or none: a missing name without `if_exists` drops nothing.
    pub fn drop_relations(
        &self,
        names: &[QualifiedName],
        want_view: bool,
        if_exists: bool,
        cascade: bool,
    ) -> Result<()> {
        self.change_catalog(|c| {
            for name in names {
                drop_relation(c, name, want_view, if_exists, cascade)?;
            }
            Ok(())
        })
    }
}

fn drop_relation(
    c: &mut CatalogState,
    name: &QualifiedName,
    want_view: bool,
    if_exists: bool,
    cascade: bool,
) -> Result<()> {
    let kind = if want_view { "view" } else { "table" };
    let (is_table, is_view) = match c.schemas.get(&name.schema) {
        None => (false, false),
        Some(entry) => (
            entry.tables.contains_key(&name.name),
            entry.views.contains_key(&name.name),
        ),
    };
    if (want_view && is_table) || (!want_view && is_view) {
        return Err(QuiverError::WrongObjectType(format!(
            "\"{}\" is not a {kind}",
            name.name
        )));
    }
    if !is_table && !is_view {
        return if if_exists {
            Ok(())
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
    // CASCADE: drop the views that depend on it, transitively.
    let mut doomed = vec![name.clone()];
    while let Some(target) = doomed.pop() {
        doomed.extend(c.views_depending_on(&target));
        if let Some(entry) = c.schemas.get_mut(&target.schema) {
            entry.tables.remove(&target.name);
            entry.views.remove(&target.name);
        }
    }
    Ok(())
}
