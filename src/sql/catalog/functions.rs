//! The Postgres system functions that clients call in catalog queries.
//!
//! Over 800 lines: a list, one small function per PostgreSQL system
//! function.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBuilder, Int32Array, Int32Builder, Int64Array,
    ListBuilder, StringArray, StringBuilder, StructBuilder, TimestampNanosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Int64Type, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::context::SessionContext;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};
use datafusion_pg_catalog::pg_catalog as crate_fns;

use super::pg_tables::{role_name, view_definition};
use super::snapshot::{quote_ident, Snapshot};
use super::CatalogContext;
use crate::sql::settings::SERVER_VERSION;

type Body = dyn Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync;

/// A function of any arguments, computed column-wise by `body`.
struct Function {
    name: &'static str,
    signature: Signature,
    returns: DataType,
    /// The PostgreSQL type of the result, when Arrow's type does not say
    /// it (json is text here).
    tag: Option<crate::engine::types::TaggedType>,
    body: Box<Body>,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for Function {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Function {}

impl std::hash::Hash for Function {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state)
    }
}

impl ScalarUDFImpl for Function {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn return_field_from_args(
        &self,
        _: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<datafusion::arrow::datatypes::FieldRef> {
        let field = match self.tag {
            Some(tag) => crate::engine::types::character_field(tag, None)
                .with_data_type(self.returns.clone())
                .with_name(self.name),
            None => Field::new(self.name, self.returns.clone(), true),
        };
        Ok(Arc::new(field))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<Vec<_>>>()?;
        Ok(ColumnarValue::Array((self.body)(&arrays, rows)?))
    }
}

pub(super) fn udf(
    name: &'static str,
    returns: DataType,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    tagged_udf(name, returns, None, body)
}

/// A function whose result carries a type tag.
fn tagged_udf(
    name: &'static str,
    returns: DataType,
    tag: Option<crate::engine::types::TaggedType>,
    body: impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static,
) -> ScalarUDF {
    // Stable: the answer depends on the session and the catalog, and is
    // computed when a statement is optimized, which happens at each
    // execution (prepared statements keep the unoptimized plan). Being
    // foldable lets `generate_series(array_lower(...), ...)` plan.
    let signature = Signature::one_of(
        vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
        Volatility::Stable,
    );
    ScalarUDF::new_from_impl(Function {
        name,
        signature,
        returns,
        tag,
        body: Box::new(body),
    })
}

pub(super) fn arg_i64(args: &[ArrayRef], i: usize, rows: usize) -> Result<Int64Array> {
    match args.get(i) {
        Some(a) => Ok(cast(a, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .clone()),
        None => Ok(Int64Array::from(vec![None::<i64>; rows])),
    }
}

/// The first argument as text; an error naming the function without one.
fn required_text(args: &[ArrayRef], function: &str) -> Result<ArrayRef> {
    match args.first() {
        Some(a) => Ok(cast(a, &DataType::Utf8)?),
        None => Err(DataFusionError::Plan(format!("{function} needs a name"))),
    }
}

fn constant_text(value: String, rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![value; rows]))
}

fn nulls(rows: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![None::<&str>; rows]))
}

/// Maps each oid argument (column 0) to text through `f` on one snapshot.
fn by_oid(
    context: &CatalogContext,
    f: impl Fn(&Snapshot, i32, &[ArrayRef], usize) -> Option<String> + Send + Sync + 'static,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    let context = context.clone();
    move |args, rows| {
        let snap = context.snapshot();
        let oids = arg_i64(args, 0, rows)?;
        let out: StringArray = (0..oids.len())
            .map(|i| {
                if oids.is_null(i) {
                    None
                } else {
                    f(&snap, oids.value(i) as i32, args, i)
                }
            })
            .collect();
        Ok(Arc::new(out))
    }
}

pub fn register(ctx: &SessionContext, context: &CatalogContext) {
    let c = context.clone();
    ctx.register_udf(udf("current_schema", DataType::Utf8, move |_, rows| {
        let snap = c.snapshot();
        let path = snap.info.search_path();
        let first = path
            .into_iter()
            .find(|s| snap.catalog.schemas.contains_key(s));
        Ok(match first {
            Some(s) => constant_text(s, rows),
            None => nulls(rows),
        })
    }));
    let c = context.clone();
    ctx.register_udf(udf(
        "current_schemas",
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
        move |args, rows| {
            let snap = c.snapshot();
            let implicit = args
                .first()
                .and_then(|a| a.as_boolean_opt().cloned())
                .unwrap_or_else(|| BooleanArray::from(vec![false; rows]));
            let mut builder = ListBuilder::new(StringBuilder::new());
            for i in 0..rows {
                if implicit.len() > i && implicit.value(i) {
                    builder.values().append_value("pg_catalog");
                }
                for s in snap.info.search_path() {
                    if snap.catalog.schemas.contains_key(&s) {
                        builder.values().append_value(s);
                    }
                }
                builder.append(true);
            }
            Ok(Arc::new(builder.finish()))
        },
    ));
    let c = context.clone();
    ctx.register_udf(udf("current_database", DataType::Utf8, move |_, rows| {
        Ok(constant_text(c.info.identity().database, rows))
    }));
    for name in ["session_user", "current_user", "user"] {
        let c = context.clone();
        ctx.register_udf(udf(name, DataType::Utf8, move |_, rows| {
            Ok(constant_text(c.info.identity().user, rows))
        }));
    }
    let c = context.clone();
    ctx.register_udf(udf("pg_backend_pid", DataType::Int32, move |_, rows| {
        Ok(Arc::new(Int32Array::from(vec![
            c.info.identity().pid;
            rows
        ])))
    }));
    ctx.register_udf(udf("version", DataType::Utf8, move |_, rows| {
        Ok(constant_text(
            format!(
                "PostgreSQL {SERVER_VERSION} (QuiverDB {}) on {}-linux, compiled by rustc, 64-bit",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::ARCH
            ),
            rows,
        ))
    }));
    ctx.register_udf(udf(
        "pg_table_is_visible",
        DataType::Boolean,
        visibility(context),
    ));
    ctx.register_udf(udf(
        "pg_get_constraintdef",
        DataType::Utf8,
        by_oid(context, |snap, oid, _, _| {
            snap.relations()
                .iter()
                .flat_map(|r| r.constraints.iter())
                .find(|c| c.oid == oid)
                .map(|c| c.definition())
        }),
    ));
    ctx.register_udf(udf(
        "pg_get_indexdef",
        DataType::Utf8,
        by_oid(context, |snap, oid, args, i| {
            let column = arg_i64(args, 1, i + 1).ok().and_then(|a| {
                (a.len() > i && !a.is_null(i) && a.value(i) > 0).then(|| a.value(i) as usize)
            });
            snap.relations().iter().find_map(|r| {
                let index = r.indexes.iter().find(|i| i.oid == oid)?;
                Some(match column {
                    Some(n) => index.column_names.get(n - 1).cloned().unwrap_or_default(),
                    None => index.definition(r),
                })
            })
        }),
    ));
    // By oid, or by name (`pg_get_viewdef('v')`: PostgreSQL's text form).
    let view_by_oid = by_oid(context, |snap, oid, _, _| {
        snap.relation(oid).as_ref().and_then(view_definition)
    });
    let oid_of_name = to_regclass(context);
    ctx.register_udf(udf(
        "pg_get_viewdef",
        DataType::Utf8,
        move |args, rows| match args.first().map(|a| a.data_type()) {
            Some(DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8) => {
                let mut args = args.to_vec();
                args[0] = oid_of_name(&args[..1], rows)?;
                view_by_oid(&args, rows)
            }
            _ => view_by_oid(args, rows),
        },
    ));
    ctx.register_udf(udf(
        "pg_get_userbyid",
        DataType::Utf8,
        by_oid(context, |snap, oid, _, _| {
            Some(role_name(snap, oid).unwrap_or_else(|| format!("unknown (OID={oid})")))
        }),
    ));
    for name in [
        "pg_table_size",
        "pg_relation_size",
        "pg_total_relation_size",
    ] {
        ctx.register_udf(udf(name, DataType::Int64, relation_size(context)));
    }
    ctx.register_udf(udf(
        "pg_stat_get_numscans",
        DataType::Int64,
        |args, rows| {
            let oids = arg_i64(args, 0, rows)?;
            Ok(Arc::new(Int64Array::from(vec![Some(0); oids.len()])))
        },
    ));
    let c = context.clone();
    ctx.register_udf(udf(
        "pg_database_size",
        DataType::Int64,
        move |args, rows| {
            let snap = c.snapshot();
            let total: usize = snap
                .relations()
                .iter()
                .filter_map(|r| r.table().map(|t| t.pin().memory_bytes()))
                .sum();
            let len = args.first().map_or(rows, |a| a.len());
            Ok(Arc::new(Int64Array::from(vec![Some(total as i64); len])))
        },
    ));
    ctx.register_udf(udf("format", DataType::Utf8, |args, rows| {
        let Some(formats) = args.first() else {
            return Err(DataFusionError::Plan("format needs a format string".into()));
        };
        let formats = cast(formats, &DataType::Utf8)?;
        let formats = formats.as_string::<i32>();
        let len = formats
            .len()
            .max(args.iter().map(|a| a.len()).max().unwrap_or(rows));
        let out: StringArray = (0..len)
            .map(|row| {
                let at = row.min(formats.len() - 1);
                if formats.is_null(at) {
                    return Ok(None);
                }
                let values = args[1..]
                    .iter()
                    .map(|a| {
                        let v = ScalarValue::try_from_array(a, row.min(a.len() - 1))?;
                        Ok((!v.is_null()).then(|| match v {
                            ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => s,
                            other => other.to_string(),
                        }))
                    })
                    .collect::<Result<Vec<Option<String>>>>()?;
                format_text(formats.value(at), &values).map(Some)
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(out))
    }));
    ctx.register_udf(udf("pg_indexes_size", DataType::Int64, |args, rows| {
        let oids = arg_i64(args, 0, rows)?;
        Ok(Arc::new(Int64Array::from(vec![Some(0); oids.len()])))
    }));
    ctx.register_udf(udf("pg_size_pretty", DataType::Utf8, |args, rows| {
        let sizes = arg_i64(args, 0, rows)?;
        let out: StringArray = sizes.iter().map(|s| s.map(size_pretty)).collect();
        Ok(Arc::new(out))
    }));
    ctx.register_udf(udf("to_regclass", DataType::Int32, to_regclass(context)));
    // No table is partitioned: a table's only "ancestor" is itself. psql
    // calls it both ways to list foreign keys.
    ctx.register_udf(udf(
        "pg_partition_ancestors",
        DataType::Int32,
        |args, rows| {
            let oids = arg_i64(args, 0, rows)?;
            Ok(Arc::new(cast(&oids, &DataType::Int32)?))
        },
    ));
    ctx.register_udtf("pg_partition_ancestors", Arc::new(PartitionAncestors));
    ctx.register_udf(udf(
        "pg_get_serial_sequence",
        DataType::Utf8,
        serial_sequence(context),
    ));
    ctx.register_udf(udf("to_regtype", DataType::Int32, |args, rows| {
        let names = required_text(args, "to_regtype")?;
        let names = names.as_string::<i32>();
        let out: Int32Array = (0..names.len().max(rows.min(names.len())))
            .map(|i| {
                (!names.is_null(i))
                    .then(|| builtin_type_oid(names.value(i)))
                    .flatten()
            })
            .collect();
        Ok(Arc::new(out))
    }));

    // COMMENT ON descriptions. Roles and the database have none.
    ctx.register_udf(udf(
        "obj_description",
        DataType::Utf8,
        by_oid(context, |snap, oid, _, _| snap.object_comment(oid)),
    ));
    ctx.register_udf(udf(
        "col_description",
        DataType::Utf8,
        by_oid(context, |snap, oid, args, i| {
            let attnum = arg_i64(args, 1, i + 1).ok()?;
            (attnum.len() > i && !attnum.is_null(i))
                .then(|| snap.column_comment(oid, attnum.value(i)))
                .flatten()
        }),
    ));
    ctx.register_udf(udf("shobj_description", DataType::Utf8, |_, rows| {
        Ok(nulls(rows))
    }));
    // Functions are built in: none has a user-visible definition.
    for name in [
        "pg_get_function_result",
        "pg_get_function_arguments",
        "pg_get_function_identity_arguments",
        "pg_get_functiondef",
        "pg_get_triggerdef",
        "pg_get_ruledef",
        "pg_get_partkeydef",
        "pg_get_statisticsobjdef_columns",
        // No tablespaces of our own.
        "pg_tablespace_location",
    ] {
        ctx.register_udf(udf(name, DataType::Utf8, |_, rows| Ok(nulls(rows))));
    }
    // The stored expression text is its own display form.
    ctx.register_udf(udf("pg_get_expr", DataType::Utf8, |args, rows| {
        Ok(match args.first() {
            Some(a) => cast(a, &DataType::Utf8)?,
            None => nulls(rows),
        })
    }));
    ctx.register_udf(udf(
        "pg_cancel_backend",
        DataType::Boolean,
        signal_backend(context, false),
    ));
    ctx.register_udf(udf(
        "pg_terminate_backend",
        DataType::Boolean,
        signal_backend(context, true),
    ));
    ctx.register_udf(udf(
        "has_table_privilege",
        DataType::Boolean,
        privilege_check(context, false),
    ));
    ctx.register_udf(udf(
        "has_schema_privilege",
        DataType::Boolean,
        privilege_check(context, true),
    ));
    // Every role may connect, use every function and type; column
    // privileges are those of the table (has_column_privilege answers for
    // the column as a whole, permissively).
    for name in [
        "has_database_privilege",
        "has_column_privilege",
        "has_any_column_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
        "pg_type_is_visible",
        "pg_function_is_visible",
        "pg_collation_is_visible",
        "pg_conversion_is_visible",
        "pg_operator_is_visible",
        "pg_opclass_is_visible",
        "pg_opfamily_is_visible",
        "pg_ts_config_is_visible",
        "pg_ts_dict_is_visible",
        "pg_ts_parser_is_visible",
        "pg_ts_template_is_visible",
    ] {
        ctx.register_udf(udf(name, DataType::Boolean, |_, rows| {
            Ok(Arc::new(BooleanArray::from(vec![true; rows])))
        }));
    }
    for (name, nullable) in [("quote_literal", false), ("quote_nullable", true)] {
        ctx.register_udf(udf(name, DataType::Utf8, move |args, rows| {
            let values = match args.first() {
                Some(a) => cast(a, &DataType::Utf8)?,
                None => return Ok(nulls(rows)),
            };
            let out: StringArray = values
                .as_string::<i32>()
                .iter()
                .map(|v| match v {
                    Some(v) => Some(quote_literal(v)),
                    None if nullable => Some("NULL".to_string()),
                    None => None,
                })
                .collect();
            Ok(Arc::new(out))
        }));
    }
    // LIKE ... ESCAPE 'c' with a pattern that is a parameter.
    ctx.register_udf(udf("pg_like_escape", DataType::Utf8, |args, rows| {
        let (Some(patterns), Some(escapes)) = (args.first(), args.get(1)) else {
            return Ok(nulls(rows));
        };
        let patterns = cast(patterns, &DataType::Utf8)?;
        let escapes = cast(escapes, &DataType::Utf8)?;
        let (patterns, escapes) = (patterns.as_string::<i32>(), escapes.as_string::<i32>());
        let out: StringArray = (0..patterns.len())
            .map(|i| {
                if patterns.is_null(i) {
                    return None;
                }
                let escape = escapes.value(i.min(escapes.len() - 1)).chars().next();
                Some(match escape {
                    Some(e) => super::rewrite::backslash_escapes(patterns.value(i), e),
                    None => patterns.value(i).to_string(),
                })
            })
            .collect();
        Ok(Arc::new(out))
    }));
    // pgjdbc's getPrimaryKeys: `information_schema._pg_expandarray(a)`
    // gives (x, n) pairs; the rewrite unnests this list of them.
    ctx.register_udf(udf(
        "pg_expandarray",
        DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(expand_fields()),
            true,
        ))),
        |args, rows| {
            let Some(lists) = args.first() else {
                return Ok(nulls(rows));
            };
            let lists = cast(
                lists,
                &DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
            )?;
            let lists = lists.as_list::<i32>();
            let mut builder = ListBuilder::new(StructBuilder::from_fields(expand_fields(), 0));
            for i in 0..lists.len() {
                if lists.is_null(i) {
                    builder.append(false);
                    continue;
                }
                let items = lists.value(i);
                let items = items.as_primitive::<Int32Type>();
                for (n, x) in items.iter().enumerate() {
                    let entry = builder.values();
                    entry
                        .field_builder::<Int32Builder>(0)
                        .expect("x")
                        .append_option(x);
                    entry
                        .field_builder::<Int32Builder>(1)
                        .expect("n")
                        .append_value(n as i32 + 1);
                    entry.append(true);
                }
                builder.append(true);
            }
            Ok(Arc::new(builder.finish()))
        },
    ));
    let c = context.clone();
    ctx.register_udf(udf("current_setting", DataType::Utf8, move |args, rows| {
        let names = required_text(args, "current_setting")?;
        let missing_ok = args
            .get(1)
            .and_then(|a| a.as_boolean_opt().map(|b| !b.is_empty() && b.value(0)))
            .unwrap_or(false);
        let settings = c.info.settings();
        let names = names.as_string::<i32>();
        let out: StringArray = (0..names.len().max(rows.min(names.len())))
            .map(|i| {
                if names.is_null(i) {
                    return Ok(None);
                }
                let name = names.value(i);
                if let Some((_, v, _)) = settings
                    .iter()
                    .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
                {
                    return Ok(Some(v.clone()));
                }
                match name.to_ascii_lowercase().as_str() {
                    "server_version" => Ok(Some(SERVER_VERSION.to_string())),
                    "default_table_access_method" => Ok(Some("heap".to_string())),
                    "jit" => Ok(Some("off".to_string())),
                    _ if missing_ok => Ok(None),
                    _ => Err(DataFusionError::Plan(format!(
                        "unrecognized configuration parameter \"{name}\""
                    ))),
                }
            })
            .collect::<Result<_>>()?;
        Ok(Arc::new(out))
    }));
    // `datafusion-pg-catalog`'s, with an array's modifier applied to its
    // element (`numeric(10,2)[]`, `character varying(20)[]`).
    let format_type = crate_fns::format_type::create_format_type_udf();
    ctx.register_udf(udf("format_type", DataType::Utf8, move |args, rows| {
        let oids = cast(&arg_i64(args, 0, rows)?, &DataType::Int32)?;
        let oids = oids.as_primitive::<Int32Type>();
        let mods = match args.get(1) {
            Some(_) => cast(&arg_i64(args, 1, rows)?, &DataType::Int32)?,
            None => Arc::new(Int32Array::new_null(rows)),
        };
        let mods = mods.as_primitive::<Int32Type>();
        // Arrays with a modifier: their element's oid, marked.
        let mut array_rows = vec![false; rows];
        let element_oids: Int32Array = oids
            .iter()
            .zip(mods.iter())
            .enumerate()
            .map(|(row, (oid, typmod))| {
                let element = oid
                    .filter(|_| typmod.is_some_and(|m| m >= 0))
                    .and_then(|oid| pgwire::api::Type::from_oid(oid as u32))
                    .and_then(|t| match t.kind() {
                        postgres_types::Kind::Array(member) => Some(member.oid() as i32),
                        _ => None,
                    });
                array_rows[row] = element.is_some();
                element.or(oid)
            })
            .collect();
        let field = Arc::new(Field::new("oid", DataType::Int32, true));
        let fields = vec![field.clone(), field];
        let formatted = format_type
            .invoke_with_args(ScalarFunctionArgs {
                args: vec![
                    ColumnarValue::Array(Arc::new(element_oids)),
                    ColumnarValue::Array(Arc::new(mods.clone())),
                ],
                arg_fields: fields,
                number_rows: rows,
                return_field: Arc::new(Field::new("format_type", DataType::Utf8, true)),
                config_options: Default::default(),
            })?
            .to_array(rows)?;
        let out: StringArray = formatted
            .as_string::<i32>()
            .iter()
            .zip(array_rows)
            .map(|(text, array)| match array {
                true => text.map(|t| format!("{t}[]")),
                false => text.map(str::to_string),
            })
            .collect();
        Ok(Arc::new(out))
    }));
    ctx.register_udf(udf("pg_encoding_to_char", DataType::Utf8, |args, rows| {
        let codes = arg_i64(args, 0, rows)?;
        let out: StringArray = codes
            .iter()
            .map(|c| {
                c.map(|c| match c {
                    0 => "SQL_ASCII",
                    6 => "UTF8",
                    _ => "",
                })
            })
            .collect();
        Ok(Arc::new(out))
    }));
    ctx.register_udf(crate_fns::quote_ident_udf::create_quote_ident_udf());
    ctx.register_udf(crate_fns::quote_ident_udf::create_parse_ident_udf());
    ctx.register_udf(crate_fns::array_bounds_udf::create_array_upper_udf());
    ctx.register_udf(crate_fns::array_bounds_udf::create_array_lower_udf());
    register_clocks(ctx, context);
}

/// PostgreSQL's clocks beside `now()` (the transaction's start, which the
/// session stamps on its planning state): `transaction_timestamp()` is
/// the same, `statement_timestamp()` the running statement's start, and
/// `clock_timestamp()` the time it is called, row by row.
fn register_clocks(ctx: &SessionContext, context: &CatalogContext) {
    let timestamptz = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let at = |time: chrono::DateTime<chrono::Utc>, rows: usize| -> Result<ArrayRef> {
        let nanos = time.timestamp_nanos_opt().unwrap_or_default();
        Ok(Arc::new(
            TimestampNanosecondArray::from(vec![nanos; rows]).with_timezone("UTC"),
        ))
    };
    let clock = |name, volatility, body: Box<Body>| {
        ScalarUDF::new_from_impl(Function {
            name,
            signature: Signature::nullary(volatility),
            returns: timestamptz.clone(),
            tag: None,
            body,
        })
    };
    let now = ctx
        .udf("now")
        .expect("DataFusion registers now()")
        .as_ref()
        .clone()
        .with_aliases(["transaction_timestamp"]);
    ctx.register_udf(now);
    let c = context.clone();
    ctx.register_udf(clock(
        "statement_timestamp",
        Volatility::Stable,
        Box::new(move |_, rows| {
            at(
                c.info.statement_start().unwrap_or_else(chrono::Utc::now),
                rows,
            )
        }),
    ));
    ctx.register_udf(clock(
        "clock_timestamp",
        Volatility::Volatile,
        Box::new(|_, rows| {
            let times: TimestampNanosecondArray = (0..rows)
                .map(|_| chrono::Utc::now().timestamp_nanos_opt())
                .collect();
            Ok(Arc::new(times.with_timezone("UTC")))
        }),
    ));
}

fn visibility(
    context: &CatalogContext,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    let context = context.clone();
    move |args, rows| {
        let snap = context.snapshot();
        let relations = snap.relations();
        let oids = arg_i64(args, 0, rows)?;
        let out: BooleanArray = oids
            .iter()
            .map(|oid| {
                let oid = oid? as i32;
                Some(match relations.iter().find(|r| r.oid == oid) {
                    Some(r) => snap.is_visible(&r.schema),
                    // An index is visible with its table.
                    None => relations
                        .iter()
                        .find(|r| r.indexes.iter().any(|i| i.oid == oid))
                        .is_some_and(|r| snap.is_visible(&r.schema)),
                })
            })
            .collect();
        Ok(Arc::new(out))
    }
}

/// `pg_cancel_backend(pid)` and `pg_terminate_backend(pid [, timeout])`:
/// signal another session. A role may signal its own sessions; a superuser
/// any. False for a pid that is no session.
fn signal_backend(
    context: &CatalogContext,
    terminate: bool,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    let context = context.clone();
    move |args, rows| {
        let me = context.info.identity();
        let catalog = crate::engine::catalog::visible_catalog(&context.db, &context.slot);
        let superuser = catalog.is_superuser(me.actor());
        let pids = arg_i64(args, 0, rows)?;
        let sessions = context.db.sessions.live();
        let mut out = BooleanBuilder::with_capacity(rows);
        for pid in pids.iter() {
            let Some(pid) = pid else {
                out.append_null();
                continue;
            };
            let Some(target) = sessions.iter().find(|s| s.identity().pid as i64 == pid) else {
                tracing::warn!("PID {pid} is not a QuiverDB session");
                out.append_value(false);
                continue;
            };
            let them = target.identity();
            if !superuser {
                let denied = if catalog.is_superuser(them.actor()) {
                    Some("only superusers may signal a superuser's session")
                } else if them.user != me.user {
                    Some("only superusers may signal another role's session")
                } else {
                    None
                };
                if let Some(message) = denied {
                    return Err(DataFusionError::External(Box::new(
                        crate::error::QuiverError::InsufficientPrivilege(format!(
                            "permission denied to {} session {pid}: {message}",
                            if terminate { "terminate" } else { "cancel" }
                        )),
                    )));
                }
            }
            if terminate {
                target.terminate();
                out.append_value(true);
            } else {
                out.append_value(target.cancel());
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

/// `has_table_privilege([role,] table, privileges)` and
/// `has_schema_privilege([role,] schema, privileges)`: whether the role
/// holds any of the comma-separated privileges.
fn privilege_check(
    context: &CatalogContext,
    on_schema: bool,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    use crate::engine::roles::{AclObject, Actor, PRIVILEGE_NAMES};
    let context = context.clone();
    move |args, rows| {
        let snap = context.snapshot();
        let (role_arg, object_arg, privilege_arg) = match args.len() {
            2 => (None, &args[0], &args[1]),
            3 => (Some(&args[0]), &args[1], &args[2]),
            _ => {
                return Err(DataFusionError::Plan(
                    "has_*_privilege takes ([role,] object, privilege)".into(),
                ))
            }
        };
        let text_of = |a: &ArrayRef| -> Result<ArrayRef> { Ok(cast(a, &DataType::Utf8)?) };
        let roles = role_arg.map(text_of).transpose()?;
        let objects = text_of(object_arg)?;
        let privileges = text_of(privilege_arg)?;
        let relations = snap.relations();
        let mut out = BooleanBuilder::with_capacity(rows);
        for i in 0..rows {
            let value = |a: &ArrayRef| {
                let a = a.as_string::<i32>();
                let i = if a.len() == 1 { 0 } else { i };
                (!a.is_null(i)).then(|| a.value(i).to_string())
            };
            let (Some(object), Some(wanted)) = (value(&objects), value(&privileges)) else {
                out.append_null();
                continue;
            };
            let role = match &roles {
                Some(r) => match value(r) {
                    Some(name) => name,
                    None => {
                        out.append_null();
                        continue;
                    }
                },
                None => snap.identity.user.clone(),
            };
            // A role given by oid.
            let role = match role.parse::<i32>() {
                Ok(oid) => super::pg_tables::role_name(&snap, oid).unwrap_or(role),
                Err(_) => role,
            };
            let actor = Actor {
                name: &role,
                implicit_superuser: role == snap.identity.user && snap.identity.implicit_superuser,
            };
            let target = if on_schema {
                Some(AclObject::Schema(object.clone()))
            } else {
                // An oid (regclass) or a name, qualified or found on the
                // search path.
                let found = match object.parse::<i32>() {
                    Ok(oid) => relations.iter().find(|r| r.oid == oid),
                    Err(_) => match object.split_once('.') {
                        Some((schema, name)) => relations
                            .iter()
                            .find(|r| r.schema == schema && r.name == name),
                        None => relations
                            .iter()
                            .find(|r| r.name == object && snap.is_visible(&r.schema)),
                    },
                };
                found.map(|r| AclObject::Relation {
                    schema: r.schema.clone(),
                    name: r.name.clone(),
                })
            };
            let Some(target) = target else {
                // System catalogs, and objects that do not exist.
                out.append_value(true);
                continue;
            };
            let held = snap.catalog.privileges_on(actor, &target);
            let mut any = false;
            for name in wanted.split(',') {
                let name = name.trim().to_ascii_uppercase();
                let name = name.trim_end_matches(" WITH GRANT OPTION").trim();
                let bit = PRIVILEGE_NAMES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, b)| *b)
                    .ok_or_else(|| {
                        DataFusionError::Plan(format!("unrecognized privilege type: \"{name}\""))
                    })?;
                any |= held & bit != 0;
            }
            out.append_value(any);
        }
        Ok(Arc::new(out.finish()))
    }
}

fn relation_size(
    context: &CatalogContext,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    let context = context.clone();
    move |args, rows| {
        let snap = context.snapshot();
        let relations = snap.relations();
        let oids = arg_i64(args, 0, rows)?;
        let out: Int64Array = oids
            .iter()
            .map(|oid| {
                let rel = relations.iter().find(|r| Some(r.oid as i64) == oid)?;
                Some(rel.table().map_or(0, |t| t.pin().memory_bytes()) as i64)
            })
            .collect();
        Ok(Arc::new(out))
    }
}

/// `pg_get_serial_sequence(table, column)`: the sequence a SERIAL or
/// identity column takes its values from, schema-qualified.
fn serial_sequence(
    context: &CatalogContext,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    let context = context.clone();
    move |args, rows| {
        let snap = context.snapshot();
        let tables = required_text(args, "pg_get_serial_sequence")?;
        let tables = tables.as_string::<i32>();
        let columns = match args.get(1) {
            Some(a) => cast(a, &DataType::Utf8)?,
            None => {
                return Err(DataFusionError::Plan(
                    "pg_get_serial_sequence needs a table and a column".into(),
                ))
            }
        };
        let columns = columns.as_string::<i32>();
        let path = snap.info.search_path();
        let mut out = StringBuilder::new();
        for i in 0..tables.len().max(columns.len()).max(rows.min(1)) {
            let (t, c) = (i.min(tables.len() - 1), i.min(columns.len() - 1));
            if tables.is_null(t) || columns.is_null(c) {
                out.append_null();
                continue;
            }
            // `attrelid::regclass::text`: here an oid's digits. A view
            // or sequence has no column sequences.
            let by_oid = match tables
                .value(t)
                .parse::<i32>()
                .ok()
                .map(|oid| snap.relation(oid))
            {
                Some(Some(r)) if r.table().is_some() => Some(vec![r.schema, r.name]),
                Some(Some(_)) => {
                    out.append_null();
                    continue;
                }
                _ => None,
            };
            let parts = match by_oid {
                Some(parts) => parts,
                None => {
                    crate::sql::sequences::parse_qualified(tables.value(t)).ok_or_else(|| {
                        DataFusionError::Plan(format!(
                            "invalid name syntax: \"{}\"",
                            tables.value(t)
                        ))
                    })?
                }
            };
            let (schemas, table) = match parts.as_slice() {
                [table] => (path.clone(), table.clone()),
                [schema, table] => (vec![schema.clone()], table.clone()),
                _ => (Vec::new(), String::new()),
            };
            let column = columns.value(c);
            let Some(schema) = schemas.into_iter().find(|s| {
                snap.catalog
                    .table(&crate::engine::QualifiedName::new(s, &table))
                    .is_some()
            }) else {
                return Err(DataFusionError::External(Box::new(
                    crate::error::QuiverError::UndefinedTable(table),
                )));
            };
            let name = crate::engine::QualifiedName::new(&schema, &table);
            let found = snap
                .catalog
                .sequences_owned_by(&name)
                .into_iter()
                .find(|s| {
                    snap.catalog
                        .sequence(s)
                        .and_then(|s| s.owned_by())
                        .is_some_and(|(_, owner_column)| owner_column == column)
                });
            match found {
                Some(s) => out.append_value(format!(
                    "{}.{}",
                    quote_ident(&s.schema),
                    quote_ident(&s.name)
                )),
                None => out.append_null(),
            }
        }
        Ok(Arc::new(out.finish()))
    }
}

fn to_regclass(
    context: &CatalogContext,
) -> impl Fn(&[ArrayRef], usize) -> Result<ArrayRef> + Send + Sync + 'static {
    let context = context.clone();
    move |args, rows| {
        let snap = context.snapshot();
        let names = required_text(args, "to_regclass")?;
        let names = names.as_string::<i32>();
        let relations = snap.relations();
        let out: Int32Array = (0..names.len().max(rows.min(names.len())))
            .map(|i| {
                if names.is_null(i) {
                    return None;
                }
                let name = names.value(i);
                let (schema, rel) = match name.split_once('.') {
                    Some((s, r)) => (Some(unquote(s)), unquote(r)),
                    None => (None, unquote(name)),
                };
                // pg_catalog comes first on every search path.
                if schema.as_deref().is_none_or(|s| s == "pg_catalog") {
                    if let Some((_, oid)) = super::snapshot::SYSTEM_CATALOGS
                        .iter()
                        .find(|(name, _)| *name == rel)
                    {
                        return Some(*oid);
                    }
                }
                let path = snap.info.search_path();
                relations
                    .iter()
                    .filter(|r| r.name == rel)
                    .filter(|r| match &schema {
                        Some(s) => &r.schema == s,
                        None => path.contains(&r.schema),
                    })
                    .min_by_key(|r| path.iter().position(|s| *s == r.schema))
                    .map(|r| r.oid)
            })
            .collect();
        Ok(Arc::new(out))
    }
}

/// Postgres' `format()`: `%s` as text, `%I` as an identifier, `%L` as a
/// literal, `%%` a percent sign.
fn format_text(format: &str, values: &[Option<String>]) -> Result<String> {
    let mut out = String::new();
    let mut next = values.iter();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next();
        if spec == Some('%') {
            out.push('%');
            continue;
        }
        let value = next
            .next()
            .ok_or_else(|| DataFusionError::Execution("too few arguments for format()".into()))?;
        match (spec, value) {
            (Some('s'), v) => out.push_str(v.as_deref().unwrap_or("")),
            (Some('I'), Some(v)) => out.push_str(&super::snapshot::quote_ident(v)),
            (Some('I'), None) => {
                return Err(DataFusionError::Execution(
                    "null values cannot be formatted as an SQL identifier".into(),
                ))
            }
            (Some('L'), Some(v)) => out.push_str(&quote_literal(v)),
            (Some('L'), None) => out.push_str("NULL"),
            (other, _) => {
                return Err(DataFusionError::Execution(format!(
                    "unrecognized format() type specifier \"{}\"",
                    other.map(String::from).unwrap_or_default()
                )))
            }
        }
    }
    Ok(out)
}

/// `'text'` with quotes doubled; `E'...'` when it holds a backslash.
fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

fn expand_fields() -> datafusion::arrow::datatypes::Fields {
    vec![
        Field::new("x", DataType::Int32, true),
        Field::new("n", DataType::Int32, true),
    ]
    .into()
}

/// The oid of a built-in type by any of its names.
fn builtin_type_oid(name: &str) -> Option<i32> {
    let name = name
        .trim()
        .trim_start_matches("pg_catalog.")
        .to_ascii_lowercase();
    Some(match name.as_str() {
        "bool" | "boolean" => 16,
        "bytea" => 17,
        "\"char\"" | "char" => 18,
        "name" => 19,
        "int8" | "bigint" => 20,
        "int2" | "smallint" => 21,
        "int4" | "integer" | "int" => 23,
        "text" => 25,
        "oid" => 26,
        "json" => 114,
        "float4" | "real" => 700,
        "float8" | "double precision" => 701,
        "bpchar" | "character" => 1042,
        "varchar" | "character varying" => 1043,
        "date" => 1082,
        "time" | "time without time zone" => 1083,
        "timestamp" | "timestamp without time zone" => 1114,
        "timestamptz" | "timestamp with time zone" => 1184,
        "interval" => 1186,
        "numeric" | "decimal" => 1700,
        "uuid" => 2950,
        "jsonb" => 3802,
        _ => return None,
    })
}

fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\"\"", "\"")
    } else {
        s.to_lowercase()
    }
}

/// `pg_size_pretty`: bytes, kB, MB, GB, TB with Postgres' rounding.
fn size_pretty(bytes: i64) -> String {
    let units = ["bytes", "kB", "MB", "GB", "TB", "PB"];
    let mut size = bytes;
    let mut unit = 0;
    // Postgres switches unit once the value reaches 10240 of the current one.
    while size.abs() >= 10 * 1024 && unit + 1 < units.len() {
        size = (size + if size >= 0 { 512 } else { -512 }) / 1024;
        unit += 1;
    }
    format!("{size} {}", units[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_quoted_like_postgres() {
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_literal("a\\b"), "E'a\\\\b'");
    }

    #[test]
    fn format_fills_in_text_identifiers_and_literals() {
        let v = |s: &str| Some(s.to_string());
        assert_eq!(
            format_text(
                "%I.%I = %L (%s%%)",
                &[v("public"), v("My Table"), v("it's"), v("5")]
            )
            .unwrap(),
            "public.\"My Table\" = 'it''s' (5%)"
        );
    }

    #[test]
    fn sizes_are_pretty_like_postgres() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(8192), "8192 bytes");
        assert_eq!(size_pretty(16384), "16 kB");
        assert_eq!(size_pretty(10 * 1024 * 1024 * 1024), "10 GB");
    }
}

/// `FROM pg_partition_ancestors(oid)`: one row, `relid`, the table itself.
#[derive(Debug)]
struct PartitionAncestors;

impl datafusion::catalog::TableFunctionImpl for PartitionAncestors {
    fn call_with_args(
        &self,
        args: datafusion::catalog::TableFunctionArgs,
    ) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
        use datafusion::logical_expr::Expr;
        let oid = match args.exprs().first() {
            Some(Expr::Literal(value, _)) => {
                value.to_string().trim_matches('\'').parse::<i32>().ok()
            }
            Some(Expr::Cast(c)) => match c.expr.as_ref() {
                Expr::Literal(value, _) => value.to_string().parse::<i32>().ok(),
                _ => None,
            },
            _ => None,
        }
        .ok_or_else(|| {
            DataFusionError::Plan("pg_partition_ancestors takes a table's oid".into())
        })?;
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![
            datafusion::arrow::datatypes::Field::new("relid", DataType::Int32, false),
        ]));
        let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(datafusion::arrow::array::Int32Array::from(vec![
                oid,
            ]))],
        )?;
        Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![vec![batch]],
        )?))
    }
}
