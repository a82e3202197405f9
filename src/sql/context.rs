//! The DataFusion context a session plans with: PostgreSQL's parser
//! settings and type rules, the system catalogs over the engine's catalog,
//! and PostgreSQL's functions. Every front end's sessions plan in one.

use std::sync::Arc;

use datafusion::execution::context::{SessionConfig, SessionContext};
use datafusion::logical_expr::ScalarUDF;

use super::catalog::{CatalogContext, SessionInfo};
use super::pg_types_in;
use super::sequences::{SequenceCalls, SequenceSession};
use super::{pg_arithmetic, pg_casts, pg_datestyle, pg_extract, pg_timezone, pg_to_char};
use crate::engine::{Database, TxnSlot, CATALOG_NAME, DEFAULT_SCHEMA};

/// A planning context and the handles the session keeps to it.
pub struct Planner {
    pub ctx: SessionContext,
    /// The casts from text the session calls while it binds parameters.
    pub bytea_in: Arc<ScalarUDF>,
    pub interval_in: Arc<ScalarUDF>,
    /// The session's TimeZone as Arrow names it, read by the planner.
    pub zone: pg_timezone::ZoneHandle,
    /// The session's DateStyle, read by the planner.
    pub date_style: pg_datestyle::Handle,
    /// The session's currval/lastval, and the log record its last
    /// nextval must see durable.
    pub sequences: Arc<SequenceCalls>,
}

impl Planner {
    /// A context over `db`'s catalog as the transaction in `slot` sees it;
    /// `info` is the session the system catalogs report as the current one.
    pub fn new(db: &Arc<Database>, slot: Arc<TxnSlot>, info: Arc<SessionInfo>) -> Planner {
        let context = CatalogContext {
            db: db.clone(),
            slot: slot.clone(),
            info,
        };
        let sequences = Arc::new(SequenceCalls::default());
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(CATALOG_NAME, DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false)
            .set_bool("datafusion.sql_parser.map_string_types_to_utf8view", false)
            .set_str("datafusion.sql_parser.dialect", "PostgreSQL")
            // `1.5` is a numeric, as in PostgreSQL (DataFusion: a float).
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            // now() and `::timestamptz` give instants (timestamptz), shown
            // in the session's TimeZone, which is UTC.
            .set_str("datafusion.execution.time_zone", "UTC")
            .with_extension(slot.clone())
            .with_option_extension(SequenceSession {
                calls: sequences.clone(),
                context: context.clone(),
            });
        let zone: pg_timezone::ZoneHandle = Arc::new(std::sync::RwLock::new(pg_timezone::utc()));
        let date_style = pg_datestyle::Handle::default();
        let ctx = SessionContext::new_with_state(pg_arithmetic::session_state(
            config,
            db.runtime(),
            zone.clone(),
            date_style.clone(),
        ));
        super::catalog::install(&ctx, CATALOG_NAME, context);
        for udf in super::sequences::udfs() {
            ctx.register_udf(udf);
        }
        let bytea_in = Arc::new(pg_casts::bytea_in_udf());
        let interval_in = Arc::new(pg_casts::interval_in_udf());
        ctx.register_udf(bytea_in.as_ref().clone());
        ctx.register_udf(interval_in.as_ref().clone());
        ctx.register_udf(pg_timezone::at_time_zone_udf());
        ctx.register_udf(pg_casts::named_cast_udf());
        ctx.register_udf(pg_to_char::to_char_udf("UTC", None));
        ctx.register_udf(pg_extract::date_part_udf("UTC"));
        ctx.register_udf(pg_casts::pg_typeof_udf());
        for udf in pg_types_in::text_type_udfs() {
            ctx.register_udf(udf);
        }
        Planner {
            ctx,
            bytea_in,
            interval_in,
            zone,
            date_style,
            sequences,
        }
    }
}
