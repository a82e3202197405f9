//! `pg_catalog` and `information_schema`: the system tables and functions
//! that psql, JDBC, SQLAlchemy and BI tools query to find tables, columns,
//! types and keys. Every table is generated at scan time from the catalog
//! the session sees (its transaction's, when that has run DDL), so a table
//! created a moment ago is listed with its real columns, types and keys.
//!
//! Built-in objects that never change (pg_type, pg_proc, pg_am, ...) come
//! from `datafusion-pg-catalog`'s export of a real PostgreSQL catalog.

mod functions;
mod info_schema;
mod pg_tables;
mod replication;
mod rewrite;
mod rows;
mod snapshot;
mod system;

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::catalog::{CatalogProvider, SchemaProvider};
use datafusion::error::Result as DfResult;
use datafusion::execution::context::SessionContext;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::planner::TypePlanner;
use datafusion::sql::sqlparser::ast::DataType as SqlDataType;

pub use crate::engine::sessions::{Identity, SessionInfo};
pub use rewrite::{empty_result_fallback, rewrite_client_sql};
pub use snapshot::{quote_ident, relation_oid, type_modifier, type_oid};

use crate::engine::catalog::QuiverCatalogProvider;
use crate::engine::{Database, TxnSlot};

pub const PG_CATALOG: &str = "pg_catalog";
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// The role that owns every object (the bootstrap superuser, oid 10 as in
/// Postgres) until roles exist.
pub const OWNER: &str = "quiver";
pub const OWNER_OID: i32 = 10;

/// What system tables and functions read: the database, the session's
/// transaction slot and its identity.
#[derive(Debug, Clone)]
pub struct CatalogContext {
    pub db: Arc<Database>,
    pub slot: Arc<TxnSlot>,
    pub info: Arc<SessionInfo>,
}

impl CatalogContext {
    pub fn snapshot(&self) -> snapshot::Snapshot {
        snapshot::Snapshot::new(self)
    }
}

/// Registers the database's catalog, with `pg_catalog` and
/// `information_schema` in it, and the Postgres system functions.
pub fn install(ctx: &SessionContext, catalog_name: &str, context: CatalogContext) {
    let inner = QuiverCatalogProvider::new(context.db.clone(), context.slot.clone());
    ctx.register_catalog(
        catalog_name,
        Arc::new(ClientCatalog {
            inner,
            context: context.clone(),
        }),
    );
    functions::register(ctx, &context);
    replication::register(ctx, &context);
    // `regclass`, `regtype`, `oid` and friends as cast targets.
    let state = ctx.state_ref();
    let existing = state.read().clone();
    *state.write() = SessionStateBuilder::new_from_existing(existing)
        .with_type_planner(Arc::new(CatalogTypes))
        .build();
    // `generate_series(array_lower(a, 1), array_upper(a, 1))`: int4 bounds.
    datafusion_pg_catalog::pg_catalog::generate_series_arg_coercion::CoerceIntArgsToBigInt::widen(
        ctx,
    );
    // Timestamp bounds (microseconds here) as DataFusion's nanoseconds.
    crate::sql::pg_generate_series::widen(ctx);
}

/// Type names of catalog columns that casts use: the oid aliases
/// (`regclass`, `oid`, ...; as int4) from `datafusion-pg-catalog`, and
/// `name` and `"char"` (as text). Also `timestamp` and `timestamptz`
/// without a precision: microseconds, as PostgreSQL (and table columns)
/// keep them; DataFusion's nanoseconds cannot hold dates before 1677 or
/// after 2262.
#[derive(Debug)]
struct CatalogTypes;

impl TypePlanner for CatalogTypes {
    fn plan_type_field(&self, sql_type: &SqlDataType) -> DfResult<Option<FieldRef>> {
        use datafusion::sql::sqlparser::ast::TimezoneInfo;
        if let SqlDataType::Timestamp(None, zone) = sql_type {
            let zone = match zone {
                TimezoneInfo::WithTimeZone | TimezoneInfo::Tz => {
                    Some(crate::engine::types::UTC.into())
                }
                _ => None,
            };
            let timestamp =
                DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, zone);
            return Ok(Some(Arc::new(Field::new("", timestamp, true))));
        }
        // char(n) and varchar(n) carry their type and length: the cast
        // truncates, and a char(n) is padded when shown.
        if matches!(
            sql_type,
            SqlDataType::Char(_)
                | SqlDataType::Character(_)
                | SqlDataType::Varchar(Some(_))
                | SqlDataType::CharacterVarying(Some(_))
                | SqlDataType::CharVarying(Some(_))
        ) {
            if let Ok((_, Some(tag), length)) = crate::engine::types::arrow_type(sql_type) {
                let field = crate::engine::types::character_field(tag, length.map(|n| n as usize));
                return Ok(Some(Arc::new(field)));
            }
        }
        // Arrays as table columns hold them: one dimension, the element
        // type and tag as a column of that element type would have.
        if let SqlDataType::Array(_) = sql_type {
            let field = crate::engine::types::column_field("", sql_type, true)
                .map_err(|e| datafusion::error::DataFusionError::Plan(e.to_string()))?;
            return Ok(Some(Arc::new(field)));
        }
        if let SqlDataType::Custom(name, args) = sql_type {
            let last = name.0.last().map(|p| p.to_string().to_lowercase());
            if args.is_empty() && last.as_deref() == Some("bpchar") {
                let field = crate::engine::types::character_field(
                    crate::engine::types::TaggedType::Bpchar,
                    None,
                );
                return Ok(Some(Arc::new(field)));
            }
            if args.is_empty() && matches!(last.as_deref(), Some("name") | Some("\"char\"")) {
                return Ok(Some(Arc::new(Field::new("", DataType::Utf8, true))));
            }
        }
        datafusion_pg_catalog::pg_catalog::oid_type_planner::PgOidTypePlanner
            .plan_type_field(sql_type)
    }
}

/// The user schemas plus the two system schemas.
#[derive(Debug)]
struct ClientCatalog {
    inner: QuiverCatalogProvider,
    context: CatalogContext,
}

impl CatalogProvider for ClientCatalog {
    fn schema_names(&self) -> Vec<String> {
        let mut names = self.inner.schema_names();
        names.push(PG_CATALOG.into());
        names.push(INFORMATION_SCHEMA.into());
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        match name {
            PG_CATALOG => Some(Arc::new(system::SystemSchema::pg_catalog(
                self.context.clone(),
            ))),
            INFORMATION_SCHEMA => Some(Arc::new(system::SystemSchema::information_schema(
                self.context.clone(),
            ))),
            _ => {
                let inner = self.inner.schema(name)?;
                Some(Arc::new(system::WithQuiverTables::new(
                    inner,
                    self.context.clone(),
                )))
            }
        }
    }
}
