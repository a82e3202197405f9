//! FOREIGN KEY constraints: definitions kept in the catalog (so they follow
//! renames and drops of either table), and their enforcement.
//!
//! A change to a table runs through [`Database::apply`]: new rows of a
//! referencing ("child") table must find their key in the referenced
//! ("parent") table, probed in batches against the parent's unique key
//! index; keys a parent change removes must not be referenced any more,
//! or the constraint's action (CASCADE, SET NULL, SET DEFAULT) changes the
//! referencing rows in the same transaction. COMMIT checks again, under
//! the commit lock, against what other transactions committed meanwhile
//! (and checks DEFERRABLE INITIALLY DEFERRED constraints for the first
//! time).

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::{cast, filter_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::util::display::array_value_to_string;
use serde::{Deserialize, Serialize};

use super::catalog::{CatalogState, QualifiedName};
use super::table::{Change, KeyDelta, Table, TableVersion};
use super::txn::Transaction;
use super::Database;
use crate::error::{QuiverError, Result};

/// What happens to referencing rows when their key goes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum FkAction {
    #[default]
    NoAction,
    Restrict,
    Cascade,
    SetNull,
    SetDefault,
}

impl FkAction {
    /// The letter `pg_constraint.confdeltype` uses.
    pub fn code(self) -> &'static str {
        match self {
            FkAction::NoAction => "a",
            FkAction::Restrict => "r",
            FkAction::Cascade => "c",
            FkAction::SetNull => "n",
            FkAction::SetDefault => "d",
        }
    }

    /// As SQL (`information_schema.referential_constraints`).
    pub fn sql(self) -> &'static str {
        match self {
            FkAction::NoAction => "NO ACTION",
            FkAction::Restrict => "RESTRICT",
            FkAction::Cascade => "CASCADE",
            FkAction::SetNull => "SET NULL",
            FkAction::SetDefault => "SET DEFAULT",
        }
    }
}

/// A foreign key as declared and logged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ForeignKeyDef {
    pub name: String,
    /// The referencing table and its columns.
    pub schema: String,
    pub table: String,
    pub columns: Vec<String>,
    /// The referenced table and its columns (a key of it), in the order
    /// matching `columns`.
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_delete: FkAction,
    pub on_update: FkAction,
    pub deferrable: bool,
    pub initially_deferred: bool,
}

impl ForeignKeyDef {
    pub fn child(&self) -> QualifiedName {
        QualifiedName::new(&self.schema, &self.table)
    }

    pub fn parent(&self) -> QualifiedName {
        QualifiedName::new(&self.ref_schema, &self.ref_table)
    }

    /// Whether `table` is either side of the key.
    pub fn touches(&self, table: &QualifiedName) -> bool {
        (self.schema == table.schema && self.table == table.name)
            || (self.ref_schema == table.schema && self.ref_table == table.name)
    }

    /// `pg_get_constraintdef()`.
    pub fn definition(&self, quote: impl Fn(&str) -> String) -> String {
        let list = |names: &[String]| {
            names
                .iter()
                .map(|n| quote(n))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut out = format!(
            "FOREIGN KEY ({}) REFERENCES {}({})",
            list(&self.columns),
            if self.ref_schema == self.schema {
                quote(&self.ref_table)
            } else {
                format!("{}.{}", quote(&self.ref_schema), quote(&self.ref_table))
            },
            list(&self.ref_columns)
        );
        if self.on_update != FkAction::NoAction {
            out.push_str(&format!(" ON UPDATE {}", self.on_update.sql()));
        }
        if self.on_delete != FkAction::NoAction {
            out.push_str(&format!(" ON DELETE {}", self.on_delete.sql()));
        }
        if self.deferrable {
            out.push_str(" DEFERRABLE");
            if self.initially_deferred {
                out.push_str(" INITIALLY DEFERRED");
            }
        }
        out
    }
}

impl CatalogState {
    /// The foreign keys of `table` (it references others).
    pub fn foreign_keys_of(&self, table: &QualifiedName) -> Vec<Arc<ForeignKeyDef>> {
        self.foreign_keys
            .iter()
            .filter(|fk| fk.schema == table.schema && fk.table == table.name)
            .cloned()
            .collect()
    }

    /// The foreign keys that reference `table`.
    pub fn foreign_keys_to(&self, table: &QualifiedName) -> Vec<Arc<ForeignKeyDef>> {
        self.foreign_keys
            .iter()
            .filter(|fk| fk.ref_schema == table.schema && fk.ref_table == table.name)
            .cloned()
            .collect()
    }

    /// Forgets every foreign key from or to `table` (it was dropped).
    pub(super) fn forget_foreign_keys(&mut self, table: &QualifiedName) {
        self.foreign_keys.retain(|fk| !fk.touches(table));
    }

    /// `name` is now `new_name`: foreign keys follow it on both sides.
    pub(super) fn rename_in_foreign_keys(
        &mut self,
        name: &QualifiedName,
        new_name: &QualifiedName,
    ) {
        if name == new_name {
            return;
        }
        for fk in self.foreign_keys.iter_mut() {
            if fk.schema == name.schema && fk.table == name.name {
                let fk = Arc::make_mut(fk);
                fk.schema.clone_from(&new_name.schema);
                fk.table.clone_from(&new_name.name);
            }
            if fk.ref_schema == name.schema && fk.ref_table == name.name {
                let fk = Arc::make_mut(fk);
                fk.ref_schema.clone_from(&new_name.schema);
                fk.ref_table.clone_from(&new_name.name);
            }
        }
    }

    pub(super) fn add_foreign_key(&mut self, def: ForeignKeyDef) {
        self.drop_foreign_key(&def.child(), &def.name);
        self.foreign_keys.push(Arc::new(def));
    }

    pub(super) fn drop_foreign_key(&mut self, table: &QualifiedName, name: &str) -> bool {
        let before = self.foreign_keys.len();
        self.foreign_keys
            .retain(|fk| !(fk.schema == table.schema && fk.table == table.name && fk.name == name));
        before != self.foreign_keys.len()
    }

    /// The name `table` has here, if it is here.
    pub fn name_of(&self, table: &Table) -> Option<QualifiedName> {
        self.schemas.iter().find_map(|(schema, entry)| {
            entry
                .tables
                .get(table.name())
                .filter(|t| std::ptr::eq(t.as_ref(), table))
                .map(|_| QualifiedName::new(schema, table.name()))
        })
    }

    /// Whether any foreign key involves `table`.
    pub fn has_foreign_keys(&self, table: &QualifiedName) -> bool {
        self.foreign_keys.iter().any(|fk| fk.touches(table))
    }
}

/// A foreign key resolved against its two tables: where the key columns
/// are, and the parent's unique index that holds the keys.
pub struct Resolved<'a> {
    pub def: &'a ForeignKeyDef,
    pub child: Arc<Table>,
    pub parent: Arc<Table>,
    /// The parent's unique constraint whose columns are the referenced ones.
    pub index: usize,
    /// For each column of that constraint, in its order: the child column.
    child_columns: Vec<usize>,
    /// The same, for the parent.
    parent_columns: Vec<usize>,
}

impl<'a> Resolved<'a> {
    pub fn new(catalog: &CatalogState, def: &'a ForeignKeyDef) -> Result<Resolved<'a>> {
        let missing = |name: &QualifiedName| QuiverError::UndefinedTable(name.name.clone());
        let child = catalog
            .table(&def.child())
            .cloned()
            .ok_or_else(|| missing(&def.child()))?;
        let parent = catalog
            .table(&def.parent())
            .cloned()
            .ok_or_else(|| missing(&def.parent()))?;
        let (index, constraint) = parent_key(&parent, &def.ref_columns).ok_or_else(|| {
            QuiverError::InvalidForeignKey(format!(
                "there is no unique constraint matching given keys for referenced table \"{}\"",
                def.ref_table
            ))
        })?;
        let parent_schema = parent.schema_ref();
        let child_schema = child.schema_ref();
        let mut child_columns = Vec::with_capacity(constraint.len());
        for &p in &constraint {
            let name = parent_schema.field(p).name();
            let at = def
                .ref_columns
                .iter()
                .position(|c| c == name)
                .expect("the constraint's columns are the referenced ones");
            let column = &def.columns[at];
            child_columns.push(
                child_schema
                    .index_of(column)
                    .map_err(|_| QuiverError::UndefinedColumn(column.clone()))?,
            );
        }
        Ok(Resolved {
            def,
            child,
            parent,
            index,
            child_columns,
            parent_columns: constraint,
        })
    }

    /// The key columns of child rows, in the parent constraint's order and
    /// types.
    fn child_keys(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>> {
        let parent_schema = self.parent.schema_ref();
        self.child_columns
            .iter()
            .zip(&self.parent_columns)
            .map(|(&c, &p)| Ok(cast(batch.column(c), parent_schema.field(p).data_type())?))
            .collect()
    }

    fn parent_keys(&self, batch: &RecordBatch) -> Vec<ArrayRef> {
        self.parent_columns
            .iter()
            .map(|&p| batch.column(p).clone())
            .collect()
    }

    /// The first child row (batch, row) whose key the parent lacks;
    /// `present` says which keys the parent has.
    fn first_orphan(
        &self,
        rows: &[RecordBatch],
        present: impl Fn(&Table, usize, &[ArrayRef]) -> Result<Vec<bool>>,
    ) -> Result<Option<(usize, usize)>> {
        for (b, batch) in rows.iter().enumerate() {
            if batch.num_rows() == 0 {
                continue;
            }
            let keys = self.child_keys(batch)?;
            let present = present(&self.parent, self.index, &keys)?;
            if let Some(row) = present.iter().position(|p| !p) {
                return Ok(Some((b, row)));
            }
        }
        Ok(None)
    }

    /// 23503 for a child row whose key the parent lacks.
    fn orphan_error(&self, batch: &RecordBatch, row: usize) -> QuiverError {
        let values: Vec<String> = self
            .child_columns
            .iter()
            .map(|&c| array_value_to_string(batch.column(c), row).unwrap_or_default())
            .collect();
        QuiverError::ForeignKeyViolation {
            message: format!(
                "insert or update on table \"{}\" violates foreign key constraint \"{}\"",
                self.def.table, self.def.name
            ),
            detail: format!(
                "Key ({})=({}) is not present in table \"{}\".",
                self.def.columns.join(", "),
                values.join(", "),
                self.def.ref_table
            ),
        }
    }

    /// 23503 for a parent key still referenced.
    fn referenced_error(&self, child_rows: &RecordBatch, row: usize) -> QuiverError {
        let values: Vec<String> = self
            .child_columns
            .iter()
            .map(|&c| array_value_to_string(child_rows.column(c), row).unwrap_or_default())
            .collect();
        QuiverError::ForeignKeyViolation {
            message: format!(
                "update or delete on table \"{}\" violates foreign key constraint \"{}\" on table \"{}\"",
                self.def.ref_table, self.def.name, self.def.table
            ),
            detail: format!(
                "Key ({})=({}) is still referenced from table \"{}\".",
                self.def.ref_columns.join(", "),
                values.join(", "),
                self.def.table
            ),
        }
    }

    /// ON UPDATE CASCADE: the referencing rows `child` with the new keys
    /// of the parent rows they referenced. `old` and `new` are the updated
    /// parent rows before and after, in the same order (UPDATE pairs them).
    fn cascaded_keys(
        &self,
        child: &[RecordBatch],
        old: &[RecordBatch],
        new: &[RecordBatch],
        gone: &HashSet<Box<[u8]>>,
    ) -> Result<RecordBatch> {
        let parent_schema = self.parent.schema_ref();
        let old = datafusion::arrow::compute::concat_batches(&parent_schema, old)?;
        let new = datafusion::arrow::compute::concat_batches(&parent_schema, new)?;
        if old.num_rows() != new.num_rows() {
            return Err(QuiverError::Internal(
                "ON UPDATE CASCADE needs the updated rows paired".into(),
            ));
        }
        let mut moved: std::collections::HashMap<Box<[u8]>, u32> = Default::default();
        for (i, key) in self
            .parent
            .encode_keys(self.index, &self.parent_keys(&old))?
            .into_iter()
            .enumerate()
        {
            if let Some(key) = key.filter(|k| gone.contains(k)) {
                moved.insert(key, i as u32);
            }
        }
        let child_schema = self.child.schema_ref();
        let child = datafusion::arrow::compute::concat_batches(&child_schema, child)?;
        let keys = self
            .parent
            .encode_keys(self.index, &self.child_keys(&child)?)?;
        let take: datafusion::arrow::array::UInt32Array = keys
            .iter()
            .map(|k| k.as_ref().and_then(|k| moved.get(k).copied()))
            .collect();
        let mut columns = child.columns().to_vec();
        for (new_key, &c) in self.parent_keys(&new).iter().zip(&self.child_columns) {
            let values = datafusion::arrow::compute::take(new_key, &take, None)?;
            columns[c] = cast(&values, child_schema.field(c).data_type())?;
        }
        Ok(RecordBatch::try_new(child_schema, columns)?)
    }

    /// Encoded keys of parent rows (NULL keys left out).
    fn encoded_parent_keys(&self, rows: &[RecordBatch]) -> Result<HashSet<Box<[u8]>>> {
        let mut out = HashSet::new();
        for batch in rows {
            let keys = self.parent_keys(batch);
            out.extend(
                self.parent
                    .encode_keys(self.index, &keys)?
                    .into_iter()
                    .flatten(),
            );
        }
        Ok(out)
    }

    /// Live positions of child rows (in `version`) whose key is in `gone`,
    /// with those rows.
    fn referencing(
        &self,
        version: &TableVersion,
        gone: &HashSet<Box<[u8]>>,
    ) -> Result<(Vec<u64>, Vec<RecordBatch>)> {
        let mut positions = Vec::new();
        let mut rows = Vec::new();
        let mut base = 0u64;
        for batch in version.live_batches()? {
            let keys = self.child_keys(&batch)?;
            let encoded = self.parent.encode_keys(self.index, &keys)?;
            let hit: Vec<bool> = encoded
                .iter()
                .map(|k| k.as_ref().is_some_and(|k| gone.contains(k)))
                .collect();
            for (i, h) in hit.iter().enumerate() {
                if *h {
                    positions.push(base + i as u64);
                }
            }
            if hit.iter().any(|h| *h) {
                let mask = datafusion::arrow::array::BooleanArray::from(hit);
                rows.push(filter_record_batch(&batch, &mask)?);
            }
            base += batch.num_rows() as u64;
        }
        Ok((positions, rows))
    }
}

/// Whether `parent` has a unique key over exactly `columns`.
pub fn has_key(parent: &Table, columns: &[String]) -> bool {
    parent_key(parent, columns).is_some()
}

/// The parent's unique constraint over exactly `columns` (in any order):
/// its position and its columns.
fn parent_key(parent: &Table, columns: &[String]) -> Option<(usize, Vec<usize>)> {
    let schema = parent.schema_ref();
    let wanted: HashSet<&str> = columns.iter().map(|c| c.as_str()).collect();
    parent
        .unique_constraints()
        .into_iter()
        .enumerate()
        .find(|(_, c)| {
            c.columns.len() == wanted.len()
                && c.columns
                    .iter()
                    .all(|&i| wanted.contains(schema.field(i).name().as_str()))
        })
        .map(|(i, c)| (i, c.columns))
}

/// Whether a constraint is checked at the end of each statement (else at
/// COMMIT), given the transaction's SET CONSTRAINTS.
fn immediate(txn: &Transaction, def: &ForeignKeyDef) -> bool {
    match txn.constraint_mode(&def.name) {
        Some(deferred) if def.deferrable => !deferred,
        _ => !def.initially_deferred,
    }
}

impl Database {
    /// Applies a change to `table` in `txn` and enforces the foreign keys
    /// it touches: referencing rows it adds must find their keys; keys it
    /// removes from a referenced table take their referencing rows along
    /// (CASCADE), set them NULL or to their default, or fail (23503).
    pub fn apply(&self, txn: &Transaction, table: &Arc<Table>, change: Change) -> Result<()> {
        self.apply_depth(txn, table, change, 0)
    }

    fn apply_depth(
        &self,
        txn: &Transaction,
        table: &Arc<Table>,
        change: Change,
        depth: usize,
    ) -> Result<()> {
        if depth > 64 {
            return Err(QuiverError::StatementTooComplex(
                "foreign key actions cascade more than 64 levels deep".into(),
            ));
        }
        let catalog = txn.catalog().unwrap_or_else(|| self.catalog());
        let Some(name) = catalog.name_of(table) else {
            return txn.apply(table, change);
        };
        let as_child = catalog.foreign_keys_of(&name);
        let as_parent = catalog.foreign_keys_to(&name);
        if as_child.is_empty() && as_parent.is_empty() {
            return txn.apply(table, change);
        }
        // The rows the change removes, read before it applies.
        let removed_rows = match (&change, as_parent.is_empty()) {
            (_, true) | (Change::Insert(_), _) => Vec::new(),
            (Change::Delete(positions) | Change::Update { positions, .. }, false) => {
                txn.visible(table).rows_at(&table.schema_ref(), positions)?
            }
            (Change::Truncate, false) => txn.visible(table).live_batches()?,
        };
        let added: Vec<RecordBatch> = match &change {
            Change::Insert(rows) | Change::Update { rows, .. } => rows.clone(),
            _ => Vec::new(),
        };
        let is_update = matches!(change, Change::Update { .. });
        txn.apply(table, change)?;
        for def in &as_child {
            if !immediate(txn, def) || added.is_empty() {
                continue;
            }
            let fk = Resolved::new(&catalog, def)?;
            if let Some((b, row)) = fk.first_orphan(&added, |t, i, k| txn.key_presence(t, i, k))? {
                return Err(fk.orphan_error(&added[b], row));
            }
        }
        if removed_rows.is_empty() {
            return Ok(());
        }
        for def in &as_parent {
            let fk = Resolved::new(&catalog, def)?;
            // Keys the change removed that the table no longer has.
            let mut gone = fk.encoded_parent_keys(&removed_rows)?;
            if gone.is_empty() {
                continue;
            }
            txn.retain_absent(&fk.parent, fk.index, &mut gone)?;
            if gone.is_empty() {
                continue;
            }
            let child_version = txn.visible(&fk.child);
            let (positions, rows) = fk.referencing(&child_version, &gone)?;
            if positions.is_empty() {
                continue;
            }
            let action = if is_update {
                def.on_update
            } else {
                def.on_delete
            };
            match action {
                FkAction::NoAction if !immediate(txn, def) => {}
                FkAction::NoAction | FkAction::Restrict => {
                    return Err(fk.referenced_error(&rows[0], 0));
                }
                FkAction::Cascade if !is_update => {
                    self.apply_depth(
                        txn,
                        &fk.child,
                        Change::Delete(Arc::new(positions)),
                        depth + 1,
                    )?;
                }
                FkAction::Cascade | FkAction::SetNull | FkAction::SetDefault => {
                    // The referencing rows with their new key: the parent's
                    // new key, NULL, or the DEFAULT.
                    let rows = match action {
                        FkAction::Cascade => {
                            vec![fk.cascaded_keys(&rows, &removed_rows, &added, &gone)?]
                        }
                        _ => rows
                            .iter()
                            .map(|batch| reset_columns(&fk, batch, action))
                            .collect::<Result<Vec<_>>>()?,
                    };
                    let rows = super::conform::conform_batches(&fk.child, rows)?;
                    self.apply_depth(
                        txn,
                        &fk.child,
                        Change::Update {
                            positions: Arc::new(positions),
                            rows,
                            keys_unchanged: false,
                        },
                        depth + 1,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// SET CONSTRAINTS ... IMMEDIATE: checks now what the transaction did
    /// under the named deferred constraints (all when `names` is None).
    pub fn check_deferred(&self, txn: &Transaction, names: Option<&[String]>) -> Result<()> {
        let catalog = txn.catalog().unwrap_or_else(|| self.catalog());
        for def in catalog.foreign_keys.iter() {
            // A key that is not deferrable was checked at each statement.
            let named = names.is_some_and(|n| n.contains(&def.name));
            if !named && (names.is_some() || !def.deferrable) {
                continue;
            }
            let fk = Resolved::new(&catalog, def)?;
            let rows = txn.visible(&fk.child).live_batches()?;
            if let Some((b, row)) = fk.first_orphan(&rows, |t, i, k| txn.key_presence(t, i, k))? {
                return Err(fk.orphan_error(&rows[b], row));
            }
        }
        Ok(())
    }
}

/// `batch` (child rows) with the key columns set NULL or to their
/// DEFAULT.
fn reset_columns(fk: &Resolved<'_>, batch: &RecordBatch, action: FkAction) -> Result<RecordBatch> {
    let schema: SchemaRef = fk.child.schema_ref();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for &c in &fk.child_columns {
        let field = schema.field(c);
        columns[c] = match action {
            FkAction::SetDefault => fk.child.default_array(field, batch.num_rows())?,
            _ => new_null_array(field.data_type(), batch.num_rows()),
        };
    }
    Ok(RecordBatch::try_new_with_options(
        schema,
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )?)
}

/// COMMIT's check, under the commit lock, of the foreign keys the
/// transaction's writes touch, against the state the commit installs:
/// `written` holds each written table's version and key delta after it.
pub(super) fn check_at_commit(
    catalog: &CatalogState,
    txn: &Transaction,
    written: &[(&Arc<Table>, &TableVersion, &KeyDelta)],
    added: &[&str],
) -> Result<()> {
    if catalog.foreign_keys.is_empty() {
        return Ok(());
    }
    let after = |table: &Arc<Table>| written.iter().find(|(t, _, _)| t.id() == table.id());
    for def in catalog.foreign_keys.iter() {
        let (Some(child), Some(parent)) =
            (catalog.table(&def.child()), catalog.table(&def.parent()))
        else {
            continue;
        };
        let child_written = after(child);
        let parent_written = after(parent);
        // A key added by this transaction holds for every row there is.
        let new_key = added.contains(&def.name.as_str());
        if child_written.is_none() && parent_written.is_none() && !new_key {
            continue;
        }
        let fk = Resolved::new(catalog, def)?;
        // Checked at each statement, with nothing moved since: nothing to
        // check again.
        let parent_moved = fk.parent.snapshot().version != txn.base_version(&fk.parent).version;
        let child_moved = fk.child.snapshot().version != txn.base_version(&fk.child).version;
        let deferred = !immediate(txn, def);
        if !deferred && !parent_moved && !child_moved && !new_key {
            continue;
        }
        let present = |parent: &Table, index: usize, keys: &[ArrayRef]| {
            parent.key_presence(parent_written.map(|(_, _, d)| *d), index, keys)
        };
        // Only the child changed: its new rows are what may lack a key.
        // Otherwise every child row is checked.
        let rows = match (child_written, parent_written, parent_moved) {
            (Some(_), None, false) if !new_key => match txn.pending(fk.child.id()) {
                Some(write) => write.version.live_rows_from(write.net.base_rows_left())?,
                None => Vec::new(),
            },
            (Some((_, version, _)), _, _) => version.live_batches()?,
            (None, _, _) => fk.child.snapshot().live_batches()?,
        };
        if let Some((b, row)) = fk.first_orphan(&rows, present)? {
            return Err(if parent_written.is_some() && child_written.is_none() {
                fk.referenced_error(&rows[b], row)
            } else {
                fk.orphan_error(&rows[b], row)
            });
        }
    }
    Ok(())
}
