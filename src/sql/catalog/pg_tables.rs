//! The `pg_catalog` tables generated from the live catalog.
//!
//! Over 800 lines: a list, one function per pg_catalog table, each
//! independent of the others.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::error::Result;

use super::rows::{boolean, int, int2_list, int4_list, text, Rows};
use super::snapshot::{namespace_oid, ConstraintKind, Relation, Snapshot};
use super::system::Generated;
use super::{INFORMATION_SCHEMA, OWNER, OWNER_OID, PG_CATALOG};
use crate::engine::roles::AclObject;
use crate::engine::sessions::TEMP_SCHEMA_PREFIX;

pub static TABLES: &[Generated] = &[
    Generated {
        name: "pg_sequence",
        columns: &[
            ("seqrelid", "oid"),
            ("seqtypid", "oid"),
            ("seqstart", "int8"),
            ("seqincrement", "int8"),
            ("seqmax", "int8"),
            ("seqmin", "int8"),
            ("seqcache", "int8"),
            ("seqcycle", "bool"),
        ],
        build: pg_sequence,
    },
    Generated {
        name: "pg_sequences",
        columns: &[
            ("schemaname", "name"),
            ("sequencename", "name"),
            ("sequenceowner", "name"),
            ("data_type", "regtype"),
            ("start_value", "int8"),
            ("min_value", "int8"),
            ("max_value", "int8"),
            ("increment_by", "int8"),
            ("cycle", "bool"),
            ("cache_size", "int8"),
            ("last_value", "int8"),
        ],
        build: pg_sequences,
    },
    Generated {
        name: "pg_namespace",
        columns: &[
            ("oid", "oid"),
            ("nspname", "name"),
            ("nspowner", "oid"),
            ("nspacl", "text[]"),
        ],
        build: pg_namespace,
    },
    Generated {
        name: "pg_class",
        columns: &[
            ("oid", "oid"),
            ("relname", "name"),
            ("relnamespace", "oid"),
            ("reltype", "oid"),
            ("reloftype", "oid"),
            ("relowner", "oid"),
            ("relam", "oid"),
            ("relfilenode", "oid"),
            ("reltablespace", "oid"),
            ("relpages", "int4"),
            ("reltuples", "float4"),
            ("relallvisible", "int4"),
            ("reltoastrelid", "oid"),
            ("relhasindex", "bool"),
            ("relisshared", "bool"),
            ("relpersistence", "char"),
            ("relkind", "char"),
            ("relnatts", "int2"),
            ("relchecks", "int2"),
            ("relhasrules", "bool"),
            ("relhastriggers", "bool"),
            ("relhassubclass", "bool"),
            ("relrowsecurity", "bool"),
            ("relforcerowsecurity", "bool"),
            ("relispopulated", "bool"),
            ("relreplident", "char"),
            ("relispartition", "bool"),
            ("relrewrite", "oid"),
            ("relfrozenxid", "xid"),
            ("relminmxid", "xid"),
            ("relacl", "text[]"),
            ("reloptions", "text[]"),
            ("relpartbound", "text"),
        ],
        build: pg_class,
    },
    Generated {
        name: "pg_attribute",
        columns: &[
            ("attrelid", "oid"),
            ("attname", "name"),
            ("atttypid", "oid"),
            ("attstattarget", "int4"),
            ("attlen", "int2"),
            ("attnum", "int2"),
            ("attndims", "int4"),
            ("attcacheoff", "int4"),
            ("atttypmod", "int4"),
            ("attbyval", "bool"),
            ("attalign", "char"),
            ("attstorage", "char"),
            ("attcompression", "char"),
            ("attnotnull", "bool"),
            ("atthasdef", "bool"),
            ("atthasmissing", "bool"),
            ("attidentity", "char"),
            ("attgenerated", "char"),
            ("attisdropped", "bool"),
            ("attislocal", "bool"),
            ("attinhcount", "int4"),
            ("attcollation", "oid"),
            ("attacl", "text[]"),
            ("attoptions", "text[]"),
            ("attfdwoptions", "text[]"),
            ("attmissingval", "text"),
        ],
        build: pg_attribute,
    },
    Generated {
        name: "pg_attrdef",
        columns: &[
            ("oid", "oid"),
            ("adrelid", "oid"),
            ("adnum", "int2"),
            ("adbin", "text"),
        ],
        build: pg_attrdef,
    },
    Generated {
        name: "pg_constraint",
        columns: &[
            ("oid", "oid"),
            ("conname", "name"),
            ("connamespace", "oid"),
            ("contype", "char"),
            ("condeferrable", "bool"),
            ("condeferred", "bool"),
            ("convalidated", "bool"),
            ("conrelid", "oid"),
            ("contypid", "oid"),
            ("conindid", "oid"),
            ("conparentid", "oid"),
            ("confrelid", "oid"),
            ("confupdtype", "char"),
            ("confdeltype", "char"),
            ("confmatchtype", "char"),
            ("conislocal", "bool"),
            ("coninhcount", "int4"),
            ("connoinherit", "bool"),
            ("conkey", "int2[]"),
            ("confkey", "int2[]"),
            ("conpfeqop", "oid[]"),
            ("conppeqop", "oid[]"),
            ("conffeqop", "oid[]"),
            ("confdelsetcols", "int2[]"),
            ("conexclop", "oid[]"),
            ("conbin", "text"),
        ],
        build: pg_constraint,
    },
    Generated {
        name: "pg_index",
        columns: &[
            ("indexrelid", "oid"),
            ("indrelid", "oid"),
            ("indnatts", "int2"),
            ("indnkeyatts", "int2"),
            ("indisunique", "bool"),
            ("indnullsnotdistinct", "bool"),
            ("indisprimary", "bool"),
            ("indisexclusion", "bool"),
            ("indimmediate", "bool"),
            ("indisclustered", "bool"),
            ("indisvalid", "bool"),
            ("indcheckxmin", "bool"),
            ("indisready", "bool"),
            ("indislive", "bool"),
            ("indisreplident", "bool"),
            ("indkey", "int2vector"),
            ("indcollation", "oidvector"),
            ("indclass", "oidvector"),
            ("indoption", "int2vector"),
            ("indexprs", "text"),
            ("indpred", "text"),
        ],
        build: pg_index,
    },
    Generated {
        name: "pg_indexes",
        columns: &[
            ("schemaname", "name"),
            ("tablename", "name"),
            ("indexname", "name"),
            ("tablespace", "name"),
            ("indexdef", "text"),
        ],
        build: pg_indexes,
    },
    Generated {
        name: "pg_tables",
        columns: &[
            ("schemaname", "name"),
            ("tablename", "name"),
            ("tableowner", "name"),
            ("tablespace", "name"),
            ("hasindexes", "bool"),
            ("hasrules", "bool"),
            ("hastriggers", "bool"),
            ("rowsecurity", "bool"),
        ],
        build: pg_tables,
    },
    Generated {
        name: "pg_views",
        columns: &[
            ("schemaname", "name"),
            ("viewname", "name"),
            ("viewowner", "name"),
            ("definition", "text"),
        ],
        build: pg_views,
    },
    Generated {
        name: "pg_matviews",
        columns: &[
            ("schemaname", "name"),
            ("matviewname", "name"),
            ("matviewowner", "name"),
            ("tablespace", "name"),
            ("hasindexes", "bool"),
            ("ispopulated", "bool"),
            ("definition", "text"),
        ],
        build: empty,
    },
    Generated {
        name: "pg_policies",
        columns: &[
            ("schemaname", "name"),
            ("tablename", "name"),
            ("policyname", "name"),
            ("permissive", "text"),
            ("roles", "text[]"),
            ("cmd", "text"),
            ("qual", "text"),
            ("with_check", "text"),
        ],
        build: empty,
    },
    Generated {
        name: "pg_description",
        columns: &[
            ("objoid", "oid"),
            ("classoid", "oid"),
            ("objsubid", "int4"),
            ("description", "text"),
        ],
        build: pg_description,
    },
    Generated {
        name: "pg_database",
        columns: &[
            ("oid", "oid"),
            ("datname", "name"),
            ("datdba", "oid"),
            ("encoding", "int4"),
            ("datlocprovider", "char"),
            ("datistemplate", "bool"),
            ("datallowconn", "bool"),
            ("datconnlimit", "int4"),
            ("datfrozenxid", "xid"),
            ("datminmxid", "xid"),
            ("dattablespace", "oid"),
            ("datcollate", "text"),
            ("datctype", "text"),
            ("daticulocale", "text"),
            ("datcollversion", "text"),
            ("datacl", "text[]"),
        ],
        build: pg_database,
    },
    Generated {
        name: "pg_roles",
        columns: &[
            ("rolname", "name"),
            ("rolsuper", "bool"),
            ("rolinherit", "bool"),
            ("rolcreaterole", "bool"),
            ("rolcreatedb", "bool"),
            ("rolcanlogin", "bool"),
            ("rolreplication", "bool"),
            ("rolconnlimit", "int4"),
            ("rolpassword", "text"),
            ("rolvaliduntil", "timestamptz"),
            ("rolbypassrls", "bool"),
            ("rolconfig", "text[]"),
            ("oid", "oid"),
        ],
        build: pg_roles,
    },
    Generated {
        name: "pg_authid",
        columns: &[
            ("oid", "oid"),
            ("rolname", "name"),
            ("rolsuper", "bool"),
            ("rolinherit", "bool"),
            ("rolcreaterole", "bool"),
            ("rolcreatedb", "bool"),
            ("rolcanlogin", "bool"),
            ("rolreplication", "bool"),
            ("rolbypassrls", "bool"),
            ("rolconnlimit", "int4"),
            ("rolpassword", "text"),
            ("rolvaliduntil", "timestamptz"),
        ],
        build: pg_roles,
    },
    Generated {
        name: "pg_user",
        columns: &[
            ("usename", "name"),
            ("usesysid", "oid"),
            ("usecreatedb", "bool"),
            ("usesuper", "bool"),
            ("userepl", "bool"),
            ("usebypassrls", "bool"),
            ("passwd", "text"),
            ("valuntil", "timestamptz"),
            ("useconfig", "text[]"),
        ],
        build: pg_user,
    },
    Generated {
        name: "pg_settings",
        columns: &[
            ("name", "text"),
            ("setting", "text"),
            ("unit", "text"),
            ("category", "text"),
            ("short_desc", "text"),
            ("extra_desc", "text"),
            ("context", "text"),
            ("vartype", "text"),
            ("source", "text"),
            ("min_val", "text"),
            ("max_val", "text"),
            ("enumvals", "text[]"),
            ("boot_val", "text"),
            ("reset_val", "text"),
            ("sourcefile", "text"),
            ("sourceline", "int4"),
            ("pending_restart", "bool"),
        ],
        build: pg_settings,
    },
    Generated {
        name: "pg_cursors",
        columns: &[
            ("name", "text"),
            ("statement", "text"),
            ("is_holdable", "bool"),
            ("is_binary", "bool"),
            ("is_scrollable", "bool"),
            ("creation_time", "timestamptz"),
        ],
        build: pg_cursors,
    },
    Generated {
        name: "pg_locks",
        columns: &[
            ("locktype", "text"),
            ("database", "oid"),
            ("relation", "oid"),
            ("page", "int4"),
            ("tuple", "int2"),
            ("virtualxid", "text"),
            ("transactionid", "xid"),
            ("classid", "oid"),
            ("objid", "oid"),
            ("objsubid", "int2"),
            ("virtualtransaction", "text"),
            ("pid", "int4"),
            ("mode", "text"),
            ("granted", "bool"),
            ("fastpath", "bool"),
            ("waitstart", "timestamptz"),
        ],
        build: pg_locks,
    },
    Generated {
        name: "pg_stat_replication",
        columns: super::replication::STAT_REPLICATION,
        build: super::replication::pg_stat_replication,
    },
    Generated {
        name: "pg_stat_wal_receiver",
        columns: super::replication::STAT_WAL_RECEIVER,
        build: super::replication::pg_stat_wal_receiver,
    },
    Generated {
        name: "pg_replication_slots",
        columns: super::replication::REPLICATION_SLOTS,
        build: super::replication::pg_replication_slots,
    },
    Generated {
        name: "pg_stat_activity",
        columns: &[
            ("datid", "oid"),
            ("datname", "name"),
            ("pid", "int4"),
            ("leader_pid", "int4"),
            ("usesysid", "oid"),
            ("usename", "name"),
            ("application_name", "text"),
            ("client_addr", "text"),
            ("client_hostname", "text"),
            ("client_port", "int4"),
            ("backend_start", "timestamptz"),
            ("xact_start", "timestamptz"),
            ("query_start", "timestamptz"),
            ("state_change", "timestamptz"),
            ("wait_event_type", "text"),
            ("wait_event", "text"),
            ("state", "text"),
            ("backend_xid", "xid"),
            ("backend_xmin", "xid"),
            ("query_id", "int8"),
            ("query", "text"),
            ("backend_type", "text"),
        ],
        build: pg_stat_activity,
    },
    Generated {
        name: QUIVER_TABLES,
        columns: &[
            ("schema_name", "name"),
            ("table_name", "name"),
            ("rows", "int8"),
            ("batches", "int8"),
            ("memory_bytes", "int8"),
            ("last_checkpoint", "timestamptz"),
            ("resident", "bool"),
        ],
        build: quiver_tables,
    },
    Generated {
        name: "pg_stat_user_tables",
        columns: &[
            ("relid", "oid"),
            ("schemaname", "name"),
            ("relname", "name"),
            ("seq_scan", "int8"),
            ("seq_tup_read", "int8"),
            ("idx_scan", "int8"),
            ("idx_tup_fetch", "int8"),
            ("n_tup_ins", "int8"),
            ("n_tup_upd", "int8"),
            ("n_tup_del", "int8"),
            ("n_tup_hot_upd", "int8"),
            ("n_live_tup", "int8"),
            ("n_dead_tup", "int8"),
        ],
        build: pg_stat_user_tables,
    },
];

fn empty(_: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    Rows::new(schema).finish()
}

fn oid(o: i32) -> ScalarValue {
    int(o as i64)
}

fn null() -> ScalarValue {
    ScalarValue::Null
}

/// The database's oid: derived from its name like every other.
pub fn database_oid(name: &str) -> i32 {
    super::snapshot::relation_oid("", name)
}

fn pg_namespace(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let mut names = vec![
        PG_CATALOG.to_string(),
        "pg_toast".to_string(),
        INFORMATION_SCHEMA.to_string(),
    ];
    names.extend(snap.schemas());
    for name in names {
        rows.push(vec![
            ("oid", oid(namespace_oid(&name))),
            ("nspname", text(&name)),
            (
                "nspowner",
                oid(user_oid(&owner_of(snap, &AclObject::Schema(name.clone())))),
            ),
        ]);
    }
    rows.finish()
}

fn pg_sequence(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        let Some(sequence) = rel.sequence() else {
            continue;
        };
        let options = sequence.options();
        rows.push(vec![
            ("seqrelid", oid(rel.oid)),
            ("seqtypid", oid(options.data_type.oid())),
            ("seqstart", int(options.start)),
            ("seqincrement", int(options.increment)),
            ("seqmax", int(options.max)),
            ("seqmin", int(options.min)),
            ("seqcache", int(options.cache)),
            ("seqcycle", boolean(options.cycle)),
        ]);
    }
    rows.finish()
}

fn pg_sequences(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        let Some(sequence) = rel.sequence() else {
            continue;
        };
        let options = sequence.options();
        let (last_value, is_called) = sequence.current();
        rows.push(vec![
            ("schemaname", text(&rel.schema)),
            ("sequencename", text(&rel.name)),
            (
                "sequenceowner",
                text(owner_of(snap, &relation_object(&rel))),
            ),
            ("data_type", text(options.data_type.name())),
            ("start_value", int(options.start)),
            ("min_value", int(options.min)),
            ("max_value", int(options.max)),
            ("increment_by", int(options.increment)),
            ("cycle", boolean(options.cycle)),
            ("cache_size", int(options.cache)),
            // NULL until the first nextval, as in PostgreSQL.
            (
                "last_value",
                if is_called { int(last_value) } else { null() },
            ),
        ]);
    }
    rows.finish()
}

fn pg_class(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    system_class_rows(&mut rows);
    for rel in snap.relations() {
        let checks = rel
            .constraints
            .iter()
            .filter(|c| c.check_sql.is_some())
            .count();
        let indexed = !rel.indexes.is_empty();
        let tuples = rel.table().map_or(0, |t| t.pin().row_count) as f64;
        let owner = user_oid(&owner_of(snap, &relation_object(&rel)));
        rows.push(class_row(
            rel.oid,
            &rel.name,
            rel.namespace_oid,
            rel.relkind(),
            rel.columns.len(),
            owner,
            vec![
                ("relhasindex", boolean(indexed)),
                ("relhastriggers", boolean(rel.has_triggers)),
                ("relchecks", int(checks as i64)),
                ("reltuples", ScalarValue::Float64(Some(tuples))),
                ("relam", oid(if rel.table().is_some() { 2 } else { 0 })),
                (
                    "relpersistence",
                    text(match rel.schema.starts_with(TEMP_SCHEMA_PREFIX) {
                        true => "t",
                        false => "p",
                    }),
                ),
            ],
        ));
        for index in &rel.indexes {
            rows.push(class_row(
                index.oid,
                &index.name,
                rel.namespace_oid,
                "i",
                index.columns.len(),
                owner,
                vec![("relam", oid(access_method_oid(&index.method)))],
            ));
        }
    }
    rows.finish()
}

/// The system catalogs clients name by `regclass`, owned by the bootstrap
/// superuser (oid 10) as in PostgreSQL.
fn system_class_rows(rows: &mut Rows) {
    for (name, rel_oid) in super::snapshot::SYSTEM_CATALOGS {
        rows.push(class_row(
            *rel_oid,
            name,
            namespace_oid(super::PG_CATALOG),
            "r",
            0,
            10,
            vec![("relam", oid(2))],
        ));
    }
}

fn class_row<'a>(
    rel_oid: i32,
    name: &str,
    namespace: i32,
    kind: &str,
    natts: usize,
    owner: i32,
    extra: Vec<(&'a str, ScalarValue)>,
) -> Vec<(&'a str, ScalarValue)> {
    let mut row = vec![
        ("oid", oid(rel_oid)),
        ("relname", text(name)),
        ("relnamespace", oid(namespace)),
        ("reltype", oid(0)),
        ("reloftype", oid(0)),
        ("relowner", oid(owner)),
        ("relfilenode", oid(rel_oid)),
        ("reltablespace", oid(0)),
        ("relpages", int(0)),
        ("relallvisible", int(0)),
        ("reltoastrelid", oid(0)),
        ("relisshared", boolean(false)),
        ("relpersistence", text("p")),
        ("relkind", text(kind)),
        ("relnatts", int(natts as i64)),
        ("relhasrules", boolean(false)),
        ("relhastriggers", boolean(false)),
        ("relhassubclass", boolean(false)),
        ("relrowsecurity", boolean(false)),
        ("relforcerowsecurity", boolean(false)),
        ("relispopulated", boolean(true)),
        ("relreplident", text(if kind == "r" { "d" } else { "n" })),
        ("relispartition", boolean(false)),
        ("relrewrite", oid(0)),
        ("relfrozenxid", int(0)),
        ("relminmxid", int(0)),
    ];
    for (name, value) in extra {
        row.retain(|(n, _)| *n != name);
        row.push((name, value));
    }
    row
}

/// Postgres' system columns: (name, type oid, attnum).
const SYSTEM_COLUMNS: &[(&str, i32, i64)] = &[
    ("tableoid", 26, -6),
    ("cmax", 29, -5),
    ("xmax", 28, -4),
    ("cmin", 29, -3),
    ("xmin", 28, -2),
    ("ctid", 27, -1),
];

/// (attlen, attbyval, attalign, attstorage) of a type, as pg_type has them.
fn type_layout(type_oid: i32) -> (i64, bool, &'static str, &'static str) {
    match type_oid {
        16 => (1, true, "c", "p"),
        21 => (2, true, "s", "p"),
        23 | 26 | 28 | 29 | 700 | 1082 => (4, true, "i", "p"),
        27 => (6, false, "s", "p"),
        20 | 701 | 1083 | 1114 | 1184 => (8, true, "d", "p"),
        1186 => (16, false, "d", "p"),
        2950 => (16, false, "c", "p"),
        1700 => (-1, false, "i", "m"),
        _ => (-1, false, "i", "x"),
    }
}

/// Collation of a column: "default" (100) for text types, none otherwise.
fn collation(type_oid: i32) -> i32 {
    match type_oid {
        25 | 1042 | 1043 | 19 => 100,
        _ => 0,
    }
}

/// One pg_attribute row.
struct Attribute<'a> {
    relation: i32,
    name: &'a str,
    type_oid: i32,
    num: i64,
    typmod: i32,
    not_null: bool,
    has_default: bool,
    /// Whether the type's default collation applies (user columns).
    collated: bool,
    /// `a`, `d` or empty (pg_attribute.attidentity).
    identity: &'static str,
}

impl Attribute<'_> {
    fn push(&self, rows: &mut Rows) {
        let (len, byval, align, storage) = type_layout(self.type_oid);
        rows.push(vec![
            ("attrelid", oid(self.relation)),
            ("attname", text(self.name)),
            ("atttypid", oid(self.type_oid)),
            ("attstattarget", int(if self.num > 0 { -1 } else { 0 })),
            ("attlen", int(len)),
            ("attnum", int(self.num)),
            ("attndims", int(0)),
            ("attcacheoff", int(-1)),
            ("atttypmod", int(self.typmod as i64)),
            ("attbyval", boolean(byval)),
            ("attalign", text(align)),
            ("attstorage", text(storage)),
            ("attcompression", text("")),
            ("attnotnull", boolean(self.not_null)),
            ("atthasdef", boolean(self.has_default)),
            ("atthasmissing", boolean(false)),
            ("attidentity", text(self.identity)),
            ("attgenerated", text("")),
            ("attisdropped", boolean(false)),
            ("attislocal", boolean(true)),
            ("attinhcount", int(0)),
            (
                "attcollation",
                oid(if self.collated {
                    collation(self.type_oid)
                } else {
                    0
                }),
            ),
        ]);
    }
}

fn pg_attribute(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        for c in &rel.columns {
            Attribute {
                relation: rel.oid,
                name: &c.name,
                type_oid: c.type_oid,
                num: c.num,
                typmod: c.typmod,
                not_null: c.not_null,
                has_default: c.default.is_some(),
                collated: true,
                identity: rel.identity(&c.name),
            }
            .push(&mut rows);
        }
        // Postgres lists a table's system columns too (negative numbers);
        // clients that show columns skip them with `attnum > 0`.
        if rel.table().is_some() {
            for (name, type_oid, num) in SYSTEM_COLUMNS {
                Attribute {
                    relation: rel.oid,
                    name,
                    type_oid: *type_oid,
                    num: *num,
                    typmod: -1,
                    not_null: true,
                    has_default: false,
                    collated: false,
                    identity: "",
                }
                .push(&mut rows);
            }
        }
        // An index's attributes are the key columns it covers.
        for index in &rel.indexes {
            for (i, num) in index.columns.iter().enumerate() {
                let c = &rel.columns[*num as usize - 1];
                Attribute {
                    relation: index.oid,
                    name: &c.name,
                    type_oid: c.type_oid,
                    num: i as i64 + 1,
                    typmod: c.typmod,
                    not_null: false,
                    has_default: false,
                    collated: true,
                    identity: "",
                }
                .push(&mut rows);
            }
        }
    }
    rows.finish()
}

fn pg_description(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for (objoid, classoid, objsubid, description) in snap.descriptions() {
        rows.push(vec![
            ("objoid", oid(objoid)),
            ("classoid", oid(classoid)),
            ("objsubid", int(objsubid)),
            ("description", text(description)),
        ]);
    }
    rows.finish()
}

fn pg_attrdef(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        for c in &rel.columns {
            if let Some(default) = &c.default {
                rows.push(vec![
                    ("oid", oid(c.default_oid)),
                    ("adrelid", oid(rel.oid)),
                    ("adnum", int(c.num)),
                    // pg_get_expr() shows an expression's text as is.
                    ("adbin", text(default)),
                ]);
            }
        }
    }
    rows.finish()
}

fn pg_constraint(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        for c in &rel.constraints {
            let foreign = c.foreign.as_ref();
            rows.push(vec![
                ("oid", oid(c.oid)),
                ("conname", text(&c.name)),
                ("connamespace", oid(rel.namespace_oid)),
                ("contype", text(c.contype())),
                (
                    "condeferrable",
                    boolean(foreign.is_some_and(|f| f.def.deferrable)),
                ),
                (
                    "condeferred",
                    boolean(foreign.is_some_and(|f| f.def.initially_deferred)),
                ),
                ("convalidated", boolean(true)),
                ("conrelid", oid(rel.oid)),
                ("contypid", oid(0)),
                ("conindid", oid(c.index_oid)),
                ("conparentid", oid(0)),
                ("confrelid", oid(foreign.map_or(0, |f| f.ref_oid))),
                (
                    "confupdtype",
                    text(foreign.map_or(" ", |f| f.def.on_update.code())),
                ),
                (
                    "confdeltype",
                    text(foreign.map_or(" ", |f| f.def.on_delete.code())),
                ),
                (
                    "confmatchtype",
                    text(if foreign.is_some() { "s" } else { " " }),
                ),
                ("conislocal", boolean(true)),
                ("coninhcount", int(0)),
                ("connoinherit", boolean(c.kind != ConstraintKind::Foreign)),
                ("conkey", int2_list(&c.columns)),
                (
                    "confkey",
                    foreign.map_or(null(), |f| int2_list(&f.ref_columns)),
                ),
                ("conbin", c.check_sql.as_deref().map_or(null(), text)),
            ]);
        }
    }
    rows.finish()
}

fn pg_index(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        for index in &rel.indexes {
            let n = index.columns.len();
            rows.push(vec![
                ("indexrelid", oid(index.oid)),
                ("indrelid", oid(rel.oid)),
                ("indnatts", int(n as i64)),
                ("indnkeyatts", int(n as i64)),
                ("indisunique", boolean(index.unique)),
                ("indnullsnotdistinct", boolean(false)),
                ("indisprimary", boolean(index.primary)),
                ("indisexclusion", boolean(false)),
                ("indimmediate", boolean(true)),
                ("indisclustered", boolean(false)),
                ("indisvalid", boolean(true)),
                ("indcheckxmin", boolean(false)),
                ("indisready", boolean(true)),
                ("indislive", boolean(true)),
                ("indisreplident", boolean(false)),
                ("indkey", int2_list(&index.columns)),
                ("indcollation", int4_list(&vec![0; n])),
                ("indclass", int4_list(&vec![0; n])),
                ("indoption", int2_list(&vec![0; n])),
            ]);
        }
    }
    rows.finish()
}

/// The oid of an index access method in `pg_am`.
fn access_method_oid(method: &str) -> i32 {
    match method {
        "hash" => 405,
        _ => 403,
    }
}

fn pg_indexes(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        for index in &rel.indexes {
            rows.push(vec![
                ("schemaname", text(&rel.schema)),
                ("tablename", text(&rel.name)),
                ("indexname", text(&index.name)),
                ("indexdef", text(index.definition(&rel))),
            ]);
        }
    }
    rows.finish()
}

fn pg_tables(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        if rel.table().is_some() {
            rows.push(vec![
                ("schemaname", text(&rel.schema)),
                ("tablename", text(&rel.name)),
                ("tableowner", text(owner_of(snap, &relation_object(&rel)))),
                ("hasindexes", boolean(!rel.indexes.is_empty())),
                ("hasrules", boolean(false)),
                ("hastriggers", boolean(rel.has_triggers)),
                ("rowsecurity", boolean(false)),
            ]);
        }
    }
    rows.finish()
}

/// `pg_get_viewdef()`: the defining query as written.
pub fn view_definition(rel: &Relation) -> Option<String> {
    match &rel.kind {
        super::snapshot::RelationKind::View(view) => Some(view.def.query.clone()),
        _ => None,
    }
}

fn pg_views(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        if let Some(definition) = view_definition(&rel) {
            rows.push(vec![
                ("schemaname", text(&rel.schema)),
                ("viewname", text(&rel.name)),
                ("viewowner", text(owner_of(snap, &relation_object(&rel)))),
                ("definition", text(definition)),
            ]);
        }
    }
    rows.finish()
}

/// The session's open cursors.
fn pg_cursors(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for cursor in snap.info.cursors() {
        rows.push(vec![
            ("name", text(&cursor.name)),
            ("statement", text(&cursor.statement)),
            ("is_holdable", boolean(cursor.holdable)),
            ("is_binary", boolean(false)),
            ("is_scrollable", boolean(false)),
            (
                "creation_time",
                ScalarValue::TimestampMicrosecond(
                    Some(cursor.created.timestamp_micros()),
                    Some("UTC".into()),
                ),
            ),
        ]);
    }
    rows.finish()
}

/// Advisory locks, as PostgreSQL lists them: the key's high and low 32
/// bits in classid and objid, objsubid 1 for a bigint key, 2 for a pair.
fn pg_locks(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for lock in snap.db.advisory().list() {
        rows.push(vec![
            ("locktype", text("advisory")),
            ("database", oid(database_oid(&snap.identity.database))),
            ("classid", oid((lock.key.value >> 32) as i32)),
            ("objid", oid(lock.key.value as i32)),
            ("objsubid", int(if lock.key.pair { 2 } else { 1 })),
            ("pid", int(lock.pid as i64)),
            (
                "mode",
                text(if lock.shared {
                    "ShareLock"
                } else {
                    "ExclusiveLock"
                }),
            ),
            ("granted", boolean(lock.granted)),
            ("fastpath", boolean(false)),
        ]);
    }
    rows.finish()
}

fn pg_database(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let name = &snap.identity.database;
    rows.push(vec![
        ("oid", oid(database_oid(name))),
        ("datname", text(name)),
        ("datdba", oid(OWNER_OID)),
        ("encoding", int(6)),
        ("datlocprovider", text("c")),
        ("datistemplate", boolean(false)),
        ("datallowconn", boolean(true)),
        ("datconnlimit", int(-1)),
        ("datfrozenxid", int(0)),
        ("datminmxid", int(1)),
        ("dattablespace", oid(1663)),
        ("datcollate", text("C")),
        ("datctype", text("C")),
    ]);
    rows.finish()
}

/// A role as the catalogs show it.
struct RoleRow {
    oid: i32,
    name: String,
    superuser: bool,
    login: bool,
    replication: bool,
    /// The stored SCRAM verifier.
    password: Option<String>,
}

/// The roles: the bootstrap owner of objects nobody else owns, every
/// defined role, and the connected user when it is no role.
fn roles(snap: &Snapshot) -> Vec<RoleRow> {
    let mut roles = vec![RoleRow {
        oid: OWNER_OID,
        name: OWNER.to_string(),
        superuser: true,
        login: true,
        replication: false,
        password: None,
    }];
    for role in snap.catalog.roles.values() {
        if role.name != OWNER {
            roles.push(RoleRow {
                oid: user_oid(&role.name),
                name: role.name.clone(),
                superuser: role.superuser,
                login: role.login,
                replication: role.replication,
                password: role.password.clone(),
            });
        }
    }
    let user = &snap.identity.user;
    if !roles.iter().any(|r| &r.name == user) {
        roles.push(RoleRow {
            oid: user_oid(user),
            name: user.clone(),
            superuser: snap.identity.implicit_superuser,
            login: true,
            replication: false,
            password: None,
        });
    }
    roles
}

fn relation_object(rel: &super::snapshot::Relation) -> AclObject {
    AclObject::Relation {
        schema: rel.schema.clone(),
        name: rel.name.clone(),
    }
}

pub fn user_oid(name: &str) -> i32 {
    if name == OWNER {
        OWNER_OID
    } else {
        super::snapshot::relation_oid("\0role", name)
    }
}

/// The owner of a schema or relation: its owning role, or the bootstrap
/// owner for objects made before roles existed.
pub fn owner_of(snap: &Snapshot, object: &AclObject) -> String {
    match snap.catalog.acl(object) {
        Some(acl) if !acl.owner.is_empty() => acl.owner.clone(),
        _ => OWNER.to_string(),
    }
}

/// The role name for an oid (`pg_get_userbyid`).
pub fn role_name(snap: &Snapshot, role: i32) -> Option<String> {
    if let Some(found) = roles(snap).into_iter().find(|r| r.oid == role) {
        return Some(found.name);
    }
    // Owners that are no role (sessions of a database without passwords).
    snap.catalog
        .acls
        .values()
        .map(|acl| &acl.owner)
        .find(|owner| user_oid(owner) == role)
        .cloned()
}

/// pg_roles hides passwords; pg_authid shows the verifiers, to superusers.
fn pg_roles(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let show_verifiers = schema.field_with_name("rolconfig").is_err()
        && snap.catalog.is_superuser(snap.identity.actor());
    let mut rows = Rows::new(schema);
    for role in roles(snap) {
        let password = match (&role.password, show_verifiers) {
            (Some(verifier), true) => text(verifier),
            (Some(_), false) => text("********"),
            (None, _) => ScalarValue::Utf8(None),
        };
        rows.push(vec![
            ("oid", oid(role.oid)),
            ("rolname", text(role.name)),
            ("rolsuper", boolean(role.superuser)),
            ("rolinherit", boolean(true)),
            ("rolcreaterole", boolean(role.superuser)),
            ("rolcreatedb", boolean(role.superuser)),
            ("rolcanlogin", boolean(role.login)),
            ("rolreplication", boolean(role.replication)),
            ("rolconnlimit", int(-1)),
            ("rolpassword", password),
            ("rolbypassrls", boolean(role.superuser)),
        ]);
    }
    rows.finish()
}

fn pg_user(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for role in roles(snap).into_iter().filter(|r| r.login) {
        rows.push(vec![
            ("usename", text(role.name)),
            ("usesysid", oid(role.oid)),
            ("usecreatedb", boolean(role.superuser)),
            ("usesuper", boolean(role.superuser)),
            ("userepl", boolean(false)),
            ("usebypassrls", boolean(role.superuser)),
            ("passwd", text("********")),
        ]);
    }
    rows.finish()
}

/// Read-only facts of the server, shown in pg_settings as Postgres does.
const SERVER_FACTS: &[(&str, &str, &str)] = &[
    ("block_size", "8192", "Shows the size of a disk block."),
    (
        "max_identifier_length",
        "63",
        "Shows the maximum identifier length.",
    ),
    (
        "max_index_keys",
        "32",
        "Shows the maximum number of index keys.",
    ),
    (
        "server_encoding",
        "UTF8",
        "Shows the server (database) character set encoding.",
    ),
];

fn pg_settings(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let settings = snap.info.settings();
    let facts = SERVER_FACTS
        .iter()
        .filter(|(name, _, _)| !settings.iter().any(|(n, _, _)| n == name));
    for (name, value, description) in facts {
        rows.push(vec![
            ("name", text(*name)),
            ("setting", text(*value)),
            ("category", text("Preset Options")),
            ("short_desc", text(*description)),
            ("context", text("internal")),
            ("vartype", text("integer")),
            ("source", text("default")),
            ("pending_restart", boolean(false)),
        ]);
    }
    // The server's own configuration (flags, QUIVER_* or quiver.toml):
    // fixed until restart, as PostgreSQL's postmaster settings are.
    for (name, value, description) in snap.db.server_settings() {
        rows.push(vec![
            ("name", text(&name)),
            ("setting", text(&value)),
            ("category", text("QuiverDB Server")),
            ("short_desc", text(&description)),
            ("context", text("postmaster")),
            ("vartype", text("string")),
            ("source", text("configuration file")),
            ("pending_restart", boolean(false)),
        ]);
    }
    for (name, value, description) in settings {
        rows.push(vec![
            ("name", text(name)),
            ("setting", text(value)),
            ("category", text("Client Connection Defaults")),
            ("short_desc", text(description)),
            ("context", text("user")),
            ("vartype", text("string")),
            ("source", text("session")),
            ("pending_restart", boolean(false)),
        ]);
    }
    rows.finish()
}

fn pg_stat_activity(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    let time = |t: chrono::DateTime<chrono::Utc>| {
        ScalarValue::TimestampMicrosecond(Some(t.timestamp_micros()), Some("UTC".into()))
    };
    // As in PostgreSQL, what other roles' sessions are doing is for
    // superusers to see.
    let sees_all = snap.catalog.is_superuser(snap.identity.actor());
    for session in snap.db.sessions.live() {
        let id = session.identity();
        let mut activity = session.activity();
        if !sees_all && id.user != snap.identity.user {
            activity.query = "<insufficient privilege>".into();
        }
        rows.push(vec![
            ("datid", oid(database_oid(&id.database))),
            ("datname", text(&id.database)),
            ("pid", int(id.pid as i64)),
            ("usesysid", oid(user_oid(&id.user))),
            ("usename", text(&id.user)),
            ("application_name", text(&id.application_name)),
            ("backend_start", time(session.started)),
            ("xact_start", activity.xact_start.map_or(null(), time)),
            ("query_start", activity.query_start.map_or(null(), time)),
            ("state_change", time(activity.state_change)),
            // A statement waiting for an execution slot (admission).
            (
                "wait_event_type",
                session.wait_event().map_or(null(), |_| text("Extension")),
            ),
            ("wait_event", session.wait_event().map_or(null(), text)),
            ("state", text(activity.state)),
            ("query", text(activity.query)),
            (
                "client_addr",
                id.client_addr.map_or(null(), |addr| text(addr.to_string())),
            ),
            ("backend_type", text(id.backend_type)),
        ]);
    }
    rows.finish()
}

/// The name of QuiverDB's own view of its tables (found from any schema).
pub const QUIVER_TABLES: &str = "quiver_tables";

/// One row per table: its rows, Arrow batches and memory, and when a
/// checkpoint last wrote it to disk (NULL: never, or no data directory).
fn quiver_tables(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let checkpoint = snap
        .db
        .commit_log()
        .and_then(|log| log.status().last_checkpoint);
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        let Some(table) = rel.table() else {
            continue;
        };
        let version = table.pin();
        let checkpointed = checkpoint
            .as_ref()
            .filter(|(_, ids)| ids.contains(&table.id()))
            .map(|(at, _)| {
                ScalarValue::TimestampMicrosecond(Some(at.timestamp_micros()), Some("UTC".into()))
            })
            .unwrap_or(ScalarValue::TimestampMicrosecond(None, Some("UTC".into())));
        rows.push(vec![
            ("schema_name", text(&rel.schema)),
            ("table_name", text(&rel.name)),
            ("rows", int(version.row_count as i64)),
            ("batches", int(version.segment_count() as i64)),
            ("memory_bytes", int(version.memory_bytes() as i64)),
            ("last_checkpoint", checkpointed),
            ("resident", boolean(version.unread().is_none())),
        ]);
    }
    rows.finish()
}

fn pg_stat_user_tables(snap: &Snapshot, schema: SchemaRef) -> Result<RecordBatch> {
    let mut rows = Rows::new(schema);
    for rel in snap.relations() {
        if let Some(table) = rel.table() {
            rows.push(vec![
                ("relid", oid(rel.oid)),
                ("schemaname", text(&rel.schema)),
                ("relname", text(&rel.name)),
                ("n_live_tup", int(table.pin().row_count as i64)),
            ]);
        }
    }
    rows.finish()
}
