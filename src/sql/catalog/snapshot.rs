//! One consistent look at the catalog, in the terms the system tables
//! use: object ids, attribute numbers, type ids and modifiers.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};

use super::{CatalogContext, Identity, SessionInfo, INFORMATION_SCHEMA, PG_CATALOG};
use crate::engine::catalog::visible_catalog;
use crate::engine::foreign::ForeignKeyDef;
use crate::engine::sequence::Sequence;
use crate::engine::types::{declared_length, display_type, TaggedType};
use crate::engine::{CatalogState, QualifiedName, Table, View};

/// Object ids of user objects are derived from their names, so they are
/// the same in every session and after a restart. They fall in Postgres'
/// user range (16384 and up) and stay below 2^31 (oids are int4 here).
fn hashed_oid(kind: &str, parts: &[&str]) -> i32 {
    let mut key = String::from(kind);
    for part in parts {
        key.push('\0');
        key.push_str(part);
    }
    let hash = crc32c::crc32c(key.as_bytes()) as i64;
    (16384 + hash % (i32::MAX as i64 - 16384)) as i32
}

/// The oids PostgreSQL gives the system catalogs clients name in casts
/// (`'pg_catalog.pg_class'::regclass`); they are listed in `pg_class`.
pub const SYSTEM_CATALOGS: &[(&str, i32)] = &[
    ("pg_type", 1247),
    ("pg_attribute", 1249),
    ("pg_proc", 1255),
    ("pg_class", 1259),
    ("pg_authid", 1260),
    ("pg_database", 1262),
    ("pg_am", 2601),
    ("pg_attrdef", 2604),
    ("pg_constraint", 2606),
    ("pg_description", 2609),
    ("pg_index", 2610),
    ("pg_namespace", 2615),
    ("pg_trigger", 2620),
];

pub fn namespace_oid(schema: &str) -> i32 {
    match schema {
        PG_CATALOG => 11,
        "pg_toast" => 99,
        "public" => 2200,
        INFORMATION_SCHEMA => 13000,
        other => hashed_oid("namespace", &[other]),
    }
}

pub fn relation_oid(schema: &str, name: &str) -> i32 {
    hashed_oid("relation", &[schema, name])
}

fn constraint_oid(schema: &str, table: &str, name: &str) -> i32 {
    hashed_oid("constraint", &[schema, table, name])
}

pub fn index_oid(schema: &str, name: &str) -> i32 {
    hashed_oid("index", &[schema, name])
}

fn default_oid(schema: &str, table: &str, column: &str) -> i32 {
    hashed_oid("default", &[schema, table, column])
}

/// The Postgres type oid a column is reported with on the wire.
pub fn type_oid(field: &Field) -> i32 {
    crate::sql::types::pg_type(field)
        .map(|t| t.oid() as i32)
        .unwrap_or(25)
}

/// `atttypmod`: declared length + 4 for varchar(n)/char(n),
/// ((precision << 16) | scale) + 4 for numeric, else -1.
pub fn type_modifier(field: &Field) -> i32 {
    // An array's is its elements'.
    if let (None, Some(element)) = (
        TaggedType::of(field),
        crate::engine::types::element_field(field),
    ) {
        return type_modifier(&element);
    }
    match (TaggedType::of(field), field.data_type()) {
        (Some(TaggedType::Varchar | TaggedType::Bpchar), _) => {
            declared_length(field).map_or(-1, |n| n as i32 + 4)
        }
        (None, DataType::Decimal128(p, s)) => (((*p as i32) << 16) | (*s as i32 & 0xffff)) + 4,
        _ => -1,
    }
}

pub struct ColumnInfo {
    pub name: String,
    /// 1-based position (`attnum`).
    pub num: i64,
    pub field: Field,
    pub type_oid: i32,
    pub typmod: i32,
    pub not_null: bool,
    pub default: Option<String>,
    pub default_oid: i32,
}

impl ColumnInfo {
    /// The type as `format_type(atttypid, atttypmod)` shows it.
    pub fn display_type(&self) -> String {
        display_type(&self.field)
    }
}

pub enum RelationKind {
    Table(Arc<Table>),
    View(Arc<View>),
    Sequence(Arc<Sequence>),
}

pub struct Relation {
    pub oid: i32,
    pub schema: String,
    pub namespace_oid: i32,
    pub name: String,
    pub kind: RelationKind,
    pub columns: Vec<ColumnInfo>,
    pub constraints: Vec<ConstraintInfo>,
    /// A table's indexes: its key constraints' and those CREATE INDEX
    /// made, in that order.
    pub indexes: Vec<IndexInfo>,
    /// Foreign keys reference it or from it (PostgreSQL enforces them
    /// with triggers, and psql reads this before it lists them).
    pub has_triggers: bool,
}

impl Relation {
    pub fn relkind(&self) -> &'static str {
        match self.kind {
            RelationKind::Table(_) => "r",
            RelationKind::View(_) => "v",
            RelationKind::Sequence(_) => "S",
        }
    }

    pub fn table(&self) -> Option<&Arc<Table>> {
        match &self.kind {
            RelationKind::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn sequence(&self) -> Option<&Arc<Sequence>> {
        match &self.kind {
            RelationKind::Sequence(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the column is an identity column: `a` (ALWAYS) or `d` (BY
    /// DEFAULT), else empty, as `pg_attribute.attidentity` says.
    pub fn identity(&self, column: &str) -> &'static str {
        match self.table().and_then(|t| t.identity(column)) {
            Some(true) => "a",
            Some(false) => "d",
            None => "",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ConstraintKind {
    Primary,
    Unique,
    Check,
    Foreign,
}

/// What a FOREIGN KEY constraint references.
pub struct ForeignInfo {
    pub def: Arc<ForeignKeyDef>,
    pub ref_oid: i32,
    /// Attribute numbers of the referenced columns.
    pub ref_columns: Vec<i64>,
    /// The referenced table's key index: (oid, name).
    pub ref_index: (i32, String),
}

pub struct ConstraintInfo {
    pub oid: i32,
    pub name: String,
    pub kind: ConstraintKind,
    /// Attribute numbers (1-based) of the constrained columns.
    pub columns: Vec<i64>,
    pub column_names: Vec<String>,
    /// The index that enforces a key: (oid, name).
    pub index_oid: i32,
    pub check_sql: Option<String>,
    pub foreign: Option<ForeignInfo>,
}

impl ConstraintInfo {
    pub fn contype(&self) -> &'static str {
        match self.kind {
            ConstraintKind::Primary => "p",
            ConstraintKind::Unique => "u",
            ConstraintKind::Check => "c",
            ConstraintKind::Foreign => "f",
        }
    }

    /// `pg_get_constraintdef()`.
    pub fn definition(&self) -> String {
        let columns = self
            .column_names
            .iter()
            .map(|c| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ");
        match self.kind {
            ConstraintKind::Primary => format!("PRIMARY KEY ({columns})"),
            ConstraintKind::Unique => format!("UNIQUE ({columns})"),
            ConstraintKind::Check => {
                format!("CHECK (({}))", self.check_sql.as_deref().unwrap_or(""))
            }
            ConstraintKind::Foreign => match &self.foreign {
                Some(f) => f.def.definition(quote_ident),
                None => String::new(),
            },
        }
    }

    pub fn is_key(&self) -> bool {
        matches!(self.kind, ConstraintKind::Primary | ConstraintKind::Unique)
    }
}

pub struct IndexInfo {
    pub oid: i32,
    pub name: String,
    /// Attribute numbers (1-based) of the indexed columns.
    pub columns: Vec<i64>,
    pub column_names: Vec<String>,
    pub unique: bool,
    pub primary: bool,
    pub method: String,
}

impl IndexInfo {
    /// `pg_get_indexdef()`.
    pub fn definition(&self, rel: &Relation) -> String {
        format!(
            "CREATE {}INDEX {} ON {}.{} USING {} ({})",
            if self.unique { "UNIQUE " } else { "" },
            quote_ident(&self.name),
            quote_ident(&rel.schema),
            quote_ident(&rel.name),
            self.method,
            self.column_names
                .iter()
                .map(|c| quote_ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// Quotes an identifier when Postgres would.
pub fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

pub struct Snapshot {
    pub catalog: Arc<CatalogState>,
    pub identity: Identity,
    pub info: Arc<SessionInfo>,
    pub db: Arc<crate::engine::Database>,
}

impl Snapshot {
    pub fn new(context: &CatalogContext) -> Snapshot {
        Snapshot {
            catalog: visible_catalog(&context.db, &context.slot),
            identity: context.info.identity(),
            info: context.info.clone(),
            db: context.db.clone(),
        }
    }

    /// User schemas, in name order.
    pub fn schemas(&self) -> Vec<String> {
        self.catalog.schemas.keys().cloned().collect()
    }

    /// Every table and view, schema by schema, in name order.
    pub fn relations(&self) -> Vec<Relation> {
        let mut out = Vec::new();
        for (schema, entry) in &self.catalog.schemas {
            let mut names: Vec<&String> = entry.relation_names().collect();
            names.sort();
            for name in names {
                if let Some(table) = entry.tables.get(name) {
                    out.push(table_relation(&self.catalog, schema, name, table));
                } else if let Some(view) = entry.views.get(name) {
                    out.push(view_relation(schema, name, view));
                } else if let Some(sequence) = entry.sequences.get(name) {
                    out.push(sequence_relation(schema, name, sequence));
                }
            }
        }
        out
    }

    /// The relation with this oid.
    /// Whether the session's role holds any privilege on `rel` (what
    /// information_schema shows, as in PostgreSQL).
    pub fn may_see(&self, rel: &Relation) -> bool {
        let object = crate::engine::roles::AclObject::Relation {
            schema: rel.schema.clone(),
            name: rel.name.clone(),
        };
        self.catalog.privileges_on(self.identity.actor(), &object) != 0
    }

    pub fn relation(&self, oid: i32) -> Option<Relation> {
        self.relations().into_iter().find(|r| r.oid == oid)
    }

    /// The comment on the object with this oid: a relation, an index or
    /// a schema (`obj_description`).
    pub fn object_comment(&self, oid: i32) -> Option<String> {
        use crate::engine::comments::CommentTarget;
        let target = self.catalog.schemas.keys().find_map(|schema| {
            if namespace_oid(schema) == oid {
                return Some(CommentTarget::Schema {
                    name: schema.clone(),
                });
            }
            None
        });
        let target = target.or_else(|| {
            self.relations().into_iter().find_map(|rel| {
                if rel.oid == oid {
                    return Some(CommentTarget::Relation {
                        schema: rel.schema.clone(),
                        name: rel.name.clone(),
                    });
                }
                rel.indexes
                    .iter()
                    .find(|i| i.oid == oid)
                    .map(|i| CommentTarget::Index {
                        schema: rel.schema.clone(),
                        name: i.name.clone(),
                    })
            })
        })?;
        self.catalog.comment(&target).cloned()
    }

    /// The comment on column `attnum` of the relation with this oid
    /// (`col_description`).
    pub fn column_comment(&self, oid: i32, attnum: i64) -> Option<String> {
        let rel = self.relation(oid)?;
        let column = rel.columns.iter().find(|c| c.num == attnum)?;
        let target = crate::engine::comments::CommentTarget::column(
            &QualifiedName::new(&rel.schema, &rel.name),
            &column.name,
        );
        self.catalog.comment(&target).cloned()
    }

    /// Every comment as `pg_description` has it: (objoid, classoid,
    /// objsubid, description).
    pub fn descriptions(&self) -> Vec<(i32, i32, i64, String)> {
        use crate::engine::comments::CommentTarget;
        const PG_CLASS: i32 = 1259;
        const PG_NAMESPACE: i32 = 2615;
        let mut out = Vec::new();
        for (target, text) in &self.catalog.comments {
            let row = match target {
                CommentTarget::Relation { schema, name } => {
                    (relation_oid(schema, name), PG_CLASS, 0)
                }
                CommentTarget::Index { schema, name } => (index_oid(schema, name), PG_CLASS, 0),
                CommentTarget::Column {
                    schema,
                    table,
                    column,
                } => {
                    let name = QualifiedName::new(schema, table);
                    let arrow = match (self.catalog.table(&name), self.catalog.view(&name)) {
                        (Some(t), _) => t.schema_ref(),
                        (None, Some(v)) => v.schema.clone(),
                        _ => continue,
                    };
                    let Ok(i) = arrow.index_of(column) else {
                        continue;
                    };
                    (relation_oid(schema, table), PG_CLASS, i as i64 + 1)
                }
                CommentTarget::Schema { name } => (namespace_oid(name), PG_NAMESPACE, 0),
            };
            out.push((row.0, row.1, row.2, text.clone()));
        }
        out
    }

    /// Whether `schema` is searched for unqualified names.
    pub fn is_visible(&self, schema: &str) -> bool {
        schema == PG_CATALOG
            || schema == self.info.temp_schema()
            || self.info.search_path().iter().any(|s| s == schema)
    }
}

fn table_relation(
    catalog: &CatalogState,
    schema: &str,
    name: &str,
    table: &Arc<Table>,
) -> Relation {
    let arrow = table.schema_ref();
    let defaults = table.defaults_sql();
    let columns = arrow
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| ColumnInfo {
            name: f.name().clone(),
            num: i as i64 + 1,
            type_oid: type_oid(f),
            typmod: type_modifier(f),
            not_null: !f.is_nullable(),
            // An identity column's values come from its sequence, with
            // no DEFAULT of its own to show.
            default: defaults
                .iter()
                .find(|(c, _)| c == f.name() && table.identity(c).is_none())
                .map(|(_, sql)| deparsed_default(sql, f)),
            default_oid: default_oid(schema, name, f.name()),
            field: f.as_ref().clone(),
        })
        .collect::<Vec<_>>();
    let mut constraints = Vec::new();
    let mut indexes = Vec::new();
    let attnums = |names: &[String]| -> Vec<i64> {
        names
            .iter()
            .filter_map(|n| arrow.index_of(n).ok())
            .map(|i| i as i64 + 1)
            .collect()
    };
    for c in table.unique_constraints() {
        let column_names: Vec<String> = c
            .columns
            .iter()
            .map(|i| arrow.field(*i).name().clone())
            .collect();
        indexes.push(IndexInfo {
            oid: index_oid(schema, &c.name),
            name: c.name.clone(),
            columns: attnums(&column_names),
            column_names,
            unique: true,
            primary: c.primary,
            method: "btree".into(),
        });
    }
    for index in table.indexes().iter().filter(|i| !i.unique) {
        indexes.push(IndexInfo {
            oid: index_oid(schema, &index.name),
            name: index.name.clone(),
            columns: attnums(&index.columns),
            column_names: index.columns.clone(),
            unique: false,
            primary: false,
            method: index.method.clone(),
        });
    }
    for c in table
        .unique_constraints()
        .into_iter()
        .filter(|c| !c.index_only)
    {
        constraints.push(ConstraintInfo {
            oid: constraint_oid(schema, name, &c.name),
            kind: if c.primary {
                ConstraintKind::Primary
            } else {
                ConstraintKind::Unique
            },
            columns: c.columns.iter().map(|i| *i as i64 + 1).collect(),
            column_names: c
                .columns
                .iter()
                .map(|i| arrow.field(*i).name().clone())
                .collect(),
            index_oid: index_oid(schema, &c.name),
            check_sql: None,
            foreign: None,
            name: c.name,
        });
    }
    for check in table.checks() {
        let used: Vec<&ColumnInfo> = columns
            .iter()
            .filter(|c| mentions(&check.sql, &c.name))
            .collect();
        constraints.push(ConstraintInfo {
            oid: constraint_oid(schema, name, &check.name),
            name: check.name.clone(),
            kind: ConstraintKind::Check,
            columns: used.iter().map(|c| c.num).collect(),
            column_names: used.iter().map(|c| c.name.clone()).collect(),
            index_oid: 0,
            check_sql: Some(check.sql.clone()),
            foreign: None,
        });
    }
    for fk in catalog.foreign_keys_of(&QualifiedName::new(schema, name)) {
        let Some(parent) = catalog.table(&fk.parent()) else {
            continue;
        };
        let parent_schema = parent.schema_ref();
        let attnum = |arrow: &datafusion::arrow::datatypes::Schema, c: &String| {
            arrow.index_of(c).map_or(0, |i| i as i64 + 1)
        };
        let wanted: std::collections::HashSet<&String> = fk.ref_columns.iter().collect();
        let key = parent.unique_constraints().into_iter().find(|c| {
            c.columns.len() == wanted.len()
                && c.columns
                    .iter()
                    .all(|&i| wanted.contains(parent_schema.field(i).name()))
        });
        let ref_index = key.map_or((0, String::new()), |k| {
            (index_oid(&fk.ref_schema, &k.name), k.name)
        });
        constraints.push(ConstraintInfo {
            oid: constraint_oid(schema, name, &fk.name),
            name: fk.name.clone(),
            kind: ConstraintKind::Foreign,
            columns: fk.columns.iter().map(|c| attnum(&arrow, c)).collect(),
            column_names: fk.columns.clone(),
            index_oid: ref_index.0,
            check_sql: None,
            foreign: Some(ForeignInfo {
                ref_oid: relation_oid(&fk.ref_schema, &fk.ref_table),
                ref_columns: fk
                    .ref_columns
                    .iter()
                    .map(|c| attnum(&parent_schema, c))
                    .collect(),
                ref_index,
                def: fk,
            }),
        });
    }
    Relation {
        oid: relation_oid(schema, name),
        schema: schema.to_string(),
        namespace_oid: namespace_oid(schema),
        name: name.to_string(),
        kind: RelationKind::Table(table.clone()),
        columns,
        constraints,
        indexes,
        has_triggers: catalog.has_foreign_keys(&QualifiedName::new(schema, name)),
    }
}

/// A default as `pg_get_expr()` shows it: Postgres adds the column's type
/// to a string literal (`'new'::text`).
fn deparsed_default(sql: &str, field: &Field) -> String {
    let quoted = sql.len() >= 2
        && sql.starts_with('\'')
        && sql.ends_with('\'')
        && !sql[1..sql.len() - 1].replace("''", "").contains('\'');
    if !quoted {
        return sql.to_string();
    }
    let type_name = display_type(field);
    let base = type_name.split('(').next().unwrap_or(&type_name).trim();
    format!("{sql}::{base}")
}

/// Whether an expression's SQL names a column (as a whole word).
fn mentions(sql: &str, column: &str) -> bool {
    let lower = sql.to_lowercase();
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    lower.match_indices(&column.to_lowercase()).any(|(at, m)| {
        let before = lower[..at].chars().next_back();
        let after = lower[at + m.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

fn sequence_relation(schema: &str, name: &str, sequence: &Arc<Sequence>) -> Relation {
    let columns = crate::engine::sequence::table_schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| ColumnInfo {
            name: f.name().clone(),
            num: i as i64 + 1,
            type_oid: type_oid(f),
            typmod: -1,
            not_null: true,
            default: None,
            default_oid: 0,
            field: f.as_ref().clone(),
        })
        .collect();
    Relation {
        oid: relation_oid(schema, name),
        schema: schema.to_string(),
        namespace_oid: namespace_oid(schema),
        name: name.to_string(),
        kind: RelationKind::Sequence(sequence.clone()),
        columns,
        constraints: Vec::new(),
        indexes: Vec::new(),
        has_triggers: false,
    }
}

fn view_relation(schema: &str, name: &str, view: &Arc<View>) -> Relation {
    let columns = view
        .schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = view.def.columns.get(i).cloned().unwrap_or(f.name().clone());
            ColumnInfo {
                num: i as i64 + 1,
                type_oid: type_oid(f),
                typmod: type_modifier(f),
                not_null: false,
                default: None,
                default_oid: 0,
                field: f.as_ref().clone().with_name(&name),
                name,
            }
        })
        .collect();
    Relation {
        oid: relation_oid(schema, name),
        schema: schema.to_string(),
        namespace_oid: namespace_oid(schema),
        name: name.to_string(),
        kind: RelationKind::View(view.clone()),
        columns,
        constraints: Vec::new(),
        indexes: Vec::new(),
        has_triggers: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_are_stable_and_in_the_user_range() {
        let a = relation_oid("public", "city");
        assert_eq!(a, relation_oid("public", "city"));
        assert_ne!(a, relation_oid("sales", "city"));
        assert!(a >= 16384);
        assert_eq!(namespace_oid("public"), 2200);
    }

    #[test]
    fn identifiers_are_quoted_like_postgres() {
        assert_eq!(quote_ident("city"), "city");
        assert_eq!(quote_ident("City"), "\"City\"");
        assert_eq!(quote_ident("a b"), "\"a b\"");
    }

    #[test]
    fn string_defaults_show_their_type() {
        let text = Field::new("s", DataType::Utf8, true);
        assert_eq!(deparsed_default("'new'", &text), "'new'::text");
        assert_eq!(deparsed_default("0", &text), "0");
        assert_eq!(deparsed_default("'a' || 'b'", &text), "'a' || 'b'");
    }

    #[test]
    fn check_columns_are_found_as_whole_words() {
        assert!(mentions("amount >= 0", "amount"));
        assert!(!mentions("amount_due >= 0", "amount"));
    }
}
