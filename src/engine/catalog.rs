//! The catalog: schemas, their tables and views, as one immutable value
//! swapped whole on DDL, plus the DataFusion providers that resolve names
//! against it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, SchemaProvider, TableProvider};
use datafusion::datasource::ViewTable;
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::LogicalPlan;

use super::roles::{Acl, AclObject, Role};
use super::sequence::Sequence;
use super::table::Table;
use super::txn::TxnSlot;
use super::Database;
use crate::engine::commit::ViewDef;

/// A schema-qualified relation name, already normalised (unquoted
/// identifiers lower-cased, as Postgres does).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QualifiedName {
    pub schema: String,
    pub name: String,
}

impl QualifiedName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        QualifiedName {
            schema: schema.into(),
            name: name.into(),
        }
    }
}

impl std::fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// A view: its defining query, planned once at creation.
#[derive(Debug)]
pub struct View {
    /// The definition as logged and checkpointed.
    pub def: ViewDef,
    /// Creation order: views are recreated in this order on recovery.
    pub seq: u64,
    pub plan: LogicalPlan,
    /// The columns as a query of the view returns them (the plan's
    /// schema before analysis types an integer literal as a bigint).
    pub schema: datafusion::arrow::datatypes::SchemaRef,
    /// Relations the view reads; they cannot be dropped without CASCADE.
    pub depends_on: Vec<QualifiedName>,
    /// Why the view cannot be read, when its definition no longer plans
    /// (recovery keeps it, so that nothing committed is lost; a query of
    /// it fails saying why, and CREATE OR REPLACE or DROP mend it).
    pub broken: Option<String>,
    /// For a view INSERT, UPDATE and DELETE can change (one relation, no
    /// grouping, ...): which of its columns can be assigned.
    pub updatable_columns: Option<Vec<bool>>,
}

impl View {
    /// A view whose definition no longer plans, kept as it was logged.
    pub fn broken(def: ViewDef, seq: u64, depends_on: Vec<QualifiedName>, reason: String) -> View {
        View {
            def,
            seq,
            plan: LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
                produce_one_row: false,
                schema: Arc::new(datafusion::common::DFSchema::empty()),
            }),
            schema: Arc::new(datafusion::arrow::datatypes::Schema::empty()),
            depends_on,
            broken: Some(reason),
            updatable_columns: None,
        }
    }

    /// Whether this is an external table (CREATE EXTERNAL TABLE): a view
    /// over files, which records their schema.
    pub fn is_external(&self) -> bool {
        self.def.file_schema.is_some()
    }
}

#[derive(Debug, Clone, Default)]
pub struct SchemaEntry {
    pub tables: BTreeMap<String, Arc<Table>>,
    pub views: BTreeMap<String, Arc<View>>,
    pub sequences: BTreeMap<String, Arc<Sequence>>,
}

impl SchemaEntry {
    /// Whether a relation of any kind has this name: a table, view,
    /// sequence, or index (they share one namespace, as in Postgres).
    pub fn has_relation(&self, name: &str) -> bool {
        self.tables.contains_key(name)
            || self.views.contains_key(name)
            || self.sequences.contains_key(name)
            || self.index_table(name).is_some()
    }

    /// The table an index of this name belongs to: a key constraint's
    /// index or one CREATE INDEX made.
    pub fn index_table(&self, index: &str) -> Option<(&String, &Arc<Table>)> {
        self.tables
            .iter()
            .find(|(_, table)| table.index_names().iter().any(|n| n == index))
    }

    /// The names of every relation in the schema: tables, views and
    /// sequences.
    pub fn relation_names(&self) -> impl Iterator<Item = &String> {
        self.tables
            .keys()
            .chain(self.views.keys())
            .chain(self.sequences.keys())
    }
}

/// One consistent state of the whole catalog.
#[derive(Debug, Clone, Default)]
pub struct CatalogState {
    pub schemas: BTreeMap<String, SchemaEntry>,
    pub roles: BTreeMap<String, Role>,
    /// Owners and grants of schemas and relations. An object without an
    /// entry belongs to no role: only superusers may use it.
    pub acls: BTreeMap<AclObject, Acl>,
    /// FOREIGN KEY constraints, in creation order.
    pub foreign_keys: Vec<Arc<super::foreign::ForeignKeyDef>>,
    /// COMMENT ON descriptions.
    pub comments: BTreeMap<super::comments::CommentTarget, String>,
}

impl CatalogState {
    pub fn table(&self, name: &QualifiedName) -> Option<&Arc<Table>> {
        self.schemas.get(&name.schema)?.tables.get(&name.name)
    }

    pub fn view(&self, name: &QualifiedName) -> Option<&Arc<View>> {
        self.schemas.get(&name.schema)?.views.get(&name.name)
    }

    pub fn sequence(&self, name: &QualifiedName) -> Option<&Arc<Sequence>> {
        self.schemas.get(&name.schema)?.sequences.get(&name.name)
    }

    /// Every sequence, with its name.
    pub fn sequences(&self) -> impl Iterator<Item = (QualifiedName, &Arc<Sequence>)> {
        self.schemas.iter().flat_map(|(schema, entry)| {
            entry
                .sequences
                .iter()
                .map(move |(name, s)| (QualifiedName::new(schema, name), s))
        })
    }

    /// The sequence with this id (recovery, which logs sequences by id).
    pub fn sequence_by_id(&self, id: u64) -> Option<(QualifiedName, &Arc<Sequence>)> {
        self.sequences().find(|(_, s)| s.id() == id)
    }

    /// The sequences owned by a table (its SERIAL and identity columns).
    pub fn sequences_owned_by(&self, table: &QualifiedName) -> Vec<QualifiedName> {
        let Some(entry) = self.schemas.get(&table.schema) else {
            return Vec::new();
        };
        entry
            .sequences
            .iter()
            .filter(|(_, s)| s.owned_by().is_some_and(|(t, _)| t == table.name))
            .map(|(name, _)| QualifiedName::new(&table.schema, name))
            .collect()
    }

    /// Whether any role has a password: then every login needs one.
    pub fn has_passwords(&self) -> bool {
        self.roles.values().any(|r| r.password.is_some())
    }

    pub fn acl(&self, object: &AclObject) -> Option<&Acl> {
        self.acls.get(object)
    }

    /// Forgets the owner and grants of a relation that is gone.
    pub fn forget_relation(&mut self, name: &QualifiedName) {
        self.acls.remove(&AclObject::relation(name));
    }

    /// The views that read `target`, directly or through other views, in
    /// creation order (each after the views it reads).
    pub fn views_depending_on_transitively(&self, target: &QualifiedName) -> Vec<QualifiedName> {
        let mut found: Vec<QualifiedName> = Vec::new();
        let mut queue = vec![target.clone()];
        while let Some(next) = queue.pop() {
            for dependent in self.views_depending_on(&next) {
                if !found.contains(&dependent) {
                    found.push(dependent.clone());
                    queue.push(dependent);
                }
            }
        }
        found.sort_by_key(|name| self.view(name).map_or(0, |v| v.seq));
        found
    }

    /// Views that read `target`, by name.
    pub fn views_depending_on(&self, target: &QualifiedName) -> Vec<QualifiedName> {
        let mut found = Vec::new();
        for (schema, entry) in &self.schemas {
            for (name, view) in &entry.views {
                if view.depends_on.contains(target) {
                    found.push(QualifiedName::new(schema.clone(), name.clone()));
                }
            }
        }
        found
    }
}

/// DataFusion's view of the database: one catalog whose schemas are ours.
#[derive(Debug)]
pub struct QuiverCatalogProvider {
    db: Arc<Database>,
    /// The session's transaction: DDL inside it is visible here first.
    slot: Arc<TxnSlot>,
}

impl QuiverCatalogProvider {
    pub fn new(db: Arc<Database>, slot: Arc<TxnSlot>) -> Self {
        QuiverCatalogProvider { db, slot }
    }
}

/// The catalog a session sees: its transaction's, when that has run DDL,
/// else the database's.
pub fn visible_catalog(db: &Database, slot: &TxnSlot) -> Arc<CatalogState> {
    slot.get()
        .and_then(|txn| txn.catalog())
        .unwrap_or_else(|| db.catalog())
}

impl CatalogProvider for QuiverCatalogProvider {
    fn schema_names(&self) -> Vec<String> {
        visible_catalog(&self.db, &self.slot)
            .schemas
            .keys()
            .cloned()
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        visible_catalog(&self.db, &self.slot).schemas.get(name)?;
        Some(Arc::new(QuiverSchemaProvider {
            db: self.db.clone(),
            slot: self.slot.clone(),
            schema: name.to_string(),
        }))
    }
}

/// Resolves relation names in one schema against the current catalog.
#[derive(Debug)]
pub struct QuiverSchemaProvider {
    db: Arc<Database>,
    slot: Arc<TxnSlot>,
    schema: String,
}

#[async_trait]
impl SchemaProvider for QuiverSchemaProvider {
    fn table_names(&self) -> Vec<String> {
        let catalog = visible_catalog(&self.db, &self.slot);
        let Some(entry) = catalog.schemas.get(&self.schema) else {
            return Vec::new();
        };
        entry.relation_names().cloned().collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let catalog = visible_catalog(&self.db, &self.slot);
        let Some(entry) = catalog.schemas.get(&self.schema) else {
            return Ok(None);
        };
        if let Some(table) = entry.tables.get(name) {
            return Ok(Some(table.clone() as Arc<dyn TableProvider>));
        }
        if let Some(view) = entry.views.get(name) {
            if let Some(reason) = &view.broken {
                return Err(datafusion::error::DataFusionError::External(Box::new(
                    crate::error::QuiverError::BrokenObject(format!(
                        "view \"{name}\" cannot be read: {reason}; CREATE OR REPLACE VIEW or DROP VIEW mends it"
                    )),
                )));
            }
            let view = ViewTable::new(view.plan.clone(), Some(view.def.query.clone()));
            return Ok(Some(Arc::new(view)));
        }
        if let Some(sequence) = entry.sequences.get(name) {
            return Ok(Some(Arc::new(sequence.as_table()?)));
        }
        Ok(None)
    }

    fn table_exist(&self, name: &str) -> bool {
        visible_catalog(&self.db, &self.slot)
            .schemas
            .get(&self.schema)
            .is_some_and(|entry| entry.has_relation(name))
    }
}
