//! `information_schema`, the SQL standard's catalog views, generated from
//! the live catalog with the values Postgres gives them.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::error::Result;

use super::rows::{int, text, Rows};
use super::snapshot::{ColumnInfo, ConstraintKind, Snapshot};
use super::system::Generated;
use super::{INFORMATION_SCHEMA, OWNER, PG_CATALOG};
use crate::engine::sequence::SequenceType;
use crate::engine::sessions::TEMP_SCHEMA_PREFIX;
use crate::engine::types::{declared_length, TaggedType};

pub static TABLES: &[Generated] = &[
    Generated {
        name: "sequences",
        columns: &[
            ("sequence_catalog", "name"),
            ("sequence_schema", "name"),
            ("sequence_name", "name"),
            ("data_type", "text"),
            ("numeric_precision", "int4"),
            ("numeric_precision_radix", "int4"),
            ("numeric_scale", "int4"),
            ("start_value", "text"),
            ("minimum_value", "text"),
            ("maximum_value", "text"),
            ("increment", "text"),
            ("cycle_option", "text"),
        ],
        build: sequences,
    },
    Generated {
        name: "schemata",
        columns: &[
            ("catalog_name", "name"),
            ("schema_name", "name"),
            ("schema_owner", "name"),
            ("default_character_set_catalog", "name"),
            ("default_character_set_schema", "name"),
            ("default_character_set_name", "name"),
            ("sql_path", "text"),
        ],
        build: schemata,
    },
    Generated {
        name: "tables",
        columns: &[
            ("table_catalog", "name"),
            ("table_schema", "name"),
            ("table_name", "name"),
            ("table_type", "text"),
            ("self_referencing_column_name", "name"),
            ("reference_generation", "text"),
            ("user_defined_type_catalog", "name"),
            ("user_defined_type_schema", "name"),
            ("user_defined_type_name", "name"),
            ("is_insertable_into", "text"),
            ("is_typed", "text"),
            ("commit_action", "text"),
        ],
        build: tables,
    },
    Generated {
        name: "views",
        columns: &[
            ("table_catalog", "name"),
            ("table_schema", "name"),
            ("table_name", "name"),
            ("view_definition", "text"),
            ("check_option", "text"),
            ("is_updatable", "text"),
            ("is_insertable_into", "text"),
            ("is_trigger_updatable", "text"),
            ("is_trigger_deletable", "text"),
            ("is_trigger_insertable_into", "text"),
        ],
        build: views,
    },
    Generated {
        name: "columns",
        columns: &[
            ("table_catalog", "name"),
            ("table_schema", "name"),
            ("table_name", "name"),
            ("column_name", "name"),
            ("ordinal_position", "int4"),
            ("column_default", "text"),
            ("is_nullable", "text"),
            ("data_type", "text"),
            ("character_maximum_length", "int4"),
            ("character_octet_length", "int4"),
            ("numeric_precision", "int4"),
            ("numeric_precision_radix", "int4"),
            ("numeric_scale", "int4"),
            ("datetime_precision", "int4"),
            ("interval_type", "text"),
            ("interval_precision", "int4"),
            ("character_set_catalog", "name"),
            ("character_set_schema", "name"),
            ("character_set_name", "name"),
            ("collation_catalog", "name"),
            ("collation_schema", "name"),
            ("collation_name", "name"),
            ("domain_catalog", "name"),
            ("domain_schema", "name"),
            ("domain_name", "name"),
            ("udt_catalog", "name"),
            ("udt_schema", "name"),
            ("udt_name", "name"),
            ("scope_catalog", "name"),
            ("scope_schema", "name"),
            ("scope_name", "name"),
            ("maximum_cardinality", "int4"),
            ("dtd_identifier", "name"),
            ("is_self_referencing", "text"),
            ("is_identity", "text"),
            ("identity_generation", "text"),
            ("identity_start", "text"),
            ("identity_increment", "text"),
            ("identity_maximum", "text"),
            ("identity_minimum", "text"),
            ("identity_cycle", "text"),
            ("is_generated", "text"),
            ("generation_expression", "text"),
            ("is_updatable", "text"),
        ],
        build: columns,
    },
    Generated {
        name: "table_constraints",
        columns: &[
            ("constraint_catalog", "name"),
            ("constraint_schema", "name"),
            ("constraint_name", "name"),
            ("table_catalog", "name"),
            ("table_schema", "name"),
            ("table_name", "name"),
            ("constraint_type", "text"),
            ("is_deferrable", "text"),
            ("initially_deferred", "text"),
            ("enforced", "text"),
            ("nulls_distinct", "text"),
        ],
        build: table_constraints,
    },
    Generated {
        name: "key_column_usage",
        columns: &[
            ("constraint_catalog", "name"),
            ("constraint_schema", "name"),
            ("constraint_name", "name"),
            ("table_catalog", "name"),
            ("table_schema", "name"),
            ("table_name", "name"),
            ("column_name", "name"),
            ("ordinal_position", "int4"),
            ("position_in_unique_constraint", "int4"),
        ],
        build: key_column_usage,
    },
    Generated {
        name: "constraint_column_usage",
        columns: &[
            ("table_catalog", "name"),
            ("table_schema", "name"),
            ("table_name", "name"),
            ("column_name", "name"),
            ("constraint_catalog", "name"),
            ("constraint_schema", "name"),
            ("constraint_name", "name"),
        ],
        build: constraint_column_usage,
    },
    Generated {
        name: "check_constraints",
        columns: &[
            ("constraint_catalog", "name"),
            ("constraint_schema", "name"),
            ("constraint_name", "name"),
            ("check_clause", "text"),
        ],
        build: check_constraints,
    },
    Generated {
        name: "referential_constraints",
        columns: &[
            ("constraint_catalog", "name"),
            ("constraint_schema", "name"),
            ("constraint_name", "name"),
            ("unique_constraint_catalog", "name"),
            ("unique_constraint_schema", "name"),
            ("unique_constraint_name", "name"),
            ("match_option", "text"),
            ("update_rule", "text"),
            ("delete_rule", "text"),
        ],
        build: referential_constraints,
    },
    Generated {
        name: "routines",
        columns: &[
            ("specific_catalog", "name"),
            ("specific_schema", "name"),
            ("specific_name", "name"),
            ("routine_catalog", "name"),
            ("routine_schema", "name"),
            ("routine_name", "name"),
            ("routine_type", "text"),
            ("data_type", "text"),
            ("routine_definition", "text"),
            ("external_language", "text"),
        ],
        build: empty,
    },
    Generated {
        name: "sequences",
        columns: &[
            ("sequence_catalog", "name"),
            ("sequence_schema", "name"),
            ("sequence_name", "name"),
            ("data_type", "text"),
            ("start_value", "text"),
            ("minimum_value", "text"),
            ("maximum_value", "text"),
            ("increment", "text"),
            ("cycle_option", "text"),
        ],
        build: empty,
    },
];

fn empty(_: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    Rows::new(schema).finish()
}

fn yes_no(b: bool) -> ScalarValue {
    text(if b { "YES" } else { "NO" })
}

fn null() -> ScalarValue {
    ScalarValue::Null
}

fn schemata(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let mut names = vec![PG_CATALOG.to_string(), INFORMATION_SCHEMA.to_string()];
    names.extend(snap.schemas());
    for name in names {
        rows.push(vec![
            ("catalog_name", text(&snap.identity.database)),
            ("schema_name", text(name)),
            ("schema_owner", text(OWNER)),
        ]);
    }
    rows.finish()
}

fn tables(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in visible_relations(snap) {
        let is_table = rel.table().is_some();
        let insertable = is_table || updatable_view(&rel).is_some();
        rows.push(vec![
            ("table_catalog", text(&snap.identity.database)),
            ("table_schema", text(&rel.schema)),
            ("table_name", text(&rel.name)),
            (
                "table_type",
                text(
                    match (is_table, rel.schema.starts_with(TEMP_SCHEMA_PREFIX)) {
                        (true, false) => "BASE TABLE",
                        (true, true) => "LOCAL TEMPORARY",
                        (false, _) => "VIEW",
                    },
                ),
            ),
            ("is_insertable_into", yes_no(insertable)),
            ("is_typed", yes_no(false)),
        ]);
    }
    rows.finish()
}

fn sequences(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations().into_iter().filter(|r| snap.may_see(r)) {
        let Some(sequence) = rel.sequence() else {
            continue;
        };
        // An identity column's sequence is part of the column, as in
        // PostgreSQL.
        let identity = sequence.owned_by().is_some_and(|(table, column)| {
            snap.catalog
                .table(&crate::engine::QualifiedName::new(&rel.schema, &table))
                .is_some_and(|t| t.identity(&column).is_some())
        });
        if identity {
            continue;
        }
        let options = sequence.options();
        let bits = match options.data_type {
            SequenceType::Smallint => 16,
            SequenceType::Integer => 32,
            SequenceType::Bigint => 64,
        };
        rows.push(vec![
            ("sequence_catalog", text(&snap.identity.database)),
            ("sequence_schema", text(&rel.schema)),
            ("sequence_name", text(&rel.name)),
            ("data_type", text(options.data_type.name())),
            ("numeric_precision", int(bits)),
            ("numeric_precision_radix", int(2)),
            ("numeric_scale", int(0)),
            ("start_value", text(options.start.to_string())),
            ("minimum_value", text(options.min.to_string())),
            ("maximum_value", text(options.max.to_string())),
            ("increment", text(options.increment.to_string())),
            ("cycle_option", yes_no(options.cycle)),
        ]);
    }
    rows.finish()
}

/// The tables and views the session's role may see (sequences are listed
/// in `information_schema.sequences` alone).
fn visible_relations(snap: &Snapshot) -> impl Iterator<Item = super::snapshot::Relation> + '_ {
    snap.relations()
        .into_iter()
        .filter(|r| r.sequence().is_none() && snap.may_see(r))
}

/// For a view INSERT, UPDATE and DELETE can change: which of its columns
/// can be assigned.
fn updatable_view(rel: &super::snapshot::Relation) -> Option<&[bool]> {
    match &rel.kind {
        super::snapshot::RelationKind::View(view) => view.updatable_columns.as_deref(),
        _ => None,
    }
}

fn views(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in visible_relations(snap) {
        if let Some(definition) = super::pg_tables::view_definition(&rel) {
            rows.push(vec![
                ("table_catalog", text(&snap.identity.database)),
                ("table_schema", text(&rel.schema)),
                ("table_name", text(&rel.name)),
                ("view_definition", text(definition)),
                ("check_option", text("NONE")),
                ("is_updatable", yes_no(updatable_view(&rel).is_some())),
                ("is_insertable_into", yes_no(updatable_view(&rel).is_some())),
                ("is_trigger_updatable", yes_no(false)),
                ("is_trigger_deletable", yes_no(false)),
                ("is_trigger_insertable_into", yes_no(false)),
            ]);
        }
    }
    rows.finish()
}

/// information_schema's `data_type`: the type's SQL name without its
/// modifiers.
fn data_type_name(c: &ColumnInfo) -> String {
    match TaggedType::of(&c.field) {
        Some(TaggedType::Varchar) => "character varying".into(),
        Some(TaggedType::Bpchar) => "character".into(),
        _ => match c.field.data_type() {
            DataType::Decimal128(..) => "numeric".into(),
            DataType::List(_) | DataType::LargeList(_) => "ARRAY".into(),
            _ => c.display_type(),
        },
    }
}

/// The short type name (`udt_name`): int4, varchar, numeric, ...
fn udt_name(c: &ColumnInfo) -> String {
    match c.type_oid {
        16 => "bool",
        17 => "bytea",
        20 => "int8",
        21 => "int2",
        23 => "int4",
        25 => "text",
        114 => "json",
        700 => "float4",
        701 => "float8",
        1042 => "bpchar",
        1043 => "varchar",
        1082 => "date",
        1083 => "time",
        1114 => "timestamp",
        1184 => "timestamptz",
        1186 => "interval",
        1700 => "numeric",
        2950 => "uuid",
        3802 => "jsonb",
        // Arrays: `_int4`, `_text`, ...
        _ => match crate::sql::types::pg_type(&c.field) {
            Ok(t) => return t.name().to_string(),
            Err(_) => return c.display_type(),
        },
    }
    .into()
}

fn columns(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in visible_relations(snap) {
        for c in &rel.columns {
            let mut row = vec![
                ("table_catalog", text(&snap.identity.database)),
                ("table_schema", text(&rel.schema)),
                ("table_name", text(&rel.name)),
                ("column_name", text(&c.name)),
                ("ordinal_position", int(c.num)),
                ("column_default", c.default.as_deref().map_or(null(), text)),
                ("is_nullable", yes_no(!c.not_null)),
                ("data_type", text(data_type_name(c))),
                ("udt_catalog", text(&snap.identity.database)),
                ("udt_schema", text(PG_CATALOG)),
                ("udt_name", text(udt_name(c))),
                ("dtd_identifier", text(c.num.to_string())),
                ("is_self_referencing", yes_no(false)),
                ("is_identity", yes_no(!rel.identity(&c.name).is_empty())),
                (
                    "identity_generation",
                    match rel.identity(&c.name) {
                        "a" => text("ALWAYS"),
                        "d" => text("BY DEFAULT"),
                        _ => null(),
                    },
                ),
                ("is_generated", text("NEVER")),
                (
                    "is_updatable",
                    yes_no(
                        rel.table().is_some()
                            || updatable_view(&rel).is_some_and(|columns| {
                                columns.get(c.num as usize - 1).copied().unwrap_or(false)
                            }),
                    ),
                ),
            ];
            match (TaggedType::of(&c.field), c.field.data_type()) {
                (Some(TaggedType::Varchar | TaggedType::Bpchar), _) => {
                    if let Some(n) = declared_length(&c.field) {
                        row.push(("character_maximum_length", int(n as i64)));
                        row.push(("character_octet_length", int(n as i64 * 4)));
                    }
                }
                (None, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
                    row.push(("character_octet_length", int(1073741824)));
                }
                (None, DataType::Int16) => numeric(&mut row, 16, 2, Some(0)),
                (None, DataType::Int32) => numeric(&mut row, 32, 2, Some(0)),
                (None, DataType::Int64) => numeric(&mut row, 64, 2, Some(0)),
                (None, DataType::Float32) => numeric(&mut row, 24, 2, None),
                (None, DataType::Float64) => numeric(&mut row, 53, 2, None),
                (None, DataType::Decimal128(p, s)) => {
                    numeric(&mut row, *p as i64, 10, Some(*s as i64))
                }
                (None, DataType::Date32 | DataType::Date64) => {
                    row.push(("datetime_precision", int(0)))
                }
                (None, DataType::Time64(_) | DataType::Timestamp(..) | DataType::Interval(_)) => {
                    row.push(("datetime_precision", int(6)))
                }
                _ => {}
            }
            rows.push(row);
        }
    }
    rows.finish()
}

fn numeric(row: &mut Vec<(&str, ScalarValue)>, precision: i64, radix: i64, scale: Option<i64>) {
    row.push(("numeric_precision", int(precision)));
    row.push(("numeric_precision_radix", int(radix)));
    if let Some(scale) = scale {
        row.push(("numeric_scale", int(scale)));
    }
}

fn constraint_type(kind: ConstraintKind) -> &'static str {
    match kind {
        ConstraintKind::Primary => "PRIMARY KEY",
        ConstraintKind::Unique => "UNIQUE",
        ConstraintKind::Check => "CHECK",
        ConstraintKind::Foreign => "FOREIGN KEY",
    }
}

fn table_constraints(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let db = &snap.identity.database;
    for rel in visible_relations(snap) {
        for c in &rel.constraints {
            rows.push(vec![
                ("constraint_catalog", text(db)),
                ("constraint_schema", text(&rel.schema)),
                ("constraint_name", text(&c.name)),
                ("table_catalog", text(db)),
                ("table_schema", text(&rel.schema)),
                ("table_name", text(&rel.name)),
                ("constraint_type", text(constraint_type(c.kind))),
                (
                    "is_deferrable",
                    yes_no(c.foreign.as_ref().is_some_and(|f| f.def.deferrable)),
                ),
                (
                    "initially_deferred",
                    yes_no(c.foreign.as_ref().is_some_and(|f| f.def.initially_deferred)),
                ),
                ("enforced", yes_no(true)),
                (
                    "nulls_distinct",
                    if c.is_key() { yes_no(true) } else { null() },
                ),
            ]);
        }
    }
    rows.finish()
}

fn key_column_usage(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let db = &snap.identity.database;
    for rel in visible_relations(snap) {
        for c in rel
            .constraints
            .iter()
            .filter(|c| c.is_key() || c.foreign.is_some())
        {
            for (i, column) in c.column_names.iter().enumerate() {
                rows.push(vec![
                    ("constraint_catalog", text(db)),
                    ("constraint_schema", text(&rel.schema)),
                    ("constraint_name", text(&c.name)),
                    ("table_catalog", text(db)),
                    ("table_schema", text(&rel.schema)),
                    ("table_name", text(&rel.name)),
                    ("column_name", text(column)),
                    ("ordinal_position", int(i as i64 + 1)),
                    (
                        "position_in_unique_constraint",
                        if c.foreign.is_some() {
                            int(i as i64 + 1)
                        } else {
                            null()
                        },
                    ),
                ]);
            }
        }
    }
    rows.finish()
}

fn constraint_column_usage(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let db = &snap.identity.database;
    for rel in visible_relations(snap) {
        for c in &rel.constraints {
            // A foreign key uses the columns it references.
            let (schema, table, columns) = match &c.foreign {
                Some(f) => (&f.def.ref_schema, &f.def.ref_table, &f.def.ref_columns),
                None => (&rel.schema, &rel.name, &c.column_names),
            };
            for column in columns {
                rows.push(vec![
                    ("table_catalog", text(db)),
                    ("table_schema", text(schema)),
                    ("table_name", text(table)),
                    ("column_name", text(column)),
                    ("constraint_catalog", text(db)),
                    ("constraint_schema", text(&rel.schema)),
                    ("constraint_name", text(&c.name)),
                ]);
            }
        }
    }
    rows.finish()
}

fn referential_constraints(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let db = &snap.identity.database;
    for rel in visible_relations(snap) {
        for c in &rel.constraints {
            if let Some(f) = &c.foreign {
                rows.push(vec![
                    ("constraint_catalog", text(db)),
                    ("constraint_schema", text(&rel.schema)),
                    ("constraint_name", text(&c.name)),
                    ("unique_constraint_catalog", text(db)),
                    ("unique_constraint_schema", text(&f.def.ref_schema)),
                    ("unique_constraint_name", text(&f.ref_index.1)),
                    ("match_option", text("NONE")),
                    ("update_rule", text(f.def.on_update.sql())),
                    ("delete_rule", text(f.def.on_delete.sql())),
                ]);
            }
        }
    }
    rows.finish()
}

fn check_constraints(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let db = &snap.identity.database;
    for rel in visible_relations(snap) {
        for c in &rel.constraints {
            if let Some(sql) = &c.check_sql {
                rows.push(vec![
                    ("constraint_catalog", text(db)),
                    ("constraint_schema", text(&rel.schema)),
                    ("constraint_name", text(&c.name)),
                    ("check_clause", text(format!("(({sql}))"))),
                ]);
            }
        }
    }
    rows.finish()
}
